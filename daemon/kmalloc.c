// SPDX-License-Identifier: MIT
/*
 * kmalloc.c - kmalloc inside a domain: sizes 1..8192 from the domain's slab
 * caches, larger ones as 2^order whole pages from the domain's page
 * allocator (orders 9 and 10 as whole frames), up to KMALLOC_MAX_SIZE.
 *
 * Mirrors mm/slub.c: __do_kmalloc_node() and ___kmalloc_large_node(), with
 * kmalloc_size_roundup() of mm/slab_common.c (kernel-semantics.md §1.2-1.7).
 * Size 0 is the caller's business (KM_ZERO_SIZE_PTR is a client-side value),
 * so it is -EINVAL here. Memory is not cleared unless __GFP_ZERO, which
 * clears the whole bucket (ksize) so a later krealloc sees zeros. Large
 * blocks count in d->large_pages (Slab/SUnreclaim in meminfo, no slabinfo
 * row, as in the kernel).
 */
#include "config.h"
#include "kmalloc.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>

#include "domain.h"
#include "gfp.h"
#include "log.h"
#include "pool.h"
#include "sizes.h"
#include "slab.h"

unsigned int kmalloc_get_order(uint64_t size)
{
	assert(size >= 1);
	return kms_get_order(size);
}

size_t kmalloc_size_roundup(size_t size)
{
	return (size_t)kms_size_roundup(size);
}

/* kmalloc_large(): a compound page of 2^order pages, page aligned (and
 * aligned to its size, the buddy's natural alignment). */
static int kmalloc_large(struct domain *d, size_t size, unsigned int gfp,
			 struct kmalloc_obj *obj)
{
	unsigned int order = kmalloc_get_order(size);
	uint32_t pfn, frame;
	int err;

	if (order < POOL_FRAME_ORDER) {
		err = domain_alloc_pages(d, order, gfp, &pfn);
		if (err)
			return err;
		obj->phys = (uint64_t)pfn << POOL_PAGE_SHIFT;
	} else {
		err = domain_alloc_frames(d, order - POOL_FRAME_ORDER, gfp, &frame);
		if (err)
			return err;
		obj->phys = (uint64_t)frame << POOL_FRAME_SHIFT;
	}
	d->large_pages += 1ull << order;
	obj->size = 4096ull << order;
	obj->slab = NULL;
	obj->order = order;
	obj->cache = -1;
	return 0;
}

int kmalloc_alloc(struct domain *d, size_t size, unsigned int gfp, struct kmalloc_obj *obj)
{
	int idx, err;

	if (size == 0)
		return -EINVAL;
	if (size > KMALLOC_MAX_SIZE)
		return -ENOMEM;	/* order > MAX_PAGE_ORDER */
	if (size <= KMALLOC_MAX_CACHE_SIZE) {
		idx = kmalloc_class_index(size);
		assert(idx >= 0);
		err = kmem_cache_alloc(&d->caches[idx], gfp, &obj->phys, &obj->slab);
		if (err)
			return err;
		obj->size = kmalloc_classes[idx].size;
		obj->order = 0;
		obj->cache = idx;
	} else {
		err = kmalloc_large(d, size, gfp, obj);
		if (err)
			return err;
	}
	/* Whole frames come zeroed from domain_alloc_frames(); the rest is
	 * cleared here, guarded against a client that punched the pages. */
	if ((gfp & KM___GFP_ZERO) && obj->order < POOL_FRAME_ORDER) {
		err = domain_zero(d, obj->phys, obj->size);
		if (err) {
			kmalloc_free(d, obj);
			return err;
		}
	}
	return 0;
}

void kmalloc_free(struct domain *d, const struct kmalloc_obj *obj)
{
	int err;

	if (obj->slab) {
		assert(obj->cache >= 0 && obj->cache < NR_KMALLOC_CACHES);
		err = kmem_cache_free(&d->caches[obj->cache], obj->slab, obj->phys);
		if (err)
			log_err("domain %" PRIu32 ": kfree of phys %#" PRIx64 " in %s: %d",
				d->id, obj->phys, kmalloc_classes[obj->cache].name, err);
		return;
	}
	assert(d->large_pages >= 1ull << obj->order);
	d->large_pages -= 1ull << obj->order;
	if (obj->order < POOL_FRAME_ORDER)
		domain_free_pages(d, (uint32_t)(obj->phys >> POOL_PAGE_SHIFT), obj->order);
	else
		domain_free_frames(d, (uint32_t)(obj->phys >> POOL_FRAME_SHIFT),
				   obj->order - POOL_FRAME_ORDER);
}
