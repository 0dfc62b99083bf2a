/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by the tests: a seeded random generator whose
 * seed is printed (and can be replayed with KM_TEST_SEED), the sizes
 * kmalloc must give, hugepage reservation for the hugetlb runs, numbers and
 * lines in files, and what a forked process keeps and how it ended.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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

/* The kernel's kmalloc_size_roundup() (docs/kernel.md), written
 * out independently of proto/sizes.h: what km_ksize() must say for a
 * kmalloc of @size bytes. */
size_t test_expected_ksize(size_t size);

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

/* The number a file such as /proc/sys/vm/nr_hugepages holds, or -1. */
long test_read_long(const char *path);
/* Writes @v and a newline to @path. False when the open, write or close
 * fails (the kernel refuses a value at the close). */
bool test_write_long(const char *path, long v);
/* Lines of the file at @path that contain @needle, and @also unless it is
 * NULL; 0 when the file cannot be read. */
int test_count_lines(const char *path, const char *needle, const char *also);

/* Closes every descriptor but 0-2, @a and @b: a forked helper must not keep
 * the test's connections (or other helpers' pipes) open. */
void test_keep_only_fds(int a, int b);
/* "exit status 3", "signal 9": @status as waitpid() gave it, in @buf. */
const char *test_status_text(int status, char *buf, size_t len);
