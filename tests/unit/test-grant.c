// SPDX-License-Identifier: MIT
/*
 * test-grant.c - the life of a grant through the grant module's API
 * (daemon/grant.c), over a real struct mm (a small shmem pool) and minimal
 * connections as holders: ids unique and never reused (generation << 32 |
 * slot, freed slots reused oldest first one generation up, stale and
 * forged ids finding nothing), lookup after the table grows and after
 * random releases, grants that never move while the table grows past
 * 100000, grants found only by their holder; a bulk kmalloc all or nothing (a pool that runs dry
 * midway leaks nothing: the domain checks out, the counters are back); -EDQUOT past the limits of
 * the holder's uid, shared by its connections; what a grant records and charges; slab grants (whole
 * slabs, every object counted in use, their holder's alone, given back whole); vmalloc grants in
 * runs of frames; release by kind; a departing holder's grants given back in bounded steps; the
 * emergency reserve for privileged holders only; and a successor's restore over a fresh
 * domain_adopt() of the same owner[]: the same objects at the same phys, overlaps and ids already
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
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "gfp.h"
#include "grant.h"
#include "inspect.h"
#include "log.h"
#include "settings.h"
#include "sizes.h"
#include "slab.h"
#include "testutil.h"
#include "vmalloc.h"

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
	ck_assert_uint_eq(table.nr_areas, 0);
	ck_assert(TAILQ_EMPTY(&table.areas));
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
	grant_set_init(&c->grants);
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
	ck_assert_uint_eq(c->grants.nr, 0);
	ck_assert_uint_eq(c->bytes, 0);
	grant_set_fini(&c->grants);
	domain_put(c->domain);
	/* A domain nobody holds goes in bounded turns (mm_trim()): all of
	 * them here, as the daemon's loop would run them. */
	if (c->domain)
		while (mm_trim(c->domain->mm, 0))
			;
	account_put(a, c->account);
	free(c);
}

#define ID_SLOT(id) ((uint32_t)(id))
#define ID_GEN(id)  ((uint32_t)((id) >> 32))

/* The table's slot @slot, where the grant of any id with that slot lives. */
static struct grant *slot_addr(const struct grant_table *t, uint32_t slot)
{
	ck_assert_uint_lt(slot, t->nr_slots);
	ck_assert_uint_lt(slot >> GRANT_CHUNK_SHIFT, t->nr_chunks);
	return &t->chunks[slot >> GRANT_CHUNK_SHIFT][slot & ((1u << GRANT_CHUNK_SHIFT) - 1)];
}

/* The table's list of granted areas (vmallocinfo's rows) is exactly its
 * live vmalloc grants' areas. */
static void check_areas(const struct grant_table *t)
{
	const struct vmalloc_area *a;
	uint32_t n = 0;

	TAILQ_FOREACH(a, &t->areas, link) {
		ck_assert_ptr_nonnull(a->grant);
		ck_assert_int_eq(a->grant->kind, GRANT_VMALLOC);
		ck_assert_ptr_eq(a->grant->area, a);
		ck_assert_ptr_eq(grant_find(t, a->grant->id), a->grant);
		n++;
	}
	ck_assert_uint_eq(n, t->nr_areas);
}

/* Every grant in @c's set is @c's, at its position, in its slot, found by
 * its id, of @c's domain, and the holder's counters are the sums of its
 * set; the domain checks out. */
static void check_holder(const struct grant_table *t, const struct conn *c)
{
	uint64_t bytes = 0;

	ck_assert_uint_le(c->grants.nr, c->grants.cap);
	for (uint32_t i = 0; i < c->grants.nr; i++) {
		const struct grant *g = grant_set_at(&c->grants, i);

		ck_assert_ptr_eq(g->holder, c);
		ck_assert_uint_eq(g->pos, i);
		ck_assert_ptr_eq(grant_held(t, c, g->id), g);
		ck_assert_ptr_eq(grant_find(t, g->id), g);
		ck_assert_ptr_eq(slot_addr(t, ID_SLOT(g->id)), g);
		ck_assert_ptr_eq(grant_domain(g), c->domain);
		ck_assert_uint_ne(ID_GEN(g->id), 0);
		ck_assert_uint_le(ID_GEN(g->id), t->max_gen);
		ck_assert_uint_lt(g->kind, GRANT_KIND_MAX);
		if (g->kind == GRANT_VMALLOC)
			ck_assert_ptr_eq(g->area->grant, g);
		bytes += grant_bytes(g);
	}
	ck_assert_uint_eq(c->bytes, bytes);
	ck_assert_int_eq(domain_check(c->domain), 0);
	check_areas(t);
}

/* True when frame @f lies in a free block of @d's free frames. */
static bool frame_free_in(const struct domain *d, uint32_t f)
{
	for (unsigned int o = 0; o <= d->frames.max_order; o++)
		if (buddy_is_free_block(&d->frames, f & ~((1u << o) - 1), o))
			return true;
	return false;
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
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		ck_assert_uint_eq(d->caches[i].nr_granted, 0);
	domain_shrink(d);
	ck_assert_uint_eq(d->slab_pages, 0);
	/* every frame wholly free, so among the domain's free frames */
	ck_assert_uint_eq(d->pages.free_units, 0);
	ck_assert_uint_eq(d->frames.free_units, d->nr_frames);
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

/* True when @id is among the @n sorted ids of @seen. */
static bool seen_id(const uint64_t *seen, size_t n, uint64_t id)
{
	return bsearch(&id, seen, n, sizeof(*seen), cmp_u64) != NULL;
}

/* Ids are unique and never come back: every id handed out (one grant made
 * and given back 100 times, a bulk, another kind) differs from every id
 * handed out before, released ids are gone, 0 and UINT64_MAX name
 * nothing. */
START_TEST(test_ids_unique_and_never_reused)
{
	enum { BULK = 50, ONE_BY_ONE = 100 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct grant *g, *out[BULK];
	uint64_t seen[ONE_BY_ONE + BULK + 1], last = 0;
	size_t n = 0;
	int i;

	for (i = 0; i < ONE_BY_ONE; i++) {
		ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, &g), 0);
		/* one slot reused over and over, one generation up each time */
		ck_assert_uint_gt(g->id, last);
		ck_assert_uint_eq(g->id, (uint64_t)(i + 1) << 32);
		ck_assert_int_eq(g->kind, GRANT_KMALLOC);
		ck_assert_ptr_eq(grant_held(&table, c, g->id), g);
		last = g->id;
		seen[n++] = g->id;
		grant_release(&table, g);
		/* released ids are gone */
		ck_assert_ptr_null(grant_held(&table, c, last));
		ck_assert_ptr_null(grant_find(&table, last));
	}
	qsort(seen, n, sizeof(seen[0]), cmp_u64);
	/* a bulk: distinct ids, none handed out before */
	ck_assert_int_eq(grant_kmalloc(&table, c, 100, KM_GFP_KERNEL, BULK, out), 0);
	for (i = 0; i < BULK; i++) {
		ck_assert(!seen_id(seen, n, out[i]->id));
		for (int j = 0; j < i; j++)
			ck_assert_uint_ne(out[i]->id, out[j]->id);
	}
	for (i = 0; i < BULK; i++)
		seen[n++] = out[i]->id;
	qsort(seen, n, sizeof(seen[0]), cmp_u64);
	ck_assert_uint_eq(table.count, BULK);
	/* and another kind after it */
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, "x", &g), 0);
	ck_assert(!seen_id(seen, n, g->id));
	ck_assert_int_eq(g->kind, GRANT_VMALLOC);
	ck_assert_uint_eq(table.count, BULK + 1);
	ck_assert_ptr_null(grant_held(&table, c, 0));
	ck_assert_ptr_null(grant_held(&table, c, UINT64_MAX));
	ck_assert_ptr_null(grant_find(&table, 0));
	ck_assert_ptr_null(grant_find(&table, UINT64_MAX));
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));
	holder_free(&accts, c);
}
END_TEST

/* An id is its slot's generation << 32 | the slot: slots are handed out
 * from 0 up, each chunk's grants lie side by side, a freed slot is reused
 * oldest first and one generation up, so its old id is never handed out
 * again; stale and forged ids find nothing. */
START_TEST(test_id_layout_and_generations)
{
	enum { N = 8 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct conn *o = holder_new(&mm, &accts, 1001);
	struct grant *g[N], *x, *og;
	uint64_t old[3], live[N + 1];
	int i;

	ck_assert_uint_eq(table.nr_slots, 0);
	ck_assert_uint_eq(table.max_gen, 0);
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, N, g), 0);
	for (i = 0; i < N; i++) {
		ck_assert_uint_eq(g[i]->id, 1ull << 32 | (uint64_t)i);
		ck_assert_ptr_eq(g[i], slot_addr(&table, (uint32_t)i));
		ck_assert_ptr_eq(grant_find(&table, g[i]->id), g[i]);
	}
	ck_assert_uint_eq(table.nr_slots, N);
	ck_assert_uint_eq(table.nr_chunks, 1);
	ck_assert_uint_eq(table.max_gen, 1);
	ck_assert_uint_eq(table.count, N);
	ck_assert_uint_eq(sizeof(struct grant), 32);

	/* freed slots 5, 1, 3 (in that order) come back in that order, each
	 * one generation up; the table does not grow */
	old[0] = g[5]->id;
	old[1] = g[1]->id;
	old[2] = g[3]->id;
	grant_release(&table, g[5]);
	grant_release(&table, g[1]);
	grant_release(&table, g[3]);
	ck_assert_uint_eq(table.count, N - 3);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_null(grant_find(&table, old[i]));
	ck_assert_int_eq(grant_kmalloc(&table, c, 64, KM_GFP_KERNEL, 1, &g[5]), 0);
	ck_assert_uint_eq(g[5]->id, 2ull << 32 | 5);
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, "", &g[1]), 0);
	ck_assert_uint_eq(g[1]->id, 2ull << 32 | 1);
	ck_assert_int_eq(grant_slabs(&table, c, 64, KM_GFP_KERNEL, 1, &g[3]), 0);
	ck_assert_uint_eq(g[3]->id, 2ull << 32 | 3);
	ck_assert_uint_eq(table.nr_slots, N);
	ck_assert_uint_eq(table.max_gen, 2);
	/* the slot is the same struct; the old ids name nothing */
	ck_assert_ptr_eq(g[5], slot_addr(&table, 5));
	for (i = 0; i < 3; i++) {
		ck_assert_ptr_null(grant_find(&table, old[i]));
		ck_assert_ptr_null(grant_held(&table, c, old[i]));
	}
	/* the next new grant takes a never-used slot: no free one is left */
	ck_assert_int_eq(grant_kmalloc(&table, o, 8, KM_GFP_KERNEL, 1, &og), 0);
	ck_assert_uint_eq(og->id, 1ull << 32 | N);

	/* forged ids: a generation not handed out, generation 0, a slot never
	 * used, a slot past the table; and another holder's grant */
	x = g[0];
	ck_assert_ptr_null(grant_find(&table, x->id + (1ull << 32)));
	ck_assert_ptr_null(grant_held(&table, c, x->id + (1ull << 32)));
	ck_assert_ptr_null(grant_find(&table, (uint64_t)ID_SLOT(x->id)));
	ck_assert_ptr_null(grant_find(&table, 1ull << 32 | (N + 1)));
	ck_assert_ptr_null(grant_find(&table, 1ull << 32 | UINT32_MAX));
	ck_assert_ptr_null(grant_find(&table, 1ull << 32 | (1u << GRANT_CHUNK_SHIFT)));
	ck_assert_ptr_eq(grant_find(&table, og->id), og);
	ck_assert_ptr_null(grant_held(&table, c, og->id));
	ck_assert_ptr_null(grant_held(&table, o, x->id));
	check_holder(&table, c);
	check_holder(&table, o);

	for (i = 0; i < N; i++)
		live[i] = g[i]->id;
	live[N] = og->id;
	ck_assert(grant_release_some(&table, c, 0));
	ck_assert(grant_release_some(&table, o, 0));
	/* every slot free again: what was live is gone */
	for (i = 0; i <= N; i++)
		ck_assert_ptr_null(grant_find(&table, live[i]));
	holder_free(&accts, c);
	holder_free(&accts, o);
}
END_TEST

/* One slot reused a thousand times: a thousand ids, each one generation
 * above the last, none found once released. */
START_TEST(test_slot_generations_climb)
{
	enum { N = 1000 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct grant *keep, *g;
	uint64_t prev = 0;

	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, &keep), 0);
	for (uint32_t i = 0; i < N; i++) {
		ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, 1, &g), 0);
		ck_assert_uint_eq(ID_SLOT(g->id), 1);
		ck_assert_uint_eq(ID_GEN(g->id), i + 1);
		ck_assert_uint_gt(g->id, prev);
		if (prev)
			ck_assert_ptr_null(grant_find(&table, prev));
		prev = g->id;
		grant_release(&table, g);
	}
	ck_assert_uint_eq(table.nr_slots, 2);
	ck_assert_uint_eq(table.max_gen, N);
	ck_assert_ptr_eq(grant_held(&table, c, 1ull << 32), keep);
	grant_release(&table, keep);
	holder_free(&accts, c);
}
END_TEST

/* The table grows past its first chunk; lookups stay exact through
 * random releases (from the middle of the holder's set). */
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
	/* 5000 slots: two chunks */
	ck_assert_uint_eq(table.nr_slots, N);
	ck_assert_uint_eq(table.nr_chunks,
			  (N + (1u << GRANT_CHUNK_SHIFT) - 1) >> GRANT_CHUNK_SHIFT);
	ck_assert_uint_eq(table.nr_chunks, 2);
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
	ck_assert_uint_eq(c->grants.nr, alive);
	for (i = 0; i < N; i++) {
		struct grant *g = grant_held(&table, c, ids[i]);

		if (live[i])
			ck_assert_ptr_eq(g, all[i]);
		else
			ck_assert_ptr_null(g);
		ck_assert_ptr_eq(grant_find(&table, ids[i]), g);
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
		ck_assert_ptr_eq(grant_domain(ga[i]), a->domain);
	}
	ck_assert_ptr_eq(grant_held(&table, a2, ga2->id), ga2);
	ck_assert_ptr_null(grant_held(&table, a, ga2->id));
	ck_assert_ptr_eq(grant_held(&table, b, gb->id), gb);
	ck_assert_ptr_null(grant_held(&table, a, gb->id));
	ck_assert_ptr_eq(grant_domain(gb), b->domain);
	/* b's object lies in b's frames */
	ck_assert_uint_eq(mm.frames.owner[gb->phys >> KM_FRAME_SHIFT], b->domain->id);
	ck_assert_uint_eq(mm.frames.owner[ga[0]->phys >> KM_FRAME_SHIFT], a->domain->id);

	ck_assert_uint_eq(a->grants.nr, 3);
	ck_assert_uint_eq(a->bytes, 3 * 64);
	ck_assert_uint_eq(a2->grants.nr, 1);
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
		ck_assert_ptr_eq(grant_domain(o), d);
		/* what it holds: the size asked for, rounded up as ksize */
		ck_assert_uint_eq(grant_bytes(o), kms_size_roundup(size));
		ck_assert_uint_ge(grant_bytes(o), size);
		ck_assert_uint_eq(c->bytes - bytes, grant_bytes(o));
		ck_assert_int_eq(o->cache, kms_class_index(size));
		if (o->cache < 0)
			ck_assert_uint_eq(o->order, kms_get_order(size));
		else
			ck_assert_uint_eq(o->order, 0);
		ck_assert_uint_eq(o->phys % (o->cache < 0 ? grant_bytes(o) : 8), 0);
		ck_assert_uint_eq(mm.frames.owner[o->phys >> KM_FRAME_SHIFT], d->id);
		for (size_t j = 0; j < k; j++)
			ck_assert(!overlap(o->phys, grant_bytes(o), g[j]->phys, grant_bytes(g[j])));
		bytes += grant_bytes(o);
		ck_assert_uint_eq(c->bytes, bytes);
		assert_account(c->account, k + 1, bytes);
		check_holder(&table, c);
		fill(d, o->phys, grant_bytes(o), 0xa5);
	}
	ck_assert_uint_gt(d->slab_pages, 0);
	ck_assert_uint_gt(d->large_pages, 0);

	/* __GFP_ZERO over the same, dirty memory */
	for (size_t k = 0; k < NR_GRANT_SIZES; k++) {
		uint64_t phys = g[k]->phys;

		grant_release(&table, g[k]);
		ck_assert_int_eq(grant_kmalloc(&table, c, grant_sizes[k],
					       KM_GFP_KERNEL | KM___GFP_ZERO, 1, &z),
				 0);
		if (grant_sizes[k] < 2 * MiB) /* blocks below a frame are reused in place */
			ck_assert_uint_eq(z->phys, phys);
		ck_assert(all_bytes(d, z->phys, grant_bytes(z), 0));
		ck_assert_uint_eq(grant_bytes(z), kms_size_roundup(grant_sizes[k]));
		ck_assert_int_eq(z->cache, kms_class_index(grant_sizes[k]));
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
		phys[i] = held[i]->phys;

	/* one more than fits, besides those held */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, FIT - HELD + 1, out),
			 -ENOMEM);
	ck_assert_uint_eq(table.count, HELD);
	ck_assert_uint_eq(c->grants.nr, HELD);
	assert_account(c->account, HELD, HELD * 8192);
	ck_assert_uint_eq(d->caches[KM_NR_KMALLOC_CLASSES - 1].nr_active, HELD);
	for (int i = 0; i < HELD; i++) {
		ck_assert_ptr_eq(grant_held(&table, c, held[i]->id), held[i]);
		ck_assert_uint_eq(held[i]->phys, phys[i]);
	}
	check_holder(&table, c);

	/* exactly what fits */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8192, KM_GFP_KERNEL, FIT - HELD, out), 0);
	ck_assert_uint_eq(c->grants.nr, FIT);
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
	ck_assert_uint_eq(frame_nr_free(&mm.frames) + d->frames.free_units, 0);
	for (int i = 0; i < 8; i++) /* each an aligned pair of frames */
		ck_assert_uint_eq(out[i]->phys % (4 * MiB), 0);
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
	ck_assert_uint_eq(c->grants.nr + c2->grants.nr, 5);
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
	ck_assert_uint_eq(gu->area->nr_frames, 12);
	ck_assert_uint_eq(frame_nr_free(&m.frames), 4);
	grant_release(&t, gu);

	ck_assert_int_eq(grant_vmalloc(&t, p, 14 * FRAME, KM_GFP_ATOMIC, 0, "", &gp), 0);
	ck_assert_uint_eq(gp->area->nr_frames, 14);
	ck_assert_uint_eq(frame_nr_free(&m.frames), 2);
	ck_assert_int_eq(grant_kmalloc(&t, u, 8, KM_GFP_ATOMIC, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, u, 8, KM_GFP_KERNEL | KM___GFP_HIGH, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, p, 8, KM_GFP_KERNEL, 1, &g), -ENOMEM);
	ck_assert_int_eq(grant_kmalloc(&t, p, 8, KM_GFP_ATOMIC, 1, &g), 0);
	ck_assert_uint_eq(grant_bytes(g), 8);
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
	ck_assert_ptr_eq(grant_domain(g), d);
	ck_assert_ptr_nonnull(g->area);
	ck_assert_uint_eq(g->area->size, 2 * FRAME + 1);
	ck_assert_uint_eq(g->area->nr_frames, 3);
	ck_assert_uint_eq(grant_bytes(g), 3 * FRAME);
	ck_assert_uint_eq(c->bytes, 3 * FRAME);
	ck_assert_uint_eq(g->area->vaddr, 0x7f0012340000ull);
	ck_assert_str_eq(g->area->caller, "probe+0x10/0x20");
	for (uint32_t i = 0; i < g->area->nr_frames; i++) {
		ck_assert_uint_lt(g->area->frames[i], POOL_FRAMES);
		ck_assert_uint_eq(mm.frames.owner[g->area->frames[i]], d->id);
		for (uint32_t j = 0; j < i; j++)
			ck_assert_uint_ne(g->area->frames[i], g->area->frames[j]);
	}
	ck_assert_uint_eq(d->vmalloc_frames, 3);
	assert_account(c->account, 1, 3 * FRAME);

	/* the caller label: cut to fit, or empty */
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, long_caller, &g2), 0);
	ck_assert_uint_eq(strlen(g2->area->caller), VMALLOC_CALLER_LEN - 1);
	ck_assert_int_eq(strncmp(g2->area->caller, long_caller, VMALLOC_CALLER_LEN - 1), 0);
	ck_assert_uint_eq(g2->area->nr_frames, 1);
	grant_release(&table, g2);
	ck_assert_int_eq(grant_vmalloc(&table, c, 1, KM_GFP_KERNEL, 0, NULL, &g2), 0);
	ck_assert_str_eq(g2->area->caller, "");
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
	ck_assert_uint_eq(c->grants.nr, 0);
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
	ck_assert_int_eq(grant_slabs(&table, c, 64, KM_GFP_KERNEL, 1, &g), 0);
	left = c->grants.nr;
	ck_assert_uint_eq(left, BULK + 4);

	ck_assert(!grant_release_some(&table, c, 1));
	ck_assert_uint_lt(c->grants.nr, left);
	ck_assert_uint_gt(c->grants.nr, 0);
	check_holder(&table, c);
	ck_assert_uint_eq(table.count, c->grants.nr);
	assert_account(c->account, c->grants.nr, c->bytes);
	left = c->grants.nr;
	while (!grant_release_some(&table, c, 1)) {
		ck_assert_uint_lt(c->grants.nr, left);
		left = c->grants.nr;
		check_holder(&table, c);
		calls++;
	}
	ck_assert_uint_gt(calls, 1);
	ck_assert_uint_eq(c->grants.nr, 0);
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);

	/* no budget: everything at once */
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, BULK, out), 0);
	ck_assert(grant_release_some(&table, c, 0));
	ck_assert_uint_eq(c->grants.nr, 0);
	ck_assert_uint_eq(table.count, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	holder_free(&accts, c);
	free(out);
}
END_TEST

/* The table grows a chunk at a time and never moves a grant: pointers
 * taken at the start stay the grants' (same address, same id, same
 * contents) while it grows past 100000 grants, every id finds its grant
 * at its slot's address, and a drained table reuses its slots without
 * growing. */
START_TEST(test_growth_keeps_pointers)
{
	enum { N = 120000, STEP = 1000, CHUNK = 1u << GRANT_CHUNK_SHIFT };
	struct conn *c = holder_new(&mm, &accts, 0); /* no grant limit */
	struct grant **all = calloc(N, sizeof(*all)), *g;
	uint64_t *ids = calloc(N, sizeof(*ids)), *phys = calloc(N, sizeof(*phys));
	struct grant *const *chunk0;
	uint32_t chunks, slots;
	size_t i, k;

	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(ids);
	ck_assert_ptr_nonnull(phys);
	for (i = 0; i < N; i += STEP) {
		ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, STEP, all + i), 0);
		for (k = i; k < i + STEP; k++) {
			ids[k] = all[k]->id;
			phys[k] = all[k]->phys;
		}
		ck_assert_uint_eq(table.nr_chunks, (i + STEP + CHUNK - 1) / CHUNK);
		/* the first grants have not moved */
		for (k = 0; k < STEP; k++) {
			ck_assert_ptr_eq(grant_find(&table, ids[k]), all[k]);
			ck_assert_uint_eq(all[k]->id, ids[k]);
			ck_assert_uint_eq(all[k]->phys, phys[k]);
			ck_assert_ptr_eq(all[k]->holder, c);
		}
	}
	ck_assert_uint_eq(table.count, N);
	ck_assert_uint_eq(table.nr_slots, N);
	ck_assert_uint_eq(table.nr_chunks, (N + CHUNK - 1) / CHUNK);
	ck_assert_uint_ge(table.cap_chunks, table.nr_chunks);
	ck_assert_uint_eq(c->grants.nr, N);
	/* the holder's set: chunks of 4096 pointers, as many as needed */
	ck_assert_uint_eq(c->grants.nr_chunks, (N + GRANT_SET_CHUNK - 1) / GRANT_SET_CHUNK);
	ck_assert_uint_eq(c->grants.cap, c->grants.nr_chunks * GRANT_SET_CHUNK);
	for (i = 0; i < N; i++) {
		g = all[i];
		ck_assert_uint_eq(g->id, 1ull << 32 | i);
		ck_assert_ptr_eq(grant_held(&table, c, ids[i]), g);
		ck_assert_ptr_eq(slot_addr(&table, (uint32_t)i), g);
		ck_assert_uint_eq(g->phys, phys[i]);
		ck_assert_int_eq(g->cache, kms_class_index(8));
		ck_assert_ptr_eq(grant_set_at(&c->grants, g->pos), g);
	}
	/* each chunk's grants lie side by side */
	for (i = 0; i + 1 < N; i++)
		if ((i + 1) % CHUNK)
			ck_assert_ptr_eq(all[i] + 1, all[i + 1]);
	assert_account(c->account, N, (uint64_t)N * 8);
	ck_assert_uint_eq(c->domain->caches[kms_class_index(8)].nr_active, N);

	/* half of them back, from everywhere: the others stay where they are */
	for (i = 0; i < N; i += 2)
		grant_release(&table, all[i]);
	for (i = 1; i < N; i += 2) {
		ck_assert_ptr_eq(grant_find(&table, ids[i]), all[i]);
		ck_assert_uint_eq(all[i]->phys, phys[i]);
	}
	for (i = 0; i < N; i += 2)
		ck_assert_ptr_null(grant_find(&table, ids[i]));
	check_holder(&table, c);
	/* and the set gave back the chunks it no longer needs */
	ck_assert_uint_ge(c->grants.cap, c->grants.nr);
	ck_assert_uint_le(c->grants.cap, c->grants.nr + GRANT_SET_CHUNK + GRANT_SET_CHUNK / 2);

	/* a drained table reuses its slots (generation 2), it does not grow */
	chunk0 = table.chunks;
	chunks = table.nr_chunks;
	slots = table.nr_slots;
	ck_assert(grant_release_some(&table, c, 0));
	ck_assert_uint_eq(table.count, 0);
	/* a drained set is down to its first chunk, at its smallest */
	ck_assert_uint_eq(c->grants.nr_chunks, 1);
	ck_assert_uint_eq(c->grants.cap, 64);
	ck_assert_int_eq(grant_kmalloc(&table, c, 8, KM_GFP_KERNEL, STEP, all), 0);
	for (k = 0; k < STEP; k++) {
		ck_assert_uint_eq(ID_GEN(all[k]->id), 2);
		ck_assert_uint_lt(ID_SLOT(all[k]->id), N);
		ck_assert_ptr_ne(grant_find(&table, all[k]->id), NULL);
	}
	ck_assert_uint_eq(table.nr_chunks, chunks);
	ck_assert_uint_eq(table.nr_slots, slots);
	ck_assert_ptr_eq(table.chunks, chunk0);
	/* the oldest free slots come first: those freed by the first loop */
	for (k = 0; k < STEP; k++)
		ck_assert_uint_eq(ID_SLOT(all[k]->id), 2 * k);
	ck_assert(grant_release_some(&table, c, 0));
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, c->domain);
	holder_free(&accts, c);
	free(all);
	free(ids);
	free(phys);
}
END_TEST

/* ---- slab grants ------------------------------------------------------------------------- */

/* The slabinfo row of @cls, as kmctl shows it. */
static struct inspect_slab slabinfo_row(const struct mm *m, int cls)
{
	struct inspect_slab rows[KM_NR_KMALLOC_CLASSES];

	inspect_slabinfo(m, rows);
	return rows[cls];
}

/* A slab grant is a whole slab of the size's class: aligned to its size,
 * in the holder's domain, charged as its pages; the cache counts every
 * object of it in use (slabinfo), keeps it on no list and off the slab
 * map, so kmalloc never hands out an object of it; giving it back returns
 * its pages. */
START_TEST(test_slab_grants)
{
	static const size_t sizes[] = { 1, 192, 256, 3000, 8192 };
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct domain *d = c->domain;
	struct grant *g[3], *k, *s[5];
	int cls = kms_class_index(96);
	const struct kmalloc_class *kc = &kmalloc_classes[cls];
	struct inspect_slab row;
	uint64_t slab_pages;

	ck_assert_int_eq(kc->order, 0);
	ck_assert_int_eq(kc->objs_per_slab, 42);
	ck_assert_int_eq(grant_slabs(&table, c, 96, KM_GFP_KERNEL, 3, g), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(g[i]->kind, GRANT_SLAB);
		ck_assert_int_eq(g[i]->cache, cls);
		ck_assert_uint_eq(grant_bytes(g[i]), 4096);
		ck_assert_uint_eq(g[i]->phys % 4096, 0);
		ck_assert_uint_eq(mm.frames.owner[g[i]->phys >> KM_FRAME_SHIFT], d->id);
		ck_assert_ptr_null(mm.slab_map.at[g[i]->phys >> KM_PAGE_SHIFT]);
		for (int j = 0; j < i; j++)
			ck_assert(!overlap(g[i]->phys, 4096, g[j]->phys, 4096));
	}
	ck_assert_uint_eq(d->caches[cls].nr_granted, 3);
	ck_assert_uint_eq(d->caches[cls].nr_slabs, 3);
	ck_assert_uint_eq(d->caches[cls].nr_objs, 3 * 42);
	ck_assert_uint_eq(d->caches[cls].nr_active, 3 * 42);
	ck_assert_uint_eq(d->caches[cls].nr_partial, 0);
	ck_assert(TAILQ_EMPTY(&d->caches[cls].full));
	ck_assert_int_eq(kmem_cache_check(&d->caches[cls]), 0);
	ck_assert_uint_eq(d->slab_pages, 3);
	row = slabinfo_row(&mm, cls);
	ck_assert_uint_eq(row.active_objs, 3 * 42);
	ck_assert_uint_eq(row.num_objs, 3 * 42);
	ck_assert_uint_eq(row.num_slabs, 3);
	assert_account(c->account, 3, 3 * 4096);
	ck_assert_uint_eq(c->bytes, 3 * 4096);
	check_holder(&table, c);

	/* a kmalloc of the class makes a slab of its own, beside them */
	ck_assert_int_eq(grant_kmalloc(&table, c, 96, KM_GFP_KERNEL, 1, &k), 0);
	for (int i = 0; i < 3; i++)
		ck_assert(!overlap(k->phys, 96, g[i]->phys, 4096));
	ck_assert_uint_eq(d->caches[cls].nr_slabs, 4);
	ck_assert_uint_eq(d->caches[cls].nr_active, 3 * 42 + 1);
	row = slabinfo_row(&mm, cls);
	ck_assert_uint_eq(row.active_objs, 3 * 42 + 1);
	ck_assert_uint_eq(row.num_objs, 4 * 42);
	grant_release(&table, k);

	/* every class: a whole slab, aligned to its size */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int ci = kms_class_index(sizes[i]);
		uint64_t bytes = 4096ull << kmalloc_classes[ci].order;

		ck_assert_int_eq(grant_slabs(&table, c, sizes[i], KM_GFP_KERNEL, 1, &s[i]), 0);
		ck_assert_int_eq(s[i]->cache, ci);
		ck_assert_uint_eq(grant_bytes(s[i]), bytes);
		ck_assert_uint_eq(s[i]->phys % bytes, 0);
		ck_assert_uint_ge(d->caches[ci].nr_active, kmalloc_classes[ci].objs_per_slab);
	}
	ck_assert_uint_eq(grant_bytes(s[4]), 32768); /* kmalloc-8k: 8 pages */
	check_holder(&table, c);

	/* refused without a trace: no class serves the size, nothing asked */
	slab_pages = d->slab_pages;
	ck_assert_int_eq(grant_slabs(&table, c, 0, KM_GFP_KERNEL, 1, &k), -EINVAL);
	ck_assert_int_eq(grant_slabs(&table, c, 8193, KM_GFP_KERNEL, 1, &k), -EINVAL);
	ck_assert_int_eq(grant_slabs(&table, c, UINT64_MAX, KM_GFP_KERNEL, 1, &k), -EINVAL);
	ck_assert_int_eq(grant_slabs(&table, c, 96, KM_GFP_KERNEL, 0, &k), -EINVAL);
	/* the quota counts a slab's pages */
	c->limits.max_bytes = c->bytes + 2 * 4096;
	ck_assert_int_eq(grant_slabs(&table, c, 96, KM_GFP_KERNEL, 3, g + 0), -EDQUOT);
	ck_assert_uint_eq(d->slab_pages, slab_pages);
	ck_assert_uint_eq(d->caches[cls].nr_granted, 3);
	ck_assert_uint_eq(table.count, 3 + 5);
	assert_account(c->account, 3 + 5, c->bytes);
	c->limits.max_bytes = POOL_SIZE / 2;

	/* given back: the slab's pages go back, the counts with them */
	slab_pages = d->slab_pages;
	grant_release(&table, g[1]);
	ck_assert_uint_eq(d->slab_pages, slab_pages - 1);
	ck_assert_uint_eq(d->caches[cls].nr_granted, 2);
	ck_assert_uint_eq(d->caches[cls].nr_active, 2 * 42);
	ck_assert_uint_eq(slabinfo_row(&mm, cls).active_objs, 2 * 42);
	ck_assert_int_eq(kmem_cache_check(&d->caches[cls]), 0);
	check_holder(&table, c);
	ck_assert(grant_release_some(&table, c, 0));
	ck_assert_uint_eq(slabinfo_row(&mm, cls).active_objs, 0);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, d);
	holder_free(&accts, c);
}
END_TEST

/* A slab grant is its holder's alone: another connection of the same uid
 * or another uid cannot find it (so cannot free it: dispatch.c's Free
 * goes through grant_held()), and it stays granted and counted until its
 * holder gives it back. */
START_TEST(test_slab_grant_held_by_holder_only)
{
	struct conn *a = holder_new(&mm, &accts, 1000);
	struct conn *a2 = holder_new(&mm, &accts, 1000);
	struct conn *b = holder_new(&mm, &accts, 1001);
	int cls = kms_class_index(512);
	struct grant *ga, *gb;

	ck_assert_int_eq(grant_slabs(&table, a, 512, KM_GFP_KERNEL, 1, &ga), 0);
	ck_assert_int_eq(grant_slabs(&table, b, 512, KM_GFP_KERNEL, 1, &gb), 0);
	ck_assert_ptr_eq(grant_held(&table, a, ga->id), ga);
	ck_assert_ptr_null(grant_held(&table, a2, ga->id));
	ck_assert_ptr_null(grant_held(&table, b, ga->id));
	ck_assert_ptr_null(grant_held(&table, a, gb->id));
	ck_assert_ptr_null(grant_held(&table, a2, gb->id));
	/* a2 and b cannot give it back: no release, nothing moved */
	ck_assert(grant_release_some(&table, a2, 0));
	ck_assert_ptr_eq(grant_held(&table, a, ga->id), ga);
	ck_assert_uint_eq(a->domain->caches[cls].nr_granted, 1);
	ck_assert_uint_eq(b->domain->caches[cls].nr_granted, 1);
	ck_assert_uint_eq(a->domain->caches[cls].nr_active, kmalloc_classes[cls].objs_per_slab);
	assert_account(a->account, 1, grant_bytes(ga));
	/* each in its own domain's frames */
	ck_assert_uint_eq(mm.frames.owner[ga->phys >> KM_FRAME_SHIFT], a->domain->id);
	ck_assert_uint_eq(mm.frames.owner[gb->phys >> KM_FRAME_SHIFT], b->domain->id);
	/* b gives its own back: a's stays */
	ck_assert(grant_release_some(&table, b, 0));
	ck_assert_uint_eq(b->domain->caches[cls].nr_granted, 0);
	ck_assert_ptr_eq(grant_held(&table, a, ga->id), ga);
	ck_assert_uint_eq(a->domain->caches[cls].nr_granted, 1);
	check_holder(&table, a);
	ck_assert(grant_release_some(&table, a, 0));
	ck_assert_uint_eq(a->domain->caches[cls].nr_granted, 0);
	holder_free(&accts, a);
	holder_free(&accts, a2);
	holder_free(&accts, b);
}
END_TEST

/* Slabs in bulk are all or nothing; a slab grant is not cleared (the
 * client clears what it carves), and whole frames come zeroed. */
START_TEST(test_slab_grants_bulk)
{
	/* kmalloc-8k: 8-page slabs, 64 to a frame, 1024 in the pool */
	enum { FIT = POOL_FRAMES * 512 / 8 };
	struct conn *c = holder_new(&mm, &accts, 0);
	struct domain *d = c->domain;
	struct grant **out = calloc(FIT + 1, sizeof(*out)), *g;
	int cls = kms_class_index(8192);
	uint64_t phys;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(grant_slabs(&table, c, 8192, KM_GFP_KERNEL, FIT + 1, out), -ENOMEM);
	ck_assert_uint_eq(table.count, 0);
	ck_assert_uint_eq(d->caches[cls].nr_granted, 0);
	ck_assert_uint_eq(d->caches[cls].nr_slabs, 0);
	ck_assert_uint_eq(d->slab_pages, 0);
	assert_account(c->account, 0, 0);
	ck_assert_int_eq(domain_check(d), 0);
	ck_assert_int_eq(grant_slabs(&table, c, 8192, KM_GFP_KERNEL, FIT, out), 0);
	ck_assert_uint_eq(frame_nr_free(&mm.frames), 0);
	ck_assert_uint_eq(d->caches[cls].nr_granted, FIT);
	ck_assert_uint_eq(d->caches[cls].nr_active, (uint64_t)FIT * 4);
	ck_assert_uint_eq(d->slab_pages, (uint64_t)FIT * 8);
	assert_account(c->account, FIT, (uint64_t)FIT * 32768);
	check_holder(&table, c);

	/* dirty one, give it back, take it again with __GFP_ZERO: the same
	 * slab, not cleared */
	phys = out[0]->phys;
	fill(d, phys, 32768, 0x6b);
	grant_release(&table, out[0]);
	ck_assert_int_eq(grant_slabs(&table, c, 8192, KM_GFP_KERNEL | KM___GFP_ZERO, 1, &g), 0);
	ck_assert_uint_eq(g->phys, phys);
	ck_assert(all_bytes(d, phys, 32768, 0x6b));
	ck_assert(grant_release_some(&table, c, 0));
	assert_domain_holds_nothing(&mm, d);
	/* from frames new to the domain: zeroed by the kernel */
	ck_assert_int_eq(grant_slabs(&table, c, 8192, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert(all_bytes(d, g->phys, 32768, 0));
	ck_assert(grant_release_some(&table, c, 0));
	holder_free(&accts, c);
	free(out);
}
END_TEST

/* ---- vmalloc runs ------------------------------------------------------------------------ */

/* A vmalloc grant takes its frames in runs: an area given back and asked
 * for again comes back as the same consecutive frames, ascending. */
START_TEST(test_vmalloc_grant_runs)
{
	struct conn *c = holder_new(&mm, &accts, 0);
	struct grant *g;
	uint32_t first;

	ck_assert_int_eq(grant_vmalloc(&table, c, 8 * FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_uint_eq(g->area->nr_frames, 8);
	first = g->area->frames[0];
	ck_assert_uint_eq(first % 8, 0);
	for (uint32_t i = 0; i + 1 < 8; i++)
		ck_assert_uint_eq(g->area->frames[i + 1], g->area->frames[i] + 1);
	grant_release(&table, g);
	ck_assert_uint_eq(c->domain->frames.nr_free[3], 1);
	ck_assert_int_eq(grant_vmalloc(&table, c, 8 * FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_uint_eq(g->area->frames[0], first);
	for (uint32_t i = 0; i + 1 < 8; i++)
		ck_assert_uint_eq(g->area->frames[i + 1], g->area->frames[i] + 1);
	ck_assert_uint_eq(c->domain->frames.free_units, 0);
	ck_assert(grant_release_some(&table, c, 0));
	holder_free(&accts, c);
}
END_TEST

/* ---- bounded teardown --------------------------------------------------------------------- */

#define RELEASE_CHECK_EVERY 256 /* grant.c: grants given back between clock reads */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A departing holder with 200000 grants: each call with the daemon's
 * budget (0.5 ms) stops once the budget is spent, at a clock read (every
 * 256 grants), so one turn gives back a bounded share, not everything;
 * the account, the table and the domain stay exact between turns, and the
 * last call gives back the rest. With a 1 ns budget a call gives back
 * exactly one clock period's worth. */
START_TEST(test_release_some_bounded)
{
	enum { N = 200000 };
	const uint64_t budget = 500000; /* server.c's turn: 0.5 ms */
	struct conn *c = holder_new(&mm, &accts, 0);
	struct grant **out = calloc(N, sizeof(*out));
	uint64_t left, calls = 0, worst = 0;
	bool done = false;

	ck_assert_ptr_nonnull(out);
	for (uint32_t i = 0; i < N; i += 1000)
		ck_assert_int_eq(
			grant_kmalloc(&table, c, i % 3000 ? 8 : 64, KM_GFP_KERNEL, 1000, out + i),
			0);
	ck_assert_uint_eq(c->grants.nr, N);

	/* the tightest budget: one clock period per call */
	for (int k = 0; k < 3; k++) {
		left = c->grants.nr;
		ck_assert(!grant_release_some(&table, c, 1));
		ck_assert_uint_eq(c->grants.nr, left - RELEASE_CHECK_EVERY);
		ck_assert_uint_eq(table.count, c->grants.nr);
		assert_account(c->account, c->grants.nr, c->bytes);
	}
	check_holder(&table, c);

	/* the daemon's budget, turn by turn */
	while (!done) {
		uint64_t t0 = mono_ns(), dt;

		left = c->grants.nr;
		done = grant_release_some(&table, c, budget);
		dt = mono_ns() - t0;
		calls++;
		if (!done) {
			ck_assert_uint_lt(c->grants.nr, left);
			/* stopped at a clock read */
			ck_assert_uint_eq((left - c->grants.nr) % RELEASE_CHECK_EVERY, 0);
			if (dt > worst)
				worst = dt;
		}
		ck_assert_uint_eq(table.count, c->grants.nr);
		assert_account(c->account, c->grants.nr, c->bytes);
	}
	ck_assert_uint_eq(c->grants.nr, 0);
	ck_assert_uint_eq(table.count, 0);
	/* more than one turn: a budget of 0.5 ms cannot give 200000 grants
	 * back at once. How long a turn ran past its budget (one clock period
	 * at most) is printed, not checked: valgrind and sanitizers stretch
	 * it, the counts above are what the budget promises. */
	printf("test_release_some_bounded: %" PRIu64 " turns, the longest unfinished one %" PRIu64
	       " us\n",
	       calls, worst / 1000);
	ck_assert_uint_gt(calls, 1);
	assert_account(c->account, 0, 0);
	assert_domain_holds_nothing(&mm, c->domain);
	holder_free(&accts, c);
	free(out);
}
END_TEST

/* ---- a successor's restore ------------------------------------------------------------ */

struct saved_grant {
	uint64_t id;
	enum grant_kind kind;
	struct kmalloc_obj k; /* KMALLOC, SLAB (phys, cache) */
	uint64_t bytes;	      /* grant_bytes() */
	uint64_t size, vaddr; /* VMALLOC */
	uint32_t *frames, nr_frames;
	char caller[VMALLOC_CALLER_LEN];
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

/* grant_restore() of @s under @id, as handover.c's restore_grant() calls
 * it: a vmalloc area malloc'd from the record, which the table then owns. */
static int restore(struct grant_table *t, struct conn *c, const struct saved_grant *s, uint64_t id)
{
	struct vmalloc_area *area = NULL;

	if (s->kind == GRANT_VMALLOC) {
		area = calloc(1, sizeof(*area) + s->nr_frames * sizeof(area->frames[0]));
		ck_assert_ptr_nonnull(area);
		area->size = s->size;
		area->vaddr = s->vaddr;
		memcpy(area->caller, s->caller, sizeof(area->caller));
		area->nr_frames = s->nr_frames;
		if (s->nr_frames)
			memcpy(area->frames, s->frames, s->nr_frames * sizeof(area->frames[0]));
	}
	return grant_restore(t, c, id, s->kind, &s->k, area);
}

/* What a refused restore must leave as it was. */
struct restore_state {
	uint64_t count, nr_grants, bytes, acct_grants, acct_bytes;
	uint64_t free_pages, free_frames, slab_pages, large_pages, vmalloc_frames, granted;
};

static void snapshot(const struct grant_table *t, const struct conn *c, struct restore_state *st)
{
	uint64_t granted = 0;

	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		granted += c->domain->caches[i].nr_granted;
	*st = (struct restore_state){ t->count,
				      c->grants.nr,
				      c->bytes,
				      c->account->grants,
				      c->account->bytes,
				      c->domain->pages.free_units,
				      c->domain->frames.free_units,
				      c->domain->slab_pages,
				      c->domain->large_pages,
				      c->domain->vmalloc_frames,
				      granted };
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
#define NR_RESTORE   (NR_RESTORE_K + 3) /* and two vmalloc areas, a slab */

/*
 * Grants of a predecessor remade by a successor: a second mm over the
 * reserve memfd and owner[] of the first, the domain adopted with its
 * memfd (every frame it owns free), each grant restored with its id. The
 * objects are the same (phys, class, order, frames, slabs, bytes in
 * memory), the counts are the predecessor's, and holes the predecessor had
 * freed stay free. Overlaps, memory not the domain's and ids already taken
 * are refused (-EUCLEAN) and change nothing; once the table is told the
 * predecessor's highest generation, new ids come after every restored one.
 */
START_TEST(test_restore)
{
	static const char caller[] = "kmtest_probe+0x1c/0x40 [kmtest]";
	struct saved_grant saved[NR_RESTORE], hole, spare;
	struct grant *out[NR_RESTORE_K], *g, *x, *slab;
	struct conn *ca = holder_new(&mm, &accts, 1000), *cb, nodomain;
	struct domain *da = ca->domain, *nd;
	struct restore_state before;
	struct accounts acb;
	struct grant_table tb;
	uint64_t max_id = 0;
	uint32_t spare_frame, foreign_frame = UINT32_MAX, max_gen;
	int slab_cls = kms_class_index(256);
	struct mm b;
	size_t i;

	/* the predecessor's grants, with bytes to recognise them by */
	ca->limits.max_bytes = ACCOUNT_UNLIMITED;
	for (i = 0; i < NR_RESTORE_K; i++) {
		ck_assert_int_eq(grant_kmalloc(&table, ca, restore_sizes[i],
					       i % 2 ? KM_GFP_KERNEL : KM_GFP_ATOMIC, 1, &out[i]),
				 0);
		fill(da, out[i]->phys, grant_bytes(out[i]), (int)(0x30 + i));
	}
	ck_assert_int_eq(grant_vmalloc(&table, ca, 2 * FRAME + 5, KM_GFP_KERNEL, 0x7f0000200000ull,
				       caller, &g),
			 0);
	ck_assert_int_eq(grant_vmalloc(&table, ca, FRAME, KM_GFP_KERNEL | KM___GFP_ZERO,
				       0x7f0000800000ull, "", &x),
			 0);
	ck_assert_int_eq(grant_slabs(&table, ca, 256, KM_GFP_KERNEL, 1, &slab), 0);
	fill(da, slab->phys, grant_bytes(slab), 0x2f);
	/* a hole in a slab, and a frame the domain keeps free */
	hole = (struct saved_grant){
		.kind = GRANT_KMALLOC,
		.k = { .phys = out[2]->phys, .size = 96, .order = 0, .cache = out[2]->cache }
	};
	grant_release(&table, out[2]);
	ck_assert_int_eq(grant_vmalloc(&table, ca, 1, KM_GFP_KERNEL, 0, "", &x), 0);
	spare_frame = x->area->frames[0];
	grant_release(&table, x);
	ck_assert(frame_free_in(da, spare_frame));
	for (uint32_t f = 0; f < POOL_FRAMES; f++)
		if (mm.frames.owner[f] == FRAME_OWNER_NONE)
			foreign_frame = f;
	ck_assert_uint_ne(foreign_frame, UINT32_MAX);
	check_holder(&table, ca);

	/* what the handover records */
	memset(saved, 0, sizeof(saved));
	for (i = 0; i < ca->grants.nr; i++) {
		struct saved_grant *s = &saved[i];

		x = grant_set_at(&ca->grants, i);
		s->id = x->id;
		s->kind = x->kind;
		s->bytes = grant_bytes(x);
		if (x->kind == GRANT_VMALLOC) {
			s->size = x->area->size;
			s->nr_frames = x->area->nr_frames;
			s->frames = malloc(x->area->nr_frames * sizeof(uint32_t));
			ck_assert_ptr_nonnull(s->frames);
			memcpy(s->frames, x->area->frames, x->area->nr_frames * sizeof(uint32_t));
			s->vaddr = x->area->vaddr;
			memcpy(s->caller, x->area->caller, sizeof(s->caller));
		} else {
			/* as handover.c rebuilds the object from phys, cache, order */
			s->k = (struct kmalloc_obj){ .phys = x->phys,
						     .order = x->order,
						     .cache = x->cache,
						     .size = x->kind == GRANT_KMALLOC
								     ? grant_bytes(x)
								     : 256 };
			s->pattern = da->map[x->phys];
		}
		if (x->id > max_id)
			max_id = x->id;
	}
	ck_assert_uint_eq(i, NR_RESTORE - 1); /* one kmalloc was given back */
	max_gen = table.max_gen;	      /* slot 2 went round twice */
	ck_assert_uint_eq(max_gen, 2);
	ck_assert_uint_eq(ID_GEN(max_id), 1);

	/* the successor */
	mm_successor(&b, &mm);
	accounts_init(&acb, &cfg, POOL_SIZE);
	ck_assert_int_eq(grant_table_init(&tb), 0);
	ck_assert_int_eq(domain_adopt(&b, da->id, 1000, dup(da->memfd), &nd), 0);
	cb = calloc(1, sizeof(*cb));
	ck_assert_ptr_nonnull(cb);
	grant_set_init(&cb->grants);
	cb->uid = 1000;
	cb->account = account_get(&acb, 1000);
	ck_assert_ptr_nonnull(cb->account);
	account_limits_for(&acb, 1000, 1000, NULL, 0, &cb->limits);
	cb->limits.max_bytes = ACCOUNT_UNLIMITED; /* as the predecessor's */
	cb->domain = nd;
	nd->refs++; /* as restore_conns() does */
	ck_assert_uint_eq(nd->frames.free_units, nd->nr_frames);
	ck_assert_uint_eq(nd->pages.free_units, 0);

	/* no domain, no id, no frames, no such kind */
	nodomain = *cb;
	nodomain.domain = NULL;
	grant_set_init(&nodomain.grants);
	spare = (struct saved_grant){
		.kind = GRANT_VMALLOC, .size = FRAME, .frames = &spare_frame, .nr_frames = 1
	};
	snapshot(&tb, cb, &before);
	ck_assert_int_eq(restore(&tb, &nodomain, &saved[0], saved[0].id), -EUCLEAN);
	ck_assert_int_eq(restore(&tb, &nodomain, &spare, max_id + 1), -EUCLEAN);
	ck_assert_int_eq(restore(&tb, cb, &saved[0], 0), -EUCLEAN);
	ck_assert_int_eq(restore(&tb, cb, &saved[0], saved[0].id & 0xffffffffu), -EUCLEAN);
	spare.nr_frames = 0;
	ck_assert_int_eq(restore(&tb, cb, &spare, max_id + 1), -EUCLEAN);
	spare.nr_frames = 1;
	ck_assert_int_eq(grant_restore(&tb, cb, max_id + 1, GRANT_VMALLOC, &saved[0].k, NULL),
			 -EUCLEAN);
	ck_assert_int_eq(grant_restore(&tb, cb, max_id + 1, GRANT_KIND_MAX, &saved[0].k, NULL),
			 -EUCLEAN);
	grant_set_fini(&nodomain.grants);
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
		ck_assert_uint_eq(x->id, s->id);
		ck_assert_int_eq(x->kind, s->kind);
		ck_assert_ptr_eq(grant_domain(x), nd);
		ck_assert_uint_eq(grant_bytes(x), s->bytes);
		ck_assert_ptr_eq(slot_addr(&tb, ID_SLOT(s->id)), x);
		if (s->kind == GRANT_VMALLOC) {
			ck_assert_uint_eq(x->area->nr_frames, s->nr_frames);
			ck_assert_mem_eq(x->area->frames, s->frames,
					 s->nr_frames * sizeof(uint32_t));
			ck_assert_uint_eq(x->area->size, s->size);
			ck_assert_uint_eq(x->area->vaddr, s->vaddr);
			ck_assert_str_eq(x->area->caller, s->caller);
		} else {
			ck_assert_uint_eq(x->phys, s->k.phys);
			ck_assert_uint_eq(x->order, s->k.order);
			ck_assert_int_eq(x->cache, s->k.cache);
			ck_assert(all_bytes(nd, s->k.phys, s->bytes, s->pattern));
		}
	}
	ck_assert_uint_eq(tb.count, NR_RESTORE - 1);
	ck_assert_uint_eq(cb->grants.nr, ca->grants.nr);
	ck_assert_uint_eq(cb->bytes, ca->bytes);
	assert_account(cb->account, ca->account->grants, ca->account->bytes);
	ck_assert_uint_eq(nd->slab_pages, da->slab_pages);
	ck_assert_uint_eq(nd->large_pages, da->large_pages);
	ck_assert_uint_eq(nd->vmalloc_frames, da->vmalloc_frames);
	ck_assert_uint_eq(nd->pages.free_units, da->pages.free_units);
	ck_assert_uint_eq(nd->frames.free_units, da->frames.free_units);
	for (int k = 0; k < KM_NR_KMALLOC_CLASSES; k++) {
		ck_assert_uint_eq(nd->caches[k].nr_slabs, da->caches[k].nr_slabs);
		ck_assert_uint_eq(nd->caches[k].nr_active, da->caches[k].nr_active);
		ck_assert_uint_eq(nd->caches[k].nr_granted, da->caches[k].nr_granted);
	}
	ck_assert_uint_eq(nd->caches[slab_cls].nr_granted, 1);
	check_holder(&tb, cb);

	/* refused, and nothing changes: ids taken (over free memory) ... */
	snapshot(&tb, cb, &before);
	ck_assert_int_eq(restore(&tb, cb, &hole, saved[0].id), -EUCLEAN);
	ck_assert_int_eq(restore(&tb, cb, &spare, saved[1].id), -EUCLEAN);
	/* (the same slot under another generation is taken too) */
	ck_assert_int_eq(restore(&tb, cb, &hole, saved[0].id + (1ull << 32)), -EUCLEAN);
	/* ... memory taken already, by the same or another grant ... */
	for (i = 0; i < NR_RESTORE - 1; i++)
		ck_assert_int_eq(restore(&tb, cb, &saved[i], max_id + 1 + i), -EUCLEAN);
	{
		const struct saved_grant *v = NULL, *big = NULL, *slab4k = NULL, *sg = NULL;
		struct saved_grant s;
		uint32_t two[2];

		for (i = 0; i < NR_RESTORE - 1; i++) {
			if (saved[i].kind == GRANT_VMALLOC)
				v = &saved[i];
			else if (saved[i].kind == GRANT_SLAB)
				sg = &saved[i];
			else if (saved[i].k.order == 10)
				big = &saved[i];
			else if (saved[i].k.cache == kms_class_index(3000))
				slab4k = &saved[i];
		}
		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(big);
		ck_assert_ptr_nonnull(slab4k);
		ck_assert_ptr_nonnull(sg);
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
					  .k = { .phys = slab4k->k.phys & ~4095ull,
						 .size = 4096,
						 .order = 0,
						 .cache = -1 } };
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k.cache = kms_class_index(64);
		s.k.size = 64;
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		/* a granted slab: as an object in it, as a large block, as a
		 * slab again; a slab over a kmalloc slab's pages */
		s = (struct saved_grant){
			.kind = GRANT_KMALLOC,
			.k = { .phys = sg->k.phys, .size = 256, .order = 0, .cache = (int)slab_cls }
		};
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k = (struct kmalloc_obj){
			.phys = sg->k.phys, .size = 4096, .order = 0, .cache = -1
		};
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s = *sg;
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k.phys = slab4k->k.phys & ~(8 * 4096ull - 1); /* kmalloc-4k: 8 pages */
		s.k.cache = kms_class_index(3000);
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k.phys = hole.k.phys; /* inside a kmalloc-96 slab */
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.k.cache = KM_NR_KMALLOC_CLASSES;
		s.k.phys = (uint64_t)spare_frame * FRAME;
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		/* ... and memory that is not the domain's */
		two[0] = foreign_frame;
		s = (struct saved_grant){
			.kind = GRANT_VMALLOC, .size = FRAME, .frames = two, .nr_frames = 1
		};
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s = (struct saved_grant){ .kind = GRANT_KMALLOC,
					  .k = { .phys = (uint64_t)foreign_frame * FRAME,
						 .size = 8,
						 .order = 0,
						 .cache = 0 } };
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
		s.kind = GRANT_SLAB;
		ck_assert_int_eq(restore(&tb, cb, &s, max_id + 100), -EUCLEAN);
	}
	assert_unchanged(&tb, cb, &before);
	/* the refusals took nothing: the free memory restores under new ids */
	ck_assert_int_eq(restore(&tb, cb, &hole, max_id + 1000), 0);
	ck_assert_int_eq(restore(&tb, cb, &spare, max_id + 1001), 0);
	check_holder(&tb, cb);

	/* every grant is in: new ids come after every restored one (above the
	 * predecessor's highest generation), new memory goes around it */
	grant_table_restored(&tb, max_gen);
	ck_assert_int_eq(grant_kmalloc(&tb, cb, 96, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_uint_gt(g->id, max_id + 1001);
	ck_assert_uint_eq(ID_GEN(g->id), max_gen + 1);
	for (i = 0; i < NR_RESTORE - 1; i++)
		if (saved[i].kind != GRANT_VMALLOC)
			ck_assert(
				!overlap(g->phys, grant_bytes(g), saved[i].k.phys, saved[i].bytes));
	ck_assert(!overlap(g->phys, grant_bytes(g), hole.k.phys, hole.k.size));
	ck_assert_int_eq(grant_vmalloc(&tb, cb, FRAME, KM_GFP_KERNEL, 0, "", &g), 0);
	ck_assert_uint_gt(g->id, max_id + 1001);
	ck_assert_uint_eq(b.frames.owner[g->area->frames[0]], nd->id);
	for (i = 0; i < NR_RESTORE - 1; i++)
		for (uint32_t f = 0; saved[i].kind == GRANT_VMALLOC && f < saved[i].nr_frames; f++)
			ck_assert_uint_ne(g->area->frames[0], saved[i].frames[f]);
	ck_assert_uint_ne(g->area->frames[0], spare_frame);
	ck_assert_int_eq(grant_slabs(&tb, cb, 256, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_uint_gt(g->id, max_id + 1001);
	for (i = 0; i < NR_RESTORE - 1; i++)
		if (saved[i].kind != GRANT_VMALLOC)
			ck_assert(
				!overlap(g->phys, grant_bytes(g), saved[i].k.phys, saved[i].bytes));
	check_holder(&tb, cb);

	/* the successor gives everything back */
	ck_assert(grant_release_some(&tb, cb, 0));
	assert_account(cb->account, 0, 0);
	ck_assert_uint_eq(tb.count, 0);
	assert_domain_holds_nothing(&b, nd);
	domain_put(nd);
	ck_assert(!mm_trim(&b, 0));
	ck_assert_uint_eq(b.nr_domains, 0);
	ck_assert_uint_eq(frame_nr_free(&b.frames), POOL_FRAMES);
	account_put(&acb, cb->account);
	grant_set_fini(&cb->grants);
	free(cb);
	grant_table_fini(&tb);
	mm_fini(&b);
	accounts_fini(&acb);

	/* and so does the predecessor, whose state the restore never touched */
	ck_assert_uint_eq(ca->grants.nr, NR_RESTORE - 1);
	check_holder(&table, ca);
	ck_assert(grant_release_some(&table, ca, 0));
	holder_free(&accts, ca);
	for (i = 0; i < NR_RESTORE; i++)
		free(saved[i].frames);
}
END_TEST

/* A restored table hands out no id the predecessor used: free slots (never
 * used, or whose restore failed) come back above the predecessor's
 * highest generation. */
START_TEST(test_restored_generations)
{
	struct conn *c = holder_new(&mm, &accts, 1000);
	struct grant_table t;
	struct kmalloc_obj obj[2];
	struct grant *g;
	uint64_t ids[4];

	ck_assert_int_eq(grant_table_init(&t), 0);
	/* the predecessor's live grants: slot 2 at generation 7, slot 0 at 3
	 * (two objects whose slab stays, freed so they can be adopted) */
	ck_assert_int_eq(kmalloc_alloc(c->domain, 64, KM_GFP_KERNEL, &obj[0]), 0);
	ck_assert_int_eq(kmalloc_alloc(c->domain, 64, KM_GFP_KERNEL, &obj[1]), 0);
	kmalloc_free(c->domain, &obj[0]);
	kmalloc_free(c->domain, &obj[1]);
	ck_assert_int_eq(grant_restore(&t, c, 7ull << 32 | 2, GRANT_KMALLOC, &obj[0], NULL), 0);
	ck_assert_int_eq(grant_restore(&t, c, 3ull << 32 | 0, GRANT_KMALLOC, &obj[1], NULL), 0);
	/* an id taken, a slot taken */
	ck_assert_int_eq(grant_restore(&t, c, 7ull << 32 | 2, GRANT_KMALLOC, &obj[0], NULL),
			 -EUCLEAN);
	ck_assert_int_eq(grant_restore(&t, c, 5ull << 32 | 0, GRANT_KMALLOC, &obj[0], NULL),
			 -EUCLEAN);
	ck_assert_uint_eq(t.count, 2);
	ck_assert_uint_eq(t.nr_slots, 3);
	ck_assert_uint_eq(t.max_gen, 7);
	grant_table_restored(&t, 9); /* it had handed out generation 9 somewhere */
	ck_assert_uint_eq(t.gen_floor, 9);

	/* slot 1 (never restored) first, then new slots, all above 9 */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(grant_kmalloc(&t, c, 8, KM_GFP_KERNEL, 1, &g), 0);
		ids[i] = g->id;
		ck_assert_uint_gt(ID_GEN(g->id), 9);
	}
	ck_assert_uint_eq(ids[0], 10ull << 32 | 1);
	ck_assert_uint_eq(ids[1], 10ull << 32 | 3);
	ck_assert_uint_eq(ids[2], 10ull << 32 | 4);
	ck_assert_uint_eq(ids[3], 10ull << 32 | 5);
	/* a restored slot reused after a release: above the floor too */
	g = grant_held(&t, c, 3ull << 32 | 0);
	ck_assert_ptr_nonnull(g);
	grant_release(&t, g);
	g = grant_held(&t, c, 7ull << 32 | 2);
	ck_assert_ptr_nonnull(g);
	grant_release(&t, g);
	ck_assert_int_eq(grant_kmalloc(&t, c, 8, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_uint_eq(g->id, 10ull << 32 | 0);
	ck_assert_int_eq(grant_kmalloc(&t, c, 8, KM_GFP_KERNEL, 1, &g), 0);
	ck_assert_uint_eq(g->id, 10ull << 32 | 2);
	check_holder(&t, c);
	ck_assert(grant_release_some(&t, c, 0));
	holder_free(&accts, c);
	grant_table_fini(&t);
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
	tcase_add_test(tc, test_id_layout_and_generations);
	tcase_add_test(tc, test_slot_generations_climb);
	tcase_add_test(tc, test_find_after_growth_and_random_releases);
	tcase_add_test(tc, test_held_by_holder_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("growth");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_growth_keeps_pointers);
	suite_add_tcase(s, tc);

	tc = tcase_create("slabs");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_slab_grants);
	tcase_add_test(tc, test_slab_grant_held_by_holder_only);
	tcase_add_test(tc, test_slab_grants_bulk);
	tcase_add_test(tc, test_vmalloc_grant_runs);
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
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_release_by_kind);
	tcase_add_test(tc, test_release_some);
	tcase_add_test(tc, test_release_some_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("restore");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_restore);
	tcase_add_test(tc, test_restored_generations);
	suite_add_tcase(s, tc);

	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
