// SPDX-License-Identifier: MIT
/*
 * domain.c - struct mm (pool, frame allocator, domains) and the trust
 * domains: one per uid, each with its memfd, its page allocator and its
 * kmalloc caches.
 *
 * A domain's page allocator is a buddy over the pfns of the frames it uses,
 * orders 0..9, so a block never crosses a frame and all domains can share
 * one link map (mm->page_map). Frames it owns that are wholly free sit in a
 * second buddy, over frame numbers (d->frames), where neighbours coalesce
 * into runs: a 4 MiB kmalloc takes an order-1 block there in O(1), and a
 * vmalloc takes the longest runs it can, so a freed area comes back as one
 * mapping. Those buddies share mm->frame_map and merge only with frames of
 * their own domain (buddy_set_owner()). Reusing kept frames is what makes a
 * warm large kmalloc cheap (no fallocate, no zeroing by the kernel);
 * mm_reclaim() and mm_balance() hand them back when another domain, or the
 * watermarks, need them.
 *
 * Invariants (domain_check()): d->nr_frames == frames whose owner[] is d->id
 * == free frames + (free pages in d->pages + slab_pages + large_pages) / 512 +
 * vmalloc_frames; a frame is in the domain's memfd iff the domain owns it
 * and it is not one of the share_frames, whose pages live in a shareable
 * grant's own memfd (share.c; mm->frame_use[] marks them FRAME_USE_SHARED)
 * (reconciled against clients touching holes: domain_reconcile()).
 *
 * The per-node part of mm/page_alloc.c (rmqueue, free_one_page, the
 * min_free_kbytes formula of init_per_zone_wmark_min()) and kswapd's
 * balance_pgdat() in mm/vmscan.c, per trust domain.
 */
#include "config.h"
#include "domain.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gfp.h"
#include "log.h"
#include "memguard.h"

#define MIN_FREE_KBYTES_MIN 128ull /* init_per_zone_wmark_min() clamps */
#define MIN_FREE_KBYTES_MAX 262144ull

static void domain_destroy(struct domain *d);
static int domain_punch_unowned(struct domain *d);
static int domain_repair(struct domain *d);

/* ---- struct mm ------------------------------------------------------- */

static uint64_t int_sqrt(uint64_t x)
{
	uint64_t r = 0, bit = 1ull << 62;

	while (bit > x)
		bit >>= 2;
	while (bit) {
		if (x >= r + bit) {
			x -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

/* The emergency reserve in frames: the kernel's min_free_kbytes =
 * int_sqrt(lowmem_kbytes * 16) clamped to [128 KiB, 256 MiB] by default,
 * else the configured bytes; whole frames, at most half the pool. */
static uint32_t mm_reserve_frames(const struct pool *pool, uint64_t reserve)
{
	uint64_t bytes, frames;

	if (reserve == UINT64_MAX) {
		bytes = int_sqrt((pool->size >> 10) * 16);
		if (bytes < MIN_FREE_KBYTES_MIN)
			bytes = MIN_FREE_KBYTES_MIN;
		if (bytes > MIN_FREE_KBYTES_MAX)
			bytes = MIN_FREE_KBYTES_MAX;
		bytes <<= 10;
	} else {
		bytes = reserve;
	}
	frames = bytes / pool->frame_size + (bytes % pool->frame_size != 0);
	if (frames > pool->nr_frames / 2)
		frames = pool->nr_frames / 2;
	return (uint32_t)frames;
}

/* The part of mm_init() and mm_adopt() after the pool is there. */
static int mm_setup(struct mm *mm, const struct mm_options *opt, const uint32_t *owner)
{
	uint32_t min_frames;
	int err;

	min_frames = mm_reserve_frames(&mm->pool, opt->reserve);
	err = frame_alloc_adopt(&mm->frames, &mm->pool, min_frames, owner);
	if (err)
		goto err_pool;
	err = buddy_map_init(&mm->page_map, mm->pool.nr_pages);
	if (err)
		goto err_frames;
	err = buddy_map_init(&mm->frame_map, mm->pool.nr_frames);
	if (err)
		goto err_page_map;
	err = slab_map_init(&mm->slab_map, mm->pool.nr_pages);
	if (err)
		goto err_frame_map;
	mm->frame_use = calloc(mm->pool.nr_frames, sizeof(*mm->frame_use));
	if (!mm->frame_use) {
		err = -ENOMEM;
		goto err_slab_map;
	}
	TAILQ_INIT(&mm->domains);
	mm->next_domain_id = 1;
	log_info("emergency reserve: %" PRIu32 " frames (%" PRIu64 " MiB), watermarks "
		 "min %" PRIu32 " low %" PRIu32 " high %" PRIu32 " frames",
		 min_frames, ((uint64_t)min_frames * mm->pool.frame_size) >> 20,
		 mm->frames.wmark_min, mm->frames.wmark_low, mm->frames.wmark_high);
	return 0;

err_slab_map:
	slab_map_fini(&mm->slab_map);
err_frame_map:
	buddy_map_fini(&mm->frame_map);
err_page_map:
	buddy_map_fini(&mm->page_map);
err_frames:
	frame_alloc_fini(&mm->frames);
err_pool:
	pool_fini(&mm->pool);
	return err;
}

int mm_init(struct mm *mm, const struct mm_options *opt)
{
	int err;

	memset(mm, 0, sizeof(*mm));
	err = pool_init(&mm->pool, opt->pool_size, opt->backing);
	if (err)
		return err;
	return mm_setup(mm, opt, NULL);
}

int mm_adopt(struct mm *mm, const struct mm_options *opt, int reserve_fd, uint64_t pool_size,
	     bool hugetlb, const uint32_t *owner)
{
	int err;

	memset(mm, 0, sizeof(*mm));
	err = pool_adopt(&mm->pool, reserve_fd, pool_size, hugetlb);
	if (err)
		return err;
	return mm_setup(mm, opt, owner);
}

void mm_fini(struct mm *mm)
{
	struct domain *d;

	while ((d = TAILQ_FIRST(&mm->domains)))
		domain_destroy(d);
	free(mm->frame_use);
	mm->frame_use = NULL;
	slab_map_fini(&mm->slab_map);
	buddy_map_fini(&mm->frame_map);
	buddy_map_fini(&mm->page_map);
	frame_alloc_fini(&mm->frames);
	pool_fini(&mm->pool);
}

/* Takes the largest block of @d's free frames out, or returns false. */
static bool domain_take_free_frames(struct domain *d, uint32_t *frame, unsigned int *order)
{
	unsigned int o = d->frames.max_order + 1;

	while (o-- > 0) {
		if (d->frames.head[o] != BUDDY_NONE) {
			*frame = d->frames.head[o];
			*order = o;
			buddy_take(&d->frames, *frame, o);
			return true;
		}
	}
	return false;
}

/* Hands @d's free frames back to the frame allocator, largest blocks first,
 * stopping once the allocator has @until free frames: no more than it
 * lacks (a block larger than that is split, the rest stays warm in the
 * domain). Returns frames given. */
static uint64_t domain_release_free_frames(struct domain *d, uint64_t until)
{
	struct frame_alloc *fa = &d->mm->frames;
	unsigned int order;
	uint64_t n = 0;
	uint32_t frame;

	if (until == UINT64_MAX) {
		while (domain_take_free_frames(d, &frame, &order)) {
			frame_put(fa, d->memfd, frame, order);
			d->nr_frames -= 1u << order;
			n += 1u << order;
		}
		return n;
	}
	while (frame_nr_free(fa) < until) {
		uint64_t need = until - frame_nr_free(fa);

		order = d->frames.max_order;
		while (order && (1ull << order) > need)
			order--;
		/* The largest block that is not too many, split from a larger
		 * one if need be; smaller ones when there is none. */
		while (buddy_alloc(&d->frames, order, &frame))
			if (!order--)
				return n;
		frame_put(fa, d->memfd, frame, order);
		d->nr_frames -= 1u << order;
		n += 1u << order;
	}
	return n;
}

uint64_t domain_shrink(struct domain *d)
{
	uint64_t pages = 0;
	int i;

	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		pages += kmem_cache_shrink(&d->caches[i]);
	return pages;
}

uint64_t mm_reclaim(struct mm *mm, bool shrink_slabs)
{
	struct domain *d;
	uint64_t n = 0;

	TAILQ_FOREACH(d, &mm->domains, link) {
		if (shrink_slabs)
			domain_shrink(d);
		n += domain_release_free_frames(d, UINT64_MAX);
	}
	if (n)
		log_debug("reclaim: %" PRIu64 " frames given back, %" PRIu64 " free", n,
			  frame_nr_free(&mm->frames));
	return n;
}

uint64_t mm_balance(struct mm *mm)
{
	struct frame_alloc *fa = &mm->frames;
	struct domain *d;
	uint64_t n = 0;

	if (frame_nr_free(fa) >= fa->wmark_low)
		return 0;
	TAILQ_FOREACH(d, &mm->domains, link) {
		if (frame_nr_free(fa) >= fa->wmark_high)
			break;
		n += domain_release_free_frames(d, fa->wmark_high);
	}
	if (n)
		log_debug("balance: %" PRIu64 " frames given back, %" PRIu64 " free", n,
			  frame_nr_free(fa));
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Gives one of @d's whole free frames back to the frame allocator. False
 * when it has none. */
static bool domain_give_back_frame(struct domain *d)
{
	uint32_t frame;

	if (buddy_alloc(&d->frames, 0, &frame))
		return false;
	frame_put(&d->mm->frames, d->memfd, frame, 0);
	d->nr_frames--;
	return true;
}

/* A step of an unused domain's going: its empty slabs and whole free
 * frames back, one frame at a time, then itself. True when it is gone. */
static bool domain_going(struct domain *d, uint64_t start, uint64_t budget_ns)
{
	domain_shrink(d);
	while (domain_give_back_frame(d))
		if (budget_ns && mono_ns() - start > budget_ns)
			return false;
	/* Nothing holds its memory any more: what is left (nothing, unless
	 * pages are still in use, which would be a bug) goes at once. */
	domain_destroy(d);
	return true;
}

bool mm_trim(struct mm *mm, uint64_t budget_ns)
{
	struct frame_alloc *fa = &mm->frames;
	uint64_t start = mono_ns();
	struct domain *d, *next;

	for (d = TAILQ_FIRST(&mm->domains); d; d = next) {
		next = TAILQ_NEXT(d, link);
		if (d->refs == 0 && !domain_going(d, start, budget_ns))
			return true;
	}
	if (frame_nr_free(fa) < fa->wmark_low)
		mm->balancing = true;
	while (mm->balancing && frame_nr_free(fa) < fa->wmark_high) {
		bool gave = false;

		TAILQ_FOREACH(d, &mm->domains, link)
			if ((gave = domain_give_back_frame(d)))
				break;
		if (!gave)
			break; /* nothing free to give: the frames are in use */
		if (budget_ns && mono_ns() - start > budget_ns)
			return true;
	}
	mm->balancing = false;
	return false;
}

/* ---- domains: life cycle --------------------------------------------- */

static int slab_alloc_pages(void *ctx, unsigned int order, unsigned int gfp, uint32_t *pfn)
{
	struct domain *d = ctx;
	int err;

	err = domain_alloc_pages(d, order, gfp, pfn);
	if (!err)
		d->slab_pages += 1ull << order;
	return err;
}

static int slab_alloc_pages_at(void *ctx, uint32_t pfn, unsigned int order)
{
	struct domain *d = ctx;
	int err;

	err = domain_alloc_pages_at(d, pfn, order);
	if (!err)
		d->slab_pages += 1ull << order;
	return err;
}

static void slab_free_pages(void *ctx, uint32_t pfn, unsigned int order)
{
	struct domain *d = ctx;

	assert(d->slab_pages >= 1ull << order);
	d->slab_pages -= 1ull << order;
	domain_free_pages(d, pfn, order);
}

static bool domain_id_used(const struct mm *mm, uint32_t id)
{
	const struct domain *d;

	TAILQ_FOREACH(d, &mm->domains, link)
		if (d->id == id)
			return true;
	return false;
}

static uint32_t mm_new_domain_id(struct mm *mm)
{
	uint32_t id;

	/* ids are never 0 (FRAME_OWNER_NONE) nor FRAME_OWNER_QUARANTINE; skip
	 * live ones after a wrap */
	do {
		id = mm->next_domain_id++;
		if (mm->next_domain_id == FRAME_OWNER_QUARANTINE)
			mm->next_domain_id = 1;
	} while (id == FRAME_OWNER_NONE || id == FRAME_OWNER_QUARANTINE || domain_id_used(mm, id));
	return id;
}

/* A domain around @memfd, which it owns from now on (on failure the caller
 * still does). */
static int domain_setup(struct mm *mm, uid_t uid, uint32_t id, int memfd, struct domain **out)
{
	struct slab_page_ops ops = { slab_alloc_pages, slab_alloc_pages_at, slab_free_pages, NULL };
	struct domain *d;
	int i, err;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->mm = mm;
	d->uid = uid;
	d->memfd = memfd;
	/* NORESERVE: a hugetlb mapping of a sparse file would otherwise
	 * reserve a hugepage for every hole. Never populated here: touching
	 * a hole would allocate a phantom frame in the memfd. */
	d->map = mmap(NULL, mm->pool.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		      memfd, 0);
	if (d->map == MAP_FAILED) {
		err = -errno;
		log_err("uid %u: cannot map the domain memfd: %s", (unsigned int)uid,
			strerror(-err));
		free(d);
		return err;
	}
	/* Best effort: THP for shmem may be disabled on the host. */
	if (!mm->pool.hugetlb && madvise(d->map, mm->pool.size, MADV_HUGEPAGE) < 0)
		log_debug("uid %u: MADV_HUGEPAGE: %s", (unsigned int)uid, strerror(errno));

	d->id = id;
	buddy_init(&d->pages, &mm->page_map, KM_FRAME_ORDER);
	buddy_init(&d->frames, &mm->frame_map, mm->frames.free.max_order);
	buddy_set_owner(&d->frames, mm->frames.owner, id);
	ops.ctx = d;
	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		kmem_cache_init(&d->caches[i], &kmalloc_classes[i], &ops, &mm->slab_map);
	d->refs = 1;
	TAILQ_INSERT_HEAD(&mm->domains, d, link);
	mm->nr_domains++;
	log_debug("domain %" PRIu32 ": created for uid %u", d->id, (unsigned int)uid);
	*out = d;
	return 0;
}

static int domain_new(struct mm *mm, uid_t uid, struct domain **out)
{
	char name[32];
	int fd, err;

	snprintf(name, sizeof(name), "kmalloc-uid%u", (unsigned int)uid);
	err = pool_memfd_create(&mm->pool, name, &fd);
	if (err) {
		log_err("uid %u: cannot create the domain memfd: %s", (unsigned int)uid,
			strerror(-err));
		return err;
	}
	err = domain_setup(mm, uid, mm_new_domain_id(mm), fd, out);
	if (err)
		close(fd);
	return err;
}

int domain_adopt(struct mm *mm, uint32_t id, uid_t uid, int memfd, struct domain **out)
{
	const uint32_t *owner = mm->frames.owner;
	struct domain *d;
	uint32_t f;
	int err;

	if (id == FRAME_OWNER_NONE || id == FRAME_OWNER_QUARANTINE || domain_id_used(mm, id))
		return -EINVAL;
	TAILQ_FOREACH(d, &mm->domains, link)
		if (d->uid == uid)
			return -EINVAL;
	err = domain_setup(mm, uid, id, memfd, &d);
	if (err)
		return err;
	d->refs = 0; /* the connections that come with it count themselves */
	if (mm->next_domain_id <= id)
		mm->next_domain_id = id + 1 == FRAME_OWNER_QUARANTINE ? 1 : id + 1;
	/* Every frame it owns, free: the grants take their blocks back. */
	for (f = 0; f < mm->pool.nr_frames; f++) {
		if (owner[f] != id)
			continue;
		buddy_free(&d->frames, f, 0);
		d->nr_frames++;
	}
	*out = d;
	return 0;
}

int domain_get(struct mm *mm, uid_t uid, struct domain **out)
{
	struct domain *d;

	TAILQ_FOREACH(d, &mm->domains, link) {
		if (d->uid == uid) {
			/* One that was going (mm_trim()) stays after all. */
			d->refs++;
			*out = d;
			return 0;
		}
	}
	return domain_new(mm, uid, out);
}

void domain_ref(struct domain *d)
{
	assert(d->refs > 0);
	d->refs++;
}

void domain_put(struct domain *d)
{
	if (!d)
		return;
	assert(d->refs > 0);
	if (--d->refs == 0)
		log_debug("domain %" PRIu32 ": unused, going (uid %u)", d->id,
			  (unsigned int)d->uid);
}

/* Removes every free block of d->pages inside @frame from the shared page
 * map, so the frame can go to another domain. */
static void domain_take_free_blocks(struct domain *d, uint32_t frame)
{
	const struct buddy_map *map = d->pages.map;
	uint32_t pfn = frame << KM_FRAME_ORDER;
	uint32_t end = pfn + POOL_PAGES_PER_FRAME;
	unsigned int order;

	while (pfn < end) {
		order = map->order[pfn];
		/* the frame is d's, so a free head in it is on d->pages */
		if (order != BUDDY_NOT_FREE) {
			buddy_take(&d->pages, pfn, order);
			pfn += 1u << order;
		} else {
			pfn++;
		}
	}
}

/* Gives back every frame @d owns, whatever holds it (at the last reference
 * nothing does; mm_fini() may destroy a domain that still has grants). */
static void domain_destroy(struct domain *d)
{
	struct mm *mm = d->mm;
	struct frame_alloc *fa = &mm->frames;
	uint32_t f, start, end;
	unsigned int order;
	int i;

	TAILQ_REMOVE(&mm->domains, d, link);
	mm->nr_domains--;

	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		kmem_cache_destroy(&d->caches[i]);
	domain_release_free_frames(d, UINT64_MAX);

	/* What grants still hold (mm_fini() tears down with clients in). */
	for (f = 0; f < mm->pool.nr_frames; f++) {
		if (fa->owner[f] != d->id)
			continue;
		/* a run of owned frames, given back as the largest aligned
		 * blocks that fit (buddy_free_range()'s decomposition) */
		for (start = f; f < mm->pool.nr_frames && fa->owner[f] == d->id; f++) {
			domain_take_free_blocks(d, f);
			mm->frame_use[f] = FRAME_USE_PAGES;
		}
		end = f;
		while (start < end) {
			order = start ? (unsigned int)__builtin_ctz(start) : fa->free.max_order;
			if (order > fa->free.max_order)
				order = fa->free.max_order;
			while ((1u << order) > end - start)
				order--;
			frame_put(fa, d->memfd, start, order);
			d->nr_frames -= 1u << order;
			start += 1u << order;
		}
	}
	assert(d->nr_frames == 0 && d->pages.free_units == 0);
	log_debug("domain %" PRIu32 ": destroyed (uid %u)", d->id, (unsigned int)d->uid);
	munmap(d->map, mm->pool.size);
	close(d->memfd);
	free(d);
}

/* ---- domains: pages and frames --------------------------------------- */

/* Gives @d's kept free frames [frame, frame + nr) new zeroed pages: punched
 * and allocated again, so the kernel clears them (no daemon store into
 * memory a client could have punched, memguard.h). On failure (a client of
 * the domain holds the host's last hugepages as phantoms) the frames go back
 * to the frame allocator and -ENOMEM is returned. */
static int domain_refresh_frames(struct domain *d, uint32_t frame, uint32_t nr)
{
	struct mm *mm = d->mm;
	uint32_t i;
	int err;

	err = pool_frames_punch(&mm->pool, d->memfd, frame, nr);
	if (!err)
		err = pool_frames_populate(&mm->pool, d->memfd, frame, nr);
	if (err == -ENOSPC || err == -ENOMEM) {
		domain_punch_unowned(d);
		err = pool_frames_populate(&mm->pool, d->memfd, frame, nr);
	}
	if (!err)
		return 0;
	log_warn("domain %" PRIu32 ": cannot clear frames %" PRIu32 "+%" PRIu32 ": %s", d->id,
		 frame, nr, strerror(-err));
	for (i = 0; i < nr; i++)
		frame_put(&mm->frames, d->memfd, frame + i, 0);
	d->nr_frames -= nr;
	return -ENOMEM;
}

/* 2^@frame_order frames: the domain's own free ones first (a coalesced
 * block of them), else new ones from the frame allocator, which the kernel
 * zeroed. No reclaim. With __GFP_ZERO, kept frames are refreshed. */
static int domain_grab_frames(struct domain *d, unsigned int frame_order, unsigned int gfp,
			      uint32_t *frame)
{
	int err;

	if (!buddy_alloc(&d->frames, frame_order, frame)) {
		if (!(gfp & KM___GFP_ZERO))
			return 0;
		return domain_refresh_frames(d, *frame, 1u << frame_order);
	}
	err = frame_get(&d->mm->frames, d->id, d->memfd, frame_order, gfp, frame);
	if (!err)
		d->nr_frames += 1u << frame_order;
	return err;
}

int domain_alloc_pages(struct domain *d, unsigned int order, unsigned int gfp, uint32_t *pfn)
{
	bool reclaimed = false;
	uint32_t frame;

	assert(order < KM_FRAME_ORDER);
	for (;;) {
		if (!buddy_alloc(&d->pages, order, pfn))
			return 0;
		/* The page buddy runs dry: one more frame for it. */
		if (!domain_grab_frames(d, 0, gfp & ~KM___GFP_ZERO, &frame)) {
			buddy_free(&d->pages, frame << KM_FRAME_ORDER, KM_FRAME_ORDER);
			continue;
		}
		if (reclaimed)
			return -ENOMEM;
		mm_reclaim(d->mm, gfp_may_reclaim(gfp));
		reclaimed = true;
	}
}

int domain_alloc_pages_at(struct domain *d, uint32_t pfn, unsigned int order)
{
	const struct mm *mm = d->mm;
	uint32_t frame = pfn >> KM_FRAME_ORDER;
	int err;

	if (order >= KM_FRAME_ORDER || pfn >= mm->pool.nr_pages || pfn & ((1u << order) - 1))
		return -EINVAL;
	if (mm->frames.owner[frame] != d->id)
		return -EEXIST;
	/* A frame still wholly free goes to the page buddy first. */
	if (!buddy_alloc_at(&d->frames, frame, 0))
		buddy_free(&d->pages, frame << KM_FRAME_ORDER, KM_FRAME_ORDER);
	err = buddy_alloc_at(&d->pages, pfn, order);
	return err == -ENOENT ? -EEXIST : err;
}

void domain_free_pages(struct domain *d, uint32_t pfn, unsigned int order)
{
	uint32_t head = pfn & ~(POOL_PAGES_PER_FRAME - 1);

	assert(order < KM_FRAME_ORDER);
	assert(d->mm->frames.owner[pfn >> KM_FRAME_ORDER] == d->id);
	buddy_free(&d->pages, pfn, order);
	/* A frame wholly free again joins the domain's free frames, where it
	 * coalesces with its neighbours (no other domain's block lies in a
	 * frame of ours, so the shared map's order says it all). */
	if (d->pages.map->order[head] == KM_FRAME_ORDER) {
		buddy_take(&d->pages, head, KM_FRAME_ORDER);
		buddy_free(&d->frames, head >> KM_FRAME_ORDER, 0);
	}
}

int domain_alloc_frames(struct domain *d, unsigned int frame_order, unsigned int gfp,
			uint32_t *frame)
{
	bool reclaimed = false;
	int err;

	for (;;) {
		err = domain_grab_frames(d, frame_order, gfp, frame);
		if (err != -ENOMEM || reclaimed)
			return err;
		mm_reclaim(d->mm, gfp_may_reclaim(gfp));
		reclaimed = true;
	}
}

int domain_alloc_frame_run(struct domain *d, uint32_t want, unsigned int gfp, uint32_t *frame,
			   uint32_t *nr)
{
	unsigned int order = 0;
	int err;

	while (order < d->frames.max_order && (2u << order) <= want)
		order++;
	/* The largest run that fits, from the domain's own frames or new ones,
	 * without reclaim; single frames with reclaim as the last resort. */
	for (;; order--) {
		if (!domain_grab_frames(d, order, gfp, frame)) {
			*nr = 1u << order;
			return 0;
		}
		if (!order)
			break;
	}
	err = domain_alloc_frames(d, 0, gfp, frame);
	if (!err)
		*nr = 1;
	return err;
}

void domain_free_frames(struct domain *d, uint32_t frame, unsigned int frame_order)
{
	assert(d->mm->frames.owner[frame] == d->id);
	buddy_free(&d->frames, frame, frame_order);
}

int domain_alloc_frames_at(struct domain *d, uint32_t frame, unsigned int frame_order)
{
	uint32_t nr = 1u << frame_order;
	int err;

	if (frame_order > d->frames.max_order || frame & (nr - 1) ||
	    frame >= d->mm->pool.nr_frames || nr > d->mm->pool.nr_frames - frame)
		return -EINVAL;
	err = buddy_alloc_at(&d->frames, frame, frame_order);
	return err == -ENOENT ? -EEXIST : err;
}

void domain_mark_frames(struct domain *d, uint32_t frame, uint32_t nr, unsigned int use)
{
	for (uint32_t i = 0; i < nr; i++) {
		assert(d->mm->frames.owner[frame + i] == d->id);
		d->mm->frame_use[frame + i] = (uint8_t)use;
	}
}

/* ---- domains: memory contents ---------------------------------------- */

int domain_zero(struct domain *d, uint64_t phys, uint64_t len)
{
	int err;

	assert(phys <= d->mm->pool.size && len <= d->mm->pool.size - phys);
	err = memguard_memset(d->map + phys, 0, len);
	if (err) {
		if (log_ratelimit())
			log_warn("domain %" PRIu32 " uid %u: pool memory at phys %#" PRIx64
				 " was punched out of the domain memfd by one of its clients; "
				 "repairing the domain",
				 d->id, (unsigned int)d->uid, phys);
		domain_repair(d);
	}
	return err;
}

/* True when frame @f belongs in @d's memfd: the domain owns it and its
 * pages are not in a shareable grant's own memfd. */
static bool domain_backs(const struct domain *d, uint32_t f)
{
	const struct mm *mm = d->mm;

	return mm->frames.owner[f] == d->id && !(mm->frame_use[f] & FRAME_USE_SHARED);
}

/* Punches every run of frames @d's memfd should not hold (not the domain's,
 * or shared: in a memfd of their own) out of its memfd. */
static int domain_punch_unowned(struct domain *d)
{
	struct mm *mm = d->mm;
	uint32_t f, start;
	int err;

	/* SEEK_DATA does not work on hugetlbfs: punch every run of frames the
	 * domain does not own; punching a hole is cheap. */
	for (f = 0; f < mm->pool.nr_frames; f++) {
		if (domain_backs(d, f))
			continue;
		for (start = f; f < mm->pool.nr_frames && !domain_backs(d, f); f++)
			;
		err = pool_frames_punch(&mm->pool, d->memfd, start, f - start);
		if (err) {
			log_err("domain %" PRIu32 ": cannot punch phantom frames: %s", d->id,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Makes the memfd hold exactly what @d owns again after a client punched
 * owned frames out of it: punches every frame @d does not own (phantoms),
 * then backs every owned frame (holes only). 0 or the first -errno. */
static int domain_repair(struct domain *d)
{
	struct mm *mm = d->mm;
	uint32_t f, start;
	int err, ret = 0;

	/* Phantoms first: on hugetlb they may hold the very pages the owned
	 * frames need to be backed again. */
	err = domain_punch_unowned(d);
	if (err)
		return err;
	for (f = 0; f < mm->pool.nr_frames; f++) {
		if (!domain_backs(d, f))
			continue;
		for (start = f; f < mm->pool.nr_frames && domain_backs(d, f); f++)
			;
		/* Allocating what is there already is a no-op: only holes fill. */
		err = pool_frames_populate(&mm->pool, d->memfd, start, f - start);
		if (err && !ret) {
			log_warn("domain %" PRIu32 ": cannot back frames %" PRIu32 "+%" PRIu32
				 " again: %s",
				 d->id, start, f - start, strerror(-err));
			ret = err;
		}
	}
	return ret;
}

/* How many frames the domain does not own hold data in its memfd. On
 * hugetlb every phantom is a whole frame; on shmem a client may have touched
 * single 4 KiB pages, so the data extents are walked (SEEK_DATA works on
 * shmem, not on hugetlbfs). */
static uint64_t domain_count_phantoms(const struct domain *d, uint64_t excess)
{
	const struct mm *mm = d->mm;
	uint64_t n = 0;
	uint32_t f, last = UINT32_MAX;
	off_t data, hole = 0;

	if (mm->pool.hugetlb)
		return excess >= mm->pool.frame_size ? excess / mm->pool.frame_size : 1;
	for (;;) {
		data = lseek(d->memfd, hole, SEEK_DATA);
		if (data < 0)
			break;
		hole = lseek(d->memfd, data, SEEK_HOLE);
		if (hole <= data)
			break;
		for (f = (uint32_t)(data >> KM_FRAME_SHIFT);
		     f <= (uint32_t)((hole - 1) >> KM_FRAME_SHIFT); f++) {
			if (!domain_backs(d, f) && f != last)
				n++;
			last = f;
		}
	}
	return n ? n : 1; /* st_blocks said there was something */
}

int64_t domain_reconcile(struct domain *d)
{
	struct mm *mm = d->mm;
	/* Shared frames are owned, but their pages are in memfds of their own. */
	uint64_t owned = (uint64_t)(d->nr_frames - d->share_frames) * mm->pool.frame_size;
	uint64_t phantoms;
	int64_t bytes, excess;
	int err;

	bytes = pool_memfd_bytes(d->memfd);
	if (bytes < 0)
		return bytes;
	if ((uint64_t)bytes <= owned)
		return 0;
	excess = bytes - (int64_t)owned;
	phantoms = domain_count_phantoms(d, (uint64_t)excess);
	err = domain_punch_unowned(d);
	if (err)
		return err;
	d->phantom_punches += phantoms;
	if (log_ratelimit())
		log_warn("domain %" PRIu32 " uid %u: punched %" PRIu64 " phantom frame(s), %" PRId64
			 " bytes a client created by touching holes of the memfd",
			 d->id, (unsigned int)d->uid, phantoms, excess);
	return excess;
}

int domain_check(const struct domain *d)
{
	const struct mm *mm = d->mm;
	uint64_t owned = 0, shared = 0, pages;
	uint32_t f;
	int i, err;

	err = buddy_check(&d->pages);
	if (!err)
		err = buddy_check(&d->frames);
	if (err)
		return err;
	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
		err = kmem_cache_check(&d->caches[i]);
		if (err)
			return err;
	}
	for (f = 0; f < mm->pool.nr_frames; f++) {
		owned += mm->frames.owner[f] == d->id;
		shared += mm->frames.owner[f] == d->id && (mm->frame_use[f] & FRAME_USE_SHARED);
	}
	pages = d->pages.free_units + d->slab_pages + d->large_pages +
		((d->frames.free_units + d->vmalloc_frames) << KM_FRAME_ORDER);
	/* Shared frames are large kmallocs or vmalloc frames as well. */
	if (shared != d->share_frames ||
	    (uint64_t)d->share_frames << KM_FRAME_ORDER >
		    d->large_pages + ((uint64_t)d->vmalloc_frames << KM_FRAME_ORDER)) {
		log_err("domain %" PRIu32 ": %" PRIu64 " frames marked shared, %" PRIu32 " counted",
			d->id, shared, d->share_frames);
		return -EUCLEAN;
	}
	if (owned != d->nr_frames || owned << KM_FRAME_ORDER != pages) {
		log_err("domain %" PRIu32 ": %" PRIu64 " frames owned, %" PRIu32 " counted; "
			"pages: %" PRIu64 " free + %" PRIu64 " free frames + %" PRIu64
			" slab + %" PRIu64 " large + %" PRIu32 " vmalloc frames != %" PRIu64,
			d->id, owned, d->nr_frames, d->pages.free_units, d->frames.free_units,
			d->slab_pages, d->large_pages, d->vmalloc_frames, owned << KM_FRAME_ORDER);
		return -EUCLEAN;
	}
	return 0;
}
