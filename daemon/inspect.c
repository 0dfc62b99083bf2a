// SPDX-License-Identifier: MIT
/*
 * inspect.c - derive /proc-style numbers from the allocators' own counters:
 * nothing here is stored twice, everything is summed when asked for
 * (kmctl and km_get_meminfo are rare next to allocations).
 */
#include "config.h"
#include "inspect.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "domain.h"
#include "server.h"

void inspect_meminfo(const struct server *srv, struct inspect_meminfo *out)
{
	const struct mm *mm = &srv->mm;
	const struct domain *d;
	uint64_t page = 1ull << POOL_PAGE_SHIFT, frame = mm->pool.frame_size;
	uint64_t domain_free = 0, slab = 0, empty = 0, vmalloc = 0;

	for (d = mm->domains; d; d = d->next) {
		int i;

		domain_free += d->pages.free_units * page;
		slab += (d->slab_pages + d->large_pages) * page;
		vmalloc += (uint64_t)d->vmalloc_frames * frame;
		for (i = 0; i < NR_KMALLOC_CACHES; i++)
			empty += (d->caches[i].nr_empty << d->caches[i].cls->order) * page;
	}
	memset(out, 0, sizeof(*out));
	out->total = mm->pool.size;
	out->frames_total = mm->pool.nr_frames;
	out->frames_free = frame_nr_free(&mm->frames);
	out->free = out->frames_free * frame + domain_free;
	out->slab = slab;
	out->slab_reclaimable = empty;
	out->slab_unreclaimable = slab - empty;
	out->vmalloc_used = vmalloc;
	out->reserve = (uint64_t)mm->frames.wmark_min * frame;
	out->watermark_low = (uint64_t)mm->frames.wmark_low * frame;
	out->watermark_high = (uint64_t)mm->frames.wmark_high * frame;
	out->frame_size = frame;
	out->hugetlb = mm->pool.hugetlb;
	/* As MemAvailable: free plus what reclaim gets back, less the reserve. */
	out->available = out->free + empty > out->reserve ? out->free + empty - out->reserve : 0;
	out->domains = mm->nr_domains;
	out->clients = srv->nr_conns;
	out->grants = srv->grants.count;
	out->quarantined = (uint64_t)mm->frames.nr_quarantined * frame;
}

void inspect_slabinfo(const struct mm *mm, struct inspect_slab out[NR_KMALLOC_CACHES])
{
	const struct domain *d;
	int i;

	for (i = 0; i < NR_KMALLOC_CACHES; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].name = kmalloc_classes[i].name;
		out[i].objsize = kmalloc_classes[i].size;
		out[i].objperslab = kmalloc_classes[i].objs_per_slab;
		out[i].pagesperslab = 1u << kmalloc_classes[i].order;
	}
	for (d = mm->domains; d; d = d->next) {
		for (i = 0; i < NR_KMALLOC_CACHES; i++) {
			out[i].active_objs += d->caches[i].nr_active;
			out[i].num_objs += d->caches[i].nr_objs;
			out[i].num_slabs += d->caches[i].nr_slabs;
		}
	}
}

bool inspect_buddyinfo(const struct mm *mm, uint32_t index, struct inspect_buddy *out)
{
	const struct domain *d;
	unsigned int o;

	memset(out, 0, sizeof(*out));
	if (index == 0) {
		/* The frame allocator's free runs, in page orders: a run of 2^k
		 * frames is order k + 9; beyond order 10 it counts as several
		 * order-10 blocks, as MAX_PAGE_ORDER caps the kernel's lists. */
		const struct buddy *b = &mm->frames.free;

		snprintf(out->zone, sizeof(out->zone), "free");
		for (o = 0; o <= b->max_order && o <= BUDDY_MAX_ORDER; o++) {
			unsigned int page_order = o + POOL_FRAME_ORDER;

			if (page_order < INSPECT_BUDDY_ORDERS)
				out->nr_free[page_order] += b->nr_free[o];
			else
				out->nr_free[INSPECT_BUDDY_ORDERS - 1] +=
					b->nr_free[o] << (page_order - (INSPECT_BUDDY_ORDERS - 1));
		}
		return true;
	}
	for (d = mm->domains; d && --index; d = d->next)
		;
	if (!d)
		return false;
	snprintf(out->zone, sizeof(out->zone), "uid%u", (unsigned int)d->uid);
	for (o = 0; o <= d->pages.max_order && o < INSPECT_BUDDY_ORDERS; o++)
		out->nr_free[o] = d->pages.nr_free[o];
	return true;
}
