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
static const char *const vmalloc_keys[] = { "start", "end",   "size",	"caller", "pages",
					    "pid",   "grant", "domain", NULL };
static const char *const client_keys[] = { "pid",    "uid",   "name",  "domain",  "conn",
					   "grants", "bytes", "admin", "closing", NULL };
static const char *const limit_keys[] = {
	"uid",	 "domain",    "connections", "max_connections", "grants", "max_grants",
	"bytes", "max_bytes", "refusals",    "privileged",	NULL
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

START_TEST(test_vmallocinfo)
{
	Kmalloc__VmallocRow rows[3], *ptrs[3] = { &rows[0], &rows[1], &rows[2] };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
	char *s, *line, *save = NULL;
	json_object *j, *row;
	regex_t re;
	size_t i;
	int n = 0;

	kmalloc__inspect_reply__init(&page);
	for (i = 0; i < 3; i++)
		kmalloc__vmalloc_row__init(&rows[i]);
	rows[0].start = 0x7f1234000000;
	rows[0].size = 8ull << 20; /* three frames and the guard */
	rows[0].caller = "km_test_caller+0x10/0x40";
	rows[0].pages = 1536;
	rows[0].pid = 42;
	rows[0].grant = 7;
	rows[1].size = 4ull << 20; /* address unknown, no caller */
	rows[1].pages = 512;
	rows[2].start = 0x10000;
	rows[2].size = 4ull << 20;
	rows[2].caller = "evil caller\n\"x\"";
	rows[2].pages = 512;
	page.n_vmalloc = 3;
	page.vmalloc = ptrs;
	s = table_text(format_vmallocinfo, &t, false);
	ck_assert_int_eq(
		strncmp(s,
			"0x00007f1234000000-0x00007f1234800000 8388608 km_test_caller+0x10/0x40 "
			"pages=1536 vmalloc N0=1536\n"
			"0x0000000000000000-0x0000000000400000 4194304 pages=512 vmalloc N0=512\n",
			strlen("0x00007f1234000000-0x00007f1234800000 8388608 "
			       "km_test_caller+0x10/0x40 "
			       "pages=1536 vmalloc N0=1536\n"
			       "0x0000000000000000-0x0000000000400000 4194304 pages=512 vmalloc "
			       "N0=512\n")),
		0);
	ck_assert_int_eq(regcomp(&re,
				 "^0x[0-9a-f]{16}-0x[0-9a-f]{16} +[0-9]+( [^ ]+)?"
				 "( pages=[0-9]+)? vmalloc( N0=[0-9]+)?$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++)
		ck_assert_msg(!regexec(&re, line, 0, NULL, 0), "bad line '%s'", line);
	ck_assert_int_eq(n, 3);
	regfree(&re);
	free(s);
	rows[2].grant = UINT64_MAX;
	s = table_text(format_vmallocinfo, &t, true);
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
	}
	ck_assert_uint_eq(member_u64(row_at(j, 0), "end"), 139716166942720ull);
	ck_assert_str_eq(member_str(row_at(j, 2), "caller"), "evil caller\n\"x\"");
	ck_assert_uint_eq(member_u64(row_at(j, 2), "grant"), UINT64_MAX);
	json_object_put(j);
	free(s);
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
	rows[0].privileged = true;
	rows[1].uid = 1000;
	rows[1].domain = 1;
	rows[1].connections = 64;
	rows[1].max_connections = 64;
	rows[1].grants = 262144;
	rows[1].max_grants = 262144;
	rows[1].bytes = 32ull << 20;
	rows[1].max_bytes = 32ull << 20;
	rows[1].refusals = 7;
	page.n_accounts = 2;
	page.accounts = ptrs;
	s = table_text(format_limits, &t, false);
	ck_assert_str_eq(
		s,
		"   UID DOMAIN CONNS MAX_CONNS     GRANTS MAX_GRANTS          BYTES      MAX_BYTES"
		"  REFUSED PRIVILEGED\n"
		"     0      0     2 unlimited          5  unlimited           4096      unlimited"
		"        0 yes\n"
		"  1000      1    64        64     262144     262144       33554432       33554432"
		"        7 no\n");
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
