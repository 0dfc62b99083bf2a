/* SPDX-License-Identifier: MIT */
/*
 * handover.h - replace the running kmallocd by a new one (a new binary after
 * an upgrade, or the same) without losing a grant or a connection.
 *
 * On SIGUSR2 (systemctl reload) the daemon writes its state into a memfd,
 * keeps every descriptor that matters open across exec (the listening
 * socket, the clients' sockets, the reserve and domain memfds) and execs
 * itself; the new image reads the state back, checks it, and serves the same
 * clients, who notice nothing. The state holds numbers and offsets, never
 * pointers: frame owners, domains, connections, grants, queued replies.
 */
#pragma once

struct server;

/* The environment variable that carries the state memfd to the new image. */
#define HANDOVER_ENV "KMALLOCD_HANDOVER"

/* Writes the state and execs @argv[0] (via /proc/self/exe) with @argv.
 * Returns only on failure, with -errno, the daemon still serving. */
int handover_exec(struct server *srv, char *const *argv);

/* In the new image: rebuilds @srv's allocators, grants and connections from
 * the state memfd @fd (closed here). 0, or -errno with a log line. */
int handover_restore(struct server *srv, int fd);
