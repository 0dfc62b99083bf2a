/* SPDX-License-Identifier: MIT */
/*
 * sizes.h - how a kmalloc size maps to a slab class or a page order, shared
 * by the daemon (which allocates by it) and libkmclient (which caches freed
 * objects by it). The kernel's kmalloc_slab() and get_order()
 * (docs/kernel.md, "kmalloc"): the classes of kmalloc-abi.h, then
 * 2^order pages up to KM_MAX_ORDER. Build-time checks tie the class table
 * to the geometry it must agree with.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kmalloc-abi.h"

#define KMS_SIZE_(name, size, order, objs) size,
static const uint32_t kms_class_size[KM_NR_KMALLOC_CLASSES] = { KM_KMALLOC_CLASSES(KMS_SIZE_) };
#undef KMS_SIZE_
#define KMS_ORDER_(name, size, order, objs) order,
static const uint8_t kms_class_order[KM_NR_KMALLOC_CLASSES] = { KM_KMALLOC_CLASSES(KMS_ORDER_) };
#undef KMS_ORDER_
#define KMS_OBJS_(name, size, order, objs) objs,
static const uint16_t kms_class_objs[KM_NR_KMALLOC_CLASSES] = { KM_KMALLOC_CLASSES(KMS_OBJS_) };
#undef KMS_OBJS_

/* Every class fits its slab, the table has as many rows as it says, and
 * KMALLOC_MAX_CACHE_SIZE is its largest class. */
#define KMS_CHECK_(name, size, order, objs)                                                        \
	_Static_assert((size) >= KM_KMALLOC_MIN_SIZE && (size) % 8 == 0, name ": object size");    \
	_Static_assert((uint64_t)(objs) * (size) <= (uint64_t)KM_PAGE_SIZE << (order),             \
		       name ": objects fit the slab");                                             \
	_Static_assert((order) < KM_FRAME_ORDER, name ": a slab never crosses a frame");
KM_KMALLOC_CLASSES(KMS_CHECK_)
#undef KMS_CHECK_
#define KMS_COUNT_(name, size, order, objs) +1
_Static_assert(0 KM_KMALLOC_CLASSES(KMS_COUNT_) == KM_NR_KMALLOC_CLASSES,
	       "KM_NR_KMALLOC_CLASSES counts the class table");
#undef KMS_COUNT_
#define KMS_MAX_(name, size, order, objs) +((size) == KM_KMALLOC_MAX_CACHE_SIZE)
_Static_assert(0 KM_KMALLOC_CLASSES(KMS_MAX_) == 1, "one class is KMALLOC_MAX_CACHE_SIZE");
#undef KMS_MAX_
#define KMS_ABOVE_(name, size, order, objs) +((size) > KM_KMALLOC_MAX_CACHE_SIZE)
_Static_assert(0 KM_KMALLOC_CLASSES(KMS_ABOVE_) == 0, "no class is above it");
#undef KMS_ABOVE_
_Static_assert(KM_KMALLOC_MAX_CACHE_SIZE == 8192, "KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1");
_Static_assert(KM_KMALLOC_MAX_SIZE == 4u << 20, "KMALLOC_MAX_SIZE is 4 MiB");
_Static_assert(KM_FRAME_ORDER < KM_MAX_ORDER, "a frame is a page-allocator block");

/* kmalloc_size_index[(size - 1) / 8] of mm/slab_common.c, as positions in
 * the class list (8 16 32 64 96 128 192 256 512 1k 2k 4k 8k). */
/* clang-format off */
static const uint8_t kms_small_index[24] = {
	0,			/* 8 */
	1,			/* 16 */
	2, 2,			/* 24 32 */
	3, 3, 3, 3,		/* 40 .. 64 */
	4, 4, 4, 4,		/* 72 .. 96 */
	5, 5, 5, 5,		/* 104 .. 128 */
	6, 6, 6, 6, 6, 6, 6, 6,	/* 136 .. 192 */
};
/* clang-format on */

/* The class serving @size (1..8192), or -1. */
static inline int kms_class_index(size_t size)
{
	if (size == 0 || size > KM_KMALLOC_MAX_CACHE_SIZE)
		return -1;
	if (size <= 192)
		return kms_small_index[(size - 1) / 8];
	/* fls(size - 1): the kernel's index 8..13, ours 7..12. */
	return 32 - __builtin_clz((uint32_t)size - 1) - 1;
}

/* get_order(): the smallest order with (4096 << order) >= size, size >= 1. */
static inline unsigned int kms_get_order(uint64_t size)
{
	uint64_t pages = (size - 1) >> KM_PAGE_SHIFT;

	return pages ? 64 - (unsigned int)__builtin_clzll(pages) : 0;
}

/* kmalloc_size_roundup(): the usable size (ksize) of a kmalloc of @size
 * bytes: its class size up to 8 KiB, PAGE_SIZE << get_order(size) up to
 * 4 MiB, else @size itself (mm/slab_common.c). */
static inline uint64_t kms_size_roundup(uint64_t size)
{
	if (size == 0 || size > KM_KMALLOC_MAX_SIZE)
		return size;
	if (size <= KM_KMALLOC_MAX_CACHE_SIZE)
		return kms_class_size[kms_class_index((size_t)size)];
	return (uint64_t)KM_PAGE_SIZE << kms_get_order(size);
}
