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

#include "kmalloc-abi.h"

struct domain;

/* What a grant needs to remember to free the object again (its slab is
 * found from its pfn). */
struct kmalloc_obj {
	uint64_t phys;
	uint64_t size;	    /* usable bytes (ksize) */
	unsigned int order; /* pages order of a large block */
	int cache;	    /* kmalloc_classes[] index, -1 for large */
};

/* 0 and *obj; -EINVAL for size 0; -ENOMEM when the pool cannot serve it or
 * size > KM_KMALLOC_MAX_SIZE. */
int kmalloc_alloc(struct domain *d, size_t size, unsigned int gfp, struct kmalloc_obj *obj);
void kmalloc_free(struct domain *d, const struct kmalloc_obj *obj);

/* A whole slab of class @cache, for a client that carves it: 0 and *phys
 * (its first byte), or -ENOMEM. Counts in Slab; its objects are active. */
int kmalloc_slab_alloc(struct domain *d, int cache, unsigned int gfp, uint64_t *phys);
void kmalloc_slab_free(struct domain *d, int cache, uint64_t phys);
/* A predecessor's slab grant, exactly at @phys. 0 or -EUCLEAN. */
int kmalloc_slab_adopt(struct domain *d, int cache, uint64_t phys);

/* Holds again exactly the object @obj describes (a successor daemon
 * rebuilding its predecessor's grants): its slab or pages are taken through
 * the _at allocators. 0, or -EUCLEAN when @obj does not fit what the domain
 * has (not its memory, taken already, not a layout kmalloc makes). */
int kmalloc_adopt(struct domain *d, const struct kmalloc_obj *obj);

/* Sizes to classes and orders: kms_class_index(), kms_get_order() and
 * kms_size_roundup() (kmalloc_size_roundup()) of proto/sizes.h. */
