/* SPDX-License-Identifier: MIT */
/*
 * kmalloc-abi.h - the numbers both ends of the kmalloc broker share: page
 * and frame geometry, the kmalloc size classes, the GFP bits and the
 * protocol version. Each is defined here once; the daemon, kmctl and
 * libkmclient include this file, and the public kmclient.h exposes it (it
 * is installed beside it). Everything else is derived from these in the
 * files that use it, and checked against them at build time
 * (proto/sizes.h, daemon/slab.c).
 *
 * Plain preprocessor constants, no types and no code, so that bindings in
 * other languages can take the numbers from here as well as from
 * proto/kmalloc.proto. The values are the Linux kernel's on x86_64 with
 * 4 KiB pages, 6.12 (docs/kernel.md).
 */
#ifndef KMALLOC_ABI_H
#define KMALLOC_ABI_H

/* Hello.version and Welcome.version of this protocol (proto/kmalloc.proto). */
#define KM_PROTOCOL_VERSION 1

/* ---- geometry ----------------------------------------------------------- */

/* PAGE_SHIFT: the allocators' unit; pfn = phys >> KM_PAGE_SHIFT. */
#define KM_PAGE_SHIFT 12
#define KM_PAGE_SIZE  (1u << KM_PAGE_SHIFT)
/* MAX_PAGE_ORDER: the largest block the page allocator hands out (4 MiB). */
#define KM_MAX_ORDER 10
/* A frame: one backing hugepage (2 MiB), the unit a domain owns. */
#define KM_FRAME_SHIFT 21
#define KM_FRAME_SIZE  (1ull << KM_FRAME_SHIFT)
#define KM_FRAME_ORDER (KM_FRAME_SHIFT - KM_PAGE_SHIFT) /* 9 */

/* ---- kmalloc ------------------------------------------------------------ */

/* KMALLOC_MIN_SIZE and ARCH_KMALLOC_MINALIGN. */
#define KM_KMALLOC_MIN_SIZE 8u
/* KMALLOC_MAX_CACHE_SIZE = 2^(PAGE_SHIFT + 1): larger kmallocs are whole
 * pages (kmalloc_large). */
#define KM_KMALLOC_MAX_CACHE_SIZE (KM_PAGE_SIZE << 1)
/* KMALLOC_MAX_SIZE: a kmalloc of more fails, as order > MAX_PAGE_ORDER. */
#define KM_KMALLOC_MAX_SIZE (KM_PAGE_SIZE << KM_MAX_ORDER)

/*
 * The kmalloc size classes (mm/slab_common.c: kmalloc_info[]), smallest
 * first: X(name, object size, slab order, objects per slab). Slab orders and
 * objects per slab are SLUB's calculate_order() on 2 CPUs
 * (daemon/slab.c computes them again and test-slab compares).
 */
/* clang-format off */
#define KM_KMALLOC_CLASSES(X)				\
	X("kmalloc-8",      8, 0, 512)			\
	X("kmalloc-16",    16, 0, 256)			\
	X("kmalloc-32",    32, 0, 128)			\
	X("kmalloc-64",    64, 0,  64)			\
	X("kmalloc-96",    96, 0,  42)			\
	X("kmalloc-128",  128, 0,  32)			\
	X("kmalloc-192",  192, 0,  21)			\
	X("kmalloc-256",  256, 0,  16)			\
	X("kmalloc-512",  512, 1,  16)			\
	X("kmalloc-1k",  1024, 2,  16)			\
	X("kmalloc-2k",  2048, 3,  16)			\
	X("kmalloc-4k",  4096, 3,   8)			\
	X("kmalloc-8k",  8192, 3,   4)
#define KM_NR_KMALLOC_CLASSES	13
/* clang-format on */

/* ---- GFP bits (include/linux/gfp_types.h, 6.12) --------------------------- */

#define KM___GFP_HIGH		0x20u /* may use the emergency reserve */
#define KM___GFP_IO		0x40u
#define KM___GFP_FS		0x80u
#define KM___GFP_ZERO		0x100u /* clear the memory */
#define KM___GFP_DIRECT_RECLAIM 0x400u /* may sleep while memory is reclaimed */
#define KM___GFP_KSWAPD_RECLAIM 0x800u
#define KM___GFP_NOWARN		0x2000u	 /* no failure warning in the daemon's log */
#define KM___GFP_RETRY_MAYFAIL	0x4000u	 /* retry hard, may fail */
#define KM___GFP_NOFAIL		0x8000u	 /* never fail */
#define KM___GFP_NORETRY	0x10000u /* one try, no reclaim */
/* The broker's own bit, above the kernel's: a grant backed by a memfd of its
 * own (whole frames), so that another trust domain may import it. */
#define KM___GFP_SHARED 0x10000000u

#define KM_GFP_KERNEL                                                                              \
	(KM___GFP_DIRECT_RECLAIM | KM___GFP_KSWAPD_RECLAIM | KM___GFP_IO | KM___GFP_FS)
#define KM_GFP_NOWAIT	     (KM___GFP_KSWAPD_RECLAIM | KM___GFP_NOWARN)
#define KM_GFP_ATOMIC	     (KM___GFP_HIGH | KM___GFP_KSWAPD_RECLAIM)
#define KM_GFP_HIGH	     KM___GFP_HIGH
#define KM_GFP_NOFAIL	     KM___GFP_NOFAIL
#define KM_GFP_NORETRY	     KM___GFP_NORETRY
#define KM_GFP_RETRY_MAYFAIL KM___GFP_RETRY_MAYFAIL
#define KM_GFP_NOWARN	     KM___GFP_NOWARN
#define KM_GFP_ZERO	     KM___GFP_ZERO
#define KM_GFP_SHARED	     KM___GFP_SHARED

#endif /* KMALLOC_ABI_H */
