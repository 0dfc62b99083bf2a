// SPDX-License-Identifier: MIT
/*
 * pool.c - the pool's memfds: the reserve memfd that holds every frame no
 * domain owns, and the sparse per-domain memfds of the same size and backing.
 *
 * Backing is hugetlb (2 MiB pages) when the host has enough free hugepages,
 * else shmem with a warning that says how to reserve them. The reserve memfd
 * is fallocated whole at start so every frame is faulted in once and kept:
 * first-touch hugepages cost ~1.8 s/GiB, recycled ones ~50 ms/GiB
 * (docs/design.md, "Platform facts"). Domain memfds start empty; a frame is
 * populated in one with fallocate() and given back with PUNCH_HOLE.
 *
 * Invariants: size == nr_frames * frame_size; every memfd made here has
 * exactly that size and is sealed against growing and shrinking. The pool
 * plays the role of the kernel's physical memory (mm/memblock.c handing
 * memory to the page allocator), with hugetlbfs (fs/hugetlbfs/inode.c)
 * underneath.
 */
#include "config.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

/* fallocate() that starts again when a signal interrupts it: hugetlbfs gives
 * up with EINTR halfway through a range when one arrives (a reload, the
 * watchdog's timer), and allocating pages already there does nothing, so
 * starting over is safe. 0 or -errno. */
static int fallocate_retry(int fd, int mode, off_t off, off_t len)
{
	while (fallocate(fd, mode, off, len) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* A counter from sysfs/procfs, or -1 when it cannot be read (no hugetlb). */
static int64_t read_counter(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static unsigned int memfd_flags(bool hugetlb)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;

	if (hugetlb)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	return flags;
}

/* A memfd of @size bytes, sealed so that nobody (a client holding it
 * included) can change its size, and with F_SEAL_SEAL so that nobody can add
 * a seal later: a client holding its domain memfd could otherwise add
 * F_SEAL_FUTURE_WRITE and make every later hole punch fail (EPERM), keeping
 * the pool's memory for itself. Sparse until populated. */
static int memfd_new(const char *name, bool hugetlb, uint64_t size, int *out)
{
	int fd, err;

	fd = memfd_create(name, memfd_flags(hugetlb));
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto err_close;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto err_close;
	*out = fd;
	return 0;

err_close:
	err = -errno;
	close(fd);
	return err;
}

/* The hint every hugepage shortage message carries: the value to write to
 * nr_hugepages so that @need more pages are free than now. */
static void hugepages_hint(uint32_t need, int64_t free_pages, char *buf, size_t len)
{
	int64_t total = read_counter("/proc/sys/vm/nr_hugepages");
	int64_t missing = (int64_t)need - (free_pages > 0 ? free_pages : 0);

	if (total < 0)
		total = 0;
	if (missing < 0) /* fallocate failed although enough looked free */
		missing = need;
	snprintf(buf, len,
		 "the pool needs %" PRIu32 " hugepages of 2 MiB, %" PRId64
		 " are free; reserve them with 'echo %" PRId64 " > /proc/sys/vm/nr_hugepages'",
		 need, free_pages > 0 ? free_pages : 0, total + missing);
}

/* Creates the reserve memfd on hugetlb and faults every frame in. -ENOMEM
 * when the host lacks hugepages (checked up front, and ENOSPC from
 * fallocate when they were taken meanwhile); *free_pages says how many were
 * free for the message. */
static int pool_reserve_hugetlb(struct pool *pool, int64_t *free_pages)
{
	int64_t resv = read_counter(HUGEPAGES_DIR "resv_hugepages");
	int fd, err;

	/* Reserved pages are counted free but promised to mappings already
	 * made (MAP_SHARED hugetlb mmaps reserve at mmap time). */
	*free_pages = read_counter(HUGEPAGES_DIR "free_hugepages");
	if (resv > 0 && *free_pages > 0)
		*free_pages = resv < *free_pages ? *free_pages - resv : 0;
	if (*free_pages < (int64_t)pool->nr_frames)
		return -ENOMEM;
	err = memfd_new("kmalloc-reserve", true, pool->size, &fd);
	if (err)
		return err == -EINVAL ? -ENOMEM : err; /* no hugetlbfs for 2 MiB */
	err = fallocate_retry(fd, 0, 0, (off_t)pool->size);
	if (err) {
		close(fd);
		return err == -ENOSPC ? -ENOMEM : err;
	}
	pool->reserve_fd = fd;
	return 0;
}

/* MemAvailable in bytes, or UINT64_MAX if /proc/meminfo cannot tell. */
static uint64_t mem_available(void)
{
	unsigned long long kb;
	char line[128];
	uint64_t bytes = UINT64_MAX;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return bytes;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			bytes = (uint64_t)kb << 10;
	fclose(f);
	return bytes;
}

static int pool_reserve_shmem(struct pool *pool)
{
	uint64_t avail = mem_available();
	int fd, err;

	/* Faulting in more shmem than the host has would summon the OOM killer,
	 * not an error: refuse first. */
	if (pool->size > avail) {
		log_err("a %" PRIu64 " MiB shmem pool is more than the %" PRIu64
			" MiB of memory available",
			pool->size >> 20, avail >> 20);
		return -ENOMEM;
	}
	err = memfd_new("kmalloc-reserve", false, pool->size, &fd);
	if (err)
		return err;
	err = fallocate_retry(fd, 0, 0, (off_t)pool->size);
	if (err) {
		close(fd);
		return err;
	}
	pool->reserve_fd = fd;
	return 0;
}

int pool_init(struct pool *pool, uint64_t size, enum pool_backing backing)
{
	uint64_t nr_frames;
	int64_t free_pages = 0;
	char hint[256];
	int err;

	memset(pool, 0, sizeof(*pool));
	pool->reserve_fd = -1;
	if (size == 0 || size > UINT64_MAX - KM_FRAME_SIZE)
		return -EINVAL;
	nr_frames = (size + KM_FRAME_SIZE - 1) >> KM_FRAME_SHIFT;
	/* pfns are uint32_t: at most 2^32 - 1 pages (16 TiB) */
	if (nr_frames * POOL_PAGES_PER_FRAME > UINT32_MAX) {
		log_err("pool size %" PRIu64 " bytes is too large (at most %" PRIu64 ")", size,
			(uint64_t)(UINT32_MAX / POOL_PAGES_PER_FRAME) << KM_FRAME_SHIFT);
		return -EINVAL;
	}
	pool->nr_frames = (uint32_t)nr_frames;
	pool->nr_pages = pool->nr_frames * POOL_PAGES_PER_FRAME;
	pool->frame_size = KM_FRAME_SIZE;
	pool->size = nr_frames << KM_FRAME_SHIFT;

	if (backing != POOL_BACKING_SHMEM) {
		err = pool_reserve_hugetlb(pool, &free_pages);
		if (!err) {
			pool->hugetlb = true;
			goto out;
		}
		if (err != -ENOMEM) {
			/* hugetlb exists but refuses us (no hugetlbfs, a seccomp
			 * filter...): as good as no hugepages for AUTO. */
			if (backing == POOL_BACKING_HUGETLB) {
				log_err("cannot create the hugetlb pool memfd: %s", strerror(-err));
				return err;
			}
			log_warn("cannot create the hugetlb pool memfd: %s", strerror(-err));
		}
		hugepages_hint(pool->nr_frames, free_pages, hint, sizeof(hint));
		if (backing == POOL_BACKING_HUGETLB) {
			log_err("not enough hugepages for a %" PRIu64 " MiB pool: %s",
				pool->size >> 20, hint);
			return -ENOMEM;
		}
		log_warn("not enough hugepages, falling back to shmem pages (slower to map): %s",
			 hint);
	}
	err = pool_reserve_shmem(pool);
	if (err) {
		log_err("cannot create a %" PRIu64 " MiB shmem pool memfd: %s", pool->size >> 20,
			strerror(-err));
		return err;
	}
out:
	log_info("pool: %" PRIu64 " MiB in %" PRIu32 " frames of 2 MiB, backed by %s",
		 pool->size >> 20, pool->nr_frames, pool->hugetlb ? "hugetlb pages" : "shmem");
	return 0;
}

int pool_adopt(struct pool *pool, int reserve_fd, uint64_t size, bool hugetlb)
{
	memset(pool, 0, sizeof(*pool));
	pool->reserve_fd = -1;
	if (size == 0 || size % KM_FRAME_SIZE ||
	    (size >> KM_FRAME_SHIFT) * POOL_PAGES_PER_FRAME > UINT32_MAX)
		return -EINVAL;
	pool->nr_frames = (uint32_t)(size >> KM_FRAME_SHIFT);
	pool->nr_pages = pool->nr_frames * POOL_PAGES_PER_FRAME;
	pool->frame_size = KM_FRAME_SIZE;
	pool->size = size;
	pool->hugetlb = hugetlb;
	pool->reserve_fd = reserve_fd;
	log_info("pool: %" PRIu64 " MiB in %" PRIu32 " frames of 2 MiB, backed by %s (taken over)",
		 pool->size >> 20, pool->nr_frames, hugetlb ? "hugetlb pages" : "shmem");
	return 0;
}

void pool_fini(struct pool *pool)
{
	if (pool->reserve_fd >= 0)
		close(pool->reserve_fd);
	pool->reserve_fd = -1;
}

int pool_memfd_create(const struct pool *pool, const char *name, int *fd)
{
	return memfd_new(name, pool->hugetlb, pool->size, fd);
}

/*
 * A share memfd goes to clients of other uids, read-write or (another open
 * file description of it, from /proc/self/fd) read-only. A read-only
 * importer could open its descriptor again read-write through
 * /proc/self/fd/N, which checks the inode's mode, not how the descriptor was
 * opened: memfds are made 0777, so without this fchmod any uid could
 * upgrade a read-only import to a writable one. 0600 leaves that to the
 * daemon's own uid, which holds the pool anyway.
 */
int pool_share_memfd_create(const struct pool *pool, uint32_t nr_frames, int *fd)
{
	int err;

	if (nr_frames == 0 || nr_frames > pool->nr_frames)
		return -EINVAL;
	err = memfd_new("kmallocd-share", pool->hugetlb, (uint64_t)nr_frames * pool->frame_size,
			fd);
	if (err)
		return err;
	if (fchmod(*fd, 0600) < 0) {
		err = -errno;
		close(*fd);
		*fd = -1;
	}
	return err;
}

static int memfd_check(int fd, uint64_t size)
{
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != size)
		return -EINVAL;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return -errno;
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		return -EPERM;
	if ((seals & want) != want && fcntl(fd, F_ADD_SEALS, want & ~seals) < 0)
		return -errno;
	return 0;
}

int pool_memfd_check(const struct pool *pool, int fd)
{
	return memfd_check(fd, pool->size);
}

int pool_share_memfd_check(const struct pool *pool, int fd, uint32_t nr_frames)
{
	int err;

	if (nr_frames == 0 || nr_frames > pool->nr_frames)
		return -EINVAL;
	err = memfd_check(fd, (uint64_t)nr_frames * pool->frame_size);
	if (!err && fchmod(fd, 0600) < 0)
		err = -errno;
	return err;
}

static bool frames_range_ok(const struct pool *pool, uint32_t frame, uint32_t nr)
{
	return nr > 0 && frame < pool->nr_frames && nr <= pool->nr_frames - frame;
}

int pool_frames_populate(const struct pool *pool, int fd, uint32_t frame, uint32_t nr)
{
	if (!frames_range_ok(pool, frame, nr))
		return -EINVAL;
	return fallocate_retry(fd, 0, (off_t)frame << KM_FRAME_SHIFT, (off_t)nr << KM_FRAME_SHIFT);
}

int pool_frames_punch(const struct pool *pool, int fd, uint32_t frame, uint32_t nr)
{
	if (!frames_range_ok(pool, frame, nr))
		return -EINVAL;
	return fallocate_retry(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)frame << KM_FRAME_SHIFT, (off_t)nr << KM_FRAME_SHIFT);
}

int64_t pool_memfd_bytes(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return (int64_t)st.st_blocks * 512;
}
