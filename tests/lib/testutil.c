// SPDX-License-Identifier: MIT
/*
 * testutil.c - seeded randomness and hugepage reservation for tests.
 */
#include "config.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rand_state;

int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

uint64_t test_seed(void)
{
	static uint64_t seed;
	const char *env;

	if (seed)
		return seed;
	env = getenv("KM_TEST_SEED");
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	}
	if (!seed)
		seed = 1;
	fprintf(stderr, "test seed: %llu (replay with KM_TEST_SEED=%llu)\n",
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

uint64_t test_rand(void)
{
	if (!rand_state)
		rand_state = test_seed();
	rand_state ^= rand_state >> 12;
	rand_state ^= rand_state << 25;
	rand_state ^= rand_state >> 27;
	return rand_state * 0x2545f4914f6cdd1dull;
}

uint64_t test_rand_below(uint64_t n)
{
	return n ? test_rand() % n : 0;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

#define HP_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

long test_hugepages_free(void)
{
	return read_long(HP_DIR "free_hugepages");
}

bool test_hugepages_reserve(long nr)
{
	long total, free_now;
	FILE *f;
	int tries;

	free_now = test_hugepages_free();
	if (free_now >= nr)
		return true;
	if (geteuid() != 0)
		return false;
	/* The host may hand pages over slowly: ask a few times. Pages stay
	 * reserved afterwards; later runs reuse them (recycled hugepages are
	 * much cheaper than first-touch ones). */
	for (tries = 0; tries < 3 && free_now < nr; tries++) {
		total = read_long(HP_DIR "nr_hugepages");
		if (total < 0)
			return false;
		f = fopen(HP_DIR "nr_hugepages", "we");
		if (!f)
			return false;
		fprintf(f, "%ld\n", total + (nr - free_now));
		fclose(f);
		free_now = test_hugepages_free();
	}
	return free_now >= nr;
}

const char *test_backing(void)
{
	const char *b = getenv("KMALLOC_TEST_BACKING");

	return b && !strcmp(b, "hugetlb") ? "hugetlb" : "shmem";
}

void test_backing_prepare(uint64_t pool_bytes)
{
	long need = (long)((pool_bytes + (2u << 20) - 1) >> 21);

	if (strcmp(test_backing(), "hugetlb"))
		return;
	if (!test_hugepages_reserve(need)) {
		printf("SKIP: the hugetlb run needs %ld free 2 MiB hugepages and has %ld%s\n",
		       need, test_hugepages_free(),
		       geteuid() ? " (run as root to reserve them)" : "");
		exit(77);
	}
}
