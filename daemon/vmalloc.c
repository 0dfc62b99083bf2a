// SPDX-License-Identifier: MIT
/*
 * vmalloc.c - vmalloc areas of a domain: the size in whole frames, each
 * frame allocated on its own as the kernel does (an area needs no contiguous
 * run), though taken in the longest runs the domain can give: the client
 * maps each run of consecutive frames with one mmap, and hugetlb mappings
 * never merge.
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

int vmalloc_alloc(struct domain *d, uint64_t size, unsigned int gfp, struct vmalloc_area **out)
{
	const struct pool *pool = &d->mm->pool;
	struct vmalloc_area *a;
	uint32_t i = 0, run, frame;
	uint64_t nr;
	int err;

	if (size == 0)
		return -EINVAL;
	nr = size / pool->frame_size + (size % pool->frame_size != 0);
	if (nr > pool->nr_frames) /* "exceeds total pages" */
		return -ENOMEM;
	a = calloc(1, sizeof(*a) + nr * sizeof(a->frames[0]));
	if (!a)
		return -ENOMEM;
	/* __GFP_ZERO: domain_alloc_frame_run() hands out kernel-zeroed frames. */
	while (i < nr) {
		err = domain_alloc_frame_run(d, (uint32_t)(nr - i), gfp, &frame, &run);
		if (err)
			goto err_free;
		domain_mark_frames(d, frame, run, FRAME_USE_VMALLOC);
		while (run--)
			a->frames[i++] = frame++;
	}
	a->size = size;
	a->nr_frames = (uint32_t)nr;
	d->vmalloc_frames += (uint32_t)nr;
	*out = a;
	return 0;

err_free:
	while (i--) {
		domain_mark_frames(d, a->frames[i], 1, FRAME_USE_PAGES);
		domain_free_frames(d, a->frames[i], 0);
	}
	free(a);
	return err;
}

int vmalloc_adopt(struct domain *d, const struct vmalloc_area *a)
{
	uint32_t i;

	if (!a->nr_frames)
		return -EUCLEAN;
	for (i = 0; i < a->nr_frames; i++) {
		if (domain_alloc_frames_at(d, a->frames[i], 0) < 0) {
			while (i--) {
				domain_mark_frames(d, a->frames[i], 1, FRAME_USE_PAGES);
				domain_free_frames(d, a->frames[i], 0);
			}
			return -EUCLEAN;
		}
		domain_mark_frames(d, a->frames[i], 1, FRAME_USE_VMALLOC);
	}
	d->vmalloc_frames += a->nr_frames;
	return 0;
}

void vmalloc_free(struct domain *d, struct vmalloc_area *a)
{
	uint32_t i;

	assert(d->vmalloc_frames >= a->nr_frames);
	/* Freed frames coalesce among the domain's free frames: the next area
	 * finds them again as runs, whatever the order they come back in. */
	for (i = 0; i < a->nr_frames; i++) {
		domain_mark_frames(d, a->frames[i], 1, FRAME_USE_PAGES);
		domain_free_frames(d, a->frames[i], 0);
	}
	d->vmalloc_frames -= a->nr_frames;
	free(a);
}
