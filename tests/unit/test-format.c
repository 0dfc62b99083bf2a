// SPDX-License-Identifier: MIT
/*
 * test-format.c - unit tests of kmctl's format.c. Messages are built by hand
 * (no daemon, no socket) and printed into open_memstream(). The text must be
 * byte for byte what the kernel prints for the matching /proc file, and must
 * read back through the parsers people use on those files: slabtop's sscanf
 * pattern for slabinfo, the "Label: value kB" shape of meminfo. Every --json
 * document goes through a small strict JSON checker (RFC 8259 grammar, UTF-8).
 */
#include "config.h"
#include "format.h"

#include <check.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

			if (!len || *s > 0xf4)
				return NULL;
			for (i = 1; i < len; i++)
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
	ck_assert(!json_valid("01"));
	ck_assert(!json_valid("[1] 2"));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* meminfo                                                                  */

static const char meminfo_hugetlb[] =
	"MemTotal:          65536 kB\n"
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

	ck_assert_int_eq(regcomp(&re, "^[A-Za-z_()]+:[[:space:]]+[0-9]+( kB)?$",
				 REG_EXTENDED | REG_NOSUB), 0);
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

START_TEST(test_meminfo_json)
{
	Kmalloc__Meminfo mi;
	char *s;

	sample_meminfo(&mi, true);
	s = meminfo_text(&mi, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"backing\": \"hugetlb\""));
	ck_assert_ptr_nonnull(strstr(s, "\"total\": 67108864,"));
	ck_assert_ptr_nonnull(strstr(s, "\"slab_unreclaimable\": 2097152,"));
	ck_assert_ptr_nonnull(strstr(s, "\"grants\": 17"));
	free(s);
	sample_meminfo(&mi, false);
	s = meminfo_text(&mi, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"backing\": \"shmem\""));
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
	/* kernel-semantics.md §6's sample row. */
	ck_assert_str_eq(s, "slabinfo - version: 2.1\n"
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
		ck_assert_int_eq(sscanf(line, "%128s %u %u %u %u %u : tunables %*u %*u %*u : "
					"slabdata %u %u %*u", name, &active, &num, &size,
					&perslab, &pages, &aslabs, &nslabs), 8);
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
	char *s;

	slab_fixture_init(&fx);
	s = table_text(format_slabinfo, &fx.t, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "{ \"name\": \"kmalloc-512\", \"active_objs\": 5906, "
				     "\"num_objs\": 5984, \"objsize\": 512, \"objperslab\": 16, "
				     "\"pagesperslab\": 2, \"active_slabs\": 374, "
				     "\"num_slabs\": 374 }"));
	free(s);
	fx.t.nr_pages = 0;
	s = table_text(format_slabinfo, &fx.t, true);
	ck_assert_str_eq(s, "[]\n");
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
	static uint64_t partial[] = { 3, 0, 1 };
	Kmalloc__BuddyRow rows[2], *ptrs[2] = { &rows[0], &rows[1] };
	Kmalloc__InspectReply page, *pages[1] = { &page };
	struct format_table t = { .pages = pages, .nr_pages = 1 };
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
	/* kernel-semantics.md §3's sample line, trailing space included. */
	ck_assert_str_eq(s,
		"Node 0, zone   Normal   1822   1189   1348    823    501    290    136    100"
		"     53     27    102 \n"
		"Node 0, zone  uid1000      3      0      1      0      0      0      0      0"
		"      0      0      0 \n");
	free(s);
	s = table_text(format_buddyinfo, &t, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"zone\": \"uid1000\", \"nr_free\": [3, 0, 1]"));
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
	regex_t re;
	int n = 0;

	kmalloc__inspect_reply__init(&page);
	for (int i = 0; i < 3; i++)
		kmalloc__vmalloc_row__init(&rows[i]);
	rows[0].start = 0x7f1234000000;
	rows[0].size = 8ull << 20;	/* three frames and the guard */
	rows[0].caller = "km_test_caller+0x10/0x40";
	rows[0].pages = 1536;
	rows[0].pid = 42;
	rows[0].grant = 7;
	rows[1].size = 4ull << 20;	/* address unknown, no caller */
	rows[1].pages = 512;
	rows[2].start = 0x10000;
	rows[2].size = 4ull << 20;
	rows[2].caller = "evil caller\n\"x\"";
	rows[2].pages = 512;
	page.n_vmalloc = 3;
	page.vmalloc = ptrs;
	s = table_text(format_vmallocinfo, &t, false);
	ck_assert_int_eq(strncmp(s,
		"0x00007f1234000000-0x00007f1234800000 8388608 km_test_caller+0x10/0x40 "
		"pages=1536 vmalloc N0=1536\n"
		"0x0000000000000000-0x0000000000400000 4194304 pages=512 vmalloc N0=512\n",
		strlen("0x00007f1234000000-0x00007f1234800000 8388608 km_test_caller+0x10/0x40 "
		       "pages=1536 vmalloc N0=1536\n"
		       "0x0000000000000000-0x0000000000400000 4194304 pages=512 vmalloc N0=512\n")),
		0);
	ck_assert_int_eq(regcomp(&re, "^0x[0-9a-f]{16}-0x[0-9a-f]{16} +[0-9]+( [^ ]+)?"
				 "( pages=[0-9]+)? vmalloc( N0=[0-9]+)?$",
				 REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++)
		ck_assert_msg(!regexec(&re, line, 0, NULL, 0), "bad line '%s'", line);
	ck_assert_int_eq(n, 3);
	regfree(&re);
	free(s);
	s = table_text(format_vmallocinfo, &t, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"caller\": \"evil caller\\n\\\"x\\\"\""));
	ck_assert_ptr_nonnull(strstr(s, "\"end\": 139716166942720"));
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

START_TEST(test_clients)
{
	struct client_fixture fx;
	char *s;

	client_fixture_init(&fx);
	s = table_text(format_clients, &fx.t, false);
	ck_assert_str_eq(s,
		"    PID    UID DOMAIN  CONN   GRANTS        BYTES COMMAND\n"
		"   4242   1000      1     3        2         4096 small\n"
		"     77      0      0     1        0            0 kmctl (admin)\n"
		"4194304 4294967294      2     9       12   6442450944 big?one \"q\"\n");
	free(s);
	s = table_text(format_clients, &fx.t, true);
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"name\": \"big\\tone \\\"q\\\"\""));
	ck_assert_ptr_nonnull(strstr(s, "\"admin\": true"));
	free(s);
}
END_TEST

START_TEST(test_top)
{
	struct client_fixture cfx;
	struct slab_fixture sfx;
	Kmalloc__Meminfo mi;
	struct out o;
	char *s, *big, *small, *kmctl;

	client_fixture_init(&cfx);
	slab_fixture_init(&sfx);
	sfx.t.nr_pages = 1;	/* kmalloc-512 and kmalloc-8 */
	sample_meminfo(&mi, true);
	ck_assert_int_eq(format_top(out_open(&o), &mi, &sfx.t, &cfx.t, false), 0);
	s = out_close(&o);
	ck_assert_ptr_nonnull(strstr(s,
		" Active / Total Objects (% used)    : 5906 / 5984 (98.7%)\n"
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
	assert_json(s);
	ck_assert_ptr_nonnull(strstr(s, "\"active_objs\": 5906"));
	ck_assert_ptr_nonnull(strstr(s, "\"backing\": \"hugetlb\""));
	big = strstr(s, "\"name\": \"big");
	small = strstr(s, "\"name\": \"small\"");
	ck_assert(big && small && big < small);
	free(s);

	/* Nothing at all: an idle daemon without caches or clients. */
	sfx.t.nr_pages = 0;
	cfx.t.nr_pages = 0;
	ck_assert_int_eq(format_top(out_open(&o), &mi, &sfx.t, &cfx.t, true), 0);
	s = out_close(&o);
	assert_json(s);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JSON strings                                                             */

START_TEST(test_json_string)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "q\"b\\s/", "\"q\\\"b\\\\s/\"" },
		{ "\n\r\t\b\f\x01\x1f\x7f", "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		{ "bad\xff" "x", "\"bad\\ufffdx\"" },
		{ "trunc\xc3", "\"trunc\\ufffd\"" },
		{ "over\xc0\xaf", "\"over\\ufffd\\ufffd\"" },
		{ "surr\xed\xa0\x80", "\"surr\\ufffd\\ufffd\\ufffd\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct out o;
		char *s;

		format_json_string(out_open(&o), cases[i].in);
		s = out_close(&o);
		ck_assert_str_eq(s, cases[i].out);
		assert_json(s);
		free(s);
	}
}
END_TEST

static Suite *format_suite(void)
{
	Suite *s = suite_create("format");
	TCase *tc;

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_checker);
	tcase_add_test(tc, test_json_string);
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
	return s;
}

int main(void)
{
	int failed = test_run_suite(format_suite());

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
