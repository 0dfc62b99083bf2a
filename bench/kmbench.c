// SPDX-License-Identifier: MIT
/*
 * kmbench.c - the broker's figures against the ways a program would do without it.
 *
 * Two comparisons, measured side by side in one run against one kmallocd:
 *
 *  (1) a 64-byte km_kmalloc() + km_kfree() against a bare SOCK_SEQPACKET ping-pong
 *      of 64 bytes between two processes (the floor for anything that asks a daemon).
 *      The library defers small kfrees onto the next request, so a loop of both
 *      costs one round trip; the target is broker/ping-pong >= 0.70 in ops/s.
 *  (2) a shared buffer ready to write: km_kmalloc() of 4 MiB and km_vmalloc() of
 *      64 MiB, every 4 KiB page written once, against memfd_create + ftruncate +
 *      mmap(MAP_SHARED) + first touch of the same size, with 4 KiB pages and with
 *      MFD_HUGETLB (one touch per 2 MiB page). Targets, stated for a hugepage pool:
 *      broker >= 100x faster than the 4 KiB memfd, >= 5x faster than the hugetlb one.
 *
 * Every measurement is repeated and reported as median, p10 and p90; targets are
 * judged on medians. The trials of (1) alternate between the two loops, so drift of
 * the host hits both alike. Those of (2) run back to back per case, as a program
 * getting buffers in a row would; --interleave takes the cases in turn instead,
 * which leaves the daemon's CPU idle between two requests and adds a cold wake-up
 * (some 50 us on a 2-vCPU VM) to every broker trial: the figure for a program that
 * allocates now and then. Warm-up runs come first: the first allocation in a domain
 * takes frames from the pool, later ones reuse them, which is the design being
 * measured. Times come from CLOCK_MONOTONIC; what a trial got is freed, untimed,
 * before the next.
 *
 * The daemon is --socket PATH, $KMALLOC_SOCKET or the default path, or with --spawn
 * a kmallocd started here on a socket in a temporary directory and stopped with
 * SIGTERM at the end. With --hugepages as root, vm.nr_hugepages is raised for the
 * pool and the hugetlb baseline and put back at exit (also on SIGINT/SIGTERM).
 * A spawned daemon and the echo server share one CPU and the bench runs on another
 * (--placement), so that both round trips pay the same cross-CPU wake-ups.
 *
 * Exit status: 0 when everything ran (and, in a full run, every target that
 * applies was met), 1 on an error, 2 on a usage error, 3 when a target was missed
 * (never with --quick, which only reports), 77 when --hugepages cannot get its
 * hugepages (meson's SKIP).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"
#include "kmclient.h"

#define MSG_SIZE 64 /* bytes per ping-pong packet and per small kmalloc */

/* ------------------------------------------------------------------------- */
/* Options                                                                    */

/*
 * With --spawn, the bench runs on one CPU and both servers (echo and kmallocd) on
 * another (--placement cross), or all on one (same), so that both round trips pay
 * the same wake-ups. Left to itself (none), the scheduler of a 2-vCPU VM keeps a
 * pair on one CPU in some runs and not in others, which changes a round trip 3-6x
 * and, when the two pairs land differently, the ratio. A daemon given by --socket
 * is not ours to pin; then nothing is.
 */
enum placement { PLACEMENT_CROSS, PLACEMENT_SAME, PLACEMENT_NONE, PLACEMENT_MAX };

static const char *const placement_names[PLACEMENT_MAX] = {
	[PLACEMENT_CROSS] = "cross",
	[PLACEMENT_SAME] = "same",
	[PLACEMENT_NONE] = "none",
};

static struct {
	const char *socket;	  /* --socket, else $KMALLOC_SOCKET, else the default */
	const char *spawn;	  /* kmallocd to start, or NULL */
	const char *pool_size;	  /* --pool-size for a spawned daemon */
	enum placement placement; /* of the bench against its servers (--spawn only) */
	bool hugepages;
	bool interleave; /* (2): cases in turn rather than back to back */
	bool quick;
	unsigned long iterations; /* round trips per trial of (1) */
	unsigned int rt_trials;	  /* trials of (1) */
	unsigned int trials;	  /* trials of (2) */
} opt = {
	.pool_size = "512M",
};

/* ------------------------------------------------------------------------- */
/* (1) round trips: seqpacket ping-pong and kmalloc+kfree of 64 bytes        */

/* @iterations 64-byte round trips to the echo server. Return: ops/s. */
static double pingpong_trial(int fd, unsigned long iterations)
{
	char msg[MSG_SIZE], back[256];
	uint64_t t0, t1;

	memset(msg, 0x5a, sizeof(msg));
	t0 = now_ns();
	for (unsigned long i = 0; i < iterations; i++) {
		ssize_t n;

		if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
			fail("ping-pong send: %s", strerror(errno));
		do
			n = recv(fd, back, sizeof(back), 0);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(msg))
			fail("ping-pong recv: %s", n < 0 ? strerror(errno) : "short packet");
	}
	t1 = now_ns();
	return (double)iterations * 1e9 / (double)(t1 - t0);
}

/* @iterations km_kmalloc(64) + one write + km_kfree(). Return: ops/s. */
static double kmalloc_trial(km_client *c, unsigned long iterations)
{
	uint64_t t0, t1;

	t0 = now_ns();
	for (unsigned long i = 0; i < iterations; i++) {
		char *p = km_kmalloc(c, MSG_SIZE, KM_GFP_KERNEL);

		if (!p)
			fail("km_kmalloc(%d, KM_GFP_KERNEL): %s", MSG_SIZE, strerror(errno));
		*(volatile char *)p = (char)i;
		km_kfree(c, p);
	}
	t1 = now_ns();
	return (double)iterations * 1e9 / (double)(t1 - t0);
}

static void run_roundtrips(km_client *c, int echo_fd, struct series *pp, struct series *km)
{
	unsigned long warmup = opt.iterations / 10 > 100 ? opt.iterations / 10 : 100;

	series_init(pp, "seqpacket ping-pong 64 B", "ops/s", opt.rt_trials);
	series_init(km, "kmalloc+kfree 64 B", "ops/s", opt.rt_trials);
	pingpong_trial(echo_fd, warmup);
	kmalloc_trial(c, warmup);
	for (unsigned int t = 0; t < opt.rt_trials; t++) {
		pp->v[pp->n++] = pingpong_trial(echo_fd, opt.iterations);
		km->v[km->n++] = kmalloc_trial(c, opt.iterations);
	}
}

/* ------------------------------------------------------------------------- */
/* (2) a ready-to-write shared buffer                                         */

enum buf_kind { BUF_MEMFD_4K, BUF_MEMFD_HUGETLB, BUF_KMALLOC, BUF_VMALLOC };

enum buf_case {
	CASE_MEMFD_4M,
	CASE_HUGETLB_4M,
	CASE_KMALLOC_4M,
	CASE_MEMFD_64M,
	CASE_HUGETLB_64M,
	CASE_VMALLOC_64M,
	CASE_MAX
};

static const struct {
	const char *name;
	enum buf_kind kind;
	size_t size;
} buf_cases[CASE_MAX] = {
	[CASE_MEMFD_4M] = { "memfd 4 KiB pages, 4 MiB", BUF_MEMFD_4K, SZ_4M },
	[CASE_HUGETLB_4M] = { "memfd hugetlb, 4 MiB", BUF_MEMFD_HUGETLB, SZ_4M },
	[CASE_KMALLOC_4M] = { "kmalloc 4 MiB", BUF_KMALLOC, SZ_4M },
	[CASE_MEMFD_64M] = { "memfd 4 KiB pages, 64 MiB", BUF_MEMFD_4K, SZ_64M },
	[CASE_HUGETLB_64M] = { "memfd hugetlb, 64 MiB", BUF_MEMFD_HUGETLB, SZ_64M },
	[CASE_VMALLOC_64M] = { "vmalloc 64 MiB", BUF_VMALLOC, SZ_64M },
};

/* Writes one byte in every @step bytes: the first touch that makes pages real. */
static void touch(char *p, size_t size, size_t step)
{
	for (size_t off = 0; off < size; off += step)
		((volatile char *)p)[off] = (char)(off >> 12);
}

/*
 * memfd_create + ftruncate + mmap(MAP_SHARED) + first touch, timed; munmap + close
 * untimed. Return: 0 with the time in *us, or -errno (a hugetlb memfd without free
 * hugepages fails in mmap with ENOMEM).
 */
static int memfd_trial(size_t size, bool huge, double *us)
{
	unsigned int flags = MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0);
	uint64_t t0, t1;
	int fd, err;
	char *p;

	t0 = now_ns();
	fd = memfd_create("kmbench", flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto err_close;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto err_close;
	/* 4 KiB pages even where shmem_enabled lets the host use THP for memfds. */
	if (!huge)
		madvise(p, size, MADV_NOHUGEPAGE);
	/* The same work as the broker's trials: a write to every 4 KiB page. */
	touch(p, size, SZ_4K);
	t1 = now_ns();
	munmap(p, size);
	close(fd);
	*us = (double)(t1 - t0) / 1e3;
	return 0;

err_close:
	err = errno;
	close(fd);
	return -err;
}

/* km_kmalloc or km_vmalloc + a write to every 4 KiB page, timed; the free untimed. */
static double broker_trial(km_client *c, enum buf_kind kind, size_t size)
{
	uint64_t t0, t1;
	char *p;

	t0 = now_ns();
	p = kind == BUF_KMALLOC ? km_kmalloc(c, size, KM_GFP_KERNEL) : km_vmalloc(c, size);
	if (!p)
		fail("%s(%zu): %s", kind == BUF_KMALLOC ? "km_kmalloc" : "km_vmalloc", size,
		     strerror(errno));
	touch(p, size, SZ_4K);
	t1 = now_ns();
	if (kind == BUF_KMALLOC)
		km_kfree(c, p);
	else
		km_vfree(c, p);
	return (double)(t1 - t0) / 1e3;
}

/* One trial of @i; @record false for the warm-up round. */
static void buf_case_run(km_client *c, enum buf_case i, struct series *s, bool record)
{
	enum buf_kind kind = buf_cases[i].kind;
	size_t size = buf_cases[i].size;
	double us = 0;
	int err;

	if (s->skipped)
		return;
	if (kind == BUF_KMALLOC || kind == BUF_VMALLOC) {
		us = broker_trial(c, kind, size);
	} else {
		err = memfd_trial(size, kind == BUF_MEMFD_HUGETLB, &us);
		if (err < 0 && kind == BUF_MEMFD_HUGETLB) {
			/* Hugepages are the host's to give (ENOMEM: none left); no figure. */
			series_skip(s, "skipped: hugetlb memfd: %s", strerror(-err));
			return;
		}
		if (err < 0)
			fail("%s: %s", buf_cases[i].name, strerror(-err));
	}
	if (record)
		s->v[s->n++] = us;
}

static void run_buffers(km_client *c, struct series s[CASE_MAX])
{
	long free_huge = hugepages_free();

	for (int i = 0; i < CASE_MAX; i++) {
		long need = (long)(buf_cases[i].size / SZ_2M);

		series_init(&s[i], buf_cases[i].name, "us", opt.trials);
		if (buf_cases[i].kind != BUF_MEMFD_HUGETLB)
			continue;
		if (free_huge < 0)
			series_skip(&s[i], "skipped: the host has no 2 MiB hugepages");
		else if (free_huge < need)
			series_skip(&s[i], "skipped: %ld free 2 MiB hugepages, %ld needed%s",
				    free_huge, need,
				    opt.hugepages ? "" : " (--hugepages as root reserves them)");
	}
	if (opt.interleave) {
		for (int i = 0; i < CASE_MAX; i++)
			buf_case_run(c, (enum buf_case)i, &s[i], false);
		for (unsigned int t = 0; t < opt.trials; t++)
			for (int i = 0; i < CASE_MAX; i++)
				buf_case_run(c, (enum buf_case)i, &s[i], true);
		return;
	}
	for (int i = 0; i < CASE_MAX; i++) {
		buf_case_run(c, (enum buf_case)i, &s[i], false);
		for (unsigned int t = 0; t < opt.trials; t++)
			buf_case_run(c, (enum buf_case)i, &s[i], true);
	}
}

/* ------------------------------------------------------------------------- */
/* Report                                                                     */

enum verdict { VERDICT_NA, VERDICT_PASS, VERDICT_FAIL, VERDICT_MAX };

static const char *const verdict_names[VERDICT_MAX] = {
	[VERDICT_NA] = "n.a.",
	[VERDICT_PASS] = "PASS",
	[VERDICT_FAIL] = "FAIL",
};

static unsigned int nr_failed;

static void print_header(void)
{
	printf("%-34s %10s %10s %10s %8s %8s  %s\n", "test", "median", "p10", "p90", "target",
	       "ratio", "result");
}

static void print_values(const char *label, const struct series *s)
{
	char name[64];

	snprintf(name, sizeof(name), "%s (%s)", label, s->unit);
	if (s->skipped) {
		printf("%-34s %10s %10s %10s", name, "-", "-", "-");
		return;
	}
	if (strcmp(s->unit, "us") == 0)
		printf("%-34s %10.1f %10.1f %10.1f", name, series_median(s),
		       series_quantile(s, 0.1), series_quantile(s, 0.9));
	else
		printf("%-34s %10.0f %10.0f %10.0f", name, series_median(s),
		       series_quantile(s, 0.1), series_quantile(s, 0.9));
}

/*
 * Finishes a row with target, ratio and verdict: @ratio >= @target passes. A target
 * that does not apply (@applies false) or a missing ratio (skipped baseline) is n.a.
 * @times: the ratio is an "x faster" factor, else a plain fraction.
 */
static void print_target(double target, double ratio, bool have_ratio, bool applies, bool times,
			 const char *note)
{
	enum verdict v = VERDICT_NA;
	char target_text[16], ratio_text[16];

	if (times)
		snprintf(target_text, sizeof(target_text), ">=%.0fx", target);
	else
		snprintf(target_text, sizeof(target_text), ">=%.2f", target);
	if (!have_ratio)
		snprintf(ratio_text, sizeof(ratio_text), "-");
	else if (times)
		snprintf(ratio_text, sizeof(ratio_text), "%.1fx", ratio);
	else
		snprintf(ratio_text, sizeof(ratio_text), "%.2f", ratio);
	if (have_ratio && applies)
		v = ratio >= target ? VERDICT_PASS : VERDICT_FAIL;
	if (v == VERDICT_FAIL)
		nr_failed++;
	printf(" %8s %8s  %-6s %s\n", target_text, ratio_text, verdict_names[v], note);
}

/* The row of a baseline: no target; a skipped one says why. */
static void print_plain(const struct series *s)
{
	print_values(s->name, s);
	printf("%s%s\n", s->skipped ? "  " : "", s->note);
}

/* A broker buffer row with its target against the 4 KiB memfd, then a row against hugetlb. */
static void print_buffer_rows(const struct series *broker, const struct series *memfd,
			      const struct series *huge, bool applies)
{
	double b = series_median(broker);

	print_values(broker->name, broker);
	print_target(100, series_median(memfd) / b, true, applies, true, "vs memfd 4 KiB pages");
	printf("%-34s %10s %10s %10s", "", "", "", "");
	print_target(5, huge->skipped ? 0 : series_median(huge) / b, !huge->skipped, applies, true,
		     huge->skipped ? "vs memfd hugetlb (skipped)" : "vs memfd hugetlb");
}

/* The same measurements through a client without its per-client lists
 * (KMCLIENT_NO_CACHE=1): every kmalloc is one round trip to the daemon. */
struct cold {
	struct series km;  /* kmalloc+kfree 64 B */
	struct series k4m; /* kmalloc 4 MiB */
};

static void run_cold(const char *socket, struct cold *cold)
{
	km_client *c;

	setenv("KMCLIENT_NO_CACHE", "1", 1);
	c = km_connect(socket);
	unsetenv("KMCLIENT_NO_CACHE");
	if (!c)
		fail("km_connect(%s): %s", socket ? socket : KM_DEFAULT_SOCKET, strerror(errno));
	series_init(&cold->km, "  one round trip each", "ops/s", opt.rt_trials);
	series_init(&cold->k4m, "  one round trip each", "us", opt.trials);
	kmalloc_trial(c, opt.iterations / 10 > 100 ? opt.iterations / 10 : 100);
	for (unsigned int t = 0; t < opt.rt_trials; t++)
		cold->km.v[cold->km.n++] = kmalloc_trial(c, opt.iterations);
	broker_trial(c, BUF_KMALLOC, SZ_4M);
	for (unsigned int t = 0; t < opt.trials; t++)
		cold->k4m.v[cold->k4m.n++] = broker_trial(c, BUF_KMALLOC, SZ_4M);
	km_disconnect(c);
}

/* An informative row: the ratio against @base, no verdict. */
static void print_info(const struct series *s, double ratio, bool times, const char *note)
{
	print_values(s->name, s);
	if (times)
		printf(" %8s %7.1fx  %-6s %s\n", "", ratio, "info", note);
	else
		printf(" %8s %8.2f  %-6s %s\n", "", ratio, "info", note);
}

static void report(const km_meminfo *mi, const struct series *pp, const struct series *km,
		   const struct series buf[CASE_MAX], const struct cold *cold)
{
	bool huge_pool = mi->hugetlb != 0;

	printf("\nkmbench: pool %llu MiB, %s\n", (unsigned long long)(mi->total >> 20),
	       huge_pool ? "hugetlb" : "shmem");
	printf("(1) %u trials x %lu round trips, (2) %u trials %s, each after a warm-up%s\n",
	       opt.rt_trials, opt.iterations, opt.trials,
	       opt.interleave ? "interleaved" : "back to back",
	       opt.quick ? "; --quick: targets reported, not enforced" : "");
	if (st.cpu_client >= 0)
		printf("bench on CPU %d, echo server and kmallocd on CPU %d (--placement %s)\n",
		       st.cpu_client, st.cpu_server, placement_names[opt.placement]);
	else
		printf("CPU placement left to the scheduler\n");
	print_header();
	print_plain(pp);
	print_values(km->name, km);
	print_target(0.70, series_median(km) / series_median(pp), true, true, false,
		     "broker / ping-pong");
	print_info(&cold->km, series_median(&cold->km) / series_median(pp), false,
		   "KMCLIENT_NO_CACHE=1, vs ping-pong");
	print_plain(&buf[CASE_MEMFD_4M]);
	print_plain(&buf[CASE_HUGETLB_4M]);
	print_buffer_rows(&buf[CASE_KMALLOC_4M], &buf[CASE_MEMFD_4M], &buf[CASE_HUGETLB_4M],
			  huge_pool);
	if (!buf[CASE_HUGETLB_4M].skipped)
		print_info(&cold->k4m,
			   series_median(&buf[CASE_HUGETLB_4M]) / series_median(&cold->k4m), true,
			   "KMCLIENT_NO_CACHE=1, vs memfd hugetlb");
	print_plain(&buf[CASE_MEMFD_64M]);
	print_plain(&buf[CASE_HUGETLB_64M]);
	print_buffer_rows(&buf[CASE_VMALLOC_64M], &buf[CASE_MEMFD_64M], &buf[CASE_HUGETLB_64M],
			  huge_pool);
	printf("ratios: ops/s of the broker over the ping-pong's; time of the memfd over the "
	       "broker's (x faster)\n");
	printf("info rows: the client's own object lists off, so each kmalloc is one round "
	       "trip to kmallocd\n");
	if (!huge_pool)
		printf("n.a.: the pool is shmem-backed; the buffer targets are stated for a "
		       "hugepage pool (--hugepages)\n");
}

/* ------------------------------------------------------------------------- */
/* Command line                                                               */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kmbench [--socket PATH | --spawn KMALLOCD] [OPTION]...\n"
		"Measure kmallocd (kmalloc-broker %s) against a bare seqpacket ping-pong\n"
		"and against memfd buffers.\n\n"
		"  --socket PATH      daemon socket (default: $KMALLOC_SOCKET, else %s)\n"
		"  --spawn KMALLOCD   start this kmallocd on a temporary socket, stop it at exit\n"
		"  --pool-size SIZE   pool of the spawned daemon (default 512M)\n"
		"  --placement WHERE  CPUs of the bench against the echo server and the spawned\n"
		"                     daemon: cross (default: two CPUs), same (one), none\n"
		"                     (the scheduler's choice; always so with --socket)\n"
		"  --hugepages        spawned daemon with --require-hugepages; as root, raise\n"
		"                     vm.nr_hugepages for the pool and the hugetlb baseline and\n"
		"                     put it back at exit; exit 77 if hugepages cannot be had\n"
		"  --iterations N     round trips per trial of the kmalloc+kfree test (20000)\n"
		"  --trials N         trials of the buffer tests (15)\n"
		"  --interleave       buffer tests: one trial of each case in turn, so that the\n"
		"                     daemon idles between requests (default: back to back)\n"
		"  --quick            few iterations, targets not enforced (CI smoke run)\n"
		"  --help             this text\n\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 a target missed (full runs only),\n"
		"77 hugepages unavailable with --hugepages.\n",
		PACKAGE_VERSION, KM_DEFAULT_SOCKET);
}

static unsigned long parse_count(const char *name, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 100000000ul || *s == '-') {
		fprintf(stderr, "kmbench: %s: not a count: '%s'\n", name, s);
		exit(EXIT_USAGE);
	}
	return v;
}

/* A --placement name; exits with a usage error for anything else. */
static enum placement parse_placement(const char *s)
{
	for (int i = 0; i < PLACEMENT_MAX; i++)
		if (strcmp(s, placement_names[i]) == 0)
			return (enum placement)i;
	fprintf(stderr, "kmbench: --placement: cross, same or none, not '%s'\n", s);
	exit(EXIT_USAGE);
}

/* What the command line asked for, before the checks and defaults of
 * check_options(); 0 where it said nothing (placement: -1). */
struct given {
	unsigned long iterations, trials;
	int placement;
};

/* The flags into opt and @given; exits on --help and on a usage error. */
static void read_options(int argc, char **argv, struct given *given)
{
	enum {
		OPT_SOCKET = 256,
		OPT_SPAWN,
		OPT_POOL,
		OPT_PLACEMENT,
		OPT_HUGE,
		OPT_ITER,
		OPT_TRIALS,
		OPT_INTERLEAVE,
		OPT_QUICK,
		OPT_HELP
	};
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "spawn", required_argument, NULL, OPT_SPAWN },
		{ "pool-size", required_argument, NULL, OPT_POOL },
		{ "placement", required_argument, NULL, OPT_PLACEMENT },
		{ "hugepages", no_argument, NULL, OPT_HUGE },
		{ "iterations", required_argument, NULL, OPT_ITER },
		{ "trials", required_argument, NULL, OPT_TRIALS },
		{ "interleave", no_argument, NULL, OPT_INTERLEAVE },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_SOCKET:
			opt.socket = optarg;
			break;
		case OPT_SPAWN:
			opt.spawn = optarg;
			break;
		case OPT_POOL:
			opt.pool_size = optarg;
			break;
		case OPT_PLACEMENT:
			given->placement = (int)parse_placement(optarg);
			break;
		case OPT_HUGE:
			opt.hugepages = true;
			break;
		case OPT_ITER:
			given->iterations = parse_count("--iterations", optarg);
			break;
		case OPT_TRIALS:
			given->trials = parse_count("--trials", optarg);
			break;
		case OPT_INTERLEAVE:
			opt.interleave = true;
			break;
		case OPT_QUICK:
			opt.quick = true;
			break;
		case OPT_HELP:
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			exit(EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kmbench: unexpected argument '%s'\n", argv[optind]);
		exit(EXIT_USAGE);
	}
}

/* Options that exclude each other, sizes, and what follows from them:
 * placement, socket, iteration and trial counts. Exits on a usage error. */
static void check_options(const struct given *given)
{
	if (opt.socket && opt.spawn) {
		fprintf(stderr, "kmbench: --socket and --spawn exclude each other\n");
		exit(EXIT_USAGE);
	}
	if (parse_size(opt.pool_size) < SZ_64M + SZ_4M) {
		fprintf(stderr, "kmbench: --pool-size '%s': need a size of 68M or more\n",
			opt.pool_size);
		exit(EXIT_USAGE);
	}
	if (!opt.spawn && given->placement >= 0 && given->placement != PLACEMENT_NONE) {
		fprintf(stderr,
			"kmbench: --placement %s needs --spawn: a daemon found by its "
			"socket is not ours to pin\n",
			placement_names[given->placement]);
		exit(EXIT_USAGE);
	}
	opt.placement = !opt.spawn		? PLACEMENT_NONE
			: given->placement >= 0 ? (enum placement)given->placement
						: PLACEMENT_CROSS;
	if (!opt.socket && !opt.spawn)
		opt.socket = getenv("KMALLOC_SOCKET");
	if (opt.socket && strlen(opt.socket) >= sizeof(st.sock_path)) {
		fprintf(stderr, "kmbench: socket path too long: %s\n", opt.socket);
		exit(EXIT_USAGE);
	}
	opt.iterations = given->iterations ? given->iterations : opt.quick ? 1000 : 20000;
	opt.rt_trials = opt.quick ? 3 : 7;
	opt.trials = given->trials ? (unsigned int)given->trials : opt.quick ? 3 : 15;
}

static void parse_options(int argc, char **argv)
{
	struct given given = { .placement = -1 };

	read_options(argc, argv, &given);
	check_options(&given);
}

/* Before spawning: hugepages for the pool (if spawned) and the 64 MiB baseline. */
static void reserve_hugepages(void)
{
	long pool_pages = opt.spawn ? (long)(parse_size(opt.pool_size) / SZ_2M) : 0;
	long need = pool_pages + (long)(SZ_64M / SZ_2M);
	long free_now = hugepages_ensure_free(need, opt.hugepages);

	if (free_now >= need)
		return;
	if (opt.spawn && free_now < pool_pages) {
		fprintf(stderr,
			"kmbench: --hugepages: %ld free 2 MiB hugepages, the pool needs "
			"%ld; %s\n",
			free_now < 0 ? 0 : free_now, pool_pages,
			geteuid() == 0 ? "the kernel could not provide them"
				       : "run as root or raise vm.nr_hugepages");
		cleanup();
		exit(EXIT_SKIP);
	}
	fprintf(stderr, "kmbench: %ld free 2 MiB hugepages, %ld wanted\n",
		free_now < 0 ? 0 : free_now, need);
}

int main(int argc, char **argv)
{
	struct series pp, km, buf[CASE_MAX];
	struct cold cold;
	bool daemon_ok;
	km_meminfo mi;
	km_client *c;
	int echo_fd;

	parse_options(argc, argv);
	bench_init("kmbench");
	setvbuf(stdout, NULL, _IOLBF, 0);

	cpus_pick(opt.placement != PLACEMENT_NONE, opt.placement == PLACEMENT_CROSS);
	cpu_pin(st.cpu_client);
	if (opt.hugepages)
		reserve_hugepages();
	if (opt.spawn) {
		static const char *const require_huge[] = { "--require-hugepages", NULL };

		daemon_spawn(opt.spawn, opt.pool_size, opt.hugepages ? require_huge : NULL);
		opt.socket = st.sock_path;
	}
	echo_fd = echo_start();
	c = km_connect(opt.socket);
	if (!c)
		fail("km_connect(%s): %s", opt.socket ? opt.socket : KM_DEFAULT_SOCKET,
		     strerror(errno));
	if (km_get_meminfo(c, &mi) < 0)
		fail("km_get_meminfo: %s", strerror(errno));
	if (opt.hugepages)
		hugepages_ensure_free((long)(SZ_64M / SZ_2M), true);
	printf("kmbench: %s, pool %llu MiB %s; measuring...\n",
	       opt.spawn    ? "spawned kmallocd"
	       : opt.socket ? opt.socket
			    : KM_DEFAULT_SOCKET,
	       (unsigned long long)(mi.total >> 20), mi.hugetlb ? "hugetlb" : "shmem");

	run_roundtrips(c, echo_fd, &pp, &km);
	run_buffers(c, buf);
	run_cold(opt.socket, &cold);

	km_disconnect(c);
	close(echo_fd);
	echo_stop();
	daemon_ok = daemon_stop();

	report(&mi, &pp, &km, buf, &cold);
	if (!daemon_ok) {
		daemon_log_tail();
		cleanup();
		fprintf(stderr, "kmbench: kmallocd did not exit cleanly on SIGTERM\n");
		return EXIT_FAILURE;
	}
	cleanup();
	series_free(&pp);
	series_free(&km);
	series_free(&cold.km);
	series_free(&cold.k4m);
	for (int i = 0; i < CASE_MAX; i++)
		series_free(&buf[i]);
	if (nr_failed && !opt.quick) {
		printf("kmbench: %u target%s missed\n", nr_failed, nr_failed == 1 ? "" : "s");
		return EXIT_MISSED;
	}
	return EXIT_SUCCESS;
}
