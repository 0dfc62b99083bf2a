/* SPDX-License-Identifier: MIT */
/*
 * notify.h - systemd integration: sd_notify (READY, STATUS, WATCHDOG,
 * STOPPING) and socket activation. Every call is a no-op when the daemon
 * was not started by systemd or was built without libsystemd.
 */
#pragma once

#include <stdint.h>

/* A listening socket passed by systemd (LISTEN_FDS) that is a SEQPACKET Unix
 * socket, or -1. */
int notify_listen_fd(void);
void notify_ready(const char *status);
void notify_status(const char *status);
void notify_stopping(void);
/* Microseconds between WATCHDOG=1 pings systemd expects, or 0. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog(void);
