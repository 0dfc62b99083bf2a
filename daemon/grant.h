/* SPDX-License-Identifier: MIT */
/*
 * grant.h - the grant table: every allocation a client holds, by id.
 *
 * A grant is what the daemon remembers about one kmalloc object or vmalloc
 * area it handed out: its kind, its domain, where it lies, and which
 * connection holds it. Ids are never reused within a daemon's life (a
 * 64-bit counter), so a stale id can never name someone else's new grant;
 * ownership is still checked on every use. Lookup is a hash on the id;
 * each connection also links its grants so it can give them all back.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kmalloc.h"

struct conn;
struct domain;

enum grant_kind {
	GRANT_KMALLOC,
	GRANT_VMALLOC,
	GRANT_KIND_MAX,
};

extern const char *const grant_kind_names[GRANT_KIND_MAX];

struct grant {
	uint64_t id;
	enum grant_kind kind;
	struct domain *domain;
	struct conn *owner;
	struct grant *owner_next, *owner_prev;	/* owner's list */
	struct grant *hash_next;
	uint64_t size;				/* bytes asked for */
	uint64_t bytes;				/* bytes held: ksize, or frames * frame size */
	unsigned int gfp;
	union {
		struct kmalloc_obj k;		/* GRANT_KMALLOC */
		struct {			/* GRANT_VMALLOC */
			uint32_t *frames;
			uint32_t nr_frames;
			uint64_t vaddr;		/* client's address, for vmallocinfo */
			char caller[64];
		} v;
	};
};

struct grant_table {
	struct grant **buckets;
	size_t nr_buckets;		/* power of two */
	size_t count;
	uint64_t next_id;
};

int grant_table_init(struct grant_table *t);
/* Frees the table only; the grants must have been released. */
void grant_table_fini(struct grant_table *t);

/* A zeroed grant of @kind with a fresh id, in the table. NULL on ENOMEM. */
struct grant *grant_new(struct grant_table *t, enum grant_kind kind);
/* A grant with the given @id, as a previous daemon handed it out (its ids
 * stay unique: next_id moves past it). NULL if @id is 0 or taken, or on ENOMEM. */
struct grant *grant_adopt(struct grant_table *t, uint64_t id, enum grant_kind kind);
/* The grant with @id, or NULL. */
struct grant *grant_find(const struct grant_table *t, uint64_t id);
/* Takes @g out of the table and frees the struct (not what it describes). */
void grant_delete(struct grant_table *t, struct grant *g);
