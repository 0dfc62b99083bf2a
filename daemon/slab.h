/* SPDX-License-Identifier: MIT */
/*
 * slab.h - slab caches carved from pages: the kmalloc size classes of
 * mm/slab_common.c and a SLUB-like kmem_cache (mm/slub.c).
 *
 * Objects sit back to back from the start of a slab (a naturally aligned
 * block of 2^order pages), so a class's alignment is the largest power of two
 * that divides its size. Free lists are kept in daemon memory, never in the
 * pool: clients can write the pool, and must not be able to corrupt the
 * daemon's metadata. A slab that becomes empty is given back to the page
 * allocator once the cache already keeps min_partial partial slabs (SLUB's
 * rule); kmem_cache_shrink() gives back every empty slab.
 *
 * Pages come from a callback so the cache knows nothing of domains or frames.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMALLOC_SHIFT_LOW	3
#define KMALLOC_MIN_SIZE	8u
#define KMALLOC_MAX_CACHE_SIZE	8192u	/* above: kmalloc_large, whole pages */
#define NR_KMALLOC_CACHES	13	/* 8 16 32 64 96 128 192 256 512 1k 2k 4k 8k */
#define SLAB_PAGE_SHIFT		12
#define SLAB_PAGE_SIZE		4096u

struct kmalloc_class {
	const char *name;	/* "kmalloc-96", "kmalloc-1k" */
	uint32_t size;		/* object size, bytes */
	unsigned int order;	/* pages per slab = 1 << order */
	uint32_t objs_per_slab;
};

/* The 13 classes in increasing size, orders and objects per slab as SLUB's
 * calculate_order() gives them on 2 CPUs (kernel-semantics.md §1.1). */
extern const struct kmalloc_class kmalloc_classes[NR_KMALLOC_CACHES];

/* Index into kmalloc_classes[] of the class serving @size (1..8192), as
 * kmalloc_slab() maps sizes; -1 for 0 or anything larger. */
int kmalloc_class_index(size_t size);

/* SLUB's calculate_order() for an object of @size on @nr_cpus CPUs (slub_max_order 3):
 * returns the order and sets *objs to the objects per slab. */
unsigned int slub_calculate_order(uint32_t size, unsigned int nr_cpus, uint32_t *objs);

/* Where slabs get their pages. alloc returns 0 and the first pfn, or -errno. */
struct slab_page_ops {
	int (*alloc_pages)(void *ctx, unsigned int order, unsigned int gfp, uint32_t *pfn);
	void (*free_pages)(void *ctx, uint32_t pfn, unsigned int order);
	void *ctx;
};

struct slab;

struct slab_list {
	struct slab *first;
	uint64_t nr;		/* slabs on the list */
};

struct kmem_cache {
	const struct kmalloc_class *cls;
	struct slab_page_ops ops;
	unsigned int min_partial;	/* clamp(ilog2(size) / 2, 5, 10) */
	struct slab_list partial;	/* some objects free (includes empty slabs) */
	struct slab_list full;		/* no object free */
	uint64_t nr_slabs;
	uint64_t nr_objs;		/* capacity of all slabs */
	uint64_t nr_active;		/* objects handed out */
	uint64_t nr_empty;		/* slabs on the partial list with no object in use */
};

struct slab {
	struct slab *next, *prev;	/* on cache->partial or cache->full */
	struct kmem_cache *cache;
	uint32_t pfn;			/* first page */
	uint16_t inuse;			/* objects handed out */
	uint16_t free_head;		/* first free object index, or UINT16_MAX */
	uint16_t freelist[];		/* next free index per object (daemon memory) */
};

void kmem_cache_init(struct kmem_cache *c, const struct kmalloc_class *cls,
		     const struct slab_page_ops *ops);

/* One object. 0 with its phys (pfn << 12 + offset) and slab, or -ENOMEM
 * when no slab has room and alloc_pages fails. @gfp is passed to alloc_pages. */
int kmem_cache_alloc(struct kmem_cache *c, unsigned int gfp, uint64_t *phys,
		     struct slab **slab);

/* Returns the object at @phys to @slab. -EINVAL if @phys is not an object
 * start inside @slab. Double frees are stopped earlier, by the grant table. */
int kmem_cache_free(struct kmem_cache *c, struct slab *slab, uint64_t phys);

/* Recreates a slab at @pfn whose pages the caller already holds (a handover
 * to a new daemon): the objects marked in @in_use[objs_per_slab] are handed
 * out, the others free. 0 and *out, or -ENOMEM. */
int kmem_cache_adopt_slab(struct kmem_cache *c, uint32_t pfn, const bool *in_use,
			  struct slab **out);

/* Gives every empty slab back to the page allocator; returns pages freed. */
uint64_t kmem_cache_shrink(struct kmem_cache *c);

/* Gives every slab back, whatever it holds (the domain is going away). */
void kmem_cache_destroy(struct kmem_cache *c);

/* Walks the lists and free lists and checks every count. 0 or -EUCLEAN. Costly. */
int kmem_cache_check(const struct kmem_cache *c);
