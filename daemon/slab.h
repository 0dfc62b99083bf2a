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
 * Pages come from a callback so the cache knows nothing of domains or frames;
 * a pool-wide slab map finds the slab of an object from its pfn, so a grant
 * needs to remember only where its object is.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kmalloc-abi.h"

struct kmalloc_class {
	const char *name;   /* "kmalloc-96", "kmalloc-1k" */
	uint32_t size;	    /* object size, bytes */
	unsigned int order; /* pages per slab = 1 << order */
	uint32_t objs_per_slab;
};

/* The 13 classes in increasing size, orders and objects per slab as SLUB's
 * calculate_order() gives them on 2 CPUs (docs/kernel.md). */
extern const struct kmalloc_class kmalloc_classes[KM_NR_KMALLOC_CLASSES];

/* SLUB's calculate_order() for an object of @size on @nr_cpus CPUs (slub_max_order 3):
 * returns the order and sets *objs to the objects per slab. */
unsigned int slub_calculate_order(uint32_t size, unsigned int nr_cpus, uint32_t *objs);

/* Where slabs get their pages. alloc returns 0 and the first pfn, or
 * -errno; alloc_at takes the given block (a successor daemon rebuilding
 * what its predecessor had), 0 or -errno. */
struct slab_page_ops {
	int (*alloc_pages)(void *ctx, unsigned int order, unsigned int gfp, uint32_t *pfn);
	int (*alloc_pages_at)(void *ctx, uint32_t pfn, unsigned int order);
	void (*free_pages)(void *ctx, uint32_t pfn, unsigned int order);
	void *ctx;
};

struct slab;
TAILQ_HEAD(slab_list, slab);

/* Which slab starts at a pfn: one entry per page of the pool, shared by
 * every cache (as the kernel finds a slab from its struct page). */
struct slab_map {
	struct slab **at; /* [pfn]: the slab whose first page it is, or NULL */
	/* [pfn]: a slab granted whole to a client starts here: its order + 1;
	 * else 0 (kmctl map tells slab pages from large kmallocs by these). */
	uint8_t *granted;
	uint32_t nr_pages;
};

struct kmem_cache {
	const struct kmalloc_class *cls;
	struct slab_page_ops ops;
	struct slab_map *map;
	unsigned int min_partial; /* clamp(ilog2(size) / 2, 5, 10) */
	struct slab_list partial; /* some objects free (includes empty slabs) */
	struct slab_list full;	  /* no object free */
	uint64_t nr_partial;	  /* slabs on the partial list */
	uint64_t nr_slabs;
	uint64_t nr_objs;    /* capacity of all slabs */
	uint64_t nr_active;  /* objects handed out */
	uint64_t nr_empty;   /* slabs on the partial list with no object in use */
	uint64_t nr_granted; /* whole slabs handed to clients (on no list) */
};

struct slab {
	TAILQ_ENTRY(slab) link; /* on cache->partial or cache->full */
	struct kmem_cache *cache;
	uint32_t pfn;	     /* first page */
	uint16_t inuse;	     /* objects handed out */
	uint16_t free_head;  /* first free object index, or UINT16_MAX */
	uint16_t freelist[]; /* next free index per object (daemon memory) */
};

int slab_map_init(struct slab_map *map, uint32_t nr_pages);
void slab_map_fini(struct slab_map *map);

void kmem_cache_init(struct kmem_cache *c, const struct kmalloc_class *cls,
		     const struct slab_page_ops *ops, struct slab_map *map);

/* One object. 0 with its phys (pfn << 12 + offset), or -ENOMEM when no slab
 * has room and alloc_pages fails. @gfp is passed to alloc_pages. */
int kmem_cache_alloc(struct kmem_cache *c, unsigned int gfp, uint64_t *phys);

/* Hands out exactly the object at @phys (a successor daemon rebuilding
 * what its predecessor handed out): its slab is made at the pfn the object
 * implies if there is none yet. 0; -EEXIST if the object is handed out
 * already or its pages belong to something else; -EINVAL if @phys is not an
 * object start of this cache's layout; -ENOMEM. */
int kmem_cache_alloc_at(struct kmem_cache *c, uint64_t phys);

/* Returns the object at @phys. -EINVAL if @phys is not an object of this
 * cache that is handed out (the grant table stops double frees earlier;
 * this is the last line). */
int kmem_cache_free(struct kmem_cache *c, uint64_t phys);

/* A whole slab handed to a client, which carves its objects itself: pages
 * of the slab's order, every object counted in use (as the kernel counts
 * the objects of a CPU's slab), on no list. 0 and *pfn, or -ENOMEM. */
int kmem_cache_grant_slab(struct kmem_cache *c, unsigned int gfp, uint32_t *pfn);
/* The same, exactly at @pfn (a successor daemon). 0, -EEXIST, -EINVAL. */
int kmem_cache_grant_slab_at(struct kmem_cache *c, uint32_t pfn);
/* A granted slab back: its pages to the page allocator. */
void kmem_cache_ungrant_slab(struct kmem_cache *c, uint32_t pfn);

/* Gives every empty slab back to the page allocator; returns pages freed. */
uint64_t kmem_cache_shrink(struct kmem_cache *c);

/* Gives every slab back, whatever it holds (the domain is going away). */
void kmem_cache_destroy(struct kmem_cache *c);

/* Walks the lists and free lists and checks every count. 0 or -EUCLEAN. Costly. */
int kmem_cache_check(const struct kmem_cache *c);
