// SPDX-License-Identifier: MIT
/*
 * test-hostile.c - a real kmallocd (with --paranoid checking its structures
 * after every request) fed what no well-behaved client sends: garbage,
 * oversized packets, requests before Hello, unknown requests, wrong and
 * double frees, other clients' grant ids, huge counts, a client that never
 * reads. Each case checks the error reply, that the daemon still serves
 * others, and that nothing leaked (free memory back to where it was).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "daemon.h"
#include "kmclient.h"
#include "rawclient.h"
#include "wire.h"
#include "testutil.h"

#define POOL_SIZE (32ull << 20)

static struct test_daemon daemon_under_test;

static uint64_t pool_free(void)
{
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	Kmalloc__Meminfo mi;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_get_meminfo(fd, 2, &mi), 0);
	close(fd);
	/* Free frames plus free pages in domains plus empty slabs: what nobody holds. */
	return mi.free + mi.slab_reclaimable;
}

/* The daemon is alive and serves a fresh client a kmalloc. */
static void assert_daemon_serves(void)
{
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);

	test_daemon_assert_serves(&daemon_under_test, fd);
	close(fd);
}

/* Closing connections is asynchronous for the daemon: wait until the free
 * count is back (or give up after 5 s). */
static uint64_t wait_free_back(uint64_t want)
{
	uint64_t now = 0;
	int i;

	for (i = 0; i < 500; i++) {
		now = pool_free();
		if (now == want)
			break;
		usleep(10000);
	}
	return now;
}

START_TEST(test_garbage_closes_only_that_connection)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02 };
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	char byte;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send_bytes(fd, garbage, sizeof(garbage)), 0);
	/* The daemon hangs up on us... */
	ck_assert_ptr_null(raw_recv(fd, NULL, 5000));
	ck_assert_int_eq(recv(fd, &byte, 1, MSG_DONTWAIT), 0);
	close(fd);
	/* ...and only on us. */
	assert_daemon_serves();
	ck_assert_int_ge(test_daemon_log_count(&daemon_under_test, "undecodable packet"), 1);
}
END_TEST

START_TEST(test_oversized_packet_gets_e2big)
{
	size_t len = 256 * 1024;
	uint8_t *big = calloc(1, len);
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	Kmalloc__Reply *r;
	int sndbuf = 4 << 20;

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	ck_assert_int_eq(raw_send_bytes(fd, big, len), 0);
	r = raw_recv(fd, NULL, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, E2BIG);
	ck_assert_str_ne(r->message, "");
	kmalloc__reply__free_unpacked(r, NULL);
	/* The connection still works. */
	r = raw_alloc(fd, 3, 100, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);
	free(big);
	assert_daemon_serves();
}
END_TEST

START_TEST(test_protocol_errors)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	Kmalloc__Reply *r;
	int fd = raw_connect(daemon_under_test.socket);

	ck_assert_int_ge(fd, 0);
	/* A request before Hello. */
	r = raw_alloc(fd, 5, 64, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->id, 5);
	ck_assert_int_eq(r->error, EPROTO);
	kmalloc__reply__free_unpacked(r, NULL);
	/* A Hello of an unknown version. */
	req.id = 6;
	hello.version = 99;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	r = raw_call(fd, &req, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, EPROTO);
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);

	fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	/* A second Hello. */
	hello.version = 1;
	r = raw_call(fd, &req, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, EPROTO);
	kmalloc__reply__free_unpacked(r, NULL);
	/* Request id 0 is reserved: refused, with a reply that is not empty. */
	memset(&req, 0, sizeof(req));
	kmalloc__request__init(&req);
	{
		Kmalloc__Nop nop = KMALLOC__NOP__INIT;

		req.body_case = KMALLOC__REQUEST__BODY_NOP;
		req.nop = &nop;
		r = raw_call(fd, &req, NULL);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r->id, 0);
		ck_assert_int_eq(r->error, EINVAL);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	/* A request with no body (an unknown request from a newer client). */
	memset(&req, 0, sizeof(req));
	kmalloc__request__init(&req);
	req.id = 7;
	r = raw_call(fd, &req, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->id, 7);
	ck_assert_int_eq(r->error, ENOSYS);
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);
	assert_daemon_serves();
}
END_TEST

START_TEST(test_bad_sizes_and_counts)
{
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	Kmalloc__Reply *r;

	ck_assert_int_ge(fd, 0);
	r = raw_alloc(fd, 2, 0, KM_GFP_KERNEL, 1);
	ck_assert_int_eq(r->error, EINVAL);
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, 3, (4u << 20) + 1, KM_GFP_KERNEL, 1);
	ck_assert_int_eq(r->error, ENOMEM);
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, 4, UINT64_MAX, KM_GFP_KERNEL, 1);
	ck_assert_int_eq(r->error, ENOMEM);
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, 5, 64, KM_GFP_KERNEL, 100000);
	ck_assert_int_eq(r->error, EINVAL);
	kmalloc__reply__free_unpacked(r, NULL);
	/* A failure is logged, kernel-style, unless __GFP_NOWARN says not to. */
	test_daemon_log_window();
	{
		int warned = test_daemon_log_count(&daemon_under_test, "kmalloc failure");

		r = raw_alloc(fd, 8, 5u << 20, KM_GFP_KERNEL | KM___GFP_NOWARN, 1);
		ck_assert_int_eq(r->error, ENOMEM);
		kmalloc__reply__free_unpacked(r, NULL);
		ck_assert_int_eq(test_daemon_log_count(&daemon_under_test, "kmalloc failure"),
				 warned);
		r = raw_alloc(fd, 9, 5u << 20, KM_GFP_KERNEL, 1);
		kmalloc__reply__free_unpacked(r, NULL);
		ck_assert_int_eq(test_daemon_log_count(
					 &daemon_under_test,
					 "kmalloc failure: size 5242880, mode:0xcc0(GFP_KERNEL)"),
				 1);
	}
	/* A bulk that cannot fit is all or nothing. */
	r = raw_alloc(fd, 6, 4u << 20, KM_GFP_KERNEL | KM___GFP_NOWARN, 64);
	ck_assert_int_eq(r->error, ENOMEM);
	ck_assert_int_eq(r->body_case, KMALLOC__REPLY__BODY__NOT_SET);
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);
	assert_daemon_serves();
}
END_TEST

START_TEST(test_double_and_foreign_frees)
{
	uint64_t before = pool_free();
	int a = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	int b = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	Kmalloc__Reply *r;
	uint64_t ga, gb, bogus[3];

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	r = raw_alloc(a, 2, 256, KM_GFP_KERNEL, 1);
	ga = r->alloc->grants[0]->id;
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(b, 2, 256, KM_GFP_KERNEL, 1);
	gb = r->alloc->grants[0]->id;
	kmalloc__reply__free_unpacked(r, NULL);

	/* b frees a's grant: refused, a's grant survives. */
	r = raw_free(b, 3, &ga, 1);
	ck_assert_int_eq(r->error, ENOENT);
	ck_assert_uint_eq(r->free->freed, 0);
	ck_assert_uint_eq(r->free->n_unknown, 1);
	ck_assert_uint_eq(r->free->unknown[0], ga);
	kmalloc__reply__free_unpacked(r, NULL);
	/* Ids that never existed, in a release list: reported, request served. */
	bogus[0] = 0;
	bogus[1] = UINT64_MAX;
	bogus[2] = ga;
	req.id = 4;
	req.n_release = 3;
	req.release = bogus;
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	r = raw_call(b, &req, NULL);
	ck_assert_int_eq(r->error, 0);
	ck_assert_uint_eq(r->n_release_failed, 3);
	kmalloc__reply__free_unpacked(r, NULL);

	/* a frees its own grant, then again: the second is a double free. */
	r = raw_free(a, 5, &ga, 1);
	ck_assert_int_eq(r->error, 0);
	ck_assert_uint_eq(r->free->freed, 1);
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_free(a, 6, &ga, 1);
	ck_assert_int_eq(r->error, ENOENT);
	kmalloc__reply__free_unpacked(r, NULL);
	/* Too many ids at once. */
	{
		uint64_t *many = calloc(2000, sizeof(*many));

		r = raw_free(a, 7, many, 2000);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, E2BIG);
		kmalloc__reply__free_unpacked(r, NULL);
		free(many);
	}
	r = raw_free(b, 8, &gb, 1);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);
	close(a);
	close(b);
	ck_assert_uint_eq(wait_free_back(before), before);
}
END_TEST

START_TEST(test_killed_clients_give_everything_back)
{
	uint64_t before = pool_free();
	int i;

	for (i = 0; i < 8; i++) {
		int sync[2];
		pid_t pid;
		char ok;

		ck_assert_int_eq(pipe(sync), 0);
		pid = fork();
		if (pid == 0) {
			int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
			Kmalloc__Reply *r;

			r = raw_alloc(fd, 2, 64, KM_GFP_KERNEL, 500);
			r = raw_alloc(fd, 3, 3u << 20, KM_GFP_KERNEL, 1);
			r = raw_alloc(fd, 4, 20000, KM_GFP_KERNEL, 10);
			(void)r;
			if (write(sync[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		close(sync[1]);
		ck_assert_int_eq(read(sync[0], &ok, 1), 1);
		close(sync[0]);
		ck_assert_uint_lt(pool_free(), before);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ck_assert_uint_eq(wait_free_back(before), before);
	assert_daemon_serves();
}
END_TEST

START_TEST(test_client_that_never_reads)
{
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest m = KMALLOC__MEMINFO_REQUEST__INIT;
	uint64_t before;
	int i, sent = 0;

	ck_assert_int_ge(fd, 0);
	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &m;
	/* Flood without reading until our socket is full. */
	for (i = 0; i < 200000; i++) {
		size_t len;
		uint8_t buf[64];

		req.id = (uint64_t)i + 1;
		len = kmalloc__request__get_packed_size(&req);
		kmalloc__request__pack(&req, buf);
		if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
		sent++;
	}
	ck_assert_int_gt(sent, 100);
	/* Others are still served promptly. */
	before = pool_free();
	(void)before;
	assert_daemon_serves();
	close(fd);
	assert_daemon_serves();
}
END_TEST

START_TEST(test_inspection_and_domains_across_uids)
{
	int sync[2];
	pid_t pid;
	int status;

	ck_assert_int_eq(pipe(sync), 0);
	pid = fork();
	if (pid == 0) {
		Kmalloc__Request req = KMALLOC__REQUEST__INIT;
		Kmalloc__Inspect ins = KMALLOC__INSPECT__INIT;
		Kmalloc__Reply *r, *welcome;
		int fd, memfd;
		uint8_t *map;
		uint64_t phys;

		/* nobody: a domain of its own, no inspection rights. */
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		fd = raw_connect_hello(daemon_under_test.socket, &memfd, &welcome);
		if (fd < 0)
			_exit(2);
		req.id = 2;
		ins.table = KMALLOC__INSPECT__TABLE__TABLE_CLIENTS;
		req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
		req.inspect = &ins;
		r = raw_call(fd, &req, NULL);
		if (!r || r->error != EACCES)
			_exit(3);
		/* Its memory is its own memfd's: fresh memory reads zero. */
		r = raw_alloc(fd, 3, 4096, KM_GFP_KERNEL, 1);
		if (!r || r->error)
			_exit(4);
		phys = r->alloc->grants[0]->phys;
		map = mmap(NULL, welcome->welcome->pool_size, PROT_READ | PROT_WRITE,
			   MAP_SHARED | (welcome->welcome->hugetlb ? MAP_NORESERVE : 0), memfd, 0);
		if (map == MAP_FAILED)
			_exit(5);
		for (int i = 0; i < 4096; i++)
			if (map[phys + (uint64_t)i])
				_exit(6);
		if (write(sync[1], &phys, sizeof(phys)) != sizeof(phys))
			_exit(7);
		_exit(0);
	}
	close(sync[1]);
	waitpid(pid, &status, 0);
	close(sync[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return; /* could not drop privileges: not root */
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "unprivileged client check failed at step %d", WEXITSTATUS(status));

	/* Root may inspect. */
	{
		Kmalloc__Request req = KMALLOC__REQUEST__INIT;
		Kmalloc__Inspect ins = KMALLOC__INSPECT__INIT;
		int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
		Kmalloc__Reply *r;

		req.id = 2;
		ins.table = KMALLOC__INSPECT__TABLE__TABLE_BUDDYINFO;
		req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
		req.inspect = &ins;
		r = raw_call(fd, &req, NULL);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, 0);
		ck_assert_uint_ge(r->inspect->n_buddy, 1);
		ck_assert_str_eq(r->inspect->buddy[0]->zone, "free");
		ck_assert_uint_eq(r->inspect->buddy[0]->n_nr_free, 11);
		kmalloc__reply__free_unpacked(r, NULL);
		ins.table = 42;
		r = raw_call(fd, &req, NULL);
		ck_assert_int_eq(r->error, EINVAL);
		kmalloc__reply__free_unpacked(r, NULL);
		close(fd);
	}
}
END_TEST

/* A handle for a random Import or Revoke: one an Export gave (maybe with a
 * byte flipped), 32 random bytes, or a wrong length. */
static void random_handle(uint8_t (*handles)[32], unsigned int nr, ProtobufCBinaryData *out,
			  uint8_t *scratch)
{
	unsigned int pick = (unsigned int)test_rand_below(8);

	out->data = scratch;
	out->len = 32;
	if (nr && pick < 5)
		memcpy(scratch, handles[test_rand_below(nr)], 32);
	else
		for (int i = 0; i < 32; i++)
			scratch[i] = (uint8_t)test_rand();
	if (pick == 4)
		scratch[test_rand_below(32)] ^= (uint8_t)(1 + test_rand_below(255));
	if (pick == 7)
		out->len = test_rand_below(40);
}

/* Seeded random traffic: valid and broken requests of every kind (sharing
 * too: exports of held and foreign grants with random restrictions,
 * imports and revokes of real, forged and truncated handles), ids the
 * client holds and ids it does not, mutated packets; the daemon (checking
 * itself after every request) must answer or hang up, and in the end give
 * every byte back. */
START_TEST(test_random_requests)
{
	enum { CONNS = 4, ROUNDS = 3000 };
	uint64_t before = pool_free();
	uint64_t held[CONNS][64] = { { 0 } };
	static uint8_t handles[64][32];
	unsigned int nr_handles = 0, exports = 0, imports = 0;
	int fds[CONNS], k, i;

	for (k = 0; k < CONNS; k++) {
		fds[k] = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
		ck_assert_int_ge(fds[k], 0);
	}
	for (i = 0; i < ROUNDS; i++) {
		Kmalloc__Request req = KMALLOC__REQUEST__INIT;
		Kmalloc__Alloc alloc = KMALLOC__ALLOC__INIT;
		Kmalloc__Vmalloc vm = KMALLOC__VMALLOC__INIT;
		Kmalloc__Free fr = KMALLOC__FREE__INIT;
		Kmalloc__Nop nop = KMALLOC__NOP__INIT;
		Kmalloc__Inspect ins = KMALLOC__INSPECT__INIT;
		Kmalloc__Export ex = KMALLOC__EXPORT__INIT;
		Kmalloc__ImportShare im = KMALLOC__IMPORT_SHARE__INIT;
		Kmalloc__Revoke rv = KMALLOC__REVOKE__INIT;
		uint64_t ids[4], rel[2];
		uint8_t buf[512], hbuf[40];
		size_t len, j;
		Kmalloc__Reply *r;

		if (i == ROUNDS / 2) {
			/* Half-way, hand everything to a new daemon image: the
			 * connections and grants carry on as if nothing happened. */
			int before_ho =
				test_daemon_log_count(&daemon_under_test, "handover complete");
			int w;

			kill(daemon_under_test.pid, SIGUSR2);
			for (w = 0;
			     w < 1000 && test_daemon_log_count(&daemon_under_test,
							       "handover complete") == before_ho;
			     w++)
				usleep(10000);
			ck_assert_msg(w < 1000, "no handover");
		}
		k = (int)test_rand_below(CONNS);
		if (fds[k] < 0) {
			fds[k] = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
			ck_assert_int_ge(fds[k], 0);
			memset(held[k], 0, sizeof(held[k]));
		}
		req.id = test_rand();
		if (test_rand_below(4) == 0) {
			rel[0] = held[k][test_rand_below(64)];
			rel[1] = test_rand_below(3) ? test_rand() : rel[0];
			req.n_release = 1 + test_rand_below(2);
			req.release = rel;
		}
		switch (test_rand_below(10)) {
		case 0:
		case 1:
			alloc.size = test_rand_below(3) ? test_rand_below(9000)
							: test_rand_below(6u << 20);
			alloc.gfp = (uint32_t)test_rand();
			alloc.count = (uint32_t)test_rand_below(12);
			req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
			req.alloc = &alloc;
			break;
		case 2:
			vm.size = test_rand_below(9u << 20);
			vm.gfp = (uint32_t)test_rand();
			vm.vaddr = test_rand();
			vm.caller = "random caller \x01 with spaces";
			req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
			req.vmalloc = &vm;
			break;
		case 3:
			for (j = 0; j < 4; j++)
				ids[j] = test_rand_below(2) ? held[k][test_rand_below(64)]
							    : test_rand();
			fr.n_grants = test_rand_below(5);
			fr.grants = ids;
			req.body_case = KMALLOC__REQUEST__BODY_FREE;
			req.free = &fr;
			break;
		case 5:
		case 8:
			ex.grant = test_rand_below(4) ? held[k][test_rand_below(64)] : test_rand();
			if (test_rand_below(4) == 0) {
				ex.offset =
					test_rand_below(4) ? 64 * test_rand_below(64) : test_rand();
				ex.size = test_rand_below(2) ? 64 : test_rand_below(9000);
			}
			/* Mostly importable: read-only or no restriction. */
			ex.flags = test_rand_below(8) ? 2 * (uint32_t)test_rand_below(2)
						      : (uint32_t)test_rand_below(8);
			ex.uid = test_rand_below(2) ? 65534 : (uint32_t)test_rand();
			ex.max_imports = (uint32_t)test_rand_below(3);
			ex.lifetime_ms = test_rand_below(4) ? 0 : test_rand_below(2000);
			req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
			req.export_grant = &ex;
			break;
		case 6:
			random_handle(handles, nr_handles, &im.handle, hbuf);
			im.rdonly = test_rand_below(2);
			im.vaddr = test_rand();
			req.body_case = KMALLOC__REQUEST__BODY_IMPORT_SHARE;
			req.import_share = &im;
			break;
		case 7:
			random_handle(handles, nr_handles, &rv.handle, hbuf);
			req.body_case = KMALLOC__REQUEST__BODY_REVOKE;
			req.revoke = &rv;
			break;
		case 4:
			ins.table = (Kmalloc__Inspect__Table)test_rand_below(10);
			ins.offset = (uint32_t)test_rand_below(3);
			req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
			req.inspect = &ins;
			break;
		default:
			req.body_case = KMALLOC__REQUEST__BODY_NOP;
			req.nop = &nop;
			break;
		}
		len = kmalloc__request__get_packed_size(&req);
		ck_assert_uint_le(len, sizeof(buf));
		kmalloc__request__pack(&req, buf);
		/* One packet in eight is mutated: a flipped byte or a cut tail. */
		if (test_rand_below(8) == 0 && len) {
			if (test_rand_below(2))
				buf[test_rand_below(len)] ^= (uint8_t)(1 + test_rand_below(255));
			else
				len = test_rand_below(len);
		}
		if (raw_send_bytes(fds[k], buf, len) < 0) {
			close(fds[k]);
			fds[k] = -1;
			continue;
		}
		r = raw_recv(fds[k], NULL, 5000);
		if (!r) {
			/* Hung up on garbage: allowed. Timing out is not. */
			char byte;

			ssize_t got = recv(fds[k], &byte, 1, MSG_DONTWAIT);

			for (j = 0; got != 0 && j < len; j++)
				fprintf(stderr, "%02x%s", buf[j], j + 1 == len ? "\n" : " ");

			ck_assert_msg(
				got == 0,
				"round %d: no reply and no hang-up (recv %zd, errno %d, len %zu)",
				i, got, errno, len);
			close(fds[k]);
			fds[k] = -1;
			continue;
		}
		if (r->body_case == KMALLOC__REPLY__BODY_ALLOC)
			for (j = 0; j < r->alloc->n_grants; j++)
				held[k][test_rand_below(64)] = r->alloc->grants[j]->id;
		if (r->body_case == KMALLOC__REPLY__BODY_VMALLOC)
			held[k][test_rand_below(64)] = r->vmalloc->id;
		if (r->body_case == KMALLOC__REPLY__BODY_IMPORT_SHARE) {
			held[k][test_rand_below(64)] = r->import_share->id;
			imports++;
		}
		if (r->body_case == KMALLOC__REPLY__BODY_EXPORT_GRANT &&
		    r->export_grant->handle.len == 32) {
			memcpy(handles[exports++ % 64], r->export_grant->handle.data, 32);
			nr_handles = exports < 64 ? exports : 64;
		}
		kmalloc__reply__free_unpacked(r, NULL);
	}
	for (k = 0; k < CONNS; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	/* The sharing paths were taken, not only refused. */
	ck_assert_uint_gt(exports, 0);
	ck_assert_uint_gt(imports, 0);
	ck_assert_uint_eq(wait_free_back(before), before);
	assert_daemon_serves();
}
END_TEST

/* A connection that never says Hello is closed, not kept forever. */
START_TEST(test_silent_connection_is_closed)
{
	int fd = raw_connect(daemon_under_test.socket), i;
	char byte;
	ssize_t n = -1;

	ck_assert_int_ge(fd, 0);
	for (i = 0; i < 300; i++) {
		n = recv(fd, &byte, 1, MSG_DONTWAIT);
		if (n == 0)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(n, 0);
	close(fd);
	ck_assert_int_ge(test_daemon_log_count(&daemon_under_test, "no hello in time"), 1);
	assert_daemon_serves();
}
END_TEST

static int count_fds(pid_t pid)
{
	char cmd[96];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", (int)pid);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

/* Descriptors a client attaches to its requests are never kept: the kernel
 * refuses them (SO_PASSRIGHTS, Linux 6.16+), or the daemon closes them off
 * its event loop and hangs up on the client that sent them. */
START_TEST(test_fds_sent_to_the_daemon_are_closed)
{
	int fd = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	int before = count_fds(daemon_under_test.pid), after, i, spare, err;
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	Kmalloc__Reply *r;
	uint8_t buf[64];
	size_t len;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(before, 0);
	spare = memfd_create("hostile", MFD_CLOEXEC);
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	req.id = 1;
	len = kmalloc__request__get_packed_size(&req);
	kmalloc__request__pack(&req, buf);
	err = kmwire_send(fd, buf, len, &spare, 1, 0);
	if (err == -EPERM) {
		/* Refused by the kernel: nothing reached the daemon, and the
		 * connection serves on. */
		for (i = 0; i < 50; i++)
			ck_assert_int_eq(kmwire_send(fd, buf, len, &spare, 1, 0), -EPERM);
		ck_assert_int_eq(kmwire_send(fd, buf, len, NULL, 0, 0), 0);
		r = raw_recv(fd, NULL, 5000);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, 0);
		kmalloc__reply__free_unpacked(r, NULL);
	} else {
		ck_assert_int_eq(err, 0);
		/* Closed on us, the descriptor never kept. */
		ck_assert_ptr_null(raw_recv(fd, NULL, 5000));
		ck_assert_int_ge(test_daemon_log_count(&daemon_under_test, "file descriptor"), 1);
	}
	for (i = 0; i < 100 && (after = count_fds(daemon_under_test.pid)) > before; i++)
		usleep(10000);
	ck_assert_int_le(after, before);
	close(spare);
	close(fd);
	assert_daemon_serves();
}
END_TEST

/* A client that touches holes of its domain memfd makes the kernel allocate
 * pages there ("phantoms"); the daemon finds and punches them. */
START_TEST(test_phantom_pages_are_punched)
{
	Kmalloc__Reply *welcome;
	struct stat st;
	int memfd, fd = raw_connect_hello(daemon_under_test.socket, &memfd, &welcome);
	uint64_t size, before, touched;
	uint8_t *map;
	int i;

	ck_assert_int_ge(fd, 0);
	size = welcome->welcome->pool_size;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | (welcome->welcome->hugetlb ? MAP_NORESERVE : 0), memfd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(fstat(memfd, &st), 0);
	before = (uint64_t)st.st_blocks * 512;
	/* The last frame of the pool: nobody has allocated that far. */
	test_daemon_log_window();
	map[size - 1] = 1;
	ck_assert_int_eq(fstat(memfd, &st), 0);
	touched = (uint64_t)st.st_blocks * 512;
	ck_assert_uint_gt(touched, before);
	munmap(map, size);
	/* The daemon reconciles every second here (--reconcile-interval 1). */
	for (i = 0; i < 500; i++) {
		ck_assert_int_eq(fstat(memfd, &st), 0);
		if ((uint64_t)st.st_blocks * 512 <= before)
			break;
		usleep(10000);
	}
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, before);
	ck_assert_int_ge(test_daemon_log_count(&daemon_under_test, "phantom"), 1);
	kmalloc__reply__free_unpacked(welcome, NULL);
	close(memfd);
	close(fd);
	assert_daemon_serves();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("hostile");
	static const char *const extra[] = { "--paranoid", "--reconcile-interval",
					     "1",	   "--hello-timeout",
					     "1",	   NULL };

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_garbage_closes_only_that_connection);
	tcase_add_test(tc, test_oversized_packet_gets_e2big);
	tcase_add_test(tc, test_protocol_errors);
	tcase_add_test(tc, test_bad_sizes_and_counts);
	tcase_add_test(tc, test_double_and_foreign_frees);
	tcase_add_test(tc, test_killed_clients_give_everything_back);
	tcase_add_test(tc, test_client_that_never_reads);
	tcase_add_test(tc, test_inspection_and_domains_across_uids);
	tcase_add_test(tc, test_fds_sent_to_the_daemon_are_closed);
	tcase_add_test(tc, test_phantom_pages_are_punched);
	tcase_add_test(tc, test_random_requests);
	tcase_add_test(tc, test_silent_connection_is_closed);
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, extra);
}
