// SPDX-License-Identifier: MIT
/*
 * test-wire.c - the message codec and SEQPACKET framing: a Request survives
 * pack/send/recv/unpack, descriptors travel with SCM_RIGHTS, oversized packets
 * are reported instead of truncated, garbage does not decode.
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
	tcase_add_test(tc, test_fd_passing);
	tcase_add_test(tc, test_oversized_and_eof);
	tcase_add_test(tc, test_garbage_does_not_decode);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
