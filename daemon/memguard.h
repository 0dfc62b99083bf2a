/* SPDX-License-Identifier: MIT */
/*
 * memguard.h - touching pool memory without dying of it.
 *
 * Every page of a domain memfd can be punched out by any client of that
 * domain (fallocate(PUNCH_HOLE) needs only the descriptor it was given).
 * When the daemon then touches the page through its own mapping, the kernel
 * refaults a fresh page into the file, and on a hugetlb pool with no free
 * hugepage left that fault is a SIGBUS. The daemon's few writes into the pool
 * (__GFP_ZERO on memory that is not fresh) go through memguard_memset(),
 * which catches that SIGBUS for the range it writes and reports -EFAULT; a
 * SIGBUS anywhere else is fatal as usual.
 */
#pragma once

#include <stddef.h>

/* Installs the SIGBUS handler. 0 or -errno. */
int memguard_init(void);

/* memset(@p, @c, @len), or -EFAULT if a page of the range could not be
 * faulted in (part of the range may be written). 0 on success. */
int memguard_memset(void *p, int c, size_t len);
