// SPDX-License-Identifier: MIT
/*
 * test-mm.c - unit tests of the daemon's memory layers below the protocol:
 * pool.c (backings, fallback, sealed sparse memfds), frame.c (moves between
 * memfds, watermarks per gfp), domain.c (page allocator fed by frames, the
 * domain's free frames coalesced in d->frames: vmalloc's runs, a 4 MiB
 * kmalloc's aligned pair; reclaim and balance between domains, teardown,
 * phantom frames), kmalloc.c and vmalloc.c (classes, alignment, isolation,
 * __GFP_ZERO, rollback);
 * holding exactly what a predecessor held (domain_adopt() over its
 * owner[], domain_alloc_pages_at(), domain_alloc_frames_at(),
 * kmalloc_adopt(), vmalloc_adopt(): the same phys, refusals that change
 * nothing);
 * quarantine (a domain memfd that refuses punches, a reserve that cannot
 * back frames: counts stay true, frames come back once it can),
 * pool_memfd_check() on memfds of older daemons and clients, domain_zero()
 * and memguard.c (a SIGBUS inside a guarded memset is -EFAULT, outside it
 * is fatal).
 *
 * Every behaviour that touches memory runs over shmem and, when hugepages can
 * be had, hugetlb (loop index 0 and 1). As root, main() raises
 * /proc/sys/vm/nr_hugepages by what the tests need and gives it back at the
 * end; without hugepages the hugetlb runs are skipped with a message.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domain.h"
#include "frame.h"
#include "gfp.h"
#include "kmalloc.h"
#include "log.h"
#include "memguard.h"
#include "pool.h"
#include "sizes.h"
#include "vmalloc.h"
#include "testutil.h"

#define MiB		 (1ull << 20)
#define FRAME		 KM_FRAME_SIZE
#define POOL_SIZE	 (32 * MiB) /* 16 frames */
#define POOL_FRAMES	 16u
#define HUGEPAGES_NEEDED (POOL_FRAMES + 4) /* a pool, phantoms, slack */

static bool hugetlb_ok; /* set by main(), inherited by forks */
static const char *hugetlb_why = "not tried";

/* ---- helpers --------------------------------------------------------- */

static enum pool_backing backing_of(int i)
{
	return i ? POOL_BACKING_HUGETLB : POOL_BACKING_SHMEM;
}

/* False (and a message) when loop @i is the hugetlb run and there are no
 * hugepages: the caller returns, the case is skipped. */
static bool backing_available(int i, const char *test)
{
	if (i == 0 || hugetlb_ok)
		return true;
	printf("%s[hugetlb]: skipped: %s\n", test, hugetlb_why);
	return false;
}

static void mm_setup(struct mm *mm, int i, uint64_t size, uint64_t reserve)
{
	struct mm_options opt = { .pool_size = size, .backing = backing_of(i), .reserve = reserve };

	ck_assert_int_eq(mm_init(mm, &opt), 0);
	ck_assert(mm->pool.hugetlb == (i == 1));
}

#define SKIP_UNLESS_BACKING()                                                                      \
	do {                                                                                       \
		if (!backing_available(_i, __func__))                                              \
			return;                                                                    \
	} while (0)

static void check_domain(const struct domain *d)
{
	ck_assert_int_eq(domain_check(d), 0);
}

static int64_t memfd_bytes(int fd)
{
	int64_t b = pool_memfd_bytes(fd);

	ck_assert_int_ge(b, 0);
	return b;
}

static void fill(struct domain *d, uint64_t phys, uint64_t len, int c)
{
	memset(d->map + phys, c, len);
}

static bool all_bytes(const struct domain *d, uint64_t phys, uint64_t len, uint8_t c)
{
	for (uint64_t i = 0; i < len; i++)
		if (d->map[phys + i] != c)
			return false;
	return true;
}

/* A slab object of @d: the pool-wide slab map names the slab of its class
 * at the naturally aligned pfn the object implies. */
static void assert_in_slab(const struct mm *mm, const struct domain *d, const struct kmalloc_obj *o)
{
	const struct kmalloc_class *k;
	const struct slab *s;
	uint32_t pfn;

	ck_assert_int_ge(o->cache, 0);
	ck_assert_int_lt(o->cache, KM_NR_KMALLOC_CLASSES);
	k = &kmalloc_classes[o->cache];
	pfn = (uint32_t)(o->phys >> KM_PAGE_SHIFT) & ~((1u << k->order) - 1);
	ck_assert_uint_lt(pfn, mm->slab_map.nr_pages);
	s = mm->slab_map.at[pfn];
	ck_assert_msg(s != NULL, "no slab at pfn %u for phys %#" PRIx64, pfn, o->phys);
	ck_assert_ptr_eq(s->cache, &d->caches[o->cache]);
	ck_assert_uint_eq(s->pfn, pfn);
	ck_assert_uint_ge(o->phys, (uint64_t)pfn << KM_PAGE_SHIFT);
	ck_assert_uint_le(o->phys + k->size,
			  ((uint64_t)pfn << KM_PAGE_SHIFT) + (4096ull << k->order));
}

/* A large block: no page of it heads a slab. */
static void assert_not_in_slab(const struct mm *mm, const struct kmalloc_obj *o)
{
	uint32_t pfn = (uint32_t)(o->phys >> KM_PAGE_SHIFT);

	for (uint32_t p = pfn; p < pfn + (1u << o->order); p++)
		ck_assert_ptr_null(mm->slab_map.at[p]);
}

/* True when frame @f lies in a free block of @d's free frames (d->frames,
 * where wholly free frames coalesce). */
static bool frame_free_in(const struct domain *d, uint32_t f)
{
	for (unsigned int o = 0; o <= d->frames.max_order; o++)
		if (buddy_is_free_block(&d->frames, f & ~((1u << o) - 1), o))
			return true;
	return false;
}

/* A malloc'd vmalloc area over @frames[@nr], as a successor reads it from
 * the handover. */
static struct vmalloc_area *area_of(const uint32_t *frames, uint32_t nr)
{
	struct vmalloc_area *a = calloc(1, sizeof(*a) + nr * sizeof(a->frames[0]));

	ck_assert_ptr_nonnull(a);
	a->size = (uint64_t)nr * FRAME;
	a->nr_frames = nr;
	memcpy(a->frames, frames, nr * sizeof(a->frames[0]));
	return a;
}

/* True when @a's frames are one run of consecutive frames, ascending. */
static bool area_is_one_run(const struct vmalloc_area *a)
{
	for (uint32_t k = 1; k < a->nr_frames; k++)
		if (a->frames[k] != a->frames[k - 1] + 1)
			return false;
	return true;
}

static uint32_t owned_by(const struct mm *mm, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t f = 0; f < mm->pool.nr_frames; f++)
		n += mm->frames.owner[f] == id;
	return n;
}

/* ---- pool ------------------------------------------------------------ */

START_TEST(test_pool_init)
{
	struct pool pool;
	uint64_t seals;
	int fd;

	SKIP_UNLESS_BACKING();
	/* rounded up to whole frames, faulted in whole */
	ck_assert_int_eq(pool_init(&pool, POOL_SIZE - FRAME + 1, backing_of(_i)), 0);
	ck_assert(pool.hugetlb == (_i == 1));
	ck_assert_uint_eq(pool.size, POOL_SIZE);
	ck_assert_uint_eq(pool.frame_size, FRAME);
	ck_assert_uint_eq(pool.nr_frames, POOL_FRAMES);
	ck_assert_uint_eq(pool.nr_pages, POOL_FRAMES * 512);
	ck_assert_int_eq(memfd_bytes(pool.reserve_fd), POOL_SIZE);

	/* a domain memfd: same size, sparse, sealed */
	ck_assert_int_eq(pool_memfd_create(&pool, "kmalloc-uid1000", &fd), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), POOL_SIZE);
	ck_assert_int_eq(memfd_bytes(fd), 0);
	seals = (uint64_t)fcntl(fd, F_GET_SEALS);
	ck_assert(seals & F_SEAL_SHRINK);
	ck_assert(seals & F_SEAL_GROW);
	ck_assert_int_eq(ftruncate(fd, FRAME), -1);
	ck_assert_int_eq(errno, EPERM);

	ck_assert_int_eq(pool_frames_populate(&pool, fd, 3, 2), 0);
	ck_assert_int_eq(memfd_bytes(fd), 2 * FRAME);
	ck_assert_int_eq(pool_frames_punch(&pool, fd, 3, 1), 0);
	ck_assert_int_eq(memfd_bytes(fd), FRAME);
	ck_assert_int_eq(pool_frames_punch(&pool, fd, 4, 1), 0);
	ck_assert_int_eq(memfd_bytes(fd), 0);
	ck_assert_int_eq(pool_frames_populate(&pool, fd, POOL_FRAMES - 1, 2), -EINVAL);
	ck_assert_int_eq(pool_frames_punch(&pool, fd, POOL_FRAMES, 1), -EINVAL);
	close(fd);
	pool_fini(&pool);
	ck_assert_int_eq(pool.reserve_fd, -1);
}
END_TEST

START_TEST(test_pool_bad_size)
{
	struct pool pool;

	ck_assert_int_eq(pool_init(&pool, 0, POOL_BACKING_SHMEM), -EINVAL);
	ck_assert_int_eq(pool_init(&pool, UINT64_MAX, POOL_BACKING_SHMEM), -EINVAL);
	ck_assert_int_eq(pool.reserve_fd, -1);
}
END_TEST

START_TEST(test_pool_auto)
{
	struct pool pool;
	long free_pages;

	if (hugetlb_ok) {
		ck_assert_int_eq(pool_init(&pool, 8 * FRAME, POOL_BACKING_AUTO), 0);
		ck_assert(pool.hugetlb);
		pool_fini(&pool);
	} else {
		printf("%s: hugetlb half skipped: %s\n", __func__, hugetlb_why);
	}
	/* more frames than free hugepages: shmem, with a warning */
	free_pages = test_hugepages_free();
	if (free_pages < 0)
		free_pages = 0;
	ck_assert_int_eq(pool_init(&pool, (uint64_t)(free_pages + 1) * FRAME, POOL_BACKING_AUTO),
			 0);
	ck_assert(!pool.hugetlb);
	ck_assert_int_eq(memfd_bytes(pool.reserve_fd), (int64_t)pool.size);
	pool_fini(&pool);

	/* SHMEM never tries hugetlb */
	ck_assert_int_eq(pool_init(&pool, 4 * FRAME, POOL_BACKING_SHMEM), 0);
	ck_assert(!pool.hugetlb);
	pool_fini(&pool);
}
END_TEST

START_TEST(test_pool_hugetlb_fails)
{
	struct pool pool;
	long free_pages = test_hugepages_free();

	if (free_pages < 0)
		free_pages = 0;
	ck_assert_int_eq(pool_init(&pool, (uint64_t)(free_pages + 1) * FRAME, POOL_BACKING_HUGETLB),
			 -ENOMEM);
	ck_assert_int_eq(pool.reserve_fd, -1);
	pool_fini(&pool); /* harmless after a failed init */
}
END_TEST

/* ---- frames and watermarks ------------------------------------------- */

START_TEST(test_frame_move)
{
	struct mm mm;
	struct domain *d;
	uint32_t f, run;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 4 * FRAME);
	ck_assert_uint_eq(mm.frames.wmark_min, 4);
	ck_assert_uint_eq(mm.frames.wmark_low, 5);
	ck_assert_uint_eq(mm.frames.wmark_high, 6);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_uint_eq(d->id, 1);

	ck_assert_int_eq(frame_get(&mm.frames, d->id, d->memfd, 0, KM_GFP_KERNEL, &f), 0);
	ck_assert_uint_eq(mm.frames.owner[f], d->id);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES - 1);
	ck_assert_int_eq(memfd_bytes(d->memfd), FRAME);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE - FRAME);

	ck_assert_int_eq(frame_get(&mm.frames, d->id, d->memfd, 2, KM_GFP_KERNEL, &run), 0);
	ck_assert_uint_eq(run % 4, 0);
	ck_assert_int_eq(memfd_bytes(d->memfd), 5 * FRAME);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE - 5 * FRAME);
	ck_assert_uint_eq(owned_by(&mm, d->id), 5);

	frame_put(&mm.frames, d->memfd, run, 2);
	frame_put(&mm.frames, d->memfd, f, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	ck_assert_uint_eq(owned_by(&mm, FRAME_OWNER_NONE), POOL_FRAMES);
	ck_assert_int_eq(memfd_bytes(d->memfd), 0);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE);
	ck_assert_int_eq(buddy_check(&mm.frames.free), 0);
	check_domain(d);
	domain_put(d);
	mm_fini(&mm);
}
END_TEST

/* min 8 of 16 frames: how far down each gfp may take the free frames. */
static const struct {
	const char *name;
	unsigned int gfp;
	uint32_t floor;
} wmark_cases[] = {
	{ "GFP_KERNEL", KM_GFP_KERNEL, 8 }, /* 100 % of min */
	{ "GFP_NOWAIT", KM_GFP_NOWAIT, 8 },
	{ "GFP_KERNEL|__GFP_HIGH", KM_GFP_KERNEL | KM___GFP_HIGH, 4 }, /* 50 % */
	{ "GFP_KERNEL|__GFP_NOFAIL", KM_GFP_KERNEL | KM_GFP_NOFAIL, 4 },
	{ "GFP_ATOMIC", KM_GFP_ATOMIC, 3 }, /* 37.5 % */
	{ "__GFP_HIGH", KM_GFP_HIGH, 3 },
};
#define NR_WMARK_CASES (int)(sizeof(wmark_cases) / sizeof(wmark_cases[0]))

/* Shares of small reserves round down, so even one frame of reserve is one
 * that GFP_ATOMIC may take and GFP_KERNEL may not. */
START_TEST(test_watermark_rounding)
{
	ck_assert_uint_eq(gfp_watermark(KM_GFP_KERNEL, 1), 1);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_NOWAIT, 1), 1);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_ATOMIC, 1), 0);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_KERNEL | KM___GFP_HIGH, 1), 0);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_ATOMIC, 3), 1);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_KERNEL | KM_GFP_NOFAIL, 3), 1);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_ATOMIC, 0), 0);
	ck_assert_uint_eq(gfp_watermark(KM_GFP_ATOMIC, UINT32_MAX), 1610612735u);
}
END_TEST

START_TEST(test_watermarks)
{
	int backing = _i / NR_WMARK_CASES, k = _i % NR_WMARK_CASES;
	uint32_t frames[POOL_FRAMES], n = 0, f;
	struct mm mm;
	struct domain *d;

	if (!backing_available(backing, wmark_cases[k].name))
		return;
	mm_setup(&mm, backing, POOL_SIZE, 8 * FRAME);
	ck_assert_uint_eq(mm.frames.wmark_min, 8);
	ck_assert_uint_eq(mm.frames.wmark_low, 10);
	ck_assert_uint_eq(mm.frames.wmark_high, 12);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	while (frame_get(&mm.frames, d->id, d->memfd, 0, wmark_cases[k].gfp, &f) == 0)
		frames[n++] = f;
	ck_assert_msg(frame_nr_free(&mm.frames) == wmark_cases[k].floor,
		      "%s stopped at %" PRIu64 " free frames, expected %" PRIu32,
		      wmark_cases[k].name, frame_nr_free(&mm.frames), wmark_cases[k].floor);
	/* a run larger than what is left above the mark fails whatever gfp */
	ck_assert_int_eq(frame_get(&mm.frames, d->id, d->memfd, 3, KM_GFP_ATOMIC, &f), -ENOMEM);
	while (n)
		frame_put(&mm.frames, d->memfd, frames[--n], 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	domain_put(d);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_reserve_default)
{
	struct mm_options opt = { .pool_size = POOL_SIZE,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = UINT64_MAX };
	struct mm mm;

	/* int_sqrt(32768 kB * 16) = 724 kB: one frame */
	ck_assert_int_eq(mm_init(&mm, &opt), 0);
	ck_assert_uint_eq(mm.frames.wmark_min, 1);
	ck_assert_uint_eq(mm.frames.wmark_low, 2);
	ck_assert_uint_eq(mm.frames.wmark_high, 2);
	mm_fini(&mm);
	/* never more than half the pool */
	opt.reserve = 100 * MiB;
	ck_assert_int_eq(mm_init(&mm, &opt), 0);
	ck_assert_uint_eq(mm.frames.wmark_min, POOL_FRAMES / 2);
	mm_fini(&mm);
	/* bytes round up to frames */
	opt.reserve = FRAME + 1;
	ck_assert_int_eq(mm_init(&mm, &opt), 0);
	ck_assert_uint_eq(mm.frames.wmark_min, 2);
	mm_fini(&mm);
}
END_TEST

/* ---- domain page allocator ------------------------------------------- */

START_TEST(test_domain_pages)
{
	struct mm mm;
	struct domain *d, *d2;
	uint32_t p0, p8, f2, f;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 2 * FRAME);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &d2), 0);
	ck_assert_ptr_eq(d, d2);
	ck_assert_uint_eq(d->refs, 2);
	domain_put(d2);

	/* the first page takes a frame; the rest of it stays free in d->pages */
	ck_assert_int_eq(domain_alloc_pages(d, 0, KM_GFP_KERNEL, &p0), 0);
	ck_assert_uint_eq(d->nr_frames, 1);
	ck_assert_uint_eq(mm.frames.owner[p0 >> 9], d->id);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES - 1);
	ck_assert_uint_eq(d->pages.free_units, 511);
	ck_assert_int_eq(memfd_bytes(d->memfd), FRAME);

	/* the page buddy serves orders below a frame; a whole frame's worth
	 * is domain_alloc_frames()'s, and takes a second frame */
	ck_assert_int_eq(domain_alloc_pages(d, 8, KM_GFP_KERNEL, &p8), 0);
	ck_assert_uint_eq(p8 % 256, 0);
	ck_assert_uint_eq(d->nr_frames, 1);
	ck_assert_uint_eq(d->pages.free_units, 511 - 256);
	domain_free_pages(d, p8, 8);
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &f2), 0);
	ck_assert_uint_ne(f2, p0 >> 9);
	ck_assert_uint_eq(mm.frames.owner[f2], d->id);
	ck_assert_uint_eq(d->nr_frames, 2);
	ck_assert_uint_eq(d->pages.free_units, 511);
	d->large_pages += 513; /* account them as kmalloc would, for domain_check */
	check_domain(d);
	d->large_pages -= 513;

	/* freed frames stay in the domain, wholly free in d->frames (the
	 * page buddy gives a frame up once all its pages are back) */
	domain_free_pages(d, p0, 0);
	ck_assert_uint_eq(d->pages.free_units, 0);
	ck_assert_uint_eq(d->frames.free_units, 1);
	ck_assert(frame_free_in(d, p0 >> 9));
	domain_free_frames(d, f2, 0);
	ck_assert_uint_eq(d->frames.free_units, 2);
	ck_assert(frame_free_in(d, f2));
	/* buddies coalesce into one order-1 block, others stay apart */
	if ((p0 >> 9) == (f2 ^ 1))
		ck_assert_uint_eq(d->frames.nr_free[1], 1);
	else
		ck_assert_uint_eq(d->frames.nr_free[0], 2);
	ck_assert_uint_eq(d->nr_frames, 2);
	check_domain(d);

	/* a single frame comes from those first */
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &f), 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES - 2);
	ck_assert_uint_eq(d->frames.free_units, 1);
	ck_assert(f == p0 >> 9 || f == f2);
	domain_free_frames(d, f, 0);
	check_domain(d);

	ck_assert_uint_eq(mm_reclaim(&mm, false), 2);
	ck_assert_uint_eq(d->nr_frames, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	ck_assert_int_eq(memfd_bytes(d->memfd), 0);
	check_domain(d);
	domain_put(d);
	ck_assert(!mm_trim(&mm, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(mm.nr_domains, 0);
	mm_fini(&mm);
}
END_TEST

/* ---- kmalloc --------------------------------------------------------- */

static const size_t small_sizes[] = {
	1,    7,    8,	  9,	16,   17,   24,	  32,	33,   48,   64,	  65,	72,   96,
	97,   100,  128,  129,	160,  192,  193,  200,	256,  257,  384,  512,	513,  768,
	1000, 1024, 1025, 1536, 2048, 2049, 3000, 4095, 4096, 4097, 6144, 8191, 8192,
};
#define NR_SMALL (sizeof(small_sizes) / sizeof(small_sizes[0]))
#define PER_SIZE 3

static int cmp_obj(const void *a, const void *b)
{
	const struct kmalloc_obj *x = a, *y = b;

	return x->phys < y->phys ? -1 : x->phys > y->phys;
}

START_TEST(test_kmalloc_classes)
{
	struct kmalloc_obj objs[NR_SMALL * PER_SIZE];
	size_t n = 0, size, align;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	for (size_t s = 0; s < NR_SMALL; s++) {
		size = small_sizes[s];
		for (int k = 0; k < PER_SIZE; k++, n++) {
			struct kmalloc_obj *o = &objs[n];

			ck_assert_int_eq(kmalloc_alloc(d, size, KM_GFP_KERNEL, o), 0);
			ck_assert_uint_eq(o->size, kms_size_roundup(size));
			ck_assert_uint_ge(o->size, size);
			ck_assert_int_eq(o->cache, kms_class_index(size));
			assert_in_slab(&mm, d, o);
			align = size & -size; /* largest power of two dividing size */
			ck_assert_msg(o->phys % 8 == 0 && o->phys % align == 0,
				      "size %zu at phys %#" PRIx64 " not aligned to %zu", size,
				      o->phys, align);
			fill(d, o->phys, o->size, (int)(n & 0xff));
		}
	}
	check_domain(d);
	ck_assert_uint_gt(d->slab_pages, 0);
	ck_assert_uint_eq(d->large_pages, 0);

	/* no two objects overlap, every byte kept what was written */
	qsort(objs, n, sizeof(objs[0]), cmp_obj);
	for (size_t k = 1; k < n; k++)
		ck_assert_uint_ge(objs[k].phys, objs[k - 1].phys + objs[k - 1].size);
	/* every object lies in frames the domain owns: no phantom appeared */
	ck_assert_int_eq(domain_reconcile(d), 0);

	for (size_t k = 0; k < n; k++)
		kmalloc_free(d, &objs[k]);
	check_domain(d);
	mm_reclaim(&mm, true);
	ck_assert_uint_eq(d->slab_pages, 0);
	ck_assert_uint_eq(d->nr_frames, 0);
	check_domain(d);
	mm_fini(&mm);
}
END_TEST

static const size_t large_sizes[] = {
	8193, 12288, 16384, 65537, MiB, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 3 * MiB, 4 * MiB,
};
#define NR_LARGE (sizeof(large_sizes) / sizeof(large_sizes[0]))

START_TEST(test_kmalloc_large)
{
	struct kmalloc_obj objs[NR_LARGE];
	uint64_t pages = 0;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	for (size_t k = 0; k < NR_LARGE; k++) {
		struct kmalloc_obj *o = &objs[k];

		ck_assert_int_eq(kmalloc_alloc(d, large_sizes[k], KM_GFP_KERNEL, o), 0);
		ck_assert_int_eq(o->cache, -1);
		ck_assert_uint_eq(o->order, kms_get_order(large_sizes[k]));
		ck_assert_uint_eq(o->size, 4096ull << o->order);
		ck_assert_uint_eq(o->size, kms_size_roundup(large_sizes[k]));
		assert_not_in_slab(&mm, o);
		/* page aligned, and aligned to its size like a buddy block */
		ck_assert_uint_eq(o->phys % o->size, 0);
		fill(d, o->phys, o->size, 0x11 + (int)k);
		pages += 1ull << o->order;
		ck_assert_uint_eq(d->large_pages, pages);
		check_domain(d);
	}
	ck_assert_uint_eq(objs[NR_LARGE - 1].phys % (4 * MiB), 0);
	ck_assert_int_eq(domain_reconcile(d), 0);
	for (size_t k = 0; k < NR_LARGE; k++)
		ck_assert(all_bytes(d, objs[k].phys, objs[k].size, (uint8_t)(0x11 + k)));
	for (size_t k = 0; k < NR_LARGE; k++)
		kmalloc_free(d, &objs[k]);
	ck_assert_uint_eq(d->large_pages, 0);
	check_domain(d);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_kmalloc_limits)
{
	static const struct {
		size_t size, roundup;
		unsigned int order;
	} t[] = {
		{ 1, 8, 0 },
		{ 8, 8, 0 },
		{ 9, 16, 0 },
		{ 65, 96, 0 },
		{ 97, 128, 0 },
		{ 129, 192, 0 },
		{ 193, 256, 0 },
		{ 4096, 4096, 0 },
		{ 4097, 8192, 1 },
		{ 8192, 8192, 1 },
		{ 8193, 16384, 2 },
		{ 12288, 16384, 2 },
		{ 2 * MiB, 2 * MiB, 9 },
		{ 2 * MiB + 1, 4 * MiB, 10 },
		{ 4 * MiB, 4 * MiB, 10 },
	};
	struct mm_options opt = { .pool_size = 8 * MiB,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = 0 };
	struct kmalloc_obj o;
	struct mm mm;
	struct domain *d;

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		ck_assert_uint_eq(kms_size_roundup(t[k].size), t[k].roundup);
		ck_assert_uint_eq(kms_get_order(t[k].size), t[k].order);
	}
	ck_assert_uint_eq(kms_size_roundup(0), 0);
	ck_assert_uint_eq(kms_size_roundup(4 * MiB + 1), 4 * MiB + 1);

	ck_assert_int_eq(mm_init(&mm, &opt), 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 0, KM_GFP_KERNEL, &o), -EINVAL);
	ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB + 1, KM_GFP_KERNEL, &o), -ENOMEM);
	ck_assert_int_eq(kmalloc_alloc(d, SIZE_MAX, KM_GFP_KERNEL, &o), -ENOMEM);
	ck_assert_uint_eq(d->nr_frames, 0);
	/* 4 frames: a 4 MiB block fits twice, not three times */
	{
		struct kmalloc_obj a, b;

		ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL, &a), 0);
		ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL, &b), 0);
		ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL, &o), -ENOMEM);
		ck_assert_int_eq(kmalloc_alloc(d, 8, KM_GFP_KERNEL, &o), -ENOMEM);
		kmalloc_free(d, &a);
		kmalloc_free(d, &b);
	}
	check_domain(d);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_kmalloc_zero)
{
	static const size_t sizes[] = { 24, 256, 4096, 8192, 65536, 4 * MiB };
#define NR_Z (sizeof(sizes) / sizeof(sizes[0]))
	struct kmalloc_obj objs[NR_Z], o;
	uint64_t free_frames;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);

	/* dirty, free: the memory stays in the domain */
	for (size_t k = 0; k < NR_Z; k++) {
		ck_assert_int_eq(kmalloc_alloc(d, sizes[k], KM_GFP_KERNEL, &objs[k]), 0);
		fill(d, objs[k].phys, objs[k].size, 0xa5);
	}
	for (size_t k = 0; k < NR_Z; k++)
		kmalloc_free(d, &objs[k]);
	free_frames = frame_nr_free(&mm.frames);

	/* kmalloc does not clear: the warm 4 MiB block is the dirty one */
	ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL, &o), 0);
	ck_assert_uint_eq(o.phys, objs[NR_Z - 1].phys);
	ck_assert(all_bytes(d, o.phys, o.size, 0xa5));
	kmalloc_free(d, &o);

	/* __GFP_ZERO clears the whole bucket of reused, dirty memory */
	for (size_t k = 0; k < NR_Z; k++) {
		ck_assert_int_eq(
			kmalloc_alloc(d, sizes[k], KM_GFP_KERNEL | KM___GFP_ZERO, &objs[k]), 0);
		ck_assert_msg(all_bytes(d, objs[k].phys, objs[k].size, 0),
			      "size %zu at %#" PRIx64 " not cleared", sizes[k], objs[k].phys);
	}
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames); /* all reused */
	for (size_t k = 0; k < NR_Z; k++)
		kmalloc_free(d, &objs[k]);
	check_domain(d);
	mm_fini(&mm);
#undef NR_Z
}
END_TEST

START_TEST(test_isolation)
{
	struct kmalloc_obj a, small;
	struct vmalloc_area *area;
	uint8_t buf[4096];
	struct mm mm;
	struct domain *d1, *d2;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 0); /* no reserve: B may take every frame */
	ck_assert_int_eq(domain_get(&mm, 1000, &d1), 0);
	ck_assert_int_eq(domain_get(&mm, 1001, &d2), 0);
	ck_assert_uint_ne(d1->id, d2->id);
	ck_assert_int_ne(d1->memfd, d2->memfd);

	ck_assert_int_eq(kmalloc_alloc(d1, 2 * MiB, KM_GFP_KERNEL, &a), 0);
	ck_assert_int_eq(kmalloc_alloc(d1, 100, KM_GFP_KERNEL, &small), 0);
	fill(d1, a.phys, a.size, 0x5a);
	fill(d1, small.phys, small.size, 0x5b);
	/* another domain's memfd has a hole there: reads give zeros */
	ck_assert_int_eq(pread(d2->memfd, buf, sizeof(buf), (off_t)a.phys), sizeof(buf));
	for (size_t k = 0; k < sizeof(buf); k++)
		ck_assert_uint_eq(buf[k], 0);
	ck_assert_int_eq(pread(d2->memfd, buf, 128, (off_t)small.phys), 128);
	for (size_t k = 0; k < 128; k++)
		ck_assert_uint_eq(buf[k], 0);
	ck_assert_int_eq(memfd_bytes(d2->memfd), 0);

	/* frames that move to the other domain arrive zeroed */
	kmalloc_free(d1, &a);
	kmalloc_free(d1, &small);
	ck_assert_int_eq(vmalloc_alloc(d2, POOL_SIZE, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, POOL_FRAMES);
	ck_assert_uint_eq(area->size, POOL_SIZE);
	ck_assert_uint_eq(d1->nr_frames, 0);
	for (uint32_t k = 0; k < area->nr_frames; k++)
		ck_assert(all_bytes(d2, (uint64_t)area->frames[k] * FRAME, FRAME, 0));
	check_domain(d1);
	check_domain(d2);
	vmalloc_free(d2, area);
	domain_put(d1);
	domain_put(d2);
	mm_fini(&mm);
}
END_TEST

/* ---- vmalloc --------------------------------------------------------- */

START_TEST(test_vmalloc)
{
	struct vmalloc_area *area, *again;
	uint64_t free_frames;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	area = NULL;
	ck_assert_int_eq(vmalloc_alloc(d, 0, KM_GFP_KERNEL, &area), -EINVAL);
	ck_assert_int_eq(vmalloc_alloc(d, POOL_SIZE + 1, KM_GFP_KERNEL, &area), -ENOMEM);
	ck_assert_ptr_null(area); /* nothing handed out */

	ck_assert_int_eq(vmalloc_alloc(d, 5 * FRAME + 1, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 6);
	ck_assert_uint_eq(area->size, 5 * FRAME + 1);
	ck_assert_uint_eq(area->vaddr, 0);
	ck_assert_str_eq(area->caller, "");
	ck_assert_uint_eq(d->vmalloc_frames, 6);
	for (uint32_t k = 0; k < area->nr_frames; k++) {
		ck_assert_uint_eq(mm.frames.owner[area->frames[k]], d->id);
		for (uint32_t j = 0; j < k; j++)
			ck_assert_uint_ne(area->frames[j], area->frames[k]);
		fill(d, (uint64_t)area->frames[k] * FRAME, FRAME, 0xc3);
	}
	check_domain(d);
	ck_assert_int_eq(domain_reconcile(d), 0);
	free_frames = frame_nr_free(&mm.frames);
	vmalloc_free(d, area);
	ck_assert_uint_eq(d->vmalloc_frames, 0);
	ck_assert_uint_eq(d->frames.free_units, 6);
	ck_assert_uint_eq(d->pages.free_units, 0);
	check_domain(d);

	/* again, zeroed: the domain's dirty frames are reused and cleared */
	ck_assert_int_eq(vmalloc_alloc(d, 6 * FRAME, KM_GFP_KERNEL | KM___GFP_ZERO, &again), 0);
	ck_assert_uint_eq(again->nr_frames, 6);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
	ck_assert_uint_eq(d->frames.free_units, 0);
	for (uint32_t k = 0; k < again->nr_frames; k++)
		ck_assert(all_bytes(d, (uint64_t)again->frames[k] * FRAME, FRAME, 0));
	vmalloc_free(d, again);
	check_domain(d);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_vmalloc_rollback)
{
	struct vmalloc_area *area, *other;
	struct mm mm;
	struct domain *d, *o;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 4 * FRAME);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(domain_get(&mm, 1001, &o), 0);
	/* another domain holds two free frames: reclaimed on the way */
	ck_assert_int_eq(vmalloc_alloc(o, 2 * FRAME, KM_GFP_KERNEL, &other), 0);
	vmalloc_free(o, other);
	ck_assert_uint_eq(o->frames.free_units, 2);

	/* one frame more than GFP_KERNEL may take: fails, gives everything back */
	ck_assert_int_eq(vmalloc_alloc(d, 13 * FRAME, KM_GFP_KERNEL, &area), -ENOMEM);
	ck_assert_uint_eq(d->vmalloc_frames, 0);
	ck_assert_uint_eq(o->nr_frames, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames) + d->frames.free_units, POOL_FRAMES);
	ck_assert_uint_eq(d->nr_frames, d->frames.free_units);
	ck_assert_uint_eq(d->pages.free_units, 0);
	check_domain(d);
	check_domain(o);

	/* exactly what is above the min watermark fits */
	ck_assert_int_eq(vmalloc_alloc(d, 12 * FRAME, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 12);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 4);
	check_domain(d);
	vmalloc_free(d, area);
	ck_assert_uint_eq(mm_reclaim(&mm, false), 12);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	mm_fini(&mm);
}
END_TEST

/* ---- the domain's free frames: runs for vmalloc, blocks for 4 MiB ----- */

#define RUN_POOL_FRAMES 64u /* room for a 32-frame area and its neighbours */

/* vmalloc takes the longest runs the domain can give: 32 frames from a
 * fresh pool are one aligned run; given back (frame by frame, in any
 * order) they coalesce among the domain's free frames and the next area
 * of the same size is the same run again, ascending, without a new frame
 * (so the client maps it with one mmap). An area that is no power of two
 * comes as consecutive runs, largest first. */
START_TEST(test_vmalloc_runs)
{
	struct vmalloc_area *area, *ones[32];
	uint32_t first, perm[32];
	uint64_t free_frames;
	struct mm mm;
	struct domain *d;

	mm_setup(&mm, 0, (uint64_t)RUN_POOL_FRAMES * FRAME, 0);
	ck_assert_uint_eq(mm.pool.nr_frames, RUN_POOL_FRAMES);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_uint_eq(d->frames.max_order, 6);

	ck_assert_int_eq(vmalloc_alloc(d, 32 * FRAME, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 32);
	first = area->frames[0];
	ck_assert_uint_eq(first % 32, 0);
	for (uint32_t i = 0; i + 1 < area->nr_frames; i++)
		ck_assert_uint_eq(area->frames[i + 1], area->frames[i] + 1);
	free_frames = frame_nr_free(&mm.frames);
	ck_assert_uint_eq(free_frames, RUN_POOL_FRAMES - 32);
	vmalloc_free(d, area);
	/* back as one block of 32 among the domain's free frames */
	ck_assert_uint_eq(d->frames.free_units, 32);
	ck_assert_uint_eq(d->frames.nr_free[5], 1);
	ck_assert_uint_eq(d->frames.head[5], first);
	check_domain(d);

	ck_assert_int_eq(vmalloc_alloc(d, 32 * FRAME, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 32);
	ck_assert_uint_eq(area->frames[0], first);
	for (uint32_t i = 0; i + 1 < area->nr_frames; i++)
		ck_assert_uint_eq(area->frames[i + 1], area->frames[i] + 1);
	ck_assert(area_is_one_run(area));
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames); /* no new frame */
	ck_assert_uint_eq(d->frames.free_units, 0);
	vmalloc_free(d, area);

	/* 32 one-frame areas (the domain's block split in order), given
	 * back in a random order: they coalesce all the same */
	for (uint32_t i = 0; i < 32; i++) {
		ck_assert_int_eq(vmalloc_alloc(d, 1, KM_GFP_KERNEL, &ones[i]), 0);
		ck_assert_uint_eq(ones[i]->frames[0], first + i);
		perm[i] = i;
	}
	for (uint32_t i = 31; i > 0; i--) {
		uint32_t j = (uint32_t)test_rand_below(i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint32_t i = 0; i < 32; i++)
		vmalloc_free(d, ones[perm[i]]);
	ck_assert_uint_eq(d->frames.nr_free[5], 1);
	ck_assert_int_eq(buddy_check(&d->frames), 0);
	ck_assert_int_eq(vmalloc_alloc(d, 32 * FRAME, KM_GFP_KERNEL | KM___GFP_ZERO, &area), 0);
	ck_assert(area_is_one_run(area));
	ck_assert_uint_eq(area->frames[0], first);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
	vmalloc_free(d, area);

	/* 24 frames from the 32 kept: 16 then 8, one after the other */
	ck_assert_int_eq(vmalloc_alloc(d, 24 * FRAME - 1, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(area->nr_frames, 24);
	ck_assert(area_is_one_run(area));
	ck_assert_uint_eq(area->frames[0], first);
	ck_assert_uint_eq(d->frames.free_units, 8);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
	check_domain(d);
	vmalloc_free(d, area);
	ck_assert_uint_eq(d->frames.nr_free[5], 1);
	check_domain(d);
	domain_put(d);
	ck_assert(!mm_trim(&mm, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(frame_nr_free(&mm.frames), RUN_POOL_FRAMES);
	mm_fini(&mm);
}
END_TEST

/* domain_alloc_frame_run(): the largest power of two up to what is
 * wanted, from the domain's own free frames when it has such a block,
 * else new from the frame allocator; aligned to its size either way. */
START_TEST(test_frame_run)
{
	uint32_t base, f, nr, g, nr2;
	uint64_t free_frames;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	/* 8 frames held; 1, 2-3 and 6 given back: blocks of 1, 2 and 1 */
	ck_assert_int_eq(domain_alloc_frames(d, 3, KM_GFP_KERNEL, &base), 0);
	ck_assert_uint_eq(base % 8, 0);
	domain_free_frames(d, base + 1, 0);
	domain_free_frames(d, base + 2, 0);
	domain_free_frames(d, base + 3, 0);
	domain_free_frames(d, base + 6, 0);
	ck_assert_uint_eq(d->frames.free_units, 4);
	ck_assert_uint_eq(d->frames.nr_free[0], 2);
	ck_assert_uint_eq(d->frames.nr_free[1], 1);
	ck_assert(buddy_is_free_block(&d->frames, base + 2, 1));
	d->vmalloc_frames += 4; /* the 4 still held, for domain_check */
	check_domain(d);
	free_frames = frame_nr_free(&mm.frames);

	/* 2 or 3 wanted: the domain's pair */
	ck_assert_int_eq(domain_alloc_frame_run(d, 3, KM_GFP_KERNEL, &f, &nr), 0);
	ck_assert_uint_eq(nr, 2);
	ck_assert_uint_eq(f, base + 2);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
	/* 1 wanted: one of the domain's single frames */
	ck_assert_int_eq(domain_alloc_frame_run(d, 1, KM_GFP_KERNEL, &g, &nr2), 0);
	ck_assert_uint_eq(nr2, 1);
	ck_assert(g == base + 1 || g == base + 6);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
	domain_free_frames(d, g, 0);
	/* 5 wanted: the domain has no block of 4, a new one comes */
	ck_assert_int_eq(domain_alloc_frame_run(d, 5, KM_GFP_KERNEL, &g, &nr2), 0);
	ck_assert_uint_eq(nr2, 4);
	ck_assert_uint_eq(g % 4, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames - 4);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(mm.frames.owner[g + i], d->id);
	d->vmalloc_frames += 6;
	check_domain(d);
	d->vmalloc_frames -= 6;
	domain_free_frames(d, g, 2);
	domain_free_frames(d, f, 1);
	/* more than the pool's largest block: capped at it */
	ck_assert_int_eq(domain_alloc_frame_run(d, 1000, KM_GFP_KERNEL, &g, &nr2), 0);
	ck_assert_uint_le(nr2, 1u << d->frames.max_order);
	ck_assert_uint_eq(g % nr2, 0);
	domain_free_frames(d, g, (unsigned int)__builtin_ctz(nr2));

	d->vmalloc_frames -= 4;
	domain_free_frames(d, base, 0);
	domain_free_frames(d, base + 4, 0);
	domain_free_frames(d, base + 5, 0);
	domain_free_frames(d, base + 7, 0);
	check_domain(d);
	ck_assert_uint_eq(d->frames.free_units, d->nr_frames);
	domain_put(d);
	ck_assert(!mm_trim(&mm, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	mm_fini(&mm);
}
END_TEST

/* A 4 MiB kmalloc is an order-1 block of the domain's free frames, found
 * in O(1) (no scan of the pool): an aligned pair the domain keeps when it
 * has one, new frames when its free frames are single (however many). */
START_TEST(test_kmalloc_4m_frames)
{
	struct kmalloc_obj big, big2;
	uint32_t base;
	uint64_t free_frames;
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(domain_alloc_frames(d, 3, KM_GFP_KERNEL, &base), 0);
	/* free: base+1 alone, base+2..3 a pair, base+6 alone; the other 4
	 * held (counted as vmalloc's, for domain_check) */
	d->vmalloc_frames += 4;
	domain_free_frames(d, base + 1, 0);
	domain_free_frames(d, base + 2, 0);
	domain_free_frames(d, base + 3, 0);
	domain_free_frames(d, base + 6, 0);
	free_frames = frame_nr_free(&mm.frames);
	fill(d, (uint64_t)(base + 2) * FRAME, 2 * FRAME, 0x44);

	ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL, &big), 0);
	ck_assert_uint_eq(big.phys, (uint64_t)(base + 2) * FRAME);
	ck_assert_uint_eq(big.phys % (4 * MiB), 0);
	ck_assert_uint_eq(big.order, KM_FRAME_ORDER + 1);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames); /* kept frames, warm */
	ck_assert(all_bytes(d, big.phys, big.size, 0x44));	   /* and not cleared */
	ck_assert_uint_eq(d->frames.free_units, 2);
	check_domain(d);

	/* only single frames left: two new ones, an aligned pair */
	ck_assert_int_eq(kmalloc_alloc(d, 3 * MiB, KM_GFP_KERNEL | KM___GFP_ZERO, &big2), 0);
	ck_assert_uint_eq(big2.phys % (4 * MiB), 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames - 2);
	ck_assert_uint_eq(mm.frames.owner[big2.phys >> KM_FRAME_SHIFT], d->id);
	ck_assert_uint_eq(mm.frames.owner[(big2.phys >> KM_FRAME_SHIFT) + 1], d->id);
	ck_assert(all_bytes(d, big2.phys, big2.size, 0));
	ck_assert_uint_eq(d->frames.free_units, 2);
	check_domain(d);

	/* given back, the pair coalesces again and serves the next one */
	kmalloc_free(d, &big);
	ck_assert(buddy_is_free_block(&d->frames, base + 2, 1));
	kmalloc_free(d, &big2);
	ck_assert_int_eq(kmalloc_alloc(d, 4 * MiB, KM_GFP_KERNEL | KM___GFP_ZERO, &big), 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames - 2);
	ck_assert(all_bytes(d, big.phys, big.size, 0)); /* kept, refreshed */
	kmalloc_free(d, &big);
	check_domain(d);

	d->vmalloc_frames -= 4;
	domain_free_frames(d, base, 0);
	domain_free_frames(d, base + 4, 0);
	domain_free_frames(d, base + 5, 0);
	domain_free_frames(d, base + 7, 0);
	check_domain(d);
	ck_assert_uint_eq(d->nr_frames, 10); /* the 8 and the pair of big2 */
	ck_assert_uint_eq(d->frames.free_units, 10);
	ck_assert_uint_eq(mm_reclaim(&mm, false), 10);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	check_domain(d);
	domain_put(d);
	mm_fini(&mm);
}
END_TEST

/* ---- reclaim, balance ------------------------------------------------ */

START_TEST(test_reclaim_moves_frames)
{
	struct vmalloc_area *area;
	struct kmalloc_obj big;
	struct mm mm;
	struct domain *a, *b;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 2 * FRAME);
	ck_assert_int_eq(domain_get(&mm, 1000, &a), 0);
	ck_assert_int_eq(domain_get(&mm, 1001, &b), 0);
	/* A takes everything above min and frees it: it keeps 14 free frames */
	ck_assert_int_eq(vmalloc_alloc(a, 14 * FRAME, KM_GFP_KERNEL, &area), 0);
	for (uint32_t k = 0; k < area->nr_frames; k++)
		fill(a, (uint64_t)area->frames[k] * FRAME, FRAME, 0x77);
	vmalloc_free(a, area);
	ck_assert_uint_eq(a->nr_frames, 14);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 2);

	/* B's 4 MiB kmalloc finds the pool at min: reclaim moves A's frames */
	ck_assert_int_eq(kmalloc_alloc(b, 4 * MiB, KM_GFP_KERNEL, &big), 0);
	ck_assert_uint_eq(a->nr_frames, 0);
	ck_assert_uint_eq(b->nr_frames, 2);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 14);
	ck_assert_int_eq(memfd_bytes(a->memfd), 0);
	ck_assert(all_bytes(b, big.phys, big.size, 0)); /* new in B: zeroed */
	check_domain(a);
	check_domain(b);
	kmalloc_free(b, &big);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_reclaim_shrinks_slabs)
{
	struct kmalloc_obj objs[64];
	struct mm mm;
	struct domain *d;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	for (int k = 0; k < 64; k++)
		ck_assert_int_eq(kmalloc_alloc(d, 8192, KM_GFP_KERNEL, &objs[k]), 0);
	ck_assert_uint_eq(d->slab_pages, 128);
	for (int k = 0; k < 64; k++)
		kmalloc_free(d, &objs[k]);
	/* empty slabs kept up to min_partial pin the frame */
	ck_assert_uint_gt(d->slab_pages, 0);
	check_domain(d);
	ck_assert_uint_eq(mm_reclaim(&mm, false), 0);
	ck_assert_uint_eq(d->nr_frames, 1);
	ck_assert_uint_eq(mm_reclaim(&mm, true), 1);
	ck_assert_uint_eq(d->slab_pages, 0);
	ck_assert_uint_eq(d->nr_frames, 0);
	check_domain(d);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_balance)
{
	struct vmalloc_area *area;
	struct mm mm;
	struct domain *d;
	uint64_t n;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 4 * FRAME); /* min 4, low 5, high 6 */
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_uint_eq(mm_balance(&mm), 0);
	ck_assert_int_eq(vmalloc_alloc(d, 12 * FRAME, KM_GFP_KERNEL, &area), 0);
	ck_assert_uint_eq(mm_balance(&mm), 0); /* nothing free to give */
	vmalloc_free(d, area);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 4);
	ck_assert_uint_eq(d->frames.free_units, 12); /* kept free by the domain */
	n = mm_balance(&mm);
	ck_assert_uint_ge(n, 2);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 4 + n);
	ck_assert_uint_eq(d->nr_frames, 12 - n);
	ck_assert_uint_eq(d->frames.free_units, 12 - n);
	ck_assert_uint_eq(mm_balance(&mm), 0); /* above low: nothing to do */
	check_domain(d);
	/* up to high, no further: the domain keeps the rest warm */
	ck_assert_msg(n == 2,
		      "mm_balance() gave back %" PRIu64 " frames to go from 4 free to wmark_high "
		      "(6): domain_release_free_frames() hands back whole blocks of d->frames, "
		      "largest first, and overshoots the high watermark",
		      n);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), mm.frames.wmark_high);
	ck_assert_uint_eq(d->nr_frames, 10);
	mm_fini(&mm);
}
END_TEST

/* ---- teardown, phantoms ---------------------------------------------- */

/*
 * A domain nobody holds goes a frame at a time: mm_trim() with a budget
 * too small for more gives back one frame per turn (each costs the kernel a
 * hugepage's clearing), says there is more, and destroys the domain after
 * its last frame; a client of the uid arriving in between takes it back
 * with what it still has.
 */
START_TEST(test_going_is_bounded)
{
	struct vmalloc_area *area;
	struct mm mm;
	struct domain *d, *again;
	uint32_t owned, turns = 0;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(vmalloc_alloc(d, 8 * FRAME, KM_GFP_KERNEL, &area), 0);
	vmalloc_free(d, area);
	owned = d->nr_frames;
	ck_assert_uint_ge(owned, 8);
	domain_put(d);
	ck_assert_uint_eq(mm.nr_domains, 1); /* not at once */
	ck_assert(mm_trim(&mm, 1));
	ck_assert_uint_eq(d->nr_frames, owned - 1);
	check_domain(d);
	/* Taken back half way: it keeps what it has left. */
	ck_assert_int_eq(domain_get(&mm, 1000, &again), 0);
	ck_assert_ptr_eq(again, d);
	ck_assert(!mm_trim(&mm, 1));
	ck_assert_uint_eq(d->nr_frames, owned - 1);
	domain_put(d);
	while (mm_trim(&mm, 1))
		turns++;
	ck_assert_uint_eq(turns, owned - 1); /* a turn per frame; the next destroys it */
	ck_assert_uint_eq(mm.nr_domains, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE);
	mm_fini(&mm);
}
END_TEST

START_TEST(test_teardown)
{
	struct kmalloc_obj objs[NR_SMALL + 3];
	struct vmalloc_area *area;
	struct mm mm;
	struct domain *d;
	int fd;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	domain_ref(d);
	for (size_t k = 0; k < NR_SMALL; k++)
		ck_assert_int_eq(kmalloc_alloc(d, small_sizes[k], KM_GFP_KERNEL, &objs[k]), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 20000, KM_GFP_KERNEL, &objs[NR_SMALL]), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 3 * MiB, KM_GFP_KERNEL, &objs[NR_SMALL + 1]), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 2 * MiB, KM_GFP_KERNEL, &objs[NR_SMALL + 2]), 0);
	ck_assert_int_eq(vmalloc_alloc(d, 3 * FRAME, KM_GFP_KERNEL, &area), 0);
	check_domain(d);
	ck_assert_uint_lt(frame_nr_free(&mm.frames), POOL_FRAMES);
	fd = dup(d->memfd);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(memfd_bytes(fd), (int64_t)d->nr_frames * FRAME);

	domain_put(d); /* one reference left: still alive */
	ck_assert_uint_eq(mm.nr_domains, 1);
	check_domain(d);
	domain_put(d);		     /* everything it held goes back */
	ck_assert(!mm_trim(&mm, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(mm.nr_domains, 0);
	ck_assert(TAILQ_EMPTY(&mm.domains));
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	ck_assert_uint_eq(owned_by(&mm, FRAME_OWNER_NONE), POOL_FRAMES);
	ck_assert_int_eq(buddy_check(&mm.frames.free), 0);
	ck_assert_int_eq(memfd_bytes(fd), 0);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE);
	close(fd);
	free(area); /* the domain's teardown took its frames, not the area */

	/* a new domain gets a new id and can use the whole page map again */
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_uint_eq(d->id, 2);
	ck_assert_int_eq(kmalloc_alloc(d, 8, KM_GFP_KERNEL, &objs[0]), 0);
	check_domain(d);
	mm_fini(&mm); /* with a live domain and object */
}
END_TEST

START_TEST(test_phantom)
{
	struct kmalloc_obj o;
	uint64_t owned;
	uint8_t *client;
	struct mm mm;
	struct domain *d;
	int64_t excess;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 4096, KM_GFP_KERNEL, &o), 0);
	fill(d, o.phys, o.size, 0x42);
	owned = (uint64_t)d->nr_frames * FRAME;
	ck_assert_int_eq(domain_reconcile(d), 0);

	/* a client maps its memfd and touches holes in two frames */
	client = mmap(NULL, mm.pool.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		      d->memfd, 0);
	ck_assert_ptr_ne(client, MAP_FAILED);
	ck_assert_uint_eq(client[o.phys], 0x42);
	client[(POOL_FRAMES - 1) * FRAME + 123] = 1;
	client[(POOL_FRAMES - 3) * FRAME] = 2;
	ck_assert_uint_gt(memfd_bytes(d->memfd), owned);

	excess = domain_reconcile(d);
	ck_assert_int_eq(excess, _i ? 2 * FRAME : 2 * 4096);
	ck_assert_uint_eq(d->phantom_punches, 2);
	ck_assert_int_eq(memfd_bytes(d->memfd), (int64_t)owned);
	ck_assert(all_bytes(d, o.phys, o.size, 0x42)); /* owned data untouched */
	ck_assert_int_eq(domain_reconcile(d), 0);
	ck_assert_uint_eq(d->phantom_punches, 2);
	check_domain(d);
	munmap(client, mm.pool.size);
	kmalloc_free(d, &o);
	mm_fini(&mm);
}
END_TEST

/* ---- holding exactly what a predecessor held --------------------------- */

/* The _at allocators on a live domain: exactly the block asked for, or
 * -EEXIST when any of it is not free in the domain's own frames, -EINVAL
 * when it is no block of the pool; frames all or nothing. */
START_TEST(test_alloc_at)
{
	uint32_t p, f, g, h;
	struct mm mm;
	struct domain *d, *other;

	SKIP_UNLESS_BACKING();
	mm_setup(&mm, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(domain_get(&mm, 1001, &other), 0);
	/* a frame of d's, wholly free (back among its free frames) */
	ck_assert_int_eq(domain_alloc_pages(d, 0, KM_GFP_KERNEL, &p), 0);
	domain_free_pages(d, p, 0);
	f = p >> KM_FRAME_ORDER;
	ck_assert(buddy_is_free_block(&d->frames, f, 0));
	ck_assert_uint_eq(d->pages.free_units, 0);
	/* a frame of another domain's */
	ck_assert_int_eq(domain_alloc_frames(other, 0, KM_GFP_KERNEL, &h), 0);
	other->vmalloc_frames++;

	/* a page of a wholly free frame: the frame goes to the page buddy */
	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 7, 0), 0);
	ck_assert_uint_eq(d->pages.free_units, POOL_PAGES_PER_FRAME - 1);
	ck_assert_uint_eq(d->frames.free_units, 0);
	ck_assert(buddy_is_free_block(&d->pages, (f << KM_FRAME_ORDER) + 6, 0));
	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 7, 0), -EEXIST);
	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 6, 1), -EEXIST);
	ck_assert_int_eq(domain_alloc_pages_at(d, f << KM_FRAME_ORDER, KM_FRAME_ORDER - 1),
			 -EEXIST);
	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 1, 1), -EINVAL);
	/* whole frames are domain_alloc_frames_at()'s, not the page buddy's */
	ck_assert_int_eq(domain_alloc_pages_at(d, f << KM_FRAME_ORDER, KM_FRAME_ORDER), -EINVAL);
	ck_assert_int_eq(domain_alloc_pages_at(d, f << KM_FRAME_ORDER, KM_FRAME_ORDER + 1),
			 -EINVAL);
	ck_assert_int_eq(domain_alloc_pages_at(d, mm.pool.nr_pages, 0), -EINVAL);
	ck_assert_int_eq(domain_alloc_pages_at(d, UINT32_MAX, 0), -EINVAL);
	/* not d's: another domain's frame, a free frame */
	ck_assert_int_eq(domain_alloc_pages_at(d, h << KM_FRAME_ORDER, 0), -EEXIST);
	for (g = 0; mm.frames.owner[g] != FRAME_OWNER_NONE; g++)
		ck_assert_uint_lt(g, POOL_FRAMES - 1);
	ck_assert_int_eq(domain_alloc_pages_at(d, g << KM_FRAME_ORDER, 3), -EEXIST);
	ck_assert_uint_eq(d->pages.free_units, POOL_PAGES_PER_FRAME - 1);
	d->large_pages++; /* held as kmalloc would hold it, for domain_check */
	check_domain(d);
	d->large_pages--;

	/* a frame with a page taken is no free frame */
	ck_assert_int_eq(domain_alloc_frames_at(d, f, 0), -EEXIST);
	domain_free_pages(d, (f << KM_FRAME_ORDER) + 7, 0);
	ck_assert_uint_eq(d->pages.free_units, 0);
	ck_assert(buddy_is_free_block(&d->frames, f, 0));
	ck_assert_int_eq(domain_alloc_frames_at(d, f, 0), 0);
	ck_assert_uint_eq(d->pages.free_units, 0);
	ck_assert_uint_eq(d->frames.free_units, 0);
	ck_assert_int_eq(domain_alloc_frames_at(d, f, 0), -EEXIST);
	ck_assert_int_eq(domain_alloc_frames_at(d, h, 0), -EEXIST);
	ck_assert_int_eq(domain_alloc_frames_at(d, g, 0), -EEXIST);
	ck_assert_int_eq(domain_alloc_frames_at(d, POOL_FRAMES, 0), -EINVAL);
	ck_assert_int_eq(domain_alloc_frames_at(d, POOL_FRAMES - 1, 1), -EINVAL);
	/* orders go up to the frame buddy's (the pool's 16 frames: 4) */
	ck_assert_uint_eq(d->frames.max_order, 4);
	ck_assert_int_eq(domain_alloc_frames_at(d, 0, d->frames.max_order + 1), -EINVAL);
	ck_assert_int_eq(domain_alloc_frames_at(d, 0, d->frames.max_order), -EEXIST);
	ck_assert_int_eq(domain_alloc_frames_at(d, UINT32_MAX, 0), -EINVAL);
	d->vmalloc_frames++;
	check_domain(d);
	d->vmalloc_frames--;
	domain_free_frames(d, f, 0);

	/* two frames, all or nothing */
	ck_assert_int_eq(domain_alloc_frames(d, 1, KM_GFP_KERNEL, &g), 0);
	ck_assert_uint_eq(g % 2, 0);
	domain_free_frames(d, g, 1);
	ck_assert_int_eq(domain_alloc_frames_at(d, g + 1, 1), -EINVAL); /* misaligned */
	ck_assert(buddy_is_free_block(&d->frames, g, 1));
	ck_assert_int_eq(domain_alloc_pages_at(d, ((g + 1) << KM_FRAME_ORDER) + 100, 2), 0);
	ck_assert_int_eq(domain_alloc_frames_at(d, g, 1), -EEXIST);
	ck_assert(buddy_is_free_block(&d->frames, g, 0));
	ck_assert(!frame_free_in(d, g + 1));
	d->large_pages += 4;
	check_domain(d);
	d->large_pages -= 4;
	domain_free_pages(d, ((g + 1) << KM_FRAME_ORDER) + 100, 2);
	ck_assert(buddy_is_free_block(&d->frames, g, 1)); /* coalesced again */
	ck_assert_int_eq(domain_alloc_frames_at(d, g, 1), 0);
	ck_assert(!frame_free_in(d, g));
	ck_assert(!frame_free_in(d, g + 1));
	ck_assert_uint_eq(d->pages.free_units, 0);
	d->large_pages += 2 * POOL_PAGES_PER_FRAME;
	check_domain(d);
	d->large_pages -= 2 * POOL_PAGES_PER_FRAME;
	domain_free_frames(d, g, 1);
	check_domain(d);
	ck_assert_uint_eq(d->frames.free_units, d->nr_frames);
	ck_assert_uint_eq(d->pages.free_units, 0);

	other->vmalloc_frames--;
	domain_free_frames(other, h, 0);
	domain_put(d);
	domain_put(other);
	ck_assert(!mm_trim(&mm, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	mm_fini(&mm);
}
END_TEST

/* A refused domain_alloc_pages_at() changes nothing: a block misaligned
 * for its order in a wholly free frame leaves the frame among the
 * domain's free frames (where reclaim, vmalloc and a 4 MiB kmalloc find
 * it), not split into the page buddy. */
START_TEST(test_alloc_at_refusal_keeps_free_frame)
{
	uint32_t f;
	struct mm mm;
	struct domain *d;

	mm_setup(&mm, 0, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &f), 0);
	domain_free_frames(d, f, 0);
	ck_assert(buddy_is_free_block(&d->frames, f, 0));

	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 1, 1), -EINVAL);
	ck_assert_int_eq(domain_alloc_pages_at(d, (f << KM_FRAME_ORDER) + 4, 3), -EINVAL);
	ck_assert_msg(buddy_is_free_block(&d->frames, f, 0) && d->pages.free_units == 0,
		      "a refused domain_alloc_pages_at() moved wholly free frame %u into the "
		      "page buddy (%" PRIu64 " free pages there, %" PRIu64 " free frames)",
		      f, d->pages.free_units, d->frames.free_units);
	check_domain(d);
	ck_assert_uint_eq(mm_reclaim(&mm, false), 1);
	ck_assert_uint_eq(d->nr_frames, 0);
	domain_put(d);
	mm_fini(&mm);
}
END_TEST

static const size_t adopt_sizes[] = {
	8,    8,     24,    96,	     96,      100,
	192,  1000,  2048,  4096,    8192,    8192, /* slab objects */
	8193, 20000, 65536, 2 * MiB, 4 * MiB,	    /* large blocks */
};
#define NR_ADOPT (sizeof(adopt_sizes) / sizeof(adopt_sizes[0]))

/* The first pfn of a free block of @d of @min_order or more: in its page
 * buddy, else the first page of one of its wholly free frames. */
static uint32_t free_block_at_least(const struct domain *d, unsigned int min_order)
{
	for (unsigned int o = min_order; o < KM_FRAME_ORDER; o++)
		if (d->pages.head[o] != BUDDY_NONE)
			return d->pages.head[o];
	for (unsigned int o = 0; o <= d->frames.max_order; o++)
		if (d->frames.head[o] != BUDDY_NONE)
			return d->frames.head[o] << KM_FRAME_ORDER;
	ck_abort_msg("no free block of order %u or more", min_order);
	return 0;
}

/* A second struct mm over the same memory, as a successor daemon makes it:
 * the reserve memfd and owner[] of @a. */
static void mm_successor(struct mm *b, const struct mm *a)
{
	struct mm_options opt = { .pool_size = a->pool.size,
				  .backing = a->pool.hugetlb ? POOL_BACKING_HUGETLB
							     : POOL_BACKING_SHMEM,
				  .reserve = UINT64_MAX };
	int fd = dup(a->pool.reserve_fd);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mm_adopt(b, &opt, fd, a->pool.size, a->pool.hugetlb, a->frames.owner), 0);
	ck_assert_uint_eq(frame_nr_free(&b->frames), frame_nr_free(&a->frames));
	for (uint32_t f = 0; f < a->pool.nr_frames; f++)
		ck_assert_uint_eq(b->frames.owner[f], a->frames.owner[f]);
}

/*
 * A predecessor's domain taken over: domain_adopt() makes every frame
 * owner[] gives it free in its page buddy, and kmalloc_adopt() and
 * vmalloc_adopt() hold again exactly what the predecessor held (same phys,
 * same bytes, same slab and page counts), refusing whatever does not fit;
 * new allocations then go around what was taken back.
 */
START_TEST(test_adopt)
{
	struct kmalloc_obj objs[NR_ADOPT], more[64], bad;
	struct vmalloc_area *area, *copy;
	uint32_t *frames, nr, free_frame = UINT32_MAX, free_pfn;
	struct mm a, b;
	struct domain *d, *nd;

	SKIP_UNLESS_BACKING();
	mm_setup(&a, _i, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&a, 1000, &d), 0);
	for (size_t k = 0; k < NR_ADOPT; k++) {
		ck_assert_int_eq(kmalloc_alloc(d, adopt_sizes[k], KM_GFP_KERNEL, &objs[k]), 0);
		fill(d, objs[k].phys, objs[k].size, (int)(0x20 + k));
	}
	ck_assert_int_eq(vmalloc_alloc(d, 3 * FRAME, KM_GFP_KERNEL, &area), 0);
	frames = area->frames;
	nr = area->nr_frames;
	for (uint32_t k = 0; k < nr; k++)
		fill(d, (uint64_t)frames[k] * FRAME, FRAME, 0x70 + (int)k);
	check_domain(d);
	for (uint32_t f = 0; f < POOL_FRAMES; f++)
		if (a.frames.owner[f] == FRAME_OWNER_NONE)
			free_frame = f;
	ck_assert_uint_ne(free_frame, UINT32_MAX);

	/* the successor: every frame d owns is free in the adopted domain */
	mm_successor(&b, &a);
	ck_assert_int_eq(domain_adopt(&b, d->id, 1000, dup(d->memfd), &nd), 0);
	nd->refs = 1; /* as the connection coming with it would */
	ck_assert_uint_eq(nd->id, d->id);
	ck_assert_uint_eq(nd->nr_frames, d->nr_frames);
	ck_assert_uint_eq(nd->nr_frames, owned_by(&b, nd->id));
	ck_assert_uint_eq(nd->frames.free_units, nd->nr_frames);
	ck_assert_uint_eq(nd->pages.free_units, 0);
	for (uint32_t f = 0; f < POOL_FRAMES; f++)
		ck_assert(frame_free_in(nd, f) == (b.frames.owner[f] == nd->id));
	ck_assert_uint_eq(nd->slab_pages + nd->large_pages + nd->vmalloc_frames, 0);
	check_domain(nd);

	/* vmalloc frames: all or nothing */
	{
		uint32_t dup2[2] = { frames[0], frames[0] };
		uint32_t notours[2] = { frames[1], free_frame };
		uint32_t past[2] = { frames[2], POOL_FRAMES };
		struct vmalloc_area *bad_area;

		bad_area = area_of(frames, 0);
		ck_assert_int_eq(vmalloc_adopt(nd, bad_area), -EUCLEAN);
		free(bad_area);
		bad_area = area_of(dup2, 2);
		ck_assert_int_eq(vmalloc_adopt(nd, bad_area), -EUCLEAN);
		free(bad_area);
		bad_area = area_of(notours, 2);
		ck_assert_int_eq(vmalloc_adopt(nd, bad_area), -EUCLEAN);
		free(bad_area);
		bad_area = area_of(past, 2);
		ck_assert_int_eq(vmalloc_adopt(nd, bad_area), -EUCLEAN);
		free(bad_area);
	}
	ck_assert_uint_eq(nd->frames.free_units, nd->nr_frames);
	ck_assert_uint_eq(nd->pages.free_units, 0);
	ck_assert_uint_eq(nd->vmalloc_frames, 0);
	check_domain(nd);
	copy = area_of(frames, nr);
	ck_assert_int_eq(vmalloc_adopt(nd, copy), 0);
	ck_assert_uint_eq(nd->vmalloc_frames, nr);
	{
		struct vmalloc_area *again = area_of(&frames[1], 1);

		ck_assert_int_eq(vmalloc_adopt(nd, again), -EUCLEAN);
		free(again);
	}
	check_domain(nd);

	/* kmalloc objects: the same phys, the same bytes */
	for (size_t k = 0; k < NR_ADOPT; k++) {
		ck_assert_int_eq(kmalloc_adopt(nd, &objs[k]), 0);
		ck_assert(all_bytes(nd, objs[k].phys, objs[k].size, (uint8_t)(0x20 + k)));
		if (objs[k].cache >= 0)
			assert_in_slab(&b, nd, &objs[k]);
		else
			assert_not_in_slab(&b, &objs[k]);
		check_domain(nd);
	}
	for (uint32_t k = 0; k < nr; k++)
		ck_assert(all_bytes(nd, (uint64_t)frames[k] * FRAME, FRAME, (uint8_t)(0x70 + k)));
	ck_assert_uint_eq(nd->slab_pages, d->slab_pages);
	ck_assert_uint_eq(nd->large_pages, d->large_pages);
	ck_assert_uint_eq(nd->vmalloc_frames, d->vmalloc_frames);
	ck_assert_uint_eq(nd->pages.free_units, d->pages.free_units);
	ck_assert_uint_eq(nd->frames.free_units, d->frames.free_units);
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		ck_assert_uint_eq(nd->caches[i].nr_slabs, d->caches[i].nr_slabs);
		ck_assert_uint_eq(nd->caches[i].nr_active, d->caches[i].nr_active);
	}

	/* what does not fit is refused, and changes nothing */
	for (size_t k = 0; k < NR_ADOPT; k++)
		ck_assert_int_eq(kmalloc_adopt(nd, &objs[k]), -EUCLEAN); /* taken */
	bad = objs[3];				    /* kmalloc-96: 42 objects in a page */
	bad.phys = (bad.phys & ~4095ull) + 42 * 96; /* the tail, no object */
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = objs[3];
	bad.phys += 8; /* inside an object */
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = objs[3];
	bad.size = 128; /* not its class's size */
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad.cache = KM_NR_KMALLOC_CLASSES;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = objs[0]; /* kmalloc-8 slab page: other classes, a large page */
	bad.cache = 2;
	bad.size = 32;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = (struct kmalloc_obj){
		.phys = objs[0].phys & ~4095ull, .size = 4096, .order = 0, .cache = -1
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	/* the 4 MiB block: a page inside it, its second frame */
	bad = (struct kmalloc_obj){
		.phys = objs[NR_ADOPT - 1].phys + 3 * 4096, .size = 4096, .order = 0, .cache = -1
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = (struct kmalloc_obj){ .phys = objs[NR_ADOPT - 1].phys + FRAME,
				    .size = FRAME,
				    .order = KM_FRAME_ORDER,
				    .cache = -1 };
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = (struct kmalloc_obj){
		.phys = objs[NR_ADOPT - 1].phys + FRAME, .size = 8, .order = 0, .cache = 0
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	/* a vmalloc frame */
	bad = (struct kmalloc_obj){
		.phys = (uint64_t)frames[0] * FRAME, .size = 8192, .order = 1, .cache = -1
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	/* not the domain's memory, not the pool's */
	bad = (struct kmalloc_obj){
		.phys = (uint64_t)free_frame * FRAME, .size = 8, .order = 0, .cache = 0
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad = (struct kmalloc_obj){
		.phys = (uint64_t)free_frame * FRAME, .size = 4096, .order = 0, .cache = -1
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad.phys = POOL_SIZE;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad.phys = UINT64_MAX & ~4095ull;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	/* layouts kmalloc never makes, over pages that are free: misaligned
	 * for the order, the size of another order, an order past
	 * MAX_PAGE_ORDER */
	free_pfn = free_block_at_least(nd, 1);
	bad = (struct kmalloc_obj){ .phys = ((uint64_t)free_pfn + 1) << KM_PAGE_SHIFT,
				    .size = 8192,
				    .order = 1,
				    .cache = -1 };
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad.phys = (uint64_t)free_pfn << KM_PAGE_SHIFT;
	bad.size = 4096;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	bad.size = 16384;
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	/* a slab object there is fine (its order is not looked at) */
	bad = (struct kmalloc_obj){
		.phys = (uint64_t)free_pfn << KM_PAGE_SHIFT, .size = 96, .order = 1, .cache = 4
	};
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), 0);
	kmalloc_free(nd, &bad);
	ck_assert_uint_eq(kmem_cache_shrink(&nd->caches[4]), 1);
	bad = (struct kmalloc_obj){ .phys = 0,
				    .size = 4096ull << (KM_MAX_ORDER + 1),
				    .order = KM_MAX_ORDER + 1,
				    .cache = -1 };
	ck_assert_int_eq(kmalloc_adopt(nd, &bad), -EUCLEAN);
	ck_assert_uint_eq(nd->slab_pages, d->slab_pages);
	ck_assert_uint_eq(nd->large_pages, d->large_pages);
	ck_assert_uint_eq(nd->pages.free_units, d->pages.free_units);
	ck_assert_uint_eq(nd->frames.free_units, d->frames.free_units);
	check_domain(nd);

	/* new objects go around those taken back */
	for (size_t k = 0; k < 64; k++) {
		size_t size = k % 8 == 7 ? 20000 : 1 + k * 97;

		ck_assert_int_eq(kmalloc_alloc(nd, size, KM_GFP_KERNEL, &more[k]), 0);
		for (size_t j = 0; j < NR_ADOPT; j++)
			ck_assert(more[k].phys + more[k].size <= objs[j].phys ||
				  objs[j].phys + objs[j].size <= more[k].phys);
		for (uint32_t j = 0; j < nr; j++)
			ck_assert(more[k].phys + more[k].size <= (uint64_t)frames[j] * FRAME ||
				  (uint64_t)(frames[j] + 1) * FRAME <= more[k].phys);
	}
	check_domain(nd);

	/* everything back in the successor; then the predecessor lets go */
	for (size_t k = 0; k < 64; k++)
		kmalloc_free(nd, &more[k]);
	for (size_t k = 0; k < NR_ADOPT; k++)
		kmalloc_free(nd, &objs[k]);
	vmalloc_free(nd, copy);
	domain_shrink(nd);
	ck_assert_uint_eq(nd->slab_pages + nd->large_pages + nd->vmalloc_frames, 0);
	ck_assert_uint_eq(nd->frames.free_units, nd->nr_frames);
	ck_assert_uint_eq(nd->pages.free_units, 0);
	check_domain(nd);
	domain_put(nd);
	ck_assert(!mm_trim(&b, 0)); /* it goes: frames back, then itself */
	ck_assert_uint_eq(frame_nr_free(&b.frames), POOL_FRAMES);
	mm_fini(&b);

	for (size_t k = 0; k < NR_ADOPT; k++)
		kmalloc_free(d, &objs[k]);
	vmalloc_free(d, area);
	check_domain(d);
	domain_put(d);
	mm_fini(&a);
}
END_TEST

/* ---- quarantine, sealed memfds --------------------------------------- */

/* Every frame is in exactly one state: free (in the free buddy, owner
 * NONE), owned by a domain, or quarantined. */
static void check_frame_states(const struct mm *mm)
{
	uint32_t none = 0, quarantined = 0, owned = 0;

	for (uint32_t f = 0; f < mm->pool.nr_frames; f++) {
		uint32_t o = mm->frames.owner[f];

		if (o == FRAME_OWNER_NONE)
			none++;
		else if (o == FRAME_OWNER_QUARANTINE)
			quarantined++;
		else
			owned++;
	}
	ck_assert_uint_eq(frame_nr_free(&mm->frames), none);
	ck_assert_uint_eq(mm->frames.nr_quarantined, quarantined);
	ck_assert_uint_eq(frame_nr_free(&mm->frames) + owned + mm->frames.nr_quarantined,
			  mm->pool.nr_frames);
	ck_assert_int_eq(buddy_check(&mm->frames.free), 0);
}

/* A memfd of @size as a previous daemon (without F_SEAL_SEAL) or a client
 * could have made it, with @seals. */
static int memfd_with_seals(bool hugetlb, uint64_t size, int seals)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd;

	if (hugetlb)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	fd = memfd_create("kmtest-memfd", flags);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (seals)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* A domain whose memfd refuses hole punches (a client sealed it with
 * F_SEAL_FUTURE_WRITE: possible on a memfd without F_SEAL_SEAL, as an older
 * daemon made them) gets no new frames, and its frames go back without the
 * pool's counts going wrong; frames the reserve cannot back are quarantined
 * until it can. */
START_TEST(test_quarantine)
{
	uint32_t f, f2, g, h, free_before;
	struct mm mm;
	struct domain *d, *ok;
	char path[64];
	int fd, ro, real;

	mm_setup(&mm, 0, POOL_SIZE, 0);
	ck_assert_int_eq(domain_get(&mm, 1000, &ok), 0);
	fd = memfd_with_seals(false, POOL_SIZE, F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(domain_adopt(&mm, 7, 1001, fd, &d), 0);
	ck_assert_uint_eq(d->refs, 0);
	d->refs = 1; /* as a connection coming with it would */
	ck_assert_int_eq(domain_adopt(&mm, 7, 1002, fd, &d), -EINVAL); /* id taken */
	ck_assert_int_eq(domain_adopt(&mm, 8, 1001, fd, &d), -EINVAL); /* uid taken */
	d = TAILQ_FIRST(&mm.domains);
	ck_assert_uint_eq(d->id, 7);

	/* frames while holes can still be punched */
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &f), 0);
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &f2), 0);
	d->vmalloc_frames += 2; /* held outside the page buddy, as vmalloc's */
	fill(d, (uint64_t)f * FRAME, FRAME, 0x3c);
	fill(d, (uint64_t)f2 * FRAME, FRAME, 0x3d);
	check_domain(d);
	check_frame_states(&mm);

	/* a client seals the memfd; the daemon's mapping keeps working */
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	ck_assert_int_eq(pool_frames_punch(&mm.pool, fd, f, 1), -EPERM);
	ck_assert(all_bytes(d, (uint64_t)f * FRAME, FRAME, 0x3c));

	/* a frame given back whose punch fails: the memfd keeps the page, the
	 * reserve backs the frame again, it is free */
	d->vmalloc_frames--;
	d->nr_frames--;
	frame_put(&mm.frames, fd, f2, 0);
	ck_assert_uint_eq(mm.frames.owner[f2], FRAME_OWNER_NONE);
	ck_assert_uint_eq(mm.frames.nr_quarantined, 0);
	ck_assert_int_eq(memfd_bytes(fd), 2 * FRAME);
	check_domain(d);
	check_frame_states(&mm);

	/* no new frame for it: it could not be promised a zeroed one */
	free_before = (uint32_t)frame_nr_free(&mm.frames);
	ck_assert_int_eq(frame_get(&mm.frames, d->id, fd, 0, KM_GFP_KERNEL, &g), -ENOMEM);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_before);
	check_frame_states(&mm);
	ck_assert_int_eq(frame_get(&mm.frames, d->id, fd, 2, KM_GFP_KERNEL, &g), -ENOMEM);
	check_frame_states(&mm);
	ck_assert_int_eq(domain_alloc_frames(d, 0, KM_GFP_KERNEL, &g), -ENOMEM);
	ck_assert_int_eq(domain_alloc_pages(d, 0, KM_GFP_KERNEL, &g), -ENOMEM);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_before);
	ck_assert_uint_eq(owned_by(&mm, d->id), 1);
	check_domain(d);
	check_frame_states(&mm);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), (int64_t)free_before * FRAME);
	/* other domains are served as before */
	ck_assert_int_eq(domain_alloc_frames(ok, 0, KM_GFP_KERNEL, &g), 0);
	ok->vmalloc_frames++;
	ck_assert_int_eq(domain_alloc_frames(ok, 0, KM_GFP_KERNEL, &h), 0);
	ok->vmalloc_frames++;
	check_frame_states(&mm);

	/* the reserve cannot back frames for a while (here: read-only; on a
	 * host: no hugepage to be had) */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mm.pool.reserve_fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	real = mm.pool.reserve_fd;
	mm.pool.reserve_fd = ro;

	/* the sealed domain's frame goes back: its memfd keeps the page, the
	 * reserve cannot take it: quarantined, and counted */
	d->vmalloc_frames--;
	d->nr_frames--;
	frame_put(&mm.frames, fd, f, 0);
	ck_assert_uint_eq(mm.frames.owner[f], FRAME_OWNER_QUARANTINE);
	ck_assert_uint_eq(mm.frames.nr_quarantined, 1);
	ck_assert_int_eq(memfd_bytes(fd), 2 * FRAME);
	check_domain(d);
	check_frame_states(&mm);
	/* a frame of a domain that punches fine: quarantined too, the reserve is
	 * what is missing */
	ok->vmalloc_frames--;
	ok->nr_frames--;
	frame_put(&mm.frames, ok->memfd, g, 0);
	ck_assert_uint_eq(mm.frames.owner[g], FRAME_OWNER_QUARANTINE);
	ck_assert_uint_eq(mm.frames.nr_quarantined, 2);
	ck_assert_int_eq(memfd_bytes(ok->memfd), FRAME); /* h only */
	check_frame_states(&mm);
	/* a frame released as a lost domain's are (frame_release()) */
	ok->vmalloc_frames--;
	ok->nr_frames--;
	frame_release(&mm.frames, ok->memfd, h, 1);
	ck_assert_uint_eq(mm.frames.nr_quarantined, 3);
	ck_assert_int_eq(memfd_bytes(ok->memfd), 0);
	check_frame_states(&mm);
	/* quarantined frames are nobody's: no domain can be given them */
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_before - 2);
	ck_assert_uint_eq(frame_quarantine_retry(&mm.frames), 0); /* not yet */
	ck_assert_uint_eq(mm.frames.nr_quarantined, 3);
	check_frame_states(&mm);

	/* the reserve can back them again: the next retry frees them */
	mm.pool.reserve_fd = real;
	close(ro);
	ck_assert_uint_eq(frame_quarantine_retry(&mm.frames), 3);
	ck_assert_uint_eq(mm.frames.nr_quarantined, 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	ck_assert_int_eq(memfd_bytes(mm.pool.reserve_fd), POOL_SIZE);
	ck_assert_uint_eq(frame_quarantine_retry(&mm.frames), 0);
	check_frame_states(&mm);
	ck_assert_int_eq(domain_alloc_frames(ok, 0, KM_GFP_KERNEL, &g), 0);
	ok->vmalloc_frames++;
	check_domain(ok);
	check_domain(d);
	domain_put(d); /* closes fd */
	mm_fini(&mm);
}
END_TEST

START_TEST(test_pool_memfd_check)
{
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	bool huge = _i == 1;
	struct pool pool;
	int fd, p[2];

	SKIP_UNLESS_BACKING();
	ck_assert_int_eq(pool_init(&pool, 4 * FRAME, backing_of(_i)), 0);

	/* an older daemon's memfd, without F_SEAL_SEAL: usable, sealed now */
	fd = memfd_with_seals(huge, pool.size, F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & want, want);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), 0); /* again: as is */
	close(fd);
	/* no seal at all: every missing one added */
	fd = memfd_with_seals(huge, pool.size, 0);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & want, want);
	close(fd);
	/* what pool_memfd_create() makes passes as is */
	ck_assert_int_eq(pool_memfd_create(&pool, "kmtest", &fd), 0);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), 0);
	close(fd);

	/* write seals: holes could never be punched */
	fd = memfd_with_seals(huge, pool.size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), -EPERM);
	close(fd);
	fd = memfd_with_seals(huge, pool.size, F_SEAL_FUTURE_WRITE);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), -EPERM);
	close(fd);
	/* sealed shut without the size seals: they cannot be added */
	fd = memfd_with_seals(huge, pool.size, F_SEAL_SEAL);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), -EPERM);
	close(fd);

	/* the wrong size, or not a memfd at all */
	fd = memfd_with_seals(huge, pool.size - FRAME, 0);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), -EINVAL);
	close(fd);
	fd = memfd_with_seals(huge, pool.size + FRAME, 0);
	ck_assert_int_eq(pool_memfd_check(&pool, fd), -EINVAL);
	close(fd);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pool_memfd_check(&pool, p[0]), -EINVAL);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(pool_memfd_check(&pool, -1), -EBADF);
	pool_fini(&pool);
}
END_TEST

/* ---- zeroing through the daemon's mapping ------------------------------ */

START_TEST(test_domain_zero)
{
	struct kmalloc_obj a, b, big;
	struct mm mm;
	struct domain *d;

	ck_assert_int_eq(memguard_init(), 0);
	mm_setup(&mm, 0, POOL_SIZE, UINT64_MAX);
	ck_assert_int_eq(domain_get(&mm, 1000, &d), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 4096, KM_GFP_KERNEL, &a), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 4096, KM_GFP_KERNEL, &b), 0);
	ck_assert_int_eq(kmalloc_alloc(d, 2 * MiB, KM_GFP_KERNEL, &big), 0);
	fill(d, a.phys, a.size, 0xab);
	fill(d, b.phys, b.size, 0xcd);
	fill(d, big.phys, big.size, 0xef);

	ck_assert_int_eq(domain_zero(d, a.phys, a.size), 0);
	ck_assert(all_bytes(d, a.phys, a.size, 0));
	ck_assert(all_bytes(d, b.phys, b.size, 0xcd));
	ck_assert_int_eq(domain_zero(d, big.phys + 100, 1000), 0);
	ck_assert(all_bytes(d, big.phys + 100, 1000, 0));
	ck_assert(all_bytes(d, big.phys, 100, 0xef));
	ck_assert(all_bytes(d, big.phys + 1100, big.size - 1100, 0xef));
	ck_assert_int_eq(domain_zero(d, b.phys, 0), 0);
	ck_assert(all_bytes(d, b.phys, b.size, 0xcd));

	/* a client punched a page out: on shmem it comes back as a new page */
	fill(d, a.phys, a.size, 0x77);
	ck_assert_int_eq(fallocate(d->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   (off_t)a.phys, (off_t)a.size),
			 0);
	ck_assert_int_eq(domain_zero(d, a.phys, a.size), 0);
	ck_assert(all_bytes(d, a.phys, a.size, 0));
	ck_assert(all_bytes(d, b.phys, b.size, 0xcd));
	ck_assert_int_le(memfd_bytes(d->memfd), (int64_t)d->nr_frames * FRAME);
	check_domain(d);
	kmalloc_free(d, &a);
	kmalloc_free(d, &b);
	kmalloc_free(d, &big);
	mm_fini(&mm);
}
END_TEST

/* A fault inside domain_zero() (here a client shrank a memfd that lacks
 * F_SEAL_SHRINK, so the daemon's mapping of a frame lies past its end;
 * on a host, a hugetlb page that cannot be refaulted) is -EFAULT, not a
 * crash, and the domain is repaired: its frames are backed again. */
START_TEST(test_domain_zero_fault)
{
	struct kmalloc_obj a;
	struct mm mm;
	struct domain *d;
	struct stat st;
	int fd;

	ck_assert_int_eq(memguard_init(), 0);
	mm_setup(&mm, 0, POOL_SIZE, UINT64_MAX);
	fd = memfd_with_seals(false, POOL_SIZE, 0);
	ck_assert_int_eq(domain_adopt(&mm, 3, 1000, fd, &d), 0);
	d->refs = 1;
	ck_assert_int_eq(kmalloc_alloc(d, 4096, KM_GFP_KERNEL, &a), 0);
	fill(d, a.phys, a.size, 0x99);
	ck_assert_int_eq(ftruncate(fd, (off_t)(a.phys & ~(FRAME - 1))), 0);

	ck_assert_int_eq(domain_zero(d, a.phys, a.size), -EFAULT);
	/* repaired: the owned frame is backed (the file grew back over it) */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_ge(st.st_size, (off_t)((a.phys & ~(FRAME - 1)) + FRAME));
	ck_assert_int_eq(domain_zero(d, a.phys, a.size), 0);
	ck_assert(all_bytes(d, a.phys, a.size, 0));
	check_domain(d);
	ck_assert_int_eq(ftruncate(fd, POOL_SIZE), 0);
	kmalloc_free(d, &a);
	domain_put(d);
	ck_assert(!mm_trim(&mm, 0));
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	mm_fini(&mm);
}
END_TEST

/* ---- memguard ------------------------------------------------------------ */

START_TEST(test_memguard_buffer)
{
	static uint8_t buf[3 * 4096];

	ck_assert_int_eq(memguard_init(), 0);
	memset(buf, 1, sizeof(buf));
	ck_assert_int_eq(memguard_memset(buf + 100, 0x5a, 5000), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], i >= 100 && i < 5100 ? 0x5a : 1);
	ck_assert_int_eq(memguard_memset(buf, 0, 0), 0);
	ck_assert_uint_eq(buf[0], 1);
	ck_assert_int_eq(memguard_memset(buf, 0, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	/* installing twice is harmless */
	ck_assert_int_eq(memguard_init(), 0);
	ck_assert_int_eq(memguard_memset(buf + 1, 2, 1), 0);
	ck_assert_uint_eq(buf[1], 2);
}
END_TEST

/* A page past the end of a file faults with SIGBUS, as a hugetlb page that
 * cannot be refaulted does: inside a guarded memset that is -EFAULT, and
 * outside one it is as fatal as without the handler. In a child: it dies. */
START_TEST(test_memguard_sigbus)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		uint8_t *map;
		int fd;

		setrlimit(RLIMIT_CORE, &no_core);
		if (memguard_init() < 0)
			_exit(10);
		fd = memfd_create("kmtest-short", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 4096) < 0)
			_exit(11);
		map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			_exit(12);
		if (memguard_memset(map, 1, 4096) != 0 || map[4095] != 1)
			_exit(13);
		if (memguard_memset(map + 4096, 2, 4096) != -EFAULT)
			_exit(14);
		/* straddling: the first page is written, then the fault */
		if (memguard_memset(map + 100, 3, 8000) != -EFAULT || map[100] != 3)
			_exit(15);
		/* the guard is gone again: a good memset still works... */
		if (memguard_memset(map, 4, 4096) != 0 || map[0] != 4)
			_exit(16);
		/* ...and a fault outside any guarded range kills */
		*(volatile uint8_t *)(map + 4096 + 17) = 5;
		_exit(17);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		      "child status %#x (exit %d)", status,
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

static long read_hugepage_counter(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* A hole of a hugetlb memfd while the host has no free hugepage of its
 * size: the fault is a SIGBUS, which a guarded memset turns into -EFAULT.
 * With 2 MiB pages that needs free_hugepages at 0, which cannot be arranged
 * reliably on a host other tests share; 1 GiB pages are set up nowhere
 * here (0 pages, no overcommit), so their fault fails the same way
 * (hugetlb_no_page() -> VM_FAULT_SIGBUS) without taking anything from
 * anyone. Skipped where 1 GiB pages exist or cannot be made. */
START_TEST(test_memguard_hugetlb_hole)
{
	const char *dir = "/sys/kernel/mm/hugepages/hugepages-1048576kB/";
	char path[128];
	uint64_t size = 1ull << 30;
	uint8_t *map;
	int fd;

	snprintf(path, sizeof(path), "%sfree_hugepages", dir);
	if (read_hugepage_counter(path) != 0) {
		printf("%s: skipped: 1 GiB hugepages are free or unsupported here\n", __func__);
		return;
	}
	snprintf(path, sizeof(path), "%snr_overcommit_hugepages", dir);
	if (read_hugepage_counter(path) != 0) {
		printf("%s: skipped: 1 GiB hugepages may be overcommitted\n", __func__);
		return;
	}
	fd = memfd_create("kmtest-1g", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_1GB);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		printf("%s: skipped: no 1 GiB hugetlb memfd: %s\n", __func__, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(memguard_init(), 0);
	ck_assert_int_eq(memguard_memset(map + 12345, 0, 4096), -EFAULT);
	ck_assert_int_eq(memguard_memset(map, 0xff, 1), -EFAULT);
	/* punching the hole again changes nothing: still nothing to refault */
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size),
			 0);
	ck_assert_int_eq(memguard_memset(map + size - 1, 0, 1), -EFAULT);
	ck_assert_int_eq(memfd_bytes(fd), 0);
	munmap(map, size);
	close(fd);
}
END_TEST

/* ---- suite ----------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *mm_suite(void)
{
	Suite *s = suite_create("mm");
	TCase *tc;

	tc = tcase(s, "pool");
	tcase_add_loop_test(tc, test_pool_init, 0, 2);
	tcase_add_test(tc, test_pool_bad_size);
	tc = tcase(s, "pool-fallback");
	tcase_add_test(tc, test_pool_auto);
	tcase_add_test(tc, test_pool_hugetlb_fails);
	tc = tcase(s, "frames");
	tcase_add_loop_test(tc, test_frame_move, 0, 2);
	tc = tcase(s, "watermarks");
	tcase_add_loop_test(tc, test_watermarks, 0, 2 * NR_WMARK_CASES);
	tcase_add_test(tc, test_watermark_rounding);
	tcase_add_test(tc, test_reserve_default);
	tc = tcase(s, "domain-pages");
	tcase_add_loop_test(tc, test_domain_pages, 0, 2);
	tc = tcase(s, "kmalloc-classes");
	tcase_add_loop_test(tc, test_kmalloc_classes, 0, 2);
	tc = tcase(s, "kmalloc-large");
	tcase_add_loop_test(tc, test_kmalloc_large, 0, 2);
	tcase_add_test(tc, test_kmalloc_limits);
	tc = tcase(s, "gfp-zero");
	tcase_add_loop_test(tc, test_kmalloc_zero, 0, 2);
	tc = tcase(s, "isolation");
	tcase_add_loop_test(tc, test_isolation, 0, 2);
	tc = tcase(s, "vmalloc");
	tcase_add_loop_test(tc, test_vmalloc, 0, 2);
	tcase_add_loop_test(tc, test_vmalloc_rollback, 0, 2);
	tc = tcase(s, "frame-runs");
	tcase_add_test(tc, test_vmalloc_runs);
	tcase_add_loop_test(tc, test_frame_run, 0, 2);
	tcase_add_loop_test(tc, test_kmalloc_4m_frames, 0, 2);
	tc = tcase(s, "reclaim");
	tcase_add_loop_test(tc, test_reclaim_moves_frames, 0, 2);
	tcase_add_loop_test(tc, test_reclaim_shrinks_slabs, 0, 2);
	tcase_add_loop_test(tc, test_balance, 0, 2);
	tc = tcase(s, "teardown");
	tcase_add_loop_test(tc, test_teardown, 0, 2);
	tcase_add_loop_test(tc, test_going_is_bounded, 0, 2);
	tc = tcase(s, "adopt");
	tcase_add_loop_test(tc, test_alloc_at, 0, 2);
	tcase_add_test(tc, test_alloc_at_refusal_keeps_free_frame);
	tcase_add_loop_test(tc, test_adopt, 0, 2);
	tc = tcase(s, "phantom");
	tcase_add_loop_test(tc, test_phantom, 0, 2);
	tc = tcase(s, "quarantine");
	tcase_add_test(tc, test_quarantine);
	tcase_add_loop_test(tc, test_pool_memfd_check, 0, 2);
	tc = tcase(s, "memguard");
	tcase_add_test(tc, test_domain_zero);
	tcase_add_test(tc, test_domain_zero_fault);
	tcase_add_test(tc, test_memguard_buffer);
	tcase_add_test(tc, test_memguard_sigbus);
	tcase_add_test(tc, test_memguard_hugetlb_hole);
	return s;
}

/* Makes HUGEPAGES_NEEDED hugepages free, raising nr_hugepages when root.
 * Returns how many pages were added (to give back), sets hugetlb_ok. */
int main(void)
{
	log_init(LOG_LEVEL_WARN);
	hugetlb_ok = test_hugepages_reserve(HUGEPAGES_NEEDED);
	if (!hugetlb_ok)
		hugetlb_why = geteuid() ? "not enough hugepages (not root?)"
					: "the kernel could not allocate enough hugepages";
	printf("hugetlb: %ld free hugepages%s\n", test_hugepages_free(),
	       hugetlb_ok ? "" : ": hugetlb cases skipped");
	fflush(stdout);
	return test_run_suite(mm_suite()) ? EXIT_FAILURE : EXIT_SUCCESS;
}
