/* SPDX-License-Identifier: MIT */
/*
 * kmperf.h - what the figures of kmperf share: options, the daemon under
 * test, the table, worker processes, latency histograms and /proc readings.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "benchutil.h"
#include "workload.h"

#define KMPERF_NR_FIGURES 7

struct kmperf_opt {
	const char *socket;    /* the daemon's socket (set after a spawn too) */
	const char *spawn;     /* kmallocd to start, or NULL */
	const char *kmallocd;  /* kmallocd to run under callgrind (figure 6) */
	const char *pool_size; /* of the spawned daemon */
	const char *peers_dir; /* where kmperf-boost and kmperf-dpdk are */
	bool hugepages;	       /* reserve hugepages (root) for a hugetlb pool */
	bool quick;
	bool pin;
	bool only[KMPERF_NR_FIGURES + 1]; /* figures to run (index 1..7) */
	unsigned int reps;		  /* interleaved repetitions of figures 1-2 */
	unsigned int trial_ms;		  /* one trial of figures 1-2 */
	unsigned int scale_counts[4];	  /* client processes of figure 3 */
	unsigned int nr_scale_counts;
	unsigned int scale_reps;
	unsigned int scale_rate; /* total requests/s offered in figure 3 */
	unsigned int scale_ms;	 /* per phase of figure 3 */
	unsigned long grants;	 /* live grants of figure 4 */
	unsigned long objects;	 /* live objects of figure 7 */
	unsigned int vmalloc_calls;
	unsigned int dpdk_mb; /* hugepage memory of the DPDK primary */
};

extern struct kmperf_opt opt;

/* The daemon under test. */
struct kmperf_daemon {
	pid_t pid; /* its pid (SO_PEERCRED), -1 unknown */
	bool spawned;
	bool hugetlb;
	uint64_t pool_bytes;
	char backing_note[160]; /* why the pool is not hugetlb, or "" */
};

extern struct kmperf_daemon dmn;

/* ---- the table ----------------------------------------------------------- */

enum verdict { V_INFO, V_PASS, V_FAIL, V_NA };

enum cmp {
	CMP_NONE,   /* no target */
	CMP_GE,	    /* ratio >= target */
	CMP_LE,	    /* ratio <= target */
	CMP_ABS_LE, /* the value itself <= target (same unit) */
};

struct row_spec {
	int fig;
	const char *measure;
	double value; /* the broker's figure, in @unit */
	const char *unit;
	const char *base_name; /* the baseline, or NULL */
	double base;
	enum cmp cmp;
	double target;
	const char *value_text; /* overrides the formatted value */
	const char *base_text;	/* overrides the formatted baseline */
	const char *na;		/* the baseline or target could not be had: why */
};

/* Adds a row; the ratio is value / base (when there is a base). */
void row_add(const struct row_spec *r);
/* Adds a row whose figure could not be had, with why (a footnote). */
void __attribute__((format(printf, 3, 4)))
row_na(int fig, const char *measure, const char *fmt, ...);
/* A line printed under the table. */
void __attribute__((format(printf, 1, 2))) note_add(const char *fmt, ...);
/* "1.23 M/s", "45.6 us", ... */
void fmt_value(char *buf, size_t len, double v, const char *unit);

/* "clients on CPU 0, daemon on CPU 1", or that nothing is pinned. */
const char *placement_text(void);

/* Progress on stderr. */
void __attribute__((format(printf, 1, 2))) progress(const char *fmt, ...);

/* ---- figures ------------------------------------------------------------- */

void fig_small(void);	  /* 1 and 2 */
void fig_scale(void);	  /* 3 */
void fig_grants(void);	  /* 4 */
void fig_vmalloc(void);	  /* 5 */
void fig_callgrind(void); /* 6 */
void fig_objects(void);	  /* 7 */
/* kmperf --glibc-overhead N: figure 7's baseline, in a process of its own. */
int glibc_overhead_main(unsigned long n);

/* ---- worker processes ---------------------------------------------------- */

struct worker {
	pid_t pid;
	int to;	  /* its stdin */
	int from; /* its stdout */
	char name[48];
	char buf[512]; /* what it said and we have not read as lines yet */
	size_t len;
};

/* Forks a worker that runs @body (which must not return) on CPU @cpu; its
 * stdin and stdout are pipes to us, stderr goes to @log. */
void worker_fork(struct worker *w, const char *name, int cpu, const char *log,
		 void (*body)(void *arg, int in, int out), void *arg);
/* Starts @argv as a worker the same way. */
void worker_exec(struct worker *w, const char *name, int cpu, const char *log, char *const argv[]);
/* Reads one line (without its newline) within @timeout_ms.
 * Return: 0, or -1 (EOF, timeout: @line says which). */
int worker_line(struct worker *w, char *line, size_t len, int timeout_ms);
/* Waits for "ready"; on anything else, @why says what came instead. */
int worker_ready(struct worker *w, int timeout_ms, char *why, size_t len);
/* "quit", then EOF, then waits for it (SIGKILL after 5 s). */
void worker_stop(struct worker *w);
/*
 * Runs @pat on @n workers (at most 4): each is prepared in turn (its ring
 * filled), then all start together for opt.trial_ms. Return: total calls per
 * second (calls of all / from the first start to the last end), or -1 with
 * the reason in @why.
 */
double workers_run(struct worker *w, unsigned int n, enum wl_pattern pat, uint64_t seed, char *why,
		   size_t len);

/* ---- latency histograms (log-linear, 32 buckets per power of two) -------- */

#define HIST_SUB_BITS 5
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
	uint32_t b[HIST_BUCKETS];
};

static inline unsigned int hist_index(uint64_t v)
{
	unsigned int e;

	if (v < (1u << HIST_SUB_BITS))
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v);
	return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) +
	       (unsigned int)((v >> (e - HIST_SUB_BITS)) - (1u << HIST_SUB_BITS));
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
}

/* The q-quantile (0..1) of @n merged histograms, in the unit added (upper
 * edge of its bucket, ~3% resolution); the total count in *count. */
double hist_quantile(const struct hist *h, unsigned int n, double q, uint64_t *count);

/* ---- /proc --------------------------------------------------------------- */

/* CPU time of every thread of @pid in ns (schedstat; /proc/PID/stat's
 * utime+stime when schedstat is missing); -1 if unreadable. */
int64_t proc_cpu_ns(pid_t pid);
/* VmRSS of @pid in bytes; -1 if unreadable. */
int64_t proc_rss(pid_t pid);
/* Our own RssAnon in bytes (glibc's baselines). */
int64_t proc_self_rss_anon(void);

/* Polls the daemon (raw Meminfo on @fd) until it holds at most @grants
 * grants, for up to @timeout_ms. Return: 0, or -1. */
int wait_grants(int fd, uint64_t grants, int timeout_ms);
