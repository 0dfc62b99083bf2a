// SPDX-License-Identifier: MIT
/*
 * test-grant.c - the grant table: ids unique and never reused, lookup after
 * growth, deletion from the middle of chains.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "grant.h"
#include "testutil.h"

START_TEST(test_ids_unique_and_increasing)
{
	struct grant_table t;
	uint64_t last = 0;
	int i;

	ck_assert_int_eq(grant_table_init(&t), 0);
	for (i = 0; i < 100; i++) {
		struct grant *g = grant_new(&t, GRANT_KMALLOC);

		ck_assert_ptr_nonnull(g);
		ck_assert_uint_gt(g->id, last);
		ck_assert_int_eq(g->kind, GRANT_KMALLOC);
		last = g->id;
		grant_delete(&t, g);
	}
	/* Deleted ids are gone and never handed out again. */
	ck_assert_ptr_null(grant_find(&t, last));
	ck_assert_uint_gt(grant_new(&t, GRANT_VMALLOC)->id, last);
	ck_assert_uint_eq(t.count, 1);
	grant_delete(&t, grant_find(&t, last + 1));
	grant_table_fini(&t);
}
END_TEST

START_TEST(test_find_after_growth_and_random_deletes)
{
	enum { N = 20000 };
	struct grant_table t;
	struct grant **all = calloc(N, sizeof(*all));
	bool *live = calloc(N, sizeof(*live));
	size_t i, alive = N;

	ck_assert_int_eq(grant_table_init(&t), 0);
	for (i = 0; i < N; i++) {
		all[i] = grant_new(&t, i % 2 ? GRANT_VMALLOC : GRANT_KMALLOC);
		ck_assert_ptr_nonnull(all[i]);
		live[i] = true;
	}
	ck_assert_uint_gt(t.nr_buckets, 1024);
	for (i = 0; i < N / 2; i++) {
		size_t k = test_rand_below(N);

		if (live[k]) {
			grant_delete(&t, all[k]);
			live[k] = false;
			alive--;
		}
	}
	ck_assert_uint_eq(t.count, alive);
	for (i = 0; i < N; i++) {
		struct grant *g = grant_find(&t, (uint64_t)i + 1);

		if (live[i])
			ck_assert_ptr_eq(g, all[i]);
		else
			ck_assert_ptr_null(g);
	}
	for (i = 0; i < N; i++)
		if (live[i])
			grant_delete(&t, all[i]);
	ck_assert_uint_eq(t.count, 0);
	ck_assert_ptr_null(grant_find(&t, 0));
	ck_assert_ptr_null(grant_find(&t, UINT64_MAX));
	grant_table_fini(&t);
	free(all);
	free(live);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("table");
	int failed;

	tcase_add_test(tc, test_ids_unique_and_increasing);
	tcase_add_test(tc, test_find_after_growth_and_random_deletes);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
