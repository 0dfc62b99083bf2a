/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one client connection: its socket and libevent events, its
 * credentials and domain, the grants it holds, and the replies waiting to be
 * written.
 *
 * Reading is fair and bounded: a readable socket yields at most
 * CONN_BATCH packets per callback, and a connection whose unsent replies pass
 * CONN_OUTQ_LIMIT bytes is not read again until they drain, so a client that
 * never reads cannot make the daemon buffer without end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct domain;
struct grant;
struct server;

#define CONN_BATCH		32
#define CONN_OUTQ_LIMIT		(4u << 20)
#define CONN_TOKEN_SIZE		16

enum conn_state {
	CONN_HELLO,		/* connected, waiting for Hello */
	CONN_READY,		/* Welcome sent */
	CONN_CLOSING,
	CONN_STATE_MAX,
};

extern const char *const conn_state_names[CONN_STATE_MAX];

struct conn_packet {
	struct conn_packet *next;
	int fd;			/* passed with the packet, or -1; owned */
	size_t len;
	uint8_t data[];
};

struct conn {
	struct server *srv;
	struct conn *next, *prev;	/* on srv->conns */
	uint32_t id;
	int fd;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_hello;		/* closes a connection that never says Hello */
	enum conn_state state;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool admin;			/* root or in the admin group: may inspect */
	char name[32];			/* from Hello, else /proc/PID/comm */
	uint8_t token[CONN_TOKEN_SIZE];
	struct domain *domain;		/* set by Hello */
	struct grant *grants;		/* held, linked through owner_next */
	uint64_t nr_grants;
	uint64_t bytes;			/* bytes held (grant->bytes summed) */
	struct conn_packet *outq, **outq_tail;
	size_t outq_bytes;
	bool reading;			/* ev_read armed */
};

/* Takes over @fd (a connected, non-blocking socket) and starts reading. */
int conn_new(struct server *srv, int fd, struct conn **out);

/* Gives every grant back, drops the domain and frees the connection. */
void conn_close(struct conn *c, const char *why);

/* Queues one packet (and @pass_fd, which is duplicated, or -1). Writes at
 * once when nothing is queued; else the packet waits for EV_WRITE.
 * 0, or -errno (the connection is then closing). */
int conn_send(struct conn *c, const void *buf, size_t len, int pass_fd);

/* Links / unlinks a grant on the connection's list and counters. */
void conn_grant_add(struct conn *c, struct grant *g);
void conn_grant_del(struct conn *c, struct grant *g);
/* Unlinks @g, gives its memory back to its domain and deletes it. */
void conn_grant_release(struct conn *c, struct grant *g);
