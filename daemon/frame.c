// SPDX-License-Identifier: MIT
/*
 * frame.c - the global frame allocator: a buddy over the pool's frames that
 * moves runs of 2^order frames between the reserve memfd and the domains'
 * memfds, and the watermarks that keep an emergency reserve.
 *
 * Invariants: a frame is free in fa->free exactly when owner[] says
 * FRAME_OWNER_NONE, and then it is populated in the reserve memfd (unless a
 * repopulation failed, which is logged and healed by the next move); an
 * owned frame is populated in its domain's memfd and punched from the
 * reserve, so the pool never holds a frame twice. Only domain.c calls this.
 *
 * Mirrors the zone-level part of mm/page_alloc.c: __zone_watermark_ok()
 * before rmqueue(), with the watermarks of __setup_per_zone_wmarks()
 * (docs/kernel.md).
 */
#include "config.h"
#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gfp.h"
#include "log.h"
#include "pool.h"

static void frames_release(struct frame_alloc *fa, uint32_t frame, uint32_t nr);

int frame_alloc_init(struct frame_alloc *fa, struct pool *pool, uint32_t min_frames)
{
	return frame_alloc_adopt(fa, pool, min_frames, NULL);
}

int frame_alloc_adopt(struct frame_alloc *fa, struct pool *pool, uint32_t min_frames,
		      const uint32_t *owner)
{
	uint32_t f, start;
	unsigned int max_order = 0;
	int err;

	memset(fa, 0, sizeof(*fa));
	if (pool->nr_frames == 0 || min_frames > pool->nr_frames)
		return -EINVAL;
	fa->pool = pool;
	fa->owner = calloc(pool->nr_frames, sizeof(*fa->owner));
	if (!fa->owner)
		return -ENOMEM;
	err = buddy_map_init(&fa->map, pool->nr_frames);
	if (err)
		goto err_owner;

	/* floor(log2(nr_frames)): the largest block that can exist */
	while (max_order < BUDDY_MAX_ORDER && (2ull << max_order) <= pool->nr_frames)
		max_order++;
	buddy_init(&fa->free, &fa->map, max_order);
	if (!owner) {
		buddy_free_range(&fa->free, 0, pool->nr_frames);
	} else {
		/* Frames a previous daemon had handed out stay with their domains. */
		/* Quarantined frames stay quarantined; the tick retries them. */
		memcpy(fa->owner, owner, pool->nr_frames * sizeof(*owner));
		for (f = 0; f < pool->nr_frames; f++)
			fa->nr_quarantined += owner[f] == FRAME_OWNER_QUARANTINE;
		for (f = 0; f < pool->nr_frames; f++) {
			if (owner[f] != FRAME_OWNER_NONE)
				continue;
			for (start = f; f < pool->nr_frames && owner[f] == FRAME_OWNER_NONE; f++)
				;
			buddy_free_range(&fa->free, start, f - start);
		}
	}

	fa->wmark_min = min_frames;
	fa->wmark_low = min_frames + (min_frames / 4 > 1 ? min_frames / 4 : 1);
	fa->wmark_high = min_frames + (min_frames / 2 > 1 ? min_frames / 2 : 1);
	log_debug("frames: %" PRIu32 " free, watermarks min %" PRIu32 " low %" PRIu32
		  " high %" PRIu32,
		  pool->nr_frames, fa->wmark_min, fa->wmark_low, fa->wmark_high);
	return 0;

err_owner:
	free(fa->owner);
	fa->owner = NULL;
	return err;
}

void frame_alloc_fini(struct frame_alloc *fa)
{
	if (fa->owner)
		buddy_map_fini(&fa->map);
	free(fa->owner);
	fa->owner = NULL;
}

/* __zone_watermark_ok() in frames: taking 2^order must leave at least the
 * level @gfp may go down to. */
static bool frame_watermark_ok(const struct frame_alloc *fa, unsigned int order, unsigned int gfp)
{
	uint64_t free_units = fa->free.free_units;
	uint64_t nr = 1ull << order;

	return free_units >= nr && free_units - nr >= gfp_watermark(gfp, fa->wmark_min);
}

int frame_get(struct frame_alloc *fa, uint32_t domain_id, int fd, unsigned int order,
	      unsigned int gfp, uint32_t *frame)
{
	struct pool *pool = fa->pool;
	uint32_t idx, nr, i;
	int err;

	assert(domain_id != FRAME_OWNER_NONE);
	if (order > fa->free.max_order || !frame_watermark_ok(fa, order, gfp))
		return -ENOMEM;
	if (buddy_alloc(&fa->free, order, &idx))
		return -ENOMEM;
	nr = 1u << order;

	/* Punch first: on hugetlb that returns the pages to the host's free
	 * pool, from which the domain's fallocate takes them again. */
	err = pool_frames_punch(pool, pool->reserve_fd, idx, nr);
	if (err) {
		log_err("frames %" PRIu32 "+%" PRIu32 ": cannot punch from the reserve: %s", idx,
			nr, strerror(-err));
		buddy_free(&fa->free, idx, order);
		return err;
	}
	/* A client may have touched these holes of its memfd (phantoms):
	 * punch them so the run is new and zeroed in the domain, as promised.
	 * A memfd that refuses (an old daemon's, without F_SEAL_SEAL, sealed
	 * by a client) cannot be promised zeroed frames: it gets none. */
	err = pool_frames_punch(pool, fd, idx, nr);
	if (!err)
		err = pool_frames_populate(pool, fd, idx, nr);
	if (err) {
		/* ENOSPC: the host's hugepages were taken meanwhile. fallocate
		 * may have populated part of the run before failing. */
		if (log_ratelimit())
			log_warn("frames %" PRIu32 "+%" PRIu32 ": cannot populate them in a "
				 "domain: %s",
				 idx, nr, strerror(-err));
		pool_frames_punch(pool, fd, idx, nr);
		frames_release(fa, idx, nr);
		return -ENOMEM;
	}
	for (i = 0; i < nr; i++) {
		assert(fa->owner[idx + i] == FRAME_OWNER_NONE);
		fa->owner[idx + i] = domain_id;
	}
	*frame = idx;
	return 0;
}

/* Back into the reserve memfd and the free buddy as free frames, or into
 * quarantine if the reserve cannot back them (frame.h's invariant). */
static void frames_release(struct frame_alloc *fa, uint32_t frame, uint32_t nr)
{
	uint32_t i;
	int err;

	err = pool_frames_populate(fa->pool, fa->pool->reserve_fd, frame, nr);
	if (err) {
		if (log_ratelimit())
			log_err("frames %" PRIu32 "+%" PRIu32 ": cannot back them in the reserve "
				"(%s); quarantined until the host has the memory again",
				frame, nr, strerror(-err));
		for (i = 0; i < nr; i++)
			fa->owner[frame + i] = FRAME_OWNER_QUARANTINE;
		fa->nr_quarantined += nr;
		return;
	}
	for (i = 0; i < nr; i++)
		fa->owner[frame + i] = FRAME_OWNER_NONE;
	buddy_free_range(&fa->free, frame, nr);
}

void frame_release(struct frame_alloc *fa, int fd, uint32_t frame, uint32_t nr)
{
	if (fd >= 0 && pool_frames_punch(fa->pool, fd, frame, nr) < 0 && log_ratelimit())
		log_warn("frames %" PRIu32 "+%" PRIu32 ": cannot punch them from a lost domain "
			 "memfd",
			 frame, nr);
	frames_release(fa, frame, nr);
}

void frame_put(struct frame_alloc *fa, int fd, uint32_t frame, unsigned int order)
{
	struct pool *pool = fa->pool;
	uint32_t nr = 1u << order, i;
	int err;

	assert(order <= fa->free.max_order && (frame & (nr - 1)) == 0);
	for (i = 0; i < nr; i++)
		assert(fa->owner[frame + i] != FRAME_OWNER_NONE &&
		       fa->owner[frame + i] != FRAME_OWNER_QUARANTINE);
	/* A memfd that refuses the punch keeps its page (and the host is short
	 * of it); the reserve then finds out whether it can back the frame. */
	err = pool_frames_punch(pool, fd, frame, nr);
	if (err && log_ratelimit())
		log_err("frames %" PRIu32 "+%" PRIu32 ": cannot punch them from a domain memfd: "
			"%s",
			frame, nr, strerror(-err));
	frames_release(fa, frame, nr);
}

uint32_t frame_quarantine_retry(struct frame_alloc *fa)
{
	uint32_t f, start, freed = 0;

	for (f = 0; f < fa->pool->nr_frames && fa->nr_quarantined; f++) {
		if (fa->owner[f] != FRAME_OWNER_QUARANTINE)
			continue;
		start = f;
		while (f < fa->pool->nr_frames && fa->owner[f] == FRAME_OWNER_QUARANTINE)
			f++;
		if (pool_frames_populate(fa->pool, fa->pool->reserve_fd, start, f - start) < 0)
			continue;
		fa->nr_quarantined -= f - start;
		frames_release(fa, start, f - start); /* backed now: free */
		freed += f - start;
		log_notice("frames %" PRIu32 "+%" PRIu32 ": out of quarantine", start, f - start);
	}
	return freed;
}
