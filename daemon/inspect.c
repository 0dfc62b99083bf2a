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
#include "vmalloc.h"

void inspect_meminfo(const struct server *srv, struct inspect_meminfo *out)
{
	const struct mm *mm = &srv->mm;
	const struct domain *d;
	uint64_t page = 1ull << KM_PAGE_SHIFT, frame = mm->pool.frame_size;
	uint64_t domain_free = 0, slab = 0, empty = 0, vmalloc = 0;

	TAILQ_FOREACH(d, &mm->domains, link) {
		int i;

		domain_free += d->pages.free_units * page + d->frames.free_units * frame;
		slab += (d->slab_pages + d->large_pages) * page;
		vmalloc += (uint64_t)d->vmalloc_frames * frame;
		for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
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

void inspect_slabinfo(const struct mm *mm, struct inspect_slab out[KM_NR_KMALLOC_CLASSES])
{
	const struct domain *d;
	int i;

	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].name = kmalloc_classes[i].name;
		out[i].objsize = kmalloc_classes[i].size;
		out[i].objperslab = kmalloc_classes[i].objs_per_slab;
		out[i].pagesperslab = 1u << kmalloc_classes[i].order;
	}
	TAILQ_FOREACH(d, &mm->domains, link) {
		for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
			out[i].active_objs += d->caches[i].nr_active;
			out[i].num_objs += d->caches[i].nr_objs;
			out[i].num_slabs += d->caches[i].nr_slabs;
		}
	}
}

/* Adds the free blocks of a buddy over frames to @out in page orders: a
 * run of 2^k frames is order k + 9; beyond order 10 it counts as several
 * order-10 blocks, as MAX_PAGE_ORDER caps the kernel's lists. */
static void add_frame_blocks(const struct buddy *b, struct inspect_buddy *out)
{
	for (unsigned int o = 0; o <= b->max_order && o <= BUDDY_MAX_ORDER; o++) {
		unsigned int page_order = o + KM_FRAME_ORDER;

		if (page_order < INSPECT_BUDDY_ORDERS)
			out->nr_free[page_order] += b->nr_free[o];
		else
			out->nr_free[INSPECT_BUDDY_ORDERS - 1] +=
				b->nr_free[o] << (page_order - (INSPECT_BUDDY_ORDERS - 1));
	}
}

bool inspect_buddyinfo(const struct mm *mm, uint32_t index, struct inspect_buddy *out)
{
	const struct domain *d;
	unsigned int o;

	memset(out, 0, sizeof(*out));
	if (index == 0) {
		snprintf(out->zone, sizeof(out->zone), "free");
		add_frame_blocks(&mm->frames.free, out);
		return true;
	}
	for (d = TAILQ_FIRST(&mm->domains); d && --index; d = TAILQ_NEXT(d, link))
		;
	if (!d)
		return false;
	snprintf(out->zone, sizeof(out->zone), "uid%u", (unsigned int)d->uid);
	for (o = 0; o <= d->pages.max_order && o < INSPECT_BUDDY_ORDERS; o++)
		out->nr_free[o] = d->pages.nr_free[o];
	add_frame_blocks(&d->frames, out);
	return true;
}

size_t inspect_buddyinfo_page(const struct mm *mm, uint32_t offset, struct inspect_buddy *out,
			      size_t max, bool *more)
{
	struct inspect_buddy spare;
	size_t n = 0;

	while (n < max && inspect_buddyinfo(mm, offset + (uint32_t)n, &out[n]))
		n++;
	*more = n == max && inspect_buddyinfo(mm, offset + (uint32_t)n, &spare);
	return n;
}

/* ---- the frame map ----------------------------------------------------- */

/* True when frame @f lies in a free block of @map (a block of order o holding
 * it starts at @f rounded down to 2^o). */
static bool in_free_block(const struct buddy_map *map, unsigned int max_order, uint32_t f)
{
	for (unsigned int o = 0; o <= max_order && o < 32; o++) {
		uint32_t head = f & ~((1u << o) - 1);

		if (head < map->nr && map->order[head] == o)
			return true;
	}
	return false;
}

/* A frame a domain split into pages: free blocks of its page buddy, slabs
 * (on a cache's lists, or granted whole: slab_map) and, for the rest,
 * kmalloc-large blocks below a frame's order (nothing else takes pages).
 * Free pages do not count: a frame of slabs and free pages is "slab". */
static uint8_t frame_pages_kind(const struct mm *mm, uint32_t f)
{
	uint32_t pfn = f << KM_FRAME_ORDER, end = pfn + POOL_PAGES_PER_FRAME;
	uint32_t slab = 0, large = 0;
	unsigned int order;

	while (pfn < end) {
		const struct slab *s = mm->slab_map.at[pfn];

		order = mm->page_map.order[pfn];
		if (order != BUDDY_NOT_FREE) {
			/* free */
		} else if (s) {
			order = s->cache->cls->order;
			slab += 1u << order;
		} else if (mm->slab_map.granted[pfn]) {
			order = mm->slab_map.granted[pfn] - 1u;
			slab += 1u << order;
		} else {
			order = 0;
			large++;
		}
		pfn += 1u << (order < KM_FRAME_ORDER ? order : KM_FRAME_ORDER);
	}
	if (slab && large)
		return INSPECT_FRAME_MIXED;
	if (slab)
		return INSPECT_FRAME_SLAB;
	return large ? INSPECT_FRAME_LARGE : INSPECT_FRAME_DOMAIN_FREE;
}

static uint8_t frame_kind(const struct mm *mm, uint32_t f)
{
	uint32_t owner = mm->frames.owner[f];
	uint8_t use = mm->frame_use[f];

	if (owner == FRAME_OWNER_NONE)
		return INSPECT_FRAME_FREE;
	if (owner == FRAME_OWNER_QUARANTINE)
		return INSPECT_FRAME_QUARANTINED;
	if (use & FRAME_USE_SHARED)
		return INSPECT_FRAME_SHARED;
	if (use == FRAME_USE_LARGE)
		return INSPECT_FRAME_LARGE;
	if (use == FRAME_USE_VMALLOC)
		return INSPECT_FRAME_VMALLOC;
	/* Every domain's free frames share one map; a free block holding a
	 * frame of the domain is the domain's (blocks never cross owners). */
	if (in_free_block(&mm->frame_map, mm->frames.free.max_order, f))
		return INSPECT_FRAME_DOMAIN_FREE;
	return frame_pages_kind(mm, f);
}

size_t inspect_frame_map(const struct mm *mm, uint32_t first, uint8_t *kinds, uint32_t *domains,
			 size_t max)
{
	uint32_t nr = mm->pool.nr_frames;
	size_t n;

	if (first >= nr)
		return 0;
	if (max > nr - first)
		max = nr - first;
	for (n = 0; n < max; n++) {
		uint32_t f = first + (uint32_t)n, owner = mm->frames.owner[f];

		kinds[n] = frame_kind(mm, f);
		domains[n] = owner == FRAME_OWNER_QUARANTINE ? 0 : owner;
	}
	return n;
}

size_t inspect_vmallocinfo(const struct server *srv, uint32_t offset, struct inspect_vmalloc *out,
			   size_t max, bool *more)
{
	uint64_t frame_size = srv->mm.pool.frame_size;
	const struct vmalloc_area *a;
	uint32_t index = 0;
	size_t n = 0;

	/* Areas only, never every grant: a client holding a million small
	 * objects costs this nothing. */
	*more = false;
	TAILQ_FOREACH(a, &srv->grants.areas, link) {
		const struct grant *g = a->grant;

		if (index++ < offset)
			continue;
		if (n == max) {
			*more = true;
			return n;
		}
		out[n] = (struct inspect_vmalloc){
			.start = a->vaddr,
			.size = ((uint64_t)a->nr_frames + 1) * frame_size,
			.pages = (uint64_t)a->nr_frames * (frame_size >> KM_PAGE_SHIFT),
			.grant = g->id,
			.pid = (uint32_t)g->holder->pid,
			.domain = grant_domain(g)->id,
			.caller = a->caller,
			.name = g->holder->name,
			.holders = grant_holders(g),
		};
		n++;
	}
	return n;
}

size_t inspect_clients(const struct server *srv, uint32_t offset, struct inspect_client *out,
		       size_t max, bool *more)
{
	const struct conn *c;
	uint32_t index = 0;
	size_t n = 0;

	*more = false;
	TAILQ_FOREACH(c, &srv->conns, link) {
		if (index++ < offset)
			continue;
		if (n == max) {
			*more = true;
			break;
		}
		out[n++] = (struct inspect_client){
			.conn = c->id,
			.grants = c->grants.nr,
			.bytes = c->bytes,
			.pid = (uint32_t)c->pid,
			.uid = (uint32_t)c->uid,
			.domain = c->domain ? c->domain->id : 0,
			.admin = c->admin,
			.closing = c->state == CONN_CLOSING,
			.name = c->name,
		};
	}
	return n;
}

size_t inspect_accounts(const struct server *srv, uint32_t offset, struct inspect_account *out,
			size_t max, bool *more)
{
	const struct account *a;
	const struct domain *d;
	uint32_t index = 0;
	size_t n = 0;

	*more = false;
	TAILQ_FOREACH(a, &srv->accounts.list, link) {
		if (index++ < offset)
			continue;
		if (n == max) {
			*more = true;
			break;
		}
		out[n] = (struct inspect_account){
			.uid = (uint32_t)a->uid,
			.connections = a->connections,
			.grants = a->grants,
			.bytes = a->bytes,
			.refusals = a->refusals,
			.max_connections = a->limits.max_connections,
			.max_grants = a->limits.max_grants,
			.max_bytes = a->limits.max_bytes,
			.handles = a->handles,
			.max_handles = a->limits.max_handles,
			.privileged = a->limits.privileged,
		};
		TAILQ_FOREACH(d, &srv->mm.domains, link)
			if (d->uid == a->uid)
				out[n].domain = d->id;
		n++;
	}
	return n;
}

void inspect_loop(const struct server *srv, struct inspect_loop *out)
{
	out->stats = srv->loop;
	out->uptime_ns = loopstat_now_ns() - srv->loop.started_ns;
	out->grants = srv->grants.count;
	out->connections = srv->nr_conns;
}
