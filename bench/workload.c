// SPDX-License-Identifier: MIT
/*
 * workload.c - the small-object patterns, and a worker loop that runs them
 * on request (see workload.h).
 */
#include "workload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const wl_pattern_names[WL_NR_PATTERNS] = {
	[WL_PAIRS] = "pairs",		[WL_BATCH100] = "batch100", [WL_BATCH1000] = "batch1000",
	[WL_BATCH10000] = "batch10000", [WL_RING] = "ring",	    [WL_BULK1000] = "bulk1000",
};

uint64_t wl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wait_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
			       .tv_nsec = (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* xorshift64*: the same seed gives every allocator the same sequence. */
static inline uint64_t wl_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* The first byte written: what a program does with memory it got. */
static inline void touch(void *p, uint64_t v)
{
	*(volatile char *)p = (char)v;
}

static int run_pairs(const struct wl_alloc *a, uint64_t end, struct wl_result *res)
{
	uint64_t calls = 0, t;

	res->t0 = wl_now_ns();
	do {
		for (unsigned int i = 0; i < WL_PAIRS_CYCLE; i++) {
			void *p = a->alloc(a->ctx, WL_OBJ_SIZE);

			if (!p)
				return -1;
			touch(p, i);
			a->free(a->ctx, p);
		}
		calls += 2 * WL_PAIRS_CYCLE;
		t = wl_now_ns();
	} while (t < end);
	res->t1 = t;
	res->calls = calls;
	return 0;
}

static int run_batch(const struct wl_alloc *a, void **v, size_t n, uint64_t end,
		     struct wl_result *res)
{
	uint64_t calls = 0, t;

	res->t0 = wl_now_ns();
	do {
		for (size_t i = 0; i < n; i++) {
			v[i] = a->alloc(a->ctx, WL_OBJ_SIZE);
			if (!v[i]) {
				int err = errno;

				while (i-- > 0)
					a->free(a->ctx, v[i]);
				errno = err;
				return -1;
			}
			touch(v[i], i);
		}
		for (size_t i = 0; i < n; i++)
			a->free(a->ctx, v[i]);
		calls += 2 * n;
		t = wl_now_ns();
	} while (t < end);
	res->t1 = t;
	res->calls = calls;
	return 0;
}

static int run_bulk(const struct wl_alloc *a, void **v, size_t n, uint64_t end,
		    struct wl_result *res)
{
	uint64_t calls = 0, t;

	if (!a->alloc_bulk || !a->free_bulk)
		return run_batch(a, v, n, end, res);
	res->t0 = wl_now_ns();
	do {
		if (a->alloc_bulk(a->ctx, WL_OBJ_SIZE, n, v) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			touch(v[i], i);
		a->free_bulk(a->ctx, n, v);
		calls += 2 * n;
		t = wl_now_ns();
	} while (t < end);
	res->t1 = t;
	res->calls = calls;
	return 0;
}

static inline size_t ring_size(uint64_t r)
{
	return WL_RING_MIN + (size_t)(r % (WL_RING_MAX - WL_RING_MIN + 1));
}

/* @slot is zeroed at first: every non-NULL slot is live. */
static int ring_fill(const struct wl_alloc *a, void **slot, uint64_t *rand)
{
	for (size_t i = 0; i < WL_RING_SLOTS; i++) {
		slot[i] = a->alloc(a->ctx, ring_size(wl_rand(rand)));
		if (!slot[i])
			return -1;
		touch(slot[i], i);
	}
	return 0;
}

static int run_ring(const struct wl_alloc *a, void **slot, uint64_t *rand, uint64_t end,
		    struct wl_result *res)
{
	uint64_t calls = 0, t;

	res->t0 = wl_now_ns();
	do {
		for (unsigned int k = 0; k < WL_RING_SLOTS; k++) {
			uint64_t r = wl_rand(rand);
			size_t j = (size_t)(r >> 40) % WL_RING_SLOTS;

			a->free(a->ctx, slot[j]);
			slot[j] = a->alloc(a->ctx, ring_size(r));
			if (!slot[j])
				return -1;
			touch(slot[j], k);
		}
		calls += 2 * WL_RING_SLOTS;
		t = wl_now_ns();
	} while (t < end);
	res->t1 = t;
	res->calls = calls;
	return 0;
}

void wl_finish(const struct wl_alloc *a, struct wl_state *s)
{
	int err = errno;

	if (s->pat == WL_RING)
		for (size_t k = 0; s->v && k < s->n; k++)
			if (s->v[k])
				a->free(a->ctx, s->v[k]);
	free(s->v);
	s->v = NULL;
	errno = err;
}

int wl_prepare(const struct wl_alloc *a, enum wl_pattern pat, uint64_t seed, struct wl_state *s)
{
	static const size_t batch[WL_NR_PATTERNS] = {
		[WL_PAIRS] = 1,		 [WL_BATCH100] = 100,	    [WL_BATCH1000] = 1000,
		[WL_BATCH10000] = 10000, [WL_RING] = WL_RING_SLOTS, [WL_BULK1000] = 1000,
	};

	s->pat = pat;
	s->n = batch[pat];
	s->rand = seed | 1;
	s->v = (void **)calloc(s->n, sizeof(*s->v));
	if (!s->v)
		return -1;
	if (pat == WL_RING && ring_fill(a, s->v, &s->rand) < 0) {
		wl_finish(a, s);
		return -1;
	}
	return 0;
}

int wl_exec(const struct wl_alloc *a, struct wl_state *s, uint64_t start, uint64_t end,
	    struct wl_result *res)
{
	int ret;

	memset(res, 0, sizeof(*res));
	if (start)
		wait_until(start);
	switch (s->pat) {
	case WL_PAIRS:
		ret = run_pairs(a, end, res);
		break;
	case WL_RING:
		ret = run_ring(a, s->v, &s->rand, end, res);
		break;
	case WL_BULK1000:
		ret = run_bulk(a, s->v, s->n, end, res);
		break;
	default:
		ret = run_batch(a, s->v, s->n, end, res);
		break;
	}
	wl_finish(a, s);
	return ret;
}

int wl_run(const struct wl_alloc *a, enum wl_pattern pat, uint64_t seed, uint64_t start,
	   uint64_t end, struct wl_result *res)
{
	struct wl_state s;

	if (wl_prepare(a, pat, seed, &s) < 0)
		return -1;
	return wl_exec(a, &s, start, end, res);
}

int wl_pattern_from_name(const char *name)
{
	for (int i = 0; i < WL_NR_PATTERNS; i++)
		if (strcmp(name, wl_pattern_names[i]) == 0)
			return i;
	return -1;
}

static void reply_error(FILE *out, const struct wl_alloc *a, const char *what, const char *pat)
{
	fprintf(out, "error %s: %s (%s): %s\n", a->name, what, pat, strerror(errno));
}

int wl_serve(const struct wl_alloc *a, int in, int out)
{
	FILE *fin = fdopen(in, "r"), *fout = fdopen(out, "w");
	char line[256], pat[32] = "";
	struct wl_state s = { .v = NULL };

	if (!fin || !fout)
		return -1;
	fprintf(fout, "ready\n");
	fflush(fout);
	while (fgets(line, sizeof(line), fin)) {
		unsigned long long seed, start, end;
		struct wl_result res;
		int p;

		if (strncmp(line, "quit", 4) == 0)
			break;
		if (sscanf(line, "prep %31s %llu", pat, &seed) == 2 &&
		    (p = wl_pattern_from_name(pat)) >= 0) {
			if (s.v)
				wl_finish(a, &s);
			if (wl_prepare(a, (enum wl_pattern)p, seed, &s) < 0)
				reply_error(fout, a, "preparing failed", pat);
			else
				fprintf(fout, "prepped\n");
		} else if (sscanf(line, "go %llu %llu", &start, &end) == 2 && s.v) {
			if (wl_exec(a, &s, start, end, &res) < 0)
				reply_error(fout, a, "an allocation failed", pat);
			else
				fprintf(fout, "done %llu %llu %llu\n",
					(unsigned long long)res.calls, (unsigned long long)res.t0,
					(unsigned long long)res.t1);
		} else {
			fprintf(fout, "error bad command: %s", line);
		}
		if (fflush(fout) != 0)
			return -1;
	}
	if (s.v)
		wl_finish(a, &s);
	return 0;
}
