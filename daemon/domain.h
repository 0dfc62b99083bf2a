/* SPDX-License-Identifier: MIT */
/*
 * domain.h - trust domains and the allocator state they hang off (struct mm).
 *
 * A domain is the set of clients of one uid. It has its own memfd spanning
 * the whole pool, in which only the frames it owns are populated; its own
 * page allocator (a buddy over the 4 KiB pages of its frames, orders 0..9,
 * never crossing a frame); its own kmalloc slab caches. Blocks of frame size
 * and above come straight from the frame allocator. A domain keeps the frames
 * it freed (its free order-9 blocks) until another domain needs them:
 * mm_reclaim() hands whole free frames back to the frame allocator.
 *
 * struct mm owns the pool, the frame allocator and every domain. Domains are
 * reference counted by their connections and grants; at zero every frame goes
 * back to the frame allocator and the memfd is closed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "buddy.h"
#include "frame.h"
#include "pool.h"
#include "slab.h"

struct mm;

struct domain {
	struct mm *mm;
	TAILQ_ENTRY(domain) link; /* on mm->domains */
	uint32_t id;		  /* >= 1, used in frame owner[] */
	uid_t uid;
	int memfd;    /* sent to the domain's clients */
	uint8_t *map; /* daemon's own mapping of memfd (for __GFP_ZERO) */
	unsigned int refs;
	struct buddy pages;  /* free pages of owned frames in use (shares mm->page_map) */
	struct buddy frames; /* owned frames wholly free, coalesced (shares mm->frame_map) */
	struct kmem_cache caches[KM_NR_KMALLOC_CLASSES];
	uint32_t nr_frames;	 /* frames owned */
	uint64_t slab_pages;	 /* pages in slabs */
	uint64_t large_pages;	 /* pages of kmalloc_large blocks */
	uint32_t vmalloc_frames; /* frames held by vmalloc areas */
	/* Frames of the domain whose pages live in a shareable grant's memfd
	 * of its own (share.c), not in the domain memfd: counted as well in
	 * large_pages or vmalloc_frames by their kind. */
	uint32_t share_frames;
	uint64_t phantom_punches; /* reconcile found and punched this many frames */
};

struct mm_options {
	uint64_t pool_size; /* bytes */
	enum pool_backing backing;
	uint64_t reserve; /* bytes of emergency reserve; UINT64_MAX: kernel's formula */
};

/* mm->frame_use[]: what a frame a domain owns is used for as a whole,
 * beyond what the buddies and slab map say (kmctl map; domain memfd
 * reconciliation). */
enum frame_use {
	FRAME_USE_PAGES = 0,   /* free, or split into pages (page buddy, slabs) */
	FRAME_USE_LARGE = 1,   /* part of a kmalloc of order >= 9 */
	FRAME_USE_VMALLOC = 2, /* one frame of a vmalloc area */
};
/* Or'ed in: the frame's pages are in a shareable grant's own memfd. */
#define FRAME_USE_SHARED 0x80u

struct mm {
	struct pool pool;
	struct frame_alloc frames;
	struct buddy_map page_map;  /* links for every domain's page buddy (per pfn) */
	struct buddy_map frame_map; /* links for every domain's free frames (per frame) */
	struct slab_map slab_map;   /* every domain's slabs, by first pfn */
	uint8_t *frame_use;	    /* per frame: enum frame_use | FRAME_USE_SHARED */
	TAILQ_HEAD(domain_list, domain) domains;
	uint32_t nr_domains;
	uint32_t next_domain_id;
	bool balancing; /* below wmark_low, mm_trim() gives back until wmark_high */
};

int mm_init(struct mm *mm, const struct mm_options *opt);
/* Takes over the pool and frame ownership of a previous daemon (a handover):
 * its reserve memfd and owner[] per frame. Domains follow with domain_adopt(). */
int mm_adopt(struct mm *mm, const struct mm_options *opt, int reserve_fd, uint64_t pool_size,
	     bool hugetlb, const uint32_t *owner);
/* Destroys every domain (whatever they hold) and the pool. */
void mm_fini(struct mm *mm);

/* Reclaim for a request that found no free frame: every domain gives back
 * its whole free frames, and if @shrink_slabs, empty slabs first
 * (kmem_cache_shrink()). Returns the frames given back. */
uint64_t mm_reclaim(struct mm *mm, bool shrink_slabs);

/* kswapd's balance_pgdat() for frames: when fewer than wmark_low frames are
 * free, domains hand back their whole free frames until wmark_high are free
 * (or none is left). Cheap when balanced; call it after frees and from a
 * timer. Returns the frames given back. */
uint64_t mm_balance(struct mm *mm);

/* The loop's give-back work in bounded steps (each frame given back costs
 * the kernel a hugepage's clearing, a few hundred microseconds): domains
 * nobody holds any more give their frames back and go, and below wmark_low
 * domains give their whole free frames back until wmark_high (kswapd's
 * balance_pgdat()). Stops once @budget_ns have passed; true when work is
 * left for another turn. */
bool mm_trim(struct mm *mm, uint64_t budget_ns);

/* The domain of @uid, created on first use (or one that was going, taken
 * back), with a reference taken. 0 and *out, or -errno. */
int domain_get(struct mm *mm, uid_t uid, struct domain **out);
void domain_ref(struct domain *d);
/* A domain of a previous daemon, with its id and memfd and no references:
 * every frame owner[] gives it is free in its page allocator, until the
 * grants of that daemon take their memory again through the _at
 * allocators (domain_alloc_pages_at(), domain_alloc_frames_at(),
 * kmalloc_adopt(), vmalloc_adopt()). */
int domain_adopt(struct mm *mm, uint32_t id, uid_t uid, int memfd, struct domain **out);
/* Drops a reference. A domain nobody holds stays until mm_trim() has given
 * its frames back, a few at a time, and destroys it (or a new client of its
 * uid takes it back). NULL is a no-op. */
void domain_put(struct domain *d);

/* Pages of order 0..9 for the domain, fed by frames as needed. 0 and *pfn,
 * or -ENOMEM. */
int domain_alloc_pages(struct domain *d, unsigned int order, unsigned int gfp, uint32_t *pfn);
void domain_free_pages(struct domain *d, uint32_t pfn, unsigned int order);
/* Exactly the block of 2^@order pages at @pfn, which must be free in the
 * domain's frames. 0, -EEXIST (not free, not the domain's) or -EINVAL. */
int domain_alloc_pages_at(struct domain *d, uint32_t pfn, unsigned int order);

/* 2^@frame_order contiguous frames held outside the page buddy (kmalloc of
 * order >= 9, vmalloc frames): the domain's own free frames first, else the
 * frame allocator, reclaiming once if it is empty. With __GFP_ZERO in @gfp
 * the frames are zeroed by the kernel (new pages), never by a daemon store. */
int domain_alloc_frames(struct domain *d, unsigned int frame_order, unsigned int gfp,
			uint32_t *frame);
/* Back among the domain's free frames (kept for reuse, coalesced). */
void domain_free_frames(struct domain *d, uint32_t frame, unsigned int frame_order);
/* A run of up to @want consecutive frames, as long as it can be had (a
 * power of two), for vmalloc: the domain's own free frames first, then new
 * ones; a single frame after reclaim as the last resort. 0 with the run in
 * *frame, *nr; or -ENOMEM. */
int domain_alloc_frame_run(struct domain *d, uint32_t want, unsigned int gfp, uint32_t *frame,
			   uint32_t *nr);
/* Exactly the 2^@frame_order frames at @frame, wholly free in the domain.
 * 0, -EEXIST or -EINVAL. */
int domain_alloc_frames_at(struct domain *d, uint32_t frame, unsigned int frame_order);

/* kmem_cache_shrink() on every cache of @d: empty slabs back to its pages.
 * Returns the pages freed. */
uint64_t domain_shrink(struct domain *d);

/* Clears [phys, phys + len) through the daemon's mapping, guarded
 * (memguard.h): -EFAULT if a client punched the memory out; the domain's
 * memfd is then made to hold exactly what the domain owns again (phantoms
 * punched, owned frames backed) before returning. 0 on success. */
int domain_zero(struct domain *d, uint64_t phys, uint64_t len);

/* Compares what the memfd holds with the frames the domain owns and punches
 * every frame it does not own if a client created phantoms. Returns the
 * number of bytes found in excess (0 when clean) or -errno. */
int64_t domain_reconcile(struct domain *d);

/* Marks frames [frame, frame + nr) as used whole for @use (enum frame_use;
 * FRAME_USE_PAGES when they are given back). */
void domain_mark_frames(struct domain *d, uint32_t frame, uint32_t nr, unsigned int use);

/* Checks the domain's page buddy and caches and that frame counts add up. */
int domain_check(const struct domain *d);
