/* SPDX-License-Identifier: MIT */
/*
 * inspect.h - the numbers behind kmctl and km_get_meminfo: meminfo, slabinfo
 * (summed over domains), buddyinfo (a "free" zone for the frame allocator and
 * one zone per domain), vmallocinfo and the client list, as plain structs
 * that dispatch.c turns into protobuf replies.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "slab.h"

struct mm;
struct server;

struct inspect_meminfo {
	uint64_t total, free, available;
	uint64_t slab, slab_reclaimable, slab_unreclaimable;
	uint64_t vmalloc_used, reserve, frame_size;
	bool hugetlb;
	uint64_t frames_total, frames_free;
	uint64_t watermark_low, watermark_high;
	uint32_t domains, clients;
	uint64_t grants;
	uint64_t quarantined;		/* bytes in frames no memfd would give back */
};

struct inspect_slab {
	const char *name;
	uint64_t active_objs, num_objs, num_slabs;
	uint32_t objsize, objperslab, pagesperslab;
};

#define INSPECT_BUDDY_ORDERS 11	/* orders 0..10, as /proc/buddyinfo */

struct inspect_buddy {
	char zone[32];
	uint64_t nr_free[INSPECT_BUDDY_ORDERS];
};

void inspect_meminfo(const struct server *srv, struct inspect_meminfo *out);
/* One row per kmalloc class, summed over every domain. */
void inspect_slabinfo(const struct mm *mm, struct inspect_slab out[NR_KMALLOC_CACHES]);
/* Row @index: 0 is the frame allocator ("free"), then one per domain.
 * False past the end. */
bool inspect_buddyinfo(const struct mm *mm, uint32_t index, struct inspect_buddy *out);
