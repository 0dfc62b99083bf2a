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

int main(void)
{
	Suite *s = suite_create("inspect");
	TCase *tc = tcase_create("inspect");

	tcase_add_test(tc, test_meminfo_buddyinfo_slabinfo_add_up);
	tcase_add_test(tc, test_slab_grants_and_free_frames);
	suite_add_tcase(s, tc);
	return test_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
