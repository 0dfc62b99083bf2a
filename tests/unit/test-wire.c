// SPDX-License-Identifier: MIT
/*
 * test-wire.c - the message codec and SEQPACKET framing: a Request survives
 * pack/send/recv/unpack, descriptors travel with SCM_RIGHTS, oversized packets
 * are reported instead of truncated, garbage does not decode, and the grant
 * Reply packed by hand (grantpack.c) is protobuf-c's to the byte.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "grantpack.h"
#include "kmalloc.pb-c.h"
#include "wire.h"
#include "testutil.h"

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(test_request_roundtrip)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT, *got;
	Kmalloc__Alloc alloc = KMALLOC__ALLOC__INIT;
	uint64_t release[3] = { 7, 8, UINT64_MAX };
	uint8_t buf[256], rx[256];
	size_t len;
	ssize_t n;
	int sv[2];

	req.id = 42;
	req.n_release = 3;
	req.release = release;
	alloc.size = 96;
	alloc.gfp = 0xcc0;
	alloc.count = 3;
	req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
	req.alloc = &alloc;
	len = kmalloc__request__get_packed_size(&req);
	ck_assert_uint_le(len, sizeof(buf));
	kmalloc__request__pack(&req, buf);

	pair(sv);
	ck_assert_int_eq(kmwire_send(sv[0], buf, len, NULL, 0, 0), 0);
	n = kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, NULL, 0);
	ck_assert_int_eq(n, (ssize_t)len);
	got = kmalloc__request__unpack(NULL, (size_t)n, rx);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->id, 42);
	ck_assert_uint_eq(got->n_release, 3);
	ck_assert_uint_eq(got->release[2], UINT64_MAX);
	ck_assert_int_eq(got->body_case, KMALLOC__REQUEST__BODY_ALLOC);
	ck_assert_uint_eq(got->alloc->size, 96);
	ck_assert_uint_eq(got->alloc->gfp, 0xcc0);
	ck_assert_uint_eq(got->alloc->count, 3);
	kmalloc__request__free_unpacked(got, NULL);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A value of every size a varint has: 0 (not sent), 1 byte ... 10 bytes. */
static uint64_t any_value(void)
{
	switch (test_rand_below(4)) {
	case 0:
		return 0;
	case 1:
		return test_rand_below(128);
	case 2:
		return test_rand() >> test_rand_below(64);
	default:
		return UINT64_MAX - test_rand_below(3);
	}
}

/* The grant Reply packed by hand is, byte for byte, what protobuf-c packs,
 * for any id, any release_failed list, either body, and grants whose fields
 * are zero (not sent) or of any varint length; and protobuf-c decodes it to
 * the same values. */
START_TEST(test_grantpack_matches_protobuf_c)
{
	enum { MAX = 40 };
	static const unsigned int fields[3] = { GRANTPACK_ALLOC, GRANTPACK_SLAB_ALLOC,
						GRANTPACK_NOP };
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;

	for (int round = 0; round < 2000; round++) {
		struct grantpack_grant g[MAX];
		Kmalloc__Grant msgs[MAX], *ptrs[MAX];
		Kmalloc__AllocReply body = KMALLOC__ALLOC_REPLY__INIT;
		Kmalloc__Reply reply = KMALLOC__REPLY__INIT, *back;
		uint64_t failed[8];
		size_t nr = test_rand_below(MAX + 1), nr_failed = test_rand_below(9), len, max;
		unsigned int field = fields[round % 3];
		uint8_t want[4096], got[4096];

		for (size_t i = 0; i < nr; i++) {
			g[i] = (struct grantpack_grant){ any_value(), any_value(), any_value(),
							 (uint32_t)any_value(),
							 (uint32_t)any_value() };
			kmalloc__grant__init(&msgs[i]);
			msgs[i].id = g[i].id;
			msgs[i].phys = g[i].phys;
			msgs[i].size = g[i].size;
			msgs[i].object_size = g[i].object_size;
			msgs[i].objects = g[i].objects;
			ptrs[i] = &msgs[i];
		}
		for (size_t i = 0; i < nr_failed; i++)
			failed[i] = any_value();
		reply.id = any_value();
		reply.n_release_failed = nr_failed;
		reply.release_failed = failed;
		body.n_grants = nr;
		body.grants = ptrs;
		if (field == GRANTPACK_NOP) {
			nr = 0; /* an empty body */
			reply.body_case = KMALLOC__REPLY__BODY_NOP;
			reply.nop = &nop;
		} else if (field == GRANTPACK_ALLOC) {
			reply.body_case = KMALLOC__REPLY__BODY_ALLOC;
			reply.alloc = &body;
		} else {
			reply.body_case = KMALLOC__REPLY__BODY_SLAB_ALLOC;
			reply.slab_alloc = &body;
		}
		max = grantpack_reply_max(nr_failed, nr);
		ck_assert_uint_le(kmalloc__reply__get_packed_size(&reply), max);
		ck_assert_uint_le(max, sizeof(got));
		len = kmalloc__reply__pack(&reply, want);
		ck_assert_uint_eq(grantpack_reply(got, reply.id, failed, nr_failed, field, g, nr),
				  len);
		ck_assert_int_eq(memcmp(got, want, len), 0);
		back = kmalloc__reply__unpack(NULL, len, got);
		ck_assert_ptr_nonnull(back);
		ck_assert_uint_eq(back->id, reply.id);
		ck_assert_uint_eq(back->n_release_failed, nr_failed);
		ck_assert_int_eq(back->body_case, reply.body_case);
		kmalloc__reply__free_unpacked(back, NULL);
	}
}
END_TEST

START_TEST(test_fd_passing)
{
	int sv[2], fd, got[WIRE_MAX_FDS];
	unsigned int nr;
	char rx[16], byte = 'x';
	ssize_t n;

	pair(sv);
	fd = memfd_create("wire-test", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	ck_assert_int_eq(kmwire_send(sv[0], &byte, 1, &fd, 1, 0), 0);
	n = kmwire_recv(sv[1], rx, sizeof(rx), got, WIRE_MAX_FDS, &nr, 0);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(nr, 1);
	ck_assert_int_ne(got[0], fd);
	ck_assert_int_eq(pread(got[0], rx, 5, 0), 5);
	ck_assert_int_eq(memcmp(rx, "hello", 5), 0);
	ck_assert_int_eq(fcntl(got[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(got[0]);

	/* A receiver that wants no fds gets them closed, not leaked. */
	ck_assert_int_eq(kmwire_send(sv[0], &byte, 1, &fd, 1, 0), 0);
	ck_assert_int_eq(kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, &nr, 0), 1);
	ck_assert_uint_eq(nr, 0);
	ck_assert_int_eq(kmwire_send(sv[0], &byte, 1, NULL, WIRE_MAX_FDS + 1, 0), -EINVAL);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_oversized_and_eof)
{
	char big[4096] = { 0 }, rx[128];
	int sv[2];

	pair(sv);
	ck_assert_int_eq(kmwire_send(sv[0], big, sizeof(big), NULL, 0, 0), 0);
	ck_assert_int_eq(kmwire_send(sv[0], "ok", 2, NULL, 0, 0), 0);
	ck_assert_int_eq(kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, NULL, 0), -EMSGSIZE);
	/* The oversized packet is consumed whole: the next one is intact. */
	ck_assert_int_eq(kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, NULL, 0), 2);
	ck_assert_int_eq(kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, NULL, MSG_DONTWAIT), -EAGAIN);
	close(sv[0]);
	ck_assert_int_eq(kmwire_recv(sv[1], rx, sizeof(rx), NULL, 0, NULL, 0), 0);
	close(sv[1]);
}
END_TEST

START_TEST(test_garbage_does_not_decode)
{
	static const uint8_t garbage[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x0a, 0x7f, 0x01 }, /* length beyond the buffer */
		{ 0x52, 0x05, 0x08 }, /* hello truncated */
	};
	size_t lens[] = { 8, 3, 3 }, i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		ck_assert_ptr_null(kmalloc__request__unpack(NULL, lens[i], garbage[i]));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("wire");
	int failed;

	tcase_add_test(tc, test_request_roundtrip);
	tcase_add_test(tc, test_grantpack_matches_protobuf_c);
	tcase_add_test(tc, test_fd_passing);
	tcase_add_test(tc, test_oversized_and_eof);
	tcase_add_test(tc, test_garbage_does_not_decode);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
