/* SPDX-License-Identifier: MIT */
/*
 * grant.h - every grant's life, from the request that makes it to the free,
 * the disconnect or the restart that ends it.
 *
 * A grant is what the daemon remembers about one thing it handed to a
 * connection (its holder): a kmalloc object or large block, a whole slab
 * (the client carves its objects itself), or a vmalloc area. This module
 * makes grants (a bulk all or nothing), charging the holder's account and
 * refusing past its limits; finds them by id for their holder only; gives
 * them back by kind; gives back a departing holder's grants in bounded
 * steps; and remakes a predecessor daemon's grants through the same
 * allocators (their _at variants), so a restart and a live request share one
 * path.
 *
 * Grants are small, since a client may hold millions: 32 bytes in a table of
 * fixed chunks that grows a chunk at a time (no rehash, nothing moves), and 8
 * more in the holder's vector; a vmalloc area's own fields live in its
 * struct vmalloc_area. An id is the grant's slot in the low 32 bits and the
 * slot's generation in the high 32: lookup is an index, and since free slots
 * are reused oldest first and every reuse bumps the generation, ids are not
 * reused within a daemon's life (nor across a restart: the generations carry
 * over). Ownership is checked on every use anyway.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kmalloc.h"

struct conn;
struct domain;
struct memobj;
struct memobj_ref;
struct share;
struct share_table;
struct vmalloc_area;

enum grant_kind {
	GRANT_KMALLOC, /* an object of a cache, or a large block */
	GRANT_SLAB,    /* a whole slab of a cache, carved by the client */
	GRANT_VMALLOC, /* a vmalloc area */
	/* A reference on a memory object (share.h): the exporter's grant once
	 * exported, or a shareable allocation from birth. */
	GRANT_MEMREF,
	GRANT_IMPORT, /* an import of a share: a reference on its memobj */
	GRANT_KIND_MAX,
};

extern const char *const grant_kind_names[GRANT_KIND_MAX];

struct grant {
	uint64_t id;	     /* generation << 32 | slot */
	struct conn *holder; /* NULL while the slot is free */
	union {
		uint64_t phys;		   /* KMALLOC, SLAB: first byte */
		struct vmalloc_area *area; /* VMALLOC */
		struct memobj_ref *ref; /* MEMREF, IMPORT: its entry among the memobj's holders */
		uint64_t next_free;	/* a free slot: the next one + 1, or 0 */
	};
	uint32_t pos;  /* in holder->grants */
	uint8_t kind;  /* enum grant_kind */
	int8_t cache;  /* KMALLOC: class, or -1 for a large block; SLAB: class */
	uint8_t order; /* KMALLOC large: order of its pages */
	uint8_t flags; /* GRANT_RDONLY */
};

#define GRANT_RDONLY 1u /* IMPORT: a read-only import */

_Static_assert(sizeof(struct grant) == 32, "a grant is 32 bytes");

#define GRANT_SET_CHUNK_SHIFT 12 /* 4096 pointers, 32 KiB */
#define GRANT_SET_CHUNK	      (1u << GRANT_SET_CHUNK_SHIFT)

/* The grants one holder has, in no order: a vector in chunks, so that it
 * grows and shrinks a chunk at a time and never copies a million pointers
 * on the event loop. The first chunk starts small and doubles up to a full
 * chunk; the others are full from the start. */
struct grant_set {
	struct grant ***chunks;
	uint32_t nr;	     /* grants */
	uint32_t cap;	     /* room: the first chunk's, plus GRANT_SET_CHUNK per other one */
	uint32_t nr_chunks;  /* chunks allocated */
	uint32_t cap_chunks; /* entries of chunks[] */
};

/* The @i-th grant of @s (i < s->nr). */
static inline struct grant *grant_set_at(const struct grant_set *s, uint32_t i)
{
	return s->chunks[i >> GRANT_SET_CHUNK_SHIFT][i & (GRANT_SET_CHUNK - 1)];
}

#define GRANT_CHUNK_SHIFT 12 /* 4096 grants, 128 KiB a chunk */

struct grant_table {
	struct grant **chunks; /* each 1 << GRANT_CHUNK_SHIFT grants; never moved */
	uint32_t nr_chunks, cap_chunks;
	uint32_t nr_slots;	       /* slots ever handed out */
	uint32_t free_head, free_tail; /* FIFO of free slots, + 1 (0: none) */
	uint32_t max_gen;	       /* the highest generation handed out */
	uint32_t gen_floor;	       /* a previous daemon's max_gen: new ones go above */
	uint64_t count;		       /* live grants */
	/* Every vmalloc area granted, oldest first: vmallocinfo reads these,
	 * not every grant. */
	TAILQ_HEAD(, vmalloc_area) areas;
	uint32_t nr_areas;
	struct share_table *shares; /* memobjs, shares and handles (share.h) */
};

int grant_table_init(struct grant_table *t);
/* Frees the table only; every grant must have been given back. */
void grant_table_fini(struct grant_table *t);

/* The grant @id, whoever holds it, or NULL. */
struct grant *grant_find(const struct grant_table *t, uint64_t id);

/* The bytes @g holds: ksize, a slab's pages, or an area's frames; for a
 * MEMREF what the grant it was made from held; for an import the share's
 * size. */
uint64_t grant_bytes(const struct grant *g);

/* How many grants hold the memory @g holds: 1, or a memobj's holders. */
uint32_t grant_holders(const struct grant *g);

/* The domain whose memory @g is (a memobj's for MEMREF and IMPORT). */
struct domain *grant_domain(const struct grant *g);

/* @count kmalloc objects of @size bytes for @holder from its domain, all or
 * nothing (kmem_cache_alloc_bulk()), each a grant in @out. Only privileged
 * holders may use the emergency reserve. 0; -EDQUOT past the holder's
 * limits; -ENOMEM; -EFAULT when memory to clear was punched out of the
 * domain memfd (kmalloc_alloc()). */
int grant_kmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint32_t count, struct grant **out);

/* @count whole slabs of the class of @size (1..8192) for @holder, all or
 * nothing: each slab one grant, every object of it counted in use until
 * the slab comes back. 0, -EDQUOT, -ENOMEM, -EINVAL. */
int grant_slabs(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		uint32_t count, struct grant **out);

/* With KM___GFP_SHARED in @gfp (grant_kmalloc(): @count 1, else -EINVAL)
 * the memory is whole frames in a memfd of their own (share.h) and the
 * grant a MEMREF of a MEMFD_KMALLOC or MEMFD_VMALLOC memobj from birth. */

/* A vmalloc area of @size bytes (whole frames) for @holder. @vaddr and
 * @caller (already printable) only label vmallocinfo. 0 and *out, -EDQUOT,
 * -ENOMEM. */
int grant_vmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint64_t vaddr, const char *caller, struct grant **out);

/* Makes @g (KMALLOC, SLAB or VMALLOC) a MEMREF of a new memobj of its
 * memory, in place (its id and charge stay); a MEMREF stays as it is.
 * 0 and *out, -EINVAL for an IMPORT, -ENOMEM. */
int grant_to_memref(struct grant_table *t, struct grant *g, struct memobj **out);

/* An IMPORT grant of @s for @holder, charged the share's size as an
 * allocation would be (-EDQUOT past the limits), through handle
 * @handle_id. 0 and *out, -EDQUOT, -ENOMEM. */
int grant_import(struct grant_table *t, struct conn *holder, struct share *s, uint64_t handle_id,
		 bool rdonly, struct grant **out);

/* The grant @id if @holder holds it, else NULL. */
struct grant *grant_held(const struct grant_table *t, const struct conn *holder, uint64_t id);

/* Unlinks @g from its holder (uncharged), gives its memory back to its
 * domain by kind, and frees its slot. */
void grant_release(struct grant_table *t, struct grant *g);

/* Gives back @holder's grants until @budget_ns has passed (0: no limit).
 * True when none is left. */
bool grant_release_some(struct grant_table *t, struct conn *holder, uint64_t budget_ns);

/* The holder's grant set, for a holder being made or freed. */
void grant_set_init(struct grant_set *s);
void grant_set_fini(struct grant_set *s);

/* A grant of a previous daemon, with its @id, remade through the _at
 * allocators (kmalloc_adopt(), kmalloc_slab_adopt(), vmalloc_adopt()) and
 * linked to @holder. For VMALLOC, @area (malloc'd) is the grant's from then
 * on, or freed on failure. 0; -EUCLEAN when the memory does not fit (taken
 * already, not the domain's, a layout the allocators never make) or the id
 * is taken; -ENOMEM. Once every grant is in, grant_table_restored(). */
int grant_restore(struct grant_table *t, struct conn *holder, uint64_t id, enum grant_kind kind,
		  const struct kmalloc_obj *obj, struct vmalloc_area *area);

/* A predecessor's MEMREF (@s NULL) of @o, or IMPORT of share @s through
 * handle @handle_id, with its @id, linked to @holder and holding @o.
 * 0, -EUCLEAN (id taken), -ENOMEM. */
int grant_restore_ref(struct grant_table *t, struct conn *holder, uint64_t id, struct memobj *o,
		      struct share *s, uint64_t handle_id, bool rdonly);

/* After grant_restore() of every grant: the free slots, and new ids above
 * the previous daemon's @max_gen. */
void grant_table_restored(struct grant_table *t, uint32_t max_gen);
