// SPDX-License-Identifier: MIT
/*
 * daemon.c - run kmallocd under a test: temp dir, own socket, log file,
 * readiness by connecting, clean stop by SIGTERM.
 */
#include "config.h"
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"

static bool try_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

void test_daemon_dump_log(const struct test_daemon *d)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");

	if (!f)
		return;
	fprintf(stderr, "---- kmallocd log (%s) ----\n", d->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "---- end of log ----\n");
	fclose(f);
}

void test_daemon_log_window(void)
{
	usleep(1100000);
}

int test_daemon_log_count(const struct test_daemon *d, const char *needle)
{
	return test_count_lines(d->log, needle, NULL);
}

void test_daemon_assert_serves(const struct test_daemon *d, int fd)
{
	Kmalloc__Reply *r;

	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	ck_assert_msg(fd >= 0, "cannot connect to kmallocd");
	r = raw_alloc(fd, 9, 64, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	ck_assert_uint_eq(r->alloc->n_grants, 1);
	kmalloc__reply__free_unpacked(r, NULL);
}

pid_t test_kmallocd_spawn(const char *socket, const char *pool_size, const char *log,
			  const char *const *extra)
{
	const char *exe = getenv("KMALLOCD");
	const char *argv[32];
	int argc = 0, i, logfd;
	pid_t pid;

	if (!exe) {
		fprintf(stderr, "KMALLOCD is not set (run the tests through meson test)\n");
		exit(EXIT_FAILURE);
	}
	argv[argc++] = exe;
	argv[argc++] = "--socket";
	argv[argc++] = socket;
	argv[argc++] = "--pool-size";
	argv[argc++] = pool_size;
	argv[argc++] = "--log-level";
	argv[argc++] = "debug";
	if (!strcmp(test_backing(), "hugetlb")) {
		argv[argc++] = "--require-hugepages";
	} else {
		argv[argc++] = "--backing";
		argv[argc++] = "shmem";
	}
	for (i = 0; extra && extra[i] && argc < 30; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0) {
		perror(log);
		exit(EXIT_FAILURE);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(EXIT_FAILURE);
	}
	if (pid == 0) {
		/* As a service's: what the socket's directory is made with. */
		umask(022);
		dup2(logfd, STDERR_FILENO);
		dup2(logfd, STDOUT_FILENO);
		/* Not the test's config: only what the arguments say. */
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(logfd);
	return pid;
}

void test_daemon_start(struct test_daemon *d, uint64_t pool_size, const char *const *extra)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char size[32];
	int i;

	memset(d, 0, sizeof(*d));
	test_backing_prepare(pool_size);
	snprintf(d->dir, sizeof(d->dir), "%s/kmtest.XXXXXX", tmp);
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
	/* Tests also connect as other users (domains, access rights). */
	chmod(d->dir, 0755);
	snprintf(d->socket, sizeof(d->socket), "%s/sock", d->dir);
	/* A later --socket in @extra wins, for the daemon and for us. */
	for (i = 0; extra && extra[i]; i++)
		if (!strcmp(extra[i], "--socket") && extra[i + 1])
			snprintf(d->socket, sizeof(d->socket), "%s", extra[i + 1]);
	snprintf(d->log, sizeof(d->log), "%s/kmallocd.log", d->dir);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)pool_size);
	d->pool_size = pool_size;
	d->pid = test_kmallocd_spawn(d->socket, size, d->log, extra);
	for (i = 0; i < 1000; i++) {
		int status;

		if (try_connect(d->socket))
			break;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "kmallocd exited during start-up (status %d)\n", status);
			test_daemon_dump_log(d);
			exit(EXIT_FAILURE);
		}
		usleep(10000);
	}
	if (i == 1000) {
		fprintf(stderr, "kmallocd did not accept connections within 10 s\n");
		test_daemon_dump_log(d);
		kill(d->pid, SIGKILL);
		exit(EXIT_FAILURE);
	}
	setenv("KMALLOC_SOCKET", d->socket, 1);
}

bool test_daemon_alive(const struct test_daemon *d)
{
	char path[64], state = '?';
	FILE *f;
	int status;

	if (d->pid <= 0 || waitpid(d->pid, &status, WNOHANG) == d->pid)
		return false;
	/* check forks each test: from there the daemon is not our child, so
	 * look at its state instead (a zombie is dead). */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = '?';
	fclose(f);
	return state != 'Z' && state != 'X' && state != '?';
}

int test_daemon_stop(struct test_daemon *d)
{
	int status = 0, i;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	for (i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			break;
		usleep(10000);
	}
	if (i == 1000) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &status, 0);
		fprintf(stderr, "kmallocd did not stop within 10 s of SIGTERM\n");
		test_daemon_dump_log(d);
		status = -1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "kmallocd exited with status %#x\n", status);
		test_daemon_dump_log(d);
	}
	d->pid = 0;
	d->clean_exit = status == 0;
	return status == 0 ? 0
			   : (status < 0 ? -1
					 : (WIFEXITED(status) ? WEXITSTATUS(status)
							      : 128 + WTERMSIG(status)));
}

void test_daemon_cleanup(struct test_daemon *d)
{
	char cmd[160];

	if (d->pid > 0)
		test_daemon_stop(d);
	/* A failed run keeps its directory (and log) for a post-mortem. */
	if (!d->clean_exit || getenv("KM_TEST_KEEP") || !d->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d->dir);
	d->dir[0] = '\0';
}

int test_daemon_main(struct test_daemon *d, Suite *s, uint64_t pool_size, const char *const *extra)
{
	int failed;

	test_daemon_start(d, pool_size, extra);
	failed = test_run_suite(s);
	if (test_daemon_stop(d) != 0) {
		fprintf(stderr, "kmallocd did not exit cleanly\n");
		failed++;
	}
	test_daemon_cleanup(d);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
