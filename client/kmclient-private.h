/* SPDX-License-Identifier: MIT */
/*
 * kmclient-private.h - struct km_client and the prototypes that the files of
 * libkmclient call across each other, grouped by the file that defines them.
 *
 * Locks:
 *   classes[i].lock  slab.c: a class's slab lists and free stacks
 *   tcache_lock      tcache.c: the list of per-thread caches
 *   ktab_lock  kmalloc.c's phys -> grant table and pcp.c's lists
 *   vm_lock    vmalloc.c's area array, and share.c's imports (the direct
 *              ones by address, every one by grant id)
 *   lock       rpc.c: pending calls, reader role, next id, release queue,
 *              revoked import ids read from events and not yet applied
 *   send_lock  rpc.c: the socket's send side and the send buffer; taking
 *              ids off the release queue (they leave it once sent)
 * Lock order: send_lock, then lock (rpc.c copies and commits the release
 * queue under both). The class locks, tcache_lock, ktab_lock and vm_lock are
 * never held with another lock, nor across a round trip. A thread's own
 * magazines (tcache.c) need no lock.
 * The direct map fields are written once by km_connect() and read without
 * locks afterwards; the populate bitmap is updated with atomic bit operations.
 *
 * Non-static names here take the kmc_ prefix: libkmclient.a is linked into
 * other people's programs. Generated protobuf-c types stay inside rpc.c.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kmclient.h"
#include "sizes.h"

#define KM_EXPORT __attribute__((visibility("default")))

#define KMC_RELEASE_MAX	     1024u /* grant ids riding on the next request (protocol cap) */
#define KMC_RELEASE_FLUSH    KMC_RELEASE_MAX /* queued ids that go out at once, without waiting */
#define KMC_ASYNC_MAX	     8u		     /* requests sent without waiting, in flight at once */
#define KMC_MAG_MAX	     1024u	     /* objects a thread keeps per class, at most */
#define KMC_MAG_BYTES	     (64u << 10)     /* and bytes of them (8 of 8 KiB, 1024 of 64 B) */
#define KMC_MAX_IDS	     1024u	     /* ids per Free, objects per Alloc (protocol cap) */
#define KMC_VKEEP_MAX	     2u		     /* freed vmalloc areas kept for reuse */
#define KMC_PENDING_BUCKETS  64		     /* rpc.c pending-call hash, a power of two */
#define KMC_DIRECT_MAP_ALIGN ((uint64_t)KM_KMALLOC_MAX_SIZE) /* keeps buddy alignment */

struct kmc_call;

/* One live kmalloc grant, a slot of the open-addressing table in kmalloc.c. */
struct kmc_kobj {
	uint64_t phys; /* first byte in the pool; KMC_KOBJ_EMPTY if the slot is free */
	uint64_t id;   /* grant id */
	uint64_t size; /* usable bytes (ksize), and KMC_KOBJ_EXPORTED */
};
/* In kmc_kobj.size: the grant was exported, so importers may still use its
 * memory after our kfree: it goes back to the daemon, never onto a list. */
#define KMC_KOBJ_EXPORTED (1ull << 63)

/* What an area of the area table (vmalloc.c) is. */
enum kmc_area_kind {
	KMC_AREA_VMALLOC,	 /* km_vmalloc(): frames of the domain memfd */
	KMC_AREA_SHARED_KMALLOC, /* KM_GFP_SHARED kmalloc: a memfd of its own, contiguous frames */
	KMC_AREA_SHARED_VMALLOC, /* KM_GFP_SHARED vmalloc: a memfd of its own */
	KMC_AREA_IMPORT,	 /* an import mapped apart from the direct map (share.c) */
};
#define KMC_AREA_EXPORTED 0x1u /* exported: never kept for reuse once freed */
#define KMC_AREA_RDONLY	  0x2u /* mapped PROT_READ */
#define KMC_AREA_REVOKED  0x4u /* an import its exporter revoked: PROT_NONE, id 0 */

/*
 * One area outside the direct map: a vmalloc area, a KM_GFP_SHARED
 * allocation, or an import mapped on its own. The reservation is exactly
 * [start, start + len): @span mapped bytes, then (for the vmalloc kinds)
 * PROT_NONE guard bytes. The caller's pointer is @addr: @start, or inside
 * the first page (frame on hugetlb) for a read-only import of a kmalloc.
 */
struct kmc_varea {
	uintptr_t start; /* first byte, page-aligned (frame-aligned for frames) */
	size_t len;	 /* bytes reserved: span and the guard */
	size_t span;	 /* bytes mapped from start */
	uintptr_t addr;	 /* what the caller got, the key of frees and exports */
	uint64_t size;	 /* usable bytes from addr (ksize, km_import()'s size) */
	uint64_t id;	 /* grant id; 0 for a revoked import (no longer held) */
	uint64_t phys;	 /* pool address at start when contiguous, else UINT64_MAX */
	uint8_t kind;	 /* enum kmc_area_kind */
	uint8_t flags;	 /* KMC_AREA_* */
	uint32_t nr_frames;
	uint32_t frames[]; /* pool frame numbers, in virtual order (0 of them: none known) */
};

/* An import of a kmalloc of the client's domain, read-write: nothing mapped,
 * the memory is at base + phys of the direct map (share.c). */
struct kmc_dimport {
	uint64_t phys;
	uint64_t size;		   /* bytes shared */
	uint64_t id;		   /* grant id; 0 once revoked (no longer held) */
	struct kmc_dimport *older; /* the import made before it at the same phys */
};

/* A u64 -> pointer table (share.c): open addressing, UINT64_MAX marks an
 * empty slot. */
struct kmc_map {
	struct kmc_map_slot {
		uint64_t key;
		void *val;
	} * slots;
	unsigned int bits; /* log2 of the slot count; 0: no table yet */
	size_t count;
};

#define KMC_REVOKED_RING 64u /* revoked ids that came before their import was recorded */

/* A per-client list of freed large blocks of one page order (pcp.c). */
struct kmc_pcp_list {
	uint32_t nr;	       /* blocks on the list */
	uint32_t high;	       /* at most this many are kept */
	struct kmc_kobj *objs; /* a stack of high entries */
};

/* The state of an object of a slab this client carves (slab.c). */
enum kmc_obj_state {
	KMC_OBJ_FREE,	  /* in its slab or in a magazine */
	KMC_OBJ_USED,	  /* handed out */
	KMC_OBJ_EXPORTED, /* handed out and exported: importers may use it too */
	/* Exported, then freed: importers may still use it, so it is never
	 * handed out again; counts as free for the slab-empty test (the slab
	 * goes back, the daemon keeps it for the importers). */
	KMC_OBJ_GONE,
};

/* Which list of its class a slab is on. */
enum kmc_slab_where {
	KMC_SLAB_SPARE,	  /* a descriptor with no slab, kept for reuse */
	KMC_SLAB_FULL,	  /* every object out (handed out or in magazines) */
	KMC_SLAB_PARTIAL, /* some objects in it */
	KMC_SLAB_EMPTY,	  /* all of them in it: kept, or given back soon */
};

/* A slab this client holds: one grant of the daemon, carved here. The
 * fields km_kfree() reads come first, in one cache line with the rest. */
struct kmc_slab {
	uint64_t phys;		    /* its first byte */
	uint8_t *state;		    /* enum kmc_obj_state, per object */
	uint32_t magic;		    /* ceil(2^32 / size): object index = offset * magic >> 32 */
	uint32_t size;		    /* object size (its class's) */
	uint32_t end;		    /* bytes its objects span: objects * size */
	uint8_t cls;		    /* class index */
	uint8_t where;		    /* enum kmc_slab_where */
	uint16_t nr_free;	    /* objects on free[]: in the slab, not in magazines */
	uint16_t *free;		    /* a stack of free object indexes */
	uint64_t grant;		    /* the daemon's id for it */
	TAILQ_ENTRY(kmc_slab) link; /* on its class's list for `where` */
	uint16_t nr_gone;	    /* objects KMC_OBJ_GONE (slow paths only) */
};

TAILQ_HEAD(kmc_slab_list, kmc_slab);

/* One class's slabs (slab.c), under its lock. */
struct kmc_class {
	pthread_mutex_t lock;
	struct kmc_slab_list full, partial, empty, spare;
	uint32_t nr_slabs;   /* held: full, partial and empty */
	uint32_t nr_empty;   /* on the empty list */
	uint32_t keep;	     /* empty slabs kept whatever the budget (min_partial) */
	uint32_t refill;     /* slabs the next miss asks for */
	uint32_t peak;	     /* most slabs in use (not empty) this epoch */
	uint32_t prev_peak;  /* and in the epoch before */
	uint64_t epoch;	     /* when this epoch began (CLOCK_MONOTONIC_COARSE, ns) */
	uint32_t refill_max; /* 1024 objects' worth */
	uint32_t size, objs; /* object size, objects per slab */
	uint64_t slab_bytes;
	uint32_t magic; /* ceil(2^32 / size), see struct kmc_slab */
};

/* A magazine: free objects of one class a thread hands out first, newest
 * on top. */
struct kmc_mag {
	uint32_t nr, cap;
	struct kmc_mag_entry {
		void *obj;
		uint8_t *state; /* its state byte in its slab's descriptor */
	} * e;			/* cap entries */
};

/* One thread's magazines for one client (tcache.c), their entries after
 * them in the same allocation. */
struct kmc_tcache {
	TAILQ_ENTRY(kmc_tcache) link; /* on the client's tcaches */
	struct km_client *c;
	struct kmc_mag mags[KM_NR_KMALLOC_CLASSES];
	struct kmc_mag_entry entries[];
};

/* The last client a thread used and its cache for it. */
struct kmc_tls {
	uint64_t uid;
	struct kmc_tcache *tc;
};

extern __thread struct kmc_tls kmc_tls __attribute__((tls_model("initial-exec")));

/* What Welcome tells us, checked by kmc_rpc_hello(). */
struct kmc_welcome {
	uint64_t pool_size;  /* bytes */
	uint64_t frame_size; /* bytes, a power of two */
	uint32_t max_packet; /* bytes */
	uint32_t domain;
	bool hugetlb;
};

/* One kmalloc grant as a reply hands it over (range already validated). */
struct kmc_grant {
	uint64_t id;
	uint64_t phys; /* bytes into the pool */
	uint64_t size; /* usable bytes (ksize) */
};

struct km_client {
	int sock;     /* SOCK_SEQPACKET to kmallocd */
	int memfd;    /* the domain memfd: direct map and vmalloc frames */
	bool debug;   /* KMCLIENT_DEBUG set: one stderr line per notable event */
	bool caching; /* keeps memory for reuse: slabs carved here, freed large blocks
		       * (off with KMCLIENT_NO_CACHE=1: every small object a grant) */
	uint64_t uid; /* unique in the process, for kmc_tls */

	/* Direct map, immutable after km_connect(). */
	uint8_t *base;	     /* phys 0; aligned to KMC_DIRECT_MAP_ALIGN */
	uint64_t pool_size;  /* bytes mapped at base */
	uint64_t frame_size; /* bytes */
	bool hugetlb;
	uint64_t populate_unit;	  /* bytes: frame_size on hugetlb, 4 KiB on shmem */
	unsigned long *populated; /* one bit per populate unit; a cache, see connect.c */
	int populate_off;	  /* MADV_POPULATE_WRITE unsupported (atomic flag) */

	/* rpc.c, under lock. */
	pthread_mutex_t lock;
	uint64_t next_id;
	bool reading; /* a caller is the reader (owns recvbuf) */
	bool dead;    /* the connection failed; every call fails with dead_err */
	int dead_err; /* -errno */
	unsigned int nr_pending;
	struct kmc_call *pending[KMC_PENDING_BUCKETS];
	uint64_t release[KMC_RELEASE_MAX]; /* grant ids to give back, oldest first */
	unsigned int nr_release;	   /* ids leave only under send_lock too (rpc.c) */
	unsigned int async_inflight;	   /* requests sent without waiting, unanswered */
	pthread_cond_t async_cond;	   /* signalled when one is answered */
	uint8_t *recvbuf;		   /* WIRE_MAX_REPLY bytes, used by the reader only */
	uint64_t *ev_ids;		   /* revoked import ids from events, to apply */
	size_t nr_ev;			   /* (written under lock, read atomically outside) */
	size_t cap_ev;

	/* rpc.c, under send_lock. */
	pthread_mutex_t send_lock;
	uint8_t *sendbuf;
	size_t sendcap; /* bytes: the daemon's max_packet, at most the buffer */

	/* slab.c: small objects from slabs this client carves. */
	struct kmc_class classes[KM_NR_KMALLOC_CLASSES];
	struct kmc_slab **pagemap; /* per pfn of the pool: its slab of ours, or NULL */
	uint64_t empty_bytes;	   /* in empty slabs kept (atomic) */
	uint64_t empty_budget;	   /* all kept while below this */
	uint64_t empty_cap;	   /* never more than this beyond min_partial */

	/* tcache.c */
	pthread_key_t tkey;
	bool tkey_made;
	pthread_mutex_t tcache_lock;
	TAILQ_HEAD(, kmc_tcache) tcaches;

	/* kmalloc.c, under ktab_lock. */
	pthread_mutex_t ktab_lock;
	struct kmc_kobj *ktab;
	unsigned int ktab_bits;				 /* log2 of the slot count */
	size_t ktab_count;				 /* live entries */
	struct kmc_pcp_list pcp_large[KM_MAX_ORDER + 1]; /* per page order (1..10) */
	uint64_t pcp_large_bytes;			 /* bytes on the pcp_large lists */
	uint64_t pcp_large_high;			 /* at most this many */

	/* vmalloc.c, under vm_lock: sorted by start. */
	pthread_mutex_t vm_lock;
	struct kmc_varea **vareas;
	size_t nr_vareas;
	size_t cap_vareas;
	struct kmc_varea *vkept[KMC_VKEEP_MAX]; /* freed, kept mapped for reuse, oldest first */
	unsigned int nr_vkept;
	uint64_t vkept_bytes;  /* frames' bytes of the kept areas */
	uint64_t vkept_budget; /* at most this many (0: none kept) */

	/* share.c, under vm_lock. */
	struct kmc_map dimports; /* phys -> newest struct kmc_dimport there */
	struct kmc_map imports;	 /* grant id -> held import (kmc_varea or, tagged, kmc_dimport) */
	size_t nr_dimports;	 /* records in dimports, revoked ones too (atomic) */
	size_t nr_imports;	 /* imports held, not revoked (atomic): events matter */
	uint64_t revoked_ring[KMC_REVOKED_RING]; /* ids revoked before recorded */
	unsigned int revoked_pos;
};

/* connect.c */
/* A client over @fd, a connected SOCK_SEQPACKET socket to kmallocd (or to a
 * daemon core a test runs, tests/lib/inproc.h): Hello, the direct map, the
 * lists, as km_connect() does after its connect(). @fd belongs to the client
 * from then on (made blocking and close-on-exec; closed on failure too).
 * 0 and *out, or -errno. Not exported from the shared library. */
int kmc_connect_fd(int fd, struct km_client **out);
void kmc_debug_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define kmc_dbg(c, ...)                                                                            \
	do {                                                                                       \
		if ((c)->debug)                                                                    \
			kmc_debug_print(__VA_ARGS__);                                              \
	} while (0)

static inline bool kmc_in_direct_map(const struct km_client *c, const void *p)
{
	return (uintptr_t)p - (uintptr_t)c->base < c->pool_size;
}

void kmc_populate(struct km_client *c, uint64_t phys, uint64_t len);

/* rpc.c: each returns 0 or -errno (a daemon error reply becomes -Reply.error). */
int kmc_rpc_init(struct km_client *c);
void kmc_rpc_destroy(struct km_client *c);
size_t kmc_rpc_max_ids(const struct km_client *c);
int kmc_rpc_hello(struct km_client *c, struct kmc_welcome *out, int *memfd);
int kmc_rpc_alloc(struct km_client *c, uint64_t size, km_gfp_t gfp, uint32_t count,
		  struct kmc_grant *out);
/* @memfd: NULL, or for a KM_GFP_SHARED area where its memfd goes (the
 * caller closes it). */
int kmc_rpc_vmalloc(struct km_client *c, uint64_t size, km_gfp_t gfp, uint64_t vaddr,
		    const char *caller, uint64_t *id, uint32_t *frames, uint32_t nr_frames,
		    int *memfd);
/* A KM_GFP_SHARED kmalloc (Alloc, count 1): the grant, and its memfd. */
int kmc_rpc_alloc_shared(struct km_client *c, uint64_t size, km_gfp_t gfp, struct kmc_grant *out,
			 int *memfd);
int kmc_rpc_free(struct km_client *c, const uint64_t *ids, size_t n);
/* kmc_rpc_free(), and the release queue for whatever it could not free:
 * for grants the client has let go of, which must go back one way or the
 * other. */
void kmc_rpc_give_back(struct km_client *c, const uint64_t *ids, size_t n);
int kmc_rpc_nop(struct km_client *c);
/* Whole slabs of the class of @size (SlabAlloc): @count grants into @out
 * (phys, size: the slab's bytes). */
int kmc_rpc_slabs(struct km_client *c, uint64_t size, km_gfp_t gfp, uint32_t count,
		  struct kmc_grant *out);
/* Queues grant @id to be given back with the next request; a queue that
 * grows long goes out at once without waiting for its answer. */
void kmc_rpc_release(struct km_client *c, uint64_t id);
/* Sends what is queued now, without waiting (vfree, large kfree: the
 * memory goes back promptly, the caller does not wait a round trip). */
void kmc_rpc_release_now(struct km_client *c);
int kmc_rpc_meminfo(struct km_client *c, km_meminfo *out);
/* Export of grant @grant (@offset, @size: an object of a slab grant, else 0). */
int kmc_rpc_export(struct km_client *c, uint64_t grant, uint64_t offset, uint64_t size,
		   const km_export_limits *lim, km_handle *out);

/* What an ImportReply said, checked against the pool (kmc_rpc_import()). */
enum kmc_import_kind {
	KMC_IMPORT_KMALLOC, /* same domain: size bytes at phys of the direct map */
	KMC_IMPORT_VMALLOC, /* same domain: frames of the domain memfd */
	KMC_IMPORT_MEMFD,   /* a memfd of its own: map map_size bytes from 0 */
};
struct kmc_import_reply {
	uint64_t id, share, phys, size, map_size;
	enum kmc_import_kind kind;
	bool rdonly;
	int memfd;	  /* KMC_IMPORT_MEMFD: the descriptor (the caller closes it), else -1 */
	uint32_t *frames; /* malloc()ed (the caller frees it), or NULL */
	uint32_t nr_frames;
};
/* The import's grant is given back when the reply does not check out. */
int kmc_rpc_import(struct km_client *c, const km_handle *h, bool rdonly,
		   struct kmc_import_reply *out);
int kmc_rpc_revoke(struct km_client *c, const km_handle *h, uint32_t *ended);
/* Reads what the socket holds without blocking, unless a thread is the
 * reader already; then applies queued events. No lock may be held. */
void kmc_rpc_poll(struct km_client *c);
/* The revoked import ids events queued (malloc()ed, the caller frees it;
 * *n of them), emptying the queue. */
uint64_t *kmc_rpc_take_events(struct km_client *c, size_t *n);

/* kmalloc.c */
int kmc_ktab_init(struct km_client *c);
void kmc_ktab_destroy(struct km_client *c);
/* Gives back what this client keeps but does not use: the calling thread's
 * magazines, empty slabs, large blocks on lists. True when anything went
 * (an allocation refused for want of memory is then worth retrying). */
bool kmc_drain_caches(struct km_client *c);

/* slab.c */
int kmc_slab_init(struct km_client *c);
void kmc_slab_destroy(struct km_client *c);
/* Fills @m with up to @want objects of class @idx from the client's slabs,
 * asking the daemon for slabs when none has one free. 0 (at least one
 * object) or -errno. */
int kmc_slab_fill(struct km_client *c, unsigned int idx, struct kmc_mag *m, uint32_t want,
		  km_gfp_t gfp);
/* Gives every object of @m beyond the @keep newest back to its slab. */
void kmc_slab_drain_mag(struct km_client *c, unsigned int idx, struct kmc_mag *m, uint32_t keep);
/* A freed object straight back into its slab (no magazine at hand). */
void kmc_slab_put(struct km_client *c, struct kmc_slab *s, uint32_t idx);
/* km_kfree() of an EXPORTED object: it becomes GONE (never reused); the
 * slab goes back once its other objects are free. False when the object is
 * no longer EXPORTED (a double free). */
bool kmc_slab_gone(struct km_client *c, struct kmc_slab *s, uint32_t idx);
/* Marks the USED object @idx EXPORTED (*was: it was already). -EINVAL when
 * it is neither. kmc_slab_export_undo() puts it back to USED. */
int kmc_slab_export_begin(struct km_client *c, struct kmc_slab *s, uint32_t idx, bool *was);
void kmc_slab_export_undo(struct km_client *c, struct kmc_slab *s, uint32_t idx);
/* True when @p lies in a slab of ours. */
bool kmc_slab_owns(const struct km_client *c, const void *p);

/* The slab of ours whose object @p starts (whatever its state) and the
 * object's index, or NULL: not in a slab of ours, or not an object start.
 * Lock-free: a descriptor is never freed while the client lives, so a race
 * with a release reads a stale descriptor and fails the checks. */
static inline struct kmc_slab *kmc_slab_of(const struct km_client *c, const void *p, uint32_t *idx)
{
	uint64_t off = (uintptr_t)p - (uintptr_t)c->base, in;
	struct kmc_slab *s;

	if (off >= c->pool_size)
		return NULL;
	s = c->pagemap[off >> KM_PAGE_SHIFT];
	if (!s)
		return NULL;
	in = off - s->phys;
	if (in >= s->end)
		return NULL; /* past the last object, or a descriptor reused meanwhile */
	*idx = (uint32_t)((in * s->magic) >> 32);
	if ((uint64_t)*idx * s->size != in)
		return NULL; /* inside an object */
	return s;
}
/* Gives every empty slab back (synchronously). True when any went. */
bool kmc_slab_release_empty(struct km_client *c);

/* tcache.c */
int kmc_tcache_init(struct km_client *c);
void kmc_tcache_destroy(struct km_client *c);
/* The calling thread's cache for @c, made on first use; NULL when none can
 * be (no key, no memory): callers then go through the slabs. */
struct kmc_tcache *kmc_tcache_slow(struct km_client *c);
/* Empties the calling thread's magazines into the slabs. */
void kmc_tcache_drain_self(struct km_client *c);

static inline struct kmc_tcache *kmc_tcache(struct km_client *c)
{
	if (__builtin_expect(kmc_tls.uid == c->uid, 1))
		return kmc_tls.tc;
	return kmc_tcache_slow(c);
}

/* pcp.c: the lists live under ktab_lock */
int kmc_pcp_init(struct km_client *c);
void kmc_pcp_destroy(struct km_client *c);
struct kmc_pcp_list *kmc_pcp_list_for(struct km_client *c, uint64_t ksize);
bool kmc_pcp_pop_locked(struct km_client *c, struct kmc_pcp_list *l, struct kmc_kobj *out);
bool kmc_pcp_push_locked(struct km_client *c, struct kmc_pcp_list *l, const struct kmc_kobj *o);
/* Gives every listed object back to the daemon. */
int kmc_pcp_drain(struct km_client *c);
/* kmc_pcp_drain() if the lists hold anything; true when something went back. */
bool kmc_pcp_drain_if_any(struct km_client *c);

/* kmalloc.c: the grant of the large kmalloc (or KMCLIENT_NO_CACHE object)
 * @p starts, marked exported (*was: it was already); -EINVAL if none. */
int kmc_ktab_export_begin(struct km_client *c, const void *p, uint64_t *grant, bool *was);
void kmc_ktab_export_undo(struct km_client *c, const void *p, uint64_t grant);

/* vmalloc.c: the area table */
enum kmc_free_how {
	KMC_FREE_KFREE, /* km_kfree(): not of a plain vmalloc area */
	KMC_FREE_VFREE, /* km_vfree(), km_kvfree() */
};
void kmc_vmalloc_init(struct km_client *c);
/* A zeroed area record with room for @nr_frames frame numbers, phys unknown. */
struct kmc_varea *kmc_area_new(uint32_t nr_frames);
/* Reserves @len bytes of PROT_NONE address space aligned to @align. */
int kmc_area_reserve(size_t len, size_t align, uintptr_t *out);
/* Maps @a's frames of the domain memfd at a->start with @prot. */
int kmc_area_map_frames(struct km_client *c, const struct kmc_varea *a, int prot);
/* Maps a->span bytes of @fd from @offset at a->start with @prot. */
int kmc_area_map_fd(struct km_client *c, const struct kmc_varea *a, int fd, uint64_t offset,
		    int prot);
/* The area whose mapped bytes contain @addr, or NULL (vm_lock held). */
struct kmc_varea *kmc_area_find_locked(const struct km_client *c, uintptr_t addr);
/* The area whose caller's pointer is @p, or NULL (vm_lock held). */
struct kmc_varea *kmc_area_at_locked(const struct km_client *c, const void *p);
int kmc_area_insert_locked(struct km_client *c, struct kmc_varea *a);
/* Frees the area @p is the pointer of, as @how may: unmaps it and gives its
 * grant back. False when there is none. */
bool kmc_area_free(struct km_client *c, const void *p, enum kmc_free_how how);
uint64_t kmc_area_ksize(struct km_client *c, const void *p);
uint64_t kmc_area_phys(struct km_client *c, const void *p);
int kmc_area_export_begin(struct km_client *c, const void *p, uint64_t *grant, bool *was);
void kmc_area_export_undo(struct km_client *c, const void *p, uint64_t grant);
/* A KM_GFP_SHARED kmalloc: whole frames of a memfd of their own. */
int kmc_shared_kmalloc(struct km_client *c, size_t size, km_gfp_t gfp, void **out);
int kmc_vmalloc(struct km_client *c, size_t size, km_gfp_t gfp, const void *ret_addr,
		const char *fallback_caller, void **out);
void kmc_vfree(struct km_client *c, const void *p);
void kmc_varea_destroy_all(struct km_client *c);
/* Gives every kept (freed) area back now. True when any went. */
bool kmc_vkept_drain(struct km_client *c);

/* share.c */
void kmc_share_destroy(struct km_client *c);
/* Applies the revocations events queued (rpc.c calls it, no lock held). */
void kmc_share_events(struct km_client *c);
/* @a, an import area leaving the area table: out of the imports (vm_lock held). */
void kmc_import_forget_locked(struct km_client *c, const struct kmc_varea *a);
/* km_kfree() of a direct-map import at @p: drops the newest one (held or
 * revoked). False if none. */
bool kmc_dimport_drop(struct km_client *c, const void *p);
/* The bytes of the newest direct-map import at @p, 0 if none. */
uint64_t kmc_dimport_size(struct km_client *c, const void *p);

/*
 * Called first by every library call that is not a pure fast path: reads
 * the events the daemon may have sent (revocations) and applies them. A
 * client that holds no import pays one load: nothing can be revoked.
 */
static inline void kmc_share_poll(struct km_client *c)
{
	if (__builtin_expect(__atomic_load_n(&c->nr_imports, __ATOMIC_RELAXED) != 0, 0))
		kmc_rpc_poll(c);
}
