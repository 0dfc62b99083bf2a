// SPDX-License-Identifier: MIT
/*
 * testutil.c - seeded randomness, hugepage reservation, files and forked
 * processes for tests.
 */
#include "config.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

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

size_t test_expected_ksize(size_t size)
{
	static const size_t classes[] = { 8,   16,  32,	  64,	96,   128, 192,
					  256, 512, 1024, 2048, 4096, 8192 };
	size_t i, pages = 4096;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (size <= classes[i])
			return classes[i];
	while (pages < size)
		pages <<= 1;
	return pages;
}

long test_read_long(const char *path)
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

bool test_write_long(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

int test_count_lines(const char *path, const char *needle, const char *also)
{
	char line[2048];
	FILE *f = fopen(path, "re");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) && (!also || strstr(line, also));
	fclose(f);
	return n;
}

void test_keep_only_fds(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, (unsigned int)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned int)lo + 1, (unsigned int)hi - 1, 0);
	close_range((unsigned int)hi + 1, ~0u, 0);
}

const char *test_status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

#define HP_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

long test_hugepages_free(void)
{
	return test_read_long(HP_DIR "free_hugepages");
}

bool test_hugepages_reserve(long nr)
{
	long total, free_now;
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
		total = test_read_long(HP_DIR "nr_hugepages");
		if (total < 0 || !test_write_long(HP_DIR "nr_hugepages", total + (nr - free_now)))
			return false;
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
		printf("SKIP: the hugetlb run needs %ld free 2 MiB hugepages and has %ld%s\n", need,
		       test_hugepages_free(), geteuid() ? " (run as root to reserve them)" : "");
		exit(77);
	}
}
