/* SPDX-License-Identifier: MIT */
/*
 * pool.h - the "physical" memory: memfds backed by hugetlb pages (2 MiB) when
 * the host has enough free hugepages, else by shmem with MADV_HUGEPAGE and a
 * warning. Offsets in every memfd are phys addresses; the pool is a whole
 * number of frames.
 *
 * The pool owns one reserve memfd that holds every frame no domain owns,
 * faulted in at start and kept (first-touch hugepages are slow, recycled ones
 * fast). Moving a frame to a domain punches it out of the reserve memfd and
 * fallocates it in the domain's memfd, where it is new and zeroed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kmalloc-abi.h"

#define POOL_PAGES_PER_FRAME (1u << KM_FRAME_ORDER)

enum pool_backing {
	POOL_BACKING_AUTO,    /* hugetlb if possible, else shmem with a warning */
	POOL_BACKING_HUGETLB, /* hugetlb or fail (--require-hugepages) */
	POOL_BACKING_SHMEM,   /* shmem only (tests of the fallback) */
};

struct pool {
	uint64_t size;	     /* bytes, nr_frames * frame_size */
	uint64_t frame_size; /* bytes */
	uint32_t nr_frames;
	uint32_t nr_pages; /* 4 KiB pages */
	bool hugetlb;
	int reserve_fd; /* frames owned by no domain */
};

/* Rounds @size up to whole frames, creates and populates the reserve memfd.
 * On failure returns -errno and logs why (with the nr_hugepages hint). */
int pool_init(struct pool *pool, uint64_t size, enum pool_backing backing);
/* Takes over a pool a previous daemon made (its reserve memfd, as is). */
int pool_adopt(struct pool *pool, int reserve_fd, uint64_t size, bool hugetlb);
void pool_fini(struct pool *pool);

/* A new empty (sparse) memfd of the pool's size and backing, named @name,
 * sealed against growing and shrinking. 0 and *fd, or -errno. */
int pool_memfd_create(const struct pool *pool, const char *name, int *fd);

/* A memfd of @nr_frames frames of the pool's backing for one shareable
 * grant (share.c), named "kmallocd-share", sealed as the domain memfds and
 * of mode 0600 (only the daemon's uid may open it again by its /proc
 * path). 0 and *fd, or -errno. */
int pool_share_memfd_create(const struct pool *pool, uint32_t nr_frames, int *fd);

/* pool_memfd_check() for a share memfd of @nr_frames frames, also made
 * mode 0600 again. */
int pool_share_memfd_check(const struct pool *pool, int fd, uint32_t nr_frames);

/* Checks that @fd (a memfd a previous daemon made) can serve as a pool memfd:
 * the pool's size, and seals that keep a client from resizing it or adding
 * seals (F_SEAL_SEAL is added when missing). -EPERM when it carries a write
 * seal (holes could not be punched in it), other -errno when unusable. */
int pool_memfd_check(const struct pool *pool, int fd);

/* fallocate / FALLOC_FL_PUNCH_HOLE over frames [frame, frame + nr) of @fd. */
int pool_frames_populate(const struct pool *pool, int fd, uint32_t frame, uint32_t nr);
int pool_frames_punch(const struct pool *pool, int fd, uint32_t frame, uint32_t nr);

/* Bytes @fd really holds (st_blocks * 512): more than the frames it owns
 * means a client touched holes (phantom frames). -errno on failure. */
int64_t pool_memfd_bytes(int fd);
