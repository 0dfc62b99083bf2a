/* SPDX-License-Identifier: MIT */
/*
 * grant.h - every grant's life, from the request that makes it to the free,
 * the disconnect or the restart that ends it.
 *
 * A grant is what the daemon remembers about one kmalloc object or vmalloc
 * area it handed to a connection (its holder): its kind, the domain whose
 * memory it is, where it lies, and the holder. This module makes grants (a
 * bulk of kmalloc objects all or nothing, a vmalloc area), charging the
 * holder's account and refusing past its limits; finds them by id for their
 * holder only; gives them back by kind; gives back a departing holder's
 * grants in bounded steps; and remakes a predecessor daemon's grants
 * through the same allocators (their _at variants), so a restart and a live
 * request share one path.
 *
 * Ids are never reused within a daemon's life (a 64-bit counter), so a
 * stale id can never name someone else's new grant; ownership is checked on
 * every use anyway. Lookup is a hash on the id; each holder links its grants.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kmalloc.h"

struct conn;
struct domain;

enum grant_kind {
	GRANT_KMALLOC,
	GRANT_VMALLOC,
	GRANT_KIND_MAX,
};

extern const char *const grant_kind_names[GRANT_KIND_MAX];

#define GRANT_CALLER_LEN 64

struct grant {
	uint64_t id;
	enum grant_kind kind;
	struct domain *domain; /* whose memory it is */
	struct conn *holder;
	TAILQ_ENTRY(grant) link; /* on holder->grants */
	struct grant *hash_next;
	uint64_t size;	/* bytes asked for */
	uint64_t bytes; /* bytes held: ksize, or frames * frame size */
	unsigned int gfp;
	union {
		struct kmalloc_obj k; /* GRANT_KMALLOC */
		struct {	      /* GRANT_VMALLOC */
			uint32_t *frames;
			uint32_t nr_frames;
			uint64_t vaddr; /* client's address, for vmallocinfo */
			char caller[GRANT_CALLER_LEN];
		} v;
	};
};

TAILQ_HEAD(grant_list, grant);

struct grant_table {
	struct grant **buckets;
	size_t nr_buckets; /* power of two */
	size_t count;
	uint64_t next_id;
};

int grant_table_init(struct grant_table *t);
/* Frees the table only; every grant must have been given back. */
void grant_table_fini(struct grant_table *t);

/* @count kmalloc objects of @size bytes for @holder from its domain, all or
 * nothing (kmem_cache_alloc_bulk()), each a grant in @out. Only privileged
 * holders may use the emergency reserve. 0; -EDQUOT past the holder's
 * limits; -ENOMEM; -EFAULT when memory to clear was punched out of the
 * domain memfd (kmalloc_alloc()). */
int grant_kmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint32_t count, struct grant **out);

/* A vmalloc area of @size bytes (whole frames) for @holder. @vaddr and
 * @caller (already printable) only label vmallocinfo. 0 and *out, -EDQUOT,
 * -ENOMEM. */
int grant_vmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint64_t vaddr, const char *caller, struct grant **out);

/* The grant @id if @holder holds it, else NULL. */
struct grant *grant_held(const struct grant_table *t, const struct conn *holder, uint64_t id);

/* Unlinks @g from its holder (uncharged), gives its memory back to its
 * domain by kind, and deletes it. */
void grant_release(struct grant_table *t, struct grant *g);

/* Gives back @holder's grants until @budget_ns has passed (0: no limit).
 * True when none is left. */
bool grant_release_some(struct grant_table *t, struct conn *holder, uint64_t budget_ns);

/* A grant of a previous daemon, with its @id, remade through the _at
 * allocators (kmalloc_adopt(), vmalloc_adopt()) and linked to @holder.
 * 0; -EUCLEAN when the memory does not fit (taken already, not the
 * domain's, a layout the allocators never make) or the id is taken;
 * -ENOMEM. */
int grant_restore_kmalloc(struct grant_table *t, struct conn *holder, uint64_t id,
			  const struct kmalloc_obj *obj, uint64_t size, unsigned int gfp);
int grant_restore_vmalloc(struct grant_table *t, struct conn *holder, uint64_t id,
			  const uint32_t *frames, uint32_t nr_frames, uint64_t size,
			  unsigned int gfp, uint64_t vaddr, const char *caller);
