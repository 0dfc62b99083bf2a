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
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmclient.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* log2(2 MiB) << MFD_HUGE_SHIFT, <linux/memfd.h> */
#endif

#define SZ_4K	 4096ul
#define SZ_2M	 (2ul << 20)
#define SZ_4M	 (4ul << 20)
#define SZ_64M	 (64ul << 20)
#define MSG_SIZE 64 /* bytes per ping-pong packet and per small kmalloc */

#define EXIT_USAGE  2
#define EXIT_MISSED 3
#define EXIT_SKIP   77

#define HUGEPAGES_DIR	 "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define READY_TIMEOUT_NS (30ull * 1000000000ull)
#define STOP_TIMEOUT_NS	 (10ull * 1000000000ull)

/* ------------------------------------------------------------------------- */
/* Options and process-wide state                                             */

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

/*
 * What cleanup() undoes. It runs from a signal handler too, so it touches nothing
 * but these fields and calls only async-signal-safe functions.
 */
static struct {
	pid_t main_pid;
	pid_t daemon_pid; /* 0: none running */
	pid_t echo_pid;	  /* 0: none running */
	int cpu_client;	  /* CPU of the bench, -1: not pinned */
	int cpu_server;	  /* CPU of the echo server and a spawned daemon */
	char tmpdir[64];  /* "" when none was made */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char log_path[96];
	long nr_added; /* hugepages this run added to nr_hugepages */
} st;

static void cleanup(void);
static void daemon_log_tail(void);

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fputs("kmbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (st.daemon_pid > 0)
		daemon_log_tail();
	cleanup();
	exit(EXIT_FAILURE);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------- */
/* Statistics                                                                 */

/* One measured quantity: a value per trial, or a note saying why it was skipped. */
struct series {
	const char *name;
	const char *unit; /* "ops/s" or "us" */
	double *v;
	unsigned int n;
	bool skipped;
	char note[120];
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of the series, interpolating between order statistics. */
static double series_quantile(const struct series *s, double q)
{
	double *sorted, pos, v;
	unsigned int lo;

	sorted = malloc(s->n * sizeof(*sorted));
	if (!sorted)
		fail("out of memory");
	memcpy(sorted, s->v, s->n * sizeof(*sorted));
	qsort(sorted, s->n, sizeof(*sorted), cmp_double);
	pos = q * (s->n - 1);
	lo = (unsigned int)pos;
	if (lo + 1 >= s->n)
		v = sorted[s->n - 1];
	else
		v = sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - lo);
	free(sorted);
	return v;
}

static double series_median(const struct series *s)
{
	return series_quantile(s, 0.5);
}

static void series_init(struct series *s, const char *name, const char *unit, unsigned int cap)
{
	s->name = name;
	s->unit = unit;
	s->n = 0;
	s->skipped = false;
	s->note[0] = '\0';
	s->v = calloc(cap, sizeof(*s->v));
	if (!s->v)
		fail("out of memory");
}

static void series_free(struct series *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void __attribute__((format(printf, 2, 3)))
series_skip(struct series *s, const char *fmt, ...)
{
	va_list ap;

	s->skipped = true;
	va_start(ap, fmt);
	vsnprintf(s->note, sizeof(s->note), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------------- */
/* CPU placement                                                              */

/*
 * With --spawn, the bench runs on one CPU and both servers (echo and kmallocd) on
 * another (--placement cross), or all on one (same), so that both round trips pay
 * the same wake-ups. Left to itself (none), the scheduler of a 2-vCPU VM keeps a
 * pair on one CPU in some runs and not in others, which changes a round trip 3-6x
 * and, when the two pairs land differently, the ratio. A daemon given by --socket
 * is not ours to pin; then nothing is.
 */
static void cpus_pick(void)
{
	cpu_set_t set;
	int n = 0;

	st.cpu_client = st.cpu_server = -1;
	if (opt.placement == PLACEMENT_NONE || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (n++ == 0)
			st.cpu_client = st.cpu_server = cpu;
		else if (opt.placement == PLACEMENT_CROSS)
			st.cpu_server = cpu;
	}
	if (opt.placement == PLACEMENT_CROSS && st.cpu_server == st.cpu_client)
		st.cpu_client = st.cpu_server = -1; /* one CPU only: nothing to choose */
}

static void cpu_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "kmbench: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
}

/* ------------------------------------------------------------------------- */
/* Hugepages: reserve for the run, give back at exit                         */

/*
 * The hugepage counters hold one decimal number. These two parse and format it by
 * hand because hugepages_restore() runs in a signal handler, where stdio is unsafe.
 */
static long read_long(const char *path)
{
	char buf[32];
	ssize_t n;
	long v = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (buf[i] - '0');
	return v;
}

static int write_long(const char *path, long v)
{
	char buf[24];
	size_t i = sizeof(buf);
	ssize_t n;
	int fd;

	buf[--i] = '\n';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && i > 0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, buf + i, sizeof(buf) - i);
	close(fd);
	return n == (ssize_t)(sizeof(buf) - i) ? 0 : -1;
}

static long hugepages_free(void)
{
	return read_long(HUGEPAGES_DIR "/free_hugepages");
}

/*
 * Make @need 2 MiB hugepages free, raising nr_hugepages (the per-size twin of
 * /proc/sys/vm/nr_hugepages) by the shortfall when root and --hugepages allow it.
 * What was added is counted in st.nr_added, and only that is taken back at exit:
 * others on the host may change nr_hugepages meanwhile, and keep their change.
 * Return: the number of free hugepages afterwards (-1 when the host has none).
 */
static long hugepages_ensure_free(long need)
{
	long nr, nr_after, free_now = hugepages_free();

	if (free_now < 0 || free_now >= need || !opt.hugepages || geteuid() != 0)
		return free_now;
	nr = read_long(HUGEPAGES_DIR "/nr_hugepages");
	if (nr < 0)
		return free_now;
	if (write_long(HUGEPAGES_DIR "/nr_hugepages", nr + need - free_now) < 0)
		fprintf(stderr, "kmbench: cannot raise nr_hugepages to %ld: %s\n",
			nr + need - free_now, strerror(errno));
	nr_after = read_long(HUGEPAGES_DIR "/nr_hugepages");
	if (nr_after > nr)
		st.nr_added += nr_after - nr;
	return hugepages_free();
}

/* Async-signal-safe: takes back the hugepages hugepages_ensure_free() added. */
static void hugepages_restore(void)
{
	static const char msg[] = "kmbench: cannot restore nr_hugepages\n";
	long nr;

	if (st.nr_added <= 0)
		return;
	nr = read_long(HUGEPAGES_DIR "/nr_hugepages");
	if (nr < 0 || write_long(HUGEPAGES_DIR "/nr_hugepages",
				 nr > st.nr_added ? nr - st.nr_added : 0) < 0) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			return;
	}
	st.nr_added = 0;
}

/* ------------------------------------------------------------------------- */
/* The daemon under test (--spawn)                                           */

static bool socket_accepts(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	bool ok;
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Waits up to @timeout_ns for the daemon; 0 with its wait status, or -1 if it still runs. */
static int daemon_reap(uint64_t timeout_ns, int *status)
{
	uint64_t deadline = now_ns() + timeout_ns;

	for (;;) {
		pid_t r = waitpid(st.daemon_pid, status, WNOHANG);

		if (r == st.daemon_pid || (r < 0 && errno == ECHILD)) {
			st.daemon_pid = 0;
			return 0;
		}
		if (now_ns() >= deadline)
			return -1;
		sleep_ms(5);
	}
}

/* SIGTERM, then SIGKILL after STOP_TIMEOUT_NS. Return: true if it exited cleanly. */
static bool daemon_stop(void)
{
	int status = 0;

	if (st.daemon_pid <= 0)
		return true;
	kill(st.daemon_pid, SIGTERM);
	if (daemon_reap(STOP_TIMEOUT_NS, &status) < 0) {
		kill(st.daemon_pid, SIGKILL);
		daemon_reap(STOP_TIMEOUT_NS, &status);
		return false;
	}
	return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status %#x", status);
}

/* Copies the last lines of the spawned daemon's log to stderr. */
static void daemon_log_tail(void)
{
	static char buf[8192];
	size_t n, start = 0;
	FILE *f;

	if (!st.log_path[0])
		return;
	f = fopen(st.log_path, "re");
	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof(buf) - 1)
		fseek(f, -(long)sizeof(buf) + 1, SEEK_END);
	else
		fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n == sizeof(buf) - 1)
		start = strcspn(buf, "\n") + 1; /* drop the cut first line */
	if (start >= n)
		return;
	fprintf(stderr, "kmbench: kmallocd log (%s):\n", st.log_path);
	for (char *line = buf + start, *end; *line; line = end) {
		end = strchrnul(line, '\n');
		fprintf(stderr, "  | %.*s\n", (int)(end - line), line);
		if (*end)
			end++;
	}
}

/*
 * Starts `@exe --socket <tmpdir>/sock --pool-size <size> [--require-hugepages]` with
 * its output in <tmpdir>/kmallocd.log, and waits until the socket accepts a
 * connection (up to 30 s) or the daemon dies.
 */
static void daemon_spawn(const char *exe)
{
	const char *tmp = getenv("TMPDIR");
	char status_text[64];
	uint64_t deadline;
	int logfd, status;
	pid_t pid;

	if (!tmp || !*tmp || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(st.tmpdir, sizeof(st.tmpdir), "%s/kmbench.XXXXXX", tmp);
	if (!mkdtemp(st.tmpdir)) {
		st.tmpdir[0] = '\0';
		fail("mkdtemp in %s: %s", tmp, strerror(errno));
	}
	snprintf(st.sock_path, sizeof(st.sock_path), "%s/sock", st.tmpdir);
	snprintf(st.log_path, sizeof(st.log_path), "%s/kmallocd.log", st.tmpdir);
	logfd = open(st.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		fail("%s: %s", st.log_path, strerror(errno));

	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		char *argv[] = { (char *)exe,
				 "--socket",
				 st.sock_path,
				 "--pool-size",
				 (char *)opt.pool_size,
				 "--require-hugepages",
				 NULL };
		int nullfd = open("/dev/null", O_RDONLY);

		/* The daemon must not outlive a bench that crashes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != st.main_pid)
			_exit(127);
		if (!opt.hugepages)
			argv[5] = NULL;
		cpu_pin(st.cpu_server);
		if (nullfd >= 0)
			dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execv(exe, argv);
		dprintf(STDERR_FILENO, "kmbench: exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(logfd);
	st.daemon_pid = pid;

	deadline = now_ns() + READY_TIMEOUT_NS;
	for (;;) {
		if (daemon_reap(0, &status) == 0) {
			describe_status(status, status_text, sizeof(status_text));
			daemon_log_tail();
			fail("%s exited (%s) before it was ready", exe, status_text);
		}
		if (socket_accepts(st.sock_path))
			return;
		if (now_ns() >= deadline)
			fail("%s: socket %s does not accept connections after 30 s", exe,
			     st.sock_path);
		sleep_ms(10);
	}
}

/* ------------------------------------------------------------------------- */
/* Clean-up, normal or on a signal                                            */

static void echo_stop(void)
{
	if (st.echo_pid <= 0)
		return;
	kill(st.echo_pid, SIGKILL);
	waitpid(st.echo_pid, NULL, 0);
	st.echo_pid = 0;
}

/* Async-signal-safe: kill what we started, give hugepages back, remove the tmpdir. */
static void cleanup(void)
{
	echo_stop();
	daemon_stop();
	hugepages_restore();
	if (st.tmpdir[0]) {
		unlink(st.sock_path);
		unlink(st.log_path);
		rmdir(st.tmpdir);
		st.tmpdir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	if (getpid() == st.main_pid)
		cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	signal(SIGPIPE, SIG_IGN); /* a dead peer is an error to report, not a crash */
}

static void reset_signals(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}

/* ------------------------------------------------------------------------- */
/* (1) round trips: seqpacket ping-pong and kmalloc+kfree of 64 bytes        */

static void __attribute__((noreturn)) echo_serve(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(n == 0 ? 0 : 1);
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			_exit(1);
	}
}

/*
 * Forks the echo server on a socketpair; returns the parent's end. Called before
 * km_connect() so that the child holds no copy of the broker connection.
 */
static int echo_start(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair(AF_UNIX, SOCK_SEQPACKET): %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		cpu_pin(st.cpu_server);
		close(sv[0]);
		echo_serve(sv[1]);
	}
	close(sv[1]);
	st.echo_pid = pid;
	return sv[0];
}

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

/* SIZE as kmallocd takes it: bytes or a K/M/G suffix. Return: bytes, 0 if malformed. */
static uint64_t parse_size(const char *s)
{
	uint64_t v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return 0;
	switch (*end) {
	case 'G':
	case 'g':
		v <<= 10;
		/* fallthrough */
	case 'M':
	case 'm':
		v <<= 10;
		/* fallthrough */
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	default:
		break;
	}
	return *end ? 0 : v;
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
	long free_now = hugepages_ensure_free(need);

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
	st.main_pid = getpid();
	install_signals();
	setvbuf(stdout, NULL, _IOLBF, 0);

	cpus_pick();
	cpu_pin(st.cpu_client);
	if (opt.hugepages)
		reserve_hugepages();
	if (opt.spawn) {
		daemon_spawn(opt.spawn);
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
		hugepages_ensure_free((long)(SZ_64M / SZ_2M));
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
