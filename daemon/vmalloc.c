// SPDX-License-Identifier: MIT
/*
 * vmalloc.c - vmalloc areas of a domain: the size in whole frames, each
 * frame allocated on its own (order 0 of the frame allocator, or a free frame
 * the domain kept), so an area needs no contiguous run; the client maps the
 * frames side by side, coalescing consecutive ones.
 *
 * Mirrors mm/vmalloc.c: __vmalloc_node_range_noprof() and
 * __vmalloc_area_node(), which take pages one by one and give back what they
 * took on failure (docs/kernel.md). Not cleared unless __GFP_ZERO,
 * which the kernel does for us: the frames are new pages in the memfd.
 * Frames held by areas count in d->vmalloc_frames (VmallocUsed).
 */
#include "config.h"
#include "vmalloc.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "domain.h"
#include "gfp.h"
#include "pool.h"

int vmalloc_alloc(struct domain *d, uint64_t size, unsigned int gfp, uint32_t **frames,
		  uint32_t *nr_frames)
{
	const struct pool *pool = &d->mm->pool;
	uint64_t nr;
	uint32_t *arr, i;
	int err;

	if (size == 0)
		return -EINVAL;
	nr = size / pool->frame_size + (size % pool->frame_size != 0);
	if (nr > pool->nr_frames) /* "exceeds total pages" */
		return -ENOMEM;
	arr = malloc(nr * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		err = domain_alloc_frames(d, 0, gfp, &arr[i]);
		if (err)
			goto err_free;
	}
	/* __GFP_ZERO: domain_alloc_frames() hands out kernel-zeroed frames. */
	d->vmalloc_frames += (uint32_t)nr;
	*frames = arr;
	*nr_frames = (uint32_t)nr;
	return 0;

err_free:
	while (i--)
		domain_free_frames(d, arr[i], 0);
	free(arr);
	return err;
}

int vmalloc_adopt(struct domain *d, const uint32_t *frames, uint32_t nr_frames)
{
	uint32_t i;

	if (!nr_frames)
		return -EUCLEAN;
	for (i = 0; i < nr_frames; i++) {
		if (domain_alloc_frames_at(d, frames[i], 0) < 0) {
			while (i--)
				domain_free_frames(d, frames[i], 0);
			return -EUCLEAN;
		}
	}
	d->vmalloc_frames += nr_frames;
	return 0;
}

void vmalloc_free(struct domain *d, uint32_t *frames, uint32_t nr_frames)
{
	uint32_t i;

	assert(d->vmalloc_frames >= nr_frames);
	for (i = 0; i < nr_frames; i++)
		domain_free_frames(d, frames[i], 0);
	d->vmalloc_frames -= nr_frames;
	free(frames);
}
