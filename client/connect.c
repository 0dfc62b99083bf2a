// SPDX-License-Identifier: MIT
/*
 * connect.c - km_connect()/km_disconnect() (and kmc_connect_fd(), the same
 * over a socket the caller connected): the socket, Hello/Welcome, and the
 * direct map of the domain memfd (the userspace counterpart of the kernel's
 * direct mapping of physical memory: phys p lives at base + p).
 *
 * The direct map is one MAP_SHARED mapping of the whole memfd, never
 * populated as a whole: only frames the domain owns are backed, and touching
 * a hole would allocate a "phantom" page into the file (docs/design.md). Ranges
 * are populated when a grant reply hands them over (kmc_populate()), in
 * "populate units" (a frame on hugetlb, a 4 KiB page on shmem). A bitmap
 * remembers the units this client populated so a kmalloc into an already
 * populated unit costs no syscall. The bitmap is only a cache: if the daemon
 * punched a frame out meanwhile, the next touch simply faults it back in from
 * the frame the daemon assigned again.
 *
 * Everything set here is immutable until km_disconnect(), which must not race
 * with other calls on the client (kmclient.h).
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define BITS_PER_LONG (8 * sizeof(unsigned long))

void kmc_debug_print(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kmclient[%d]: %s\n", (int)getpid(), line);
}

/* An environment flag: set, and neither empty nor "0". */
static bool env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

/* ---- direct map ---------------------------------------------------------- */

static bool unit_populated(const struct km_client *c, uint64_t unit)
{
	unsigned long w = __atomic_load_n(&c->populated[unit / BITS_PER_LONG], __ATOMIC_RELAXED);

	return w & (1ul << (unit % BITS_PER_LONG));
}

static void units_mark(struct km_client *c, uint64_t first, uint64_t end)
{
	for (uint64_t u = first; u < end; u++)
		__atomic_fetch_or(&c->populated[u / BITS_PER_LONG], 1ul << (u % BITS_PER_LONG),
				  __ATOMIC_RELAXED);
}

/*
 * Populates [phys, phys + len), rounded out to populate units, skipping units
 * already populated: one MADV_POPULATE_WRITE per run of fresh units, nothing
 * at all on the common path of a small kmalloc in a known unit (one bit test).
 * The caller passes only ranges a grant reply handed over. Two threads may
 * populate the same unit at once; that is harmless. Without
 * MADV_POPULATE_WRITE (kernels before 5.14, EINVAL) nothing is populated:
 * touches fault in lazily, which is correct, and writing a byte per page to
 * populate would race with the owner of the other objects in the page.
 */
void kmc_populate(struct km_client *c, uint64_t phys, uint64_t len)
{
	uint64_t unit = c->populate_unit;
	uint64_t u, end;

	if (!len || __atomic_load_n(&c->populate_off, __ATOMIC_RELAXED))
		return;
	u = phys / unit;
	end = (phys + len - 1) / unit + 1;
	while (u < end) {
		uint64_t run;

		if (unit_populated(c, u)) {
			u++;
			continue;
		}
		for (run = u + 1; run < end && !unit_populated(c, run); run++)
			;
		if (madvise(c->base + u * unit, (run - u) * unit, MADV_POPULATE_WRITE)) {
			if (errno == EINVAL) {
				__atomic_store_n(&c->populate_off, 1, __ATOMIC_RELAXED);
				kmc_dbg(c,
					"MADV_POPULATE_WRITE unsupported: pages fault in lazily");
			} else {
				kmc_dbg(c, "populating phys %#llx+%llu: %s",
					(unsigned long long)(u * unit),
					(unsigned long long)((run - u) * unit), strerror(errno));
			}
			return;
		}
		units_mark(c, u, run);
		u = run;
	}
}

/* Maps the memfd whole at a KMC_DIRECT_MAP_ALIGN-aligned base: reserve with
 * slack, MAP_FIXED over the aligned part, trim the slack. */
static int direct_map(struct km_client *c)
{
	uint64_t align =
		c->frame_size > KMC_DIRECT_MAP_ALIGN ? c->frame_size : KMC_DIRECT_MAP_ALIGN;
	uint64_t nr_units;
	uintptr_t res, base;
	size_t len;
	void *p;

	if (c->pool_size > SIZE_MAX - align)
		return -ENOMEM;
	len = c->pool_size + align;
	p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	res = (uintptr_t)p;
	base = (res + align - 1) & ~(uintptr_t)(align - 1);
	p = mmap((void *)base, c->pool_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | (c->hugetlb ? MAP_NORESERVE : 0), c->memfd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap((void *)res, len);
		return err;
	}
	if (base > res)
		munmap((void *)res, base - res);
	if (res + len > base + c->pool_size)
		munmap((void *)(base + c->pool_size), res + len - (base + c->pool_size));
	c->base = (uint8_t *)base;

	/* Shmem backing: ask for THP so the direct map costs fewer faults and TLB
	 * entries; the daemon warned already if it could not get hugetlb. */
	if (!c->hugetlb)
		madvise(c->base, c->pool_size, MADV_HUGEPAGE);

	c->populate_unit = c->hugetlb ? c->frame_size : KM_PAGE_SIZE;
	nr_units = c->pool_size / c->populate_unit;
	c->populated =
		calloc((nr_units + BITS_PER_LONG - 1) / BITS_PER_LONG, sizeof(unsigned long));
	if (!c->populated)
		return -ENOMEM;
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

static void client_free(struct km_client *c)
{
	if (c->sock >= 0)
		close(c->sock);
	kmc_tcache_destroy(c);
	kmc_slab_destroy(c);
	kmc_varea_destroy_all(c);
	kmc_share_destroy(c);
	if (c->base)
		munmap(c->base, c->pool_size);
	if (c->memfd >= 0)
		close(c->memfd);
	free(c->populated);
	kmc_pcp_destroy(c);
	kmc_ktab_destroy(c);
	kmc_rpc_destroy(c);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->ktab_lock);
	pthread_mutex_destroy(&c->vm_lock);
	free(c);
}

/* A client without its socket yet: locks, buffers, the kmalloc table.
 * 0 and *out, or -errno. */
static int client_new(struct km_client **out)
{
	struct km_client *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sock = -1;
	c->memfd = -1;
	c->debug = env_flag("KMCLIENT_DEBUG");
	c->caching = !env_flag("KMCLIENT_NO_CACHE");
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->ktab_lock, NULL);
	pthread_mutex_init(&c->vm_lock, NULL);
	err = kmc_rpc_init(c);
	if (!err)
		err = kmc_ktab_init(c);
	if (err) {
		client_free(c);
		return err;
	}
	*out = c;
	return 0;
}

/* What every client does once c->sock is connected to @peer (named in the
 * debug line): Hello/Welcome, the direct map, the lists. 0 and *out, or
 * -errno with @c freed. */
static int client_start(struct km_client *c, const char *peer, struct km_client **out)
{
	struct kmc_welcome w;
	int err;

	err = kmc_rpc_hello(c, &w, &c->memfd);
	if (err)
		goto err_free;
	c->pool_size = w.pool_size;
	c->frame_size = w.frame_size;
	c->hugetlb = w.hugetlb;
	err = direct_map(c);
	if (err) {
		kmc_dbg(c, "mapping the %llu-byte pool: %s", (unsigned long long)c->pool_size,
			strerror(-err));
		goto err_free;
	}
	kmc_vmalloc_init(c);
	err = kmc_pcp_init(c);
	if (!err)
		err = kmc_slab_init(c);
	if (!err)
		err = kmc_tcache_init(c);
	if (err)
		goto err_free;
	kmc_dbg(c, "connected to %s: domain %u, pool %llu bytes, frame %llu, %s", peer, w.domain,
		(unsigned long long)c->pool_size, (unsigned long long)c->frame_size,
		c->hugetlb ? "hugetlb" : "shmem");
	*out = c;
	return 0;

err_free:
	client_free(c);
	return err;
}

static int client_open(const char *path, struct km_client **out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct km_client *c;
	int err;

	if (!path)
		path = getenv("KMALLOC_SOCKET");
	if (!path || !*path)
		path = KM_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);

	err = client_new(&c);
	if (err)
		return err;
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		kmc_dbg(c, "connect %s: %s", path, strerror(errno));
		client_free(c);
		return err;
	}
	return client_start(c, path, out);
}

int kmc_connect_fd(int fd, struct km_client **out)
{
	struct km_client *c;
	socklen_t len = sizeof(int);
	char peer[32];
	int type, flags, err;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		err = -errno;
		goto err_close;
	}
	if (type != SOCK_SEQPACKET) {
		err = -EPROTOTYPE;
		goto err_close;
	}
	err = client_new(&c);
	if (err)
		goto err_close;
	c->sock = fd;
	snprintf(peer, sizeof(peer), "fd %d", fd);
	return client_start(c, peer, out);

err_close:
	close(fd);
	return err;
}

KM_EXPORT km_client *km_connect(const char *socket_path)
{
	struct km_client *c = NULL;
	int err = client_open(socket_path, &c);

	if (err) {
		errno = -err;
		return NULL;
	}
	return c;
}

/* Closing the socket is the give-back: the daemon frees every grant of the
 * connection, so no Free is sent (and queued deferred kfrees need no flush).
 * Then the direct map and every vmalloc reservation are unmapped. */
KM_EXPORT void km_disconnect(km_client *c)
{
	if (c)
		client_free(c);
}
