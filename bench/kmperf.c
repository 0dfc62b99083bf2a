// SPDX-License-Identifier: MIT
/*
 * kmperf.c - the broker beside its peers, in one table (issue 7).
 *
 * Seven figures, each with its baseline measured in the same run and the
 * ratio and target beside it:
 *
 *  1. small objects, one thread: 64 B alloc/free pairs, batches of 100, 1000
 *     and 10000 allocs then frees, a ring of 4096 live objects of random sizes
 *     16-2048 B; km_kmalloc/km_kfree against glibc malloc/free in this process.
 *  2. the same with two threads of one km_client against glibc with two
 *     threads, and with two client processes (one km_client each) against
 *     boost.interprocess (two processes on one managed_shared_memory segment)
 *     and DPDK rte_malloc (two secondary processes of one primary).
 *  3. scale: 10, 100 and 1000 client processes doing round trips (raw
 *     protocol: Alloc of 64 B with the previous grant released on it), at one
 *     fixed offered load and then flat out: p50/p99 latency, requests/s, and
 *     the daemon's CPU time per request.
 *  4. one million live grants (raw Alloc of 1024 objects at a time): daemon
 *     RSS per grant, the worst round trip of a second client meanwhile, and
 *     the disconnect of the holder.
 *  5. km_vmalloc 64 MiB + one write per 4 KiB page + km_vfree against the
 *     populated-memfd floor (a hugetlb memfd fallocated beforehand, then mmap
 *     MAP_POPULATE + the same writes + munmap).
 *  6. the daemon's instructions per request under callgrind.
 *  7. daemon memory per live 64 B object allocated through the library.
 *
 * Only the public API of kmclient.h, the protocol (rawproto.c) and /proc are
 * used, so that the figures are whatever the library and the daemon do when
 * this runs. Figures 1-2 are medians of interleaved repetitions (the
 * allocators take turns, so that drift of the host hits all alike). Figures 7
 * and 4 run first, each on a freshly started daemon (RSS growth would hide in
 * a heap grown and freed by earlier figures), the others on a third; figure 6
 * runs daemons of its own under valgrind. The table comes at the end, as
 * Markdown; progress goes to stderr.
 *
 * Exit status: 0 when everything ran and (full runs) every target was met,
 * 1 on an error, 2 on a usage error, 3 when a target was missed (never with
 * --quick, which only reports).
 */
#include "config.h"
#include "kmperf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kmclient.h"
#include "rawproto.h"

struct kmperf_opt opt = {
	.pool_size = "512M",
	.pin = true,
};

struct kmperf_daemon dmn = { .pid = -1 };

/* ------------------------------------------------------------------------- */
/* The table                                                                  */

#define MAX_ROWS  96
#define MAX_NOTES 32

static const char *const verdict_names[] = {
	[V_INFO] = "info",
	[V_PASS] = "PASS",
	[V_FAIL] = "FAIL",
	[V_NA] = "n/a",
};

struct row {
	int fig;
	char measure[96];
	char value[96];
	char base[96];
	char ratio[16];
	char target[48];
	enum verdict v;
	int footnote; /* 0: none */
};

static struct row rows[MAX_ROWS];
static unsigned int nr_rows;
static char *notes[MAX_NOTES];
static unsigned int nr_notes;
static char *footnotes[MAX_NOTES];
static unsigned int nr_footnotes;

static uint64_t t_start;
static double load_start = -1; /* the host's 1-minute load average before we began */

const char *placement_text(void)
{
	static char buf[96];

	if (st.cpu_client < 0)
		return "nothing pinned (--socket or --no-pin)";
	snprintf(buf, sizeof(buf), "clients on CPU %d, daemon on CPU %d", st.cpu_client,
		 st.cpu_server);
	return buf;
}

void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kmperf [%5.1f s]: ", t_start ? (double)(now_ns() - t_start) / 1e9 : 0.0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void fmt_value(char *buf, size_t len, double v, const char *unit)
{
	if (strcmp(unit, "calls/s") == 0 || strcmp(unit, "req/s") == 0) {
		const char *u = unit[0] == 'c' ? "/s" : " req/s";

		if (v >= 1e6)
			snprintf(buf, len, "%.3g M%s", v / 1e6, u);
		else if (v >= 1e3)
			snprintf(buf, len, "%.3g k%s", v / 1e3, u);
		else
			snprintf(buf, len, "%.3g%s", v, u);
	} else if (strcmp(unit, "us") == 0) {
		if (v >= 1e6)
			snprintf(buf, len, "%.3g s", v / 1e6);
		else if (v >= 1e5)
			snprintf(buf, len, "%.0f ms", v / 1000);
		else if (v >= 1000)
			snprintf(buf, len, "%.3g ms", v / 1000);
		else if (v >= 10)
			snprintf(buf, len, "%.0f us", v);
		else
			snprintf(buf, len, "%.2g us", v);
	} else if (strcmp(unit, "Ir") == 0) {
		if (v >= 1e4)
			snprintf(buf, len, "%.3g k Ir", v / 1e3);
		else
			snprintf(buf, len, "%.0f Ir", v);
	} else if (strcmp(unit, "B") == 0) {
		snprintf(buf, len, v >= 10 || v == 0 ? "%.0f B" : "%.2g B", v);
	} else {
		snprintf(buf, len, "%.3g %s", v, unit);
	}
}

static int footnote_add(const char *text);

static struct row *row_new(int fig, const char *measure)
{
	struct row *r;

	if (nr_rows == MAX_ROWS)
		fail("too many rows");
	r = &rows[nr_rows++];
	memset(r, 0, sizeof(*r));
	r->fig = fig;
	snprintf(r->measure, sizeof(r->measure), "%s", measure);
	return r;
}

void row_add(const struct row_spec *s)
{
	struct row *r = row_new(s->fig, s->measure);
	bool have_base = (s->base_name || s->base_text) && s->base > 0;
	double ratio = have_base ? s->value / s->base : 0;
	char t[32];

	if (s->value_text)
		snprintf(r->value, sizeof(r->value), "%s", s->value_text);
	else
		fmt_value(r->value, sizeof(r->value), s->value, s->unit);
	if (s->base_text) {
		snprintf(r->base, sizeof(r->base), "%s", s->base_text);
	} else if (s->base_name) {
		fmt_value(t, sizeof(t), s->base, s->unit);
		snprintf(r->base, sizeof(r->base), "%s %s", s->base_name, t);
	}
	if (have_base)
		snprintf(r->ratio, sizeof(r->ratio),
			 ratio >= 100	? "%.0fx"
			 : ratio >= 0.1 ? "%.2fx"
					: "%.2gx",
			 ratio);
	if (s->na) {
		r->v = V_NA;
		r->footnote = footnote_add(s->na);
		return;
	}
	switch (s->cmp) {
	case CMP_NONE:
		r->v = V_INFO;
		break;
	case CMP_GE:
		snprintf(r->target, sizeof(r->target), ">= %gx", s->target);
		r->v = !have_base ? V_NA : ratio >= s->target ? V_PASS : V_FAIL;
		break;
	case CMP_LE:
		snprintf(r->target, sizeof(r->target), "<= %gx", s->target);
		r->v = !have_base ? V_NA : ratio <= s->target ? V_PASS : V_FAIL;
		break;
	case CMP_ABS_LE:
		fmt_value(t, sizeof(t), s->target, s->unit);
		snprintf(r->target, sizeof(r->target), "<= %s", t);
		r->v = s->value <= s->target ? V_PASS : V_FAIL;
		break;
	}
}

static int footnote_add(const char *text)
{
	for (unsigned int i = 0; i < nr_footnotes; i++)
		if (strcmp(footnotes[i], text) == 0)
			return (int)i + 1;
	if (nr_footnotes == MAX_NOTES)
		return 0;
	footnotes[nr_footnotes] = strdup(text);
	return footnotes[nr_footnotes] ? (int)++nr_footnotes : 0;
}

void row_na(int fig, const char *measure, const char *fmt, ...)
{
	struct row *r = row_new(fig, measure);
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	r->v = V_NA;
	r->footnote = footnote_add(why);
}

void note_add(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s && nr_notes < MAX_NOTES)
		notes[nr_notes++] = s;
	else
		free(s);
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->fig != y->fig)
		return x->fig - y->fig;
	return x < y ? -1 : x > y; /* stable: rows of a figure keep their order */
}

static void print_cells(const int w[7], const char *const cell[7])
{
	for (int i = 0; i < 7; i++)
		printf("| %-*s ", w[i], cell[i]);
	printf("|\n");
}

static unsigned int print_table(void)
{
	static const char *const head[7] = { "#",     "measure", "broker", "baseline",
					     "ratio", "target",	 "result" };
	unsigned int failed = 0;
	int w[7];

	qsort(rows, nr_rows, sizeof(rows[0]), row_cmp);
	for (int i = 0; i < 7; i++)
		w[i] = (int)strlen(head[i]);
	for (unsigned int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];
		int lens[7] = { 1,
				(int)strlen(r->measure),
				(int)strlen(r->value),
				(int)strlen(r->base),
				(int)strlen(r->ratio),
				(int)strlen(r->target),
				(int)strlen(verdict_names[r->v]) + (r->footnote ? 5 : 0) };

		for (int k = 0; k < 7; k++)
			if (lens[k] > w[k])
				w[k] = lens[k];
	}
	print_cells(w, head);
	for (int i = 0; i < 7; i++) {
		printf("|");
		for (int k = 0; k < w[i] + 2; k++)
			putchar('-');
	}
	printf("|\n");
	for (unsigned int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];
		char fig[8], result[24];
		const char *cell[7] = { fig,	  r->measure, r->value, r->base,
					r->ratio, r->target,  result };

		snprintf(fig, sizeof(fig), "%d", r->fig);
		if (r->footnote)
			snprintf(result, sizeof(result), "%s [%d]", verdict_names[r->v],
				 r->footnote);
		else
			snprintf(result, sizeof(result), "%s", verdict_names[r->v]);
		print_cells(w, cell);
		if (r->v == V_FAIL)
			failed++;
	}
	printf("\n");
	for (unsigned int i = 0; i < nr_footnotes; i++)
		printf("[%u] %s\n", i + 1, footnotes[i]);
	for (unsigned int i = 0; i < nr_notes; i++)
		printf("%s\n", notes[i]);
	return failed;
}

/* ------------------------------------------------------------------------- */
/* Worker processes                                                           */

static void worker_init(struct worker *w, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->pid = -1;
	w->to = w->from = -1;
	snprintf(w->name, sizeof(w->name), "%s", name);
}

/* The child's side: stdin/stdout are the pipes (for an exec), stderr @log. */
static void worker_child_setup(int cpu, const char *log)
{
	int fd;

	reset_signals();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != st.main_pid)
		_exit(127);
	cpu_pin(cpu);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

static void worker_spawn(struct worker *w, const char *name, int cpu, const char *log,
			 void (*body)(void *arg, int in, int out), void *arg, char *const argv[])
{
	int to[2], from[2];

	worker_init(w, name);
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	w->pid = fork();
	if (w->pid < 0)
		fail("fork: %s", strerror(errno));
	if (w->pid == 0) {
		worker_child_setup(cpu, log);
		close(to[1]);
		close(from[0]);
		if (body) {
			body(arg, to[0], from[1]);
			_exit(0);
		}
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		execv(argv[0], argv);
		dprintf(STDOUT_FILENO, "error exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	w->to = to[1];
	w->from = from[0];
}

void worker_fork(struct worker *w, const char *name, int cpu, const char *log,
		 void (*body)(void *arg, int in, int out), void *arg)
{
	worker_spawn(w, name, cpu, log, body, arg, NULL);
}

void worker_exec(struct worker *w, const char *name, int cpu, const char *log, char *const argv[])
{
	worker_spawn(w, name, cpu, log, NULL, NULL, argv);
}

int worker_line(struct worker *w, char *line, size_t len, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		char *nl = memchr(w->buf, '\n', w->len);
		struct pollfd pfd = { .fd = w->from, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (nl) {
			size_t k = (size_t)(nl - w->buf);

			snprintf(line, len, "%.*s", (int)k, w->buf);
			memmove(w->buf, nl + 1, w->len - k - 1);
			w->len -= k + 1;
			return 0;
		}
		if (w->len == sizeof(w->buf) - 1)
			w->len = 0; /* a line too long to be ours: drop it */
		left = (int64_t)(deadline - now_ns());
		if (w->from < 0 || left <= 0) {
			snprintf(line, len, "%s: no answer within %d ms", w->name, timeout_ms);
			return -1;
		}
		if (poll(&pfd, 1, (int)(left / 1000000) + 1) <= 0)
			continue;
		n = read(w->from, w->buf + w->len, sizeof(w->buf) - 1 - w->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(line, len, "%s exited", w->name);
			return -1;
		}
		w->len += (size_t)n;
	}
}

int worker_ready(struct worker *w, int timeout_ms, char *why, size_t len)
{
	char line[512];

	if (worker_line(w, line, sizeof(line), timeout_ms) < 0) {
		snprintf(why, len, "%s", line);
		return -1;
	}
	if (strcmp(line, "ready") == 0)
		return 0;
	snprintf(why, len, "%s", strncmp(line, "error ", 6) == 0 ? line + 6 : line);
	return -1;
}

void worker_stop(struct worker *w)
{
	int status;

	if (w->pid <= 0)
		return;
	if (w->to >= 0) {
		if (write(w->to, "quit\n", 5) < 0) {
			/* gone already: the wait below reaps it */
		}
		close(w->to);
		w->to = -1;
	}
	if (child_reap(w->pid, 5000000000ull, &status) < 0) {
		kill(w->pid, SIGKILL);
		child_reap(w->pid, 5000000000ull, &status);
	}
	if (w->from >= 0)
		close(w->from);
	w->from = -1;
	w->pid = -1;
}

/* Sends @cmd to each of @n workers and reads one line from each, which must
 * start with @expect. Return: 0, or -1 with the reason in @why. */
static int workers_say(struct worker *w, unsigned int n, const char *cmd, const char *expect,
		       char *lines, size_t line_len, int timeout, char *why, size_t len)
{
	for (unsigned int i = 0; i < n; i++) {
		ssize_t k = (ssize_t)strlen(cmd);

		if (write(w[i].to, cmd, (size_t)k) != k) {
			snprintf(why, len, "%s: %s", w[i].name, strerror(errno));
			return -1;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		char *line = lines + i * line_len;

		if (worker_line(&w[i], line, line_len, timeout) < 0) {
			snprintf(why, len, "%s", line);
			return -1;
		}
		if (strncmp(line, expect, strlen(expect)) != 0) {
			snprintf(why, len, "%s", strncmp(line, "error ", 6) == 0 ? line + 6 : line);
			return -1;
		}
	}
	return 0;
}

double workers_run(struct worker *w, unsigned int n, enum wl_pattern pat, uint64_t seed, char *why,
		   size_t len)
{
	uint64_t calls = 0, t0 = UINT64_MAX, t1 = 0, start, end;
	int timeout = (int)opt.trial_ms * 20 + 30000;
	char cmd[160], lines[4][256];

	if (n > 4)
		fail("workers_run: %u workers", n);
	/* Each its own seed: the ring's sequence differs from one worker to the next. */
	for (unsigned int i = 0; i < n; i++) {
		snprintf(cmd, sizeof(cmd), "prep %s %llu\n", wl_pattern_names[pat],
			 (unsigned long long)(seed + i));
		if (workers_say(&w[i], 1, cmd, "prepped", lines[i], sizeof(lines[i]), timeout, why,
				len) < 0)
			return -1;
	}
	start = now_ns() + 5000000ull;
	end = start + (uint64_t)opt.trial_ms * 1000000ull;
	snprintf(cmd, sizeof(cmd), "go %llu %llu\n", (unsigned long long)start,
		 (unsigned long long)end);
	if (workers_say(w, n, cmd, "done", &lines[0][0], sizeof(lines[0]), timeout, why, len) < 0)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		unsigned long long c, a, b;

		if (sscanf(lines[i], "done %llu %llu %llu", &c, &a, &b) != 3) {
			snprintf(why, len, "%s: %s", w[i].name, lines[i]);
			return -1;
		}
		calls += c;
		t0 = a < t0 ? a : t0;
		t1 = b > t1 ? b : t1;
	}
	return t1 > t0 ? (double)calls * 1e9 / (double)(t1 - t0) : -1;
}

/* ------------------------------------------------------------------------- */
/* Histograms and /proc                                                       */

static uint64_t hist_upper(unsigned int i)
{
	unsigned int e;

	if (i < (1u << HIST_SUB_BITS))
		return i;
	e = (i >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
	return ((uint64_t)((i & ((1u << HIST_SUB_BITS) - 1)) + (1u << HIST_SUB_BITS) + 1)
		<< (e - HIST_SUB_BITS)) -
	       1;
}

double hist_quantile(const struct hist *h, unsigned int n, double q, uint64_t *count)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned int k = 0; k < n; k++)
		for (unsigned int i = 0; i < HIST_BUCKETS; i++)
			total += h[k].b[i];
	if (count)
		*count = total;
	if (!total)
		return 0;
	want = (uint64_t)(q * (double)total);
	if (want >= total)
		want = total - 1;
	for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
		for (unsigned int k = 0; k < n; k++)
			seen += h[k].b[i];
		if (seen > want)
			return (double)hist_upper(i);
	}
	return (double)hist_upper(HIST_BUCKETS - 1);
}

static int64_t read_first_u64(const char *path)
{
	char buf[128];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

/* utime + stime of /proc/PID/stat, in ns. */
static int64_t proc_stat_cpu_ns(pid_t pid)
{
	unsigned long long ut, stt;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
		return -1;
	return (int64_t)((ut + stt) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

int64_t proc_cpu_ns(pid_t pid)
{
	char path[64];
	int64_t sum = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char p[300];
		int64_t v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		v = read_first_u64(p);
		if (v < 0) {
			closedir(d);
			return proc_stat_cpu_ns(pid);
		}
		sum += v;
	}
	closedir(d);
	return sum;
}

static int64_t status_field(const char *path, const char *key)
{
	size_t klen = strlen(key);
	char line[256];
	int64_t v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return v;
}

int64_t proc_rss(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return status_field(path, "VmRSS");
}

int64_t proc_self_rss_anon(void)
{
	return status_field("/proc/self/status", "RssAnon");
}

int wait_grants(int fd, uint64_t grants, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull, id = 1u << 30;

	for (;;) {
		uint64_t g;

		if (rp_meminfo(fd, id++, &g, NULL) < 0)
			return -1;
		if (g <= grants)
			return 0;
		if (now_ns() > deadline)
			return -1;
		sleep_ms(2);
	}
}

/* ------------------------------------------------------------------------- */
/* The daemon under test                                                      */

/* Hugepages the run needs besides the pool: the vmalloc floor and DPDK. */
static long extra_hugepages(void)
{
	long n = 0;

	if (opt.only[5])
		n += (long)(SZ_64M / SZ_2M);
	if (opt.only[2])
		n += (long)opt.dpdk_mb / 2;
	return n;
}

static void daemon_setup(void)
{
	static char max_grants[32];
	const char *extra[16];
	unsigned int n = 0;
	long pool_pages = (long)(parse_size(opt.pool_size) / SZ_2M), free_pages;
	bool huge;

	dmn.backing_note[0] = '\0';
	free_pages = hugepages_ensure_free(pool_pages + extra_hugepages(), opt.hugepages);
	huge = (!opt.quick || opt.hugepages) && free_pages >= pool_pages;
	if (!huge)
		snprintf(dmn.backing_note, sizeof(dmn.backing_note), "%s",
			 opt.quick && !opt.hugepages
				 ? "--quick leaves hugepages alone (--hugepages to use them)"
			 : free_pages < 0 ? "the host has no 2 MiB hugepages"
					  : "not enough free 2 MiB hugepages for the pool "
					    "(bench/run, or --hugepages as root, reserves them)");
	snprintf(max_grants, sizeof(max_grants), "%lu", 4 * opt.grants + 4 * opt.objects + 65536);
	extra[n++] = "--backing";
	extra[n++] = huge ? "hugetlb" : "shmem";
	/* 1000 clients and more; limits that would stop figures 3, 4 and 7 when
	 * run unprivileged (root has none anyway). */
	extra[n++] = "--max-clients";
	extra[n++] = "4096";
	extra[n++] = "--uid-max-connections";
	extra[n++] = "4096";
	extra[n++] = "--log-level";
	extra[n++] = "notice";
	extra[n++] = "--uid-max-grants";
	extra[n++] = max_grants;
	extra[n++] = "--uid-max-share";
	extra[n++] = "100";
	extra[n] = NULL;
	daemon_spawn(opt.spawn, opt.pool_size, extra);
	opt.socket = st.sock_path;
	dmn.spawned = true;
}

static void daemon_probe(void)
{
	km_meminfo mi;
	km_client *c;
	int fd;

	fd = rp_connect(opt.socket, "kmperf-probe");
	if (fd < 0)
		fail("cannot connect to %s: %s", opt.socket, strerror(-fd));
	dmn.pid = rp_peer_pid(fd);
	close(fd);
	c = km_connect(opt.socket);
	if (!c)
		fail("km_connect(%s): %s", opt.socket, strerror(errno));
	if (km_get_meminfo(c, &mi) < 0)
		fail("km_get_meminfo: %s", strerror(errno));
	km_disconnect(c);
	dmn.hugetlb = mi.hugetlb != 0;
	dmn.pool_bytes = mi.total;
	if (!dmn.hugetlb && !dmn.backing_note[0])
		snprintf(dmn.backing_note, sizeof(dmn.backing_note),
			 "the daemon's pool is shmem-backed");
}

/* ------------------------------------------------------------------------- */
/* Command line                                                               */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kmperf (--spawn KMALLOCD | --socket PATH) [OPTION]...\n"
		"The kmalloc broker (%s) beside glibc, boost.interprocess and DPDK, at scale,\n"
		"at a million grants, against the vmalloc floor and under callgrind: one table.\n\n"
		"  --spawn KMALLOCD    start this kmallocd on a temporary socket (pinned to its\n"
		"                      own CPU), stop it at exit\n"
		"  --socket PATH       use a running daemon instead (not pinned; figure 6 then\n"
		"                      needs --kmallocd)\n"
		"  --kmallocd PATH     the daemon to run under callgrind (default: --spawn's)\n"
		"  --pool-size SIZE    pool of the spawned daemon (default 512M)\n"
		"  --hugepages         as root, raise vm.nr_hugepages for the pool, the vmalloc\n"
		"                      floor and DPDK, and put it back at exit\n"
		"  --only LIST         figures to run, e.g. 1,2,5 (default: all)\n"
		"  --reps N            interleaved repetitions of figures 1-2 (7; --quick 3)\n"
		"  --trial-ms N        length of one trial of figures 1-2 (150; --quick 10)\n"
		"  --scale LIST        client processes of figure 3 (10,100,1000; --quick 10,50)\n"
		"  --scale-rate N      total requests/s offered in figure 3 (5000)\n"
		"  --scale-ms N        length of each phase of figure 3 (2000; --quick 250)\n"
		"  --grants N          live grants of figure 4 (1048576; --quick 65536)\n"
		"  --objects N         live objects of figure 7 (1000000; --quick 65536)\n"
		"  --vmalloc-calls N   calls of each kind in figure 5 (60; --quick 6)\n"
		"  --peers-dir DIR     where kmperf-boost and kmperf-dpdk are (default: beside\n"
		"                      kmperf)\n"
		"  --no-pin            leave CPU placement to the scheduler\n"
		"  --quick             a short smoke run; targets reported, not enforced\n"
		"  --help              this text\n\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 a target missed (full runs only).\n",
		PACKAGE_VERSION);
}

static unsigned long parse_count(const char *name, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max || *s == '-') {
		fprintf(stderr, "kmperf: %s: not a count (1-%lu): '%s'\n", name, max, s);
		exit(EXIT_USAGE);
	}
	return v;
}

static void parse_only(const char *s)
{
	char *copy = strdup(s), *save = NULL;

	if (!copy)
		exit(EXIT_FAILURE);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		opt.only[parse_count("--only", t, KMPERF_NR_FIGURES)] = true;
	free(copy);
}

static void parse_scale(const char *s)
{
	char *copy = strdup(s), *save = NULL;

	if (!copy)
		exit(EXIT_FAILURE);
	opt.nr_scale_counts = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (opt.nr_scale_counts == 4) {
			fprintf(stderr, "kmperf: --scale: at most 4 counts\n");
			exit(EXIT_USAGE);
		}
		opt.scale_counts[opt.nr_scale_counts++] =
			(unsigned int)parse_count("--scale", t, 4000);
	}
	free(copy);
}

enum {
	OPT_SPAWN = 256,
	OPT_SOCKET,
	OPT_KMALLOCD,
	OPT_POOL,
	OPT_HUGE,
	OPT_ONLY,
	OPT_REPS,
	OPT_TRIAL,
	OPT_SCALE,
	OPT_RATE,
	OPT_SCALE_MS,
	OPT_GRANTS,
	OPT_OBJECTS,
	OPT_VCALLS,
	OPT_PEERS,
	OPT_NOPIN,
	OPT_QUICK,
	OPT_HELP,
};

static const struct option longopts[] = {
	{ "spawn", required_argument, NULL, OPT_SPAWN },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "kmallocd", required_argument, NULL, OPT_KMALLOCD },
	{ "pool-size", required_argument, NULL, OPT_POOL },
	{ "hugepages", no_argument, NULL, OPT_HUGE },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "trial-ms", required_argument, NULL, OPT_TRIAL },
	{ "scale", required_argument, NULL, OPT_SCALE },
	{ "scale-rate", required_argument, NULL, OPT_RATE },
	{ "scale-ms", required_argument, NULL, OPT_SCALE_MS },
	{ "grants", required_argument, NULL, OPT_GRANTS },
	{ "objects", required_argument, NULL, OPT_OBJECTS },
	{ "vmalloc-calls", required_argument, NULL, OPT_VCALLS },
	{ "peers-dir", required_argument, NULL, OPT_PEERS },
	{ "no-pin", no_argument, NULL, OPT_NOPIN },
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Values given on the command line, 0 where none (defaults come after --quick is known). */
static struct {
	unsigned long reps, trial_ms, rate, scale_ms, grants, objects, vcalls;
	bool only, scale;
} given;

static void read_option(int o)
{
	switch (o) {
	case OPT_SPAWN:
		opt.spawn = optarg;
		break;
	case OPT_SOCKET:
		opt.socket = optarg;
		break;
	case OPT_KMALLOCD:
		opt.kmallocd = optarg;
		break;
	case OPT_POOL:
		opt.pool_size = optarg;
		break;
	case OPT_HUGE:
		opt.hugepages = true;
		break;
	case OPT_ONLY:
		parse_only(optarg);
		given.only = true;
		break;
	case OPT_REPS:
		given.reps = parse_count("--reps", optarg, 1000);
		break;
	case OPT_TRIAL:
		given.trial_ms = parse_count("--trial-ms", optarg, 60000);
		break;
	case OPT_SCALE:
		parse_scale(optarg);
		given.scale = true;
		break;
	case OPT_RATE:
		given.rate = parse_count("--scale-rate", optarg, 10000000);
		break;
	case OPT_SCALE_MS:
		given.scale_ms = parse_count("--scale-ms", optarg, 600000);
		break;
	case OPT_GRANTS:
		given.grants = parse_count("--grants", optarg, 64ul << 20);
		break;
	case OPT_OBJECTS:
		given.objects = parse_count("--objects", optarg, 64ul << 20);
		break;
	case OPT_VCALLS:
		given.vcalls = parse_count("--vmalloc-calls", optarg, 100000);
		break;
	case OPT_PEERS:
		opt.peers_dir = optarg;
		break;
	case OPT_NOPIN:
		opt.pin = false;
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

#define PICK(g, v_full, v_quick) ((g) ? (g) : opt.quick ? (v_quick) : (v_full))

static void parse_options(int argc, char **argv)
{
	static char self_dir[PATH_MAX];
	int o;

	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		read_option(o);
	if (optind < argc) {
		fprintf(stderr, "kmperf: unexpected argument '%s'\n", argv[optind]);
		exit(EXIT_USAGE);
	}
	if (!!opt.spawn == !!opt.socket) {
		fprintf(stderr, "kmperf: give one of --spawn KMALLOCD and --socket PATH\n");
		exit(EXIT_USAGE);
	}
	if (parse_size(opt.pool_size) < 128ul << 20) {
		fprintf(stderr, "kmperf: --pool-size '%s': need 128M or more\n", opt.pool_size);
		exit(EXIT_USAGE);
	}
	if (!given.only)
		for (int i = 1; i <= KMPERF_NR_FIGURES; i++)
			opt.only[i] = true;
	if (!opt.kmallocd)
		opt.kmallocd = opt.spawn;
	if (!given.scale) {
		static const unsigned int full[] = { 10, 100, 1000 }, quick[] = { 10, 50 };

		opt.nr_scale_counts = opt.quick ? 2 : 3;
		memcpy(opt.scale_counts, opt.quick ? quick : full,
		       opt.nr_scale_counts * sizeof(unsigned int));
	}
	opt.reps = (unsigned int)PICK(given.reps, 7, 3);
	opt.trial_ms = (unsigned int)PICK(given.trial_ms, 150, 10);
	opt.scale_reps = opt.quick ? 1 : 3;
	opt.scale_rate = (unsigned int)PICK(given.rate, 5000, 5000);
	opt.scale_ms = (unsigned int)PICK(given.scale_ms, 2000, 250);
	opt.grants = PICK(given.grants, 1048576ul, 65536ul);
	opt.objects = PICK(given.objects, 1000000ul, 65536ul);
	opt.vmalloc_calls = (unsigned int)PICK(given.vcalls, 60, 6);
	opt.dpdk_mb = opt.quick ? 32 : 64;
	if (!opt.peers_dir) {
		ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);

		self_dir[n > 0 ? n : 0] = '\0';
		opt.peers_dir = n > 0 ? dirname(self_dir) : ".";
	}
}

static void print_header(void)
{
	double load[1];

	printf("kmperf: kmallocd %s%s (pid %d), pool %llu MiB %s", PACKAGE_VERSION,
	       dmn.spawned ? " spawned" : "", (int)dmn.pid,
	       (unsigned long long)(dmn.pool_bytes >> 20), dmn.hugetlb ? "hugetlb" : "shmem");
	if (dmn.backing_note[0])
		printf(" (%s)", dmn.backing_note);
	printf("\n");
	if (st.cpu_client >= 0)
		printf("CPUs: kmallocd on CPU %d, kmperf and its clients on CPU %d (client and "
		       "daemon pinned apart); 2 threads or processes: one on each CPU\n",
		       st.cpu_server, st.cpu_client);
	else
		printf("CPUs: placement left to the scheduler\n");
	if (getloadavg(load, 1) == 1)
		printf("host: %ld CPUs, 1-minute load average %.2f before the run, %.2f after "
		       "(the scale figure adds its own clients); the run took %.0f s\n",
		       sysconf(_SC_NPROCESSORS_ONLN), load_start, load[0],
		       (double)(now_ns() - t_start) / 1e9);
	if (opt.quick)
		printf("--quick: short runs, targets reported, not enforced\n");
	printf("\n");
}

/* Whether a daemon we spawned has stopped uncleanly at a restart. */
static bool daemon_unclean;

/*
 * Figures 4 and 7 measure the daemon's RSS growth, which a heap grown and
 * freed by earlier figures would hide (glibc reuses it): each gets a daemon
 * of its own, and so do the figures after them. A daemon found by --socket
 * cannot be restarted; then this is said under the table.
 */
static void daemon_fresh(bool *used)
{
	if (!*used)
		return;
	if (!dmn.spawned) {
		static bool said;

		if (!said)
			note_add("--socket: figures 4 and 7 ran on a daemon that earlier figures "
				 "had used; its RSS growth may be understated");
		said = true;
		return;
	}
	if (!daemon_stop())
		daemon_unclean = true;
	daemon_setup();
	daemon_probe();
	*used = false;
}

static void run_figures(void)
{
	bool used = false;

	if (opt.only[7]) {
		fig_objects();
		used = true;
	}
	if (opt.only[4]) {
		daemon_fresh(&used);
		fig_grants();
		used = true;
	}
	daemon_fresh(&used);
	if (opt.only[1] || opt.only[2])
		fig_small();
	if (opt.only[3])
		fig_scale();
	if (opt.only[5])
		fig_vmalloc();
	if (opt.only[6])
		fig_callgrind();
}

int main(int argc, char **argv)
{
	unsigned int failed;
	bool daemon_ok;

	if (argc == 3 && strcmp(argv[1], "--glibc-overhead") == 0)
		return glibc_overhead_main(strtoul(argv[2], NULL, 10));
	t_start = now_ns();
	getloadavg(&load_start, 1);
	parse_options(argc, argv);
	bench_init("kmperf");
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A daemon found by --socket is not ours to pin; then nothing is. */
	cpus_pick(opt.pin && opt.spawn, true);
	cpu_pin(st.cpu_client);
	tmpdir_make();
	if (opt.spawn)
		daemon_setup();
	daemon_probe();
	progress("kmallocd pid %d, pool %llu MiB %s; measuring (the table comes at the end)",
		 (int)dmn.pid, (unsigned long long)(dmn.pool_bytes >> 20),
		 dmn.hugetlb ? "hugetlb" : "shmem");
	run_figures();
	daemon_ok = daemon_stop() && !daemon_unclean;
	print_header();
	failed = print_table();
	if (!daemon_ok) {
		daemon_log_tail();
		cleanup();
		fprintf(stderr, "kmperf: kmallocd did not exit cleanly on SIGTERM\n");
		return EXIT_FAILURE;
	}
	cleanup();
	if (failed && !opt.quick) {
		printf("kmperf: %u target%s missed\n", failed, failed == 1 ? "" : "s");
		return EXIT_MISSED;
	}
	return EXIT_SUCCESS;
}
