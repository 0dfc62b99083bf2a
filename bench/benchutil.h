/* SPDX-License-Identifier: MIT */
/*
 * benchutil.h - what kmbench and kmperf share: clocks, statistics over
 * repeated trials, CPU placement, hugepages reserved for a run and given back,
 * a kmallocd spawned on a temporary socket, a SOCK_SEQPACKET echo server, and
 * the clean-up that undoes all of it (also from a signal handler).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* log2(2 MiB) << MFD_HUGE_SHIFT, <linux/memfd.h> */
#endif

#define SZ_4K  4096ul
#define SZ_2M  (2ul << 20)
#define SZ_4M  (4ul << 20)
#define SZ_64M (64ul << 20)

#define EXIT_USAGE  2
#define EXIT_MISSED 3
#define EXIT_SKIP   77

#define HUGEPAGES_DIR	 "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define READY_TIMEOUT_NS (30ull * 1000000000ull)
#define STOP_TIMEOUT_NS	 (10ull * 1000000000ull)

#define BENCH_MAX_CLEAN 16 /* files and mounts the clean-up removes */

/*
 * What cleanup() undoes. It runs from a signal handler too, so it touches
 * nothing but these fields and calls only async-signal-safe functions; it does
 * nothing in a process other than main_pid (a forked worker that fails must
 * not stop the daemon of the whole run).
 */
struct bench_state {
	const char *prog; /* "kmbench", for messages */
	pid_t main_pid;
	pid_t daemon_pid; /* 0: none running */
	pid_t echo_pid;	  /* 0: none running */
	int cpu_client;	  /* CPU of the bench, -1: not pinned */
	int cpu_server;	  /* CPU of the echo server and a spawned daemon */
	char tmpdir[64];  /* "" when none was made */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char log_path[96];
	long nr_added; /* hugepages this run added to nr_hugepages */
	/* Extra files to unlink and mount points to detach, in the tmpdir. */
	char files[BENCH_MAX_CLEAN][128];
	unsigned int nr_files;
	char mounts[BENCH_MAX_CLEAN][128];
	unsigned int nr_mounts;
	void (*extra_cleanup)(void); /* the program's own, async-signal-safe */
};

extern struct bench_state st;

/* Sets st.prog and st.main_pid, installs the signal handlers. */
void bench_init(const char *prog);

/* Prints "prog: message" to stderr, the daemon's log tail, cleans up, exit(1). */
void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...);

uint64_t now_ns(void);
void sleep_ms(unsigned int ms);
/* Sleeps until CLOCK_MONOTONIC reaches @t (ns). */
void sleep_until(uint64_t t);

/* ---- statistics ---------------------------------------------------------- */

/* One measured quantity: a value per trial, or a note saying why it was skipped. */
struct series {
	const char *name;
	const char *unit; /* "ops/s" or "us" */
	double *v;
	unsigned int n;
	bool skipped;
	char note[160];
};

void series_init(struct series *s, const char *name, const char *unit, unsigned int cap);
void series_free(struct series *s);
void __attribute__((format(printf, 2, 3))) series_skip(struct series *s, const char *fmt, ...);
/* The q-quantile (0..1) of the series, interpolating between order statistics. */
double series_quantile(const struct series *s, double q);
double series_median(const struct series *s);
double series_max(const struct series *s);

/* ---- CPU placement ------------------------------------------------------- */

/*
 * Picks st.cpu_client and st.cpu_server: the first two CPUs of our affinity
 * mask (@cross), or the first for both; -1 for both when @pin is false or only
 * one CPU is there to choose from with @cross.
 */
void cpus_pick(bool pin, bool cross);
void cpu_pin(int cpu);

/* ---- hugepages ----------------------------------------------------------- */

long read_long(const char *path);
int write_long(const char *path, long v);
long hugepages_free(void);
/*
 * Makes @need 2 MiB hugepages free, raising nr_hugepages by the shortfall when
 * @may_raise and root. What was added is counted in st.nr_added, and only that
 * is taken back at exit. Return: free hugepages afterwards (-1: the host has none).
 */
long hugepages_ensure_free(long need, bool may_raise);
/* Async-signal-safe: takes back the hugepages hugepages_ensure_free() added. */
void hugepages_restore(void);

/* ---- the daemon under test ---------------------------------------------- */

/* Makes st.tmpdir ($TMPDIR/<prog>.XXXXXX) and the socket and log paths in it. */
void tmpdir_make(void);
/* A file or a mount point (in the tmpdir) for the clean-up to remove. */
void clean_add_file(const char *path);
void clean_add_mount(const char *path);

bool socket_accepts(const char *path);
/*
 * Starts @argv (argv[0] is the executable) on CPU @cpu with its output in @log,
 * prctl(PR_SET_PDEATHSIG) so that it dies with us. Return: its pid.
 */
pid_t spawn_logged(char *const argv[], const char *log, int cpu);
/*
 * Starts `@exe --socket <tmpdir>/sock --pool-size @pool_size @extra...` on
 * st.cpu_server, its output in <tmpdir>/kmallocd.log, and waits until the
 * socket accepts a connection (up to 30 s) or the daemon dies.
 */
void daemon_spawn(const char *exe, const char *pool_size, const char *const *extra);
/* Waits up to @timeout_ns for @pid; 0 with its wait status, or -1 if it still runs. */
int child_reap(pid_t pid, uint64_t timeout_ns, int *status);
/* SIGTERM, then SIGKILL after STOP_TIMEOUT_NS. Return: true if it exited cleanly. */
bool daemon_stop(void);
void daemon_log_tail(void);
void describe_status(int status, char *buf, size_t len);

/* ---- a bare SOCK_SEQPACKET round trip ------------------------------------ */

/* Forks an echo server on st.cpu_server; returns our end of the socketpair. */
int echo_start(void);
void echo_stop(void);
/* One round trip of @len bytes (<= 256) to the echo server; fails on error. */
void echo_roundtrip(int fd, const void *msg, size_t len);

/* Async-signal-safe: kill what we started, give hugepages back, remove files. */
void cleanup(void);
/* SIG_DFL for the signals bench_init() caught (in a child before it execs). */
void reset_signals(void);

/* SIZE as kmallocd takes it: bytes or a K/M/G suffix. Return: bytes, 0 if malformed. */
uint64_t parse_size(const char *s);
