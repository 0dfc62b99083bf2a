// SPDX-License-Identifier: MIT
/*
 * notify.c - sd_notify and socket activation through libsystemd.
 */
#include "config.h"
#include "notify.h"

#include <stddef.h>
#include <sys/socket.h>

#include "log.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int notify_listen_fd(void)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return -1;
	if (n > 1)
		log_warn("systemd passed %d sockets; using the first", n);
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
		log_err("the socket systemd passed is not a listening SOCK_SEQPACKET Unix socket");
		return -1;
	}
	return SD_LISTEN_FDS_START;
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

int notify_listen_fd(void) { return -1; }
void notify_ready(const char *status) { (void)status; }
void notify_status(const char *status) { (void)status; }
void notify_stopping(void) { }
uint64_t notify_watchdog_usec(void) { return 0; }
void notify_watchdog(void) { }

#endif
