// SPDX-License-Identifier: MIT
/*
 * grant.c - the grant table and every grant's life (grant.h).
 *
 * The table is an array of fixed chunks of slots. A new grant takes the
 * oldest free slot, or the next never-used one (a chunk is allocated when a
 * slot first lands in it): the table never rehashes or moves, so no request
 * pays for its growth beyond one chunk's allocation. A slot's generation
 * goes up each time it is reused, which keeps ids unique.
 *
 * A grant is live exactly while it is in its holder's set and charged to the
 * holder's account: grant_link() and grant_unlink() are the only places
 * that change the three together. Only this file allocates and frees the
 * memory grants describe.
 */
#include "config.h"
#include "grant.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "conn.h"
#include "domain.h"
#include "gfp.h"
#include "share.h"
#include "sizes.h"
#include "slab.h"
#include "vmalloc.h"

#define GRANT_CHUNK		  (1u << GRANT_CHUNK_SHIFT)
#define GRANT_RELEASE_CHECK_EVERY 256 /* grants between clock reads */
#define GRANT_SLOT(id)		  ((uint32_t)(id))
#define GRANT_GEN(id)		  ((uint32_t)((id) >> 32))

const char *const grant_kind_names[GRANT_KIND_MAX] = {
	[GRANT_KMALLOC] = "kmalloc", /* an object or a large block */
	[GRANT_SLAB] = "slab",	     /* carved by the client */
	[GRANT_VMALLOC] = "vmalloc", /* an area */
	[GRANT_MEMREF] = "memref",   /* exported, or shareable from birth */
	[GRANT_IMPORT] = "import",   /* of a share */
};

/* ---- the table ------------------------------------------------------------ */

int grant_table_init(struct grant_table *t)
{
	memset(t, 0, sizeof(*t));
	TAILQ_INIT(&t->areas);
	t->shares = calloc(1, sizeof(*t->shares));
	if (!t->shares)
		return -ENOMEM;
	if (share_table_init(t->shares, t)) {
		free(t->shares);
		t->shares = NULL;
		return -ENOMEM;
	}
	return 0;
}

void grant_table_fini(struct grant_table *t)
{
	for (uint32_t i = 0; i < t->nr_chunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	if (t->shares) {
		share_table_fini(t->shares);
		free(t->shares);
	}
	memset(t, 0, sizeof(*t));
}

static struct grant *slot_at(const struct grant_table *t, uint32_t slot)
{
	return &t->chunks[slot >> GRANT_CHUNK_SHIFT][slot & (GRANT_CHUNK - 1)];
}

/* Makes slots [0, @nr_slots) exist. 0 or -ENOMEM. */
static int table_reserve(struct grant_table *t, uint64_t nr_slots)
{
	uint64_t need = (nr_slots + GRANT_CHUNK - 1) >> GRANT_CHUNK_SHIFT;

	if (need > UINT32_MAX >> GRANT_CHUNK_SHIFT)
		return -ENOMEM;
	while (t->nr_chunks < need) {
		if (t->nr_chunks == t->cap_chunks) {
			uint32_t cap = t->cap_chunks ? 2 * t->cap_chunks : 16;
			struct grant **chunks = realloc(t->chunks, cap * sizeof(*chunks));

			if (!chunks)
				return -ENOMEM;
			t->chunks = chunks;
			t->cap_chunks = cap;
		}
		/* Zeroed: a slot never used is free with generation 0. */
		t->chunks[t->nr_chunks] = calloc(GRANT_CHUNK, sizeof(struct grant));
		if (!t->chunks[t->nr_chunks])
			return -ENOMEM;
		t->nr_chunks++;
	}
	return 0;
}

/* Appends a free slot to the FIFO. */
static void slot_push_free(struct grant_table *t, struct grant *g)
{
	g->holder = NULL;
	g->next_free = 0;
	if (t->free_tail)
		slot_at(t, t->free_tail - 1)->next_free = GRANT_SLOT(g->id) + 1;
	else
		t->free_head = GRANT_SLOT(g->id) + 1;
	t->free_tail = GRANT_SLOT(g->id) + 1;
}

/* The next generation of @g's slot: one up, and above every generation a
 * previous daemon handed out, so no id comes back after a restart either. */
static void slot_new_generation(struct grant_table *t, struct grant *g, uint32_t slot)
{
	uint32_t gen = GRANT_GEN(g->id) + 1;

	if (gen <= t->gen_floor)
		gen = t->gen_floor + 1;
	if (gen == 0) /* 2^32 reuses of one slot */
		gen = 1;
	if (gen > t->max_gen)
		t->max_gen = gen;
	g->id = (uint64_t)gen << 32 | slot;
}

/* A slot with its id made into a live grant of @kind, not linked yet. */
static void slot_fill(struct grant_table *t, struct grant *g, enum grant_kind kind)
{
	g->kind = (uint8_t)kind;
	g->cache = -1;
	g->order = 0;
	g->flags = 0;
	g->phys = 0;
	t->count++;
}

/* A free slot made into a grant of @kind (not linked yet), or NULL. */
static struct grant *grant_new(struct grant_table *t, enum grant_kind kind)
{
	struct grant *g;
	uint32_t slot;

	if (t->free_head) {
		slot = t->free_head - 1;
		g = slot_at(t, slot);
		t->free_head = (uint32_t)g->next_free;
		if (!t->free_head)
			t->free_tail = 0;
	} else {
		if (t->nr_slots == UINT32_MAX || table_reserve(t, (uint64_t)t->nr_slots + 1))
			return NULL;
		slot = t->nr_slots++;
		g = slot_at(t, slot);
	}
	slot_new_generation(t, g, slot);
	slot_fill(t, g, kind);
	return g;
}

/* Gives @g's slot back (what it described is someone else's business). */
static void grant_delete(struct grant_table *t, struct grant *g)
{
	assert(t->count > 0);
	t->count--;
	slot_push_free(t, g);
}

struct grant *grant_find(const struct grant_table *t, uint64_t id)
{
	uint32_t slot = GRANT_SLOT(id);
	struct grant *g;

	if (slot >= t->nr_slots)
		return NULL;
	g = slot_at(t, slot);
	return g->holder && g->id == id ? g : NULL;
}

void grant_table_restored(struct grant_table *t, uint32_t max_gen)
{
	uint32_t slot;

	t->gen_floor = t->max_gen > max_gen ? t->max_gen : max_gen;
	t->free_head = t->free_tail = 0;
	for (slot = 0; slot < t->nr_slots; slot++) {
		struct grant *g = slot_at(t, slot);

		if (!g->holder) {
			g->id = slot; /* the floor decides its next generation */
			slot_push_free(t, g);
		}
	}
}

/* ---- what a grant is ---------------------------------------------------------- */

uint32_t grant_holders(const struct grant *g)
{
	if (g->kind == GRANT_MEMREF || g->kind == GRANT_IMPORT)
		return g->ref->obj->nr_refs;
	return 1;
}

struct domain *grant_domain(const struct grant *g)
{
	switch (g->kind) {
	case GRANT_MEMREF:
	case GRANT_IMPORT:
		return g->ref->obj->d;
	default:
		return g->holder->domain;
	}
}

uint64_t grant_bytes(const struct grant *g)
{
	switch (g->kind) {
	case GRANT_KMALLOC:
		return g->cache >= 0 ? kms_class_size[g->cache]
				     : (uint64_t)KM_PAGE_SIZE << g->order;
	case GRANT_SLAB:
		return (uint64_t)KM_PAGE_SIZE << kmalloc_classes[g->cache].order;
	case GRANT_MEMREF:
		return g->ref->obj->bytes;
	case GRANT_IMPORT:
		return g->ref->share->size;
	default:
		return (uint64_t)g->area->nr_frames * grant_domain(g)->mm->pool.frame_size;
	}
}

/* ---- holders ------------------------------------------------------------- */

void grant_set_init(struct grant_set *s)
{
	memset(s, 0, sizeof(*s));
}

void grant_set_fini(struct grant_set *s)
{
	assert(s->nr == 0);
	for (uint32_t i = 0; i < s->nr_chunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	memset(s, 0, sizeof(*s));
}

static struct grant **grant_set_slot(struct grant_set *s, uint32_t i)
{
	return &s->chunks[i >> GRANT_SET_CHUNK_SHIFT][i & (GRANT_SET_CHUNK - 1)];
}

/* One step of growth: the first chunk doubled (up to a full chunk), or a
 * full chunk more. 0 or -ENOMEM. */
static int grant_set_grow(struct grant_set *s)
{
	struct grant **chunk;

	if (s->nr_chunks == s->cap_chunks) {
		uint32_t cap = s->cap_chunks ? 2 * s->cap_chunks : 4;
		struct grant ***chunks = realloc(s->chunks, cap * sizeof(*chunks));

		if (!chunks)
			return -ENOMEM;
		s->chunks = chunks;
		s->cap_chunks = cap;
	}
	if (s->nr_chunks == 1 && s->cap < GRANT_SET_CHUNK) {
		chunk = realloc(s->chunks[0], 2 * s->cap * sizeof(*chunk));
		if (!chunk)
			return -ENOMEM;
		s->chunks[0] = chunk;
		s->cap *= 2;
		return 0;
	}
	if (s->cap > UINT32_MAX - GRANT_SET_CHUNK)
		return -ENOMEM;
	chunk = malloc((s->nr_chunks ? GRANT_SET_CHUNK : 16) * sizeof(*chunk));
	if (!chunk)
		return -ENOMEM;
	s->chunks[s->nr_chunks++] = chunk;
	s->cap += s->nr_chunks > 1 ? GRANT_SET_CHUNK : 16;
	return 0;
}

/* Room for @n more grants in @s, so linking them cannot fail. */
static int grant_set_reserve(struct grant_set *s, uint32_t n)
{
	if ((uint64_t)s->nr + n > UINT32_MAX)
		return -ENOMEM;
	while (s->cap < s->nr + n) {
		int err = grant_set_grow(s);

		if (err)
			return err;
	}
	return 0;
}

/* A holder that gave much back returns the memory: the last chunk once half
 * a chunk below it is unused too, the first one halved below a quarter. */
static void grant_set_shrink(struct grant_set *s)
{
	if (s->nr_chunks > 1) {
		if (s->nr + GRANT_SET_CHUNK / 2 < s->cap - GRANT_SET_CHUNK) {
			free(s->chunks[--s->nr_chunks]);
			s->cap -= GRANT_SET_CHUNK;
		}
	} else if (s->nr_chunks == 1 && s->cap > 64 && s->nr < s->cap / 4) {
		struct grant **chunk = realloc(s->chunks[0], (s->cap / 2) * sizeof(*chunk));

		if (chunk) {
			s->chunks[0] = chunk;
			s->cap /= 2;
		}
	}
}

static void grant_link(struct grant_table *t, struct conn *holder, struct grant *g)
{
	struct grant_set *s = &holder->grants;
	uint64_t bytes;

	assert(s->nr < s->cap);
	if (g->kind == GRANT_VMALLOC) {
		g->area->grant = g;
		TAILQ_INSERT_TAIL(&t->areas, g->area, link);
		t->nr_areas++;
	}
	g->holder = holder;
	g->pos = s->nr;
	*grant_set_slot(s, s->nr++) = g;
	bytes = grant_bytes(g);
	holder->bytes += bytes;
	account_charge(holder->account, bytes, 1);
}

static void grant_unlink(struct grant_table *t, struct grant *g)
{
	struct conn *holder = g->holder;
	struct grant_set *s = &holder->grants;
	uint64_t bytes = grant_bytes(g);
	struct grant *last = grant_set_at(s, --s->nr);

	*grant_set_slot(s, g->pos) = last;
	last->pos = g->pos;
	holder->bytes -= bytes;
	account_uncharge(holder->account, bytes, 1);
	grant_set_shrink(s);
	if (g->kind == GRANT_VMALLOC) {
		TAILQ_REMOVE(&t->areas, g->area, link);
		t->nr_areas--;
	}
}

struct grant *grant_held(const struct grant_table *t, const struct conn *holder, uint64_t id)
{
	struct grant *g = grant_find(t, id);

	return g && g->holder == holder ? g : NULL;
}

/* Gives the memory @g describes back to its domain. */
static void grant_free_memory(struct grant *g)
{
	struct domain *d = grant_domain(g);
	struct kmalloc_obj obj;

	switch (g->kind) {
	case GRANT_KMALLOC:
		obj = (struct kmalloc_obj){ .phys = g->phys,
					    .size = grant_bytes(g),
					    .order = g->order,
					    .cache = g->cache };
		kmalloc_free(d, &obj);
		break;
	case GRANT_SLAB:
		kmalloc_slab_free(d, g->cache, g->phys);
		break;
	case GRANT_MEMREF:
	case GRANT_IMPORT:
		memobj_drop(g->ref->obj, g); /* the memory goes with the last holder */
		break;
	default:
		vmalloc_free(d, g->area);
		break;
	}
}

void grant_release(struct grant_table *t, struct grant *g)
{
	grant_unlink(t, g); /* while its area, which says its size, is there */
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

	while (holder->grants.nr) {
		grant_release(t, grant_set_at(&holder->grants, holder->grants.nr - 1));
		if (budget_ns && ++n % GRANT_RELEASE_CHECK_EVERY == 0 &&
		    now_ns() - start > budget_ns)
			return holder->grants.nr == 0;
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

/* Asks the holder's account and makes room in its set for @count grants of
 * @bytes each. 0, -EDQUOT or -ENOMEM. */
static int grant_admit(struct conn *holder, uint64_t bytes, uint32_t count)
{
	int err = account_may_charge(holder->account, &holder->limits, bytes * count, count);

	return err ? err : grant_set_reserve(&holder->grants, count);
}

/* Makes @count grants of @kind for @holder, each through @alloc (which fills
 * in where its memory is, or fails), all or nothing. */
static int grant_bulk(struct grant_table *t, struct conn *holder, enum grant_kind kind,
		      uint32_t count, struct grant **out,
		      int (*alloc)(struct grant *g, const void *arg), const void *arg)
{
	uint32_t done, i;
	int err = 0;

	for (done = 0; done < count; done++) {
		struct grant *g = grant_new(t, kind);

		if (!g) {
			err = -ENOMEM;
			break;
		}
		g->holder = holder; /* grant_domain() works from here on */
		err = alloc(g, arg);
		if (err) {
			grant_delete(t, g);
			break;
		}
		out[done] = g;
	}
	if (err) {
		for (i = 0; i < done; i++) {
			grant_free_memory(out[i]);
			grant_delete(t, out[i]);
		}
		return err;
	}
	for (i = 0; i < count; i++)
		grant_link(t, holder, out[i]);
	return 0;
}

struct kmalloc_args {
	uint64_t size;
	unsigned int gfp;
};

static int alloc_kmalloc(struct grant *g, const void *arg)
{
	const struct kmalloc_args *a = arg;
	struct kmalloc_obj obj;
	int err;

	err = kmalloc_alloc(grant_domain(g), a->size, a->gfp, &obj);
	if (!err) {
		g->phys = obj.phys;
		g->cache = (int8_t)obj.cache;
		g->order = (uint8_t)obj.order;
	}
	return err;
}

static int alloc_slab(struct grant *g, const void *arg)
{
	const struct kmalloc_args *a = arg;

	g->cache = (int8_t)kms_class_index(a->size);
	return kmalloc_slab_alloc(grant_domain(g), g->cache, a->gfp, &g->phys);
}

/* A shareable grant: @g (just made, linked) becomes a MEMREF of a memobj
 * whose frames are in a memfd of their own; on failure it is given back.
 * Its pages there are new ones the kernel clears, so the allocation itself
 * is made without __GFP_ZERO (SHARED_STRIP): clearing the frames in the
 * domain memfd first would be the same work done twice on the loop. */
#define SHARED_STRIP (KM___GFP_SHARED | KM___GFP_ZERO)
static int grant_make_shareable(struct grant_table *t, struct grant *g)
{
	struct memobj *o;
	int err;

	err = grant_to_memref(t, g, &o);
	if (!err)
		err = memobj_make_shareable(o);
	if (err)
		grant_release(t, g);
	return err;
}

/* A shareable kmalloc: one large block of whole frames (2 or 4 MiB), so
 * that it can live in a memfd of its own. */
static int grant_kmalloc_shared(struct grant_table *t, struct conn *holder, uint64_t size,
				unsigned int gfp, uint32_t count, struct grant **out)
{
	uint64_t frame_size = holder->domain->mm->pool.frame_size;
	int err;

	if (count != 1)
		return -EINVAL;
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM;
	size = (size + frame_size - 1) / frame_size * frame_size;
	err = grant_kmalloc(t, holder, size, gfp & ~SHARED_STRIP, 1, out);
	return err ? err : grant_make_shareable(t, out[0]);
}

int grant_kmalloc(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		  uint32_t count, struct grant **out)
{
	struct kmalloc_args a = { size, holder_gfp(holder, gfp) };
	int err;

	if (size == 0 || count == 0)
		return -EINVAL;
	if (gfp & KM___GFP_SHARED)
		return grant_kmalloc_shared(t, holder, size, gfp, count, out);
	if (size > KM_KMALLOC_MAX_SIZE)
		return -ENOMEM; /* order > MAX_PAGE_ORDER */
	err = grant_admit(holder, kms_size_roundup(size), count);
	return err ? err : grant_bulk(t, holder, GRANT_KMALLOC, count, out, alloc_kmalloc, &a);
}

int grant_slabs(struct grant_table *t, struct conn *holder, uint64_t size, unsigned int gfp,
		uint32_t count, struct grant **out)
{
	struct kmalloc_args a = { size, holder_gfp(holder, gfp) };
	int idx = kms_class_index(size), err;

	if (idx < 0 || count == 0)
		return -EINVAL;
	err = grant_admit(holder, (uint64_t)KM_PAGE_SIZE << kmalloc_classes[idx].order, count);
	return err ? err : grant_bulk(t, holder, GRANT_SLAB, count, out, alloc_slab, &a);
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
	if (gfp & KM___GFP_SHARED) {
		err = grant_vmalloc(t, holder, size, gfp & ~SHARED_STRIP, vaddr, caller, out);
		return err ? err : grant_make_shareable(t, *out);
	}
	err = grant_admit(holder, (size + frame_size - 1) / frame_size * frame_size, 1);
	if (err)
		return err;
	g = grant_new(t, GRANT_VMALLOC);
	if (!g)
		return -ENOMEM;
	err = vmalloc_alloc(d, size, holder_gfp(holder, gfp), &g->area);
	if (err) {
		grant_delete(t, g);
		return err;
	}
	g->area->vaddr = vaddr;
	snprintf(g->area->caller, sizeof(g->area->caller), "%s", caller ? caller : "");
	grant_link(t, holder, g);
	*out = g;
	return 0;
}

/* ---- shared memory ------------------------------------------------------------ */

int grant_to_memref(struct grant_table *t, struct grant *g, struct memobj **out)
{
	static const enum memobj_kind kinds[] = {
		[GRANT_KMALLOC] = MEMOBJ_KMALLOC,
		[GRANT_SLAB] = MEMOBJ_SLAB,
		[GRANT_VMALLOC] = MEMOBJ_VMALLOC,
	};
	struct memobj *o;

	if (g->kind == GRANT_MEMREF) {
		*out = g->ref->obj;
		return 0;
	}
	if (g->kind > GRANT_VMALLOC)
		return -EINVAL;
	o = memobj_new(t->shares, grant_domain(g), kinds[g->kind]); /* room for a holder */
	if (!o)
		return -ENOMEM;
	/* The grant's charge stays what it was: it still holds those bytes. */
	o->bytes = grant_bytes(g);
	if (g->kind == GRANT_VMALLOC) {
		o->area = g->area; /* stays on t->areas (vmallocinfo) until the memobj dies */
	} else {
		o->phys = g->phys;
		o->cache = g->cache;
		o->order = g->order;
	}
	g->kind = GRANT_MEMREF;
	memobj_hold(o, g, NULL, 0);
	*out = o;
	return 0;
}

int grant_import(struct grant_table *t, struct conn *holder, struct share *s, uint64_t handle_id,
		 bool rdonly, struct grant **out)
{
	struct grant *g;
	int err;

	err = grant_admit(holder, s->size, 1);
	if (!err)
		err = memobj_reserve(s->obj);
	if (err)
		return err;
	g = grant_new(t, GRANT_IMPORT);
	if (!g)
		return -ENOMEM;
	g->flags = rdonly ? GRANT_RDONLY : 0;
	memobj_hold(s->obj, g, s, handle_id);
	grant_link(t, holder, g);
	*out = g;
	return 0;
}

/* ---- grants of a previous daemon ------------------------------------------- */

/* Takes exactly the slot of @id, which must not be held. NULL if it is, or
 * on ENOMEM. The free FIFO is rebuilt once all are in (grant_table_restored()). */
static struct grant *grant_new_at(struct grant_table *t, uint64_t id, enum grant_kind kind)
{
	uint32_t slot = GRANT_SLOT(id);
	struct grant *g;

	if (!GRANT_GEN(id) || slot == UINT32_MAX || table_reserve(t, (uint64_t)slot + 1))
		return NULL;
	if (t->nr_slots <= slot)
		t->nr_slots = slot + 1;
	g = slot_at(t, slot);
	if (g->holder)
		return NULL;
	g->id = id;
	if (GRANT_GEN(id) > t->max_gen)
		t->max_gen = GRANT_GEN(id);
	slot_fill(t, g, kind);
	return g;
}

int grant_restore(struct grant_table *t, struct conn *holder, uint64_t id, enum grant_kind kind,
		  const struct kmalloc_obj *obj, struct vmalloc_area *area)
{
	struct domain *d = holder->domain;
	struct grant *g;
	int err;

	if (!d || kind >= GRANT_KIND_MAX || grant_set_reserve(&holder->grants, 1)) {
		free(area);
		return d && kind < GRANT_KIND_MAX ? -ENOMEM : -EUCLEAN;
	}
	g = grant_new_at(t, id, kind);
	if (!g) {
		free(area);
		return -EUCLEAN;
	}
	switch (kind) {
	case GRANT_KMALLOC:
		err = kmalloc_adopt(d, obj);
		g->phys = obj->phys;
		g->cache = (int8_t)obj->cache;
		g->order = (uint8_t)obj->order;
		break;
	case GRANT_SLAB:
		err = kmalloc_slab_adopt(d, obj->cache, obj->phys);
		g->phys = obj->phys;
		g->cache = (int8_t)obj->cache;
		break;
	default:
		err = area ? vmalloc_adopt(d, area) : -EUCLEAN;
		g->area = err ? NULL : area;
		if (err)
			free(area);
		break;
	}
	if (err) {
		t->count--; /* back to a free slot, found by grant_table_restored() */
		return err;
	}
	g->holder = holder;
	grant_link(t, holder, g);
	return 0;
}

int grant_restore_ref(struct grant_table *t, struct conn *holder, uint64_t id, struct memobj *o,
		      struct share *s, uint64_t handle_id, bool rdonly)
{
	struct grant *g;

	if (grant_set_reserve(&holder->grants, 1) || memobj_reserve(o))
		return -ENOMEM;
	g = grant_new_at(t, id, s ? GRANT_IMPORT : GRANT_MEMREF);
	if (!g)
		return -EUCLEAN;
	g->flags = rdonly ? GRANT_RDONLY : 0;
	g->holder = holder;
	memobj_hold(o, g, s, handle_id);
	/* vmallocinfo names an area by its exporter's grant, else any. */
	if (o->area && (!o->area->grant || !s))
		o->area->grant = g;
	grant_link(t, holder, g);
	return 0;
}
