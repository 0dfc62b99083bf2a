// SPDX-License-Identifier: MIT
/*
 * main.c - kmallocd: read the settings, create the pool and the server, run
 * the event loop until SIGTERM. Nothing else lives here.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "handover.h"
#include "log.h"
#include "memguard.h"
#include "notify.h"
#include "server.h"
#include "settings.h"

int main(int argc, char **argv)
{
	struct settings cfg;
	struct server srv;
	struct event_base *base;
	char status[160], *handover;
	int ret, handover_fd = -1;

	ret = settings_load(&cfg, argc, argv);
	if (ret != 0) {
		settings_fini(&cfg);
		return ret > 0 ? EXIT_SUCCESS : 2;
	}
	log_init(cfg.log_level);
	if (cfg.config_file)
		log_info("read settings from %s", cfg.config_file);

	/* Before any pool memory is touched (memguard.h). */
	if (memguard_init() < 0)
		die("cannot install the SIGBUS handler");
	base = event_base_new();
	if (!base)
		die("cannot create the event loop");
	handover = getenv(HANDOVER_ENV);
	if (handover) {
		/* Exec'd by a previous kmallocd that handed its state over. */
		char *end;
		long fd = strtol(handover, &end, 10);

		unsetenv(HANDOVER_ENV);
		if (*end || fd < 0 || fd > INT_MAX)
			die("%s=%s is not a descriptor", HANDOVER_ENV, handover);
		handover_fd = (int)fd;
	}
	ret = server_init(&srv, &cfg, base, argv, handover_fd);
	if (ret < 0)
		die("cannot start: %s", strerror(-ret));

	snprintf(status, sizeof(status), "listening on %s, pool %llu MiB (%s)",
		 srv.listen_fd >= 0 && srv.own_socket ? cfg.socket_path : "systemd socket",
		 (unsigned long long)(srv.mm.pool.size >> 20),
		 srv.mm.pool.hugetlb ? "hugetlb, 2 MiB pages" : "shmem fallback");
	log_info("%s", status);
	notify_ready(status);

	event_base_dispatch(base);

	server_fini(&srv);
	event_base_free(base);
	settings_fini(&cfg);
	log_info("stopped");
	return EXIT_SUCCESS;
}
