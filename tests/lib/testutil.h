/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by the tests: a seeded random generator whose
 * seed is printed (and can be replayed with KM_TEST_SEED), and hugepage
 * reservation for the hugetlb runs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <check.h>

/* Runs @s (CK_ENV verbosity, check's fork mode unless CK_FORK=no) and frees
 * it; returns the number of failed tests. */
int test_run_suite(Suite *s);

/* The seed of this run: $KM_TEST_SEED, else the clock; printed once. */
uint64_t test_seed(void);
/* xorshift64* from test_seed(); deterministic for a seed. */
uint64_t test_rand(void);
/* Uniform in [0, n). */
uint64_t test_rand_below(uint64_t n);

/* Free 2 MiB hugepages right now. */
long test_hugepages_free(void);
/* Makes at least @nr hugepages free, raising vm.nr_hugepages when root.
 * True when they are there. */
bool test_hugepages_reserve(long nr);

/* "shmem" or "hugetlb", from $KMALLOC_TEST_BACKING (default "shmem"). */
const char *test_backing(void);
/* For the hugetlb backing: reserve what a pool of @pool_bytes needs, or
 * print why not and exit 77 (meson's SKIP). No-op for shmem. */
void test_backing_prepare(uint64_t pool_bytes);
