// SPDX-License-Identifier: MIT
/*
 * dispatch.c - decode a Request, check it against the connection's state and
 * holdings, call the allocators, encode the Reply. Everything that arrives
 * here is hostile: sizes and counts are bounded before use, grant ids are
 * checked against the caller's own grants, and a failure anywhere answers
 * that one client and leaves the daemon's state as it was.
 */
#include "config.h"
#include "dispatch.h"

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
#include "inspect.h"
#include "kmalloc.h"
#include "log.h"
#include "server.h"
#include "vmalloc.h"
#include "wire.h"

#define PROTOCOL_VERSION	1
#define MAX_IDS_PER_REQUEST	1024	/* release / free lists, bulk count */
#define INSPECT_PAGE_ROWS	256	/* keeps every reply far below WIRE_MAX_REPLY */
/* A vmalloc reply lists every frame (up to 5 bytes each) and must fit in one
 * packet of the default socket buffer (~200 KiB): 16384 frames, 32 GiB. */
#define VMALLOC_MAX_FRAMES	16384u

/* ---- replies ---------------------------------------------------------- */

/* Packs and queues @reply; closes @c if the socket is gone. */
static int reply_send(struct conn *c, Kmalloc__Reply *reply, int pass_fd)
{
	uint8_t stack[4096], *buf = stack;
	size_t len = kmalloc__reply__get_packed_size(reply);
	int err;

	if (len > sizeof(stack)) {
		buf = malloc(len);
		if (!buf) {
			conn_close(c, "out of memory packing a reply");
			return -1;
		}
	}
	kmalloc__reply__pack(reply, buf);
	err = conn_send(c, buf, len, pass_fd);
	if (buf != stack)
		free(buf);
	if (err < 0) {
		conn_close(c, strerror(-err));
		return -1;
	}
	return 0;
}

static int reply_error(struct conn *c, Kmalloc__Reply *reply, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An error reply; the message also goes to the log (rate-limited). */
static int reply_error(struct conn *c, Kmalloc__Reply *reply, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply->error = err;
	reply->message = msg;
	reply->body_case = KMALLOC__REPLY__BODY__NOT_SET;
	return reply_send(c, reply, -1);
}

/* ---- grants ------------------------------------------------------------ */

/* The grant @id if @c holds it. */
static struct grant *grant_held(struct conn *c, uint64_t id)
{
	struct grant *g = grant_find(&c->srv->grants, id);

	return g && g->owner == c ? g : NULL;
}

static void paranoid_check(struct conn *c)
{
	if (c->srv->cfg->paranoid && c->domain && domain_check(c->domain) < 0) {
		log_err("paranoid: domain of uid %u fails its check after conn %" PRIu64 "'s request",
			(unsigned int)c->uid, c->id);
		abort();
	}
}

/* Writes the kernel-style gfp description "0xcc0(GFP_KERNEL|__GFP_ZERO)". */
static const char *gfp_describe(unsigned int gfp, char *buf, size_t len)
{
	static const struct { unsigned int mask; const char *name; } names[] = {
		{ KM_GFP_KERNEL, "GFP_KERNEL" }, { KM_GFP_ATOMIC, "GFP_ATOMIC" },
		{ KM_GFP_NOWAIT, "GFP_NOWAIT" }, { KM___GFP_HIGH, "__GFP_HIGH" },
		{ KM___GFP_ZERO, "__GFP_ZERO" }, { KM___GFP_NOWARN, "__GFP_NOWARN" },
		{ KM___GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL" },
		{ KM___GFP_NOFAIL, "__GFP_NOFAIL" }, { KM___GFP_NORETRY, "__GFP_NORETRY" },
	};
	unsigned int left = gfp & ~GFP_NO_RESERVE;
	size_t off = (size_t)snprintf(buf, len, "%#x(", left), i;
	bool first = true;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) && off < len; i++) {
		if ((left & names[i].mask) != names[i].mask || !(left & names[i].mask))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", first ? "" : "|",
					names[i].name);
		left &= ~names[i].mask;
		first = false;
	}
	if (off < len)
		snprintf(buf + off, len - off, "%s%s)", left && !first ? "|" : "",
			 left ? "..." : "");
	return buf;
}

/* The gfp the allocators see: what the client asked, and for an
 * unprivileged client no right to the emergency reserve whatever its flags
 * say (__GFP_HIGH, GFP_ATOMIC and __GFP_NOFAIL then get the ordinary
 * watermark; the reserve is for root and the privileged group). */
static unsigned int effective_gfp(const struct conn *c, unsigned int gfp)
{
	return c->limits.privileged ? gfp & ~GFP_NO_RESERVE : gfp | GFP_NO_RESERVE;
}

/* -EDQUOT (answered and logged) when holding @bytes and @grants more would
 * take @c's uid past a limit. */
static int check_quota(struct conn *c, Kmalloc__Reply *reply, const char *what, uint64_t bytes,
		       uint64_t grants)
{
	const struct account *acct = c->account;

	if (!account_may_charge(acct, &c->limits, bytes, grants))
		return 0;
	c->account->refusals++;
	conn_log(c, LOG_LEVEL_NOTICE, "%s of %" PRIu64 " bytes refused: uid holds %" PRIu64
		 " bytes in %" PRIu64 " grants, its limits are %" PRIu64 " bytes, %" PRIu64
		 " grants", what, bytes, acct->bytes, acct->grants, c->limits.max_bytes,
		 c->limits.max_grants);
	reply_error(c, reply, EDQUOT, "%s of %" PRIu64 " bytes: over the limits of uid %u", what,
		    bytes, (unsigned int)c->uid);
	return -EDQUOT;
}

static void warn_alloc(struct conn *c, unsigned int gfp, const char *what, uint64_t size)
{
	char desc[160];

	c->srv->alloc_failures++;
	if (gfp & KM___GFP_NOWARN)
		return;
	conn_log(c, LOG_LEVEL_WARN, "%s failure: size %" PRIu64 ", mode:%s", what, size,
		   gfp_describe(gfp, desc, sizeof(desc)));
}

/* ---- requests ------------------------------------------------------------ */

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

static int handle_hello(struct conn *c, Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	struct server *srv = c->srv;
	Kmalloc__Welcome welcome = KMALLOC__WELCOME__INIT;
	struct domain *d;
	int err;

	if (c->state != CONN_HELLO)
		return reply_error(c, reply, EPROTO, "hello already received");
	if (req->hello->version != PROTOCOL_VERSION)
		return reply_error(c, reply, EPROTO,
				   "protocol version %u not supported (this daemon speaks %d)",
				   req->hello->version, PROTOCOL_VERSION);

	if (req->hello->name && req->hello->name[0])
		sanitize_name(c->name, sizeof(c->name), req->hello->name);
	else
		name_from_proc(c);

	err = domain_get(&srv->mm, c->uid, &d);
	if (err < 0) {
		conn_log(c, LOG_LEVEL_WARN, "no domain: %s", strerror(-err));
		return reply_error(c, reply, -err, "cannot create the domain of uid %u: %s",
				   (unsigned int)c->uid, strerror(-err));
	}
	c->domain = d;
	if (getrandom(c->token, sizeof(c->token), 0) != sizeof(c->token))
		memset(c->token, 0, sizeof(c->token));
	c->state = CONN_READY;
	event_del(c->ev_hello);
	conn_log(c, LOG_LEVEL_DEBUG, "%s -> %s, domain %u", conn_state_names[CONN_HELLO],
		 conn_state_names[CONN_READY], d->id);

	welcome.version = PROTOCOL_VERSION;
	welcome.pool_size = srv->mm.pool.size;
	welcome.frame_size = srv->mm.pool.frame_size;
	welcome.page_size = 1u << POOL_PAGE_SHIFT;
	welcome.hugetlb = srv->mm.pool.hugetlb;
	welcome.domain = d->id;
	welcome.max_packet = srv->cfg->max_packet;
	welcome.max_order = KMALLOC_MAX_ORDER;
	welcome.token.data = c->token;
	welcome.token.len = sizeof(c->token);
	reply->body_case = KMALLOC__REPLY__BODY_WELCOME;
	reply->welcome = &welcome;
	return reply_send(c, reply, d->memfd);
}

static int handle_alloc(struct conn *c, Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	Kmalloc__Alloc *a = req->alloc;
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	uint32_t count = a->count ? a->count : 1, i, done = 0;
	/* Single and small bulk allocations, the hot path, stay off the heap. */
	struct grant *grants_small[8];
	Kmalloc__Grant msgs_small[8], *ptrs_small[8];
	struct grant **grants = grants_small;
	Kmalloc__Grant *msgs = msgs_small, **ptrs = ptrs_small;
	unsigned int gfp;
	int err = 0, ret;

	if (a->size == 0)
		return reply_error(c, reply, EINVAL, "kmalloc of size 0 (use KM_ZERO_SIZE_PTR)");
	if (count > MAX_IDS_PER_REQUEST)
		return reply_error(c, reply, EINVAL, "bulk count %u over %d", count,
				   MAX_IDS_PER_REQUEST);
	if (a->size > KMALLOC_MAX_SIZE) {
		warn_alloc(c, a->gfp, "kmalloc", a->size);
		return reply_error(c, reply, ENOMEM, "kmalloc of %" PRIu64
				   " bytes: above KMALLOC_MAX_SIZE (4 MiB)", a->size);
	}

	if (check_quota(c, reply, "kmalloc", count * kmalloc_size_roundup(a->size), count) < 0)
		return 0;
	gfp = effective_gfp(c, a->gfp);
	if (count > 8) {
		grants = calloc(count, sizeof(*grants));
		msgs = calloc(count, sizeof(*msgs));
		ptrs = calloc(count, sizeof(*ptrs));
		if (!grants || !msgs || !ptrs) {
			err = ENOMEM;
			goto out;
		}
	}
	/* All or nothing, as kmem_cache_alloc_bulk(). */
	for (done = 0; done < count; done++) {
		struct grant *g = grant_new(&c->srv->grants, GRANT_KMALLOC);
		int e;

		if (!g) {
			err = ENOMEM;
			break;
		}
		e = kmalloc_alloc(c->domain, a->size, gfp, &g->k);
		if (e < 0) {
			grant_delete(&c->srv->grants, g);
			err = -e;
			break;
		}
		g->domain = c->domain;
		g->size = a->size;
		g->bytes = g->k.size;
		g->gfp = a->gfp;
		grants[done] = g;
	}
	if (err) {
		for (i = 0; i < done; i++) {
			kmalloc_free(grants[i]->domain, &grants[i]->k);
			grant_delete(&c->srv->grants, grants[i]);
		}
		goto out;
	}
	for (i = 0; i < count; i++) {
		conn_grant_add(c, grants[i]);
		kmalloc__grant__init(&msgs[i]);
		msgs[i].id = grants[i]->id;
		msgs[i].phys = grants[i]->k.phys;
		msgs[i].size = grants[i]->k.size;
		ptrs[i] = &msgs[i];
	}
	body.n_grants = count;
	body.grants = ptrs;
	reply->body_case = KMALLOC__REPLY__BODY_ALLOC;
	reply->alloc = &body;
out:
	if (err) {
		if (err == ENOMEM)
			warn_alloc(c, a->gfp, "kmalloc", a->size * count);
		ret = reply_error(c, reply, err, "kmalloc of %u x %" PRIu64 " bytes: %s", count,
				  a->size, err == EFAULT ? "the domain's memory was punched out by "
				  "one of its clients" : strerror(err));
	} else {
		ret = reply_send(c, reply, -1);
	}
	if (count > 8) {
		free(grants);
		free(msgs);
		free(ptrs);
	}
	return ret;
}

static int handle_vmalloc(struct conn *c, Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	Kmalloc__Vmalloc *v = req->vmalloc;
	Kmalloc__VmallocReply body = KMALLOC__VMALLOC_REPLY__INIT;
	uint64_t frame_size = c->srv->mm.pool.frame_size, nr_frames;
	struct grant *g;
	int err;

	if (v->size == 0)
		return reply_error(c, reply, EINVAL, "vmalloc of size 0");
	if (v->size / frame_size >= VMALLOC_MAX_FRAMES) {
		warn_alloc(c, v->gfp, "vmalloc", v->size);
		return reply_error(c, reply, ENOMEM, "vmalloc error: size %" PRIu64
				   ", over the %u frames one area may have", v->size,
				   VMALLOC_MAX_FRAMES);
	}
	nr_frames = (v->size + frame_size - 1) / frame_size;
	if (check_quota(c, reply, "vmalloc", nr_frames * frame_size, 1) < 0)
		return 0;
	g = grant_new(&c->srv->grants, GRANT_VMALLOC);
	if (!g)
		return reply_error(c, reply, ENOMEM, "out of memory");
	err = vmalloc_alloc(c->domain, v->size, effective_gfp(c, v->gfp), &g->v.frames,
			    &g->v.nr_frames);
	if (err < 0) {
		grant_delete(&c->srv->grants, g);
		if (err == -ENOMEM)
			warn_alloc(c, v->gfp, "vmalloc", v->size);
		return reply_error(c, reply, -err, "vmalloc error: size %" PRIu64 ", %s", v->size,
				   err == -ENOMEM ? "failed to allocate pages" : strerror(-err));
	}
	g->domain = c->domain;
	g->size = v->size;
	g->bytes = (uint64_t)g->v.nr_frames * frame_size;
	g->gfp = v->gfp;
	g->v.vaddr = v->vaddr;
	sanitize_name(g->v.caller, sizeof(g->v.caller), v->caller);
	conn_grant_add(c, g);

	body.id = g->id;
	body.size = g->bytes;
	body.n_frames = g->v.nr_frames;
	body.frames = g->v.frames;
	reply->body_case = KMALLOC__REPLY__BODY_VMALLOC;
	reply->vmalloc = &body;
	return reply_send(c, reply, -1);
}

static int handle_free(struct conn *c, Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	Kmalloc__Free *f = req->free;
	Kmalloc__FreeReply body = KMALLOC__FREE_REPLY__INIT;
	uint64_t unknown[MAX_IDS_PER_REQUEST];
	size_t i;

	if (f->n_grants > MAX_IDS_PER_REQUEST)
		return reply_error(c, reply, E2BIG, "free of %zu grants, over %d", f->n_grants,
				   MAX_IDS_PER_REQUEST);
	for (i = 0; i < f->n_grants; i++) {
		struct grant *g = grant_held(c, f->grants[i]);

		if (!g) {
			unknown[body.n_unknown++] = f->grants[i];
			continue;
		}
		conn_grant_release(c, g);
		body.freed++;
	}
	reply->body_case = KMALLOC__REPLY__BODY_FREE;
	reply->free = &body;
	if (body.n_unknown) {
		body.unknown = unknown;
		conn_log(c, LOG_LEVEL_WARN, "free of %zu grant(s) it does not hold (first %" PRIu64
			   ")", body.n_unknown, unknown[0]);
		reply->error = ENOENT;
		reply->message = "grant not held by this connection (double free?)";
	}
	return reply_send(c, reply, -1);
}

static int handle_meminfo(struct conn *c, Kmalloc__Reply *reply)
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
	return reply_send(c, reply, -1);
}

/* ---- inspection (kmctl) --------------------------------------------------- */

static int inspect_slab_page(struct conn *c, Kmalloc__InspectReply *body, Kmalloc__Reply *reply)
{
	struct inspect_slab rows[NR_KMALLOC_CACHES];
	Kmalloc__SlabRow msgs[NR_KMALLOC_CACHES], *ptrs[NR_KMALLOC_CACHES];
	int i;

	inspect_slabinfo(&c->srv->mm, rows);
	/* /proc/slabinfo lists the newest cache first and the boot-time kmalloc
	 * caches last, largest first: keep that order. */
	for (i = 0; i < NR_KMALLOC_CACHES; i++) {
		const struct inspect_slab *r = &rows[NR_KMALLOC_CACHES - 1 - i];

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
	body->n_slabs = NR_KMALLOC_CACHES;
	body->slabs = ptrs;
	return reply_send(c, reply, -1);
}

static int inspect_buddy_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
			      Kmalloc__Reply *reply)
{
	static struct inspect_buddy rows[INSPECT_PAGE_ROWS + 1];
	static Kmalloc__BuddyRow msgs[INSPECT_PAGE_ROWS];
	Kmalloc__BuddyRow *ptrs[INSPECT_PAGE_ROWS];
	uint32_t n = 0;

	while (n < INSPECT_PAGE_ROWS && inspect_buddyinfo(&c->srv->mm, offset + n, &rows[n])) {
		kmalloc__buddy_row__init(&msgs[n]);
		msgs[n].zone = rows[n].zone;
		msgs[n].n_nr_free = INSPECT_BUDDY_ORDERS;
		msgs[n].nr_free = rows[n].nr_free;
		ptrs[n] = &msgs[n];
		n++;
	}
	/* Is there a next page? Asked into a spare row, not into one sent. */
	if (n == INSPECT_PAGE_ROWS &&
	    inspect_buddyinfo(&c->srv->mm, offset + n, &rows[INSPECT_PAGE_ROWS]))
		body->next_offset = offset + n;
	body->n_buddy = n;
	body->buddy = ptrs;
	return reply_send(c, reply, -1);
}

static int inspect_vmalloc_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				Kmalloc__Reply *reply)
{
	static Kmalloc__VmallocRow msgs[INSPECT_PAGE_ROWS];
	Kmalloc__VmallocRow *ptrs[INSPECT_PAGE_ROWS];
	uint64_t frame_size = c->srv->mm.pool.frame_size;
	uint32_t index = 0, n = 0;
	struct conn *o;
	struct grant *g;

	TAILQ_FOREACH(o, &c->srv->conns, link) {
		for (g = o->grants; g; g = g->owner_next) {
			if (g->kind != GRANT_VMALLOC)
				continue;
			if (index++ < offset)
				continue;
			if (n == INSPECT_PAGE_ROWS) {
				body->next_offset = offset + n;
				goto done;
			}
			kmalloc__vmalloc_row__init(&msgs[n]);
			msgs[n].start = g->v.vaddr;
			/* As vm_struct.size: the area plus its guard. */
			msgs[n].size = ((uint64_t)g->v.nr_frames + 1) * frame_size;
			msgs[n].caller = g->v.caller;
			msgs[n].pages = (uint64_t)g->v.nr_frames * (frame_size >> POOL_PAGE_SHIFT);
			msgs[n].pid = (uint32_t)o->pid;
			msgs[n].grant = g->id;
			msgs[n].domain = g->domain->id;
			ptrs[n] = &msgs[n];
			n++;
		}
	}
done:
	body->n_vmalloc = n;
	body->vmalloc = ptrs;
	return reply_send(c, reply, -1);
}

static int inspect_clients_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				Kmalloc__Reply *reply)
{
	static Kmalloc__ClientRow msgs[INSPECT_PAGE_ROWS];
	Kmalloc__ClientRow *ptrs[INSPECT_PAGE_ROWS];
	uint32_t index = 0, n = 0;
	struct conn *o;

	TAILQ_FOREACH(o, &c->srv->conns, link) {
		if (index++ < offset)
			continue;
		if (n == INSPECT_PAGE_ROWS) {
			body->next_offset = offset + n;
			break;
		}
		kmalloc__client_row__init(&msgs[n]);
		msgs[n].pid = (uint32_t)o->pid;
		msgs[n].uid = (uint32_t)o->uid;
		msgs[n].name = o->name;
		msgs[n].grants = o->nr_grants;
		msgs[n].bytes = o->bytes;
		msgs[n].domain = o->domain ? o->domain->id : 0;
		msgs[n].conn = o->id;
		msgs[n].admin = o->admin;
		msgs[n].closing = o->state == CONN_CLOSING;
		ptrs[n] = &msgs[n];
		n++;
	}
	body->n_clients = n;
	body->clients = ptrs;
	return reply_send(c, reply, -1);
}

static int inspect_accounts_page(struct conn *c, uint32_t offset, Kmalloc__InspectReply *body,
				 Kmalloc__Reply *reply)
{
	static Kmalloc__AccountRow msgs[INSPECT_PAGE_ROWS];
	Kmalloc__AccountRow *ptrs[INSPECT_PAGE_ROWS];
	uint32_t index = 0, n = 0;
	const struct account *a;

	TAILQ_FOREACH(a, &c->srv->accounts.list, link) {
		const struct domain *d;

		if (index++ < offset)
			continue;
		if (n == INSPECT_PAGE_ROWS) {
			body->next_offset = offset + n;
			break;
		}
		kmalloc__account_row__init(&msgs[n]);
		msgs[n].uid = (uint32_t)a->uid;
		for (d = c->srv->mm.domains; d; d = d->next)
			if (d->uid == a->uid)
				msgs[n].domain = d->id;
		msgs[n].connections = a->connections;
		msgs[n].max_connections = a->limits.max_connections;
		msgs[n].grants = a->grants;
		msgs[n].max_grants = a->limits.max_grants;
		msgs[n].bytes = a->bytes;
		msgs[n].max_bytes = a->limits.max_bytes;
		msgs[n].privileged = a->limits.privileged;
		msgs[n].refusals = a->refusals;
		ptrs[n] = &msgs[n];
		n++;
	}
	body->n_accounts = n;
	body->accounts = ptrs;
	return reply_send(c, reply, -1);
}

static int handle_inspect(struct conn *c, Kmalloc__Request *req, Kmalloc__Reply *reply)
{
	Kmalloc__InspectReply body = KMALLOC__INSPECT_REPLY__INIT;
	uint32_t offset = req->inspect->offset;

	if (!c->admin) {
		conn_log(c, LOG_LEVEL_NOTICE, "inspection refused: not root nor in the admin group");
		return reply_error(c, reply, EACCES,
				   "inspection needs root or membership of the admin group");
	}
	body.table = req->inspect->table;
	reply->body_case = KMALLOC__REPLY__BODY_INSPECT;
	reply->inspect = &body;
	switch (req->inspect->table) {
	case KMALLOC__INSPECT__TABLE__TABLE_SLABINFO:
		return inspect_slab_page(c, &body, reply);
	case KMALLOC__INSPECT__TABLE__TABLE_BUDDYINFO:
		return inspect_buddy_page(c, offset, &body, reply);
	case KMALLOC__INSPECT__TABLE__TABLE_VMALLOCINFO:
		return inspect_vmalloc_page(c, offset, &body, reply);
	case KMALLOC__INSPECT__TABLE__TABLE_CLIENTS:
		return inspect_clients_page(c, offset, &body, reply);
	case KMALLOC__INSPECT__TABLE__TABLE_ACCOUNTS:
		return inspect_accounts_page(c, offset, &body, reply);
	default:
		return reply_error(c, reply, EINVAL, "unknown inspection table %d",
				   (int)req->inspect->table);
	}
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

int dispatch_oversized(struct conn *c)
{
	Kmalloc__Reply reply = KMALLOC__REPLY__INIT;

	conn_log(c, LOG_LEVEL_WARN, "packet over max_packet (%u bytes) dropped",
		   c->srv->cfg->max_packet);
	return reply_error(c, &reply, E2BIG, "packet larger than max_packet (%u bytes)",
			   c->srv->cfg->max_packet);
}

/* Frees the deferred kfrees riding on a request; ids not held are reported. */
static void handle_release(struct conn *c, const Kmalloc__Request *req, Kmalloc__Reply *reply,
			   uint64_t *failed)
{
	size_t i;

	for (i = 0; i < req->n_release; i++) {
		struct grant *g = grant_held(c, req->release[i]);

		if (g)
			conn_grant_release(c, g);
		else
			failed[reply->n_release_failed++] = req->release[i];
	}
	if (reply->n_release_failed) {
		reply->release_failed = failed;
		conn_log(c, LOG_LEVEL_WARN, "release of %zu grant(s) it does not hold (first %"
			   PRIu64 ")", reply->n_release_failed, failed[0]);
	}
}

int dispatch_packet(struct conn *c, const uint8_t *buf, size_t len)
{
	Kmalloc__Reply reply = KMALLOC__REPLY__INIT;
	uint64_t failed[MAX_IDS_PER_REQUEST];
	Kmalloc__Request *req;
	int ret;

	req = kmalloc__request__unpack(NULL, len, buf);
	if (!req) {
		conn_log(c, LOG_LEVEL_WARN, "undecodable packet of %zu bytes: closing", len);
		conn_close(c, "protocol error");
		return -1;
	}
	c->srv->requests++;
	reply.id = req->id;
	if (req->id == 0) {
		conn_log(c, LOG_LEVEL_NOTICE, "request with id 0 refused");
		ret = reply_error(c, &reply, EINVAL, "request ids must not be 0");
		goto out;
	}

	if (req->body_case == KMALLOC__REQUEST__BODY_HELLO) {
		ret = handle_hello(c, req, &reply);
		goto out;
	}
	if (c->state != CONN_READY) {
		ret = reply_error(c, &reply, EPROTO, "the first request must be hello");
		goto out;
	}
	if (req->n_release > MAX_IDS_PER_REQUEST) {
		ret = reply_error(c, &reply, E2BIG, "release list of %zu ids, over %d",
				  req->n_release, MAX_IDS_PER_REQUEST);
		goto out;
	}
	handle_release(c, req, &reply, failed);

	switch (req->body_case) {
	case KMALLOC__REQUEST__BODY_ALLOC:
		ret = handle_alloc(c, req, &reply);
		break;
	case KMALLOC__REQUEST__BODY_VMALLOC:
		ret = handle_vmalloc(c, req, &reply);
		break;
	case KMALLOC__REQUEST__BODY_FREE:
		ret = handle_free(c, req, &reply);
		break;
	case KMALLOC__REQUEST__BODY_MEMINFO:
		ret = handle_meminfo(c, &reply);
		break;
	case KMALLOC__REQUEST__BODY_INSPECT:
		ret = handle_inspect(c, req, &reply);
		break;
	case KMALLOC__REQUEST__BODY_NOP: {
		Kmalloc__Nop nop = KMALLOC__NOP__INIT;

		reply.body_case = KMALLOC__REPLY__BODY_NOP;
		reply.nop = &nop;
		ret = reply_send(c, &reply, -1);
		break;
	}
	default:
		conn_log(c, LOG_LEVEL_NOTICE, "unknown request (body %d)", (int)req->body_case);
		ret = reply_error(c, &reply, ENOSYS, "unknown request");
		break;
	}
	if (ret == 0)
		paranoid_check(c);
out:
	kmalloc__request__free_unpacked(req, NULL);
	return ret;
}
