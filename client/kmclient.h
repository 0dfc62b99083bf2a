/* SPDX-License-Identifier: MIT */
/*
 * kmclient.h - the client library of the kmalloc broker (libkmclient).
 *
 * A km_client is one connection to kmallocd. It maps its trust domain's memfd
 * once (the "direct map"), so kmalloc memory sits at base + phys and costs no
 * mmap. Small kmallocs (up to 8 KiB) are carved from whole slabs the client
 * holds, through per-thread caches: most cost no lock and no round trip
 * (set KMCLIENT_NO_CACHE=1 for one grant and one round trip each). vmalloc
 * areas are stitched together from whole frames with MAP_FIXED. The names and semantics follow the
 * Linux kernel's allocators (kmalloc, kzalloc, krealloc, ksize, vmalloc, kvmalloc) with a km_client
 * first argument.
 *
 * Errors: functions returning pointers return NULL, int functions return -1,
 * and errno is set: ENOMEM (the pool cannot serve the request, or the size
 * overflows), EDQUOT (the request would take the caller's uid past one of its
 * limits: bytes or grants held, see `kmctl limits`), EINVAL (bad argument),
 * EACCES (km_connect(): the daemon refuses this uid, or it has too many
 * connections), EFAULT (cleared memory could not be had because a client of
 * this uid punched pool memory out of the domain memfd), ECONNRESET (the
 * daemon went away), EPROTO (protocol error).
 *
 * Thread safety: every function may be called concurrently on one km_client,
 * and any thread may free what another allocated. Each thread keeps a few
 * free objects per size class for itself; they go back when it exits.
 * km_disconnect() must not race with other calls on the same client.
 *
 * Diagnostics: the library prints nothing unless the environment has
 * KMCLIENT_DEBUG=1; then it writes one line to stderr per notable event
 * (a kfree of an unknown pointer, an error reply, a lost connection).
 */
#ifndef KMCLIENT_H
#define KMCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct km_client km_client;

/* GFP flags (KM_GFP_KERNEL, KM_GFP_ATOMIC, KM___GFP_ZERO, ...), the page and
 * frame geometry (KM_PAGE_SIZE, KM_KMALLOC_MAX_CACHE_SIZE, KM_KMALLOC_MAX_SIZE)
 * and the kmalloc size classes: the Linux kernel's values, shared with the
 * daemon, defined once in kmalloc-abi.h (installed beside this header). */
#include "kmalloc-abi.h"

typedef unsigned int km_gfp_t;

/* What a size-0 kmalloc returns: not NULL, never to be dereferenced. */
#define KM_ZERO_SIZE_PTR       ((void *)16)
#define KM_ZERO_OR_NULL_PTR(p) ((uintptr_t)(p) <= (uintptr_t)KM_ZERO_SIZE_PTR)

/* Pool totals, in bytes (km_get_meminfo), as /proc/meminfo shows the kernel's. */
typedef struct km_meminfo {
	uint64_t total;	       /* pool size */
	uint64_t free;	       /* held by nobody; empty slabs count in slab */
	uint64_t slab;	       /* slab caches and large kmallocs */
	uint64_t vmalloc_used; /* frames held by vmalloc areas */
	uint64_t reserve;      /* emergency reserve (min watermark) */
	uint64_t frame_size;   /* bytes per frame (2 MiB) */
	uint64_t hugetlb;      /* 1 when the pool is hugepage-backed */
	uint64_t available;    /* free + what reclaim could free */
	uint64_t quarantined;  /* out of use: no memfd would give it back (HardwareCorrupted) */
} km_meminfo;

/**
 * km_connect() - connect to kmallocd and map the domain's memory.
 * @socket_path: the daemon's socket; NULL means $KMALLOC_SOCKET, else
 *	"/run/kmalloc/kmallocd.sock".
 *
 * Return: a client, or NULL with errno (ENOENT/ECONNREFUSED: no daemon,
 * EACCES: the daemon refuses this uid (allow list, connection limit),
 * EPROTO: protocol mismatch, ENOMEM).
 */
km_client *km_connect(const char *socket_path);

/**
 * km_disconnect() - close the connection; every grant of @c is given back and
 * every pointer obtained through @c becomes invalid. NULL is a no-op.
 */
void km_disconnect(km_client *c);

/**
 * km_kmalloc() - physically contiguous memory, not cleared.
 * @size: bytes. 0 returns KM_ZERO_SIZE_PTR. Up to 8 KiB the size is rounded
 *	up to a slab class (8, 16, 32, 64, 96, 128, 192, 256, 512, 1k, 2k, 4k,
 *	8k), above it to a power-of-two number of pages, up to 4 MiB.
 * @gfp: KM_GFP_* flags.
 *
 * Alignment: 8 bytes at least; power-of-two sizes are aligned to their size.
 * Return: the memory, or NULL with errno ENOMEM (also for size > 4 MiB).
 */
void *km_kmalloc(km_client *c, size_t size, km_gfp_t gfp);

/** km_kzalloc() - km_kmalloc() with KM_GFP_ZERO. */
void *km_kzalloc(km_client *c, size_t size, km_gfp_t gfp);

/** km_kcalloc() - zeroed array of @n elements; NULL with ENOMEM if n * size overflows. */
void *km_kcalloc(km_client *c, size_t n, size_t size, km_gfp_t gfp);

/**
 * km_krealloc() - resize kmalloc memory as the kernel's krealloc() does.
 * If @new_size fits in ksize(@p), @p itself is returned (the bytes past
 * new_size are cleared with KM_GFP_ZERO). Otherwise new memory is allocated,
 * ksize(@p) bytes are copied and @p is freed. @p NULL or KM_ZERO_SIZE_PTR acts
 * as km_kmalloc(); @new_size 0 frees @p and returns KM_ZERO_SIZE_PTR.
 * Return: the memory, or NULL with errno (ENOMEM; EINVAL if @p is not the
 * start of a live kmalloc); @p is then untouched.
 */
void *km_krealloc(km_client *c, const void *p, size_t new_size, km_gfp_t gfp);

/**
 * km_kfree() - free kmalloc memory. NULL and KM_ZERO_SIZE_PTR are no-ops. A
 * pointer that is not the start of a live kmalloc of @c (a second free, a
 * pointer inside an object, another client's object) changes nothing and sets
 * errno to EINVAL (logged with KMCLIENT_DEBUG=1). Never waits for the daemon:
 * a small object goes back to the calling thread's cache and its slab, to be
 * handed out again; a large block is kept for the next kmalloc of its order or
 * goes back to the daemon at once, without waiting for an answer.
 */
void km_kfree(km_client *c, const void *p);

/** km_ksize() - usable size of kmalloc memory @p (its class size); 0 for NULL,
 * KM_ZERO_SIZE_PTR or a pointer that is not the start of a kmalloc. */
size_t km_ksize(km_client *c, const void *p);

/**
 * km_vmalloc() - virtually contiguous memory made of whole frames allocated
 * one by one, followed by an inaccessible guard frame. Not cleared.
 * Return: page-aligned memory, or NULL with errno (EINVAL for size 0, ENOMEM).
 */
void *km_vmalloc(km_client *c, size_t size);

/** km_vzalloc() - km_vmalloc(), cleared. */
void *km_vzalloc(km_client *c, size_t size);

/** km___vmalloc() - km_vmalloc() with explicit @gfp (KM_GFP_ZERO, KM_GFP_NOWARN, ...). */
void *km___vmalloc(km_client *c, size_t size, km_gfp_t gfp);

/** km_vfree() - free a vmalloc area (its start address). Never waits for the
 * daemon: the area is kept mapped for the next km_vmalloc() of as many frames
 * (two areas and 1/8 of the pool at most), or unmapped and its frames given
 * back at once. NULL is a no-op; an address that does not start an area is
 * ignored (logged with KMCLIENT_DEBUG=1). */
void km_vfree(km_client *c, const void *p);

/**
 * km_kvmalloc() - kmalloc, falling back to vmalloc as the kernel's kvmalloc():
 * the kmalloc attempt of a size above one page gets KM_GFP_NOWARN and
 * KM_GFP_NORETRY (unless KM_GFP_RETRY_MAYFAIL) and loses KM_GFP_NOFAIL; sizes up
 * to one page never fall back, and neither do gfps that may not sleep
 * (KM_GFP_ATOMIC, KM_GFP_NOWAIT).
 */
void *km_kvmalloc(km_client *c, size_t size, km_gfp_t gfp);

/** km_kvfree() - free memory from km_kvmalloc(), km_kmalloc() or km_vmalloc(). */
void km_kvfree(km_client *c, const void *p);

/**
 * km_kmalloc_bulk() - @n objects of @size bytes into @out, all or nothing:
 * small ones from the client's slabs (a round trip only when they run out),
 * large ones in one round trip per 1024.
 * Return: n, or -1 with errno (nothing is allocated then).
 */
int km_kmalloc_bulk(km_client *c, size_t size, km_gfp_t gfp, size_t n, void **out);

/** km_kfree_bulk() - free @n kmalloc pointers, as km_kfree() each (large ones
 * go back in one round trip per 1024). */
void km_kfree_bulk(km_client *c, size_t n, void **p);

/** km_virt_to_phys() - pool offset of any byte of kmalloc memory, or UINT64_MAX. */
uint64_t km_virt_to_phys(km_client *c, const void *p);

/** km_vmalloc_to_pfn() - page frame number (phys >> 12) behind any byte of a
 * vmalloc area, or UINT64_MAX. */
uint64_t km_vmalloc_to_pfn(km_client *c, const void *p);

/** km_get_meminfo() - pool totals. Return: 0, or -1 with errno. */
int km_get_meminfo(km_client *c, km_meminfo *out);

/* ---- sharing ---------------------------------------------------------------
 *
 * A grant (a kmalloc, even a small one, a vmalloc or kvmalloc area, or an
 * import) is shared through a handle: 32 bytes, 24 of them random, that may
 * travel by any means (pipe, environment, file; km_handle_format() gives it
 * as text). Every holder holds a reference: the exporter's own allocation and
 * each import. Freeing (km_kfree(), km_vfree(), km_kvfree()), disconnecting
 * or dying drops only the caller's reference; the memory goes back to the
 * pool when the last holder lets go. A handle holds nothing: once the memory
 * is gone, importing it fails with ENOENT.
 *
 * Within a trust domain (processes of one uid) an import of a kmalloc is the
 * same memory at the same phys in the importer's direct map, and of a vmalloc
 * area the same frames mapped side by side. Across domains only memory
 * allocated with KM_GFP_SHARED can be imported: it lives in a memfd of its
 * own (whole 2 MiB frames, still counted in the pool and the exporter's
 * domain), and the importer maps that memfd, never a domain's.
 */

/* An exported grant's name. Unguessable: 192 random bits. */
typedef struct km_handle {
	uint8_t bytes[32];
} km_handle;

/* Bytes km_handle_format() writes, the NUL included (64 hex digits). */
#define KM_HANDLE_STRLEN 65

/* km_import_flags(): map the memory read-only; a write faults. Across
 * domains the importer gets a read-only descriptor and cannot make the
 * mapping writable; within a domain it is a read-only view of memory the
 * uid may write anyway (a guard against mistakes, not against the uid). */
#define KM_IMPORT_RDONLY 0x1u

/* What an exporter may restrict a handle to (km_export_limited()). */
typedef struct km_export_limits {
	unsigned int flags;	  /* KM_EXPORT_UID, KM_EXPORT_RDONLY */
	uint32_t uid;		  /* with KM_EXPORT_UID: the only uid that may import */
	unsigned int max_imports; /* imports through this handle; 0: any number (1: one use) */
	uint64_t lifetime_ms;	  /* the handle expires this long after the export; 0: never */
} km_export_limits;
#define KM_EXPORT_UID	 0x1u /* only km_export_limits.uid may import */
#define KM_EXPORT_RDONLY 0x2u /* every import through the handle is read-only */

/**
 * km_export() - share the grant @p starts (as returned by an allocation or
 * an import) through a new handle in @out. Each call makes a new handle.
 * Return: 0, or -1 with errno (EINVAL: @p is not the start of a live grant
 * of @c; ENOMEM; EDQUOT).
 */
int km_export(km_client *c, const void *p, km_handle *out);

/** km_export_limited() - km_export() with restrictions (@lim may be NULL). */
int km_export_limited(km_client *c, const void *p, const km_export_limits *lim, km_handle *out);

/**
 * km_import() - the memory a handle names, as another holder of it.
 * @size_out: if not NULL, the bytes shared.
 * Return: the memory (free it with km_kvfree()), or NULL with errno:
 * ENOENT (nobody exported it, or its memory is gone), EACCES (revoked,
 * expired, used up, meant for another uid, or of another domain and not
 * allocated with KM_GFP_SHARED), EDQUOT, ENOMEM.
 */
void *km_import(km_client *c, const km_handle *h, size_t *size_out);

/** km_import_flags() - km_import() with KM_IMPORT_RDONLY. */
void *km_import_flags(km_client *c, const km_handle *h, unsigned int flags, size_t *size_out);

/**
 * km_revoke() - end handle @h (exported by this uid): no import through it
 * any more, and every import made through it ends. Each importer's library
 * is told by an event and makes the mapping inaccessible (PROT_NONE) the next
 * time it reads from the daemon: the daemon cannot take a mapping away from
 * another process, but it stops counting the import as held at once, and a
 * stale mapping can only ever show the importer's own domain or holes,
 * never another client's memory. The exporter's own reference stays.
 * Return: the number of imports ended, or -1 with errno (ENOENT: no such
 * handle; EACCES: another uid's).
 */
int km_revoke(km_client *c, const km_handle *h);

/** km_handle_format() - @h as 64 hex digits and a NUL in @buf (@len >=
 * KM_HANDLE_STRLEN). Return: 64, or -1 with errno ERANGE. */
int km_handle_format(const km_handle *h, char *buf, size_t len);

/** km_handle_parse() - the handle km_handle_format() wrote in @s (surrounding
 * white space allowed). Return: 0, or -1 with errno EINVAL. */
int km_handle_parse(const char *s, km_handle *out);

#ifdef __cplusplus
}
#endif

#endif /* KMCLIENT_H */
