// SPDX-License-Identifier: MIT
/*
 * benchutil.c - clocks, statistics, CPU placement, hugepages, a spawned
 * kmallocd, an echo server and the clean-up, for kmbench and kmperf.
 */
#include "config.h"
#include "benchutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench_state st = {
	.prog = "bench",
	.cpu_client = -1,
	.cpu_server = -1,
};

void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", st.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (st.daemon_pid > 0 && getpid() == st.main_pid)
		daemon_log_tail();
	cleanup();
	exit(EXIT_FAILURE);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
			       .tv_nsec = (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ------------------------------------------------------------------------- */
/* Statistics                                                                 */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double series_quantile(const struct series *s, double q)
{
	double *sorted, pos, v;
	unsigned int lo;

	if (s->n == 0)
		return 0;
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

double series_median(const struct series *s)
{
	return series_quantile(s, 0.5);
}

double series_max(const struct series *s)
{
	return series_quantile(s, 1.0);
}

void series_init(struct series *s, const char *name, const char *unit, unsigned int cap)
{
	s->name = name;
	s->unit = unit;
	s->n = 0;
	s->skipped = false;
	s->note[0] = '\0';
	s->v = calloc(cap ? cap : 1, sizeof(*s->v));
	if (!s->v)
		fail("out of memory");
}

void series_free(struct series *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void series_skip(struct series *s, const char *fmt, ...)
{
	va_list ap;

	s->skipped = true;
	va_start(ap, fmt);
	vsnprintf(s->note, sizeof(s->note), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------------- */
/* CPU placement                                                              */

void cpus_pick(bool pin, bool cross)
{
	cpu_set_t set;
	int n = 0;

	st.cpu_client = st.cpu_server = -1;
	if (!pin || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (n++ == 0)
			st.cpu_client = st.cpu_server = cpu;
		else if (cross)
			st.cpu_server = cpu;
	}
	if (cross && st.cpu_server == st.cpu_client)
		st.cpu_client = st.cpu_server = -1; /* one CPU only: nothing to choose */
}

void cpu_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "%s: cannot pin to CPU %d: %s\n", st.prog, cpu, strerror(errno));
}

/* ------------------------------------------------------------------------- */
/* Hugepages: reserve for the run, give back at exit                         */

/*
 * The hugepage counters hold one decimal number. These two parse and format it by
 * hand because hugepages_restore() runs in a signal handler, where stdio is unsafe.
 */
long read_long(const char *path)
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

int write_long(const char *path, long v)
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

long hugepages_free(void)
{
	return read_long(HUGEPAGES_DIR "/free_hugepages");
}

long hugepages_ensure_free(long need, bool may_raise)
{
	long nr, nr_after, free_now = hugepages_free();

	if (free_now < 0 || free_now >= need || !may_raise || geteuid() != 0)
		return free_now;
	nr = read_long(HUGEPAGES_DIR "/nr_hugepages");
	if (nr < 0)
		return free_now;
	if (write_long(HUGEPAGES_DIR "/nr_hugepages", nr + need - free_now) < 0)
		fprintf(stderr, "%s: cannot raise nr_hugepages to %ld: %s\n", st.prog,
			nr + need - free_now, strerror(errno));
	nr_after = read_long(HUGEPAGES_DIR "/nr_hugepages");
	if (nr_after > nr)
		st.nr_added += nr_after - nr;
	return hugepages_free();
}

void hugepages_restore(void)
{
	static const char msg[] = "bench: cannot restore nr_hugepages\n";
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
/* The daemon under test                                                      */

void tmpdir_make(void)
{
	const char *tmp = getenv("TMPDIR");

	if (st.tmpdir[0])
		return;
	if (!tmp || !*tmp || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(st.tmpdir, sizeof(st.tmpdir), "%s/%s.XXXXXX", tmp, st.prog);
	if (!mkdtemp(st.tmpdir)) {
		st.tmpdir[0] = '\0';
		fail("mkdtemp in %s: %s", tmp, strerror(errno));
	}
	snprintf(st.sock_path, sizeof(st.sock_path), "%s/sock", st.tmpdir);
	snprintf(st.log_path, sizeof(st.log_path), "%s/kmallocd.log", st.tmpdir);
}

void clean_add_file(const char *path)
{
	if (st.nr_files < BENCH_MAX_CLEAN)
		snprintf(st.files[st.nr_files++], sizeof(st.files[0]), "%s", path);
}

void clean_add_mount(const char *path)
{
	if (st.nr_mounts < BENCH_MAX_CLEAN)
		snprintf(st.mounts[st.nr_mounts++], sizeof(st.mounts[0]), "%s", path);
}

bool socket_accepts(const char *path)
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

int child_reap(pid_t pid, uint64_t timeout_ns, int *status)
{
	uint64_t deadline = now_ns() + timeout_ns;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return 0;
		if (now_ns() >= deadline)
			return -1;
		sleep_ms(5);
	}
}

bool daemon_stop(void)
{
	int status = 0;

	if (st.daemon_pid <= 0)
		return true;
	kill(st.daemon_pid, SIGTERM);
	if (child_reap(st.daemon_pid, STOP_TIMEOUT_NS, &status) < 0) {
		kill(st.daemon_pid, SIGKILL);
		child_reap(st.daemon_pid, STOP_TIMEOUT_NS, &status);
		st.daemon_pid = 0;
		return false;
	}
	st.daemon_pid = 0;
	return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status %#x", status);
}

/* Copies the last lines of the spawned daemon's log to stderr. */
void daemon_log_tail(void)
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
	fprintf(stderr, "%s: kmallocd log (%s):\n", st.prog, st.log_path);
	for (char *line = buf + start, *end; *line; line = end) {
		end = strchrnul(line, '\n');
		fprintf(stderr, "  | %.*s\n", (int)(end - line), line);
		if (*end)
			end++;
	}
}

pid_t spawn_logged(char *const argv[], const char *log, int cpu)
{
	int logfd;
	pid_t pid;

	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		fail("%s: %s", log, strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDONLY);

		reset_signals();
		/* The child must not outlive a bench that crashes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != st.main_pid)
			_exit(127);
		cpu_pin(cpu);
		if (nullfd >= 0)
			dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "%s: exec %s: %s\n", st.prog, argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	return pid;
}

void daemon_spawn(const char *exe, const char *pool_size, const char *const *extra)
{
	char status_text[64];
	const char *argv[32];
	uint64_t deadline;
	unsigned int n = 0;
	int status;

	tmpdir_make();
	argv[n++] = exe;
	argv[n++] = "--socket";
	argv[n++] = st.sock_path;
	argv[n++] = "--pool-size";
	argv[n++] = pool_size;
	for (unsigned int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	st.daemon_pid = spawn_logged((char *const *)argv, st.log_path, st.cpu_server);

	deadline = now_ns() + READY_TIMEOUT_NS;
	for (;;) {
		if (waitpid(st.daemon_pid, &status, WNOHANG) == st.daemon_pid) {
			st.daemon_pid = 0;
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
/* A bare SOCK_SEQPACKET round trip                                           */

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

int echo_start(void)
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

void echo_stop(void)
{
	if (st.echo_pid <= 0)
		return;
	kill(st.echo_pid, SIGKILL);
	waitpid(st.echo_pid, NULL, 0);
	st.echo_pid = 0;
}

void echo_roundtrip(int fd, const void *msg, size_t len)
{
	char back[256];
	ssize_t n;

	if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		fail("ping-pong send: %s", strerror(errno));
	do
		n = recv(fd, back, sizeof(back), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		fail("ping-pong recv: %s", n < 0 ? strerror(errno) : "short packet");
}

/* ------------------------------------------------------------------------- */
/* Clean-up, normal or on a signal                                            */

void cleanup(void)
{
	if (getpid() != st.main_pid)
		return;
	if (st.extra_cleanup)
		st.extra_cleanup();
	echo_stop();
	daemon_stop();
	hugepages_restore();
	for (unsigned int i = st.nr_mounts; i-- > 0;) {
		umount2(st.mounts[i], MNT_DETACH);
		rmdir(st.mounts[i]);
	}
	st.nr_mounts = 0;
	for (unsigned int i = 0; i < st.nr_files; i++)
		unlink(st.files[i]);
	st.nr_files = 0;
	if (st.tmpdir[0]) {
		unlink(st.sock_path);
		unlink(st.log_path);
		rmdir(st.tmpdir);
		st.tmpdir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

void bench_init(const char *prog)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	st.prog = prog;
	st.main_pid = getpid();
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	signal(SIGPIPE, SIG_IGN); /* a dead peer is an error to report, not a crash */
}

void reset_signals(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}

uint64_t parse_size(const char *s)
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
