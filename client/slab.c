// SPDX-License-Identifier: MIT
/*
 * slab.c - the slabs this client holds and carves itself: the client half
 * of SLUB, one step further than the kernel's per-CPU slab.
 *
 * For the small classes (up to KMALLOC_MAX_CACHE_SIZE) the daemon grants
 * whole slabs (SlabAlloc), each one grant whatever the number of objects in
 * it, and never hears about single objects: carving, free lists and the
 * state of each object live here, in the client's own memory, never in the
 * pool, where another client of the domain could write them. Threads keep
 * objects in magazines of their own (tcache.c); this file moves objects
 * between slabs and magazines under a lock per class.
 *
 * A slab is on one of its class's lists: partial (some objects in it),
 * empty (all of them: kept for reuse), or full (all its objects out, handed
 * out or in magazines). Empty slabs are kept up to SLUB's min_partial per
 * class, all of them while the client's empty slabs stay under a small
 * share of the pool, and beyond that as many as the class's recent demand
 * asks for (slab_surplus_locked()); the rest go back to the daemon with the
 * next request, without a round trip of their own. The first miss of a
 * class asks the daemon for one slab, each further one for twice as many as
 * the last (up to 1024 objects' worth); a slab given back halves it.
 *
 * Every object has a state byte: FREE (in its slab or in a magazine) or
 * USED (handed out). km_kfree() checks it, so a double free, a pointer into
 * the middle of an object, or into a slab this client does not hold is
 * caught and ignored (with a line under KMCLIENT_DEBUG) instead of
 * corrupting a free list. An object km_export() shared is EXPORTED: not
 * USED, so its kfree misses the fast path and makes it GONE instead of
 * free (kmc_slab_gone()): importers may still use it, so it is never handed
 * out again. GONE objects count as free for the slab-empty test: a slab
 * whose other objects are all free goes back to the daemon at once (never
 * kept, it is partly dead), which keeps it allocated for the importers
 * until they let go. A slab descriptor is never freed while the client
 * lives (released slabs' descriptors are kept for reuse), so a lookup that
 * races with a release reads a stale but valid descriptor and fails its
 * checks.
 *
 * Locks: a class's lock guards its lists and its slabs' free stacks; the
 * pagemap is written under the class lock and read without it. No class
 * lock is held across a round trip or with another class's lock.
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#define SLAB_REFILL_MAX_OBJS  1024 /* objects the most any miss asks for */
#define SLAB_EMPTY_POOL_SHARE 256  /* empty slabs kept whatever the demand: 1/256 of the pool */
#define SLAB_EMPTY_MAX_BYTES  (4ull << 20)
#define SLAB_EMPTY_CAP_SHARE  16 /* and at most, whatever the demand: 1/16 of the pool */
#define SLAB_EMPTY_CAP_BYTES  (64ull << 20)
#define SLAB_EPOCH_NS	      1000000000ull /* demand is remembered over one to two of these */
#define SLAB_RELEASE_BATCH    64	    /* ids collected under a lock, given back after */
#define SLAB_GROW_MAX	      256	    /* slabs one miss asks for: 1024 objects of 8 KiB */
#define SLAB_FILL_RUNS	      32	    /* slabs one fill takes objects from under the lock */
#define SLAB_DRAIN_CHUNK      256	    /* objects one drain gives back under the lock */

/* ---- set-up -------------------------------------------------------------- */

/* SLUB's min_partial: clamp(ilog2(size) / 2, 5, 10). */
static uint32_t min_partial(uint32_t size)
{
	uint32_t mp = (31 - (uint32_t)__builtin_clz(size)) / 2;

	return mp < 5 ? 5 : mp > 10 ? 10 : mp;
}

int kmc_slab_init(struct km_client *c)
{
	uint64_t nr_pages = c->pool_size >> KM_PAGE_SHIFT;
	pthread_mutexattr_t attr;
	void *map;

	/* Held for a few microseconds at most: threads that meet on a class
	 * spin a little before they sleep. */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		struct kmc_class *k = &c->classes[i];

		pthread_mutex_init(&k->lock, &attr);
		TAILQ_INIT(&k->full);
		TAILQ_INIT(&k->partial);
		TAILQ_INIT(&k->empty);
		TAILQ_INIT(&k->spare);
		k->size = kms_class_size[i];
		k->objs = kms_class_objs[i];
		k->slab_bytes = (uint64_t)KM_PAGE_SIZE << kms_class_order[i];
		k->magic = (uint32_t)(((1ull << 32) + k->size - 1) / k->size);
		k->keep = min_partial(k->size);
		k->refill = 1; /* one slab first, as SLUB's first allocation */
		k->refill_max = SLAB_REFILL_MAX_OBJS / k->objs;
		k->refill_max = k->refill_max < 1		? 1
				: k->refill_max > SLAB_GROW_MAX ? SLAB_GROW_MAX
								: k->refill_max;
	}
	pthread_mutexattr_destroy(&attr);
	c->empty_budget = c->pool_size / SLAB_EMPTY_POOL_SHARE;
	if (c->empty_budget > SLAB_EMPTY_MAX_BYTES)
		c->empty_budget = SLAB_EMPTY_MAX_BYTES;
	c->empty_cap = c->pool_size / SLAB_EMPTY_CAP_SHARE;
	if (c->empty_cap > SLAB_EMPTY_CAP_BYTES)
		c->empty_cap = SLAB_EMPTY_CAP_BYTES;
	/* One pointer per page of the pool, touched only where slabs are. */
	map = mmap(NULL, nr_pages * sizeof(*c->pagemap), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	c->pagemap = map;
	return 0;
}

static void free_list(struct kmc_slab_list *l)
{
	struct kmc_slab *s;

	while ((s = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, s, link);
		free(s);
	}
}

void kmc_slab_destroy(struct km_client *c)
{
	if (!c->pagemap)
		return; /* never set up */
	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		struct kmc_class *k = &c->classes[i];

		free_list(&k->full);
		free_list(&k->partial);
		free_list(&k->empty);
		free_list(&k->spare);
		pthread_mutex_destroy(&k->lock);
	}
	munmap(c->pagemap, (c->pool_size >> KM_PAGE_SHIFT) * sizeof(*c->pagemap));
	c->pagemap = NULL;
}

/* ---- slabs --------------------------------------------------------------- */

/* A descriptor for a slab of @k: a spare one, or a new one. NULL on ENOMEM. */
static struct kmc_slab *slab_desc_locked(struct kmc_class *k)
{
	struct kmc_slab *s = TAILQ_FIRST(&k->spare);

	if (s) {
		TAILQ_REMOVE(&k->spare, s, link);
		return s;
	}
	s = malloc(sizeof(*s) + k->objs * (sizeof(s->free[0]) + sizeof(s->state[0])));
	if (!s)
		return NULL;
	s->free = (uint16_t *)(s + 1);
	s->state = (uint8_t *)(s->free + k->objs);
	return s;
}

/* A slab the daemon just granted, all its objects free, on the empty list. */
static void slab_add_locked(struct km_client *c, struct kmc_class *k, struct kmc_slab *s,
			    const struct kmc_grant *g, unsigned int idx)
{
	uint64_t pfn = g->phys >> KM_PAGE_SHIFT, n = k->slab_bytes >> KM_PAGE_SHIFT;

	s->grant = g->id;
	s->phys = g->phys;
	s->magic = k->magic;
	s->size = k->size;
	s->end = k->size * k->objs;
	s->cls = (uint8_t)idx;
	s->nr_free = (uint16_t)k->objs;
	/* Handed out lowest address first, like a fresh SLUB slab. */
	for (uint32_t i = 0; i < k->objs; i++)
		s->free[i] = (uint16_t)(k->objs - 1 - i);
	memset(s->state, KMC_OBJ_FREE, k->objs);
	s->nr_gone = 0;
	s->where = KMC_SLAB_EMPTY;
	TAILQ_INSERT_TAIL(&k->empty, s, link);
	k->nr_empty++;
	k->nr_slabs++;
	__atomic_add_fetch(&c->empty_bytes, k->slab_bytes, __ATOMIC_RELAXED);
	for (uint64_t i = 0; i < n; i++)
		c->pagemap[pfn + i] = s;
}

/* Takes an empty slab off its list and out of the pagemap; its descriptor
 * becomes spare. Returns the grant to give back. */
static uint64_t slab_remove_locked(struct km_client *c, struct kmc_class *k, struct kmc_slab *s)
{
	uint64_t pfn = s->phys >> KM_PAGE_SHIFT, n = k->slab_bytes >> KM_PAGE_SHIFT;

	TAILQ_REMOVE(&k->empty, s, link);
	k->nr_empty--;
	k->nr_slabs--;
	__atomic_sub_fetch(&c->empty_bytes, k->slab_bytes, __ATOMIC_RELAXED);
	for (uint64_t i = 0; i < n; i++)
		c->pagemap[pfn + i] = NULL;
	s->where = KMC_SLAB_SPARE;
	TAILQ_INSERT_HEAD(&k->spare, s, link);
	return s->grant;
}

/* Takes a slab with GONE objects and every other one free off its list
 * (full or partial) and out of the pagemap; its descriptor becomes spare.
 * Returns the grant to give back: the daemon keeps the slab for the
 * importers of its GONE objects. */
static uint64_t slab_retire_locked(struct km_client *c, struct kmc_class *k, struct kmc_slab *s)
{
	uint64_t pfn = s->phys >> KM_PAGE_SHIFT, n = k->slab_bytes >> KM_PAGE_SHIFT;

	TAILQ_REMOVE(s->where == KMC_SLAB_FULL ? &k->full : &k->partial, s, link);
	k->nr_slabs--;
	for (uint64_t i = 0; i < n; i++)
		c->pagemap[pfn + i] = NULL;
	s->where = KMC_SLAB_SPARE;
	TAILQ_INSERT_HEAD(&k->spare, s, link);
	return s->grant;
}

/* Gives the ids collected under a lock back, after it: they ride on the
 * next request (a round trip of their own only when many pile up). */
static void release_ids(struct km_client *c, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kmc_rpc_release(c, ids[i]);
}

/* Asks the daemon for slabs of class @idx and adds them. 0 or -errno. */
static int slab_grow(struct km_client *c, unsigned int idx, km_gfp_t gfp)
{
	struct kmc_class *k = &c->classes[idx];
	struct kmc_grant g[SLAB_GROW_MAX];
	uint32_t n = __atomic_load_n(&k->refill, __ATOMIC_RELAXED), i, added = 0;
	uint64_t lo = UINT64_MAX, hi = 0;
	int err;

	/* Our own memory is not cleared by the daemon: __GFP_ZERO is ours. */
	gfp &= ~KM___GFP_ZERO;
	err = kmc_rpc_slabs(c, k->size, gfp | (n > 1 ? KM___GFP_NOWARN : 0), n, g);
	if (err && n > 1) {
		/* A short pool may still have one slab for this caller. */
		n = 1;
		err = kmc_rpc_slabs(c, k->size, gfp, n, g);
	}
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		lo = g[i].phys < lo ? g[i].phys : lo;
		hi = g[i].phys + k->slab_bytes > hi ? g[i].phys + k->slab_bytes : hi;
	}
	/* Slabs of one reply usually sit side by side: one populate. */
	if (hi - lo <= (uint64_t)n * k->slab_bytes + c->populate_unit)
		kmc_populate(c, lo, hi - lo);
	else
		for (i = 0; i < n; i++)
			kmc_populate(c, g[i].phys, k->slab_bytes);

	pthread_mutex_lock(&k->lock);
	for (i = 0; i < n; i++) {
		struct kmc_slab *s = slab_desc_locked(k);

		if (!s)
			break;
		slab_add_locked(c, k, s, &g[i], idx);
		added++;
	}
	/* Missing again: ask for more next time, as SLUB's per-CPU partial
	 * list grows with demand. */
	if (k->refill < k->refill_max)
		k->refill = k->refill * 2 < k->refill_max ? k->refill * 2 : k->refill_max;
	pthread_mutex_unlock(&k->lock);
	for (i = added; i < n; i++)
		kmc_rpc_release(c, g[i].id);
	return added ? 0 : -ENOMEM;
}

/* Objects taken from one slab by a fill. */
struct fill_run {
	struct kmc_slab *s;
	uint32_t n;
};

/*
 * Takes up to @want object indexes out of @k's slabs into @idx, in at most
 * SLAB_FILL_RUNS runs of one slab each; the number taken goes to *@got.
 * Only the indexes move under the lock (a memcpy per slab); the caller
 * makes them into magazine entries after it: a slab with objects out stays
 * put.
 */
static unsigned int take_locked(struct km_client *c, struct kmc_class *k, uint16_t *idx,
				uint32_t want, struct fill_run *runs, uint32_t *got)
{
	unsigned int nr = 0;
	uint32_t total = 0;

	while (total < want && nr < SLAB_FILL_RUNS) {
		struct kmc_slab *s = TAILQ_FIRST(&k->partial);
		uint32_t take;

		if (!s) {
			s = TAILQ_FIRST(&k->empty);
			if (!s)
				break;
			TAILQ_REMOVE(&k->empty, s, link);
			k->nr_empty--;
			__atomic_sub_fetch(&c->empty_bytes, k->slab_bytes, __ATOMIC_RELAXED);
			s->where = KMC_SLAB_PARTIAL;
			TAILQ_INSERT_HEAD(&k->partial, s, link);
			if (k->nr_slabs - k->nr_empty > k->peak)
				k->peak = k->nr_slabs - k->nr_empty;
		}
		take = s->nr_free < want - total ? s->nr_free : want - total;
		s->nr_free -= (uint16_t)take;
		/* The top of the free stack, lowest address last: handed out first. */
		memcpy(idx + total, s->free + s->nr_free, take * sizeof(*idx));
		runs[nr].s = s;
		runs[nr++].n = take;
		total += take;
		if (!s->nr_free) {
			TAILQ_REMOVE(&k->partial, s, link);
			s->where = KMC_SLAB_FULL;
			TAILQ_INSERT_HEAD(&k->full, s, link);
		}
	}
	*got = total;
	return nr;
}

/* Moves objects from @k's slabs into @m until it holds @want, or the slabs
 * have no more. */
static void fill(struct km_client *c, struct kmc_class *k, struct kmc_mag *m, uint32_t want)
{
	struct fill_run runs[SLAB_FILL_RUNS];
	uint16_t idx[KMC_MAG_MAX];
	unsigned int nr, r;
	uint32_t got, pos = 0;

	if (want > KMC_MAG_MAX)
		want = KMC_MAG_MAX;
	while (m->nr < want) {
		pthread_mutex_lock(&k->lock);
		nr = take_locked(c, k, idx, want - m->nr, runs, &got);
		pthread_mutex_unlock(&k->lock);
		if (!got)
			return;
		pos = 0;
		for (r = 0; r < nr; r++) {
			struct kmc_slab *s = runs[r].s;
			uint8_t *first = c->base + s->phys;

			for (uint32_t j = 0; j < runs[r].n; j++, pos++) {
				uint16_t i = idx[pos];

				m->e[m->nr].obj = first + (uint64_t)i * k->size;
				m->e[m->nr].state = &s->state[i];
				m->nr++;
			}
		}
	}
}

int kmc_slab_fill(struct km_client *c, unsigned int idx, struct kmc_mag *m, uint32_t want,
		  km_gfp_t gfp)
{
	struct kmc_class *k = &c->classes[idx];
	int err;

	for (;;) {
		fill(c, k, m, want);
		if (m->nr)
			return 0;
		err = slab_grow(c, idx, gfp);
		/* What this client keeps (empty slabs, large blocks) may be
		 * what the pool or the uid's limits lack. */
		if ((err == -ENOMEM || err == -EDQUOT) && kmc_drain_caches(c))
			err = slab_grow(c, idx, gfp);
		if (err)
			return err;
	}
}

static uint64_t coarse_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Starts a new demand epoch once the current one is over: the peak of the
 * one before is remembered (forgotten after a longer lull), and refills
 * shrink back towards one slab. */
static void class_epoch_locked(struct kmc_class *k)
{
	uint64_t now = coarse_now_ns();

	if (now - k->epoch < SLAB_EPOCH_NS)
		return;
	k->prev_peak = now - k->epoch < 2 * SLAB_EPOCH_NS ? k->peak : 0;
	k->peak = k->nr_slabs - k->nr_empty;
	k->epoch = now;
	if (k->refill > 1)
		k->refill /= 2;
}

/*
 * Whether a slab of @k that just became empty is one too many. Kept: up to
 * min_partial per class; all of them while the client's empty slabs stay
 * under a small budget; beyond it, as many as the class's recent demand
 * (its peak of slabs in use over the last one or two epochs) makes worth
 * keeping, so that a pattern that allocates and frees a thousand objects
 * over and over does not give slabs back and ask for them again each time;
 * never more than the cap, whatever the demand.
 */
static bool slab_surplus_locked(struct km_client *c, struct kmc_class *k)
{
	uint64_t empty = __atomic_load_n(&c->empty_bytes, __ATOMIC_RELAXED);

	if (k->nr_empty <= k->keep || empty <= c->empty_budget)
		return false;
	if (empty > c->empty_cap)
		return true;
	class_epoch_locked(k);
	return k->nr_slabs > (k->peak > k->prev_peak ? k->peak : k->prev_peak);
}

/* Moves @s, which just got an object back, onto the list that fits it:
 * partial if it was full, empty if that was its last object out. Adds its
 * grant to @ids when it is given back. */
static __attribute__((noinline)) void put_moved_locked(struct km_client *c, struct kmc_class *k,
						       struct kmc_slab *s, uint64_t *ids,
						       size_t *nr_ids)
{
	if (s->where == KMC_SLAB_FULL) {
		TAILQ_REMOVE(&k->full, s, link);
		s->where = KMC_SLAB_PARTIAL;
		TAILQ_INSERT_HEAD(&k->partial, s, link);
	}
	if (s->nr_free + s->nr_gone < k->objs)
		return;
	if (s->nr_gone) {
		ids[(*nr_ids)++] = slab_retire_locked(c, k, s);
		return;
	}
	TAILQ_REMOVE(&k->partial, s, link);
	s->where = KMC_SLAB_EMPTY;
	/* Kept near the head: the next fill takes the hottest empty slab. */
	TAILQ_INSERT_HEAD(&k->empty, s, link);
	k->nr_empty++;
	__atomic_add_fetch(&c->empty_bytes, k->slab_bytes, __ATOMIC_RELAXED);
	if (slab_surplus_locked(c, k))
		ids[(*nr_ids)++] = slab_remove_locked(c, k, s);
}

/* An object back into its slab, and the slab onto the list that fits. */
static inline void put_locked(struct km_client *c, struct kmc_class *k, struct kmc_slab *s,
			      uint16_t i, uint64_t *ids, size_t *nr_ids)
{
	s->free[s->nr_free++] = i;
	if (__builtin_expect(s->where == KMC_SLAB_FULL || s->nr_free + s->nr_gone == k->objs, 0))
		put_moved_locked(c, k, s, ids, nr_ids);
}

void kmc_slab_drain_mag(struct km_client *c, unsigned int idx, struct kmc_mag *m, uint32_t keep)
{
	struct kmc_class *k = &c->classes[idx];
	struct kmc_slab *slab[SLAB_DRAIN_CHUNK], *s;
	uint16_t index[SLAB_DRAIN_CHUNK];
	uint64_t ids[SLAB_DRAIN_CHUNK];
	uint32_t n, j, t, cnt;
	size_t nr_ids;

	if (m->nr <= keep)
		return;
	/* The oldest go back; the most recently freed (cache-hot) stay. */
	n = m->nr - keep;
	s = c->pagemap[((uint8_t *)m->e[0].obj - c->base) >> KM_PAGE_SHIFT];
	for (j = 0; j < n; j += cnt) {
		cnt = n - j < SLAB_DRAIN_CHUNK ? n - j : SLAB_DRAIN_CHUNK;
		/* Each object's slab and index first, without the lock: a slab
		 * with an object out (in a magazine) stays put. Neighbours are
		 * often of one slab: the pagemap only when the state byte is
		 * not the last slab's. */
		for (t = 0; t < cnt; t++) {
			uint8_t *state = m->e[j + t].state;

			if ((uintptr_t)(state - s->state) >= k->objs)
				s = c->pagemap[((uint8_t *)m->e[j + t].obj - c->base) >>
					       KM_PAGE_SHIFT];
			slab[t] = s;
			index[t] = (uint16_t)(state - s->state);
		}
		nr_ids = 0;
		pthread_mutex_lock(&k->lock);
		for (t = 0; t < cnt; t++)
			put_locked(c, k, slab[t], index[t], ids, &nr_ids);
		pthread_mutex_unlock(&k->lock);
		release_ids(c, ids, nr_ids);
	}
	memmove(m->e, m->e + n, keep * sizeof(m->e[0]));
	m->nr = keep;
}

void kmc_slab_put(struct km_client *c, struct kmc_slab *s, uint32_t idx)
{
	struct kmc_class *k = &c->classes[s->cls];
	uint64_t ids[1];
	size_t nr_ids = 0;

	pthread_mutex_lock(&k->lock);
	put_locked(c, k, s, (uint16_t)idx, ids, &nr_ids);
	pthread_mutex_unlock(&k->lock);
	release_ids(c, ids, nr_ids);
}

bool kmc_slab_gone(struct km_client *c, struct kmc_slab *s, uint32_t idx)
{
	struct kmc_class *k = &c->classes[s->cls];
	uint64_t id = 0;
	bool done = false;

	pthread_mutex_lock(&k->lock);
	/* The slab may have changed hands since kmc_slab_of(): look again. */
	if (s->where != KMC_SLAB_SPARE && s->state[idx] == KMC_OBJ_EXPORTED) {
		s->state[idx] = KMC_OBJ_GONE;
		s->nr_gone++;
		done = true;
		if (s->nr_free + s->nr_gone == k->objs)
			id = slab_retire_locked(c, k, s);
	}
	pthread_mutex_unlock(&k->lock);
	if (id)
		kmc_rpc_release(c, id);
	return done;
}

int kmc_slab_export_begin(struct km_client *c, struct kmc_slab *s, uint32_t idx, bool *was)
{
	uint8_t expect = KMC_OBJ_USED;

	(void)c;
	/* A compare-and-swap: the fast paths change the byte without a lock
	 * (a concurrent kfree of the object being exported is the caller's
	 * bug, but must not leave a free object marked exported). */
	if (__atomic_compare_exchange_n(&s->state[idx], &expect, KMC_OBJ_EXPORTED, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		*was = false;
		return 0;
	}
	if (expect == KMC_OBJ_EXPORTED) {
		*was = true;
		return 0;
	}
	return -EINVAL;
}

void kmc_slab_export_undo(struct km_client *c, struct kmc_slab *s, uint32_t idx)
{
	uint8_t expect = KMC_OBJ_EXPORTED;

	(void)c;
	__atomic_compare_exchange_n(&s->state[idx], &expect, KMC_OBJ_USED, false, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
}

bool kmc_slab_owns(const struct km_client *c, const void *p)
{
	uint64_t off = (uintptr_t)p - (uintptr_t)c->base;

	return off < c->pool_size && c->pagemap[off >> KM_PAGE_SHIFT];
}

bool kmc_slab_release_empty(struct km_client *c)
{
	uint64_t ids[SLAB_RELEASE_BATCH];
	bool any = false;

	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		struct kmc_class *k = &c->classes[i];
		size_t n;

		do {
			struct kmc_slab *s;

			n = 0;
			pthread_mutex_lock(&k->lock);
			while (n < SLAB_RELEASE_BATCH && (s = TAILQ_FIRST(&k->empty)))
				ids[n++] = slab_remove_locked(c, k, s);
			pthread_mutex_unlock(&k->lock);
			/* Back now, so that the caller's next figures or retry see them. */
			kmc_rpc_give_back(c, ids, n);
			any |= n > 0;
		} while (n == SLAB_RELEASE_BATCH);
	}
	return any;
}
