/* SPDX-License-Identifier: MIT */
/*
 * vmalloc.h - vmalloc areas of a domain: the size in whole frames, each frame
 * allocated on its own (mm/vmalloc.c: __vmalloc_area_node() takes pages one
 * by one); the client maps them side by side. Cleared only with __GFP_ZERO.
 */
#pragma once

#include <stdint.h>

struct domain;

/* 0 with a malloc'd array of *nr_frames frame numbers in *frames; -EINVAL for
 * size 0; -ENOMEM when larger than the pool ("exceeds total pages") or when
 * the frames cannot be had (every frame taken is given back). */
int vmalloc_alloc(struct domain *d, uint64_t size, unsigned int gfp, uint32_t **frames,
		  uint32_t *nr_frames);
/* Gives every frame back to the domain and frees @frames. */
void vmalloc_free(struct domain *d, uint32_t *frames, uint32_t nr_frames);

/* Holds again exactly @frames[nr_frames] (a successor daemon rebuilding its
 * predecessor's areas), all or nothing. 0, or -EUCLEAN when one of them is
 * not a frame of @d that is wholly free. */
int vmalloc_adopt(struct domain *d, const uint32_t *frames, uint32_t nr_frames);
