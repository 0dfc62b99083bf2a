/* SPDX-License-Identifier: MIT */
/*
 * workload.h - the small-object patterns of kmperf, over any allocator: the
 * broker (km_kmalloc/km_kfree), glibc, boost.interprocess and DPDK rte_malloc
 * run the very same loops through one table of function pointers, so that
 * every allocator pays the same indirect call and none of them can be
 * optimised away. Compiled as C; the C++ peer (kmperf-boost) links it too.
 *
 * A worker process serves runs over a pipe (wl_serve()): it says "ready" once
 * it is set up; then the driver writes
 *	prep PATTERN SEED		and the worker answers	prepped
 *	go START_NS END_NS		and the worker answers	done CALLS T0_NS T1_NS
 * or "error MESSAGE" to either. Times are CLOCK_MONOTONIC, which all processes
 * of a host share, so that workers prepared apart start together.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum wl_pattern {
	WL_PAIRS,      /* alloc, one write, free; 64 B */
	WL_BATCH100,   /* 100 allocs, then 100 frees (in allocation order); 64 B */
	WL_BATCH1000,  /* the same with 1000 */
	WL_BATCH10000, /* and 10000 */
	WL_RING,       /* 4096 live objects; each step frees a random slot and allocates a
			  random size of 16-2048 B into it (a seeded sequence) */
	WL_BULK1000,   /* 1000 in one bulk call, then one bulk free (where the allocator
			  has one, else a loop) */
	WL_NR_PATTERNS
};

#define WL_OBJ_SIZE    64
#define WL_RING_SLOTS  4096
#define WL_RING_MIN    16
#define WL_RING_MAX    2048
#define WL_PAIRS_CYCLE 1000 /* pairs between two looks at the clock */

extern const char *const wl_pattern_names[WL_NR_PATTERNS];

/* An allocator: alloc returns NULL (errno set) on failure; the bulk pair is
 * optional (NULL: a loop of alloc/free). */
struct wl_alloc {
	const char *name;
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	int (*alloc_bulk)(void *ctx, size_t size, size_t n, void **out); /* 0 or -1 */
	void (*free_bulk)(void *ctx, size_t n, void **p);
	void *ctx;
};

struct wl_result {
	uint64_t calls; /* alloc and free calls made, each counts one (a bulk call of n: n) */
	uint64_t t0;	/* when the first timed call was made */
	uint64_t t1;	/* when the last one returned */
};

/* A pattern made ready to run: its arrays, its ring filled. */
struct wl_state {
	enum wl_pattern pat;
	void **v;
	size_t n;      /* objects per batch, or ring slots */
	uint64_t rand; /* the ring's random state */
};

/*
 * Sets @pat up, untimed: arrays made, the ring filled from @seed.
 * Return: 0, or -1 with errno (nothing is left allocated then).
 */
int wl_prepare(const struct wl_alloc *a, enum wl_pattern pat, uint64_t seed, struct wl_state *s);

/*
 * Sleeps until @start (0: now), then runs whole cycles (WL_PAIRS_CYCLE pairs,
 * one batch, WL_RING_SLOTS ring steps) until the clock passes @end, at least
 * one; then frees what is still live, untimed, and @s with it.
 * Return: 0, or -1 with errno when an allocation failed.
 */
int wl_exec(const struct wl_alloc *a, struct wl_state *s, uint64_t start, uint64_t end,
	    struct wl_result *res);

/* Frees what @s holds (after a wl_prepare() that is not to be run). */
void wl_finish(const struct wl_alloc *a, struct wl_state *s);

/* wl_prepare() + wl_exec(). */
int wl_run(const struct wl_alloc *a, enum wl_pattern pat, uint64_t seed, uint64_t start,
	   uint64_t end, struct wl_result *res);

/* A pattern's number from its name; -1 if none. */
int wl_pattern_from_name(const char *name);

/*
 * Serves runs on @in/@out (see above) until "quit" or end of file; writes
 * "ready" first. Return: 0, or -1 on an I/O error.
 */
int wl_serve(const struct wl_alloc *a, int in, int out);

uint64_t wl_now_ns(void);

#ifdef __cplusplus
}
#endif
