// SPDX-License-Identifier: MIT
/*
 * format.c - kmctl's /proc-style text and JSON. The text reproduces the
 * kernel's printf formats byte for byte so that tools written for the real
 * files parse it: show_val_kb() and hugetlb_report_meminfo() for meminfo,
 * print_slabinfo_header()/cache_show() for slabinfo (slabtop's sscanf pattern
 * reads it back), frag_show_print() for buddyinfo, vmalloc_info_show() for
 * vmallocinfo (kernel-semantics.md §3, §4, §6). Strings come from the daemon,
 * which copied some of them from untrusted clients (Hello.name,
 * Vmalloc.caller): in text they are made printable and, inside a line, free
 * of blanks so that one record stays one line of whitespace-separated fields;
 * in JSON they are escaped. Nothing here knows about sockets.
 */
#include "config.h"
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUDDY_MIN_ORDERS	11	/* NR_PAGE_ORDERS: orders 0..10 are always shown */
#define TEXT_MAX		256	/* longest string printed in text (slabtop reads 128) */

/* Iterates over every row of one repeated field across the pages of @t. */
#define for_each_row(t, field, row)							\
	for (size_t pg_ = 0; pg_ < (t)->nr_pages; pg_++)				\
		for (size_t ix_ = 0; (t)->pages[pg_] && ix_ < (t)->pages[pg_]->n_##field &&	\
		     ((row) = (t)->pages[pg_]->field[ix_], 1); ix_++)

static int stream_status(FILE *f)
{
	return ferror(f) ? -EIO : 0;
}

/* ------------------------------------------------------------------------ */
/* Text helpers                                                             */

/* Copies @s into @buf with control characters (and, for a @field in the middle
 * of a line, blanks) replaced by '?'. An empty @field becomes "?" so that the
 * column count of the line does not change. */
static const char *text_clean(char *buf, size_t cap, const char *s, bool field)
{
	size_t i;

	if (!s)
		s = "";
	for (i = 0; s[i] && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (field && c == ' '))
			c = '?';
		buf[i] = (char)c;
	}
	if (field && i == 0)
		buf[i++] = '?';
	buf[i] = '\0';
	return buf;
}

/* fs/proc/meminfo.c: show_val_kb(): label padded to 16, value width 8, " kB". */
static void show_val_kb(FILE *f, const char *label, uint64_t bytes)
{
	fprintf(f, "%-16s%8" PRIu64 " kB\n", label, bytes >> 10);
}

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                             */

/* Length of the valid UTF-8 sequence at @s, or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* Overlong forms, surrogates and code points above U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void format_json_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	fputc('"', f);
	while (*s) {
		size_t len;

		switch (*s) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (*s < 0x20 || *s == 0x7f) {
				fprintf(f, "\\u%04x", *s);
				break;
			}
			len = utf8_seq_len(s);
			if (!len) {
				fputs("\\ufffd", f);
				break;
			}
			fwrite(s, 1, len, f);
			s += len;
			continue;
		}
		s++;
	}
	fputc('"', f);
}

/* An object being written: members are separated by "," + @sep, so the same
 * code writes one-line rows (" ") and indented documents ("\n  "). */
struct jobj {
	FILE *f;
	const char *sep;
	bool first;
};

static void jobj_begin(struct jobj *o, FILE *f, const char *sep)
{
	o->f = f;
	o->sep = sep;
	o->first = true;
	fputc('{', f);
}

static void jobj_end(struct jobj *o, const char *close)
{
	fprintf(o->f, "%s}", o->first ? "" : close);
}

static void jkey(struct jobj *o, const char *key)
{
	fprintf(o->f, "%s%s\"%s\": ", o->first ? "" : ",", o->sep, key);
	o->first = false;
}

static void ju64(struct jobj *o, const char *key, uint64_t v)
{
	jkey(o, key);
	fprintf(o->f, "%" PRIu64, v);
}

static void jdouble(struct jobj *o, const char *key, double v)
{
	jkey(o, key);
	fprintf(o->f, "%.2f", v);
}

static void jstr(struct jobj *o, const char *key, const char *s)
{
	jkey(o, key);
	format_json_string(o->f, s);
}

static void jbool(struct jobj *o, const char *key, bool v)
{
	jkey(o, key);
	fputs(v ? "true" : "false", o->f);
}

/* Before array element @i: a comma after the previous one, then @indent. */
static void jarray_next(FILE *f, size_t i, const char *indent)
{
	fprintf(f, "%s\n%s", i ? "," : "", indent);
}

static void jarray_end(FILE *f, size_t n, const char *indent)
{
	if (n)
		fprintf(f, "\n%s", indent);
	fputc(']', f);
}

/* ------------------------------------------------------------------------ */
/* meminfo                                                                  */

static void meminfo_json(FILE *f, const Kmalloc__Meminfo *mi, const char *sep, const char *close)
{
	struct jobj o;

	jobj_begin(&o, f, sep);
	ju64(&o, "total", mi->total);
	ju64(&o, "free", mi->free);
	ju64(&o, "available", mi->available);
	ju64(&o, "slab", mi->slab);
	ju64(&o, "slab_reclaimable", mi->slab_reclaimable);
	ju64(&o, "slab_unreclaimable", mi->slab_unreclaimable);
	ju64(&o, "vmalloc_total", mi->total);
	ju64(&o, "vmalloc_used", mi->vmalloc_used);
	ju64(&o, "reserve", mi->reserve);
	ju64(&o, "watermark_low", mi->watermark_low);
	ju64(&o, "watermark_high", mi->watermark_high);
	jstr(&o, "backing", mi->hugetlb ? "hugetlb" : "shmem");
	jbool(&o, "hugetlb", mi->hugetlb);
	ju64(&o, "frame_size", mi->frame_size);
	ju64(&o, "frames_total", mi->frames_total);
	ju64(&o, "frames_free", mi->frames_free);
	ju64(&o, "domains", mi->domains);
	ju64(&o, "clients", mi->clients);
	ju64(&o, "grants", mi->grants);
	ju64(&o, "quarantined", mi->quarantined);
	jobj_end(&o, close);
}

int format_meminfo(FILE *f, const Kmalloc__Meminfo *mi, bool json)
{
	uint64_t hp_total = mi->hugetlb ? mi->frames_total : 0;
	uint64_t hp_free = mi->hugetlb ? mi->frames_free : 0;

	if (json) {
		meminfo_json(f, mi, "\n  ", "\n");
		fputc('\n', f);
		return stream_status(f);
	}
	show_val_kb(f, "MemTotal:", mi->total);
	show_val_kb(f, "MemFree:", mi->free);
	show_val_kb(f, "MemAvailable:", mi->available);
	/* The pool has no page cache or swap; the lines are there, as zeros,
	 * because free(1) and vmstat(8) read them. Shmem is the pool itself
	 * when it fell back to shmem, as Hugetlb is when it did not. */
	show_val_kb(f, "Buffers:", 0);
	show_val_kb(f, "Cached:", 0);
	show_val_kb(f, "SwapCached:", 0);
	show_val_kb(f, "Active:", 0);
	show_val_kb(f, "Inactive:", 0);
	show_val_kb(f, "SwapTotal:", 0);
	show_val_kb(f, "SwapFree:", 0);
	show_val_kb(f, "Shmem:", mi->hugetlb ? 0 : mi->total);
	show_val_kb(f, "KReclaimable:", mi->slab_reclaimable);
	show_val_kb(f, "Slab:", mi->slab);
	show_val_kb(f, "SReclaimable:", mi->slab_reclaimable);
	show_val_kb(f, "SUnreclaim:", mi->slab_unreclaimable);
	/* The client's vmalloc space is the pool: nothing larger can be mapped. */
	show_val_kb(f, "VmallocTotal:", mi->total);
	show_val_kb(f, "VmallocUsed:", mi->vmalloc_used);
	show_val_kb(f, "VmallocChunk:", 0);
	/* Frames out of use because no memfd would give them back: as the
	 * kernel's memory taken out of use for errors (its own format). */
	fprintf(f, "HardwareCorrupted: %5" PRIu64 " kB\n", mi->quarantined >> 10);
	/* mm/hugetlb.c: hugetlb_report_meminfo(); counts carry no unit. */
	fprintf(f, "HugePages_Total:   %5" PRIu64 "\n", hp_total);
	fprintf(f, "HugePages_Free:    %5" PRIu64 "\n", hp_free);
	fprintf(f, "HugePages_Rsvd:    %5u\n", 0u);
	fprintf(f, "HugePages_Surp:    %5u\n", 0u);
	fprintf(f, "Hugepagesize:   %8" PRIu64 " kB\n", mi->frame_size >> 10);
	fprintf(f, "Hugetlb:        %8" PRIu64 " kB\n", mi->hugetlb ? mi->total >> 10 : 0);
	/* The broker's own lines, where the kernel prints DirectMap*. */
	show_val_kb(f, "Reserve:", mi->reserve);
	show_val_kb(f, "WatermarkLow:", mi->watermark_low);
	show_val_kb(f, "WatermarkHigh:", mi->watermark_high);
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* slabinfo                                                                 */

int format_slabinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__SlabRow *row;
	char name[TEXT_MAX];
	size_t n = 0;

	if (json)
		fputc('[', f);
	else
		fputs("slabinfo - version: 2.1\n"
		      "# name            <active_objs> <num_objs> <objsize> <objperslab> "
		      "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : "
		      "slabdata <active_slabs> <num_slabs> <sharedavail>\n", f);
	for_each_row(t, slabs, row) {
		struct jobj o;

		if (!json) {
			/* mm/slab_common.c: cache_show(); SLUB has no tunables and
			 * active_slabs == num_slabs. */
			fprintf(f, "%-17s %6" PRIu64 " %6" PRIu64 " %6u %4u %4u"
				" : tunables %4u %4u %4u"
				" : slabdata %6" PRIu64 " %6" PRIu64 " %6u\n",
				text_clean(name, sizeof(name), row->name, true), row->active_objs,
				row->num_objs, row->objsize, row->objperslab, row->pagesperslab,
				0u, 0u, 0u, row->num_slabs, row->num_slabs, 0u);
			continue;
		}
		jarray_next(f, n++, "  ");
		jobj_begin(&o, f, " ");
		jstr(&o, "name", row->name);
		ju64(&o, "active_objs", row->active_objs);
		ju64(&o, "num_objs", row->num_objs);
		ju64(&o, "objsize", row->objsize);
		ju64(&o, "objperslab", row->objperslab);
		ju64(&o, "pagesperslab", row->pagesperslab);
		ju64(&o, "active_slabs", row->num_slabs);
		ju64(&o, "num_slabs", row->num_slabs);
		jobj_end(&o, " ");
	}
	if (json) {
		jarray_end(f, n, "");
		fputc('\n', f);
	}
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* buddyinfo                                                                */

int format_buddyinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__BuddyRow *row;
	char zone[TEXT_MAX];
	size_t n = 0;

	if (json)
		fputc('[', f);
	for_each_row(t, buddy, row) {
		size_t orders = row->n_nr_free > BUDDY_MIN_ORDERS ? row->n_nr_free :
			BUDDY_MIN_ORDERS;
		struct jobj o;
		size_t i;

		if (!json) {
			/* mm/vmstat.c: frag_show_print(); a domain is a zone of node 0. */
			fprintf(f, "Node %d, zone %8s ", 0,
				text_clean(zone, sizeof(zone), row->zone, true));
			for (i = 0; i < orders; i++)
				fprintf(f, "%6" PRIu64 " ",
					i < row->n_nr_free ? row->nr_free[i] : 0);
			fputc('\n', f);
			continue;
		}
		jarray_next(f, n++, "  ");
		jobj_begin(&o, f, " ");
		ju64(&o, "node", 0);
		jstr(&o, "zone", row->zone);
		jkey(&o, "nr_free");
		fputc('[', f);
		for (i = 0; i < row->n_nr_free; i++)
			fprintf(f, "%s%" PRIu64, i ? ", " : "", row->nr_free[i]);
		fputc(']', f);
		jobj_end(&o, " ");
	}
	if (json) {
		jarray_end(f, n, "");
		fputc('\n', f);
	}
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* vmallocinfo                                                              */

int format_vmallocinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__VmallocRow *row;
	char caller[TEXT_MAX];
	size_t n = 0;

	if (json)
		fputc('[', f);
	for_each_row(t, vmalloc, row) {
		struct jobj o;

		if (!json) {
			/* mm/vmalloc.c: vmalloc_info_show(), every area is VM_ALLOC;
			 * the N0= count as on a NUMA kernel with one node. */
			fprintf(f, "0x%016" PRIx64 "-0x%016" PRIx64 " %7" PRIu64, row->start,
				row->start + row->size, row->size);
			if (row->caller && row->caller[0])
				fprintf(f, " %s", text_clean(caller, sizeof(caller), row->caller,
							     true));
			if (row->pages)
				fprintf(f, " pages=%" PRIu64, row->pages);
			fputs(" vmalloc", f);
			if (row->pages)
				fprintf(f, " N0=%" PRIu64, row->pages);
			fputc('\n', f);
			continue;
		}
		jarray_next(f, n++, "  ");
		jobj_begin(&o, f, " ");
		ju64(&o, "start", row->start);
		ju64(&o, "end", row->start + row->size);
		ju64(&o, "size", row->size);
		jstr(&o, "caller", row->caller);
		ju64(&o, "pages", row->pages);
		ju64(&o, "pid", row->pid);
		ju64(&o, "grant", row->grant);
		ju64(&o, "domain", row->domain);
		jobj_end(&o, " ");
	}
	if (json) {
		jarray_end(f, n, "");
		fputc('\n', f);
	}
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* clients                                                                  */

static size_t count_clients(const struct format_table *t)
{
	size_t p, n = 0;

	for (p = 0; p < t->nr_pages; p++)
		if (t->pages[p])
			n += t->pages[p]->n_clients;
	return n;
}

/* The rows of every page in one array (NULL with *@n 0 when there are none). */
static int gather_clients(const struct format_table *t, Kmalloc__ClientRow ***out, size_t *n)
{
	Kmalloc__ClientRow **rows, *row;
	size_t i = 0;

	*n = count_clients(t);
	*out = NULL;
	if (!*n)
		return 0;
	rows = calloc(*n, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for_each_row(t, clients, row)
		rows[i++] = row;
	*out = rows;
	return 0;
}

static void clients_text(FILE *f, Kmalloc__ClientRow *const *rows, size_t n)
{
	char name[TEXT_MAX];
	size_t i;

	fprintf(f, "%7s %6s %6s %5s %8s %12s %s\n",
		"PID", "UID", "DOMAIN", "CONN", "GRANTS", "BYTES", "COMMAND");
	for (i = 0; i < n; i++)
		fprintf(f, "%7u %6u %6u %5" PRIu64 " %8" PRIu64 " %12" PRIu64 " %s%s%s\n",
			rows[i]->pid, rows[i]->uid, rows[i]->domain, rows[i]->conn,
			rows[i]->grants, rows[i]->bytes,
			text_clean(name, sizeof(name), rows[i]->name, false),
			rows[i]->admin ? " (admin)" : "", rows[i]->closing ? " (closing)" : "");
}

static void clients_json(FILE *f, Kmalloc__ClientRow *const *rows, size_t n, const char *indent,
			 const char *end_indent)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++) {
		struct jobj o;

		jarray_next(f, i, indent);
		jobj_begin(&o, f, " ");
		ju64(&o, "pid", rows[i]->pid);
		ju64(&o, "uid", rows[i]->uid);
		jstr(&o, "name", rows[i]->name);
		ju64(&o, "domain", rows[i]->domain);
		ju64(&o, "conn", rows[i]->conn);
		ju64(&o, "grants", rows[i]->grants);
		ju64(&o, "bytes", rows[i]->bytes);
		jbool(&o, "admin", rows[i]->admin);
		jbool(&o, "closing", rows[i]->closing);
		jobj_end(&o, " ");
	}
	jarray_end(f, n, end_indent);
}

int format_clients(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__ClientRow **rows;
	size_t n;
	int err;

	err = gather_clients(t, &rows, &n);
	if (err)
		return err;
	if (json) {
		clients_json(f, rows, n, "  ", "");
		fputc('\n', f);
	} else {
		clients_text(f, rows, n);
	}
	free(rows);
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* limits                                                                   */

/* A limit in a column: "unlimited" for UINT64_MAX. */
static const char *limit_text(char *buf, size_t len, uint64_t v)
{
	if (v == UINT64_MAX)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

int format_limits(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__AccountRow *row;
	char a[24], b[24], c[24];
	size_t n = 0;

	if (json)
		fputc('[', f);
	else
		fprintf(f, "%6s %6s %5s %9s %10s %10s %14s %14s %8s %s\n", "UID", "DOMAIN",
			"CONNS", "MAX_CONNS", "GRANTS", "MAX_GRANTS", "BYTES", "MAX_BYTES",
			"REFUSED", "PRIVILEGED");
	for_each_row(t, accounts, row) {
		struct jobj o;

		if (!json) {
			fprintf(f, "%6u %6u %5u %9s %10" PRIu64 " %10s %14" PRIu64 " %14s %8" PRIu64
				" %s\n", row->uid, row->domain, row->connections,
				limit_text(a, sizeof(a), row->max_connections), row->grants,
				limit_text(b, sizeof(b), row->max_grants), row->bytes,
				limit_text(c, sizeof(c), row->max_bytes), row->refusals,
				row->privileged ? "yes" : "no");
			continue;
		}
		jarray_next(f, n++, "  ");
		jobj_begin(&o, f, " ");
		ju64(&o, "uid", row->uid);
		ju64(&o, "domain", row->domain);
		ju64(&o, "connections", row->connections);
		ju64(&o, "max_connections", row->max_connections);
		ju64(&o, "grants", row->grants);
		ju64(&o, "max_grants", row->max_grants);
		ju64(&o, "bytes", row->bytes);
		ju64(&o, "max_bytes", row->max_bytes);
		ju64(&o, "refusals", row->refusals);
		jbool(&o, "privileged", row->privileged);
		jobj_end(&o, " ");
	}
	if (json) {
		jarray_end(f, n, "");
		fputc('\n', f);
	}
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* top                                                                      */

/* slabtop's summary (procps-ng slabtop.c: print_summary()). */
struct slab_summary {
	uint64_t active_objs, total_objs;
	uint64_t active_slabs, total_slabs;
	uint64_t active_caches, total_caches;
	uint64_t active_size, total_size;	/* bytes */
	uint64_t min_obj, max_obj;		/* bytes */
	double avg_obj;				/* bytes */
};

static void slab_summarize(const struct format_table *t, struct slab_summary *s)
{
	Kmalloc__SlabRow *row;

	memset(s, 0, sizeof(*s));
	for_each_row(t, slabs, row) {
		s->active_objs += row->active_objs;
		s->total_objs += row->num_objs;
		s->active_slabs += row->num_slabs;
		s->total_slabs += row->num_slabs;
		s->total_caches++;
		if (row->num_objs)
			s->active_caches++;
		s->active_size += row->active_objs * row->objsize;
		s->total_size += row->num_objs * row->objsize;
		if (s->total_caches == 1 || row->objsize < s->min_obj)
			s->min_obj = row->objsize;
		if (row->objsize > s->max_obj)
			s->max_obj = row->objsize;
	}
	if (s->total_objs)
		s->avg_obj = (double)s->total_size / (double)s->total_objs;
}

static double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static int cmp_clients_bytes(const void *a, const void *b)
{
	const Kmalloc__ClientRow *x = *(Kmalloc__ClientRow *const *)a;
	const Kmalloc__ClientRow *y = *(Kmalloc__ClientRow *const *)b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->conn != y->conn)
		return x->conn < y->conn ? -1 : 1;
	return 0;
}

static void top_text(FILE *f, const Kmalloc__Meminfo *mi, const struct slab_summary *s)
{
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " (%.1f%%)\n",
		"Active / Total Objects (% used)", s->active_objs, s->total_objs,
		percent(s->active_objs, s->total_objs));
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " (%.1f%%)\n",
		"Active / Total Slabs (% used)", s->active_slabs, s->total_slabs,
		percent(s->active_slabs, s->total_slabs));
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " (%.1f%%)\n",
		"Active / Total Caches (% used)", s->active_caches, s->total_caches,
		percent(s->active_caches, s->total_caches));
	fprintf(f, " %-35s: %.2fK / %.2fK (%.1f%%)\n", "Active / Total Size (% used)",
		(double)s->active_size / 1024, (double)s->total_size / 1024,
		percent(s->active_size, s->total_size));
	fprintf(f, " %-35s: %.2fK / %.2fK / %.2fK\n", "Minimum / Average / Maximum Object",
		(double)s->min_obj / 1024, s->avg_obj / 1024, (double)s->max_obj / 1024);
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " kB (%.1f%%)\n", "MemFree / MemTotal (% free)",
		mi->free >> 10, mi->total >> 10, percent(mi->free, mi->total));
	fprintf(f, " %-35s: %" PRIu64 " kB\n", "Slab", mi->slab >> 10);
	fprintf(f, " %-35s: %" PRIu64 " kB\n", "VmallocUsed", mi->vmalloc_used >> 10);
	fprintf(f, " %-35s: %s, domains %u, clients %u, grants %" PRIu64 "\n", "Backing",
		mi->hugetlb ? "hugetlb" : "shmem", mi->domains, mi->clients, mi->grants);
	fputc('\n', f);
}

static void top_json_summary(FILE *f, const struct slab_summary *s)
{
	struct jobj o;

	jobj_begin(&o, f, "\n    ");
	ju64(&o, "active_objs", s->active_objs);
	ju64(&o, "total_objs", s->total_objs);
	ju64(&o, "active_slabs", s->active_slabs);
	ju64(&o, "total_slabs", s->total_slabs);
	ju64(&o, "active_caches", s->active_caches);
	ju64(&o, "total_caches", s->total_caches);
	ju64(&o, "active_size", s->active_size);
	ju64(&o, "total_size", s->total_size);
	ju64(&o, "min_obj_size", s->min_obj);
	jdouble(&o, "avg_obj_size", s->avg_obj);
	ju64(&o, "max_obj_size", s->max_obj);
	jobj_end(&o, "\n  ");
}

int format_top(FILE *f, const Kmalloc__Meminfo *mi, const struct format_table *slabs,
	       const struct format_table *clients, bool json)
{
	Kmalloc__ClientRow **rows;
	struct slab_summary s;
	size_t n;
	int err;

	err = gather_clients(clients, &rows, &n);
	if (err)
		return err;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_clients_bytes);
	slab_summarize(slabs, &s);
	if (json) {
		fputs("{\n  \"slab\": ", f);
		top_json_summary(f, &s);
		fputs(",\n  \"meminfo\": ", f);
		meminfo_json(f, mi, "\n    ", "\n  ");
		fputs(",\n  \"clients\": ", f);
		clients_json(f, rows, n, "    ", "  ");
		fputs("\n}\n", f);
	} else {
		top_text(f, mi, &s);
		clients_text(f, rows, n);
	}
	free(rows);
	return stream_status(f);
}
