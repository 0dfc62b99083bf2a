/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one client connection: its socket and libevent events, its
 * credentials, account and domain, the grants it holds, and the replies
 * waiting to be written.
 *
 * Admission (conn_new()): the peer's uid and groups come from the socket
 * (SO_PEERCRED, SO_PEERGROUPS); a uid not on the allow lists, past its
 * connection limit, or an unprivileged one when only the reserved slots are
 * left is refused: one error Reply (id 0, EACCES) and the socket is closed.
 *
 * Reading is fair and bounded: a readable socket yields at most CONN_BATCH
 * packets per callback, and a connection whose unsent replies pass the
 * max_queued setting is not read again until they drain, so a client that
 * never reads cannot make the daemon buffer without end.
 *
 * Closing (conn_close()) is explicit and deferred: the connection is marked
 * CONN_CLOSING, stops reading and writing, its socket goes to the reaper
 * (reaper.h), and its grants are given back from an event of its own, a
 * bounded amount per loop turn, so a client holding a million grants costs
 * nobody else more than a turn's budget. The struct stays valid until then:
 * callers check c->state, they never see it freed under them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "account.h"
#include "grant.h"

struct domain;
struct server;

#define CONN_BATCH	32
#define CONN_TOKEN_SIZE 16

enum conn_state {
	CONN_HELLO,   /* connected, waiting for Hello */
	CONN_READY,   /* Welcome sent */
	CONN_CLOSING, /* socket gone, grants being given back */
	CONN_STATE_MAX,
};

extern const char *const conn_state_names[CONN_STATE_MAX];

struct conn_packet {
	struct conn_packet *next;
	int fd; /* passed with the packet, or -1; owned */
	size_t len;
	uint8_t data[];
};

struct conn {
	struct server *srv;
	TAILQ_ENTRY(conn) link; /* on srv->conns */
	uint64_t id;		/* never reused in a daemon's life */
	int fd;			/* -1 once closing */
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_hello; /* closes a connection that never says Hello */
	struct event *ev_reap;	/* gives back the grants of a closing connection */
	enum conn_state state;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool admin;		      /* root or in the admin group: may inspect */
	struct account *account;      /* the uid's counters; charged by every grant */
	struct account_limits limits; /* this connection's, from its uid and groups */
	char name[32];		      /* from Hello, else /proc/PID/comm */
	uint8_t token[CONN_TOKEN_SIZE];
	struct domain *domain;	 /* set by Hello */
	struct grant_set grants; /* held (grant.c links and unlinks them) */
	uint64_t bytes;		 /* bytes held (grant->bytes summed) */
	struct conn_packet *outq, **outq_tail;
	size_t outq_bytes;
	bool reading;		/* ev_read armed */
	const char *close_why;	/* for the log line when the last grant is back */
	uint64_t closed_grants; /* what it held when it closed, for that line */
	uint64_t closed_bytes;
};

/* Takes over @fd (a connected, non-blocking socket) and starts reading, or
 * refuses the peer (see above; @fd is then gone). 0 and *out, -EACCES when
 * refused, or another -errno (@fd closed). */
int conn_new(struct server *srv, int fd, struct conn **out);

/* A connection of a previous daemon (handover.c), with its @id: @fd taken
 * over as is (or -1 for a client that died meanwhile), no admission, not
 * read yet. Its credentials, limits and rights come from the socket again
 * (@uid and @gid are the recorded ones, used when @fd is -1). The caller
 * fills in the rest and calls conn_start(). 0 and *out, or -errno. */
int conn_adopt(struct server *srv, int fd, uint64_t id, uid_t uid, gid_t gid, struct conn **out);
void conn_start(struct conn *c);

/* Marks @c closing and schedules the give-back; a no-op when it already is. */
void conn_close(struct conn *c, const char *why);

/* Gives back everything every closing connection still holds, now, and
 * frees them (a handover or a shutdown needs a settled state). */
void conn_reap_all(struct server *srv);

/* Queues one packet (and @pass_fd, which is duplicated, or -1). Writes at
 * once when nothing is queued; else the packet waits for EV_WRITE.
 * 0, or -errno (the connection is then closing). */
int conn_send(struct conn *c, const void *buf, size_t len, int pass_fd);

/* A log line about @c (named first), rate-limited per uid and daemon-wide
 * unless at debug level: every line a client can cause goes through here. */
void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
