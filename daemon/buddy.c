// SPDX-License-Identifier: MIT
/*
 * buddy.c - a generic binary buddy allocator over an index space.
 *
 * Owns the free lists of one struct buddy: per order, a doubly linked list of
 * free block heads threaded through the shared struct buddy_map (next/prev by
 * index, BUDDY_NONE terminated), with map->order[] marking every free block head
 * and BUDDY_NOT_FREE everywhere else. Invariants, checked by buddy_check():
 * every free block is aligned to its size, lies inside the map, is on exactly
 * the list of its order, nr_free[] and free_units match the lists, and below
 * max_order no two free buddies of equal order are left uncoalesced.
 *
 * Mirrors the buddy of mm/page_alloc.c (docs/kernel.md): allocation
 * takes the head block of the smallest order that fits and splits it keeping
 * the lower half (__rmqueue_smallest(), expand()); free merges with
 * idx ^ (1 << order) while that buddy is a free block of the same order
 * (__free_one_page()). Migrate types, per-CPU lists and tail placement are left
 * to callers. Used by the frame allocator and the per-domain page allocators.
 */
#include "config.h"
#include "buddy.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int buddy_map_init(struct buddy_map *map, uint32_t nr)
{
	size_t n = nr ? nr : 1;

	map->nr = nr;
	map->next = malloc(n * sizeof(*map->next));
	map->prev = malloc(n * sizeof(*map->prev));
	map->order = malloc(n * sizeof(*map->order));
	if (!map->next || !map->prev || !map->order) {
		buddy_map_fini(map);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr; i++) {
		map->next[i] = BUDDY_NONE;
		map->prev[i] = BUDDY_NONE;
		map->order[i] = BUDDY_NOT_FREE;
	}
	return 0;
}

void buddy_map_fini(struct buddy_map *map)
{
	free(map->next);
	free(map->prev);
	free(map->order);
	map->next = NULL;
	map->prev = NULL;
	map->order = NULL;
	map->nr = 0;
}

void buddy_init(struct buddy *b, struct buddy_map *map, unsigned int max_order)
{
	assert(max_order <= BUDDY_MAX_ORDER);
	b->map = map;
	b->max_order = max_order;
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++) {
		b->head[o] = BUDDY_NONE;
		b->nr_free[o] = 0;
	}
	b->free_units = 0;
	b->owner = NULL;
	b->owner_id = 0;
}

void buddy_set_owner(struct buddy *b, const uint32_t *owner, uint32_t owner_id)
{
	b->owner = owner;
	b->owner_id = owner_id;
}

/* True when the free block of some instance at @idx is this one's. */
static bool mine(const struct buddy *b, uint32_t idx)
{
	return !b->owner || b->owner[idx] == b->owner_id;
}

/* ---------------------------------------------------------------- lists */

/* New free blocks go to the head, as __free_one_page() does by default. */
static void list_add(struct buddy *b, uint32_t idx, unsigned int order)
{
	struct buddy_map *map = b->map;
	uint32_t first = b->head[order];

	map->order[idx] = (uint8_t)order;
	map->prev[idx] = BUDDY_NONE;
	map->next[idx] = first;
	if (first != BUDDY_NONE)
		map->prev[first] = idx;
	b->head[order] = idx;
	b->nr_free[order]++;
	b->free_units += (uint64_t)1 << order;
}

static void list_del(struct buddy *b, uint32_t idx, unsigned int order)
{
	struct buddy_map *map = b->map;
	uint32_t next = map->next[idx], prev = map->prev[idx];

	assert(map->order[idx] == order);
	assert(b->nr_free[order] > 0);
	if (prev != BUDDY_NONE)
		map->next[prev] = next;
	else
		b->head[order] = next;
	if (next != BUDDY_NONE)
		map->prev[next] = prev;
	map->next[idx] = BUDDY_NONE;
	map->prev[idx] = BUDDY_NONE;
	map->order[idx] = BUDDY_NOT_FREE;
	b->nr_free[order]--;
	b->free_units -= (uint64_t)1 << order;
}

/* ------------------------------------------------------------ alloc/free */

int buddy_alloc(struct buddy *b, unsigned int order, uint32_t *idx)
{
	unsigned int o;
	uint32_t head;

	if (order > b->max_order)
		return -ENOMEM;
	for (o = order; o <= b->max_order; o++)
		if (b->head[o] != BUDDY_NONE)
			break;
	if (o > b->max_order)
		return -ENOMEM;

	head = b->head[o];
	list_del(b, head, o);
	/* expand(): keep the lower half, free the upper halves at o-1 .. order. */
	while (o > order) {
		o--;
		list_add(b, head + ((uint32_t)1 << o), o);
	}
	*idx = head;
	return 0;
}

int buddy_alloc_at(struct buddy *b, uint32_t idx, unsigned int order)
{
	const struct buddy_map *map = b->map;
	unsigned int o;
	uint32_t head = idx;

	if (order > b->max_order || (idx & (((uint32_t)1 << order) - 1)) ||
	    (uint64_t)idx + ((uint64_t)1 << order) > map->nr)
		return -EINVAL;
	/* The free block that contains [idx, idx + 2^order), if any. */
	for (o = order; o <= b->max_order; o++) {
		head = idx & ~(((uint32_t)1 << o) - 1);
		if (map->order[head] == o)
			break;
	}
	/* The map may be shared: the block must be on this instance's list. */
	if (o > b->max_order || !mine(b, head) || !buddy_is_free_block(b, head, o))
		return -ENOENT;
	list_del(b, head, o);
	/* Split towards @idx: the half without it goes back free each time. */
	while (o > order) {
		o--;
		if (idx & ((uint32_t)1 << o)) {
			list_add(b, head, o);
			head += (uint32_t)1 << o;
		} else {
			list_add(b, head + ((uint32_t)1 << o), o);
		}
	}
	return 0;
}

/* A caller bug, cheap to catch: freeing inside a block that is already free. */
static bool inside_free_block(const struct buddy *b, uint32_t idx, unsigned int order)
{
	const struct buddy_map *map = b->map;

	if (map->order[idx] != BUDDY_NOT_FREE)
		return true;
	for (unsigned int o = order + 1; o <= b->max_order; o++) {
		uint32_t head = idx & ~(((uint32_t)1 << o) - 1);
		uint8_t ho = map->order[head];

		if (ho != BUDDY_NOT_FREE && ho >= o)
			return true;
	}
	return false;
}

void buddy_free(struct buddy *b, uint32_t idx, unsigned int order)
{
	const struct buddy_map *map = b->map;

	assert(order <= b->max_order);
	assert((idx & (((uint32_t)1 << order) - 1)) == 0);
	assert((uint64_t)idx + ((uint64_t)1 << order) <= map->nr);
	assert(!inside_free_block(b, idx, order));

	while (order < b->max_order) {
		uint32_t buddy = idx ^ ((uint32_t)1 << order);

		if (buddy >= map->nr || map->order[buddy] != order || !mine(b, buddy))
			break;
		list_del(b, buddy, order);
		idx &= buddy;
		order++;
	}
	list_add(b, idx, order);
}

void buddy_free_range(struct buddy *b, uint32_t start, uint32_t nr)
{
	assert((uint64_t)start + nr <= b->map->nr);

	while (nr) {
		unsigned int order = b->max_order;

		if (start) {
			unsigned int align = (unsigned int)__builtin_ctz(start);

			if (align < order)
				order = align;
		}
		while (((uint64_t)1 << order) > nr)
			order--;
		buddy_free(b, start, order);
		start += (uint32_t)1 << order;
		nr -= (uint32_t)1 << order;
	}
}

bool buddy_is_free_block(const struct buddy *b, uint32_t idx, unsigned int order)
{
	const struct buddy_map *map = b->map;
	uint32_t i;

	if (order > b->max_order || idx >= map->nr || map->order[idx] != order)
		return false;
	if (b->owner)
		return mine(b, idx);
	/* The map may be shared: make sure the block is on this instance's list.
	 * Costs its position in the list; a block just freed sits at the head. */
	for (i = idx; map->prev[i] != BUDDY_NONE; i = map->prev[i])
		;
	return b->head[order] == i;
}

void buddy_take(struct buddy *b, uint32_t idx, unsigned int order)
{
	assert(order <= b->max_order);
	assert(idx < b->map->nr && b->map->order[idx] == order);
	list_del(b, idx, order);
}

/* ------------------------------------------------------------- checking */

static int check_fail(const struct buddy *b, const char *what, unsigned int order, uint32_t idx)
{
	fprintf(stderr, "buddy_check: %p order %u unit %u: %s\n", (const void *)b, order, idx,
		what);
	return -EUCLEAN;
}

int buddy_check(const struct buddy *b)
{
	const struct buddy_map *map = b->map;
	uint64_t units = 0;

	if (b->max_order > BUDDY_MAX_ORDER)
		return check_fail(b, "max_order too large", b->max_order, 0);

	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++) {
		uint32_t size = (uint32_t)1 << o;
		uint32_t prev = BUDDY_NONE;
		uint64_t n = 0;

		if (o > b->max_order) {
			if (b->head[o] != BUDDY_NONE || b->nr_free[o])
				return check_fail(b, "free block above max_order", o, b->head[o]);
			continue;
		}
		for (uint32_t idx = b->head[o]; idx != BUDDY_NONE; idx = map->next[idx]) {
			if (idx >= map->nr)
				return check_fail(b, "link out of range", o, idx);
			if (++n > b->nr_free[o] || n > map->nr)
				return check_fail(b, "list longer than nr_free (cycle?)", o, idx);
			if (map->prev[idx] != prev)
				return check_fail(b, "prev link mismatch", o, idx);
			if (map->order[idx] != o)
				return check_fail(b, "head marked with another order", o, idx);
			for (uint32_t i = idx; b->owner && i < idx + size && i < map->nr; i++)
				if (!mine(b, i))
					return check_fail(b, "block holds another owner's unit", o,
							  i);
			if (idx & (size - 1))
				return check_fail(b, "misaligned block", o, idx);
			if ((uint64_t)idx + size > map->nr)
				return check_fail(b, "block runs past the map", o, idx);
			/* Overlap: no free head inside this block but its own. */
			for (uint32_t i = idx + 1; i < idx + size; i++)
				if (map->order[i] != BUDDY_NOT_FREE)
					return check_fail(b, "free block inside another", o, i);
			if (o < b->max_order) {
				uint32_t buddy = idx ^ size;

				if (buddy < map->nr && map->order[buddy] == o && mine(b, buddy))
					return check_fail(b, "free buddies not coalesced", o, idx);
			}
			prev = idx;
		}
		if (n != b->nr_free[o])
			return check_fail(b, "nr_free does not match the list", o, (uint32_t)n);
		units += n << o;
	}
	if (units != b->free_units)
		return check_fail(b, "free_units does not match the lists", 0, (uint32_t)units);
	return 0;
}
