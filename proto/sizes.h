/* SPDX-License-Identifier: MIT */
/*
 * sizes.h - how a kmalloc size maps to a slab class or a page order, shared
 * by the daemon (which allocates by it) and libkmclient (which caches freed
 * objects by it). The kernel's kmalloc_slab() and get_order()
 * (kernel-semantics.md §1.2): 13 classes 8 .. 8192 with 96 and 192, then
 * 2^order pages up to order 10.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define KMS_NR_CLASSES		13
#define KMS_MAX_CACHE_SIZE	8192u
#define KMS_PAGE_SHIFT		12
#define KMS_MAX_ORDER		10

/* kmalloc_size_index[(size - 1) / 8] of mm/slab_common.c, as positions in
 * the class list (8 16 32 64 96 128 192 256 512 1k 2k 4k 8k). */
static const uint8_t kms_small_index[24] = {
	0,			/* 8 */
	1,			/* 16 */
	2, 2,			/* 24 32 */
	3, 3, 3, 3,		/* 40 .. 64 */
	4, 4, 4, 4,		/* 72 .. 96 */
	5, 5, 5, 5,		/* 104 .. 128 */
	6, 6, 6, 6, 6, 6, 6, 6,	/* 136 .. 192 */
};

static const uint32_t kms_class_size[KMS_NR_CLASSES] = {
	8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
};

/* The class serving @size (1..8192), or -1. */
static inline int kms_class_index(size_t size)
{
	if (size == 0 || size > KMS_MAX_CACHE_SIZE)
		return -1;
	if (size <= 192)
		return kms_small_index[(size - 1) / 8];
	/* fls(size - 1): the kernel's index 8..13, ours 7..12. */
	return 32 - __builtin_clz((uint32_t)size - 1) - 1;
}

/* get_order(): the smallest order with (4096 << order) >= size, size >= 1. */
static inline unsigned int kms_get_order(uint64_t size)
{
	uint64_t pages = (size - 1) >> KMS_PAGE_SHIFT;

	return pages ? 64 - (unsigned int)__builtin_clzll(pages) : 0;
}

/* kmalloc_size_roundup(): the usable size (ksize) of a kmalloc of @size
 * bytes: its class size up to 8 KiB, PAGE_SIZE << get_order(size) up to
 * 4 MiB, else @size itself (mm/slab_common.c). */
static inline uint64_t kms_size_roundup(uint64_t size)
{
	if (size == 0 || size > (4096ull << KMS_MAX_ORDER))
		return size;
	if (size <= KMS_MAX_CACHE_SIZE)
		return kms_class_size[kms_class_index((size_t)size)];
	return 4096ull << kms_get_order(size);
}
