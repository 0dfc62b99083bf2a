// SPDX-License-Identifier: MIT
/*
 * kmalloc.c - kmalloc inside a domain: sizes 1..8192 from the domain's slab
 * caches, larger ones as 2^order whole pages from the domain's page
 * allocator (orders 9 and 10 as whole frames), up to KM_KMALLOC_MAX_SIZE.
 *
 * Mirrors mm/slub.c: __do_kmalloc_node() and ___kmalloc_large_node(), with
 * kmalloc_size_roundup() of mm/slab_common.c (docs/kernel.md).
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

/* kmalloc_large(): a compound page of 2^order pages, page aligned (and
 * aligned to its size, the buddy's natural alignment). Blocks of a frame and
 * more are whole frames. */
static int kmalloc_large(struct domain *d, size_t size, unsigned int gfp, struct kmalloc_obj *obj)
{
	unsigned int order = kms_get_order(size);
	uint32_t pfn, frame;
	int err;

	if (order < KM_FRAME_ORDER) {
		err = domain_alloc_pages(d, order, gfp, &pfn);
		if (err)
			return err;
		obj->phys = (uint64_t)pfn << KM_PAGE_SHIFT;
	} else {
		err = domain_alloc_frames(d, order - KM_FRAME_ORDER, gfp, &frame);
		if (err)
			return err;
		domain_mark_frames(d, frame, 1u << (order - KM_FRAME_ORDER), FRAME_USE_LARGE);
		obj->phys = (uint64_t)frame << KM_FRAME_SHIFT;
	}
	d->large_pages += 1ull << order;
	obj->size = (uint64_t)KM_PAGE_SIZE << order;
	obj->order = order;
	obj->cache = -1;
	return 0;
}

int kmalloc_alloc(struct domain *d, size_t size, unsigned int gfp, struct kmalloc_obj *obj)
{
	int idx, err;

	if (size == 0)
		return -EINVAL;
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM; /* order > MAX_PAGE_ORDER */
	if (size <= KM_KMALLOC_MAX_CACHE_SIZE) {
		idx = kms_class_index(size);
		assert(idx >= 0);
		err = kmem_cache_alloc(&d->caches[idx], gfp, &obj->phys);
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
	if ((gfp & KM___GFP_ZERO) && obj->order < KM_FRAME_ORDER) {
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

	if (obj->cache >= 0) {
		assert(obj->cache < KM_NR_KMALLOC_CLASSES);
		err = kmem_cache_free(&d->caches[obj->cache], obj->phys);
		if (err)
			log_err("domain %" PRIu32 ": kfree of phys %#" PRIx64 " in %s: %d", d->id,
				obj->phys, kmalloc_classes[obj->cache].name, err);
		return;
	}
	assert(d->large_pages >= 1ull << obj->order);
	d->large_pages -= 1ull << obj->order;
	if (obj->order < KM_FRAME_ORDER) {
		domain_free_pages(d, (uint32_t)(obj->phys >> KM_PAGE_SHIFT), obj->order);
	} else {
		uint32_t frame = (uint32_t)(obj->phys >> KM_FRAME_SHIFT);

		domain_mark_frames(d, frame, 1u << (obj->order - KM_FRAME_ORDER), FRAME_USE_PAGES);
		domain_free_frames(d, frame, obj->order - KM_FRAME_ORDER);
	}
}

int kmalloc_slab_alloc(struct domain *d, int cache, unsigned int gfp, uint64_t *phys)
{
	uint32_t pfn;
	int err;

	assert(cache >= 0 && cache < KM_NR_KMALLOC_CLASSES);
	/* The client clears what it hands out itself: no __GFP_ZERO here. */
	err = kmem_cache_grant_slab(&d->caches[cache], gfp & ~KM___GFP_ZERO, &pfn);
	if (!err)
		*phys = (uint64_t)pfn << KM_PAGE_SHIFT;
	return err;
}

void kmalloc_slab_free(struct domain *d, int cache, uint64_t phys)
{
	kmem_cache_ungrant_slab(&d->caches[cache], (uint32_t)(phys >> KM_PAGE_SHIFT));
}

int kmalloc_slab_adopt(struct domain *d, int cache, uint64_t phys)
{
	if (cache < 0 || cache >= KM_NR_KMALLOC_CLASSES || phys >= d->mm->pool.size ||
	    phys & (KM_PAGE_SIZE - 1))
		return -EUCLEAN;
	return kmem_cache_grant_slab_at(&d->caches[cache], (uint32_t)(phys >> KM_PAGE_SHIFT))
		       ? -EUCLEAN
		       : 0;
}

int kmalloc_adopt(struct domain *d, const struct kmalloc_obj *obj)
{
	uint64_t bytes;
	int err;

	if (obj->phys >= d->mm->pool.size)
		return -EUCLEAN;
	if (obj->cache >= 0) {
		if (obj->cache >= KM_NR_KMALLOC_CLASSES ||
		    obj->size != kmalloc_classes[obj->cache].size)
			return -EUCLEAN;
		err = kmem_cache_alloc_at(&d->caches[obj->cache], obj->phys);
		return err ? -EUCLEAN : 0;
	}
	if (obj->order > KM_MAX_ORDER)
		return -EUCLEAN;
	bytes = (uint64_t)KM_PAGE_SIZE << obj->order;
	if (obj->size != bytes || obj->phys % bytes)
		return -EUCLEAN;
	if (obj->order < KM_FRAME_ORDER)
		err = domain_alloc_pages_at(d, (uint32_t)(obj->phys >> KM_PAGE_SHIFT), obj->order);
	else
		err = domain_alloc_frames_at(d, (uint32_t)(obj->phys >> KM_FRAME_SHIFT),
					     obj->order - KM_FRAME_ORDER);
	if (err)
		return -EUCLEAN;
	if (obj->order >= KM_FRAME_ORDER)
		domain_mark_frames(d, (uint32_t)(obj->phys >> KM_FRAME_SHIFT),
				   1u << (obj->order - KM_FRAME_ORDER), FRAME_USE_LARGE);
	d->large_pages += 1ull << obj->order;
	return 0;
}
