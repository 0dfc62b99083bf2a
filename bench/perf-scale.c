// SPDX-License-Identifier: MIT
/*
 * perf-scale.c - figure 3: 10, 100 and 1000 client processes against one
 * daemon, each doing round trips of the raw protocol (an Alloc of one 64 B
 * object with the previous one released on it: one request and one reply,
 * whatever the library does), first at a fixed total offered load (paced:
 * client i of n sends at start + (i + k n) / rate) and then flat out. Per
 * phase: p50/p99 latency of a request, requests/s, and the daemon's CPU time
 * (the sum of its threads' schedstat run times, the ns-resolution twin of
 * utime+stime) divided by the requests the clients completed.
 *
 * A group of processes is forked, connected and said Hello before a phase
 * starts; a phase is started for all of them at once through a futex in
 * shared memory, and the daemon's CPU is read when the last one is done,
 * before anyone disconnects. The baseline is a bare SOCK_SEQPACKET round trip
 * to an echo server on the daemon's CPU.
 */
#include "config.h"
#include "kmperf.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawproto.h"

enum { PH_FIXED, PH_FLAT, PH_MAX, CMD_QUIT = PH_MAX };

struct scale_slot {
	uint64_t requests[PH_MAX];
	uint64_t errors[PH_MAX];
	int err; /* the last error, positive errno */
	struct hist h[PH_MAX];
};

struct scale_shm {
	_Atomic uint32_t gen; /* futex: a new command */
	_Atomic uint32_t ready;
	_Atomic uint32_t done;
	uint32_t cmd;
	uint32_t n;
	uint64_t start, end;
	double rate; /* total requests/s; 0: flat out */
	struct scale_slot slot[];
};

/* One phase of one process count: what the table needs. */
struct scale_fig {
	struct series rate, p50, p99, cpu;
};

static struct scale_fig figs[4][PH_MAX];

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------------------- */
/* A client process                                                           */

static void child_phase(struct scale_shm *m, unsigned int i, int fd, int ph, uint64_t *id,
			uint64_t *grant)
{
	struct scale_slot *s = &m->slot[i];
	double step = m->rate > 0 ? 1e9 / m->rate : 0;
	uint64_t k = 0;

	sleep_until(m->start); /* flat out too: nobody starts early */
	for (;;) {
		uint64_t t = m->start + (uint64_t)(step * (double)(i + k * m->n)), t0, t1, g;
		int ret;

		if (m->rate > 0) {
			if (t >= m->end)
				break;
			if (now_ns() < t)
				sleep_until(t);
		} else if (now_ns() >= m->end) {
			break;
		}
		k++;
		t0 = now_ns();
		ret = rp_alloc(fd, (*id)++, 64, 1, grant, *grant ? 1 : 0, &g);
		t1 = now_ns();
		if (ret < 0) {
			s->errors[ph]++;
			s->err = -ret;
			if (ret == -ECONNRESET)
				break;
			continue;
		}
		*grant = g;
		hist_add(&s->h[ph], t1 - t0);
		s->requests[ph]++;
	}
}

static void __attribute__((noreturn)) child_main(struct scale_shm *m, unsigned int i)
{
	uint64_t id = 2, grant = 0;
	uint32_t gen = 0;
	int fd;

	cpu_pin(st.cpu_client);
	fd = rp_connect(opt.socket, "kmperf-scale");
	if (fd < 0)
		m->slot[i].err = -fd;
	atomic_fetch_add(&m->ready, 1);
	for (;;) {
		uint32_t g;

		while ((g = atomic_load(&m->gen)) == gen)
			futex_wait(&m->gen, gen);
		gen = g;
		if (m->cmd == CMD_QUIT)
			break;
		if (fd >= 0)
			child_phase(m, i, fd, (int)m->cmd, &id, &grant);
		atomic_fetch_add(&m->done, 1);
	}
	if (fd >= 0)
		close(fd);
	_exit(0);
}

/* ------------------------------------------------------------------------- */
/* The driver                                                                 */

struct group {
	struct scale_shm *m;
	size_t size;
	pid_t *pids;
	unsigned int n;
};

/* Waits until @counter reaches @n, checking now and then that nobody died.
 * Return: 0 or -1. */
static int wait_count(struct group *g, _Atomic uint32_t *counter, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns, next_check = now_ns();

	while (atomic_load(counter) < g->n) {
		uint64_t t = now_ns();

		if (t > deadline)
			return -1;
		if (t >= next_check) {
			for (unsigned int i = 0; i < g->n; i++) {
				int status;

				if (g->pids[i] > 0 && waitpid(g->pids[i], &status, WNOHANG) > 0) {
					fprintf(stderr, "kmperf: scale client %u died\n", i);
					g->pids[i] = 0;
					return -1;
				}
			}
			next_check = t + 200000000ull;
		}
		sleep_ms(1);
	}
	return 0;
}

static void group_command(struct group *g, uint32_t cmd)
{
	g->m->cmd = cmd;
	atomic_store(&g->m->done, 0);
	atomic_fetch_add(&g->m->gen, 1);
	futex_wake(&g->m->gen);
}

static void group_stop(struct group *g)
{
	group_command(g, CMD_QUIT);
	for (unsigned int i = 0; i < g->n; i++) {
		int status;

		if (g->pids[i] > 0 && child_reap(g->pids[i], 10000000000ull, &status) < 0) {
			kill(g->pids[i], SIGKILL);
			waitpid(g->pids[i], &status, 0);
		}
	}
	munmap(g->m, g->size);
	free(g->pids);
}

static int group_start(struct group *g, unsigned int n, char *why, size_t len)
{
	g->n = n;
	g->size = sizeof(*g->m) + n * sizeof(g->m->slot[0]);
	g->m = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	g->pids = calloc(n, sizeof(*g->pids));
	if (g->m == MAP_FAILED || !g->pids)
		fail("out of memory for %u scale clients", n);
	g->m->n = n;
	for (unsigned int i = 0; i < n; i++) {
		pid_t p = fork();

		if (p < 0) {
			snprintf(why, len, "fork of client %u: %s", i, strerror(errno));
			g->n = i;
			group_stop(g);
			return -1;
		}
		if (p == 0) {
			reset_signals();
			child_main(g->m, i);
		}
		g->pids[i] = p;
	}
	if (wait_count(g, &g->m->ready, 60000000000ull) < 0) {
		snprintf(why, len, "%u clients did not connect", n);
		group_stop(g);
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (g->m->slot[i].err) {
			snprintf(why, len, "client %u of %u could not connect: %s", i, n,
				 strerror(g->m->slot[i].err));
			group_stop(g);
			return -1;
		}
	}
	return 0;
}

/* One phase on a connected group; its figures go to @f. */
static int group_phase(struct group *g, int ph, struct scale_fig *f, char *why, size_t len)
{
	struct scale_shm *m = g->m;
	uint64_t requests = 0, errors = 0, t_done, nr;
	struct hist *h;
	int64_t cpu0, cpu1;
	int err = 0;

	m->rate = ph == PH_FIXED ? opt.scale_rate : 0;
	m->start = now_ns() + 50000000ull + g->n * 20000ull;
	m->end = m->start + (uint64_t)opt.scale_ms * 1000000ull;
	group_command(g, (uint32_t)ph);
	sleep_until(m->start);
	cpu0 = proc_cpu_ns(dmn.pid);
	if (wait_count(g, &m->done, (uint64_t)opt.scale_ms * 20000000ull + 60000000000ull) < 0) {
		snprintf(why, len, "the %u clients did not finish", g->n);
		return -1;
	}
	cpu1 = proc_cpu_ns(dmn.pid);
	t_done = now_ns();
	h = malloc(g->n * sizeof(*h));
	if (!h)
		fail("out of memory");
	for (unsigned int i = 0; i < g->n; i++) {
		requests += m->slot[i].requests[ph];
		errors += m->slot[i].errors[ph];
		if (m->slot[i].err)
			err = m->slot[i].err;
		h[i] = m->slot[i].h[ph];
	}
	if (errors || !requests) {
		snprintf(why, len, "%llu of the requests failed (%s)", (unsigned long long)errors,
			 err ? strerror(err) : "no request completed");
		free(h);
		return -1;
	}
	f->rate.v[f->rate.n++] = (double)requests * 1e9 / (double)(t_done - m->start);
	f->p50.v[f->p50.n++] = hist_quantile(h, g->n, 0.50, &nr) / 1e3;
	f->p99.v[f->p99.n++] = hist_quantile(h, g->n, 0.99, &nr) / 1e3;
	if (cpu0 >= 0 && cpu1 >= cpu0)
		f->cpu.v[f->cpu.n++] = (double)(cpu1 - cpu0) / (double)requests / 1e3;
	free(h);
	return 0;
}

/* The daemon has taken every client of the last group off its books. */
static void settle(int probe, uint32_t clients)
{
	uint64_t deadline = now_ns() + 30000000000ull;
	uint32_t c = UINT32_MAX;

	while (now_ns() < deadline && rp_meminfo(probe, 7, NULL, &c) == 0 && c > clients)
		sleep_ms(5);
}

/* The floor: a SOCK_SEQPACKET round trip to an echo server on the daemon's CPU. */
static void bare_roundtrip(double *p50, double *p99)
{
	unsigned int n = opt.quick ? 2000 : 20000;
	struct hist *h = calloc(1, sizeof(*h));
	char msg[64];
	int fd;

	if (!h)
		fail("out of memory");
	memset(msg, 0x5a, sizeof(msg));
	fd = echo_start();
	for (unsigned int i = 0; i < n / 10; i++)
		echo_roundtrip(fd, msg, sizeof(msg));
	for (unsigned int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		echo_roundtrip(fd, msg, sizeof(msg));
		hist_add(h, now_ns() - t0);
	}
	close(fd);
	echo_stop();
	*p50 = hist_quantile(h, 1, 0.50, NULL) / 1e3;
	*p99 = hist_quantile(h, 1, 0.99, NULL) / 1e3;
	free(h);
}

/* The latency (fixed load) or throughput (flat out) row of count @c. */
static void add_traffic_row(unsigned int c, int ph, double bare99)
{
	struct scale_fig *f = &figs[c][ph], *first = &figs[0][ph];
	bool lat = ph == PH_FIXED;
	char measure[128], value[128], base[128], t1[32], t2[32], t3[32];
	double v = series_median(lat ? &f->p99 : &f->rate), b = 0;

	if (lat)
		snprintf(measure, sizeof(measure), "%u clients, %u req/s offered: p50 / p99",
			 opt.scale_counts[c], opt.scale_rate);
	else
		snprintf(measure, sizeof(measure), "%u clients flat out: req/s (p50 / p99)",
			 opt.scale_counts[c]);
	fmt_value(t1, sizeof(t1), series_median(&f->p50), "us");
	fmt_value(t2, sizeof(t2), series_median(&f->p99), "us");
	fmt_value(t3, sizeof(t3), series_median(&f->rate), "req/s");
	if (lat)
		snprintf(value, sizeof(value), "%s / %s (%s)", t1, t2, t3);
	else
		snprintf(value, sizeof(value), "%s (%s / %s)", t3, t1, t2);
	base[0] = '\0';
	if (c > 0) {
		/* Against the fewest clients: p99 at a fixed load, req/s flat out. */
		b = series_median(lat ? &first->p99 : &first->rate);
		fmt_value(t1, sizeof(t1), b, lat ? "us" : "req/s");
		snprintf(base, sizeof(base), "%u clients %s%s", opt.scale_counts[0],
			 lat ? "p99 " : "", t1);
	} else if (lat) {
		b = bare99;
		fmt_value(t1, sizeof(t1), b, "us");
		snprintf(base, sizeof(base), "bare p99 %s", t1);
	}
	row_add(&(struct row_spec){ .fig = 3,
				    .measure = measure,
				    .value = v,
				    .unit = lat ? "us" : "req/s",
				    .value_text = value,
				    .base = b,
				    .base_text = base[0] ? base : NULL });
}

/* The daemon's CPU per request at count @c; the target at the most clients,
 * fixed load, against the fewest. */
static void add_cpu_row(unsigned int c, int ph)
{
	struct scale_fig *f = &figs[c][ph];
	bool last = c + 1 == opt.nr_scale_counts && c > 0;
	char measure[128], base[64], na[200] = "";

	snprintf(measure, sizeof(measure), "%u clients, %s: daemon CPU per request",
		 opt.scale_counts[c], ph == PH_FIXED ? "fixed load" : "flat out");
	if (!f->cpu.n) {
		row_na(3, measure, "the daemon's CPU time cannot be read (/proc/%d)", (int)dmn.pid);
		return;
	}
	snprintf(base, sizeof(base), "%u clients", opt.scale_counts[0]);
	/* The same offered load only if the clients could offer it. */
	for (unsigned int k = 0; ph == PH_FIXED && !na[0] && k <= c; k += c ? c : 1) {
		double got = series_median(&figs[k][ph].rate);

		if (got < 0.9 * opt.scale_rate)
			snprintf(na, sizeof(na),
				 "%u clients reached %.0f of the %u req/s offered: their CPU was "
				 "saturated (see the load average), so the loads differ",
				 opt.scale_counts[k], got, opt.scale_rate);
	}
	row_add(&(struct row_spec){ .fig = 3,
				    .measure = measure,
				    .value = series_median(&f->cpu),
				    .unit = "us",
				    .base_name = c ? base : NULL,
				    .base = series_median(&figs[0][ph].cpu),
				    .cmp = last && ph == PH_FIXED ? CMP_LE : CMP_NONE,
				    .target = 1.3,
				    .na = na[0] && last ? na : NULL });
}

static void add_rows(double bare50, double bare99, const char *why)
{
	char value[80], t1[32], t2[32];

	fmt_value(t1, sizeof(t1), bare50, "us");
	fmt_value(t2, sizeof(t2), bare99, "us");
	snprintf(value, sizeof(value), "%s / %s", t1, t2);
	row_add(&(struct row_spec){ .fig = 3,
				    .measure = "bare SEQPACKET round trip p50 / p99 (the floor)",
				    .value_text = value,
				    .unit = "us" });
	for (int ph = 0; ph < PH_MAX; ph++) {
		for (unsigned int c = 0; c < opt.nr_scale_counts; c++) {
			if (!figs[c][ph].p99.n) {
				row_na(3,
				       ph == PH_FIXED ? "clients at a fixed load"
						      : "clients flat out",
				       "%u clients: %s", opt.scale_counts[c],
				       why[0] ? why : "no figure");
				continue;
			}
			add_traffic_row(c, ph, bare99);
			add_cpu_row(c, ph);
		}
	}
	note_add("figure 3: raw Alloc of 64 B with the previous grant released on it (one "
		 "round trip each); median of %u repetition%s of %u ms per phase; %s; daemon "
		 "CPU = its threads' run time (schedstat) / requests; fixed-load latency ratios "
		 "compare p99",
		 opt.scale_reps, opt.scale_reps == 1 ? "" : "s", opt.scale_ms, placement_text());
}

void fig_scale(void)
{
	char why[256] = "";
	double bare50, bare99;
	uint32_t base_clients = 0;
	int probe;

	progress("figure 3: scale, %u repetition(s) of %u ms phases", opt.scale_reps, opt.scale_ms);
	bare_roundtrip(&bare50, &bare99);
	for (unsigned int c = 0; c < opt.nr_scale_counts; c++)
		for (int ph = 0; ph < PH_MAX; ph++) {
			struct scale_fig *f = &figs[c][ph];

			series_init(&f->rate, "rate", "req/s", opt.scale_reps);
			series_init(&f->p50, "p50", "us", opt.scale_reps);
			series_init(&f->p99, "p99", "us", opt.scale_reps);
			series_init(&f->cpu, "cpu", "us", opt.scale_reps);
		}
	probe = rp_connect(opt.socket, "kmperf-probe");
	if (probe < 0)
		fail("connect %s: %s", opt.socket, strerror(-probe));
	rp_meminfo(probe, 3, NULL, &base_clients);
	for (unsigned int r = 0; r < opt.scale_reps && !why[0]; r++) {
		for (unsigned int c = 0; c < opt.nr_scale_counts && !why[0]; c++) {
			struct group g;

			progress("figure 3: %u clients (repetition %u)", opt.scale_counts[c],
				 r + 1);
			if (group_start(&g, opt.scale_counts[c], why, sizeof(why)) < 0)
				break;
			for (int ph = 0; ph < PH_MAX && !why[0]; ph++)
				group_phase(&g, ph, &figs[c][ph], why, sizeof(why));
			group_stop(&g);
			settle(probe, base_clients);
		}
	}
	close(probe);
	add_rows(bare50, bare99, why);
	for (unsigned int c = 0; c < opt.nr_scale_counts; c++)
		for (int ph = 0; ph < PH_MAX; ph++) {
			series_free(&figs[c][ph].rate);
			series_free(&figs[c][ph].p50);
			series_free(&figs[c][ph].p99);
			series_free(&figs[c][ph].cpu);
		}
}
