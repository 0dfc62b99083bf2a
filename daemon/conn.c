// SPDX-License-Identifier: MIT
/*
 * conn.c - one client connection on the libevent loop: bounded, fair reads
 * of one packet at a time; replies written at once or queued until the socket
 * drains; teardown that gives back every grant. Requests themselves are
 * dispatch.c's business.
 */
#include "config.h"
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dispatch.h"
#include "domain.h"
#include "grant.h"
#include "kmalloc.h"
#include "log.h"
#include "server.h"
#include "vmalloc.h"
#include "wire.h"

const char *const conn_state_names[CONN_STATE_MAX] = {
	[CONN_HELLO] = "HELLO",
	[CONN_READY] = "READY",
	[CONN_CLOSING] = "CLOSING",
};

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

static void conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	unsigned int i;

	for (i = 0; i < CONN_BATCH && c->reading; i++) {
		ssize_t n = kmwire_recv(fd, srv->rxbuf, srv->cfg->max_packet, NULL, 0, NULL,
				      MSG_DONTWAIT);

		if (n == -EAGAIN)
			return;
		if (n == -EMSGSIZE) {
			if (dispatch_oversized(c) < 0)
				return;	/* closed */
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
		if (dispatch_packet(c, srv->rxbuf, (size_t)n) < 0)
			return;	/* closed */
	}
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

static void conn_on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_HELLO)
		conn_close(c, "no hello in time");
}

int conn_new(struct server *srv, int fd, struct conn **out)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!c)
		return -ENOMEM;
	c->srv = srv;
	c->fd = fd;
	c->id = ++srv->next_conn_id;
	c->outq_tail = &c->outq;
	c->pid = -1;
	c->uid = (uid_t)-1;
	c->gid = (gid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
	}
	c->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_on_readable, c);
	c->ev_write = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, conn_on_writable, c);
	c->ev_hello = evtimer_new(srv->base, conn_on_hello_timeout, c);
	if (!c->ev_read || !c->ev_write || !c->ev_hello) {
		if (c->ev_read)
			event_free(c->ev_read);
		if (c->ev_write)
			event_free(c->ev_write);
		if (c->ev_hello)
			event_free(c->ev_hello);
		free(c);
		return -ENOMEM;
	}
	{
		/* A connection that never says Hello must not hold a slot forever. */
		struct timeval timeout = { .tv_sec = srv->cfg->hello_timeout };

		event_add(c->ev_hello, &timeout);
	}
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nr_conns++;
	conn_set_reading(c, true);
	log_debug("conn %u pid %d uid %u: connected", c->id, (int)c->pid, (unsigned int)c->uid);
	*out = c;
	return 0;
}

void conn_grant_add(struct conn *c, struct grant *g)
{
	g->owner = c;
	g->owner_prev = NULL;
	g->owner_next = c->grants;
	if (c->grants)
		c->grants->owner_prev = g;
	c->grants = g;
	c->nr_grants++;
	c->bytes += g->bytes;
}

void conn_grant_del(struct conn *c, struct grant *g)
{
	if (g->owner_prev)
		g->owner_prev->owner_next = g->owner_next;
	else
		c->grants = g->owner_next;
	if (g->owner_next)
		g->owner_next->owner_prev = g->owner_prev;
	g->owner_next = g->owner_prev = NULL;
	g->owner = NULL;
	c->nr_grants--;
	c->bytes -= g->bytes;
}

void conn_grant_release(struct conn *c, struct grant *g)
{
	conn_grant_del(c, g);
	if (g->kind == GRANT_KMALLOC)
		kmalloc_free(g->domain, &g->k);
	else
		vmalloc_free(g->domain, g->v.frames, g->v.nr_frames);
	grant_delete(&c->srv->grants, g);
}

void conn_close(struct conn *c, const char *why)
{
	struct server *srv = c->srv;
	uint64_t nr = c->nr_grants, bytes = c->bytes;

	c->state = CONN_CLOSING;
	while (c->grants)
		conn_grant_release(c, c->grants);
	if (nr)
		log_info("conn %u pid %d uid %u (%s): %s, gave back %" PRIu64 " grants, %" PRIu64
			 " bytes", c->id, (int)c->pid, (unsigned int)c->uid, c->name, why, nr, bytes);
	else
		log_debug("conn %u pid %d uid %u: %s", c->id, (int)c->pid, (unsigned int)c->uid,
			  why);

	while (c->outq) {
		struct conn_packet *p = c->outq;

		c->outq = p->next;
		if (p->fd >= 0)
			close(p->fd);
		free(p);
	}
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_hello);
	close(c->fd);
	/* Everything the client held is free again, the slabs it emptied too:
	 * a client that goes away leaves the free count where it found it
	 * (the caches keep empty slabs only while their users are there). */
	if (c->domain && c->domain->refs > 1)
		domain_shrink(c->domain);
	domain_put(c->domain);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nr_conns--;
	free(c);
	/* A client going away may leave free frames in its domain: like kswapd,
	 * give them back when the frame allocator runs low. */
	mm_balance(&srv->mm);
}

int conn_send(struct conn *c, const void *buf, size_t len, int pass_fd)
{
	struct conn_packet *p;
	int err;

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
	if (c->outq_bytes > CONN_OUTQ_LIMIT)
		conn_set_reading(c, false);
	return 0;
}
