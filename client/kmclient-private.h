/* SPDX-License-Identifier: MIT */
/*
 * kmclient-private.h - struct km_client and the prototypes that the files of
 * libkmclient call across each other, grouped by the file that defines them.
 *
 * Locks:
 *   ktab_lock  kmalloc.c's phys -> grant table and pcp.c's lists
 *   vm_lock    vmalloc.c's area array
 *   lock       rpc.c: pending calls, reader role, next id, release queue
 *   send_lock  rpc.c: the socket's send side and the send buffer; taking
 *              ids off the release queue (they leave it once sent)
 * Lock order: send_lock, then lock (rpc.c copies and commits the release
 * queue under both). ktab_lock and vm_lock are never held with another lock,
 * nor across a round trip.
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

#include "kmclient.h"
#include "sizes.h"

#define KM_EXPORT __attribute__((visibility("default")))

#define KMC_RELEASE_MAX	     32	   /* deferred kfree ids riding on the next request */
#define KMC_MAX_IDS	     1024u /* ids per Free, objects per Alloc (protocol cap) */
#define KMC_PENDING_BUCKETS  64	   /* rpc.c pending-call hash, a power of two */
#define KMC_DIRECT_MAP_ALIGN ((uint64_t)KM_KMALLOC_MAX_SIZE) /* keeps buddy alignment */

struct kmc_call;

/* One live kmalloc grant, a slot of the open-addressing table in kmalloc.c. */
struct kmc_kobj {
	uint64_t phys; /* first byte in the pool; KMC_KOBJ_EMPTY if the slot is free */
	uint64_t id;   /* grant id */
	uint64_t size; /* usable bytes (ksize) */
};

/* One vmalloc area. The reservation is exactly [start, start + len): the
 * frames, then one PROT_NONE guard frame. */
struct kmc_varea {
	uintptr_t start; /* first byte, frame-aligned */
	size_t len;	 /* bytes reserved: (nr_frames + 1) frames */
	uint64_t id;	 /* grant id */
	uint32_t nr_frames;
	uint32_t frames[]; /* frame numbers, in virtual order */
};

/* A per-client list of freed objects of one slab class or page order (pcp.c). */
struct kmc_pcp_list {
	uint32_t nr;	       /* objects on the list */
	uint32_t high;	       /* at most this many are kept */
	uint32_t batch;	       /* objects asked for at once on a miss */
	struct kmc_kobj *objs; /* a stack of high entries */
};

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
	int sock;   /* SOCK_SEQPACKET to kmallocd */
	int memfd;  /* the domain memfd: direct map and vmalloc frames */
	bool debug; /* KMCLIENT_DEBUG set: one stderr line per notable event */

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
	uint64_t release[KMC_RELEASE_MAX]; /* deferred kfree grant ids, oldest first */
	unsigned int nr_release;	   /* ids leave only under send_lock too (rpc.c) */
	uint8_t *recvbuf;		   /* WIRE_MAX_REPLY bytes, used by the reader only */

	/* rpc.c, under send_lock. */
	pthread_mutex_t send_lock;
	uint8_t *sendbuf;
	size_t sendcap; /* bytes: the daemon's max_packet, at most the buffer */

	/* kmalloc.c, under ktab_lock. */
	pthread_mutex_t ktab_lock;
	struct kmc_kobj *ktab;
	unsigned int ktab_bits;				      /* log2 of the slot count */
	size_t ktab_count;				      /* live entries */
	struct kmc_pcp_list pcp_small[KM_NR_KMALLOC_CLASSES]; /* per slab class */
	struct kmc_pcp_list pcp_large[KM_MAX_ORDER + 1];      /* per page order (1..10) */
	uint64_t pcp_large_bytes;			      /* bytes on the pcp_large lists */
	uint64_t pcp_large_high;			      /* at most this many */

	/* vmalloc.c, under vm_lock: sorted by start. */
	pthread_mutex_t vm_lock;
	struct kmc_varea **vareas;
	size_t nr_vareas;
	size_t cap_vareas;
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
int kmc_rpc_vmalloc(struct km_client *c, uint64_t size, km_gfp_t gfp, uint64_t vaddr,
		    const char *caller, uint64_t *id, uint32_t *frames, uint32_t nr_frames);
int kmc_rpc_free(struct km_client *c, const uint64_t *ids, size_t n);
/* kmc_rpc_free(), and the release queue for whatever it could not free:
 * for grants the client has let go of, which must go back one way or the
 * other. */
void kmc_rpc_give_back(struct km_client *c, const uint64_t *ids, size_t n);
int kmc_rpc_nop(struct km_client *c);
void kmc_rpc_release(struct km_client *c, uint64_t id);
int kmc_rpc_meminfo(struct km_client *c, km_meminfo *out);

/* kmalloc.c */
int kmc_ktab_init(struct km_client *c);
void kmc_ktab_destroy(struct km_client *c);

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

/* vmalloc.c */
int kmc_vmalloc(struct km_client *c, size_t size, km_gfp_t gfp, const void *ret_addr,
		const char *fallback_caller, void **out);
void kmc_vfree(struct km_client *c, const void *p);
void kmc_varea_destroy_all(struct km_client *c);
