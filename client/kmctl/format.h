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
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kmalloc.pb-c.h"

/* Every page of one Inspect table, in the order the daemon sent them. */
struct format_table {
	Kmalloc__InspectReply *const *pages;
	size_t nr_pages;
};

/* /proc/meminfo lines (show_val_kb widths, hugetlb lines without kB), then
 * the broker's Reserve/WatermarkLow/WatermarkHigh in the same style. JSON: one
 * object, byte quantities in bytes, "backing": "hugetlb" or "shmem". */
int format_meminfo(FILE *f, const Kmalloc__Meminfo *mi, bool json);

/* /proc/slabinfo 2.1: the two header lines and cache_show()'s rows. */
int format_slabinfo(FILE *f, const struct format_table *t, bool json);

/* /proc/buddyinfo: frag_show_print()'s lines, one per zone (domain). */
int format_buddyinfo(FILE *f, const struct format_table *t, bool json);

/* /proc/vmallocinfo: vmalloc_info_show()'s lines for VM_ALLOC areas. */
int format_vmallocinfo(FILE *f, const struct format_table *t, bool json);

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
