/* SPDX-License-Identifier: MIT */
/*
 * server.h - the listening socket and the daemon-wide state every request
 * reaches: the allocators (struct mm), the grant table, the connections and
 * the libevent base. The socket is our own (bound to the configured path), or
 * the one systemd passes with socket activation.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "grant.h"
#include "loopstat.h"
#include "settings.h"

struct event;
struct event_base;

struct server {
	struct event_base *base;
	const struct settings *cfg;
	struct mm mm;
	struct grant_table grants;
	int listen_fd;
	bool own_socket;     /* we bound it: unlink at exit */
	bool passrights_off; /* SO_PASSRIGHTS refuses descriptors (6.16+) */
	struct event *ev_listen;
	struct event *ev_timer;	       /* reconcile, watchdog, status; kicks ev_trim */
	struct event *ev_trim;	       /* mm_trim() turns: going domains, balance */
	struct event *ev_accept_pause; /* re-arms ev_listen after EMFILE */
	struct event *ev_signals[3];
	TAILQ_HEAD(conn_list, conn) conns;
	uint32_t nr_conns; /* open and closing */
	uint64_t next_conn_id;
	struct accounts accounts;
	uint8_t *rxbuf;	   /* one packet: cfg->max_packet bytes (a longer one is MSG_TRUNC) */
	uint64_t requests; /* served, for STATUS= */
	char *const *argv; /* to exec a successor with (handover) */
	uint64_t alloc_failures;
	struct loop_stats loop; /* what held the loop, since this daemon started */
};

/* Creates the pool and the listening socket, or with @handover_fd >= 0
 * takes over those of a previous daemon (handover.h). @argv is kept for a
 * later handover. 0 or -errno (logged). */
int server_init(struct server *srv, const struct settings *cfg, struct event_base *base,
		char *const *argv, int handover_fd);
/* A server without a listening socket (tests, embedding): a fresh pool from
 * @cfg, the housekeeping timer, and connections only through
 * server_add_connection(). 0 or -errno. */
int server_init_unlisted(struct server *srv, const struct settings *cfg, struct event_base *base);
/* Serves @fd (a connected SOCK_SEQPACKET socket, made non-blocking here) as a
 * client connection, with the same admission as an accepted one. 0, or
 * -errno (@fd is closed then). */
int server_add_connection(struct server *srv, int fd);

/* Schedules a turn of mm_trim() after the next poll (a domain nobody holds
 * any more, frames to balance): the give-back never holds the loop for
 * more than half a millisecond a turn. */
void server_trim_soon(struct server *srv);

/* Closes every connection and frees everything; unlinks our socket. */
void server_fini(struct server *srv);
/* True when a peer with these credentials may use the inspection requests
 * (root or admin group). No NSS lookup: the groups come from the socket. */
bool server_is_admin(const struct server *srv, uid_t uid, gid_t gid, const gid_t *groups,
		     size_t nr_groups);
