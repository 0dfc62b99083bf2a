/* SPDX-License-Identifier: MIT */
/*
 * notify.h - systemd integration: sd_notify (READY, STATUS, WATCHDOG,
 * STOPPING) and socket activation. Every call is a no-op when the daemon
 * was not started by systemd or was built without libsystemd.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Descriptors systemd passed (LISTEN_FDS), socket units' and the fd store's,
 * with their names (LISTEN_FDNAMES; "unknown" when unnamed). Returns how
 * many; *fds and *names are malloc'd (free with notify_fds_free()). */
int notify_listen_fds(int **fds, char ***names);
void notify_fds_free(int n, int *fds, char **names);
/* True when @fd is a listening SOCK_SEQPACKET Unix socket. */
bool notify_is_listening_seqpacket(int fd);
/* Hands @fd to systemd's fd store under @name (FDSTORE=1, FDPOLL=0), or
 * takes the entry out again (FDSTOREREMOVE=1). 0, or -errno (also without systemd). */
int notify_fdstore(int fd, const char *name);
void notify_fdstore_remove(const char *name);
void notify_ready(const char *status);
void notify_status(const char *status);
void notify_stopping(void);
void notify_reloading(void);
/* Microseconds between WATCHDOG=1 pings systemd expects, or 0. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog(void);
