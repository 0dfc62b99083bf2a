// SPDX-License-Identifier: MIT
/*
 * test-inspect.c - the numbers kmctl and km_get_meminfo show add up the way
 * the kernel's do: MemTotal = MemFree + Slab + VmallocUsed for the pool,
 * buddyinfo's free pages are MemFree, slabinfo sums the domains' caches,
 * and everything is free again once everything is freed; slab grants count
 * as whole slabs in use, a domain's free frames as its buddyinfo orders 9
 * and 10.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "gfp.h"
#include "inspect.h"
#include "kmalloc.h"
#include "log.h"
#include "server.h"
#include "sizes.h"
#include "testutil.h"
#include "vmalloc.h"

#define POOL (32ull << 20)

static void server_up(struct server *srv)
{
	struct mm_options opt = { .pool_size = POOL,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = UINT64_MAX };

	memset(srv, 0, sizeof(*srv));
	ck_assert_int_eq(mm_init(&srv->mm, &opt), 0);
	ck_assert_int_eq(grant_table_init(&srv->grants), 0);
}

static void assert_adds_up(struct server *srv)
{
	struct inspect_meminfo mi;
	struct inspect_buddy row;
	uint64_t pages = 0;
	uint32_t i;
	int o;

	inspect_meminfo(srv, &mi);
	ck_assert_uint_eq(mi.total, POOL);
	ck_assert_uint_eq(mi.free + mi.slab + mi.vmalloc_used, mi.total);
	ck_assert_uint_le(mi.slab_reclaimable, mi.slab);
	ck_assert_uint_eq(mi.slab_reclaimable + mi.slab_unreclaimable, mi.slab);
	for (i = 0; inspect_buddyinfo(&srv->mm, i, &row); i++)
		for (o = 0; o < INSPECT_BUDDY_ORDERS; o++)
			pages += row.nr_free[o] << o;
	ck_assert_uint_eq(i, 1 + srv->mm.nr_domains);
	ck_assert_uint_eq(pages * 4096, mi.free);
}

START_TEST(test_meminfo_buddyinfo_slabinfo_add_up)
{
	struct server srv;
	struct domain *a, *b;
	struct kmalloc_obj objs[300], large[3];
	struct inspect_slab rows[KM_NR_KMALLOC_CLASSES];
	struct vmalloc_area *area;
	uint64_t active = 0;
	int i;

	log_init(LOG_LEVEL_WARN);
	server_up(&srv);
	assert_adds_up(&srv);
	ck_assert_int_eq(domain_get(&srv.mm, 1000, &a), 0);
	ck_assert_int_eq(domain_get(&srv.mm, 1001, &b), 0);
	for (i = 0; i < 300; i++)
		ck_assert_int_eq(
			kmalloc_alloc(i % 2 ? a : b, 1 + (size_t)i * 27, KM_GFP_KERNEL, &objs[i]),
			0);
	ck_assert_int_eq(kmalloc_alloc(a, 100000, KM_GFP_KERNEL, &large[0]), 0);
	ck_assert_int_eq(kmalloc_alloc(a, 2u << 20, KM_GFP_KERNEL, &large[1]), 0);
	ck_assert_int_eq(kmalloc_alloc(b, 4u << 20, KM_GFP_KERNEL, &large[2]), 0);
	ck_assert_int_eq(vmalloc_alloc(b, 3u << 20, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 2);
	assert_adds_up(&srv);

	inspect_slabinfo(&srv.mm, rows);
	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		ck_assert_str_eq(rows[i].name, kmalloc_classes[i].name);
		ck_assert_uint_eq(rows[i].num_slabs, a->caches[i].nr_slabs + b->caches[i].nr_slabs);
		ck_assert_uint_eq(rows[i].num_objs, rows[i].num_slabs * rows[i].objperslab);
		active += rows[i].active_objs;
	}
	ck_assert_uint_eq(active, 300);

	for (i = 0; i < 300; i++)
		kmalloc_free(i % 2 ? a : b, &objs[i]);
	kmalloc_free(a, &large[0]);
	kmalloc_free(a, &large[1]);
	kmalloc_free(b, &large[2]);
	vmalloc_free(b, area);
	assert_adds_up(&srv);
	domain_shrink(a);
	domain_shrink(b);
	{
		struct inspect_meminfo mi;

		inspect_meminfo(&srv, &mi);
		ck_assert_uint_eq(mi.free, mi.total); /* nothing held, no empty slab kept */
		ck_assert_uint_eq(mi.domains, 2);
	}
	domain_put(a);
	domain_put(b);
	ck_assert(!mm_trim(&srv.mm, 0)); /* both go */
	assert_adds_up(&srv);
	ck_assert_uint_eq(frame_nr_free(&srv.mm.frames), POOL >> 21);
	mm_fini(&srv.mm);
	grant_table_fini(&srv.grants);
}
END_TEST

/* Slab grants show in slabinfo as whole slabs in use and in meminfo as
 * Slab; a domain's free frames show in its buddyinfo zone as page orders 9
 * and 10 (a run of 8 frames as four order-10 blocks) and count in
 * MemFree; everything still adds up. */
START_TEST(test_slab_grants_and_free_frames)
{
	struct server srv;
	struct domain *d;
	struct inspect_slab rows[KM_NR_KMALLOC_CLASSES];
	struct inspect_meminfo mi, before;
	struct inspect_buddy row;
	struct vmalloc_area *area;
	int cls = kms_class_index(96), big = kms_class_index(8192);
	uint64_t phys[3];

	log_init(LOG_LEVEL_WARN);
	server_up(&srv);
	ck_assert_int_eq(domain_get(&srv.mm, 1000, &d), 0);
	inspect_meminfo(&srv, &before);

	ck_assert_int_eq(kmalloc_slab_alloc(d, cls, KM_GFP_KERNEL, &phys[0]), 0);
	ck_assert_int_eq(kmalloc_slab_alloc(d, cls, KM_GFP_KERNEL, &phys[1]), 0);
	ck_assert_int_eq(kmalloc_slab_alloc(d, big, KM_GFP_KERNEL, &phys[2]), 0);
	ck_assert_uint_eq(phys[2] % 32768, 0);
	inspect_slabinfo(&srv.mm, rows);
	ck_assert_uint_eq(rows[cls].active_objs, 2 * 42);
	ck_assert_uint_eq(rows[cls].num_objs, 2 * 42);
	ck_assert_uint_eq(rows[cls].num_slabs, 2);
	ck_assert_uint_eq(rows[big].active_objs, 4);
	ck_assert_uint_eq(rows[big].num_slabs, 1);
	inspect_meminfo(&srv, &mi);
	ck_assert_uint_eq(mi.slab, (2 + 8) * 4096ull);
	assert_adds_up(&srv);

	/* 8 frames given back to the domain: one block of 8 */
	ck_assert_int_eq(vmalloc_alloc(d, 8 * KM_FRAME_SIZE, KM_GFP_KERNEL, &area), 0);
	inspect_meminfo(&srv, &mi);
	ck_assert_uint_eq(mi.vmalloc_used, 8 * KM_FRAME_SIZE);
	assert_adds_up(&srv);
	vmalloc_free(d, area);
	ck_assert_uint_eq(d->frames.nr_free[3], 1);
	ck_assert(inspect_buddyinfo(&srv.mm, 1, &row));
	ck_assert_str_eq(row.zone, "uid1000");
	for (int o = 0; o < KM_FRAME_ORDER; o++)
		ck_assert_uint_eq(row.nr_free[o], d->pages.nr_free[o]);
	ck_assert_uint_eq(row.nr_free[9], d->frames.nr_free[0]);
	ck_assert_uint_eq(row.nr_free[10], 4 + d->frames.nr_free[1] + 2 * d->frames.nr_free[2]);
	inspect_meminfo(&srv, &mi);
	ck_assert_uint_eq(mi.vmalloc_used, 0);
	ck_assert_uint_ge(mi.free, d->frames.free_units * KM_FRAME_SIZE);
	assert_adds_up(&srv);

	kmalloc_slab_free(d, cls, phys[0]);
	kmalloc_slab_free(d, cls, phys[1]);
	kmalloc_slab_free(d, big, phys[2]);
	inspect_slabinfo(&srv.mm, rows);
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		ck_assert_uint_eq(rows[i].active_objs, 0);
		ck_assert_uint_eq(rows[i].num_slabs, 0);
	}
	inspect_meminfo(&srv, &mi);
	ck_assert_uint_eq(mi.slab, 0);
	ck_assert_uint_eq(mi.free, before.free);
	assert_adds_up(&srv);
	domain_put(d);
	assert_adds_up(&srv);
	mm_fini(&srv.mm);
	grant_table_fini(&srv.grants);
}
END_TEST

/* Every frame of the pool once, through pages of @max frames. */
static void frame_map_all(const struct mm *mm, uint8_t *kinds, uint32_t *domains, size_t max)
{
	uint32_t first = 0;
	size_t n;

	while ((n = inspect_frame_map(mm, first, kinds + first, domains + first, max)))
		first += (uint32_t)n;
	ck_assert_uint_eq(first, mm->pool.nr_frames);
}

static uint32_t frame_of(uint64_t phys)
{
	return (uint32_t)(phys >> KM_FRAME_SHIFT);
}

static void assert_frame(const uint8_t *kinds, const uint32_t *domains, uint32_t f, uint8_t kind,
			 const struct domain *d)
{
	ck_assert_msg(kinds[f] == kind, "frame %u is of kind %u, not %u", f, kinds[f], kind);
	ck_assert_uint_eq(domains[f], d->id);
}

/* Frames of @kind in the map. */
static unsigned int frames_of_kind(const uint8_t *kinds, uint32_t nr, uint8_t kind)
{
	unsigned int n = 0;

	for (uint32_t f = 0; f < nr; f++)
		n += kinds[f] == kind;
	return n;
}

/* Pages at any boundary say what one page of them all says (@kinds), and
 * nothing comes past the end. */
static void frame_map_paging(const struct mm *mm, const uint8_t *kinds)
{
	uint32_t nr = mm->pool.nr_frames, domains[16];
	uint8_t again[16];

	frame_map_all(mm, again, domains, 1);
	ck_assert_int_eq(memcmp(kinds, again, nr), 0);
	ck_assert_uint_eq(inspect_frame_map(mm, nr - 3, again, domains, 256), 3);
	ck_assert_uint_eq(inspect_frame_map(mm, nr, again, domains, 256), 0);
	ck_assert_uint_eq(inspect_frame_map(mm, UINT32_MAX, again, domains, 256), 0);
}

/*
 * TABLE_MAP (kmctl map): each frame's kind and domain, as the allocators
 * hold them: free frames, a frame of granted slabs (slab_map.granted), one
 * of cache slabs (slab_map.at), slabs and a large kmalloc below a frame's
 * order in one frame (mixed), a large kmalloc of its own, frames of large
 * kmallocs and of vmalloc areas (frame_use[]), shared ones, a domain's free
 * frames; paged at any boundary.
 */
START_TEST(test_frame_map)
{
	struct server srv;
	struct domain *a, *b, *c;
	struct kmalloc_obj small, large, pages, huge;
	struct vmalloc_area *area;
	uint8_t kinds[16];
	uint32_t domains[16], nr;
	uint64_t slab;

	log_init(LOG_LEVEL_WARN);
	server_up(&srv);
	nr = srv.mm.pool.nr_frames;
	ck_assert_uint_eq(nr, 16);
	frame_map_all(&srv.mm, kinds, domains, 256);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_FREE), nr);
	for (uint32_t f = 0; f < nr; f++)
		ck_assert_uint_eq(domains[f], 0);

	ck_assert_int_eq(domain_get(&srv.mm, 1000, &a), 0);
	ck_assert_int_eq(domain_get(&srv.mm, 1001, &b), 0);
	ck_assert_int_eq(domain_get(&srv.mm, 1002, &c), 0);
	ck_assert_int_eq(kmalloc_slab_alloc(a, kms_class_index(96), KM_GFP_KERNEL, &slab), 0);
	ck_assert_int_eq(kmalloc_alloc(b, 100000, KM_GFP_KERNEL, &pages), 0);
	ck_assert_int_eq(kmalloc_alloc(c, 64, KM_GFP_KERNEL, &small), 0);
	ck_assert_int_eq(kmalloc_alloc(b, 4u << 20, KM_GFP_KERNEL, &huge), 0);
	ck_assert_int_eq(vmalloc_alloc(c, 3u << 20, KM_GFP_KERNEL, &area), 0);
	frame_map_all(&srv.mm, kinds, domains, 3);
	assert_frame(kinds, domains, frame_of(slab), INSPECT_FRAME_SLAB, a);
	assert_frame(kinds, domains, frame_of(pages.phys), INSPECT_FRAME_LARGE, b);
	assert_frame(kinds, domains, frame_of(small.phys), INSPECT_FRAME_SLAB, c);
	assert_frame(kinds, domains, frame_of(huge.phys), INSPECT_FRAME_LARGE, b);
	assert_frame(kinds, domains, frame_of(huge.phys) + 1, INSPECT_FRAME_LARGE, b);
	for (uint32_t i = 0; i < area->nr_frames; i++)
		assert_frame(kinds, domains, area->frames[i], INSPECT_FRAME_VMALLOC, c);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_VMALLOC), 2);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_LARGE), 3);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_SLAB), 2);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_FREE),
			  frame_nr_free(&srv.mm.frames));

	/* A large kmalloc in the frame of a's granted slab: mixed. */
	ck_assert_int_eq(kmalloc_alloc(a, 100000, KM_GFP_KERNEL, &large), 0);
	ck_assert_uint_eq(frame_of(large.phys), frame_of(slab));
	ck_assert_uint_eq(inspect_frame_map(&srv.mm, frame_of(slab), kinds, domains, 1), 1);
	ck_assert_uint_eq(kinds[0], INSPECT_FRAME_MIXED);
	/* Frames whose pages a share's memfd holds are shared, whatever
	 * else they are. */
	srv.mm.frame_use[frame_of(huge.phys)] |= FRAME_USE_SHARED;
	ck_assert_uint_eq(inspect_frame_map(&srv.mm, frame_of(huge.phys), kinds, domains, 2), 2);
	ck_assert_uint_eq(kinds[0], INSPECT_FRAME_SHARED);
	ck_assert_uint_eq(kinds[1], INSPECT_FRAME_LARGE);
	srv.mm.frame_use[frame_of(huge.phys)] &= (uint8_t)~FRAME_USE_SHARED;

	/* Freed: the domains keep the frames, whole and free, until reclaim;
	 * the frame of the freed large kmalloc's pages too. */
	vmalloc_free(c, area);
	kmalloc_free(b, &huge);
	kmalloc_free(b, &pages);
	frame_map_all(&srv.mm, kinds, domains, 256);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_VMALLOC), 0);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_LARGE), 0);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_DOMAIN_FREE),
			  a->frames.free_units + b->frames.free_units + c->frames.free_units);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_DOMAIN_FREE), 3 + 2);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_MIXED), 1);
	frame_map_paging(&srv.mm, kinds);

	kmalloc_free(a, &large);
	kmalloc_slab_free(a, kms_class_index(96), slab);
	kmalloc_free(c, &small);
	domain_put(a);
	domain_put(b);
	domain_put(c);
	while (mm_trim(&srv.mm, UINT64_MAX))
		;
	frame_map_all(&srv.mm, kinds, domains, 256);
	ck_assert_uint_eq(frames_of_kind(kinds, nr, INSPECT_FRAME_FREE), nr);
	mm_fini(&srv.mm);
	grant_table_fini(&srv.grants);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inspect");
	TCase *tc = tcase_create("inspect");

	tcase_add_test(tc, test_meminfo_buddyinfo_slabinfo_add_up);
	tcase_add_test(tc, test_slab_grants_and_free_frames);
	tcase_add_test(tc, test_frame_map);
	suite_add_tcase(s, tc);
	return test_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
