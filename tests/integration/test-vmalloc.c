// SPDX-License-Identifier: MIT
/*
 * test-vmalloc.c - vmalloc areas against a real kmallocd: an area spanning
 * many frames holds a pattern across every frame boundary, faults on its
 * guard frame, maps its pages to the pfns vmalloc_to_pfn names, vzalloc
 * clears dirty frames, and areas that do not fit fail cleanly and give
 * everything back.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "daemon.h"
#include "kmclient.h"
#include "testutil.h"

#define POOL_SIZE (64ull << 20)
#define FRAME	  (2ull << 20)

static struct test_daemon daemon_under_test;

static km_client *connect_or_fail(void)
{
	km_client *c = km_connect(NULL);

	ck_assert_msg(c != NULL, "km_connect: %s", strerror(errno));
	return c;
}

START_TEST(test_pattern_across_frame_boundaries)
{
	km_client *c = connect_or_fail();
	size_t size = 9 * FRAME + 12345, i;
	uint64_t *p = km_vmalloc(c, size);
	km_meminfo mi;

	ck_assert_msg(p != NULL, "vmalloc: %s", strerror(errno));
	ck_assert_uint_eq((uintptr_t)p % 4096, 0);
	for (i = 0; i < size / 8; i++)
		p[i] = i * 0x9e3779b97f4a7c15ull;
	for (i = 0; i < size / 8 && p[i] == i * 0x9e3779b97f4a7c15ull; i++)
		;
	ck_assert_uint_eq(i, size / 8);
	/* Around each boundary, byte by byte. */
	for (i = 1; i < 10; i++) {
		uint8_t *b = (uint8_t *)p + i * FRAME;

		b[-1] = 0xaa;
		b[0] = 0x55;
		ck_assert_uint_eq(b[-1], 0xaa);
		ck_assert_uint_eq(b[0], 0x55);
	}
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_eq(mi.vmalloc_used, 10 * FRAME);
	km_vfree(c, p);
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_eq(mi.vmalloc_used, 0);
	km_disconnect(c);
}
END_TEST

START_TEST(test_vmalloc_to_pfn)
{
	km_client *c = connect_or_fail();
	size_t size = 4 * FRAME, off;
	uint8_t *p = km_vmalloc(c, size);
	uint64_t first;

	ck_assert_ptr_nonnull(p);
	for (off = 0; off < size; off += FRAME) {
		uint64_t pfn = km_vmalloc_to_pfn(c, p + off);

		ck_assert_uint_ne(pfn, UINT64_MAX);
		/* Each frame is one run of 512 consecutive pfns, frame-aligned. */
		ck_assert_uint_eq(pfn % 512, 0);
		ck_assert_uint_eq(km_vmalloc_to_pfn(c, p + off + 4096), pfn + 1);
		ck_assert_uint_eq(km_vmalloc_to_pfn(c, p + off + FRAME - 1), pfn + 511);
		ck_assert_uint_lt(pfn, POOL_SIZE >> 12);
	}
	first = km_vmalloc_to_pfn(c, p);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p + 100), first);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p + size), UINT64_MAX); /* the guard */
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p - 1), UINT64_MAX);
	km_vfree(c, p);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p), UINT64_MAX);
	km_disconnect(c);
}
END_TEST

START_TEST(test_guard_frame_faults)
{
	km_client *c = connect_or_fail();
	size_t size = 3 * FRAME;
	volatile uint8_t *p = km_vmalloc(c, size);
	int status;
	pid_t pid;

	ck_assert_ptr_nonnull((void *)p);
	p[size - 1] = 1; /* the last byte is fine */
	pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* die of it, even under AddressSanitizer */
		p[size] = 1;		  /* the first byte of the guard frame */
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		      "writing the guard frame did not fault (status %#x)", status);
	pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		(void)p[size + FRAME - 1]; /* the last byte of the guard */
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	km_vfree(c, (void *)p);
	km_disconnect(c);
}
END_TEST

START_TEST(test_vzalloc_clears_dirty_frames)
{
	km_client *c = connect_or_fail();
	size_t size = 5 * FRAME, i;
	int round;

	for (round = 0; round < 3; round++) {
		uint8_t *dirty = km_vmalloc(c, size), *z;

		ck_assert_ptr_nonnull(dirty);
		memset(dirty, 0xee, size);
		km_vfree(c, dirty);
		z = round == 2 ? km___vmalloc(c, size, KM_GFP_KERNEL | KM_GFP_ZERO)
			       : km_vzalloc(c, size);
		ck_assert_ptr_nonnull(z);
		for (i = 0; i < size && z[i] == 0; i += 64)
			;
		ck_assert_msg(i >= size, "byte %zu of vzalloc is %#x", i, z[i]);
		km_vfree(c, z);
	}
	km_disconnect(c);
}
END_TEST

START_TEST(test_too_big_fails_and_gives_back)
{
	km_client *c = connect_or_fail();
	km_meminfo before, after;
	void *areas[64];
	int n = 0, i;

	ck_assert_int_eq(km_get_meminfo(c, &before), 0);
	errno = 0;
	ck_assert_ptr_null(km___vmalloc(c, POOL_SIZE * 2, KM_GFP_KERNEL | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	/* Fill the pool with 2-frame areas until it refuses. */
	while (n < 64 && (areas[n] = km___vmalloc(c, 2 * FRAME, KM_GFP_KERNEL | KM_GFP_NOWARN)))
		n++;
	ck_assert_int_gt(n, 4);
	ck_assert_int_lt(n, 64);
	ck_assert_int_eq(errno, ENOMEM);
	for (i = 0; i < n; i++)
		memset(areas[i], i, 2 * FRAME);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(((uint8_t *)areas[i])[FRAME + 7], (uint8_t)i);
		km_vfree(c, areas[i]);
	}
	/* The library keeps a freed area or two for reuse (1/8 of the pool at
	 * most); everything else is back at once, and all of it once the
	 * client goes. */
	ck_assert_int_eq(km_get_meminfo(c, &after), 0);
	ck_assert_uint_le(after.vmalloc_used, POOL_SIZE / 8);
	ck_assert_uint_eq(after.free + after.vmalloc_used, before.free);
	km_disconnect(c);
	c = connect_or_fail();
	for (i = 0; i < 500; i++) {
		ck_assert_int_eq(km_get_meminfo(c, &after), 0);
		if (after.vmalloc_used == 0 && after.free == before.free)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(after.vmalloc_used, 0);
	ck_assert_uint_eq(after.free, before.free);
	km_disconnect(c);
}
END_TEST

START_TEST(test_many_areas_and_kvfree)
{
	km_client *c = connect_or_fail();
	uint8_t *a[8];
	int i;

	for (i = 0; i < 8; i++) {
		a[i] = km_vmalloc(c, 1 + test_rand_below(3 * FRAME));
		ck_assert_ptr_nonnull(a[i]);
		a[i][0] = (uint8_t)i;
	}
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(a[i][0], (uint8_t)i);
	/* Unknown pointers are ignored, not fatal. */
	km_vfree(c, a[0] + 4096);
	ck_assert_uint_eq(a[0][0], 0);
	for (i = 0; i < 8; i++)
		km_kvfree(c, a[i]);
	km_disconnect(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmalloc");
	TCase *tc = tcase_create("vmalloc");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_pattern_across_frame_boundaries);
	tcase_add_test(tc, test_vmalloc_to_pfn);
	tcase_add_test(tc, test_guard_frame_faults);
	tcase_add_test(tc, test_vzalloc_clears_dirty_frames);
	tcase_add_test(tc, test_too_big_fails_and_gives_back);
	tcase_add_test(tc, test_many_areas_and_kvfree);
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, NULL);
}
