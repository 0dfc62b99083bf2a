// SPDX-License-Identifier: MIT
/*
 * test-share-wire.c - the daemon's side of sharing over the wire, spoken
 * directly (rawclient.h, no libkmclient): Export / ImportShare / Revoke
 * between two connections of one uid (the same phys, the exporter's free
 * drops only its own reference, the pool back at its starting figures once
 * the importer lets go), shareable allocations whose memfd comes with the
 * reply (Grant.memfd, VmallocReply.memfd) and with an import (KIND_MEMFD;
 * a read-only one gets a descriptor that cannot be mapped writable),
 * refusals (forged, used-up handles; a shareable bulk), a revocation that
 * reaches the importer as an unasked Event (Reply id 0), kmctl's
 * TABLE_SHARES rows, and a reload (SIGUSR2: a new image through the
 * handover state) that keeps shares, handles and holders.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "fakesd.h"
#include "kmalloc-abi.h"
#include "rawclient.h"
#include "testutil.h"

#define MiB	  (1ull << 20)
#define POOL_SIZE (64 * MiB)
#define FRAME	  (2 * MiB)

static struct test_daemon d;

static Kmalloc__Reply *call(int fd, Kmalloc__Request *req, int *fd_out)
{
	static uint64_t next_id = 100;
	Kmalloc__Reply *r;

	req->id = next_id++;
	r = raw_call(fd, req, fd_out);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->id, req->id);
	return r;
}

static Kmalloc__Reply *export_grant(int fd, uint64_t grant, uint32_t flags, uint32_t max_imports)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Export e = KMALLOC__EXPORT__INIT;

	e.grant = grant;
	e.flags = flags;
	e.max_imports = max_imports;
	req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
	req.export_grant = &e;
	return call(fd, &req, NULL);
}

static Kmalloc__Reply *import_share(int fd, const ProtobufCBinaryData *handle, bool rdonly,
				    int *fd_out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__ImportShare in = KMALLOC__IMPORT_SHARE__INIT;

	in.handle = *handle;
	in.rdonly = rdonly;
	req.body_case = KMALLOC__REQUEST__BODY_IMPORT_SHARE;
	req.import_share = &in;
	return call(fd, &req, fd_out);
}

static Kmalloc__Reply *revoke_handle(int fd, const ProtobufCBinaryData *handle)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Revoke rv = KMALLOC__REVOKE__INIT;

	rv.handle = *handle;
	req.body_case = KMALLOC__REQUEST__BODY_REVOKE;
	req.revoke = &rv;
	return call(fd, &req, NULL);
}

static uint64_t alloc_one(int fd, uint64_t size, uint32_t gfp, int *memfd)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Alloc a = KMALLOC__ALLOC__INIT;
	Kmalloc__Reply *r;
	uint64_t id;

	a.size = size;
	a.gfp = gfp;
	a.count = 1;
	req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
	req.alloc = &a;
	r = call(fd, &req, memfd);
	ck_assert_int_eq(r->error, 0);
	ck_assert_int_eq(r->body_case, KMALLOC__REPLY__BODY_ALLOC);
	ck_assert_uint_eq(r->alloc->n_grants, 1);
	ck_assert(r->alloc->grants[0]->memfd == !!(gfp & KM___GFP_SHARED));
	id = r->alloc->grants[0]->id;
	kmalloc__reply__free_unpacked(r, NULL);
	return id;
}

static void free_one(int fd, uint64_t grant, uint32_t expect_freed)
{
	Kmalloc__Reply *r = raw_free(fd, 900, &grant, 1);

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->free->freed, expect_freed);
	kmalloc__reply__free_unpacked(r, NULL);
}

static ProtobufCBinaryData handle_copy(const Kmalloc__Reply *r, uint8_t buf[32])
{
	ck_assert_int_eq(r->error, 0);
	ck_assert_int_eq(r->body_case, KMALLOC__REPLY__BODY_EXPORT_GRANT);
	ck_assert_uint_eq(r->export_grant->handle.len, 32);
	memcpy(buf, r->export_grant->handle.data, 32);
	return (ProtobufCBinaryData){ .len = 32, .data = buf };
}

static void wait_log(const char *needle, int count)
{
	for (int i = 0; i < 500; i++) {
		if (test_daemon_log_count(&d, needle) >= count)
			return;
		usleep(10000);
	}
	ck_abort_msg("no \"%s\" in the log", needle);
}

START_TEST(test_export_import_same_domain)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	Kmalloc__Meminfo before, after;
	Kmalloc__Reply *r, *ir;
	ProtobufCBinaryData h;
	uint8_t hb[32];
	uint64_t g, imp;

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	ck_assert_int_eq(raw_get_meminfo(a, 1, &before), 0);
	g = alloc_one(a, 100, 0, NULL);
	r = export_grant(a, g, 0, 0);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, 0);
	ck_assert_int_eq(ir->import_share->kind, KMALLOC__IMPORT_REPLY__KIND__KIND_KMALLOC);
	ck_assert_uint_eq(ir->import_share->size, 128);
	ck_assert_uint_eq(ir->import_share->share, r->export_grant->share);
	imp = ir->import_share->id;
	kmalloc__reply__free_unpacked(ir, NULL);
	/* forged */
	hb[20] ^= 1;
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, ENOENT);
	kmalloc__reply__free_unpacked(ir, NULL);
	hb[20] ^= 1;
	free_one(a, g, 1);   /* the exporter's reference */
	free_one(b, imp, 1); /* the last one */
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, ENOENT); /* gone with its memory */
	kmalloc__reply__free_unpacked(ir, NULL);
	kmalloc__reply__free_unpacked(r, NULL);
	ck_assert_int_eq(raw_get_meminfo(a, 2, &after), 0);
	ck_assert_uint_eq(after.free + after.slab_reclaimable,
			  before.free + before.slab_reclaimable);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_shareable_memfd)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	int memfd = -1, ifd = -1, rofd = -1;
	Kmalloc__Reply *r, *ir;
	ProtobufCBinaryData h;
	uint8_t hb[32], *p, *q;
	uint64_t g;

	/* a shareable bulk is refused */
	r = raw_alloc(a, 5, 100, KM___GFP_SHARED, 2);
	ck_assert_int_eq(r->error, EINVAL);
	kmalloc__reply__free_unpacked(r, NULL);
	g = alloc_one(a, 100, KM___GFP_SHARED, &memfd);
	ck_assert_int_ge(memfd, 0);
	p = mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x3c, FRAME);
	r = export_grant(a, g, 0, 2);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, &ifd);
	ck_assert_int_eq(ir->error, 0);
	ck_assert_int_eq(ir->import_share->kind, KMALLOC__IMPORT_REPLY__KIND__KIND_MEMFD);
	ck_assert_uint_eq(ir->import_share->map_size, FRAME);
	ck_assert_int_ge(ifd, 0);
	kmalloc__reply__free_unpacked(ir, NULL);
	q = mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, ifd, 0);
	ck_assert(q != MAP_FAILED);
	ck_assert_uint_eq(q[FRAME - 1], 0x3c);
	q[0] = 0x11;
	ck_assert_uint_eq(p[0], 0x11);
	ir = import_share(b, &h, true, &rofd);
	ck_assert_int_eq(ir->error, 0);
	ck_assert(ir->import_share->rdonly);
	ck_assert_int_ge(rofd, 0);
	ck_assert_int_eq(fcntl(rofd, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert(mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0) == MAP_FAILED);
	kmalloc__reply__free_unpacked(ir, NULL);
	ir = import_share(b, &h, false, NULL); /* max_imports 2 */
	ck_assert_int_eq(ir->error, EACCES);
	kmalloc__reply__free_unpacked(ir, NULL);
	kmalloc__reply__free_unpacked(r, NULL);
	munmap(p, FRAME);
	munmap(q, FRAME);
	close(memfd);
	close(ifd);
	close(rofd);
	close(a);
	close(b); /* holders gone by disconnect */
}
END_TEST

/* A shareable vmalloc: its memfd with the reply, an import of it, and
 * vmallocinfo's row naming its owner and counting both holders. */
START_TEST(test_shareable_vmalloc)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Vmalloc v = KMALLOC__VMALLOC__INIT;
	Kmalloc__Reply *r, *e, *ir, *in;
	int memfd = -1, ifd = -1;
	ProtobufCBinaryData h;
	bool found = false;
	uint8_t hb[32];
	uint64_t g;

	v.size = 3 * FRAME - 1;
	v.gfp = KM___GFP_SHARED;
	v.caller = "shared_area";
	req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
	req.vmalloc = &v;
	r = call(a, &req, &memfd);
	ck_assert_int_eq(r->error, 0);
	ck_assert(r->vmalloc->memfd);
	ck_assert_uint_eq(r->vmalloc->n_frames, 3);
	ck_assert_uint_eq(r->vmalloc->size, 3 * FRAME);
	ck_assert_int_ge(memfd, 0);
	g = r->vmalloc->id;
	e = export_grant(a, g, 0, 0);
	h = handle_copy(e, hb);
	ir = import_share(b, &h, false, &ifd);
	ck_assert_int_eq(ir->error, 0);
	ck_assert_int_eq(ir->import_share->kind, KMALLOC__IMPORT_REPLY__KIND__KIND_MEMFD);
	ck_assert_uint_eq(ir->import_share->n_frames, 3);
	ck_assert_uint_eq(ir->import_share->frames[2], r->vmalloc->frames[2]);
	ck_assert_uint_eq(ir->import_share->map_size, 3 * FRAME);
	ck_assert_int_ge(ifd, 0);
	in = raw_inspect(a, 78, KMALLOC__INSPECT__TABLE__TABLE_VMALLOCINFO, 0);
	ck_assert_int_eq(in->error, 0);
	for (size_t i = 0; i < in->inspect->n_vmalloc; i++) {
		if (in->inspect->vmalloc[i]->grant != g)
			continue;
		found = true;
		ck_assert_uint_eq(in->inspect->vmalloc[i]->holders, 2);
		ck_assert_uint_eq(in->inspect->vmalloc[i]->pid, (uint32_t)getpid());
	}
	ck_assert(found);
	kmalloc__reply__free_unpacked(in, NULL);
	free_one(a, g, 1);
	free_one(b, ir->import_share->id, 1);
	kmalloc__reply__free_unpacked(ir, NULL);
	kmalloc__reply__free_unpacked(e, NULL);
	kmalloc__reply__free_unpacked(r, NULL);
	close(memfd);
	close(ifd);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_revoke_event)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	Kmalloc__Reply *r, *ir, *ev;
	ProtobufCBinaryData h;
	uint8_t hb[32];
	uint64_t g, imp;

	g = alloc_one(a, 5000, 0, NULL);
	r = export_grant(a, g, 0, 0);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, 0);
	imp = ir->import_share->id;
	kmalloc__reply__free_unpacked(ir, NULL);
	kmalloc__reply__free_unpacked(r, NULL);
	r = revoke_handle(a, &h);
	ck_assert_int_eq(r->error, 0);
	ck_assert_uint_eq(r->revoke->imports_ended, 1);
	kmalloc__reply__free_unpacked(r, NULL);
	ev = raw_recv(b, NULL, 2000);
	ck_assert_ptr_nonnull(ev);
	ck_assert_uint_eq(ev->id, 0);
	ck_assert_int_eq(ev->body_case, KMALLOC__REPLY__BODY_EVENT);
	ck_assert_uint_eq(ev->event->n_revoked, 1);
	ck_assert_uint_eq(ev->event->revoked[0], imp);
	kmalloc__reply__free_unpacked(ev, NULL);
	free_one(b, imp, 0); /* no longer held */
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, EACCES);
	kmalloc__reply__free_unpacked(ir, NULL);
	free_one(a, g, 1);
	close(a);
	close(b);
}
END_TEST

/* The importer's handle, share and reference survive a reload. */
START_TEST(test_reload_keeps_shares)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	int memfd = -1, ifd = -1, round;
	Kmalloc__Reply *r, *ir;
	ProtobufCBinaryData h;
	uint8_t hb[32], *p;
	uint64_t g, imp, vg;

	g = alloc_one(a, 100, KM___GFP_SHARED, &memfd);
	p = mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x5e, FRAME);
	vg = alloc_one(a, 3000, 0, NULL);
	r = export_grant(a, vg, 0, 0); /* a MEMREF of an ordinary kmalloc too */
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);
	r = export_grant(a, g, 0, 0);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, &ifd);
	ck_assert_int_eq(ir->error, 0);
	imp = ir->import_share->id;
	kmalloc__reply__free_unpacked(ir, NULL);
	for (round = 1; round <= 2; round++) {
		kill(d.pid, SIGUSR2);
		wait_log("handover complete", round);
	}
	free_one(a, g, 1); /* the exporter, after two restarts */
	ck_assert_uint_eq(p[12345], 0x5e);
	ir = import_share(b, &h, true, NULL); /* the handle came back */
	ck_assert_int_eq(ir->error, 0);
	free_one(b, ir->import_share->id, 1);
	kmalloc__reply__free_unpacked(ir, NULL);
	free_one(b, imp, 1);
	free_one(a, vg, 1);
	kmalloc__reply__free_unpacked(r, NULL);
	munmap(p, FRAME);
	close(memfd);
	close(ifd);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_inspect_shares)
{
	int a = raw_connect_hello(d.socket, NULL, NULL),
	    b = raw_connect_hello(d.socket, NULL, NULL);
	Kmalloc__Reply *r, *ir, *in;
	ProtobufCBinaryData h;
	uint8_t hb[32];
	uint64_t g;
	bool found = false;

	g = alloc_one(a, 64, 0, NULL);
	r = export_grant(a, g, 2 /* rdonly */, 0);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, NULL);
	ck_assert_int_eq(ir->error, 0);
	ck_assert(ir->import_share->rdonly);
	in = raw_inspect(a, 77, KMALLOC__INSPECT__TABLE__TABLE_SHARES, 0);
	ck_assert_ptr_nonnull(in);
	if (in->error == EACCES) { /* not root nor admin: nothing to see */
		kmalloc__reply__free_unpacked(in, NULL);
	} else {
		ck_assert_int_eq(in->error, 0);
		for (size_t i = 0; i < in->inspect->n_shares; i++) {
			const Kmalloc__ShareRow *row = in->inspect->shares[i];

			if (row->share != r->export_grant->share)
				continue;
			found = true;
			ck_assert_uint_eq(row->n_holders, 2);
			ck_assert_uint_eq(row->imports, 1);
			ck_assert_uint_eq(row->flags, 2);
			ck_assert_str_eq(row->kind, "kmalloc");
			ck_assert_int_eq(row->expires_in_ms, -1);
		}
		ck_assert(found);
		kmalloc__reply__free_unpacked(in, NULL);
	}
	kmalloc__reply__free_unpacked(ir, NULL);
	kmalloc__reply__free_unpacked(r, NULL);
	close(a);
	close(b);
}
END_TEST

/* An unprivileged uid at --uid-max-handles (3 here): EDQUOT, with a reason;
 * the handles of a grant given back are uncharged. Return codes say what
 * failed. */
static int handle_limit_child(void)
{
	Kmalloc__Reply *r;
	uint64_t g;
	int fd;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		return 77;
	fd = raw_connect_hello(d.socket, NULL, NULL);
	if (fd < 0)
		return 2;
	g = alloc_one(fd, 64, 0, NULL);
	for (int i = 0; i < 3; i++) {
		r = export_grant(fd, g, 0, 0);
		if (r->error)
			return 10 + i;
		kmalloc__reply__free_unpacked(r, NULL);
	}
	r = export_grant(fd, g, 0, 0);
	if (r->error != EDQUOT || !strstr(r->message, "handles"))
		return 20;
	kmalloc__reply__free_unpacked(r, NULL);
	free_one(fd, g, 1); /* its memobj, share and three handles go */
	g = alloc_one(fd, 64, 0, NULL);
	r = export_grant(fd, g, 0, 0);
	if (r->error)
		return 30;
	kmalloc__reply__free_unpacked(r, NULL);
	close(fd);
	return 0;
}

START_TEST(test_handle_limit)
{
	int status;
	pid_t pid;

	/* The daemon logs 10 client lines a second at most (log_ratelimit()):
	 * the tests before may have used this second's. */
	sleep(1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(handle_limit_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed at step %d",
		      WEXITSTATUS(status));
	wait_log("over the live handles limit", 1);
}
END_TEST

/* Whether TABLE_SHARES lists share @share. */
static bool share_listed(int fd, uint64_t share)
{
	Kmalloc__Reply *in = raw_inspect(fd, 78, KMALLOC__INSPECT__TABLE__TABLE_SHARES, 0);
	bool found = false;

	ck_assert_ptr_nonnull(in);
	ck_assert_int_eq(in->error, 0);
	for (size_t i = 0; i < in->inspect->n_shares; i++)
		found = found || in->inspect->shares[i]->share == share;
	kmalloc__reply__free_unpacked(in, NULL);
	return found;
}

/* An expired handle nobody imported through leaves kmctl shares within a
 * few housekeeping ticks, with no other export of its share. */
START_TEST(test_expired_handle_swept)
{
	int a = raw_connect_hello(d.socket, NULL, NULL);
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Export e = KMALLOC__EXPORT__INIT;
	Kmalloc__Reply *r;
	uint64_t share;
	int waited = 0;

	e.grant = alloc_one(a, 64, 0, NULL);
	e.lifetime_ms = 200;
	req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
	req.export_grant = &e;
	r = call(a, &req, NULL);
	ck_assert_int_eq(r->error, 0);
	share = r->export_grant->share;
	kmalloc__reply__free_unpacked(r, NULL);
	ck_assert(share_listed(a, share));
	while (share_listed(a, share) && waited < 5000) {
		usleep(50000);
		waited += 50;
	}
	ck_assert_msg(waited >= 200 && waited < 5000, "swept after %d ms", waited);
	close(a);
}
END_TEST

/* What another uid's process does with a shareable grant's handles: the
 * memfd (never the domain's), writes both ways; a read-only import that
 * cannot be mapped writable nor reopened read-write through /proc; an
 * ordinary grant refused with a message that says why. */
static int cross_uid_child(const uint8_t *rw, const uint8_t *ro, const uint8_t *plain)
{
	ProtobufCBinaryData hrw = { 32, (uint8_t *)rw }, hro = { 32, (uint8_t *)ro },
			    hplain = { 32, (uint8_t *)plain };
	Kmalloc__Reply *r;
	int fd, mfd = -1, rofd = -1;
	char path[64];
	uint8_t *q;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		return 77;
	fd = raw_connect_hello(d.socket, NULL, NULL);
	if (fd < 0)
		return 2;
	r = import_share(fd, &hplain, false, NULL);
	if (r->error != EACCES || !strstr(r->message, "KM_GFP_SHARED"))
		return 3;
	r = import_share(fd, &hrw, false, &mfd);
	if (r->error || mfd < 0 || r->import_share->kind != KMALLOC__IMPORT_REPLY__KIND__KIND_MEMFD)
		return 4;
	q = mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (q == MAP_FAILED || q[100] != 0x42)
		return 5;
	q[10] = 0x99;
	r = import_share(fd, &hro, false, &rofd); /* the handle forces read-only */
	if (r->error || !r->import_share->rdonly || rofd < 0)
		return 6;
	if (mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0) != MAP_FAILED)
		return 7;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rofd);
	if (open(path, O_RDWR) >= 0 || errno != EACCES)
		return 8;
	return 0;
}

START_TEST(test_cross_uid)
{
	int a = raw_connect_hello(d.socket, NULL, NULL), memfd = -1, status;
	uint8_t rw[32], ro[32], plain[32], *p;
	Kmalloc__Reply *r;
	uint64_t g, pg;
	pid_t pid;

	g = alloc_one(a, 100, KM___GFP_SHARED, &memfd);
	p = mmap(NULL, FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x42, FRAME);
	r = export_grant(a, g, 0, 0);
	handle_copy(r, rw);
	kmalloc__reply__free_unpacked(r, NULL);
	r = export_grant(a, g, 2 /* EXPORT_RDONLY */, 0);
	handle_copy(r, ro);
	kmalloc__reply__free_unpacked(r, NULL);
	pg = alloc_one(a, 100, 0, NULL);
	r = export_grant(a, pg, 0, 0);
	handle_copy(r, plain);
	kmalloc__reply__free_unpacked(r, NULL);
	pid = fork();
	if (pid == 0)
		_exit(cross_uid_child(rw, ro, plain));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 77)) { /* 77: not root, no other uid */
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "the other uid's check failed at step %d", WEXITSTATUS(status));
		ck_assert_uint_eq(p[10], 0x99);
	}
	munmap(p, FRAME);
	close(memfd);
	close(a);
}
END_TEST

/* ---- a restart through systemd's fd store ------------------------------------ */

/* systemctl restart with --fd-store: the share memfd goes into the store
 * with the domain memfds, and the successor takes the share, its handle and
 * both holders back. */
START_TEST(test_fd_store_restart_keeps_shares)
{
	struct fake_systemd sd;
	int a, b, gone, memfd = -1, ifd = -1, have_share = 0;
	Kmalloc__Meminfo before, after;
	Kmalloc__Reply *r, *ir;
	ProtobufCBinaryData h;
	uint8_t hb[32], *p;
	uint64_t g, imp;
	pid_t pid;

	test_backing_prepare(32u << 20);
	fake_systemd_init(&sd);
	pid = fake_systemd_start(&sd, true);
	a = raw_connect_hello(sd.sock, NULL, NULL);
	b = raw_connect_hello(sd.sock, NULL, NULL);
	gone = raw_connect_hello(sd.sock, NULL, NULL);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	ck_assert_int_ge(gone, 0);
	ck_assert_int_eq(raw_get_meminfo(a, 3, &before), 0);
	g = alloc_one(a, 3 * MiB, KM___GFP_SHARED, &memfd);
	p = mmap(NULL, 2 * FRAME, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x6d, 2 * FRAME);
	r = export_grant(a, g, 0, 0);
	h = handle_copy(r, hb);
	ir = import_share(b, &h, false, &ifd);
	ck_assert_int_eq(ir->error, 0);
	imp = ir->import_share->id;
	kmalloc__reply__free_unpacked(ir, NULL);
	ir = import_share(gone, &h, false, NULL);
	ck_assert_int_eq(ir->error, 0);
	kmalloc__reply__free_unpacked(ir, NULL);

	fake_systemd_stop(&sd, pid);
	close(gone); /* a holder that dies in the gap: its reference goes */
	fake_systemd_read(&sd, NULL, 200);
	for (int i = 0; i < sd.nr; i++)
		have_share += !strncmp(sd.names[i], "kmallocd-share-", 15);
	ck_assert_int_eq(have_share, 1);
	pid = fake_systemd_start(&sd, false);

	free_one(a, g, 1); /* the exporter's reference came back */
	ck_assert_uint_eq(p[FRAME + 7], 0x6d);
	ir = import_share(b, &h, true, NULL); /* so did the handle */
	ck_assert_int_eq(ir->error, 0);
	free_one(b, ir->import_share->id, 1);
	kmalloc__reply__free_unpacked(ir, NULL);
	free_one(b, imp, 1); /* and the import */
	kmalloc__reply__free_unpacked(r, NULL);
	for (int i = 0; i < 100; i++) { /* the dead holder's teardown is a loop turn away */
		ck_assert_int_eq(raw_get_meminfo(a, 4, &after), 0);
		if (after.free + after.slab_reclaimable == before.free + before.slab_reclaimable)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(after.free + after.slab_reclaimable,
			  before.free + before.slab_reclaimable);
	munmap(p, 2 * FRAME);
	close(memfd);
	close(ifd);
	close(a);
	close(b);
	fake_systemd_stop(&sd, pid);
	ck_assert_int_ge(fake_systemd_log_count(&sd, "taking over from the fd store"), 1);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not add up"), 0);
	fake_systemd_cleanup(&sd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("share-wire");
	TCase *tc = tcase_create("share-wire");
	/* root, whose handles are not limited, does the other tests */
	static const char *const extra[] = { "--paranoid", "--uid-max-handles", "3", NULL };

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_export_import_same_domain);
	tcase_add_test(tc, test_shareable_memfd);
	tcase_add_test(tc, test_shareable_vmalloc);
	tcase_add_test(tc, test_revoke_event);
	tcase_add_test(tc, test_inspect_shares);
	tcase_add_test(tc, test_cross_uid);
	tcase_add_test(tc, test_handle_limit);
	tcase_add_test(tc, test_expired_handle_swept);
	tcase_add_test(tc, test_reload_keeps_shares);
	tcase_add_test(tc, test_fd_store_restart_keeps_shares);
	suite_add_tcase(s, tc);
	return test_daemon_main(&d, s, POOL_SIZE, extra);
}
