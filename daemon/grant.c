// SPDX-License-Identifier: MIT
/*
 * grant.c - the grant table and every grant's life (grant.h).
 *
 * The table is a chained hash on the 64-bit grant id, grown by doubling
 * when the load passes 1; ids count up from 1 and are never reused, so an
 * id a client kept after freeing cannot name a new grant. A grant is in the
 * table exactly while it is linked to its holder and charged to the
 * holder's account: grant_link() and grant_unlink() are the only places
 * that change the three together. Only this file allocates and frees the
 * memory grants describe.
 */
#include "config.h"
#include "grant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "gfp.h"
#include "sizes.h"
#include "vmalloc.h"

#define GRANT_RELEASE_CHECK_EVERY 256 /* grants between clock reads */

const char *const grant_kind_names[GRANT_KIND_MAX] = {
	[GRANT_KMALLOC] = "kmalloc",
	[GRANT_VMALLOC] = "vmalloc",
};

#define GRANT_INITIAL_BUCKETS 1024

static size_t grant_bucket(const struct grant_table *t, uint64_t id)
{
	/* Fibonacci hashing spreads sequential ids over the buckets. */
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (t->nr_buckets - 1);
}

int grant_table_init(struct grant_table *t)
{
	t->nr_buckets = GRANT_INITIAL_BUCKETS;
	t->buckets = calloc(t->nr_buckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->count = 0;
	t->next_id = 1;
	return 0;
}

void grant_table_fini(struct grant_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nr_buckets = 0;
}

static void grant_table_grow(struct grant_table *t)
{
	size_t old_nr = t->nr_buckets, i;
	struct grant **old = t->buckets;
	struct grant **grown = calloc(old_nr * 2, sizeof(*grown));

	if (!grown)
		return; /* keep the longer chains; lookups stay correct */
	t->buckets = grown;
	t->nr_buckets = old_nr * 2;
	for (i = 0; i < old_nr; i++) {
		struct grant *g = old[i], *next;

		for (; g; g = next) {
			size_t b = grant_bucket(t, g->id);

			next = g->hash_next;
			g->hash_next = t->buckets[b];
			t->buckets[b] = g;
		}
	}
	free(old);
}

static struct grant *grant_find(const struct grant_table *t, uint64_t id)
{
	struct grant *g;

	for (g = t->buckets[grant_bucket(t, id)]; g; g = g->hash_next)
		if (g->id == id)
			return g;
	return NULL;
}

/* A zeroed grant of @kind in the table, with a fresh id (@id 0) or the
 * given one. NULL on ENOMEM or when @id is taken. */
static struct grant *grant_new(struct grant_table *t, enum grant_kind kind, uint64_t id)
{
	struct grant *g;
	size_t b;

	if (id && grant_find(t, id))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	if (t->count >= t->nr_buckets)
		grant_table_grow(t);
	g->id = id ? id : t->next_id++;
	if (t->next_id <= g->id)
		t->next_id = g->id + 1;
	g->kind = kind;
	b = grant_bucket(t, g->id);
	g->hash_next = t->buckets[b];
	t->buckets[b] = g;
	t->count++;
	return g;
}

/* Takes @g out of the table and frees the struct (not what it describes). */
static void grant_delete(struct grant_table *t, struct grant *g)
{
	struct grant **pp = &t->buckets[grant_bucket(t, g->id)];

	while (*pp && *pp != g)
		pp = &(*pp)->hash_next;
	if (*pp) {
		*pp = g->hash_next;
		t->count--;
	}
	free(g);
}

/* ---- holders ------------------------------------------------------------- */

static void grant_link(struct conn *holder, struct grant *g)
{
	g->holder = holder;
	TAILQ_INSERT_HEAD(&holder->grants, g, link);
	holder->nr_grants++;
	holder->bytes += g->bytes;
	account_charge(holder->account, g->bytes, 1);
}

static void grant_unlink(struct grant *g)
{
	struct conn *holder = g->holder;

	TAILQ_REMOVE(&holder->grants, g, link);
	holder->nr_grants--;
	holder->bytes -= g->bytes;
	account_uncharge(holder->account, g->bytes, 1);
	g->holder = NULL;
}

struct grant *grant_held(const struct grant_table *t, const struct conn *holder, uint64_t id)
{
	struct grant *g = grant_find(t, id);

	return g && g->holder == holder ? g : NULL;
}

/* Gives the memory @g describes back to its domain. */
static void grant_free_memory(struct grant *g)
{
	if (g->kind == GRANT_KMALLOC)
		kmalloc_free(g->domain, &g->k);
	else
		vmalloc_free(g->domain, g->v.frames, g->v.nr_frames);
}

void grant_release(struct grant_table *t, struct grant *g)
{
	grant_unlink(g);
	grant_free_memory(g);
	grant_delete(t, g);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool grant_release_some(struct grant_table *t, struct conn *holder, uint64_t budget_ns)
{
	uint64_t start = budget_ns ? now_ns() : 0;
	unsigned int n = 0;
	struct grant *g;

	while ((g = TAILQ_FIRST(&holder->grants))) {
		grant_release(t, g);
		if (budget_ns && ++n % GRANT_RELEASE_CHECK_EVERY == 0 &&
		    now_ns() - start > budget_ns)
			return TAILQ_EMPTY(&holder->grants);
	}
	return true;
}

/* ---- making grants ----------------------------------------------------------- */

/* The gfp the allocators see: what the client asked, and for a holder that
 * is not privileged no right to the emergency reserve whatever its flags
 * say (__GFP_HIGH, GFP_ATOMIC and __GFP_NOFAIL then get the ordinary
 * watermark; the reserve is for root and the privileged group). */
static unsigned int holder_gfp(const struct conn *holder, unsigned int gfp)
{
	return holder->limits.privileged ? gfp & ~GFP_NO_RESERVE : gfp | GFP_NO_RESERVE;
}

int grant_kmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint32_t count, struct grant **out)
{
	struct domain *d = holder->domain;
	uint32_t done, i;
	int err = 0;

	if (size == 0 || count == 0)
		return -EINVAL;
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM; /* order > MAX_PAGE_ORDER */
	err = account_may_charge(holder->account, &holder->limits, count * kms_size_roundup(size),
				 count);
	if (err)
		return err;
	gfp = holder_gfp(holder, gfp);
	/* All or nothing, as kmem_cache_alloc_bulk(). */
	for (done = 0; done < count; done++) {
		struct grant *g = grant_new(t, GRANT_KMALLOC, 0);

		if (!g) {
			err = -ENOMEM;
			break;
		}
		err = kmalloc_alloc(d, size, gfp, &g->k);
		if (err) {
			grant_delete(t, g);
			break;
		}
		g->domain = d;
		g->size = size;
		g->bytes = g->k.size;
		g->gfp = gfp & ~GFP_NO_RESERVE;
		out[done] = g;
	}
	if (err) {
		for (i = 0; i < done; i++) {
			kmalloc_free(d, &out[i]->k);
			grant_delete(t, out[i]);
		}
		return err;
	}
	for (i = 0; i < count; i++)
		grant_link(holder, out[i]);
	return 0;
}

int grant_vmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint64_t vaddr, const char *caller, struct grant **out)
{
	struct domain *d = holder->domain;
	uint64_t frame_size = d->mm->pool.frame_size;
	struct grant *g;
	int err;

	if (size == 0)
		return -EINVAL;
	if (size > d->mm->pool.size)
		return -ENOMEM; /* "exceeds total pages"; also keeps the sum below from wrapping */
	err = account_may_charge(holder->account, &holder->limits,
				 (size + frame_size - 1) / frame_size * frame_size, 1);
	if (err)
		return err;
	g = grant_new(t, GRANT_VMALLOC, 0);
	if (!g)
		return -ENOMEM;
	err = vmalloc_alloc(d, size, holder_gfp(holder, gfp), &g->v.frames, &g->v.nr_frames);
	if (err) {
		grant_delete(t, g);
		return err;
	}
	g->domain = d;
	g->size = size;
	g->bytes = (uint64_t)g->v.nr_frames * frame_size;
	g->gfp = gfp;
	g->v.vaddr = vaddr;
	snprintf(g->v.caller, sizeof(g->v.caller), "%s", caller ? caller : "");
	grant_link(holder, g);
	*out = g;
	return 0;
}

/* ---- grants of a previous daemon ------------------------------------------- */

int grant_restore_kmalloc(struct grant_table *t, struct conn *holder, uint64_t id,
			  const struct kmalloc_obj *obj, uint64_t size, unsigned int gfp)
{
	struct grant *g;
	int err;

	if (!id || id == UINT64_MAX || !holder->domain)
		return -EUCLEAN;
	g = grant_new(t, GRANT_KMALLOC, id);
	if (!g)
		return grant_find(t, id) ? -EUCLEAN : -ENOMEM;
	err = kmalloc_adopt(holder->domain, obj);
	if (err) {
		grant_delete(t, g);
		return err;
	}
	g->domain = holder->domain;
	g->k = *obj;
	g->size = size;
	g->bytes = obj->size;
	g->gfp = gfp;
	grant_link(holder, g);
	return 0;
}

int grant_restore_vmalloc(struct grant_table *t, struct conn *holder, uint64_t id,
			  const uint32_t *frames, uint32_t nr_frames, uint64_t size,
			  unsigned int gfp, uint64_t vaddr, const char *caller)
{
	struct grant *g;
	int err;

	if (!id || id == UINT64_MAX || !holder->domain || !nr_frames || !caller)
		return -EUCLEAN;
	g = grant_new(t, GRANT_VMALLOC, id);
	if (!g)
		return grant_find(t, id) ? -EUCLEAN : -ENOMEM;
	g->v.frames = malloc(nr_frames * sizeof(*frames));
	err = g->v.frames ? vmalloc_adopt(holder->domain, frames, nr_frames) : -ENOMEM;
	if (err) {
		free(g->v.frames);
		grant_delete(t, g);
		return err;
	}
	memcpy(g->v.frames, frames, nr_frames * sizeof(*frames));
	g->domain = holder->domain;
	g->v.nr_frames = nr_frames;
	g->size = size;
	g->bytes = (uint64_t)nr_frames * holder->domain->mm->pool.frame_size;
	g->gfp = gfp;
	g->v.vaddr = vaddr;
	snprintf(g->v.caller, sizeof(g->v.caller), "%s", caller);
	grant_link(holder, g);
	return 0;
}
