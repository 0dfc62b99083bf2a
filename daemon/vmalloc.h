/* SPDX-License-Identifier: MIT */
/*
 * vmalloc.h - vmalloc areas of a domain: the size in whole frames, each frame
 * allocated on its own (mm/vmalloc.c: __vmalloc_area_node() takes pages one
 * by one); the client maps them side by side. Cleared only with __GFP_ZERO.
 */
#pragma once

#include <stdint.h>
#include <sys/queue.h>

struct domain;
struct grant;

#define VMALLOC_CALLER_LEN 64

/* A vmalloc area: its frames in virtual order and what vmallocinfo shows. */
struct vmalloc_area {
	TAILQ_ENTRY(vmalloc_area) link;	 /* on the grant table's areas while granted */
	const struct grant *grant;	 /* the grant it is, while granted */
	uint64_t size;			 /* bytes asked for */
	uint64_t vaddr;			 /* the client's address, or 0 */
	char caller[VMALLOC_CALLER_LEN]; /* printable, from the client */
	uint32_t nr_frames;
	uint32_t frames[];
};

/* An area of @size bytes (whole frames) in @d: 0 and *out; -EINVAL for size
 * 0; -ENOMEM when larger than the pool ("exceeds total pages") or when the
 * frames cannot be had (every frame taken is given back). Frames come in the
 * longest consecutive runs the domain can give, so the client maps few. */
int vmalloc_alloc(struct domain *d, uint64_t size, unsigned int gfp, struct vmalloc_area **out);
/* Gives every frame back to the domain and frees @area. */
void vmalloc_free(struct domain *d, struct vmalloc_area *area);

/* Holds again exactly the frames of @area (a successor daemon rebuilding its
 * predecessor's areas), all or nothing. 0, or -EUCLEAN when one of them is
 * not a frame of @d that is wholly free. */
int vmalloc_adopt(struct domain *d, const struct vmalloc_area *area);
