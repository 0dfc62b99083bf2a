// SPDX-License-Identifier: MIT
/*
 * dispatch.c - one Request in, one Reply out: decode, validate against the
 * connection's state, call the grant, domain and inspect modules, encode.
 * The only daemon file that sees both the generated protobuf-c types and
 * the daemon's own. Everything that arrives here is hostile: sizes, counts
 * and list lengths are bounded before anything is done, and a failure
 * answers that one client and leaves the daemon's state as it was.
 *
 * A reply that cannot be queued closes the connection (conn_close()); the
 * connection stays valid until the loop frees it, so handlers need not tell
 * their callers whether it is still open.
 */
#include "config.h"
#include "dispatch.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "kmalloc.pb-c.h"

#include "conn.h"
#include "domain.h"
#include "gfp.h"
#include "grant.h"
#include "grantpack.h"
#include "inspect.h"
#include "log.h"
#include "loopstat.h"
#include "server.h"
#include "share.h"
#include "slab.h"
#include "vmalloc.h"
#include "wire.h"

#define GRANTPACK_BUF	    (96u << 10) /* bytes: the largest grant reply fits */
#define MAX_IDS_PER_REQUEST 1024	/* release / free lists, bulk count */
#define INSPECT_PAGE_ROWS   256		/* keeps every reply far below WIRE_MAX_REPLY */
/* A vmalloc reply lists every frame (up to 5 bytes each) and must fit in one
 * packet of the default socket buffer (~200 KiB): 16384 frames, 32 GiB. */
#define VMALLOC_MAX_FRAMES 16384u

/* ---- replies ---------------------------------------------------------- */

/* Packs and queues @reply; a connection that cannot take it is closed. */
static void reply_send(struct conn *c, Kmalloc__Reply *reply, int pass_fd)
{
	uint8_t stack[4096], *buf = stack;
	size_t len = kmalloc__reply__get_packed_size(reply);
	int err;

	if (len > sizeof(stack)) {
		buf = malloc(len);
		if (!buf) {
			conn_close(c, "out of memory packing a reply");
			return;
		}
	}
	kmalloc__reply__pack(reply, buf);
	err = conn_send(c, buf, len, pass_fd);
	if (buf != stack)
		free(buf);
	if (err < 0)
		conn_close(c, strerror(-err));
}

static void reply_error(struct conn *c, Kmalloc__Reply *reply, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An error reply with a one-line message for humans. */
static void reply_error(struct conn *c, Kmalloc__Reply *reply, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply->error = err;
	reply->message = msg;
	reply->body_case = KMALLOC__REPLY__BODY__NOT_SET;
	reply_send(c, reply, -1);
}

/* The reply to an allocation the grant module refused with @err (-errno):
 * the client's limits (logged, rate-limited), or the pool (a kernel-style
 * failure warning unless __GFP_NOWARN). */
static void reply_alloc_failure(struct conn *c, Kmalloc__Reply *reply, int err, const char *what,
				uint64_t size, unsigned int gfp)
{
	const struct account *acct = c->account;
	char desc[160];

	if (err == -EDQUOT) {
		c->account->refusals++;
		conn_log(c, LOG_LEVEL_NOTICE,
			 "%s of %" PRIu64 " bytes refused: uid holds %" PRIu64 " bytes in %" PRIu64
			 " grants, its limits are %" PRIu64 " bytes, %" PRIu64 " grants",
			 what, size, acct->bytes, acct->grants, c->limits.max_bytes,
			 c->limits.max_grants);
		reply_error(c, reply, EDQUOT, "%s of %" PRIu64 " bytes: over the limits of uid %u",
			    what, size, (unsigned int)c->uid);
		return;
	}
	if (err == -ENOMEM) {
		c->srv->alloc_failures++;
		if (!(gfp & KM___GFP_NOWARN))
			conn_log(c, LOG_LEVEL_WARN, "%s failure: size %" PRIu64 ", mode:%s", what,
				 size, gfp_describe(gfp, desc, sizeof(desc)));
	}
	reply_error(c, reply, -err, "%s of %" PRIu64 " bytes: %s", what, size,
		    err == -EFAULT ? "the domain's memory was punched out by one of its clients"
		    : err == -ENOMEM && !strcmp(what, "vmalloc") ? "vmalloc error: failed to "
								   "allocate pages"
								 : strerror(-err));
}

static void paranoid_check(struct conn *c)
{
	if (c->srv->cfg->paranoid && c->domain && domain_check(c->domain) < 0) {
		log_err("paranoid: domain of uid %u fails its check after conn %" PRIu64
			"'s request",
			(unsigned int)c->uid, c->id);
		abort();
	}
}

/* ---- hello ---------------------------------------------------------------- */

/* Client strings (Hello.name, Vmalloc.caller) become printable, blank-free
 * tokens: they end up in logs and in /proc-style tables. */
static void sanitize_name(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < len; i++)
		dst[i] = (src[i] > ' ' && src[i] < 0x7f) ? src[i] : '_';
	dst[i] = '\0';
}

static void name_from_proc(struct conn *c)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	sanitize_name(c->name, sizeof(c->name), comm[0] ? comm : "?");
}

static void handle_hello(struct conn *c, const Kmalloc__Hello *hello, Kmalloc__Reply *reply)
{
	struct server *srv = c->srv;
	Kmalloc__Welcome welcome = KMALLOC__WELCOME__INIT;
	struct domain *d;
	int err;

	if (c->state != CONN_HELLO) {
		reply_error(c, reply, EPROTO, "hello already received");
		return;
	}
	if (hello->version != KM_PROTOCOL_VERSION) {
		reply_error(c, reply, EPROTO,
			    "protocol version %u not supported (this daemon speaks %d)",
			    hello->version, KM_PROTOCOL_VERSION);
		return;
	}
	if (hello->name && hello->name[0])
		sanitize_name(c->name, sizeof(c->name), hello->name);
	else
		name_from_proc(c);

	err = domain_get(&srv->mm, c->uid, &d);
	if (err < 0) {
		conn_log(c, LOG_LEVEL_WARN, "no domain: %s", strerror(-err));
		reply_error(c, reply, -err, "cannot create the domain of uid %u: %s",
			    (unsigned int)c->uid, strerror(-err));
		return;
	}
	c->domain = d;
	/* Names this client to a later reconnection (not used yet: a restart
	 * keeps connections open, so no client has had to reconnect). */
	if (getrandom(c->token, sizeof(c->token), 0) != sizeof(c->token))
		memset(c->token, 0, sizeof(c->token));
	c->state = CONN_READY;
	event_del(c->ev_hello);
	conn_log(c, LOG_LEVEL_DEBUG, "%s -> %s, domain %u", conn_state_names[CONN_HELLO],
		 conn_state_names[CONN_READY], d->id);

	welcome.version = KM_PROTOCOL_VERSION;
	welcome.pool_size = srv->mm.pool.size;
	welcome.frame_size = srv->mm.pool.frame_size;
	welcome.page_size = KM_PAGE_SIZE;
	welcome.hugetlb = srv->mm.pool.hugetlb;
	welcome.domain = d->id;
	welcome.max_packet = srv->cfg->max_packet;
	welcome.max_order = KM_MAX_ORDER;
	welcome.token.data = c->token;
	welcome.token.len = sizeof(c->token);
	reply->body_case = KMALLOC__REPLY__BODY_WELCOME;
	reply->welcome = &welcome;
	reply_send(c, reply, d->memfd);
}

/* ---- allocations -------------------------------------------------------- */

/* The reply to an Alloc or a SlabAlloc that made @count grants, packed by
 * hand (grantpack.h): protobuf-c's bytes at a tenth of the cost. */
static void reply_grants(struct conn *c, const Kmalloc__Reply *reply, struct grant *const *grants,
			 uint32_t count, bool slabs)
{
	/* Static: the daemon is single-threaded and the reply is queued before
	 * the next request is read; no allocation per request. */
	static struct grantpack_grant fields[MAX_IDS_PER_REQUEST];
	static uint8_t buf[GRANTPACK_BUF];
	size_t len;
	uint32_t i;
	int err;

	assert(grantpack_reply_max(reply->n_release_failed, count) <= sizeof(buf));
	for (i = 0; i < count; i++) {
		const struct grant *g = grants[i];

		fields[i] = (struct grantpack_grant){ .id = g->id,
						      .phys = g->phys,
						      .size = grant_bytes(g) };
		if (slabs) {
			fields[i].object_size = kmalloc_classes[g->cache].size;
			fields[i].objects = kmalloc_classes[g->cache].objs_per_slab;
		}
	}
	len = grantpack_reply(buf, reply->id, reply->release_failed, reply->n_release_failed,
			      slabs ? GRANTPACK_SLAB_ALLOC : GRANTPACK_ALLOC, fields, count);
	err = conn_send(c, buf, len, -1);
	if (err < 0)
		conn_close(c, strerror(-err));
}

/* The reply to a Nop (the carrier of releases that ride without waiting),
 * packed by hand as well: protobuf-c walks every field of Reply's oneof. */
static void reply_nop(struct conn *c, const Kmalloc__Reply *reply)
{
	static uint8_t buf[GRANTPACK_BUF];
	size_t len;
	int err;

	assert(grantpack_reply_max(reply->n_release_failed, 0) <= sizeof(buf));
	len = grantpack_reply(buf, reply->id, reply->release_failed, reply->n_release_failed,
			      GRANTPACK_NOP, NULL, 0);
	err = conn_send(c, buf, len, -1);
	if (err < 0)
		conn_close(c, strerror(-err));
}

/* A shareable Alloc (one grant, a MEMREF of a MEMFD_KMALLOC memobj): its
 * memfd goes with the reply. Packed by protobuf-c: one grant, rare. */
static void reply_shared_grant(struct conn *c, Kmalloc__Reply *reply, const struct grant *g)
{
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	Kmalloc__Grant msg = KMALLOC__GRANT__INIT, *ptr = &msg;
	const struct memobj *o = g->ref->obj;

	msg.id = g->id;
	msg.phys = o->phys;
	msg.size = grant_bytes(g);
	msg.memfd = true;
	body.n_grants = 1;
	body.grants = &ptr;
	reply->body_case = KMALLOC__REPLY__BODY_ALLOC;
	reply->alloc = &body;
	reply_send(c, reply, o->memfd);
}

/* Alloc (@slabs false) or SlabAlloc: @count objects, or whole slabs, of
 * @size bytes. */
static void handle_alloc(struct conn *c, uint64_t size, unsigned int gfp, uint32_t count,
			 bool slabs, Kmalloc__Reply *reply)
{
	static struct grant *grants[MAX_IDS_PER_REQUEST];
	const char *what = slabs ? "slab" : "kmalloc";
	int err;

	count = count ? count : 1;
	if (size == 0) {
		reply_error(c, reply, EINVAL, "%s of size 0 (use KM_ZERO_SIZE_PTR)", what);
		return;
	}
	if (count > MAX_IDS_PER_REQUEST) {
		reply_error(c, reply, EINVAL, "bulk count %u over %d", count, MAX_IDS_PER_REQUEST);
		return;
	}
	if (slabs && size > KM_KMALLOC_MAX_CACHE_SIZE) {
		reply_error(c, reply, EINVAL, "no slab class serves %" PRIu64 " bytes", size);
		return;
	}
	if ((gfp & KM___GFP_SHARED) && (slabs || count != 1)) {
		reply_error(c, reply, EINVAL, "a shareable %s is one grant at a time",
			    slabs ? "allocation is never a slab: it" : "kmalloc");
		return;
	}
	err = slabs ? grant_slabs(&c->srv->grants, c, size, gfp, count, grants)
		    : grant_kmalloc(&c->srv->grants, c, size, gfp, count, grants);
	if (err)
		reply_alloc_failure(c, reply, err, what, size * count, gfp);
	else if (gfp & KM___GFP_SHARED)
		reply_shared_grant(c, reply, grants[0]);
	else
		reply_grants(c, reply, grants, count, slabs);
}

static void handle_vmalloc(struct conn *c, const Kmalloc__Vmalloc *v, Kmalloc__Reply *reply)
{
	Kmalloc__VmallocReply body = KMALLOC__VMALLOC_REPLY__INIT;
	char caller[VMALLOC_CALLER_LEN];
	struct vmalloc_area *area;
	struct grant *g;
	int err, fd = -1;

	if (v->size == 0) {
		reply_error(c, reply, EINVAL, "vmalloc of size 0");
		return;
	}
	if (v->size / c->srv->mm.pool.frame_size >= VMALLOC_MAX_FRAMES) {
		reply_alloc_failure(c, reply, -ENOMEM, "vmalloc", v->size, v->gfp);
		return;
	}
	sanitize_name(caller, sizeof(caller), v->caller);
	err = grant_vmalloc(&c->srv->grants, c, v->size, v->gfp, v->vaddr, caller, &g);
	if (err) {
		reply_alloc_failure(c, reply, err, "vmalloc", v->size, v->gfp);
		return;
	}
	area = g->kind == GRANT_MEMREF ? g->ref->obj->area : g->area;
	body.id = g->id;
	body.size = grant_bytes(g);
	if (g->kind == GRANT_MEMREF) { /* shareable: its frames are in a memfd of their own */
		body.memfd = true;
		fd = g->ref->obj->memfd;
	}
	body.n_frames = area->nr_frames;
	body.frames = area->frames;
	reply->body_case = KMALLOC__REPLY__BODY_VMALLOC;
	reply->vmalloc = &body;
	reply_send(c, reply, fd);
}

/* Gives back every grant of @ids that @c holds; the others go to @unknown.
 * Returns how many were given back. */
static size_t release_ids(struct conn *c, const uint64_t *ids, size_t n, uint64_t *unknown,
			  size_t *nr_unknown)
{
	size_t i, freed = 0;

	*nr_unknown = 0;
	for (i = 0; i < n; i++) {
		struct grant *g = grant_held(&c->srv->grants, c, ids[i]);

		if (!g) {
			unknown[(*nr_unknown)++] = ids[i];
			continue;
		}
		grant_release(&c->srv->grants, g);
		freed++;
	}
	return freed;
}

static void handle_free(struct conn *c, const Kmalloc__Free *f, Kmalloc__Reply *reply)
{
	Kmalloc__FreeReply body = KMALLOC__FREE_REPLY__INIT;
	uint64_t unknown[MAX_IDS_PER_REQUEST];

	if (f->n_grants > MAX_IDS_PER_REQUEST) {
		reply_error(c, reply, E2BIG, "free of %zu grants, over %d", f->n_grants,
			    MAX_IDS_PER_REQUEST);
		return;
	}
	body.freed = (uint32_t)release_ids(c, f->grants, f->n_grants, unknown, &body.n_unknown);
	reply->body_case = KMALLOC__REPLY__BODY_FREE;
	reply->free = &body;
	if (body.n_unknown) {
		body.unknown = unknown;
		conn_log(c, LOG_LEVEL_WARN,
			 "free of %zu grant(s) it does not hold (first %" PRIu64 ")",
			 body.n_unknown, unknown[0]);
		reply->error = ENOENT;
		reply->message = "grant not held by this connection (double free?)";
	}
	reply_send(c, reply, -1);
}

static void handle_meminfo(struct conn *c, Kmalloc__Reply *reply)
{
	Kmalloc__Meminfo m = KMALLOC__MEMINFO__INIT;
	struct inspect_meminfo mi;

	inspect_meminfo(c->srv, &mi);
	m.total = mi.total;
	m.free = mi.free;
	m.slab = mi.slab;
	m.slab_reclaimable = mi.slab_reclaimable;
	m.slab_unreclaimable = mi.slab_unreclaimable;
	m.vmalloc_used = mi.vmalloc_used;
	m.reserve = mi.reserve;
	m.frame_size = mi.frame_size;
	m.hugetlb = mi.hugetlb;
	m.frames_total = mi.frames_total;
	m.frames_free = mi.frames_free;
	m.available = mi.available;
	m.watermark_low = mi.watermark_low;
	m.watermark_high = mi.watermark_high;
	m.domains = mi.domains;
	m.clients = mi.clients;
	m.grants = mi.grants;
	m.quarantined = mi.quarantined;
	reply->body_case = KMALLOC__REPLY__BODY_MEMINFO;
	reply->meminfo = &m;
	reply_send(c, reply, -1);
}

/* ---- sharing ---------------------------------------------------------------- */

/* A refused export, import or revoke: the client is named in a
 * rate-limited line (conn_log), and EACCES counts as a refusal of its uid. */
static void reply_share_refusal(struct conn *c, Kmalloc__Reply *reply, const char *what, int err,
				const char *why, const uint8_t *handle, size_t len)
{
	uint64_t id = 0;

	for (size_t i = 0; handle && i < 8 && i < len; i++)
		id |= (uint64_t)handle[i] << (8 * i);
	if (err == -EACCES || err == -EDQUOT)
		c->account->refusals++;
	conn_log(c, LOG_LEVEL_NOTICE, "%s refused (handle id %" PRIu64 "): %s", what, id, why);
	reply_error(c, reply, -err, "%s: %s", what, why);
}

static void handle_export(struct conn *c, const Kmalloc__Export *e, Kmalloc__Reply *reply)
{
	Kmalloc__ExportReply body = KMALLOC__EXPORT_REPLY__INIT;
	struct share_export_args a = { .offset = e->offset,
				       .size = e->size,
				       .flags = e->flags,
				       .uid = e->uid,
				       .max_imports = e->max_imports,
				       .lifetime_ms = e->lifetime_ms };
	uint8_t handle[SHARE_HANDLE_SIZE];
	const char *why = "";
	int err;

	err = share_export(c->srv->grants.shares, c, e->grant, &a, handle, &body.share, &why);
	if (err) {
		reply_share_refusal(c, reply, "export", err, why, NULL, 0);
		return;
	}
	body.handle.data = handle;
	body.handle.len = sizeof(handle);
	reply->body_case = KMALLOC__REPLY__BODY_EXPORT_GRANT;
	reply->export_grant = &body;
	reply_send(c, reply, -1);
}

static void handle_import(struct conn *c, const Kmalloc__ImportShare *in, Kmalloc__Reply *reply)
{
	Kmalloc__ImportReply body = KMALLOC__IMPORT_REPLY__INIT;
	struct share_import_result r;
	const char *why = "";
	int err;

	err = share_import(c->srv->grants.shares, c, in->handle.data, in->handle.len, in->rdonly,
			   &r, &why);
	if (err) {
		reply_share_refusal(c, reply, "import", err, why, in->handle.data, in->handle.len);
		return;
	}
	body.id = r.g->id;
	body.kind = (Kmalloc__ImportReply__Kind)r.kind;
	body.phys = r.phys;
	body.size = r.size;
	body.n_frames = r.nr_frames;
	body.frames = (uint32_t *)r.frames;
	body.map_size = r.map_size;
	body.rdonly = r.rdonly;
	body.share = r.share;
	reply->body_case = KMALLOC__REPLY__BODY_IMPORT_SHARE;
	reply->import_share = &body;
	reply_send(c, reply, r.fd);
}

#define EVENT_MAX_IDS 1024 /* ids per Event packet */

/* One unasked Reply (id 0) with an Event per EVENT_MAX_IDS revoked ids. */
static void send_revoked(struct conn *c, const uint64_t *ids, size_t n)
{
	for (size_t done = 0; done < n && c->state == CONN_READY; done += EVENT_MAX_IDS) {
		Kmalloc__Reply reply = KMALLOC__REPLY__INIT;
		Kmalloc__Event ev = KMALLOC__EVENT__INIT;

		ev.n_revoked = n - done < EVENT_MAX_IDS ? n - done : EVENT_MAX_IDS;
		ev.revoked = (uint64_t *)ids + done;
		reply.body_case = KMALLOC__REPLY__BODY_EVENT;
		reply.event = &ev;
		reply_send(c, &reply, -1);
	}
}

static int revoked_by_holder(const void *a, const void *b)
{
	const struct share_revoked *x = a, *y = b;

	return x->holder < y->holder ? -1 : x->holder > y->holder;
}

/* Tells each holder of @ended (one Event per connection) which of its
 * grants a revocation ended. */
static void notify_revoked(struct share_revoked *ended, size_t n)
{
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	size_t i = 0, j, k;

	if (!ids) {
		log_err("revoke: no memory to tell %zu importers", n);
		return;
	}
	qsort(ended, n, sizeof(*ended), revoked_by_holder);
	while (i < n) {
		for (j = i, k = 0; j < n && ended[j].holder == ended[i].holder; j++)
			ids[k++] = ended[j].grant;
		send_revoked(ended[i].holder, ids, k);
		i = j;
	}
	free(ids);
}

static void handle_revoke(struct conn *c, const Kmalloc__Revoke *rv, Kmalloc__Reply *reply)
{
	Kmalloc__RevokeReply body = KMALLOC__REVOKE_REPLY__INIT;
	struct share_revoked *ended;
	const char *why = "";
	size_t n;
	int err;

	err = share_revoke(c->srv->grants.shares, c, rv->handle.data, rv->handle.len, &ended, &n,
			   &why);
	if (err) {
		reply_share_refusal(c, reply, "revoke", err, why, rv->handle.data, rv->handle.len);
		return;
	}
	conn_log(c, LOG_LEVEL_DEBUG, "revoked a handle: %zu imports ended", n);
	notify_revoked(ended, n);
	free(ended);
	body.imports_ended = (uint32_t)n;
	reply->body_case = KMALLOC__REPLY__BODY_REVOKE;
	reply->revoke = &body;
	reply_send(c, reply, -1);
}

/* ---- inspection (kmctl): inspect.c's rows as messages --------------------- */

static void inspect_slab_page(struct conn *c, Kmalloc__InspectReply *body)
{
	static struct inspect_slab rows[KM_NR_KMALLOC_CLASSES];
	static Kmalloc__SlabRow msgs[KM_NR_KMALLOC_CLASSES];
	static Kmalloc__SlabRow *ptrs[KM_NR_KMALLOC_CLASSES];
	int i;

	inspect_slabinfo(&c->srv->mm, rows);
	/* /proc/slabinfo lists the newest cache first and the boot-time kmalloc
	 * caches last, largest first: keep that order. */
	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		const struct inspect_slab *r = &rows[KM_NR_KMALLOC_CLASSES - 1 - i];

		kmalloc__slab_row__init(&msgs[i]);
		msgs[i].name = (char *)r->name;
		msgs[i].active_objs = r->active_objs;
		msgs[i].num_objs = r->num_objs;
		msgs[i].objsize = r->objsize;
		msgs[i].objperslab = r->objperslab;
		msgs[i].pagesperslab = r->pagesperslab;
		msgs[i].num_slabs = r->num_slabs;
		ptrs[i] = &msgs[i];
	}
	body->n_slabs = KM_NR_KMALLOC_CLASSES;
	body->slabs = ptrs;
}

/* One page of rows, built in static storage: the reply is packed before the
 * next request is read, and the daemon is single-threaded. */
static size_t inspect_buddy_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				 bool *more)
{
	static struct inspect_buddy rows[INSPECT_PAGE_ROWS];
	static Kmalloc__BuddyRow msgs[INSPECT_PAGE_ROWS], *ptrs[INSPECT_PAGE_ROWS];
	size_t n = inspect_buddyinfo_page(&c->srv->mm, offset, rows, INSPECT_PAGE_ROWS, more);

	for (size_t i = 0; i < n; i++) {
		kmalloc__buddy_row__init(&msgs[i]);
		msgs[i].zone = rows[i].zone;
		msgs[i].n_nr_free = INSPECT_BUDDY_ORDERS;
		msgs[i].nr_free = rows[i].nr_free;
		ptrs[i] = &msgs[i];
	}
	body->n_buddy = n;
	body->buddy = ptrs;
	return n;
}

static size_t inspect_vmalloc_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				   bool *more)
{
	static struct inspect_vmalloc rows[INSPECT_PAGE_ROWS];
	static Kmalloc__VmallocRow msgs[INSPECT_PAGE_ROWS], *ptrs[INSPECT_PAGE_ROWS];
	size_t n = inspect_vmallocinfo(c->srv, offset, rows, INSPECT_PAGE_ROWS, more);

	for (size_t i = 0; i < n; i++) {
		kmalloc__vmalloc_row__init(&msgs[i]);
		msgs[i].start = rows[i].start;
		msgs[i].size = rows[i].size;
		msgs[i].caller = (char *)rows[i].caller;
		msgs[i].pages = rows[i].pages;
		msgs[i].pid = rows[i].pid;
		msgs[i].grant = rows[i].grant;
		msgs[i].domain = rows[i].domain;
		msgs[i].name = (char *)(rows[i].name ? rows[i].name : "");
		msgs[i].holders = rows[i].holders;
		ptrs[i] = &msgs[i];
	}
	body->n_vmalloc = n;
	body->vmalloc = ptrs;
	return n;
}

static size_t inspect_clients_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				   bool *more)
{
	static struct inspect_client rows[INSPECT_PAGE_ROWS];
	static Kmalloc__ClientRow msgs[INSPECT_PAGE_ROWS], *ptrs[INSPECT_PAGE_ROWS];
	size_t n = inspect_clients(c->srv, offset, rows, INSPECT_PAGE_ROWS, more);

	for (size_t i = 0; i < n; i++) {
		kmalloc__client_row__init(&msgs[i]);
		msgs[i].pid = rows[i].pid;
		msgs[i].uid = rows[i].uid;
		msgs[i].name = (char *)rows[i].name;
		msgs[i].grants = rows[i].grants;
		msgs[i].bytes = rows[i].bytes;
		msgs[i].domain = rows[i].domain;
		msgs[i].conn = rows[i].conn;
		msgs[i].admin = rows[i].admin;
		msgs[i].closing = rows[i].closing;
		ptrs[i] = &msgs[i];
	}
	body->n_clients = n;
	body->clients = ptrs;
	return n;
}

static size_t inspect_accounts_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				    bool *more)
{
	static struct inspect_account rows[INSPECT_PAGE_ROWS];
	static Kmalloc__AccountRow msgs[INSPECT_PAGE_ROWS], *ptrs[INSPECT_PAGE_ROWS];
	size_t n = inspect_accounts(c->srv, offset, rows, INSPECT_PAGE_ROWS, more);

	for (size_t i = 0; i < n; i++) {
		kmalloc__account_row__init(&msgs[i]);
		msgs[i].uid = rows[i].uid;
		msgs[i].domain = rows[i].domain;
		msgs[i].connections = rows[i].connections;
		msgs[i].max_connections = rows[i].max_connections;
		msgs[i].grants = rows[i].grants;
		msgs[i].max_grants = rows[i].max_grants;
		msgs[i].bytes = rows[i].bytes;
		msgs[i].max_bytes = rows[i].max_bytes;
		msgs[i].privileged = rows[i].privileged;
		msgs[i].refusals = rows[i].refusals;
		msgs[i].handles = rows[i].handles;
		msgs[i].max_handles = rows[i].max_handles;
		ptrs[i] = &msgs[i];
	}
	body->n_accounts = n;
	body->accounts = ptrs;
	return n;
}

/* TABLE_MAP: INSPECT_MAP_FRAMES frames from @offset (a frame number, not
 * a row); kmctl asks again from first + the count until nr_frames. */
static size_t inspect_map_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
			       bool *more)
{
	static uint8_t kinds[INSPECT_MAP_FRAMES];
	static uint32_t domains[INSPECT_MAP_FRAMES];
	static Kmalloc__FrameMap map;
	const struct mm *mm = &c->srv->mm;
	size_t n = inspect_frame_map(mm, offset, kinds, domains, INSPECT_MAP_FRAMES);

	kmalloc__frame_map__init(&map);
	map.first = offset;
	map.nr_frames = mm->pool.nr_frames;
	map.kinds.data = kinds;
	map.kinds.len = n;
	map.n_domains = n;
	map.domains = domains;
	body->map = &map;
	*more = n && offset + n < mm->pool.nr_frames;
	return n;
}

/* TABLE_SHARES: one row per live handle, with its holders (share.c). */
#define SHARES_PAGE_ROWS   32
#define SHARES_ROW_HOLDERS 64 /* holders listed per handle; keeps a page below 300 KiB */

static size_t inspect_shares_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				  bool *more)
{
	static struct share_row rows[SHARES_PAGE_ROWS];
	static struct share_holder_row holders[SHARES_PAGE_ROWS * SHARES_ROW_HOLDERS];
	static Kmalloc__ShareRow msgs[SHARES_PAGE_ROWS], *ptrs[SHARES_PAGE_ROWS];
	static Kmalloc__ShareHolder hmsgs[SHARES_PAGE_ROWS * SHARES_ROW_HOLDERS];
	static Kmalloc__ShareHolder *hptrs[SHARES_PAGE_ROWS * SHARES_ROW_HOLDERS];
	size_t n = share_inspect(c->srv->grants.shares, offset, rows, SHARES_PAGE_ROWS, holders,
				 SHARES_ROW_HOLDERS, more);

	for (size_t i = 0; i < n; i++) {
		const struct share_row *r = &rows[i];
		Kmalloc__ShareHolder **hp = &hptrs[i * SHARES_ROW_HOLDERS];

		kmalloc__share_row__init(&msgs[i]);
		msgs[i].handle_id = r->handle_id;
		msgs[i].share = r->share;
		msgs[i].size = r->size;
		msgs[i].kind = (char *)r->kind;
		msgs[i].domain = r->domain;
		msgs[i].exporter_pid = r->exporter_pid;
		msgs[i].exporter_uid = r->exporter_uid;
		msgs[i].exporter_name = (char *)r->exporter_name;
		msgs[i].flags = r->flags;
		msgs[i].uid = r->uid;
		msgs[i].imports = r->imports;
		msgs[i].max_imports = r->max_imports;
		msgs[i].age_ms = r->age_ms;
		msgs[i].expires_in_ms = r->expires_in_ms;
		msgs[i].revoked = r->revoked;
		for (size_t j = 0; j < r->nr_holders; j++) {
			Kmalloc__ShareHolder *h = &hmsgs[i * SHARES_ROW_HOLDERS + j];

			kmalloc__share_holder__init(h);
			h->pid = r->holders[j].pid;
			h->uid = r->holders[j].uid;
			h->name = (char *)r->holders[j].name;
			h->grant = r->holders[j].grant;
			h->exporter = r->holders[j].exporter;
			h->rdonly = r->holders[j].rdonly;
			hp[j] = h;
		}
		msgs[i].n_holders = r->nr_holders;
		msgs[i].holders = hp;
		ptrs[i] = &msgs[i];
	}
	body->n_shares = n;
	body->shares = ptrs;
	return n;
}

/* One row, no paging: the loop's own figures (kmctl stats). */
static void inspect_loop_row(struct conn *c, Kmalloc__InspectReply *body)
{
	static uint64_t hist[LOOPSTAT_BUCKETS];
	static Kmalloc__LoopRow msg, *ptr = &msg;
	struct inspect_loop row;

	inspect_loop(c->srv, &row);
	kmalloc__loop_row__init(&msg);
	msg.uptime_ns = row.uptime_ns;
	msg.requests = row.stats.requests;
	msg.request_max_ns = row.stats.request_max_ns;
	msg.request_max_kind =
		(char *)(row.stats.request_max_kind ? row.stats.request_max_kind : "");
	msg.requests_over_1ms = row.stats.requests_over_1ms;
	memcpy(hist, row.stats.request_hist, sizeof(hist));
	msg.n_request_hist = LOOPSTAT_BUCKETS;
	msg.request_hist = hist;
	msg.teardown_turns = row.stats.teardown_turns;
	msg.teardown_max_ns = row.stats.teardown_max_ns;
	msg.tick_max_ns = row.stats.tick_max_ns;
	msg.accept_max_ns = row.stats.accept_max_ns;
	msg.grants = row.grants;
	msg.connections = row.connections;
	body->n_loop = 1;
	body->loop = &ptr;
}

static void handle_inspect(struct conn *c, const Kmalloc__Inspect *in, Kmalloc__Reply *reply)
{
	static size_t (*const pages[])(struct conn *, uint32_t, Kmalloc__InspectReply *, bool *) = {
		[KMALLOC__INSPECT__TABLE__TABLE_BUDDYINFO] = inspect_buddy_page,
		[KMALLOC__INSPECT__TABLE__TABLE_VMALLOCINFO] = inspect_vmalloc_page,
		[KMALLOC__INSPECT__TABLE__TABLE_CLIENTS] = inspect_clients_page,
		[KMALLOC__INSPECT__TABLE__TABLE_ACCOUNTS] = inspect_accounts_page,
		[KMALLOC__INSPECT__TABLE__TABLE_SHARES] = inspect_shares_page,
		[KMALLOC__INSPECT__TABLE__TABLE_MAP] = inspect_map_page,
	};
	Kmalloc__InspectReply body = KMALLOC__INSPECT_REPLY__INIT;
	bool more = false;
	size_t n;

	if (!c->admin) {
		conn_log(c, LOG_LEVEL_NOTICE,
			 "inspection refused: not root nor in the admin group");
		reply_error(c, reply, EACCES,
			    "inspection needs root or membership of the admin group");
		return;
	}
	body.table = in->table;
	if (in->table == KMALLOC__INSPECT__TABLE__TABLE_SLABINFO) {
		inspect_slab_page(c, &body);
	} else if (in->table == KMALLOC__INSPECT__TABLE__TABLE_LOOP) {
		inspect_loop_row(c, &body);
	} else if ((size_t)in->table < sizeof(pages) / sizeof(pages[0]) && pages[in->table]) {
		n = pages[in->table](c, in->offset, &body, &more);
		if (more)
			body.next_offset = in->offset + (uint32_t)n;
	} else {
		reply_error(c, reply, EINVAL, "unknown inspection table %d", (int)in->table);
		return;
	}
	reply->body_case = KMALLOC__REPLY__BODY_INSPECT;
	reply->inspect = &body;
	reply_send(c, reply, -1);
}

/* ---- entry points ------------------------------------------------------ */

void dispatch_refuse(int fd, int err, const char *why)
{
	Kmalloc__Reply reply = KMALLOC__REPLY__INIT;
	uint8_t buf[512];
	char msg[256];
	size_t len;

	snprintf(msg, sizeof(msg), "connection refused: %s", why);
	reply.error = err;
	reply.message = msg;
	len = kmalloc__reply__get_packed_size(&reply);
	if (len <= sizeof(buf)) {
		kmalloc__reply__pack(&reply, buf);
		kmwire_send(fd, buf, len, NULL, 0, MSG_DONTWAIT);
	}
}

void dispatch_oversized(struct conn *c)
{
	Kmalloc__Reply reply = KMALLOC__REPLY__INIT;

	conn_log(c, LOG_LEVEL_WARN, "packet over max_packet (%u bytes) dropped",
		 c->srv->cfg->max_packet);
	reply_error(c, &reply, E2BIG, "packet larger than max_packet (%u bytes)",
		    c->srv->cfg->max_packet);
}

/* The deferred kfrees riding on a request; ids not held are reported. */
static void handle_release(struct conn *c, const Kmalloc__Request *req, Kmalloc__Reply *reply,
			   uint64_t *failed)
{
	release_ids(c, req->release, req->n_release, failed, &reply->n_release_failed);
	if (reply->n_release_failed) {
		reply->release_failed = failed;
		conn_log(c, LOG_LEVEL_WARN,
			 "release of %zu grant(s) it does not hold (first %" PRIu64 ")",
			 reply->n_release_failed, failed[0]);
	}
}

/* The body of a request from a connection past Hello. */
static void dispatch_body(struct conn *c, const Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	switch (req->body_case) {
	case KMALLOC__REQUEST__BODY_ALLOC:
		handle_alloc(c, req->alloc->size, req->alloc->gfp, req->alloc->count, false, reply);
		return;
	case KMALLOC__REQUEST__BODY_SLAB_ALLOC:
		handle_alloc(c, req->slab_alloc->size, req->slab_alloc->gfp, req->slab_alloc->count,
			     true, reply);
		return;
	case KMALLOC__REQUEST__BODY_VMALLOC:
		handle_vmalloc(c, req->vmalloc, reply);
		return;
	case KMALLOC__REQUEST__BODY_FREE:
		handle_free(c, req->free, reply);
		return;
	case KMALLOC__REQUEST__BODY_MEMINFO:
		handle_meminfo(c, reply);
		return;
	case KMALLOC__REQUEST__BODY_INSPECT:
		handle_inspect(c, req->inspect, reply);
		return;
	case KMALLOC__REQUEST__BODY_EXPORT_GRANT:
		handle_export(c, req->export_grant, reply);
		return;
	case KMALLOC__REQUEST__BODY_IMPORT_SHARE:
		handle_import(c, req->import_share, reply);
		return;
	case KMALLOC__REQUEST__BODY_REVOKE:
		handle_revoke(c, req->revoke, reply);
		return;
	case KMALLOC__REQUEST__BODY_NOP:
		reply_nop(c, reply);
		return;
	default:
		conn_log(c, LOG_LEVEL_NOTICE, "unknown request (body %d)", (int)req->body_case);
		reply_error(c, reply, ENOSYS, "unknown request");
		return;
	}
}

/* The short name of a request's body, for loopstat (kmctl stats). */
static const char *request_kind(Kmalloc__Request__BodyCase body)
{
	switch (body) {
	case KMALLOC__REQUEST__BODY_HELLO:
		return "hello";
	case KMALLOC__REQUEST__BODY_ALLOC:
		return "alloc";
	case KMALLOC__REQUEST__BODY_SLAB_ALLOC:
		return "slab_alloc";
	case KMALLOC__REQUEST__BODY_VMALLOC:
		return "vmalloc";
	case KMALLOC__REQUEST__BODY_FREE:
		return "free";
	case KMALLOC__REQUEST__BODY_MEMINFO:
		return "meminfo";
	case KMALLOC__REQUEST__BODY_INSPECT:
		return "inspect";
	case KMALLOC__REQUEST__BODY_EXPORT_GRANT:
		return "export";
	case KMALLOC__REQUEST__BODY_IMPORT_SHARE:
		return "import";
	case KMALLOC__REQUEST__BODY_REVOKE:
		return "revoke";
	case KMALLOC__REQUEST__BODY_NOP:
		return "nop";
	default:
		return "unknown";
	}
}

/* Timed whole for loopstat, from before the unpack to after the reply is
 * queued and the request freed: two clock reads (vDSO) per request. */
void dispatch_packet(struct conn *c, const uint8_t *buf, size_t len)
{
	Kmalloc__Reply reply = KMALLOC__REPLY__INIT;
	uint64_t failed[MAX_IDS_PER_REQUEST];
	struct server *srv = c->srv;
	uint64_t t0 = loopstat_now_ns();
	Kmalloc__Request *req;
	const char *kind;

	req = kmalloc__request__unpack(NULL, len, buf);
	if (!req) {
		conn_log(c, LOG_LEVEL_WARN, "undecodable packet of %zu bytes: closing", len);
		conn_close(c, "protocol error");
		loopstat_request(&srv->loop, loopstat_now_ns() - t0, "undecodable");
		return;
	}
	kind = request_kind(req->body_case);
	srv->requests++;
	reply.id = req->id;
	if (req->id == 0) {
		conn_log(c, LOG_LEVEL_NOTICE, "request with id 0 refused");
		reply_error(c, &reply, EINVAL, "request ids must not be 0");
	} else if (req->body_case == KMALLOC__REQUEST__BODY_HELLO) {
		handle_hello(c, req->hello, &reply);
	} else if (c->state != CONN_READY) {
		reply_error(c, &reply, EPROTO, "the first request must be hello");
	} else if (req->n_release > MAX_IDS_PER_REQUEST) {
		reply_error(c, &reply, E2BIG, "release list of %zu ids, over %d", req->n_release,
			    MAX_IDS_PER_REQUEST);
	} else {
		handle_release(c, req, &reply, failed);
		dispatch_body(c, req, &reply);
		paranoid_check(c);
	}
	kmalloc__request__free_unpacked(req, NULL);
	loopstat_request(&srv->loop, loopstat_now_ns() - t0, kind);
}
