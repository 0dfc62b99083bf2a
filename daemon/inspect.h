/* SPDX-License-Identifier: MIT */
/*
 * inspect.h - the numbers behind kmctl and km_get_meminfo: meminfo, slabinfo
 * (summed over domains), buddyinfo (a "free" zone for the frame allocator and
 * one zone per domain), vmallocinfo, the client list, the per-uid limits and
 * the event loop's own timings (loopstat.h), as plain structs that dispatch.c
 * turns into protobuf replies.
 *
 * Long tables come in pages: each row function fills at most @max rows
 * starting at row @offset, returns how many it filled, and says in *more
 * whether rows remain (the next page starts at offset + the count).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loopstat.h"
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
	uint64_t quarantined; /* bytes in frames no memfd would give back */
};

struct inspect_slab {
	const char *name;
	uint64_t active_objs, num_objs, num_slabs;
	uint32_t objsize, objperslab, pagesperslab;
};

#define INSPECT_BUDDY_ORDERS 11 /* orders 0..10, as /proc/buddyinfo */

struct inspect_buddy {
	char zone[32];
	uint64_t nr_free[INSPECT_BUDDY_ORDERS];
};

void inspect_meminfo(const struct server *srv, struct inspect_meminfo *out);
/* One row per kmalloc class, summed over every domain. */
void inspect_slabinfo(const struct mm *mm, struct inspect_slab out[KM_NR_KMALLOC_CLASSES]);
/* Row @index: 0 is the frame allocator ("free"), then one per domain.
 * False past the end. */
bool inspect_buddyinfo(const struct mm *mm, uint32_t index, struct inspect_buddy *out);
/* Rows of buddyinfo, paged as above. */
size_t inspect_buddyinfo_page(const struct mm *mm, uint32_t offset, struct inspect_buddy *out,
			      size_t max, bool *more);

/* A vmalloc area, as /proc/vmallocinfo lists it. */
struct inspect_vmalloc {
	uint64_t start; /* client address, 0 if unknown */
	uint64_t size;	/* bytes, guard frame included (vm_struct.size) */
	uint64_t pages; /* 4 KiB pages */
	uint64_t grant;
	uint32_t pid, domain;
	const char *caller; /* points into the grant */
	const char *name;   /* the owner connection's Hello name */
	uint32_t holders;   /* grants holding it: more than 1 when shared */
};

struct inspect_client {
	uint64_t conn, grants, bytes;
	uint32_t pid, uid, domain;
	bool admin, closing;
	const char *name; /* points into the connection */
};

struct inspect_account {
	uint32_t uid, domain, connections;
	uint64_t grants, bytes, refusals;
	uint64_t handles;
	uint64_t max_connections, max_grants, max_bytes, max_handles; /* UINT64_MAX: unlimited */
	bool privileged;
};

size_t inspect_vmallocinfo(const struct server *srv, uint32_t offset, struct inspect_vmalloc *out,
			   size_t max, bool *more);
size_t inspect_clients(const struct server *srv, uint32_t offset, struct inspect_client *out,
		       size_t max, bool *more);
size_t inspect_accounts(const struct server *srv, uint32_t offset, struct inspect_account *out,
			size_t max, bool *more);

/* TABLE_MAP (kmctl map): what each frame of the pool is. */
enum inspect_frame_kind {
	INSPECT_FRAME_FREE = 0,	       /* the frame allocator's (no domain) */
	INSPECT_FRAME_DOMAIN_FREE = 1, /* a domain's, whole and free (d->frames) */
	INSPECT_FRAME_SLAB = 2,	       /* slab pages (and free pages) */
	INSPECT_FRAME_LARGE = 3,       /* kmalloc-large (and free pages) */
	INSPECT_FRAME_VMALLOC = 4,
	INSPECT_FRAME_SHARED = 5, /* its pages in a shareable grant's own memfd */
	INSPECT_FRAME_QUARANTINED = 6,
	INSPECT_FRAME_MIXED = 7, /* slab and kmalloc-large pages in one frame */
};

/* Frames per TABLE_MAP page: a frame split into pages costs a look at up to
 * 512 pages, so a page of the map stays a bounded piece of loop time. */
#define INSPECT_MAP_FRAMES 256

/* Frames [first, first + max) of the pool, fewer at its end: kinds[i] (enum
 * inspect_frame_kind) and domains[i] (the owning domain's id, 0 for none)
 * of frame first + i. Returns the count, 0 when @first is past the end. */
size_t inspect_frame_map(const struct mm *mm, uint32_t first, uint8_t *kinds, uint32_t *domains,
			 size_t max);

/* The event loop's figures and the scale they were taken at; one row. */
struct inspect_loop {
	struct loop_stats stats; /* a copy */
	uint64_t uptime_ns;	 /* since the daemon started (or took over) */
	uint64_t grants;	 /* live now */
	uint32_t connections;	 /* open and closing, now */
};

void inspect_loop(const struct server *srv, struct inspect_loop *out);
