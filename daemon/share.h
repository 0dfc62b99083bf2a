/* SPDX-License-Identifier: MIT */
/*
 * share.h - memory shared between connections through handles (issue 8).
 *
 * A memory object (struct memobj) is pool memory with holders: a kmalloc
 * object or large block, a whole slab (its exporter carves it), a vmalloc
 * area, or a shareable grant's frames in a memfd of their own. Every holder
 * is a grant (grant.h): the exporter's GRANT_MEMREF and each GRANT_IMPORT.
 * The memory goes back, by its kind and exactly as the grant it was made
 * from would have given it back, when the last holder lets go.
 *
 * A share is an exported view of a memobj (offset, size, who exported it);
 * a handle (32 bytes: an 8-byte id from a counter and 24 random bytes) is
 * what a client passes to another so that it may import the share, within
 * the restrictions the exporter set (a uid, a number of uses, a lifetime,
 * read-only). A handle holds no memory: shares and handles die with their
 * memobj. Each live handle is charged to its creator's account (max_handles:
 * what a uid's handles cost the daemon is bounded), and expired ones are
 * swept by the housekeeping tick (share_sweep_some()). Handles are found
 * by id through a hash map and their secret is compared in constant time.
 *
 * This module knows nothing of the wire: dispatch.c turns its results into
 * replies and events.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

struct account;
struct accounts;
struct conn;
struct domain;
struct grant;
struct grant_table;
struct vmalloc_area;

#define SHARE_HANDLE_SIZE   32
#define SHARE_SECRET_SIZE   24
#define SHARE_EXPORT_UID    1u /* Export.flags: only `uid` may import */
#define SHARE_EXPORT_RDONLY 2u /* Export.flags: imports are read-only */
#define SHARE_EXPORT_FLAGS  (SHARE_EXPORT_UID | SHARE_EXPORT_RDONLY)

enum memobj_kind {
	MEMOBJ_KMALLOC,	      /* a kmalloc object or large block */
	MEMOBJ_SLAB,	      /* a whole slab its exporter carves */
	MEMOBJ_VMALLOC,	      /* a vmalloc area */
	MEMOBJ_MEMFD_KMALLOC, /* shareable: contiguous frames in a memfd of their own */
	MEMOBJ_MEMFD_VMALLOC, /* shareable: an area's frames in a memfd of their own */
	MEMOBJ_KIND_MAX,
};

extern const char *const memobj_kind_names[MEMOBJ_KIND_MAX];

/* One holder of a memobj: a grant (whose `ref` points back here, so that
 * letting go is O(1) however many holders there are), and for an import the
 * share and the handle it came through (revocation ends the imports of one
 * handle). */
struct memobj_ref {
	TAILQ_ENTRY(memobj_ref) link; /* on obj->refs */
	struct memobj *obj;
	struct grant *g;
	struct share *share; /* NULL for the exporter's MEMREF */
	uint64_t handle_id;  /* imports: the handle used */
};

struct memobj {
	TAILQ_ENTRY(memobj) link; /* on the table's memobjs */
	struct share_table *tab;
	struct domain *d; /* whose pool memory it is (a reference held) */
	uint64_t id;
	enum memobj_kind kind;
	uint64_t bytes;		   /* what the grant it was made from was charged */
	uint64_t phys;		   /* KMALLOC, SLAB, MEMFD_KMALLOC: first byte */
	int cache;		   /* KMALLOC: class or -1; SLAB: class */
	unsigned int order;	   /* KMALLOC, MEMFD_KMALLOC: pages order of a large block */
	struct vmalloc_area *area; /* VMALLOC, MEMFD_VMALLOC */
	int memfd;		   /* MEMFD_*: its own memfd, else -1 */
	int rofd;		   /* MEMFD_*: a read-only descriptor of it, opened once, or -1 */
	uint32_t nr_frames;	   /* MEMFD_*: frames in memfd */
	TAILQ_HEAD(, memobj_ref) refs; /* its holders, oldest first */
	uint32_t nr_refs;	       /* the reference count */
	struct memobj_ref *spare;      /* memobj_reserve()'s, for memobj_hold() */
	TAILQ_HEAD(, share) shares;
};

struct share {
	TAILQ_ENTRY(share) link; /* on obj->shares */
	struct memobj *obj;
	uint64_t id;
	uint64_t offset, size;
	/* The exporter, as it was at the export (it may be gone since). */
	pid_t pid;
	uid_t uid;
	char name[32];
	uint64_t conn_id;
	uint64_t created_ns; /* CLOCK_MONOTONIC */
	TAILQ_HEAD(, share_handle) handles;
};

struct share_handle {
	TAILQ_ENTRY(share_handle) link;	  /* on share->handles */
	TAILQ_ENTRY(share_handle) bucket; /* in the table's hash */
	TAILQ_ENTRY(share_handle) all;	  /* on the table's handles, oldest first */
	struct share *share;
	uint64_t id;
	uint8_t secret[SHARE_SECRET_SIZE];
	uid_t creator; /* the uid that exported it (may revoke it) */
	uint32_t flags;
	uid_t uid; /* with SHARE_EXPORT_UID */
	uint32_t max_imports, imports;
	uint64_t created_ns;
	uint64_t expiry_ns; /* CLOCK_MONOTONIC, 0: never */
	uint32_t held;	    /* imports made through it still held */
	bool revoked;
	/* Its creator's account, a reference held: charged one handle while
	 * the handle lives (limits.max_handles). */
	struct account *acct;
};

TAILQ_HEAD(share_handle_list, share_handle);

struct share_table {
	struct grant_table *grants; /* the areas list lives there */
	TAILQ_HEAD(, memobj) memobjs;
	struct share_handle_list handles; /* oldest first (kmctl shares pages) */
	struct share_handle_list *buckets;
	uint32_t nr_buckets; /* a power of two */
	uint32_t nr_handles, nr_memobjs;
	uint64_t next_handle_id, next_share_id, next_memobj_id;
	/* Where each handle is charged (the server's, set before any export;
	 * account_put() needs it when a handle dies). */
	struct accounts *accounts;
	struct share_handle *sweep_next; /* on handles: where share_sweep_some() goes on */
};

int share_table_init(struct share_table *t, struct grant_table *grants);
/* Every memobj must be gone (every grant given back). */
void share_table_fini(struct share_table *t);

/* ---- memobjs (grant.c's side) ------------------------------------------------ */

/* A new memobj of @kind in @d with no holder yet, or NULL. */
struct memobj *memobj_new(struct share_table *t, struct domain *d, enum memobj_kind kind);
/* Room for one more holder, so memobj_hold() cannot fail. 0 or -ENOMEM. */
int memobj_reserve(struct memobj *o);
void memobj_hold(struct memobj *o, struct grant *g, struct share *s, uint64_t handle_id);
/* @g lets go of @o; the last holder frees its memory, shares and handles. */
void memobj_drop(struct memobj *o, struct grant *g);

/* A MEMFD memobj's descriptor to pass to a client: its memfd, or for
 * @rdonly a read-only descriptor of it (opened once). -errno on failure. */
int memobj_fd(struct memobj *o, bool rdonly);

/* Moves a KMALLOC (large, whole frames) or VMALLOC memobj's frames into a
 * memfd of their own and makes it MEMFD_KMALLOC / MEMFD_VMALLOC. On failure
 * nothing changed. 0 or -errno. */
int memobj_make_shareable(struct memobj *o);

/* ---- requests ------------------------------------------------------------------ */

struct share_export_args {
	uint64_t offset, size; /* slab grants: one object; else 0, 0 */
	uint32_t flags;	       /* SHARE_EXPORT_* */
	uid_t uid;
	uint32_t max_imports;
	uint64_t lifetime_ms;
};

/* Exports the grant @grant_id of @c: a handle in @handle, its share's id
 * in *share_id. The handle is charged to @c's account until it dies.
 * 0, or -errno with *why for the client: -ENOENT (not held), -EINVAL (bad
 * offset/size/flags), -EDQUOT (the share has too many live handles, or
 * @c's uid is at its max_handles), -ENOMEM. An export sweeps the share's
 * expired handles nothing imported through is still held. */
int share_export(struct share_table *t, struct conn *c, uint64_t grant_id,
		 const struct share_export_args *a, uint8_t handle[SHARE_HANDLE_SIZE],
		 uint64_t *share_id, const char **why);

enum share_import_kind {
	SHARE_IMPORT_KMALLOC = 1, /* phys in the importer's direct map */
	SHARE_IMPORT_VMALLOC = 2, /* frames of the importer's domain memfd */
	SHARE_IMPORT_MEMFD = 3,	  /* fd: map map_size bytes from offset 0 */
};

struct share_import_result {
	struct grant *g; /* the importer's new grant */
	enum share_import_kind kind;
	uint64_t phys, size, map_size, share;
	const uint32_t *frames; /* VMALLOC, MEMFD */
	uint32_t nr_frames;
	uint32_t kframes[2]; /* MEMFD_KMALLOC: its frames, for `frames` */
	bool rdonly;
	int fd; /* MEMFD: to pass with the reply (not to close), else -1 */
};

/* Imports the share a handle names for @c. 0, or -errno with *why:
 * -ENOENT (unknown or forged handle, memory gone), -EACCES (revoked,
 * expired, used up, another uid, or another domain and not shareable),
 * -EDQUOT (the importer's limits), -ENOMEM, -EINVAL (not 32 bytes). */
int share_import(struct share_table *t, struct conn *c, const uint8_t *handle, size_t len,
		 bool rdonly, struct share_import_result *out, const char **why);

/* An import a revocation ended: its holder (to tell) and grant id. */
struct share_revoked {
	struct conn *holder;
	uint64_t grant;
};

/* Revokes a handle exported by @c's uid (root: any): no new imports, and
 * every import made through it released now. *ended (malloc'd, the
 * caller frees it) lists them, *nr of them. 0, or -errno with *why:
 * -ENOENT, -EACCES, -ENOMEM, -EINVAL. */
int share_revoke(struct share_table *t, struct conn *c, const uint8_t *handle, size_t len,
		 struct share_revoked **ended, size_t *nr, const char **why);

/* The housekeeping tick's sweep: looks at @budget handles at most, from
 * where the last call stopped, and frees the expired ones no held import
 * came through (a revoked one stays until its share dies). Returns how
 * many it freed. */
size_t share_sweep_some(struct share_table *t, size_t budget);

/* ---- inspection (kmctl shares) ----------------------------------------------- */

struct share_holder_row {
	uint32_t pid, uid;
	const char *name;
	uint64_t grant;
	bool exporter, rdonly;
};

struct share_row {
	uint64_t handle_id, share, size;
	const char *kind;
	uint32_t domain, exporter_pid, exporter_uid;
	const char *exporter_name;
	uint32_t flags, uid, imports, max_imports;
	uint64_t age_ms;
	int64_t expires_in_ms; /* -1: never */
	bool revoked;
	const struct share_holder_row *holders;
	size_t nr_holders;
};

/* Rows for the live handles [offset, offset + max), at most @max_holders
 * holders each, holder rows in @holders (room for max * max_holders).
 * *more when handles are left after them. Returns the rows made. */
size_t share_inspect(const struct share_table *t, uint32_t offset, struct share_row *rows,
		     size_t max, struct share_holder_row *holders, size_t max_holders, bool *more);

/* ---- a restart (handover.c) -------------------------------------------------- */

/* What a memobj was, as a predecessor recorded it. */
struct memobj_state {
	uint64_t id;
	enum memobj_kind kind;
	uint64_t bytes, phys;
	int cache;
	unsigned int order;
	struct vmalloc_area *area; /* VMALLOC kinds, malloc'd: the memobj's from then on */
	int memfd;		   /* MEMFD kinds: taken over (checked, then owned) */
	uint32_t nr_frames;	   /* MEMFD kinds */
};

/* A predecessor's memobj in @d, its memory taken back through the _at
 * allocators; no holder yet (memobj_restore_ref()). On failure @st->area
 * and @st->memfd are freed/closed. 0 and *out, -EUCLEAN when the memory
 * does not fit, -ENOMEM; -ENODEV when a MEMFD memobj's memfd did not come
 * back or is not one (its memory is then the domain's, free, again). */
int memobj_restore(struct share_table *t, struct domain *d, const struct memobj_state *st,
		   struct memobj **out);
/* A predecessor's share of @o and a handle of it (@h a template: id,
 * secret, restrictions, imports, revoked; @age_ns since the export and
 * @expires_in_ms -1 for never). NULL / -errno without memory. */
struct share *share_restore(struct share_table *t, struct memobj *o, const struct share *tmpl,
			    uint64_t age_ns);
int handle_restore(struct share_table *t, struct share *s, const struct share_handle *tmpl,
		   uint64_t age_ns, int64_t expires_in_ms);
/* After every grant is in: ids go on above the predecessor's, and memobjs
 * nobody holds any more (their holders' domains were lost) are freed. */
void share_table_restored(struct share_table *t, uint64_t next_handle_id, uint64_t next_share_id,
			  uint64_t next_memobj_id);
