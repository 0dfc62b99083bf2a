// SPDX-License-Identifier: MIT
/*
 * test-clients.c - libkmclient against a real kmallocd: every kmalloc size
 * class and odd sizes, alignment, ksize, size 0, overflow, kzalloc,
 * krealloc, bulk calls, virt_to_phys, kvmalloc's fallback rule, memory seen
 * at the same phys by a second client of the same uid, and many threads on
 * one client. Each test runs in its own process (check forks).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "daemon.h"
#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"

#define POOL_SIZE (64ull << 20)

static struct test_daemon daemon_under_test;

static km_client *connect_or_fail(void)
{
	km_client *c = km_connect(NULL);

	ck_assert_msg(c != NULL, "km_connect: %s", strerror(errno));
	return c;
}

static size_t largest_pow2_dividing(size_t n)
{
	return n & -n;
}

static uint64_t free_bytes(km_client *c)
{
	km_meminfo mi;

	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	return mi.free + 0;
}

START_TEST(test_size_classes_alignment_ksize)
{
	static const size_t sizes[] = {
		1,
		2,
		7,
		8,
		9,
		15,
		16,
		17,
		24,
		31,
		32,
		33,
		48,
		63,
		64,
		65,
		72,
		95,
		96,
		97,
		100,
		127,
		128,
		129,
		136,
		191,
		192,
		193,
		200,
		255,
		256,
		257,
		300,
		511,
		512,
		513,
		768,
		1000,
		1023,
		1024,
		1025,
		1536,
		2047,
		2048,
		2049,
		3000,
		4095,
		4096,
		4097,
		6000,
		8191,
		8192,
		8193,
		12288,
		16384,
		16385,
		65536,
		65537,
		100000,
		1u << 20,
		(1u << 20) + 1,
		2u << 20,
		3u << 20,
		(4u << 20) - 1,
		4u << 20,
	};
	km_client *c = connect_or_fail();
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t size = sizes[i], ks = test_expected_ksize(size), align, j;
		uint8_t *p = km_kmalloc(c, size, KM_GFP_KERNEL);

		ck_assert_msg(p != NULL, "kmalloc(%zu): %s", size, strerror(errno));
		ck_assert_uint_eq(km_ksize(c, p), ks);
		/* Alignment: 8 at least, power-of-two sizes to their size, others
		 * to the largest power of two dividing the size; large ones to the page. */
		align = largest_pow2_dividing(size);
		if (align < 8)
			align = 8;
		if (size > 8192 && align < 4096)
			align = 4096;
		ck_assert_msg(((uintptr_t)p & (align - 1)) == 0,
			      "kmalloc(%zu) = %p not aligned to %zu", size, (void *)p, align);
		/* Every byte of the bucket is usable and holds what we write. */
		for (j = 0; j < ks; j += (ks > 65536 ? 4093 : 1))
			p[j] = (uint8_t)(j * 7 + i);
		p[ks - 1] = 0x5a;
		/* (check's assertions are costly: compare first, assert once) */
		for (j = 0; j < ks - 1; j += (ks > 65536 ? 4093 : 1))
			if (p[j] != (uint8_t)(j * 7 + i))
				break;
		ck_assert_msg(j >= ks - 1, "kmalloc(%zu): byte %zu lost its value", size, j);
		ck_assert_uint_eq(p[ks - 1], 0x5a);
		/* The direct map: virt_to_phys of any byte. */
		ck_assert_uint_eq(km_virt_to_phys(c, p + ks - 1), km_virt_to_phys(c, p) + ks - 1);
		ck_assert_uint_eq(km_virt_to_phys(c, p) % (size > 8192 ? 4096 : 8), 0);
		km_kfree(c, p);
	}
	km_disconnect(c);
}
END_TEST

START_TEST(test_zero_size_overflow_and_limits)
{
	km_client *c = connect_or_fail();
	int local;

	ck_assert_ptr_eq(km_kmalloc(c, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	ck_assert_ptr_eq(km_kzalloc(c, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	ck_assert_uint_eq(km_ksize(c, KM_ZERO_SIZE_PTR), 0);
	ck_assert_uint_eq(km_ksize(c, NULL), 0);
	km_kfree(c, NULL);
	km_kfree(c, KM_ZERO_SIZE_PTR);
	km_kvfree(c, NULL);
	km_vfree(c, NULL);

	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, (4u << 20) + 1, KM_GFP_KERNEL | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(km_kcalloc(c, SIZE_MAX / 2, 4, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, SIZE_MAX, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(km_vmalloc(c, 0));
	ck_assert_int_eq(errno, EINVAL);
	/* Pointers that are not kmalloc memory. */
	ck_assert_uint_eq(km_virt_to_phys(c, &local), UINT64_MAX);
	ck_assert_uint_eq(km_ksize(c, &local), 0);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, &local), UINT64_MAX);
	km_disconnect(c);
}
END_TEST

START_TEST(test_kzalloc_clears_dirty_memory)
{
	static const size_t sizes[] = { 64, 96, 4096, 8192, 20000, 1u << 20, 4u << 20 };
	km_client *c = connect_or_fail();
	size_t i, j;
	int round;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint8_t *dirty = km_kmalloc(c, sizes[i], KM_GFP_KERNEL), *z;
			size_t ks = km_ksize(c, dirty);

			ck_assert_ptr_nonnull(dirty);
			memset(dirty, 0xa5, ks);
			km_kfree(c, dirty);
			z = round == 2 ? km_kcalloc(c, sizes[i] / 8, 8, KM_GFP_KERNEL)
				       : km_kzalloc(c, sizes[i], KM_GFP_KERNEL);
			ck_assert_ptr_nonnull(z);
			/* The whole bucket is cleared, as the kernel does. */
			for (j = 0; j < km_ksize(c, z) && z[j] == 0; j++)
				;
			ck_assert_msg(j == km_ksize(c, z), "byte %zu of kzalloc(%zu) is %#x", j,
				      sizes[i], z[j]);
			km_kfree(c, z);
		}
	}
	km_disconnect(c);
}
END_TEST

START_TEST(test_krealloc_semantics)
{
	km_client *c = connect_or_fail();
	uint8_t *p, *q;
	size_t i;

	/* NULL and ZERO_SIZE_PTR behave as kmalloc. */
	p = km_krealloc(c, NULL, 40, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(km_ksize(c, p), 64);
	for (i = 0; i < 64; i++)
		p[i] = (uint8_t)i;
	/* Fits in the bucket: the same pointer. */
	q = km_krealloc(c, p, 64, KM_GFP_KERNEL);
	ck_assert_ptr_eq(q, p);
	q = km_krealloc(c, p, 10, KM_GFP_KERNEL);
	ck_assert_ptr_eq(q, p);
	/* With __GFP_ZERO the tail past the new size is cleared. */
	q = km_krealloc(c, p, 32, KM_GFP_KERNEL | KM_GFP_ZERO);
	ck_assert_ptr_eq(q, p);
	for (i = 32; i < 64; i++)
		ck_assert_uint_eq(p[i], 0);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(p[i], (uint8_t)i);
	/* Growing moves and copies the whole old bucket. */
	q = km_krealloc(c, p, 5000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_ne(q, p);
	ck_assert_uint_eq(km_ksize(c, q), 8192);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(q[i], (uint8_t)i);
	ck_assert_uint_eq(km_ksize(c, p), 0); /* the old one is gone */
	/* Failure leaves the old pointer untouched. */
	errno = 0;
	ck_assert_ptr_null(km_krealloc(c, q, (4u << 20) + 1, KM_GFP_KERNEL | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(km_ksize(c, q), 8192);
	ck_assert_uint_eq(q[5], 5);
	/* Size 0 frees and returns ZERO_SIZE_PTR. */
	ck_assert_ptr_eq(km_krealloc(c, q, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	ck_assert_uint_eq(km_ksize(c, q), 0);
	km_disconnect(c);
}
END_TEST

START_TEST(test_bulk_and_free_accounting)
{
	enum { N = 300 };
	km_client *c = connect_or_fail();
	void *objs[N];
	uint64_t before, during;
	int i, j;

	before = free_bytes(c);
	ck_assert_int_eq(km_kmalloc_bulk(c, 192, KM_GFP_KERNEL, N, objs), N);
	for (i = 0; i < N; i++) {
		ck_assert_ptr_nonnull(objs[i]);
		ck_assert_uint_eq(km_ksize(c, objs[i]), 192);
		memset(objs[i], i & 0xff, 192);
	}
	/* No two overlap: each still holds its own pattern. */
	for (i = 0; i < N; i++) {
		for (j = 0; j < 192 && ((uint8_t *)objs[i])[j] == (i & 0xff); j++)
			;
		ck_assert_int_eq(j, 192);
	}
	during = free_bytes(c);
	ck_assert_uint_lt(during, before);
	km_kfree_bulk(c, N, objs);
	/* All or nothing: a bulk too big for the pool allocates nothing. */
	errno = 0;
	ck_assert_int_eq(km_kmalloc_bulk(c, 4u << 20, KM_GFP_KERNEL | KM_GFP_NOWARN, 1000, objs),
			 -1);
	ck_assert_int_eq(errno, ENOMEM);
	km_disconnect(c);
}
END_TEST

START_TEST(test_kvmalloc_fallback_rule)
{
	km_client *c = connect_or_fail();
	void *small, *big, *atomic_big;

	small = km_kvmalloc(c, 100, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(small);
	ck_assert_uint_ne(km_virt_to_phys(c, small), UINT64_MAX);
	/* Over 4 MiB kmalloc cannot serve it: vmalloc does. */
	big = km_kvmalloc(c, (4u << 20) + 4096, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	ck_assert_uint_ne(km_vmalloc_to_pfn(c, big), UINT64_MAX);
	memset(big, 0x11, (4u << 20) + 4096);
	/* A gfp that may not sleep never falls back. */
	errno = 0;
	atomic_big = km_kvmalloc(c, (4u << 20) + 4096, KM_GFP_ATOMIC | KM_GFP_NOWARN);
	ck_assert_ptr_null(atomic_big);
	ck_assert_ptr_eq(km_kvmalloc(c, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	km_kvfree(c, small);
	km_kvfree(c, big);
	km_disconnect(c);
}
END_TEST

/* Written through a kmalloc pointer, read by another process of the same uid
 * straight from the domain memfd at the same phys. */
START_TEST(test_same_uid_sees_same_phys)
{
	km_client *c = connect_or_fail();
	uint8_t *p = km_kmalloc(c, 3000, KM_GFP_KERNEL);
	uint64_t phys;
	int status;
	pid_t pid;
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < 3000; i++)
		p[i] = (uint8_t)(i * 13 + 1);
	phys = km_virt_to_phys(c, p);
	pid = fork();
	if (pid == 0) {
		Kmalloc__Reply *welcome;
		int memfd, fd = raw_connect_hello(daemon_under_test.socket, &memfd, &welcome);
		uint8_t buf[3000];

		if (fd < 0)
			_exit(2);
		if (pread(memfd, buf, sizeof(buf), (off_t)phys) != (ssize_t)sizeof(buf)) {
			/* hugetlbfs has no read(): map it instead. */
			uint8_t *map =
				mmap(NULL, welcome->welcome->pool_size, PROT_READ,
				     MAP_SHARED | (welcome->welcome->hugetlb ? MAP_NORESERVE : 0),
				     memfd, 0);
			if (map == MAP_FAILED)
				_exit(3);
			memcpy(buf, map + phys, sizeof(buf));
		}
		for (i = 0; i < sizeof(buf); i++)
			if (buf[i] != (uint8_t)(i * 13 + 1))
				_exit(4);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "second client did not see the data (step %d)", WEXITSTATUS(status));
	km_kfree(c, p);
	km_disconnect(c);
}
END_TEST

/* Two clients of one uid share the domain, so each sees the other's
 * objects in its direct map; neither may free the other's. A kfree of an
 * object in another client's slab (or of another client's large kmalloc)
 * is refused with EINVAL, the object stays the other's, and the memory adds
 * up. */
START_TEST(test_kfree_of_another_clients_object)
{
	km_client *a = connect_or_fail(), *b = connect_or_fail();
	uint8_t *small = km_kmalloc(a, 64, KM_GFP_KERNEL),
		*big = km_kmalloc(a, 65536, KM_GFP_KERNEL);
	km_meminfo before, after;

	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(big);
	memset(small, 0x5a, 64);
	ck_assert_int_eq(km_get_meminfo(b, &before), 0);
	/* The same phys in b's direct map (b's base from an object of its own). */
	{
		void *probe = km_kmalloc(b, 8, KM_GFP_KERNEL);
		uint8_t *b_base = (uint8_t *)probe - km_virt_to_phys(b, probe);
		uint8_t *b_small = b_base + km_virt_to_phys(a, small);
		uint8_t *b_big = b_base + km_virt_to_phys(a, big);

		ck_assert_uint_eq(b_small[0], 0x5a); /* the very same bytes */
		errno = 0;
		km_kfree(b, b_small);
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		km_kfree(b, b_big);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_uint_eq(km_ksize(b, b_small), 0);
		km_kfree(b, probe);
	}
	ck_assert_uint_eq(km_ksize(a, small), 64);
	ck_assert_uint_eq(km_ksize(a, big), 65536);
	ck_assert_uint_eq(small[63], 0x5a);
	ck_assert_int_eq(km_get_meminfo(b, &after), 0);
	ck_assert_uint_eq(after.total,
			  after.free + after.slab + after.vmalloc_used + after.quarantined);
	ck_assert_uint_le(after.free, before.free);
	km_kfree(a, small);
	km_kfree(a, big);
	km_disconnect(a);
	km_disconnect(b);
}
END_TEST

struct thread_arg {
	km_client *c;
	int id;
	int errors;
};

static void *thread_body(void *argp)
{
	struct thread_arg *arg = argp;
	void *live[64] = { 0 };
	size_t sizes[64] = { 0 };
	int i, k;

	for (i = 0; i < 3000; i++) {
		k = (int)test_rand_below(64);
		if (live[k]) {
			uint8_t *p = live[k];
			size_t j;

			for (j = 0; j < sizes[k]; j++)
				if (p[j] != (uint8_t)(arg->id + k))
					arg->errors++;
			if (km_ksize(arg->c, p) < sizes[k])
				arg->errors++;
			km_kfree(arg->c, p);
			live[k] = NULL;
		} else {
			sizes[k] = 1 + test_rand_below(i % 10 ? 600 : 20000);
			live[k] = km_kmalloc(arg->c, sizes[k], KM_GFP_KERNEL);
			if (!live[k]) {
				arg->errors++;
				continue;
			}
			memset(live[k], arg->id + k, sizes[k]);
		}
	}
	for (k = 0; k < 64; k++)
		km_kfree(arg->c, live[k]);
	return NULL;
}

START_TEST(test_threads_share_one_client)
{
	enum { T = 4 };
	km_client *c = connect_or_fail();
	pthread_t th[T];
	struct thread_arg args[T];
	uint64_t before = free_bytes(c);
	int i;

	for (i = 0; i < T; i++) {
		args[i] = (struct thread_arg){ .c = c, .id = i * 50 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, thread_body, &args[i]), 0);
	}
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].errors, 0);
	}
	/* Everything given back (empty slabs may stay cached: they count as
	 * slab, not free, so compare what nobody holds). */
	{
		km_meminfo mi;

		ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
		ck_assert_uint_le(mi.free, before + mi.slab);
	}
	km_disconnect(c);
}
END_TEST

START_TEST(test_meminfo_totals)
{
	km_client *c = connect_or_fail();
	km_meminfo mi, after;
	void *p;

	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_eq(mi.total, POOL_SIZE);
	ck_assert_uint_eq(mi.frame_size, 2u << 20);
	ck_assert_uint_eq(mi.hugetlb, strcmp(test_backing(), "hugetlb") == 0);
	ck_assert_uint_le(mi.free, mi.total);
	ck_assert_uint_gt(mi.reserve, 0);
	p = km_kmalloc(c, 1u << 20, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(km_get_meminfo(c, &after), 0);
	ck_assert_uint_ge(after.slab, mi.slab + (1u << 20)); /* large kmalloc counts in Slab */
	km_kfree(c, p);
	km_disconnect(c);
}
END_TEST

/* The emergency reserve: GFP_KERNEL and GFP_NOWAIT stop at the min
 * watermark, GFP_ATOMIC may go below it (docs/kernel.md). */
START_TEST(test_reserve_is_for_atomic)
{
	enum { MAX = 64 };
	void *p[MAX], *atomic;
	km_meminfo mi, after;
	km_client *c;
	int n = 0, i;

	setenv("KMCLIENT_NO_CACHE", "1", 1);
	c = connect_or_fail();
	unsetenv("KMCLIENT_NO_CACHE");
	while (n < MAX && (p[n] = km_kmalloc(c, 2u << 20, KM_GFP_KERNEL | KM_GFP_NOWARN)))
		n++;
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_gt(n, 8);
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_gt(mi.reserve, 0);
	ck_assert_uint_ge(mi.free, mi.reserve); /* the reserve is still there */
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 2u << 20, KM_GFP_NOWAIT));
	ck_assert_int_eq(errno, ENOMEM);
	atomic = km_kmalloc(c, 2u << 20, KM_GFP_ATOMIC);
	ck_assert_msg(atomic != NULL, "GFP_ATOMIC could not use the reserve: %s", strerror(errno));
	memset(atomic, 0x3c, 2u << 20);
	km_kfree(c, atomic);
	for (i = 0; i < n; i++)
		km_kfree(c, p[i]);
	ck_assert_int_eq(km_get_meminfo(c, &after), 0);
	ck_assert_uint_eq(after.free, mi.free + (uint64_t)n * (2u << 20));
	km_disconnect(c);
}
END_TEST

/* Freed objects wait in the client's own slabs and lists and come back
 * without a round trip; meminfo drains nothing (what a client keeps counts
 * as in use, as a CPU's slab does), and all of it comes back when the client
 * goes. */
START_TEST(test_client_lists)
{
	const struct timespec step = { .tv_nsec = 10 * 1000000 };
	km_client *c = connect_or_fail(), *watcher = connect_or_fail();
	km_meminfo before, kept, after;
	uint8_t *p, *q, *big, *big2;
	int i;

	ck_assert_int_eq(km_get_meminfo(watcher, &before), 0);
	p = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x77, 64);
	km_kfree(c, p);
	ck_assert_uint_eq(km_ksize(c, p), 0); /* freed, even if kept nearby */
	q = km_kmalloc(c, 50, KM_GFP_KERNEL);
	ck_assert_ptr_eq(q, p); /* LIFO: the same object, no round trip */
	km_kfree(c, q);
	q = km_kzalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_eq(q, p);
	for (i = 0; i < 64 && q[i] == 0; i++)
		;
	ck_assert_int_eq(i, 64); /* cleared by the library */
	km_kfree(c, q);

	/* Large blocks too (the pool is big enough to keep a 1 MiB one). */
	big = km_kmalloc(c, 1u << 20, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	km_kfree(c, big);
	big2 = km_kmalloc(c, (1u << 20) - 100, KM_GFP_KERNEL);
	ck_assert_ptr_eq(big2, big);
	ck_assert_uint_eq(km_ksize(c, big2), 1u << 20);
	km_kfree(c, big2);

	/* Kept, not drained: the slab and the block still count as held. */
	ck_assert_int_eq(km_get_meminfo(c, &kept), 0);
	ck_assert_uint_le(kept.available + (1u << 20) + 4096, before.available);
	ck_assert_uint_eq(kept.total, kept.free + kept.slab + kept.vmalloc_used + kept.quarantined);
	km_disconnect(c);
	/* Everything went back once the client left (the daemon gives a
	 * closed connection's grants back over a few loop turns). */
	for (i = 0; i < 500; i++) {
		ck_assert_int_eq(km_get_meminfo(watcher, &after), 0);
		if (after.available == before.available)
			break;
		nanosleep(&step, NULL);
	}
	ck_assert_uint_eq(after.available, before.available);
	km_disconnect(watcher);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("clients");
	TCase *tc = tcase_create("kmalloc");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_size_classes_alignment_ksize);
	tcase_add_test(tc, test_zero_size_overflow_and_limits);
	tcase_add_test(tc, test_kzalloc_clears_dirty_memory);
	tcase_add_test(tc, test_krealloc_semantics);
	tcase_add_test(tc, test_bulk_and_free_accounting);
	tcase_add_test(tc, test_kvmalloc_fallback_rule);
	tcase_add_test(tc, test_same_uid_sees_same_phys);
	tcase_add_test(tc, test_kfree_of_another_clients_object);
	tcase_add_test(tc, test_threads_share_one_client);
	tcase_add_test(tc, test_meminfo_totals);
	tcase_add_test(tc, test_client_lists);
	tcase_add_test(tc, test_reserve_is_for_atomic);
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, NULL);
}
