// SPDX-License-Identifier: MIT
/*
 * test-share.c - sharing between processes through handles (issue 8),
 * against a real kmallocd: an exporter and importers in forked processes
 * (the handle travels as text, km_handle_format() in the exporter, up its
 * report pipe, and km_handle_parse() in the importer), of one uid and of
 * two (nobody, after dropping root). Each case checks what each process
 * sees of the others' writes, who may import what, and that once every
 * holder let go (free, exit, SIGKILL) the pool's figures are back where
 * they started.
 *
 * Peers run a small command loop (peer()): the test sends one letter, the
 * peer does it and reports a struct report.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "attacker.h"
#include "daemon.h"
#include "fakesd.h"
#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"

#define POOL_SIZE (64ull << 20)
#define MIB	  (1ull << 20)
#define REPORT_MS 30000

static struct test_daemon main_daemon;

/* ---- the pool's figures -------------------------------------------------- */

struct figures {
	uint64_t free, grants, clients;
};

/* Over a raw connection of root's: the daemon's own grant and client
 * counts, which km_meminfo does not carry. */
static void figures_of(struct figures *f)
{
	Kmalloc__Meminfo mi;
	int fd = -1;

	/* A connection just closed may hold its slot a moment. */
	for (int i = 0; i < 500 && fd < 0; i++) {
		fd = raw_connect_hello(main_daemon.socket, NULL, NULL);
		if (fd < 0)
			usleep(10000);
	}
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_get_meminfo(fd, 2, &mi), 0);
	/* Empty slabs the caches keep are as good as free. */
	f->free = mi.free + mi.slab_reclaimable;
	f->grants = mi.grants;
	f->clients = mi.clients;
	close(fd);
}

/* The figures to come back to, once earlier connections are gone. */
static void baseline(struct figures *f)
{
	for (int i = 0; i < 500; i++) {
		figures_of(f);
		if (f->clients == 1)
			return;
		usleep(10000);
	}
	ck_abort_msg("%" PRIu64 " connections left", f->clients - 1);
}

/* Connections are given back asynchronously, domains a frame at a time:
 * wait (10 s at most) for @base. */
static void assert_back_to(const struct figures *base)
{
	struct figures now = { 0 };

	for (int i = 0; i < 1000; i++) {
		figures_of(&now);
		if (now.free == base->free && now.grants == base->grants &&
		    now.clients == base->clients)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(now.grants, base->grants);
	ck_assert_uint_eq(now.clients, base->clients);
	ck_assert_uint_eq(now.free, base->free);
}

/* ---- peers ------------------------------------------------------------- */

enum kind { K_SMALL, K_LARGE, K_VMALLOC, K_KVMALLOC_SMALL, K_KVMALLOC_BIG };

struct peer_arg {
	bool nobody;	/* drop root first */
	bool importer;	/* else the exporter */
	enum kind kind; /* exporter: what it allocates */
	size_t size;
	km_gfp_t gfp; /* added to KM_GFP_KERNEL */
	bool limited;
	km_export_limits lim;
	char handle[KM_HANDLE_STRLEN]; /* importer: what it imports */
	unsigned int import_flags;
};

struct report {
	int64_t v[4];
	char handle[KM_HANDLE_STRLEN];
	char msg[120];
};

struct peer {
	km_client *c;
	char *p; /* the allocation or the import */
	size_t size;
	km_handle h;
	const struct peer_arg *arg;
};

static void *peer_alloc(km_client *c, const struct peer_arg *a)
{
	km_gfp_t gfp = KM_GFP_KERNEL | a->gfp;

	switch (a->kind) {
	case K_VMALLOC:
		return km___vmalloc(c, a->size, gfp);
	case K_KVMALLOC_SMALL:
	case K_KVMALLOC_BIG:
		return km_kvmalloc(c, a->size, gfp);
	default:
		return km_kmalloc(c, a->size, gfp);
	}
}

static void peer_free(struct peer *me)
{
	if (me->arg->importer || me->arg->kind != K_VMALLOC)
		km_kvfree(me->c, me->p);
	else
		km_vfree(me->c, me->p);
	me->p = NULL;
}

/* How a forked child touching @p ends: 0, or the signal that killed it. */
static int touch_in_child(volatile char *p, bool write)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* die of it, even under AddressSanitizer */
		if (write)
			p[0] = 'x';
		else
			(void)p[0];
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* The exporter's start: allocate, fill with 'A', export. */
static void exporter_start(struct peer *me, struct report *rep)
{
	const struct peer_arg *a = me->arg;

	me->p = peer_alloc(me->c, a);
	ATTACKER_CHECK(me->p != NULL);
	/* All of it: ksize, or the whole frames of an area. */
	me->size = km_ksize(me->c, me->p);
	if (!me->size)
		me->size = (a->size + 2 * MIB - 1) & ~(2 * MIB - 1);
	memset(me->p, 'A', me->size);
	if (km_export_limited(me->c, me->p, a->limited ? &a->lim : NULL, &me->h)) {
		rep->v[0] = -1;
		rep->v[1] = errno;
		return;
	}
	ATTACKER_CHECK(km_handle_format(&me->h, rep->handle, sizeof(rep->handle)) == 64);
	rep->v[2] = (int64_t)me->size;
}

/* The importer's start: import; check the exporter's 'A's; write a 'B' at
 * byte 2 unless read-only. */
static void importer_start(struct peer *me, struct report *rep)
{
	km_handle h;
	size_t size = 0;

	ATTACKER_CHECK(km_handle_parse(me->arg->handle, &h) == 0);
	me->h = h; /* for 'x': a revoke by an importer */
	me->p = km_import_flags(me->c, &h, me->arg->import_flags, &size);
	if (!me->p) {
		rep->v[0] = -1;
		rep->v[1] = errno;
		return;
	}
	me->size = size;
	rep->v[2] = (int64_t)size;
	rep->v[3] = me->p[0] == 'A' && me->p[size / 2] == 'A' && me->p[size - 1] == 'A';
	if (!(me->arg->import_flags & KM_IMPORT_RDONLY))
		me->p[2] = 'B';
}

/* Stops at the first difference from 'A' in [from, to): its offset, or -1. */
static int64_t first_not_a(const char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != 'A')
			return (int64_t)i;
	return -1;
}

/* One command (see peer()). */
static void peer_do(struct peer *me, int cmd, struct report *rep)
{
	km_meminfo mi;

	switch (cmd) {
	case 'c': /* exporter: sees the importer's 'B', writes a 'C' */
		rep->v[0] = me->p[2] == 'B';
		me->p[1] = 'C';
		break;
	case 'r': /* importer: sees the 'C', and the rest untouched */
		rep->v[0] = me->p[1] == 'C';
		rep->v[1] = first_not_a(me->p, 3, me->size);
		break;
	case 'f': { /* free; an exported small object is never handed out again */
		char *old = me->p;

		peer_free(me);
		if (!me->arg->importer && me->arg->kind == K_SMALL) {
			void *q[200];

			for (int i = 0; i < 200; i++) {
				q[i] = km_kmalloc(me->c, me->size, KM_GFP_KERNEL);
				rep->v[0] += q[i] == NULL || q[i] == old;
			}
			km_kfree_bulk(me->c, 200, q);
		}
		break;
	}
	case 'x': /* revoke our handle */
		rep->v[0] = km_revoke(me->c, &me->h);
		rep->v[1] = errno;
		break;
	case 'w': /* a write, in a child */
		rep->v[0] = touch_in_child(me->p, true);
		rep->v[1] = mprotect((void *)((uintptr_t)me->p & ~(uintptr_t)4095), 4096,
				     PROT_READ | PROT_WRITE)
				    ? errno
				    : 0;
		break;
	case 't': /* a library call (events are read), then a read in a child */
		ATTACKER_CHECK(km_get_meminfo(me->c, &mi) == 0);
		rep->v[0] = touch_in_child(me->p, false);
		break;
	default:
		rep->v[0] = -2;
		break;
	}
}

/* A peer: connects (as nobody if asked), exports or imports, reports; then
 * one report per command until the test closes the pipe; then frees what
 * it still holds and disconnects. */
static int peer(struct attacker *self, void *arg)
{
	struct peer me = { .arg = arg };
	struct report rep = { { 0 } };
	int cmd;

	if (me.arg->nobody)
		attacker_become_nobody();
	me.c = km_connect(main_daemon.socket);
	ATTACKER_CHECK(me.c != NULL);
	if (me.arg->importer)
		importer_start(&me, &rep);
	else
		exporter_start(&me, &rep);
	attacker_report(self, &rep, sizeof(rep));
	while ((cmd = attacker_wait(self)) >= 0) {
		memset(&rep, 0, sizeof(rep));
		if (me.p || cmd == 'x')
			peer_do(&me, cmd, &rep);
		else
			rep.v[0] = -3; /* nothing held */
		attacker_report(self, &rep, sizeof(rep));
	}
	if (me.p)
		peer_free(&me);
	km_disconnect(me.c);
	return 0;
}

static void peer_start(struct attacker *a, struct peer_arg *arg, struct report *rep)
{
	attacker_start(a, &main_daemon, peer, arg);
	attacker_read(a, rep, sizeof(*rep), REPORT_MS);
}

static void peer_cmd(struct attacker *a, char cmd, struct report *rep)
{
	attacker_go(a, cmd);
	attacker_read(a, rep, sizeof(*rep), REPORT_MS);
}

/* ---- one uid ----------------------------------------------------------- */

static const struct {
	enum kind kind;
	size_t size;
} same_uid_cases[] = {
	{ K_SMALL, 100 },	     /* an object of a slab the exporter carves */
	{ K_LARGE, 100000 },	     /* a large kmalloc */
	{ K_VMALLOC, 3 * MIB },	     /* frames side by side */
	{ K_KVMALLOC_SMALL, 5000 },  /* kvmalloc that is a kmalloc */
	{ K_KVMALLOC_BIG, 5 * MIB }, /* kvmalloc that is a vmalloc */
	{ K_SMALL, 8192 },	     /* the largest class */
};

/* A exports, B imports; each sees the other's writes; A frees and exits, B
 * still reads; B frees: the pool is back. */
START_TEST(test_same_uid)
{
	struct peer_arg ea = { .kind = same_uid_cases[_i].kind, .size = same_uid_cases[_i].size };
	struct peer_arg ia = { .importer = true };
	struct attacker ex, im;
	struct report rep;
	struct figures base;

	baseline(&base);
	peer_start(&ex, &ea, &rep);
	ck_assert_msg(rep.v[0] == 0, "export: %s", strerror((int)rep.v[1]));
	ck_assert_uint_ge((uint64_t)rep.v[2], ea.size);
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));

	peer_start(&im, &ia, &rep);
	ck_assert_msg(rep.v[0] == 0, "import: %s", strerror((int)rep.v[1]));
	ck_assert_uint_ge((uint64_t)rep.v[2], ea.size);
	ck_assert_int_eq(rep.v[3], 1);

	peer_cmd(&ex, 'c', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	peer_cmd(&im, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	peer_cmd(&ex, 'f', &rep);
	ck_assert_int_eq(rep.v[0], 0);
	attacker_finish(&ex);

	/* The exporter is gone; its memory is not. */
	peer_cmd(&im, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	ck_assert_int_eq(rep.v[1], -1);
	peer_cmd(&im, 'f', &rep);
	attacker_finish(&im);
	assert_back_to(&base);
}
END_TEST

/* The holders are killed: first the exporter (the importer still reads),
 * then the importer; nothing stays. */
START_TEST(test_holders_killed)
{
	struct peer_arg ea = { .kind = K_LARGE, .size = 200000 }, ia = { .importer = true };
	struct attacker ex, im;
	struct report rep;
	struct figures base;

	baseline(&base);
	peer_start(&ex, &ea, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	peer_start(&im, &ia, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	peer_cmd(&ex, 'c', &rep);
	kill(ex.pid, SIGKILL);
	attacker_reap(&ex);
	peer_cmd(&im, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	kill(im.pid, SIGKILL);
	attacker_reap(&im);
	assert_back_to(&base);
}
END_TEST

/* Handles that must not work: ENOENT for what nobody exported or whose
 * memory is gone, EACCES for revoked, expired and used-up ones. */
START_TEST(test_refused_handles)
{
	km_export_limits once = { .max_imports = 1 }, brief = { .lifetime_ms = 100 };
	km_client *a = km_connect(main_daemon.socket), *b = km_connect(main_daemon.socket);
	km_handle h, forged, hb;
	struct figures base;
	char *p, *q, *q2, who[32];

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	test_daemon_log_window();
	p = km_kmalloc(a, 50000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(km_export(a, p, &h), 0);

	/* Forged: random bytes, and the right id with one secret bit wrong. */
	for (int i = 0; i < 32; i++)
		forged.bytes[i] = (uint8_t)test_rand();
	errno = 0;
	ck_assert_ptr_null(km_import(b, &forged, NULL));
	ck_assert_int_eq(errno, ENOENT);
	forged = h;
	forged.bytes[20] ^= 0x10;
	errno = 0;
	ck_assert_ptr_null(km_import(b, &forged, NULL));
	ck_assert_int_eq(errno, ENOENT);

	/* Used up. */
	ck_assert_int_eq(km_export_limited(a, p, &once, &hb), 0);
	q = km_import(b, &hb, NULL);
	ck_assert_ptr_nonnull(q);
	errno = 0;
	ck_assert_ptr_null(km_import(b, &hb, NULL));
	ck_assert_int_eq(errno, EACCES);

	/* Expired. */
	ck_assert_int_eq(km_export_limited(a, p, &brief, &hb), 0);
	usleep(300000);
	errno = 0;
	ck_assert_ptr_null(km_import(b, &hb, NULL));
	ck_assert_int_eq(errno, EACCES);

	/* Revoked: no new import; the one made through it ends. */
	q2 = km_import(b, &h, NULL);
	ck_assert_ptr_eq(q2, q); /* the same memory, in b's direct map */
	ck_assert_int_eq(km_revoke(a, &h), 1);
	errno = 0;
	ck_assert_ptr_null(km_import(b, &h, NULL));
	ck_assert_int_eq(errno, EACCES);
	errno = 0;
	ck_assert_int_eq(km_revoke(a, &forged), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Refusals are logged (rate-limited), naming the client. */
	snprintf(who, sizeof(who), "pid %d ", (int)getpid());
	ck_assert_int_ge(test_count_lines(main_daemon.log, "import refused", who), 3);

	/* Gone: every holder let go (the revoked import is not held). */
	km_kfree(b, q2);
	km_kfree(b, q);
	km_kfree(a, p);
	ck_assert_int_eq(km_get_meminfo(a, &(km_meminfo){ 0 }), 0);
	ck_assert_int_eq(km_get_meminfo(b, &(km_meminfo){ 0 }), 0);
	errno = 0;
	ck_assert_ptr_null(km_import(b, &h, NULL));
	ck_assert(errno == ENOENT || errno == EACCES);
	ck_assert_int_eq(km_export_limited(a, a, NULL, &hb), -1);
	ck_assert_int_eq(errno, EINVAL);
	km_disconnect(a);
	km_disconnect(b);
	baseline(&base);
	ck_assert_uint_eq(base.grants, 0);
}
END_TEST

/* A handle with KM_EXPORT_RDONLY makes every import read-only, even one
 * that did not ask, and so does an import re-exported: the exporter of the
 * import cannot drop the restriction. Within the domain the mapping is
 * apart from the direct map. */
START_TEST(test_rdonly_handle_and_reexport)
{
	km_export_limits ro = { .flags = KM_EXPORT_RDONLY };
	km_client *a = km_connect(main_daemon.socket), *b = km_connect(main_daemon.socket);
	km_client *c = km_connect(main_daemon.socket);
	km_handle h, h2;
	char *p, *q, *r;

	ck_assert(a && b && c);
	p = km_kmalloc(a, 300000, KM_GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	memset(p, 'A', 300000);
	ck_assert_int_eq(km_export_limited(a, p, &ro, &h), 0);
	q = km_import(b, &h, NULL);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(q[299999], 'A');
	ck_assert_int_eq(touch_in_child(q, true), SIGSEGV);
	ck_assert_uint_eq(km_virt_to_phys(b, q), km_virt_to_phys(a, p));

	/* Re-exported by the importer, without asking for read-only. */
	ck_assert_int_eq(km_export(b, q, &h2), 0);
	r = km_import(c, &h2, NULL);
	ck_assert_ptr_nonnull(r);
	p[5] = 'P';
	ck_assert_int_eq(r[5], 'P');
	ck_assert_int_eq(touch_in_child(r, true), SIGSEGV);

	/* The first exporter leaves; the others keep it, then let go. */
	km_kfree(a, p);
	km_disconnect(a);
	ck_assert_int_eq(r[5], 'P');
	km_kvfree(b, q);
	km_kvfree(c, r);
	km_disconnect(b);
	km_disconnect(c);
}
END_TEST

/* Revoke: the importer's separate mapping becomes PROT_NONE at its next
 * library call; its free is quiet; the exporter keeps its memory. */
START_TEST(test_revoke_unmaps)
{
	struct peer_arg ea = { .kind = K_VMALLOC, .size = 2 * MIB }, ia = { .importer = true };
	struct attacker ex, im;
	struct report rep;
	struct figures base;

	baseline(&base);
	peer_start(&ex, &ea, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	peer_start(&im, &ia, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	peer_cmd(&im, 't', &rep);
	ck_assert_int_eq(rep.v[0], 0);
	peer_cmd(&ex, 'x', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	peer_cmd(&im, 't', &rep);
	ck_assert_int_eq(rep.v[0], SIGSEGV);
	peer_cmd(&ex, 'c', &rep); /* the exporter still has it */
	peer_cmd(&im, 'f', &rep);
	attacker_finish(&im);
	peer_cmd(&ex, 'f', &rep);
	attacker_finish(&ex);
	assert_back_to(&base);
}
END_TEST

/* ---- two uids ---------------------------------------------------------- */

/* root exports KM_GFP_SHARED memory for nobody: a read-write import sees and
 * makes writes, a read-only one faults on a write and cannot make itself
 * writable; memory not allocated shareable is refused; a handle meant for
 * another uid is refused; nobody cannot revoke root's handle; root's revoke
 * takes the mapping away. */
static void cross_uid(enum kind kind, size_t size)
{
	struct peer_arg ea = { .kind = kind,
			       .size = size,
			       .gfp = KM_GFP_SHARED,
			       .limited = true,
			       .lim = { .flags = KM_EXPORT_UID, .uid = NOBODY } };
	struct peer_arg plain = { .kind = kind, .size = size };
	struct peer_arg other = ea, ia = { .importer = true, .nobody = true };
	struct attacker ex, ex2, im, ro;
	struct report rep;
	struct figures base;

	baseline(&base);
	peer_start(&ex, &ea, &rep);
	ck_assert_msg(rep.v[0] == 0, "export: %s", strerror((int)rep.v[1]));
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	peer_start(&im, &ia, &rep);
	ck_assert_msg(rep.v[0] == 0, "import as nobody: %s", strerror((int)rep.v[1]));
	ck_assert_int_eq(rep.v[3], 1);
	peer_cmd(&ex, 'c', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	peer_cmd(&im, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);

	ia.import_flags = KM_IMPORT_RDONLY;
	peer_start(&ro, &ia, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	ck_assert_int_eq(rep.v[3], 1);
	peer_cmd(&ro, 'w', &rep);
	ck_assert_int_eq(rep.v[0], SIGSEGV);
	ck_assert_int_eq(rep.v[1], EACCES);
	peer_cmd(&ro, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	ia.import_flags = 0;

	/* nobody cannot revoke root's handle. */
	peer_cmd(&ro, 'x', &rep);
	ck_assert_int_eq(rep.v[0], -1);
	ck_assert_int_eq(rep.v[1], EACCES);

	/* Not shareable: refused across domains. */
	peer_start(&ex2, &plain, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	{
		struct attacker bad;

		peer_start(&bad, &ia, &rep);
		ck_assert_int_eq(rep.v[0], -1);
		ck_assert_int_eq(rep.v[1], EACCES);
		attacker_finish(&bad);
	}
	attacker_finish(&ex2);

	/* Meant for uid 65533: nobody is refused. */
	other.lim.uid = 65533;
	peer_start(&ex2, &other, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	{
		struct attacker bad;

		peer_start(&bad, &ia, &rep);
		ck_assert_int_eq(rep.v[0], -1);
		ck_assert_int_eq(rep.v[1], EACCES);
		attacker_finish(&bad);
	}
	attacker_finish(&ex2);

	/* root's revoke ends both imports: their mappings go. */
	peer_cmd(&ex, 'x', &rep);
	ck_assert_int_eq(rep.v[0], 2); /* im and ro */
	peer_cmd(&im, 't', &rep);
	ck_assert_int_eq(rep.v[0], SIGSEGV);
	peer_cmd(&ro, 't', &rep);
	ck_assert_int_eq(rep.v[0], SIGSEGV);
	peer_cmd(&ex, 'c', &rep); /* the exporter keeps its memory */
	attacker_finish(&ex);
	attacker_finish(&im);
	attacker_finish(&ro);
	assert_back_to(&base);
}

START_TEST(test_cross_uid_kmalloc)
{
	cross_uid(K_LARGE, MIB);
}
END_TEST

START_TEST(test_cross_uid_vmalloc)
{
	cross_uid(K_VMALLOC, 3 * MIB);
}
END_TEST

/* The exporter frees and exits; the other uid still reads; it frees: the
 * pool (both domains) is back. */
START_TEST(test_cross_uid_outlives_exporter)
{
	struct peer_arg ea = { .kind = K_LARGE, .size = 3 * MIB, .gfp = KM_GFP_SHARED };
	struct peer_arg ia = { .importer = true, .nobody = true };
	struct attacker ex, im;
	struct report rep;
	struct figures base;

	baseline(&base);
	peer_start(&ex, &ea, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	ck_assert_uint_eq((uint64_t)rep.v[2], 4 * MIB); /* whole frames */
	memcpy(ia.handle, rep.handle, sizeof(ia.handle));
	peer_start(&im, &ia, &rep);
	ck_assert_int_eq(rep.v[0], 0);
	peer_cmd(&ex, 'c', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	peer_cmd(&ex, 'f', &rep);
	attacker_finish(&ex);
	peer_cmd(&im, 'r', &rep);
	ck_assert_int_eq(rep.v[0], 1);
	ck_assert_int_eq(rep.v[1], -1);
	peer_cmd(&im, 'f', &rep);
	attacker_finish(&im);
	assert_back_to(&base);
}
END_TEST

/* ---- reload ------------------------------------------------------------ */

static bool wait_log(struct test_daemon *d, const char *needle, int count)
{
	for (int i = 0; i < 1000; i++) {
		if (test_daemon_log_count(d, needle) >= count)
			return true;
		usleep(10000);
	}
	return false;
}

/* Checks that @len bytes at @p are all @byte. */
static void assert_all(const char *p, int byte, size_t len)
{
	size_t i;

	for (i = 0; i < len && p[i] == (char)byte; i++)
		;
	ck_assert_uint_eq(i, len);
}

/* Shares of every kind between two clients of one process, to keep across
 * a reload or a restart: a kmalloc (a direct import), a vmalloc area (its
 * frames mapped apart), a KM_GFP_SHARED kmalloc imported read-only (its
 * own memfd, and a handle good for two imports). */
struct shared_set {
	km_client *a, *b;
	km_handle h1, h2, h3;
	char *p, *v, *sh; /* a's */
	char *q, *w, *x;  /* b's imports of them */
};

static void set_make(struct shared_set *s, const char *sock)
{
	km_export_limits twice = { .max_imports = 2 };

	s->a = km_connect(sock);
	s->b = km_connect(sock);
	ck_assert_ptr_nonnull(s->a);
	ck_assert_ptr_nonnull(s->b);
	s->p = km_kmalloc(s->a, 100000, KM_GFP_KERNEL);
	s->v = km_vmalloc(s->a, 3 * MIB);
	s->sh = km_kmalloc(s->a, MIB, KM_GFP_KERNEL | KM_GFP_SHARED);
	ck_assert(s->p && s->v && s->sh);
	memset(s->p, 'p', 100000);
	memset(s->v, 'v', 3 * MIB);
	memset(s->sh, 's', MIB);
	ck_assert_int_eq(km_export(s->a, s->p, &s->h1), 0);
	ck_assert_int_eq(km_export(s->a, s->v, &s->h2), 0);
	ck_assert_int_eq(km_export_limited(s->a, s->sh, &twice, &s->h3), 0);
	s->q = km_import(s->b, &s->h1, NULL);
	s->w = km_import(s->b, &s->h2, NULL);
	s->x = km_import_flags(s->b, &s->h3, KM_IMPORT_RDONLY, NULL);
	ck_assert(s->q && s->w && s->x);
}

/* After the new daemon took over: the memory is shared still, the handles
 * work and count, a revoke reaches the importer, and every holder's free is
 * one the new daemon knows; then nothing is left. */
static void set_check_and_free(struct shared_set *s)
{
	km_meminfo mi;
	char *y;

	assert_all(s->q, 'p', 100000);
	assert_all(s->w, 'v', 3 * MIB);
	assert_all(s->x, 's', MIB);
	s->w[5] = 'W';
	ck_assert_int_eq(s->v[5], 'W');
	s->sh[7] = 'S';
	ck_assert_int_eq(s->x[7], 'S');
	ck_assert_int_eq(touch_in_child(s->x, true), SIGSEGV);

	y = km_import(s->b, &s->h1, NULL);
	ck_assert_ptr_eq(y, s->q);
	km_kfree(s->b, y);
	y = km_import(s->b, &s->h3, NULL);
	ck_assert_ptr_nonnull(y);
	ck_assert_int_eq(y[7], 'S');
	errno = 0;
	ck_assert_ptr_null(km_import(s->b, &s->h3, NULL));
	ck_assert_int_eq(errno, EACCES);
	km_kvfree(s->b, y);
	ck_assert_int_eq(km_revoke(s->a, &s->h2), 1);
	ck_assert_int_eq(km_get_meminfo(s->b, &mi), 0);
	ck_assert_int_eq(touch_in_child(s->w, false), SIGSEGV);

	/* Every holder lets go, in any order. */
	km_kfree(s->a, s->p);
	km_vfree(s->a, s->v);
	km_kvfree(s->b, s->w);
	km_kvfree(s->b, s->x);
	km_kfree(s->a, s->sh);
	km_kvfree(s->b, s->q);
	ck_assert_int_eq(km_get_meminfo(s->b, &mi), 0);
	ck_assert_int_eq(km_get_meminfo(s->a, &mi), 0);
	ck_assert_uint_eq(mi.vmalloc_used, 0);
	km_disconnect(s->a);
	km_disconnect(s->b);
}

/* SIGUSR2 hands the daemon over to a new image, twice: every share, handle
 * and import survives. */
START_TEST(test_reload_keeps_shares)
{
	struct test_daemon d;
	struct shared_set s;
	km_meminfo mi;

	test_daemon_start(&d, POOL_SIZE, NULL);
	set_make(&s, d.socket);
	for (int round = 1; round <= 2; round++) {
		kill(d.pid, SIGUSR2);
		ck_assert_msg(wait_log(&d, "handover complete", round), "no handover in the log");
		ck_assert_int_eq(km_get_meminfo(s.a, &mi), 0);
		ck_assert_int_eq(km_get_meminfo(s.b, &mi), 0);
	}
	set_check_and_free(&s);
	ck_assert_int_eq(test_daemon_stop(&d), 0);
	ck_assert_int_eq(test_daemon_log_count(&d, "does not hold"), 0);
	test_daemon_cleanup(&d);
}
END_TEST

/* systemctl restart with --fd-store: the old daemon leaves its state and
 * descriptors (share memfds among them) in the store, a new process takes
 * them over; the shares are all there. */
START_TEST(test_restart_keeps_shares)
{
	struct fake_systemd sd;
	struct shared_set s;
	int status, have_share_fd = 0;
	pid_t pid;

	fake_systemd_init(&sd);
	pid = fake_systemd_start(&sd, true);
	set_make(&s, sd.sock);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	fake_systemd_read(&sd, NULL, 200);
	for (int i = 0; i < sd.nr; i++) {
		char path[64], target[256];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", sd.fds[i]);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		have_share_fd += strstr(target, "kmallocd-share") != NULL;
	}
	ck_assert_int_ge(have_share_fd, 1);
	pid = fake_systemd_start(&sd, false);
	set_check_and_free(&s);
	fake_systemd_stop(&sd, pid);
	ck_assert_int_ge(fake_systemd_log_count(&sd, "taking over from the fd store"), 1);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not add up"), 0);
	ck_assert_int_eq(fake_systemd_log_count(&sd, "does not hold"), 0);
	fake_systemd_cleanup(&sd);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("share");
	TCase *tc;

	if (!getenv("KMALLOCD")) {
		fprintf(stderr, "KMALLOCD must be set (run the tests through meson test)\n");
		return EXIT_FAILURE;
	}
	signal(SIGPIPE, SIG_IGN);
	/* The main daemon's pool, and the one the reload or restart case starts. */
	test_backing_prepare(2 * POOL_SIZE);
	tc = tcase_create("same uid");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_same_uid, 0,
			    (int)(sizeof(same_uid_cases) / sizeof(same_uid_cases[0])));
	suite_add_tcase(s, tc);
	add_case(s, "holders killed", test_holders_killed, 60);
	add_case(s, "refused handles", test_refused_handles, 60);
	add_case(s, "read-only handle", test_rdonly_handle_and_reexport, 60);
	add_case(s, "revoke", test_revoke_unmaps, 60);
	add_case(s, "reload", test_reload_keeps_shares, 60);
	add_case(s, "restart", test_restart_keeps_shares, 60);
	if (geteuid() == 0) {
		add_case(s, "two uids, kmalloc", test_cross_uid_kmalloc, 60);
		add_case(s, "two uids, vmalloc", test_cross_uid_vmalloc, 60);
		add_case(s, "two uids, exporter leaves", test_cross_uid_outlives_exporter, 60);
	} else {
		printf("not root: the cases with two uids are left out\n");
	}
	return test_daemon_main(&main_daemon, s, POOL_SIZE, NULL);
}
