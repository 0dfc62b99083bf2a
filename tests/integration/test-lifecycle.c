// SPDX-License-Identifier: MIT
/*
 * test-lifecycle.c - what happens around clients and the daemon coming and
 * going: a client killed with SIGKILL or disconnecting gives everything back,
 * the daemon stops cleanly on SIGTERM with clients attached (they then see
 * ECONNRESET), refuses a socket another daemon serves, replaces a stale one,
 * says which backing it uses, and --require-hugepages fails with advice.
 * Replacing the daemon (SIGUSR2, or a restart through a stand-in for
 * systemd's fd store) keeps every client's connection, memory and grants,
 * and costs only their owners what went missing in between: a client that
 * died in the gap (its connection kept hung up with FDPOLL=0, or dropped
 * from the store) gives its grants back, a domain memfd that did not come
 * back drops that domain's clients only, and a client killed just before a
 * SIGUSR2 does not make the new image refuse the state.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "attacker.h"
#include "daemon.h"
#include "fakesd.h"
#include "kmclient.h"
#include "testutil.h"

#define POOL_SIZE (32ull << 20)

static km_client *connect_or_fail(void)
{
	km_client *c = km_connect(NULL);

	ck_assert_msg(c != NULL, "km_connect: %s", strerror(errno));
	return c;
}

/* What nobody holds. Strictly MemFree: when a client goes away the caches
 * of its domain let go of the slabs it emptied, so the free count comes
 * back to where it was even while other clients keep the domain alive. */
static uint64_t unheld(km_client *c)
{
	km_meminfo mi;

	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	return mi.free;
}

static uint64_t wait_unheld(km_client *c, uint64_t want)
{
	uint64_t now = 0;
	int i;

	for (i = 0; i < 500; i++) {
		now = unheld(c);
		if (now == want)
			break;
		usleep(10000);
	}
	return now;
}

static pthread_barrier_t holder_ready;

/* A thread of the holder: small objects of every class, half of them
 * freed, so that its magazines and the client's slabs hold some of each
 * when the holder dies. */
static void *holder_thread(void *arg)
{
	km_client *c = arg;
	void *objs[600];
	int i;

	for (i = 0; i < 600; i++)
		if (!(objs[i] = km_kmalloc(c, 1 + (size_t)(i * 37) % 8192, KM_GFP_KERNEL)))
			_exit(6);
	for (i = 0; i < 600; i += 2)
		km_kfree(c, objs[i]);
	pthread_barrier_wait(&holder_ready);
	for (;;)
		pause();
	return NULL;
}

/* A child that allocates a mix of everything, from three threads too,
 * reports, and waits to die. */
static pid_t spawn_holder(int *ready_fd)
{
	int sync[2];
	pid_t pid;

	ck_assert_int_eq(pipe(sync), 0);
	pid = fork();
	if (pid == 0) {
		km_client *c = km_connect(NULL);
		void *objs[200];
		pthread_t th[3];
		int i;

		if (!c)
			_exit(2);
		for (i = 0; i < 200; i++)
			if (!(objs[i] = km_kmalloc(c, 8u << (i % 11), KM_GFP_KERNEL)))
				_exit(3);
		if (!km_vmalloc(c, 5u << 20) || !km_kmalloc(c, 4u << 20, KM_GFP_KERNEL))
			_exit(4);
		/* Frees deferred in the library: the daemon must still take them back. */
		for (i = 0; i < 10; i++)
			km_kfree(c, objs[i]);
		pthread_barrier_init(&holder_ready, NULL, 4);
		for (i = 0; i < 3; i++)
			if (pthread_create(&th[i], NULL, holder_thread, c))
				_exit(7);
		pthread_barrier_wait(&holder_ready);
		if (write(sync[1], "r", 1) != 1)
			_exit(5);
		pause();
		_exit(0);
	}
	close(sync[1]);
	*ready_fd = sync[0];
	return pid;
}

START_TEST(test_sigkill_gives_everything_back)
{
	struct test_daemon d;
	km_client *c;
	uint64_t before;
	int round;

	test_daemon_start(&d, POOL_SIZE, NULL);
	c = connect_or_fail();
	/* Let the domain settle: the first client's domain is shared with us. */
	before = unheld(c);
	for (round = 0; round < 5; round++) {
		int ready;
		char byte;
		pid_t pid = spawn_holder(&ready);

		ck_assert_int_eq(read(ready, &byte, 1), 1);
		close(ready);
		ck_assert_uint_lt(unheld(c), before);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ck_assert_uint_eq(wait_unheld(c, before), before);
	}
	km_disconnect(c);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	/* Logged (the per-uid limit of 5 lines a second may drop some of the
	 * five, with their connect lines, but not all). */
	ck_assert_int_ge(test_daemon_log_count(&d, "gave back"), 1);
	test_daemon_cleanup(&d);
}
END_TEST

/* Clients busy allocating and freeing, killed at random moments, in the
 * middle of whatever they were doing: nothing stays behind. */
START_TEST(test_chaos_of_killed_clients)
{
	enum { CHILDREN = 6, ROUNDS = 4 };
	struct test_daemon d;
	pid_t pids[CHILDREN];
	km_client *c;
	uint64_t before;
	int round, i;

	test_daemon_start(&d, POOL_SIZE, NULL);
	c = connect_or_fail();
	before = unheld(c);
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < CHILDREN; i++) {
			uint64_t seed = test_rand();

			pids[i] = fork();
			if (pids[i] == 0) {
				km_client *cc = km_connect(NULL);
				void *live[32] = { NULL };

				if (!cc)
					_exit(2);
				for (;;) {
					int k = (int)(seed % 32);

					seed = seed * 6364136223846793005ull +
					       1442695040888963407ull;
					if (live[k]) {
						if ((seed >> 40) % 7 == 0)
							km_vfree(cc, live[k]);
						else
							km_kfree(cc, live[k]);
						live[k] = NULL;
						continue;
					}
					if ((seed >> 33) % 7 == 0) {
						live[k] = km_vmalloc(cc,
								     1 + (seed >> 20) % (3u << 20));
						if (live[k])
							continue;
					}
					live[k] = km_kmalloc(cc, 1 + (seed >> 24) % 300000,
							     KM_GFP_KERNEL | KM_GFP_NOWARN);
					if (live[k] && (seed >> 33) % 7 == 0) {
						km_kfree(cc, live[k]); /* kept apart from vfree */
						live[k] = NULL;
					}
				}
			}
		}
		usleep(20000 + test_rand_below(80000));
		for (i = 0; i < CHILDREN; i++)
			kill(pids[i], SIGKILL);
		for (i = 0; i < CHILDREN; i++)
			waitpid(pids[i], NULL, 0);
	}
	ck_assert_uint_eq(wait_unheld(c, before), before);
	km_disconnect(c);
	ck_assert(test_daemon_alive(&d));
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	test_daemon_cleanup(&d);
}
END_TEST

START_TEST(test_disconnect_gives_everything_back)
{
	struct test_daemon d;
	km_client *watcher, *c;
	uint64_t before;
	int i;

	test_daemon_start(&d, POOL_SIZE, NULL);
	watcher = connect_or_fail();
	before = unheld(watcher);
	for (i = 0; i < 3; i++) {
		c = connect_or_fail();
		ck_assert_ptr_nonnull(km_kmalloc(c, 100, KM_GFP_KERNEL));
		ck_assert_ptr_nonnull(km_kmalloc(c, 1u << 20, KM_GFP_KERNEL));
		ck_assert_ptr_nonnull(km_vmalloc(c, 3u << 20));
		km_disconnect(c);
		ck_assert_uint_eq(wait_unheld(watcher, before), before);
	}
	km_disconnect(NULL);
	km_disconnect(watcher);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	test_daemon_cleanup(&d);
}
END_TEST

START_TEST(test_sigterm_with_clients_attached)
{
	struct test_daemon d;
	km_client *c;
	void *p;

	test_daemon_start(&d, POOL_SIZE, NULL);
	c = connect_or_fail();
	p = km_kmalloc(c, 4096, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(test_daemon_stop(&d), 0); /* exits 0 on SIGTERM */
	ck_assert_int_ge(test_daemon_log_count(&d, "shutting down"), 1);
	test_daemon_cleanup(&d);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
	ck_assert_msg(errno == ECONNRESET || errno == EPIPE, "errno %d", errno);
	km_disconnect(c);
}
END_TEST

START_TEST(test_socket_ownership)
{
	struct test_daemon d;
	const char *exe = getenv("KMALLOCD");
	char cmd[512];
	int status;

	test_daemon_start(&d, POOL_SIZE, NULL);
	/* A second daemon on the same socket refuses to steal it. */
	snprintf(cmd, sizeof(cmd),
		 "%s --socket %s --pool-size 4M --backing shmem 2>&1 | "
		 "grep -q 'already listening'",
		 exe, d.socket);
	status = system(cmd);
	ck_assert_int_eq(status, 0);
	ck_assert(test_daemon_alive(&d));
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	test_daemon_cleanup(&d);
}
END_TEST

START_TEST(test_stale_socket_replaced)
{
	struct test_daemon d, again;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	test_daemon_start(&d, POOL_SIZE, NULL);
	/* Kill it hard: the socket file stays behind. */
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	ck_assert_int_eq(access(d.socket, F_OK), 0);
	/* A new daemon on the same path takes the stale socket over. */
	{
		const char *const extra[] = { "--socket", d.socket, NULL };

		test_daemon_start(&again, POOL_SIZE, extra);
		ck_assert_str_eq(again.socket, d.socket);
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", again.socket);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	ck_assert_int_eq(test_daemon_stop(&again), 0);
	test_daemon_cleanup(&again);
	d.clean_exit = true;
	test_daemon_cleanup(&d);
}
END_TEST

START_TEST(test_backing_is_reported)
{
	struct test_daemon d;
	km_client *c;
	km_meminfo mi;
	bool hugetlb = !strcmp(test_backing(), "hugetlb");

	test_daemon_start(&d, POOL_SIZE, NULL);
	c = connect_or_fail();
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_eq(mi.hugetlb, hugetlb);
	km_disconnect(c);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	ck_assert_int_ge(test_daemon_log_count(&d, hugetlb ? "hugetlb" : "shmem"), 1);
	test_daemon_cleanup(&d);
}
END_TEST

START_TEST(test_require_hugepages_without_enough)
{
	const char *exe = getenv("KMALLOCD");
	char cmd[512], out[4096] = "";
	FILE *p;
	size_t n;
	int status;

	/* Far more hugepages than any test machine has free. */
	snprintf(cmd, sizeof(cmd),
		 "%s --socket /tmp/kmtest-never.sock --pool-size 4T "
		 "--require-hugepages 2>&1",
		 exe);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	status = pclose(p);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit status %#x", status);
	ck_assert_msg(strstr(out, "nr_hugepages") != NULL, "no advice in: %s", out);
	ck_assert_int_ne(access("/tmp/kmtest-never.sock", F_OK), 0);
}
END_TEST

START_TEST(test_bad_command_lines)
{
	const char *exe = getenv("KMALLOCD");
	char cmd[512];
	int status;

	snprintf(cmd, sizeof(cmd), "%s --pool-size lots >/dev/null 2>&1", exe);
	status = system(cmd);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	snprintf(cmd, sizeof(cmd), "%s --no-such-flag >/dev/null 2>&1", exe);
	status = system(cmd);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	snprintf(cmd, sizeof(cmd), "%s --help | grep -q -- --require-hugepages", exe);
	ck_assert_int_eq(system(cmd), 0);
	/* No daemon: km_connect says so. */
	errno = 0;
	ck_assert_ptr_null(km_connect("/tmp/kmtest-nobody-listens.sock"));
	ck_assert(errno == ENOENT || errno == ECONNREFUSED);
}
END_TEST

static unsigned long cpu_ticks(pid_t pid)
{
	char path[64];
	unsigned long utime = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
		   &stime) != 2)
		utime = stime = 0;
	fclose(f);
	return utime + stime;
}

/* Out of descriptors, the daemon neither spins on its listening socket nor
 * stops serving: it pauses accepting and picks up again when fds free up. */
START_TEST(test_out_of_descriptors)
{
	enum { N = 64 };
	struct test_daemon d;
	char cmd[128];
	int fds[N], i, n = 0;
	unsigned long before, after;
	km_client *c;

	if (system("command -v prlimit >/dev/null 2>&1") != 0)
		return;
	test_daemon_start(&d, POOL_SIZE, NULL);
	snprintf(cmd, sizeof(cmd), "prlimit --pid %d --nofile=32:32", (int)d.pid);
	ck_assert_int_eq(system(cmd), 0);
	for (i = 0; i < N; i++) {
		struct sockaddr_un addr = { .sun_family = AF_UNIX };

		fds[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d.socket);
		if (connect(fds[i], (struct sockaddr *)&addr, sizeof(addr)) == 0)
			n++;
	}
	ck_assert_int_gt(n, 32); /* queued in the backlog beyond what it can accept */
	before = cpu_ticks(d.pid);
	usleep(500000);
	after = cpu_ticks(d.pid);
	ck_assert_msg(after - before < 15, "kmallocd used %lu ticks in 0.5 s while out of fds",
		      after - before);
	for (i = 0; i < N; i++)
		close(fds[i]);
	c = km_connect(d.socket);
	ck_assert_msg(c != NULL, "not served after descriptors were freed: %s", strerror(errno));
	ck_assert_ptr_nonnull(km_kmalloc(c, 64, KM_GFP_KERNEL));
	km_disconnect(c);
	ck_assert(test_daemon_alive(&d));
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	ck_assert_int_ge(test_daemon_log_count(&d, "pausing new connections"), 1);
	test_daemon_cleanup(&d);
}
END_TEST

static bool wait_log(struct test_daemon *d, const char *needle, int count)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (test_daemon_log_count(d, needle) >= count)
			return true;
		usleep(10000);
	}
	return false;
}

/* SIGUSR2 (systemctl reload) hands everything to a new kmallocd image: the
 * clients keep their connections, their memory and their grants. */
START_TEST(test_handover_keeps_everything)
{
	struct test_daemon d;
	km_client *c;
	uint8_t *small[64], *big, *area;
	km_meminfo before, after;
	int i, round;
	size_t j;

	test_daemon_start(&d, POOL_SIZE, NULL);
	c = connect_or_fail();
	for (i = 0; i < 64; i++) {
		small[i] = km_kmalloc(c, 24 + (size_t)i * 61, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(small[i]);
		memset(small[i], i, 24 + (size_t)i * 61);
	}
	big = km_kmalloc(c, 3u << 20, KM_GFP_KERNEL);
	area = km_vmalloc(c, 5u << 20);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(area);
	memset(big, 0xb1, 3u << 20);
	memset(area, 0xa7, 5u << 20);
	ck_assert_int_eq(km_get_meminfo(c, &before), 0);

	for (round = 1; round <= 2; round++) {
		pid_t pid = d.pid;

		kill(d.pid, SIGUSR2);
		ck_assert_msg(wait_log(&d, "handover complete", round), "no handover in the log");
		ck_assert(test_daemon_alive(&d));
		ck_assert_int_eq(d.pid, pid); /* exec: the same process */
		/* The connection survived and the daemon knows our grants. */
		ck_assert_int_eq(km_get_meminfo(c, &after), 0);
		ck_assert_uint_eq(after.vmalloc_used, before.vmalloc_used);
		ck_assert_uint_eq(after.free + after.slab, before.free + before.slab);
	}
	for (i = 0; i < 64; i++) {
		for (j = 0; j < 24 + (size_t)i * 61 && small[i][j] == i; j++)
			;
		ck_assert_uint_eq(j, 24 + (size_t)i * 61);
		km_kfree(c, small[i]);
	}
	for (j = 0; j < (3u << 20) && big[j] == 0xb1; j++)
		;
	ck_assert_uint_eq(j, 3u << 20);
	for (j = 0; j < (5u << 20) && area[j] == 0xa7; j++)
		;
	ck_assert_uint_eq(j, 5u << 20);
	km_kfree(c, big);
	km_vfree(c, area);
	ck_assert_ptr_nonnull(km_kmalloc(c, 100, KM_GFP_KERNEL));
	ck_assert_int_eq(km_get_meminfo(c, &after), 0);
	ck_assert_uint_eq(after.vmalloc_used, 0);
	km_disconnect(c);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	/* Every id the client freed was one the new daemon knew. */
	ck_assert_int_eq(test_daemon_log_count(&d, "does not hold"), 0);
	test_daemon_cleanup(&d);
}
END_TEST

/* State that is not a handover's is refused before serving anything. */
START_TEST(test_handover_refuses_bad_state)
{
	const char *exe = getenv("KMALLOCD");
	char cmd[512];
	int status;

	snprintf(cmd, sizeof(cmd),
		 "exec 7</dev/null; KMALLOCD_HANDOVER=7 %s --socket "
		 "/tmp/kmtest-ho.sock --pool-size 16M --backing shmem 2>&1 | grep -q handover",
		 exe);
	status = system(cmd);
	ck_assert_int_eq(status, 0);
	snprintf(cmd, sizeof(cmd),
		 "KMALLOCD_HANDOVER=7 %s --pool-size 16M --backing shmem "
		 ">/dev/null 2>&1",
		 exe);
	status = system(cmd);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	ck_assert_int_ne(access("/tmp/kmtest-ho.sock", F_OK), 0);
}
END_TEST

/* ---- under a stand-in for systemd (fakesd.h): LISTEN_FDS, the fd store --- */

/* systemctl reload: RELOADING=1 before the re-exec and READY=1 from the new
 * image (same pid), so that systemd holds the unit in "reloading" until the
 * new image serves; the socket passed by systemd serves on. */
START_TEST(test_reload_says_reloading_then_ready)
{
	struct fake_systemd sd;
	km_meminfo mi;
	km_client *c;
	pid_t pid;

	test_backing_prepare(32u << 20);
	fake_systemd_init(&sd);
	pid = fake_systemd_start(&sd, true);
	c = km_connect(sd.sock);
	ck_assert_msg(c != NULL, "km_connect: %s", strerror(errno));
	kill(pid, SIGUSR2);
	ck_assert_msg(fake_systemd_read(&sd, "RELOADING=1", 10000), "no RELOADING=1");
	ck_assert_msg(fake_systemd_read(&sd, "READY=1", 10000), "no READY=1 after the re-exec");
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	km_disconnect(c);
	c = km_connect(sd.sock);
	ck_assert_msg(c != NULL, "km_connect after the reload: %s", strerror(errno));
	km_disconnect(c);
	fake_systemd_stop(&sd, pid);
	fake_systemd_cleanup(&sd);
}
END_TEST

/* systemctl restart with --fd-store: the old daemon leaves its state and
 * descriptors in the fd store, the new one takes them over; the client keeps
 * its connection, memory and grants across the restart. */
START_TEST(test_restart_through_fd_store)
{
	struct fake_systemd sd;
	uint8_t *small[32], *big, *area;
	km_meminfo mi;
	km_client *c;
	int status, i, have_state = 0;
	size_t j;
	pid_t pid;

	test_backing_prepare(32u << 20);
	fake_systemd_init(&sd);
	pid = fake_systemd_start(&sd, true);
	c = km_connect(sd.sock);
	ck_assert_msg(c != NULL, "km_connect: %s", strerror(errno));
	for (i = 0; i < 32; i++) {
		small[i] = km_kmalloc(c, 100 + (size_t)i * 97, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(small[i]);
		memset(small[i], 0x40 + i, 100 + (size_t)i * 97);
	}
	big = km_kmalloc(c, 2u << 20, KM_GFP_KERNEL);
	area = km_vmalloc(c, 3u << 20);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(area);
	memset(big, 0x5b, 2u << 20);
	memset(area, 0x6c, 3u << 20);

	/* systemctl restart: SIGTERM, then a new process with the store. */
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	fake_systemd_read(&sd, NULL, 200);
	for (i = 0; i < sd.nr; i++)
		have_state += !strcmp(sd.names[i], "kmallocd-state");
	ck_assert_int_eq(have_state, 1);
	ck_assert_int_ge(sd.nr, 4); /* state, reserve, domain, our connection */
	pid = fake_systemd_start(&sd, false);

	/* Same connection, same memory, same grants. */
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_uint_eq(mi.vmalloc_used, 4u << 20);
	for (i = 0; i < 32; i++) {
		for (j = 0; j < 100 + (size_t)i * 97 && small[i][j] == 0x40 + i; j++)
			;
		ck_assert_uint_eq(j, 100 + (size_t)i * 97);
		km_kfree(c, small[i]);
	}
	for (j = 0; j < (2u << 20) && big[j] == 0x5b; j++)
		;
	ck_assert_uint_eq(j, 2u << 20);
	for (j = 0; j < (3u << 20) && area[j] == 0x6c; j++)
		;
	ck_assert_uint_eq(j, 3u << 20);
	km_kfree(c, big);
	km_vfree(c, area);
	ck_assert_ptr_nonnull(km_kmalloc(c, 5000, KM_GFP_KERNEL));
	/* The restored area was freed (the library may keep it mapped for the
	 * next vmalloc of its size: then the same address comes back). */
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	if (mi.vmalloc_used) {
		ck_assert_uint_eq(mi.vmalloc_used, 4u << 20);
		ck_assert_ptr_eq(km_vmalloc(c, 3u << 20), area);
		km_vfree(c, area);
	}
	/* The new daemon told systemd to let go of the stored descriptors. */
	fake_systemd_read(&sd, NULL, 200);
	ck_assert_int_ge(sd.removed, sd.nr);
	for (i = 0; i < sd.nr; i++)
		ck_assert_int_eq(sd.fds[i], -1); /* every entry taken back */
	km_disconnect(c);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "grep -q 'taking over from the fd store' %s", sd.log);
		ck_assert_int_eq(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "grep -q 'does not hold' %s", sd.log);
		ck_assert_int_ne(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", sd.dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* ---- clients in processes of their own, driven through pipes ----------- */

/* A client process: it waits for one-byte commands and answers each with an
 * int, 0 for success, an errno, or PEER_BAD_PATTERN + n when the n-th of its
 * blocks lost the pattern it wrote. 'a' connects and allocates (small and
 * large kmallocs, a vmalloc area) and writes a pattern into everything; 'p'
 * checks the patterns (no round trip: nothing changes hands); 'v' checks
 * them, then allocates and frees once more and asks for the meminfo (round
 * trips whatever the library keeps; that also hands back what the library
 * kept, so the pool's figures move). It is an attacker (attacker.h): the
 * commands come as go-aheads, the answers as reports, and once the test
 * closes its go pipe it disconnects and exits. */
struct peer_args {
	const char *sock;
	uid_t uid; /* 0: root */
	uint8_t tag;
};

#define PEER_MS 30000 /* for an answer */

#define PEER_SMALL	 24
#define PEER_BAD_PATTERN 1000

static size_t peer_small_size(int i)
{
	return 40 + (size_t)i * 173;
}

static bool peer_filled(const uint8_t *p, size_t len, uint8_t c)
{
	for (size_t j = 0; j < len; j++)
		if (p[j] != c)
			return false;
	return true;
}

static int peer_alloc(const char *sock, uint8_t tag, km_client **cp, uint8_t **small,
		      uint8_t **large, uint8_t **area)
{
	km_client *c = km_connect(sock);
	int i;

	if (!c)
		return errno;
	*cp = c;
	for (i = 0; i < PEER_SMALL; i++) {
		small[i] = km_kmalloc(c, peer_small_size(i), KM_GFP_KERNEL);
		if (!small[i])
			return errno;
		memset(small[i], (uint8_t)(tag + i), peer_small_size(i));
	}
	*large = km_kmalloc(c, 1u << 20, KM_GFP_KERNEL);
	if (!*large)
		return errno;
	memset(*large, tag ^ 0x55, 1u << 20);
	*area = km_vmalloc(c, 3u << 20);
	if (!*area)
		return errno;
	memset(*area, tag ^ 0xaa, 3u << 20);
	return 0;
}

static int peer_check(km_client *c, uint8_t tag, uint8_t **small, uint8_t *large, uint8_t *area)
{
	int i;

	if (!c)
		return ENOTCONN;
	for (i = 0; i < PEER_SMALL; i++)
		if (!peer_filled(small[i], peer_small_size(i), (uint8_t)(tag + i)))
			return PEER_BAD_PATTERN + i;
	if (!peer_filled(large, 1u << 20, tag ^ 0x55))
		return PEER_BAD_PATTERN + PEER_SMALL;
	if (!peer_filled(area, 3u << 20, tag ^ 0xaa))
		return PEER_BAD_PATTERN + PEER_SMALL + 1;
	return 0;
}

static int peer_verify(km_client *c, uint8_t tag, uint8_t **small, uint8_t *large, uint8_t *area)
{
	km_meminfo mi;
	void *p;
	int err = peer_check(c, tag, small, large, area);

	if (err)
		return err;
	p = km_kmalloc(c, 5000, KM_GFP_KERNEL);
	if (!p)
		return errno;
	memset(p, 0x11, 5000);
	km_kfree(c, p);
	p = km_vmalloc(c, 2u << 20);
	if (!p)
		return errno;
	memset(p, 0x22, 2u << 20);
	km_vfree(c, p);
	if (km_get_meminfo(c, &mi) < 0)
		return errno;
	return 0;
}

static int peer_main(struct attacker *self, void *arg)
{
	const struct peer_args *p = arg;
	uint8_t *small[PEER_SMALL], *large = NULL, *area = NULL;
	km_client *c = NULL;
	int op;

	if (p->uid)
		ATTACKER_CHECK(attacker_become(p->uid, p->uid, NULL, 0) == 0);
	while ((op = attacker_wait(self)) >= 0) {
		int res = EINVAL;

		if (op == 'a')
			res = peer_alloc(p->sock, p->tag, &c, small, &large, &area);
		else if (op == 'p')
			res = peer_check(c, p->tag, small, large, area);
		else if (op == 'v')
			res = peer_verify(c, p->tag, small, large, area);
		attacker_report(self, &res, sizeof(res));
	}
	km_disconnect(c);
	return 0;
}

/* A peer for @uid (0: root) on @sock; it does nothing until told. */
static void peer_spawn(struct attacker *peer, const char *sock, uid_t uid, uint8_t tag)
{
	struct peer_args args = { sock, uid, tag };

	attacker_start(peer, NULL, peer_main, &args);
}

/* Sends @op and returns the answer. */
static int peer_do(struct attacker *peer, char op)
{
	int res;

	attacker_go(peer, op);
	attacker_read(peer, &res, sizeof(res), PEER_MS);
	return res;
}

/* The entry holding the daemon's end of @pid's connection, or -1. */
static int fake_systemd_conn_of(const struct fake_systemd *sd, pid_t pid)
{
	for (int i = 0; i < sd->nr; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (sd->fds[i] < 0 || strncmp(sd->names[i], "kmallocd-conn-", 14))
			continue;
		if (getsockopt(sd->fds[i], SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    cred.pid == pid)
			return i;
	}
	return -1;
}

/* The entry holding the domain memfd of @uid ("memfd:kmalloc-uidN"), or -1. */
static int fake_systemd_domain_of(const struct fake_systemd *sd, uid_t uid)
{
	char want[48];

	snprintf(want, sizeof(want), "memfd:kmalloc-uid%u ", (unsigned int)uid);
	for (int i = 0; i < sd->nr; i++) {
		char path[64], target[256];
		ssize_t n;

		if (sd->fds[i] < 0 || strncmp(sd->names[i], "kmallocd-domain-", 16))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", sd->fds[i]);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, want))
			return i;
	}
	return -1;
}

/* The entry leaves the store: systemd closes its copy. */
static void fake_systemd_drop(struct fake_systemd *sd, int i)
{
	ck_assert_int_ge(i, 0);
	ck_assert_int_ge(sd->fds[i], 0);
	close(sd->fds[i]);
	sd->fds[i] = -1;
}

static bool fd_hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

/* What systemd does while no daemon runs: an entry stored without
 * FDPOLL=0 is dropped when it hangs up (EPOLLHUP / EPOLLERR). Returns the
 * entries dropped. */
static int fake_systemd_poll_store(struct fake_systemd *sd)
{
	int dropped = 0;

	for (int i = 0; i < sd->nr; i++) {
		if (sd->fds[i] >= 0 && sd->poll[i] && fd_hung_up(sd->fds[i])) {
			fake_systemd_drop(sd, i);
			dropped++;
		}
	}
	return dropped;
}

/* MemTotal = MemFree + Slab + VmallocUsed + HardwareCorrupted: every byte
 * of the pool is in exactly one of them. */
static km_meminfo pool_adds_up(km_client *c)
{
	km_meminfo mi;

	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_msg(mi.total == mi.free + mi.slab + mi.vmalloc_used + mi.quarantined,
		      "total %" PRIu64 " != free %" PRIu64 " + slab %" PRIu64 " + vmalloc %" PRIu64
		      " + quarantined %" PRIu64,
		      mi.total, mi.free, mi.slab, mi.vmalloc_used, mi.quarantined);
	return mi;
}

/* Waits (5 s) until nothing is quarantined and MemFree is @want. */
static bool wait_settled(km_client *c, uint64_t want)
{
	km_meminfo mi;

	for (int i = 0; i < 500; i++) {
		mi = pool_adds_up(c);
		if (mi.free == want && mi.quarantined == 0)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "free %" PRIu64 " (want %" PRIu64 "), quarantined %" PRIu64 "\n", mi.free,
		want, mi.quarantined);
	return false;
}

/* systemctl restart while a client dies in the gap. Client B is killed while
 * no daemon runs. _i 0: systemd keeps B's connection in the store (the
 * daemon stores with FDPOLL=0), and the successor finds it hung up; _i 1:
 * the store drops it (systemd's behaviour without FDPOLL=0), and the
 * successor finds it missing. Either way B's grants come back and A, whose
 * connection and memory are kept, notices nothing. */
START_TEST(test_restart_client_dies_in_gap)
{
	struct fake_systemd sd;
	struct attacker a, b;
	km_client *w, *c;
	uint64_t before;
	char who_b[32];
	pid_t pid;
	int i, conn_b;

	test_backing_prepare(32u << 20);
	fake_systemd_init(&sd);
	pid = fake_systemd_start(&sd, true);
	peer_spawn(&a, sd.sock, 0, 0x30);
	peer_spawn(&b, sd.sock, 0, 0x70);
	w = km_connect(sd.sock);
	ck_assert_msg(w != NULL, "km_connect: %s", strerror(errno));
	ck_assert_int_eq(peer_do(&a, 'a'), 0);
	before = unheld(w);
	ck_assert_int_eq(peer_do(&b, 'a'), 0);
	ck_assert_uint_lt(unheld(w), before);

	fake_systemd_stop(&sd, pid);
	fake_systemd_read(&sd, NULL, 200);
	/* state, reserve, one domain, three connections; none to be polled */
	ck_assert_int_ge(sd.stored, 6);
	ck_assert_int_eq(sd.stored_fdpoll0, sd.stored);
	conn_b = fake_systemd_conn_of(&sd, b.pid);
	ck_assert_int_ge(conn_b, 0);
	snprintf(who_b, sizeof(who_b), " pid %d uid 0 ", (int)b.pid);

	kill(b.pid, SIGKILL);
	attacker_reap(&b);
	ck_assert(fd_hung_up(sd.fds[conn_b]));
	ck_assert_int_eq(fake_systemd_poll_store(&sd), 0); /* FDPOLL=0: all kept */
	ck_assert_int_ge(sd.fds[conn_b], 0);
	if (_i == 1)
		fake_systemd_drop(&sd, conn_b);
	pid = fake_systemd_start(&sd, false);
	for (i = 0; i < sd.nr; i++) /* FDSTOREREMOVE for every entry */
		ck_assert_msg(sd.fds[i] < 0, "%s left in the store", sd.names[i]);

	/* B's grants come back; nothing else moved. */
	ck_assert_uint_eq(wait_unheld(w, before), before);
	ck_assert_uint_eq(pool_adds_up(w).quarantined, 0);
	ck_assert_int_eq(peer_do(&a, 'v'), 0);
	c = km_connect(sd.sock);
	ck_assert_msg(c != NULL, "km_connect after the restart: %s", strerror(errno));
	ck_assert_ptr_nonnull(km_kmalloc(c, 3000, KM_GFP_KERNEL));
	km_disconnect(c);
	attacker_finish(&a);
	km_disconnect(w);
	fake_systemd_stop(&sd, pid);

	ck_assert_int_ge(fake_systemd_log_count(&sd, "taking over from the fd store"), 1);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "did not come back"), _i == 1 ? 1 : 0);
	/* found hung up (read end of file), or missing: a client that died */
	ck_assert_int_eq(fake_systemd_log_count2(&sd, who_b,
						 _i == 1 ? "died during the restart, gave back"
							 : "disconnected, gave back"),
			 1);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not add up"), 0);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not hold"), 0);
	fake_systemd_cleanup(&sd);
}
END_TEST

/* A restart where one domain's memfd does not come back from the store:
 * only that domain's clients (uid nobody) are dropped and see their
 * connection close; root's clients keep their connections and memory. The
 * lost domain's frames go back to the pool, or into quarantine while the
 * host cannot back them in the reserve (hugetlb, no spare hugepage: the
 * dropped clients still map the old memfd), and out of it once they are
 * gone. */
START_TEST(test_restart_loses_a_domain)
{
	struct fake_systemd sd;
	struct attacker a, b1, b2, b3;
	km_meminfo mi;
	km_client *w;
	uint64_t before;
	pid_t pid;
	int i, res;

	test_backing_prepare(32u << 20);
	fake_systemd_init(&sd);
	ck_assert_int_eq(chmod(sd.dir, 0755), 0);
	ck_assert_int_eq(chmod(sd.sock, 0777), 0);
	pid = fake_systemd_start(&sd, true);
	peer_spawn(&a, sd.sock, 0, 0x31);
	peer_spawn(&b1, sd.sock, NOBODY, 0x71);
	peer_spawn(&b2, sd.sock, NOBODY, 0x91);
	w = km_connect(sd.sock);
	ck_assert_msg(w != NULL, "km_connect: %s", strerror(errno));
	ck_assert_int_eq(peer_do(&a, 'a'), 0);
	before = pool_adds_up(w).free;
	ck_assert_int_eq(peer_do(&b1, 'a'), 0);
	ck_assert_int_eq(peer_do(&b2, 'a'), 0);
	ck_assert_uint_lt(unheld(w), before);

	fake_systemd_stop(&sd, pid);
	fake_systemd_read(&sd, NULL, 200);
	ck_assert_int_ge(fake_systemd_domain_of(&sd, 0), 0);
	fake_systemd_drop(&sd, fake_systemd_domain_of(&sd, NOBODY));
	pid = fake_systemd_start(&sd, false);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "its clients are dropped"), 1);
	for (i = 0; i < sd.nr; i++)
		ck_assert_msg(sd.fds[i] < 0, "%s left in the store", sd.names[i]);

	mi = pool_adds_up(w);
	printf("test_restart_loses_a_domain[%s]: right after the restart: %" PRIu64 " KiB "
	       "quarantined, %" PRIu64 " KiB free (%" PRIu64 " KiB before nobody's clients)\n",
	       test_backing(), mi.quarantined >> 10, mi.free >> 10, before >> 10);
	if (strcmp(test_backing(), "hugetlb"))
		ck_assert_uint_eq(mi.quarantined, 0);

	/* nobody's clients: hung up (their memory is their old memfd's now) */
	res = peer_do(&b1, 'v');
	ck_assert_msg(res == ECONNRESET || res == EPIPE, "dropped client got %d", res);
	res = peer_do(&b2, 'v');
	ck_assert_msg(res == ECONNRESET || res == EPIPE, "dropped client got %d", res);
	attacker_finish(&b1);
	attacker_finish(&b2);
	ck_assert(wait_settled(w, before));

	/* root's client: everything kept */
	ck_assert_int_eq(peer_do(&a, 'v'), 0);
	/* and nobody may come back, into a new domain */
	peer_spawn(&b3, sd.sock, NOBODY, 0x51);
	ck_assert_int_eq(peer_do(&b3, 'a'), 0);
	ck_assert_int_eq(peer_do(&b3, 'v'), 0);
	attacker_finish(&b3);
	attacker_finish(&a);
	pool_adds_up(w);
	km_disconnect(w);
	fake_systemd_stop(&sd, pid);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not add up"), 0);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not hold"), 0);
	fake_systemd_cleanup(&sd);
}
END_TEST

/* SIGUSR2 right after a client was killed: the old image may or may not
 * have seen it go; either way the new image takes the state (it must not
 * refuse it), gives the dead client's grants back, and the other client
 * keeps everything. Waited for before the signal on odd rounds, not on
 * even ones (then it may still be dying during the handover). */
START_TEST(test_handover_client_dies_during_reload)
{
	struct test_daemon d;
	struct attacker a, b;
	km_client *w;
	uint64_t before;
	int round;

	test_daemon_start(&d, POOL_SIZE, NULL);
	peer_spawn(&a, d.socket, 0, 0x32);
	w = connect_or_fail();
	ck_assert_int_eq(peer_do(&a, 'a'), 0);
	for (round = 1; round <= 4; round++) {
		pid_t pid = d.pid;

		before = unheld(w);
		peer_spawn(&b, d.socket, round % 2 ? 0 : NOBODY, (uint8_t)(0x80 + round));
		ck_assert_int_eq(peer_do(&b, 'a'), 0);
		ck_assert_uint_lt(unheld(w), before);
		kill(b.pid, SIGKILL);
		if (round % 2)
			attacker_reap(&b);
		kill(d.pid, SIGUSR2);
		if (!(round % 2))
			attacker_reap(&b);
		if (!wait_log(&d, "handover complete", round))
			test_daemon_dump_log(&d);
		ck_assert_int_eq(test_daemon_log_count(&d, "handover complete"), round);
		ck_assert(test_daemon_alive(&d));
		ck_assert_int_eq(d.pid, pid);
		ck_assert_msg(wait_unheld(w, before) == before,
			      "round %d: free %" PRIu64 ", %" PRIu64 " before", round, unheld(w),
			      before);
		ck_assert_uint_eq(pool_adds_up(w).quarantined, 0);
		ck_assert_int_eq(peer_do(&a, 'p'), 0);
	}
	ck_assert_int_eq(peer_do(&a, 'v'), 0);
	attacker_finish(&a);
	km_disconnect(w);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	ck_assert_int_eq(test_daemon_log_count(&d, "does not add up"), 0);
	ck_assert_int_eq(test_daemon_log_count(&d, "handover failed"), 0);
	ck_assert_int_eq(test_daemon_log_count(&d, "does not hold"), 0);
	test_daemon_cleanup(&d);
}
END_TEST

/* Under systemd: the listening socket comes from socket activation
 * (LISTEN_FDS) and readiness goes to NOTIFY_SOCKET. systemd-socket-activate
 * plays systemd's part. */
START_TEST(test_socket_activation_and_sd_notify)
{
	const char *exe = getenv("KMALLOCD");
	char dir[] = "/tmp/kmact.XXXXXX", sock[96], notify[96], env[128], buf[512];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	bool ready = false;
	km_client *c;
	int nfd, status, i;
	pid_t pid;
	void *p;

	if (access("/usr/bin/systemd-socket-activate", X_OK) != 0)
		return; /* no systemd tools: nothing to play systemd's part */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(notify, sizeof(notify), "%s/notify", dir);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", notify);
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", notify);
	ck_assert_int_eq(bind(nfd, (struct sockaddr *)&addr, sizeof(addr)), 0);

	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, STDERR_FILENO);
		execl("/usr/bin/systemd-socket-activate", "systemd-socket-activate", "--seqpacket",
		      "-l", sock, "-E", env, exe, "--pool-size", "16M", "--backing", "shmem",
		      "--socket", "/nonexistent/never-bound.sock", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	/* The first connection starts the daemon on the passed socket. The
	 * file appears at bind(), a moment before listen(): until then a
	 * connection is refused. */
	for (i = 0; i < 500; i++) {
		c = km_connect(sock);
		if (c || errno != ECONNREFUSED)
			break;
		usleep(10000);
	}
	ck_assert_msg(c != NULL, "km_connect through socket activation: %s", strerror(errno));
	p = km_kmalloc(c, 1000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	km_kfree(c, p);
	for (i = 0; i < 50 && !ready; i++) {
		ssize_t n = recv(nfd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (n > 0) {
			buf[n] = '\0';
			ready = strstr(buf, "READY=1") != NULL;
		} else {
			usleep(20000);
		}
	}
	ck_assert_msg(ready, "no READY=1 on NOTIFY_SOCKET");
	km_disconnect(c);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	/* The socket is systemd's: the daemon leaves it in place. */
	ck_assert_int_eq(access(sock, F_OK), 0);
	close(nfd);
	unlink(sock);
	unlink(notify);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");
	int failed;

	test_backing_prepare(2 * POOL_SIZE);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sigkill_gives_everything_back);
	tcase_add_test(tc, test_disconnect_gives_everything_back);
	tcase_add_test(tc, test_chaos_of_killed_clients);
	tcase_add_test(tc, test_sigterm_with_clients_attached);
	tcase_add_test(tc, test_socket_ownership);
	tcase_add_test(tc, test_stale_socket_replaced);
	tcase_add_test(tc, test_backing_is_reported);
	tcase_add_test(tc, test_require_hugepages_without_enough);
	tcase_add_test(tc, test_bad_command_lines);
	tcase_add_test(tc, test_socket_activation_and_sd_notify);
	tcase_add_test(tc, test_out_of_descriptors);
	tcase_add_test(tc, test_handover_keeps_everything);
	tcase_add_test(tc, test_handover_refuses_bad_state);
	tcase_add_test(tc, test_restart_through_fd_store);
	tcase_add_test(tc, test_reload_says_reloading_then_ready);
	suite_add_tcase(s, tc);
	/* Clients that die or are lost while the daemon is replaced. */
	tc = tcase_create("restart-losses");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_restart_client_dies_in_gap, 0, 2);
	tcase_add_test(tc, test_restart_loses_a_domain);
	tcase_add_test(tc, test_handover_client_dies_during_reload);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
