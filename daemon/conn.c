// SPDX-License-Identifier: MIT
/*
 * conn.c - one client connection on the libevent loop: admission, bounded
 * and fair reads of one packet at a time, replies written at once or queued
 * until the socket drains, and a deferred teardown that gives back every
 * grant a bounded amount per loop turn. Requests themselves are dispatch.c's
 * business.
 *
 * Nothing a client sends us may block the loop: descriptors it passes
 * (where SO_PASSRIGHTS could not refuse them) and its socket itself are
 * closed by the reaper thread (reaper.h).
 */
#include "config.h"
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dispatch.h"
#include "domain.h"
#include "grant.h"
#include "log.h"
#include "loopstat.h"
#include "reaper.h"
#include "server.h"
#include "wire.h"

/* Give-back budget of a closing connection per loop turn. */
#define CONN_REAP_BUDGET_NS 500000 /* 0.5 ms */
#define CONN_LOG_BURST	    5	   /* lines per second per uid */

const char *const conn_state_names[CONN_STATE_MAX] = {
	[CONN_HELLO] = "HELLO",
	[CONN_READY] = "READY",
	[CONN_CLOSING] = "CLOSING",
};

void conn_log(const struct conn *c, enum log_level level, const char *fmt, ...)
{
	char msg[256], who[32];
	va_list ap;

	if (!log_enabled(level))
		return;
	if (level < LOG_LEVEL_DEBUG) {
		snprintf(who, sizeof(who), "uid %u", (unsigned int)c->uid);
		if (c->account && !ratelimit_ok(&c->account->log_rl, CONN_LOG_BURST, who))
			return;
		if (!log_ratelimit())
			return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "conn %" PRIu64 " pid %d uid %u (%s): %s", c->id, (int)c->pid,
		(unsigned int)c->uid, c->name[0] ? c->name : "?", msg);
}

static void conn_set_reading(struct conn *c, bool on)
{
	if (c->reading == on)
		return;
	if (on)
		event_add(c->ev_read, NULL);
	else
		event_del(c->ev_read);
	c->reading = on;
}

/* ---- reading and writing ------------------------------------------------ */

/* A client passed descriptors: they go to the reaper unopened and unread
 * (closing one may take as long as its owner arranged), and so does the
 * client. Only happens where the kernel lacks SO_PASSRIGHTS. */
static void conn_refuse_fds(struct conn *c, const int *fds, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++)
		reaper_close(fds[i]);
	conn_log(c, LOG_LEVEL_WARN,
		 "sent %u file descriptor(s), which the protocol never "
		 "does: closing the connection",
		 nr);
	conn_close(c, "sent file descriptors");
}

static void conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	int fds[WIRE_SCM_MAX_FDS];
	unsigned int i, nr_fds;

	for (i = 0; i < CONN_BATCH && c->reading; i++) {
		ssize_t n = kmwire_recv(fd, srv->rxbuf, srv->cfg->max_packet, fds, WIRE_SCM_MAX_FDS,
					&nr_fds, MSG_DONTWAIT);

		if (nr_fds) {
			conn_refuse_fds(c, fds, nr_fds);
			return;
		}
		if (n == -EAGAIN)
			return;
		if (n == -EMSGSIZE) {
			dispatch_oversized(c);
			continue;
		}
		if (n == 0) {
			conn_close(c, "disconnected");
			return;
		}
		if (n < 0) {
			conn_close(c, strerror((int)-n));
			return;
		}
		dispatch_packet(c, srv->rxbuf, (size_t)n);
	}
}

static void conn_outq_free(struct conn *c)
{
	while (c->outq) {
		struct conn_packet *p = c->outq;

		c->outq = p->next;
		if (p->fd >= 0)
			close(p->fd); /* our own duplicate of a domain memfd */
		free(p);
	}
	c->outq_tail = &c->outq;
	c->outq_bytes = 0;
}

static int conn_flush(struct conn *c)
{
	while (c->outq) {
		struct conn_packet *p = c->outq;
		int err = kmwire_send(c->fd, p->data, p->len, p->fd >= 0 ? &p->fd : NULL,
				      p->fd >= 0 ? 1 : 0, MSG_DONTWAIT);

		if (err == -EAGAIN || err == -ENOBUFS)
			return 1;
		if (err < 0)
			return err;
		c->outq = p->next;
		if (!c->outq)
			c->outq_tail = &c->outq;
		c->outq_bytes -= p->len;
		if (p->fd >= 0)
			close(p->fd);
		free(p);
	}
	return 0;
}

static void conn_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int err = conn_flush(c);

	if (err < 0) {
		conn_close(c, strerror(-err));
		return;
	}
	if (err == 0) {
		event_del(c->ev_write);
		conn_set_reading(c, true);
	}
}

int conn_send(struct conn *c, const void *buf, size_t len, int pass_fd)
{
	struct conn_packet *p;
	int err;

	if (c->state == CONN_CLOSING)
		return -EPIPE;
	if (!c->outq) {
		err = kmwire_send(c->fd, buf, len, pass_fd >= 0 ? &pass_fd : NULL,
				  pass_fd >= 0 ? 1 : 0, MSG_DONTWAIT);
		if (err == 0)
			return 0;
		if (err != -EAGAIN && err != -ENOBUFS)
			return err;
	}
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	p->next = NULL;
	p->len = len;
	p->fd = pass_fd >= 0 ? fcntl(pass_fd, F_DUPFD_CLOEXEC, 3) : -1;
	memcpy(p->data, buf, len);
	*c->outq_tail = p;
	c->outq_tail = &p->next;
	c->outq_bytes += len;
	event_add(c->ev_write, NULL);
	/* The client does not read: stop reading it until it does, so its
	 * replies cannot pile up in the daemon. */
	if (c->outq_bytes > c->srv->cfg->max_queued)
		conn_set_reading(c, false);
	return 0;
}

/* ---- life cycle ------------------------------------------------------------ */

static void conn_on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_HELLO)
		conn_close(c, "no hello in time");
}

static void conn_on_reap(evutil_socket_t fd, short what, void *arg);

static void conn_free_events(struct conn *c)
{
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	if (c->ev_hello)
		event_free(c->ev_hello);
	if (c->ev_reap)
		event_free(c->ev_reap);
	c->ev_read = c->ev_write = c->ev_hello = c->ev_reap = NULL;
}

/* The connection without admission: events made, on srv->conns, not read
 * yet; @id 0 takes a new id. */
static int conn_setup(struct server *srv, int fd, uint64_t id, uid_t uid, gid_t gid,
		      struct conn **out)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	c->fd = fd;
	c->id = id ? id : ++srv->next_conn_id;
	c->outq_tail = &c->outq;
	c->pid = -1;
	c->uid = uid;
	c->gid = gid;
	c->account = account_get(&srv->accounts, uid);
	c->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_on_readable, c);
	c->ev_write = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, conn_on_writable, c);
	c->ev_hello = evtimer_new(srv->base, conn_on_hello_timeout, c);
	c->ev_reap = evtimer_new(srv->base, conn_on_reap, c);
	grant_set_init(&c->grants);
	if (!c->account || !c->ev_read || !c->ev_write || !c->ev_hello || !c->ev_reap) {
		conn_free_events(c);
		account_put(&srv->accounts, c->account);
		free(c);
		return -ENOMEM;
	}
	c->account->connections++;
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->nr_conns++;
	*out = c;
	return 0;
}

void conn_start(struct conn *c)
{
	conn_set_reading(c, true);
}

/* The peer's supplementary groups (SO_PEERGROUPS, as they were at connect).
 * *groups is @stack or malloc'd; *nr 0 when unavailable. */
static void peer_groups(int fd, gid_t *stack, size_t stack_nr, gid_t **groups, size_t *nr)
{
	socklen_t len = (socklen_t)(stack_nr * sizeof(gid_t));

	*groups = stack;
	*nr = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, stack, &len) == 0) {
		*nr = len / sizeof(gid_t);
		return;
	}
	if (errno != ERANGE)
		return;
	*groups = malloc(len);
	if (*groups && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, *groups, &len) == 0) {
		*nr = len / sizeof(gid_t);
		return;
	}
	free(*groups);
	*groups = stack;
}

/* Why the peer may not connect, or NULL when it may. */
static const char *conn_admission(struct server *srv, uid_t uid, gid_t gid, const gid_t *groups,
				  size_t nr_groups, const struct account_limits *limits)
{
	const struct settings *cfg = srv->cfg;
	const struct account *acct;

	if (!account_allowed(&srv->accounts, uid, gid, groups, nr_groups))
		return "not on the allow list";
	if (srv->nr_conns >= cfg->max_clients)
		return "max_clients reached";
	if (!limits->privileged && srv->nr_conns >= cfg->max_clients - cfg->reserved_connections)
		return "only reserved connections are left";
	acct = account_find(&srv->accounts, uid);
	if (acct && acct->connections >= limits->max_connections)
		return "connection limit of the uid reached";
	return NULL;
}

/* Reads what the peer sent before it learns it is refused (its Hello): a
 * socket closed with unread data makes the peer's next recv() fail with
 * ECONNRESET before it sees the refusal queued for it. Bounded; whatever
 * descriptors come along go to the reaper. */
static void conn_drain(int fd)
{
	int fds[WIRE_SCM_MAX_FDS];
	unsigned int i, j, nr_fds;
	uint8_t buf[512];

	for (i = 0; i < 8; i++) {
		ssize_t n = kmwire_recv(fd, buf, sizeof(buf), fds, WIRE_SCM_MAX_FDS, &nr_fds,
					MSG_DONTWAIT);

		for (j = 0; j < nr_fds; j++)
			reaper_close(fds[j]);
		if (n <= 0 && n != -EMSGSIZE)
			break;
	}
}

/* Refuses the peer on @fd: one error Reply, then the socket goes. */
static void conn_refuse(struct server *srv, int fd, uid_t uid, const char *why)
{
	struct account *acct = account_find(&srv->accounts, uid);
	char who[32];

	snprintf(who, sizeof(who), "uid %u", (unsigned int)uid);
	if (acct)
		acct->refusals++;
	if ((!acct || ratelimit_ok(&acct->log_rl, CONN_LOG_BURST, who)) && log_ratelimit())
		log_notice("uid %u: connection refused: %s", (unsigned int)uid, why);
	dispatch_refuse(fd, EACCES, why);
	conn_drain(fd);
	reaper_close(fd);
}

int conn_new(struct server *srv, int fd, struct conn **out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t stack[64], *groups;
	struct account_limits limits;
	const char *why;
	size_t nr_groups;
	struct conn *c;
	int err;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		conn_refuse(srv, fd, (uid_t)-1, "peer credentials unavailable");
		return -EACCES;
	}
	peer_groups(fd, stack, sizeof(stack) / sizeof(stack[0]), &groups, &nr_groups);
	account_limits_for(&srv->accounts, cred.uid, cred.gid, groups, nr_groups, &limits);
	why = conn_admission(srv, cred.uid, cred.gid, groups, nr_groups, &limits);
	if (why) {
		if (groups != stack)
			free(groups);
		conn_refuse(srv, fd, cred.uid, why);
		return -EACCES;
	}
	err = conn_setup(srv, fd, 0, cred.uid, cred.gid, &c);
	if (err) {
		if (groups != stack)
			free(groups);
		reaper_close(fd);
		return err;
	}
	c->pid = cred.pid;
	c->limits = limits;
	c->account->limits = limits;
	c->admin = server_is_admin(srv, cred.uid, cred.gid, groups, nr_groups);
	if (groups != stack)
		free(groups);
	{
		/* A connection that never says Hello must not hold a slot forever. */
		struct timeval timeout = { .tv_sec = srv->cfg->hello_timeout };

		event_add(c->ev_hello, &timeout);
	}
	conn_start(c);
	conn_log(c, LOG_LEVEL_DEBUG, "connected");
	*out = c;
	return 0;
}

int conn_adopt(struct server *srv, int fd, uint64_t id, uid_t uid, gid_t gid, struct conn **out)
{
	struct ucred cred = { .pid = -1, .uid = uid, .gid = gid };
	socklen_t len = sizeof(cred);
	gid_t stack[64], *groups = stack;
	size_t nr_groups = 0;
	struct conn *c;
	int err;

	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		peer_groups(fd, stack, sizeof(stack) / sizeof(stack[0]), &groups, &nr_groups);
	err = conn_setup(srv, fd, id, cred.uid, cred.gid, &c);
	if (!err) {
		c->pid = cred.pid;
		account_limits_for(&srv->accounts, cred.uid, cred.gid, groups, nr_groups,
				   &c->limits);
		c->account->limits = c->limits;
		c->admin = server_is_admin(srv, cred.uid, cred.gid, groups, nr_groups);
		*out = c;
	}
	if (groups != stack)
		free(groups);
	return err;
}

/* The last step of closing: everything is given back; drop the domain and
 * the account, free @c. */
static void conn_finish(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->closed_grants)
		conn_log(c, LOG_LEVEL_INFO, "%s, gave back %" PRIu64 " grants, %" PRIu64 " bytes",
			 c->close_why, c->closed_grants, c->closed_bytes);

	/* Everything the client held is free again, the slabs it emptied too:
	 * a client that goes away leaves the free count where it found it
	 * (the caches keep empty slabs only while their users are there). */
	if (c->domain && c->domain->refs > 1)
		domain_shrink(c->domain);
	domain_put(c->domain);
	TAILQ_REMOVE(&srv->conns, c, link);
	srv->nr_conns--;
	grant_set_fini(&c->grants);
	conn_free_events(c);
	account_put(&srv->accounts, c->account);
	free(c);
	/* A client going away may leave a domain nobody holds, or free frames
	 * the frame allocator lacks: given back a few at a time (mm_trim()). */
	server_trim_soon(srv);
}

/* One turn of the give-back, timed whole: the last one frees @c too. */
static void conn_on_reap(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval next_turn = { 0, 0 };
	struct conn *c = arg;
	struct server *srv = c->srv;
	uint64_t t0 = loopstat_now_ns();

	if (!grant_release_some(&srv->grants, c, CONN_REAP_BUDGET_NS)) {
		/* A timer, not event_active(): it runs after the next poll, so
		 * every other client is served in between. */
		evtimer_add(c->ev_reap, &next_turn);
	} else {
		conn_finish(c);
	}
	loopstat_teardown(&srv->loop, loopstat_now_ns() - t0);
}

void conn_close(struct conn *c, const char *why)
{
	static const struct timeval now = { 0, 0 };

	if (c->state == CONN_CLOSING)
		return;
	conn_log(c, LOG_LEVEL_DEBUG, "%s -> %s: %s", conn_state_names[c->state],
		 conn_state_names[CONN_CLOSING], why);
	c->state = CONN_CLOSING;
	c->closed_grants = c->grants.nr;
	c->closed_bytes = c->bytes;
	c->close_why = why;
	event_del(c->ev_read);
	event_del(c->ev_write);
	event_del(c->ev_hello);
	c->reading = false;
	conn_outq_free(c);
	/* Its receive queue may hold descriptors the client passed. */
	reaper_close(c->fd);
	c->fd = -1;
	c->account->connections--;
	evtimer_add(c->ev_reap, &now);
}

void conn_reap_all(struct server *srv)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&srv->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_CLOSING)
			continue;
		grant_release_some(&srv->grants, c, 0);
		conn_finish(c);
	}
}
