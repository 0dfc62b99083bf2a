// SPDX-License-Identifier: MIT
/*
 * kmalloc.c - the km_kmalloc family (kmalloc, kzalloc, kcalloc, krealloc,
 * kfree, ksize, bulk), km_virt_to_phys() and the kvmalloc pair; the client
 * side of mm/slab_common.c, mm/slub.c and mm/util.c, following
 * docs/kernel.md
 *
 * The daemon owns the allocator; the client keeps one table of its live
 * kmalloc grants, phys -> {grant id, ksize}: open addressing with linear
 * probing and backward-shift deletion (no tombstones), Fibonacci hashing,
 * grown at 3/4 load. Every lookup, insert and delete is O(1) under ktab_lock.
 *
 * Cost of km_kmalloc(): usually no round trip at all: freed objects and
 * blocks wait on per-client lists (pcp.c) and a miss in a slab class fetches
 * a batch of objects in one round trip; a table insert and a bitmap test, and
 * a syscall more only when a grant lands in a populate unit this client has
 * not touched yet. km_kfree() puts the object on its list; past the list's
 * limit an object of at most KM_KMALLOC_MAX_CACHE_SIZE bytes costs no round
 * trip either (its id rides on the next request, rpc.c), while larger ones
 * are freed synchronously so their pages return to the pool at once.
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
#define KMS_REFILL_MAX	  64 /* objects one refill asks for, at most */

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

/* ---- kmalloc ------------------------------------------------------------- */

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

/* Takes an object from the client's own list for @size: no round trip. */
static bool kmalloc_from_pcp(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	uint64_t ksize = kms_size_roundup(size);
	struct kmc_pcp_list *l = kmc_pcp_list_for(c, ksize);
	struct kmc_grant g;
	struct kmc_kobj o;
	bool hit;

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

/*
 * A miss in a slab class: one bulk Alloc of the class's batch; the first
 * object is the caller's, the others wait on the list. Returns false when
 * the batch could not be had (the caller then asks for one object, with its
 * own gfp, so a short pool still serves single objects).
 */
static bool kmalloc_refill(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	int idx = kms_class_index(size);
	struct kmc_pcp_list *l = &c->pcp_small[idx];
	struct kmc_grant g[KMS_REFILL_MAX];
	uint32_t n = l->batch < KMS_REFILL_MAX ? l->batch : KMS_REFILL_MAX, i;
	bool ok = true;

	if (n < 2)
		return false;
	if (kmc_rpc_alloc(c, kms_class_size[idx], (gfp & ~KM___GFP_ZERO) | KM___GFP_NOWARN, n, g) <
	    0)
		return false;
	pthread_mutex_lock(&c->ktab_lock);
	if (ktab_insert_locked(c, &g[0]) < 0) {
		ok = false;
		i = 0;
	} else {
		for (i = 1; i < n; i++) {
			struct kmc_kobj o = { .phys = g[i].phys, .id = g[i].id, .size = g[i].size };

			if (!kmc_pcp_push_locked(c, l, &o))
				break;
		}
	}
	pthread_mutex_unlock(&c->ktab_lock);
	/* Whatever found no room (another thread refilled meanwhile) goes back. */
	for (; i < n; i++)
		kmc_rpc_release(c, g[i].id);
	if (!ok)
		return false;
	populate_grants(c, g, n);
	if (gfp & KM___GFP_ZERO)
		memset(c->base + g[0].phys, 0, g[0].size);
	*out = c->base + g[0].phys;
	return true;
}

static int kmalloc_one(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	struct kmc_grant g;
	int err;

	if (!size) {
		*out = KM_ZERO_SIZE_PTR;
		return 0;
	}
	/* Above order 10 the kernel fails in the page allocator; we save the trip. */
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM;
	if (kmalloc_from_pcp(c, size, gfp, out))
		return 0;
	if (size <= KM_KMALLOC_MAX_CACHE_SIZE && kmalloc_refill(c, size, gfp, out))
		return 0;
	err = kmc_rpc_alloc(c, size, gfp, 1, &g);
	/* What this client keeps on its lists may be what the pool lacks, or
	 * what takes its uid past a limit. */
	if ((err == -ENOMEM || err == -EDQUOT) && kmc_pcp_drain_if_any(c))
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

/* Removes @p from the table; returns false (and logs) if it is not a live
 * kmalloc of this client. */
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
	if (!o)
		kmc_dbg(c, "kfree of %p, which is not a live kmalloc", p);
	return o != NULL;
}

static void kfree_one(struct km_client *c, const void *p)
{
	struct kmc_kobj o;
	bool kept;

	if (KM_ZERO_OR_NULL_PTR(p) || !ktab_take(c, p, &o))
		return;
	pthread_mutex_lock(&c->ktab_lock);
	kept = kmc_pcp_push_locked(c, kmc_pcp_list_for(c, o.size), &o);
	pthread_mutex_unlock(&c->ktab_lock);
	if (kept)
		return;
	if (o.size <= KM_KMALLOC_MAX_CACHE_SIZE)
		kmc_rpc_release(c, o.id);
	else
		kmc_rpc_give_back(c, &o.id, 1);
}

static size_t ksize_of(struct km_client *c, const void *p)
{
	const struct kmc_kobj *o;
	size_t size = 0;

	if (KM_ZERO_OR_NULL_PTR(p) || !kmc_in_direct_map(c, p))
		return 0;
	pthread_mutex_lock(&c->ktab_lock);
	o = ktab_find_locked(c, (const uint8_t *)p - c->base);
	if (o)
		size = o->size;
	pthread_mutex_unlock(&c->ktab_lock);
	return size;
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

KM_EXPORT void *km_kmalloc(km_client *c, size_t size, km_gfp_t gfp)
{
	void *p;
	int err = kmalloc_one(c, size, gfp, &p);

	if (err) {
		errno = -err;
		return NULL;
	}
	return p;
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

KM_EXPORT void km_kfree(km_client *c, const void *p)
{
	kfree_one(c, p);
}

KM_EXPORT size_t km_ksize(km_client *c, const void *p)
{
	return ksize_of(c, p);
}

KM_EXPORT uint64_t km_virt_to_phys(km_client *c, const void *p)
{
	if (!kmc_in_direct_map(c, p))
		return UINT64_MAX;
	return (const uint8_t *)p - c->base;
}

/* ---- bulk ---------------------------------------------------------------- */

/*
 * Frees the grants of @p[0..n) with one Free per kmc_rpc_max_ids() ids (1024
 * normally), the release queue riding along. Unknown pointers are skipped.
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
		if (KM_ZERO_OR_NULL_PTR(p[i]) || !ktab_take(c, p[i], &o))
			continue;
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
	int err = kmalloc_bulk(c, size, gfp, n, out);

	if (err) {
		errno = -err;
		return -1;
	}
	return (int)n;
}

KM_EXPORT void km_kfree_bulk(km_client *c, size_t n, void **p)
{
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

/* is_vmalloc_addr(): anything outside the direct map must be a vmalloc area. */
KM_EXPORT void km_kvfree(km_client *c, const void *p)
{
	if (KM_ZERO_OR_NULL_PTR(p))
		return;
	if (kmc_in_direct_map(c, p))
		kfree_one(c, p);
	else
		kmc_vfree(c, p);
}
