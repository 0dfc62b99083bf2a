/* SPDX-License-Identifier: MIT */
/*
 * loopstat.h - how long each thing the event loop does holds it: a request
 * (decoded, served, its reply queued), a turn of a closed connection's
 * teardown, the housekeeping tick, a wake-up of the listening socket. The
 * daemon's own figures, from CLOCK_MONOTONIC (the vDSO: no system call), so
 * they hold none of the scheduler's wake-up latency a client's round trip
 * carries; `kmctl stats` shows them (Inspect TABLE_LOOP).
 *
 * Counted since the daemon started; a successor after a handover starts
 * from zero. Single-threaded, like the loop: no locks, no atomics. A
 * request costs two clock reads and a few adds.
 */
#pragma once

#include <stdint.h>

#define LOOPSTAT_BUCKETS 5	 /* <10 us, <100 us, <1 ms, <10 ms, >=10 ms */
#define LOOPSTAT_SLOW_NS 1000000 /* a request longer than this is "over 1 ms" */

struct loop_stats {
	uint64_t started_ns;			 /* CLOCK_MONOTONIC at loopstat_init() */
	uint64_t requests;			 /* timed, every kind */
	uint64_t request_max_ns;		 /* the longest request */
	const char *request_max_kind;		 /* its body ("alloc"...), "" before any */
	uint64_t requests_over_1ms;		 /* longer than LOOPSTAT_SLOW_NS */
	uint64_t request_hist[LOOPSTAT_BUCKETS]; /* requests per bucket (loopstat_bucket()) */
	uint64_t teardown_turns;		 /* conn_on_reap() calls */
	uint64_t teardown_max_ns;		 /* the longest of them */
	uint64_t tick_max_ns;			 /* the longest housekeeping tick */
	uint64_t accept_max_ns;			 /* the longest accept callback */
};

/* Upper bounds (exclusive, ns) of every bucket but the last. */
extern const uint64_t loopstat_bucket_ns[LOOPSTAT_BUCKETS - 1];

/* Zeroes @st and starts its clock. */
void loopstat_init(struct loop_stats *st);

/* CLOCK_MONOTONIC in ns. */
uint64_t loopstat_now_ns(void);

/* The histogram bucket of a duration of @ns. */
unsigned int loopstat_bucket(uint64_t ns);

/* One request held the loop @ns; @kind names its body and must be a string
 * that lives as long as @st (a literal). A tie keeps the earlier kind. */
void loopstat_request(struct loop_stats *st, uint64_t ns, const char *kind);
/* One turn of a closing connection's give-back (and its last step). */
void loopstat_teardown(struct loop_stats *st, uint64_t ns);
/* One housekeeping tick (balance, reconcile, watchdog, STATUS). */
void loopstat_tick(struct loop_stats *st, uint64_t ns);
/* One wake-up of the listening socket: every pending connection accepted. */
void loopstat_accept(struct loop_stats *st, uint64_t ns);
