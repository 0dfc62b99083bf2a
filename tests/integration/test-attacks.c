// SPDX-License-Identifier: MIT
/*
 * test-attacks.c - the attacks of issue 5, each made by an unprivileged uid
 * (a forked child that becomes nobody, 65534) against a --paranoid kmallocd:
 * punching granted memory out of the domain memfd and taking the freed
 * hugepage back before a __GFP_ZERO request (the SIGBUS crash), sealing the
 * domain memfd against writes and keeping it after a disconnect (the pool
 * that counts frames it no longer has), passing a lingering TCP socket with
 * SCM_RIGHTS (the 40 s freeze), and taking the whole pool and its reserve
 * with __GFP_NOFAIL, __GFP_HIGH and GFP_ATOMIC. For each: the daemon lives,
 * root is served meanwhile (kmalloc, kzalloc, vmalloc, GFP_ATOMIC from the
 * reserve), and once the attacker is gone the pool's figures (free plus
 * reclaimable slabs, nothing quarantined) are back at their baseline. On a
 * hugetlb pool the host's spare hugepages are taken away for the attacks
 * that need it (vm.nr_hugepages lowered, restored at the end of the case,
 * and by the fixture if the case died first).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "attacker.h"
#include "daemon.h"
#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"
#include "wire.h"

#define POOL_SIZE	(64ull << 20) /* 32 frames */
#define SMALL_POOL_SIZE (32ull << 20) /* the second daemon's: 16 frames */
#define FRAME		(2ull << 20)
#define RESERVE		"6M" /* --reserve: a min watermark of 3 frames */
#define RESERVE_FRAMES	3u

#define GFP_NOFAIL_HIGH (KM_GFP_KERNEL | KM___GFP_NOFAIL | KM___GFP_HIGH) /* 0x8ce0 */

#define NR_HUGEPAGES  "/proc/sys/vm/nr_hugepages"
#define NR_OVERCOMMIT "/proc/sys/vm/nr_overcommit_hugepages"

static struct test_daemon daemon_under_test; /* the default 50 % uid share */
static struct test_daemon unlimited_daemon;  /* --uid-max-share 100 */

/* Problems found by fixtures, which run in the main process: they fail the
 * run from main(). */
static int fixture_errors;

/* ---- the attacker: a forked child running as nobody ---------------------- */

#define REPORT_MS 20000 /* for each report of the attacker */

/* In the attacker: waits for the test's next go. A test that closed the
 * pipe instead is done with us. */
static void attacker_next(struct attacker *self)
{
	if (attacker_wait(self) < 0)
		_exit(0);
}

/* ---- the pool's figures, as root sees them ------------------------------- */

static Kmalloc__Meminfo pool_figures(const struct test_daemon *d)
{
	int fd = raw_connect_hello(d->socket, NULL, NULL);
	Kmalloc__Meminfo f;

	ck_assert_msg(fd >= 0, "root cannot connect to kmallocd");
	ck_assert_int_eq(raw_get_meminfo(fd, 2, &f), 0);
	close(fd);
	return f;
}

/* What nobody holds: free memory plus the empty slabs the caches keep. */
static uint64_t unheld(const Kmalloc__Meminfo *f)
{
	return f->free + f->slab_reclaimable;
}

/* Waits (5 s at most: giving back is asynchronous) until nobody holds
 * anything more than @base allows and nothing is quarantined. */
static void wait_back(const struct test_daemon *d, uint64_t base)
{
	Kmalloc__Meminfo f;
	int i;

	for (i = 0; i < 500; i++) {
		f = pool_figures(d);
		if (unheld(&f) == base && f.quarantined == 0)
			break;
		usleep(10000);
	}
	ck_assert_msg(unheld(&f) == base,
		      "the pool did not come back: %" PRIu64 " bytes unheld, baseline %" PRIu64,
		      unheld(&f), base);
	ck_assert_msg(f.quarantined == 0, "%" PRIu64 " bytes still quarantined", f.quarantined);
}

/* The baseline of a case: the whole pool, nobody holding anything (the
 * previous case's clients may still be being torn down). */
static uint64_t baseline(const struct test_daemon *d)
{
	wait_back(d, d->pool_size);
	return d->pool_size;
}

/* Bytes taken by someone: the pool less what nobody holds. */
static uint64_t held(const struct test_daemon *d)
{
	Kmalloc__Meminfo f = pool_figures(d);

	return f.total - unheld(&f);
}

/* The daemon lives and root gets normal service: kmalloc (written to),
 * kzalloc (reads zero), vmalloc (written to at both ends of each frame). */
static void assert_root_served(const struct test_daemon *d)
{
	km_client *c;
	uint8_t *k, *z, *v;
	size_t i;

	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	c = km_connect(d->socket);
	ck_assert_msg(c != NULL, "root: km_connect: %s", strerror(errno));
	k = km_kmalloc(c, 64, KM_GFP_KERNEL);
	ck_assert_msg(k != NULL, "root: kmalloc: %s", strerror(errno));
	memset(k, 0xa5, 64);
	z = km_kzalloc(c, 16384, KM_GFP_KERNEL);
	ck_assert_msg(z != NULL, "root: kzalloc: %s", strerror(errno));
	for (i = 0; i < 16384; i++)
		ck_assert_msg(z[i] == 0, "root: kzalloc'd byte %zu is %#x", i, z[i]);
	v = km_vmalloc(c, 2 * FRAME);
	ck_assert_msg(v != NULL, "root: vmalloc: %s", strerror(errno));
	for (i = 0; i < 2; i++) {
		v[i * FRAME] = 1;
		v[(i + 1) * FRAME - 1] = 1;
	}
	km_vfree(c, v);
	km_kfree(c, z);
	km_kfree(c, k);
	km_disconnect(c);
}

/* Root's km_connect() + km_get_meminfo() in a process of its own, as a
 * client running in parallel does them. Returns the seconds taken, -1 when
 * it did not finish within 5 s, -2 when it failed. */
static double root_meminfo_seconds(const struct test_daemon *d)
{
	struct pollfd pfd;
	double secs = -1;
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct timespec t0, t1;
		km_client *c;
		km_meminfo mi;
		double s = -2;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		c = km_connect(d->socket);
		if (c && km_get_meminfo(c, &mi) == 0 && mi.total == d->pool_size) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			s = (double)(t1.tv_sec - t0.tv_sec) +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		}
		km_disconnect(c);
		_exit(write(p[1], &s, sizeof(s)) == sizeof(s) ? 0 : 1);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 5000) != 1 || read(p[0], &secs, sizeof(secs)) != sizeof(secs))
		secs = -1;
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return secs;
}

/* ---- the host's spare hugepages ------------------------------------------ */

/* What hugepages_take_spare() changed, shared with check's forked test
 * processes so that the fixture can restore it when a case died. */
struct hugepage_state {
	long orig;    /* vm.nr_hugepages before */
	bool lowered; /* and not restored yet */
};

static struct hugepage_state *hp;

/* A /proc/meminfo field ("HugePages_Free"), or -1. */
static long meminfo_field(const char *name)
{
	size_t n = strlen(name);
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	if (f)
		fclose(f);
	return v;
}

/* Hugepages a new fault could get right now: free and not reserved, plus
 * surplus pages overcommit would still allow. */
static long hugepages_spare(void)
{
	long spare = meminfo_field("HugePages_Free") - meminfo_field("HugePages_Rsvd");
	long over = test_read_long(NR_OVERCOMMIT) - meminfo_field("HugePages_Surp");

	return spare + (over > 0 ? over : 0);
}

/* On a hugetlb pool: leaves the host no spare hugepage (vm.nr_hugepages =
 * HugePages_Total - HugePages_Free: the pages in use, the pool's among
 * them). False, with a message, when it does not apply or cannot be done. */
static bool hugepages_take_spare(void)
{
	long nr, total, free_pages, now;

	if (strcmp(test_backing(), "hugetlb"))
		return false;
	if (meminfo_field("Hugepagesize") != 2048) {
		printf("the default hugepage size is not 2 MiB: the host keeps its spare pages\n");
		return false;
	}
	ck_assert_msg(!hp->lowered, "hugepages already taken away");
	nr = test_read_long(NR_HUGEPAGES);
	total = meminfo_field("HugePages_Total");
	free_pages = meminfo_field("HugePages_Free");
	if (nr < 0 || total < 0 || free_pages < 0 || total - free_pages > nr) {
		printf("cannot read the hugepage counts: the host keeps its spare pages\n");
		return false;
	}
	hp->orig = nr;
	hp->lowered = true;
	if (!test_write_long(NR_HUGEPAGES, total - free_pages)) {
		hp->lowered = false;
		printf("cannot write %s (%s): the host keeps its spare pages\n", NR_HUGEPAGES,
		       strerror(errno));
		return false;
	}
	now = test_read_long(NR_HUGEPAGES);
	printf("vm.nr_hugepages %ld -> %ld, %ld spare\n", hp->orig, now, hugepages_spare());
	return true;
}

/* Restores vm.nr_hugepages to what it was before hugepages_take_spare(),
 * or leaves it above if others have asked for more meanwhile (they took
 * their pages from those the case had taken away). True when done. */
static bool hugepages_give_back(void)
{
	long now;
	int tries;

	if (!hp->lowered)
		return true;
	now = test_read_long(NR_HUGEPAGES);
	/* The kernel may find the contiguous memory slowly: ask a few times. */
	for (tries = 0; tries < 5 && now < hp->orig; tries++) {
		test_write_long(NR_HUGEPAGES, hp->orig);
		now = test_read_long(NR_HUGEPAGES);
	}
	hp->lowered = now < hp->orig;
	printf("vm.nr_hugepages back to %ld (was %ld before the case)\n", now, hp->orig);
	return !hp->lowered;
}

/* Unchecked fixture (main process, after the cases of a TCase, even when
 * one died): what a case did not restore is restored here, and that it had
 * to be is an error. */
static void hugepages_fixture_teardown(void)
{
	if (!hp->lowered)
		return;
	fprintf(stderr, "a case did not restore vm.nr_hugepages (%ld): restoring it now\n",
		hp->orig);
	if (!hugepages_give_back())
		fprintf(stderr, "vm.nr_hugepages could not be restored to %ld\n", hp->orig);
	fixture_errors++;
}

/* ---- 1. SIGBUS: zeroing memory the client punched ------------------------ */

struct sigbus_report {
	int32_t kmalloc_err;	/* the 16 KiB kmalloc that brings frame F */
	int32_t punch_errno;	/* fallocate(PUNCH_HOLE) of F: 0 or errno */
	int32_t phantom_signal; /* what killed the phantom's writer, 0: it wrote */
	int32_t kzalloc_err;	/* the 16 KiB kzalloc after the punch */
	int32_t kzalloc_zero;	/* 1: its memory (when granted) reads zero */
	int32_t message_ok;	/* 1: an EFAULT reply says what happened */
	int32_t again_err;	/* a second kzalloc */
	int32_t again_zero;
	int64_t spare;	     /* host spare hugepages just before the kzalloc */
	int64_t memfd_bytes; /* the memfd's pages after the kzalloc */
	uint64_t frame, kzalloc_frame, again_frame, phantom_frame;
};

static bool range_is_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int attack_sigbus(struct attacker *self, void *arg)
{
	const struct test_daemon *d = self->d;
	struct sigbus_report rep;
	Kmalloc__Reply *welcome, *r;
	uint64_t size, nr_frames;
	struct stat st;
	uint8_t *map;
	int fd, memfd, status;
	pid_t pid;

	attacker_become_nobody();
	memset(&rep, 0, sizeof(rep));
	fd = raw_connect_hello(d->socket, &memfd, &welcome);
	ATTACKER_CHECK(fd >= 0);
	size = welcome->welcome->pool_size;
	nr_frames = size / FRAME;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
	ATTACKER_CHECK(map != MAP_FAILED);

	/* Order-2 pages of a fresh frame F. */
	r = raw_alloc(fd, 2, 16384, KM_GFP_KERNEL, 1);
	ATTACKER_CHECK(r != NULL);
	rep.kmalloc_err = r->error;
	ATTACKER_CHECK(r->error == 0 && r->alloc->n_grants == 1);
	rep.frame = r->alloc->grants[0]->phys / FRAME;
	kmalloc__reply__free_unpacked(r, NULL);

	/* Punch F out of the memfd: its hugepage goes back to the host... */
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(rep.frame * FRAME),
		      (off_t)FRAME) < 0)
		rep.punch_errno = errno;
	/* ...and a phantom far away takes it: written by a grandchild, which a
	 * SIGBUS (no hugepage to be had) kills instead of us. */
	rep.phantom_frame = (rep.frame + nr_frames / 2) % nr_frames;
	fflush(NULL);
	pid = fork();
	ATTACKER_CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		((volatile uint8_t *)map)[rep.phantom_frame * FRAME] = 1;
		_exit(0);
	}
	ATTACKER_CHECK(waitpid(pid, &status, 0) == pid);
	rep.phantom_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	rep.spare = hugepages_spare();

	/* Cleared memory from F: the daemon's memset meets the hole. */
	r = raw_alloc(fd, 3, 16384, KM_GFP_KERNEL | KM___GFP_ZERO, 1);
	ATTACKER_CHECK(r != NULL);
	rep.kzalloc_err = r->error;
	if (r->error == 0) {
		ATTACKER_CHECK(r->alloc->n_grants == 1);
		rep.kzalloc_frame = r->alloc->grants[0]->phys / FRAME;
		rep.kzalloc_zero = range_is_zero(map + r->alloc->grants[0]->phys, 16384);
	} else {
		rep.message_ok = r->message && strstr(r->message, "punched") != NULL;
	}
	kmalloc__reply__free_unpacked(r, NULL);
	ATTACKER_CHECK(fstat(memfd, &st) == 0);
	rep.memfd_bytes = (int64_t)st.st_blocks * 512;

	/* The domain works again. */
	r = raw_alloc(fd, 4, 16384, KM_GFP_KERNEL | KM___GFP_ZERO, 1);
	ATTACKER_CHECK(r != NULL);
	rep.again_err = r->error;
	if (r->error == 0) {
		ATTACKER_CHECK(r->alloc->n_grants == 1);
		rep.again_frame = r->alloc->grants[0]->phys / FRAME;
		rep.again_zero = range_is_zero(map + r->alloc->grants[0]->phys, 16384);
	}
	kmalloc__reply__free_unpacked(r, NULL);

	attacker_report(self, &rep, sizeof(rep));
	attacker_next(self); /* connected while root is served */
	kmalloc__reply__free_unpacked(welcome, NULL);
	munmap(map, size);
	close(memfd);
	close(fd);
	return 0;
}

/* A client punches its granted frame out of the domain memfd and takes the
 * hugepage back through a phantom, then asks for __GFP_ZERO memory: on a
 * hugetlb pool with no spare hugepage the daemon's memset would SIGBUS. It
 * must answer EFAULT (or serve, on shmem and where a page was to be had),
 * repair the domain, and live. */
START_TEST(test_sigbus_on_punched_memory)
{
	struct test_daemon *d = &daemon_under_test;
	const char *line = "was punched out of the domain memfd";
	struct sigbus_report rep;
	struct attacker a;
	bool hugetlb = !strcmp(test_backing(), "hugetlb"), starved;
	uint64_t base = baseline(d);
	int repairs;

	test_daemon_log_window();
	repairs = test_daemon_log_count(d, line);
	starved = hugepages_take_spare();
	if (hugetlb && !starved)
		printf("SKIP (part): no starved host, the EFAULT path may not be reached\n");
	if (starved)
		ck_assert_msg(hugepages_spare() == 0, "%ld spare hugepages left",
			      hugepages_spare());

	attacker_start(&a, d, attack_sigbus, NULL);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	printf("sigbus: frame %" PRIu64 ", phantom frame %" PRIu64 " (signal %d), %" PRId64
	       " spare hugepages, kzalloc error %d, again %d\n",
	       rep.frame, rep.phantom_frame, rep.phantom_signal, rep.spare, rep.kzalloc_err,
	       rep.again_err);

	/* Root, right after, while the attacker is still there. */
	ck_assert_msg(test_daemon_alive(d), "kmallocd died of the attack");
	assert_root_served(d);

	ck_assert_int_eq(rep.kmalloc_err, 0);
	ck_assert_msg(rep.punch_errno == 0, "punch: %s", strerror(rep.punch_errno));
	ck_assert_msg(rep.phantom_frame != rep.frame, "the phantom must lie outside F");
	if (!hugetlb) {
		/* shmem: refaulting a punched page always works. */
		ck_assert_int_eq(rep.phantom_signal, 0);
		ck_assert_int_eq(rep.kzalloc_err, 0);
	} else if (starved && rep.phantom_signal == 0 && rep.spare == 0) {
		/* Every hugepage taken, the phantom holding F's: the memset
		 * faults, and the guard must turn that into EFAULT. */
		ck_assert_msg(rep.kzalloc_err == EFAULT,
			      "kzalloc on a punched frame with no "
			      "hugepage to refault: error %d, want EFAULT",
			      rep.kzalloc_err);
	} else {
		ck_assert_msg(rep.kzalloc_err == 0 || rep.kzalloc_err == EFAULT,
			      "kzalloc: error %d", rep.kzalloc_err);
	}
	if (rep.kzalloc_err == EFAULT) {
		ck_assert_msg(rep.message_ok, "the EFAULT reply does not say what happened");
		ck_assert_msg(test_daemon_log_count(d, line) > repairs, "no \"%s\" line in the log",
			      line);
		/* Repaired: the phantom punched, F backed again. */
		ck_assert_msg(rep.memfd_bytes == (int64_t)FRAME,
			      "the memfd holds %" PRId64 " bytes after the repair, want F's %llu",
			      rep.memfd_bytes, FRAME);
	} else {
		/* Served from the punched frame (the attack did reach the
		 * memset), cleared. */
		ck_assert_uint_eq(rep.kzalloc_frame, rep.frame);
		ck_assert_msg(rep.kzalloc_zero, "kzalloc'd memory is not zero");
	}
	ck_assert_msg(rep.again_err == 0, "the domain is not repaired: next kzalloc error %d",
		      rep.again_err);
	ck_assert_uint_eq(rep.again_frame, rep.frame);
	ck_assert_msg(rep.again_zero, "kzalloc'd memory after the repair is not zero");

	attacker_go(&a, 'g');
	attacker_finish(&a);
	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	/* Taken apart with no spare hugepage: nothing lost, nothing quarantined. */
	wait_back(d, base);
	assert_root_served(d);
	if (starved)
		ck_assert_msg(hugepages_give_back(), "vm.nr_hugepages not restored");
	wait_back(d, base);
}
END_TEST

/* ---- 2. seals on the domain memfd, kept after a disconnect --------------- */

struct seal_report {
	int32_t seals;		   /* F_GET_SEALS */
	int32_t future_write;	   /* errno of F_ADD_SEALS F_SEAL_FUTURE_WRITE, 0: added */
	int32_t write;		   /* errno of F_ADD_SEALS F_SEAL_WRITE, 0: added */
	int32_t refused;	   /* the error that stopped its vmallocs */
	uint64_t frames;	   /* vmalloc'd frames */
	int32_t after_reload;	   /* its meminfo after the daemon's reload: Reply.error, -1 none */
	int32_t future_write_kept; /* F_SEAL_FUTURE_WRITE once disconnected */
	int64_t kept_bytes;	   /* pages left in the kept memfd once all was given back */
};

static int attack_seal(struct attacker *self, void *arg)
{
	const struct test_daemon *d = self->d;
	struct seal_report rep;
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Vmalloc vm = KMALLOC__VMALLOC__INIT;
	Kmalloc__Reply *r;
	struct stat st;
	int fd, memfd;

	attacker_become_nobody();
	memset(&rep, 0, sizeof(rep));
	fd = raw_connect_hello(d->socket, &memfd, NULL);
	ATTACKER_CHECK(fd >= 0);
	rep.seals = fcntl(memfd, F_GET_SEALS);
	rep.future_write = fcntl(memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 ? errno : 0;
	rep.write = fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE) < 0 ? errno : 0;

	/* Every frame its quota allows. */
	req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
	req.vmalloc = &vm;
	vm.size = FRAME;
	vm.gfp = KM_GFP_KERNEL;
	for (;;) {
		req.id = 10 + rep.frames;
		r = raw_call(fd, &req, NULL);
		ATTACKER_CHECK(r != NULL);
		rep.refused = r->error;
		kmalloc__reply__free_unpacked(r, NULL);
		if (rep.refused || ++rep.frames > 1000)
			break;
	}
	attacker_report(self, &rep, sizeof(rep));

	attacker_next(self); /* the daemon reloads meanwhile */
	r = raw_meminfo(fd, 2);
	rep.after_reload = r ? r->error : -1;
	if (r)
		kmalloc__reply__free_unpacked(r, NULL);
	attacker_report(self, &rep, sizeof(rep));

	attacker_next(self); /* the host's spare hugepages are gone now */
	close(fd);	     /* disconnected, the memfd kept */
	attacker_report(self, &rep, sizeof(rep));

	attacker_next(self); /* the daemon has given everything back */
	ATTACKER_CHECK(fstat(memfd, &st) == 0);
	rep.kept_bytes = (int64_t)st.st_blocks * 512;
	rep.future_write_kept = fcntl(memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 ? errno : 0;
	attacker_report(self, &rep, sizeof(rep));
	attacker_next(self);
	close(memfd);
	return 0;
}

/* A client that seals its domain memfd, vmallocs all it may, disconnects
 * and keeps the memfd must not keep the pool's memory: the seals are
 * refused, the frames come back (really: punched out of the kept memfd),
 * nothing is quarantined, root vmallocs the whole pool less the reserve,
 * and a reload in between goes through. */
START_TEST(test_sealed_memfd_kept_after_disconnect)
{
	struct test_daemon *d = &daemon_under_test;
	const int want_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW;
	struct seal_report rep;
	Kmalloc__Meminfo f;
	struct attacker a;
	uint64_t base = baseline(d), size, i;
	bool starved;
	km_client *c;
	uint8_t *v;
	int reloads, w;

	attacker_start(&a, d, attack_seal, NULL);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	ck_assert_msg((rep.seals & want_seals) == want_seals, "seals %#x lack %#x", rep.seals,
		      want_seals);
	ck_assert_msg(!(rep.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)), "seals %#x", rep.seals);
	ck_assert_msg(rep.future_write == EPERM, "F_SEAL_FUTURE_WRITE: %s (want EPERM)",
		      rep.future_write ? strerror(rep.future_write) : "added");
	ck_assert_msg(rep.write == EPERM, "F_SEAL_WRITE: %s (want EPERM)",
		      rep.write ? strerror(rep.write) : "added");
	/* Its vmallocs end at its quota (the pool has more), at most half
	 * the pool and less than a frame short of it. */
	ck_assert_msg(rep.refused == EDQUOT, "vmalloc stopped by error %d, want EDQUOT",
		      rep.refused);
	ck_assert_uint_le(rep.frames * FRAME, POOL_SIZE / 2);
	ck_assert_uint_gt(rep.frames * FRAME + FRAME, POOL_SIZE / 2);
	ck_assert_uint_eq(held(d), rep.frames * FRAME);
	assert_root_served(d);
	/* Root's client is taken apart before the reload starts. */
	wait_back(d, base - rep.frames * FRAME);

	/* A reload meets the attacker's memfd: it can use it. */
	reloads = test_daemon_log_count(d, "handover complete");
	kill(d->pid, SIGUSR2);
	for (w = 0; w < 1000 && test_daemon_log_count(d, "handover complete") == reloads; w++)
		usleep(10000);
	ck_assert_msg(w < 1000, "the reload did not complete");
	ck_assert_msg(test_daemon_alive(d), "kmallocd died in the reload");
	attacker_go(&a, 'g');
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	ck_assert_msg(rep.after_reload == 0, "the attacker's connection after the reload: %d",
		      rep.after_reload);
	ck_assert_uint_eq(held(d), rep.frames * FRAME);

	/* The disconnect, and root's vmalloc, with no spare hugepage: the pool
	 * must have every page it counts. */
	starved = hugepages_take_spare();
	attacker_go(&a, 'g');
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	wait_back(d, base);
	f = pool_figures(d);
	ck_assert_uint_eq(f.reserve, RESERVE_FRAMES * FRAME);
	size = f.available / FRAME * FRAME;
	ck_assert_uint_eq(size, POOL_SIZE - RESERVE_FRAMES * FRAME);
	c = km_connect(d->socket);
	ck_assert_msg(c != NULL, "root: km_connect: %s", strerror(errno));
	v = km_vmalloc(c, size);
	ck_assert_msg(v != NULL, "root: vmalloc of %" PRIu64 " bytes: %s", size, strerror(errno));
	for (i = 0; i < size; i += FRAME)
		v[i] = v[i + FRAME - 1] = 1;
	f = pool_figures(d);
	ck_assert_uint_eq(f.frames_free, RESERVE_FRAMES);
	km_vfree(c, v);
	km_disconnect(c);
	if (starved)
		ck_assert_msg(hugepages_give_back(), "vm.nr_hugepages not restored");

	attacker_go(&a, 'g');
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	ck_assert_msg(rep.kept_bytes == 0, "the kept memfd still holds %" PRId64 " bytes",
		      rep.kept_bytes);
	ck_assert_msg(rep.future_write_kept == EPERM, "F_SEAL_FUTURE_WRITE on the kept memfd: %s",
		      rep.future_write_kept ? strerror(rep.future_write_kept) : "added");
	attacker_go(&a, 'g');
	attacker_finish(&a);
	wait_back(d, base);
	assert_root_served(d);
}
END_TEST

/* ---- 3. a lingering TCP socket passed with SCM_RIGHTS -------------------- */

struct scm_report {
	int32_t send_err; /* kmwire_send(): 0 or -errno */
	int32_t hung_up;  /* 1: the daemon closed the connection that sent it */
	int32_t served;	  /* 1: the connection serves a request without fds */
	int32_t pad;
	int64_t queued; /* bytes the TCP socket holds unsent */
	uint64_t ino;	/* the TCP socket's inode */
};

static int attack_scm_rights(struct attacker *self, void *arg)
{
	const struct test_daemon *d = self->d;
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct linger linger = { 1, 40 }, abort_close = { 1, 0 };
	socklen_t len = sizeof(addr);
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	Kmalloc__Reply *r;
	struct scm_report rep;
	static char junk[65536];
	uint8_t buf[64];
	size_t n;
	struct stat st;
	int lfd, cfd, fd, small = 16384;
	ssize_t w;
	char byte;

	attacker_become_nobody();
	memset(&rep, 0, sizeof(rep));
	/* A listener that never accepts nor reads... */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ATTACKER_CHECK(lfd >= 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ATTACKER_CHECK(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
	ATTACKER_CHECK(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	ATTACKER_CHECK(listen(lfd, 1) == 0);
	ATTACKER_CHECK(getsockname(lfd, (struct sockaddr *)&addr, &len) == 0);
	/* ...and a socket to it, lingering 40 s on close, its buffers full. */
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ATTACKER_CHECK(cfd >= 0);
	ATTACKER_CHECK(setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
	ATTACKER_CHECK(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	ATTACKER_CHECK(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)) == 0);
	ATTACKER_CHECK(fcntl(cfd, F_SETFL, O_NONBLOCK) == 0);
	while ((w = send(cfd, junk, sizeof(junk), MSG_NOSIGNAL)) > 0 && rep.queued < (256 << 20))
		rep.queued += w;
	ATTACKER_CHECK(w < 0 && errno == EAGAIN);
	ATTACKER_CHECK(fstat(cfd, &st) == 0);
	rep.ino = st.st_ino;

	fd = raw_connect_hello(d->socket, NULL, NULL);
	ATTACKER_CHECK(fd >= 0);
	req.id = 2;
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	n = kmalloc__request__get_packed_size(&req);
	ATTACKER_CHECK(n <= sizeof(buf));
	kmalloc__request__pack(&req, buf);
	rep.send_err = kmwire_send(fd, buf, n, &cfd, 1, 0);
	if (rep.send_err == 0) {
		/* The daemon now holds the last reference: the attack. */
		close(cfd);
		cfd = -1;
		r = raw_recv(fd, NULL, 5000);
		rep.hung_up = !r && recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
		if (r)
			kmalloc__reply__free_unpacked(r, NULL);
	} else {
		ATTACKER_CHECK(kmwire_send(fd, buf, n, NULL, 0, 0) == 0);
		r = raw_recv(fd, NULL, 5000);
		rep.served = r && r->id == 2 && r->error == 0;
		if (r)
			kmalloc__reply__free_unpacked(r, NULL);
	}
	attacker_report(self, &rep, sizeof(rep));

	attacker_next(self);
	/* Closing the listener resets the connection it never accepted, which
	 * ends a lingering close wherever it waits; ours does not linger. */
	close(lfd);
	if (cfd >= 0) {
		setsockopt(cfd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
		close(cfd);
	}
	close(fd);
	return 0;
}

/* Whether process @pid has socket inode @ino open. */
static bool process_holds_socket(pid_t pid, uint64_t ino)
{
	char dir[64], path[320], link[128], want[64];
	struct dirent *de;
	bool found = false;
	ssize_t n;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%" PRIu64 "]", ino);
	dp = opendir(dir);
	ck_assert_ptr_nonnull(dp);
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, want))
			found = true;
	}
	closedir(dp);
	return found;
}

/* A socket that would linger 40 s in close(), passed to the daemon with
 * SCM_RIGHTS: refused by the kernel (SO_PASSRIGHTS), or closed off the
 * event loop and its sender hung up on. Root's connect + meminfo, in
 * parallel, takes well under 2 s. */
START_TEST(test_lingering_socket_passed_to_the_daemon)
{
	struct test_daemon *d = &daemon_under_test;
	uint64_t base = baseline(d);
	struct scm_report rep;
	struct attacker a;
	double secs;
	int i;

	attacker_start(&a, d, attack_scm_rights, NULL);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	printf("scm_rights: send %d, %" PRId64 " bytes queued\n", rep.send_err, rep.queued);
	ck_assert_msg(rep.send_err == 0 || rep.send_err == -EPERM, "sendmsg: %s",
		      strerror(-rep.send_err));
	ck_assert_int_gt(rep.queued, 0);
	if (rep.send_err == -EPERM) {
		ck_assert_msg(rep.served, "the connection does not serve after the refused send");
		ck_assert(!process_holds_socket(d->pid, rep.ino));
	} else {
		ck_assert_msg(rep.hung_up, "the daemon kept the connection that sent an fd");
		ck_assert_int_ge(test_daemon_log_count(d, "sent 1 file descriptor(s)"), 1);
	}
	/* While it lingers (the attack froze the daemon 40 s). */
	for (i = 0; i < 3; i++) {
		secs = root_meminfo_seconds(d);
		ck_assert_msg(secs >= 0 && secs < 2.0, "root's connect + meminfo: %s %.3f s",
			      secs == -2 ? "failed after" : "took", secs);
		usleep(200000);
	}
	assert_root_served(d);

	attacker_go(&a, 'g');
	attacker_finish(&a);
	for (i = 0; i < 200 && process_holds_socket(d->pid, rep.ino); i++)
		usleep(10000);
	ck_assert_msg(!process_holds_socket(d->pid, rep.ino), "the daemon keeps the socket");
	secs = root_meminfo_seconds(d);
	ck_assert_msg(secs >= 0 && secs < 2.0, "root's connect + meminfo: %.3f s", secs);
	assert_root_served(d);
	wait_back(d, base);
}
END_TEST

/* ---- 4. and 5. the pool and its reserve ---------------------------------- */

struct hog_args {
	const struct test_daemon *d;
	bool mixed; /* __GFP_NOFAIL|__GFP_HIGH and GFP_ATOMIC, else GFP_KERNEL */
};

struct hog_report {
	int32_t refused;     /* the error that stopped its 2 MiB kmallocs */
	int32_t vmalloc_err; /* then: a one-frame vmalloc, __GFP_NOFAIL|__GFP_HIGH */
	int32_t atomic_err;  /* a GFP_ATOMIC 2 MiB kmalloc */
	int32_t small_err;   /* a GFP_ATOMIC 64-byte kmalloc, 0 when it fits the quota */
	uint64_t bytes;	     /* what it holds */
};

static int attack_hog(struct attacker *self, void *arg)
{
	const struct hog_args *h = arg;
	struct hog_report rep;
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Vmalloc vm = KMALLOC__VMALLOC__INIT;
	Kmalloc__Reply *r;
	uint32_t gfp;
	uint64_t id = 10;
	int fd;

	attacker_become_nobody();
	memset(&rep, 0, sizeof(rep));
	fd = raw_connect_hello(h->d->socket, NULL, NULL);
	ATTACKER_CHECK(fd >= 0);
	for (;;) {
		gfp = !h->mixed ? KM_GFP_KERNEL : (id % 2 ? KM_GFP_ATOMIC : GFP_NOFAIL_HIGH);
		r = raw_alloc(fd, id++, FRAME, gfp, 1);
		ATTACKER_CHECK(r != NULL);
		rep.refused = r->error;
		if (!r->error)
			rep.bytes += r->alloc->grants[0]->size;
		kmalloc__reply__free_unpacked(r, NULL);
		if (rep.refused || id > 1000)
			break;
	}
	req.id = id++;
	req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
	req.vmalloc = &vm;
	vm.size = FRAME;
	vm.gfp = GFP_NOFAIL_HIGH;
	r = raw_call(fd, &req, NULL);
	ATTACKER_CHECK(r != NULL);
	rep.vmalloc_err = r->error;
	if (!r->error)
		rep.bytes += r->vmalloc->size;
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, id++, FRAME, KM_GFP_ATOMIC, 1);
	ATTACKER_CHECK(r != NULL);
	rep.atomic_err = r->error;
	if (!r->error)
		rep.bytes += r->alloc->grants[0]->size;
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, id++, 64, KM_GFP_ATOMIC, 1);
	ATTACKER_CHECK(r != NULL);
	rep.small_err = r->error;
	kmalloc__reply__free_unpacked(r, NULL);
	attacker_report(self, &rep, sizeof(rep));
	attacker_next(self); /* holding it while root allocates */
	close(fd);
	return 0;
}

/* Root's service while the attacker holds all it could: GFP_KERNEL 2 MiB,
 * GFP_ATOMIC 64 B and 4 KiB, a vmalloc of three frames, all written to. */
static void assert_root_served_beside_hog(const struct test_daemon *d)
{
	km_client *c = km_connect(d->socket);
	uint8_t *big, *a64, *a4k, *v;

	ck_assert_msg(c != NULL, "root: km_connect: %s", strerror(errno));
	big = km_kmalloc(c, FRAME, KM_GFP_KERNEL);
	ck_assert_msg(big != NULL, "root: GFP_KERNEL 2 MiB: %s", strerror(errno));
	a64 = km_kmalloc(c, 64, KM_GFP_ATOMIC);
	ck_assert_msg(a64 != NULL, "root: GFP_ATOMIC 64 B: %s", strerror(errno));
	a4k = km_kmalloc(c, 4096, KM_GFP_ATOMIC);
	ck_assert_msg(a4k != NULL, "root: GFP_ATOMIC 4 KiB: %s", strerror(errno));
	v = km_vmalloc(c, 3 * FRAME);
	ck_assert_msg(v != NULL, "root: vmalloc of 3 frames: %s", strerror(errno));
	memset(big, 1, FRAME);
	memset(a64, 2, 64);
	memset(a4k, 3, 4096);
	memset(v, 4, 3 * FRAME);
	km_vfree(c, v);
	km_kfree(c, a4k);
	km_kfree(c, a64);
	km_kfree(c, big);
	km_disconnect(c);
}

/* nobody asks for 2 MiB blocks with __GFP_NOFAIL|__GFP_HIGH and GFP_ATOMIC
 * until refused: it gets its quota (half the pool) and EDQUOT, not the
 * reserve; root meanwhile gets GFP_KERNEL, GFP_ATOMIC and vmalloc memory. */
START_TEST(test_nofail_and_atomic_stop_at_the_quota)
{
	struct test_daemon *d = &daemon_under_test;
	struct hog_args args = { d, true };
	uint64_t base = baseline(d);
	struct hog_report rep;
	struct attacker a;
	int refusals;

	test_daemon_log_window();
	refusals = test_daemon_log_count(d, "refused: uid holds");
	attacker_start(&a, d, attack_hog, &args);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	printf("quota: nobody holds %" PRIu64 " bytes of %llu\n", rep.bytes, POOL_SIZE);
	/* Stopped by its quota: the pool had room for more. */
	ck_assert_msg(rep.refused == EDQUOT, "2 MiB kmallocs stopped by %d, want EDQUOT",
		      rep.refused);
	ck_assert_msg(rep.vmalloc_err == EDQUOT, "vmalloc: %d, want EDQUOT", rep.vmalloc_err);
	ck_assert_msg(rep.atomic_err == EDQUOT, "GFP_ATOMIC 2 MiB: %d, want EDQUOT",
		      rep.atomic_err);
	ck_assert_uint_le(rep.bytes, POOL_SIZE / 2);
	ck_assert_uint_gt(rep.bytes + FRAME, POOL_SIZE / 2);
	ck_assert_uint_eq(held(d), rep.bytes + (rep.small_err ? 0 : 4096));
	ck_assert_msg(test_daemon_log_count(d, "refused: uid holds") > refusals,
		      "no refusal in the log");

	assert_root_served_beside_hog(d);
	assert_root_served(d);
	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	attacker_go(&a, 'g');
	attacker_finish(&a);
	wait_back(d, base);
}
END_TEST

/* nobody fills its quota (EDQUOT at the end); root then takes what is left
 * down to the min watermark: more than 40 % of the pool. */
START_TEST(test_root_allocates_while_nobody_holds_its_quota)
{
	struct test_daemon *d = &daemon_under_test;
	struct hog_args args = { d, false };
	uint64_t base = baseline(d), root_bytes = 0, id = 10;
	struct hog_report rep;
	struct attacker a;
	Kmalloc__Meminfo f;
	Kmalloc__Reply *r;
	int fd, err;

	attacker_start(&a, d, attack_hog, &args);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	ck_assert_msg(rep.refused == EDQUOT, "nobody stopped by %d, want EDQUOT", rep.refused);
	ck_assert_uint_le(rep.bytes, POOL_SIZE / 2);
	ck_assert_uint_gt(rep.bytes + FRAME, POOL_SIZE / 2);

	fd = raw_connect_hello(d->socket, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	for (;;) {
		r = raw_alloc(fd, id++, FRAME, KM_GFP_KERNEL | KM___GFP_NOWARN, 1);
		ck_assert_ptr_nonnull(r);
		err = r->error;
		if (!err)
			root_bytes += r->alloc->grants[0]->size;
		kmalloc__reply__free_unpacked(r, NULL);
		if (err || id > 1000)
			break;
	}
	printf("root took %" PRIu64 " bytes beside nobody's %" PRIu64 "\n", root_bytes, rep.bytes);
	ck_assert_msg(err == ENOMEM, "root stopped by %d, want ENOMEM", err);
	ck_assert_msg(root_bytes * 100 > POOL_SIZE * 40, "root got %" PRIu64 " bytes only",
		      root_bytes);
	/* Everything but the reserve is taken, by the two of them. */
	f = pool_figures(d);
	ck_assert_uint_eq(f.frames_free, RESERVE_FRAMES);
	ck_assert_uint_eq(root_bytes + rep.bytes + (rep.small_err ? 0 : 4096) + f.free, POOL_SIZE);
	close(fd);
	attacker_go(&a, 'g');
	attacker_finish(&a);
	wait_back(d, base);
	assert_root_served(d);
}
END_TEST

/* With --uid-max-share 100 only the watermark stops nobody: ENOMEM with the
 * emergency reserve untouched, whatever its flags; root's GFP_KERNEL does
 * not get the reserve either, its GFP_ATOMIC does. */
START_TEST(test_watermark_stops_an_unlimited_uid)
{
	struct test_daemon *d = &unlimited_daemon;
	struct hog_args args = { d, true };
	struct hog_report rep;
	struct attacker a;
	Kmalloc__Meminfo f;
	Kmalloc__Reply *r;
	km_client *c;
	uint8_t *a64, *a4k;
	uint64_t base;
	int fd;

	if (d->pid <= 0) {
		printf("SKIP: the second daemon could not be started\n");
		return;
	}
	base = baseline(d);
	attacker_start(&a, d, attack_hog, &args);
	attacker_read(&a, &rep, sizeof(rep), REPORT_MS);
	f = pool_figures(d);
	printf("watermark: nobody holds %" PRIu64 " bytes of %llu, %" PRIu64 " frames free\n",
	       rep.bytes, SMALL_POOL_SIZE, f.frames_free);
	ck_assert_msg(rep.refused == ENOMEM, "stopped by %d, want ENOMEM", rep.refused);
	ck_assert_msg(rep.vmalloc_err == ENOMEM, "vmalloc: %d, want ENOMEM", rep.vmalloc_err);
	ck_assert_msg(rep.atomic_err == ENOMEM, "GFP_ATOMIC: %d, want ENOMEM", rep.atomic_err);
	ck_assert_msg(rep.small_err == ENOMEM, "GFP_ATOMIC 64 B: %d, want ENOMEM", rep.small_err);
	/* Stopped at the min watermark, not before, not past it. */
	ck_assert_uint_eq(f.reserve, RESERVE_FRAMES * FRAME);
	ck_assert_uint_eq(f.frames_free * f.frame_size, f.reserve);
	ck_assert_uint_eq(rep.bytes + f.reserve, SMALL_POOL_SIZE);
	ck_assert_uint_eq(f.quarantined, 0);

	/* Root: GFP_KERNEL may not take the reserve... */
	fd = raw_connect_hello(d->socket, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	r = raw_alloc(fd, 2, FRAME, KM_GFP_KERNEL | KM___GFP_NOWARN, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->error == ENOMEM, "root's GFP_KERNEL 2 MiB at the watermark: %d", r->error);
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);
	/* ...GFP_ATOMIC does. */
	c = km_connect(d->socket);
	ck_assert_msg(c != NULL, "root: km_connect: %s", strerror(errno));
	a64 = km_kmalloc(c, 64, KM_GFP_ATOMIC);
	ck_assert_msg(a64 != NULL, "root: GFP_ATOMIC 64 B: %s", strerror(errno));
	a4k = km_kmalloc(c, 4096, KM_GFP_ATOMIC);
	ck_assert_msg(a4k != NULL, "root: GFP_ATOMIC 4 KiB: %s", strerror(errno));
	memset(a64, 1, 64);
	memset(a4k, 2, 4096);
	f = pool_figures(d);
	ck_assert_uint_lt(f.frames_free, RESERVE_FRAMES);
	km_kfree(c, a4k);
	km_kfree(c, a64);
	km_disconnect(c);

	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	attacker_go(&a, 'g');
	attacker_finish(&a);
	wait_back(d, base);
	assert_root_served(d);
}
END_TEST

/* Unchecked fixture: the second daemon, for the cases of its TCase. */
static void unlimited_daemon_start(void)
{
	static const char *const extra[] = { "--paranoid",	"--reserve", RESERVE,
					     "--uid-max-share", "100",	     NULL };

	/* Reserved first: test_daemon_start() would exit the whole program. */
	if (!strcmp(test_backing(), "hugetlb") &&
	    !test_hugepages_reserve((long)(SMALL_POOL_SIZE / FRAME))) {
		printf("cannot reserve hugepages for a second daemon\n");
		return;
	}
	test_daemon_start(&unlimited_daemon, SMALL_POOL_SIZE, extra);
	setenv("KMALLOC_SOCKET", daemon_under_test.socket, 1);
}

static void unlimited_daemon_stop(void)
{
	if (unlimited_daemon.pid <= 0)
		return;
	if (test_daemon_stop(&unlimited_daemon) != 0) {
		fprintf(stderr, "the second kmallocd did not exit cleanly\n");
		fixture_errors++;
	}
	test_daemon_cleanup(&unlimited_daemon);
}

int main(void)
{
	static const char *const extra[] = { "--paranoid", "--reserve", RESERVE,
					     /* no reconcile racing the phantom of case 1 */
					     "--reconcile-interval", "0", NULL };
	Suite *s = suite_create("attacks");
	TCase *sigbus = tcase_create("sigbus");
	TCase *seal = tcase_create("seal");
	TCase *scm = tcase_create("scm_rights");
	TCase *quota = tcase_create("quota");
	TCase *watermark = tcase_create("watermark");
	int ret;

	hp = mmap(NULL, sizeof(*hp), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (hp == MAP_FAILED) {
		perror("mmap");
		return EXIT_FAILURE;
	}
	memset(hp, 0, sizeof(*hp));
	if (geteuid() != 0) {
		printf("SKIP: the attacks need root to become nobody\n");
		return 77;
	}

	tcase_set_timeout(sigbus, 40);
	tcase_add_unchecked_fixture(sigbus, NULL, hugepages_fixture_teardown);
	tcase_add_test(sigbus, test_sigbus_on_punched_memory);
	suite_add_tcase(s, sigbus);

	tcase_set_timeout(seal, 40);
	tcase_add_unchecked_fixture(seal, NULL, hugepages_fixture_teardown);
	tcase_add_test(seal, test_sealed_memfd_kept_after_disconnect);
	suite_add_tcase(s, seal);

	tcase_set_timeout(scm, 40);
	tcase_add_test(scm, test_lingering_socket_passed_to_the_daemon);
	suite_add_tcase(s, scm);

	tcase_set_timeout(quota, 40);
	tcase_add_test(quota, test_nofail_and_atomic_stop_at_the_quota);
	tcase_add_test(quota, test_root_allocates_while_nobody_holds_its_quota);
	suite_add_tcase(s, quota);

	tcase_set_timeout(watermark, 40);
	tcase_add_unchecked_fixture(watermark, unlimited_daemon_start, unlimited_daemon_stop);
	tcase_add_test(watermark, test_watermark_stops_an_unlimited_uid);
	suite_add_tcase(s, watermark);

	ret = test_daemon_main(&daemon_under_test, s, POOL_SIZE, extra);
	if (fixture_errors) {
		fprintf(stderr, "%d fixture error(s)\n", fixture_errors);
		ret = EXIT_FAILURE;
	}
	return ret;
}
