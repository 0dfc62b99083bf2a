// SPDX-License-Identifier: MIT
/*
 * test-sharing.c - sharing through the grant and share modules' API
 * (daemon/share.c, daemon/grant.c), over a real struct mm (a small shmem
 * pool) and minimal connections as holders: handles (forged secret, unknown
 * id, wrong length, expired, used up, meant for another uid, revoked, and
 * revocation by another uid refused); reference counts (the exporter frees,
 * the importer still holds, the last release frees, the pool back at its
 * starting figures); one object of a slab exported while the slab's grant
 * goes back; shareable allocations (kmalloc and vmalloc) whose frames live
 * in a memfd of their own, domain_check() and domain_reconcile() true
 * throughout, imports across domains through that memfd only, read-only
 * imports that cannot be mapped writable, and imports across domains of
 * ordinary grants refused; live handles charged to their creator's uid
 * (EDQUOT past max_handles, given back as handles die, the account kept
 * while handles outlive every connection of the uid) and expired handles
 * swept by the housekeeping tick's share_sweep_some(), a budget at a time.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "grant.h"
#include "settings.h"
#include "share.h"
#include "sizes.h"
#include "slab.h"
#include "testutil.h"
#include "vmalloc.h"

#define MiB	    (1ull << 20)
#define POOL_SIZE   (32 * MiB) /* 16 frames */
#define POOL_FRAMES 16u
#define UID_A	    1000
#define UID_B	    1001

static struct mm mm;
static struct settings cfg;
static struct accounts accts;
static struct grant_table table;
static uint64_t next_conn_id = 1;

static void setup(void)
{
	struct mm_options opt = { .pool_size = POOL_SIZE,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = 0 };

	ck_assert_int_eq(mm_init(&mm, &opt), 0);
	settings_defaults(&cfg);
	accounts_init(&accts, &cfg, POOL_SIZE);
	ck_assert_int_eq(grant_table_init(&table), 0);
	table.shares->accounts = &accts; /* as server_setup() does */
}

static void teardown(void)
{
	ck_assert_uint_eq(table.count, 0);
	ck_assert_uint_eq(table.nr_areas, 0);
	ck_assert_uint_eq(table.shares->nr_memobjs, 0);
	ck_assert_uint_eq(table.shares->nr_handles, 0);
	grant_table_fini(&table);
	mm_fini(&mm);
	accounts_fini(&accts);
	settings_fini(&cfg);
}

static struct conn *holder_new(uid_t uid)
{
	struct conn *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	grant_set_init(&c->grants);
	c->fd = -1;
	c->state = CONN_READY;
	c->id = next_conn_id++;
	c->pid = 4000 + (pid_t)c->id;
	c->uid = uid;
	c->gid = uid;
	snprintf(c->name, sizeof(c->name), "holder%u", (unsigned int)c->id);
	c->account = account_get(&accts, uid);
	ck_assert_ptr_nonnull(c->account);
	account_limits_for(&accts, uid, uid, NULL, 0, &c->limits);
	c->account->limits = c->limits;
	ck_assert_int_eq(domain_get(&mm, uid, &c->domain), 0);
	return c;
}

static void holder_free(struct conn *c)
{
	grant_release_some(&table, c, 0);
	ck_assert_uint_eq(c->bytes, 0);
	grant_set_fini(&c->grants);
	domain_put(c->domain);
	while (mm_trim(&mm, 0))
		;
	account_put(&accts, c->account);
	free(c);
}

static void check_domains(void)
{
	struct domain *d;

	TAILQ_FOREACH(d, &mm.domains, link) {
		ck_assert_int_eq(domain_check(d), 0);
		ck_assert_int_eq(domain_reconcile(d), 0);
	}
}

static struct grant *kmalloc_one(struct conn *c, uint64_t size, unsigned int gfp)
{
	struct grant *g;

	ck_assert_int_eq(grant_kmalloc(&table, c, size, gfp, 1, &g), 0);
	return g;
}

static void export_ok(struct conn *c, const struct grant *g, const struct share_export_args *a,
		      uint8_t handle[SHARE_HANDLE_SIZE])
{
	struct share_export_args none = { 0 };
	const char *why = NULL;
	uint64_t share = 0;

	ck_assert_int_eq(share_export(table.shares, c, g->id, a ? a : &none, handle, &share, &why),
			 0);
	ck_assert_uint_ne(share, 0);
}

static int import(struct conn *c, const uint8_t *handle, bool rdonly, struct share_import_result *r)
{
	const char *why = NULL;
	int err = share_import(table.shares, c, handle, SHARE_HANDLE_SIZE, rdonly, r, &why);

	if (err)
		ck_assert_ptr_nonnull(why);
	return err;
}

/* ---- handles ------------------------------------------------------------ */

START_TEST(test_handle_refusals)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A), *other = holder_new(UID_B);
	struct grant *g = kmalloc_one(a, 100, 0);
	uint64_t phys = g->phys;
	uint8_t h[SHARE_HANDLE_SIZE], forged[SHARE_HANDLE_SIZE];
	struct share_import_result r;
	const char *why;

	export_ok(a, g, NULL, h);
	ck_assert_int_eq(g->kind, GRANT_MEMREF);
	/* forged secret, unknown id, wrong length */
	memcpy(forged, h, sizeof(h));
	forged[31] ^= 1;
	ck_assert_int_eq(import(b, forged, false, &r), -ENOENT);
	memcpy(forged, h, sizeof(h));
	forged[0] ^= 0x40;
	ck_assert_int_eq(import(b, forged, false, &r), -ENOENT);
	ck_assert_int_eq(share_import(table.shares, b, h, 31, false, &r, &why), -EINVAL);
	/* another domain, an ordinary grant */
	ck_assert_int_eq(import(other, h, false, &r), -EACCES);
	/* a good one: the same phys in the importer's direct map */
	ck_assert_int_eq(import(b, h, false, &r), 0);
	ck_assert_int_eq(r.kind, SHARE_IMPORT_KMALLOC);
	ck_assert_uint_eq(r.phys, phys);
	ck_assert_uint_eq(r.size, 128);
	ck_assert_int_eq(r.fd, -1);
	ck_assert_int_eq(r.g->kind, GRANT_IMPORT);
	ck_assert_uint_eq(b->bytes, 128);
	check_domains();
	holder_free(a);
	holder_free(b);
	holder_free(other);
}
END_TEST

START_TEST(test_handle_restrictions)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, 4096, 0);
	struct share_export_args once = { .max_imports = 1 }, brief = { .lifetime_ms = 1 },
				 for_b = { .flags = SHARE_EXPORT_UID, .uid = UID_B };
	uint8_t h1[SHARE_HANDLE_SIZE], h2[SHARE_HANDLE_SIZE], h3[SHARE_HANDLE_SIZE];
	struct share_import_result r;
	struct timespec ms5 = { 0, 5000000 };

	export_ok(a, g, &once, h1);
	ck_assert_int_eq(import(b, h1, false, &r), 0);
	ck_assert_int_eq(import(b, h1, false, &r), -EACCES); /* used up */
	export_ok(a, g, &for_b, h3);
	ck_assert_int_eq(import(b, h3, false, &r), -EACCES); /* another uid */
	export_ok(a, g, &brief, h2);
	nanosleep(&ms5, NULL);
	ck_assert_int_eq(import(b, h2, false, &r), -EACCES); /* expired */
	/* handles listed, secrets never: three handles, one share */
	{
		struct share_row rows[8];
		struct share_holder_row holders[8 * 4];
		bool more;
		size_t n = share_inspect(table.shares, 0, rows, 8, holders, 4, &more);

		ck_assert_uint_eq(n, 3);
		ck_assert(!more);
		ck_assert_uint_eq(rows[0].share, rows[2].share);
		ck_assert_uint_eq(rows[0].imports, 1);
		ck_assert_uint_eq(rows[0].nr_holders, 2);
		ck_assert(rows[0].holders[0].exporter != rows[0].holders[1].exporter);
		ck_assert_int_le(rows[2].expires_in_ms, 0);
		ck_assert_int_eq(rows[1].expires_in_ms, -1);
		ck_assert_uint_eq(rows[1].uid, UID_B);
		ck_assert_uint_eq(rows[1].flags, SHARE_EXPORT_UID);
		ck_assert_str_eq(rows[0].kind, "kmalloc");
		ck_assert_uint_eq(share_inspect(table.shares, 1, rows, 1, holders, 4, &more), 1);
		ck_assert(more);
	}
	holder_free(a);
	holder_free(b);
}
END_TEST

START_TEST(test_handle_sweep_and_cap)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, 64, 0);
	struct share_export_args brief = { .lifetime_ms = 1 }, none = { 0 };
	uint8_t h1[SHARE_HANDLE_SIZE], h2[SHARE_HANDLE_SIZE], h[SHARE_HANDLE_SIZE];
	struct timespec ms5 = { 0, 5000000 };
	struct share_import_result r;
	const char *why;
	uint64_t share;
	uint32_t i;

	export_ok(a, g, &brief, h1);
	export_ok(a, g, &brief, h2);
	ck_assert_int_eq(import(b, h2, false, &r), 0);
	nanosleep(&ms5, NULL);
	/* the next export sweeps h1 (expired, unused), keeps h2 (an import
	 * through it could still be revoked) */
	export_ok(a, g, NULL, h);
	ck_assert_uint_eq(table.shares->nr_handles, 2);
	ck_assert_int_eq(import(b, h1, false, &r), -ENOENT);
	for (i = 2; i < 1024; i++)
		export_ok(a, g, NULL, h);
	ck_assert_int_eq(share_export(table.shares, a, g->id, &none, h, &share, &why), -EDQUOT);
	holder_free(a);
	holder_free(b);
}
END_TEST

START_TEST(test_revoke)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A), *c = holder_new(UID_A),
		    *stranger = holder_new(UID_B);
	struct grant *g = kmalloc_one(a, 64, 0);
	uint8_t h[SHARE_HANDLE_SIZE], h2[SHARE_HANDLE_SIZE];
	struct share_import_result r1, r2, r3;
	struct share_revoked *ended;
	const char *why;
	size_t n;

	export_ok(a, g, NULL, h);
	export_ok(a, g, NULL, h2);
	ck_assert_int_eq(import(b, h, false, &r1), 0);
	ck_assert_int_eq(import(c, h, false, &r2), 0);
	ck_assert_int_eq(import(c, h2, false, &r3), 0);
	ck_assert_int_eq(
		share_revoke(table.shares, stranger, h, SHARE_HANDLE_SIZE, &ended, &n, &why),
		-EACCES);
	ck_assert_int_eq(share_revoke(table.shares, a, h, SHARE_HANDLE_SIZE, &ended, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ended[0].grant == r1.g->id || ended[0].grant == r2.g->id);
	ck_assert(ended[1].grant == r1.g->id || ended[1].grant == r2.g->id);
	free(ended);
	ck_assert_uint_eq(b->grants.nr, 0);
	ck_assert_uint_eq(b->bytes, 0);
	ck_assert_uint_eq(c->grants.nr, 1); /* the import through h2 stays */
	ck_assert_int_eq(import(b, h, false, &r1), -EACCES);
	/* the exporter lets go, the last import keeps the memory; then nothing */
	grant_release(&table, g);
	ck_assert_uint_eq(table.shares->nr_memobjs, 1);
	grant_release(&table, r3.g);
	ck_assert_uint_eq(table.shares->nr_memobjs, 0);
	ck_assert_int_eq(import(b, h2, false, &r1), -ENOENT);
	holder_free(a);
	holder_free(b);
	holder_free(c);
	holder_free(stranger);
}
END_TEST

/* ---- the per-uid limit on live handles ----------------------------------- */

static int export_err(struct conn *c, const struct grant *g, const char **why)
{
	struct share_export_args none = { 0 };
	uint8_t handle[SHARE_HANDLE_SIZE];
	uint64_t share;

	return share_export(table.shares, c, g->id, &none, handle, &share, why);
}

START_TEST(test_handle_limit)
{
	struct conn *a, *b, *root, *other;
	struct grant *g, *g2;
	uint8_t h[SHARE_HANDLE_SIZE];
	const char *why = NULL;

	cfg.uid_max_handles = 3;
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1001", "max_handles", "5"), 0);
	a = holder_new(UID_A);
	b = holder_new(UID_A);
	root = holder_new(0);
	other = holder_new(UID_B);
	ck_assert_uint_eq(a->limits.max_handles, 3);
	ck_assert_uint_eq(other->limits.max_handles, 5);
	ck_assert_uint_eq(root->limits.max_handles, ACCOUNT_UNLIMITED);
	g = kmalloc_one(a, 64, 0);
	g2 = kmalloc_one(a, 64, 0);
	export_ok(a, g, NULL, h);
	export_ok(a, g, NULL, h);
	export_ok(a, g2, NULL, h);
	ck_assert_uint_eq(a->account->handles, 3);
	/* the uid is at its limit, whichever grant or connection asks */
	ck_assert_int_eq(export_err(a, g2, &why), -EDQUOT);
	ck_assert_ptr_nonnull(strstr(why, "handles"));
	ck_assert_int_eq(share_export(table.shares, b, g->id, &(struct share_export_args){ 0 }, h,
				      &(uint64_t){ 0 }, &why),
			 -ENOENT); /* not b's grant: refused before the limit */
	ck_assert_uint_eq(table.shares->nr_handles, 3);
	/* g2's memobj dies with its handle: the uid gets one back */
	grant_release(&table, g2);
	ck_assert_uint_eq(a->account->handles, 2);
	g2 = kmalloc_one(b, 64, 0);
	export_ok(b, g2, NULL, h);
	ck_assert_int_eq(export_err(b, g2, &why), -EDQUOT);
	ck_assert_uint_eq(other->account->handles, 0);
	holder_free(a);
	holder_free(b);
	ck_assert_uint_eq(table.shares->nr_handles, 0);
	ck_assert_ptr_null(account_find(&accts, UID_A));
	holder_free(root);
	holder_free(other);
}
END_TEST

/* Handles outlive their exporter's connection (an import holds the memory):
 * they stay charged, and the account stays, until they die. */
START_TEST(test_handle_charge_outlives_exporter)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_B);
	struct grant *g = kmalloc_one(a, 100, KM_GFP_SHARED);
	struct share_import_result r;
	uint8_t h[SHARE_HANDLE_SIZE];
	struct account *acct;

	export_ok(a, g, NULL, h);
	export_ok(a, g, NULL, h);
	ck_assert_int_eq(import(b, h, false, &r), 0);
	acct = a->account;
	holder_free(a);
	ck_assert_ptr_eq(account_find(&accts, UID_A), acct);
	ck_assert_uint_eq(acct->handles, 2);
	ck_assert_uint_eq(acct->connections, 0);
	ck_assert_uint_eq(acct->grants, 0);
	/* the last holder lets go: memobj, share, handles and account go */
	grant_release(&table, r.g);
	ck_assert_uint_eq(table.shares->nr_handles, 0);
	ck_assert_ptr_null(account_find(&accts, UID_A));
	holder_free(b);
}
END_TEST

/* ---- the housekeeping tick's sweep ----------------------------------------- */

START_TEST(test_sweep_tick)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, 64, 0), *g2 = kmalloc_one(a, 64, 0);
	struct share_export_args brief = { .lifetime_ms = 1 };
	uint8_t h[SHARE_HANDLE_SIZE], used[SHARE_HANDLE_SIZE];
	struct timespec ms5 = { 0, 5000000 };
	struct share_import_result r;
	struct share_row rows[8];
	struct share_holder_row holders[8 * 2];
	bool more;

	ck_assert_uint_eq(share_sweep_some(table.shares, 100), 0); /* none at all */
	/* handles 1 and 4 expire unused, 2 never expires, 3 expires with an
	 * import through it, 5 (on g2) expires unused */
	export_ok(a, g, &brief, h);
	export_ok(a, g, NULL, h);
	export_ok(a, g, &brief, used);
	export_ok(a, g, &brief, h);
	export_ok(a, g2, &brief, h);
	ck_assert_int_eq(import(b, used, false, &r), 0);
	ck_assert_uint_eq(a->account->handles, 5);
	ck_assert_uint_eq(share_sweep_some(table.shares, 100), 0); /* none expired yet */
	nanosleep(&ms5, NULL);
	/* a budget of one handle a turn: 1 goes; the next turn looks at 2 */
	ck_assert_uint_eq(share_sweep_some(table.shares, 1), 1);
	ck_assert_uint_eq(table.shares->nr_handles, 4);
	ck_assert_uint_eq(share_sweep_some(table.shares, 1), 0);
	/* 4 is where the next turn starts: it dies another way meanwhile */
	ck_assert_uint_eq(share_sweep_some(table.shares, 1), 0);
	ck_assert_uint_eq(table.shares->sweep_next->id, 4);
	grant_release(&table, g2); /* takes 5 */
	ck_assert_uint_eq(table.shares->nr_handles, 3);
	ck_assert_uint_eq(share_sweep_some(table.shares, 100), 1); /* 4 */
	ck_assert_uint_eq(table.shares->nr_handles, 2);
	ck_assert_uint_eq(a->account->handles, 2);
	/* kmctl shares: the one that never expires and the one still in use */
	ck_assert_uint_eq(share_inspect(table.shares, 0, rows, 8, holders, 2, &more), 2);
	ck_assert_uint_eq(rows[0].handle_id, 2);
	ck_assert_uint_eq(rows[1].handle_id, 3);
	/* once its import is gone, 3 goes at the next turn, round the list */
	grant_release(&table, r.g);
	ck_assert_uint_eq(table.shares->nr_handles, 2);
	ck_assert_uint_eq(share_sweep_some(table.shares, 100), 1);
	ck_assert_uint_eq(table.shares->nr_handles, 1);
	ck_assert_uint_eq(a->account->handles, 1);
	holder_free(a);
	holder_free(b);
}
END_TEST

/* What sweeps keep: an expired handle an import made through it is still
 * held (a revocation through it would end that import), until the import
 * goes; a revoked handle that does not expire, until its share dies. */
START_TEST(test_sweep_keeps_live)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, 64, 0);
	struct share_export_args brief = { .lifetime_ms = 1 };
	uint8_t h[SHARE_HANDLE_SIZE], h2[SHARE_HANDLE_SIZE];
	struct share_import_result r;
	struct timespec ms5 = { 0, 5000000 };
	struct share_revoked *ended;
	const char *why;
	size_t n;

	export_ok(a, g, &brief, h);
	ck_assert_int_eq(import(b, h, false, &r), 0);
	export_ok(a, g, NULL, h2);
	ck_assert_int_eq(import(b, h2, false, &r), 0);
	ck_assert_int_eq(share_revoke(table.shares, a, h2, SHARE_HANDLE_SIZE, &ended, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	free(ended);
	nanosleep(&ms5, NULL);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(share_sweep_some(table.shares, 100), 0);
	ck_assert_uint_eq(table.shares->nr_handles, 2);
	holder_free(b); /* the import through h goes with its holder */
	ck_assert_uint_eq(share_sweep_some(table.shares, 100), 1);
	ck_assert_uint_eq(table.shares->nr_handles, 1); /* the revoked one */
	ck_assert_uint_eq(a->account->handles, 1);
	holder_free(a);
	ck_assert_uint_eq(table.shares->nr_handles, 0);
}
END_TEST

/* ---- reference counts ------------------------------------------------------ */

START_TEST(test_refcount_lifetime)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	uint64_t free_frames = frame_nr_free(&mm.frames);
	struct grant *g = kmalloc_one(a, 1 * MiB, 0); /* a large block */
	uint8_t h[SHARE_HANDLE_SIZE];
	struct share_import_result r;
	struct domain *d = a->domain;

	memset(d->map + g->phys, 0x5a, 4096);
	export_ok(a, g, NULL, h);
	ck_assert_int_eq(import(b, h, false, &r), 0);
	grant_release(&table, g); /* the exporter frees */
	ck_assert_uint_eq(a->bytes, 0);
	ck_assert_uint_eq(d->large_pages, 256);
	ck_assert_uint_eq((uint8_t)d->map[r.phys + 100], 0x5a);
	check_domains();
	grant_release(&table, r.g); /* the last holder */
	ck_assert_uint_eq(d->large_pages, 0);
	ck_assert_uint_eq(b->account->bytes, 0);
	check_domains();
	holder_free(a);
	holder_free(b);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
}
END_TEST

START_TEST(test_slab_object_export)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	int idx = kms_class_index(256);
	struct share_export_args bad = { .offset = 100, .size = 256 },
				 obj = { .offset = 3 * 256, .size = 256 };
	uint8_t h[SHARE_HANDLE_SIZE];
	struct share_import_result r;
	struct kmem_cache *cache;
	const char *why;
	uint64_t share, phys;
	struct grant *g;

	ck_assert_int_eq(grant_slabs(&table, a, 256, 0, 1, &g), 0);
	phys = g->phys;
	cache = &a->domain->caches[idx];
	ck_assert_int_eq(share_export(table.shares, a, g->id, &bad, h, &share, &why), -EINVAL);
	ck_assert_int_eq(g->kind, GRANT_SLAB); /* nothing changed */
	export_ok(a, g, &obj, h);
	ck_assert_int_eq(import(b, h, false, &r), 0);
	ck_assert_int_eq(r.kind, SHARE_IMPORT_KMALLOC);
	ck_assert_uint_eq(r.phys, phys + 3 * 256);
	ck_assert_uint_eq(r.size, 256);
	grant_release(&table, g);		 /* the exporter gives its slab back */
	ck_assert_uint_eq(cache->nr_granted, 1); /* kept for the importer */
	grant_release(&table, r.g);
	ck_assert_uint_eq(cache->nr_granted, 0);
	check_domains();
	holder_free(a);
	holder_free(b);
}
END_TEST

/* ---- shareable allocations ------------------------------------------------ */

static void assert_rdonly_fd(int fd)
{
	void *p;

	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	p = mmap(NULL, KM_FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(p == MAP_FAILED);
	p = mmap(NULL, KM_FRAME_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert_int_ne(mprotect(p, KM_FRAME_SIZE, PROT_READ | PROT_WRITE), 0);
	munmap(p, KM_FRAME_SIZE);
}

START_TEST(test_shared_kmalloc)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_B);
	uint64_t free_frames = frame_nr_free(&mm.frames);
	struct grant *g = kmalloc_one(a, 100, KM_GFP_SHARED);
	struct share_import_result r, ro;
	uint8_t h[SHARE_HANDLE_SIZE];
	struct memobj *o;
	struct stat st;
	uint8_t *p, *q;
	uint32_t f;

	ck_assert_int_eq(g->kind, GRANT_MEMREF);
	o = g->ref->obj;
	ck_assert_int_eq(o->kind, MEMOBJ_MEMFD_KMALLOC);
	ck_assert_uint_eq(grant_bytes(g), KM_FRAME_SIZE);
	ck_assert_int_eq(fstat(o->memfd, &st), 0);
	ck_assert_uint_eq(st.st_size, KM_FRAME_SIZE);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	f = (uint32_t)(o->phys >> KM_FRAME_SHIFT);
	ck_assert_uint_eq(mm.frame_use[f], FRAME_USE_LARGE | FRAME_USE_SHARED);
	ck_assert_uint_eq(a->domain->share_frames, 1);
	check_domains();
	p = mmap(NULL, KM_FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, o->memfd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x77, 4096);
	/* another uid imports it: the memfd, never a domain's */
	export_ok(a, g, NULL, h);
	ck_assert_int_eq(import(b, h, false, &r), 0);
	ck_assert_int_eq(r.kind, SHARE_IMPORT_MEMFD);
	ck_assert_int_eq(r.fd, o->memfd);
	ck_assert_uint_eq(r.map_size, KM_FRAME_SIZE);
	ck_assert_uint_eq(r.nr_frames, 1);
	ck_assert_uint_eq(r.frames[0], f);
	ck_assert_int_eq(import(b, h, true, &ro), 0);
	ck_assert(ro.rdonly);
	ck_assert_int_ne(ro.fd, o->memfd);
	assert_rdonly_fd(ro.fd);
	q = mmap(NULL, KM_FRAME_SIZE, PROT_READ, MAP_SHARED, ro.fd, 0);
	ck_assert(q != MAP_FAILED);
	ck_assert_uint_eq(q[4095], 0x77);
	ck_assert_uint_eq(b->bytes, 2 * KM_FRAME_SIZE);
	grant_release(&table, g);
	check_domains();
	grant_release(&table, r.g);
	grant_release(&table, ro.g);
	/* gone: its pages were punched from under every mapping */
	ck_assert_uint_eq(q[4095], 0);
	munmap(p, KM_FRAME_SIZE);
	munmap(q, KM_FRAME_SIZE);
	ck_assert_uint_eq(a->domain->share_frames, 0);
	ck_assert_uint_eq(mm.frame_use[f], FRAME_USE_PAGES);
	check_domains();
	holder_free(a);
	holder_free(b);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
}
END_TEST

/* __GFP_ZERO on a shareable kmalloc is kept without clearing the frame in
 * the domain memfd first: the share memfd's pages are new ones. */
START_TEST(test_shared_kmalloc_zeroed)
{
	struct conn *a = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, KM_FRAME_SIZE, 0);
	uint64_t phys = g->phys;
	uint8_t *p;

	/* dirty a frame of the domain, then give it back */
	p = mmap(NULL, KM_FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, a->domain->memfd,
		 (off_t)phys);
	ck_assert(p != MAP_FAILED);
	memset(p, 0xa5, KM_FRAME_SIZE);
	munmap(p, KM_FRAME_SIZE);
	grant_release(&table, g);
	g = kmalloc_one(a, 100, KM_GFP_SHARED | KM___GFP_ZERO);
	p = mmap(NULL, KM_FRAME_SIZE, PROT_READ, MAP_SHARED, g->ref->obj->memfd, 0);
	ck_assert(p != MAP_FAILED);
	for (size_t i = 0; i < KM_FRAME_SIZE; i += 512)
		ck_assert_uint_eq(p[i], 0);
	munmap(p, KM_FRAME_SIZE);
	grant_release(&table, g);
	check_domains();
	holder_free(a);
}
END_TEST

START_TEST(test_shared_vmalloc)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_B);
	uint64_t free_frames = frame_nr_free(&mm.frames);
	struct share_export_args ro_only = { .flags = SHARE_EXPORT_RDONLY };
	struct share_import_result r;
	uint8_t h[SHARE_HANDLE_SIZE];
	struct grant *g;
	struct memobj *o;

	ck_assert_int_eq(
		grant_vmalloc(&table, a, 3 * KM_FRAME_SIZE - 5, KM_GFP_SHARED, 0x1000, "test", &g),
		0);
	ck_assert_int_eq(g->kind, GRANT_MEMREF);
	o = g->ref->obj;
	ck_assert_int_eq(o->kind, MEMOBJ_MEMFD_VMALLOC);
	ck_assert_uint_eq(o->nr_frames, 3);
	ck_assert_uint_eq(table.nr_areas, 1);
	ck_assert_uint_eq(a->domain->share_frames, 3);
	ck_assert_uint_eq(a->domain->vmalloc_frames, 3);
	check_domains();
	export_ok(a, g, &ro_only, h);
	ck_assert_int_eq(import(b, h, false, &r), 0); /* forced read-only */
	ck_assert(r.rdonly);
	ck_assert_int_eq(r.kind, SHARE_IMPORT_MEMFD);
	ck_assert_uint_eq(r.nr_frames, 3);
	ck_assert_uint_eq(grant_holders(r.g), 2);
	assert_rdonly_fd(r.fd);
	grant_release(&table, g);
	ck_assert_uint_eq(table.nr_areas, 1);
	ck_assert_ptr_eq(o->area->grant, r.g); /* vmallocinfo names the importer now */
	grant_release(&table, r.g);
	ck_assert_uint_eq(table.nr_areas, 0);
	check_domains();
	holder_free(a);
	holder_free(b);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), free_frames);
}
END_TEST

START_TEST(test_shared_alloc_refusals)
{
	struct conn *a = holder_new(UID_A);
	struct grant *g[2];

	ck_assert_int_eq(grant_kmalloc(&table, a, 100, KM_GFP_SHARED, 2, g), -EINVAL);
	ck_assert_int_eq(grant_kmalloc(&table, a, 5 * MiB, KM_GFP_SHARED, 1, g), -ENOMEM);
	ck_assert_uint_eq(a->grants.nr, 0);
	/* 4 MiB: two frames, one block */
	ck_assert_int_eq(grant_kmalloc(&table, a, 3 * MiB, KM_GFP_SHARED, 1, g), 0);
	ck_assert_uint_eq(g[0]->ref->obj->nr_frames, 2);
	ck_assert_uint_eq(a->domain->large_pages, 1024);
	check_domains();
	grant_release(&table, g[0]);
	ck_assert_uint_eq(a->domain->large_pages, 0);
	check_domains();
	holder_free(a);
}
END_TEST

START_TEST(test_import_quota)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_B);
	struct grant *g = kmalloc_one(a, 100, KM_GFP_SHARED);
	struct share_import_result r;
	uint8_t h[SHARE_HANDLE_SIZE];

	export_ok(a, g, NULL, h);
	b->limits.max_bytes = KM_FRAME_SIZE - 1;
	ck_assert_int_eq(import(b, h, false, &r), -EDQUOT);
	ck_assert_uint_eq(grant_holders(g), 1);
	holder_free(a);
	holder_free(b);
}
END_TEST

/* One memobj has at most 4096 holders, so that revoking them all is one
 * short turn of the event loop. */
START_TEST(test_holder_cap)
{
	struct conn *a = holder_new(UID_A), *b = holder_new(UID_A);
	struct grant *g = kmalloc_one(a, 64, 0);
	struct share_import_result r;
	struct share_revoked *ended;
	uint8_t h[SHARE_HANDLE_SIZE];
	const char *why;
	struct timespec t0, t1;
	size_t n, i;

	b->limits.max_grants = 1u << 20;
	export_ok(a, g, NULL, h);
	for (i = 1; i < 4096; i++)
		ck_assert_int_eq(import(b, h, false, &r), 0);
	ck_assert_uint_eq(grant_holders(g), 4096);
	ck_assert_int_eq(import(b, h, false, &r), -EDQUOT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(share_revoke(table.shares, a, h, SHARE_HANDLE_SIZE, &ended, &n, &why), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(ended);
	ck_assert_uint_eq(n, 4095);
	ck_assert_uint_eq(b->grants.nr, 0);
	ck_assert_uint_eq(grant_holders(g), 1);
	fprintf(stderr, "revoke of 4095 imports: %ld us\n",
		(long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
	holder_free(a);
	holder_free(b);
}
END_TEST

static Suite *share_suite(void)
{
	Suite *s = suite_create("share");
	TCase *tc = tcase_create("handles");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handle_refusals);
	tcase_add_test(tc, test_handle_restrictions);
	tcase_add_test(tc, test_handle_sweep_and_cap);
	tcase_add_test(tc, test_revoke);
	tcase_add_test(tc, test_holder_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("handle limits and sweep");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handle_limit);
	tcase_add_test(tc, test_handle_charge_outlives_exporter);
	tcase_add_test(tc, test_sweep_tick);
	tcase_add_test(tc, test_sweep_keeps_live);
	suite_add_tcase(s, tc);

	tc = tcase_create("refcounts");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_refcount_lifetime);
	tcase_add_test(tc, test_slab_object_export);
	suite_add_tcase(s, tc);

	tc = tcase_create("shareable");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_shared_kmalloc);
	tcase_add_test(tc, test_shared_kmalloc_zeroed);
	tcase_add_test(tc, test_shared_vmalloc);
	tcase_add_test(tc, test_shared_alloc_refusals);
	tcase_add_test(tc, test_import_quota);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(share_suite()) ? EXIT_FAILURE : EXIT_SUCCESS;
}
