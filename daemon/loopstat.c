// SPDX-License-Identifier: MIT
/*
 * loopstat.c - timing what holds the event loop (loopstat.h). Callers read
 * the clock before and after; this file only keeps counts and maxima. The
 * bucket search is a few compares: it runs once per request.
 */
#include "config.h"
#include "loopstat.h"

#include <string.h>
#include <time.h>

const uint64_t loopstat_bucket_ns[LOOPSTAT_BUCKETS - 1] = {
	10000,	  /* 10 us */
	100000,	  /* 100 us */
	1000000,  /* 1 ms */
	10000000, /* 10 ms */
};

void loopstat_init(struct loop_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->request_max_kind = "";
	st->started_ns = loopstat_now_ns();
}

uint64_t loopstat_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned int loopstat_bucket(uint64_t ns)
{
	unsigned int b = 0;

	while (b < LOOPSTAT_BUCKETS - 1 && ns >= loopstat_bucket_ns[b])
		b++;
	return b;
}

void loopstat_request(struct loop_stats *st, uint64_t ns, const char *kind)
{
	st->requests++;
	st->request_hist[loopstat_bucket(ns)]++;
	if (ns > LOOPSTAT_SLOW_NS)
		st->requests_over_1ms++;
	if (ns > st->request_max_ns) {
		st->request_max_ns = ns;
		st->request_max_kind = kind;
	}
}

void loopstat_teardown(struct loop_stats *st, uint64_t ns)
{
	st->teardown_turns++;
	if (ns > st->teardown_max_ns)
		st->teardown_max_ns = ns;
}

void loopstat_tick(struct loop_stats *st, uint64_t ns)
{
	if (ns > st->tick_max_ns)
		st->tick_max_ns = ns;
}

void loopstat_accept(struct loop_stats *st, uint64_t ns)
{
	if (ns > st->accept_max_ns)
		st->accept_max_ns = ns;
}
