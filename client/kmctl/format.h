/* SPDX-License-Identifier: MIT */
/*
 * format.h - kmctl's output: the daemon's replies as the text of the matching
 * /proc file (docs/kernel.md) or as one JSON document, built
 * and printed by json-c (integers as JSON integers, up to UINT64_MAX; strings
 * valid UTF-8). Pure functions of their arguments: they write to the given
 * FILE and touch no other state, so the unit test feeds them hand-built
 * messages and an open_memstream().
 * Inspect tables arrive in pages (InspectReply.next_offset); a struct
 * format_table lists every page of one table, in order.
 *
 * Every function returns 0, -ENOMEM, or -EIO when the stream reports an error.
 *
 * Clients are named by their command: format_table.comm, when set, gives it
 * for a pid (kmctl reads /proc/<pid>/comm when the daemon's pids are its
 * own); else, or when it returns NULL, the Hello name the daemon sent is
 * shown. Names are untrusted: in text they become one field of printable
 * characters without blanks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kmalloc.pb-c.h"

/* Every page of one Inspect table, in the order the daemon sent them. */
struct format_table {
	Kmalloc__InspectReply *const *pages;
	size_t nr_pages;
	/* Optional: the command of process @pid, or NULL (unknown: the
	 * client's Hello name is shown instead). */
	const char *(*comm)(void *ctx, uint32_t pid);
	void *comm_ctx;
};

/* /proc/meminfo lines (show_val_kb widths, hugetlb lines without kB), then
 * the broker's Reserve/WatermarkLow/WatermarkHigh in the same style. JSON: one
 * object, byte quantities in bytes, "backing": "hugetlb" or "shmem". */
int format_meminfo(FILE *f, const Kmalloc__Meminfo *mi, bool json);

/* /proc/slabinfo 2.1: the two header lines and cache_show()'s rows. */
int format_slabinfo(FILE *f, const struct format_table *t, bool json);

/* /proc/buddyinfo: frag_show_print()'s lines, one per zone (domain). */
int format_buddyinfo(FILE *f, const struct format_table *t, bool json);

/* /proc/vmallocinfo: vmalloc_info_show()'s lines for VM_ALLOC areas, then
 * the owner as tokens of their own: "pid=<pid> comm=<command>", and
 * "shared=<holders>" when more than one client holds the area. */
int format_vmallocinfo(FILE *f, const struct format_table *t, bool json);

/* kmctl shares: a header line, then one line per live handle (TABLE_SHARES):
 * the handle's public part as the first 16 hex digits of its text form,
 * share, kind, size, domain, exporter, state, age, expiry, restrictions and
 * holders, every field one word. JSON: {"rows": [...]}. */
int format_shares(FILE *f, const struct format_table *t, bool json);

/* FrameMap.kinds values. */
enum format_frame_kind {
	FORMAT_FRAME_FREE,	  /* no domain's */
	FORMAT_FRAME_DOMAIN_FREE, /* a domain's, whole and free */
	FORMAT_FRAME_SLAB,
	FORMAT_FRAME_LARGE, /* kmalloc-large */
	FORMAT_FRAME_VMALLOC,
	FORMAT_FRAME_SHARED, /* in a share's memfd */
	FORMAT_FRAME_QUARANTINED,
	FORMAT_FRAME_MIXED,
	FORMAT_FRAME_UNKNOWN, /* a value this kmctl does not know */
	FORMAT_FRAME_NR_KINDS
};

/* The whole pool, one entry per frame (TABLE_MAP's pages put together). */
struct format_map {
	uint32_t nr_frames;
	const uint8_t *kinds;	 /* nr_frames FrameMap.kinds values */
	const uint32_t *domains; /* nr_frames domain numbers, 0 for none */
	uint64_t frame_size;	 /* bytes (Welcome.frame_size); 0 if unknown */
	unsigned int width;	 /* cells per row; 0: FORMAT_MAP_WIDTH */
};

#define FORMAT_MAP_WIDTH     64
#define FORMAT_MAP_WIDTH_MAX 4096

enum format_map_style {
	FORMAT_MAP_PLAIN,  /* one character per kind */
	FORMAT_MAP_COLOUR, /* ANSI colours per kind, the domain in the cell */
	FORMAT_MAP_JSON,   /* one object, one member per frame */
};

/* kmctl map: a header line, the cells in rows of @m->width frames, each row
 * led by its first frame's number, a legend with the count of each kind,
 * and the frames of each domain by kind. */
int format_map(FILE *f, const struct format_map *m, enum format_map_style style);

/* kmctl map --svg: a standalone SVG 1.1 document: one <rect> per frame
 * (filled by kind, its <title> the frame's number, kind and domain), then a
 * legend (one <rect> per kind and its count). */
int format_map_svg(FILE *f, const struct format_map *m);

/* One header line, then one fixed-width line per client connection, in the
 * daemon's order. */
int format_clients(FILE *f, const struct format_table *t, bool json);

/* One line per uid with connections: what it holds against its limits
 * ("unlimited" for none; JSON: UINT64_MAX). */
int format_limits(FILE *f, const struct format_table *t, bool json);

/* The event loop's own figures (TABLE_LOOP's row), one "name value" pair per
 * line as /proc/vmstat: durations in whole microseconds (truncated), the
 * uptime in seconds, request_hist_10us .. request_hist_10ms counting the
 * requests under that bound (and at or above the one before), request_hist_inf
 * the rest. JSON: one object with the same names, durations in nanoseconds
 * (_ns) as the daemon sent them. */
int format_stats(FILE *f, const Kmalloc__LoopRow *row, bool json);

/* One refresh of `kmctl top`: slabtop's summary from the slab rows, pool
 * lines from @mi, then the clients sorted by bytes held, largest first. */
int format_top(FILE *f, const Kmalloc__Meminfo *mi, const struct format_table *slabs,
	       const struct format_table *clients, bool json);
