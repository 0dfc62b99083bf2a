// SPDX-License-Identifier: MIT
/*
 * grant.c - the grant table: a chained hash on the 64-bit grant id, grown
 * by doubling when the load passes 1. Ids count up from 1 and are never
 * reused, so an id a client kept after freeing cannot name a new grant.
 */
#include "config.h"
#include "grant.h"

#include <errno.h>
#include <stdlib.h>

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
		return;	/* keep the longer chains; lookups stay correct */
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

struct grant *grant_new(struct grant_table *t, enum grant_kind kind)
{
	struct grant *g = calloc(1, sizeof(*g));
	size_t b;

	if (!g)
		return NULL;
	if (t->count >= t->nr_buckets)
		grant_table_grow(t);
	g->id = t->next_id++;
	g->kind = kind;
	b = grant_bucket(t, g->id);
	g->hash_next = t->buckets[b];
	t->buckets[b] = g;
	t->count++;
	return g;
}

struct grant *grant_adopt(struct grant_table *t, uint64_t id, enum grant_kind kind)
{
	struct grant *g;
	size_t b;

	if (id == 0 || grant_find(t, id))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	if (t->count >= t->nr_buckets)
		grant_table_grow(t);
	g->id = id;
	g->kind = kind;
	b = grant_bucket(t, id);
	g->hash_next = t->buckets[b];
	t->buckets[b] = g;
	t->count++;
	if (t->next_id <= id)
		t->next_id = id + 1;
	return g;
}

struct grant *grant_find(const struct grant_table *t, uint64_t id)
{
	struct grant *g;

	for (g = t->buckets[grant_bucket(t, id)]; g; g = g->hash_next)
		if (g->id == id)
			return g;
	return NULL;
}

void grant_delete(struct grant_table *t, struct grant *g)
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
