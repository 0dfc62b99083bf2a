// SPDX-License-Identifier: MIT
/*
 * test-grant.c - the life of a grant through the grant module's API
 * (daemon/grant.c), over a real struct mm (a small shmem pool) and minimal
 * connections as holders: ids unique and never reused, lookup after the
 * table grows and after random releases, grants found only by their
 * holder; a bulk kmalloc all or nothing (a pool that runs dry midway leaks
 * nothing: the domain checks out, the counters are back); -EDQUOT past the
 * limits of the holder's uid, shared by its connections; what a grant
 * records and charges; release by kind; a departing holder's grants given
 * back in bounded steps; the emergency reserve for privileged holders
 * only; and a successor's restore over a fresh domain_adopt() of the same
 * owner[]: the same objects at the same phys, overlaps and ids already
 * taken refused without a trace, new ids above every restored one.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "gfp.h"
#include "grant.h"
#include "log.h"
#include "settings.h"
#include "sizes.h"
#include "testutil.h"

#define MiB	    (1ull << 20)
#define FRAME	    KM_FRAME_SIZE
#define POOL_SIZE   (32 * MiB) /* 16 frames */
#define POOL_FRAMES 16u

static struct mm mm;
static struct settings cfg;
static struct accounts accts;
static struct grant_table table;

/* ---- fixture and holders ------------------------------------------------- */

static void mm_setup(struct mm *m, uint64_t reserve)
{
	struct mm_options opt = { .pool_size = POOL_SIZE,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = reserve };

	ck_assert_int_eq(mm_init(m, &opt), 0);
	ck_assert_uint_eq(m->pool.nr_frames, POOL_FRAMES);
}

/* No reserve: an unprivileged holder may take every frame. */
static void setup(void)
{
	mm_setup(&mm, 0);
	settings_defaults(&cfg);
	accounts_init(&accts, &cfg, POOL_SIZE);
	ck_assert_int_eq(grant_table_init(&table), 0);
	ck_assert_uint_eq(table.count, 0);
}

static void teardown(void)
{
	ck_assert_uint_eq(table.count, 0);
	grant_table_fini(&table);
	mm_fini(&mm);
	accounts_fini(&accts);
	settings_fini(&cfg);
}

/* A connection as far as grants care: its list, account, limits (those of
 * its uid by the settings) and domain (a reference taken). */
static struct conn *holder_new(struct mm *m, struct accounts *a, uid_t uid)
{
	struct conn *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	TAILQ_INIT(&c->grants);
	c->fd = -1;
	c->state = CONN_READY;
	c->uid = uid;
	c->gid = uid;
	c->account = account_get(a, uid);
	ck_assert_ptr_nonnull(c->account);
	account_limits_for(a, uid, uid, NULL, 0, &c->limits);
	c->account->limits = c->limits;
	ck_assert_int_eq(domain_get(m, uid, &c->domain), 0);
	return c;
}

static void holder_free(struct accounts *a, struct conn *c)
{
	ck_assert(TAILQ_EMPTY(&c->grants));
	ck_assert_uint_eq(c->nr_grants, 0);
	ck_assert_uint_eq(c->bytes, 0);
	domain_put(c->domain);
	account_put(a, c->account);
	free(c);
}

/* Every grant on @c's list is @c's, found by its id, of @c's domain, and
 * the holder's counters are the sums of its list; the domain checks out. */
static void check_holder(const struct grant_table *t, const struct conn *c)
{
	const struct grant *g;
	uint64_t n = 0, bytes = 0;

	TAILQ_FOREACH(g, &c->grants, link) {
		ck_assert_ptr_eq(g->holder, c);
		ck_assert_ptr_eq(grant_held(t, c, g->id), g);
		ck_assert_ptr_eq(g->domain, c->domain);
		ck_assert_uint_ne(g->id, 0);
		n++;
		bytes += g->bytes;
	}
	ck_assert_uint_eq(c->nr_grants, n);
	ck_assert_uint_eq(c->bytes, bytes);
	ck_assert_int_eq(domain_check(c->domain), 0);
}

static void assert_account(const struct account *acct, uint64_t grants, uint64_t bytes)
{
	ck_assert_uint_eq(acct->grants, grants);
	ck_assert_uint_eq(acct->bytes, bytes);
}

/* Nothing of @d's memory is held: once its empty slabs are given back,
 * every page of its frames is free, and reclaim returns every frame. */
static void assert_domain_holds_nothing(struct mm *m, struct domain *d)
{
	ck_assert_int_eq(domain_check(d), 0);
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		ck_assert_uint_eq(d->caches[i].nr_active, 0);
	ck_assert_uint_eq(d->large_pages, 0);
	ck_assert_uint_eq(d->vmalloc_frames, 0);
	domain_shrink(d);
	ck_assert_uint_eq(d->slab_pages, 0);
	ck_assert_uint_eq(d->pages.free_units, (uint64_t)d->nr_frames * POOL_PAGES_PER_FRAME);
	mm_reclaim(m, false);
	ck_assert_uint_eq(d->nr_frames, 0);
	ck_assert_int_eq(domain_check(d), 0);
}

static void fill(struct domain *d, uint64_t phys, uint64_t len, int c)
{
	memset(d->map + phys, c, len);
}

static bool all_bytes(const struct domain *d, uint64_t phys, uint64_t len, uint8_t c)
{
	for (uint64_t i = 0; i < len; i++)
		if (d->map[phys + i] != c)
			return false;
	return true;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- ids ------------------------------------------------------------------ */

START_TEST(test_ids_unique_and_never_reused)
{
	enum { BULK = 50 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct grant *g, *out[BULK];
	uint64_t last = 0, ids[BULK];
	int i;

	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, &g), 0);
		ck_assert_uint_gt(g->id, last);
		ck_assert_int_eq(g->kind, GRANT_KMALLOC);
		ck_assert_ptr_eq(grant_held(&table, c, g->id), g);
		last = g->id;
		grant_release(&table, g);
		/* released ids are gone */
		ck_assert_ptr_null(grant_held(&table, c, last));
	}
	/* a bulk: distinct ids, all above every earlier one */
	ck_assert_int_eq(grant_kmalloc(&table, c, 100, KM_GFP_KERNEL, BULK, out), 0);
	for (i = 0; i < BULK; i++)
		ids[i] = out[i]->id;
	qsort(ids, BULK, sizeof(ids[0]), cmp_u64);
	ck_assert_uint_gt(ids[0], last);
	for (i = 1; i < BULK; i++)
		ck_assert_uint_gt(ids[i], ids[i - 1]);
	ck_assert_uint_eq(table.count, BULK);
	/* and another kind after it */
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, "x", &g), 0);
	ck_assert_uint_gt(g->id, ids[BULK - 1]);
	ck_assert_int_eq(g->kind, GRANT_VMALLOC);
	ck_assert_uint_eq(table.count, BULK + 1);
	ck_assert_ptr_null(grant_held(&table, c, 0));
	ck_assert_ptr_null(grant_held(&table, c, UINT64_MAX));
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));
	holder_free(&accts, c);
}
END_TEST

/* The table grows past its first buckets; lookups stay exact through
 * random releases from the middle of chains. */
START_TEST(test_find_after_growth_and_random_releases)
{
	enum { N = 5000 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct grant **all = calloc(N, sizeof(*all));
	uint64_t *ids = calloc(N, sizeof(*ids));
	bool *live = calloc(N, sizeof(*live));
	size_t i, alive = N;

	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(ids);
	ck_assert_ptr_nonnull(live);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, N, all), 0);
	for (i = 0; i < N; i++) {
		ids[i] = all[i]->id;
		live[i] = true;
	}
	ck_assert_uint_gt(table.nr_buckets, 1024);
	ck_assert_uint_eq(table.count, N);
	for (i = 0; i < N / 2; i++) {
		size_t k = test_rand_below(N);

		if (live[k]) {
			grant_release(&table, all[k]);
			live[k] = false;
			alive--;
		}
	}
	ck_assert_uint_eq(table.count, alive);
	ck_assert_uint_eq(c->nr_grants, alive);
	for (i = 0; i < N; i++) {
		struct grant *g = grant_held(&table, c, ids[i]);

		if (live[i])
			ck_assert_ptr_eq(g, all[i]);
		else
			ck_assert_ptr_null(g);
	}
	check_holder(&table, c);
	assert_account(c->account, alive, alive * 8);
	for (i = 0; i < N; i++)
		if (live[i])
			grant_release(&table, all[i]);
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, c->domain);
	holder_free(&accts, c);
	free(all);
	free(ids);
	free(live);
}
END_TEST

/* ---- holders ------------------------------------------------------------------ */

/* A grant is found for its holder only: not for another uid, not for
 * another connection of the same uid (which shares the account). */
START_TEST(test_held_by_holder_only)
{
	struct conn *a = holder_new(&mm, &accts, 1000);
	struct conn *a2 = holder_new(&mm, &accts, 1000);
	struct conn *b = holder_new(&mm, &accts, 1001);
	struct grant *ga[3], *ga2, *gb;

	ck_assert_ptr_eq(a->account, a2->account);
	ck_assert_ptr_eq(a->domain, a2->domain);
	ck_assert_ptr_ne(a->domain, b->domain);
	ck_assert_int_eq(grant_kmalloc(&table, a, 64, KM_GFP_KERNEL, 3, ga), 0);
	ck_assert_int_eq(grant_vmalloc(&table, a2, FRAME, KM_GFP_KERNEL, 0, "a2", &ga2), 0);
	ck_assert_int_eq(grant_kmalloc(&table, b, 64, KM_GFP_KERNEL, 1, &gb), 0);

	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(grant_held(&table, a, ga[i]->id), ga[i]);
		ck_assert_ptr_null(grant_held(&table, a2, ga[i]->id));
		ck_assert_ptr_null(grant_held(&table, b, ga[i]->id));
		ck_assert_ptr_eq(ga[i]->domain, a->domain);
	}
	ck_assert_ptr_eq(grant_held(&table, a2, ga2->id), ga2);
	ck_assert_ptr_null(grant_held(&table, a, ga2->id));
	ck_assert_ptr_eq(grant_held(&table, b, gb->id), gb);
	ck_assert_ptr_null(grant_held(&table, a, gb->id));
	ck_assert_ptr_eq(gb->domain, b->domain);
	/* b's object lies in b's frames */
	ck_assert_uint_eq(mm.frames.owner[gb->k.phys >> KM_FRAME_SHIFT], b->domain->id);
	ck_assert_uint_eq(mm.frames.owner[ga[0]->k.phys >> KM_FRAME_SHIFT], a->domain->id);

	ck_assert_uint_eq(a->nr_grants, 3);
	ck_assert_uint_eq(a->bytes, 3 * 64);
	ck_assert_uint_eq(a2->nr_grants, 1);
	ck_assert_uint_eq(a2->bytes, FRAME);
	assert_account(a->account, 4, 3 * 64 + FRAME);
	assert_account(b->account, 1, 64);
	check_holder(&table, a);
	check_holder(&table, a2);
	check_holder(&table, b);

	/* giving back one holder's grants leaves the others' */
	ck_assert(grant_release_some(&table, a, 0));
	ck_assert_uint_eq(table.count, 2);
	assert_account(a->account, 1, FRAME);
	ck_assert_ptr_eq(grant_held(&table, a2, ga2->id), ga2);
	ck_assert_ptr_eq(grant_held(&table, b, gb->id), gb);
	ck_assert(grant_release_some(&table, a2, 0));
	ck_assert(grant_release_some(&table, b, 0));
	assert_account(a->account, 0, 0);
	assert_account(b->account, 0, 0);
	holder_free(&accts, a);
	holder_free(&accts, a2);
	holder_free(&accts, b);
}
END_TEST

/* ---- kmalloc grants -------------------------------------------------------------- */

static const size_t grant_sizes[] = {
	1, 8, 9, 96, 100, 192, 1000, 4096, 4097, 8192, 8193, 20000, 65536, 2 * MiB, 4 * MiB,
};
#define NR_GRANT_SIZES (sizeof(grant_sizes) / sizeof(grant_sizes[0]))

/* What a kmalloc grant records and charges; __GFP_ZERO clears it. */
START_TEST(test_kmalloc_grant)
{
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct domain *d = c->domain;
	struct grant *g[NR_GRANT_SIZES], *z;
	uint64_t bytes = 0;

	for (size_t k = 0; k < NR_GRANT_SIZES; k++) {
		size_t size = grant_sizes[k];
		const struct grant *o;

		ck_assert_int_eq(
			grant_kmalloc(&table, c, size, KM_GFP_KERNEL | KM___GFP_NOWARN, 1, &g[k]),
			0);
		o = g[k];
		ck_assert_int_eq(o->kind, GRANT_KMALLOC);
		ck_assert_ptr_eq(o->holder, c);
		ck_assert_ptr_eq(o->domain, d);
		ck_assert_uint_eq(o->size, size);
		ck_assert_uint_eq(o->k.size, kms_size_roundup(size));
		ck_assert_uint_eq(o->bytes, o->k.size);
		/* the client's flags, without the daemon's own bit */
		ck_assert_uint_eq(o->gfp, KM_GFP_KERNEL | KM___GFP_NOWARN);
		ck_assert_int_eq(o->k.cache, kms_class_index(size));
		if (o->k.cache < 0)
			ck_assert_uint_eq(o->k.order, kms_get_order(size));
		ck_assert_uint_eq(mm.frames.owner[o->k.phys >> KM_FRAME_SHIFT], d->id);
		for (size_t j = 0; j < k; j++)
			ck_assert(!overlap(o->k.phys, o->k.size, g[j]->k.phys, g[j]->k.size));
		bytes += o->bytes;
		ck_assert_uint_eq(c->bytes, bytes);
		assert_account(c->account, k + 1, bytes);
		check_holder(&table, c);
		fill(d, o->k.phys, o->k.size, 0xa5);
	}
	ck_assert_uint_gt(d->slab_pages, 0);
	ck_assert_uint_gt(d->large_pages, 0);

	/* __GFP_ZERO over the same, dirty memory */
	for (size_t k = 0; k < NR_GRANT_SIZES; k++) {
		uint64_t phys = g[k]->k.phys;

		grant_release(&table, g[k]);
		ck_assert_int_eq(grant_kmalloc(&table, c, grant_sizes[k],
					       KM_GFP_KERNEL | KM___GFP_ZERO, 1, &z),
				 0);
		if (grant_sizes[k] < 2 * MiB) /* blocks below a frame are reused in place */
			ck_assert_uint_eq(z->k.phys, phys);
		ck_assert(all_bytes(d, z->k.phys, z->k.size, 0));
		ck_assert_uint_eq(z->gfp, KM_GFP_KERNEL | KM___GFP_ZERO);
		g[k] = z;
	}
	check_holder(&table, c);
	assert_account(c->account, NR_GRANT_SIZES, bytes);

	/* refused without a trace */
	ck_assert_int_eq(grant_kmalloc(&table, c, 0, KM_GFP_KERNEL, 1, &z), -EINVAL);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 0, &z), -EINVAL);
	ck_assert_int_eq(grant_kmalloc(&table, c, 4 * MiB + 1, KM_GFP_KERNEL, 1, &z), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&table, c, UINT64_MAX, KM_GFP_KERNEL, 1, &z), -ENOMEM);
	ck_assert_uint_eq(table.count, NR_GRANT_SIZES);
	assert_account(c->account, NR_GRANT_SIZES, bytes);
	check_holder(&table, c);

	ck_assert(grant_release_some(&table, c, 0));
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	holder_free(&accts, c);
}
END_TEST

/* A bulk is all or nothing: when the pool runs dry midway, every object
 * already taken goes back and nothing is linked or charged; grants held
 * before stay as they were. */
START_TEST(test_bulk_all_or_nothing)
{
	/* kmalloc-8k: 4 objects per 8-page slab, 4096 in the whole pool */
	enum { HELD = 10, FIT = 16 * 512 / 8 * 4 };
	struct conn *c = holder_new(&mm, &accts, 0); /* no quota in the way */
	struct domain *d = c->domain;
	struct grant **out = calloc(FIT + 1, sizeof(*out));
	struct grant *held[HELD], *g;
	uint64_t phys[HELD];

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, HELD, held), 0);
	for (int i = 0; i < HELD; i++)
		phys[i] = held[i]->k.phys;

	/* one more than fits, besides those held */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, FIT - HELD + 1, out),
			 -ENOMEM);
	ck_assert_uint_eq(table.count, HELD);
	ck_assert_uint_eq(c->nr_grants, HELD);
	assert_account(c->account, HELD, HELD * 8192);
	ck_assert_uint_eq(d->caches[KM_NR_KMALLOC_CLASSES - 1].nr_active, HELD);
	for (int i = 0; i < HELD; i++) {
		ck_assert_ptr_eq(grant_held(&table, c, held[i]->id), held[i]);
		ck_assert_uint_eq(held[i]->k.phys, phys[i]);
	}
	check_holder(&table, c);

	/* exactly what fits */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, FIT - HELD, out), 0);
	ck_assert_uint_eq(c->nr_grants, FIT);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, "", &g), -ENOMEM);
	assert_account(c->account, FIT, (uint64_t)FIT * 8192);
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));

	/* large blocks: the ninth 4 MiB block finds no frames */
	ck_assert_int_eq(grant_kmalloc(&table, c, 4 * MiB, KM_GFP_KERNEL, 9, out), -ENOMEM);
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	ck_assert_uint_eq(d->large_pages, 0);
	ck_assert_int_eq(domain_check(d), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 4 * MiB, KM_GFP_KERNEL, 8, out), 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames) + d->pages.nr_free[KM_FRAME_ORDER], 0);
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));

	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	holder_free(&accts, c);
	free(out);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------ */

START_TEST(test_quota)
{
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct conn *c2 = holder_new(&mm, &accts, 1000);
	struct conn *o = holder_new(&mm, &accts, 1001);
	struct domain *d = c->domain;
	struct grant *out[16], *g;

	/* the settings' defaults: half the pool, unprivileged */
	ck_assert(!c->limits.privileged);
	ck_assert_uint_eq(c->limits.max_bytes, POOL_SIZE / 2);
	ck_assert_int_eq(grant_vmalloc(&table, c, POOL_SIZE / 2, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, out), -EDQUOT);
	ck_assert_int_eq(grant_vmalloc(&table, c2, 1, KM_GFP_KERNEL, 0, "", out), -EDQUOT);
	/* another uid's account is its own */
	ck_assert_int_eq(grant_kmalloc(&table, o, 8, KM_GFP_KERNEL, 1, out), 0);
	grant_release(&table, out[0]);
	grant_release(&table, g);

	/* bytes: counted as ksize, the whole bulk before anything is taken */
	c->limits.max_bytes = 10 * 8192;
	c->limits.max_grants = ACCOUNT_UNLIMITED;
	assert_domain_holds_nothing(&mm, d);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8000, KM_GFP_KERNEL, 11, out), -EDQUOT);
	ck_assert_uint_eq(d->nr_frames, 0);
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8000, KM_GFP_KERNEL, 10, out), 0);
	assert_account(c->account, 10, 10 * 8192);
	ck_assert_int_eq(grant_kmalloc(&table, c, 1, KM_GFP_KERNEL, 1, &g), -EDQUOT);
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, "", &g), -EDQUOT);
	grant_release(&table, out[0]);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, 1, &out[0]), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 1, KM_GFP_KERNEL, 1, &g), -EDQUOT);
	assert_account(c->account, 10, 10 * 8192);
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));

	/* vmalloc: counted in whole frames */
	c->limits.max_bytes = 3 * FRAME;
	ck_assert_int_eq(grant_vmalloc(&table, c, 3 * FRAME + 1, KM_GFP_KERNEL, 0, "", &g),
			 -EDQUOT);
	ck_assert_int_eq(grant_vmalloc(&table, c, 2 * FRAME + 1, KM_GFP_KERNEL, 0, "", &g), 0);
	assert_account(c->account, 1, 3 * FRAME);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, out), -EDQUOT);
	grant_release(&table, g);
	/* a size past any limit (and the pool) is refused, nothing charged */
	ck_assert_int_lt(grant_vmalloc(&table, c, UINT64_MAX, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_int_lt(grant_vmalloc(&table, c, UINT64_MAX - FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	assert_account(c->account, 0, 0);
	ck_assert_uint_eq(table.count, 0);

	/* grants: the uid's count, shared by its connections */
	c->limits.max_bytes = ACCOUNT_UNLIMITED;
	c->limits.max_grants = 5;
	c2->limits = c->limits;
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, 6, out), -EDQUOT);
	ck_assert_uint_eq(table.count, 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, 3, out), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c2, 64, KM_GFP_KERNEL, 3, out + 3), -EDQUOT);
	ck_assert_int_eq(grant_kmalloc(&table, c2, 64, KM_GFP_KERNEL, 2, out + 3), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, 1, &g), -EDQUOT);
	ck_assert_int_eq(grant_vmalloc(&table, c2, 1, KM_GFP_KERNEL, 0, "", &g), -EDQUOT);
	ck_assert_int_eq(grant_kmalloc(&table, o, 64, KM_GFP_KERNEL, 6, out + 5), 0);
	assert_account(c->account, 5, 5 * 64);
	ck_assert_uint_eq(c->nr_grants + c2->nr_grants, 5);
	/* a release makes room for either connection */
	ck_assert(grant_release_some(&table, c2, 0));
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, 2, out + 3), 0);
	assert_account(c->account, 5, 5 * 64);
	check_holder(&table, c);
	check_holder(&table, c2);
	check_holder(&table, o);

	ck_assert(grant_release_some(&table, c, 0));
	ck_assert(grant_release_some(&table, o, 0));
	assert_account(c->account, 0, 0);
	assert_account(o->account, 0, 0);
	holder_free(&accts, c);
	holder_free(&accts, c2);
	holder_free(&accts, o);
}
END_TEST

/* The emergency reserve is for privileged holders: an unprivileged one
 * gets the ordinary watermark whatever its flags say. */
START_TEST(test_reserve_privileged_only)
{
	struct mm m;
	struct accounts a;
	struct grant_table t;
	struct conn *u, *p;
	struct grant *gu, *gp, *g;

	mm_setup(&m, 4 * FRAME); /* min 4: GFP_ATOMIC may go down to 1 */
	accounts_init(&a, &cfg, POOL_SIZE);
	ck_assert_int_eq(grant_table_init(&t), 0);
	u = holder_new(&m, &a, 1000);
	p = holder_new(&m, &a, 0);
	ck_assert(!u->limits.privileged);
	ck_assert(p->limits.privileged);
	u->limits.max_bytes = ACCOUNT_UNLIMITED;

	ck_assert_int_eq(grant_vmalloc(&t, u, 13 * FRAME, KM_GFP_ATOMIC, 0, "", &gu), -ENOMEM);
	assert_account(u->account, 0, 0);
	ck_assert_int_eq(grant_vmalloc(&t, u, 12 * FRAME, KM_GFP_ATOMIC, 0, "", &gu), 0);
	ck_assert_uint_eq(gu->gfp, KM_GFP_ATOMIC);
	ck_assert_uint_eq(frame_nr_free(&m.frames), 4);
	grant_release(&t, gu);

	ck_assert_int_eq(grant_vmalloc(&t, p, 14 * FRAME, KM_GFP_ATOMIC, 0, "", &gp), 0);
	ck_assert_uint_eq(gp->gfp, KM_GFP_ATOMIC);
	ck_assert_uint_eq(frame_nr_free(&m.frames), 2);
	ck_assert_int_eq(grant_kmalloc(&t, u, 8, KM_GFP_ATOMIC, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, u, 8, KM_GFP_KERNEL | KM___GFP_HIGH, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, p, 8, KM_GFP_KERNEL, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, p, 8, KM_GFP_ATOMIC, 1, &g), 0);
	ck_assert_uint_eq(g->gfp, KM_GFP_ATOMIC);
	ck_assert_uint_eq(frame_nr_free(&m.frames), 1);
	check_holder(&t, u);
	check_holder(&t, p);

	ck_assert(grant_release_some(&t, p, 0));
	ck_assert(grant_release_some(&t, u, 0));
	holder_free(&a, u);
	holder_free(&a, p);
	ck_assert_uint_eq(frame_nr_free(&m.frames), POOL_FRAMES);
	grant_table_fini(&t);
	mm_fini(&m);
	accounts_fini(&a);
}
END_TEST

/* ---- vmalloc grants ------------------------------------------------------------------ */

START_TEST(test_vmalloc_grant)
{
	static const char long_caller[] = "a_function_with_a_very_long_name_that_goes_on_and_on"
					  "_and_on+0x1234/0x5678";
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct domain *d = c->domain;
	struct grant *g, *g2, *x;

	ck_assert_int_eq(grant_vmalloc(&table, c, 2 * FRAME + 1, KM_GFP_KERNEL, 0x7f0012340000ull,
				       "probe+0x10/0x20", &g),
			 0);
	ck_assert_int_eq(g->kind, GRANT_VMALLOC);
	ck_assert_ptr_eq(g->domain, d);
	ck_assert_uint_eq(g->size, 2 * FRAME + 1);
	ck_assert_uint_eq(g->v.nr_frames, 3);
	ck_assert_uint_eq(g->bytes, 3 * FRAME);
	ck_assert_uint_eq(g->gfp, KM_GFP_KERNEL);
	ck_assert_uint_eq(g->v.vaddr, 0x7f0012340000ull);
	ck_assert_str_eq(g->v.caller, "probe+0x10/0x20");
	for (uint32_t i = 0; i < g->v.nr_frames; i++) {
		ck_assert_uint_lt(g->v.frames[i], POOL_FRAMES);
		ck_assert_uint_eq(mm.frames.owner[g->v.frames[i]], d->id);
		for (uint32_t j = 0; j < i; j++)
			ck_assert_uint_ne(g->v.frames[i], g->v.frames[j]);
	}
	ck_assert_uint_eq(d->vmalloc_frames, 3);
	assert_account(c->account, 1, 3 * FRAME);

	/* the caller label: cut to fit, or empty */
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, long_caller, &g2), 0);
	ck_assert_uint_eq(strlen(g2->v.caller), GRANT_CALLER_LEN - 1);
	ck_assert_int_eq(strncmp(g2->v.caller, long_caller, GRANT_CALLER_LEN - 1), 0);
	ck_assert_uint_eq(g2->v.nr_frames, 1);
	grant_release(&table, g2);
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, NULL, &g2), 0);
	ck_assert_str_eq(g2->v.caller, "");
	grant_release(&table, g2);

	/* refused without a trace: size 0, more than the pool, more than is free */
	ck_assert_int_eq(grant_vmalloc(&table, c, 0, KM_GFP_KERNEL, 0, "", &x), -EINVAL);
	c->limits.max_bytes = ACCOUNT_UNLIMITED;
	ck_assert_int_eq(grant_vmalloc(&table, c, POOL_SIZE + 1, KM_GFP_KERNEL, 0, "", &x),
			 -ENOMEM);
	ck_assert_int_eq(grant_vmalloc(&table, c, POOL_SIZE - 2 * FRAME, KM_GFP_KERNEL, 0, "", &x),
			 -ENOMEM);
	ck_assert_uint_eq(table.count, 1);
	assert_account(c->account, 1, 3 * FRAME);
	ck_assert_uint_eq(d->vmalloc_frames, 3);
	check_holder(&table, c);
	/* what is left fits exactly */
	ck_assert_int_eq(grant_vmalloc(&table, c, POOL_SIZE - 3 * FRAME, KM_GFP_KERNEL, 0, "", &x),
			 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 0);
	check_holder(&table, c);

	ck_assert(grant_release_some(&table, c, 0));
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	holder_free(&accts, c);
}
END_TEST

/* ---- giving back ------------------------------------------------------------------------ */

/* grant_release() gives each kind's memory back to where it came from. */
START_TEST(test_release_by_kind)
{
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct domain *d = c->domain;
	struct grant *small, *large, *frame2, *frame4, *area;
	uint64_t id;
	int cls = kms_class_index(96);

	ck_assert_int_eq(grant_kmalloc(&table, c, 96, KM_GFP_KERNEL, 1, &small), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 16384, KM_GFP_KERNEL, 1, &large), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 2 * MiB, KM_GFP_KERNEL, 1, &frame2), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 3 * MiB, KM_GFP_KERNEL, 1, &frame4), 0);
	ck_assert_int_eq(grant_vmalloc(&table, c, FRAME + 1, KM_GFP_KERNEL, 0, "", &area), 0);
	ck_assert_uint_eq(d->caches[cls].nr_active, 1);
	ck_assert_uint_eq(d->large_pages, 4 + 512 + 1024);
	ck_assert_uint_eq(d->vmalloc_frames, 2);
	assert_account(c->account, 5, 96 + 16384 + 2 * MiB + 4 * MiB + 2 * FRAME);

	id = small->id;
	grant_release(&table, small);
	ck_assert_ptr_null(grant_held(&table, c, id));
	ck_assert_uint_eq(d->caches[cls].nr_active, 0);
	assert_account(c->account, 4, 16384 + 2 * MiB + 4 * MiB + 2 * FRAME);
	check_holder(&table, c);

	id = frame4->id;
	grant_release(&table, frame4);
	ck_assert_ptr_null(grant_held(&table, c, id));
	ck_assert_uint_eq(d->large_pages, 4 + 512);
	assert_account(c->account, 3, 16384 + 2 * MiB + 2 * FRAME);
	check_holder(&table, c);

	id = area->id;
	grant_release(&table, area);
	ck_assert_ptr_null(grant_held(&table, c, id));
	ck_assert_uint_eq(d->vmalloc_frames, 0);
	assert_account(c->account, 2, 16384 + 2 * MiB);
	check_holder(&table, c);

	grant_release(&table, large);
	ck_assert_uint_eq(d->large_pages, 512);
	grant_release(&table, frame2);
	ck_assert_uint_eq(d->large_pages, 0);
	ck_assert(TAILQ_EMPTY(&c->grants));
	assert_account(c->account, 0, 0);
	ck_assert_uint_eq(table.count, 0);
	assert_domain_holds_nothing(&mm, d);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), POOL_FRAMES);
	holder_free(&accts, c);
}
END_TEST

/* A departing holder's grants go back in bounded steps: a tiny budget
 * stops early (false), later calls finish (true), nothing is left. */
START_TEST(test_release_some)
{
	enum { BULK = 2000 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct domain *d = c->domain;
	struct grant **out = calloc(BULK, sizeof(*out)), *g;
	uint64_t left, calls = 1;

	ck_assert_ptr_nonnull(out);
	ck_assert(grant_release_some(&table, c, 1)); /* nothing held */
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, BULK, out), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 20000, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 4 * MiB, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_int_eq(grant_vmalloc(&table, c, 2 * FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	left = c->nr_grants;
	ck_assert_uint_eq(left, BULK + 3);

	ck_assert(!grant_release_some(&table, c, 1));
	ck_assert_uint_lt(c->nr_grants, left);
	ck_assert_uint_gt(c->nr_grants, 0);
	check_holder(&table, c);
	ck_assert_uint_eq(table.count, c->nr_grants);
	assert_account(c->account, c->nr_grants, c->bytes);
	left = c->nr_grants;
	while (!grant_release_some(&table, c, 1)) {
		ck_assert_uint_lt(c->nr_grants, left);
		left = c->nr_grants;
		check_holder(&table, c);
		calls++;
	}
	ck_assert_uint_gt(calls, 1);
	ck_assert(TAILQ_EMPTY(&c->grants));
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);

	/* no budget: everything at once */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, BULK, out), 0);
	ck_assert(grant_release_some(&table, c, 0));
	ck_assert(TAILQ_EMPTY(&c->grants));
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	holder_free(&accts, c);
	free(out);
}
END_TEST

/* ---- a successor's restore ------------------------------------------------------------ */

struct saved_grant {
	uint64_t id;
	enum grant_kind kind;
	struct kmalloc_obj k;
	uint64_t size, bytes, vaddr;
	unsigned int gfp;
	uint32_t *frames, nr_frames;
	char caller[GRANT_CALLER_LEN];
	uint8_t pattern;
};

/* A second struct mm over the same memory, as a successor daemon makes it
 * from the reserve memfd and owner[] of @a. */
static void mm_successor(struct mm *b, const struct mm *a)
{
	struct mm_options opt = { .pool_size = a->pool.size,
				  .backing = POOL_BACKING_SHMEM,
				  .reserve = 0 };
	int fd = dup(a->pool.reserve_fd);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mm_adopt(b, &opt, fd, a->pool.size, false, a->frames.owner), 0);
	for (uint32_t f = 0; f < a->pool.nr_frames; f++)
		ck_assert_uint_eq(b->frames.owner[f], a->frames.owner[f]);
}

static int restore(struct grant_table *t, struct conn *c, const struct saved_grant *s, uint64_t id)
{
	if (s->kind == GRANT_VMALLOC)
		return grant_restore_vmalloc(t, c, id, s->frames, s->nr_frames, s->size, s->gfp,
					     s->vaddr, s->caller);
	return grant_restore_kmalloc(t, c, id, &s->k, s->size, s->gfp);
}

/* What a refused restore must leave as it was. */
struct restore_state {
	uint64_t count, nr_grants, bytes, acct_grants, acct_bytes;
	uint64_t free_pages, slab_pages, large_pages, vmalloc_frames;
};

static void snapshot(const struct grant_table *t, const struct conn *c, struct restore_state *st)
{
	*st = (struct restore_state){ t->count,
				      c->nr_grants,
				      c->bytes,
				      c->account->grants,
				      c->account->bytes,
				      c->domain->pages.free_units,
				      c->domain->slab_pages,
				      c->domain->large_pages,
				      c->domain->vmalloc_frames };
}

static void assert_unchanged(const struct grant_table *t, const struct conn *c,
			     const struct restore_state *before)
{
	struct restore_state now;

	snapshot(t, c, &now);
	ck_assert_mem_eq(&now, before, sizeof(now));
	check_holder(t, c);
}

static const size_t restore_sizes[] = {
	96, 96, 96, 96, 96, 96, 8, 3000, 3000, 3000, 8192, 20000, 2 * MiB, 4 * MiB,
};
#define NR_RESTORE_K (sizeof(restore_sizes) / sizeof(restore_sizes[0]))
#define NR_RESTORE   (NR_RESTORE_K + 2)

/*
 * Grants of a predecessor remade by a successor: a second mm over the
 * reserve memfd and owner[] of the first, the domain adopted with its
 * memfd (every frame it owns free), each grant restored with its id. The
 * objects are the same (phys, class, order, frames, bytes in memory), the
 * counts are the predecessor's, and holes the predecessor had freed stay
 * free. Overlaps, memory not the domain's and ids already taken are
 * refused (-EUCLEAN) and change nothing; new ids come after every restored
 * one.
 */
START_TEST(test_restore)
{
	static const char caller[] = "kmtest_probe+0x1c/0x40 [kmtest]";
	struct saved_grant saved[NR_RESTORE], hole, spare;
	struct grant *out[NR_RESTORE_K], *g, *x;
	struct conn *ca = holder_new(&mm, &accts, 1000), *cb, nodomain;
	struct domain *da = ca->domain, *nd;
	struct restore_state before;
	struct accounts acb;
	struct grant_table tb;
	uint64_t max_id = 0;
	uint32_t spare_frame, foreign_frame = UINT32_MAX;
	struct mm b;
	size_t i;

	/* the predecessor's grants, with bytes to recognise them by */
	ca->limits.max_bytes = ACCOUNT_UNLIMITED;
	for (i = 0; i < NR_RESTORE_K; i++) {
		ck_assert_int_eq(grant_kmalloc(&table, ca, restore_sizes[i],
					       i % 2 ? KM_GFP_KERNEL : KM_GFP_ATOMIC, 1, &out[i]),
				 0);
		fill(da, out[i]->k.phys, out[i]->k.size, (int)(0x30 + i));
	}
	ck_assert_int_eq(grant_vmalloc(&table, ca, 2 * FRAME + 5, KM_GFP_KERNEL, 0x7f0000200000ull,
				       caller, &g),
			 0);
	ck_assert_int_eq(grant_vmalloc(&table, ca, FRAME, KM_GFP_KERNEL | KM___GFP_ZERO,
				       0x7f0000800000ull, "", &x),
			 0);
	/* a hole in a slab, and a frame the domain keeps free */
	hole = (struct saved_grant){ .kind = GRANT_KMALLOC, .k = out[2]->k, .size = 96 };
	grant_release(&table, out[2]);
	ck_assert_int_eq(grant_vmalloc(&table, ca, 1, KM_GFP_KERNEL, 0, "", &x), 0);
	spare_frame = x->v.frames[0];
	grant_release(&table, x);
	ck_assert(buddy_is_free_block(&da->pages, spare_frame << KM_FRAME_ORDER, KM_FRAME_ORDER));
	for (uint32_t f = 0; f < POOL_FRAMES; f++)
		if (mm.frames.owner[f] == FRAME_OWNER_NONE)
			foreign_frame = f;
	ck_assert_uint_ne(foreign_frame, UINT32_MAX);
	check_holder(&table, ca);

	/* what the handover records */
	memset(saved, 0, sizeof(saved));
	i = 0;
	TAILQ_FOREACH(x, &ca->grants, link) {
		struct saved_grant *s = &saved[i++];

		s->id = x->id;
		s->kind = x->kind;
		s->size = x->size;
		s->bytes = x->bytes;
		s->gfp = x->gfp;
		if (x->kind == GRANT_KMALLOC) {
			s->k = x->k;
			s->pattern = da->map[x->k.phys];
		} else {
			s->nr_frames = x->v.nr_frames;
			s->frames = malloc(x->v.nr_frames * sizeof(uint32_t));
			ck_assert_ptr_nonnull(s->frames);
			memcpy(s->frames, x->v.frames, x->v.nr_frames * sizeof(uint32_t));
			s->vaddr = x->v.vaddr;
			memcpy(s->caller, x->v.caller, sizeof(s->caller));
		}
		if (x->id > max_id)
			max_id = x->id;
	}
	ck_assert_uint_eq(i, NR_RESTORE - 1); /* one kmalloc was given back */

	/* the successor */
	mm_successor(&b, &mm);
	accounts_init(&acb, &cfg, POOL_SIZE);
	ck_assert_int_eq(grant_table_init(&tb), 0);
	ck_assert_int_eq(domain_adopt(&b, da->id, 1000, dup(da->memfd), &nd), 0);
	cb = calloc(1, sizeof(*cb));
	ck_assert_ptr_nonnull(cb);
	TAILQ_INIT(&cb->grants);
	cb->uid = 1000;
	cb->account = account_get(&acb, 1000);
	ck_assert_ptr_nonnull(cb->account);
	account_limits_for(&acb, 1000, 1000, NULL, 0, &cb->limits);
	cb->limits.max_bytes = ACCOUNT_UNLIMITED; /* as the predecessor's */
	cb->domain = nd;
	nd->refs++; /* as restore_conns() does */
	ck_assert_uint_eq(nd->pages.free_units, (uint64_t)nd->nr_frames * POOL_PAGES_PER_FRAME);

	/* no domain, no id, no frames */
	nodomain = *cb;
	nodomain.domain = NULL;
	TAILQ_INIT(&nodomain.grants);
	snapshot(&tb, cb, &before);
	ck_assert_int_eq(restore(&tb, &nodomain, &saved[0], saved[0].id), -EUCLEAN);
	ck_assert_int_eq(
		grant_restore_vmalloc(&tb, &nodomain, max_id + 1, &spare_frame, 1, FRAME, 0, 0, ""),
		-EUCLEAN);
	ck_assert_int_eq(restore(&tb, cb, &saved[0], 0), -EUCLEAN);
	ck_assert_int_eq(
		grant_restore_vmalloc(&tb, cb, max_id + 1, &spare_frame, 0, FRAME, 0, 0, ""),
		-EUCLEAN);
	assert_unchanged(&tb, cb, &before);

	/* every grant, in the reverse order */
	for (i = NR_RESTORE - 1; i-- > 0;)
		ck_assert_msg(restore(&tb, cb, &saved[i], saved[i].id) == 0,
			      "grant %" PRIu64 " (%s)", saved[i].id,
			      grant_kind_names[saved[i].kind]);
	for (i = 0; i < NR_RESTORE - 1; i++) {
		const struct saved_grant *s = &saved[i];

		x = grant_held(&tb, cb, s->id);
		ck_assert_ptr_nonnull(x);
		ck_assert_int_eq(x->kind, s->kind);
		ck_assert_ptr_eq(x->domain, nd);
		ck_assert_uint_eq(x->size, s->size);
		ck_assert_uint_eq(x->bytes, s->bytes);
		ck_assert_uint_eq(x->gfp, s->gfp);
		if (s->kind == GRANT_KMALLOC) {
			ck_assert_uint_eq(x->k.phys, s->k.phys);
			ck_assert_uint_eq(x->k.size, s->k.size);
			ck_assert_uint_eq(x->k.order, s->k.order);
			ck_assert_int_eq(x->k.cache, s->k.cache);
			ck_assert(all_bytes(nd, s->k.phys, s->k.size, s->pattern));
		} else {
			ck_assert_uint_eq(x->v.nr_frames, s->nr_frames);
			ck_assert_mem_eq(x->v.frames, s->frames, s->nr_frames * sizeof(uint32_t));
			ck_assert_ptr_ne(x->v.frames, s->frames);
			ck_assert_uint_eq(x->v.vaddr, s->vaddr);
			ck_assert_str_eq(x->v.caller, s->caller);
		}
	}
	ck_assert_uint_eq(tb.count, NR_RESTORE - 1);
	ck_assert_uint_eq(cb->nr_grants, ca->nr_grants);
	ck_assert_uint_eq(cb->bytes, ca->bytes);
	assert_account(cb->account, ca->account->grants, ca->account->bytes);
	ck_assert_uint_eq(nd->slab_pages, da->slab_pages);
	ck_assert_uint_eq(nd->large_pages, da->large_pages);
	ck_assert_uint_eq(nd->vmalloc_frames, da->vmalloc_frames);
	ck_assert_uint_eq(nd->pages.free_units, da->pages.free_units);
	for (int k = 0; k < KM_NR_KMALLOC_CLASSES; k++) {
		ck_assert_uint_eq(nd->caches[k].nr_slabs, da->caches[k].nr_slabs);
		ck_assert_uint_eq(nd->caches[k].nr_active, da->caches[k].nr_active);
	}
	check_holder(&tb, cb);

	/* refused, and nothing changes: ids taken (over free memory) ... */
	snapshot(&tb, cb, &before);
	ck_assert_int_eq(restore(&tb, cb, &hole, saved[0].id), -EUCLEAN);
	spare = (struct saved_grant){
		.kind = GRANT_VMALLOC, .size = FRAME, .frames = &spare_frame, .nr_frames = 1
	};
	ck_assert_int_eq(restore(&tb, cb, &spare, saved[1].id), -EUCLEAN);
	/* ... memory taken already, by the same or another grant ... */
	for (i = 0; i < NR_RESTORE - 1; i++)
		ck_assert_int_eq(restore(&tb, cb, &saved[i], max_id + 1 + i), -EUCLEAN);
	{
		const struct saved_grant *v = NULL, *big = NULL, *slab = NULL;
		struct saved_grant s;
		uint32_t two[2];

		for (i = 0; i < NR_RESTORE - 1; i++) {
			if (saved[i].kind == GRANT_VMALLOC)
				v = &saved[i];
			else if (saved[i].k.order == 10)
				big = &saved[i];
			else if (saved[i].k.cache == kms_class_index(3000))
				slab = &saved[i];
		}
		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(big);
		ck_assert_ptr_nonnull(slab);
		two[0] = spare_frame;  /* free */
		two[1] = v->frames[0]; /* an area's */
		s = (struct saved_grant){
			.kind = GRANT_VMALLOC, .size = 2 * FRAME, .frames = two, .nr_frames = 2
		};
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		two[1] = (uint32_t)(big->k.phys >> KM_FRAME_SHIFT) + 1; /* a 4 MiB block's */
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		two[1] = spare_frame; /* itself twice */
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		/* a page of a kmalloc-4k slab, as a large block and as another
		 * class's object */
		s = (struct saved_grant){ .kind = GRANT_KMALLOC,
					  .size = 4096,
					  .k = { .phys = slab->k.phys & ~4095ull,
						 .size = 4096,
						 .order = 0,
						 .cache = -1 } };
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k.cache = kms_class_index(64);
		s.k.size = 64;
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		/* ... and memory that is not the domain's */
		two[0] = foreign_frame;
		s = (struct saved_grant){
			.kind = GRANT_VMALLOC, .size = FRAME, .frames = two, .nr_frames = 1
		};
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s = (struct saved_grant){ .kind = GRANT_KMALLOC,
					  .size = 8,
					  .k = { .phys = (uint64_t)foreign_frame * FRAME,
						 .size = 8,
						 .order = 0,
						 .cache = 0 } };
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
	}
	assert_unchanged(&tb, cb, &before);
	/* the refusals took nothing: the free memory restores under new ids */
	ck_assert_int_eq(restore(&tb, cb, &hole, max_id + 1000), 0);
	ck_assert_int_eq(restore(&tb, cb, &spare, max_id + 1001), 0);
	check_holder(&tb, cb);

	/* new ids come after every restored one; new memory goes around it */
	ck_assert_int_eq(grant_kmalloc(&tb, cb, 96, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_uint_gt(g->id, max_id + 1001);
	for (i = 0; i < NR_RESTORE - 1; i++)
		if (saved[i].kind == GRANT_KMALLOC)
			ck_assert(!overlap(g->k.phys, g->k.size, saved[i].k.phys, saved[i].k.size));
	ck_assert(!overlap(g->k.phys, g->k.size, hole.k.phys, hole.k.size));
	ck_assert_int_eq(grant_vmalloc(&tb, cb, FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_uint_gt(g->id, max_id + 1001);
	ck_assert_uint_eq(b.frames.owner[g->v.frames[0]], nd->id);
	for (i = 0; i < NR_RESTORE - 1; i++)
		for (uint32_t f = 0; saved[i].kind == GRANT_VMALLOC && f < saved[i].nr_frames; f++)
			ck_assert_uint_ne(g->v.frames[0], saved[i].frames[f]);
	ck_assert_uint_ne(g->v.frames[0], spare_frame);
	check_holder(&tb, cb);

	/* the successor gives everything back */
	ck_assert(grant_release_some(&tb, cb, 0));
	assert_account(cb->account, 0, 0);
	ck_assert_uint_eq(tb.count, 0);
	assert_domain_holds_nothing(&b, nd);
	domain_put(nd);
	ck_assert_uint_eq(b.nr_domains, 0);
	ck_assert_uint_eq(frame_nr_free(&b.frames), POOL_FRAMES);
	account_put(&acb, cb->account);
	free(cb);
	grant_table_fini(&tb);
	mm_fini(&b);
	accounts_fini(&acb);

	/* and so does the predecessor, whose state the restore never touched */
	ck_assert_uint_eq(ca->nr_grants, NR_RESTORE - 1);
	check_holder(&table, ca);
	ck_assert(grant_release_some(&table, ca, 0));
	holder_free(&accts, ca);
	for (i = 0; i < NR_RESTORE; i++)
		free(saved[i].frames);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

int main(void)
{
	Suite *s = suite_create("grant");
	TCase *tc;
	int failed;

	log_init(LOG_LEVEL_WARN);
	printf("test-grant: KM_TEST_SEED=%" PRIu64 "\n", test_seed());
	fflush(stdout);

	tc = tcase_create("ids");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ids_unique_and_never_reused);
	tcase_add_test(tc, test_find_after_growth_and_random_releases);
	tcase_add_test(tc, test_held_by_holder_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("grants");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kmalloc_grant);
	tcase_add_test(tc, test_bulk_all_or_nothing);
	tcase_add_test(tc, test_vmalloc_grant);
	tcase_add_test(tc, test_quota);
	tcase_add_test(tc, test_reserve_privileged_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("release");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_release_by_kind);
	tcase_add_test(tc, test_release_some);
	suite_add_tcase(s, tc);

	tc = tcase_create("restore");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_restore);
	suite_add_tcase(s, tc);

	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
