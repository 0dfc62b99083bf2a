/* SPDX-License-Identifier: MIT */
/*
 * frame.h - the global frame allocator: a buddy over the pool's frames that
 * hands runs of 2^order frames to trust domains and takes them back.
 *
 * A free frame lives in the pool's reserve memfd. frame_get() punches it out
 * of the reserve and fallocates it in the domain's memfd (new and zeroed
 * there); frame_put() does the reverse. owner[] records which domain holds
 * each frame, so holes can be told from owned frames when a domain memfd is
 * reconciled. Watermarks (in frames) keep an emergency reserve that only
 * __GFP_HIGH / GFP_ATOMIC / __GFP_NOFAIL requests may dip into (gfp.h).
 */
#pragma once

#include <stdint.h>

#include "buddy.h"

struct pool;

#define FRAME_OWNER_NONE 0u /* owner[] of a free frame; domain ids start at 1 */
/* owner[] of a quarantined frame: one that cannot be backed in the reserve
 * memfd right now (a domain memfd would not give its page back, or the host
 * has no hugepage for it). Neither free nor anyone's; counted apart, and
 * freed once the reserve can be backed there again. */
#define FRAME_OWNER_QUARANTINE UINT32_MAX

struct frame_alloc {
	struct pool *pool;
	struct buddy_map map;
	struct buddy free;  /* frames in the reserve memfd */
	uint32_t *owner;    /* per frame: domain id or FRAME_OWNER_NONE */
	uint32_t wmark_min; /* frames: the emergency reserve */
	uint32_t wmark_low;
	uint32_t wmark_high;
	uint32_t nr_quarantined; /* frames whose owner[] is FRAME_OWNER_QUARANTINE */
};

/* All frames free. @min_frames is the emergency reserve (min watermark);
 * low and high follow as min + min/4 and min + min/2 (at least +1 each). */
int frame_alloc_init(struct frame_alloc *fa, struct pool *pool, uint32_t min_frames);
/* The same, taking over @owner[nr_frames] from a previous daemon: frames
 * with an owner stay allocated to it. */
int frame_alloc_adopt(struct frame_alloc *fa, struct pool *pool, uint32_t min_frames,
		      const uint32_t *owner);
void frame_alloc_fini(struct frame_alloc *fa);

static inline uint64_t frame_nr_free(const struct frame_alloc *fa)
{
	return fa->free.free_units;
}

/* 2^@order contiguous, naturally aligned frames for domain @domain_id, moved
 * into @fd. Fails with -ENOMEM when no such run is free or taking it would
 * go below the watermark @gfp allows; -errno if the memfds refuse. */
int frame_get(struct frame_alloc *fa, uint32_t domain_id, int fd, unsigned int order,
	      unsigned int gfp, uint32_t *frame);

/* Gives 2^@order frames starting at @frame back: punched from @fd, returned
 * to the reserve memfd, coalesced. Invariant: a frame is free only while the
 * reserve memfd backs it, so that free frames can always be handed out. A
 * frame the reserve cannot back again (on hugetlb, when the host is out of
 * hugepages, e.g. because a client's memfd refused the punch and keeps the
 * page) is quarantined instead, and reported. */
void frame_put(struct frame_alloc *fa, int fd, uint32_t frame, unsigned int order);

/* [frame, frame + nr), held by no domain any more (a domain a new daemon
 * could not take over), back to the free frames: punched from @fd if it is
 * not -1, then as frame_put(). */
void frame_release(struct frame_alloc *fa, int fd, uint32_t frame, uint32_t nr);

/* Tries to back every quarantined frame in the reserve again; those that
 * can be are free. Returns the frames freed. Cheap when none is. */
uint32_t frame_quarantine_retry(struct frame_alloc *fa);
