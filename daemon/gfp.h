/* SPDX-License-Identifier: MIT */
/*
 * gfp.h - what the KM_GFP_* bits mean to the allocators: which watermark a
 * request may go down to (mm/page_alloc.c: gfp_to_alloc_flags(),
 * __zone_watermark_ok(); docs/kernel.md) and whether it may reclaim.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmalloc-abi.h"

/* Daemon-internal, above the kernel's bits: the request may not use the
 * emergency reserve whatever its other flags say. dispatch.c adds it for
 * clients that are not privileged (account.h). */
#define GFP_NO_RESERVE (1u << 31)

static inline bool gfp_allows_blocking(unsigned int gfp)
{
	return gfp & KM___GFP_DIRECT_RECLAIM;
}

static inline bool gfp_may_reclaim(unsigned int gfp)
{
	return gfp_allows_blocking(gfp) && !(gfp & KM___GFP_NORETRY);
}

/* The free-frame level (in frames) a request must leave untouched, given the
 * min watermark @min: 100 % normally, 50 % for __GFP_HIGH that may block,
 * 37.5 % for GFP_ATOMIC-like (__GFP_HIGH without direct reclaim), 50 % for
 * __GFP_NOFAIL (ALLOC_MIN_RESERVE in the kernel's retry). The kernel counts
 * in pages, where rounding does not matter; in frames it does, so the
 * shares are rounded down: a one-frame reserve is there for GFP_ATOMIC.
 * GFP_NO_RESERVE: 100 %, whatever else is set. */
static inline uint32_t gfp_watermark(unsigned int gfp, uint32_t min)
{
	if (gfp & GFP_NO_RESERVE)
		return min;
	if ((gfp & KM___GFP_HIGH) && !gfp_allows_blocking(gfp))
		return (uint32_t)((uint64_t)min * 3 / 8);
	if ((gfp & KM___GFP_HIGH) || (gfp & KM___GFP_NOFAIL))
		return min / 2;
	return min;
}

/* Writes the kernel-style description of @gfp ("0xcc0(GFP_KERNEL|__GFP_ZERO)",
 * docs/kernel.md) into @buf and returns it. */
const char *gfp_describe(unsigned int gfp, char *buf, size_t len);
