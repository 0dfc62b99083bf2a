// SPDX-License-Identifier: MIT
/*
 * share.c - km_export(), km_import(), km_revoke() and the handles' text
 * form: the client half of sharing (docs/design.md, issue 8).
 *
 * Exporting names a grant of ours to the daemon: a small object of a slab
 * we carve (the slab's grant, the object's offset and size; the object
 * becomes EXPORTED in its state byte, slab.c), a large kmalloc (kmalloc.c's
 * table, marked so it never goes onto a reuse list), an area (vmalloc,
 * KM_GFP_SHARED, an import mapped apart: vmalloc.c), or a direct-map import.
 * Nothing of ours is freed or changed by an export but that mark: the
 * daemon turns our grant into one reference among others.
 *
 * An import is either
 *  - direct: a read-write import of a kmalloc of our own domain. The memory
 *    is already in our direct map at its phys: nothing is mapped, the import
 *    is a record (struct kmc_dimport) keyed by phys, so that km_kfree() of
 *    that address gives the import's grant back. Several imports of one phys
 *    may be held at once (one handle imported twice, or our own object
 *    imported back): the records chain, newest first, and each kfree drops
 *    the newest.
 *  - an area of vmalloc.c's table (kind KMC_AREA_IMPORT): a read-only view
 *    of a kmalloc, a vmalloc area's frames side by side, or a memfd of its
 *    own (another domain's KM_GFP_SHARED memory, or one a read-only import
 *    gets as a read-only descriptor).
 * Every held import is also in c->imports by grant id, for revocations.
 *
 * Revocation: the daemon ends the import's grant at once and says so with
 * an Event (rpc.c queues the ids). We cannot be interrupted, so the mapping
 * goes when the library next runs outside its fast paths (kmc_share_poll(),
 * which reads the socket without blocking when we hold imports, and every
 * round trip): an area is replaced by an anonymous PROT_NONE mapping at the
 * same address (any access faults; the range stays reserved, so nothing
 * else lands there before the caller frees it), and the grant id is
 * forgotten (it is no longer held: never given back). A direct import has
 * nothing to unmap: its memory is our own domain's, which this uid may use
 * anyway; only the record stays, so that its kfree is quiet. An event may
 * overtake the recording of its import (the reply and the event are read
 * before the importing thread records the import): such ids wait in a
 * small ring that a new import checks; the import then fails with EACCES.
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define MAP_EMPTY   UINT64_MAX
#define DIMPORT_TAG ((uintptr_t)1) /* in c->imports: the value is a kmc_dimport */

/* ---- u64 -> pointer table (open addressing, linear probing) -------------- */

static size_t map_home(uint64_t key, unsigned int bits)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static struct kmc_map_slot *map_lookup(const struct kmc_map *m, uint64_t key)
{
	size_t mask, i;

	if (!m->bits)
		return NULL;
	mask = ((size_t)1 << m->bits) - 1;
	for (i = map_home(key, m->bits);; i = (i + 1) & mask) {
		if (m->slots[i].key == key)
			return &m->slots[i];
		if (m->slots[i].key == MAP_EMPTY)
			return NULL;
	}
}

static void *map_get(const struct kmc_map *m, uint64_t key)
{
	struct kmc_map_slot *s = map_lookup(m, key);

	return s ? s->val : NULL;
}

static void map_place(struct kmc_map *m, uint64_t key, void *val)
{
	size_t mask = ((size_t)1 << m->bits) - 1, i = map_home(key, m->bits);

	while (m->slots[i].key != MAP_EMPTY && m->slots[i].key != key)
		i = (i + 1) & mask;
	if (m->slots[i].key == MAP_EMPTY)
		m->count++;
	m->slots[i].key = key;
	m->slots[i].val = val;
}

/* Doubles the table (kept at most half full: short probes). */
static int map_grow(struct kmc_map *m)
{
	unsigned int bits = m->bits ? m->bits + 1 : 4;
	struct kmc_map old = *m;
	size_t n = (size_t)1 << bits;

	m->slots = malloc(n * sizeof(*m->slots));
	if (!m->slots) {
		*m = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		m->slots[i] = (struct kmc_map_slot){ MAP_EMPTY, NULL };
	m->bits = bits;
	m->count = 0;
	for (size_t i = 0; old.bits && i < ((size_t)1 << old.bits); i++)
		if (old.slots[i].key != MAP_EMPTY)
			map_place(m, old.slots[i].key, old.slots[i].val);
	free(old.slots);
	return 0;
}

/* Inserts or replaces. */
static int map_put(struct kmc_map *m, uint64_t key, void *val)
{
	struct kmc_map_slot *s = map_lookup(m, key);

	if (s) {
		s->val = val;
		return 0;
	}
	if ((m->count + 1) * 2 > ((size_t)1 << m->bits) && map_grow(m))
		return -ENOMEM;
	map_place(m, key, val);
	return 0;
}

/* Removes @key (backward-shift deletion: no tombstones); its value or NULL. */
static void *map_del(struct kmc_map *m, uint64_t key)
{
	struct kmc_map_slot *s = map_lookup(m, key);
	size_t mask, i, j;
	void *val;

	if (!s)
		return NULL;
	val = s->val;
	mask = ((size_t)1 << m->bits) - 1;
	i = j = (size_t)(s - m->slots);
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (m->slots[j].key == MAP_EMPTY)
			break;
		home = map_home(m->slots[j].key, m->bits);
		/* Moves back unless that would put it before its home. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i] = (struct kmc_map_slot){ MAP_EMPTY, NULL };
	m->count--;
	return val;
}

static void map_free(struct kmc_map *m)
{
	free(m->slots);
	*m = (struct kmc_map){ 0 };
}

void kmc_share_destroy(struct km_client *c)
{
	/* Areas go with the area table (kmc_varea_destroy_all()). */
	for (size_t i = 0; c->dimports.bits && i < ((size_t)1 << c->dimports.bits); i++) {
		struct kmc_dimport *d = c->dimports.slots[i].val;

		if (c->dimports.slots[i].key == MAP_EMPTY)
			continue;
		while (d) {
			struct kmc_dimport *older = d->older;

			free(d);
			d = older;
		}
	}
	map_free(&c->dimports);
	map_free(&c->imports);
}

/* ---- revocations --------------------------------------------------------- */

/* True (and the id taken out) when an event revoked @id before its import
 * was recorded. */
static bool ring_take_locked(struct km_client *c, uint64_t id)
{
	for (unsigned int i = 0; i < KMC_REVOKED_RING; i++)
		if (c->revoked_ring[i] == id) {
			c->revoked_ring[i] = 0;
			return true;
		}
	return false;
}

static void ring_push_locked(struct km_client *c, uint64_t id)
{
	c->revoked_ring[c->revoked_pos++ % KMC_REVOKED_RING] = id;
}

static void area_revoke_locked(struct km_client *c, struct kmc_varea *a)
{
	/* Anonymous and inaccessible: the shared pages are no longer
	 * referenced by us, and the range stays reserved until freed. */
	if (mmap((void *)a->start, a->span, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		kmc_dbg(c, "revoked import at %p: mmap PROT_NONE: %s", (void *)a->addr,
			strerror(errno));
	a->flags |= KMC_AREA_REVOKED;
	a->id = 0;
}

void kmc_share_events(struct km_client *c)
{
	size_t n;
	uint64_t *ids = kmc_rpc_take_events(c, &n);

	if (!ids)
		return;
	pthread_mutex_lock(&c->vm_lock);
	for (size_t i = 0; i < n; i++) {
		void *v = map_del(&c->imports, ids[i]);

		if (!v) {
			ring_push_locked(c, ids[i]);
			continue;
		}
		__atomic_sub_fetch(&c->nr_imports, 1, __ATOMIC_RELAXED);
		if ((uintptr_t)v & DIMPORT_TAG) {
			struct kmc_dimport *d = (void *)((uintptr_t)v & ~DIMPORT_TAG);

			kmc_dbg(c, "import at phys %#" PRIx64 " revoked (direct map: stays)",
				d->phys);
			d->id = 0;
		} else {
			struct kmc_varea *a = v;

			kmc_dbg(c, "import at %p revoked: now PROT_NONE", (void *)a->addr);
			area_revoke_locked(c, a);
		}
	}
	pthread_mutex_unlock(&c->vm_lock);
	free(ids);
}

void kmc_import_forget_locked(struct km_client *c, const struct kmc_varea *a)
{
	if (a->id && map_del(&c->imports, a->id))
		__atomic_sub_fetch(&c->nr_imports, 1, __ATOMIC_RELAXED);
}

/* ---- direct imports ------------------------------------------------------ */

bool kmc_dimport_drop(struct km_client *c, const void *p)
{
	uint64_t phys = (uint64_t)((const uint8_t *)p - c->base), id = 0, size = 0;
	struct kmc_dimport *d;

	if (!kmc_in_direct_map(c, p))
		return false;
	pthread_mutex_lock(&c->vm_lock);
	d = map_get(&c->dimports, phys);
	if (d) {
		if (d->older)
			map_put(&c->dimports, phys, d->older); /* replaces: cannot fail */
		else
			map_del(&c->dimports, phys);
		__atomic_sub_fetch(&c->nr_dimports, 1, __ATOMIC_RELAXED);
		if (d->id && map_del(&c->imports, d->id))
			__atomic_sub_fetch(&c->nr_imports, 1, __ATOMIC_RELAXED);
		id = d->id;
		size = d->size;
	}
	pthread_mutex_unlock(&c->vm_lock);
	if (!d)
		return false;
	free(d);
	if (id) {
		kmc_rpc_release(c, id);
		/* We may be the last holder: large memory goes back now. */
		if (size > KM_KMALLOC_MAX_CACHE_SIZE)
			kmc_rpc_release_now(c);
	}
	return true;
}

uint64_t kmc_dimport_size(struct km_client *c, const void *p)
{
	struct kmc_dimport *d;
	uint64_t size = 0;

	pthread_mutex_lock(&c->vm_lock);
	d = map_get(&c->dimports, (uint64_t)((const uint8_t *)p - c->base));
	if (d)
		size = d->size;
	pthread_mutex_unlock(&c->vm_lock);
	return size;
}

/* The grant of the newest held direct import at @p, 0 if none. */
static uint64_t dimport_grant(struct km_client *c, const void *p)
{
	struct kmc_dimport *d;
	uint64_t id = 0;

	if (!__atomic_load_n(&c->nr_dimports, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&c->vm_lock);
	for (d = map_get(&c->dimports, (uint64_t)((const uint8_t *)p - c->base)); d && !id;
	     d = d->older)
		id = d->id;
	pthread_mutex_unlock(&c->vm_lock);
	return id;
}

/* Records the direct import @r; -ECANCELED if it was revoked meanwhile. */
static int dimport_record(struct km_client *c, const struct kmc_import_reply *r)
{
	struct kmc_dimport *d = malloc(sizeof(*d));
	int err = -ENOMEM;

	if (!d)
		return err;
	*d = (struct kmc_dimport){ .phys = r->phys, .size = r->size, .id = r->id };
	pthread_mutex_lock(&c->vm_lock);
	if (ring_take_locked(c, r->id)) {
		err = -ECANCELED;
		goto out;
	}
	d->older = map_get(&c->dimports, r->phys);
	if (map_put(&c->imports, r->id, (void *)((uintptr_t)d | DIMPORT_TAG)))
		goto out;
	if (map_put(&c->dimports, r->phys, d)) {
		map_del(&c->imports, r->id);
		goto out;
	}
	__atomic_add_fetch(&c->nr_dimports, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->nr_imports, 1, __ATOMIC_RELAXED);
	d = NULL;
	err = 0;
out:
	pthread_mutex_unlock(&c->vm_lock);
	free(d);
	return err;
}

/* ---- imports mapped apart ------------------------------------------------ */

/* Sizes @a for @r and reserves its range: the pages of a kmalloc (read-only
 * view), else whole frames and a guard frame (as vmalloc areas have). */
static int area_shape(struct km_client *c, const struct kmc_import_reply *r, struct kmc_varea *a)
{
	uint64_t fs = c->frame_size, pg = c->hugetlb ? fs : KM_PAGE_SIZE, lo, hi;
	int err;

	switch (r->kind) {
	case KMC_IMPORT_KMALLOC:
		lo = r->phys & ~(pg - 1);
		hi = (r->phys + r->size + pg - 1) & ~(pg - 1);
		a->phys = lo;
		a->span = a->len = hi - lo;
		err = kmc_area_reserve(a->len, pg, &a->start);
		a->addr = a->start + (r->phys - lo);
		return err;
	case KMC_IMPORT_VMALLOC:
		a->span = (size_t)r->nr_frames * fs;
		break;
	case KMC_IMPORT_MEMFD:
		a->span = r->map_size;
		/* Contiguous frames (a shareable kmalloc) have a phys; without
		 * frames nothing is known. */
		if (r->nr_frames && r->phys == (uint64_t)r->frames[0] * fs)
			a->phys = r->phys;
		for (uint32_t i = 1; i < r->nr_frames; i++)
			if (r->frames[i] != r->frames[i - 1] + 1)
				a->phys = UINT64_MAX;
		break;
	}
	a->len = a->span + fs;
	err = kmc_area_reserve(a->len, fs, &a->start);
	a->addr = a->start;
	return err;
}

static int area_map(struct km_client *c, const struct kmc_import_reply *r, struct kmc_varea *a)
{
	int prot = r->rdonly ? PROT_READ : PROT_READ | PROT_WRITE;

	switch (r->kind) {
	case KMC_IMPORT_KMALLOC:
		return kmc_area_map_fd(c, a, c->memfd, a->phys, prot);
	case KMC_IMPORT_VMALLOC:
		return kmc_area_map_frames(c, a, prot);
	default:
		return kmc_area_map_fd(c, a, r->memfd, 0, prot);
	}
}

/* Puts the mapped import @a in the area table and c->imports; -ECANCELED
 * if it was revoked meanwhile. */
static int area_record(struct km_client *c, struct kmc_varea *a)
{
	int err = -ECANCELED;

	pthread_mutex_lock(&c->vm_lock);
	if (ring_take_locked(c, a->id))
		goto out;
	err = map_put(&c->imports, a->id, a);
	if (err)
		goto out;
	err = kmc_area_insert_locked(c, a);
	if (err) {
		map_del(&c->imports, a->id);
		goto out;
	}
	__atomic_add_fetch(&c->nr_imports, 1, __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(&c->vm_lock);
	return err;
}

static int import_area(struct km_client *c, const struct kmc_import_reply *r, void **out)
{
	struct kmc_varea *a = kmc_area_new(r->kind == KMC_IMPORT_KMALLOC ? 0 : r->nr_frames);
	int err;

	if (!a)
		return -ENOMEM;
	a->kind = KMC_AREA_IMPORT;
	a->flags = r->rdonly ? KMC_AREA_RDONLY : 0;
	a->id = r->id;
	a->size = r->size;
	if (a->nr_frames)
		memcpy(a->frames, r->frames, a->nr_frames * sizeof(a->frames[0]));
	err = area_shape(c, r, a);
	if (err)
		goto err_free;
	err = area_map(c, r, a);
	if (!err)
		err = area_record(c, a);
	if (err) {
		munmap((void *)a->start, a->len);
		goto err_free;
	}
	*out = (void *)a->addr;
	return 0;

err_free:
	free(a);
	return err;
}

/* ---- the API ------------------------------------------------------------- */

/* What km_export() exports: a grant (and an object of it), and how to take
 * the export mark back if the daemon refuses. */
struct export_target {
	enum { T_SLAB, T_KTAB, T_AREA, T_DIMPORT } kind;
	uint64_t grant, offset, size;
	struct kmc_slab *s;
	uint32_t idx;
	bool was; /* exported before: nothing to take back */
};

static int target_find(struct km_client *c, const void *p, struct export_target *t)
{
	if (kmc_in_direct_map(c, p)) {
		struct kmc_slab *s = kmc_slab_of(c, p, &t->idx);

		if (s && !kmc_slab_export_begin(c, s, t->idx, &t->was)) {
			t->kind = T_SLAB;
			t->s = s;
			t->grant = s->grant;
			t->offset = (uint64_t)((const uint8_t *)p - c->base) - s->phys;
			t->size = c->classes[s->cls].size;
			return 0;
		}
		if (!s && !kmc_ktab_export_begin(c, p, &t->grant, &t->was)) {
			t->kind = T_KTAB;
			return 0;
		}
		/* An import of our own object comes after the object itself. */
		t->grant = dimport_grant(c, p);
		t->kind = T_DIMPORT;
		t->was = true;
		return t->grant ? 0 : -EINVAL;
	}
	t->kind = T_AREA;
	return kmc_area_export_begin(c, p, &t->grant, &t->was);
}

static void target_undo(struct km_client *c, const void *p, const struct export_target *t)
{
	if (t->was)
		return;
	if (t->kind == T_SLAB)
		kmc_slab_export_undo(c, t->s, t->idx);
	else if (t->kind == T_KTAB)
		kmc_ktab_export_undo(c, p, t->grant);
	else if (t->kind == T_AREA)
		kmc_area_export_undo(c, p, t->grant);
}

KM_EXPORT int km_export_limited(km_client *c, const void *p, const km_export_limits *lim,
				km_handle *out)
{
	struct export_target t = { 0 };
	int err = -EINVAL;

	if (!c || !out || KM_ZERO_OR_NULL_PTR(p))
		goto fail;
	kmc_share_poll(c);
	err = target_find(c, p, &t);
	if (err)
		goto fail;
	err = kmc_rpc_export(c, t.grant, t.offset, t.size, lim, out);
	if (err) {
		target_undo(c, p, &t);
		goto fail;
	}
	return 0;

fail:
	if (c)
		kmc_dbg(c, "export of %p refused: %s", p, strerror(-err));
	errno = -err;
	return -1;
}

KM_EXPORT int km_export(km_client *c, const void *p, km_handle *out)
{
	return km_export_limited(c, p, NULL, out);
}

KM_EXPORT void *km_import_flags(km_client *c, const km_handle *h, unsigned int flags,
				size_t *size_out)
{
	struct kmc_import_reply r = { .memfd = -1 };
	void *p = NULL;
	int err;

	if (!c || !h || (flags & ~KM_IMPORT_RDONLY)) {
		errno = EINVAL;
		return NULL;
	}
	kmc_share_poll(c);
	err = kmc_rpc_import(c, h, flags & KM_IMPORT_RDONLY, &r);
	if (err)
		goto fail;
	if (r.kind == KMC_IMPORT_KMALLOC && !r.rdonly) {
		err = dimport_record(c, &r);
		if (!err) {
			kmc_populate(c, r.phys, r.size);
			p = c->base + r.phys;
		}
	} else {
		err = import_area(c, &r, &p);
	}
	/* Revoked before recorded: the grant is no longer ours to give back. */
	if (err == -ECANCELED)
		err = -EACCES;
	else if (err)
		kmc_rpc_give_back(c, &r.id, 1);
	free(r.frames);
	if (r.memfd >= 0)
		close(r.memfd);
	if (err)
		goto fail;
	if (size_out)
		*size_out = r.size;
	return p;

fail:
	kmc_dbg(c, "import refused: %s", strerror(-err));
	errno = -err;
	return NULL;
}

KM_EXPORT void *km_import(km_client *c, const km_handle *h, size_t *size_out)
{
	return km_import_flags(c, h, 0, size_out);
}

KM_EXPORT int km_revoke(km_client *c, const km_handle *h)
{
	uint32_t ended = 0;
	int err;

	if (!c || !h) {
		errno = EINVAL;
		return -1;
	}
	kmc_share_poll(c);
	err = kmc_rpc_revoke(c, h, &ended);
	if (err) {
		kmc_dbg(c, "revoke refused: %s", strerror(-err));
		errno = -err;
		return -1;
	}
	return ended > INT32_MAX ? INT32_MAX : (int)ended;
}

/* ---- text form ----------------------------------------------------------- */

KM_EXPORT int km_handle_format(const km_handle *h, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	if (!h || !buf || len < KM_HANDLE_STRLEN) {
		errno = h && buf ? ERANGE : EINVAL;
		return -1;
	}
	for (size_t i = 0; i < sizeof(h->bytes); i++) {
		buf[2 * i] = hex[h->bytes[i] >> 4];
		buf[2 * i + 1] = hex[h->bytes[i] & 15];
	}
	buf[2 * sizeof(h->bytes)] = '\0';
	return 2 * (int)sizeof(h->bytes);
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* White space as the C locale has it, whatever the program's locale. */
static bool space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

KM_EXPORT int km_handle_parse(const char *s, km_handle *out)
{
	km_handle h;

	if (!s || !out)
		goto bad;
	while (space(*s))
		s++;
	for (size_t i = 0; i < sizeof(h.bytes); i++) {
		int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		h.bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	s += 2 * sizeof(h.bytes);
	while (space(*s))
		s++;
	if (*s)
		goto bad;
	*out = h;
	return 0;

bad:
	errno = EINVAL;
	return -1;
}
