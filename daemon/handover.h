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
 * A restart under systemd works the same way through the fd store: the old
 * daemon stores the state and the descriptors, the new one gets them back.
 */
#pragma once

#include <stdbool.h>

struct server;

/* The environment variable that carries the state memfd to the new image. */
#define HANDOVER_ENV "KMALLOCD_HANDOVER"

/* Writes the state and execs @argv[0] (the binary now at that name, which
 * an upgrade may have replaced; else the running image) with @argv.
 * Returns only on failure, with -errno, the daemon still serving. */
int handover_exec(struct server *srv, char *const *argv);

/* Where the new image finds the descriptors the state names: after exec
 * they keep their numbers (@resolve NULL); from systemd's fd store they come
 * by name ("kmallocd-reserve", "kmallocd-domain-ID", "kmallocd-conn-ID",
 * "kmallocd-listen"), and @resolve maps a name to a descriptor or -1. */
struct handover_fds {
	int (*resolve)(void *ctx, const char *name, int recorded_fd);
	void *ctx;
};

/* In the new image: rebuilds @srv's allocators, grants and connections from
 * the state memfd @fd (closed here). 0, or -errno with a log line. */
int handover_restore(struct server *srv, int fd, const struct handover_fds *fds);

/* At a stop under systemd with --fd-store: the state and every descriptor
 * go into systemd's fd store (the state last, as "kmallocd-state"), so that
 * the next kmallocd started by systemd takes everything over. 0, or -errno
 * after taking out of the store whatever went in (then stop as usual). */
int handover_store(struct server *srv);

/* The descriptors systemd passed at start (LISTEN_FDS): a socket unit's
 * listening socket, and what a previous kmallocd left in the fd store. */
struct handover_store {
	int n;
	int *fds;
	char **names;
	bool *used;    /* handed out to the new daemon */
	int state_fd;  /* "kmallocd-state", or -1: nothing to take over */
	int listen_fd; /* a socket unit's listening socket, or -1 */
};

void handover_store_open(struct handover_store *st);
/* Takes over from a stored state (st->state_fd >= 0), by descriptor name.
 * 0, or -errno with a log line. */
int handover_store_restore(struct server *srv, struct handover_store *st);
/* Asks systemd to drop every kmallocd-* entry (the new daemon holds what it
 * took over) and closes what was not used. */
void handover_store_close(struct handover_store *st);
