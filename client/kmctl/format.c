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
/* Clients' names                                                           */

/* The command shown for the client @pid that said Hello as @name. */
static const char *client_comm(const struct format_table *t, uint32_t pid, const char *name)
{
	const char *comm = t->comm && pid ? t->comm(t->comm_ctx, pid) : NULL;

	if (comm)
		return comm;
	return name ? name : "";
}

/* A name inside a comma-separated list of one field (kmctl shares'
 * holders): as text_clean() for a field, commas also replaced. */
static const char *list_clean(char *buf, size_t cap, const char *s)
{
	char *p;

	text_clean(buf, cap, s, true);
	for (p = buf; (p = strchr(p, ',')); p++)
		*p = '?';
	return buf;
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
		    ju64(o, "grant", row->grant) || ju64(o, "domain", row->domain) ||
		    jstr(o, "comm", client_comm(t, row->pid, row->name)) ||
		    ju64(o, "holders", row->holders))
			return jfail(rows);
	}
	return rows;
}

int format_vmallocinfo(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__VmallocRow *row;
	char caller[TEXT_MAX], comm[TEXT_MAX];

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
		/* The owner, in tokens of their own after the kernel's: tools
		 * split the line on blanks and read the key=value tokens they
		 * know, as they skip "vmalloc" or "N0=". */
		fprintf(f, " pid=%u comm=%s", row->pid,
			text_clean(comm, sizeof(comm), client_comm(t, row->pid, row->name), true));
		if (row->holders > 1)
			fprintf(f, " shared=%u", row->holders);
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
		    ju64(o, "handles", row->handles) || ju64(o, "max_handles", row->max_handles) ||
		    ju64(o, "refusals", row->refusals) || jbool(o, "privileged", row->privileged))
			return jfail(rows);
	}
	return rows;
}

int format_limits(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__AccountRow *row;
	char a[24], b[24], c[24], h[24];

	if (json)
		return json_print(f, limits_json(t));
	fprintf(f, "%6s %6s %5s %9s %10s %10s %14s %14s %8s %11s %8s %s\n", "UID", "DOMAIN",
		"CONNS", "MAX_CONNS", "GRANTS", "MAX_GRANTS", "BYTES", "MAX_BYTES", "HANDLES",
		"MAX_HANDLES", "REFUSED", "PRIVILEGED");
	for_each_row(t, accounts, row)
		fprintf(f,
			"%6u %6u %5u %9s %10" PRIu64 " %10s %14" PRIu64 " %14s %8" PRIu64
			" %11s %8" PRIu64 " %s\n",
			row->uid, row->domain, row->connections,
			limit_text(a, sizeof(a), row->max_connections), row->grants,
			limit_text(b, sizeof(b), row->max_grants), row->bytes,
			limit_text(c, sizeof(c), row->max_bytes), row->handles,
			limit_text(h, sizeof(h), row->max_handles), row->refusals,
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

/* ------------------------------------------------------------------------ */
/* shares                                                                   */

#define EXPORT_UID    0x1u /* Export.flags */
#define EXPORT_RDONLY 0x2u
#define EXPIRES_NEVER (-1) /* ShareRow.expires_in_ms */

/* The handle's public part as its text form (km_handle_format()) begins:
 * the id's 8 bytes, little-endian, in hex. */
static const char *handle_text(char buf[17], uint64_t id)
{
	int i;

	for (i = 0; i < 8; i++)
		snprintf(buf + 2 * i, 3, "%02x", (unsigned int)(id >> (8 * i)) & 0xff);
	return buf;
}

/* A duration in one word: "12.3s", "5m03s", "2h05m", "3d04h". */
static const char *duration_text(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (ms < 60000)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

static bool share_expired(const Kmalloc__ShareRow *row)
{
	return row->expires_in_ms != EXPIRES_NEVER && row->expires_in_ms <= 0;
}

/* Whether new imports may go through the handle, and if not why. */
static const char *share_state(const Kmalloc__ShareRow *row)
{
	if (row->revoked)
		return "revoked";
	if (share_expired(row))
		return "expired";
	if (row->max_imports && row->imports >= row->max_imports)
		return "used-up";
	return "live";
}

/* Whether the exporter's pid still holds the share (then it is alive and
 * its command can be looked up; a gone exporter's pid may be another
 * process's by now). */
static bool exporter_holds(const Kmalloc__ShareRow *row)
{
	size_t i;

	for (i = 0; i < row->n_holders; i++)
		if (row->holders[i]->exporter && row->holders[i]->pid == row->exporter_pid)
			return true;
	return false;
}

static const char *exporter_comm(const struct format_table *t, const Kmalloc__ShareRow *row)
{
	if (exporter_holds(row))
		return client_comm(t, row->exporter_pid, row->exporter_name);
	return row->exporter_name ? row->exporter_name : "";
}

/* "uid=N,rdonly,uses=k/max" (uses=k without a maximum). */
static const char *share_flags_text(char *buf, size_t len, const Kmalloc__ShareRow *row)
{
	size_t n = 0;

	buf[0] = '\0';
	if (row->flags & EXPORT_UID)
		n += (size_t)snprintf(buf + n, len - n, "uid=%u,", row->uid);
	if (n < len && (row->flags & EXPORT_RDONLY))
		n += (size_t)snprintf(buf + n, len - n, "rdonly,");
	if (n < len && (row->flags & ~(EXPORT_UID | EXPORT_RDONLY)))
		n += (size_t)snprintf(buf + n, len - n, "flags=%#x,",
				      row->flags & ~(EXPORT_UID | EXPORT_RDONLY));
	if (n < len && row->max_imports)
		snprintf(buf + n, len - n, "uses=%u/%u", row->imports, row->max_imports);
	else if (n < len)
		snprintf(buf + n, len - n, "uses=%u", row->imports);
	return buf;
}

/* "*pid:comm(uid)" for the exporter's grant, "pid:comm(uid):ro" for a
 * read-only import, comma-separated; "-" for none. */
static void share_holders_text(FILE *f, const struct format_table *t, const Kmalloc__ShareRow *row)
{
	char name[TEXT_MAX];
	size_t i;

	if (!row->n_holders)
		fputc('-', f);
	for (i = 0; i < row->n_holders; i++) {
		const Kmalloc__ShareHolder *h = row->holders[i];

		fprintf(f, "%s%s%u:%s(%u)%s", i ? "," : "", h->exporter ? "*" : "", h->pid,
			list_clean(name, sizeof(name), client_comm(t, h->pid, h->name)), h->uid,
			h->rdonly ? ":ro" : "");
	}
}

#define SHARES_COLUMNS "%-16s %5s %-14s %10s %6s %-24s %-7s %7s %7s %-16s %s\n"

static void share_text(FILE *f, const struct format_table *t, const Kmalloc__ShareRow *row)
{
	char handle[17], share[24], size[24], domain[16], exporter[TEXT_MAX + 32], name[TEXT_MAX];
	char age[24], expires[24], flags[96], kind[TEXT_MAX];

	snprintf(share, sizeof(share), "%" PRIu64, row->share);
	snprintf(size, sizeof(size), "%" PRIu64, row->size);
	snprintf(domain, sizeof(domain), "%u", row->domain);
	snprintf(exporter, sizeof(exporter), "%u:%s(%u)", row->exporter_pid,
		 list_clean(name, sizeof(name), exporter_comm(t, row)), row->exporter_uid);
	if (row->expires_in_ms == EXPIRES_NEVER)
		snprintf(expires, sizeof(expires), "never");
	else if (share_expired(row))
		snprintf(expires, sizeof(expires), "-");
	else
		duration_text(expires, sizeof(expires), (uint64_t)row->expires_in_ms);
	/* The last column is written by itself: it has no width. */
	fprintf(f, "%-16s %5s %-14s %10s %6s %-24s %-7s %7s %7s %-16s ",
		handle_text(handle, row->handle_id), share,
		text_clean(kind, sizeof(kind), row->kind, true), size, domain, exporter,
		share_state(row), duration_text(age, sizeof(age), row->age_ms), expires,
		share_flags_text(flags, sizeof(flags), row));
	share_holders_text(f, t, row);
	fputc('\n', f);
}

/* A member that is null (json-c's NULL object). */
static int jnull(json_object *obj, const char *key)
{
	const unsigned int opts = JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY;

	return obj && !json_object_object_add_ex(obj, key, NULL, opts) ? 0 : -ENOMEM;
}

static json_object *share_holders_json(const struct format_table *t, const Kmalloc__ShareRow *row)
{
	json_object *arr = json_object_new_array(), *o;
	size_t i;

	for (i = 0; i < row->n_holders; i++) {
		const Kmalloc__ShareHolder *h = row->holders[i];

		o = jappend_object(arr);
		if (ju64(o, "pid", h->pid) || ju64(o, "uid", h->uid) ||
		    jstr(o, "comm", client_comm(t, h->pid, h->name)) ||
		    ju64(o, "grant", h->grant) || jbool(o, "exporter", h->exporter) ||
		    jbool(o, "rdonly", h->rdonly))
			return jfail(arr);
	}
	return arr;
}

static json_object *share_exporter_json(const struct format_table *t, const Kmalloc__ShareRow *row)
{
	json_object *o = json_object_new_object();

	if (ju64(o, "pid", row->exporter_pid) || ju64(o, "uid", row->exporter_uid) ||
	    jstr(o, "comm", exporter_comm(t, row)))
		return jfail(o);
	return o;
}

static json_object *shares_json(const struct format_table *t)
{
	json_object *doc = json_object_new_object(), *rows = jadd_array(doc, "rows"), *o;
	Kmalloc__ShareRow *row;
	char handle[17];

	if (!rows)
		return jfail(doc);
	for_each_row(t, shares, row) {
		o = jappend_object(rows);
		if (jstr(o, "handle", handle_text(handle, row->handle_id)) ||
		    ju64(o, "handle_id", row->handle_id) || ju64(o, "share", row->share) ||
		    jstr(o, "kind", row->kind) || ju64(o, "size", row->size) ||
		    ju64(o, "domain", row->domain) ||
		    jadd(o, "exporter", share_exporter_json(t, row)) ||
		    jstr(o, "state", share_state(row)) || jbool(o, "revoked", row->revoked) ||
		    ju64(o, "age_ms", row->age_ms) ||
		    (row->expires_in_ms == EXPIRES_NEVER
			     ? jnull(o, "expires_in_ms")
			     : jadd(o, "expires_in_ms",
				    json_object_new_int64(row->expires_in_ms))) ||
		    ju64(o, "flags", row->flags) ||
		    (row->flags & EXPORT_UID ? ju64(o, "uid", row->uid) : jnull(o, "uid")) ||
		    jbool(o, "rdonly", row->flags & EXPORT_RDONLY) ||
		    ju64(o, "imports", row->imports) || ju64(o, "max_imports", row->max_imports) ||
		    jadd(o, "holders", share_holders_json(t, row)))
			return jfail(doc);
	}
	return doc;
}

int format_shares(FILE *f, const struct format_table *t, bool json)
{
	Kmalloc__ShareRow *row;

	if (json)
		return json_print(f, shares_json(t));
	fprintf(f, SHARES_COLUMNS, "# handle", "share", "kind", "size", "domain", "exporter",
		"state", "age", "expires", "flags", "holders");
	for_each_row(t, shares, row)
		share_text(f, t, row);
	return stream_status(f);
}

/* ------------------------------------------------------------------------ */
/* map                                                                      */

static const struct frame_kind_info {
	char cell;	  /* the plain text cell */
	const char *name; /* JSON, SVG */
	const char *what; /* the legend */
	const char *sgr;  /* ANSI colours of its cells */
	const char *fill; /* SVG colour */
} frame_kinds[FORMAT_FRAME_NR_KINDS] = {
	[FORMAT_FRAME_FREE] = { '.', "free", "free (no domain)", "2", "#e8e8e8" },
	[FORMAT_FRAME_DOMAIN_FREE] = { 'd', "domain-free", "free, kept by a domain", "30;46",
				       "#a6cee3" },
	[FORMAT_FRAME_SLAB] = { 's', "slab", "slab", "30;42", "#33a02c" },
	[FORMAT_FRAME_LARGE] = { 'L', "kmalloc-large", "kmalloc-large", "30;43", "#ff7f00" },
	[FORMAT_FRAME_VMALLOC] = { 'v', "vmalloc", "vmalloc", "97;45", "#6a3d9a" },
	[FORMAT_FRAME_SHARED] = { 'S', "shared", "shared (a memfd of its own)", "97;44",
				  "#1f78b4" },
	[FORMAT_FRAME_QUARANTINED] = { 'X', "quarantined", "quarantined", "97;41", "#e31a1c" },
	[FORMAT_FRAME_MIXED] = { 'm', "mixed", "mixed (pages of several kinds)", "30;47",
				 "#fdbf6f" },
	[FORMAT_FRAME_UNKNOWN] = { '?', "unknown", "unknown to this kmctl", "97;40", "#000000" },
};

#define KNOWN_KINDS FORMAT_FRAME_UNKNOWN

static enum format_frame_kind frame_kind(const struct format_map *m, uint32_t i)
{
	return m->kinds[i] < KNOWN_KINDS ? (enum format_frame_kind)m->kinds[i]
					 : FORMAT_FRAME_UNKNOWN;
}

/* What the map holds: frames by kind, in all and per domain. */
struct map_summary {
	uint64_t kinds[FORMAT_FRAME_NR_KINDS];
	uint32_t *domains; /* the domain numbers met (not 0), ascending */
	uint64_t (*by_domain)[FORMAT_FRAME_NR_KINDS];
	size_t nr_domains;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t domain_index(const struct map_summary *s, uint32_t domain)
{
	size_t lo = 0, hi = s->nr_domains;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->domains[mid] < domain)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void map_summary_free(struct map_summary *s)
{
	free(s->domains);
	free(s->by_domain);
}

static int map_summarize(const struct format_map *m, struct map_summary *s)
{
	uint32_t i;
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	if (!m->nr_frames)
		return 0;
	s->domains = malloc(m->nr_frames * sizeof(*s->domains));
	if (!s->domains)
		return -ENOMEM;
	for (i = 0; i < m->nr_frames; i++)
		if (m->domains[i])
			s->domains[n++] = m->domains[i];
	qsort(s->domains, n, sizeof(*s->domains), cmp_u32);
	for (i = 0; i < n; i++)
		if (!s->nr_domains || s->domains[s->nr_domains - 1] != s->domains[i])
			s->domains[s->nr_domains++] = s->domains[i];
	s->by_domain = calloc(s->nr_domains ? s->nr_domains : 1, sizeof(*s->by_domain));
	if (!s->by_domain) {
		map_summary_free(s);
		return -ENOMEM;
	}
	for (i = 0; i < m->nr_frames; i++) {
		enum format_frame_kind k = frame_kind(m, i);

		s->kinds[k]++;
		if (m->domains[i])
			s->by_domain[domain_index(s, m->domains[i])][k]++;
	}
	return 0;
}

static uint64_t domain_frames(const struct map_summary *s, size_t d)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < FORMAT_FRAME_NR_KINDS; k++)
		n += s->by_domain[d][k];
	return n;
}

static unsigned int map_width(const struct format_map *m)
{
	if (!m->width)
		return FORMAT_MAP_WIDTH;
	return m->width > FORMAT_MAP_WIDTH_MAX ? FORMAT_MAP_WIDTH_MAX : m->width;
}

/* "2 MiB" or "4 kB": a frame's size for a header line. */
static const char *frame_size_text(char *buf, size_t len, uint64_t bytes)
{
	if (bytes && !(bytes & ((1u << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 " MiB", bytes >> 20);
	else
		snprintf(buf, len, "%" PRIu64 " kB", bytes >> 10);
	return buf;
}

/* A domain in one cell: 1-9, a-z for 10-35, A-Z for 36-61, '*' above. */
static char domain_cell(uint32_t domain)
{
	if (domain < 10)
		return (char)('0' + domain);
	if (domain < 36)
		return (char)('a' + domain - 10);
	if (domain < 62)
		return (char)('A' + domain - 36);
	return '*';
}

static void map_cells(FILE *f, const struct format_map *m, bool colour)
{
	unsigned int width = map_width(m), digits = 1;
	enum format_frame_kind prev = FORMAT_FRAME_NR_KINDS;
	uint32_t i, n;
	char cell;

	for (n = m->nr_frames ? m->nr_frames - 1 : 0; n >= 10; n /= 10)
		digits++;
	for (i = 0; i < m->nr_frames; i++) {
		enum format_frame_kind k = frame_kind(m, i);

		if (i % width == 0)
			fprintf(f, "%*u ", (int)digits, i);
		cell = frame_kinds[k].cell;
		if (colour) {
			/* One escape per change of kind, the domain in the cell. */
			if (k != prev)
				fprintf(f, "\033[0;%sm", frame_kinds[k].sgr);
			prev = k;
			if (m->domains[i])
				cell = domain_cell(m->domains[i]);
		}
		fputc(cell, f);
		if (i % width == width - 1 || i + 1 == m->nr_frames) {
			if (colour)
				fputs("\033[0m", f);
			prev = FORMAT_FRAME_NR_KINDS;
			fputc('\n', f);
		}
	}
}

static void map_legend(FILE *f, const struct map_summary *s, bool colour)
{
	size_t d;
	int k, last;

	fputs("legend:\n", f);
	for (k = 0; k < FORMAT_FRAME_NR_KINDS; k++) {
		if (k == FORMAT_FRAME_UNKNOWN && !s->kinds[k])
			continue;
		if (colour)
			fprintf(f, "  \033[0;%sm%c\033[0m", frame_kinds[k].sgr,
				frame_kinds[k].cell);
		else
			fprintf(f, "  %c", frame_kinds[k].cell);
		fprintf(f, " %-32s %8" PRIu64 "\n", frame_kinds[k].what, s->kinds[k]);
	}
	if (colour)
		fputs("cells of a domain show its number: 1-9, a-z for 10-35, A-Z for 36-61, "
		      "* above\n",
		      f);
	if (!s->nr_domains)
		return;
	/* Frames of each domain by kind; free ones are no domain's. */
	last = s->kinds[FORMAT_FRAME_UNKNOWN] ? FORMAT_FRAME_UNKNOWN : FORMAT_FRAME_UNKNOWN - 1;
	fprintf(f, "%6s %7s", "domain", "frames");
	for (k = FORMAT_FRAME_DOMAIN_FREE; k <= last; k++)
		fprintf(f, " %6c", frame_kinds[k].cell);
	fputc('\n', f);
	for (d = 0; d < s->nr_domains; d++) {
		fprintf(f, "%6u %7" PRIu64, s->domains[d], domain_frames(s, d));
		for (k = FORMAT_FRAME_DOMAIN_FREE; k <= last; k++)
			fprintf(f, " %6" PRIu64, s->by_domain[d][k]);
		fputc('\n', f);
	}
}

static json_object *kind_counts_json(const uint64_t *counts)
{
	json_object *o = json_object_new_object();
	int k;

	for (k = 0; k < FORMAT_FRAME_NR_KINDS; k++)
		if ((k < KNOWN_KINDS || counts[k]) && ju64(o, frame_kinds[k].name, counts[k]))
			return jfail(o);
	return o;
}

static json_object *map_json(const struct format_map *m, const struct map_summary *s)
{
	json_object *doc = json_object_new_object(), *domains, *frames, *o;
	size_t d;
	uint32_t i;

	if (ju64(doc, "nr_frames", m->nr_frames) || ju64(doc, "frame_size", m->frame_size) ||
	    jadd(doc, "counts", kind_counts_json(s->kinds)))
		return jfail(doc);
	domains = jadd_array(doc, "domains");
	for (d = 0; domains && d < s->nr_domains; d++) {
		o = jappend_object(domains);
		if (ju64(o, "domain", s->domains[d]) || ju64(o, "frames", domain_frames(s, d)) ||
		    jadd(o, "counts", kind_counts_json(s->by_domain[d])))
			return jfail(doc);
	}
	frames = jadd_array(doc, "frames");
	if (!domains || !frames)
		return jfail(doc);
	for (i = 0; i < m->nr_frames; i++) {
		o = jappend_object(frames);
		if (ju64(o, "frame", i) || jstr(o, "kind", frame_kinds[frame_kind(m, i)].name) ||
		    ju64(o, "domain", m->domains[i]))
			return jfail(doc);
	}
	return doc;
}

int format_map(FILE *f, const struct format_map *m, enum format_map_style style)
{
	struct map_summary s;
	char size[32];
	int err;

	err = map_summarize(m, &s);
	if (err)
		return err;
	if (style == FORMAT_MAP_JSON) {
		err = json_print(f, map_json(m, &s));
	} else {
		fprintf(f, "pool: %u frames of %s, %u per row\n", m->nr_frames,
			frame_size_text(size, sizeof(size), m->frame_size), map_width(m));
		map_cells(f, m, style == FORMAT_MAP_COLOUR);
		map_legend(f, &s, style == FORMAT_MAP_COLOUR);
		err = stream_status(f);
	}
	map_summary_free(&s);
	return err;
}

/* SVG geometry, in pixels. */
#define SVG_CELL   12 /* a frame's cell, its gap included */
#define SVG_MARGIN 8
#define SVG_LINE   16 /* a line of text */
#define SVG_DIGIT  7  /* the width of a digit at font-size 11 */
#define SVG_MIN_W  360

static void svg_cells(FILE *f, const struct format_map *m, unsigned int x0, unsigned int y0)
{
	unsigned int width = map_width(m);
	uint32_t i;

	for (i = 0; i < m->nr_frames; i++) {
		enum format_frame_kind k = frame_kind(m, i);
		unsigned int x = x0 + (i % width) * SVG_CELL, y = y0 + (i / width) * SVG_CELL;

		if (i % width == 0)
			fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"end\">%u</text>\n",
				x0 - 4, y + SVG_CELL - 2, i);
		fprintf(f,
			"<rect x=\"%u\" y=\"%u\" width=\"%d\" height=\"%d\" fill=\"%s\">"
			"<title>frame %u: %s",
			x, y, SVG_CELL - 1, SVG_CELL - 1, frame_kinds[k].fill, i,
			frame_kinds[k].name);
		if (m->domains[i])
			fprintf(f, ", domain %u", m->domains[i]);
		fputs("</title></rect>\n", f);
	}
}

static unsigned int svg_legend(FILE *f, const struct map_summary *s, unsigned int y)
{
	size_t d;
	int k;

	for (k = 0; k < FORMAT_FRAME_NR_KINDS; k++) {
		if (k == FORMAT_FRAME_UNKNOWN && !s->kinds[k])
			continue;
		fprintf(f,
			"<rect x=\"%d\" y=\"%u\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%u\">%s: %" PRIu64 "</text>\n",
			SVG_MARGIN, y, SVG_CELL - 1, SVG_CELL - 1, frame_kinds[k].fill,
			SVG_MARGIN + SVG_CELL + 6, y + SVG_CELL - 2, frame_kinds[k].what,
			s->kinds[k]);
		y += SVG_LINE;
	}
	for (d = 0; d < s->nr_domains; d++) {
		bool first = true;

		uint64_t frames = domain_frames(s, d);

		fprintf(f, "<text x=\"%d\" y=\"%u\">domain %u: %" PRIu64 " frame%s", SVG_MARGIN,
			y + SVG_CELL - 2, s->domains[d], frames, frames == 1 ? "" : "s");
		for (k = FORMAT_FRAME_DOMAIN_FREE; k < FORMAT_FRAME_NR_KINDS; k++) {
			if (!s->by_domain[d][k])
				continue;
			fprintf(f, "%s%s %" PRIu64, first ? " (" : ", ", frame_kinds[k].name,
				s->by_domain[d][k]);
			first = false;
		}
		fputs(first ? "</text>\n" : ")</text>\n", f);
		y += SVG_LINE;
	}
	return y;
}

int format_map_svg(FILE *f, const struct format_map *m)
{
	unsigned int width = map_width(m), digits = 1, label, rows, legend_lines, w, h, y;
	struct map_summary s;
	char size[32];
	uint32_t n;
	int err;

	err = map_summarize(m, &s);
	if (err)
		return err;
	for (n = m->nr_frames ? m->nr_frames - 1 : 0; n >= 10; n /= 10)
		digits++;
	label = SVG_MARGIN + digits * SVG_DIGIT + 4;
	rows = (m->nr_frames + width - 1) / width;
	legend_lines =
		KNOWN_KINDS + (s.kinds[FORMAT_FRAME_UNKNOWN] ? 1 : 0) + (unsigned)s.nr_domains;
	w = label + width * SVG_CELL + SVG_MARGIN;
	if (w < SVG_MIN_W)
		w = SVG_MIN_W;
	h = SVG_MARGIN + SVG_LINE + 4 + rows * SVG_CELL + SVG_MARGIN + legend_lines * SVG_LINE +
	    SVG_MARGIN;
	frame_size_text(size, sizeof(size), m->frame_size);
	/* Nothing in the document comes from a client: kinds are ours,
	 * everything else numbers; no text needs escaping. */
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
		"height=\"%u\" viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" "
		"font-size=\"11\">\n"
		"<title>kmallocd pool: %u frames of %s</title>\n"
		"<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#ffffff\"/>\n"
		"<text x=\"%d\" y=\"%d\">kmallocd pool: %u frames of %s, %u per row</text>\n",
		w, h, w, h, m->nr_frames, size, w, h, SVG_MARGIN, SVG_MARGIN + 11, m->nr_frames,
		size, width);
	y = SVG_MARGIN + SVG_LINE + 4;
	svg_cells(f, m, label, y);
	y += rows * SVG_CELL + SVG_MARGIN;
	svg_legend(f, &s, y);
	fputs("</svg>\n", f);
	map_summary_free(&s);
	return stream_status(f);
}
