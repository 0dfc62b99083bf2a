/* SPDX-License-Identifier: MIT */
/*
 * kmalloc.h - kmalloc inside a domain (mm/slub.c: __do_kmalloc_node(),
 * ___kmalloc_large_node()): sizes 1..8192 from the domain's slab caches,
 * 8193..4 MiB as 2^order whole pages (orders >= 9 as whole frames).
 * Not cleared unless __GFP_ZERO, which clears the whole bucket (ksize).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define KMALLOC_MAX_ORDER	10
#define KMALLOC_MAX_SIZE	(4096ull << KMALLOC_MAX_ORDER)	/* 4 MiB */

struct domain;
struct slab;

/* What a grant needs to remember to free the object again. */
struct kmalloc_obj {
	uint64_t phys;
	uint64_t size;		/* usable bytes (ksize) */
	struct slab *slab;	/* NULL for kmalloc_large */
	unsigned int order;	/* pages order of a large block */
	int cache;		/* kmalloc_classes[] index, -1 for large */
};

/* 0 and *obj; -EINVAL for size 0; -ENOMEM when the pool cannot serve it or
 * size > KMALLOC_MAX_SIZE. */
int kmalloc_alloc(struct domain *d, size_t size, unsigned int gfp, struct kmalloc_obj *obj);
void kmalloc_free(struct domain *d, const struct kmalloc_obj *obj);

/* kmalloc_size_roundup(): the class size, PAGE_SIZE << get_order(size) up to
 * 4 MiB, else @size itself (mm/slab_common.c). */
size_t kmalloc_size_roundup(size_t size);

/* get_order(): smallest order with (4096 << order) >= size (size >= 1). */
unsigned int kmalloc_get_order(uint64_t size);
