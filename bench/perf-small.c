// SPDX-License-Identifier: MIT
/*
 * perf-small.c - figures 1 and 2: small objects through km_kmalloc/km_kfree
 * against glibc (1 and 2 threads), boost.interprocess and DPDK rte_malloc
 * (2 processes).
 *
 * Every repetition runs each pattern once per allocator, in an order that
 * rotates from one repetition to the next; the figure is the median. The
 * patterns are workload.c's, the same code for every allocator.
 */
#include "config.h"
#include "kmperf.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kmclient.h"

enum cfg { CFG_T1, CFG_T2, CFG_P2, CFG_MAX };
enum alloc_kind { A_BROKER, A_GLIBC, A_BOOST, A_DPDK, A_MAX };

static const char *const alloc_names[A_MAX] = {
	[A_BROKER] = "broker",
	[A_GLIBC] = "glibc",
	[A_BOOST] = "boost.interprocess",
	[A_DPDK] = "DPDK rte_malloc",
};

/* Patterns with a target (the others are shown for information). */
static bool pattern_has_target(enum wl_pattern p)
{
	return p == WL_PAIRS || p == WL_BATCH1000 || p == WL_BATCH10000 || p == WL_RING;
}

static const char *const pattern_labels[WL_NR_PATTERNS] = {
	[WL_PAIRS] = "64 B alloc/free pairs",
	[WL_BATCH100] = "64 B batches of 100 allocs, then frees",
	[WL_BATCH1000] = "64 B batches of 1000",
	[WL_BATCH10000] = "64 B batches of 10000",
	[WL_RING] = "ring of 4096 live, random 16-2048 B",
	[WL_BULK1000] = "64 B batches of 1000, km_kmalloc_bulk/km_kfree_bulk",
};

/* series[cfg][allocator][pattern] */
static struct series res[CFG_MAX][A_MAX][WL_NR_PATTERNS];

/* ------------------------------------------------------------------------- */
/* Allocators                                                                 */

static void *glibc_alloc(void *ctx, size_t size)
{
	return malloc(size);
}

static void glibc_free(void *ctx, void *p)
{
	free(p);
}

static const struct wl_alloc glibc = {
	.name = "glibc",
	.alloc = glibc_alloc,
	.free = glibc_free,
};

static void *broker_alloc(void *ctx, size_t size)
{
	return km_kmalloc(ctx, size, KM_GFP_KERNEL);
}

static void broker_free(void *ctx, void *p)
{
	km_kfree(ctx, p);
}

static int broker_alloc_bulk(void *ctx, size_t size, size_t n, void **out)
{
	return km_kmalloc_bulk(ctx, size, KM_GFP_KERNEL, n, out) < 0 ? -1 : 0;
}

static void broker_free_bulk(void *ctx, size_t n, void **p)
{
	km_kfree_bulk(ctx, n, p);
}

static struct wl_alloc broker(km_client *c)
{
	struct wl_alloc a = {
		.name = "broker",
		.alloc = broker_alloc,
		.free = broker_free,
		.alloc_bulk = broker_alloc_bulk,
		.free_bulk = broker_free_bulk,
		.ctx = c,
	};

	return a;
}

/* ------------------------------------------------------------------------- */
/* Threads of this process                                                    */

struct thr {
	const struct wl_alloc *a;
	enum wl_pattern pat;
	uint64_t seed;
	int cpu;
	pthread_barrier_t *bar;
	const uint64_t *start, *end; /* set between the two barriers */
	struct wl_result res;
	int ret, err;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct wl_state s;
	bool ok;

	cpu_pin(t->cpu);
	ok = wl_prepare(t->a, t->pat, t->seed, &s) == 0;
	t->err = errno;
	pthread_barrier_wait(t->bar); /* every thread prepared */
	pthread_barrier_wait(t->bar); /* start and end set */
	t->ret = -1;
	if (ok) {
		t->ret = wl_exec(t->a, &s, *t->start, *t->end, &t->res);
		t->err = errno;
	}
	return NULL;
}

/* @pat on @n threads of this process, prepared apart and started together, for
 * @trial_ms. Return: calls/s of all, or -1 with the reason in @why. */
static double threads_run(const struct wl_alloc *a, unsigned int n, enum wl_pattern pat,
			  uint64_t seed, uint64_t trial_ms, char *why, size_t len)
{
	int cpus[2] = { st.cpu_client, st.cpu_server };
	uint64_t start = 0, end = 0, t0 = UINT64_MAX, t1 = 0, calls = 0;
	pthread_barrier_t bar;
	pthread_t tid[2];
	struct thr t[2];

	if (n == 1) {
		struct wl_state s;

		t[0].ret = -1;
		if (wl_prepare(a, pat, seed, &s) == 0)
			t[0].ret = wl_exec(a, &s, 0, now_ns() + trial_ms * 1000000ull, &t[0].res);
		t[0].err = errno;
	} else {
		pthread_barrier_init(&bar, NULL, n + 1);
		for (unsigned int i = 0; i < n; i++) {
			t[i] = (struct thr){ .a = a,
					     .pat = pat,
					     .seed = seed + i,
					     .cpu = cpus[i],
					     .bar = &bar,
					     .start = &start,
					     .end = &end };
			if (pthread_create(&tid[i], NULL, thr_main, &t[i]) != 0)
				fail("pthread_create: %s", strerror(errno));
		}
		pthread_barrier_wait(&bar);
		start = now_ns() + 2000000ull;
		end = start + trial_ms * 1000000ull;
		pthread_barrier_wait(&bar);
		for (unsigned int i = 0; i < n; i++)
			pthread_join(tid[i], NULL);
		pthread_barrier_destroy(&bar);
	}
	for (unsigned int i = 0; i < n; i++) {
		if (t[i].ret < 0) {
			snprintf(why, len, "%s %s: an allocation failed: %s", a->name,
				 wl_pattern_names[pat], strerror(t[i].err));
			return -1;
		}
		calls += t[i].res.calls;
		t0 = t[i].res.t0 < t0 ? t[i].res.t0 : t0;
		t1 = t[i].res.t1 > t1 ? t[i].res.t1 : t1;
	}
	return (double)calls * 1e9 / (double)(t1 - t0);
}

static void record(struct series *s, double v, const char *why)
{
	if (s->skipped)
		return;
	if (v < 0)
		series_skip(s, "%s", why);
	else
		s->v[s->n++] = v;
}

/* ------------------------------------------------------------------------- */
/* Peers in processes of their own                                            */

struct peers {
	struct worker w[A_MAX][2];
	bool up[A_MAX];
	char why[A_MAX][480];
	char dpdk_prefix[64];
	char dpdk_huge[256];
	struct worker dpdk_primary;
	char seg[64];
};

static void broker_worker(void *arg, int in, int out)
{
	km_client *c = km_connect(opt.socket);
	struct wl_alloc a;

	if (!c) {
		dprintf(out, "error km_connect: %s\n", strerror(errno));
		return;
	}
	a = broker(c);
	wl_serve(&a, in, out);
	km_disconnect(c);
}

static bool peer_binary(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", opt.peers_dir, name);
	return access(path, X_OK) == 0;
}

static void peers_start_broker(struct peers *p, const char *log)
{
	int cpus[2] = { st.cpu_client, st.cpu_server };

	for (int i = 0; i < 2; i++)
		worker_fork(&p->w[A_BROKER][i], i ? "broker client 2" : "broker client 1", cpus[i],
			    log, broker_worker, NULL);
	p->up[A_BROKER] = true;
	for (int i = 0; i < 2 && p->up[A_BROKER]; i++)
		if (worker_ready(&p->w[A_BROKER][i], 10000, p->why[A_BROKER],
				 sizeof(p->why[A_BROKER])) < 0)
			p->up[A_BROKER] = false;
}

static void peers_start_boost(struct peers *p, const char *log)
{
	int cpus[2] = { st.cpu_client, st.cpu_server };
	char path[512], shm[96];

	if (!peer_binary("kmperf-boost", path, sizeof(path))) {
		snprintf(p->why[A_BOOST], sizeof(p->why[A_BOOST]),
			 "boost.interprocess: kmperf-boost was not built (libboost-dev or a C++ "
			 "compiler was missing when the build was configured; bench/run installs "
			 "them and reconfigures)");
		return;
	}
	snprintf(p->seg, sizeof(p->seg), "kmperf.%d", (int)getpid());
	snprintf(shm, sizeof(shm), "/dev/shm/%s", p->seg);
	clean_add_file(shm);
	p->up[A_BOOST] = true;
	for (int i = 0; i < 2; i++) {
		char *argv[] = { path, p->seg, "64", NULL };

		worker_exec(&p->w[A_BOOST][i], i ? "boost process 2" : "boost process 1", cpus[i],
			    log, argv);
	}
	for (int i = 0; i < 2 && p->up[A_BOOST]; i++)
		if (worker_ready(&p->w[A_BOOST][i], 10000, p->why[A_BOOST],
				 sizeof(p->why[A_BOOST])) < 0)
			p->up[A_BOOST] = false;
}

/* A writable hugetlbfs for DPDK: ours (mounted in the tmpdir) when root, else
 * one the host has. Return: 0, or -1 with the reason in @why. */
static int dpdk_huge_dir(struct peers *p, char *why, size_t len)
{
	char dev[256], dir[255], type[64];
	FILE *f;

	if (geteuid() == 0) {
		snprintf(p->dpdk_huge, sizeof(p->dpdk_huge), "%s/huge", st.tmpdir);
		if (mkdir(p->dpdk_huge, 0700) < 0 && errno != EEXIST) {
			snprintf(why, len, "mkdir %s: %s", p->dpdk_huge, strerror(errno));
			return -1;
		}
		if (mount("nodev", p->dpdk_huge, "hugetlbfs", 0, "pagesize=2M") == 0) {
			clean_add_mount(p->dpdk_huge);
			return 0;
		}
		snprintf(why, len, "mount -t hugetlbfs %s: %s", p->dpdk_huge, strerror(errno));
		rmdir(p->dpdk_huge);
		return -1;
	}
	f = fopen("/proc/mounts", "re");
	while (f && fscanf(f, "%255s %254s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "hugetlbfs") == 0 && access(dir, W_OK) == 0) {
			snprintf(p->dpdk_huge, sizeof(p->dpdk_huge), "%s", dir);
			fclose(f);
			return 0;
		}
	}
	if (f)
		fclose(f);
	snprintf(why, len, "no writable hugetlbfs mount, and not root to mount one");
	return -1;
}

/*
 * The EAL arguments of a DPDK process: the primary (@secondary false) or a
 * secondary, on lcore @cpu (DPDK pins its main lcore itself), with the run's
 * file prefix and hugetlbfs; into @argv, NULL-terminated.
 */
static void dpdk_argv(struct peers *p, char *path, bool secondary, char *cpu, char *mb,
		      char *argv[16])
{
	unsigned int n = 0;

	argv[n++] = path;
	argv[n++] = secondary ? "worker" : "primary";
	argv[n++] = "-l";
	argv[n++] = cpu;
	argv[n++] = "--no-pci";
	argv[n++] = "--no-telemetry";
	argv[n++] = "--file-prefix";
	argv[n++] = p->dpdk_prefix;
	argv[n++] = "--huge-dir";
	argv[n++] = p->dpdk_huge;
	if (secondary) {
		argv[n++] = "--proc-type=secondary";
	} else {
		argv[n++] = "-m"; /* hugepage memory reserved by the primary */
		argv[n++] = mb;
	}
	argv[n] = NULL;
}

/* Whether DPDK can run here; the reason in p->why when not. */
static bool dpdk_possible(struct peers *p, char *path, size_t len)
{
	long need = (long)opt.dpdk_mb / 2, free_pages;
	char why[400];

	if (!peer_binary("kmperf-dpdk", path, len)) {
		snprintf(p->why[A_DPDK], sizeof(p->why[A_DPDK]),
			 "DPDK: kmperf-dpdk was not built (libdpdk-dev was missing when the build "
			 "was configured; bench/run installs it and reconfigures)");
		return false;
	}
	free_pages = hugepages_ensure_free(need, opt.hugepages);
	if (free_pages < need) {
		snprintf(p->why[A_DPDK], sizeof(p->why[A_DPDK]),
			 "DPDK: %ld free 2 MiB hugepages, its primary needs %ld (--hugepages as "
			 "root reserves them)",
			 free_pages < 0 ? 0 : free_pages, need);
		return false;
	}
	if (dpdk_huge_dir(p, why, sizeof(why)) < 0) {
		snprintf(p->why[A_DPDK], sizeof(p->why[A_DPDK]), "DPDK: %s", why);
		return false;
	}
	return true;
}

static void peers_start_dpdk(struct peers *p, const char *log)
{
	int cpus[2] = { st.cpu_client, st.cpu_server };
	char path[512], mb[16], cpu[2][16], why[400], *argv[16];

	if (!dpdk_possible(p, path, sizeof(path)))
		return;
	snprintf(p->dpdk_prefix, sizeof(p->dpdk_prefix), "kmperf%d", (int)getpid());
	snprintf(mb, sizeof(mb), "%u", opt.dpdk_mb);
	/* The CPUs of the others' two workers; CPUs 0 and 1 when nothing is pinned. */
	for (int i = 0; i < 2; i++)
		snprintf(cpu[i], sizeof(cpu[i]), "%d",
			 cpus[i] >= 0			     ? cpus[i]
			 : sysconf(_SC_NPROCESSORS_ONLN) > 1 ? i
							     : 0);
	dpdk_argv(p, path, false, cpu[0], mb, argv);
	worker_exec(&p->dpdk_primary, "DPDK primary", -1, log, argv);
	if (worker_ready(&p->dpdk_primary, 30000, why, sizeof(why)) < 0) {
		snprintf(p->why[A_DPDK], sizeof(p->why[A_DPDK]), "DPDK primary: %s", why);
		return;
	}
	p->up[A_DPDK] = true;
	for (int i = 0; i < 2; i++) {
		dpdk_argv(p, path, true, cpu[i], mb, argv);
		worker_exec(&p->w[A_DPDK][i], i ? "DPDK secondary 2" : "DPDK secondary 1", -1, log,
			    argv);
	}
	for (int i = 0; i < 2 && p->up[A_DPDK]; i++)
		if (worker_ready(&p->w[A_DPDK][i], 30000, why, sizeof(why)) < 0) {
			snprintf(p->why[A_DPDK], sizeof(p->why[A_DPDK]), "DPDK secondary: %s", why);
			p->up[A_DPDK] = false;
		}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void peers_stop(struct peers *p)
{
	char dir[256];

	for (int a = 0; a < A_MAX; a++)
		for (int i = 0; i < 2; i++)
			worker_stop(&p->w[a][i]);
	worker_stop(&p->dpdk_primary);
	if (p->dpdk_prefix[0]) {
		/* The primary's runtime directory (config, fbarrays, mp socket). */
		const char *xdg = getenv("XDG_RUNTIME_DIR");

		if (geteuid() == 0)
			snprintf(dir, sizeof(dir), "/var/run/dpdk/%s", p->dpdk_prefix);
		else
			snprintf(dir, sizeof(dir), "%s/dpdk/%s", xdg ? xdg : "/tmp",
				 p->dpdk_prefix);
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
}

/* ------------------------------------------------------------------------- */
/* The figures                                                                */

static void series_setup(void)
{
	for (int c = 0; c < CFG_MAX; c++)
		for (int a = 0; a < A_MAX; a++)
			for (int p = 0; p < WL_NR_PATTERNS; p++)
				series_init(&res[c][a][p], alloc_names[a], "calls/s", opt.reps);
}

static bool pattern_in(enum cfg c, enum wl_pattern p)
{
	return p != WL_BULK1000 || c == CFG_T1;
}

/* Figure 1 and the threads of figure 2, on @c, interleaved. */
static void run_threads(km_client *c)
{
	struct wl_alloc b = broker(c);
	const struct wl_alloc *alloc[2] = { &b, &glibc };
	char why[256];

	progress("figures 1-2: 1 and 2 threads, %u repetitions of %u ms", opt.reps, opt.trial_ms);
	for (int p = 0; p < WL_NR_PATTERNS; p++) /* warm-up: frames, lists, glibc arenas */
		for (int k = 0; k < 2; k++)
			for (unsigned int n = 1; n <= 2; n++)
				if (opt.only[n] &&
				    pattern_in(n == 1 ? CFG_T1 : CFG_T2, (enum wl_pattern)p))
					threads_run(alloc[k], n, (enum wl_pattern)p, 1,
						    opt.trial_ms / 2 + 1, why, sizeof(why));
	for (unsigned int r = 0; r < opt.reps; r++) {
		for (int p = 0; p < WL_NR_PATTERNS; p++) {
			uint64_t seed = 0x5eed0000ull + r * 64 + (uint64_t)p * 4;

			for (unsigned int n = 1; n <= 2; n++) {
				enum cfg cfg = n == 1 ? CFG_T1 : CFG_T2;

				if (!opt.only[n] || !pattern_in(cfg, (enum wl_pattern)p))
					continue;
				for (int i = 0; i < 2; i++) {
					int k = (i + (int)r) % 2; /* who goes first alternates */
					double v =
						threads_run(alloc[k], n, (enum wl_pattern)p, seed,
							    opt.trial_ms, why, sizeof(why));

					record(&res[cfg][k ? A_GLIBC : A_BROKER][p], v, why);
				}
			}
		}
	}
}

/* One run of @pt on peer @a's two workers into @s (NULL: a warm-up). A peer
 * that fails once is out for the rest: its workers may be out of step. */
static void peer_run(struct peers *p, int a, enum wl_pattern pt, uint64_t seed, struct series *s)
{
	char why[256];
	double v;

	if (!p->up[a])
		return;
	v = workers_run(p->w[a], 2, pt, seed, why, sizeof(why));
	if (v >= 0) {
		if (s)
			s->v[s->n++] = v;
		return;
	}
	p->up[a] = false;
	for (int k = 0; k < WL_NR_PATTERNS; k++)
		if (!res[CFG_P2][a][k].skipped)
			series_skip(&res[CFG_P2][a][k], "%s", why);
}

/* The processes of figure 2: the broker, boost and DPDK, interleaved. */
static void run_processes(void)
{
	static const int kinds[3] = { A_BROKER, A_BOOST, A_DPDK };
	struct peers p;
	char log[160];

	memset(&p, 0, sizeof(p));
	for (int a = 0; a < A_MAX; a++)
		for (int i = 0; i < 2; i++)
			p.w[a][i].pid = -1;
	p.dpdk_primary.pid = -1;
	snprintf(log, sizeof(log), "%s/peers.log", st.tmpdir);
	clean_add_file(log);
	progress("figure 2: 2 processes (broker, boost.interprocess, DPDK)");
	peers_start_broker(&p, log);
	peers_start_boost(&p, log);
	peers_start_dpdk(&p, log);
	for (int k = 0; k < 3; k++) {
		int a = kinds[k];

		if (!p.up[a] && !p.why[a][0])
			snprintf(p.why[a], sizeof(p.why[a]), "%s did not start", alloc_names[a]);
		for (int pt = 0; !p.up[a] && pt < WL_NR_PATTERNS; pt++)
			series_skip(&res[CFG_P2][a][pt], "%s", p.why[a]);
	}
	for (int pt = 0; pt < WL_NR_PATTERNS; pt++) /* warm-up */
		for (int k = 0; k < 3 && pattern_in(CFG_P2, (enum wl_pattern)pt); k++)
			peer_run(&p, kinds[k], (enum wl_pattern)pt, 1, NULL);
	for (unsigned int r = 0; r < opt.reps; r++) {
		for (int pt = 0; pt < WL_NR_PATTERNS; pt++) {
			uint64_t seed = 0x5eed0000ull + r * 64 + (uint64_t)pt * 4;

			for (int i = 0; i < 3 && pattern_in(CFG_P2, (enum wl_pattern)pt); i++) {
				int a = kinds[(i + (int)r) % 3];

				peer_run(&p, a, (enum wl_pattern)pt, seed, &res[CFG_P2][a][pt]);
			}
		}
	}
	peers_stop(&p);
}

static void add_row(int fig, enum cfg cfg, enum wl_pattern p, int base_kind, enum cmp cmp,
		    double target, const char *suffix)
{
	struct series *b = &res[cfg][A_BROKER][p], *g = &res[cfg][base_kind][p];
	char measure[128], base[64];

	snprintf(measure, sizeof(measure), "%s, %s", pattern_labels[p], suffix);
	if (b->skipped) {
		row_na(fig, measure, "%s", b->note);
		return;
	}
	if (g->skipped) {
		snprintf(base, sizeof(base), "%s: n/a", alloc_names[base_kind]);
		row_add(&(struct row_spec){ .fig = fig,
					    .measure = measure,
					    .value = series_median(b),
					    .unit = "calls/s",
					    .base_text = base,
					    .na = g->note });
		return;
	}
	row_add(&(struct row_spec){ .fig = fig,
				    .measure = measure,
				    .value = series_median(b),
				    .unit = "calls/s",
				    .base_name = alloc_names[base_kind],
				    .base = series_median(g),
				    .cmp = cmp,
				    .target = target });
}

static void add_rows(void)
{
	for (int p = 0; p < WL_NR_PATTERNS; p++) {
		bool t = pattern_has_target((enum wl_pattern)p);

		if (opt.only[1])
			add_row(1, CFG_T1, (enum wl_pattern)p, A_GLIBC, t ? CMP_GE : CMP_NONE, 1.0,
				"1 thread");
		if (!opt.only[2] || !pattern_in(CFG_T2, (enum wl_pattern)p))
			continue;
		add_row(2, CFG_T2, (enum wl_pattern)p, A_GLIBC, t ? CMP_GE : CMP_NONE, 0.7,
			"2 threads, 1 client");
	}
	for (int p = 0; opt.only[2] && p < WL_NR_PATTERNS; p++) {
		bool t = pattern_has_target((enum wl_pattern)p);

		if (!pattern_in(CFG_P2, (enum wl_pattern)p))
			continue;
		add_row(2, CFG_P2, (enum wl_pattern)p, A_BOOST, t ? CMP_GE : CMP_NONE, 10.0,
			"2 processes");
		add_row(2, CFG_P2, (enum wl_pattern)p, A_DPDK, t ? CMP_GE : CMP_NONE, 1.0,
			"2 processes");
	}
	note_add("figures 1-2: calls/s counts every alloc and every free (a pair is 2 calls); "
		 "median of %u interleaved repetitions of %u ms; one write to each object; one "
		 "km_client (per process) runs every pattern in turn, as one program would; %s, "
		 "2 threads/processes one on each",
		 opt.reps, opt.trial_ms, placement_text());
}

void fig_small(void)
{
	km_client *c;

	series_setup();
	c = km_connect(opt.socket);
	if (!c)
		fail("km_connect(%s): %s", opt.socket, strerror(errno));
	run_threads(c);
	km_disconnect(c);
	if (opt.only[2])
		run_processes();
	add_rows();
	for (int cf = 0; cf < CFG_MAX; cf++)
		for (int a = 0; a < A_MAX; a++)
			for (int p = 0; p < WL_NR_PATTERNS; p++)
				series_free(&res[cf][a][p]);
}
