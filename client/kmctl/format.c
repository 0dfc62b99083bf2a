// SPDX-License-Identifier: MIT
/*
 * format.c - kmctl's /proc-style text and JSON. The text reproduces the
 * kernel's printf formats byte for byte so that tools written for the real
 * files parse it: show_val_kb() and hugetlb_report_meminfo() for meminfo,
 * print_slabinfo_header()/cache_show() for slabinfo (slabtop's sscanf pattern
 * reads it back), frag_show_print() for buddyinfo, vmalloc_info_show() for
 * vmallocinfo (docs/kernel.md). Strings come from the daemon,
 * which copied some of them from untrusted clients (Hello.name,
 * Vmalloc.caller): in text they are made printable and, inside a line, free
 * of blanks so that one record stays one line of whitespace-separated fields;
 * in JSON they are made valid UTF-8 and json-c escapes them. JSON documents
 * are json-c trees, printed by json-c; nothing here writes JSON syntax by
 * hand. Nothing here knows about sockets.
 */
#include "config.h"
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define BUDDY_MIN_ORDERS 11  /* NR_PAGE_ORDERS: orders 0..10 are always shown */
#define TEXT_MAX	 256 /* longest string printed in text (slabtop reads 128) */

/* Iterates over every row of one repeated field across the pages of @t. */
#define for_each_row(t, field, row)                                                                \
	for (size_t pg_ = 0; pg_ < (t)->nr_pages; pg_++)                                           \
		for (size_t ix_ = 0; (t)->pages[pg_] && ix_ < (t)->pages[pg_]->n_##field &&        \
				     ((row) = (t)->pages[pg_]->field[ix_], 1);                     \
		     ix_++)

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

/* Every document: two-space indentation, "key": value, '/' left as it is. */
#define JSON_FLAGS                                                                                 \
	(JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

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

/*
 * A JSON string of @str (NULL is ""), or NULL when out of memory. json-c
 * escapes quotes, backslashes and control characters but copies other bytes
 * as they are, so a name with invalid UTF-8 would make the document invalid:
 * each byte that does not start a valid sequence becomes U+FFFD first.
 */
static json_object *jstring_new(const char *str)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD in UTF-8 */
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t len = strlen((const char *)s), i, n = 0, seq;
	json_object *j;
	char *buf;

	for (i = 0; i < len; i += seq) {
		seq = utf8_seq_len(s + i);
		if (!seq)
			break;
	}
	if (i == len)
		return json_object_new_string((const char *)s);
	if (len > INT_MAX / 3)
		return NULL;
	buf = malloc(len * 3);
	if (!buf)
		return NULL;
	for (i = 0; i < len; i += seq ? seq : 1) {
		seq = utf8_seq_len(s + i);
		if (seq) {
			memcpy(buf + n, s + i, seq);
			n += seq;
		} else {
			memcpy(buf + n, replacement, 3);
			n += 3;
		}
	}
	j = json_object_new_string_len(buf, (int)n);
	free(buf);
	return j;
}

/*
 * Builders. json-c's constructors return NULL when out of memory; these take
 * such a NULL as @val, drop what they were given on failure and return 0 or
 * -ENOMEM, so that an object is filled by one chain of calls joined by ||.
 */

/* @key is a string literal, added once: json-c keeps the pointer rather than
 * a copy (a copy would also leak when json-c fails to grow its table). */
static int jadd(json_object *obj, const char *key, json_object *val)
{
	const unsigned int opts = JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY;

	if (obj && val && !json_object_object_add_ex(obj, key, val, opts))
		return 0;
	json_object_put(val);
	return -ENOMEM;
}

static int jappend(json_object *arr, json_object *val)
{
	if (arr && val && !json_object_array_add(arr, val))
		return 0;
	json_object_put(val);
	return -ENOMEM;
}

static int ju64(json_object *obj, const char *key, uint64_t v)
{
	return jadd(obj, key, json_object_new_uint64(v));
}

static int jstr(json_object *obj, const char *key, const char *s)
{
	return jadd(obj, key, jstring_new(s));
}

static int jbool(json_object *obj, const char *key, bool v)
{
	return jadd(obj, key, json_object_new_boolean(v));
}

/* A number with two decimals ("%.2f"), as slabtop shows sizes. */
static int jfixed2(json_object *obj, const char *key, double v)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.2f", v);
	return jadd(obj, key, json_object_new_double_s(v, buf));
}

/* A new object appended to @arr, or NULL (then jadd() fails). */
static json_object *jappend_object(json_object *arr)
{
	json_object *obj = json_object_new_object();

	return jappend(arr, obj) ? NULL : obj;
}

/* A new array added to @obj under @key, or NULL. */
static json_object *jadd_array(json_object *obj, const char *key)
{
	json_object *arr = json_object_new_array();

	return jadd(obj, key, arr) ? NULL : arr;
}

/* Drops a document whose building failed. */
static json_object *jfail(json_object *doc)
{
	json_object_put(doc);
	return NULL;
}

/* Prints @doc (NULL: building it ran out of memory) and a newline, then
 * drops it. */
static int json_print(FILE *f, json_object *doc)
{
	const char *s = doc ? json_object_to_json_string_ext(doc, JSON_FLAGS) : NULL;

	if (s) {
		fputs(s, f);
		fputc('\n', f);
	}
	json_object_put(doc);
	return s ? stream_status(f) : -ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* meminfo                                                                  */

static json_object *meminfo_json(const Kmalloc__Meminfo *mi)
{
	json_object *o = json_object_new_object();

	if (ju64(o, "total", mi->total) || ju64(o, "free", mi->free) ||
	    ju64(o, "available", mi->available) || ju64(o, "slab", mi->slab) ||
	    ju64(o, "slab_reclaimable", mi->slab_reclaimable) ||
	    ju64(o, "slab_unreclaimable", mi->slab_unreclaimable) ||
	    ju64(o, "vmalloc_total", mi->total) || ju64(o, "vmalloc_used", mi->vmalloc_used) ||
	    ju64(o, "reserve", mi->reserve) || ju64(o, "watermark_low", mi->watermark_low) ||
	    ju64(o, "watermark_high", mi->watermark_high) ||
	    jstr(o, "backing", mi->hugetlb ? "hugetlb" : "shmem") ||
	    jbool(o, "hugetlb", mi->hugetlb) || ju64(o, "frame_size", mi->frame_size) ||
	    ju64(o, "frames_total", mi->frames_total) || ju64(o, "frames_free", mi->frames_free) ||
	    ju64(o, "domains", mi->domains) || ju64(o, "clients", mi->clients) ||
	    ju64(o, "grants", mi->grants) || ju64(o, "quarantined", mi->quarantined))
		return jfail(o);
	return o;
}

int format_meminfo(FILE *f, const Kmalloc__Meminfo *mi, bool json)
{
	uint64_t hp_total = mi->hugetlb ? mi->frames_total : 0;
	uint64_t hp_free = mi->hugetlb ? mi->frames_free : 0;

	if (json)
		return json_print(f, meminfo_json(mi));
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

static json_object *slabinfo_json(const struct format_table *t)
{
	json_object *rows = json_object_new_array(), *o;
	Kmalloc__SlabRow *row;

	for_each_row(t, slabs, row) {
		o = jappend_object(rows);
		if (jstr(o, "name", row->name) || ju64(o, "active_objs", row->active_objs) ||
		    ju64(o, "num_objs", row->num_objs) || ju64(o, "objsize", row->objsize) ||
		    ju64(o, "objperslab", row->objperslab) ||
		    ju64(o, "pagesperslab", row->pagesperslab) ||
		    ju64(o, "active_slabs", row->num_slabs) || ju64(o, "num_slabs", row->num_slabs))
			return jfail(rows);
	}
	return rows;
}

int format_slabinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__SlabRow *row;
	char name[TEXT_MAX];

	if (json)
		return json_print(f, slabinfo_json(t));
	fputs("slabinfo - version: 2.1\n"
	      "# name            <active_objs> <num_objs> <objsize> <objperslab> "
	      "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : "
	      "slabdata <active_slabs> <num_slabs> <sharedavail>\n",
	      f);
	/* mm/slab_common.c: cache_show(); SLUB has no tunables and
	 * active_slabs == num_slabs. */
	for_each_row(t, slabs, row)
		fprintf(f,
			"%-17s %6" PRIu64 " %6" PRIu64 " %6u %4u %4u"
			" : tunables %4u %4u %4u"
			" : slabdata %6" PRIu64 " %6" PRIu64 " %6u\n",
			text_clean(name, sizeof(name), row->name, true), row->active_objs,
			row->num_objs, row->objsize, row->objperslab, row->pagesperslab, 0u, 0u, 0u,
			row->num_slabs, row->num_slabs, 0u);
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* buddyinfo                                                                */

static json_object *buddyinfo_json(const struct format_table *t)
{
	json_object *rows = json_object_new_array(), *o, *nr_free;
	Kmalloc__BuddyRow *row;
	size_t i;

	for_each_row(t, buddy, row) {
		o = jappend_object(rows);
		if (ju64(o, "node", 0) || jstr(o, "zone", row->zone))
			return jfail(rows);
		nr_free = jadd_array(o, "nr_free");
		if (!nr_free)
			return jfail(rows);
		for (i = 0; i < row->n_nr_free; i++)
			if (jappend(nr_free, json_object_new_uint64(row->nr_free[i])))
				return jfail(rows);
	}
	return rows;
}

int format_buddyinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__BuddyRow *row;
	char zone[TEXT_MAX];

	if (json)
		return json_print(f, buddyinfo_json(t));
	for_each_row(t, buddy, row) {
		size_t orders =
			row->n_nr_free > BUDDY_MIN_ORDERS ? row->n_nr_free : BUDDY_MIN_ORDERS;
		size_t i;

		/* mm/vmstat.c: frag_show_print(); a domain is a zone of node 0. */
		fprintf(f, "Node %d, zone %8s ", 0,
			text_clean(zone, sizeof(zone), row->zone, true));
		for (i = 0; i < orders; i++)
			fprintf(f, "%6" PRIu64 " ", i < row->n_nr_free ? row->nr_free[i] : 0);
		fputc('\n', f);
	}
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* vmallocinfo                                                              */

static json_object *vmallocinfo_json(const struct format_table *t)
{
	json_object *rows = json_object_new_array(), *o;
	Kmalloc__VmallocRow *row;

	for_each_row(t, vmalloc, row) {
		o = jappend_object(rows);
		if (ju64(o, "start", row->start) || ju64(o, "end", row->start + row->size) ||
		    ju64(o, "size", row->size) || jstr(o, "caller", row->caller) ||
		    ju64(o, "pages", row->pages) || ju64(o, "pid", row->pid) ||
		    ju64(o, "grant", row->grant) || ju64(o, "domain", row->domain))
			return jfail(rows);
	}
	return rows;
}

int format_vmallocinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__VmallocRow *row;
	char caller[TEXT_MAX];

	if (json)
		return json_print(f, vmallocinfo_json(t));
	for_each_row(t, vmalloc, row) {
		/* mm/vmalloc.c: vmalloc_info_show(), every area is VM_ALLOC;
		 * the N0= count as on a NUMA kernel with one node. */
		fprintf(f, "0x%016" PRIx64 "-0x%016" PRIx64 " %7" PRIu64, row->start,
			row->start + row->size, row->size);
		if (row->caller && row->caller[0])
			fprintf(f, " %s", text_clean(caller, sizeof(caller), row->caller, true));
		if (row->pages)
			fprintf(f, " pages=%" PRIu64, row->pages);
		fputs(" vmalloc", f);
		if (row->pages)
			fprintf(f, " N0=%" PRIu64, row->pages);
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

	fprintf(f, "%7s %6s %6s %5s %8s %12s %s\n", "PID", "UID", "DOMAIN", "CONN", "GRANTS",
		"BYTES", "COMMAND");
	for (i = 0; i < n; i++)
		fprintf(f, "%7u %6u %6u %5" PRIu64 " %8" PRIu64 " %12" PRIu64 " %s%s%s\n",
			rows[i]->pid, rows[i]->uid, rows[i]->domain, rows[i]->conn, rows[i]->grants,
			rows[i]->bytes, text_clean(name, sizeof(name), rows[i]->name, false),
			rows[i]->admin ? " (admin)" : "", rows[i]->closing ? " (closing)" : "");
}

static json_object *clients_json(Kmalloc__ClientRow *const *rows, size_t n)
{
	json_object *arr = json_object_new_array(), *o;
	size_t i;

	for (i = 0; i < n; i++) {
		o = jappend_object(arr);
		if (ju64(o, "pid", rows[i]->pid) || ju64(o, "uid", rows[i]->uid) ||
		    jstr(o, "name", rows[i]->name) || ju64(o, "domain", rows[i]->domain) ||
		    ju64(o, "conn", rows[i]->conn) || ju64(o, "grants", rows[i]->grants) ||
		    ju64(o, "bytes", rows[i]->bytes) || jbool(o, "admin", rows[i]->admin) ||
		    jbool(o, "closing", rows[i]->closing))
			return jfail(arr);
	}
	return arr;
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
		err = json_print(f, clients_json(rows, n));
	} else {
		clients_text(f, rows, n);
		err = stream_status(f);
	}
	free(rows);
	return err;
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

static json_object *limits_json(const struct format_table *t)
{
	json_object *rows = json_object_new_array(), *o;
	Kmalloc__AccountRow *row;

	for_each_row(t, accounts, row) {
		o = jappend_object(rows);
		if (ju64(o, "uid", row->uid) || ju64(o, "domain", row->domain) ||
		    ju64(o, "connections", row->connections) ||
		    ju64(o, "max_connections", row->max_connections) ||
		    ju64(o, "grants", row->grants) || ju64(o, "max_grants", row->max_grants) ||
		    ju64(o, "bytes", row->bytes) || ju64(o, "max_bytes", row->max_bytes) ||
		    ju64(o, "refusals", row->refusals) || jbool(o, "privileged", row->privileged))
			return jfail(rows);
	}
	return rows;
}

int format_limits(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__AccountRow *row;
	char a[24], b[24], c[24];

	if (json)
		return json_print(f, limits_json(t));
	fprintf(f, "%6s %6s %5s %9s %10s %10s %14s %14s %8s %s\n", "UID", "DOMAIN", "CONNS",
		"MAX_CONNS", "GRANTS", "MAX_GRANTS", "BYTES", "MAX_BYTES", "REFUSED", "PRIVILEGED");
	for_each_row(t, accounts, row)
		fprintf(f,
			"%6u %6u %5u %9s %10" PRIu64 " %10s %14" PRIu64 " %14s %8" PRIu64 " %s\n",
			row->uid, row->domain, row->connections,
			limit_text(a, sizeof(a), row->max_connections), row->grants,
			limit_text(b, sizeof(b), row->max_grants), row->bytes,
			limit_text(c, sizeof(c), row->max_bytes), row->refusals,
			row->privileged ? "yes" : "no");
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* stats                                                                    */

/* LoopRow.request_hist's buckets, by their upper bound. */
static const char *const hist_names[] = {
	"request_hist_10us", "request_hist_100us", "request_hist_1ms",
	"request_hist_10ms", "request_hist_inf",
};
#define NR_HIST (sizeof(hist_names) / sizeof(hist_names[0]))

/* A bucket's count; 0 for one a daemon did not send. */
static uint64_t hist_at(const Kmalloc__LoopRow *row, size_t i)
{
	return i < row->n_request_hist ? row->request_hist[i] : 0;
}

static json_object *stats_json(const Kmalloc__LoopRow *row)
{
	json_object *o = json_object_new_object();
	size_t i;

	if (ju64(o, "uptime_ns", row->uptime_ns) || ju64(o, "grants", row->grants) ||
	    ju64(o, "connections", row->connections) || ju64(o, "requests", row->requests) ||
	    ju64(o, "request_max_ns", row->request_max_ns) ||
	    jstr(o, "request_max_kind", row->request_max_kind) ||
	    ju64(o, "requests_over_1ms", row->requests_over_1ms))
		return jfail(o);
	for (i = 0; i < NR_HIST; i++)
		if (ju64(o, hist_names[i], hist_at(row, i)))
			return jfail(o);
	if (ju64(o, "teardown_turns", row->teardown_turns) ||
	    ju64(o, "teardown_max_ns", row->teardown_max_ns) ||
	    ju64(o, "tick_max_ns", row->tick_max_ns) ||
	    ju64(o, "accept_max_ns", row->accept_max_ns))
		return jfail(o);
	return o;
}

int format_stats(FILE *f, const Kmalloc__LoopRow *row, bool json)
{
	char kind[TEXT_MAX];
	size_t i;

	if (json)
		return json_print(f, stats_json(row));
	fprintf(f, "uptime_s %" PRIu64 "\n", row->uptime_ns / 1000000000);
	fprintf(f, "grants %" PRIu64 "\n", row->grants);
	fprintf(f, "connections %u\n", row->connections);
	fprintf(f, "requests %" PRIu64 "\n", row->requests);
	fprintf(f, "request_max_us %" PRIu64 "\n", row->request_max_ns / 1000);
	/* One word, as every value: "-" before the first request. */
	fprintf(f, "request_max_kind %s\n",
		row->request_max_kind && row->request_max_kind[0]
			? text_clean(kind, sizeof(kind), row->request_max_kind, true)
			: "-");
	fprintf(f, "requests_over_1ms %" PRIu64 "\n", row->requests_over_1ms);
	for (i = 0; i < NR_HIST; i++)
		fprintf(f, "%s %" PRIu64 "\n", hist_names[i], hist_at(row, i));
	fprintf(f, "teardown_turns %" PRIu64 "\n", row->teardown_turns);
	fprintf(f, "teardown_max_us %" PRIu64 "\n", row->teardown_max_ns / 1000);
	fprintf(f, "tick_max_us %" PRIu64 "\n", row->tick_max_ns / 1000);
	fprintf(f, "accept_max_us %" PRIu64 "\n", row->accept_max_ns / 1000);
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* top                                                                      */

/* slabtop's summary (procps-ng slabtop.c: print_summary()). */
struct slab_summary {
	uint64_t active_objs, total_objs;
	uint64_t active_slabs, total_slabs;
	uint64_t active_caches, total_caches;
	uint64_t active_size, total_size; /* bytes */
	uint64_t min_obj, max_obj;	  /* bytes */
	double avg_obj;			  /* bytes */
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
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " (%.1f%%)\n", "Active / Total Slabs (% used)",
		s->active_slabs, s->total_slabs, percent(s->active_slabs, s->total_slabs));
	fprintf(f, " %-35s: %" PRIu64 " / %" PRIu64 " (%.1f%%)\n", "Active / Total Caches (% used)",
		s->active_caches, s->total_caches, percent(s->active_caches, s->total_caches));
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

static json_object *top_json_summary(const struct slab_summary *s)
{
	json_object *o = json_object_new_object();

	if (ju64(o, "active_objs", s->active_objs) || ju64(o, "total_objs", s->total_objs) ||
	    ju64(o, "active_slabs", s->active_slabs) || ju64(o, "total_slabs", s->total_slabs) ||
	    ju64(o, "active_caches", s->active_caches) ||
	    ju64(o, "total_caches", s->total_caches) || ju64(o, "active_size", s->active_size) ||
	    ju64(o, "total_size", s->total_size) || ju64(o, "min_obj_size", s->min_obj) ||
	    jfixed2(o, "avg_obj_size", s->avg_obj) || ju64(o, "max_obj_size", s->max_obj))
		return jfail(o);
	return o;
}

static json_object *top_json(const Kmalloc__Meminfo *mi, const struct slab_summary *s,
			     Kmalloc__ClientRow *const *rows, size_t n)
{
	json_object *o = json_object_new_object();

	if (jadd(o, "slab", top_json_summary(s)) || jadd(o, "meminfo", meminfo_json(mi)) ||
	    jadd(o, "clients", clients_json(rows, n)))
		return jfail(o);
	return o;
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
		err = json_print(f, top_json(mi, &s, rows, n));
	} else {
		top_text(f, mi, &s);
		clients_text(f, rows, n);
		err = stream_status(f);
	}
	free(rows);
	return err;
}
