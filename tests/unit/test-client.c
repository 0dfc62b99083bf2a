// SPDX-License-Identifier: MIT
/*
 * test-client.c - libkmclient against the real dispatcher, and against a
 * scripted fake daemon for what the real one cannot be made to do.
 *
 * "core": the daemon core (server_init_unlisted(), --paranoid) in a forked
 * child over a socketpair (tests/lib/inproc.h), the client made with
 * kmc_connect_fd(): kmalloc/kfree/ksize/krealloc semantics, bulk calls,
 * refill batches and the client's lists, deferred kfrees and the Nop that
 * flushes them, an ENOMEM that drains the lists and retries, kvmalloc's
 * fallback rule, vmalloc, meminfo adding up, and many threads filling the
 * release queue at once, after which every grant and every free byte must
 * be back. A probe connection reads the daemon's own grant count. Sharing
 * within one client: an exported slab object (EXPORTED, GONE, never reused),
 * exported large kmallocs and areas (never kept for reuse), KM_GFP_SHARED
 * allocations.
 *
 * "fake": a scripted daemon that answers out of order, hangs up, or sends
 * replies that do not decode or do not fit the request; and answers imports
 * of each kind, with revocation events at the awkward moments (with the
 * revoke's reply, unasked while the client is idle, before the import's
 * reply).
 *
 * "text": km_handle_format() and km_handle_parse().
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "inproc.h"
#include "kmalloc.pb-c.h"
#include "kmclient-private.h"
#include "kmclient.h"
#include "testutil.h"
#include "wire.h"

#define CORE_POOL (32ull << 20)
#define MIB	  (1ull << 20)

/* ---- the real daemon core -------------------------------------------------- */

static struct inproc core;

/* Starts the daemon core and connects a client to it, with the client's
 * lists on or off (KMCLIENT_NO_CACHE=1: every small kfree goes through the
 * release queue). */
static km_client *core_start(bool lists)
{
	km_client *c = NULL;
	int err;

	inproc_start(&core, CORE_POOL);
	if (!lists)
		setenv("KMCLIENT_NO_CACHE", "1", 1);
	err = kmc_connect_fd(core.fd, &c);
	unsetenv("KMCLIENT_NO_CACHE");
	core.fd = -1;
	ck_assert_msg(err == 0, "kmc_connect_fd: %s", strerror(-err));
	return c;
}

/* Disconnects and checks that the daemon core stopped cleanly: every
 * paranoid check after every request passed. */
static void core_stop(km_client *c)
{
	km_disconnect(c);
	ck_assert_int_eq(inproc_stop(&core), 0);
}

/* Grants the daemon holds (the probe holds none). */
static uint64_t core_grants(void)
{
	Kmalloc__Meminfo m;

	inproc_meminfo(&core, &m);
	return m.grants;
}

/* Grants the client holds by its own books: slabs it carves, large
 * kmallocs in use or on its lists, vmalloc areas. The daemon's count must
 * be this (after a round trip, so that releases sent without waiting have
 * arrived). Only while no other thread uses @c. */
static uint64_t held_grants(km_client *c)
{
	uint64_t n = c->ktab_count + c->nr_vareas + c->nr_vkept;

	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		n += c->classes[i].nr_slabs;
	for (unsigned int i = 0; i <= KM_MAX_ORDER; i++)
		n += c->pcp_large[i].nr;
	return n;
}

/* Bytes of slabs, freed large blocks and freed vmalloc areas the client
 * keeps for reuse. */
static uint64_t kept_bytes(km_client *c)
{
	uint64_t n = c->pcp_large_bytes + c->vkept_bytes;

	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		n += (uint64_t)c->classes[i].nr_slabs * c->classes[i].slab_bytes;
	return n;
}

/* The daemon holds exactly the client's grants. */
static void grants_match(km_client *c)
{
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert_uint_eq(core_grants(), held_grants(c));
}

/* MemTotal = MemFree + Slab + VmallocUsed + HardwareCorrupted, and the client
 * sees what the daemon says. */
static km_meminfo meminfo_adds_up(km_client *c)
{
	Kmalloc__Meminfo m;
	km_meminfo mi;

	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_msg(mi.total == mi.free + mi.slab + mi.vmalloc_used + mi.quarantined,
		      "total %" PRIu64 " != free %" PRIu64 " + slab %" PRIu64 " + vmalloc %" PRIu64
		      " + quarantined %" PRIu64,
		      mi.total, mi.free, mi.slab, mi.vmalloc_used, mi.quarantined);
	inproc_meminfo(&core, &m);
	ck_assert_uint_eq(mi.free, m.free);
	ck_assert_uint_eq(mi.slab, m.slab);
	ck_assert_uint_eq(mi.vmalloc_used, m.vmalloc_used);
	ck_assert_uint_eq(mi.available, m.available);
	return mi;
}

START_TEST(test_nop_and_connect_fd)
{
	km_client *c = core_start(false), *bad = NULL;
	int sv[2];
	void *p;

	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	/* A Nop takes the release queue along. */
	p = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	km_kfree(c, p);
	ck_assert_uint_eq(core_grants(), 1);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert_uint_eq(core_grants(), 0);
	/* Only a SOCK_SEQPACKET will do; the descriptor is the client's either way. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(kmc_connect_fd(sv[0], &bad), -EPROTOTYPE);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1);
	close(sv[1]);
	core_stop(c);
}
END_TEST

START_TEST(test_classes_alignment_ksize)
{
	static const size_t sizes[] = {
		1,     7,      8,    9,	      16,      17,	32,   33,   63,	   64,
		65,    95,     96,   97,      127,     128,	129,  191,  192,   193,
		255,   256,    257,  511,     512,     513,	1023, 1024, 1025,  2047,
		2048,  2049,   4095, 4096,    4097,    8191,	8192, 8193, 12288, 16384,
		65537, 100000, MIB,  MIB + 1, 3 * MIB, 4 * MIB,
	};
	km_client *c = core_start(false); /* one grant per kmalloc */
	size_t i, j;
	int local;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t size = sizes[i], ks = test_expected_ksize(size), align = size & -size;
		uint8_t *p = km_kmalloc(c, size, KM_GFP_KERNEL);

		ck_assert_msg(p != NULL, "kmalloc(%zu): %s", size, strerror(errno));
		ck_assert_uint_eq(km_ksize(c, p), ks);
		/* 8 at least, a power of two to its size, large ones to the page. */
		if (align < 8)
			align = 8;
		if (size > 8192 && align < 4096)
			align = 4096;
		ck_assert_msg(((uintptr_t)p & (align - 1)) == 0, "kmalloc(%zu) = %p", size,
			      (void *)p);
		ck_assert_uint_eq(km_virt_to_phys(c, p + ks - 1), km_virt_to_phys(c, p) + ks - 1);
		for (j = 0; j < ks; j += 512)
			p[j] = (uint8_t)(j + i);
		p[ks - 1] = 0x5a;
		for (j = 0; j < ks && p[j] == (uint8_t)(j + i); j += 512)
			;
		ck_assert_uint_ge(j, ks);
		ck_assert_uint_eq(core_grants(), 1);
		km_kfree(c, p);
		ck_assert_uint_eq(km_ksize(c, p), 0);
	}
	/* What is not a live kmalloc: no size, no phys, and kfree ignores it. */
	ck_assert_uint_eq(km_ksize(c, &local), 0);
	ck_assert_uint_eq(km_virt_to_phys(c, &local), UINT64_MAX);
	km_kfree(c, &local);
	meminfo_adds_up(c);
	ck_assert_uint_eq(core_grants(), 0);
	core_stop(c);
}
END_TEST

START_TEST(test_zero_size_kzalloc_and_limits)
{
	static const size_t sizes[] = { 64, 96, 4096, 8192, 20000, MIB };
	km_client *c = core_start(true);
	size_t i, j;
	int round;

	ck_assert_ptr_eq(km_kmalloc(c, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	ck_assert_uint_eq(km_ksize(c, KM_ZERO_SIZE_PTR), 0);
	km_kfree(c, KM_ZERO_SIZE_PTR);
	km_kfree(c, NULL);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 4 * MIB + 1, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(km_kcalloc(c, SIZE_MAX / 2, 4, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(core_grants(), 0);

	/* Dirty memory comes back cleared, whether fresh (round 0) or what the
	 * client kept in its slabs and lists (rounds 1, 2). */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint8_t *dirty = km_kmalloc(c, sizes[i], KM_GFP_KERNEL), *z;

			ck_assert_ptr_nonnull(dirty);
			memset(dirty, 0xa5, km_ksize(c, dirty));
			km_kfree(c, dirty);
			if (!round)
				meminfo_adds_up(c);
			z = round == 2 ? km_kcalloc(c, sizes[i] / 8, 8, KM_GFP_KERNEL)
				       : km_kzalloc(c, sizes[i], KM_GFP_KERNEL);
			ck_assert_ptr_nonnull(z);
			for (j = 0; j < km_ksize(c, z) && !z[j]; j++)
				;
			ck_assert_msg(j == km_ksize(c, z), "round %d: byte %zu of kzalloc(%zu)",
				      round, j, sizes[i]);
			km_kfree(c, z);
		}
	}
	meminfo_adds_up(c);
	grants_match(c);
	core_stop(c);
}
END_TEST

START_TEST(test_krealloc_semantics)
{
	km_client *c = core_start(true);
	uint8_t *p, *q;
	size_t i;

	p = km_krealloc(c, NULL, 40, KM_GFP_KERNEL); /* NULL: a kmalloc */
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(km_ksize(c, p), 64);
	for (i = 0; i < 64; i++)
		p[i] = (uint8_t)i;
	ck_assert_ptr_eq(km_krealloc(c, p, 64, KM_GFP_KERNEL), p); /* fits the bucket */
	ck_assert_ptr_eq(km_krealloc(c, p, 10, KM_GFP_KERNEL), p);
	ck_assert_ptr_eq(km_krealloc(c, p, 32, KM_GFP_KERNEL | KM_GFP_ZERO), p);
	for (i = 0; i < 64; i++)
		ck_assert_uint_eq(p[i], i < 32 ? i : 0); /* the tail cleared */
	q = km_krealloc(c, p, 5000, KM_GFP_KERNEL);	 /* moves, copies the bucket */
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_ne(q, p);
	ck_assert_uint_eq(km_ksize(c, q), 8192);
	ck_assert_uint_eq(km_ksize(c, p), 0);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(q[i], i);
	q = km_krealloc(c, q, 300000, KM_GFP_KERNEL); /* into the page allocator */
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(km_ksize(c, q), 512 * 1024);
	ck_assert_uint_eq(q[31], 31);
	errno = 0; /* failure: untouched */
	ck_assert_ptr_null(km_krealloc(c, q, 4 * MIB + 1, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(q[5], 5);
	ck_assert_ptr_eq(km_krealloc(c, q, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	ck_assert_uint_eq(km_ksize(c, q), 0);
	meminfo_adds_up(c);
	grants_match(c);
	core_stop(c);
}
END_TEST

START_TEST(test_bulk_all_or_nothing)
{
	enum { N = 300, MANY = 2500 };
	km_client *c = core_start(true);
	void **objs = calloc(MANY, sizeof(*objs));
	uint64_t before;
	int i, j;

	ck_assert_ptr_nonnull(objs);
	before = meminfo_adds_up(c).free;
	ck_assert_int_eq(km_kmalloc_bulk(c, 192, KM_GFP_KERNEL, N, objs), N);
	/* Whole slabs of kmalloc-192 (21 objects each), not 300 grants. */
	grants_match(c);
	ck_assert_uint_ge(c->classes[6].nr_slabs, (N + 20) / 21);
	ck_assert_uint_lt(core_grants(), N / 8);
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(km_ksize(c, objs[i]), 192);
		memset(objs[i], i & 0xff, 192);
	}
	for (i = 0; i < N; i++) { /* no two overlap */
		for (j = 0; j < 192 && ((uint8_t *)objs[i])[j] == (i & 0xff); j++)
			;
		ck_assert_int_eq(j, 192);
	}
	ck_assert_uint_lt(meminfo_adds_up(c).free, before);
	km_kfree_bulk(c, N, objs);
	grants_match(c);
	/* More than a refill holds (1024 objects): several, still one call. */
	ck_assert_int_eq(km_kmalloc_bulk(c, 8, KM_GFP_KERNEL, MANY, objs), MANY);
	for (i = 0; i < MANY; i++)
		ck_assert_uint_eq(km_ksize(c, objs[i]), 8);
	grants_match(c);
	km_kfree_bulk(c, MANY, objs);
	grants_match(c);
	/* Large ones are grants of their own, one round trip per 1024. */
	ck_assert_int_eq(km_kmalloc_bulk(c, 16384, KM_GFP_KERNEL, 100, objs), 100);
	grants_match(c);
	ck_assert_uint_eq(c->ktab_count, 100);
	km_kfree_bulk(c, 100, objs);
	grants_match(c);
	ck_assert_uint_eq(c->ktab_count, 0);
	/* Too much for the pool: nothing at all. */
	errno = 0;
	ck_assert_int_eq(km_kmalloc_bulk(c, 4 * MIB, KM_GFP_KERNEL | KM_GFP_NOWARN, 100, objs), -1);
	ck_assert_int_eq(errno, ENOMEM);
	grants_match(c);
	ck_assert_uint_eq(c->ktab_count, 0);
	ck_assert_int_eq(km_kmalloc_bulk(c, 0, KM_GFP_KERNEL, 3, objs), 3);
	ck_assert_ptr_eq(objs[2], KM_ZERO_SIZE_PTR);
	meminfo_adds_up(c);
	free(objs);
	core_stop(c);
}
END_TEST

START_TEST(test_slab_refill_and_reuse)
{
	enum { N = 100 };
	km_client *c = core_start(true);
	const struct kmc_class *k = &c->classes[3]; /* kmalloc-64: 64 objects a slab */
	uint8_t *p[N], *q, *q0, *big, *big2;
	int i, j;

	/* Two misses: the first asks for one slab, the next for two. */
	for (i = 0; i < N; i++) {
		p[i] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_uint_eq(km_ksize(c, p[i]), 64);
	}
	ck_assert_uint_eq(k->nr_slabs, 3);
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 3);
	/* Freed objects stay with the client and come back without asking. */
	for (i = 0; i < N; i++)
		km_kfree(c, p[i]);
	q0 = p[N - 1];
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 3);
	for (i = 0; i < N; i++) {
		q = km_kmalloc(c, 60, KM_GFP_KERNEL);
		ck_assert(kmc_slab_owns(c, q));
		for (j = 0; j < i && p[j] != q; j++)
			;
		ck_assert_msg(j == i, "object %d handed out twice", i);
		p[i] = q;
	}
	ck_assert_ptr_eq(p[0], q0); /* the last one freed comes first */
	/* meminfo drains nothing: the slabs stay the client's. */
	meminfo_adds_up(c);
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 3);

	/* Large blocks wait on a list, up to 1/64 of the pool. */
	big = km_kmalloc(c, 256 * 1024, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	km_kfree(c, big);
	grants_match(c);
	ck_assert_uint_eq(c->pcp_large[6].nr, 1);
	big2 = km_kmalloc(c, 200000, KM_GFP_KERNEL);
	ck_assert_ptr_eq(big2, big);
	km_kfree(c, big2);
	meminfo_adds_up(c);
	grants_match(c);
	core_stop(c);
}
END_TEST

/* What the client keeps but does not use goes back when asked: the
 * thread's magazines, every empty slab, the large lists. */
START_TEST(test_drain_gives_everything_back)
{
	enum { N = 1000 };
	km_client *c = core_start(true);
	km_meminfo fresh = meminfo_adds_up(c), mi;
	void *p[N], *big;
	int i;

	for (i = 0; i < N; i++) {
		p[i] = km_kmalloc(c, 1 + (size_t)test_rand_below(2048), KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[i]);
	}
	big = km_kmalloc(c, 100000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	mi = meminfo_adds_up(c);
	ck_assert_uint_eq(mi.available + kept_bytes(c) + km_ksize(c, big), fresh.available);
	for (i = 0; i < N; i++)
		km_kfree(c, p[i]);
	km_kfree(c, big);
	grants_match(c);
	mi = meminfo_adds_up(c);
	ck_assert_uint_eq(mi.available + kept_bytes(c), fresh.available);
	ck_assert(kmc_drain_caches(c));
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 0);
	ck_assert_uint_eq(kept_bytes(c), 0);
	ck_assert_uint_eq(meminfo_adds_up(c).available, fresh.available);
	ck_assert(!kmc_drain_caches(c)); /* nothing left */
	core_stop(c);
}
END_TEST

/* The daemon's grant count falls to @want within a second: releases sent
 * without waiting for an answer arrive on their own. */
static void grants_reach(uint64_t want)
{
	const struct timespec step = { .tv_nsec = 1000000 };

	for (int i = 0; i < 1000 && core_grants() != want; i++)
		nanosleep(&step, NULL);
	ck_assert_uint_eq(core_grants(), want);
}

START_TEST(test_deferred_release_without_lists)
{
	enum { N = KMC_RELEASE_FLUSH + 44 };
	km_client *c = core_start(false);
	void *p[N];
	int i;

	/* Each small kfree rides on the next request. */
	for (i = 0; i < 10; i++) {
		p[0] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[0]);
		km_kfree(c, p[0]);
	}
	ck_assert_uint_eq(core_grants(), 1);
	ck_assert_uint_eq(c->nr_release, 1);
	meminfo_adds_up(c);
	ck_assert_uint_eq(core_grants(), 0);
	/* A queue of KMC_RELEASE_FLUSH ids goes out at once, without waiting
	 * for its answer; the rest waits for the next request. */
	for (i = 0; i < N; i++) {
		p[i] = km_kmalloc(c, 100, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[i]);
	}
	for (i = 0; i < N; i++)
		km_kfree(c, p[i]);
	ck_assert_uint_eq(c->nr_release, N - KMC_RELEASE_FLUSH);
	grants_reach(N - KMC_RELEASE_FLUSH);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert_uint_eq(core_grants(), 0);
	ck_assert_uint_eq(c->async_inflight, 0); /* its answer was read on the way */
	/* A large kfree goes back at once, without a round trip of its own. */
	p[0] = km_kmalloc(c, 100000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p[0]);
	ck_assert_uint_eq(core_grants(), 1);
	km_kfree(c, p[0]);
	ck_assert_uint_eq(c->nr_release, 0);
	grants_reach(0);
	/* So does a vfree (without caches, no freed area is kept). */
	p[0] = km_vmalloc(c, 5 * MIB);
	ck_assert_ptr_nonnull(p[0]);
	ck_assert_uint_eq(core_grants(), 1);
	km_vfree(c, p[0]);
	ck_assert_uint_eq(c->nr_vkept, 0);
	grants_reach(0);
	core_stop(c);
}
END_TEST

/* A request that cannot be sent fails alone: the kfrees queued to ride on it
 * stay queued, and go with the next one. */
START_TEST(test_failed_send_keeps_release_queue)
{
	const size_t len = WIRE_DEFAULT_MAX_PACKET + 1;
	km_client *c = core_start(false);
	char *caller = malloc(len);
	uint32_t frame;
	uint64_t id;
	void *p[5];
	int i;

	ck_assert_ptr_nonnull(caller);
	memset(caller, 'x', len - 1);
	caller[len - 1] = '\0';
	for (i = 0; i < 5; i++) {
		p[i] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[i]);
	}
	for (i = 0; i < 5; i++)
		km_kfree(c, p[i]);
	ck_assert_uint_eq(core_grants(), 5);
	ck_assert_int_eq(
		kmc_rpc_vmalloc(c, 2 * MIB, KM_GFP_KERNEL, 0, caller, &id, &frame, 1, NULL),
		-E2BIG);
	ck_assert_uint_eq(core_grants(), 5);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert_uint_eq(core_grants(), 0);
	free(caller);
	core_stop(c);
}
END_TEST

/* A refused allocation gives back what the client keeps on its lists, then
 * tries once more: eight freed 64 KiB blocks that make up an aligned 512 KiB
 * serve a 512 KiB kmalloc in a full pool. */
START_TEST(test_enomem_drains_lists_and_retries)
{
	enum { MAX = CORE_POOL / (64 * 1024) };
	const uint64_t group = 512 * 1024;
	km_client *c = core_start(true);
	void **blk = calloc(MAX, sizeof(*blk));
	uint64_t *phys = calloc(MAX, sizeof(*phys));
	int n = 0, first = -1, i, k, found;
	void *p;

	ck_assert_ptr_nonnull(blk);
	ck_assert_ptr_nonnull(phys);
	while (n < MAX && (blk[n] = km_kmalloc(c, 65536, KM_GFP_KERNEL | KM_GFP_NOWARN))) {
		phys[n] = km_virt_to_phys(c, blk[n]);
		n++;
	}
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_gt(n, MAX / 2);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 300000, KM_GFP_KERNEL | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	/* Eight of ours that make up an aligned 512 KiB. */
	for (i = 0; i < n && first < 0; i++) {
		if (phys[i] % group)
			continue;
		for (k = 1, found = 1; k < 8; k++)
			for (int j = 0; j < n; j++)
				if (phys[j] == phys[i] + (uint64_t)k * 65536)
					found++;
		if (found == 8)
			first = i;
	}
	ck_assert_int_ge(first, 0);
	for (i = 0; i < n; i++) {
		if (phys[i] >= phys[first] && phys[i] < phys[first] + group) {
			km_kfree(c, blk[i]);
			blk[i] = NULL;
		}
	}
	ck_assert_uint_eq(core_grants(), (uint64_t)n); /* kept on the client's list */
	p = km_kmalloc(c, 300000, KM_GFP_KERNEL | KM_GFP_NOWARN);
	ck_assert_msg(p != NULL, "no retry after the drain: %s", strerror(errno));
	ck_assert_uint_eq(km_virt_to_phys(c, p), phys[first]);
	ck_assert_uint_eq(core_grants(), (uint64_t)n - 8 + 1);
	km_kfree(c, p);
	for (i = 0; i < n; i++)
		km_kfree(c, blk[i]);
	meminfo_adds_up(c);
	grants_match(c);
	free(blk);
	free(phys);
	core_stop(c);
}
END_TEST

START_TEST(test_kvmalloc_fallback_rule)
{
	km_client *c = core_start(true);
	km_meminfo before = meminfo_adds_up(c), during;
	void *small, *page, *mid, *big;

	/* What kmalloc serves stays kmalloc, whatever the gfp. */
	small = km_kvmalloc(c, 100, KM_GFP_KERNEL);
	page = km_kvmalloc(c, 4096, KM_GFP_ATOMIC);
	mid = km_kvmalloc(c, MIB, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(page);
	ck_assert_ptr_nonnull(mid);
	ck_assert_uint_ne(km_virt_to_phys(c, small), UINT64_MAX);
	ck_assert_uint_ne(km_virt_to_phys(c, page), UINT64_MAX);
	ck_assert_uint_eq(km_ksize(c, mid), MIB);
	/* Past kmalloc's 4 MiB: vmalloc, when the gfp may sleep. */
	big = km_kvmalloc(c, 4 * MIB + 4096, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	ck_assert_uint_eq(km_virt_to_phys(c, big), UINT64_MAX);
	ck_assert_uint_ne(km_vmalloc_to_pfn(c, big), UINT64_MAX);
	memset(big, 0x11, 4 * MIB + 4096);
	during = meminfo_adds_up(c);
	ck_assert_uint_eq(during.vmalloc_used, before.vmalloc_used + 6 * MIB); /* 3 frames */
	errno = 0;
	ck_assert_ptr_null(km_kvmalloc(c, 4 * MIB + 4096, KM_GFP_ATOMIC | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(km_kvmalloc(c, 4 * MIB + 4096, KM_GFP_NOWAIT));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_eq(km_kvmalloc(c, 0, KM_GFP_KERNEL), KM_ZERO_SIZE_PTR);
	/* Two slabs (kmalloc-128, kmalloc-4k), the 1 MiB block, the area. */
	grants_match(c);
	ck_assert_uint_eq(c->ktab_count, 1);
	ck_assert_uint_eq(c->nr_vareas, 1);
	ck_assert_uint_eq(core_grants(), 4);
	km_kvfree(c, small);
	km_kvfree(c, page);
	km_kvfree(c, mid);
	km_kvfree(c, big);
	ck_assert_uint_eq(meminfo_adds_up(c).vmalloc_used, before.vmalloc_used);
	grants_match(c);
	ck_assert_uint_eq(c->nr_vareas, 0);
	core_stop(c);
}
END_TEST

START_TEST(test_vmalloc_frames_and_accounting)
{
	const size_t len = 3 * MIB;
	km_client *c = core_start(true);
	km_meminfo before = meminfo_adds_up(c);
	uint8_t *v, *z;
	uint64_t pfn;
	size_t off;

	v = km_vmalloc(c, len);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq((uintptr_t)v % 4096, 0);
	ck_assert_uint_eq(meminfo_adds_up(c).vmalloc_used, before.vmalloc_used + 4 * MIB);
	for (off = 0; off < len; off += 4096) {
		v[off] = (uint8_t)(off >> 12);
		pfn = km_vmalloc_to_pfn(c, v + off + 4095);
		ck_assert_uint_ne(pfn, UINT64_MAX);
		/* A frame is contiguous: its pages follow each other. */
		if (off % (2 * MIB))
			ck_assert_uint_eq(pfn, km_vmalloc_to_pfn(c, v + off - 1) + 1);
	}
	for (off = 0; off < len && v[off] == (uint8_t)(off >> 12); off += 4096)
		;
	ck_assert_uint_ge(off, len);
	/* Its frames are dirty now. Freed, the area is kept for the next
	 * vmalloc of as many frames: the same memory, no round trip. */
	memset(v, 0xa5, len);
	km_vfree(c, v);
	ck_assert_uint_eq(c->nr_vkept, 1);
	grants_match(c);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, v), UINT64_MAX); /* freed all the same */
	ck_assert_ptr_eq(km_vmalloc(c, len - 4096), v);
	ck_assert_uint_eq(c->nr_vkept, 0);
	ck_assert_uint_eq(v[len - 1], 0xa5);
	km_vfree(c, v);
	/* A vzalloc never takes a kept area: it is clear. */
	z = km_vzalloc(c, len);
	ck_assert_ptr_nonnull(z);
	for (off = 0; off < len && !z[off]; off++)
		;
	ck_assert_uint_eq(off, len);
	errno = 0;
	ck_assert_ptr_null(km_vmalloc(c, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(km___vmalloc(c, 2 * CORE_POOL, KM_GFP_KERNEL | KM_GFP_NOWARN));
	ck_assert_int_eq(errno, ENOMEM);
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 2); /* z, and the kept area */
	km_vfree(c, z);
	/* The budget (1/8 of the pool: 4 MiB) keeps one of them. */
	ck_assert_uint_eq(c->nr_vkept, 1);
	grants_match(c);
	ck_assert_uint_eq(meminfo_adds_up(c).vmalloc_used, before.vmalloc_used + c->vkept_bytes);
	/* Given back when asked. */
	ck_assert(kmc_drain_caches(c));
	ck_assert_uint_eq(c->nr_vkept, 0);
	ck_assert_uint_eq(meminfo_adds_up(c).vmalloc_used, before.vmalloc_used);
	ck_assert_uint_eq(core_grants(), 0);
	core_stop(c);
}
END_TEST

START_TEST(test_meminfo_adds_up)
{
	km_client *c = core_start(true);
	km_meminfo fresh = meminfo_adds_up(c), mi;
	void *small, *large, *v;

	ck_assert_uint_eq(fresh.total, CORE_POOL);
	ck_assert_uint_eq(fresh.frame_size, 2 * MIB);
	ck_assert_uint_eq(fresh.hugetlb, 0);
	ck_assert_uint_gt(fresh.reserve, 0);
	ck_assert_uint_eq(fresh.quarantined, 0);
	small = km_kmalloc(c, 100, KM_GFP_KERNEL);
	large = km_kmalloc(c, MIB, KM_GFP_KERNEL);
	v = km_vmalloc(c, MIB);
	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(large);
	ck_assert_ptr_nonnull(v);
	mi = meminfo_adds_up(c);
	ck_assert_uint_ge(mi.slab, fresh.slab + MIB); /* large kmallocs count in Slab */
	ck_assert_uint_eq(mi.vmalloc_used, fresh.vmalloc_used + 2 * MIB);
	km_kfree(c, small);
	km_kfree(c, large);
	km_vfree(c, v);
	mi = meminfo_adds_up(c);
	ck_assert_uint_eq(mi.vmalloc_used, fresh.vmalloc_used + c->vkept_bytes);
	/* What nobody holds is what it was, but for what the client keeps
	 * (its slab, the freed area): nothing is drained. */
	ck_assert_uint_gt(kept_bytes(c), 0);
	ck_assert_uint_eq(mi.available + kept_bytes(c), fresh.available);
	core_stop(c);
}
END_TEST

/* ---- the release queue under contention ------------------------------------ */

#define CHURN_THREADS 8

struct churn {
	km_client *c;
	uint64_t rand; /* xorshift64* state of this thread */
	unsigned int rounds;
	unsigned int burst;    /* objects allocated, then freed together, at most */
	unsigned int max_size; /* bytes */
	uint8_t tag;
	int errors;
};

static uint64_t churn_rand(struct churn *t)
{
	t->rand ^= t->rand >> 12;
	t->rand ^= t->rand << 25;
	t->rand ^= t->rand >> 27;
	return t->rand * 0x2545F4914F6CDD1Dull;
}

/* Rounds of: a burst of small objects (one bulk call, or one kmalloc each),
 * each filled with a pattern, then every one checked and freed on its own,
 * back to back, so that the threads' kfrees fill the release queue together. */
static void *churn_body(void *arg)
{
	struct churn *t = arg;
	void *p[256];
	size_t size[256];
	unsigned int r, i, n;

	for (r = 0; r < t->rounds; r++) {
		n = 1 + (unsigned int)(churn_rand(t) % t->burst);
		if (churn_rand(t) & 1) {
			size[0] = 1 + churn_rand(t) % t->max_size;
			if (km_kmalloc_bulk(t->c, size[0], KM_GFP_KERNEL, n, p) != (int)n) {
				t->errors++;
				continue;
			}
			for (i = 1; i < n; i++)
				size[i] = size[0];
		} else {
			for (i = 0; i < n; i++) {
				size[i] = 1 + churn_rand(t) % t->max_size;
				p[i] = km_kmalloc(t->c, size[i], KM_GFP_KERNEL);
				if (!p[i]) {
					t->errors++;
					n = i;
					break;
				}
			}
		}
		for (i = 0; i < n; i++)
			memset(p[i], (uint8_t)(t->tag + i), size[i]);
		for (i = 0; i < n; i++) {
			const uint8_t *b = p[i], want = (uint8_t)(t->tag + i);

			if (b[0] != want || b[size[i] - 1] != want)
				t->errors++;
			km_kfree(t->c, p[i]);
		}
	}
	return NULL;
}

/*
 * CHURN_THREADS threads on one client until every kfree has gone through
 * the release queue many times over; then the daemon must hold exactly the
 * grants it held before (none of this client's), and the free memory must
 * be exactly what it was: at once counting the empty slabs the caches keep,
 * and as MemFree once they are given back.
 */
static void release_race(bool lists, unsigned int rounds, unsigned int burst, unsigned int max_size)
{
	const struct timespec step = { .tv_nsec = 10 * 1000000 };
	struct churn t[CHURN_THREADS];
	pthread_t th[CHURN_THREADS];
	Kmalloc__Meminfo m0, m;
	km_meminfo before, after;
	km_client *c;
	int i;

	c = core_start(lists);
	before = meminfo_adds_up(c);
	inproc_meminfo(&core, &m0);
	for (i = 0; i < CHURN_THREADS; i++) {
		t[i] = (struct churn){ .c = c,
				       .rand = test_rand() | 1,
				       .rounds = rounds,
				       .burst = burst,
				       .max_size = max_size,
				       .tag = (uint8_t)(i * 31) };
		ck_assert_int_eq(pthread_create(&th[i], NULL, churn_body, &t[i]), 0);
	}
	for (i = 0; i < CHURN_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].errors, 0);
	}
	/* The threads' magazines went back to the slabs as they exited; the
	 * daemon holds the client's slabs, nothing else, and the memory adds
	 * up without a drain. */
	after = meminfo_adds_up(c);
	grants_match(c);
	ck_assert_uint_eq(after.available + kept_bytes(c), before.available);
	/* Given back when asked, everything is as it was. */
	kmc_drain_caches(c);
	after = meminfo_adds_up(c);
	inproc_meminfo(&core, &m);
	ck_assert_uint_eq(m.grants, m0.grants);
	ck_assert_uint_eq(m.free + m.slab_reclaimable, m0.free + m0.slab_reclaimable);
	ck_assert_uint_eq(after.available, before.available);
	/* The probe leaving makes the daemon give the empty slabs back. */
	inproc_probe_close(&core);
	for (i = 0; i < 500 && after.free != before.free; i++) {
		nanosleep(&step, NULL);
		ck_assert_int_eq(km_get_meminfo(c, &after), 0);
	}
	ck_assert_msg(after.free == before.free, "MemFree %" PRIu64 ", was %" PRIu64, after.free,
		      before.free);
	core_stop(c);
}

/* Without lists every small kfree goes through the release queue. */
START_TEST(test_release_queue_race_without_lists)
{
	release_race(false, 300, 64, 8192);
}
END_TEST

/* With lists, what overflows the lists of kmalloc-8..256 goes through it. */
START_TEST(test_release_queue_race_with_lists)
{
	release_race(true, 200, 256, 256);
}
END_TEST

/* ---- objects freed by other threads ---------------------------------------- */

#define HANDOFF_THREADS 4
#define HANDOFF_BATCH	64

/* A mailbox between a thread and the next: batches of objects it allocated
 * and the next one checks and frees. */
struct handoff_box {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *objs[HANDOFF_BATCH];
	size_t size[HANDOFF_BATCH];
	uint8_t tag;
	bool full, done;
};

struct handoff {
	km_client *c;
	struct handoff_box *out, *in; /* to the next thread, from the previous */
	unsigned int rounds;
	uint64_t rand;
	int errors;
};

static void *handoff_body(void *arg)
{
	struct handoff *t = arg;
	unsigned int r, i;

	for (r = 0; r < t->rounds; r++) {
		void *objs[HANDOFF_BATCH];
		size_t size[HANDOFF_BATCH];
		uint8_t tag = (uint8_t)(t->rand = t->rand * 6364136223846793005ull + 1) | 1;

		for (i = 0; i < HANDOFF_BATCH; i++) {
			size[i] = 1 + (t->rand >> 33) % 1024;
			t->rand = t->rand * 6364136223846793005ull + 1;
			objs[i] = km_kmalloc(t->c, size[i], KM_GFP_KERNEL);
			if (!objs[i]) {
				t->errors++;
				return NULL;
			}
			memset(objs[i], tag, size[i]);
		}
		pthread_mutex_lock(&t->out->lock);
		while (t->out->full)
			pthread_cond_wait(&t->out->cond, &t->out->lock);
		memcpy(t->out->objs, objs, sizeof(objs));
		memcpy(t->out->size, size, sizeof(size));
		t->out->tag = tag;
		t->out->full = true;
		pthread_cond_broadcast(&t->out->cond);
		pthread_mutex_unlock(&t->out->lock);

		/* The previous thread's batch: checked, then freed here. */
		pthread_mutex_lock(&t->in->lock);
		while (!t->in->full)
			pthread_cond_wait(&t->in->cond, &t->in->lock);
		for (i = 0; i < HANDOFF_BATCH; i++) {
			const uint8_t *b = t->in->objs[i];

			if (b[0] != t->in->tag || b[t->in->size[i] - 1] != t->in->tag)
				t->errors++;
			km_kfree(t->c, b);
		}
		t->in->full = false;
		pthread_cond_broadcast(&t->in->cond);
		pthread_mutex_unlock(&t->in->lock);
	}
	return NULL;
}

/* Every object of every slab the client holds is free and in its slab, and
 * every slab is empty: what must hold once no thread has a magazine. */
static void slabs_all_free(km_client *c)
{
	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		const struct kmc_class *k = &c->classes[i];
		const struct kmc_slab *s;
		uint32_t n = 0;

		ck_assert(TAILQ_EMPTY(&k->full));
		ck_assert(TAILQ_EMPTY(&k->partial));
		TAILQ_FOREACH(s, &k->empty, link) {
			ck_assert_uint_eq(s->nr_free, k->objs);
			for (uint32_t o = 0; o < k->objs; o++)
				ck_assert_uint_eq(s->state[o], KMC_OBJ_FREE);
			n++;
		}
		ck_assert_uint_eq(n, k->nr_slabs);
		ck_assert_uint_eq(k->nr_empty, k->nr_slabs);
	}
}

/*
 * Threads in a ring: each allocates batches of random sizes and hands them
 * to the next, which checks and frees them, so that every object is freed
 * by another thread than its own, into that thread's magazine, and goes
 * back to its slab from there. After the threads exit (their magazines go
 * back then) every object is free in its slab, the daemon holds exactly
 * the client's slabs, and the figures add up without a drain.
 */
START_TEST(test_frees_from_other_threads)
{
	km_client *c = core_start(true);
	struct handoff_box box[HANDOFF_THREADS];
	struct handoff t[HANDOFF_THREADS];
	pthread_t th[HANDOFF_THREADS];
	km_meminfo before = meminfo_adds_up(c), after;
	int i;

	for (i = 0; i < HANDOFF_THREADS; i++) {
		box[i] = (struct handoff_box){ .full = false };
		pthread_mutex_init(&box[i].lock, NULL);
		pthread_cond_init(&box[i].cond, NULL);
	}
	for (i = 0; i < HANDOFF_THREADS; i++) {
		t[i] = (struct handoff){ .c = c,
					 .out = &box[i],
					 .in = &box[(i + HANDOFF_THREADS - 1) % HANDOFF_THREADS],
					 .rounds = 400,
					 .rand = test_rand() };
		ck_assert_int_eq(pthread_create(&th[i], NULL, handoff_body, &t[i]), 0);
	}
	for (i = 0; i < HANDOFF_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].errors, 0);
	}
	slabs_all_free(c);
	after = meminfo_adds_up(c);
	grants_match(c);
	ck_assert_uint_eq(after.available + kept_bytes(c), before.available);
	ck_assert(TAILQ_EMPTY(&c->tcaches)); /* every thread's cache went with it */
	for (i = 0; i < HANDOFF_THREADS; i++) {
		pthread_mutex_destroy(&box[i].lock);
		pthread_cond_destroy(&box[i].cond);
	}
	kmc_drain_caches(c);
	grants_match(c);
	ck_assert_uint_eq(core_grants(), 0);
	core_stop(c);
}
END_TEST

/* kfrees the library refuses, each with EINVAL and nothing changed: a
 * pointer inside an object, a second free, an address in the direct map
 * that no kmalloc of this client starts (another client's slab looks
 * exactly like this), a pointer outside the pool. */
START_TEST(test_refused_kfrees)
{
	km_client *c = core_start(true);
	uint8_t *p = km_kmalloc(c, 64, KM_GFP_KERNEL), *q, *big, local[8];
	struct kmc_slab *s;
	uint32_t idx;

	ck_assert_ptr_nonnull(p);
	s = kmc_slab_of(c, p, &idx);
	ck_assert_ptr_nonnull(s);
	errno = 0;
	km_kfree(c, p + 8); /* interior */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(km_ksize(c, p), 64); /* still in use */
	ck_assert_uint_eq(km_ksize(c, p + 8), 0);
	ck_assert_uint_eq(km_virt_to_phys(c, p + 8), km_virt_to_phys(c, p) + 8);
	km_kfree(c, p);
	errno = 0;
	km_kfree(c, p); /* twice */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(s->state[idx], KMC_OBJ_FREE);
	/* Handed out once only: the double free did not put it back twice. */
	q = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_eq(q, p);
	ck_assert_ptr_ne(km_kmalloc(c, 64, KM_GFP_KERNEL), p);
	/* Not ours: an address in the pool no slab or grant of ours holds. */
	big = km_kmalloc(c, MIB, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(big);
	errno = 0;
	km_kfree(c, big + 4096);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(km_ksize(c, big), MIB);
	errno = 0;
	km_kfree(c, c->base + CORE_POOL - 64);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	km_kfree(c, local);
	ck_assert_int_eq(errno, EINVAL);
	/* NULL and ZERO_SIZE_PTR are no-ops, not errors. */
	errno = 0;
	km_kfree(c, NULL);
	km_kfree(c, KM_ZERO_SIZE_PTR);
	ck_assert_int_eq(errno, 0);
	ck_assert_ptr_null(km_krealloc(c, p + 8, 100, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, EINVAL);
	km_kfree(c, big);
	meminfo_adds_up(c);
	grants_match(c);
	core_stop(c);
}
END_TEST

/* ---- sharing against the real dispatcher ------------------------------------ */

/* An exported object of a slab we carve: EXPORTED, then GONE at its kfree;
 * never handed out again; the slab goes back once every other object is
 * free; importing our own handle gives the same address, and each kfree
 * drops one holder, the import first. */
START_TEST(test_export_slab_object)
{
	km_client *c = core_start(true);
	struct kmc_slab *s;
	uint32_t idx;
	km_handle h;
	void *objs[1000];
	char *p, *q;

	p = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(km_export(c, p, &h), 0);
	s = kmc_slab_of(c, p, &idx);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->state[idx], KMC_OBJ_EXPORTED);
	ck_assert_uint_eq(km_ksize(c, p), 64);
	/* A second handle for the same object. */
	ck_assert_int_eq(km_export(c, p, &h), 0);

	q = km_import(c, &h, NULL);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(c->nr_dimports, 1);
	km_kfree(c, q); /* the import */
	ck_assert_uint_eq(c->nr_dimports, 0);
	ck_assert_int_eq(s->state[idx], KMC_OBJ_EXPORTED);
	km_kfree(c, p); /* the object itself */
	ck_assert_int_eq(s->state[idx], KMC_OBJ_GONE);
	errno = 0;
	km_kfree(c, p); /* twice */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(km_ksize(c, p), 0);

	for (int i = 0; i < 1000; i++) {
		objs[i] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(objs[i]);
		ck_assert_ptr_ne(objs[i], p);
	}
	km_kfree_bulk(c, 1000, objs);
	kmc_tcache_drain_self(c);
	grants_match(c);
	/* The slab with the dead object went back once its other objects
	 * were free (never kept empty: it is partly dead), and its memory with
	 * it (nobody else held it). */
	ck_assert_ptr_null(kmc_slab_of(c, p, &idx));
	meminfo_adds_up(c);
	core_stop(c);
}
END_TEST

/* Large kmallocs and vmalloc areas, once exported, are never kept for
 * reuse: their frees go back to the daemon. Refusals come back as errors,
 * and a failed export leaves no mark. */
START_TEST(test_export_large_and_areas)
{
	km_client *c = core_start(true);
	unsigned int kept = c->nr_vkept;
	km_handle h, forged = { { 0 } };
	char *big, *v;

	big = km_kmalloc(c, 100000, KM_GFP_KERNEL);
	v = km_vmalloc(c, 3 * MIB);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(km_export(c, big, &h), 0);
	ck_assert_int_eq(km_export(c, v, &h), 0);
	/* Our own vmalloc, imported back: frames side by side elsewhere. */
	{
		char *w = km_import(c, &h, NULL);

		ck_assert_ptr_nonnull(w);
		ck_assert_ptr_ne(w, v);
		v[12345] = 'q';
		ck_assert_int_eq(w[12345], 'q');
		ck_assert_uint_eq(km_vmalloc_to_pfn(c, w + 5000), km_vmalloc_to_pfn(c, v + 5000));
		km_kvfree(c, w);
	}
	km_kfree(c, big);
	km_vfree(c, v);
	ck_assert_uint_eq(c->nr_vkept, kept);
	ck_assert_uint_eq(c->pcp_large_bytes, 0);
	grants_match(c);

	errno = 0;
	ck_assert_ptr_null(km_import(c, &forged, NULL));
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_int_eq(km_revoke(c, &forged), -1);
	ck_assert_int_eq(errno, ENOENT);
	meminfo_adds_up(c);
	core_stop(c);
}
END_TEST

/* KM_GFP_SHARED: whole frames in a memfd of their own, mapped apart, counted
 * in the pool as any allocation; freed by kfree/vfree/kvfree. */
START_TEST(test_shared_allocations)
{
	km_client *c = core_start(true);
	km_meminfo before = meminfo_adds_up(c), mi;
	char *k, *v, *kv;
	uint64_t phys;

	k = km_kmalloc(c, 100, KM_GFP_KERNEL | KM_GFP_SHARED);
	ck_assert_ptr_nonnull(k);
	ck_assert(!kmc_in_direct_map(c, k));
	ck_assert_uint_eq(km_ksize(c, k), 2 * MIB);
	phys = km_virt_to_phys(c, k);
	ck_assert_uint_eq(phys % (2 * MIB), 0);
	ck_assert_uint_eq(km_virt_to_phys(c, k + 4097), phys + 4097);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, k + 8192), (phys + 8192) >> 12);
	memset(k, 1, 2 * MIB);
	mi = meminfo_adds_up(c);
	ck_assert_uint_ge(mi.slab, before.slab + 2 * MIB);

	v = km___vmalloc(c, 3 * MIB, KM_GFP_KERNEL | KM_GFP_SHARED);
	ck_assert_ptr_nonnull(v);
	memset(v, 2, 4 * MIB);
	ck_assert_uint_ne(km_vmalloc_to_pfn(c, v + 3 * MIB), UINT64_MAX);
	ck_assert_uint_eq(meminfo_adds_up(c).vmalloc_used, before.vmalloc_used + 4 * MIB);
	kv = km_kvmalloc(c, 5 * MIB, KM_GFP_KERNEL | KM_GFP_SHARED);
	ck_assert_ptr_nonnull(kv);
	grants_match(c);

	km_kfree(c, k);
	km_vfree(c, v);
	km_kvfree(c, kv);
	ck_assert_uint_eq(c->nr_vkept, 0); /* never kept */
	grants_match(c);
	mi = meminfo_adds_up(c);
	ck_assert_uint_eq(mi.vmalloc_used, before.vmalloc_used);
	ck_assert_uint_eq(mi.slab, before.slab);
	core_stop(c);
}
END_TEST

/* Threads of one client export, import back, revoke and free at once: the
 * imports table, the event queue and the revoked-id ring under contention.
 * Every grant comes back. */
struct share_worker {
	km_client *c;
	unsigned int seed;
	int failures;
};

static void *share_work(void *arg)
{
	struct share_worker *w = arg;

	for (int i = 0; i < 300; i++) {
		size_t size =
			(rand_r(&w->seed) & 1) ? 64 : 20000 + (size_t)(rand_r(&w->seed) % 9000);
		char *p = km_kmalloc(w->c, size, KM_GFP_KERNEL), *q;
		km_handle h;

		if (!p || km_export(w->c, p, &h)) {
			w->failures++;
			continue;
		}
		q = km_import(w->c, &h, NULL);
		w->failures += q != p;
		if (i % 3 == 0)
			w->failures += km_revoke(w->c, &h) != 1;
		km_kfree(w->c, q);
		km_kfree(w->c, p);
	}
	return NULL;
}

START_TEST(test_share_threads)
{
	km_client *c = core_start(true);
	struct share_worker w[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct share_worker){ .c = c, .seed = (unsigned int)test_rand() };
		ck_assert_int_eq(pthread_create(&th[i], NULL, share_work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	ck_assert_uint_eq(c->nr_imports, 0);
	ck_assert_uint_eq(c->nr_dimports, 0);
	kmc_tcache_drain_self(c);
	grants_match(c);
	meminfo_adds_up(c);
	core_stop(c);
}
END_TEST

/* ---- a scripted fake daemon -------------------------------------------------- */

#define FAKE_POOL (8u << 20)

/* Shared with the fake (MAP_SHARED | MAP_ANONYMOUS): its script and counters. */
struct fake {
	int reverse;	   /* hold this many Alloc requests, answer in reverse */
	int hang_up_after; /* close after this many requests (0: never) */
	int malformed;	   /* answer Allocs by the malformed script below */
	int alloc_requests;
	int freed_ids;
	/* Sharing: how ImportShare is answered (FAKE_IMPORT_*), and whether
	 * an Event revoking the import goes before or right after the reply. */
	int import_kind;
	int event_before_reply, event_after_reply;
	uint64_t import_id;    /* the last import's grant */
	uint64_t export_grant; /* the last Export's fields */
	uint64_t export_offset, export_size;
	uint64_t gone[256]; /* ids given back (Free or release), in order */
	int nr_gone;
};
#define FAKE_IMPORT_KMALLOC 1
#define FAKE_IMPORT_VMALLOC 2
#define FAKE_IMPORT_MEMFD   3
#define FAKE_FRAME	    (2u << 20)
#define FAKE_KM_PHYS	    (FAKE_FRAME * 2 + 3 * 4096 + 100) /* a kmalloc import's phys */
#define FAKE_KM_SIZE	    200

static struct fake *fake;
static pid_t fake_pid;
static char fake_path[108];

static void reply_send(int fd, Kmalloc__Reply *r, int pass_fd)
{
	uint8_t buf[8192];
	size_t len = kmalloc__reply__get_packed_size(r);

	if (len > sizeof(buf) || kmwire_send(fd, buf, (kmalloc__reply__pack(r, buf), len),
					     pass_fd >= 0 ? &pass_fd : NULL, pass_fd >= 0, 0) < 0)
		_exit(3);
}

static void fake_answer_alloc(int fd, Kmalloc__Request *req, uint64_t *next_id, uint64_t *next_phys)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	Kmalloc__Grant g[64], *gp[64];
	uint32_t n = req->alloc->count ? req->alloc->count : 1, i;
	uint64_t ksize = test_expected_ksize(req->alloc->size);

	if (n > 64)
		_exit(4);
	for (i = 0; i < n; i++) {
		kmalloc__grant__init(&g[i]);
		g[i].id = (*next_id)++;
		g[i].phys = *next_phys % FAKE_POOL;
		g[i].size = ksize;
		*next_phys += ksize < 8192 ? 8192 : ksize;
		gp[i] = &g[i];
	}
	body.n_grants = n;
	body.grants = gp;
	r.id = req->id;
	r.body_case = KMALLOC__REPLY__BODY_ALLOC;
	r.alloc = &body;
	reply_send(fd, &r, -1);
}

/*
 * The malformed script, one step per Alloc: a body that does not decode
 * (the call fails, the connection stays), the wrong body, a grant outside
 * the pool (refused and freed back), a good answer, and a packet that does
 * not even parse (the connection fails).
 */
static void fake_answer_malformed(int fd, Kmalloc__Request *req, int step, uint64_t *next_id,
				  uint64_t *next_phys)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__FreeReply f = KMALLOC__FREE_REPLY__INIT;
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	Kmalloc__Grant g = KMALLOC__GRANT__INIT, *gp = &g;
	/* id, then field 10 (Welcome, a message) as a varint */
	const uint8_t undecodable[] = { 0x08, (uint8_t)req->id, 0x50, 0x01 };
	const uint8_t unparsable[] = { 0x0f };

	if (req->id > 127)
		_exit(7);
	r.id = req->id;
	switch (step) {
	case 0:
		if (kmwire_send(fd, undecodable, sizeof(undecodable), NULL, 0, 0) < 0)
			_exit(3);
		break;
	case 1:
		r.body_case = KMALLOC__REPLY__BODY_FREE;
		r.free = &f;
		reply_send(fd, &r, -1);
		break;
	case 2:
		g.id = 1000;
		g.phys = FAKE_POOL;
		g.size = 64;
		body.n_grants = 1;
		body.grants = &gp;
		r.body_case = KMALLOC__REPLY__BODY_ALLOC;
		r.alloc = &body;
		reply_send(fd, &r, -1);
		break;
	case 3:
		fake_answer_alloc(fd, req, next_id, next_phys);
		break;
	default:
		if (kmwire_send(fd, unparsable, sizeof(unparsable), NULL, 0, 0) < 0)
			_exit(3);
		break;
	}
}

/* Notes ids the client gives back (Free, or riding on a request). */
static void fake_note_gone(const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n && fake->nr_gone < 256; i++)
		fake->gone[fake->nr_gone++] = ids[i];
}

static bool fake_saw_gone(uint64_t id)
{
	for (int i = 0; i < fake->nr_gone; i++)
		if (fake->gone[i] == id)
			return true;
	return false;
}

/* A memfd of one frame starting with @text; read-only when @rdonly (a
 * separate O_RDONLY descriptor, as the daemon passes). */
static int fake_memfd(const char *text, bool rdonly)
{
	int fd = memfd_create("fake-share", MFD_CLOEXEC), ro;
	char path[64];

	if (fd < 0 || ftruncate(fd, FAKE_FRAME) < 0 || pwrite(fd, text, strlen(text), 0) < 0)
		_exit(6);
	if (!rdonly)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	close(fd);
	if (ro < 0)
		_exit(6);
	return ro;
}

static void fake_send_event(int fd, uint64_t id)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__Event ev = KMALLOC__EVENT__INIT;

	ev.n_revoked = 1;
	ev.revoked = &id;
	r.body_case = KMALLOC__REPLY__BODY_EVENT;
	r.event = &ev;
	reply_send(fd, &r, -1);
}

/* ImportShare by fake->import_kind: a kmalloc at FAKE_KM_PHYS, the
 * vmalloc frames 2 then 1, or a memfd of its own. */
static void fake_answer_import(int fd, Kmalloc__Request *req, uint64_t *next_id)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__ImportReply im = KMALLOC__IMPORT_REPLY__INIT;
	uint32_t frames[2] = { 2, 1 };
	int memfd = -1;

	im.id = fake->import_id = (*next_id)++;
	im.rdonly = req->import_share->rdonly;
	im.share = 7;
	switch (fake->import_kind) {
	case FAKE_IMPORT_KMALLOC:
		im.kind = KMALLOC__IMPORT_REPLY__KIND__KIND_KMALLOC;
		im.phys = FAKE_KM_PHYS;
		im.size = FAKE_KM_SIZE;
		break;
	case FAKE_IMPORT_VMALLOC:
		im.kind = KMALLOC__IMPORT_REPLY__KIND__KIND_VMALLOC;
		im.size = 2 * FAKE_FRAME;
		im.n_frames = 2;
		im.frames = frames;
		break;
	default:
		im.kind = KMALLOC__IMPORT_REPLY__KIND__KIND_MEMFD;
		im.size = im.map_size = FAKE_FRAME;
		memfd = fake_memfd("memfd", im.rdonly);
		break;
	}
	if (fake->event_before_reply)
		fake_send_event(fd, im.id);
	r.id = req->id;
	r.body_case = KMALLOC__REPLY__BODY_IMPORT_SHARE;
	r.import_share = &im;
	reply_send(fd, &r, memfd);
	if (memfd >= 0)
		close(memfd);
	if (fake->event_after_reply) {
		usleep(20000);
		fake_send_event(fd, im.id);
	}
}

/* Export: a handle whose first 8 bytes are the grant, Revoke: the Event
 * for the last import, then the answer. */
static void fake_answer_share(int fd, Kmalloc__Request *req)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__ExportReply ex = KMALLOC__EXPORT_REPLY__INIT;
	Kmalloc__RevokeReply rv = KMALLOC__REVOKE_REPLY__INIT;
	uint8_t handle[32];

	r.id = req->id;
	if (req->body_case == KMALLOC__REQUEST__BODY_EXPORT_GRANT) {
		fake->export_grant = req->export_grant->grant;
		fake->export_offset = req->export_grant->offset;
		fake->export_size = req->export_grant->size;
		memset(handle, 0xab, sizeof(handle));
		memcpy(handle, &fake->export_grant, 8);
		ex.handle.data = handle;
		ex.handle.len = sizeof(handle);
		r.body_case = KMALLOC__REPLY__BODY_EXPORT_GRANT;
		r.export_grant = &ex;
	} else {
		fake_send_event(fd, fake->import_id);
		rv.imports_ended = 1;
		r.body_case = KMALLOC__REPLY__BODY_REVOKE;
		r.revoke = &rv;
	}
	reply_send(fd, &r, -1);
}

/* A KM_GFP_SHARED Alloc: one frame in a memfd of its own, at pool frame 1. */
static void fake_answer_shared_alloc(int fd, Kmalloc__Request *req, uint64_t *next_id)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	Kmalloc__Grant g = KMALLOC__GRANT__INIT, *gp = &g;
	int memfd = fake_memfd("shared", false);

	fake->alloc_requests++;
	g.id = (*next_id)++;
	g.phys = FAKE_FRAME;
	g.size = FAKE_FRAME;
	g.memfd = true;
	body.n_grants = 1;
	body.grants = &gp;
	r.id = req->id;
	r.body_case = KMALLOC__REPLY__BODY_ALLOC;
	r.alloc = &body;
	reply_send(fd, &r, memfd);
	close(memfd);
}

static void fake_serve(int fd)
{
	static uint8_t buf[65536];
	Kmalloc__Request *held[16];
	uint64_t next_id = 1, next_phys = 0;
	int nheld = 0, requests = 0;

	for (;;) {
		Kmalloc__Reply r = KMALLOC__REPLY__INIT;
		Kmalloc__Request *req;
		ssize_t n = kmwire_recv(fd, buf, sizeof(buf), NULL, 0, NULL, 0);

		if (n <= 0)
			return;
		req = kmalloc__request__unpack(NULL, (size_t)n, buf);
		if (!req)
			_exit(5);
		if (fake->hang_up_after && ++requests > fake->hang_up_after)
			return;
		r.id = req->id;
		fake_note_gone(req->release, req->n_release);
		switch (req->body_case) {
		case KMALLOC__REQUEST__BODY_HELLO: {
			Kmalloc__Welcome w = KMALLOC__WELCOME__INIT;
			uint8_t token[16] = { 1 };
			int memfd = memfd_create("fake-pool", MFD_CLOEXEC);

			if (memfd < 0 || ftruncate(memfd, FAKE_POOL) < 0)
				_exit(6);
			/* Frames 1 and 2 say who they are; FAKE_KM_PHYS too. */
			if (pwrite(memfd, "frame1", 6, FAKE_FRAME) < 0 ||
			    pwrite(memfd, "frame2", 6, 2 * FAKE_FRAME) < 0 ||
			    pwrite(memfd, "kmalloc", 7, FAKE_KM_PHYS) < 0)
				_exit(6);
			w.version = 1;
			w.pool_size = FAKE_POOL;
			w.frame_size = 2u << 20;
			w.page_size = 4096;
			w.domain = 1;
			w.max_packet = 65536;
			w.max_order = 10;
			w.token.data = token;
			w.token.len = sizeof(token);
			r.body_case = KMALLOC__REPLY__BODY_WELCOME;
			r.welcome = &w;
			reply_send(fd, &r, memfd);
			close(memfd);
			break;
		}
		case KMALLOC__REQUEST__BODY_ALLOC:
			if (req->alloc->gfp & KM___GFP_SHARED) {
				fake_answer_shared_alloc(fd, req, &next_id);
				break;
			}
			if (fake->malformed) {
				fake_answer_malformed(fd, req, fake->alloc_requests++, &next_id,
						      &next_phys);
				break;
			}
			fake->alloc_requests++;
			if (fake->reverse) {
				held[nheld++] = req;
				if (nheld < fake->reverse)
					continue;
				while (nheld--) {
					fake_answer_alloc(fd, held[nheld], &next_id, &next_phys);
					kmalloc__request__free_unpacked(held[nheld], NULL);
				}
				nheld = 0;
				continue;
			}
			fake_answer_alloc(fd, req, &next_id, &next_phys);
			break;
		case KMALLOC__REQUEST__BODY_FREE: {
			Kmalloc__FreeReply f = KMALLOC__FREE_REPLY__INIT;

			fake->freed_ids += (int)req->free->n_grants;
			fake_note_gone(req->free->grants, req->free->n_grants);
			f.freed = (uint32_t)req->free->n_grants;
			r.body_case = KMALLOC__REPLY__BODY_FREE;
			r.free = &f;
			reply_send(fd, &r, -1);
			break;
		}
		case KMALLOC__REQUEST__BODY_NOP: {
			Kmalloc__Nop nop = KMALLOC__NOP__INIT;

			r.body_case = KMALLOC__REPLY__BODY_NOP;
			r.nop = &nop;
			reply_send(fd, &r, -1);
			break;
		}
		case KMALLOC__REQUEST__BODY_IMPORT_SHARE:
			fake_answer_import(fd, req, &next_id);
			break;
		case KMALLOC__REQUEST__BODY_EXPORT_GRANT:
		case KMALLOC__REQUEST__BODY_REVOKE:
			fake_answer_share(fd, req);
			break;
		default:
			r.error = ENOSYS;
			reply_send(fd, &r, -1);
			break;
		}
		kmalloc__request__free_unpacked(req, NULL);
	}
}

/* Starts the fake daemon for one test (check forks each test). */
static void fake_start(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int lfd;

	fake = mmap(NULL, sizeof(*fake), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(fake, MAP_FAILED);
	memset(fake, 0, sizeof(*fake));
	snprintf(fake_path, sizeof(fake_path), "/tmp/kmfake.%d.sock", (int)getpid());
	unlink(fake_path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", fake_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	fake_pid = fork();
	if (fake_pid == 0) {
		for (;;) {
			int fd = accept(lfd, NULL, NULL);

			if (fd < 0)
				_exit(0);
			fake_serve(fd);
			close(fd);
		}
	}
	close(lfd);
}

static void fake_stop(void)
{
	kill(fake_pid, SIGKILL);
	waitpid(fake_pid, NULL, 0);
	unlink(fake_path);
}

/* Without the lists: one Alloc per kmalloc, as the scripts count them. */
static km_client *connect_fake(void)
{
	km_client *c;

	setenv("KMCLIENT_NO_CACHE", "1", 1);
	c = km_connect(fake_path);
	unsetenv("KMCLIENT_NO_CACHE");
	ck_assert_msg(c != NULL, "km_connect to the fake: %s", strerror(errno));
	return c;
}

struct asker {
	km_client *c;
	size_t size;
	size_t got_ksize;
	int err;
};

static void *ask(void *arg)
{
	struct asker *a = arg;
	void *p = km_kmalloc(a->c, a->size, KM_GFP_KERNEL);

	a->err = p ? 0 : errno;
	a->got_ksize = p ? km_ksize(a->c, p) : 0;
	return NULL;
}

START_TEST(test_out_of_order_replies)
{
	static const size_t sizes[4] = { 100, 1000, 3000, 100000 };
	struct asker a[4];
	pthread_t th[4];
	km_client *c;
	int i;

	fake_start();
	fake->reverse = 4;
	c = connect_fake();
	for (i = 0; i < 4; i++) {
		a[i] = (struct asker){ .c = c, .size = sizes[i] };
		ck_assert_int_eq(pthread_create(&th[i], NULL, ask, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].err, 0);
		/* Each thread got the grant sized for its own request. */
		ck_assert_uint_eq(a[i].got_ksize, test_expected_ksize(sizes[i]));
	}
	ck_assert_int_eq(fake->alloc_requests, 4);
	km_disconnect(c);
	fake_stop();
}
END_TEST

START_TEST(test_hang_up_fails_waiting_calls)
{
	struct asker a[3];
	pthread_t th[3];
	km_client *c;
	int i;

	fake_start();
	fake->reverse = 4;	 /* never answers three requests... */
	fake->hang_up_after = 4; /* ...and hangs up on the fourth */
	c = connect_fake();
	for (i = 0; i < 3; i++) {
		a[i] = (struct asker){ .c = c, .size = 64 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, ask, &a[i]), 0);
	}
	usleep(100000);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ECONNRESET);
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].err, ECONNRESET);
	}
	/* Later calls fail the same way, at once. */
	errno = 0;
	ck_assert_ptr_null(km_vmalloc(c, 4096));
	ck_assert_int_eq(errno, ECONNRESET);
	km_disconnect(c);
	fake_stop();
}
END_TEST

START_TEST(test_malformed_replies)
{
	km_client *c;
	void *p;
	int step;

	fake_start();
	fake->malformed = 1;
	c = connect_fake();
	/* A reply that does not decode, the wrong body, a grant outside the
	 * pool: that call fails with EPROTO, the connection stays... */
	for (step = 0; step < 3; step++) {
		errno = 0;
		ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
		ck_assert_msg(errno == EPROTO, "step %d: %s", step, strerror(errno));
	}
	/* ...and the refused grant went back. */
	ck_assert_int_eq(fake->freed_ids, 1);
	p = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(km_ksize(c, p), 64);
	/* A packet that does not parse fails the connection: every later call. */
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, EPROTO);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_int_eq(fake->alloc_requests, 5);
	km_disconnect(c);
	fake_stop();
}
END_TEST

/* ---- sharing -------------------------------------------------------------- */

START_TEST(test_handle_text)
{
	char buf[KM_HANDLE_STRLEN + 8], text[160];
	km_handle h, back;

	for (int i = 0; i < 32; i++)
		h.bytes[i] = (uint8_t)(i * 37 + 0xf0);
	ck_assert_int_eq(km_handle_format(&h, buf, sizeof(buf)), 64);
	ck_assert_uint_eq(strlen(buf), 64);
	ck_assert_str_eq(buf + 60, "466b"); /* bytes 30 and 31 */
	for (int i = 0; i < 64; i++)
		ck_assert_msg((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f'),
			      "%s", buf);
	ck_assert_int_eq(km_handle_parse(buf, &back), 0);
	ck_assert_mem_eq(back.bytes, h.bytes, 32);
	/* Exactly KM_HANDLE_STRLEN is enough; one less is ERANGE. */
	ck_assert_int_eq(km_handle_format(&h, buf, KM_HANDLE_STRLEN), 64);
	errno = 0;
	ck_assert_int_eq(km_handle_format(&h, buf, KM_HANDLE_STRLEN - 1), -1);
	ck_assert_int_eq(errno, ERANGE);

	/* Upper case, and white space around (a line read from a pipe). */
	km_handle_format(&h, buf, sizeof(buf));
	for (int i = 0; i < 64; i++)
		text[i] = (char)(buf[i] >= 'a' ? buf[i] - 'a' + 'A' : buf[i]);
	text[64] = 0;
	memset(&back, 0, sizeof(back));
	ck_assert_int_eq(km_handle_parse(text, &back), 0);
	ck_assert_mem_eq(back.bytes, h.bytes, 32);
	snprintf(text, sizeof(text), " \t%s\r\n", buf);
	ck_assert_int_eq(km_handle_parse(text, &back), 0);
	ck_assert_mem_eq(back.bytes, h.bytes, 32);

	/* Anything else is EINVAL and leaves @out alone. */
	{
		static const char *const bad[] = { "", "   ", "0", "0x12" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			errno = 0;
			ck_assert_int_eq(km_handle_parse(bad[i], &back), -1);
			ck_assert_int_eq(errno, EINVAL);
		}
	}
	snprintf(text, sizeof(text), "%.63s", buf); /* 63 digits */
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	snprintf(text, sizeof(text), "%s0", buf); /* 65 digits */
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	snprintf(text, sizeof(text), "%s x", buf); /* trailing junk */
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	snprintf(text, sizeof(text), "%.31s %s", buf, buf + 31); /* space inside */
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	snprintf(text, sizeof(text), "%s", buf);
	text[10] = 'g';
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	text[10] = '\xc3'; /* not ASCII */
	ck_assert_int_eq(km_handle_parse(text, &back), -1);
	ck_assert_mem_eq(back.bytes, h.bytes, 32);
	errno = 0;
	ck_assert_int_eq(km_handle_parse(NULL, &back), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(km_handle_parse(buf, NULL), -1);
	ck_assert_int_eq(km_handle_format(NULL, buf, sizeof(buf)), -1);
}
END_TEST

/* How a child touching @p ends: 0 when it read (or wrote) fine, else the
 * signal that killed it. */
static int touch_in_child(volatile char *p, bool write)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* die of it, even under AddressSanitizer */
		if (write)
			p[0] = 'x';
		else
			(void)p[0];
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	return 0;
}

/* The daemon's Import kinds, as the client maps them; kfree/kvfree give
 * each import back once. */
START_TEST(test_import_kinds_fake)
{
	km_handle h = { { 1 } };
	km_client *c;
	size_t size;
	char *p;

	fake_start();
	c = connect_fake();

	/* A kmalloc of the domain, read-write: the direct map itself. */
	fake->import_kind = FAKE_IMPORT_KMALLOC;
	p = km_import(c, &h, &size);
	ck_assert_ptr_eq(p, c->base + FAKE_KM_PHYS);
	ck_assert_uint_eq(size, FAKE_KM_SIZE);
	ck_assert_mem_eq(p, "kmalloc", 7);
	ck_assert_uint_eq(km_ksize(c, p), FAKE_KM_SIZE);
	km_kfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(fake->import_id));
	ck_assert_uint_eq(km_ksize(c, p), 0);

	/* Read-only: its own mapping of those pages, at the same offset. */
	p = km_import_flags(c, &h, KM_IMPORT_RDONLY, &size);
	ck_assert_ptr_nonnull(p);
	ck_assert(!kmc_in_direct_map(c, p));
	ck_assert_uint_eq((uintptr_t)p % 4096, FAKE_KM_PHYS % 4096);
	ck_assert_mem_eq(p, "kmalloc", 7);
	ck_assert_uint_eq(km_virt_to_phys(c, p), FAKE_KM_PHYS);
	ck_assert_uint_eq(km_ksize(c, p), FAKE_KM_SIZE);
	ck_assert_int_eq(touch_in_child(p, true), SIGSEGV);
	km_kvfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(fake->import_id));

	/* A vmalloc area: its frames side by side, in the reply's order. */
	fake->import_kind = FAKE_IMPORT_VMALLOC;
	p = km_import(c, &h, &size);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(size, 2 * FAKE_FRAME);
	ck_assert_mem_eq(p, "frame2", 6);
	ck_assert_mem_eq(p + FAKE_FRAME, "frame1", 6);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p + FAKE_FRAME + 4096), (FAKE_FRAME + 4096) >> 12);
	p[100] = 'w';
	km_vfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(fake->import_id));

	/* A memfd of its own, read-only: no way to write it. */
	fake->import_kind = FAKE_IMPORT_MEMFD;
	p = km_import_flags(c, &h, KM_IMPORT_RDONLY, &size);
	ck_assert_ptr_nonnull(p);
	ck_assert_mem_eq(p, "memfd", 5);
	ck_assert_int_eq(touch_in_child(p, true), SIGSEGV);
	ck_assert_int_eq(mprotect(p, 4096, PROT_READ | PROT_WRITE), -1);
	ck_assert_int_eq(errno, EACCES);
	km_kvfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(fake->import_id));

	/* Importing as a client that does not know the flag. */
	errno = 0;
	ck_assert_ptr_null(km_import_flags(c, &h, 0x80, NULL));
	ck_assert_int_eq(errno, EINVAL);
	km_disconnect(c);
	fake_stop();
}
END_TEST

/* Revocation: the import's mapping becomes PROT_NONE and its id is never
 * given back, whether the event comes with the revoke's own round trip,
 * unasked later (seen at the next library call that is not a fast path),
 * or before the import was even recorded (the import fails). */
START_TEST(test_revocation_fake)
{
	km_handle h = { { 1 } };
	km_client *c;
	uint64_t id;
	char *p;

	fake_start();
	c = connect_fake();
	fake->import_kind = FAKE_IMPORT_VMALLOC;
	p = km_import(c, &h, NULL);
	ck_assert_ptr_nonnull(p);
	id = fake->import_id;
	ck_assert_int_eq(touch_in_child(p, false), 0);
	ck_assert_int_eq(km_revoke(c, &h), 1);
	ck_assert_int_eq(touch_in_child(p, false), SIGSEGV);
	ck_assert_uint_eq(km_vmalloc_to_pfn(c, p), UINT64_MAX);
	km_kvfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(!fake_saw_gone(id));

	/* Unasked: the client is idle when it comes. */
	fake->import_kind = FAKE_IMPORT_MEMFD;
	fake->event_after_reply = 1;
	p = km_import(c, &h, NULL);
	ck_assert_ptr_nonnull(p);
	id = fake->import_id;
	usleep(200000);
	ck_assert_uint_eq(km_ksize(c, p), FAKE_FRAME); /* reads the event */
	ck_assert_int_eq(touch_in_child(p, false), SIGSEGV);
	km_kvfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(!fake_saw_gone(id));

	/* Before the import was recorded: it fails with EACCES. */
	fake->event_after_reply = 0;
	fake->event_before_reply = 1;
	errno = 0;
	ck_assert_ptr_null(km_import(c, &h, NULL));
	ck_assert_int_eq(errno, EACCES);
	fake->import_kind = FAKE_IMPORT_KMALLOC;
	errno = 0;
	ck_assert_ptr_null(km_import(c, &h, NULL));
	ck_assert_int_eq(errno, EACCES);
	ck_assert_uint_eq(km_ksize(c, c->base + FAKE_KM_PHYS), 0);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(!fake_saw_gone(fake->import_id));

	/* A revoked direct import stays readable (its own domain's memory)
	 * and its kfree gives nothing back. */
	fake->event_before_reply = 0;
	p = km_import(c, &h, NULL);
	ck_assert_ptr_eq(p, c->base + FAKE_KM_PHYS);
	id = fake->import_id;
	ck_assert_int_eq(km_revoke(c, &h), 1);
	ck_assert_mem_eq(p, "kmalloc", 7);
	km_kfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(!fake_saw_gone(id));
	ck_assert_uint_eq(c->nr_imports, 0);
	ck_assert_uint_eq(c->nr_dimports, 0);
	km_disconnect(c);
	fake_stop();
}
END_TEST

/* KM_GFP_SHARED: a memfd of its own, mapped apart; exports name its grant;
 * kfree gives it back at once. Exports of what is not a grant: EINVAL. */
START_TEST(test_shared_alloc_and_export_fake)
{
	km_handle h;
	km_client *c;
	uint64_t id;
	char *p, *q;
	int x;

	fake_start();
	c = connect_fake();
	p = km_kmalloc(c, 100, KM_GFP_KERNEL | KM_GFP_SHARED);
	ck_assert_ptr_nonnull(p);
	ck_assert(!kmc_in_direct_map(c, p));
	ck_assert_uint_eq((uintptr_t)p % FAKE_FRAME, 0);
	ck_assert_mem_eq(p, "shared", 6);
	ck_assert_uint_eq(km_ksize(c, p), FAKE_FRAME);
	ck_assert_uint_eq(km_virt_to_phys(c, p + 5000), FAKE_FRAME + 5000);
	p[FAKE_FRAME - 1] = 'z';
	ck_assert_int_eq(km_export(c, p, &h), 0);
	memcpy(&id, h.bytes, 8);
	ck_assert_uint_eq(fake->export_grant, id);
	ck_assert_uint_eq(fake->export_offset, 0);
	ck_assert_uint_eq(fake->export_size, 0);
	/* Only the start of a grant. */
	errno = 0;
	ck_assert_int_eq(km_export(c, p + 64, &h), -1);
	ck_assert_int_eq(errno, EINVAL);
	km_kfree(c, p);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(id));

	/* A large kmalloc of the direct map. */
	q = km_kmalloc(c, 100000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(km_export(c, q, &h), 0);
	ck_assert_uint_eq(fake->export_size, 0);
	memcpy(&id, h.bytes, 8);
	km_kfree(c, q);
	ck_assert_int_eq(kmc_rpc_nop(c), 0);
	ck_assert(fake_saw_gone(id));

	errno = 0;
	ck_assert_int_eq(km_export(c, &x, &h), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(km_export(c, c->base + 4096, &h), -1);
	ck_assert_int_eq(km_export(c, NULL, &h), -1);
	ck_assert_int_eq(km_export(c, q, &h), -1); /* freed */
	km_disconnect(c);
	fake_stop();
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_nop_and_connect_fd);
	tcase_add_test(tc, test_classes_alignment_ksize);
	tcase_add_test(tc, test_zero_size_kzalloc_and_limits);
	tcase_add_test(tc, test_krealloc_semantics);
	tcase_add_test(tc, test_bulk_all_or_nothing);
	tcase_add_test(tc, test_slab_refill_and_reuse);
	tcase_add_test(tc, test_drain_gives_everything_back);
	tcase_add_test(tc, test_deferred_release_without_lists);
	tcase_add_test(tc, test_failed_send_keeps_release_queue);
	tcase_add_test(tc, test_enomem_drains_lists_and_retries);
	tcase_add_test(tc, test_kvmalloc_fallback_rule);
	tcase_add_test(tc, test_vmalloc_frames_and_accounting);
	tcase_add_test(tc, test_meminfo_adds_up);
	tcase_add_test(tc, test_release_queue_race_without_lists);
	tcase_add_test(tc, test_release_queue_race_with_lists);
	tcase_add_test(tc, test_frees_from_other_threads);
	tcase_add_test(tc, test_refused_kfrees);
	tcase_add_test(tc, test_export_slab_object);
	tcase_add_test(tc, test_export_large_and_areas);
	tcase_add_test(tc, test_shared_allocations);
	tcase_add_test(tc, test_share_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("fake");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_out_of_order_replies);
	tcase_add_test(tc, test_hang_up_fails_waiting_calls);
	tcase_add_test(tc, test_malformed_replies);
	tcase_add_test(tc, test_import_kinds_fake);
	tcase_add_test(tc, test_revocation_fake);
	tcase_add_test(tc, test_shared_alloc_and_export_fake);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_test(tc, test_handle_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return test_run_suite(client_suite()) ? EXIT_FAILURE : EXIT_SUCCESS;
}
