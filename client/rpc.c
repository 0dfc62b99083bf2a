// SPDX-License-Identifier: MIT
/*
 * rpc.c - request ids, sending, and matching out-of-order replies to the
 * threads that wait for them; the only file of libkmclient that sees the
 * generated protobuf-c types.
 *
 * Threading: leader/follower. A caller registers a struct kmc_call (on its own
 * stack) in the pending hash under c->lock, sends its packet under
 * c->send_lock, then waits. If no thread is reading the socket it becomes the
 * reader: it receives packets and hands each reply to the call with the same
 * id until its own has come, then passes the reader role to another pending
 * call by signalling its condition variable. Invariant: while calls are
 * pending and nobody reads, some pending thread has been signalled or has not
 * reached its wait yet, and will check c->reading before sleeping.
 *
 * The reply's id is read from the raw packet first, so a reply nobody waits
 * for is dropped undecoded with its fds closed; the wanted one is unpacked
 * straight into the waiting call's on-stack arena. An unasked Reply (id 0)
 * is a refusal (error set: the connection is over) or an Event: the reader
 * queues its revoked import ids (c->ev_ids) and whoever leaves the rpc
 * layer next without holding a lock applies them (share.c). kmc_rpc_poll()
 * reads what the socket holds without blocking, for calls that would not
 * otherwise read (share.c's kmc_share_poll()).
 * Hot-path cost of one uncontended call: one sendmsg, one recvmsg, no malloc
 * (replies of up to about 1 KiB decode into the arena), no futex syscall.
 *
 * A failed connection (EOF, ECONNRESET, any receive error, a send error other
 * than a transient one) fails every pending and every later call; it is never
 * reopened.
 *
 * Deferred release: slab.c, kmalloc.c and vmalloc.c queue the ids of grants
 * they let go of here (kmc_rpc_release()); every request takes the queue
 * along in Request.release (as much of it as fits the daemon's max_packet).
 * A queue that reaches KMC_RELEASE_FLUSH ids, or a vfree or large kfree
 * that wants its memory back promptly, goes out at once with a Nop that
 * nobody waits for (its id carries RPC_ASYNC_BIT; the reader drops its
 * answer). At most KMC_ASYNC_MAX of those are unanswered at once: a sender
 * beyond that reads answers first, so the daemon never has to stop reading
 * a client that does not read (its max_queued). Invariant: an id leaves the queue only once a
 * packet carrying it has gone out, or the connection has failed (the daemon
 * gives everything back when the socket closes). Senders take turns under
 * send_lock and copy the queue under it, so no id rides on two packets, and
 * one whose send fails stays queued for the next request: while the
 * connection lives, no deferred kfree is lost.
 */
#include "config.h"
#include "kmclient-private.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "kmalloc.pb-c.h"
#include "wire.h"

#define RPC_ARENA_SIZE 1024 /* bytes: fits every small reply decoded */
#define RPC_SENDBUF    WIRE_DEFAULT_MAX_PACKET
#define RPC_MIN_PACKET 256	    /* the daemon's smallest max_packet: a Nop and ids fit */
#define RPC_ASYNC_BIT  (1ull << 63) /* in the id of a request nobody waits for */

/* Bump allocator for protobuf-c: decoding a reply costs no malloc unless it
 * outgrows the arena (bulk replies); free() is a no-op inside the arena. */
struct rpc_arena {
	ProtobufCAllocator base;
	size_t used;
	_Alignas(16) unsigned char buf[RPC_ARENA_SIZE];
};

struct kmc_call {
	uint64_t id;
	struct kmc_call *next; /* pending hash chain */
	pthread_cond_t cond;   /* signalled: done, or become the reader */
	bool done;
	int err;	       /* 0, or -errno of the transport */
	Kmalloc__Reply *reply; /* decoded into arena when err == 0 */
	int fds[WIRE_MAX_FDS];
	unsigned int nr_fds;
	struct rpc_arena arena;
};

static void *arena_alloc(void *data, size_t size)
{
	struct rpc_arena *a = data;
	size_t need = (size + 15) & ~(size_t)15;

	if (need >= size && need <= sizeof(a->buf) - a->used) {
		void *p = a->buf + a->used;

		a->used += need;
		return p;
	}
	return malloc(size);
}

static void arena_free(void *data, void *p)
{
	struct rpc_arena *a = data;

	if ((unsigned char *)p >= a->buf && (unsigned char *)p < a->buf + sizeof(a->buf))
		return;
	free(p);
}

/* ---- connection state ---------------------------------------------------- */

int kmc_rpc_init(struct km_client *c)
{
	pthread_cond_init(&c->async_cond, NULL);
	c->recvbuf = malloc(WIRE_MAX_REPLY);
	c->sendbuf = malloc(RPC_SENDBUF);
	if (!c->recvbuf || !c->sendbuf)
		return -ENOMEM;
	c->sendcap = RPC_SENDBUF;
	return 0;
}

void kmc_rpc_destroy(struct km_client *c)
{
	free(c->ev_ids);
	c->ev_ids = NULL;
	free(c->recvbuf);
	free(c->sendbuf);
	c->recvbuf = NULL;
	c->sendbuf = NULL;
	pthread_cond_destroy(&c->async_cond);
}

/* Grant ids that fit in one request besides the release queue: the protocol
 * caps a list at 1024, the daemon's max_packet may cap it lower (an id costs
 * at most 11 bytes packed). */
size_t kmc_rpc_max_ids(const struct km_client *c)
{
	size_t room = c->sendcap > 512 + KMC_RELEASE_MAX * 11
			      ? (c->sendcap - 512 - KMC_RELEASE_MAX * 11) / 11
			      : 1;

	return room < KMC_MAX_IDS ? room : KMC_MAX_IDS;
}

static struct kmc_call **pending_bucket(struct km_client *c, uint64_t id)
{
	return &c->pending[id & (KMC_PENDING_BUCKETS - 1)];
}

static void pending_add_locked(struct km_client *c, struct kmc_call *call)
{
	struct kmc_call **b = pending_bucket(c, call->id);

	call->next = *b;
	*b = call;
	c->nr_pending++;
}

static struct kmc_call *pending_take_locked(struct km_client *c, uint64_t id)
{
	struct kmc_call **pp;

	for (pp = pending_bucket(c, id); *pp; pp = &(*pp)->next) {
		struct kmc_call *call = *pp;

		if (call->id == id) {
			*pp = call->next;
			c->nr_pending--;
			return call;
		}
	}
	return NULL;
}

/* Lets another pending call take the reader role if nobody holds it. */
static void handoff_locked(struct km_client *c)
{
	if (c->reading)
		return;
	for (unsigned int i = 0; c->nr_pending && i < KMC_PENDING_BUCKETS; i++)
		if (c->pending[i]) {
			pthread_cond_signal(&c->pending[i]->cond);
			return;
		}
	/* Or a thread waiting for room among the requests sent unanswered. */
	pthread_cond_broadcast(&c->async_cond);
}

static void conn_fail_locked(struct km_client *c, int err)
{
	if (!c->dead) {
		kmc_dbg(c, "connection lost: %s", strerror(-err));
		c->dead = true;
		c->dead_err = err;
	}
	/* Nothing can be sent any more: the daemon gives the queued grants
	 * back with everything else when the socket closes (at once if it hung
	 * up, at km_disconnect() otherwise). */
	c->nr_release = 0;
	c->async_inflight = 0;
	pthread_cond_broadcast(&c->async_cond);
	for (unsigned int i = 0; i < KMC_PENDING_BUCKETS; i++) {
		while (c->pending[i]) {
			struct kmc_call *call = c->pending[i];

			c->pending[i] = call->next;
			call->err = c->dead_err;
			call->done = true;
			pthread_cond_signal(&call->cond);
		}
	}
	c->nr_pending = 0;
}

/* ---- receiving ----------------------------------------------------------- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* Reply.id (field 1) and Reply.error (field 2) from the raw packet,
 * wherever the encoder put them. An absent id is 0 (proto3 omits zeros): an
 * unasked event, or with an error the daemon refusing the connection. */
static bool peek_reply_id(const uint8_t *p, size_t len, uint64_t *id, int64_t *error)
{
	const uint8_t *end = p + len;
	uint64_t key, v;

	*id = 0;
	*error = 0;
	while (p < end) {
		if (!read_varint(&p, end, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!read_varint(&p, end, &v))
				return false;
			if (key >> 3 == 1)
				*id = v;
			else if (key >> 3 == 2)
				*error = (int32_t)v;
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 2:
			if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		default:
			return false;
		}
	}
	return true;
}

static void close_fds(const int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

static int refusal_pending(struct km_client *c);

/* An unasked Reply without error: an Event's revoked import ids go on
 * c->ev_ids for share.c to apply once no lock is held. */
static void unasked_locked(struct km_client *c, size_t n)
{
	Kmalloc__Reply *r = kmalloc__reply__unpack(NULL, n, c->recvbuf);
	const Kmalloc__Event *ev;

	if (!r || r->body_case != KMALLOC__REPLY__BODY_EVENT) {
		kmc_dbg(c, "dropping an unasked reply that is no event");
		goto out;
	}
	ev = r->event;
	kmc_dbg(c, "event: %zu import(s) revoked", ev->n_revoked);
	if (ev->n_revoked > c->cap_ev - c->nr_ev) {
		size_t cap = c->nr_ev + ev->n_revoked + 16;
		uint64_t *ids = realloc(c->ev_ids, cap * sizeof(*ids));

		if (!ids) {
			/* The imports stay mapped; they are no longer held. */
			kmc_dbg(c, "no memory for %zu revoked ids", ev->n_revoked);
			goto out;
		}
		c->ev_ids = ids;
		c->cap_ev = cap;
	}
	for (size_t i = 0; i < ev->n_revoked; i++) {
		kmc_dbg(c, "import grant %" PRIu64 " revoked by its exporter", ev->revoked[i]);
		c->ev_ids[c->nr_ev + i] = ev->revoked[i];
	}
	__atomic_store_n(&c->nr_ev, c->nr_ev + ev->n_revoked, __ATOMIC_RELAXED);
out:
	if (r)
		kmalloc__reply__free_unpacked(r, NULL);
}

/*
 * Called by the reader with c->lock held; drops it around recvmsg. @flags:
 * 0, or MSG_DONTWAIT to return false at once when nothing is there (also
 * false once the connection failed).
 */
static bool read_one_locked(struct km_client *c, int flags)
{
	int fds[WIRE_MAX_FDS];
	unsigned int nr_fds = 0;
	struct kmc_call *call;
	int64_t error;
	uint64_t id;
	ssize_t n;

	pthread_mutex_unlock(&c->lock);
	n = kmwire_recv(c->sock, c->recvbuf, WIRE_MAX_REPLY, fds, WIRE_MAX_FDS, &nr_fds, flags);
	pthread_mutex_lock(&c->lock);

	if (n == -EAGAIN && (flags & MSG_DONTWAIT))
		return false;
	/* The protocol never sends an empty packet: 0 is the daemon hanging up. */
	if (n == -ECONNRESET || n == 0) {
		/* A daemon that refused us and closed with our request unread
		 * makes the kernel report ECONNRESET once, before the refusal
		 * it queued ahead of that. */
		int refusal = n ? refusal_pending(c) : 0;

		conn_fail_locked(c, refusal ? refusal : -ECONNRESET);
		return false;
	}
	if (n < 0) {
		/* A lost reply (EMSGSIZE) would leave its caller waiting forever. */
		close_fds(fds, nr_fds);
		conn_fail_locked(c, n == -EMSGSIZE ? -EPROTO : (int)n);
		return false;
	}
	if (!peek_reply_id(c->recvbuf, n, &id, &error)) {
		close_fds(fds, nr_fds);
		conn_fail_locked(c, -EPROTO);
		return false;
	}
	if (!id && error > 0 && error < 4096) {
		/* The daemon refuses this connection (EACCES) and hangs up. */
		close_fds(fds, nr_fds);
		conn_fail_locked(c, -(int)error);
		return false;
	}
	if (id & RPC_ASYNC_BIT) {
		/* The answer to a request sent without waiting: room for one
		 * more. Its refusals (ids not held) can only be our bugs. */
		if (c->async_inflight)
			c->async_inflight--;
		pthread_cond_broadcast(&c->async_cond);
		close_fds(fds, nr_fds);
		return true;
	}
	if (!id) {
		close_fds(fds, nr_fds);
		unasked_locked(c, (size_t)n);
		return true;
	}
	call = pending_take_locked(c, id);
	if (!call) {
		kmc_dbg(c, "dropping reply %" PRIu64 " that nobody waits for", id);
		close_fds(fds, nr_fds);
		return true;
	}
	call->reply = kmalloc__reply__unpack(&call->arena.base, n, c->recvbuf);
	if (!call->reply) {
		call->err = -EPROTO;
		close_fds(fds, nr_fds);
	} else {
		memcpy(call->fds, fds, sizeof(int) * nr_fds);
		call->nr_fds = nr_fds;
	}
	call->done = true;
	pthread_cond_signal(&call->cond);
	return true;
}

/* Applies the revocations a reader queued, if any; called with no lock held. */
static void events_apply(struct km_client *c)
{
	if (__builtin_expect(__atomic_load_n(&c->nr_ev, __ATOMIC_RELAXED) != 0, 0))
		kmc_share_events(c);
}

void kmc_rpc_poll(struct km_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->reading && !c->dead) {
		c->reading = true;
		while (read_one_locked(c, MSG_DONTWAIT))
			;
		c->reading = false;
		handoff_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	events_apply(c);
}

uint64_t *kmc_rpc_take_events(struct km_client *c, size_t *n)
{
	uint64_t *ids;

	pthread_mutex_lock(&c->lock);
	ids = c->ev_ids;
	*n = c->nr_ev;
	c->ev_ids = NULL;
	__atomic_store_n(&c->nr_ev, 0, __ATOMIC_RELAXED);
	c->cap_ev = 0;
	pthread_mutex_unlock(&c->lock);
	return ids;
}

/* After a failed send: the refusal (a Reply with id 0 and an error) the
 * daemon may have left in our queue before closing, as -errno, or 0. */
static int refusal_pending(struct km_client *c)
{
	uint8_t buf[512];
	unsigned int nr_fds = 0;
	int fds[WIRE_MAX_FDS];
	int64_t error;
	uint64_t id;
	ssize_t n;

	n = kmwire_recv(c->sock, buf, sizeof(buf), fds, WIRE_MAX_FDS, &nr_fds, MSG_DONTWAIT);
	close_fds(fds, nr_fds);
	if (n > 0 && peek_reply_id(buf, (size_t)n, &id, &error) && !id && error > 0 && error < 4096)
		return -(int)error;
	return 0;
}

/* ---- calling ------------------------------------------------------------- */

/* A send that failed for this packet alone (too big, or the kernel short of
 * memory for it): nothing went out, the call fails, the connection stays.
 * Any other send error leaves a socket we cannot use. */
static bool send_err_transient(int err)
{
	return err == -E2BIG || err == -EMSGSIZE || err == -ENOBUFS || err == -ENOMEM ||
	       err == -EAGAIN;
}

/* The packed size of @req with its release list cut to what fits in
 * c->sendcap beside the body: the whole queue unless the daemon's max_packet
 * is tiny. Over c->sendcap only when the body alone does not fit. */
static size_t request_fit(const struct km_client *c, Kmalloc__Request *req)
{
	size_t len = kmalloc__request__get_packed_size(req);

	while (len > c->sendcap && req->n_release) {
		req->n_release--;
		len = kmalloc__request__get_packed_size(req);
	}
	return len;
}

/* Under send_lock and c->lock: the first @n queued ids went out. Only a
 * sender removes ids and senders take turns, so they are still the ones
 * rpc_call() copied, unless a failed connection has emptied the queue. */
static void release_commit_locked(struct km_client *c, size_t n)
{
	if (c->dead || !n)
		return;
	assert(n <= c->nr_release);
	c->nr_release -= n;
	memmove(c->release, c->release + n, sizeof(c->release[0]) * c->nr_release);
}

static void call_init(struct kmc_call *call)
{
	call->id = 0; /* not registered */
	call->done = false;
	call->err = 0;
	call->reply = NULL;
	call->nr_fds = 0;
	call->arena.base.alloc = arena_alloc;
	call->arena.base.free = arena_free;
	call->arena.base.allocator_data = &call->arena;
	call->arena.used = 0;
	pthread_cond_init(&call->cond, NULL);
}

/* Registers @call under a new id (left 0 on a dead connection) and sends
 * @req with as much of the release queue as fits. Senders take turns: the queue is copied, sent and
 * committed under send_lock (see the top of this file). Returns 0 or -errno, with c->lock held
 * either way. */
static int call_send(struct km_client *c, Kmalloc__Request *req, struct kmc_call *call)
{
	uint64_t release[KMC_RELEASE_MAX];
	size_t len;
	int err;

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->send_lock);
		return c->dead_err;
	}
	do
		call->id = ++c->next_id;
	while (!call->id);
	pending_add_locked(c, call);
	req->n_release = c->nr_release;
	memcpy(release, c->release, sizeof(release[0]) * c->nr_release);
	pthread_mutex_unlock(&c->lock);
	req->id = call->id;
	req->release = release;

	len = request_fit(c, req);
	if (len > c->sendcap) {
		err = -E2BIG;
	} else {
		kmalloc__request__pack(req, c->sendbuf);
		err = kmwire_send(c->sock, c->sendbuf, len, NULL, 0, 0);
	}
	pthread_mutex_lock(&c->lock);
	if (!err)
		release_commit_locked(c, req->n_release);
	pthread_mutex_unlock(&c->send_lock);
	return err;
}

/* A send that failed with @err: the call is forgotten, and a broken
 * connection fails for good. Returns the error the caller sees. */
static int call_unsent_locked(struct km_client *c, struct kmc_call *call, int err)
{
	if (!call->done)
		pending_take_locked(c, call->id);
	if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN) {
		/* A daemon that refused us said why before hanging up. */
		int refusal = refusal_pending(c);

		conn_fail_locked(c, refusal ? refusal : -ECONNRESET);
		err = c->dead_err;
	} else if (!send_err_transient(err)) {
		conn_fail_locked(c, err);
		err = c->dead_err;
	}
	handoff_locked(c);
	if (call->done && call->reply)
		kmalloc__reply__free_unpacked(call->reply, &call->arena.base);
	call->reply = NULL;
	close_fds(call->fds, call->nr_fds);
	call->nr_fds = 0;
	return err;
}

/* Sends @req (its id and release list are filled in here) and waits for the
 * answer. Returns 0 with call->reply set (the caller ends with call_end()),
 * or -errno when the transport failed. */
static int rpc_call(struct km_client *c, Kmalloc__Request *req, struct kmc_call *call)
{
	int err;

	call_init(call);
	err = call_send(c, req, call);
	if (err) {
		if (call->id)
			err = call_unsent_locked(c, call, err);
		pthread_mutex_unlock(&c->lock);
		pthread_cond_destroy(&call->cond);
		return err;
	}
	while (!call->done) {
		if (c->reading) {
			pthread_cond_wait(&call->cond, &c->lock);
			continue;
		}
		c->reading = true;
		read_one_locked(c, 0);
		c->reading = false;
	}
	handoff_locked(c);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&call->cond);
	events_apply(c);
	return call->err;
}

static void call_end(struct kmc_call *call)
{
	close_fds(call->fds, call->nr_fds);
	call->nr_fds = 0;
	if (call->reply)
		kmalloc__reply__free_unpacked(call->reply, &call->arena.base);
	call->reply = NULL;
}

/* Common checks on an answered call: refused release ids (logged), the error
 * reply (-errno), and the body we expect. */
static int reply_check(struct km_client *c, struct kmc_call *call, Kmalloc__Reply__BodyCase body)
{
	const Kmalloc__Reply *r = call->reply;

	for (size_t i = 0; i < r->n_release_failed; i++)
		kmc_dbg(c, "daemon refused release of grant %" PRIu64, r->release_failed[i]);
	if (r->error) {
		kmc_dbg(c, "request %" PRIu64 " failed: %s (%s)", call->id, strerror(r->error),
			r->message ? r->message : "");
		return r->error > 0 && r->error < 4096 ? -r->error : -EPROTO;
	}
	if (r->body_case != body) {
		kmc_dbg(c, "reply %" PRIu64 " has body %d, expected %d", call->id,
			(int)r->body_case, (int)body);
		return -EPROTO;
	}
	return 0;
}

static bool range_in_pool(const struct km_client *c, uint64_t phys, uint64_t size)
{
	return size && phys <= c->pool_size && size <= c->pool_size - phys;
}

/* ---- typed requests ------------------------------------------------------ */

/* Gives back the grants of a reply we refuse (a daemon bug): nothing leaks. */
static void free_grants(struct km_client *c, const struct kmc_grant *g, uint32_t count)
{
	uint64_t ids[64];
	uint32_t n = 0;

	for (uint32_t i = 0; i < count; i++) {
		ids[n++] = g[i].id;
		if (n == 64 || i + 1 == count) {
			kmc_rpc_give_back(c, ids, n);
			n = 0;
		}
	}
}

int kmc_rpc_hello(struct km_client *c, struct kmc_welcome *out, int *memfd)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	const Kmalloc__Welcome *w;
	struct kmc_call call;
	int err;

	hello.version = KM_PROTOCOL_VERSION;
	hello.name = program_invocation_short_name;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_WELCOME);
	if (err)
		goto out;
	w = call.reply->welcome;
	if (w->version != KM_PROTOCOL_VERSION || call.nr_fds != 1 || !w->pool_size ||
	    w->frame_size < KM_PAGE_SIZE || (w->frame_size & (w->frame_size - 1)) ||
	    w->pool_size % w->frame_size || (w->max_packet && w->max_packet < RPC_MIN_PACKET)) {
		kmc_dbg(c,
			"bad welcome: version %u, %u fds, pool %" PRIu64 ", frame %" PRIu64
			", max packet %u",
			w->version, call.nr_fds, w->pool_size, w->frame_size, w->max_packet);
		err = -EPROTO;
		goto out;
	}
	out->pool_size = w->pool_size;
	out->frame_size = w->frame_size;
	out->hugetlb = w->hugetlb;
	out->domain = w->domain;
	out->max_packet = w->max_packet;
	*memfd = call.fds[0];
	call.nr_fds = 0;

	/* Requests never need more than the default packet; respect a smaller cap. */
	if (w->max_packet && w->max_packet < c->sendcap)
		c->sendcap = w->max_packet;
out:
	call_end(&call);
	return err;
}

/* A slab grant must be exactly one slab of the class that serves @size. */
static bool slab_grant_ok(uint64_t size, const Kmalloc__Grant *g)
{
	int idx = kms_class_index(size);

	return idx >= 0 && g->size == (uint64_t)KM_PAGE_SIZE << kms_class_order[idx] &&
	       g->object_size == kms_class_size[idx] && g->objects == kms_class_objs[idx] &&
	       !(g->phys & (KM_PAGE_SIZE - 1));
}

/* A shareable grant: whole frames, contiguous, in the pool, the memfd with it. */
static bool shared_grant_ok(const struct km_client *c, uint64_t size, const Kmalloc__Grant *g,
			    unsigned int nr_fds)
{
	return g->memfd && nr_fds == 1 && g->size >= size && !(g->size % c->frame_size) &&
	       !(g->phys % c->frame_size);
}

/* Alloc or SlabAlloc: @count grants into @out, all checked, or -errno and
 * none. @memfd: NULL, or for a KM_GFP_SHARED Alloc (count 1) where its
 * memfd goes (the caller closes it). */
static int alloc_call(struct km_client *c, bool slabs, uint64_t size, km_gfp_t gfp, uint32_t count,
		      struct kmc_grant *out, int *memfd)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Alloc alloc = KMALLOC__ALLOC__INIT;
	Kmalloc__SlabAlloc slab = KMALLOC__SLAB_ALLOC__INIT;
	const Kmalloc__AllocReply *a;
	bool have_grants = false;
	struct kmc_call call;
	uint32_t i;
	int err;

	if (slabs) {
		slab.size = size;
		slab.gfp = gfp;
		slab.count = count;
		req.body_case = KMALLOC__REQUEST__BODY_SLAB_ALLOC;
		req.slab_alloc = &slab;
	} else {
		alloc.size = size;
		alloc.gfp = gfp;
		alloc.count = count;
		req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
		req.alloc = &alloc;
	}
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call,
			  slabs ? KMALLOC__REPLY__BODY_SLAB_ALLOC : KMALLOC__REPLY__BODY_ALLOC);
	if (err)
		goto out;
	a = slabs ? call.reply->slab_alloc : call.reply->alloc;
	if (a->n_grants != count) {
		kmc_dbg(c, "alloc of %u got %zu grants", count, a->n_grants);
		err = -EPROTO;
		goto out;
	}
	have_grants = true;
	for (i = 0; i < count; i++) {
		const Kmalloc__Grant *g = a->grants[i];
		bool ok = memfd	  ? shared_grant_ok(c, size, g, call.nr_fds)
			  : slabs ? slab_grant_ok(size, g)
				  : g->size >= size && !g->memfd;

		out[i].id = g->id;
		out[i].phys = g->phys;
		out[i].size = g->size;
		if (!range_in_pool(c, g->phys, g->size) || !ok) {
			kmc_dbg(c, "bad grant %" PRIu64 ": phys %#" PRIx64 " size %" PRIu64 "%s",
				g->id, g->phys, g->size,
				memfd && !g->memfd ? " (the daemon does not know KM_GFP_SHARED)"
				: memfd && call.nr_fds != 1 ? " (no memfd with it)"
							    : "");
			err = -EPROTO;
		}
	}
	if (!err && memfd) {
		*memfd = call.fds[0];
		call.nr_fds = 0;
	}
out:
	call_end(&call);
	if (err && have_grants)
		free_grants(c, out, count);
	return err;
}

int kmc_rpc_alloc(struct km_client *c, uint64_t size, km_gfp_t gfp, uint32_t count,
		  struct kmc_grant *out)
{
	return alloc_call(c, false, size, gfp, count, out, NULL);
}

int kmc_rpc_alloc_shared(struct km_client *c, uint64_t size, km_gfp_t gfp, struct kmc_grant *out,
			 int *memfd)
{
	return alloc_call(c, false, size, gfp | KM___GFP_SHARED, 1, out, memfd);
}

int kmc_rpc_slabs(struct km_client *c, uint64_t size, km_gfp_t gfp, uint32_t count,
		  struct kmc_grant *out)
{
	return alloc_call(c, true, size, gfp, count, out, NULL);
}

int kmc_rpc_vmalloc(struct km_client *c, uint64_t size, km_gfp_t gfp, uint64_t vaddr,
		    const char *caller, uint64_t *id, uint32_t *frames, uint32_t nr_frames,
		    int *memfd)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Vmalloc vm = KMALLOC__VMALLOC__INIT;
	const Kmalloc__VmallocReply *v;
	uint64_t nr_pool_frames = c->pool_size / c->frame_size;
	struct kmc_call call;
	uint64_t grant = 0;
	int err;

	vm.size = size;
	vm.gfp = memfd ? gfp | KM___GFP_SHARED : gfp & ~KM___GFP_SHARED;
	vm.vaddr = vaddr;
	vm.caller = (char *)caller;
	req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
	req.vmalloc = &vm;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_VMALLOC);
	if (err)
		goto out;
	v = call.reply->vmalloc;
	grant = v->id;
	if (v->n_frames != nr_frames) {
		kmc_dbg(c, "vmalloc grant %" PRIu64 " has %zu frames, expected %u", v->id,
			v->n_frames, nr_frames);
		err = -EPROTO;
		goto out;
	}
	if (memfd ? !v->memfd || call.nr_fds != 1 : v->memfd) {
		kmc_dbg(c, "vmalloc grant %" PRIu64 ": %s", v->id,
			!memfd	   ? "a memfd nobody asked for"
			: v->memfd ? "no memfd with it"
				   : "no memfd (the daemon does not know KM_GFP_SHARED)");
		err = -EPROTO;
		goto out;
	}
	for (uint32_t i = 0; i < nr_frames; i++) {
		if (v->frames[i] >= nr_pool_frames) {
			kmc_dbg(c, "vmalloc grant %" PRIu64 ": frame %u outside the pool", v->id,
				v->frames[i]);
			err = -EPROTO;
			goto out;
		}
		frames[i] = v->frames[i];
	}
	*id = v->id;
	if (memfd) {
		*memfd = call.fds[0];
		call.nr_fds = 0;
	}
out:
	call_end(&call);
	if (err == -EPROTO && grant)
		kmc_rpc_give_back(c, &grant, 1);
	return err;
}

int kmc_rpc_free(struct km_client *c, const uint64_t *ids, size_t n)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Free fr = KMALLOC__FREE__INIT;
	const Kmalloc__FreeReply *f;
	struct kmc_call call;
	int err;

	if (!n)
		return 0;
	assert(n <= KMC_MAX_IDS);
	fr.n_grants = n;
	fr.grants = (uint64_t *)ids;
	req.body_case = KMALLOC__REQUEST__BODY_FREE;
	req.free = &fr;
	err = rpc_call(c, &req, &call);
	if (err) {
		kmc_dbg(c, "free of %zu grants failed: %s", n, strerror(-err));
		return err;
	}
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_FREE);
	if (!err) {
		f = call.reply->free;
		for (size_t i = 0; i < f->n_unknown; i++)
			kmc_dbg(c, "daemon does not know grant %" PRIu64 " (double free?)",
				f->unknown[i]);
	}
	call_end(&call);
	return err;
}

void kmc_rpc_give_back(struct km_client *c, const uint64_t *ids, size_t n)
{
	size_t i;

	if (!n || kmc_rpc_free(c, ids, n) == 0)
		return;
	/* A Free that did not get through (the daemon knows nothing of it, or
	 * the connection failed, which gave everything back): the ids ride on
	 * later requests instead, so none is lost while the connection lives. */
	for (i = 0; i < n; i++)
		kmc_rpc_release(c, ids[i]);
}

int kmc_rpc_nop(struct km_client *c)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	struct kmc_call call;
	int err;

	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_NOP);
	call_end(&call);
	return err;
}

/* Waits, reading the socket if nobody else is, until fewer than
 * KMC_ASYNC_MAX requests sent without waiting are unanswered: a client
 * that only ever sends such requests still reads its answers, so the
 * daemon never stops reading it (its max_queued) while it waits to send. */
static void async_room_locked(struct km_client *c)
{
	while (c->async_inflight >= KMC_ASYNC_MAX && !c->dead) {
		if (c->reading) {
			pthread_cond_wait(&c->async_cond, &c->lock);
			continue;
		}
		c->reading = true;
		read_one_locked(c, 0);
		c->reading = false;
		handoff_locked(c);
	}
}

void kmc_rpc_release_now(struct km_client *c)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	uint64_t release[KMC_RELEASE_MAX];
	size_t len;
	int err;

	pthread_mutex_lock(&c->lock);
	async_room_locked(c);
	pthread_mutex_unlock(&c->lock);
	events_apply(c);

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	if (c->dead || !c->nr_release) {
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->send_lock);
		return;
	}
	req.id = ++c->next_id | RPC_ASYNC_BIT;
	c->async_inflight++;
	req.n_release = c->nr_release;
	memcpy(release, c->release, sizeof(release[0]) * c->nr_release);
	pthread_mutex_unlock(&c->lock);
	req.release = release;
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	len = request_fit(c, &req);
	kmalloc__request__pack(&req, c->sendbuf);
	err = kmwire_send(c->sock, c->sendbuf, len, NULL, 0, 0);
	pthread_mutex_lock(&c->lock);
	if (!err) {
		release_commit_locked(c, req.n_release);
	} else {
		/* Nothing went: the ids stay queued for the next request. */
		c->async_inflight--;
		if (!send_err_transient(err))
			conn_fail_locked(c, err == -EPIPE || err == -ENOTCONN ? -ECONNRESET : err);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
}

void kmc_rpc_release(struct km_client *c, uint64_t id)
{
	bool flush;

	pthread_mutex_lock(&c->lock);
	while (c->nr_release == KMC_RELEASE_MAX && !c->dead) {
		/* Full (the sender that filled it could not send yet). */
		pthread_mutex_unlock(&c->lock);
		kmc_rpc_release_now(c);
		pthread_mutex_lock(&c->lock);
	}
	if (c->dead) {
		/* Nothing can be sent; the socket's close gives the grant back. */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->release[c->nr_release++] = id;
	flush = c->nr_release >= KMC_RELEASE_FLUSH;
	pthread_mutex_unlock(&c->lock);
	if (flush)
		kmc_rpc_release_now(c);
}

/* ---- sharing ------------------------------------------------------------- */

int kmc_rpc_export(struct km_client *c, uint64_t grant, uint64_t offset, uint64_t size,
		   const km_export_limits *lim, km_handle *out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Export ex = KMALLOC__EXPORT__INIT;
	const Kmalloc__ExportReply *r;
	struct kmc_call call;
	int err;

	ex.grant = grant;
	ex.offset = offset;
	ex.size = size;
	if (lim) {
		ex.flags = lim->flags;
		ex.uid = lim->uid;
		ex.max_imports = lim->max_imports;
		ex.lifetime_ms = lim->lifetime_ms;
	}
	req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
	req.export_grant = &ex;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_EXPORT_GRANT);
	if (!err) {
		r = call.reply->export_grant;
		if (r->handle.len != sizeof(out->bytes)) {
			kmc_dbg(c, "export of grant %" PRIu64 ": a %zu-byte handle", grant,
				r->handle.len);
			err = -EPROTO;
		} else {
			memcpy(out->bytes, r->handle.data, sizeof(out->bytes));
		}
	}
	call_end(&call);
	return err;
}

/* An ImportReply that fits the pool, its kind and its descriptors. */
static bool import_reply_ok(const struct km_client *c, const Kmalloc__ImportReply *r,
			    unsigned int nr_fds)
{
	uint64_t fs = c->frame_size, nr_pool_frames = c->pool_size / fs;

	for (size_t i = 0; i < r->n_frames; i++)
		if (r->frames[i] >= nr_pool_frames)
			return false;
	if (!r->id || !r->size)
		return false;
	switch (r->kind) {
	case KMALLOC__IMPORT_REPLY__KIND__KIND_KMALLOC:
		return nr_fds == 0 && range_in_pool(c, r->phys, r->size);
	case KMALLOC__IMPORT_REPLY__KIND__KIND_VMALLOC:
		return nr_fds == 0 && r->n_frames && r->n_frames <= nr_pool_frames &&
		       r->size <= r->n_frames * fs;
	case KMALLOC__IMPORT_REPLY__KIND__KIND_MEMFD:
		/* The frames may be left out (another domain's); if given, all. */
		return nr_fds == 1 && r->map_size && !(r->map_size % fs) &&
		       r->map_size <= c->pool_size && r->size <= r->map_size &&
		       (!r->n_frames || r->n_frames == r->map_size / fs);
	default:
		return false;
	}
}

int kmc_rpc_import(struct km_client *c, const km_handle *h, bool rdonly,
		   struct kmc_import_reply *out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__ImportShare im = KMALLOC__IMPORT_SHARE__INIT;
	const Kmalloc__ImportReply *r;
	struct kmc_call call;
	uint64_t grant = 0;
	int err;

	im.handle.data = (uint8_t *)h->bytes;
	im.handle.len = sizeof(h->bytes);
	im.rdonly = rdonly;
	req.body_case = KMALLOC__REQUEST__BODY_IMPORT_SHARE;
	req.import_share = &im;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_IMPORT_SHARE);
	if (err) {
		kmc_dbg(c, "import refused: %s (%s)", strerror(-err),
			call.reply->message ? call.reply->message : "");
		goto out;
	}
	r = call.reply->import_share;
	grant = r->id;
	if (!import_reply_ok(c, r, call.nr_fds)) {
		kmc_dbg(c,
			"bad import reply: grant %" PRIu64 " kind %d phys %#" PRIx64
			" size %" PRIu64 " map %" PRIu64 ", %zu frames, %u fds",
			r->id, (int)r->kind, r->phys, r->size, r->map_size, r->n_frames,
			call.nr_fds);
		err = -EPROTO;
		goto out;
	}
	*out = (struct kmc_import_reply){
		.id = r->id,
		.share = r->share,
		.phys = r->phys,
		.size = r->size,
		.map_size = r->map_size,
		.rdonly = r->rdonly || rdonly,
		.memfd = -1,
	};
	switch (r->kind) {
	case KMALLOC__IMPORT_REPLY__KIND__KIND_KMALLOC:
		out->kind = KMC_IMPORT_KMALLOC;
		break;
	case KMALLOC__IMPORT_REPLY__KIND__KIND_VMALLOC:
		out->kind = KMC_IMPORT_VMALLOC;
		break;
	default:
		out->kind = KMC_IMPORT_MEMFD;
		break;
	}
	if (r->n_frames) {
		out->frames = malloc(r->n_frames * sizeof(*out->frames));
		if (!out->frames) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(out->frames, r->frames, r->n_frames * sizeof(*out->frames));
		out->nr_frames = (uint32_t)r->n_frames;
	}
	if (out->kind == KMC_IMPORT_MEMFD) {
		out->memfd = call.fds[0];
		call.nr_fds = 0;
	}
out:
	call_end(&call);
	if (err && grant)
		kmc_rpc_give_back(c, &grant, 1);
	return err;
}

int kmc_rpc_revoke(struct km_client *c, const km_handle *h, uint32_t *ended)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Revoke rv = KMALLOC__REVOKE__INIT;
	struct kmc_call call;
	int err;

	rv.handle.data = (uint8_t *)h->bytes;
	rv.handle.len = sizeof(h->bytes);
	req.body_case = KMALLOC__REQUEST__BODY_REVOKE;
	req.revoke = &rv;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_REVOKE);
	if (!err)
		*ended = call.reply->revoke->imports_ended;
	call_end(&call);
	return err;
}

int kmc_rpc_meminfo(struct km_client *c, km_meminfo *out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest mr = KMALLOC__MEMINFO_REQUEST__INIT;
	const Kmalloc__Meminfo *m;
	struct kmc_call call;
	int err;

	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &mr;
	err = rpc_call(c, &req, &call);
	if (err)
		return err;
	err = reply_check(c, &call, KMALLOC__REPLY__BODY_MEMINFO);
	if (!err) {
		m = call.reply->meminfo;
		*out = (km_meminfo){
			.total = m->total,
			.free = m->free,
			.slab = m->slab,
			.vmalloc_used = m->vmalloc_used,
			.reserve = m->reserve,
			.frame_size = m->frame_size,
			.hugetlb = m->hugetlb ? 1 : 0,
			.available = m->available,
			.quarantined = m->quarantined,
		};
	}
	call_end(&call);
	return err;
}
