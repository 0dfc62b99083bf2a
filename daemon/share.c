// SPDX-License-Identifier: MIT
/*
 * share.c - memory objects, shares and handles (share.h).
 *
 * A memobj's holders are grants (grant.c makes and links them; this file
 * keeps the list of who holds what, which is the reference count). The
 * last holder's drop frees the memory by kind, through the same calls the
 * grant it was made from would have made, so the domain's counters and
 * slabinfo never see a difference between a shared and a private grant.
 *
 * Shareable memory (MEMFD_*) is frames the domain owns (counted in it, in
 * the pool and in meminfo as before) whose pages were moved out of the
 * domain memfd into a memfd of their own: a client of another uid may be
 * given that memfd, never the domain's. d->share_frames and the
 * FRAME_USE_SHARED marks keep domain_check() and domain_reconcile() true.
 */
#include "config.h"
#include "share.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "domain.h"
#include "frame.h"
#include "grant.h"
#include "kmalloc.h"
#include "log.h"
#include "sizes.h"
#include "vmalloc.h"

#define SHARE_MIN_BUCKETS 64u
/* Live handles one share may have (besides max_handles, which bounds the
 * handles of a uid): one share's list stays short to sweep at an export.
 * Expired handles no held import came through are swept first. */
#define SHARE_MAX_HANDLES 1024u
/* Holders one memobj may have at once (its exporter's and the imports): a
 * revoke or the memory's death ends them all in one event-loop turn, which
 * this keeps short (~1 ms here), however many imports a uid's grant limit
 * would allow. */
#define SHARE_MAX_HOLDERS 4096u

const char *const memobj_kind_names[MEMOBJ_KIND_MAX] = {
	[MEMOBJ_KMALLOC] = "kmalloc",
	[MEMOBJ_SLAB] = "slab",
	[MEMOBJ_VMALLOC] = "vmalloc",
	[MEMOBJ_MEMFD_KMALLOC] = "shared-kmalloc",
	[MEMOBJ_MEMFD_VMALLOC] = "shared-vmalloc",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool memobj_is_memfd(const struct memobj *o)
{
	return o->kind == MEMOBJ_MEMFD_KMALLOC || o->kind == MEMOBJ_MEMFD_VMALLOC;
}

/* ---- the table and its hash of handles ---------------------------------- */

int share_table_init(struct share_table *t, struct grant_table *grants)
{
	memset(t, 0, sizeof(*t));
	t->grants = grants;
	TAILQ_INIT(&t->memobjs);
	TAILQ_INIT(&t->handles);
	t->buckets = malloc(SHARE_MIN_BUCKETS * sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->nr_buckets = SHARE_MIN_BUCKETS;
	for (uint32_t i = 0; i < t->nr_buckets; i++)
		TAILQ_INIT(&t->buckets[i]);
	t->next_handle_id = t->next_share_id = t->next_memobj_id = 1;
	return 0;
}

void share_table_fini(struct share_table *t)
{
	assert(TAILQ_EMPTY(&t->memobjs) && t->nr_handles == 0);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

/* Handle ids come from a counter: a multiplicative hash spreads them. */
static struct share_handle_list *bucket_of(const struct share_table *t, uint64_t id)
{
	return &t->buckets[(id * 0x9e3779b97f4a7c15ull) >> 32 & (t->nr_buckets - 1)];
}

/* Doubles the buckets once there are twice as many handles (amortized:
 * a rehash per doubling); without memory the chains just get longer. */
static void hash_grow(struct share_table *t)
{
	struct share_handle_list *old = t->buckets;
	uint32_t old_n = t->nr_buckets, i;
	struct share_handle *h;

	if (t->nr_handles < 2 * t->nr_buckets || t->nr_buckets > (1u << 30))
		return;
	t->buckets = malloc(2 * (size_t)old_n * sizeof(*t->buckets));
	if (!t->buckets) {
		t->buckets = old;
		return;
	}
	t->nr_buckets = 2 * old_n;
	for (i = 0; i < t->nr_buckets; i++)
		TAILQ_INIT(&t->buckets[i]);
	for (i = 0; i < old_n; i++)
		while ((h = TAILQ_FIRST(&old[i]))) {
			TAILQ_REMOVE(&old[i], h, bucket);
			TAILQ_INSERT_TAIL(bucket_of(t, h->id), h, bucket);
		}
	free(old);
}

static uint64_t handle_id_of(const uint8_t *handle)
{
	uint64_t id = 0;

	for (int i = 7; i >= 0; i--)
		id = id << 8 | handle[i];
	return id;
}

/* Compares the secret in constant time: how many bytes match must not show
 * in how long a forged handle takes to be refused. */
static bool secret_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < SHARE_SECRET_SIZE; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* The handle of id @id, or NULL. */
static struct share_handle *handle_by_id(const struct share_table *t, uint64_t id)
{
	struct share_handle *h;

	TAILQ_FOREACH(h, bucket_of(t, id), bucket)
		if (h->id == id)
			return h;
	return NULL;
}

/* The handle @handle names, or NULL (unknown id, or the secret is wrong). */
static struct share_handle *handle_lookup(const struct share_table *t, const uint8_t *handle)
{
	uint64_t id = handle_id_of(handle);
	struct share_handle *h;

	TAILQ_FOREACH(h, bucket_of(t, id), bucket)
		if (h->id == id)
			return secret_equal(h->secret, handle + 8) ? h : NULL;
	return NULL;
}

/* Charges a new handle to @acct (its creator's account), whose reference
 * it holds: the handle may outlive every connection of that uid, and its
 * count must stay on the account until the handle dies. */
static void handle_charge(struct share_handle *h, struct account *acct)
{
	h->acct = acct;
	account_ref(acct);
	acct->handles++;
}

static void handle_free(struct share_table *t, struct share_handle *h)
{
	if (t->sweep_next == h) /* the tick's sweep goes on after it */
		t->sweep_next = TAILQ_NEXT(h, all);
	if (h->acct) {
		assert(h->acct->handles > 0);
		h->acct->handles--;
		account_put(t->accounts, h->acct);
	}
	TAILQ_REMOVE(&h->share->handles, h, link);
	TAILQ_REMOVE(bucket_of(t, h->id), h, bucket);
	TAILQ_REMOVE(&t->handles, h, all);
	t->nr_handles--;
	explicit_bzero(h->secret, sizeof(h->secret));
	free(h);
}

/* A new handle on @s, exported by @c with @a's restrictions. */
static struct share_handle *handle_new(struct share_table *t, struct share *s, struct conn *c,
				       const struct share_export_args *a)
{
	struct share_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	if (getrandom(h->secret, sizeof(h->secret), 0) != (ssize_t)sizeof(h->secret)) {
		free(h);
		return NULL;
	}
	h->share = s;
	h->id = t->next_handle_id++;
	h->creator = c->uid;
	handle_charge(h, c->account);
	h->flags = a->flags;
	h->uid = a->uid;
	h->max_imports = a->max_imports;
	h->created_ns = now_ns();
	h->expiry_ns = a->lifetime_ms ? h->created_ns + a->lifetime_ms * 1000000ull : 0;
	TAILQ_INSERT_TAIL(&s->handles, h, link);
	TAILQ_INSERT_TAIL(bucket_of(t, h->id), h, bucket);
	TAILQ_INSERT_TAIL(&t->handles, h, all);
	t->nr_handles++;
	hash_grow(t);
	return h;
}

static void handle_format(const struct share_handle *h, uint8_t out[SHARE_HANDLE_SIZE])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(h->id >> (8 * i));
	memcpy(out + 8, h->secret, SHARE_SECRET_SIZE);
}

/* ---- memobjs --------------------------------------------------------------- */

/* A memobj not on the table yet, with room for its first holder and a reference
 * on @d (the memory outlives the exporter's connection). */
static struct memobj *memobj_alloc(struct share_table *t, struct domain *d, enum memobj_kind kind)
{
	struct memobj *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->spare = malloc(sizeof(*o->spare));
	if (!o->spare) {
		free(o);
		return NULL;
	}
	TAILQ_INIT(&o->refs);
	o->tab = t;
	o->d = d;
	d->refs++; /* not domain_ref(): a restored domain may have no other holder */
	o->kind = kind;
	o->cache = -1;
	o->memfd = o->rofd = -1;
	TAILQ_INIT(&o->shares);
	return o;
}

/* On the table (and its area on vmallocinfo's list, for a restored one). */
static void memobj_link(struct share_table *t, struct memobj *o)
{
	TAILQ_INSERT_TAIL(&t->memobjs, o, link);
	t->nr_memobjs++;
	if (o->id >= t->next_memobj_id)
		t->next_memobj_id = o->id + 1;
}

struct memobj *memobj_new(struct share_table *t, struct domain *d, enum memobj_kind kind)
{
	struct memobj *o = memobj_alloc(t, d, kind);

	if (o) {
		o->id = t->next_memobj_id;
		memobj_link(t, o);
	}
	return o;
}

int memobj_reserve(struct memobj *o)
{
	if (!o->spare)
		o->spare = malloc(sizeof(*o->spare));
	return o->spare ? 0 : -ENOMEM;
}

/* The handle an import ref came through, its count of held imports moved
 * by @delta. A handle with held imports is never freed (sweeps skip it, a
 * revoked one stays): it is there unless a restart lost it. */
static void handle_held_add(const struct memobj *o, const struct memobj_ref *r, int delta)
{
	struct share_handle *h = r->share ? handle_by_id(o->tab, r->handle_id) : NULL;

	if (h) {
		assert(delta > 0 || h->held > 0);
		h->held += (uint32_t)delta;
	}
}

void memobj_hold(struct memobj *o, struct grant *g, struct share *s, uint64_t handle_id)
{
	struct memobj_ref *r = o->spare;

	assert(r);
	o->spare = NULL;
	*r = (struct memobj_ref){ .obj = o, .g = g, .share = s, .handle_id = handle_id };
	TAILQ_INSERT_TAIL(&o->refs, r, link);
	o->nr_refs++;
	g->ref = r;
	handle_held_add(o, r, 1);
}

static uint32_t memobj_frame(const struct memobj *o, uint32_t i)
{
	if (o->kind == MEMOBJ_VMALLOC || o->kind == MEMOBJ_MEMFD_VMALLOC)
		return o->area->frames[i];
	return (uint32_t)(o->phys >> KM_FRAME_SHIFT) + i;
}

/* Moves frame @f's pages from the domain memfd to @fd at frame @i: punched
 * first, so that on hugetlb the hugepage it frees can back the new one. */
static int frame_move_out(struct memobj *o, int fd, uint32_t f, uint32_t i)
{
	const struct pool *pool = &o->d->mm->pool;
	int err;

	err = pool_frames_punch(pool, o->d->memfd, f, 1);
	if (!err)
		err = pool_frames_populate(pool, fd, i, 1);
	if (err && pool_frames_populate(pool, o->d->memfd, f, 1) < 0)
		log_err("domain %" PRIu32 ": frame %" PRIu32 " lost its backing (%s); reconcile "
			"repairs it",
			o->d->id, f, strerror(-err));
	return err;
}

int memobj_make_shareable(struct memobj *o)
{
	struct mm *mm = o->d->mm;
	uint32_t nr, i;
	int fd, err;

	if (o->kind == MEMOBJ_KMALLOC && o->cache < 0 && o->order >= KM_FRAME_ORDER)
		nr = 1u << (o->order - KM_FRAME_ORDER);
	else if (o->kind == MEMOBJ_VMALLOC)
		nr = o->area->nr_frames;
	else
		return -EINVAL;
	err = pool_share_memfd_create(&mm->pool, nr, &fd);
	if (err)
		return err;
	for (i = 0; i < nr; i++) {
		err = frame_move_out(o, fd, memobj_frame(o, i), i);
		if (err)
			break;
	}
	if (err) {
		close(fd); /* first: on hugetlb its pages are what the domain needs back */
		while (i--)
			pool_frames_populate(&mm->pool, o->d->memfd, memobj_frame(o, i), 1);
		return err;
	}
	o->kind = o->kind == MEMOBJ_KMALLOC ? MEMOBJ_MEMFD_KMALLOC : MEMOBJ_MEMFD_VMALLOC;
	o->memfd = fd;
	o->nr_frames = nr;
	for (i = 0; i < nr; i++)
		mm->frame_use[memobj_frame(o, i)] |= FRAME_USE_SHARED;
	o->d->share_frames += nr;
	return 0;
}

/* A MEMFD memobj's frames leave their memfd: punched there (so that no
 * importer's mapping keeps the pages) and backed in the domain memfd again.
 * False when that failed: the frames must then go to the frame allocator
 * (frame_put(), which quarantines what the reserve cannot back). */
static bool memobj_unshare_frames(struct memobj *o)
{
	struct mm *mm = o->d->mm;
	uint32_t i, f;
	int err;

	err = pool_frames_punch(&mm->pool, o->memfd, 0, o->nr_frames);
	if (err)
		log_err("domain %" PRIu32 ": a share memfd would not give back its %" PRIu32
			" frames (%s)",
			o->d->id, o->nr_frames, strerror(-err));
	for (i = 0; i < o->nr_frames; i++) {
		f = memobj_frame(o, i);
		mm->frame_use[f] &= (uint8_t)~FRAME_USE_SHARED;
		if (!err)
			err = pool_frames_populate(&mm->pool, o->d->memfd, f, 1);
	}
	o->d->share_frames -= o->nr_frames;
	close(o->memfd);
	if (o->rofd >= 0)
		close(o->rofd);
	o->memfd = o->rofd = -1;
	return err == 0;
}

/* The frames of a MEMFD memobj that could not come back to the domain
 * memfd: given to the frame allocator, out of the domain's counts. */
static void memobj_frames_to_pool(struct memobj *o)
{
	struct domain *d = o->d;
	uint32_t i, f;

	for (i = 0; i < o->nr_frames; i++) {
		f = memobj_frame(o, i);
		d->mm->frame_use[f] = FRAME_USE_PAGES;
		frame_put(&d->mm->frames, d->memfd, f, 0);
	}
	d->nr_frames -= o->nr_frames;
	if (o->kind == MEMOBJ_MEMFD_KMALLOC)
		d->large_pages -= 1ull << o->order;
	else
		d->vmalloc_frames -= o->nr_frames;
}

/* Frees the memory as the grant it was made from would have. */
static void memobj_free_memory(struct memobj *o)
{
	struct grant_table *gt = o->tab->grants;
	struct kmalloc_obj obj = {
		.phys = o->phys, .size = o->bytes, .order = o->order, .cache = o->cache
	};

	if (o->area) { /* off vmallocinfo */
		TAILQ_REMOVE(&gt->areas, o->area, link);
		gt->nr_areas--;
		o->area->grant = NULL;
	}
	if (memobj_is_memfd(o) && !memobj_unshare_frames(o)) {
		memobj_frames_to_pool(o);
		free(o->area);
		return;
	}
	switch (o->kind) {
	case MEMOBJ_KMALLOC:
	case MEMOBJ_MEMFD_KMALLOC:
		kmalloc_free(o->d, &obj);
		break;
	case MEMOBJ_SLAB:
		kmalloc_slab_free(o->d, o->cache, o->phys);
		break;
	default:
		vmalloc_free(o->d, o->area);
		break;
	}
}

static void share_free(struct share_table *t, struct share *s)
{
	struct share_handle *h;

	while ((h = TAILQ_FIRST(&s->handles)))
		handle_free(t, h);
	TAILQ_REMOVE(&s->obj->shares, s, link);
	free(s);
}

static void memobj_destroy(struct memobj *o)
{
	struct share_table *t = o->tab;
	struct share *s;

	while ((s = TAILQ_FIRST(&o->shares)))
		share_free(t, s);
	memobj_free_memory(o);
	TAILQ_REMOVE(&t->memobjs, o, link);
	t->nr_memobjs--;
	domain_put(o->d);
	free(o->spare);
	free(o);
}

void memobj_drop(struct memobj *o, struct grant *g)
{
	struct memobj_ref *r = g->ref;

	assert(r && r->obj == o && r->g == g);
	handle_held_add(o, r, -1);
	TAILQ_REMOVE(&o->refs, r, link);
	o->nr_refs--;
	free(r);
	/* vmallocinfo names an area by a grant that holds it. */
	if (o->area && o->area->grant == g)
		o->area->grant = o->nr_refs ? TAILQ_FIRST(&o->refs)->g : NULL;
	if (o->nr_refs == 0)
		memobj_destroy(o);
}

/* ---- shares and export ------------------------------------------------------ */

/* The share of @o for [offset, offset + size), made (for exporter @c) when
 * there is none yet. NULL without memory. */
static struct share *share_get(struct share_table *t, struct memobj *o, uint64_t offset,
			       uint64_t size, const struct conn *c)
{
	struct share *s;

	TAILQ_FOREACH(s, &o->shares, link)
		if (s->offset == offset && s->size == size)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->obj = o;
	s->id = t->next_share_id++;
	s->offset = offset;
	s->size = size;
	s->pid = c->pid;
	s->uid = c->uid;
	snprintf(s->name, sizeof(s->name), "%s", c->name);
	s->conn_id = c->id;
	s->created_ns = now_ns();
	TAILQ_INIT(&s->handles);
	TAILQ_INSERT_TAIL(&o->shares, s, link);
	return s;
}

/* What of grant @g an export of (@offset, @size) shares: the whole grant
 * (0, 0), or for a slab one object on an object boundary. The range in
 * *off and *len; false when it is not one of those. */
static bool export_range(const struct grant *g, uint64_t offset, uint64_t size, uint64_t *off,
			 uint64_t *len)
{
	const struct memobj *o = g->kind == GRANT_MEMREF ? g->ref->obj : NULL;
	bool slab = g->kind == GRANT_SLAB || (o && o->kind == MEMOBJ_SLAB);
	int cache = o ? o->cache : g->cache;

	if (!slab) {
		*off = 0;
		*len = grant_bytes(g);
		return offset == 0 && (size == 0 || size == *len);
	}
	*off = offset;
	*len = size;
	return size == kmalloc_classes[cache].size && offset % size == 0 &&
	       offset / size < kmalloc_classes[cache].objs_per_slab;
}

/* The share an export of @g makes a handle for; an import's is its own. */
static int export_share(struct share_table *t, struct conn *c, struct grant *g,
			const struct share_export_args *a, struct share **out, const char **why)
{
	uint64_t off, len;
	struct memobj *o;
	int err;

	if (g->kind == GRANT_IMPORT) {
		if (a->offset || a->size) {
			*why = "an import is exported whole (offset and size 0)";
			return -EINVAL;
		}
		*out = g->ref->share;
		return 0;
	}
	if (!export_range(g, a->offset, a->size, &off, &len)) {
		*why = "offset and size must be 0 and 0, or one object of the slab";
		return -EINVAL;
	}
	err = grant_to_memref(t->grants, g, &o);
	if (!err) {
		*out = share_get(t, o, off, len, c);
		err = *out ? 0 : -ENOMEM;
	}
	if (err)
		*why = "out of memory";
	return err;
}

/* True when @h is expired and no import made through it is still held:
 * it can do nothing more (an import it made could still be revoked through
 * it, so such a handle is kept). */
static bool handle_dead(const struct share_handle *h, uint64_t now)
{
	return h->expiry_ns && now >= h->expiry_ns && h->held == 0;
}

/* Frees @s's dead handles and returns how many handles are left. */
static uint32_t share_sweep(struct share_table *t, struct share *s)
{
	struct share_handle *h, *next;
	uint64_t now = now_ns();
	uint32_t n = 0;

	for (h = TAILQ_FIRST(&s->handles); h; h = next) {
		next = TAILQ_NEXT(h, link);
		if (handle_dead(h, now))
			handle_free(t, h);
		else
			n++;
	}
	return n;
}

size_t share_sweep_some(struct share_table *t, size_t budget)
{
	struct share_handle *h = t->sweep_next ? t->sweep_next : TAILQ_FIRST(&t->handles);
	uint64_t now = now_ns();
	size_t freed = 0;

	/* From where the last turn stopped, @budget handles at most (a turn
	 * never costs more than that however many handles there are), round
	 * and round the table's list: every handle is looked at once per
	 * nr_handles / budget turns. */
	for (; h && budget; budget--) {
		t->sweep_next = TAILQ_NEXT(h, all);
		if (handle_dead(h, now)) {
			handle_free(t, h);
			freed++;
		}
		h = t->sweep_next;
	}
	t->sweep_next = h;
	return freed;
}

int share_export(struct share_table *t, struct conn *c, uint64_t grant_id,
		 const struct share_export_args *a, uint8_t handle[SHARE_HANDLE_SIZE],
		 uint64_t *share_id, const char **why)
{
	struct share_export_args args = *a;
	struct grant *g = grant_held(t->grants, c, grant_id);
	struct share_handle *h;
	struct share *s;
	int err;

	if (!g) {
		*why = "grant not held by this connection";
		return -ENOENT;
	}
	if (a->flags & ~SHARE_EXPORT_FLAGS) {
		*why = "unknown export flags";
		return -EINVAL;
	}
	/* A re-export can add restrictions, never lift a read-only import's. */
	if (g->kind == GRANT_IMPORT && (g->flags & GRANT_RDONLY))
		args.flags |= SHARE_EXPORT_RDONLY;
	err = export_share(t, c, g, &args, &s, why);
	if (err)
		return err;
	if (share_sweep(t, s) >= SHARE_MAX_HANDLES) {
		*why = "too many live handles on this share";
		return -EDQUOT;
	}
	if (account_may_add_handle(c->account, &c->limits)) {
		*why = "over the live handles limit of the exporter's uid";
		return -EDQUOT;
	}
	h = handle_new(t, s, c, &args);
	if (!h) {
		*why = "out of memory";
		return -ENOMEM;
	}
	handle_format(h, handle);
	*share_id = s->id;
	return 0;
}

/* ---- import ------------------------------------------------------------------- */

/* Why @h may not be used by @c now, or NULL. */
static const char *handle_refusal(const struct share_handle *h, const struct conn *c)
{
	if (h->revoked)
		return "handle revoked";
	if (h->expiry_ns && now_ns() >= h->expiry_ns)
		return "handle expired";
	if (h->max_imports && h->imports >= h->max_imports)
		return "handle used up";
	if ((h->flags & SHARE_EXPORT_UID) && c->uid != h->uid)
		return "handle meant for another uid";
	return NULL;
}

/* The descriptor a MEMFD import gets. A read-only one is another open file
 * description of the memfd (O_RDONLY through /proc/self/fd), opened once
 * per memobj: mmap(PROT_WRITE, MAP_SHARED), fallocate and ftruncate all
 * refuse it, and since the memfd is mode 0600 the importer cannot reopen it
 * read-write through its own /proc/self/fd either. */
int memobj_fd(struct memobj *o, bool rdonly)
{
	char path[64];

	if (!rdonly)
		return o->memfd;
	if (o->rofd < 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", o->memfd);
		o->rofd = open(path, O_RDONLY | O_CLOEXEC);
		if (o->rofd < 0)
			return -errno;
	}
	return o->rofd;
}

/* Fills in the reply's description of the import @g of share @s. */
static void import_describe(const struct share *s, struct grant *g, int fd,
			    struct share_import_result *out)
{
	const struct memobj *o = s->obj;
	uint64_t frame_size = o->d->mm->pool.frame_size;

	*out = (struct share_import_result){
		.g = g, .size = s->size, .share = s->id, .rdonly = g->flags & GRANT_RDONLY, .fd = -1
	};
	if (o->area) {
		out->frames = o->area->frames;
		out->nr_frames = o->area->nr_frames;
	}
	switch (o->kind) {
	case MEMOBJ_KMALLOC:
	case MEMOBJ_SLAB:
		out->kind = SHARE_IMPORT_KMALLOC;
		out->phys = o->phys + s->offset;
		break;
	case MEMOBJ_VMALLOC:
		out->kind = SHARE_IMPORT_VMALLOC;
		break;
	default:
		out->kind = SHARE_IMPORT_MEMFD;
		out->fd = fd;
		out->map_size = (uint64_t)o->nr_frames * frame_size;
		if (o->kind == MEMOBJ_MEMFD_KMALLOC) {
			out->phys = o->phys;
			for (uint32_t i = 0; i < o->nr_frames && i < 2; i++)
				out->kframes[i] = memobj_frame(o, i);
			out->frames = out->kframes;
			out->nr_frames = o->nr_frames < 2 ? o->nr_frames : 2;
		}
		break;
	}
}

int share_import(struct share_table *t, struct conn *c, const uint8_t *handle, size_t len,
		 bool rdonly, struct share_import_result *out, const char **why)
{
	struct share_handle *h;
	struct memobj *o;
	struct grant *g;
	int fd = -1, err;

	if (len != SHARE_HANDLE_SIZE) {
		*why = "a handle is 32 bytes";
		return -EINVAL;
	}
	h = handle_lookup(t, handle);
	if (!h) {
		*why = "no such handle";
		return -ENOENT;
	}
	*why = handle_refusal(h, c);
	if (*why)
		return -EACCES;
	o = h->share->obj;
	if (o->d != c->domain && !memobj_is_memfd(o)) {
		*why = "not shareable across domains: allocate it with KM_GFP_SHARED";
		return -EACCES;
	}
	if (o->nr_refs >= SHARE_MAX_HOLDERS) {
		*why = "too many holders of this memory";
		return -EDQUOT;
	}
	rdonly = rdonly || (h->flags & SHARE_EXPORT_RDONLY);
	if (memobj_is_memfd(o)) {
		fd = memobj_fd(o, rdonly);
		if (fd < 0) {
			*why = "cannot open a read-only descriptor of the share";
			return fd;
		}
	}
	err = grant_import(t->grants, c, h->share, h->id, rdonly, &g);
	if (err) {
		*why = err == -EDQUOT ? "over the limits of the importer's uid" : "out of memory";
		return err;
	}
	h->imports++;
	import_describe(h->share, g, fd, out);
	return 0;
}

/* ---- revoke -------------------------------------------------------------------- */

/* The imports made through handle @h: their holders and grants, in
 * *ended, and the grants themselves in *grants (both malloc'd). */
static int revoke_collect(const struct share_handle *h, struct share_revoked **ended,
			  struct grant ***grants, size_t *nr)
{
	const struct memobj *o = h->share->obj;
	const struct memobj_ref *r;
	size_t n = 0;

	*ended = malloc((o->nr_refs + 1) * sizeof(**ended));
	*grants = malloc((o->nr_refs + 1) * sizeof(**grants));
	if (!*ended || !*grants) {
		free(*ended);
		free(*grants);
		return -ENOMEM;
	}
	TAILQ_FOREACH(r, &o->refs, link) {
		if (r->share && r->handle_id == h->id) {
			(*ended)[n] = (struct share_revoked){ r->g->holder, r->g->id };
			(*grants)[n++] = r->g;
		}
	}
	*nr = n;
	return 0;
}

int share_revoke(struct share_table *t, struct conn *c, const uint8_t *handle, size_t len,
		 struct share_revoked **ended, size_t *nr, const char **why)
{
	struct share_handle *h;
	struct grant **grants;
	int err;

	*ended = NULL;
	*nr = 0;
	if (len != SHARE_HANDLE_SIZE) {
		*why = "a handle is 32 bytes";
		return -EINVAL;
	}
	h = handle_lookup(t, handle);
	if (!h) {
		*why = "no such handle";
		return -ENOENT;
	}
	if (c->uid != 0 && c->uid != h->creator) {
		*why = "handle exported by another uid";
		return -EACCES;
	}
	err = revoke_collect(h, ended, &grants, nr);
	if (err) {
		*why = "out of memory";
		return err;
	}
	h->revoked = true;
	/* The last release may free the memobj, its shares and @h with it:
	 * nothing of them is touched after the first. */
	for (size_t i = 0; i < *nr; i++)
		grant_release(t->grants, grants[i]);
	free(grants);
	return 0;
}

/* ---- inspection ---------------------------------------------------------------- */

/* The holders of @h's share: its memobj's MEMREF grants (the exporter's)
 * and the imports of that share, at most @max. */
static size_t share_holders(const struct share_handle *h, struct share_holder_row *out, size_t max)
{
	const struct memobj *o = h->share->obj;
	const struct memobj_ref *r;
	size_t n = 0;

	TAILQ_FOREACH(r, &o->refs, link) {
		if (n == max)
			break;
		if (r->share && r->share != h->share)
			continue;
		out[n++] = (struct share_holder_row){
			.pid = (uint32_t)r->g->holder->pid,
			.uid = (uint32_t)r->g->holder->uid,
			.name = r->g->holder->name,
			.grant = r->g->id,
			.exporter = !r->share,
			.rdonly = r->g->flags & GRANT_RDONLY,
		};
	}
	return n;
}

static void share_row(const struct share_handle *h, uint64_t now, struct share_row *row)
{
	const struct share *s = h->share;

	*row = (struct share_row){
		.handle_id = h->id,
		.share = s->id,
		.size = s->size,
		.kind = memobj_kind_names[s->obj->kind],
		.domain = s->obj->d->id,
		.exporter_pid = (uint32_t)s->pid,
		.exporter_uid = (uint32_t)s->uid,
		.exporter_name = s->name,
		.flags = h->flags,
		.uid = (uint32_t)h->uid,
		.imports = h->imports,
		.max_imports = h->max_imports,
		.age_ms = (now - h->created_ns) / 1000000,
		.expires_in_ms = !h->expiry_ns ? -1
					       : (int64_t)(h->expiry_ns / 1000000) -
							 (int64_t)(now / 1000000),
		.revoked = h->revoked,
	};
}

size_t share_inspect(const struct share_table *t, uint32_t offset, struct share_row *rows,
		     size_t max, struct share_holder_row *holders, size_t max_holders, bool *more)
{
	const struct share_handle *h;
	uint64_t now = now_ns();
	uint32_t index = 0;
	size_t n = 0;

	*more = false;
	TAILQ_FOREACH(h, &t->handles, all) {
		if (index++ < offset)
			continue;
		if (n == max) {
			*more = true;
			break;
		}
		share_row(h, now, &rows[n]);
		rows[n].holders = holders + n * max_holders;
		rows[n].nr_holders = share_holders(h, holders + n * max_holders, max_holders);
		n++;
	}
	return n;
}

/* ---- a restart ------------------------------------------------------------------ */

/* The frames of a (restored, not yet MEMFD) KMALLOC-large or VMALLOC memobj. */
static uint32_t memobj_whole_frames(const struct memobj *o)
{
	return o->area ? o->area->nr_frames : 1u << (o->order - KM_FRAME_ORDER);
}

/* Backs every frame of @o in its domain memfd again. */
static void pool_frames_populate_each(const struct memobj *o)
{
	for (uint32_t i = 0; i < memobj_whole_frames(o); i++)
		pool_frames_populate(&o->d->mm->pool, o->d->memfd, memobj_frame(o, i), 1);
}

/* Takes back a MEMFD memobj's memfd: the right size and seals, its frames
 * marked shared, and out of the domain memfd (where they should be holes). */
static int memobj_restore_memfd(struct memobj *o, int fd, uint32_t nr_frames)
{
	struct mm *mm = o->d->mm;
	uint32_t expect = memobj_whole_frames(o);

	if (fd < 0 || nr_frames != expect || pool_share_memfd_check(&mm->pool, fd, nr_frames))
		return -EUCLEAN;
	o->memfd = fd;
	o->nr_frames = nr_frames;
	for (uint32_t i = 0; i < nr_frames; i++) {
		uint32_t f = memobj_frame(o, i);

		mm->frame_use[f] |= FRAME_USE_SHARED;
		pool_frames_punch(&mm->pool, o->d->memfd, f, 1);
	}
	o->d->share_frames += nr_frames;
	return 0;
}

/* The memory of a restored memobj, through the allocators' _at paths. */
static int memobj_adopt_memory(struct memobj *o, const struct memobj_state *st)
{
	struct kmalloc_obj obj = {
		.phys = st->phys, .size = st->bytes, .order = st->order, .cache = st->cache
	};
	bool area_kind = st->kind == MEMOBJ_VMALLOC || st->kind == MEMOBJ_MEMFD_VMALLOC;

	if (area_kind != (st->area != NULL))
		return -EUCLEAN;
	switch (st->kind) {
	case MEMOBJ_KMALLOC:
		return kmalloc_adopt(o->d, &obj);
	case MEMOBJ_SLAB:
		return kmalloc_slab_adopt(o->d, st->cache, st->phys);
	case MEMOBJ_MEMFD_KMALLOC:
		if (st->cache >= 0 || st->order < KM_FRAME_ORDER)
			return -EUCLEAN;
		return kmalloc_adopt(o->d, &obj);
	default:
		return vmalloc_adopt(o->d, st->area);
	}
}

int memobj_restore(struct share_table *t, struct domain *d, const struct memobj_state *st,
		   struct memobj **out)
{
	bool memfd = st->kind == MEMOBJ_MEMFD_KMALLOC || st->kind == MEMOBJ_MEMFD_VMALLOC;
	struct memobj *o = NULL;
	int err = -EUCLEAN;

	if (st->kind >= MEMOBJ_KIND_MAX)
		goto err_state;
	o = memobj_alloc(t, d,
			 st->kind == MEMOBJ_MEMFD_KMALLOC   ? MEMOBJ_KMALLOC
			 : st->kind == MEMOBJ_MEMFD_VMALLOC ? MEMOBJ_VMALLOC
							    : st->kind);
	err = o ? memobj_adopt_memory(o, st) : -ENOMEM;
	if (err)
		goto err_state;
	o->id = st->id;
	o->bytes = st->bytes;
	o->phys = st->phys;
	o->cache = st->cache;
	o->order = st->order;
	o->area = st->area;
	memobj_link(t, o);
	if (o->area) { /* vmallocinfo's; named by a holder once one is restored */
		o->area->grant = NULL;
		TAILQ_INSERT_TAIL(&t->grants->areas, o->area, link);
		t->grants->nr_areas++;
	}
	if (memfd) {
		err = memobj_restore_memfd(o, st->memfd, st->nr_frames);
		if (err) { /* its pages are lost: the frames are the domain's again */
			pool_frames_populate_each(o);
			memobj_destroy(o);
			if (st->memfd >= 0)
				close(st->memfd);
			return -ENODEV;
		}
		o->kind = st->kind;
	}
	*out = o;
	return 0;

err_state:
	if (o) {
		domain_put(d);
		free(o->spare);
		free(o);
	}
	free(st->area);
	if (st->memfd >= 0)
		close(st->memfd);
	return err;
}

struct share *share_restore(struct share_table *t, struct memobj *o, const struct share *tmpl,
			    uint64_t age_ns)
{
	struct share *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	*s = *tmpl;
	s->obj = o;
	s->name[sizeof(s->name) - 1] = '\0';
	s->created_ns = now_ns() - age_ns;
	TAILQ_INIT(&s->handles);
	TAILQ_INSERT_TAIL(&o->shares, s, link);
	if (t->next_share_id <= s->id)
		t->next_share_id = s->id + 1;
	return s;
}

int handle_restore(struct share_table *t, struct share *s, const struct share_handle *tmpl,
		   uint64_t age_ns, int64_t expires_in_ms)
{
	struct share_handle *h = calloc(1, sizeof(*h));
	uint64_t now = now_ns();

	if (!h)
		return -ENOMEM;
	*h = *tmpl;
	h->share = s;
	h->held = 0; /* counted again as the imports come back */
	h->acct = t->accounts ? account_get(t->accounts, h->creator) : NULL;
	if (t->accounts && !h->acct) {
		free(h);
		return -ENOMEM;
	}
	/* Charged past the creator's limits if need be: the predecessor let
	 * it make them, and a restart must not lose handles. */
	if (h->acct)
		h->acct->handles++;
	/* A new account (no connection of the uid came back yet): kmctl limits
	 * shows the limits of the uid without its groups until one connects. */
	if (h->acct && h->acct->refs == 1)
		account_limits_for(t->accounts, h->creator, (gid_t)-1, NULL, 0, &h->acct->limits);
	h->created_ns = now - age_ns;
	/* An expired handle stays expired: its expiry is now at the latest. */
	h->expiry_ns = expires_in_ms < 0    ? 0
		       : expires_in_ms == 0 ? now
					    : now + (uint64_t)expires_in_ms * 1000000ull;
	TAILQ_INSERT_TAIL(&s->handles, h, link);
	TAILQ_INSERT_TAIL(bucket_of(t, h->id), h, bucket);
	TAILQ_INSERT_TAIL(&t->handles, h, all);
	t->nr_handles++;
	hash_grow(t);
	if (t->next_handle_id <= h->id)
		t->next_handle_id = h->id + 1;
	return 0;
}

void share_table_restored(struct share_table *t, uint64_t next_handle_id, uint64_t next_share_id,
			  uint64_t next_memobj_id)
{
	struct memobj *o, *next;

	if (t->next_handle_id < next_handle_id)
		t->next_handle_id = next_handle_id;
	if (t->next_share_id < next_share_id)
		t->next_share_id = next_share_id;
	if (t->next_memobj_id < next_memobj_id)
		t->next_memobj_id = next_memobj_id;
	for (o = TAILQ_FIRST(&t->memobjs); o; o = next) {
		next = TAILQ_NEXT(o, link);
		if (o->nr_refs == 0)
			memobj_destroy(o);
	}
}
