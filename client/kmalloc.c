// SPDX-License-Identifier: MIT
/*
 * kmalloc.c - the km_kmalloc family (kmalloc, kzalloc, kcalloc, krealloc,
 * kfree, ksize, bulk), km_virt_to_phys() and the kvmalloc pair; the client
 * side of mm/slab_common.c, mm/slub.c and mm/util.c, following
 * docs/kernel.md
 *
 * Small objects (up to KMALLOC_MAX_CACHE_SIZE) come from slabs this client
 * holds (slab.c) through the calling thread's magazines (tcache.c): a
 * kmalloc that hits its magazine is a pop and a state byte, a kfree a
 * pagemap lookup, a state check and a push, no lock and no round trip.
 *
 * Large kmallocs (and every kmalloc under KMCLIENT_NO_CACHE=1) are grants of
 * their own. The client keeps one table of them, phys -> {grant id, ksize}:
 * open addressing with linear probing and backward-shift deletion (no
 * tombstones), Fibonacci hashing, grown at 3/4 load, under ktab_lock. A
 * freed large block waits on a per-order list (pcp.c) for the next kmalloc
 * of its order; past the list's limit its id goes back at once in a request
 * nobody waits for (rpc.c).
 *
 * Sharing (share.c) touches no fast path: an exported small object is in
 * state EXPORTED, not USED, so its kfree takes the slow path (kfree_other())
 * by the test the fast path makes anyway; an exported large grant carries
 * KMC_KOBJ_EXPORTED and goes back instead of onto a list. The slow paths
 * also find imports (an import of a kmalloc of the domain is an address of
 * the direct map: its kfree drops the import before anything else) and
 * KM_GFP_SHARED allocations (areas outside the direct map, vmalloc.c), and
 * first apply whatever revocation the daemon sent (kmc_share_poll(): one
 * load when the client holds no import).
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KMC_KOBJ_EMPTY	  UINT64_MAX
#define KTAB_INITIAL_BITS 10 /* 1024 slots, 24 KiB */
#define BATCH_ON_STACK	  64 /* grants handled without malloc in bulk calls */

/* ---- phys -> grant table ------------------------------------------------- */

static size_t ktab_hash(const struct km_client *c, uint64_t phys)
{
	return (size_t)((phys * 0x9E3779B97F4A7C15ull) >> (64 - c->ktab_bits));
}

static int ktab_alloc(struct km_client *c, unsigned int bits)
{
	size_t n = (size_t)1 << bits;
	struct kmc_kobj *t = malloc(n * sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		t[i].phys = KMC_KOBJ_EMPTY;
	c->ktab = t;
	c->ktab_bits = bits;
	return 0;
}

int kmc_ktab_init(struct km_client *c)
{
	c->ktab_count = 0;
	return ktab_alloc(c, KTAB_INITIAL_BITS);
}

void kmc_ktab_destroy(struct km_client *c)
{
	free(c->ktab);
	c->ktab = NULL;
}

static struct kmc_kobj *ktab_find_locked(struct km_client *c, uint64_t phys)
{
	size_t mask = ((size_t)1 << c->ktab_bits) - 1;

	for (size_t i = ktab_hash(c, phys);; i = (i + 1) & mask) {
		if (c->ktab[i].phys == phys)
			return &c->ktab[i];
		if (c->ktab[i].phys == KMC_KOBJ_EMPTY)
			return NULL;
	}
}

static void ktab_put_locked(struct km_client *c, const struct kmc_kobj *o)
{
	size_t mask = ((size_t)1 << c->ktab_bits) - 1;
	size_t i = ktab_hash(c, o->phys);

	while (c->ktab[i].phys != KMC_KOBJ_EMPTY && c->ktab[i].phys != o->phys)
		i = (i + 1) & mask;
	if (c->ktab[i].phys == KMC_KOBJ_EMPTY)
		c->ktab_count++;
	c->ktab[i] = *o;
}

/* Doubles the table; the old one stays if memory is short. */
static int ktab_grow_locked(struct km_client *c)
{
	struct kmc_kobj *old = c->ktab;
	size_t n = (size_t)1 << c->ktab_bits;
	int err;

	err = ktab_alloc(c, c->ktab_bits + 1);
	if (err)
		return err;
	c->ktab_count = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i].phys != KMC_KOBJ_EMPTY)
			ktab_put_locked(c, &old[i]);
	free(old);
	return 0;
}

static int ktab_insert_locked(struct km_client *c, const struct kmc_grant *g)
{
	struct kmc_kobj o = { .phys = g->phys, .id = g->id, .size = g->size };

	if ((c->ktab_count + 1) * 4 > ((size_t)3 << c->ktab_bits)) {
		int err = ktab_grow_locked(c);

		if (err)
			return err;
	}
	ktab_put_locked(c, &o);
	return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void ktab_remove_locked(struct km_client *c, struct kmc_kobj *o)
{
	size_t mask = ((size_t)1 << c->ktab_bits) - 1;
	size_t i = o - c->ktab, j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (c->ktab[j].phys == KMC_KOBJ_EMPTY)
			break;
		home = ktab_hash(c, c->ktab[j].phys);
		/* Entry j may move to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			c->ktab[i] = c->ktab[j];
			i = j;
		}
	}
	c->ktab[i].phys = KMC_KOBJ_EMPTY;
	c->ktab_count--;
}

/* ---- small objects: slabs of ours, through the thread's magazines ---------- */

/* The out-of-line half of slab_alloc(): an empty magazine, or no thread
 * cache at all (a magazine of one on the stack then). */
static __attribute__((noinline)) int slab_alloc_slow(struct km_client *c, unsigned int idx,
						     km_gfp_t gfp, struct kmc_tcache *tc,
						     void **out)
{
	struct kmc_mag_entry one_entry;
	struct kmc_mag one = { .cap = 1, .e = &one_entry }, *m = tc ? &tc->mags[idx] : &one;
	int err;

	err = kmc_slab_fill(c, idx, m, m->cap, gfp);
	if (err)
		return err;
	m->nr--;
	*m->e[m->nr].state = KMC_OBJ_USED;
	*out = m->e[m->nr].obj;
	return 0;
}

static inline int slab_alloc(struct km_client *c, unsigned int idx, km_gfp_t gfp, void **out)
{
	struct kmc_tcache *tc = kmc_tcache(c);
	struct kmc_mag *m;
	int err;

	if (__builtin_expect(tc && tc->mags[idx].nr, 1)) {
		m = &tc->mags[idx];
		m->nr--;
		*m->e[m->nr].state = KMC_OBJ_USED;
		*out = m->e[m->nr].obj;
	} else {
		err = slab_alloc_slow(c, idx, gfp, tc, out);
		if (err)
			return err;
	}
	/* Nobody clears slab memory for us: __GFP_ZERO is ours. */
	if (gfp & KM___GFP_ZERO)
		memset(*out, 0, c->classes[idx].size);
	return 0;
}

/* Frees the object @p starts in slab @s, index @idx, if it is in use.
 * False (nothing done) for an object that is free already. */
static inline bool slab_free(struct km_client *c, struct kmc_slab *s, uint32_t idx, void *p)
{
	struct kmc_tcache *tc;
	struct kmc_mag *m;

	if (__builtin_expect(s->state[idx] != KMC_OBJ_USED, 0))
		return false;
	s->state[idx] = KMC_OBJ_FREE;
	tc = kmc_tcache(c);
	if (__builtin_expect(!tc, 0)) {
		kmc_slab_put(c, s, idx);
		return true;
	}
	m = &tc->mags[s->cls];
	/* A full magazine gives its oldest half back to the slabs. */
	if (__builtin_expect(m->nr == m->cap, 0))
		kmc_slab_drain_mag(c, s->cls, m, m->cap / 2);
	m->e[m->nr].obj = p;
	m->e[m->nr].state = &s->state[idx];
	m->nr++;
	return true;
}

/* ---- large objects: grants of their own ---------------------------------- */

/* Populates the grants' ranges, merging neighbours so a run of objects from
 * one slab costs one madvise at most. */
static void populate_grants(struct km_client *c, const struct kmc_grant *g, size_t n)
{
	uint64_t lo = 0, hi = 0;

	for (size_t i = 0; i < n; i++) {
		if (hi && g[i].phys >= lo && g[i].phys <= hi + c->populate_unit) {
			if (g[i].phys + g[i].size > hi)
				hi = g[i].phys + g[i].size;
			continue;
		}
		if (hi)
			kmc_populate(c, lo, hi - lo);
		lo = g[i].phys;
		hi = g[i].phys + g[i].size;
	}
	if (hi)
		kmc_populate(c, lo, hi - lo);
}

/* Takes a block from the client's own list for @size: no round trip. */
static bool grant_from_pcp(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	struct kmc_pcp_list *l = kmc_pcp_list_for(c, kms_size_roundup(size));
	struct kmc_grant g;
	struct kmc_kobj o;
	bool hit;

	if (!l)
		return false;
	pthread_mutex_lock(&c->ktab_lock);
	hit = kmc_pcp_pop_locked(c, l, &o);
	if (hit) {
		g = (struct kmc_grant){ .id = o.id, .phys = o.phys, .size = o.size };
		if (ktab_insert_locked(c, &g) < 0) {
			kmc_pcp_push_locked(c, l, &o);
			hit = false;
		}
	}
	pthread_mutex_unlock(&c->ktab_lock);
	if (!hit)
		return false;
	/* The daemon clears what it hands out; what we kept, we clear. */
	if (gfp & KM___GFP_ZERO)
		memset(c->base + o.phys, 0, o.size);
	*out = c->base + o.phys;
	return true;
}

/* A kmalloc that is a grant of its own: from the list, else one round trip. */
static int grant_alloc(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	struct kmc_grant g;
	int err;

	if (grant_from_pcp(c, size, gfp, out))
		return 0;
	err = kmc_rpc_alloc(c, size, gfp, 1, &g);
	/* What this client keeps may be what the pool lacks, or what takes
	 * its uid past a limit. */
	if ((err == -ENOMEM || err == -EDQUOT) && kmc_drain_caches(c))
		err = kmc_rpc_alloc(c, size, gfp, 1, &g);
	if (err)
		return err;
	pthread_mutex_lock(&c->ktab_lock);
	err = ktab_insert_locked(c, &g);
	pthread_mutex_unlock(&c->ktab_lock);
	if (err) {
		kmc_rpc_give_back(c, &g.id, 1);
		return err;
	}
	kmc_populate(c, g.phys, g.size);
	*out = c->base + g.phys;
	return 0;
}

/* Removes @p from the table: false if it is not a live grant of this client. */
static bool ktab_take(struct km_client *c, const void *p, struct kmc_kobj *out)
{
	struct kmc_kobj *o = NULL;

	if (kmc_in_direct_map(c, p)) {
		pthread_mutex_lock(&c->ktab_lock);
		o = ktab_find_locked(c, (const uint8_t *)p - c->base);
		if (o) {
			*out = *o;
			ktab_remove_locked(c, o);
		}
		pthread_mutex_unlock(&c->ktab_lock);
	}
	return o != NULL;
}

/* Gives the grant @o up: onto its list, else back to the daemon. */
static void grant_free(struct km_client *c, const struct kmc_kobj *o)
{
	bool kept = false;

	/* An exported block may still be in use by importers: never reused. */
	if (!(o->size & KMC_KOBJ_EXPORTED)) {
		pthread_mutex_lock(&c->ktab_lock);
		kept = kmc_pcp_push_locked(c, kmc_pcp_list_for(c, o->size), o);
		pthread_mutex_unlock(&c->ktab_lock);
	}
	if (kept)
		return;
	kmc_rpc_release(c, o->id);
	/* Pages go back at once (without waiting for an answer); a small
	 * object (KMCLIENT_NO_CACHE) rides on the next request, unless
	 * importers may be waiting for it to go. */
	if (o->size > KM_KMALLOC_MAX_CACHE_SIZE)
		kmc_rpc_release_now(c);
}

int kmc_ktab_export_begin(struct km_client *c, const void *p, uint64_t *grant, bool *was)
{
	struct kmc_kobj *o;
	int err = -EINVAL;

	pthread_mutex_lock(&c->ktab_lock);
	o = ktab_find_locked(c, (const uint8_t *)p - c->base);
	if (o) {
		*grant = o->id;
		*was = o->size & KMC_KOBJ_EXPORTED;
		o->size |= KMC_KOBJ_EXPORTED;
		err = 0;
	}
	pthread_mutex_unlock(&c->ktab_lock);
	return err;
}

void kmc_ktab_export_undo(struct km_client *c, const void *p, uint64_t grant)
{
	struct kmc_kobj *o;

	pthread_mutex_lock(&c->ktab_lock);
	o = ktab_find_locked(c, (const uint8_t *)p - c->base);
	if (o && o->id == grant)
		o->size &= ~KMC_KOBJ_EXPORTED;
	pthread_mutex_unlock(&c->ktab_lock);
}

/* ---- kmalloc ------------------------------------------------------------- */

static inline int kmalloc_one(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	if (__builtin_expect(size - 1 < KM_KMALLOC_MAX_CACHE_SIZE && c->caching &&
				     !(gfp & KM___GFP_SHARED),
			     1))
		return slab_alloc(c, (unsigned int)kms_class_index(size), gfp, out);
	if (!size) {
		*out = KM_ZERO_SIZE_PTR;
		return 0;
	}
	/* Not from a magazine: a lock or a round trip anyway. Revocations the
	 * daemon sent are applied first (small objects from magazines are a
	 * fast path: a refill's round trip applies them). */
	kmc_share_poll(c);
	/* Above order 10 the kernel fails in the page allocator; we save the trip. */
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM;
	/* Whole frames in a memfd of their own, mapped apart (vmalloc.c). */
	if (gfp & KM___GFP_SHARED)
		return kmc_shared_kmalloc(c, size, gfp, out);
	return grant_alloc(c, size, gfp, out);
}

/* A kfree the library must refuse: the kernel would WARN or corrupt. */
static __attribute__((noinline)) void kfree_refused(struct km_client *c, const void *p,
						    bool in_slab)
{
	kmc_dbg(c, "kfree of %p, which is %s", p,
		in_slab		      ? "free already (double free)"
		: kmc_slab_owns(c, p) ? "inside an object (not its start)"
				      : "not a live kmalloc of this client");
	errno = EINVAL;
}

/*
 * Every kfree but that of a USED object of our slabs: an import, an
 * exported object (it becomes GONE), a large grant, a KM_GFP_SHARED
 * allocation or an import mapped apart, or a pointer to refuse. @s and
 * @idx: what kmc_slab_of() found (s NULL: no slab object of ours).
 */
static __attribute__((noinline)) void kfree_other(struct km_client *c, const void *p,
						  struct kmc_slab *s, uint32_t idx)
{
	struct kmc_kobj o;

	kmc_share_poll(c);
	/* An import of this very address goes first, held or revoked: it may
	 * be of our own object (an import of a handle we exported), and the
	 * importer's kfree comes before the exporter's in any sane program,
	 * so the object is never freed while a record of an import of it is
	 * left for an unrelated object to meet later. (A revoked import never
	 * freed is such a record: a large kmalloc that later lands on its
	 * address needs two kfrees. A leak until disconnect, which beats
	 * freeing memory the caller still uses.) */
	if (__atomic_load_n(&c->nr_dimports, __ATOMIC_RELAXED) && kmc_dimport_drop(c, p))
		return;
	if (s) {
		if (s->state[idx] != KMC_OBJ_EXPORTED || !kmc_slab_gone(c, s, idx))
			kfree_refused(c, p, true);
		return;
	}
	if (kmc_in_direct_map(c, p)) {
		if (ktab_take(c, p, &o))
			grant_free(c, &o);
		else
			kfree_refused(c, p, false);
		return;
	}
	if (!kmc_area_free(c, p, KMC_FREE_KFREE))
		kfree_refused(c, p, false);
}

static inline void kfree_one(struct km_client *c, const void *p)
{
	struct kmc_slab *s;
	uint32_t idx = 0;

	if (KM_ZERO_OR_NULL_PTR(p))
		return;
	s = kmc_slab_of(c, p, &idx);
	if (__builtin_expect(s != NULL, 1) && slab_free(c, s, idx, (void *)p))
		return;
	kfree_other(c, p, s, idx);
}

/* The usable size of what km_kfree() would free at @p, 0 if nothing. */
static size_t ksize_of(struct km_client *c, const void *p)
{
	const struct kmc_kobj *o;
	struct kmc_slab *s;
	size_t size = 0;
	uint32_t idx;

	if (KM_ZERO_OR_NULL_PTR(p))
		return 0;
	s = kmc_slab_of(c, p, &idx);
	if (s && (s->state[idx] == KMC_OBJ_USED || s->state[idx] == KMC_OBJ_EXPORTED))
		return c->classes[s->cls].size;
	kmc_share_poll(c);
	if (!kmc_in_direct_map(c, p))
		return kmc_area_ksize(c, p);
	if (!s) {
		pthread_mutex_lock(&c->ktab_lock);
		o = ktab_find_locked(c, (const uint8_t *)p - c->base);
		if (o)
			size = o->size & ~KMC_KOBJ_EXPORTED;
		pthread_mutex_unlock(&c->ktab_lock);
	}
	if (!size && __atomic_load_n(&c->nr_dimports, __ATOMIC_RELAXED))
		size = kmc_dimport_size(c, p);
	return size;
}

bool kmc_drain_caches(struct km_client *c)
{
	bool any;

	kmc_tcache_drain_self(c);
	any = kmc_slab_release_empty(c);
	any |= kmc_vkept_drain(c);
	return kmc_pcp_drain_if_any(c) || any;
}

/* docs/kernel.md */
static int krealloc_one(struct km_client *c, const void *p, size_t new_size, km_gfp_t gfp,
			void **out)
{
	size_t ks;
	void *q;
	int err;

	if (KM_ZERO_OR_NULL_PTR(p))
		return kmalloc_one(c, new_size, gfp, out);
	if (!new_size) {
		kfree_one(c, p);
		*out = KM_ZERO_SIZE_PTR;
		return 0;
	}
	ks = ksize_of(c, p);
	if (!ks) {
		/* The kernel warns and would copy nothing; refusing keeps the data. */
		kmc_dbg(c, "krealloc of %p, which is not a live kmalloc", p);
		return -EINVAL;
	}
	if (ks >= new_size) {
		if (gfp & KM___GFP_ZERO)
			memset((uint8_t *)p + new_size, 0, ks - new_size);
		*out = (void *)p;
		return 0;
	}
	err = kmalloc_one(c, new_size, gfp, &q);
	if (err)
		return err;
	memcpy(q, p, ks);
	kfree_one(c, p);
	*out = q;
	return 0;
}

static __attribute__((noinline)) void *kmalloc_ret(struct km_client *c, size_t size, km_gfp_t gfp)
{
	void *p;
	int err = kmalloc_one(c, size, gfp, &p);

	if (err) {
		errno = -err;
		return NULL;
	}
	return p;
}

/* The fast path, a magazine hit, in a few instructions without a call;
 * everything else in kmalloc_ret(). */
KM_EXPORT void *km_kmalloc(km_client *c, size_t size, km_gfp_t gfp)
{
	if (__builtin_expect(size - 1 < KM_KMALLOC_MAX_CACHE_SIZE &&
				     !(gfp & (KM___GFP_ZERO | KM___GFP_SHARED)) &&
				     kmc_tls.uid == c->uid,
			     1)) {
		struct kmc_mag *m = &kmc_tls.tc->mags[kms_class_index(size)];

		if (__builtin_expect(m->nr != 0, 1)) {
			struct kmc_mag_entry *e = &m->e[--m->nr];

			*e->state = KMC_OBJ_USED;
			return e->obj;
		}
	}
	return kmalloc_ret(c, size, gfp);
}

/* The daemon clears the memory: no client-side memset, no extra faults. */
KM_EXPORT void *km_kzalloc(km_client *c, size_t size, km_gfp_t gfp)
{
	return km_kmalloc(c, size, gfp | KM___GFP_ZERO);
}

KM_EXPORT void *km_kcalloc(km_client *c, size_t n, size_t size, km_gfp_t gfp)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return km_kmalloc(c, bytes, gfp | KM___GFP_ZERO);
}

KM_EXPORT void *km_krealloc(km_client *c, const void *p, size_t new_size, km_gfp_t gfp)
{
	void *q;
	int err = krealloc_one(c, p, new_size, gfp, &q);

	if (err) {
		errno = -err;
		return NULL;
	}
	return q;
}

/* The fast path: an object of our slabs in use, room in the magazine. */
KM_EXPORT void km_kfree(km_client *c, const void *p)
{
	struct kmc_slab *s;
	uint32_t idx;

	if (__builtin_expect(kmc_tls.uid == c->uid, 1) && (s = kmc_slab_of(c, p, &idx)) &&
	    __builtin_expect(s->state[idx] == KMC_OBJ_USED, 1)) {
		struct kmc_mag *m = &kmc_tls.tc->mags[s->cls];

		if (__builtin_expect(m->nr < m->cap, 1)) {
			s->state[idx] = KMC_OBJ_FREE;
			m->e[m->nr].obj = (void *)p;
			m->e[m->nr].state = &s->state[idx];
			m->nr++;
			return;
		}
	}
	kfree_one(c, p);
}

KM_EXPORT size_t km_ksize(km_client *c, const void *p)
{
	return ksize_of(c, p);
}

/* The direct map, or an area with contiguous frames (KM_GFP_SHARED kmalloc,
 * an import of a kmalloc mapped apart). */
KM_EXPORT uint64_t km_virt_to_phys(km_client *c, const void *p)
{
	if (__builtin_expect(kmc_in_direct_map(c, p), 1))
		return (const uint8_t *)p - c->base;
	kmc_share_poll(c);
	return kmc_area_phys(c, p);
}

/* ---- bulk ---------------------------------------------------------------- */

/*
 * Frees @p[0..n): objects of our slabs into the thread's magazines, grants
 * with one Free per kmc_rpc_max_ids() ids (1024 normally), the release
 * queue riding along. Pointers that are not live kmallocs are refused.
 */
static void kfree_bulk(struct km_client *c, size_t n, void *const *p)
{
	uint64_t stack_ids[BATCH_ON_STACK], *ids = stack_ids;
	size_t chunk = kmc_rpc_max_ids(c), nr = 0;
	struct kmc_kobj o;

	if (n > BATCH_ON_STACK) {
		ids = malloc((n < chunk ? n : chunk) * sizeof(*ids));
		if (!ids) {
			ids = stack_ids;
			chunk = BATCH_ON_STACK;
		}
	} else if (chunk > BATCH_ON_STACK) {
		chunk = BATCH_ON_STACK;
	}
	for (size_t i = 0; i < n; i++) {
		struct kmc_slab *s;
		uint32_t idx = 0;

		if (KM_ZERO_OR_NULL_PTR(p[i]))
			continue;
		s = kmc_slab_of(c, p[i], &idx);
		if (s && slab_free(c, s, idx, p[i]))
			continue;
		/* Imports, exported objects, areas: one by one. */
		if (s || !kmc_in_direct_map(c, p[i]) ||
		    __atomic_load_n(&c->nr_dimports, __ATOMIC_RELAXED) || !ktab_take(c, p[i], &o)) {
			kfree_other(c, p[i], s, idx);
			continue;
		}
		ids[nr++] = o.id;
		if (nr == chunk) {
			kmc_rpc_give_back(c, ids, nr);
			nr = 0;
		}
	}
	kmc_rpc_give_back(c, ids, nr);
	if (ids != stack_ids)
		free(ids);
}

/* One Alloc of @n objects (n <= max ids): all of them in the table and @out,
 * or none. */
static int kmalloc_batch(struct km_client *c, size_t size, km_gfp_t gfp, size_t n, void **out)
{
	struct kmc_grant stack_g[BATCH_ON_STACK], *g = stack_g;
	size_t i;
	int err;

	if (n > BATCH_ON_STACK) {
		g = malloc(n * sizeof(*g));
		if (!g)
			return -ENOMEM;
	}
	err = kmc_rpc_alloc(c, size, gfp, n, g);
	if (err)
		goto out;
	pthread_mutex_lock(&c->ktab_lock);
	for (i = 0; i < n; i++) {
		err = ktab_insert_locked(c, &g[i]);
		if (err)
			break;
		out[i] = c->base + g[i].phys;
	}
	pthread_mutex_unlock(&c->ktab_lock);
	if (err) {
		/* Out of client memory: give back what the table took, then the rest. */
		kfree_bulk(c, i, out);
		for (; i < n; i++)
			kmc_rpc_give_back(c, &g[i].id, 1);
		goto out;
	}
	populate_grants(c, g, n);
out:
	if (g != stack_g)
		free(g);
	return err;
}

static int kmalloc_bulk(struct km_client *c, size_t size, km_gfp_t gfp, size_t n, void **out)
{
	size_t chunk = kmc_rpc_max_ids(c), done = 0;
	int err;

	if (n > INT_MAX || (n && !out))
		return -EINVAL;
	if (!size) {
		for (size_t i = 0; i < n; i++)
			out[i] = KM_ZERO_SIZE_PTR;
		return 0;
	}
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM;
	if (gfp & KM___GFP_SHARED) {
		/* One memfd, one grant and one round trip each. */
		for (; done < n; done++) {
			err = kmc_shared_kmalloc(c, size, gfp, &out[done]);
			if (err) {
				kfree_bulk(c, done, out);
				return err;
			}
		}
		return 0;
	}
	if (size <= KM_KMALLOC_MAX_CACHE_SIZE && c->caching) {
		/* From our slabs: a round trip only when they run out. */
		unsigned int idx = (unsigned int)kms_class_index(size);

		for (; done < n; done++) {
			err = slab_alloc(c, idx, gfp, &out[done]);
			if (err) {
				kfree_bulk(c, done, out);
				return err;
			}
		}
		return 0;
	}
	while (done < n) {
		size_t k = n - done < chunk ? n - done : chunk;

		err = kmalloc_batch(c, size, gfp, k, out + done);
		if (err) {
			kfree_bulk(c, done, out);
			return err;
		}
		done += k;
	}
	return 0;
}

KM_EXPORT int km_kmalloc_bulk(km_client *c, size_t size, km_gfp_t gfp, size_t n, void **out)
{
	int err;

	kmc_share_poll(c);
	err = kmalloc_bulk(c, size, gfp, n, out);

	if (err) {
		errno = -err;
		return -1;
	}
	return (int)n;
}

KM_EXPORT void km_kfree_bulk(km_client *c, size_t n, void **p)
{
	kmc_share_poll(c);
	if (n && p)
		kfree_bulk(c, n, p);
}

/* ---- kvmalloc (docs/kernel.md) ------------------------------------ */

static km_gfp_t kmalloc_gfp_adjust(km_gfp_t gfp, size_t size)
{
	if (size > KM_PAGE_SIZE) {
		gfp |= KM___GFP_NOWARN;
		if (!(gfp & KM___GFP_RETRY_MAYFAIL))
			gfp |= KM___GFP_NORETRY;
		gfp &= ~KM___GFP_NOFAIL;
	}
	return gfp;
}

static int kvmalloc_one(struct km_client *c, size_t size, km_gfp_t gfp, const void *ret_addr,
			void **out)
{
	int err = kmalloc_one(c, size, kmalloc_gfp_adjust(gfp, size), out);

	if (!err || size <= KM_PAGE_SIZE)
		return err;
	if (!(gfp & KM___GFP_DIRECT_RECLAIM))
		return err;
	if (size > INT_MAX)
		return -ENOMEM;
	return kmc_vmalloc(c, size, gfp, ret_addr, "km_kvmalloc", out);
}

KM_EXPORT void *km_kvmalloc(km_client *c, size_t size, km_gfp_t gfp)
{
	void *p;
	int err = kvmalloc_one(c, size, gfp, __builtin_return_address(0), &p);

	if (err) {
		errno = -err;
		return NULL;
	}
	return p;
}

/* is_vmalloc_addr(): anything outside the direct map must be an area
 * (vmalloc, KM_GFP_SHARED, an import mapped apart). */
KM_EXPORT void km_kvfree(km_client *c, const void *p)
{
	if (KM_ZERO_OR_NULL_PTR(p))
		return;
	if (kmc_in_direct_map(c, p))
		kfree_one(c, p);
	else
		kmc_vfree(c, p);
}
