// SPDX-License-Identifier: MIT
/*
 * test-client.c - libkmclient against a scripted fake daemon: replies that
 * come back out of order reach the thread that asked, a daemon that hangs up
 * fails every waiting call with ECONNRESET, a miss in a slab class fetches a
 * batch in one round trip, freed objects stay on the client's lists until
 * km_get_meminfo() drains them, and small kfrees ride on the next request
 * when the lists are off. The fake counts what it is sent.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kmalloc.pb-c.h"
#include "kmclient.h"
#include "sizes.h"
#include "testutil.h"
#include "wire.h"

#define FAKE_POOL	(8u << 20)

/* Shared with the fake (MAP_SHARED | MAP_ANONYMOUS): its script and counters. */
struct fake {
	int reverse;		/* hold this many Alloc requests, answer in reverse */
	int hang_up_after;	/* close after this many requests (0: never) */
	int enomem_until_free;	/* refuse allocations after the first until a Free */
	int alloc_requests;
	int alloc_objects;
	int free_requests;
	int freed_ids;
	int release_ids;
	int nops;
};

static struct fake *fake;
static pid_t fake_pid;
static char fake_path[108];

static void reply_send(int fd, Kmalloc__Reply *r, int pass_fd)
{
	uint8_t buf[8192];
	size_t len = kmalloc__reply__get_packed_size(r);

	if (len > sizeof(buf) || kmwire_send(fd, buf, (kmalloc__reply__pack(r, buf), len),
					     pass_fd >= 0 ? &pass_fd : NULL, pass_fd >= 0, 0) < 0)
		_exit(3);
}

static void fake_answer_alloc(int fd, Kmalloc__Request *req, uint64_t *next_id,
			      uint64_t *next_phys)
{
	Kmalloc__Reply r = KMALLOC__REPLY__INIT;
	Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
	Kmalloc__Grant g[64], *gp[64];
	uint32_t n = req->alloc->count ? req->alloc->count : 1, i;
	uint64_t size = req->alloc->size;
	uint64_t ksize = kms_size_roundup(size);

	if (n > 64)
		_exit(4);
	for (i = 0; i < n; i++) {
		kmalloc__grant__init(&g[i]);
		g[i].id = (*next_id)++;
		g[i].phys = *next_phys % FAKE_POOL;
		g[i].size = ksize;
		*next_phys += ksize < 8192 ? 8192 : ksize;
		gp[i] = &g[i];
	}
	fake->alloc_requests++;
	fake->alloc_objects += (int)n;
	body.n_grants = n;
	body.grants = gp;
	r.id = req->id;
	r.body_case = KMALLOC__REPLY__BODY_ALLOC;
	r.alloc = &body;
	reply_send(fd, &r, -1);
}

static void fake_serve(int fd)
{
	static uint8_t buf[65536];
	Kmalloc__Request *held[16];
	uint64_t next_id = 1, next_phys = 0;
	int nheld = 0, requests = 0;

	for (;;) {
		Kmalloc__Reply r = KMALLOC__REPLY__INIT;
		Kmalloc__Request *req;
		ssize_t n = kmwire_recv(fd, buf, sizeof(buf), NULL, 0, NULL, 0);

		if (n <= 0)
			return;
		req = kmalloc__request__unpack(NULL, (size_t)n, buf);
		if (!req)
			_exit(5);
		if (fake->hang_up_after && ++requests > fake->hang_up_after)
			return;
		fake->release_ids += (int)req->n_release;
		r.id = req->id;
		switch (req->body_case) {
		case KMALLOC__REQUEST__BODY_HELLO: {
			Kmalloc__Welcome w = KMALLOC__WELCOME__INIT;
			uint8_t token[16] = { 1 };
			int memfd = memfd_create("fake-pool", MFD_CLOEXEC);

			if (memfd < 0 || ftruncate(memfd, FAKE_POOL) < 0)
				_exit(6);
			w.version = 1;
			w.pool_size = FAKE_POOL;
			w.frame_size = 2u << 20;
			w.page_size = 4096;
			w.domain = 1;
			w.max_packet = 65536;
			w.max_order = 10;
			w.token.data = token;
			w.token.len = sizeof(token);
			r.body_case = KMALLOC__REPLY__BODY_WELCOME;
			r.welcome = &w;
			reply_send(fd, &r, memfd);
			close(memfd);
			break;
		}
		case KMALLOC__REQUEST__BODY_ALLOC:
			if (fake->enomem_until_free && fake->alloc_requests && !fake->free_requests) {
				fake->alloc_requests++;
				r.error = ENOMEM;
				r.message = "fake: pool exhausted";
				reply_send(fd, &r, -1);
				break;
			}
			if (fake->reverse) {
				held[nheld++] = req;
				if (nheld < fake->reverse)
					continue;
				while (nheld--) {
					fake_answer_alloc(fd, held[nheld], &next_id, &next_phys);
					kmalloc__request__free_unpacked(held[nheld], NULL);
				}
				nheld = 0;
				continue;
			}
			fake_answer_alloc(fd, req, &next_id, &next_phys);
			break;
		case KMALLOC__REQUEST__BODY_FREE: {
			Kmalloc__FreeReply f = KMALLOC__FREE_REPLY__INIT;

			fake->free_requests++;
			fake->freed_ids += (int)req->free->n_grants;
			f.freed = (uint32_t)req->free->n_grants;
			r.body_case = KMALLOC__REPLY__BODY_FREE;
			r.free = &f;
			reply_send(fd, &r, -1);
			break;
		}
		case KMALLOC__REQUEST__BODY_MEMINFO: {
			Kmalloc__Meminfo m = KMALLOC__MEMINFO__INIT;

			m.total = FAKE_POOL;
			m.frame_size = 2u << 20;
			r.body_case = KMALLOC__REPLY__BODY_MEMINFO;
			r.meminfo = &m;
			reply_send(fd, &r, -1);
			break;
		}
		default:
			fake->nops++;
			reply_send(fd, &r, -1);
			break;
		}
		kmalloc__request__free_unpacked(req, NULL);
	}
}

/* Starts the fake daemon for one test (check forks each test). */
static void fake_start(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int lfd;

	fake = mmap(NULL, sizeof(*fake), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		    0);
	ck_assert_ptr_ne(fake, MAP_FAILED);
	memset(fake, 0, sizeof(*fake));
	snprintf(fake_path, sizeof(fake_path), "/tmp/kmfake.%d.sock", (int)getpid());
	unlink(fake_path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", fake_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	fake_pid = fork();
	if (fake_pid == 0) {
		for (;;) {
			int fd = accept(lfd, NULL, NULL);

			if (fd < 0)
				_exit(0);
			fake_serve(fd);
			close(fd);
		}
	}
	close(lfd);
}

static void fake_stop(void)
{
	kill(fake_pid, SIGKILL);
	waitpid(fake_pid, NULL, 0);
	unlink(fake_path);
}

static km_client *connect_fake(bool lists)
{
	km_client *c;

	if (!lists)
		setenv("KMCLIENT_NO_CACHE", "1", 1);
	c = km_connect(fake_path);
	unsetenv("KMCLIENT_NO_CACHE");
	ck_assert_msg(c != NULL, "km_connect to the fake: %s", strerror(errno));
	return c;
}

struct asker {
	km_client *c;
	size_t size;
	size_t got_ksize;
	int err;
};

static void *ask(void *arg)
{
	struct asker *a = arg;
	void *p = km_kmalloc(a->c, a->size, KM_GFP_KERNEL);

	a->err = p ? 0 : errno;
	a->got_ksize = p ? km_ksize(a->c, p) : 0;
	return NULL;
}

START_TEST(test_out_of_order_replies)
{
	static const size_t sizes[4] = { 100, 1000, 3000, 100000 };
	struct asker a[4];
	pthread_t th[4];
	km_client *c;
	int i;

	fake_start();
	fake->reverse = 4;
	c = connect_fake(false);
	for (i = 0; i < 4; i++) {
		a[i] = (struct asker){ .c = c, .size = sizes[i] };
		ck_assert_int_eq(pthread_create(&th[i], NULL, ask, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].err, 0);
		/* Each thread got the grant sized for its own request. */
		ck_assert_uint_eq(a[i].got_ksize, kms_size_roundup(sizes[i]));
	}
	ck_assert_int_eq(fake->alloc_requests, 4);
	km_disconnect(c);
	fake_stop();
}
END_TEST

START_TEST(test_hang_up_fails_waiting_calls)
{
	struct asker a[3];
	pthread_t th[3];
	km_client *c;
	int i;

	fake_start();
	fake->reverse = 4;		/* never answers three requests... */
	fake->hang_up_after = 4;	/* ...and hangs up on the fourth */
	c = connect_fake(false);
	for (i = 0; i < 3; i++) {
		a[i] = (struct asker){ .c = c, .size = 64 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, ask, &a[i]), 0);
	}
	usleep(100000);
	errno = 0;
	ck_assert_ptr_null(km_kmalloc(c, 64, KM_GFP_KERNEL));
	ck_assert_int_eq(errno, ECONNRESET);
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].err, ECONNRESET);
	}
	/* Later calls fail the same way, at once. */
	errno = 0;
	ck_assert_ptr_null(km_vmalloc(c, 4096));
	ck_assert_int_eq(errno, ECONNRESET);
	km_disconnect(c);
	fake_stop();
}
END_TEST

START_TEST(test_batch_refill_and_lists)
{
	void *p[100];
	km_client *c;
	km_meminfo mi;
	int i;

	fake_start();
	c = connect_fake(true);
	for (i = 0; i < 100; i++) {
		p[i] = km_kmalloc(c, 64, KM_GFP_KERNEL);
		ck_assert_ptr_nonnull(p[i]);
	}
	/* Two round trips for a hundred objects: batches of 60. */
	ck_assert_int_eq(fake->alloc_requests, 2);
	ck_assert_int_eq(fake->alloc_objects, 120);
	for (i = 0; i < 100; i++)
		km_kfree(c, p[i]);
	/* Reused without asking the daemon. */
	for (i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(km_kmalloc(c, 60, KM_GFP_KERNEL));
	ck_assert_int_eq(fake->alloc_requests, 2);
	ck_assert_int_eq(fake->free_requests + fake->release_ids, 0);
	/* meminfo first gives back what the lists hold (the 20 unused). */
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_int_eq(fake->freed_ids + fake->release_ids, 20);
	km_disconnect(c);
	fake_stop();
}
END_TEST

START_TEST(test_deferred_release_without_lists)
{
	km_client *c;
	km_meminfo mi;
	int i;

	fake_start();
	c = connect_fake(false);
	for (i = 0; i < 10; i++) {
		void *p = km_kmalloc(c, 64, KM_GFP_KERNEL);

		ck_assert_ptr_nonnull(p);
		km_kfree(c, p);
	}
	/* One round trip per pair: each kfree rode on the next request. */
	ck_assert_int_eq(fake->alloc_requests, 10);
	ck_assert_int_eq(fake->free_requests, 0);
	ck_assert_int_eq(fake->release_ids, 9);
	ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_int_eq(fake->release_ids, 10);
	ck_assert_uint_eq(mi.total, FAKE_POOL);
	/* A large kfree is a round trip of its own, at once. */
	ck_assert_ptr_nonnull(km_kmalloc(c, 100000, KM_GFP_KERNEL));
	km_kfree(c, km_kmalloc(c, 100000, KM_GFP_KERNEL));
	ck_assert_int_eq(fake->free_requests, 1);
	km_disconnect(c);
	fake_stop();
}
END_TEST

/* A refused allocation first gives back what the client keeps, then retries. */
START_TEST(test_enomem_drains_lists)
{
	km_client *c;
	void *p;

	fake_start();
	fake->enomem_until_free = 1;
	c = connect_fake(true);
	p = km_kmalloc(c, 65536, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	km_kfree(c, p);				/* kept on the client's list */
	ck_assert_int_eq(fake->free_requests, 0);
	p = km_kmalloc(c, 100000, KM_GFP_KERNEL);	/* another order: a miss */
	ck_assert_msg(p != NULL, "no retry after the drain: %s", strerror(errno));
	ck_assert_int_eq(fake->alloc_requests, 3);	/* ok, refused, retried */
	ck_assert_int_eq(fake->free_requests, 1);
	ck_assert_int_eq(fake->freed_ids, 1);
	km_disconnect(c);
	fake_stop();
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("rpc");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_out_of_order_replies);
	tcase_add_test(tc, test_hang_up_fails_waiting_calls);
	tcase_add_test(tc, test_batch_refill_and_lists);
	tcase_add_test(tc, test_deferred_release_without_lists);
	tcase_add_test(tc, test_enomem_drains_lists);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return test_run_suite(client_suite()) ? EXIT_FAILURE : EXIT_SUCCESS;
}
