/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - start a real kmallocd for a test: in a fresh temporary
 * directory, on its own socket, with the backing the test run asks for
 * ($KMALLOC_TEST_BACKING), its log kept in a file and shown when a test fails.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

struct test_daemon {
	pid_t pid;
	char dir[80];
	char socket[100];
	char log[128];
	uint64_t pool_size;
	bool clean_exit; /* the last stop saw exit status 0 */
};

/* Forks $KMALLOCD --socket @socket --pool-size @pool_size --log-level debug
 * with the backing's flags (--require-hugepages for hugetlb, --backing
 * shmem for shmem) and @extra (NULL-terminated extra arguments, or NULL),
 * under umask 022, its output to @log. Returns its pid at once; exits the
 * test program when it cannot. */
pid_t test_kmallocd_spawn(const char *socket, const char *pool_size, const char *log,
			  const char *const *extra);
/* Starts $KMALLOCD with --socket, --pool-size @pool_size, the backing
 * (--require-hugepages for hugetlb, --backing shmem for shmem) and @extra
 * (NULL-terminated extra arguments, or NULL). Waits until it accepts
 * connections (10 s). Sets $KMALLOC_SOCKET. Aborts the test program on
 * failure, printing the daemon's log. */
void test_daemon_start(struct test_daemon *d, uint64_t pool_size, const char *const *extra);
/* SIGTERM, wait, check a clean exit; returns the exit status (0 = clean).
 * The directory and log stay until test_daemon_cleanup(). */
int test_daemon_stop(struct test_daemon *d);
/* Stops it if running, then removes its directory unless it failed. */
void test_daemon_cleanup(struct test_daemon *d);
/* True while the daemon process runs. */
bool test_daemon_alive(const struct test_daemon *d);
/* The main() of an integration test: starts @d (see test_daemon_start()),
 * runs @s, stops @d and cleans up. A daemon that does not exit cleanly on
 * SIGTERM (a crash, a leak under AddressSanitizer) fails the run. Returns
 * the exit status for main(). */
int test_daemon_main(struct test_daemon *d, Suite *s, uint64_t pool_size, const char *const *extra);
/* Prints the daemon's log to stderr. */
void test_daemon_dump_log(const struct test_daemon *d);
/* Waits until the daemon's per-second log rate limits (per uid and
 * daemon-wide) start a fresh window, so the next lines a test causes are
 * printed and can be counted. */
void test_daemon_log_window(void);
/* Counts lines of the log that contain @needle. */
int test_daemon_log_count(const struct test_daemon *d, const char *needle);
/* Asserts that @d is alive and serves a 64-byte kmalloc on @fd, a
 * connection of root's that said Hello (-1 fails too). */
void test_daemon_assert_serves(const struct test_daemon *d, int fd);
