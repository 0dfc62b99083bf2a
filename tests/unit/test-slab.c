// SPDX-License-Identifier: MIT
/*
 * test-slab.c - unit tests of daemon/slab.c: the kmalloc size-class mapping
 * (kmalloc_slab()), SLUB's calculate_order() on 2 and 64 CPUs, and kmem_cache
 * over a fake page allocator (a small struct buddy) and a slab map: object
 * placement and alignment, no overlap, counters, the min_partial rule,
 * shrink, destroy, invalid frees, page allocation failures, and
 * kmem_cache_alloc_at() (the slab made at the pfn the object implies,
 * objects handed out already, offsets that are no object, pages another
 * cache or owner holds), granted slabs (whole slabs handed out, on no
 * list, every object counted in use). Random runs, which mix
 * kmem_cache_alloc_at() in, print their seed (KM_TEST_SEED replays one).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buddy.h"
#include "sizes.h"
#include "slab.h"
#include "testutil.h"

/* ------------------------------------------------- fake page allocator */

#define POOL_PAGES 512u
#define POOL_BYTES ((uint64_t)POOL_PAGES * KM_PAGE_SIZE)

struct fake_pages {
	struct buddy_map map;
	struct buddy buddy;
	struct slab_map smap; /* shared by every cache of a test */
	uint64_t initial_free[BUDDY_MAX_ORDER + 1];
	bool fail; /* alloc_pages and alloc_pages_at return -ENOMEM */
	unsigned int last_gfp;
	uint64_t pages_out;   /* pages handed to the cache */
	uint64_t nr_alloc;    /* alloc_pages calls that succeeded */
	uint64_t nr_alloc_at; /* alloc_pages_at calls that succeeded */
};

static struct fake_pages fp;
static struct slab_page_ops fake_ops;
static struct kmem_cache cache;

static int fake_alloc_pages(void *ctx, unsigned int order, unsigned int gfp, uint32_t *pfn)
{
	struct fake_pages *f = ctx;
	int ret;

	f->last_gfp = gfp;
	if (f->fail)
		return -ENOMEM;
	ret = buddy_alloc(&f->buddy, order, pfn);
	if (ret)
		return ret;
	f->pages_out += (uint64_t)1 << order;
	f->nr_alloc++;
	return 0;
}

static int fake_alloc_pages_at(void *ctx, uint32_t pfn, unsigned int order)
{
	struct fake_pages *f = ctx;
	int ret;

	if (f->fail)
		return -ENOMEM;
	ret = buddy_alloc_at(&f->buddy, pfn, order);
	if (ret)
		return ret;
	f->pages_out += (uint64_t)1 << order;
	f->nr_alloc_at++;
	return 0;
}

static void fake_free_pages(void *ctx, uint32_t pfn, unsigned int order)
{
	struct fake_pages *f = ctx;

	ck_assert_uint_ge(f->pages_out, (uint64_t)1 << order);
	buddy_free(&f->buddy, pfn, order);
	f->pages_out -= (uint64_t)1 << order;
}

static void fake_setup_n(uint32_t nr_pages)
{
	memset(&fp, 0, sizeof(fp));
	ck_assert_int_eq(buddy_map_init(&fp.map, nr_pages), 0);
	ck_assert_int_eq(slab_map_init(&fp.smap, nr_pages), 0);
	ck_assert_uint_eq(fp.smap.nr_pages, nr_pages);
	buddy_init(&fp.buddy, &fp.map, 3);
	buddy_free_range(&fp.buddy, 0, nr_pages);
	memcpy(fp.initial_free, fp.buddy.nr_free, sizeof(fp.initial_free));
	fake_ops = (struct slab_page_ops){ fake_alloc_pages, fake_alloc_pages_at, fake_free_pages,
					   &fp };
}

static void fake_setup(void)
{
	fake_setup_n(POOL_PAGES);
}

static void fake_teardown(void)
{
	slab_map_fini(&fp.smap);
	buddy_map_fini(&fp.map);
}

/* Every page came back, the buddy coalesced to where it started, and the
 * slab map names no slab. */
static void assert_pool_restored(void)
{
	ck_assert_uint_eq(fp.pages_out, 0);
	ck_assert_int_eq(buddy_check(&fp.buddy), 0);
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++)
		ck_assert_uint_eq(fp.buddy.nr_free[o], fp.initial_free[o]);
	for (uint32_t pfn = 0; pfn < fp.smap.nr_pages; pfn++)
		if (fp.smap.at[pfn])
			ck_abort_msg("slab map still names a slab at pfn %u", pfn);
}

/* The slab of @c that holds the object at @phys, found through the slab
 * map as kmem_cache_free() finds it: it must be there, be @c's and start
 * at the naturally aligned pfn the object implies. */
static struct slab *slab_of(const struct kmem_cache *c, uint64_t phys)
{
	uint32_t pfn;
	struct slab *s;

	ck_assert_uint_lt(phys >> KM_PAGE_SHIFT, fp.smap.nr_pages);
	pfn = (uint32_t)(phys >> KM_PAGE_SHIFT) & ~((1u << c->cls->order) - 1);
	s = fp.smap.at[pfn];
	ck_assert_msg(s != NULL, "no slab at pfn %u for phys %#" PRIx64, pfn, phys);
	ck_assert_ptr_eq(s->cache, c);
	ck_assert_uint_eq(s->pfn, pfn);
	return s;
}

static uint64_t list_len(const struct slab_list *l)
{
	const struct slab *s;
	uint64_t n = 0;

	TAILQ_FOREACH(s, l, link)
		n++;
	return n;
}

/* @c holds no slab (whatever other caches hold). */
static void assert_no_slab(const struct kmem_cache *c)
{
	ck_assert_int_eq(kmem_cache_check(c), 0);
	ck_assert_uint_eq(c->nr_slabs, 0);
	ck_assert_uint_eq(c->nr_objs, 0);
	ck_assert_uint_eq(c->nr_active, 0);
	ck_assert_uint_eq(c->nr_empty, 0);
	ck_assert_uint_eq(c->nr_partial, 0);
	ck_assert(TAILQ_EMPTY(&c->partial));
	ck_assert(TAILQ_EMPTY(&c->full));
}

static const struct kmalloc_class *class_named(const char *name)
{
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		if (!strcmp(kmalloc_classes[i].name, name))
			return &kmalloc_classes[i];
	ck_abort_msg("no class %s", name);
	return NULL;
}

struct counters {
	uint64_t nr_slabs, nr_objs, nr_active, nr_empty, partial, full;
};

static void assert_counters(const struct kmem_cache *c, const struct counters *want)
{
	ck_assert_int_eq(kmem_cache_check(c), 0);
	ck_assert_uint_eq(c->nr_slabs, want->nr_slabs);
	ck_assert_uint_eq(c->nr_objs, want->nr_objs);
	ck_assert_uint_eq(c->nr_active, want->nr_active);
	ck_assert_uint_eq(c->nr_empty, want->nr_empty);
	ck_assert_uint_eq(c->nr_partial, want->partial);
	ck_assert_uint_eq(list_len(&c->partial), want->partial);
	ck_assert_uint_eq(list_len(&c->full), want->full);
	ck_assert_uint_eq(fp.pages_out, want->nr_slabs << c->cls->order);
}

/* -------------------------------------------------------- size classes */

static const struct {
	const char *name;
	uint32_t size, align;
	unsigned int pages_2, objs_2, pages_64, objs_64;
} table[KM_NR_KMALLOC_CLASSES] = {
	/* docs/kernel.md */
	{ "kmalloc-8", 8, 8, 1, 512, 1, 512 },	    { "kmalloc-16", 16, 16, 1, 256, 1, 256 },
	{ "kmalloc-32", 32, 32, 1, 128, 1, 128 },   { "kmalloc-64", 64, 64, 1, 64, 1, 64 },
	{ "kmalloc-96", 96, 32, 1, 42, 1, 42 },	    { "kmalloc-128", 128, 128, 1, 32, 1, 32 },
	{ "kmalloc-192", 192, 64, 1, 21, 2, 42 },   { "kmalloc-256", 256, 256, 1, 16, 2, 32 },
	{ "kmalloc-512", 512, 512, 2, 16, 4, 32 },  { "kmalloc-1k", 1024, 1024, 4, 16, 8, 32 },
	{ "kmalloc-2k", 2048, 2048, 8, 16, 8, 16 }, { "kmalloc-4k", 4096, 4096, 8, 8, 8, 8 },
	{ "kmalloc-8k", 8192, 8192, 8, 4, 8, 4 },
};

START_TEST(test_class_table)
{
	const struct kmalloc_class *k = &kmalloc_classes[_i];

	ck_assert_str_eq(k->name, table[_i].name);
	ck_assert_uint_eq(k->size, table[_i].size);
	ck_assert_uint_eq(1u << k->order, table[_i].pages_2);
	ck_assert_uint_eq(k->objs_per_slab, table[_i].objs_2);
	if (_i)
		ck_assert_uint_gt(k->size, kmalloc_classes[_i - 1].size);
}
END_TEST

START_TEST(test_calculate_order)
{
	uint32_t objs = 0;
	unsigned int order;

	order = slub_calculate_order(table[_i].size, 2, &objs);
	ck_assert_uint_eq(1u << order, table[_i].pages_2);
	ck_assert_uint_eq(objs, table[_i].objs_2);
	ck_assert_uint_eq(order, kmalloc_classes[_i].order);
	ck_assert_uint_eq(objs, kmalloc_classes[_i].objs_per_slab);

	order = slub_calculate_order(table[_i].size, 64, &objs);
	ck_assert_uint_eq(1u << order, table[_i].pages_64);
	ck_assert_uint_eq(objs, table[_i].objs_64);
}
END_TEST

START_TEST(test_calculate_order_other)
{
	uint32_t objs;

	/* 3 CPUs: fls(3) = 2 as for 2; 1 CPU: min_objects 8, so 512 stays at order 0. */
	ck_assert_uint_eq(slub_calculate_order(512, 3, &objs), 1);
	ck_assert_uint_eq(slub_calculate_order(512, 1, &objs), 0);
	ck_assert_uint_eq(objs, 8);
	/* Too big for slub_max_order: get_order(size). */
	ck_assert_uint_eq(slub_calculate_order(40000, 2, &objs), 4);
	ck_assert_uint_eq(objs, 1);
	/* One object in 8 pages with 1/4 < waste <= 1/2: the 1/2 pass takes it. */
	ck_assert_uint_eq(slub_calculate_order(20000, 2, &objs), 3);
	ck_assert_uint_eq(objs, 1);
}
END_TEST

START_TEST(test_class_index)
{
	ck_assert_int_eq(kms_class_index(0), -1);
	ck_assert_int_eq(kms_class_index(8193), -1);
	ck_assert_int_eq(kms_class_index(1u << 20), -1);
	ck_assert_int_eq(kms_class_index(SIZE_MAX), -1);

	/* Every size maps to the smallest class that holds it. */
	for (size_t size = 1; size <= KM_KMALLOC_MAX_CACHE_SIZE; size++) {
		int want = 0;

		while (kmalloc_classes[want].size < size)
			want++;
		ck_assert_msg(kms_class_index(size) == want, "size %zu: %d, want %d", size,
			      kms_class_index(size), want);
	}
	/* docs/kernel.md boundaries. */
	ck_assert_str_eq(kmalloc_classes[kms_class_index(64)].name, "kmalloc-64");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(65)].name, "kmalloc-96");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(97)].name, "kmalloc-128");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(129)].name, "kmalloc-192");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(193)].name, "kmalloc-256");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(4097)].name, "kmalloc-8k");
	ck_assert_str_eq(kmalloc_classes[kms_class_index(8192)].name, "kmalloc-8k");
}
END_TEST

START_TEST(test_min_partial)
{
	static const unsigned int want[KM_NR_KMALLOC_CLASSES] = { 5, 5, 5, 5, 5, 5, 5,
								  5, 5, 5, 5, 6, 6 };

	kmem_cache_init(&cache, &kmalloc_classes[_i], &fake_ops, &fp.smap);
	ck_assert_uint_eq(cache.min_partial, want[_i]);
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_slabs, 0);
	ck_assert_uint_eq(fp.nr_alloc, 0);
}
END_TEST

/* ------------------------------------------------ placement, alignment */

/* Fills three slabs of class _i: objects back to back from the slab start,
 * aligned to the largest power of two dividing the size, never overlapping. */
START_TEST(test_placement)
{
	const struct kmalloc_class *k = &kmalloc_classes[_i];
	uint32_t n = 3 * k->objs_per_slab;
	uint64_t *phys = calloc(n, sizeof(*phys));
	static uint8_t owner[POOL_BYTES / 8]; /* 8-byte granules in use */

	ck_assert_ptr_nonnull(phys);
	memset(owner, 0, sizeof(owner));
	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_uint_eq(k->size & -k->size, table[_i].align);

	for (uint32_t i = 0; i < n; i++) {
		const struct slab *s;
		uint64_t base;

		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[i]), 0);
		s = slab_of(&cache, phys[i]);
		base = (uint64_t)s->pfn << KM_PAGE_SHIFT;
		ck_assert_uint_eq(phys[i] % table[_i].align, 0);
		ck_assert_uint_ge(phys[i], base);
		ck_assert_uint_eq((phys[i] - base) % k->size, 0);
		ck_assert_uint_le(phys[i] + k->size - base, (uint64_t)KM_PAGE_SIZE << k->order);
		ck_assert_uint_eq(s->pfn & ((1u << k->order) - 1), 0);
		/* The first object of a fresh slab is at its first byte. */
		if (i % k->objs_per_slab == 0)
			ck_assert_uint_eq(phys[i], base);
		ck_assert_uint_le(phys[i] + k->size, POOL_BYTES);
		for (uint64_t g = phys[i] / 8; g < (phys[i] + k->size) / 8; g++) {
			ck_assert_msg(!owner[g], "object %u overlaps at %#" PRIx64, i, g * 8);
			owner[g] = 1;
		}
	}
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_slabs, 3);
	ck_assert_uint_eq(list_len(&cache.full), 3);
	ck_assert_uint_eq(cache.nr_partial, 0);
	ck_assert(TAILQ_EMPTY(&cache.partial));
	ck_assert_uint_eq(fp.pages_out, 3u << k->order);

	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), 0);
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_active, 0);
	kmem_cache_shrink(&cache);
	assert_pool_restored();
	free(phys);
}
END_TEST

/* --------------------------------------------------------- list moves */

START_TEST(test_lists_and_counters)
{
	const struct kmalloc_class *k = class_named("kmalloc-8k"); /* 4 objs, 8 pages */
	struct counters want = { 0 };
	uint64_t phys[9];
	struct slab *slab[9];

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	assert_counters(&cache, &want);

	/* First object: a new slab, on the partial list. */
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0x42, &phys[0]), 0);
	slab[0] = slab_of(&cache, phys[0]);
	ck_assert_uint_eq(fp.last_gfp, 0x42);
	want = (struct counters){ 1, 4, 1, 0, 1, 0 };
	assert_counters(&cache, &want);
	ck_assert_ptr_eq(TAILQ_FIRST(&cache.partial), slab[0]);

	/* Filling it moves it to full; the next object opens a second slab. */
	for (int i = 1; i < 4; i++) {
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[i]), 0);
		slab[i] = slab_of(&cache, phys[i]);
		ck_assert_ptr_eq(slab[i], slab[0]);
	}
	want = (struct counters){ 1, 4, 4, 0, 0, 1 };
	assert_counters(&cache, &want);
	ck_assert_ptr_eq(TAILQ_FIRST(&cache.full), slab[0]);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[4]), 0);
	slab[4] = slab_of(&cache, phys[4]);
	ck_assert_ptr_ne(slab[4], slab[0]);
	want = (struct counters){ 2, 8, 5, 0, 1, 1 };
	assert_counters(&cache, &want);

	/* A free into the full slab moves it to partial. */
	ck_assert_int_eq(kmem_cache_free(&cache, phys[2]), 0);
	want = (struct counters){ 2, 8, 4, 0, 2, 0 };
	assert_counters(&cache, &want);
	ck_assert_ptr_eq(TAILQ_FIRST(&cache.partial), slab[0]);
	/* Its free object is reused: the freed slab heads the partial list. */
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[2]), 0);
	ck_assert_ptr_eq(slab_of(&cache, phys[2]), slab[0]);
	want = (struct counters){ 2, 8, 5, 0, 1, 1 };
	assert_counters(&cache, &want);

	/* Emptying a slab keeps it (few partial slabs), counted in nr_empty. */
	ck_assert_int_eq(kmem_cache_free(&cache, phys[4]), 0);
	want = (struct counters){ 2, 8, 4, 1, 1, 1 };
	assert_counters(&cache, &want);
	/* The empty slab is used again before any new one. */
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[4]), 0);
	ck_assert_ptr_eq(slab_of(&cache, phys[4]), slab[4]);
	want = (struct counters){ 2, 8, 5, 0, 1, 1 };
	assert_counters(&cache, &want);
	ck_assert_uint_eq(fp.nr_alloc, 2);

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), 0);
	want = (struct counters){ 2, 8, 0, 2, 2, 0 };
	assert_counters(&cache, &want);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 16);
	want = (struct counters){ 0 };
	assert_counters(&cache, &want);
	assert_pool_restored();
}
END_TEST

/* ------------------------------------------------------- min_partial */

/*
 * SLUB's __slab_free(): an emptied slab is freed when nr_partial, which counts
 * the slab itself, is already >= min_partial. Emptying full slabs one after
 * the other therefore keeps min_partial - 1 of them; with other partial slabs
 * around, none.
 */
START_TEST(test_min_partial_rule)
{
	const struct kmalloc_class *k = &kmalloc_classes[_i];
	uint32_t per = k->objs_per_slab, nslabs = 12, n = nslabs * per;
	uint64_t *phys = calloc(n, sizeof(*phys));
	unsigned int mp;

	ck_assert_ptr_nonnull(phys);
	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	mp = cache.min_partial;
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[i]), 0);
	ck_assert_uint_eq(list_len(&cache.full), nslabs);

	/* Empty whole slabs, one at a time. */
	for (uint32_t s = 0; s < nslabs; s++) {
		for (uint32_t j = 0; j < per; j++)
			ck_assert_int_eq(kmem_cache_free(&cache, phys[s * per + j]), 0);
		ck_assert_int_eq(kmem_cache_check(&cache), 0);
		ck_assert_uint_eq(cache.nr_empty, s + 1 < mp ? s + 1 : mp - 1);
		ck_assert_uint_eq(cache.nr_slabs, nslabs - s - 1 + cache.nr_empty);
	}
	ck_assert_uint_eq(cache.nr_partial, mp - 1);
	ck_assert_uint_eq(list_len(&cache.partial), mp - 1);
	ck_assert_uint_eq(fp.pages_out, (uint64_t)(mp - 1) << k->order);

	/* Refill: the kept slabs are used first, then new ones. */
	uint64_t allocs = fp.nr_alloc;

	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[i]), 0);
	ck_assert_uint_eq(fp.nr_alloc - allocs, nslabs - (mp - 1));

	/* Take one object out of each slab: all partial, none empty. Then
	 * emptying any slab frees it, since nr_partial >= min_partial. */
	for (uint32_t s = 0; s < nslabs; s++)
		ck_assert_int_eq(kmem_cache_free(&cache, phys[s * per]), 0);
	ck_assert_uint_eq(cache.nr_partial, nslabs);
	ck_assert_uint_eq(list_len(&cache.partial), nslabs);
	for (uint32_t s = 0; s < nslabs; s++) {
		for (uint32_t j = 1; j < per; j++)
			ck_assert_int_eq(kmem_cache_free(&cache, phys[s * per + j]), 0);
		ck_assert_int_eq(kmem_cache_check(&cache), 0);
		if (nslabs - s > mp) {
			ck_assert_uint_eq(cache.nr_empty, 0);
			ck_assert_uint_eq(cache.nr_slabs, nslabs - s - 1);
		}
	}
	/* The last min_partial - 1 to empty were kept. */
	ck_assert_uint_eq(cache.nr_empty, mp - 1);
	ck_assert_uint_eq(cache.nr_active, 0);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), (uint64_t)(mp - 1) << k->order);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 0);
	assert_pool_restored();
	free(phys);
}
END_TEST

/* -------------------------------------------------- shrink and destroy */

START_TEST(test_shrink)
{
	const struct kmalloc_class *k = class_named("kmalloc-512"); /* 16 objs, 2 pages */
	uint64_t phys[64];

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[i]), 0);
	/* Empty slabs 0 and 2, leave 1 with one object, 3 full. */
	for (int i = 0; i < 48; i++)
		if (i != 20)
			ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), 0);
	ck_assert_uint_eq(cache.nr_empty, 2);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 4);
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_slabs, 2);
	ck_assert_uint_eq(cache.nr_objs, 32);
	ck_assert_uint_eq(cache.nr_active, 17);
	ck_assert_uint_eq(cache.nr_empty, 0);
	ck_assert_uint_eq(fp.pages_out, 4);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 0);

	/* Live objects survive a shrink and free normally afterwards. */
	ck_assert_int_eq(kmem_cache_free(&cache, phys[20]), 0);
	for (int i = 48; i < 64; i++)
		ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), 0);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 4);
	assert_pool_restored();
}
END_TEST

START_TEST(test_destroy)
{
	const struct kmalloc_class *k = class_named("kmalloc-96");
	uint64_t phys;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	for (int i = 0; i < 100; i++) /* 3 slabs: full, full, partial */
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	ck_assert_int_eq(kmem_cache_free(&cache, phys), 0);
	ck_assert_uint_eq(cache.nr_slabs, 3);
	kmem_cache_destroy(&cache);
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_slabs, 0);
	ck_assert_uint_eq(cache.nr_objs, 0);
	ck_assert_uint_eq(cache.nr_active, 0);
	ck_assert_uint_eq(cache.nr_empty, 0);
	ck_assert_uint_eq(cache.nr_partial, 0);
	ck_assert(TAILQ_EMPTY(&cache.partial));
	ck_assert(TAILQ_EMPTY(&cache.full));
	assert_pool_restored();

	/* Destroying an empty cache is fine; the cache stays usable. */
	kmem_cache_destroy(&cache);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	slab_of(&cache, phys);
	kmem_cache_destroy(&cache);
	assert_pool_restored();
}
END_TEST

/* ------------------------------------------------------- granted slabs */

/* A granted slab: pages of the class's order from the page allocator,
 * every object counted in use, on no list and not in the slab map (so no
 * kmem_cache_alloc()/free() can touch it); shrink keeps it; given back,
 * its pages return and the counts with them. */
START_TEST(test_grant_slab)
{
	const struct kmalloc_class *k = class_named("kmalloc-512"); /* 16 objs, 2 pages */
	struct counters want = { 1, 16, 16, 0, 0, 0 };
	uint32_t pfn, pfn2, at;
	uint64_t phys;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_grant_slab(&cache, 0x820, &pfn), 0);
	ck_assert_uint_eq(fp.last_gfp, 0x820);
	ck_assert_uint_eq(pfn % 2, 0);
	ck_assert_uint_eq(cache.nr_granted, 1);
	assert_counters(&cache, &want);
	ck_assert_ptr_null(fp.smap.at[pfn]);
	ck_assert_ptr_null(fp.smap.at[pfn + 1]);

	/* an object of the cache comes from a slab of its own */
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	ck_assert(phys >> KM_PAGE_SHIFT < pfn || phys >> KM_PAGE_SHIFT >= pfn + 2);
	want = (struct counters){ 2, 32, 17, 0, 1, 0 };
	assert_counters(&cache, &want);
	/* the granted slab's objects are no kmem_cache objects */
	ck_assert_int_eq(kmem_cache_free(&cache, (uint64_t)pfn << KM_PAGE_SHIFT), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&cache, ((uint64_t)pfn << KM_PAGE_SHIFT) + 512), -EINVAL);
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, (uint64_t)pfn << KM_PAGE_SHIFT), -EEXIST);
	assert_counters(&cache, &want);
	/* shrink gives back empty slabs only */
	ck_assert_int_eq(kmem_cache_free(&cache, phys), 0);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 2);
	want = (struct counters){ 1, 16, 16, 0, 0, 0 };
	assert_counters(&cache, &want);

	/* exactly at a pfn (a successor): misaligned, taken, past the map */
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, pfn + 1), -EINVAL);
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, pfn), -EEXIST);
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, POOL_PAGES), -EINVAL);
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, UINT32_MAX - 1), -EINVAL);
	assert_counters(&cache, &want);
	at = pfn == 0 ? 2 : 0;
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, at), 0);
	want = (struct counters){ 2, 32, 32, 0, 0, 0 };
	assert_counters(&cache, &want);
	ck_assert_uint_eq(cache.nr_granted, 2);

	/* no pages: -ENOMEM, nothing counted */
	fp.fail = true;
	ck_assert_int_eq(kmem_cache_grant_slab(&cache, 0, &pfn2), -ENOMEM);
	ck_assert_int_eq(kmem_cache_grant_slab_at(&cache, 64), -ENOMEM);
	fp.fail = false;
	assert_counters(&cache, &want);

	kmem_cache_ungrant_slab(&cache, at);
	want = (struct counters){ 1, 16, 16, 0, 0, 0 };
	assert_counters(&cache, &want);
	kmem_cache_ungrant_slab(&cache, pfn);
	ck_assert_uint_eq(cache.nr_granted, 0);
	assert_no_slab(&cache);
	assert_pool_restored();
}
END_TEST

/* Every class: a granted slab is 1 << order pages, naturally aligned,
 * objs_per_slab objects in use. */
START_TEST(test_grant_slab_classes)
{
	const struct kmalloc_class *k = &kmalloc_classes[_i];
	uint32_t pfn[3];

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(kmem_cache_grant_slab(&cache, 0, &pfn[i]), 0);
		ck_assert_uint_eq(pfn[i] % (1u << k->order), 0);
		for (int j = 0; j < i; j++)
			ck_assert_uint_ne(pfn[i], pfn[j]);
	}
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_slabs, 3);
	ck_assert_uint_eq(cache.nr_objs, 3ull * k->objs_per_slab);
	ck_assert_uint_eq(cache.nr_active, 3ull * k->objs_per_slab);
	ck_assert_uint_eq(fp.pages_out, 3ull << k->order);
	for (int i = 0; i < 3; i++)
		kmem_cache_ungrant_slab(&cache, pfn[i]);
	assert_no_slab(&cache);
	assert_pool_restored();
}
END_TEST

/* A cache destroyed with granted slabs (a domain torn down with clients
 * in) forgets them: its counts go to zero, their pages are the page
 * allocator's owner's business. */
START_TEST(test_grant_slab_destroy)
{
	const struct kmalloc_class *k = class_named("kmalloc-96");
	uint32_t pfn;
	uint64_t phys;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_grant_slab(&cache, 0, &pfn), 0);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	kmem_cache_destroy(&cache);
	assert_no_slab(&cache);
	ck_assert_uint_eq(cache.nr_granted, 0);
	ck_assert_uint_eq(fp.pages_out, 1); /* the granted page, still out */
	fake_free_pages(&fp, pfn, k->order);
	assert_pool_restored();
}
END_TEST

/* -------------------------------------------------------- bad input */

START_TEST(test_free_invalid)
{
	const struct kmalloc_class *k = class_named("kmalloc-96"); /* 42 objs in 4096 */
	struct counters want = { 1, 42, 2, 0, 1, 0 };
	struct kmem_cache other, other32;
	uint64_t phys, phys2, base;
	struct slab *slab;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys2), 0);
	slab = slab_of(&cache, phys);
	ck_assert_ptr_eq(slab_of(&cache, phys2), slab);
	base = (uint64_t)slab->pfn << KM_PAGE_SHIFT;
	ck_assert_uint_eq(phys, base);
	ck_assert_uint_eq(phys2, base + 96);

	ck_assert_int_eq(kmem_cache_free(&cache, phys + 8), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&cache, phys + 32), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&cache, base + 42 * 96), -EINVAL); /* tail */
	/* a page with no slab */
	ck_assert_int_eq(kmem_cache_free(&cache, base + KM_PAGE_SIZE), -EINVAL);
	if (base)
		ck_assert_int_eq(kmem_cache_free(&cache, base - 96), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&cache, POOL_BYTES), -EINVAL); /* past the map */
	ck_assert_int_eq(kmem_cache_free(&cache, UINT64_MAX), -EINVAL);
	/* A free object, never handed out. */
	ck_assert_int_eq(kmem_cache_free(&cache, base + 5 * 96), -EINVAL);
	/* The slab of another cache, of the same class or of another whose
	 * layout has an object there too. */
	kmem_cache_init(&other, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_free(&other, phys), -EINVAL);
	kmem_cache_init(&other32, class_named("kmalloc-32"), &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_free(&other32, phys), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&other32, phys2), -EINVAL);
	assert_counters(&cache, &want);
	ck_assert_uint_eq(other.nr_active + other32.nr_active, 0);

	/* Double free. */
	ck_assert_int_eq(kmem_cache_free(&cache, phys), 0);
	ck_assert_int_eq(kmem_cache_free(&cache, phys), -EINVAL);
	want = (struct counters){ 1, 42, 1, 0, 1, 0 };
	assert_counters(&cache, &want);
	ck_assert_int_eq(kmem_cache_free(&cache, phys2), 0);
	kmem_cache_destroy(&cache);
	assert_pool_restored();
}
END_TEST

START_TEST(test_alloc_pages_failure)
{
	const struct kmalloc_class *k = class_named("kmalloc-4k"); /* 8 objs, 8 pages */
	struct counters want;
	uint64_t phys;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	fp.fail = true;
	ck_assert_int_eq(kmem_cache_alloc(&cache, 7, &phys), -ENOMEM);
	ck_assert_uint_eq(fp.last_gfp, 7);
	want = (struct counters){ 0 };
	assert_counters(&cache, &want);

	fp.fail = false;
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	want = (struct counters){ 1, 8, 8, 0, 0, 1 };
	assert_counters(&cache, &want);
	fp.fail = true;
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), -ENOMEM);
	assert_counters(&cache, &want);

	/* Room in a slab needs no pages. */
	ck_assert_int_eq(kmem_cache_free(&cache, phys), 0);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	assert_counters(&cache, &want);
	fp.fail = false;
	kmem_cache_destroy(&cache);
	assert_pool_restored();
}
END_TEST

/* The fake buddy itself runs dry: 16 pages hold two 8-page slabs. */
START_TEST(test_pool_exhausted)
{
	const struct kmalloc_class *k = class_named("kmalloc-2k"); /* 16 objs, 8 pages */
	struct counters want = { 2, 32, 32, 0, 0, 2 };
	uint64_t phys;

	fake_teardown();
	fake_setup_n(16);
	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	for (int i = 0; i < 32; i++)
		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), -ENOMEM);
	assert_counters(&cache, &want);
	kmem_cache_destroy(&cache);
	assert_pool_restored();
}
END_TEST

START_TEST(test_check_detects)
{
	const struct kmalloc_class *k = class_named("kmalloc-64");
	uint64_t phys;
	struct slab *slab;

	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys), 0);
	slab = slab_of(&cache, phys);
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	cache.nr_active++;
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	cache.nr_active--;
	cache.nr_empty++;
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	cache.nr_empty--;
	cache.nr_partial++;
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	cache.nr_partial--;
	/* The slab map must name every slab at its first pfn. */
	fp.smap.at[slab->pfn] = NULL;
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	fp.smap.at[slab->pfn] = slab;
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	slab->freelist[10] = 10; /* cycle */
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	slab->freelist[10] = 11;
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	slab->inuse++;
	ck_assert_int_eq(kmem_cache_check(&cache), -EUCLEAN);
	slab->inuse--;
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	kmem_cache_destroy(&cache);
}
END_TEST

/* --------------------------------------------------- kmem_cache_alloc_at */

/*
 * An object in the middle of a slab no one made yet: the slab is made at
 * the naturally aligned pfn the object implies (pages through
 * alloc_pages_at, never alloc_pages), the object is handed out and the rest
 * of the slab is free for kmem_cache_alloc(), which never hands out an
 * object taken with _at.
 */
START_TEST(test_alloc_at)
{
	const struct kmalloc_class *k = &kmalloc_classes[_i];
	const uint32_t per = k->objs_per_slab, pages = 1u << k->order;
	const uint32_t pfn = 40;    /* aligned for every class order */
	const uint32_t j = per / 2; /* an object in the middle, not the first */
	const uint64_t base = (uint64_t)pfn << KM_PAGE_SHIFT;
	const uint64_t p = base + (uint64_t)j * k->size;
	struct counters want = { 1, per, 1, 0, 1, 0 };
	uint64_t *phys = calloc(per + 1, sizeof(*phys));
	bool *seen = calloc(per, sizeof(*seen));
	struct slab *s;

	ck_assert_ptr_nonnull(phys);
	ck_assert_ptr_nonnull(seen);
	ck_assert_uint_gt(j, 0);
	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, p), 0);
	s = fp.smap.at[pfn];
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(s->cache, &cache);
	ck_assert_uint_eq(s->pfn, pfn);
	ck_assert_uint_eq(s->inuse, 1);
	ck_assert_ptr_eq(slab_of(&cache, p), s);
	ck_assert_uint_eq(fp.nr_alloc_at, 1);
	ck_assert_uint_eq(fp.nr_alloc, 0);
	assert_counters(&cache, &want);
	/* Its pages left the page allocator, those exactly. */
	ck_assert_uint_eq(fp.buddy.free_units, POOL_PAGES - pages);
	ck_assert_int_eq(buddy_alloc_at(&fp.buddy, pfn, k->order), -ENOENT);
	for (uint32_t q = 0; q < POOL_PAGES; q++)
		if (q != pfn && fp.smap.at[q])
			ck_abort_msg("a slab at pfn %u too", q);

	/* Handed out already. */
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, p), -EEXIST);
	/* Not an object start: inside one, past the last, past the pool. */
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, p + 4), -EINVAL);
	if (k->size > 8)
		ck_assert_int_eq(kmem_cache_alloc_at(&cache, p + 8), -EINVAL);
	if ((uint64_t)per * k->size < (uint64_t)KM_PAGE_SIZE << k->order)
		ck_assert_int_eq(kmem_cache_alloc_at(&cache, base + (uint64_t)per * k->size),
				 -EINVAL);
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, POOL_BYTES), -EINVAL);
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, POOL_BYTES + j * k->size), -EINVAL);
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, UINT64_MAX), -EINVAL);
	assert_counters(&cache, &want);
	ck_assert_uint_eq(fp.nr_alloc_at, 1);

	/* Another object of the same slab needs no pages. */
	ck_assert_int_eq(kmem_cache_alloc_at(&cache, base), 0);
	ck_assert_uint_eq(fp.nr_alloc_at, 1);
	want.nr_active = 2;
	assert_counters(&cache, &want);

	/* kmem_cache_alloc() fills that slab first, around the two. */
	seen[0] = seen[j] = true;
	for (uint32_t n = 2; n < per; n++) {
		uint32_t idx;

		ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[n]), 0);
		ck_assert_ptr_eq(slab_of(&cache, phys[n]), s);
		ck_assert_uint_eq((phys[n] - base) % k->size, 0);
		idx = (uint32_t)((phys[n] - base) / k->size);
		ck_assert_msg(!seen[idx], "object %u handed out twice", idx);
		seen[idx] = true;
	}
	ck_assert_uint_eq(fp.nr_alloc, 0);
	want = (struct counters){ 1, per, per, 0, 0, 1 };
	assert_counters(&cache, &want);
	/* Full now: the next object is in a new slab from alloc_pages. */
	ck_assert_int_eq(kmem_cache_alloc(&cache, 0, &phys[per]), 0);
	ck_assert_ptr_ne(slab_of(&cache, phys[per]), s);
	ck_assert_uint_eq(fp.nr_alloc, 1);

	/* Objects taken with _at free as any other. */
	ck_assert_int_eq(kmem_cache_free(&cache, p), 0);
	ck_assert_int_eq(kmem_cache_free(&cache, p), -EINVAL);
	ck_assert_int_eq(kmem_cache_free(&cache, base), 0);
	for (uint32_t n = 2; n <= per; n++)
		ck_assert_int_eq(kmem_cache_free(&cache, phys[n]), 0);
	want = (struct counters){ 2, 2 * per, 0, 2, 2, 0 };
	assert_counters(&cache, &want);
	ck_assert_uint_eq(kmem_cache_shrink(&cache), 2u << k->order);
	assert_pool_restored();
	free(phys);
	free(seen);
}
END_TEST

/* Pages another cache or owner holds are not the cache's to take. */
START_TEST(test_alloc_at_taken)
{
	struct kmem_cache a, same, small, big;
	uint64_t pa, free_units;
	uint32_t pfn_a, idx;

	kmem_cache_init(&a, class_named("kmalloc-64"), &fake_ops, &fp.smap); /* order 0 */
	kmem_cache_init(&same, class_named("kmalloc-64"), &fake_ops, &fp.smap);
	kmem_cache_init(&small, class_named("kmalloc-32"), &fake_ops, &fp.smap);
	kmem_cache_init(&big, class_named("kmalloc-8k"), &fake_ops, &fp.smap); /* order 3 */
	ck_assert_int_eq(kmem_cache_alloc(&a, 0, &pa), 0);
	pfn_a = slab_of(&a, pa)->pfn;
	/* A page nobody's slab: as a large kmalloc's would be. */
	ck_assert_int_eq(buddy_alloc_at(&fp.buddy, 41, 0), 0);
	fp.pages_out++;
	free_units = fp.buddy.free_units;

	/* A's slab, as another cache of its class or of another class sees it:
	 * the object handed out, a free one, the slab's first byte. */
	ck_assert_int_eq(kmem_cache_alloc_at(&same, pa), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&same, pa + 64), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&small, (uint64_t)pfn_a << KM_PAGE_SHIFT), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&small, pa + 32 * 5), -EEXIST);
	/* A larger slab over A's page. */
	ck_assert_int_eq(kmem_cache_alloc_at(&big, (uint64_t)pfn_a << KM_PAGE_SHIFT), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&big, ((uint64_t)pfn_a << KM_PAGE_SHIFT) + 8192),
			 -EEXIST);
	/* Pages held outside any slab: the page allocator refuses them. */
	ck_assert_int_eq(kmem_cache_alloc_at(&same, 41ull << KM_PAGE_SHIFT), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&big, 40ull << KM_PAGE_SHIFT), -EEXIST);
	ck_assert_int_eq(kmem_cache_alloc_at(&big, (40ull << KM_PAGE_SHIFT) + 3 * 8192), -EEXIST);
	ck_assert_ptr_null(fp.smap.at[40]);
	ck_assert_ptr_null(fp.smap.at[41]);
	assert_no_slab(&same);
	assert_no_slab(&small);
	assert_no_slab(&big);
	ck_assert_uint_eq(fp.buddy.free_units, free_units);
	ck_assert_uint_eq(fp.nr_alloc_at, 0);
	ck_assert_int_eq(buddy_check(&fp.buddy), 0);
	ck_assert_uint_eq(a.nr_active, 1);
	ck_assert_int_eq(kmem_cache_check(&a), 0);

	/* The other way round: a large slab made with _at, then a small
	 * cache's object inside its pages. */
	ck_assert_int_eq(kmem_cache_alloc_at(&big, (48ull << KM_PAGE_SHIFT) + 8192), 0);
	ck_assert_ptr_eq(slab_of(&big, 48ull << KM_PAGE_SHIFT), fp.smap.at[48]);
	for (idx = 48; idx < 56; idx++)
		ck_assert_int_eq(kmem_cache_alloc_at(&small, (uint64_t)idx << KM_PAGE_SHIFT),
				 -EEXIST);
	assert_no_slab(&small);
	ck_assert_uint_eq(big.nr_active, 1);
	ck_assert_uint_eq(fp.nr_alloc_at, 1);

	/* The page allocator out of memory: -ENOMEM, nothing made. */
	fp.fail = true;
	ck_assert_int_eq(kmem_cache_alloc_at(&small, 64ull << KM_PAGE_SHIFT), -ENOMEM);
	fp.fail = false;
	assert_no_slab(&small);
	ck_assert_ptr_null(fp.smap.at[64]);
	ck_assert(buddy_is_free_block(&fp.buddy, 64, 3));

	kmem_cache_destroy(&a);
	kmem_cache_destroy(&big);
	buddy_free(&fp.buddy, 41, 0);
	fp.pages_out--;
	assert_pool_restored();
}
END_TEST

/* ---------------------------------------------------------- random */

static uint64_t base_seed; /* set once in main(), inherited by the forked tests */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); /* splitmix64 */

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random alloc, alloc_at and free on class _i against an 8-byte-granule
 * ownership map of the pool, with kmem_cache_check() and counters after
 * every step. kmem_cache_alloc_at() aims at a random object slot of the
 * pool: with one cache, whatever is not its slab is free pages, so it must
 * succeed exactly when that object is not handed out. */
START_TEST(test_random)
{
	static uint8_t owner[POOL_BYTES / 8];
	const struct kmalloc_class *k = &kmalloc_classes[_i];
	enum { MAX_LIVE = 600, STEPS = 3000 };
	static uint64_t phys[MAX_LIVE];
	const uint32_t nr_slots = POOL_PAGES >> k->order; /* slabs the pool holds */
	uint64_t seed = base_seed + (uint64_t)_i;
	uint32_t nr_live = 0;

	rng_state = seed;
	printf("test_random[%s]: seed %" PRIu64 "\n", k->name, seed);
	fflush(stdout);
	memset(owner, 0, sizeof(owner));
	kmem_cache_init(&cache, k, &fake_ops, &fp.smap);

	for (int step = 0; step < STEPS; step++) {
		/* Phases of growth and shrinkage, so slabs empty and refill. */
		bool grow = (step / 500) % 2 == 0;

		if (nr_live < MAX_LIVE && rnd() % 4 == 0) {
			uint64_t slot = rnd() % nr_slots, j = rnd() % k->objs_per_slab;
			uint64_t p = (slot << (KM_PAGE_SHIFT + k->order)) + j * k->size;
			bool taken = owner[p / 8];
			int ret;

			ck_assert_int_eq(kmem_cache_alloc_at(&cache, p + 4), -EINVAL);
			ret = kmem_cache_alloc_at(&cache, p);
			ck_assert_msg(ret == (taken ? -EEXIST : 0),
				      "step %d: alloc_at %#" PRIx64 " (%s): %d", step, p,
				      taken ? "taken" : "free", ret);
			if (!ret) {
				slab_of(&cache, p);
				for (uint64_t g = p / 8; g < (p + k->size) / 8; g++) {
					if (owner[g])
						ck_abort_msg("step %d: overlap at %#" PRIx64, step,
							     g * 8);
					owner[g] = 1;
				}
				phys[nr_live++] = p;
			}
		} else if (nr_live < MAX_LIVE &&
			   (nr_live == 0 || rnd() % 100 < (grow ? 70u : 30u))) {
			uint64_t p;
			int ret = kmem_cache_alloc(&cache, 0, &p);

			if (ret) {
				ck_assert_int_eq(ret, -ENOMEM);
				ck_assert_uint_lt(fp.buddy.free_units, 1u << k->order);
				continue;
			}
			slab_of(&cache, p);
			for (uint64_t g = p / 8; g < (p + k->size) / 8; g++) {
				ck_assert_msg(!owner[g], "step %d: overlap at %#" PRIx64, step,
					      g * 8);
				owner[g] = 1;
			}
			phys[nr_live++] = p;
		} else if (nr_live) {
			uint32_t i = (uint32_t)(rnd() % nr_live);

			for (uint64_t g = phys[i] / 8; g < (phys[i] + k->size) / 8; g++)
				owner[g] = 0;
			ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), 0);
			ck_assert_int_eq(kmem_cache_free(&cache, phys[i]), -EINVAL);
			phys[i] = phys[--nr_live];
		}
		ck_assert_msg(kmem_cache_check(&cache) == 0, "step %d", step);
		ck_assert_uint_eq(cache.nr_active, nr_live);
		ck_assert_uint_le(cache.nr_empty, cache.min_partial);
		ck_assert_uint_eq(fp.pages_out, cache.nr_slabs << k->order);
	}
	while (nr_live) {
		nr_live--;
		ck_assert_int_eq(kmem_cache_free(&cache, phys[nr_live]), 0);
	}
	ck_assert_int_eq(kmem_cache_check(&cache), 0);
	ck_assert_uint_eq(cache.nr_empty, cache.nr_slabs);
	uint64_t kept = fp.pages_out;

	ck_assert_uint_eq(kmem_cache_shrink(&cache), kept);
	assert_pool_restored();
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *tc;

	tc = tcase_create("classes");
	tcase_add_loop_test(tc, test_class_table, 0, KM_NR_KMALLOC_CLASSES);
	tcase_add_test(tc, test_class_index);
	suite_add_tcase(s, tc);

	tc = tcase_create("calculate_order");
	tcase_add_loop_test(tc, test_calculate_order, 0, KM_NR_KMALLOC_CLASSES);
	tcase_add_test(tc, test_calculate_order_other);
	suite_add_tcase(s, tc);

	tc = tcase_create("placement");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_loop_test(tc, test_placement, 0, KM_NR_KMALLOC_CLASSES);
	suite_add_tcase(s, tc);

	tc = tcase_create("counters");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_test(tc, test_lists_and_counters);
	suite_add_tcase(s, tc);

	tc = tcase_create("min_partial");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_loop_test(tc, test_min_partial, 0, KM_NR_KMALLOC_CLASSES);
	tcase_add_loop_test(tc, test_min_partial_rule, 0, KM_NR_KMALLOC_CLASSES);
	suite_add_tcase(s, tc);

	tc = tcase_create("shrink_destroy");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_test(tc, test_shrink);
	tcase_add_test(tc, test_destroy);
	suite_add_tcase(s, tc);

	tc = tcase_create("grant_slab");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_test(tc, test_grant_slab);
	tcase_add_loop_test(tc, test_grant_slab_classes, 0, KM_NR_KMALLOC_CLASSES);
	tcase_add_test(tc, test_grant_slab_destroy);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_test(tc, test_free_invalid);
	tcase_add_test(tc, test_alloc_pages_failure);
	tcase_add_test(tc, test_pool_exhausted);
	tcase_add_test(tc, test_check_detects);
	suite_add_tcase(s, tc);

	tc = tcase_create("alloc_at");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_loop_test(tc, test_alloc_at, 0, KM_NR_KMALLOC_CLASSES);
	tcase_add_test(tc, test_alloc_at_taken);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random, 0, KM_NR_KMALLOC_CLASSES);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	int failed;

	base_seed = test_seed();
	printf("test-slab: KM_TEST_SEED=%" PRIu64 "\n", base_seed);
	fflush(stdout);
	failed = test_run_suite(slab_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
