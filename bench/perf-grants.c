// SPDX-License-Identifier: MIT
/*
 * perf-grants.c - figures 4 and 7: the daemon at a million live grants, and
 * its memory per live 64 B object allocated through the library.
 *
 * Figure 4: client A (raw protocol, on the bench's CPU) builds the grants
 * with Allocs of 1024 objects of 64 B, holds them, then disconnects. Client
 * B (a process on the daemon's CPU, so that only the daemon can delay it)
 * sends Meminfo round trips all along and keeps the worst per phase: alone
 * first (the baseline), while A builds, while A holds, and from A's close
 * until Meminfo shows every grant given back (the disconnect time). Those
 * round trips carry the vCPU wake-up latency of the VM (hundreds of us when
 * the daemon's CPU went idle), so the targets are on the daemon's own
 * figures (Inspect TABLE_LOOP, `kmctl stats`), read once the grants are built
 * and held and again after the teardown: the worst request that held the
 * event loop, and the worst teardown turn. kmperf gives this figure a fresh
 * daemon, so its since-start maxima are the figure's own.
 *
 * Figure 7: one km_client allocates N 64 B objects with km_kmalloc and keeps
 * them; the daemon's VmRSS growth / N. The baseline is what glibc malloc
 * spends beyond the 64 bytes of each object (a child's RssAnon growth / N - 64).
 */
#include "config.h"
#include "kmperf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kmclient.h"
#include "rawproto.h"

enum { B_IDLE, B_BUILD, B_HOLD, B_DISC, B_AFTER, B_MAX };

struct watcher {
	_Atomic int phase;
	_Atomic int stop;
	_Atomic uint64_t rounds;
	uint64_t base_grants;	 /* the daemon's grants before A built any */
	_Atomic uint64_t t_done; /* when B saw them all given back */
	uint64_t worst[B_MAX];
	uint64_t count[B_MAX];
	uint64_t over[B_MAX]; /* round trips over 1 ms */
	int err;
};

static void __attribute__((noreturn)) watcher_main(struct watcher *w)
{
	uint64_t id = 2;
	int fd;

	cpu_pin(st.cpu_server);
	fd = rp_connect(opt.socket, "kmperf-watcher");
	if (fd < 0) {
		w->err = -fd;
		atomic_store(&w->rounds, UINT64_MAX);
		_exit(1);
	}
	while (!atomic_load(&w->stop)) {
		int ph = atomic_load(&w->phase), ret;
		uint64_t t0, t1, g = 0;

		if (ph == B_DISC && atomic_load(&w->t_done))
			ph = B_AFTER;
		t0 = now_ns();
		ret = rp_meminfo(fd, id++, &g, NULL);
		t1 = now_ns();
		if (ret < 0) {
			w->err = -ret;
			break;
		}
		if (t1 - t0 > w->worst[ph])
			w->worst[ph] = t1 - t0;
		w->count[ph]++;
		w->over[ph] += t1 - t0 > 1000000;
		if (ph == B_DISC && g <= w->base_grants)
			atomic_store(&w->t_done, t1);
		atomic_fetch_add(&w->rounds, 1);
	}
	close(fd);
	_exit(0);
}

/* Forks B (closing A's socket @a in it) and waits for its first round trips.
 * Return: its pid, or -1 (reaped) when it could not connect or died. */
static pid_t watcher_start(struct watcher *w, int a)
{
	uint64_t deadline = now_ns() + 10000000000ull;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		reset_signals();
		close(a);
		watcher_main(w);
	}
	while (atomic_load(&w->rounds) < 10 && !w->err && now_ns() < deadline)
		sleep_ms(1);
	if (atomic_load(&w->rounds) >= 10 && atomic_load(&w->rounds) != UINT64_MAX)
		return pid;
	if (!w->err)
		w->err = ETIMEDOUT;
	atomic_store(&w->stop, 1);
	waitpid(pid, NULL, 0);
	return -1;
}

/* A builds @want grants of 64 B. Return: the number built, or -errno. */
static long build(int fd, unsigned long want, uint64_t *worst_ns)
{
	unsigned long built = 0;
	uint64_t id = 2;

	*worst_ns = 0;
	while (built < want) {
		uint32_t n = want - built > 1024 ? 1024 : (uint32_t)(want - built);
		uint64_t t0 = now_ns(), t;
		int ret = rp_alloc(fd, id++, 64, n, NULL, 0, NULL);

		t = now_ns() - t0;
		if (ret < 0)
			return ret;
		if (t > *worst_ns)
			*worst_ns = t;
		built += (unsigned long)ret;
	}
	return (long)built;
}

/* "4.2 ms (3 of 51234 over 1 ms)" */
static void worst_text(char *buf, size_t len, const struct watcher *w, int a, int b)
{
	uint64_t worst = w->worst[a] > w->worst[b] ? w->worst[a] : w->worst[b];
	char t[32];

	fmt_value(t, sizeof(t), (double)worst / 1e3, "us");
	snprintf(buf, len, "%s (%llu of %llu over 1 ms)", t,
		 (unsigned long long)(w->over[a] + (a != b ? w->over[b] : 0)),
		 (unsigned long long)(w->count[a] + (a != b ? w->count[b] : 0)));
}

/* The daemon's loop figures: read after the build and hold, and after the
 * teardown; err is 0 or why one could not be read (-errno). */
struct loop_reads {
	struct rp_loop held, after;
	int held_err, after_err;
};

static void loop_na(int fig, const char *measure, int err)
{
	row_na(fig, measure, "Inspect TABLE_LOOP: %s%s", strerror(-err),
	       err == -EACCES	? " (run kmperf as root or in the daemon's admin group)"
	       : err == -EINVAL ? " (the daemon predates kmctl stats)"
				: "");
}

/* "231 us (alloc; 0 of 1202393 requests over 1 ms)" */
static void loop_request_row(const struct loop_reads *l, unsigned long n)
{
	char measure[96], value[128], t[32];

	snprintf(measure, sizeof(measure),
		 "daemon: worst request while %lu grants built and held (loop time)", n);
	if (l->held_err) {
		loop_na(4, measure, l->held_err);
		return;
	}
	fmt_value(t, sizeof(t), (double)l->held.request_max_ns / 1e3, "us");
	snprintf(value, sizeof(value), "%s (%s; %llu of %llu requests over 1 ms)", t,
		 l->held.request_max_kind[0] ? l->held.request_max_kind : "-",
		 (unsigned long long)l->held.requests_over_1ms,
		 (unsigned long long)l->held.requests);
	row_add(&(struct row_spec){ .fig = 4,
				    .measure = measure,
				    .value = (double)l->held.request_max_ns / 1e3,
				    .unit = "us",
				    .value_text = value,
				    .cmp = CMP_ABS_LE,
				    .target = 1000 });
}

/* "512 us (1031 turns)" */
static void loop_teardown_row(const struct loop_reads *l, unsigned long n)
{
	char measure[96], value[96], t[32];
	uint64_t turns;

	snprintf(measure, sizeof(measure),
		 "daemon: worst teardown turn of the %lu-grant disconnect", n);
	if (l->after_err) {
		loop_na(4, measure, l->after_err);
		return;
	}
	turns = l->after.teardown_turns - (l->held_err ? 0 : l->held.teardown_turns);
	fmt_value(t, sizeof(t), (double)l->after.teardown_max_ns / 1e3, "us");
	snprintf(value, sizeof(value), "%s (%llu turns)", t, (unsigned long long)turns);
	row_add(&(struct row_spec){ .fig = 4,
				    .measure = measure,
				    .value = (double)l->after.teardown_max_ns / 1e3,
				    .unit = "us",
				    .value_text = value,
				    .cmp = CMP_ABS_LE,
				    .target = 1000 });
}

/* What the daemon says under the table: the histogram, the other maxima,
 * and whether a request during the disconnect was worse than before it. */
static void loop_note(const struct loop_reads *l)
{
	const struct rp_loop *a = &l->after;
	char worst[32], tick[32], acc[32];

	if (l->after_err)
		return;
	fmt_value(worst, sizeof(worst), (double)a->request_max_ns / 1e3, "us");
	fmt_value(tick, sizeof(tick), (double)a->tick_max_ns / 1e3, "us");
	fmt_value(acc, sizeof(acc), (double)a->accept_max_ns / 1e3, "us");
	note_add("figure 4: the daemon's own loop figures (kmctl stats) at the end: %llu requests "
		 "(<10us %llu, <100us %llu, <1ms %llu, <10ms %llu, >=10ms %llu), worst %s (%s)%s; "
		 "housekeeping tick worst %s, accept worst %s%s",
		 (unsigned long long)a->requests, (unsigned long long)a->request_hist[0],
		 (unsigned long long)a->request_hist[1], (unsigned long long)a->request_hist[2],
		 (unsigned long long)a->request_hist[3], (unsigned long long)a->request_hist[4],
		 worst, a->request_max_kind[0] ? a->request_max_kind : "-",
		 !l->held_err && a->request_max_ns > l->held.request_max_ns
			 ? ", during the disconnect"
			 : "",
		 tick, acc,
		 dmn.spawned ? ""
			     : "; the daemon was not started by kmperf: maxima since it started");
}

static void grants_rows(struct watcher *w, const struct loop_reads *l, unsigned long n,
			int64_t rss0, int64_t rss1, uint64_t worst_alloc, uint64_t disc_ns)
{
	char measure[128], base[128], value[96];
	double idle = (double)w->worst[B_IDLE] / 1e3;
	double during = (double)(w->worst[B_BUILD] > w->worst[B_HOLD] ? w->worst[B_BUILD]
								      : w->worst[B_HOLD]) /
			1e3;

	snprintf(measure, sizeof(measure), "daemon VmRSS per live grant (%lu grants)", n);
	if (rss0 < 0 || rss1 < 0)
		row_na(4, measure, "the daemon's /proc/%d/status cannot be read", (int)dmn.pid);
	else
		row_add(&(struct row_spec){ .fig = 4,
					    .measure = measure,
					    .value = (double)(rss1 - rss0) / (double)n,
					    .unit = "B" });
	worst_text(value, sizeof(value), w, B_IDLE, B_IDLE);
	snprintf(base, sizeof(base), "alone: worst %s", value);
	worst_text(value, sizeof(value), w, B_BUILD, B_HOLD);
	loop_request_row(l, n);
	snprintf(measure, sizeof(measure), "worst round trip of another client, %lu built+held", n);
	row_add(&(struct row_spec){ .fig = 4,
				    .measure = measure,
				    .value = during,
				    .unit = "us",
				    .value_text = value,
				    .base_text = base,
				    .base = idle });
	row_add(&(struct row_spec){ .fig = 4,
				    .measure = "worst Alloc of 1024 x 64 B by the builder",
				    .value = (double)worst_alloc / 1e3,
				    .unit = "us" });
	snprintf(measure, sizeof(measure), "disconnect of %lu grants: until all given back", n);
	if (!disc_ns) {
		row_na(4, measure, "the daemon did not give the grants back within 60 s");
		return;
	}
	row_add(&(struct row_spec){
		.fig = 4, .measure = measure, .value = (double)disc_ns / 1e3, .unit = "us" });
	loop_teardown_row(l, n);
	worst_text(value, sizeof(value), w, B_DISC, B_DISC);
	row_add(&(struct row_spec){ .fig = 4,
				    .measure = "worst round trip of another client meanwhile",
				    .value = (double)w->worst[B_DISC] / 1e3,
				    .unit = "us",
				    .value_text = value,
				    .base_text = base,
				    .base = idle });
}

static void grants_na(const char *why)
{
	row_na(4, "daemon VmRSS per live grant", "%s", why);
	row_na(4, "daemon: worst request while the grants are built and held (loop time)", "%s",
	       why);
	row_na(4, "worst round trip of another client, built+held", "%s", why);
	row_na(4, "daemon: worst teardown turn of the disconnect", "%s", why);
	row_na(4, "worst round trip of another client during the disconnect", "%s", why);
}

void fig_grants(void)
{
	unsigned int idle_ms = opt.quick ? 100 : 500, hold_ms = opt.quick ? 100 : 1000;
	struct loop_reads loop = { .held_err = -EAGAIN, .after_err = -EAGAIN };
	struct watcher *w;
	uint64_t worst_alloc = 0, disc = 0, t_close, deadline;
	int64_t rss0, rss1;
	char why[256];
	pid_t pid;
	long built;
	int a;

	progress("figure 4: %lu live grants", opt.grants);
	w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	memset(w, 0, sizeof(*w));
	a = rp_connect(opt.socket, "kmperf-builder");
	if (a < 0)
		fail("connect %s: %s", opt.socket, strerror(-a));
	if (rp_meminfo(a, 1000, &w->base_grants, NULL) < 0)
		fail("meminfo: %s", strerror(errno));
	pid = watcher_start(w, a);
	if (pid < 0) {
		snprintf(why, sizeof(why), "the watching client cannot connect: %s",
			 strerror(w->err));
		grants_na(why);
		goto out;
	}
	/* The baseline: B alone. */
	sleep_ms(idle_ms);
	rss0 = proc_rss(dmn.pid);
	atomic_store(&w->phase, B_BUILD);
	built = build(a, opt.grants, &worst_alloc);
	if (built < 0) {
		snprintf(why, sizeof(why), "Alloc of 1024 x 64 B failed: %s%s",
			 strerror((int)-built),
			 built == -EDQUOT ? " (the daemon needs --uid-max-grants, or run as root)"
					  : "");
		grants_na(why);
		goto out;
	}
	atomic_store(&w->phase, B_HOLD);
	rss1 = proc_rss(dmn.pid);
	sleep_ms(hold_ms);
	/* The daemon's own figures so far: every request up to here, the
	 * build's Allocs among them (this one is counted after it answers). */
	loop.held_err = rp_loop(a, 1001, &loop.held);
	atomic_store(&w->phase, B_DISC);
	t_close = now_ns();
	close(a);
	a = -1;
	deadline = now_ns() + 60000000000ull;
	while (!atomic_load(&w->t_done) && now_ns() < deadline && !w->err)
		sleep_ms(1);
	if (atomic_load(&w->t_done))
		disc = atomic_load(&w->t_done) - t_close;
	sleep_ms(opt.quick ? 20 : 100);
	/* The teardown is over (its last turn gave the last grant back). */
	{
		int s = rp_connect(opt.socket, "kmperf-loopstat");

		loop.after_err = s < 0 ? s : rp_loop(s, 2, &loop.after);
		if (s >= 0)
			close(s);
	}
	grants_rows(w, &loop, (unsigned long)built, rss0, rss1, worst_alloc, disc);
	note_add("figure 4: the other client sends Meminfo round trips (%s, that client on the "
		 "daemon's); its worst alone (the baseline) over %u ms, %llu round trips in all. "
		 "A round trip includes waking the daemon's and the client's vCPUs (hundreds of us "
		 "on a VM whose CPU went idle), so those rows are info; the 1 ms targets are on "
		 "the daemon's own loop times (Inspect TABLE_LOOP, kmctl stats), since it started",
		 placement_text(), idle_ms,
		 (unsigned long long)(w->count[B_IDLE] + w->count[B_BUILD] + w->count[B_HOLD] +
				      w->count[B_DISC] + w->count[B_AFTER]));
	loop_note(&loop);
out:
	atomic_store(&w->stop, 1);
	if (a >= 0)
		close(a);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	munmap(w, sizeof(*w));
}

/* ------------------------------------------------------------------------- */
/* Figure 7                                                                   */

/*
 * glibc's own bytes per live 64 B object, beyond the 64, in a fresh process
 * (kmperf --glibc-overhead N): a fork would inherit this heap, whose free
 * chunks are resident already.
 */
static double glibc_overhead(unsigned long n)
{
	char arg[32], line[64];
	char *argv[] = { "/proc/self/exe", "--glibc-overhead", arg, NULL };
	double v = -1;
	int pfd[2];
	pid_t pid;

	snprintf(arg, sizeof(arg), "%lu", n);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		reset_signals();
		dup2(pfd[1], STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	if (pid > 0) {
		ssize_t k = read(pfd[0], line, sizeof(line) - 1);

		if (k > 0) {
			line[k] = '\0';
			v = strtod(line, NULL);
		}
		waitpid(pid, NULL, 0);
	}
	close(pfd[0]);
	return v;
}

int glibc_overhead_main(unsigned long n)
{
	void **p = malloc(n * sizeof(*p));
	int64_t r0, r1;

	if (!p)
		return 1;
	/* Resident before the count starts (a memset would be a dead store). */
	for (size_t off = 0; off < n * sizeof(*p); off += SZ_4K)
		((volatile char *)p)[off] = 1;
	r0 = proc_self_rss_anon();
	for (unsigned long i = 0; i < n; i++) {
		p[i] = malloc(64);
		if (!p[i])
			return 1;
		*(volatile char *)p[i] = 1;
	}
	r1 = proc_self_rss_anon();
	printf("%.2f\n", (double)(r1 - r0) / (double)n - 64);
	for (unsigned long i = 0; i < n; i++)
		free(p[i]);
	free(p);
	return 0;
}

void fig_objects(void)
{
	unsigned long n = opt.objects, i;
	char measure[128], base[64], t[32];
	int64_t rss0, rss1;
	uint64_t g0 = 0;
	double over;
	void **p;
	km_client *c;
	int probe;

	progress("figure 7: %lu live 64 B objects through the library", n);
	probe = rp_connect(opt.socket, "kmperf-probe");
	if (probe < 0)
		fail("connect %s: %s", opt.socket, strerror(-probe));
	rp_meminfo(probe, 2, &g0, NULL);
	snprintf(measure, sizeof(measure), "daemon memory per live 64 B object (%lu, library)", n);
	p = calloc(n, sizeof(*p));
	c = km_connect(opt.socket);
	if (!p || !c)
		fail("km_connect(%s): %s", opt.socket, strerror(errno));
	km_kfree(c, km_kmalloc(c, 64, KM_GFP_KERNEL));
	rss0 = proc_rss(dmn.pid);
	for (i = 0; i < n; i++) {
		p[i] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		if (!p[i])
			break;
	}
	rss1 = proc_rss(dmn.pid);
	km_disconnect(c);
	free(p);
	if (wait_grants(probe, g0, 60000) < 0)
		fprintf(stderr, "kmperf: the daemon still holds grants of figure 7 after 60 s\n");
	close(probe);
	if (i < n) {
		row_na(7, measure, "km_kmalloc(64) failed after %lu objects: %s", i,
		       strerror(errno));
		return;
	}
	if (rss0 < 0 || rss1 < 0) {
		row_na(7, measure, "the daemon's /proc/%d/status cannot be read", (int)dmn.pid);
		return;
	}
	over = glibc_overhead(n);
	fmt_value(t, sizeof(t), over, "B");
	snprintf(base, sizeof(base), "glibc's own %s", t);
	row_add(&(struct row_spec){ .fig = 7,
				    .measure = measure,
				    .value = (double)(rss1 - rss0) / (double)n,
				    .unit = "B",
				    .base_text = over > 0 ? base : NULL,
				    .base = over,
				    .cmp = CMP_ABS_LE,
				    .target = 1 });
	note_add("figure 7: the daemon's VmRSS growth / objects; the baseline is glibc malloc's "
		 "bytes per 64 B object beyond the 64 (its RssAnon growth / objects - 64)");
}
