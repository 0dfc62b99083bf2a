// SPDX-License-Identifier: MIT
/*
 * notify.c - sd_notify and socket activation through libsystemd.
 */
#include "config.h"
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int notify_listen_fds(int **fds, char ***names)
{
	int n = sd_listen_fds_with_names(1, names), i;

	*fds = NULL;
	if (n <= 0) {
		*names = NULL;
		return 0;
	}
	*fds = malloc(sizeof(int) * (size_t)n);
	if (!*fds) {
		notify_fds_free(n, NULL, *names);
		*names = NULL;
		return 0;
	}
	for (i = 0; i < n; i++)
		(*fds)[i] = SD_LISTEN_FDS_START + i;
	return n;
}

void notify_fds_free(int n, int *fds, char **names)
{
	int i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(fds);
}

bool notify_is_listening_seqpacket(int fd)
{
	return sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0;
}

int notify_fdstore(int fd, const char *name)
{
	char msg[128];
	int r;

	/* FDPOLL=0: systemd would otherwise drop a stored client connection
	 * whose client dies while no daemon runs; we keep it and find the
	 * hang-up ourselves (a client that died gives its grants back). */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	return r > 0 ? 0 : r < 0 ? r : -ENOTCONN;
}

void notify_fdstore_remove(const char *name)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

void notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_status(const char *status)
{
	sd_notifyf(0, "STATUS=%s", status);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

/* Before a re-exec: systemd holds the unit in "reloading" until the new
 * image's READY=1, so a restart queued behind the reload waits for it. */
void notify_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void notify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

#else

int notify_listen_fds(int **fds, char ***names)
{
	*fds = NULL;
	*names = NULL;
	return 0;
}
void notify_fds_free(int n, int *fds, char **names)
{
	(void)n;
	free(fds);
	free(names);
}
bool notify_is_listening_seqpacket(int fd)
{
	(void)fd;
	return false;
}
int notify_fdstore(int fd, const char *name)
{
	(void)fd;
	(void)name;
	return -ENOTCONN;
}
void notify_fdstore_remove(const char *name)
{
	(void)name;
}
void notify_ready(const char *status)
{
	(void)status;
}
void notify_status(const char *status)
{
	(void)status;
}
void notify_stopping(void)
{
}
void notify_reloading(void)
{
}
uint64_t notify_watchdog_usec(void)
{
	return 0;
}
void notify_watchdog(void)
{
}

#endif
