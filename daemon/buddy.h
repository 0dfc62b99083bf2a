/* SPDX-License-Identifier: MIT */
/*
 * buddy.h - a generic binary buddy allocator over an index space [0, nr).
 *
 * The buddy of mm/page_alloc.c without policy: free lists per order, split
 * keeping the lower half (expand()), coalesce with buddy = idx ^ (1 << order)
 * (__free_one_page()). It knows nothing about pages, frames or domains; the
 * unit is whatever the caller indexes (4 KiB pages for a domain's page
 * allocator, frames for the frame allocator).
 *
 * Link storage lives in a struct buddy_map indexed by unit, which several
 * struct buddy instances may share as long as no block of one instance can
 * have its buddy in another: the domains' page allocators share one map over
 * the pool's pfns because their blocks never cross a frame (max order 9).
 *
 * Not thread-safe; the daemon is single-threaded.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define BUDDY_MAX_ORDER 30	   /* highest order any instance may use */
#define BUDDY_NONE	UINT32_MAX /* "no unit" in links and results */
#define BUDDY_NOT_FREE	0xffu	   /* map->order[] of a unit that heads no free block */

struct buddy_map {
	uint32_t nr;	/* units */
	uint32_t *next; /* free-list links of free block heads */
	uint32_t *prev;
	uint8_t *order; /* order of the free block headed here, or BUDDY_NOT_FREE */
};

struct buddy {
	struct buddy_map *map;
	unsigned int max_order;
	uint32_t head[BUDDY_MAX_ORDER + 1];    /* first free block per order, or BUDDY_NONE */
	uint64_t nr_free[BUDDY_MAX_ORDER + 1]; /* free blocks per order (buddyinfo) */
	uint64_t free_units;		       /* sum of nr_free[o] << o */
	/* When instances share a map at every order (their blocks can be
	 * buddies of each other's), owner[unit] says whose a unit is and an
	 * instance only merges with, and takes, units of owner_id. NULL when
	 * blocks never cross instances. */
	const uint32_t *owner;
	uint32_t owner_id;
};

/* Allocates link storage for @nr units, all not free. 0 or -ENOMEM. */
int buddy_map_init(struct buddy_map *map, uint32_t nr);
void buddy_map_fini(struct buddy_map *map);

/* An empty allocator (nothing free) over @map with orders 0..@max_order. */
void buddy_init(struct buddy *b, struct buddy_map *map, unsigned int max_order);
/* Shares @map with other instances at every order (see struct buddy). */
void buddy_set_owner(struct buddy *b, const uint32_t *owner, uint32_t owner_id);

/* Takes the first free block of @order, splitting a larger one if needed.
 * Returns 0 and the block's first unit in *idx, or -ENOMEM. */
int buddy_alloc(struct buddy *b, unsigned int order, uint32_t *idx);

/* Takes the block of @order at @idx out of the free lists, splitting the
 * free block that contains it (the rest stays free). 0, -ENOENT if any of it
 * is not free, -EINVAL if it is not a naturally aligned block inside the map.
 * What a successor daemon uses to hold again exactly what its predecessor
 * handed out. */
int buddy_alloc_at(struct buddy *b, uint32_t idx, unsigned int order);

/* Returns a block (allocated earlier, or memory new to this allocator) and
 * coalesces it with free buddies up to max_order. @idx must be aligned to
 * 1 << @order and the block must not be free already. */
void buddy_free(struct buddy *b, uint32_t idx, unsigned int order);

/* Frees [start, start + nr) as the largest aligned blocks that fit. */
void buddy_free_range(struct buddy *b, uint32_t start, uint32_t nr);

/* True when a free block of exactly @order starts at @idx in @b. */
bool buddy_is_free_block(const struct buddy *b, uint32_t idx, unsigned int order);

/* Removes the free block of exactly @order at @idx (buddy_is_free_block()
 * must hold), e.g. to hand a whole free frame back to the frame allocator. */
void buddy_take(struct buddy *b, uint32_t idx, unsigned int order);

/* Walks every list and checks links, alignment, counts and that no two free
 * buddies were left uncoalesced. 0, or -EUCLEAN with a line on stderr. Costly. */
int buddy_check(const struct buddy *b);
