// SPDX-License-Identifier: MIT
/*
 * test-buddy.c - unit tests of daemon/buddy.c: split and coalesce as in
 * mm/page_alloc.c, free ranges, take, allocation at a given block
 * (buddy_alloc_at()), shared maps (and instances that share one at every
 * order, told apart by an owner array), exhaustion, and seeded random
 * alloc/alloc_at/free sequences checked against a per-unit ownership model
 * (seed printed; KM_TEST_SEED replays one).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buddy.h"
#include "testutil.h"

static struct buddy_map map;
static struct buddy b;

static void setup_map(uint32_t nr, unsigned int max_order)
{
	ck_assert_int_eq(buddy_map_init(&map, nr), 0);
	buddy_init(&b, &map, max_order);
}

static void teardown(void)
{
	buddy_map_fini(&map);
}

/* 64 units, max order 6, all free: one order-6 block. */
static void setup_64(void)
{
	setup_map(64, 6);
	buddy_free_range(&b, 0, 64);
	ck_assert_int_eq(buddy_check(&b), 0);
}

static void assert_only_order(const struct buddy *bd, unsigned int order, uint64_t n)
{
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++)
		ck_assert_uint_eq(bd->nr_free[o], o == order ? n : 0);
}

/* ------------------------------------------------------------ basics */

START_TEST(test_init_empty)
{
	setup_map(16, 4);
	uint32_t idx = 7;

	ck_assert_uint_eq(b.free_units, 0);
	assert_only_order(&b, 0, 0);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), -ENOMEM);
	ck_assert_uint_eq(idx, 7);
	ck_assert_int_eq(buddy_check(&b), 0);
	for (uint32_t i = 0; i < 16; i++)
		ck_assert_uint_eq(map.order[i], BUDDY_NOT_FREE);
}
END_TEST

START_TEST(test_split_keeps_lower_half)
{
	uint32_t idx;

	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	ck_assert_int_eq(buddy_check(&b), 0);
	/* expand(): upper halves 1, 2, 4, 8, 16, 32 at orders 0..5. */
	for (unsigned int o = 0; o < 6; o++) {
		ck_assert_uint_eq(b.nr_free[o], 1);
		ck_assert(buddy_is_free_block(&b, (uint32_t)1 << o, o));
	}
	ck_assert_uint_eq(b.nr_free[6], 0);
	ck_assert_uint_eq(b.free_units, 63);

	/* The smallest fitting order is used before splitting again. */
	ck_assert_int_eq(buddy_alloc(&b, 2, &idx), 0);
	ck_assert_uint_eq(idx, 4);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 1);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 2);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

START_TEST(test_head_of_list_first)
{
	uint32_t idx;

	/* Order-0 blocks come out in order; free 3 then 9: 9 heads the list and wins. */
	for (uint32_t i = 0; i < 64; i++) {
		ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
		ck_assert_uint_eq(idx, i);
	}
	ck_assert_uint_eq(b.free_units, 0);
	buddy_free(&b, 3, 0);
	buddy_free(&b, 9, 0);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 9);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 3);
}
END_TEST

START_TEST(test_coalesce)
{
	uint32_t idx[4];

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(buddy_alloc(&b, 4, &idx[i]), 0);
	ck_assert_uint_eq(idx[0], 0);
	ck_assert_uint_eq(idx[3], 48);
	ck_assert_uint_eq(b.free_units, 0);

	/* 0 and 32 are not buddies: no merge. */
	buddy_free(&b, 0, 4);
	buddy_free(&b, 32, 4);
	ck_assert_uint_eq(b.nr_free[4], 2);
	ck_assert_int_eq(buddy_check(&b), 0);
	/* 16 merges with 0 to an order-5 block at 0. */
	buddy_free(&b, 16, 4);
	ck_assert_uint_eq(b.nr_free[4], 1);
	ck_assert(buddy_is_free_block(&b, 0, 5));
	ck_assert_int_eq(buddy_check(&b), 0);
	/* 48 merges with 32, then with 0..31: back to one order-6 block. */
	buddy_free(&b, 48, 4);
	assert_only_order(&b, 6, 1);
	ck_assert(buddy_is_free_block(&b, 0, 6));
	ck_assert_uint_eq(b.free_units, 64);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

START_TEST(test_max_order_caps_merge)
{
	setup_map(64, 3);
	buddy_free_range(&b, 0, 64);
	assert_only_order(&b, 3, 8);
	ck_assert_int_eq(buddy_check(&b), 0);

	uint32_t idx;

	ck_assert_int_eq(buddy_alloc(&b, 4, &idx), -ENOMEM);
	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	buddy_free(&b, idx, 3);
	assert_only_order(&b, 3, 8);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

START_TEST(test_exhaustion)
{
	uint32_t idx;

	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), -ENOMEM);
	ck_assert_int_eq(buddy_alloc(&b, 6, &idx), -ENOMEM);
	ck_assert_uint_eq(b.free_units, 0);
	buddy_free(&b, 8, 3);
	ck_assert_int_eq(buddy_alloc(&b, 4, &idx), -ENOMEM);
	ck_assert_int_eq(buddy_alloc(&b, 7, &idx), -ENOMEM);
	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	ck_assert_uint_eq(idx, 8);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

/* ------------------------------------------------------- free_range */

START_TEST(test_free_range)
{
	setup_map(100, 5);
	/* [3, 77): 3 | 4..7 | 8..15 | 16..31 | 32..63 | 64..71 | 72..75 | 76 */
	buddy_free_range(&b, 3, 74);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 74);
	ck_assert(buddy_is_free_block(&b, 3, 0));
	ck_assert(buddy_is_free_block(&b, 4, 2));
	ck_assert(buddy_is_free_block(&b, 8, 3));
	ck_assert(buddy_is_free_block(&b, 16, 4));
	ck_assert(buddy_is_free_block(&b, 32, 5));
	ck_assert(buddy_is_free_block(&b, 64, 3));
	ck_assert(buddy_is_free_block(&b, 72, 2));
	ck_assert(buddy_is_free_block(&b, 76, 0));
	ck_assert_uint_eq(b.nr_free[0], 2);
	ck_assert_uint_eq(b.nr_free[2], 2);
	ck_assert_uint_eq(b.nr_free[3], 2);

	/* The rest coalesces with what is there. */
	buddy_free_range(&b, 0, 3);
	buddy_free_range(&b, 77, 23);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 100);
	ck_assert_uint_eq(b.nr_free[5], 3);
	ck_assert(buddy_is_free_block(&b, 96, 2));
	ck_assert_uint_eq(b.nr_free[0] + b.nr_free[1] + b.nr_free[3] + b.nr_free[4], 0);
}
END_TEST

START_TEST(test_free_range_unaligned_map_end)
{
	uint32_t idx;

	setup_map(13, 4);
	buddy_free_range(&b, 0, 13);
	/* 0..7, 8..11, 12: buddy 12^1 = 13 is past the map and never read. */
	ck_assert(buddy_is_free_block(&b, 0, 3));
	ck_assert(buddy_is_free_block(&b, 8, 2));
	ck_assert(buddy_is_free_block(&b, 12, 0));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_alloc(&b, 4, &idx), -ENOMEM);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 12);
	buddy_free(&b, 12, 0);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 13);
}
END_TEST

/* ------------------------------------------------------ take/is_free */

START_TEST(test_take_is_free_block)
{
	uint32_t idx;

	ck_assert(buddy_is_free_block(&b, 0, 6));
	ck_assert(!buddy_is_free_block(&b, 0, 5));
	ck_assert(!buddy_is_free_block(&b, 32, 5));
	ck_assert(!buddy_is_free_block(&b, 0, 7));
	ck_assert(!buddy_is_free_block(&b, 64, 0));

	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	ck_assert(buddy_is_free_block(&b, 32, 5));
	ck_assert(buddy_is_free_block(&b, 16, 4));
	ck_assert(buddy_is_free_block(&b, 8, 3));
	ck_assert(!buddy_is_free_block(&b, 0, 3));
	ck_assert(!buddy_is_free_block(&b, 40, 3));

	/* Take a block from the middle of the lists, then the rest. */
	buddy_take(&b, 16, 4);
	ck_assert(!buddy_is_free_block(&b, 16, 4));
	ck_assert_uint_eq(b.nr_free[4], 0);
	ck_assert_uint_eq(b.free_units, 40);
	ck_assert_int_eq(buddy_check(&b), 0);
	buddy_take(&b, 32, 5);
	buddy_take(&b, 8, 3);
	ck_assert_uint_eq(b.free_units, 0);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), -ENOMEM);

	/* Give everything back: one block again. */
	buddy_free(&b, 16, 4);
	buddy_free(&b, 0, 3);
	buddy_free(&b, 8, 3);
	buddy_free(&b, 32, 5);
	assert_only_order(&b, 6, 1);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

/* ---------------------------------------------------------- alloc_at */

START_TEST(test_alloc_at_splits_around)
{
	uint64_t nr_free[BUDDY_MAX_ORDER + 1];
	uint32_t idx;

	/* Unit 5 out of the order-6 block: its buddies at every order stay free. */
	ck_assert_int_eq(buddy_alloc_at(&b, 5, 0), 0);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 63);
	ck_assert(buddy_is_free_block(&b, 4, 0));
	ck_assert(buddy_is_free_block(&b, 6, 1));
	ck_assert(buddy_is_free_block(&b, 0, 2));
	ck_assert(buddy_is_free_block(&b, 8, 3));
	ck_assert(buddy_is_free_block(&b, 16, 4));
	ck_assert(buddy_is_free_block(&b, 32, 5));
	for (unsigned int o = 0; o < 6; o++)
		ck_assert_uint_eq(b.nr_free[o], 1);
	ck_assert_uint_eq(b.nr_free[6], 0);

	/* Taken: the unit itself, or any block containing it. Nothing changes. */
	memcpy(nr_free, b.nr_free, sizeof(nr_free));
	ck_assert_int_eq(buddy_alloc_at(&b, 5, 0), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b, 4, 1), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 3), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 6), -ENOENT);
	/* Not a naturally aligned block inside the map, or past max_order. */
	ck_assert_int_eq(buddy_alloc_at(&b, 3, 1), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 8, 4), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 64, 0), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 7), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, UINT32_MAX, 0), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 0x80000000u, 0), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, BUDDY_MAX_ORDER), -EINVAL);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 63);
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++)
		ck_assert_uint_eq(b.nr_free[o], nr_free[o]);

	/* A whole free block, as it is, and a block split out of one. */
	ck_assert_int_eq(buddy_alloc_at(&b, 32, 5), 0);
	ck_assert_uint_eq(b.nr_free[5], 0);
	ck_assert_int_eq(buddy_alloc_at(&b, 20, 2), 0);
	ck_assert(buddy_is_free_block(&b, 16, 2));
	ck_assert(buddy_is_free_block(&b, 24, 3));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 63 - 32 - 4);

	/* buddy_alloc() works around what _at took. */
	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_uint_eq(idx, 4);
	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	ck_assert(idx == 8 || idx == 24);
	buddy_free(&b, idx, 3);
	buddy_free(&b, 4, 0);

	/* Everything back: one block again. */
	buddy_free(&b, 5, 0);
	buddy_free(&b, 20, 2);
	buddy_free(&b, 32, 5);
	assert_only_order(&b, 6, 1);
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

START_TEST(test_alloc_at_map_end_and_holes)
{
	/* 13 units, [2, 13) free: 2..3 | 4..7 | 8..11 | 12. */
	setup_map(13, 4);
	buddy_free_range(&b, 2, 11);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 0), -ENOENT); /* never free */
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 2), -ENOENT); /* partly free */
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 3), -ENOENT); /* 0..1 never free */
	ck_assert_int_eq(buddy_alloc_at(&b, 8, 3), -EINVAL); /* 13..15 past the end */
	ck_assert_int_eq(buddy_alloc_at(&b, 12, 2), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 13, 0), -EINVAL);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 4), -EINVAL); /* 16 > 13 */
	ck_assert_uint_eq(b.free_units, 11);
	ck_assert_int_eq(buddy_alloc_at(&b, 12, 0), 0);
	ck_assert_int_eq(buddy_alloc_at(&b, 3, 0), 0);
	ck_assert(buddy_is_free_block(&b, 2, 0));
	ck_assert_int_eq(buddy_alloc_at(&b, 10, 1), 0);
	ck_assert(buddy_is_free_block(&b, 8, 1));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, 11 - 4);
	buddy_free(&b, 12, 0);
	buddy_free(&b, 3, 0);
	buddy_free(&b, 10, 1);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert(buddy_is_free_block(&b, 2, 1));
	ck_assert(buddy_is_free_block(&b, 4, 2));
	ck_assert(buddy_is_free_block(&b, 8, 2));
	ck_assert(buddy_is_free_block(&b, 12, 0));
	ck_assert_uint_eq(b.free_units, 11);
}
END_TEST

/* Instances sharing a map, each over whole max-order blocks (as domains
 * over frames): _at in one leaves the other as it was. */
START_TEST(test_alloc_at_shared_map)
{
	struct buddy b2;

	setup_map(128, 5);
	buddy_init(&b2, &map, 5);
	buddy_free_range(&b, 0, 32);
	buddy_free_range(&b2, 32, 32);
	ck_assert_int_eq(buddy_alloc_at(&b, 64, 0), -ENOENT); /* nobody's */
	ck_assert_int_eq(buddy_alloc_at(&b2, 96, 5), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b2, 33, 0), 0);
	ck_assert_uint_eq(b.free_units, 32);
	ck_assert(buddy_is_free_block(&b, 0, 5));
	ck_assert_int_eq(buddy_alloc_at(&b, 1, 0), 0);
	ck_assert_uint_eq(b.free_units, 31);
	ck_assert_uint_eq(b2.free_units, 31);
	ck_assert(buddy_is_free_block(&b2, 32, 0));
	ck_assert(!buddy_is_free_block(&b, 32, 0));
	ck_assert(buddy_is_free_block(&b, 0, 0));
	ck_assert(!buddy_is_free_block(&b2, 0, 0));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
	buddy_free(&b, 1, 0);
	buddy_free(&b2, 33, 0);
	ck_assert(buddy_is_free_block(&b, 0, 5));
	ck_assert(buddy_is_free_block(&b2, 32, 5));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
}
END_TEST

/* -------------------------------------------------------- shared map */

START_TEST(test_shared_map)
{
	struct buddy b2;
	uint32_t idx;

	/* Two instances over one map, each owning 32-unit, max-order-5 "frames". */
	setup_map(128, 5);
	buddy_init(&b2, &map, 5);
	buddy_free_range(&b, 0, 32);
	buddy_free_range(&b, 64, 32);
	buddy_free_range(&b2, 32, 32);
	buddy_free_range(&b2, 96, 32);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
	/* Blocks 0 and 32 are free order-5 buddies but max_order stops the merge. */
	ck_assert_uint_eq(b.nr_free[5], 2);
	ck_assert_uint_eq(b2.nr_free[5], 2);
	ck_assert(buddy_is_free_block(&b, 0, 5));
	ck_assert(!buddy_is_free_block(&b, 32, 5));
	ck_assert(buddy_is_free_block(&b2, 32, 5));
	ck_assert(!buddy_is_free_block(&b2, 64, 5));

	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert(idx < 32 || (idx >= 64 && idx < 96));
	buddy_free(&b, idx, 0);
	ck_assert_int_eq(buddy_alloc(&b2, 1, &idx), 0);
	ck_assert((idx >= 32 && idx < 64) || idx >= 96);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
	buddy_free(&b2, idx, 1);

	/* Drain one instance; the other is untouched. */
	while (buddy_alloc(&b, 2, &idx) == 0)
		ck_assert(idx < 32 || (idx >= 64 && idx < 96));
	ck_assert_uint_eq(b.free_units, 0);
	ck_assert_uint_eq(b2.free_units, 64);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
}
END_TEST

/* ------------------------------------------------- owners (frame buddies) */

/* Instances sharing a map at every order (the domains' free frames): an
 * instance merges with, takes and reports only units whose owner[] is its
 * id, and buddy_check() catches a block that holds another's unit. */
START_TEST(test_owner_shared_map)
{
	uint32_t owner[64], idx;
	struct buddy b2;

	/* 4-unit runs, alternately owner 1 and 2 */
	for (uint32_t u = 0; u < 64; u++)
		owner[u] = (u / 4) % 2 ? 2 : 1;
	setup_map(64, 6);
	buddy_init(&b2, &map, 6);
	buddy_set_owner(&b, owner, 1);
	buddy_set_owner(&b2, owner, 2);
	for (uint32_t u = 0; u < 64; u++)
		buddy_free(owner[u] == 1 ? &b : &b2, u, 0);
	/* each run coalesces to order 2 and stops at the other's run */
	assert_only_order(&b, 2, 8);
	assert_only_order(&b2, 2, 8);
	ck_assert_uint_eq(b.free_units, 32);
	ck_assert(buddy_is_free_block(&b, 0, 2));
	ck_assert(!buddy_is_free_block(&b, 4, 2));
	ck_assert(buddy_is_free_block(&b2, 4, 2));
	ck_assert(!buddy_is_free_block(&b2, 0, 2));
	ck_assert(!buddy_is_free_block(&b, 0, 3));
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
	/* the other's units cannot be taken, nor a block across both */
	ck_assert_int_eq(buddy_alloc_at(&b, 4, 0), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b, 5, 0), -ENOENT);
	ck_assert_int_eq(buddy_alloc_at(&b, 0, 3), -ENOENT);
	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), -ENOMEM);
	ck_assert_uint_eq(b.free_units, 32);

	/* a run changes hands (as a frame moves between domains): the new
	 * owner's blocks now merge across it */
	ck_assert_int_eq(buddy_alloc_at(&b2, 4, 2), 0);
	for (uint32_t u = 4; u < 8; u++)
		owner[u] = 1;
	buddy_free(&b, 4, 2);
	ck_assert(buddy_is_free_block(&b, 0, 3));
	ck_assert_uint_eq(b.nr_free[3], 1);
	ck_assert_uint_eq(b.nr_free[2], 7);
	ck_assert_uint_eq(b2.free_units, 28);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_int_eq(buddy_check(&b2), 0);
	ck_assert_int_eq(buddy_alloc(&b, 3, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	buddy_free(&b, 0, 3);

	/* a unit of another owner inside a free block is caught */
	owner[1] = 2;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	owner[1] = 1;
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

/* ------------------------------------------------------ check catches */

START_TEST(test_check_detects)
{
	uint32_t idx;

	ck_assert_int_eq(buddy_alloc(&b, 0, &idx), 0);
	ck_assert_int_eq(buddy_check(&b), 0);

	b.nr_free[2]++;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	b.nr_free[2]--;
	b.free_units++;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	b.free_units--;
	map.prev[2] = 5;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	map.prev[2] = BUDDY_NONE;
	ck_assert_int_eq(buddy_check(&b), 0);

	/* Unit 0 marked free at order 0 beside free unit 1: uncoalesced buddies. */
	map.order[0] = 0;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	map.order[0] = BUDDY_NOT_FREE;
	/* A head inside another free block. */
	map.order[33] = 0;
	ck_assert_int_eq(buddy_check(&b), -EUCLEAN);
	map.order[33] = BUDDY_NOT_FREE;
	ck_assert_int_eq(buddy_check(&b), 0);
}
END_TEST

START_TEST(test_double_free_asserts)
{
	uint32_t idx;

	ck_assert_int_eq(buddy_alloc(&b, 1, &idx), 0);
	buddy_free(&b, 2, 0); /* unit 2 is inside free block 2..3 */
}
END_TEST

START_TEST(test_misaligned_free_asserts)
{
	uint32_t idx;

	ck_assert_int_eq(buddy_alloc(&b, 2, &idx), 0);
	buddy_free(&b, 2, 2);
}
END_TEST

/* ---------------------------------------------------------- random */

#define RND_UNITS     1000u
#define RND_MAX_ORDER 6u
#define RND_STEPS     4000
#define RND_NONE      UINT32_MAX

struct live {
	uint32_t idx;
	unsigned int order;
};

static uint64_t rng_state;
static uint64_t base_seed; /* set once in main(), inherited by the forked tests */

static uint64_t rnd(void)
{
	/* splitmix64: tiny, good enough, reproducible from the seed. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

START_TEST(test_random)
{
	static uint32_t owner[RND_UNITS]; /* live block index per unit, or RND_NONE */
	static struct live live[RND_UNITS];
	uint64_t initial[BUDDY_MAX_ORDER + 1];
	uint64_t seed = base_seed + (uint64_t)_i;
	uint32_t nr_live = 0, used = 0;

	rng_state = seed;
	printf("test_random[%d]: seed %" PRIu64 "\n", _i, seed);
	fflush(stdout);

	/* Vary the start and length so unaligned ends get exercised. */
	uint32_t start = (uint32_t)(rnd() % 40), nr = RND_UNITS - start - (uint32_t)(rnd() % 40);

	setup_map(RND_UNITS, RND_MAX_ORDER);
	buddy_free_range(&b, start, nr);
	ck_assert_int_eq(buddy_check(&b), 0);
	ck_assert_uint_eq(b.free_units, nr);
	memcpy(initial, b.nr_free, sizeof(initial));
	for (uint32_t i = 0; i < RND_UNITS; i++)
		owner[i] = RND_NONE;

	for (int step = 0; step < RND_STEPS; step++) {
		bool do_alloc = nr_live == 0 || rnd() % 100 < 55;

		if (do_alloc) {
			unsigned int order = (unsigned int)(rnd() % (RND_MAX_ORDER + 2));
			uint64_t before = b.free_units;
			uint32_t idx;
			int ret = buddy_alloc(&b, order, &idx);

			if (ret) {
				ck_assert_int_eq(ret, -ENOMEM);
				ck_assert_uint_eq(b.free_units, before);
				/* Only when no free block of order or above exists. */
				for (unsigned int o = order; o <= RND_MAX_ORDER; o++)
					ck_assert_uint_eq(b.nr_free[o], 0);
			} else {
				uint32_t size = (uint32_t)1 << order;

				ck_assert_uint_eq(idx & (size - 1), 0);
				ck_assert_uint_ge(idx, start);
				ck_assert_uint_le(idx + size, start + nr);
				for (uint32_t u = idx; u < idx + size; u++) {
					ck_assert_msg(owner[u] == RND_NONE,
						      "step %d: unit %u given twice", step, u);
					owner[u] = idx;
				}
				live[nr_live++] = (struct live){ idx, order };
				used += size;
				ck_assert_uint_eq(b.free_units, before - size);
			}
		} else {
			uint32_t k = (uint32_t)(rnd() % nr_live);
			struct live l = live[k];

			live[k] = live[--nr_live];
			for (uint32_t u = l.idx; u < l.idx + ((uint32_t)1 << l.order); u++) {
				ck_assert_uint_eq(owner[u], l.idx);
				owner[u] = RND_NONE;
			}
			buddy_free(&b, l.idx, l.order);
			used -= (uint32_t)1 << l.order;
		}
		ck_assert_uint_eq(b.free_units + used, nr);
		ck_assert_msg(buddy_check(&b) == 0, "step %d: buddy_check failed", step);
	}

	while (nr_live) {
		struct live l = live[--nr_live];

		buddy_free(&b, l.idx, l.order);
		ck_assert_int_eq(buddy_check(&b), 0);
	}
	ck_assert_uint_eq(b.free_units, nr);
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++)
		ck_assert_uint_eq(b.nr_free[o], initial[o]);
}
END_TEST

/* Every unit is free in @b exactly when the model says so: the free lists
 * walked unit by unit against @owner (RND_NONE and inside [start, end)).
 * Plain ifs: a check assertion per unit would cost a pipe write each. */
static void assert_free_units_match(const uint32_t *owner, uint32_t start, uint32_t end, int step)
{
	static bool is_free[RND_UNITS];

	memset(is_free, 0, sizeof(is_free));
	for (unsigned int o = 0; o <= RND_MAX_ORDER; o++)
		for (uint32_t i = b.head[o]; i != BUDDY_NONE; i = map.next[i])
			for (uint32_t u = i; u < i + ((uint32_t)1 << o); u++) {
				if (u >= RND_UNITS || is_free[u])
					ck_abort_msg("step %d: unit %u on two free blocks", step,
						     u);
				is_free[u] = true;
			}
	for (uint32_t u = 0; u < RND_UNITS; u++) {
		bool want = u >= start && u < end && owner[u] == RND_NONE;

		if (is_free[u] != want)
			ck_abort_msg("step %d: unit %u is %s, the model says %s", step, u,
				     is_free[u] ? "free" : "taken", want ? "free" : "taken");
	}
}

/*
 * buddy_alloc_at() against the ownership model: a random block (mostly
 * aligned and inside the map, sometimes not) must be taken exactly when the
 * model has all of it free, -ENOENT when any of it is taken or outside the
 * freed range, -EINVAL when it is no aligned block of the map; mixed with
 * buddy_alloc() and frees, buddy_check() and a unit-by-unit comparison of
 * the free lists with the model after every step.
 */
START_TEST(test_random_alloc_at)
{
	static uint32_t owner[RND_UNITS];
	static struct live live[RND_UNITS];
	uint64_t initial[BUDDY_MAX_ORDER + 1];
	uint64_t seed = base_seed + 100 + (uint64_t)_i;
	uint32_t nr_live = 0, used = 0, nr_at = 0;

	rng_state = seed;
	printf("test_random_alloc_at[%d]: seed %" PRIu64 "\n", _i, seed);
	fflush(stdout);

	uint32_t start = (uint32_t)(rnd() % 40), nr = RND_UNITS - start - (uint32_t)(rnd() % 40);

	setup_map(RND_UNITS, RND_MAX_ORDER);
	buddy_free_range(&b, start, nr);
	memcpy(initial, b.nr_free, sizeof(initial));
	for (uint32_t i = 0; i < RND_UNITS; i++)
		owner[i] = RND_NONE;

	for (int step = 0; step < RND_STEPS; step++) {
		unsigned int r = (unsigned int)(rnd() % 100);

		if (nr_live == 0 || r < 45) {
			/* Up to max_order + 1, and a few units past the map. */
			unsigned int order = (unsigned int)(rnd() % (RND_MAX_ORDER + 2));
			uint32_t idx = (uint32_t)(rnd() % (RND_UNITS + 16));
			uint32_t size = (uint32_t)1 << order;
			uint64_t before = b.free_units;
			int want = 0, ret;

			if (rnd() % 8)
				idx &= ~(size - 1); /* mostly aligned */
			if (order > RND_MAX_ORDER || (idx & (size - 1)) ||
			    (uint64_t)idx + size > RND_UNITS) {
				want = -EINVAL;
			} else {
				for (uint32_t u = idx; u < idx + size; u++)
					if (u < start || u >= start + nr || owner[u] != RND_NONE)
						want = -ENOENT;
			}
			ret = buddy_alloc_at(&b, idx, order);
			ck_assert_msg(ret == want, "step %d: alloc_at(%u, %u) = %d, want %d", step,
				      idx, order, ret, want);
			if (ret) {
				ck_assert_uint_eq(b.free_units, before);
			} else {
				for (uint32_t u = idx; u < idx + size; u++)
					owner[u] = idx;
				live[nr_live++] = (struct live){ idx, order };
				used += size;
				nr_at++;
				ck_assert_uint_eq(b.free_units, before - size);
			}
		} else if (r < 60) {
			unsigned int order = (unsigned int)(rnd() % (RND_MAX_ORDER + 1));
			uint32_t idx;

			if (buddy_alloc(&b, order, &idx) == 0) {
				for (uint32_t u = idx; u < idx + ((uint32_t)1 << order); u++) {
					ck_assert_uint_eq(owner[u], RND_NONE);
					owner[u] = idx;
				}
				live[nr_live++] = (struct live){ idx, order };
				used += (uint32_t)1 << order;
			}
		} else {
			uint32_t k = (uint32_t)(rnd() % nr_live);
			struct live l = live[k];

			live[k] = live[--nr_live];
			for (uint32_t u = l.idx; u < l.idx + ((uint32_t)1 << l.order); u++) {
				ck_assert_uint_eq(owner[u], l.idx);
				owner[u] = RND_NONE;
			}
			buddy_free(&b, l.idx, l.order);
			used -= (uint32_t)1 << l.order;
		}
		ck_assert_uint_eq(b.free_units + used, nr);
		ck_assert_msg(buddy_check(&b) == 0, "step %d: buddy_check failed", step);
		assert_free_units_match(owner, start, start + nr, step);
	}
	ck_assert_uint_gt(nr_at, 0);

	while (nr_live) {
		struct live l = live[--nr_live];

		buddy_free(&b, l.idx, l.order);
		ck_assert_int_eq(buddy_check(&b), 0);
	}
	ck_assert_uint_eq(b.free_units, nr);
	for (unsigned int o = 0; o <= BUDDY_MAX_ORDER; o++)
		ck_assert_uint_eq(b.nr_free[o], initial[o]);
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *buddy_suite(bool fork)
{
	Suite *s = suite_create("buddy");
	TCase *tc;

	tc = tcase_create("init");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_init_empty);
	suite_add_tcase(s, tc);

	tc = tcase_create("split");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_split_keeps_lower_half);
	tcase_add_test(tc, test_head_of_list_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("coalesce");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_coalesce);
	suite_add_tcase(s, tc);

	tc = tcase_create("max_order");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_max_order_caps_merge);
	suite_add_tcase(s, tc);

	tc = tcase_create("exhaustion");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_exhaustion);
	suite_add_tcase(s, tc);

	tc = tcase_create("free_range");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_free_range);
	tcase_add_test(tc, test_free_range_unaligned_map_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("take");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_take_is_free_block);
	suite_add_tcase(s, tc);

	tc = tcase_create("alloc_at");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_alloc_at_splits_around);
	suite_add_tcase(s, tc);

	tc = tcase_create("alloc_at_maps");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_alloc_at_map_end_and_holes);
	tcase_add_test(tc, test_alloc_at_shared_map);
	suite_add_tcase(s, tc);

	tc = tcase_create("shared_map");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_shared_map);
	tcase_add_test(tc, test_owner_shared_map);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_checked_fixture(tc, setup_64, teardown);
	tcase_add_test(tc, test_check_detects);
	suite_add_tcase(s, tc);

	/* An abort kills the runner itself without fork (CK_FORK=no, valgrind). */
	if (fork) {
		tc = tcase_create("caller_bugs");
		tcase_add_checked_fixture(tc, setup_64, teardown);
		tcase_add_test_raise_signal(tc, test_double_free_asserts, SIGABRT);
		tcase_add_test_raise_signal(tc, test_misaligned_free_asserts, SIGABRT);
		suite_add_tcase(s, tc);
	}

	tc = tcase_create("random");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random, 0, 4);
	tcase_add_loop_test(tc, test_random_alloc_at, 0, 4);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	const char *ck_fork = getenv("CK_FORK");
	int failed;

	base_seed = test_seed();
	printf("test-buddy: KM_TEST_SEED=%" PRIu64 "\n", base_seed);
	fflush(stdout);
	failed = test_run_suite(buddy_suite(!ck_fork || strcmp(ck_fork, "no") != 0));
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
