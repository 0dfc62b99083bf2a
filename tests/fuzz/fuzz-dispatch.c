// SPDX-License-Identifier: MIT
/*
 * fuzz-dispatch.c - libFuzzer target for the daemon's request handling: the
 * real dispatcher, allocators, grant table and share table, in process, as
 * tests/lib/inproc.c runs them but without the fork and the event loop's
 * reads. Set up once: a small shmem pool (server_init_unlisted()), paranoid
 * checks on, FUZZ_NR_CONNS connections over socketpairs, half of them of
 * uid 0 (admin: may inspect) and half of FUZZ_OTHER_UID (not admin), each
 * past its Hello.
 *
 * An input is a sequence of packets, each [conn byte][length: 2 bytes,
 * little-endian][length bytes], handed to dispatch_packet() for connection
 * (conn byte % FUZZ_NR_CONNS) as conn_on_readable() would; the replies are
 * read and dropped (descriptors closed). A connection the dispatcher closed
 * (garbage) is replaced by a new one, past its Hello. Share handles are 32
 * random bytes no fuzzer guesses: an ImportShare or a Revoke whose handle is
 * 1 byte long gets the (byte % FUZZ_HANDLES)th handle an Export reply gave
 * instead; so does a grant id below FUZZ_SMALL_ID (in release, Free or
 * Export): the (id % held)th grant the connection holds instead, if any.
 *
 * After every input: domain_check() on every domain (abort() if one fails).
 * Every FUZZ_RESET_EVERY inputs, and at exit: every connection goes, the
 * give-back runs to the end, and the pool must have all its frames free
 * again with no domain, grant or share handle left and no account charged
 * (abort() otherwise).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "conn.h"
#include "dispatch.h"
#include "domain.h"
#include "frame.h"
#include "kmalloc.pb-c.h"
#include "log.h"
#include "memguard.h"
#include "server.h"
#include "settings.h"
#include "share.h"
#include "wire.h"

#define FUZZ_POOL_SIZE	 (32ull << 20) /* 16 frames of 2 MiB */
#define FUZZ_NR_CONNS	 4
#define FUZZ_OTHER_UID	 1000
#define FUZZ_HANDLES	 8
#define FUZZ_RESET_EVERY 64
#define FUZZ_RXBUF	 (1u << 20)
#define FUZZ_SMALL_ID	 0x10000 /* grant ids below: one the connection holds */

struct slot {
	int fd; /* our end */
	struct conn *c;
	uid_t uid;
	uint64_t next_id;
};

static struct settings cfg;
static struct event_base *base;
static struct server srv;
static struct slot slots[FUZZ_NR_CONNS];
static uint64_t free_frames_at_start;
static uint8_t handles[FUZZ_HANDLES][SHARE_HANDLE_SIZE];
static unsigned int nr_handles, next_handle;
static uint8_t *rxbuf;
static unsigned long inputs;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz-dispatch: %s\n", what);
	abort();
}

/* Reads and drops every reply waiting on @s; remembers share handles. */
static void drain(struct slot *s)
{
	int fds[WIRE_SCM_MAX_FDS];
	unsigned int i, nr_fds;

	for (;;) {
		ssize_t n = kmwire_recv(s->fd, rxbuf, FUZZ_RXBUF, fds, WIRE_SCM_MAX_FDS, &nr_fds,
					MSG_DONTWAIT);
		Kmalloc__Reply *r;

		for (i = 0; i < nr_fds; i++)
			close(fds[i]);
		if (n == -EMSGSIZE)
			continue;
		if (n <= 0)
			return;
		r = kmalloc__reply__unpack(NULL, (size_t)n, rxbuf);
		if (!r)
			fail("the daemon sent a reply that does not decode");
		if (r->body_case == KMALLOC__REPLY__BODY_EXPORT_GRANT && r->export_grant &&
		    r->export_grant->handle.len == SHARE_HANDLE_SIZE) {
			memcpy(handles[next_handle], r->export_grant->handle.data,
			       SHARE_HANDLE_SIZE);
			next_handle = (next_handle + 1) % FUZZ_HANDLES;
			if (nr_handles < FUZZ_HANDLES)
				nr_handles++;
		}
		kmalloc__reply__free_unpacked(r, NULL);
	}
}

/* Runs what the event loop would between reads: queued replies written,
 * closing connections' give-back, trims. */
static void loop_turns(void)
{
	unsigned int i;

	for (i = 0; i < FUZZ_NR_CONNS; i++)
		if (slots[i].fd >= 0)
			drain(&slots[i]);
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (i = 0; i < FUZZ_NR_CONNS; i++)
		if (slots[i].fd >= 0)
			drain(&slots[i]);
}

static void send_packet(struct slot *s, const uint8_t *buf, size_t len)
{
	if (len > cfg.max_packet) {
		dispatch_oversized(s->c);
		return;
	}
	/* The daemon reads into srv->rxbuf: the dispatcher may rely on that. */
	memcpy(srv.rxbuf, buf, len);
	dispatch_packet(s->c, srv.rxbuf, len);
}

static void hello(struct slot *s)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello h = KMALLOC__HELLO__INIT;
	uint8_t buf[128];
	size_t len;

	h.version = 1;
	h.name = "fuzz";
	req.id = ++s->next_id;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &h;
	len = kmalloc__request__pack(&req, buf);
	send_packet(s, buf, len);
	if (s->c->state != CONN_READY)
		fail("Hello did not make the connection ready");
	drain(s);
}

/* A new connection in @s, of s->uid, past its Hello. */
static void slot_connect(struct slot *s)
{
	struct account *acct;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair");
	/* Room for big replies (inspect pages), so they seldom queue. */
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &(int){ 4 << 20 }, sizeof(int));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &(int){ 4 << 20 }, sizeof(int));
	if (server_add_connection(&srv, sv[1]) < 0)
		fail("server_add_connection");
	s->fd = sv[0];
	s->c = TAILQ_LAST(&srv.conns, conn_list);
	s->next_id = 0;
	if (s->c->uid != s->uid) {
		/* Another uid than ours (SO_PEERCRED): as conn_setup() does. */
		struct conn *c = s->c;

		acct = account_get(&srv.accounts, s->uid);
		if (!acct)
			fail("account_get");
		c->account->connections--;
		account_put(&srv.accounts, c->account);
		c->account = acct;
		acct->connections++;
		acct->limits = c->limits;
		c->uid = s->uid;
		c->gid = s->uid;
		c->admin = false;
	}
	hello(s);
}

static void slot_disconnect(struct slot *s)
{
	if (s->c && s->c->state != CONN_CLOSING)
		conn_close(s->c, "fuzz reset");
	s->c = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Connections the loop closed (a failed send) or freed are replaced. */
static void slots_fixup(void)
{
	unsigned int i;
	struct conn *c;

	for (i = 0; i < FUZZ_NR_CONNS; i++) {
		TAILQ_FOREACH(c, &srv.conns, link)
			if (c == slots[i].c)
				break;
		if (c && c->state != CONN_CLOSING)
			continue;
		if (!c)
			slots[i].c = NULL; /* freed: nothing to close */
		slot_disconnect(&slots[i]);
		slot_connect(&slots[i]);
	}
}

static void check_domains(void)
{
	struct domain *d;

	TAILQ_FOREACH(d, &srv.mm.domains, link)
		if (domain_check(d) < 0)
			fail("domain_check() failed");
}

/* Every connection goes and everything must come back; then new ones,
 * if @reconnect. */
static void reset(bool reconnect)
{
	struct account *acct;
	unsigned int i;
	int turns;

	for (i = 0; i < FUZZ_NR_CONNS; i++)
		slot_disconnect(&slots[i]);
	conn_reap_all(&srv);
	for (turns = 0; mm_trim(&srv.mm, UINT64_MAX); turns++)
		if (turns > 100000)
			fail("mm_trim() never ends");
	event_base_loop(base, EVLOOP_NONBLOCK);
	if (srv.nr_conns)
		fail("connections left after the reset");
	if (srv.mm.nr_domains)
		fail("domains left after the reset");
	if (srv.grants.count)
		fail("grants left after the reset");
	if (srv.grants.shares && (srv.grants.shares->nr_handles || srv.grants.shares->nr_memobjs))
		fail("share handles or memobjs left after the reset");
	if (frame_nr_free(&srv.mm.frames) != free_frames_at_start)
		fail("the pool's free frames are not back after the reset");
	TAILQ_FOREACH(acct, &srv.accounts.list, link)
		if (acct->connections || acct->grants || acct->bytes || acct->handles)
			fail("an account is still charged after the reset");
	nr_handles = next_handle = 0;
	for (i = 0; reconnect && i < FUZZ_NR_CONNS; i++)
		slot_connect(&slots[i]);
}

static void fuzz_fini(void)
{
	reset(false);
	server_fini(&srv);
	event_base_free(base);
	settings_fini(&cfg);
	free(rxbuf);
}

static void fuzz_init(void)
{
	unsigned int i;

	settings_defaults(&cfg);
	cfg.pool_size = FUZZ_POOL_SIZE;
	cfg.backing = POOL_BACKING_SHMEM;
	cfg.paranoid = true;
	cfg.allow_all = true;
	cfg.uid_max_share = 100;
	log_init(getenv("FUZZ_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	if (memguard_init() < 0)
		fail("memguard_init");
	base = event_base_new();
	rxbuf = malloc(FUZZ_RXBUF);
	if (!base || !rxbuf)
		fail("out of memory");
	if (server_init_unlisted(&srv, &cfg, base) < 0)
		fail("server_init_unlisted");
	free_frames_at_start = frame_nr_free(&srv.mm.frames);
	for (i = 0; i < FUZZ_NR_CONNS; i++) {
		slots[i].fd = -1;
		slots[i].uid = i % 2 ? FUZZ_OTHER_UID : 0;
		slot_connect(&slots[i]);
	}
	atexit(fuzz_fini);
}

/* A grant id below FUZZ_SMALL_ID: the (id % held)th grant @c holds
 * instead, if it holds any. True when it changed. */
static bool substitute_id(const struct conn *c, uint64_t *id)
{
	if (*id >= FUZZ_SMALL_ID || !c->grants.nr)
		return false;
	*id = grant_set_at(&c->grants, (uint32_t)(*id % c->grants.nr))->id;
	return true;
}

/* Grant ids and handles no fuzzer guesses, made real (see the top).
 * Returns the packet to send (@buf or @out), its length in *len. */
static const uint8_t *substitute(const struct conn *c, const uint8_t *buf, size_t *len,
				 uint8_t *out, size_t cap)
{
	ProtobufCBinaryData *h = NULL;
	const uint8_t *ret = buf;
	Kmalloc__Request *req;
	uint8_t *old = NULL;
	bool changed = false;
	size_t i;

	req = kmalloc__request__unpack(NULL, *len, buf);
	if (!req)
		return buf;
	for (i = 0; i < req->n_release; i++)
		changed |= substitute_id(c, &req->release[i]);
	if (req->body_case == KMALLOC__REQUEST__BODY_FREE && req->free)
		for (i = 0; i < req->free->n_grants; i++)
			changed |= substitute_id(c, &req->free->grants[i]);
	if (req->body_case == KMALLOC__REQUEST__BODY_EXPORT_GRANT && req->export_grant)
		changed |= substitute_id(c, &req->export_grant->grant);
	if (req->body_case == KMALLOC__REQUEST__BODY_IMPORT_SHARE && req->import_share)
		h = &req->import_share->handle;
	else if (req->body_case == KMALLOC__REQUEST__BODY_REVOKE && req->revoke)
		h = &req->revoke->handle;
	if (h && h->len == 1 && nr_handles) {
		old = h->data;
		h->data = handles[old[0] % nr_handles];
		h->len = SHARE_HANDLE_SIZE;
		changed = true;
	}
	if (changed && kmalloc__request__get_packed_size(req) <= cap) {
		*len = kmalloc__request__pack(req, out);
		ret = out;
	}
	if (old) {
		h->data = old; /* freed with the request */
		h->len = 1;
	}
	kmalloc__request__free_unpacked(req, NULL);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t packet[1 << 16];
	static bool ready;

	if (!ready) {
		fuzz_init();
		ready = true;
	}
	while (size >= 3) {
		struct slot *s = &slots[data[0] % FUZZ_NR_CONNS];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8, sent;
		const uint8_t *p;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		sent = len;
		p = substitute(s->c, data, &sent, packet, sizeof(packet));
		send_packet(s, p, sent);
		data += len;
		size -= len;
		/* Before the loop runs: it may free a closing connection. */
		if (s->c->state == CONN_CLOSING) {
			slot_disconnect(s);
			slot_connect(s);
		}
		loop_turns();
		slots_fixup();
	}
	check_domains();
	if (++inputs % FUZZ_RESET_EVERY == 0)
		reset(true);
	return 0;
}
