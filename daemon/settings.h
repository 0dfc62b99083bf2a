/* SPDX-License-Identifier: MIT */
/*
 * settings.h - kmallocd's settings: built-in defaults, then the config file
 * (ini, read with libinih; --config FILE, else /etc/kmallocd.conf if it
 * exists), then command-line flags. Every file setting has a flag.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "pool.h"

struct settings {
	char *socket_path;
	uint64_t pool_size;		/* bytes */
	enum pool_backing backing;
	uint64_t reserve;		/* bytes; UINT64_MAX = kernel's min_free_kbytes formula */
	uint32_t max_packet;		/* bytes of the largest request accepted */
	uint32_t max_clients;
	char *admin_group;		/* may run kmctl besides root; NULL = root only */
	enum log_level log_level;
	bool paranoid;			/* run the costly checkers after every request */
	uint32_t reconcile_interval;	/* seconds between phantom-frame checks, 0 = off */
	uint32_t hello_timeout;		/* seconds a new connection has to say Hello */
	bool fd_store;			/* keep state in systemd's fd store across restarts */
	char *config_file;		/* the file that was read, or NULL */
};

/* Fills @cfg from defaults, the config file and @argv. Returns 0; 1 when the
 * program should exit successfully (--help, --version); -EINVAL after
 * printing what is wrong. */
int settings_load(struct settings *cfg, int argc, char **argv);
void settings_fini(struct settings *cfg);

/* "4096", "64K", "256M", "2G" (powers of 1024). 0 or -EINVAL (also on overflow). */
int settings_parse_size(const char *s, uint64_t *out);

/* Applies one setting by its file key (also the long flag's name with '-'
 * for '_'). 0 or -EINVAL. Exposed for tests. */
int settings_set(struct settings *cfg, const char *key, const char *value);

/* Built-in defaults only. */
void settings_defaults(struct settings *cfg);
