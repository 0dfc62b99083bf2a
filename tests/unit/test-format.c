// SPDX-License-Identifier: MIT
/*
 * test-format.c - unit tests of kmctl's format.c. Messages are built by hand
 * (no daemon, no socket) and printed into open_memstream(). The text must be
 * byte for byte what the kernel prints for the matching /proc file, and must
 * read back through the parsers people use on those files: slabtop's sscanf
 * pattern for slabinfo, the "Label: value kB" shape of meminfo. Every --json
 * document goes through a small strict JSON checker of our own (RFC 8259
 * grammar, UTF-8) and is parsed back with json-c: its members, in order, their
 * types (integers stay integers, up to UINT64_MAX) and values must be the
 * message's, and strings from clients must come back as valid UTF-8.
 * `kmctl stats` has /proc/vmstat's shape: one "name value" per line.
 */
#include "config.h"
#include "format.h"

#include <check.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "kmalloc.pb-c.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

struct out {
	char *data;
	size_t len;
	FILE *f;
};

static FILE *out_open(struct out *o)
{
	memset(o, 0, sizeof(*o));
	o->f = open_memstream(&o->data, &o->len);
	ck_assert_ptr_nonnull(o->f);
	return o->f;
}

static char *out_close(struct out *o)
{
	ck_assert_int_eq(fclose(o->f), 0);
	return o->data;
}

static char *meminfo_text(const Kmalloc__Meminfo *mi, bool json)
{
	struct out o;

	ck_assert_int_eq(format_meminfo(out_open(&o), mi, json), 0);
	return out_close(&o);
}

static char *table_text(int (*fn)(FILE *, const struct format_table *, bool),
			const struct format_table *t, bool json)
{
	struct out o;

	ck_assert_int_eq(fn(out_open(&o), t, json), 0);
	return out_close(&o);
}

/* A pool as the daemon would describe it: 64 MiB, 2 MiB frames. */
static void sample_meminfo(Kmalloc__Meminfo *mi, bool hugetlb)
{
	kmalloc__meminfo__init(mi);
	mi->total = 64ull << 20;
	mi->free = 56ull << 20;
	mi->available = 58ull << 20;
	mi->slab = 3ull << 20;
	mi->slab_reclaimable = 1ull << 20;
	mi->slab_unreclaimable = 2ull << 20;
	mi->vmalloc_used = 4ull << 20;
	mi->reserve = 2ull << 20;
	mi->frame_size = 2ull << 20;
	mi->hugetlb = hugetlb;
	mi->frames_total = 32;
	mi->frames_free = 28;
	mi->watermark_low = 4ull << 20;
	mi->watermark_high = 6ull << 20;
	mi->domains = 2;
	mi->clients = 3;
	mi->grants = 17;
}

/* ------------------------------------------------------------------------ */
/* A strict JSON checker                                                    */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *json_string(const char *p)
{
	const unsigned char *s = (const unsigned char *)p;
	int i;

	if (*s++ != '"')
		return NULL;
	while (*s != '"') {
		if (*s < 0x20)
			return NULL;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
						return NULL;
				s += 5;
			} else if (*s && strchr("\"\\/bfnrt", *s)) {
				s++;
			} else {
				return NULL;
			}
		} else if (*s >= 0x80) {
			int len = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : *s >= 0xc2 ? 2 : 0;
			/* No overlong forms, surrogates or code points above U+10FFFF. */
			unsigned char lo = *s == 0xe0 ? 0xa0 : *s == 0xf0 ? 0x90 : 0x80;
			unsigned char hi = *s == 0xed ? 0x9f : *s == 0xf4 ? 0x8f : 0xbf;

			if (!len || *s > 0xf4 || s[1] < lo || s[1] > hi)
				return NULL;
			for (i = 2; i < len; i++)
				if ((s[i] & 0xc0) != 0x80)
					return NULL;
			s += len;
		} else {
			s++;
		}
	}
	return (const char *)s + 1;
}

static const char *json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *json_members(const char *p, int depth, char close, bool object)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			p = json_string(json_ws(p));
			if (!p)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = json_value(p, depth + 1);
		if (!p)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{':
		return json_members(p, depth, '}', true);
	case '[':
		return json_members(p, depth, ']', false);
	case '"':
		return json_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return json_number(p);
	}
}

static bool json_valid(const char *doc)
{
	const char *end = json_value(doc, 0);

	return end && *json_ws(end) == '\0';
}

static void assert_json(const char *doc)
{
	ck_assert_msg(json_valid(doc), "invalid JSON:\n%s", doc);
}

START_TEST(test_json_checker)
{
	/* The checker itself must reject what it is meant to catch. */
	ck_assert(json_valid("{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\"]}"));
	ck_assert(json_valid("[]"));
	ck_assert(!json_valid("[1,]"));
	ck_assert(!json_valid("{\"a\" 1}"));
	ck_assert(!json_valid("\"a\nb\""));
	ck_assert(!json_valid("\"\\x\""));
	ck_assert(!json_valid("\"\xff\""));
	ck_assert(!json_valid("\"\xc3\""));
	ck_assert(!json_valid("\"\xe0\x80\xaf\""));	/* overlong */
	ck_assert(!json_valid("\"\xed\xa0\x80\""));	/* a surrogate */
	ck_assert(!json_valid("\"\xf4\x90\x80\x80\"")); /* above U+10FFFF */
	ck_assert(json_valid("\"\x7f \xef\xbf\xbd \xf4\x8f\xbf\xbf\""));
	ck_assert(!json_valid("01"));
	ck_assert(!json_valid("[1] 2"));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reading documents back with json-c                                       */

/* Parses @doc, which must pass our checker and json-c's strict, UTF-8
 * checking parser as one value of @type. Put the result with json_object_put. */
static json_object *parse_json(const char *doc, enum json_type type)
{
	json_tokener *tok = json_tokener_new();
	size_t len = strlen(doc);
	json_object *j;

	assert_json(doc);
	ck_assert_ptr_nonnull(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	j = json_tokener_parse_ex(tok, doc, (int)len);
	ck_assert_msg(j, "json-c: %s:\n%s", json_tokener_error_desc(json_tokener_get_error(tok)),
		      doc);
	/* All of it read (strict mode allows trailing blanks, and only those);
	 * the document ends in one newline. */
	ck_assert_uint_eq(json_tokener_get_parse_end(tok), len);
	ck_assert_msg(len >= 2 && doc[len - 1] == '\n' && strchr("}]", doc[len - 2]),
		      "not one document and a newline:\n%s", doc);
	json_tokener_free(tok);
	ck_assert_msg(json_object_is_type(j, type), "a %s, not a %s:\n%s",
		      json_type_to_name(json_object_get_type(j)), json_type_to_name(type), doc);
	return j;
}

static json_object *member(json_object *obj, const char *key, enum json_type type)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(obj, key, &v), "no \"%s\" in %s", key,
		      json_object_to_json_string(obj));
	ck_assert_msg(json_object_is_type(v, type), "\"%s\" is a %s, not a %s", key,
		      json_type_to_name(json_object_get_type(v)), json_type_to_name(type));
	return v;
}

/* An integer member: written without fraction or exponent. */
static uint64_t member_u64(json_object *obj, const char *key)
{
	return json_object_get_uint64(member(obj, key, json_type_int));
}

static const char *member_str(json_object *obj, const char *key)
{
	return json_object_get_string(member(obj, key, json_type_string));
}

static bool member_bool(json_object *obj, const char *key)
{
	return json_object_get_boolean(member(obj, key, json_type_boolean));
}

/* Element @i of the array @arr, an object. */
static json_object *row_at(json_object *arr, size_t i)
{
	json_object *row = json_object_array_get_idx(arr, i);

	ck_assert_msg(json_object_is_type(row, json_type_object), "element %zu is not an object",
		      i);
	return row;
}

/* @obj has exactly the members @keys (NULL-terminated), in that order: what
 * scripts read from kmctl --json does not change. */
static void assert_keys(json_object *obj, const char *const *keys)
{
	struct json_object_iterator it = json_object_iter_begin(obj);
	struct json_object_iterator end = json_object_iter_end(obj);
	size_t i = 0;

	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), i++) {
		ck_assert_msg(keys[i], "unexpected member \"%s\"", json_object_iter_peek_name(&it));
		ck_assert_str_eq(json_object_iter_peek_name(&it), keys[i]);
	}
	ck_assert_msg(!keys[i], "member \"%s\" missing", keys[i]);
}

static const char *const meminfo_keys[] = { "total",
					    "free",
					    "available",
					    "slab",
					    "slab_reclaimable",
					    "slab_unreclaimable",
					    "vmalloc_total",
					    "vmalloc_used",
					    "reserve",
					    "watermark_low",
					    "watermark_high",
					    "backing",
					    "hugetlb",
					    "frame_size",
					    "frames_total",
					    "frames_free",
					    "domains",
					    "clients",
					    "grants",
					    "quarantined",
					    NULL };
static const char *const slab_keys[] = { "name",	 "active_objs", "num_objs",
					 "objsize",	 "objperslab",	"pagesperslab",
					 "active_slabs", "num_slabs",	NULL };
static const char *const buddy_keys[] = { "node", "zone", "nr_free", NULL };
static const char *const vmalloc_keys[] = { "start", "end",    "size", "caller",  "pages", "pid",
					    "grant", "domain", "comm", "holders", NULL };
static const char *const client_keys[] = { "pid",    "uid",   "name",  "domain",  "conn",
					   "grants", "bytes", "admin", "closing", NULL };
static const char *const limit_keys[] = {
	"uid",	      "domain",	    "connections", "max_connections", "grants",
	"max_grants", "bytes",	    "max_bytes",   "handles",	      "max_handles",
	"refusals",   "privileged", NULL
};
static const char *const top_keys[] = { "slab", "meminfo", "clients", NULL };
static const char *const top_slab_keys[] = { "active_objs",  "total_objs",    "active_slabs",
					     "total_slabs",  "active_caches", "total_caches",
					     "active_size",  "total_size",    "min_obj_size",
					     "avg_obj_size", "max_obj_size",  NULL };

/* Checks the members of a meminfo object against @mi. */
static void check_meminfo_json(json_object *o, const Kmalloc__Meminfo *mi)
{
	const struct {
		const char *key;
		uint64_t v;
	} want[] = {
		{ "total", mi->total },
		{ "free", mi->free },
		{ "available", mi->available },
		{ "slab", mi->slab },
		{ "slab_reclaimable", mi->slab_reclaimable },
		{ "slab_unreclaimable", mi->slab_unreclaimable },
		{ "vmalloc_total", mi->total },
		{ "vmalloc_used", mi->vmalloc_used },
		{ "reserve", mi->reserve },
		{ "watermark_low", mi->watermark_low },
		{ "watermark_high", mi->watermark_high },
		{ "frame_size", mi->frame_size },
		{ "frames_total", mi->frames_total },
		{ "frames_free", mi->frames_free },
		{ "domains", mi->domains },
		{ "clients", mi->clients },
		{ "grants", mi->grants },
		{ "quarantined", mi->quarantined },
	};
	size_t i;

	assert_keys(o, meminfo_keys);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(member_u64(o, want[i].key) == want[i].v, "\"%s\"", want[i].key);
	ck_assert_str_eq(member_str(o, "backing"), mi->hugetlb ? "hugetlb" : "shmem");
	ck_assert_int_eq(member_bool(o, "hugetlb"), mi->hugetlb);
}

/* ------------------------------------------------------------------------ */
/* meminfo                                                                  */

static const char meminfo_hugetlb[] = "MemTotal:          65536 kB\n"
				      "MemFree:           57344 kB\n"
				      "MemAvailable:      59392 kB\n"
				      "Buffers:               0 kB\n"
				      "Cached:                0 kB\n"
				      "SwapCached:            0 kB\n"
				      "Active:                0 kB\n"
				      "Inactive:              0 kB\n"
				      "SwapTotal:             0 kB\n"
				      "SwapFree:              0 kB\n"
				      "Shmem:                 0 kB\n"
				      "KReclaimable:       1024 kB\n"
				      "Slab:               3072 kB\n"
				      "SReclaimable:       1024 kB\n"
				      "SUnreclaim:         2048 kB\n"
				      "VmallocTotal:      65536 kB\n"
				      "VmallocUsed:        4096 kB\n"
				      "VmallocChunk:          0 kB\n"
				      "HardwareCorrupted:     0 kB\n"
				      "HugePages_Total:      32\n"
				      "HugePages_Free:       28\n"
				      "HugePages_Rsvd:        0\n"
				      "HugePages_Surp:        0\n"
				      "Hugepagesize:       2048 kB\n"
				      "Hugetlb:           65536 kB\n"
				      "Reserve:            2048 kB\n"
				      "WatermarkLow:       4096 kB\n"
				      "WatermarkHigh:      6144 kB\n";

START_TEST(test_meminfo_exact)
{
	Kmalloc__Meminfo mi;
	char *s;

	sample_meminfo(&mi, true);
	s = meminfo_text(&mi, false);
	ck_assert_str_eq(s, meminfo_hugetlb);
	free(s);
}
END_TEST

START_TEST(test_meminfo_shmem)
{
	Kmalloc__Meminfo mi;
	char *s;

	sample_meminfo(&mi, false);
	s = meminfo_text(&mi, false);
	ck_assert_ptr_nonnull(strstr(s, "\nHugePages_Total:       0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nHugePages_Free:        0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nHugepagesize:       2048 kB\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nHugetlb:               0 kB\n"));
	/* The shmem fallback shows as Shmem, the whole pool. */
	ck_assert_ptr_nonnull(strstr(s, "\nShmem:             65536 kB\n"));
	free(s);
}
END_TEST

/* Every line has the /proc/meminfo shape, whatever the magnitudes; kB lines
 * keep the value's right edge at column 24 while it fits in 8 digits. */
START_TEST(test_meminfo_shape)
{
	static const uint64_t totals[] = { 0, 4096, 64ull << 20, 1ull << 40, UINT64_MAX };
	Kmalloc__Meminfo mi;
	regex_t re;
	size_t i;

	ck_assert_int_eq(
		regcomp(&re, "^[A-Za-z_()]+:[[:space:]]+[0-9]+( kB)?$", REG_EXTENDED | REG_NOSUB),
		0);
	for (i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		char *s, *line, *save = NULL;
		int lines = 0;

		sample_meminfo(&mi, i & 1);
		mi.total = totals[i];
		s = meminfo_text(&mi, false);
		ck_assert_int_eq(s[strlen(s) - 1], '\n');
		for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			size_t len = strlen(line);

			lines++;
			ck_assert_msg(!regexec(&re, line, 0, NULL, 0), "bad line '%s'", line);
			if (!strncmp(line, "HardwareCorrupted: ", 19)) {
				/* fs/proc/meminfo.c prints it with its own "%5lu kB". */
				ck_assert_uint_ge(len, 19 + 5 + 3);
			} else if (len > 3 && !strcmp(line + len - 3, " kB")) {
				const char *colon = strchr(line, ':');

				ck_assert_uint_ge(len, 16 + 8 + 3);
				ck_assert_msg(len == 16 + 8 + 3 || line[15] == ' ',
					      "label not padded to 16: '%s'", line);
				ck_assert_uint_le((size_t)(colon - line), 15);
			} else {
				/* HugePages_*: label + value in 16 + 3 + %5lu. */
				ck_assert_uint_eq(len, 24);
			}
		}
		ck_assert_int_eq(lines, 28);
		free(s);
	}
	regfree(&re);
}
END_TEST

/* The document kmctl has always printed for meminfo, byte for byte. */
static const char meminfo_hugetlb_json[] = "{\n"
					   "  \"total\": 67108864,\n"
					   "  \"free\": 58720256,\n"
					   "  \"available\": 60817408,\n"
					   "  \"slab\": 3145728,\n"
					   "  \"slab_reclaimable\": 1048576,\n"
					   "  \"slab_unreclaimable\": 2097152,\n"
					   "  \"vmalloc_total\": 67108864,\n"
					   "  \"vmalloc_used\": 4194304,\n"
					   "  \"reserve\": 2097152,\n"
					   "  \"watermark_low\": 4194304,\n"
					   "  \"watermark_high\": 6291456,\n"
					   "  \"backing\": \"hugetlb\",\n"
					   "  \"hugetlb\": true,\n"
					   "  \"frame_size\": 2097152,\n"
					   "  \"frames_total\": 32,\n"
					   "  \"frames_free\": 28,\n"
					   "  \"domains\": 2,\n"
					   "  \"clients\": 3,\n"
					   "  \"grants\": 17,\n"
					   "  \"quarantined\": 0\n"
					   "}\n";

START_TEST(test_meminfo_json)
{
	Kmalloc__Meminfo mi;
	json_object *j;
	char *s;

	sample_meminfo(&mi, true);
	s = meminfo_text(&mi, true);
	ck_assert_str_eq(s, meminfo_hugetlb_json);
	j = parse_json(s, json_type_object);
	check_meminfo_json(j, &mi);
	json_object_put(j);
	free(s);

	sample_meminfo(&mi, false);
	s = meminfo_text(&mi, true);
	j = parse_json(s, json_type_object);
	check_meminfo_json(j, &mi);
	json_object_put(j);
	free(s);

	/* The largest values come back exact, as integers. */
	mi.total = mi.free = mi.available = mi.slab = UINT64_MAX;
	mi.slab_reclaimable = mi.slab_unreclaimable = mi.vmalloc_used = UINT64_MAX;
	mi.reserve = mi.watermark_low = mi.watermark_high = mi.frame_size = UINT64_MAX;
	mi.frames_total = mi.frames_free = mi.grants = mi.quarantined = UINT64_MAX;
	mi.domains = mi.clients = UINT32_MAX;
	s = meminfo_text(&mi, true);
	ck_assert_ptr_nonnull(strstr(s, "\"total\": 18446744073709551615,"));
	ck_assert_ptr_nonnull(strstr(s, "\"domains\": 4294967295,"));
	j = parse_json(s, json_type_object);
	check_meminfo_json(j, &mi);
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* slabinfo                                                                 */

static const char slab_header[] =
	"slabinfo - version: 2.1\n"
	"# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
	"tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> "
	"<sharedavail>\n";

static const struct {
	const char *name;
	uint64_t active, num;
	uint32_t objsize, perslab, pages;
	uint64_t slabs;
} slab_rows[] = {
	{ "kmalloc-512", 5906, 5984, 512, 16, 2, 374 },
	{ "kmalloc-8", 0, 0, 8, 512, 1, 0 },
	{ "kmalloc-8k", 12, 16, 8192, 4, 8, 4 },
	{ "kmalloc-rcl-192", 1, 21, 192, 21, 1, 1 },
	{ "a-cache-name-longer-than-17", 4000000000u, 4000000000u, 64, 64, 1, 62500000 },
};

static void build_slab_page(Kmalloc__InspectReply *page, Kmalloc__SlabRow *rows,
			    Kmalloc__SlabRow **ptrs, size_t from, size_t n)
{
	size_t i;

	kmalloc__inspect_reply__init(page);
	page->table = KMALLOC__INSPECT__TABLE__TABLE_SLABINFO;
	for (i = 0; i < n; i++) {
		kmalloc__slab_row__init(&rows[i]);
		rows[i].name = (char *)slab_rows[from + i].name;
		rows[i].active_objs = slab_rows[from + i].active;
		rows[i].num_objs = slab_rows[from + i].num;
		rows[i].objsize = slab_rows[from + i].objsize;
		rows[i].objperslab = slab_rows[from + i].perslab;
		rows[i].pagesperslab = slab_rows[from + i].pages;
		rows[i].num_slabs = slab_rows[from + i].slabs;
		ptrs[i] = &rows[i];
	}
	page->n_slabs = n;
	page->slabs = ptrs;
}

#define NR_SLAB_ROWS (sizeof(slab_rows) / sizeof(slab_rows[0]))

/* The rows split over two pages, as the daemon pages them. */
struct slab_fixture {
	Kmalloc__InspectReply pages[2];
	Kmalloc__InspectReply *page_ptrs[2];
	Kmalloc__SlabRow rows[NR_SLAB_ROWS];
	Kmalloc__SlabRow *ptrs[NR_SLAB_ROWS];
	struct format_table t;
};

static void slab_fixture_init(struct slab_fixture *fx)
{
	build_slab_page(&fx->pages[0], fx->rows, fx->ptrs, 0, 2);
	build_slab_page(&fx->pages[1], fx->rows + 2, fx->ptrs + 2, 2, NR_SLAB_ROWS - 2);
	fx->page_ptrs[0] = &fx->pages[0];
	fx->page_ptrs[1] = &fx->pages[1];
	fx->t.pages = fx->page_ptrs;
	fx->t.nr_pages = 2;
}

START_TEST(test_slabinfo_exact)
{
	struct slab_fixture fx;
	char *s;

	slab_fixture_init(&fx);
	fx.t.nr_pages = 1;
	fx.pages[0].n_slabs = 1;
	s = table_text(format_slabinfo, &fx.t, false);
	/* A row as mm/slab_common.c: cache_show() prints it. */
	ck_assert_str_eq(
		s, "slabinfo - version: 2.1\n"
		   "# name            <active_objs> <num_objs> <objsize> <objperslab> "
		   "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : "
		   "slabdata <active_slabs> <num_slabs> <sharedavail>\n"
		   "kmalloc-512         5906   5984    512   16    2 : tunables    0    0    0 : "
		   "slabdata    374    374      0\n");
	free(s);
}
END_TEST

/* procps-ng library/slabinfo.c: parse_slabinfo20() reads every row back. */
START_TEST(test_slabinfo_slabtop_parse)
{
	struct slab_fixture fx;
	char *s, *line, *save = NULL;
	size_t i = 0;
	int major, minor;

	slab_fixture_init(&fx);
	s = table_text(format_slabinfo, &fx.t, false);
	ck_assert_int_eq(strncmp(s, slab_header, strlen(slab_header)), 0);
	ck_assert_int_eq(sscanf(s, "slabinfo - version: %d.%d", &major, &minor), 2);
	ck_assert_int_eq(major, 2);
	ck_assert_int_eq(minor, 1);
	for (line = strtok_r(s + strlen(slab_header), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		unsigned int active, num, size, perslab, pages, aslabs, nslabs;
		char name[129];

		ck_assert_uint_lt(i, NR_SLAB_ROWS);
		ck_assert_int_eq(sscanf(line,
					"%128s %u %u %u %u %u : tunables %*u %*u %*u : "
					"slabdata %u %u %*u",
					name, &active, &num, &size, &perslab, &pages, &aslabs,
					&nslabs),
				 8);
		ck_assert_str_eq(name, slab_rows[i].name);
		ck_assert_uint_eq(active, slab_rows[i].active);
		ck_assert_uint_eq(num, slab_rows[i].num);
		ck_assert_uint_eq(size, slab_rows[i].objsize);
		ck_assert_uint_eq(perslab, slab_rows[i].perslab);
		ck_assert_uint_eq(pages, slab_rows[i].pages);
		ck_assert_uint_eq(aslabs, slab_rows[i].slabs);
		ck_assert_uint_eq(nslabs, slab_rows[i].slabs);
		/* The kernel's field widths: name padded to 17. */
		if (strlen(name) <= 17)
			ck_assert_int_eq(line[17], ' ');
	}
	ck_assert_uint_eq(i, NR_SLAB_ROWS);
	free(s);
}
END_TEST

/* A hostile or empty name must not change the number of fields. */
START_TEST(test_slabinfo_odd_names)
{
	struct slab_fixture fx;
	char *s, *row;
	char name[129];
	unsigned int active;

	slab_fixture_init(&fx);
	fx.t.nr_pages = 1;
	fx.pages[0].n_slabs = 1;
	fx.rows[0].name = "bad name\nx";
	s = table_text(format_slabinfo, &fx.t, false);
	row = s + strlen(slab_header);
	ck_assert_int_eq(sscanf(row, "%128s %u", name, &active), 2);
	ck_assert_str_eq(name, "bad?name?x");
	ck_assert_uint_eq(active, 5906);
	free(s);
	fx.rows[0].name = "";
	s = table_text(format_slabinfo, &fx.t, false);
	ck_assert_int_eq(sscanf(s + strlen(slab_header), "%128s %u", name, &active), 2);
	free(s);
}
END_TEST

START_TEST(test_slabinfo_json)
{
	struct slab_fixture fx;
	json_object *j, *row;
	size_t i;
	char *s;

	slab_fixture_init(&fx);
	s = table_text(format_slabinfo, &fx.t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), NR_SLAB_ROWS);
	for (i = 0; i < NR_SLAB_ROWS; i++) {
		row = row_at(j, i);
		assert_keys(row, slab_keys);
		ck_assert_str_eq(member_str(row, "name"), slab_rows[i].name);
		ck_assert_uint_eq(member_u64(row, "active_objs"), slab_rows[i].active);
		ck_assert_uint_eq(member_u64(row, "num_objs"), slab_rows[i].num);
		ck_assert_uint_eq(member_u64(row, "objsize"), slab_rows[i].objsize);
		ck_assert_uint_eq(member_u64(row, "objperslab"), slab_rows[i].perslab);
		ck_assert_uint_eq(member_u64(row, "pagesperslab"), slab_rows[i].pages);
		ck_assert_uint_eq(member_u64(row, "active_slabs"), slab_rows[i].slabs);
		ck_assert_uint_eq(member_u64(row, "num_slabs"), slab_rows[i].slabs);
	}
	json_object_put(j);
	free(s);
	fx.t.nr_pages = 0;
	s = table_text(format_slabinfo, &fx.t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 0);
	json_object_put(j);
	free(s);
	s = table_text(format_slabinfo, &fx.t, false);
	ck_assert_str_eq(s, slab_header);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* buddyinfo                                                                */

START_TEST(test_buddyinfo_exact)
{
	static uint64_t normal[] = { 1822, 1189, 1348, 823, 501, 290, 136, 100, 53, 27, 102 };
	uint64_t partial[] = { 3, 0, 1 };
	Kmalloc__BuddyRow rows[2], *ptrs[2] = { &rows[0], &rows[1] };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
	json_object *j, *row, *nr_free;
	size_t i, o;
	char *s;

	kmalloc__inspect_reply__init(&page);
	kmalloc__buddy_row__init(&rows[0]);
	kmalloc__buddy_row__init(&rows[1]);
	rows[0].zone = "Normal";
	rows[0].n_nr_free = 11;
	rows[0].nr_free = normal;
	rows[1].zone = "uid1000";
	rows[1].n_nr_free = 3;
	rows[1].nr_free = partial;
	page.n_buddy = 2;
	page.buddy = ptrs;
	s = table_text(format_buddyinfo, &t, false);
	/* A line as mm/vmstat.c: frag_show_print() prints it, trailing space included. */
	ck_assert_str_eq(
		s, "Node 0, zone   Normal   1822   1189   1348    823    501    290    136    100"
		   "     53     27    102 \n"
		   "Node 0, zone  uid1000      3      0      1      0      0      0      0      0"
		   "      0      0      0 \n");
	free(s);
	partial[1] = UINT64_MAX; /* counts come back exact */
	s = table_text(format_buddyinfo, &t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 2);
	for (i = 0; i < 2; i++) {
		row = row_at(j, i);
		assert_keys(row, buddy_keys);
		ck_assert_uint_eq(member_u64(row, "node"), 0);
		ck_assert_str_eq(member_str(row, "zone"), rows[i].zone);
		nr_free = member(row, "nr_free", json_type_array);
		ck_assert_uint_eq(json_object_array_length(nr_free), rows[i].n_nr_free);
		for (o = 0; o < rows[i].n_nr_free; o++) {
			json_object *v = json_object_array_get_idx(nr_free, o);

			ck_assert(json_object_is_type(v, json_type_int));
			ck_assert_uint_eq(json_object_get_uint64(v), rows[i].nr_free[o]);
		}
	}
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* vmallocinfo                                                              */

/* A fabricated /proc lookup: pid 42 runs "realcomm", nothing else is known. */
static const char *fake_comm(void *ctx, uint32_t pid)
{
	(*(int *)ctx)++;
	return pid == 42 ? "realcomm" : NULL;
}

/* The --json form of the three rows test_vmallocinfo prints. */
static void check_vmallocinfo_json(const struct format_table *t, const Kmalloc__VmallocRow *rows)
{
	json_object *j, *row;
	size_t i;
	char *s;

	s = table_text(format_vmallocinfo, t, true);
	/* '/' is not escaped: a caller reads as the kernel's "func+0x10/0x40". */
	ck_assert_ptr_nonnull(strstr(s, "\"caller\": \"km_test_caller+0x10/0x40\""));
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 3);
	for (i = 0; i < 3; i++) {
		row = row_at(j, i);
		assert_keys(row, vmalloc_keys);
		ck_assert_uint_eq(member_u64(row, "start"), rows[i].start);
		ck_assert_uint_eq(member_u64(row, "end"), rows[i].start + rows[i].size);
		ck_assert_uint_eq(member_u64(row, "size"), rows[i].size);
		ck_assert_str_eq(member_str(row, "caller"), rows[i].caller ? rows[i].caller : "");
		ck_assert_uint_eq(member_u64(row, "pages"), rows[i].pages);
		ck_assert_uint_eq(member_u64(row, "pid"), rows[i].pid);
		ck_assert_uint_eq(member_u64(row, "grant"), rows[i].grant);
		ck_assert_uint_eq(member_u64(row, "domain"), rows[i].domain);
		ck_assert_str_eq(member_str(row, "comm"), rows[i].name ? rows[i].name : "");
		ck_assert_uint_eq(member_u64(row, "holders"), rows[i].holders);
	}
	ck_assert_uint_eq(member_u64(row_at(j, 0), "end"), 139716166942720ull);
	ck_assert_str_eq(member_str(row_at(j, 2), "caller"), "evil caller\n\"x\"");
	ck_assert_uint_eq(member_u64(row_at(j, 2), "grant"), UINT64_MAX);
	json_object_put(j);
	free(s);
}

START_TEST(test_vmallocinfo)
{
	Kmalloc__VmallocRow rows[3], *ptrs[3] = { &rows[0], &rows[1], &rows[2] };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
	static const char *const want[] = {
		"0x00007f1234000000-0x00007f1234800000 8388608 km_test_caller+0x10/0x40 "
		"pages=1536 vmalloc N0=1536 pid=42 comm=producer shared=3",
		"0x0000000000000000-0x0000000000400000 4194304 pages=512 vmalloc N0=512 pid=0 "
		"comm=?",
		"0x0000000000010000-0x0000000000410000 4194304 evil?caller?\"x\" pages=512 vmalloc "
		"N0=512 pid=7 comm=two?words?",
	};
	char *s, *line, *save = NULL;
	int n = 0, calls = 0;
	regex_t re;
	size_t i;

	kmalloc__inspect_reply__init(&page);
	for (i = 0; i < 3; i++)
		kmalloc__vmalloc_row__init(&rows[i]);
	rows[0].start = 0x7f1234000000;
	rows[0].size = 8ull << 20; /* three frames and the guard */
	rows[0].caller = "km_test_caller+0x10/0x40";
	rows[0].pages = 1536;
	rows[0].pid = 42;
	rows[0].grant = 7;
	rows[0].name = "producer";
	rows[0].holders = 3;	   /* the exporter and two imports */
	rows[1].size = 4ull << 20; /* address unknown, no caller, no owner */
	rows[1].pages = 512;
	rows[1].holders = 1;
	rows[2].start = 0x10000;
	rows[2].size = 4ull << 20;
	rows[2].caller = "evil caller\n\"x\"";
	rows[2].pages = 512;
	rows[2].pid = 7;
	rows[2].name = "two words\n";
	page.n_vmalloc = 3;
	page.vmalloc = ptrs;
	s = table_text(format_vmallocinfo, &t, false);
	/* Tools read /proc/vmallocinfo as: the address range, the size, the
	 * caller, then blank-separated tokens (pages=, vmalloc, N0=, ...):
	 * the owner's tokens come last, one word each. */
	ck_assert_int_eq(regcomp(&re,
				 "^0x[0-9a-f]{16}-0x[0-9a-f]{16} +[0-9]+( [^ =]+)?"
				 "( pages=[0-9]+)? vmalloc( N0=[0-9]+)? pid=[0-9]+ comm=[^ ]+"
				 "( shared=[0-9]+)?$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
		char range[64], caller[64];
		unsigned long size;

		ck_assert_msg(!regexec(&re, line, 0, NULL, 0), "bad line '%s'", line);
		ck_assert_str_eq(line, want[n]);
		/* What a vmallocinfo reader scans first is still there. */
		ck_assert_int_ge(sscanf(line, "%63s %lu %63s", range, &size, caller), 3);
		ck_assert_uint_eq(size, rows[n].size);
	}
	ck_assert_int_eq(n, 3);
	regfree(&re);
	free(s);

	/* A command from /proc wins over the Hello name; pid 0 is not looked up. */
	t.comm = fake_comm;
	t.comm_ctx = &calls;
	s = table_text(format_vmallocinfo, &t, false);
	ck_assert_ptr_nonnull(strstr(s, " pid=42 comm=realcomm shared=3\n"));
	ck_assert_ptr_nonnull(strstr(s, " pid=0 comm=?\n"));
	ck_assert_ptr_nonnull(strstr(s, " pid=7 comm=two?words?\n"));
	ck_assert_int_eq(calls, 2);
	free(s);
	t.comm = NULL;

	rows[2].grant = UINT64_MAX;
	check_vmallocinfo_json(&t, rows);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* shares                                                                   */

struct share_fixture {
	Kmalloc__ShareHolder holders[5];
	Kmalloc__ShareHolder *a_holders[3], *b_holders[1], *c_holders[1];
	Kmalloc__ShareRow rows[4];
	Kmalloc__ShareRow *page0[2], *page1[2];
	Kmalloc__InspectReply pages[2];
	Kmalloc__InspectReply *page_ptrs[2];
	struct format_table t;
};

static void share_holder(Kmalloc__ShareHolder *h, uint32_t pid, uint32_t uid, const char *name,
			 uint64_t grant, bool exporter, bool rdonly)
{
	kmalloc__share_holder__init(h);
	h->pid = pid;
	h->uid = uid;
	h->name = (char *)name;
	h->grant = grant;
	h->exporter = exporter;
	h->rdonly = rdonly;
}

/*
 * Four handles over two pages:
 * 0: a same-domain kmalloc, the exporter and two imports (one read-only),
 *    unrestricted, never expires;
 * 1: a shareable vmalloc area for uid 1001 only, read-only, one use (used),
 *    expiring in 59.9 s; its exporter's name has a blank and a comma;
 * 2: a revoked handle of a slab object, expired too, whose exporter left
 *    (an import holds it);
 * 3: a second handle on share 1, handle id all ones, nobody listed.
 */
/* Rows 2 and 3 of the fixture below (revoked, expired). */
static void share_rows_2_3(struct share_fixture *fx)
{
	Kmalloc__ShareRow *r = fx->rows;

	r[2].handle_id = 300;
	r[2].share = 3;
	r[2].size = 64;
	r[2].kind = "slab";
	r[2].domain = 1;
	r[2].exporter_pid = 999;
	r[2].exporter_uid = 1000;
	r[2].exporter_name = "gone";
	r[2].n_holders = 1;
	r[2].holders = fx->c_holders;
	r[2].max_imports = 3;
	r[2].age_ms = 90061000; /* 1 day 1 h 1 min 1 s */
	r[2].expires_in_ms = -5000;
	r[2].revoked = true;

	r[3].handle_id = UINT64_MAX;
	r[3].share = 1;
	r[3].size = 4096;
	r[3].kind = "kmalloc";
	r[3].domain = 1;
	r[3].exporter_pid = 1234;
	r[3].exporter_uid = 1000;
	r[3].exporter_name = "producer";
	r[3].expires_in_ms = 0; /* expired this very millisecond */
	r[3].age_ms = 61000;
}

static void share_fixture_init(struct share_fixture *fx)
{
	Kmalloc__ShareRow *r = fx->rows;
	int i;

	memset(fx, 0, sizeof(*fx));
	share_holder(&fx->holders[0], 1234, 1000, "producer", 10, true, false);
	share_holder(&fx->holders[1], 1240, 1000, "consumer", 11, false, false);
	share_holder(&fx->holders[2], 1300, 1001, "viewer", 12, false, true);
	share_holder(&fx->holders[3], 77, 0, "two words,x", 13, true, false);
	share_holder(&fx->holders[4], 1240, 1000, "consumer", 14, false, false);
	for (i = 0; i < 3; i++)
		fx->a_holders[i] = &fx->holders[i];
	fx->b_holders[0] = &fx->holders[3];
	fx->c_holders[0] = &fx->holders[4];
	for (i = 0; i < 4; i++)
		kmalloc__share_row__init(&r[i]);

	r[0].handle_id = 1;
	r[0].share = 1;
	r[0].size = 4096;
	r[0].kind = "kmalloc";
	r[0].domain = 1;
	r[0].exporter_pid = 1234;
	r[0].exporter_uid = 1000;
	r[0].exporter_name = "producer";
	r[0].n_holders = 3;
	r[0].holders = fx->a_holders;
	r[0].imports = 2;
	r[0].age_ms = 12345;
	r[0].expires_in_ms = -1;

	r[1].handle_id = 0x0123456789abcdefull;
	r[1].share = 2;
	r[1].size = 8ull << 20;
	r[1].kind = "shared-vmalloc";
	r[1].domain = 2;
	r[1].exporter_pid = 77;
	r[1].exporter_name = "two words,x";
	r[1].n_holders = 1;
	r[1].holders = fx->b_holders;
	r[1].flags = 3; /* EXPORT_UID | EXPORT_RDONLY */
	r[1].uid = 1001;
	r[1].imports = 1;
	r[1].max_imports = 1;
	r[1].age_ms = 3723000; /* 1 h 2 min 3 s */
	r[1].expires_in_ms = 59999;

	share_rows_2_3(fx);

	fx->page0[0] = &r[0];
	fx->page0[1] = &r[1];
	fx->page1[0] = &r[2];
	fx->page1[1] = &r[3];
	for (i = 0; i < 2; i++) {
		kmalloc__inspect_reply__init(&fx->pages[i]);
		fx->pages[i].table = KMALLOC__INSPECT__TABLE__TABLE_SHARES;
		fx->pages[i].n_shares = 2;
		fx->page_ptrs[i] = &fx->pages[i];
	}
	fx->pages[0].shares = fx->page0;
	fx->pages[0].next_offset = 2;
	fx->pages[1].shares = fx->page1;
	fx->t.pages = fx->page_ptrs;
	fx->t.nr_pages = 2;
}

static const char shares_want[] =
	"# handle         share kind                 size domain exporter                 state   "
	"    age expires flags            holders\n"
	"0100000000000000     1 kmalloc              4096      1 1234:producer(1000)      live    "
	"  12.3s   never uses=2           "
	"*1234:producer(1000),1240:consumer(1000),1300:viewer(1001):ro\n"
	"efcdab8967452301     2 shared-vmalloc    8388608      2 77:two?words?x(0)        used-up "
	"  1h02m   59.9s uid=1001,rdonly,uses=1/1 *77:two?words?x(0)\n"
	"2c01000000000000     3 slab                   64      1 999:gone(1000)           revoked "
	"  1d01h       - uses=0/3         1240:consumer(1000)\n"
	"ffffffffffffffff     1 kmalloc              4096      1 1234:producer(1000)      expired "
	"  1m01s       - uses=0           -\n";

START_TEST(test_shares_text)
{
	struct share_fixture fx;
	int calls = 0;
	char *s, *line, *save = NULL;
	int n = 0;

	share_fixture_init(&fx);
	s = table_text(format_shares, &fx.t, false);
	ck_assert_str_eq(s, shares_want);
	/* Every line has the header's eleven fields, one word each. */
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
		char f[12][128];

		ck_assert_int_eq(sscanf(line,
					"%127s %127s %127s %127s %127s %127s %127s %127s "
					"%127s %127s %127s %127s",
					f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9],
					f[10], f[11]),
				 n == 0 ? 12 : 11); /* the header's "#" is a word of its own */
	}
	ck_assert_int_eq(n, 5);
	free(s);

	/* Commands from /proc name the holders, and the exporter while it
	 * holds the share (pid 1234 is not 42: no change there), never an
	 * exporter that left, whose pid may be another process's now. */
	fx.holders[0].pid = 42;
	fx.rows[0].exporter_pid = 42;
	fx.rows[2].exporter_pid = 42;
	fx.t.comm = fake_comm;
	fx.t.comm_ctx = &calls;
	s = table_text(format_shares, &fx.t, false);
	ck_assert_ptr_nonnull(strstr(s, " 42:realcomm(1000)        live "));
	ck_assert_ptr_nonnull(strstr(s, " *42:realcomm(1000),1240:consumer(1000),"));
	ck_assert_ptr_nonnull(strstr(s, " 42:gone(1000)            revoked "));
	ck_assert_int_gt(calls, 0);
	free(s);

	/* No handles: the header alone. */
	fx.pages[0].n_shares = 0;
	fx.pages[1].n_shares = 0;
	s = table_text(format_shares, &fx.t, false);
	ck_assert_str_eq(s,
			 "# handle         share kind                 size domain exporter       "
			 "          state       age expires flags            holders\n");
	free(s);
}
END_TEST

static const char *const share_keys[] = { "handle",  "handle_id", "share",	   "kind",
					  "size",    "domain",	  "exporter",	   "state",
					  "revoked", "age_ms",	  "expires_in_ms", "flags",
					  "uid",     "rdonly",	  "imports",	   "max_imports",
					  "holders", NULL };
static const char *const share_exporter_keys[] = { "pid", "uid", "comm", NULL };
static const char *const share_holder_keys[] = { "pid",	     "uid",    "comm", "grant",
						 "exporter", "rdonly", NULL };

START_TEST(test_shares_json)
{
	static const char *const handles[] = { "0100000000000000", "efcdab8967452301",
					       "2c01000000000000", "ffffffffffffffff" };
	static const char *const states[] = { "live", "used-up", "revoked", "expired" };
	struct share_fixture fx;
	json_object *j, *rows, *row, *holders, *h, *v;
	size_t i, k;
	char *s;

	share_fixture_init(&fx);
	s = table_text(format_shares, &fx.t, true);
	j = parse_json(s, json_type_object);
	rows = member(j, "rows", json_type_array);
	ck_assert_uint_eq(json_object_array_length(rows), 4);
	for (i = 0; i < 4; i++) {
		const Kmalloc__ShareRow *r = &fx.rows[i];

		row = row_at(rows, i);
		assert_keys(row, share_keys);
		ck_assert_str_eq(member_str(row, "handle"), handles[i]);
		ck_assert_uint_eq(member_u64(row, "handle_id"), r->handle_id);
		ck_assert_uint_eq(member_u64(row, "share"), r->share);
		ck_assert_str_eq(member_str(row, "kind"), r->kind);
		ck_assert_uint_eq(member_u64(row, "size"), r->size);
		ck_assert_uint_eq(member_u64(row, "domain"), r->domain);
		v = member(row, "exporter", json_type_object);
		assert_keys(v, share_exporter_keys);
		ck_assert_uint_eq(member_u64(v, "pid"), r->exporter_pid);
		ck_assert_uint_eq(member_u64(v, "uid"), r->exporter_uid);
		ck_assert_str_eq(member_str(v, "comm"), r->exporter_name);
		ck_assert_str_eq(member_str(row, "state"), states[i]);
		ck_assert_int_eq(member_bool(row, "revoked"), r->revoked);
		ck_assert_uint_eq(member_u64(row, "age_ms"), r->age_ms);
		/* Never: null; else the daemon's figure, negative once expired. */
		v = member(row, "expires_in_ms", i == 0 ? json_type_null : json_type_int);
		if (i)
			ck_assert_int_eq(json_object_get_int64(v), r->expires_in_ms);
		ck_assert_uint_eq(member_u64(row, "flags"), r->flags);
		v = member(row, "uid", i == 1 ? json_type_int : json_type_null);
		if (i == 1)
			ck_assert_uint_eq(json_object_get_uint64(v), 1001);
		ck_assert_int_eq(member_bool(row, "rdonly"), i == 1);
		ck_assert_uint_eq(member_u64(row, "imports"), r->imports);
		ck_assert_uint_eq(member_u64(row, "max_imports"), r->max_imports);
		holders = member(row, "holders", json_type_array);
		ck_assert_uint_eq(json_object_array_length(holders), r->n_holders);
		for (k = 0; k < r->n_holders; k++) {
			const Kmalloc__ShareHolder *want = r->holders[k];

			h = row_at(holders, k);
			assert_keys(h, share_holder_keys);
			ck_assert_uint_eq(member_u64(h, "pid"), want->pid);
			ck_assert_uint_eq(member_u64(h, "uid"), want->uid);
			ck_assert_str_eq(member_str(h, "comm"), want->name);
			ck_assert_uint_eq(member_u64(h, "grant"), want->grant);
			ck_assert_int_eq(member_bool(h, "exporter"), want->exporter);
			ck_assert_int_eq(member_bool(h, "rdonly"), want->rdonly);
		}
	}
	/* Integers stay exact up to UINT64_MAX. */
	ck_assert_uint_eq(member_u64(row_at(rows, 3), "handle_id"), UINT64_MAX);
	json_object_put(j);
	free(s);

	/* No handles: an empty array, still under "rows". */
	fx.t.nr_pages = 0;
	s = table_text(format_shares, &fx.t, true);
	j = parse_json(s, json_type_object);
	ck_assert_uint_eq(json_object_array_length(member(j, "rows", json_type_array)), 0);
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* map                                                                      */

/*
 * 20 frames in rows of 8: every kind twice in frames 0-15 (in FrameMap
 * order), then two slab frames of domain 11 (a letter in colour), a value
 * this kmctl does not know (9) and a free frame. Domains: 1 and 2, none for
 * free and quarantined frames.
 */
#define MAP_FRAMES 20
static const uint8_t map_kinds[MAP_FRAMES] = { 0, 1, 2, 3, 4, 5, 6, 7, 0, 1,
					       2, 3, 4, 5, 6, 7, 2, 2, 9, 0 };
static const uint32_t map_domains[MAP_FRAMES] = { 0, 1, 1, 1, 2, 2, 0,	2,  0, 1,
						  1, 1, 2, 2, 0, 2, 11, 11, 1, 0 };

static struct format_map sample_map(unsigned int width)
{
	return (struct format_map){ .nr_frames = MAP_FRAMES,
				    .kinds = map_kinds,
				    .domains = map_domains,
				    .frame_size = 2ull << 20,
				    .width = width };
}

static char *map_text(const struct format_map *m, enum format_map_style style)
{
	struct out o;

	ck_assert_int_eq(format_map(out_open(&o), m, style), 0);
	return out_close(&o);
}

static char *map_svg(const struct format_map *m)
{
	struct out o;

	ck_assert_int_eq(format_map_svg(out_open(&o), m), 0);
	return out_close(&o);
}

static const char map_plain_want[] = "pool: 20 frames of 2 MiB, 8 per row\n"
				     " 0 .dsLvSXm\n"
				     " 8 .dsLvSXm\n"
				     "16 ss?.\n"
				     "legend:\n"
				     "  . free (no domain)                        3\n"
				     "  d free, kept by a domain                  2\n"
				     "  s slab                                    4\n"
				     "  L kmalloc-large                           2\n"
				     "  v vmalloc                                 2\n"
				     "  S shared (a memfd of its own)             2\n"
				     "  X quarantined                             2\n"
				     "  m mixed (pages of several kinds)          2\n"
				     "  ? unknown to this kmctl                   1\n"
				     "domain  frames      d      s      L      v      S      X"
				     "      m      ?\n"
				     "     1       7      2      2      2      0      0      0"
				     "      0      1\n"
				     "     2       6      0      0      0      2      2      0"
				     "      2      0\n"
				     "    11       2      0      2      0      0      0      0"
				     "      0      0\n";

START_TEST(test_map_plain)
{
	struct format_map m = sample_map(8);
	char *s, *line, *save = NULL;
	int n = 0;

	s = map_text(&m, FORMAT_MAP_PLAIN);
	ck_assert_str_eq(s, map_plain_want);
	ck_assert_ptr_null(strchr(s, '\033'));
	free(s);

	/* The default width: 64 frames a row, so one row here; no unknown
	 * kind, no "?" line or column. */
	m.width = 0;
	m.kinds = (const uint8_t[MAP_FRAMES]){ 0, 1, 2, 3, 4, 5, 6, 7, 0, 1,
					       2, 3, 4, 5, 6, 7, 2, 2, 0, 0 };
	s = map_text(&m, FORMAT_MAP_PLAIN);
	ck_assert_ptr_nonnull(strstr(s, "pool: 20 frames of 2 MiB, 64 per row\n"
					" 0 .dsLvSXm.dsLvSXmss..\nlegend:\n"));
	ck_assert_ptr_null(strstr(s, "unknown"));
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n++;
	ck_assert_int_eq(n, 2 + 1 + 8 + 1 + 3);
	free(s);

	/* A width past the maximum is the maximum; 4 kB frames say so. */
	m.width = FORMAT_MAP_WIDTH_MAX + 1;
	m.frame_size = 4096;
	s = map_text(&m, FORMAT_MAP_PLAIN);
	ck_assert_ptr_nonnull(strstr(s, "pool: 20 frames of 4 kB, 4096 per row\n"));
	free(s);
}
END_TEST

/* @s without its ANSI SGR sequences (ESC [ ... m). */
static char *strip_sgr(const char *s)
{
	char *out = malloc(strlen(s) + 1), *p = out;

	ck_assert_ptr_nonnull(out);
	while (*s) {
		if (s[0] == '\033' && s[1] == '[') {
			s += 2;
			while (*s && *s != 'm') {
				ck_assert_msg(strchr("0123456789;", *s), "odd SGR byte %#x", *s);
				s++;
			}
			ck_assert_int_eq(*s, 'm');
			s++;
		} else {
			*p++ = *s++;
		}
	}
	*p = '\0';
	return out;
}

START_TEST(test_map_colour)
{
	struct format_map m = sample_map(8);
	char *s, *plain;

	s = map_text(&m, FORMAT_MAP_COLOUR);
	/* Every row of cells ends by resetting the colours. */
	ck_assert_ptr_nonnull(strstr(s, "\n 0 \033[0;2m.\033[0;30;46m1"));
	ck_assert_ptr_nonnull(strstr(s, "\033[0m\n 8 "));
	ck_assert_ptr_nonnull(strstr(s, "\033[0m\n16 "));
	ck_assert_ptr_nonnull(strstr(s, "\033[0m\nlegend:\n"));
	/* One escape per change of kind: the two slab frames of domain 11
	 * share theirs. */
	ck_assert_ptr_nonnull(strstr(s, "16 \033[0;30;42mbb\033[0;97;40m1\033[0;2m.\033[0m\n"));
	/* Without the colours: owned frames show their domain, free and
	 * quarantined ones their kind. */
	plain = strip_sgr(s);
	ck_assert_ptr_nonnull(strstr(plain, "\n 0 .11122X2\n 8 .11122X2\n16 bb1.\n"));
	ck_assert_ptr_nonnull(strstr(plain, "  d free, kept by a domain                  2\n"));
	ck_assert_ptr_nonnull(strstr(plain, "cells of a domain show its number"));
	ck_assert_ptr_nonnull(strstr(plain, "    11       2      0      2      0"));
	free(plain);
	free(s);
}
END_TEST

static const char *const map_keys[] = { "nr_frames", "frame_size", "counts",
					"domains",   "frames",	   NULL };
static const char *const map_count_keys[] = {
	"free",	  "domain-free", "slab",  "kmalloc-large", "vmalloc",
	"shared", "quarantined", "mixed", "unknown",	   NULL
};

START_TEST(test_map_json)
{
	static const char *const names[] = { "free",	      "domain-free", "slab",
					     "kmalloc-large", "vmalloc",     "shared",
					     "quarantined",   "mixed" };
	static const uint64_t counts[] = { 3, 2, 4, 2, 2, 2, 2, 2, 1 };
	static const uint32_t domains[] = { 1, 2, 11 }, domain_frames[] = { 7, 6, 2 };
	struct format_map m = sample_map(8);
	json_object *j, *o, *arr, *row;
	char *s;
	size_t i;

	s = map_text(&m, FORMAT_MAP_JSON);
	j = parse_json(s, json_type_object);
	assert_keys(j, map_keys);
	ck_assert_uint_eq(member_u64(j, "nr_frames"), MAP_FRAMES);
	ck_assert_uint_eq(member_u64(j, "frame_size"), 2ull << 20);
	o = member(j, "counts", json_type_object);
	assert_keys(o, map_count_keys);
	for (i = 0; map_count_keys[i]; i++)
		ck_assert_uint_eq(member_u64(o, map_count_keys[i]), counts[i]);
	arr = member(j, "domains", json_type_array);
	ck_assert_uint_eq(json_object_array_length(arr), 3);
	for (i = 0; i < 3; i++) {
		row = row_at(arr, i);
		ck_assert_uint_eq(member_u64(row, "domain"), domains[i]);
		ck_assert_uint_eq(member_u64(row, "frames"), domain_frames[i]);
		member(row, "counts", json_type_object);
	}
	ck_assert_uint_eq(member_u64(member(row_at(arr, 2), "counts", json_type_object), "slab"),
			  2);
	arr = member(j, "frames", json_type_array);
	ck_assert_uint_eq(json_object_array_length(arr), MAP_FRAMES);
	for (i = 0; i < MAP_FRAMES; i++) {
		row = row_at(arr, i);
		ck_assert_uint_eq(member_u64(row, "frame"), i);
		ck_assert_str_eq(member_str(row, "kind"),
				 map_kinds[i] < 8 ? names[map_kinds[i]] : "unknown");
		ck_assert_uint_eq(member_u64(row, "domain"), map_domains[i]);
	}
	json_object_put(j);
	free(s);

	/* An empty pool: a document all the same. */
	m.nr_frames = 0;
	s = map_text(&m, FORMAT_MAP_JSON);
	j = parse_json(s, json_type_object);
	ck_assert_uint_eq(json_object_array_length(member(j, "frames", json_type_array)), 0);
	ck_assert_uint_eq(json_object_array_length(member(j, "domains", json_type_array)), 0);
	json_object_put(j);
	free(s);
}
END_TEST

/*
 * An XML parser's view of an SVG document, one line each: "root <tag>",
 * then "rect <fill> <title>" for every rect that has a title, "legend
 * <fill>" for those that have none, "text <text>" for every text element.
 * python3's xml.etree (expat) rejects anything not well-formed. Exit 77
 * without python3 or expat.
 */
static const char svg_reader_py[] = "import sys\n"
				    "try:\n"
				    "    import xml.etree.ElementTree as ET\n"
				    "except ImportError:\n"
				    "    sys.exit(77)\n"
				    "root = ET.parse(sys.argv[1]).getroot()\n"
				    "ns = '{http://www.w3.org/2000/svg}'\n"
				    "print('root', root.tag)\n"
				    "for e in root.iter():\n"
				    "    if e.tag == ns + 'rect':\n"
				    "        t = e.find(ns + 'title')\n"
				    "        if t is not None:\n"
				    "            print('rect', e.get('fill'), t.text)\n"
				    "        else:\n"
				    "            print('legend', e.get('fill'))\n"
				    "    elif e.tag == ns + 'text':\n"
				    "        print('text', e.text)\n";

/* Runs svg_reader_py on @doc; its output (malloc'd), or NULL when python3
 * cannot run it. Fails the test when the parser rejects the document. */
static char *svg_parsed(const char *doc)
{
	char path[] = "/tmp/test-format-svg-XXXXXX", cmd[256], buf[4096], *out = NULL;
	size_t len = 0, n;
	FILE *f, *p, *mem;
	int fd, status;

	if (system("python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") != 0)
		return NULL;
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(doc, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "python3 -c \"$SVG_READER\" %s", path);
	ck_assert_int_eq(setenv("SVG_READER", svg_reader_py, 1), 0);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	mem = open_memstream(&out, &len);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, mem);
	status = pclose(p);
	fclose(mem);
	unlink(path);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the SVG is not well-formed XML (status %#x):\n%s", status, doc);
	return out;
}

/* Checks what needs no parser: the prologue, one <rect> with a <title>
 * per frame, the end. */
static void svg_structure(const char *doc, uint32_t nr_frames)
{
	const char *p;
	uint32_t n = 0;

	ck_assert_int_eq(strncmp(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"", 36), 0);
	ck_assert_ptr_nonnull(strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	for (p = doc; (p = strstr(p, "<title>frame ")); p++)
		n++;
	ck_assert_uint_eq(n, nr_frames);
	ck_assert_int_eq(strcmp(doc + strlen(doc) - 7, "</svg>\n"), 0);
	ck_assert_ptr_null(strchr(doc, '\033'));
}

START_TEST(test_map_svg)
{
	static const char *const fills[] = { "#e8e8e8", "#a6cee3", "#33a02c", "#ff7f00",
					     "#6a3d9a", "#1f78b4", "#e31a1c", "#fdbf6f" };
	struct format_map m = sample_map(8);
	char *doc, *parsed, *line, *save = NULL, want[128];
	uint32_t frame = 0;
	int legends = 0, texts = 0;

	doc = map_svg(&m);
	svg_structure(doc, MAP_FRAMES);
	ck_assert_ptr_nonnull(strstr(doc, "<title>frame 4: vmalloc, domain 2</title>"));
	ck_assert_ptr_nonnull(strstr(doc, "<title>frame 0: free</title>"));
	ck_assert_ptr_nonnull(strstr(doc, "<title>frame 18: unknown, domain 1</title>"));
	parsed = svg_parsed(doc);
	if (!parsed) {
		fputs("test_map_svg: python3 with xml.etree missing: structure checked only\n",
		      stderr);
		free(doc);
		return;
	}
	for (line = strtok_r(parsed, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "root ", 5)) {
			ck_assert_str_eq(line, "root {http://www.w3.org/2000/svg}svg");
		} else if (!strncmp(line, "rect ", 5)) {
			uint8_t k = map_kinds[frame];

			ck_assert_uint_lt(frame, MAP_FRAMES);
			snprintf(want, sizeof(want),
				 "rect %s frame %u: ", k < 8 ? fills[k] : "#000000", frame);
			ck_assert_msg(!strncmp(line, want, strlen(want)), "'%s', not '%s...'", line,
				      want);
			frame++;
		} else if (!strncmp(line, "legend ", 7)) {
			legends++;
		} else {
			ck_assert_int_eq(strncmp(line, "text ", 5), 0);
			texts++;
		}
	}
	ck_assert_uint_eq(frame, MAP_FRAMES);
	/* The white background, then one swatch per kind (the unknown one too). */
	ck_assert_int_eq(legends, 1 + 9);
	/* The heading, one label per row, a line per kind and per domain. */
	ck_assert_int_eq(texts, 1 + 3 + 9 + 3);
	free(parsed);
	free(doc);

	/* No frames: still a document. */
	m.nr_frames = 0;
	doc = map_svg(&m);
	svg_structure(doc, 0);
	free(svg_parsed(doc));
	free(doc);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* clients and top                                                          */

struct client_fixture {
	Kmalloc__ClientRow rows[3];
	Kmalloc__ClientRow *ptrs[3];
	Kmalloc__InspectReply pages[2];
	Kmalloc__InspectReply *page_ptrs[2];
	struct format_table t;
};

static void client_fixture_init(struct client_fixture *fx)
{
	static const struct {
		uint32_t pid, uid, domain, conn;
		const char *name;
		uint64_t grants, bytes;
	} c[] = {
		{ 4242, 1000, 1, 3, "small", 2, 4096 },
		{ 77, 0, 0, 1, "kmctl", 0, 0 },
		{ 4194304, 4294967294u, 2, 9, "big\tone \"q\"", 12, 6ull << 30 },
	};

	for (int i = 0; i < 3; i++) {
		kmalloc__client_row__init(&fx->rows[i]);
		fx->rows[i].pid = c[i].pid;
		fx->rows[i].uid = c[i].uid;
		fx->rows[i].domain = c[i].domain;
		fx->rows[i].conn = c[i].conn;
		fx->rows[i].name = (char *)c[i].name;
		fx->rows[i].grants = c[i].grants;
		fx->rows[i].bytes = c[i].bytes;
		fx->ptrs[i] = &fx->rows[i];
	}
	fx->rows[1].admin = true;
	kmalloc__inspect_reply__init(&fx->pages[0]);
	kmalloc__inspect_reply__init(&fx->pages[1]);
	fx->pages[0].n_clients = 2;
	fx->pages[0].clients = fx->ptrs;
	fx->pages[1].n_clients = 1;
	fx->pages[1].clients = fx->ptrs + 2;
	fx->page_ptrs[0] = &fx->pages[0];
	fx->page_ptrs[1] = &fx->pages[1];
	fx->t.pages = fx->page_ptrs;
	fx->t.nr_pages = 2;
}

static void check_client_json(json_object *row, const Kmalloc__ClientRow *c)
{
	assert_keys(row, client_keys);
	ck_assert_uint_eq(member_u64(row, "pid"), c->pid);
	ck_assert_uint_eq(member_u64(row, "uid"), c->uid);
	ck_assert_str_eq(member_str(row, "name"), c->name);
	ck_assert_uint_eq(member_u64(row, "domain"), c->domain);
	ck_assert_uint_eq(member_u64(row, "conn"), c->conn);
	ck_assert_uint_eq(member_u64(row, "grants"), c->grants);
	ck_assert_uint_eq(member_u64(row, "bytes"), c->bytes);
	ck_assert_int_eq(member_bool(row, "admin"), c->admin);
	ck_assert_int_eq(member_bool(row, "closing"), c->closing);
}

START_TEST(test_clients)
{
	struct client_fixture fx;
	json_object *j;
	size_t i;
	char *s;

	client_fixture_init(&fx);
	s = table_text(format_clients, &fx.t, false);
	ck_assert_str_eq(s,
			 "    PID    UID DOMAIN  CONN   GRANTS        BYTES COMMAND\n"
			 "   4242   1000      1     3        2         4096 small\n"
			 "     77      0      0     1        0            0 kmctl (admin)\n"
			 "4194304 4294967294      2     9       12   6442450944 big?one \"q\"\n");
	free(s);
	fx.rows[0].closing = true;
	s = table_text(format_clients, &fx.t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 3);
	/* In the daemon's order, across both pages. */
	for (i = 0; i < 3; i++)
		check_client_json(row_at(j, i), &fx.rows[i]);
	ck_assert_str_eq(member_str(row_at(j, 2), "name"), "big\tone \"q\"");
	json_object_put(j);
	free(s);
	fx.t.nr_pages = 0;
	s = table_text(format_clients, &fx.t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 0);
	json_object_put(j);
	free(s);
}
END_TEST

START_TEST(test_top)
{
	struct client_fixture cfx;
	struct slab_fixture sfx;
	Kmalloc__Meminfo mi;
	json_object *j, *summary, *clients;
	struct out o;
	char *s, *big, *small, *kmctl;

	client_fixture_init(&cfx);
	slab_fixture_init(&sfx);
	sfx.t.nr_pages = 1; /* kmalloc-512 and kmalloc-8 */
	sample_meminfo(&mi, true);
	ck_assert_int_eq(format_top(out_open(&o), &mi, &sfx.t, &cfx.t, false), 0);
	s = out_close(&o);
	ck_assert_ptr_nonnull(
		strstr(s, " Active / Total Objects (% used)    : 5906 / 5984 (98.7%)\n"
			  " Active / Total Slabs (% used)      : 374 / 374 (100.0%)\n"
			  " Active / Total Caches (% used)     : 1 / 2 (50.0%)\n"
			  " Active / Total Size (% used)       : 2953.00K / 2992.00K (98.7%)\n"
			  " Minimum / Average / Maximum Object : 0.01K / 0.50K / 0.50K\n"));
	ck_assert_ptr_nonnull(strstr(s, " MemFree / MemTotal (% free)        : 57344 / 65536 kB"));
	ck_assert_ptr_nonnull(strstr(s, " Backing                            : hugetlb,"));
	big = strstr(s, "big?one");
	small = strstr(s, " small\n");
	kmctl = strstr(s, " kmctl (admin)\n");
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(kmctl);
	ck_assert_msg(big < small && small < kmctl, "clients not sorted by bytes:\n%s", s);
	free(s);

	ck_assert_int_eq(format_top(out_open(&o), &mi, &sfx.t, &cfx.t, true), 0);
	s = out_close(&o);
	/* slabtop's two decimals, as a JSON number. */
	ck_assert_ptr_nonnull(strstr(s, "\"avg_obj_size\": 512.00,"));
	j = parse_json(s, json_type_object);
	assert_keys(j, top_keys);
	summary = member(j, "slab", json_type_object);
	assert_keys(summary, top_slab_keys);
	ck_assert_uint_eq(member_u64(summary, "active_objs"), 5906);
	ck_assert_uint_eq(member_u64(summary, "total_objs"), 5984);
	ck_assert_uint_eq(member_u64(summary, "active_slabs"), 374);
	ck_assert_uint_eq(member_u64(summary, "total_slabs"), 374);
	ck_assert_uint_eq(member_u64(summary, "active_caches"), 1);
	ck_assert_uint_eq(member_u64(summary, "total_caches"), 2);
	ck_assert_uint_eq(member_u64(summary, "active_size"), 5906 * 512);
	ck_assert_uint_eq(member_u64(summary, "total_size"), 5984 * 512);
	ck_assert_uint_eq(member_u64(summary, "min_obj_size"), 8);
	ck_assert_double_eq(
		json_object_get_double(member(summary, "avg_obj_size", json_type_double)), 512.0);
	ck_assert_uint_eq(member_u64(summary, "max_obj_size"), 512);
	check_meminfo_json(member(j, "meminfo", json_type_object), &mi);
	/* Clients by bytes held, largest first. */
	clients = member(j, "clients", json_type_array);
	ck_assert_uint_eq(json_object_array_length(clients), 3);
	check_client_json(row_at(clients, 0), &cfx.rows[2]);
	check_client_json(row_at(clients, 1), &cfx.rows[0]);
	check_client_json(row_at(clients, 2), &cfx.rows[1]);
	json_object_put(j);
	free(s);

	/* Nothing at all: an idle daemon without caches or clients. */
	sfx.t.nr_pages = 0;
	cfx.t.nr_pages = 0;
	ck_assert_int_eq(format_top(out_open(&o), &mi, &sfx.t, &cfx.t, true), 0);
	s = out_close(&o);
	j = parse_json(s, json_type_object);
	assert_keys(j, top_keys);
	summary = member(j, "slab", json_type_object);
	ck_assert_uint_eq(member_u64(summary, "total_caches"), 0);
	ck_assert_double_eq(
		json_object_get_double(member(summary, "avg_obj_size", json_type_double)), 0.0);
	ck_assert_uint_eq(json_object_array_length(member(j, "clients", json_type_array)), 0);
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* limits                                                                   */

START_TEST(test_limits)
{
	Kmalloc__AccountRow rows[2], *ptrs[2] = { &rows[0], &rows[1] };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
	json_object *j, *row;
	size_t i;
	char *s;

	kmalloc__inspect_reply__init(&page);
	for (i = 0; i < 2; i++)
		kmalloc__account_row__init(&rows[i]);
	/* root: privileged, no limits (UINT64_MAX); uid 1000: at its limits. */
	rows[0].connections = 2;
	rows[0].max_connections = UINT64_MAX;
	rows[0].grants = 5;
	rows[0].max_grants = UINT64_MAX;
	rows[0].bytes = 4096;
	rows[0].max_bytes = UINT64_MAX;
	rows[0].handles = 3;
	rows[0].max_handles = UINT64_MAX;
	rows[0].privileged = true;
	rows[1].uid = 1000;
	rows[1].domain = 1;
	rows[1].connections = 64;
	rows[1].max_connections = 64;
	rows[1].grants = 262144;
	rows[1].max_grants = 262144;
	rows[1].bytes = 32ull << 20;
	rows[1].max_bytes = 32ull << 20;
	rows[1].handles = 4096;
	rows[1].max_handles = 4096;
	rows[1].refusals = 7;
	page.n_accounts = 2;
	page.accounts = ptrs;
	s = table_text(format_limits, &t, false);
	ck_assert_str_eq(
		s,
		"   UID DOMAIN CONNS MAX_CONNS     GRANTS MAX_GRANTS          BYTES      MAX_BYTES"
		"  HANDLES MAX_HANDLES  REFUSED PRIVILEGED\n"
		"     0      0     2 unlimited          5  unlimited           4096      unlimited"
		"        3   unlimited        0 yes\n"
		"  1000      1    64        64     262144     262144       33554432       33554432"
		"     4096        4096        7 no\n");
	free(s);
	s = table_text(format_limits, &t, true);
	ck_assert_ptr_nonnull(strstr(s, "\"max_bytes\": 18446744073709551615,"));
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 2);
	for (i = 0; i < 2; i++) {
		row = row_at(j, i);
		assert_keys(row, limit_keys);
		ck_assert_uint_eq(member_u64(row, "uid"), rows[i].uid);
		ck_assert_uint_eq(member_u64(row, "domain"), rows[i].domain);
		ck_assert_uint_eq(member_u64(row, "connections"), rows[i].connections);
		ck_assert_uint_eq(member_u64(row, "max_connections"), rows[i].max_connections);
		ck_assert_uint_eq(member_u64(row, "grants"), rows[i].grants);
		ck_assert_uint_eq(member_u64(row, "max_grants"), rows[i].max_grants);
		ck_assert_uint_eq(member_u64(row, "bytes"), rows[i].bytes);
		ck_assert_uint_eq(member_u64(row, "max_bytes"), rows[i].max_bytes);
		ck_assert_uint_eq(member_u64(row, "handles"), rows[i].handles);
		ck_assert_uint_eq(member_u64(row, "max_handles"), rows[i].max_handles);
		ck_assert_uint_eq(member_u64(row, "refusals"), rows[i].refusals);
		ck_assert_int_eq(member_bool(row, "privileged"), rows[i].privileged);
	}
	ck_assert_uint_eq(member_u64(row_at(j, 0), "max_grants"), UINT64_MAX);
	json_object_put(j);
	free(s);
	page.n_accounts = 0;
	s = table_text(format_limits, &t, true);
	j = parse_json(s, json_type_array);
	ck_assert_uint_eq(json_object_array_length(j), 0);
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* stats                                                                    */

static const char *const stats_keys[] = { "uptime_ns",
					  "grants",
					  "connections",
					  "requests",
					  "request_max_ns",
					  "request_max_kind",
					  "requests_over_1ms",
					  "request_hist_10us",
					  "request_hist_100us",
					  "request_hist_1ms",
					  "request_hist_10ms",
					  "request_hist_inf",
					  "teardown_turns",
					  "teardown_max_ns",
					  "tick_max_ns",
					  "accept_max_ns",
					  NULL };

static char *stats_text(const Kmalloc__LoopRow *row, bool json)
{
	struct out o;

	ck_assert_int_eq(format_stats(out_open(&o), row, json), 0);
	return out_close(&o);
}

/* A daemon an hour up at a million grants, as kmperf's figure 4 leaves it. */
static void sample_loop(Kmalloc__LoopRow *row, uint64_t hist[5])
{
	static const uint64_t h[5] = { 1200345, 2031, 17, 0, 0 };

	kmalloc__loop_row__init(row);
	memcpy(hist, h, sizeof(h));
	row->uptime_ns = 3723999999999ull; /* 1 h 2 min 3.999... s */
	row->grants = 1048576;
	row->connections = 2;
	row->requests = 1200345 + 2031 + 17;
	row->request_max_ns = 231999; /* 231.999 us */
	row->request_max_kind = "alloc";
	row->requests_over_1ms = 0;
	row->n_request_hist = 5;
	row->request_hist = hist;
	row->teardown_turns = 1031;
	row->teardown_max_ns = 512345;
	row->tick_max_ns = 88001;
	row->accept_max_ns = 999;
}

START_TEST(test_stats_text)
{
	Kmalloc__LoopRow row;
	uint64_t hist[5];
	regex_t re;
	char *s, *line, *save;
	unsigned long long sum = 0, requests = 0, v;
	int lines = 0;

	sample_loop(&row, hist);
	s = stats_text(&row, false);
	ck_assert_str_eq(s, "uptime_s 3723\n"
			    "grants 1048576\n"
			    "connections 2\n"
			    "requests 1202393\n"
			    "request_max_us 231\n"
			    "request_max_kind alloc\n"
			    "requests_over_1ms 0\n"
			    "request_hist_10us 1200345\n"
			    "request_hist_100us 2031\n"
			    "request_hist_1ms 17\n"
			    "request_hist_10ms 0\n"
			    "request_hist_inf 0\n"
			    "teardown_turns 1031\n"
			    "teardown_max_us 512\n"
			    "tick_max_us 88\n"
			    "accept_max_us 0\n");
	/* /proc/vmstat's shape: one "name value" per line, the histogram adds up. */
	ck_assert_int_eq(regcomp(&re, "^[a-z0-9_]+ [a-z0-9_-]+$", REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad stats line: '%s'", line);
		if (sscanf(line, "request_hist_%*[0-9a-z] %llu", &v) == 1)
			sum += v;
		sscanf(line, "requests %llu", &requests);
		lines++;
	}
	ck_assert_int_eq(lines, 16);
	ck_assert_uint_eq(sum, requests);
	regfree(&re);
	free(s);

	/* A fresh daemon: no request yet; a kind with a blank stays one word;
	 * a histogram a daemon did not send reads as zeros. */
	kmalloc__loop_row__init(&row);
	s = stats_text(&row, false);
	ck_assert_ptr_nonnull(strstr(s, "\nrequest_max_kind -\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nrequest_hist_inf 0\n"));
	free(s);
	row.request_max_kind = "two words\n";
	s = stats_text(&row, false);
	ck_assert_ptr_nonnull(strstr(s, "\nrequest_max_kind two?words?\n"));
	free(s);
}
END_TEST

START_TEST(test_stats_json)
{
	Kmalloc__LoopRow row;
	uint64_t hist[5];
	json_object *j;
	char *s;

	sample_loop(&row, hist);
	row.requests_over_1ms = UINT64_MAX;
	s = stats_text(&row, true);
	j = parse_json(s, json_type_object);
	assert_keys(j, stats_keys);
	ck_assert_uint_eq(member_u64(j, "uptime_ns"), row.uptime_ns);
	ck_assert_uint_eq(member_u64(j, "grants"), row.grants);
	ck_assert_uint_eq(member_u64(j, "connections"), row.connections);
	ck_assert_uint_eq(member_u64(j, "requests"), row.requests);
	ck_assert_uint_eq(member_u64(j, "request_max_ns"), 231999);
	ck_assert_str_eq(member_str(j, "request_max_kind"), "alloc");
	ck_assert_uint_eq(member_u64(j, "requests_over_1ms"), UINT64_MAX);
	ck_assert_uint_eq(member_u64(j, "request_hist_10us"), hist[0]);
	ck_assert_uint_eq(member_u64(j, "request_hist_100us"), hist[1]);
	ck_assert_uint_eq(member_u64(j, "request_hist_1ms"), hist[2]);
	ck_assert_uint_eq(member_u64(j, "request_hist_10ms"), hist[3]);
	ck_assert_uint_eq(member_u64(j, "request_hist_inf"), hist[4]);
	ck_assert_uint_eq(member_u64(j, "teardown_turns"), 1031);
	ck_assert_uint_eq(member_u64(j, "teardown_max_ns"), 512345);
	ck_assert_uint_eq(member_u64(j, "tick_max_ns"), 88001);
	ck_assert_uint_eq(member_u64(j, "accept_max_ns"), 999);
	json_object_put(j);
	free(s);

	kmalloc__loop_row__init(&row);
	s = stats_text(&row, true);
	j = parse_json(s, json_type_object);
	assert_keys(j, stats_keys);
	ck_assert_str_eq(member_str(j, "request_max_kind"), "");
	ck_assert_uint_eq(member_u64(j, "request_hist_inf"), 0);
	json_object_put(j);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JSON strings                                                             */

#define FFFD "\xef\xbf\xbd" /* U+FFFD REPLACEMENT CHARACTER in UTF-8 */

/* Strings from clients (Hello.name, Vmalloc.caller) as they come back from
 * a document: anything valid as it was, each byte of an invalid sequence as
 * U+FFFD, whatever json-c does with such bytes itself. */
static const struct {
	const char *in, *out;
} json_strings[] = {
	{ "plain", "plain" },
	{ "", "" },
	{ "q\"b\\s/", "q\"b\\s/" },
	{ "\n\r\t\b\f\x01\x1f\x7f", "\n\r\t\b\f\x01\x1f\x7f" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
	  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf" },
	{ "bad\xff"
	  "x",
	  "bad" FFFD "x" },
	{ "trunc\xc3", "trunc" FFFD },
	{ "cut\xe2\x82"
	  "b",
	  "cut" FFFD FFFD "b" },
	{ "over\xc0\xaf", "over" FFFD FFFD },
	{ "over3\xe0\x80\xaf", "over3" FFFD FFFD FFFD },
	{ "surr\xed\xa0\x80", "surr" FFFD FFFD FFFD },
	{ "big\xf4\x90\x80\x80", "big" FFFD FFFD FFFD FFFD },
	{ "\x80\xbf", FFFD FFFD },
};

/* @in as a client's name and a vmalloc caller, printed and read back. */
static void check_json_string(const char *in, const char *out)
{
	Kmalloc__ClientRow client, *clients[1] = { &client };
	Kmalloc__VmallocRow area, *areas[1] = { &area };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
	json_object *j;
	char *s;

	kmalloc__inspect_reply__init(&page);
	kmalloc__client_row__init(&client);
	kmalloc__vmalloc_row__init(&area);
	client.name = (char *)in;
	area.caller = (char *)in;
	page.n_clients = 1;
	page.clients = clients;
	page.n_vmalloc = 1;
	page.vmalloc = areas;

	s = table_text(format_clients, &t, true);
	j = parse_json(s, json_type_array);
	ck_assert_str_eq(member_str(row_at(j, 0), "name"), out);
	json_object_put(j);
	free(s);
	s = table_text(format_vmallocinfo, &t, true);
	j = parse_json(s, json_type_array);
	ck_assert_str_eq(member_str(row_at(j, 0), "caller"), out);
	json_object_put(j);
	free(s);
}

START_TEST(test_json_strings)
{
	char in[301], out[300 * 3 + 1];
	size_t i;

	for (i = 0; i < sizeof(json_strings) / sizeof(json_strings[0]); i++)
		check_json_string(json_strings[i].in, json_strings[i].out);
	/* Nothing but invalid bytes: the string triples in length. */
	memset(in, 0xff, 300);
	in[300] = '\0';
	for (i = 0; i < 300; i++)
		memcpy(out + 3 * i, FFFD, 3);
	out[900] = '\0';
	check_json_string(in, out);
}
END_TEST

static Suite *format_suite(void)
{
	Suite *s = suite_create("format");
	TCase *tc;

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_checker);
	tcase_add_test(tc, test_json_strings);
	suite_add_tcase(s, tc);

	tc = tcase_create("meminfo");
	tcase_add_test(tc, test_meminfo_exact);
	tcase_add_test(tc, test_meminfo_shmem);
	tcase_add_test(tc, test_meminfo_shape);
	tcase_add_test(tc, test_meminfo_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("slabinfo");
	tcase_add_test(tc, test_slabinfo_exact);
	tcase_add_test(tc, test_slabinfo_slabtop_parse);
	tcase_add_test(tc, test_slabinfo_odd_names);
	tcase_add_test(tc, test_slabinfo_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("buddyinfo");
	tcase_add_test(tc, test_buddyinfo_exact);
	suite_add_tcase(s, tc);

	tc = tcase_create("vmallocinfo");
	tcase_add_test(tc, test_vmallocinfo);
	suite_add_tcase(s, tc);

	tc = tcase_create("shares");
	tcase_add_test(tc, test_shares_text);
	tcase_add_test(tc, test_shares_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("map");
	tcase_add_test(tc, test_map_plain);
	tcase_add_test(tc, test_map_colour);
	tcase_add_test(tc, test_map_json);
	tcase_add_test(tc, test_map_svg);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_test(tc, test_clients);
	tcase_add_test(tc, test_top);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_test(tc, test_stats_text);
	tcase_add_test(tc, test_stats_json);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = test_run_suite(format_suite());

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
