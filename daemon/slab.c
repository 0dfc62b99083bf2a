// SPDX-License-Identifier: MIT
/*
 * slab.c - the kmalloc size classes and a SLUB-like kmem_cache over pages.
 *
 * Owns the class table (mm/slab_common.c: kmalloc_info[], kmalloc_size_index[]),
 * the slab order computation (mm/slub.c: calculate_order()) and every struct
 * slab of a kmem_cache: its pages come from the cache's slab_page_ops, its
 * objects sit back to back from the slab's first byte, and its free list lives
 * here in daemon memory (freelist[]), never in the pool that clients can write.
 * A slab is on exactly one list: `full` when no object is free, `partial`
 * otherwise (empty slabs included, counted in nr_empty). Emptied slabs go back
 * to the page allocator only once the partial list already holds min_partial
 * slabs, as __slab_free() does (docs/kernel.md). There are no per-CPU
 * slabs: the daemon is single-threaded. Callers: kmalloc.c and domain.c.
 */
#include "config.h"
#include "slab.h"

#include "sizes.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLUB_MAX_ORDER	  3 /* slub_max_order = PAGE_ALLOC_COSTLY_ORDER */
#define MAX_OBJS_PER_PAGE 32767u
#define MIN_PARTIAL	  5u
#define MAX_PARTIAL	  10u

/* freelist[] values besides the index of the next free object. */
#define FREELIST_END   UINT16_MAX	/* last free object; also an empty free_head */
#define FREELIST_INUSE (UINT16_MAX - 1) /* object handed out */

/* The classes of kmalloc-abi.h; test-slab checks their orders and objects
 * per slab against slub_calculate_order() on 2 CPUs. */
#define KMALLOC_CLASS_(name, size, order, objs) { name, size, order, objs },
const struct kmalloc_class kmalloc_classes[KM_NR_KMALLOC_CLASSES] = { KM_KMALLOC_CLASSES(
	KMALLOC_CLASS_) };
#undef KMALLOC_CLASS_

/* ------------------------------------------------------- size classes */

static unsigned int fls32(uint32_t x)
{
	return x ? 32 - (unsigned int)__builtin_clz(x) : 0;
}

static unsigned int ilog2_32(uint32_t x)
{
	return fls32(x) - 1;
}

/* ---------------------------------------------------------- slab order */

static unsigned int get_order(uint64_t size)
{
	unsigned int order = 0;

	while (((uint64_t)KM_PAGE_SIZE << order) < size)
		order++;
	return order;
}

static uint32_t order_objects(unsigned int order, uint32_t size)
{
	return (uint32_t)(((uint64_t)KM_PAGE_SIZE << order) / size);
}

/* mm/slub.c: calc_slab_order(); returns max_order + 1 when nothing fits. */
static unsigned int calc_slab_order(uint32_t size, unsigned int min_order, unsigned int max_order,
				    unsigned int fract_leftover)
{
	unsigned int order;

	for (order = min_order; order <= max_order; order++) {
		uint64_t slab_size = (uint64_t)KM_PAGE_SIZE << order;

		if (slab_size % size <= slab_size / fract_leftover)
			break;
	}
	return order;
}

/*
 * mm/slub.c: calculate_order() of 6.12 with slub_min_order 0 and no
 * slub_min_objects. Like the kernel, the waste loop runs 1/16, 1/8, 1/4 and
 * then 1/2 (which accepts any layout holding one object within max order)
 * before falling back to get_order(size); the 13 classes never get that far.
 */
unsigned int slub_calculate_order(uint32_t size, unsigned int nr_cpus, uint32_t *objs)
{
	uint32_t min_objects, max_objects;
	unsigned int order, min_order;

	assert(size > 0);
	if (nr_cpus < 1)
		nr_cpus = 1;
	min_objects = 4 * (fls32(nr_cpus) + 1);
	max_objects = order_objects(SLUB_MAX_ORDER, size);
	if (max_objects < 1)
		max_objects = 1;
	if (min_objects > max_objects)
		min_objects = max_objects;

	min_order = get_order((uint64_t)min_objects * size);
	if (order_objects(min_order, size) > MAX_OBJS_PER_PAGE) {
		order = get_order((uint64_t)size * MAX_OBJS_PER_PAGE) - 1;
		goto out;
	}
	for (unsigned int fraction = 16; fraction > 1; fraction /= 2) {
		order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction);
		if (order <= SLUB_MAX_ORDER)
			goto out;
	}
	order = get_order(size);
out:
	*objs = order_objects(order, size);
	return order;
}

/* ------------------------------------------------------------ slab map */

int slab_map_init(struct slab_map *map, uint32_t nr_pages)
{
	map->at = calloc(nr_pages ? nr_pages : 1, sizeof(*map->at));
	map->granted = calloc(nr_pages ? nr_pages : 1, sizeof(*map->granted));
	map->nr_pages = nr_pages;
	if (!map->at || !map->granted) {
		slab_map_fini(map);
		return -ENOMEM;
	}
	return 0;
}

void slab_map_fini(struct slab_map *map)
{
	free(map->at);
	free(map->granted);
	map->at = NULL;
	map->granted = NULL;
	map->nr_pages = 0;
}

/* ------------------------------------------------------------ kmem_cache */

void kmem_cache_init(struct kmem_cache *c, const struct kmalloc_class *cls,
		     const struct slab_page_ops *ops, struct slab_map *map)
{
	unsigned int mp = ilog2_32(cls->size) / 2;

	assert(cls->size > 0 && cls->objs_per_slab > 0);
	assert(cls->objs_per_slab < FREELIST_INUSE);
	assert((uint64_t)cls->objs_per_slab * cls->size <= (uint64_t)KM_PAGE_SIZE << cls->order);

	memset(c, 0, sizeof(*c));
	c->cls = cls;
	c->ops = *ops;
	c->map = map;
	c->min_partial = mp < MIN_PARTIAL ? MIN_PARTIAL : mp > MAX_PARTIAL ? MAX_PARTIAL : mp;
	TAILQ_INIT(&c->partial);
	TAILQ_INIT(&c->full);
}

static uint64_t slab_base(const struct slab *s)
{
	return (uint64_t)s->pfn << KM_PAGE_SHIFT;
}

static void partial_add(struct kmem_cache *c, struct slab *s)
{
	TAILQ_INSERT_HEAD(&c->partial, s, link);
	c->nr_partial++;
}

static void partial_del(struct kmem_cache *c, struct slab *s)
{
	assert(c->nr_partial > 0);
	TAILQ_REMOVE(&c->partial, s, link);
	c->nr_partial--;
}

/* A new empty slab over pages [pfn, pfn + 2^order) the caller took, on the
 * partial list. */
static struct slab *slab_make(struct kmem_cache *c, uint32_t pfn)
{
	uint32_t nr = c->cls->objs_per_slab;
	struct slab *s;

	s = malloc(sizeof(*s) + nr * sizeof(s->freelist[0]));
	if (!s)
		return NULL;
	s->cache = c;
	s->pfn = pfn;
	s->inuse = 0;
	s->free_head = 0;
	for (uint32_t i = 0; i < nr; i++)
		s->freelist[i] = (uint16_t)(i + 1 < nr ? i + 1 : FREELIST_END);
	partial_add(c, s);
	c->map->at[pfn] = s;
	c->nr_slabs++;
	c->nr_objs += nr;
	c->nr_empty++;
	return s;
}

/* A new empty slab from the page allocator. Touches nothing on failure. */
static int new_slab(struct kmem_cache *c, unsigned int gfp, struct slab **out)
{
	uint32_t pfn;
	int ret;

	ret = c->ops.alloc_pages(c->ops.ctx, c->cls->order, gfp, &pfn);
	if (ret)
		return ret < 0 ? ret : -ENOMEM;
	*out = slab_make(c, pfn);
	if (!*out) {
		c->ops.free_pages(c->ops.ctx, pfn, c->cls->order);
		return -ENOMEM;
	}
	return 0;
}

static void discard_slab(struct kmem_cache *c, struct slab *s)
{
	c->map->at[s->pfn] = NULL;
	c->ops.free_pages(c->ops.ctx, s->pfn, c->cls->order);
	c->nr_slabs--;
	c->nr_objs -= c->cls->objs_per_slab;
	free(s);
}

/* Takes object @idx of @s (free) off its free list. */
static void slab_take(struct kmem_cache *c, struct slab *s, uint16_t idx)
{
	uint16_t *pp = &s->free_head;

	while (*pp != idx)
		pp = &s->freelist[*pp];
	*pp = s->freelist[idx];
	s->freelist[idx] = FREELIST_INUSE;
	if (s->inuse++ == 0)
		c->nr_empty--;
	c->nr_active++;
	if (s->free_head == FREELIST_END) {
		partial_del(c, s);
		TAILQ_INSERT_HEAD(&c->full, s, link);
	}
}

int kmem_cache_alloc(struct kmem_cache *c, unsigned int gfp, uint64_t *phys)
{
	struct slab *s = TAILQ_FIRST(&c->partial);
	uint16_t idx;
	int ret;

	if (!s) {
		ret = new_slab(c, gfp, &s);
		if (ret)
			return ret;
	}
	idx = s->free_head;
	assert(idx < c->cls->objs_per_slab);
	slab_take(c, s, idx); /* the head: no walk */
	*phys = slab_base(s) + (uint64_t)idx * c->cls->size;
	return 0;
}

/* The slab @phys would lie in, the object's index in it, and whether @phys
 * starts an object of this cache's layout. */
static bool object_at(const struct kmem_cache *c, uint64_t phys, uint32_t *slab_pfn, uint32_t *idx)
{
	uint64_t pfn = phys >> KM_PAGE_SHIFT, off;

	if (pfn >= c->map->nr_pages)
		return false;
	*slab_pfn = (uint32_t)pfn & ~((1u << c->cls->order) - 1);
	off = phys - ((uint64_t)*slab_pfn << KM_PAGE_SHIFT);
	if (off % c->cls->size || off / c->cls->size >= c->cls->objs_per_slab)
		return false;
	*idx = (uint32_t)(off / c->cls->size);
	return true;
}

int kmem_cache_alloc_at(struct kmem_cache *c, uint64_t phys)
{
	uint32_t pfn, idx;
	struct slab *s;
	int ret;

	if (!object_at(c, phys, &pfn, &idx))
		return -EINVAL;
	s = c->map->at[pfn];
	if (!s) {
		ret = c->ops.alloc_pages_at(c->ops.ctx, pfn, c->cls->order);
		if (ret)
			return ret == -ENOMEM ? ret : -EEXIST;
		s = slab_make(c, pfn);
		if (!s) {
			c->ops.free_pages(c->ops.ctx, pfn, c->cls->order);
			return -ENOMEM;
		}
	}
	if (s->cache != c || s->freelist[idx] == FREELIST_INUSE)
		return -EEXIST;
	slab_take(c, s, (uint16_t)idx);
	return 0;
}

int kmem_cache_free(struct kmem_cache *c, uint64_t phys)
{
	uint32_t pfn, idx;
	struct slab *s;
	bool was_full;

	if (!object_at(c, phys, &pfn, &idx))
		return -EINVAL;
	s = c->map->at[pfn];
	/* Cheap double-free catch: the entry of a handed-out object is marked. */
	if (!s || s->cache != c || s->freelist[idx] != FREELIST_INUSE)
		return -EINVAL;

	was_full = s->free_head == FREELIST_END;
	s->freelist[idx] = s->free_head;
	s->free_head = (uint16_t)idx;
	s->inuse--;
	c->nr_active--;

	if (s->inuse == 0) {
		/* __slab_free(): nr_partial counts this slab if it was partial. */
		if (c->nr_partial >= c->min_partial) {
			if (was_full)
				TAILQ_REMOVE(&c->full, s, link);
			else
				partial_del(c, s);
			discard_slab(c, s);
			return 0;
		}
		c->nr_empty++;
	}
	if (was_full) {
		TAILQ_REMOVE(&c->full, s, link);
		partial_add(c, s);
	}
	return 0;
}

static void granted_count(struct kmem_cache *c, uint32_t pfn, int sign)
{
	c->map->granted[pfn] = sign > 0 ? (uint8_t)(c->cls->order + 1) : 0;
	c->nr_granted += sign;
	c->nr_slabs += sign;
	c->nr_objs += sign * (int64_t)c->cls->objs_per_slab;
	c->nr_active += sign * (int64_t)c->cls->objs_per_slab;
}

int kmem_cache_grant_slab(struct kmem_cache *c, unsigned int gfp, uint32_t *pfn)
{
	int ret = c->ops.alloc_pages(c->ops.ctx, c->cls->order, gfp, pfn);

	if (ret)
		return ret < 0 ? ret : -ENOMEM;
	granted_count(c, *pfn, 1);
	return 0;
}

int kmem_cache_grant_slab_at(struct kmem_cache *c, uint32_t pfn)
{
	int ret;

	if (pfn >= c->map->nr_pages || pfn & ((1u << c->cls->order) - 1))
		return -EINVAL;
	ret = c->ops.alloc_pages_at(c->ops.ctx, pfn, c->cls->order);
	if (ret)
		return ret == -ENOMEM ? ret : -EEXIST;
	granted_count(c, pfn, 1);
	return 0;
}

void kmem_cache_ungrant_slab(struct kmem_cache *c, uint32_t pfn)
{
	assert(c->nr_granted > 0);
	granted_count(c, pfn, -1);
	c->ops.free_pages(c->ops.ctx, pfn, c->cls->order);
}

uint64_t kmem_cache_shrink(struct kmem_cache *c)
{
	uint64_t pages = 0;
	struct slab *s, *next;

	for (s = TAILQ_FIRST(&c->partial); s; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->inuse)
			continue;
		partial_del(c, s);
		c->nr_empty--;
		discard_slab(c, s);
		pages += (uint64_t)1 << c->cls->order;
	}
	return pages;
}

void kmem_cache_destroy(struct kmem_cache *c)
{
	struct slab *s;

	while ((s = TAILQ_FIRST(&c->partial))) {
		partial_del(c, s);
		c->nr_active -= s->inuse;
		discard_slab(c, s);
	}
	while ((s = TAILQ_FIRST(&c->full))) {
		TAILQ_REMOVE(&c->full, s, link);
		c->nr_active -= s->inuse;
		discard_slab(c, s);
	}
	c->nr_empty = 0;
	/* Granted slabs are the grants' to give back; a domain torn down with
	 * clients in (mm_fini()) just forgets them with its pages. */
	c->nr_active -= c->nr_granted * c->cls->objs_per_slab;
	c->nr_objs -= c->nr_granted * c->cls->objs_per_slab;
	c->nr_slabs -= c->nr_granted;
	c->nr_granted = 0;
	assert(c->nr_slabs == 0 && c->nr_objs == 0 && c->nr_active == 0);
}

/* ------------------------------------------------------------- checking */

static int check_fail(const struct kmem_cache *c, const struct slab *s, const char *what)
{
	fprintf(stderr, "kmem_cache_check: %s slab pfn %ld: %s\n", c->cls->name,
		s ? (long)s->pfn : -1L, what);
	return -EUCLEAN;
}

static int check_slab(const struct kmem_cache *c, const struct slab *s, bool full)
{
	uint32_t nr = c->cls->objs_per_slab, nr_inuse = 0, chain = 0;

	if (s->cache != c)
		return check_fail(c, s, "slab of another cache");
	if (s->inuse > nr || (full && s->inuse != nr) || (!full && s->inuse == nr))
		return check_fail(c, s, "inuse does not fit the list");
	for (uint32_t i = 0; i < nr; i++) {
		if (s->freelist[i] == FREELIST_INUSE)
			nr_inuse++;
		else if (s->freelist[i] != FREELIST_END && s->freelist[i] >= nr)
			return check_fail(c, s, "free list entry out of range");
	}
	if (nr_inuse != s->inuse)
		return check_fail(c, s, "inuse does not match the object marks");
	/* A chain that reaches the end within nr - inuse steps has no cycle, so
	 * it holds every free object exactly once. */
	for (uint16_t i = s->free_head; i != FREELIST_END; i = s->freelist[i]) {
		if (i >= nr || s->freelist[i] == FREELIST_INUSE)
			return check_fail(c, s, "free list reaches an object in use");
		if (++chain > nr - s->inuse)
			return check_fail(c, s, "free list too long (cycle?)");
	}
	if (chain != nr - s->inuse)
		return check_fail(c, s, "free list misses free objects");
	return 0;
}

static int check_list(const struct kmem_cache *c, const struct slab_list *l, bool full,
		      uint64_t *nr, uint64_t *active, uint64_t *empty)
{
	const struct slab *s;
	int ret;

	TAILQ_FOREACH(s, l, link) {
		if (c->map->at[s->pfn] != s)
			return check_fail(c, s, "slab map does not name the slab");
		ret = check_slab(c, s, full);
		if (ret)
			return ret;
		(*nr)++;
		*active += s->inuse;
		if (!s->inuse)
			(*empty)++;
	}
	return 0;
}

int kmem_cache_check(const struct kmem_cache *c)
{
	uint64_t active = 0, empty = 0, partial = 0, full = 0;
	int ret;

	ret = check_list(c, &c->partial, false, &partial, &active, &empty);
	if (ret)
		return ret;
	ret = check_list(c, &c->full, true, &full, &active, &empty);
	if (ret)
		return ret;
	if (partial != c->nr_partial)
		return check_fail(c, NULL, "nr_partial does not match the list");
	if (c->nr_slabs != partial + full + c->nr_granted)
		return check_fail(c, NULL, "nr_slabs does not match the lists");
	active += c->nr_granted * c->cls->objs_per_slab;
	if (c->nr_objs != c->nr_slabs * c->cls->objs_per_slab)
		return check_fail(c, NULL, "nr_objs does not match nr_slabs");
	if (c->nr_active != active)
		return check_fail(c, NULL, "nr_active does not match the slabs");
	if (c->nr_empty != empty)
		return check_fail(c, NULL, "nr_empty does not match the slabs");
	return 0;
}
