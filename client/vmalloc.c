// SPDX-License-Identifier: MIT
/*
 * vmalloc.c - the km_vmalloc family and km_vmalloc_to_pfn(); the client half
 * of mm/vmalloc.c (docs/kernel.md). Also the client's area table: every
 * mapping outside the direct map, which besides vmalloc areas holds
 * KM_GFP_SHARED allocations (here) and imports mapped on their own
 * (share.c).
 *
 * An area is a frame-aligned PROT_NONE reservation of nr_frames + 1 frames.
 * The daemon allocates the frames one by one and names them in the reply; the
 * client maps each run of consecutive frame numbers with one
 * mmap(MAP_FIXED | MAP_POPULATE) of the domain memfd, since hugetlb mappings
 * never merge (3.5 us per frame alone, 0.24 us per frame in a run). The last
 * frame stays PROT_NONE: the guard. Populating is safe here because every
 * mapped frame is owned by the domain (no phantom pages).
 *
 * A KM_GFP_SHARED allocation is whole frames in a memfd of its own, which
 * comes with the reply: it is mapped once from offset 0 (MAP_POPULATE: the
 * daemon backed all of it) and the descriptor closed. Its kmalloc kind has
 * no guard and is aligned to its size (2 or 4 MiB); its vmalloc kind has a
 * guard frame as other areas. Such areas are never kept for reuse, and
 * neither is an exported vmalloc area: importers still use its memory.
 *
 * The areas live in an array sorted by start address under vm_lock: lookup
 * by any interior address is a binary search (O(log n)); insert and remove
 * shift the array (O(n), n bounded by vm.max_map_count anyway).
 *
 * A freed area is kept, mapped, for the next vmalloc of as many frames (at
 * most KMC_VKEEP_MAX areas and 1/8 of the pool, 256 MiB at most), as freed
 * large kmallocs are (pcp.c): a program that allocates and frees a big buffer
 * over and over then costs no round trip and no mmap after the first, where
 * each would cost a wake-up of the daemon's CPU (hundreds of microseconds on
 * a VM whose idle CPU halts). __GFP_ZERO never takes a kept area (the daemon
 * hands out frames the kernel cleared). Kept areas still count as the
 * client's (vmallocinfo, meminfo), go back when a refused allocation drains
 * the caches, when the budget needs room, and at disconnect.
 */
#include "config.h"
#include "kmclient-private.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define CALLER_LEN	 128
#define VKEEP_POOL_SHARE 8		/* kept areas: at most 1/8 of the pool */
#define VKEEP_MAX_BYTES	 (256ull << 20) /* and 256 MiB */

/* ---- area set ------------------------------------------------------------ */

/* Index of the first area whose start is > addr. */
static size_t varea_upper_locked(const struct km_client *c, uintptr_t addr)
{
	size_t lo = 0, hi = c->nr_vareas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->vareas[mid]->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct kmc_varea *kmc_area_find_locked(const struct km_client *c, uintptr_t addr)
{
	size_t i = varea_upper_locked(c, addr);
	struct kmc_varea *a;

	if (!i)
		return NULL;
	a = c->vareas[i - 1];
	return addr - a->start < a->span ? a : NULL;
}

struct kmc_varea *kmc_area_at_locked(const struct km_client *c, const void *p)
{
	struct kmc_varea *a = kmc_area_find_locked(c, (uintptr_t)p);

	return a && a->addr == (uintptr_t)p ? a : NULL;
}

int kmc_area_insert_locked(struct km_client *c, struct kmc_varea *a)
{
	size_t i;

	if (c->nr_vareas == c->cap_vareas) {
		size_t cap = c->cap_vareas ? 2 * c->cap_vareas : 16;
		struct kmc_varea **v = realloc(c->vareas, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->vareas = v;
		c->cap_vareas = cap;
	}
	i = varea_upper_locked(c, a->start);
	memmove(&c->vareas[i + 1], &c->vareas[i], (c->nr_vareas - i) * sizeof(*c->vareas));
	c->vareas[i] = a;
	c->nr_vareas++;
	return 0;
}

static int varea_insert(struct km_client *c, struct kmc_varea *a)
{
	int err;

	pthread_mutex_lock(&c->vm_lock);
	err = kmc_area_insert_locked(c, a);
	pthread_mutex_unlock(&c->vm_lock);
	return err;
}

static void varea_remove_locked(struct km_client *c, const struct kmc_varea *a)
{
	size_t i = varea_upper_locked(c, a->start);

	memmove(&c->vareas[i - 1], &c->vareas[i], (c->nr_vareas - i) * sizeof(*c->vareas));
	c->nr_vareas--;
}

/* Whether a free of @how may free @a: km_kfree() takes everything but a
 * plain vmalloc area (the kernel's kfree() of one is a bug). */
static bool area_freeable(const struct kmc_varea *a, enum kmc_free_how how)
{
	return how != KMC_FREE_KFREE || a->kind != KMC_AREA_VMALLOC;
}

/* Unlinks the area @p starts (frees take only the start), if @how may free
 * it. An import leaves share.c's tables with it. */
static struct kmc_varea *varea_take(struct km_client *c, const void *p, enum kmc_free_how how)
{
	struct kmc_varea *a;

	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_at_locked(c, p);
	if (a && area_freeable(a, how)) {
		varea_remove_locked(c, a);
		if (a->kind == KMC_AREA_IMPORT)
			kmc_import_forget_locked(c, a);
	} else {
		a = NULL;
	}
	pthread_mutex_unlock(&c->vm_lock);
	return a;
}

struct kmc_varea *kmc_area_new(uint32_t nr_frames)
{
	struct kmc_varea *a = calloc(1, sizeof(*a) + (size_t)nr_frames * sizeof(a->frames[0]));

	if (a) {
		a->nr_frames = nr_frames;
		a->phys = UINT64_MAX;
	}
	return a;
}

void kmc_varea_destroy_all(struct km_client *c)
{
	for (size_t i = 0; i < c->nr_vareas; i++) {
		munmap((void *)c->vareas[i]->start, c->vareas[i]->len);
		free(c->vareas[i]);
	}
	for (unsigned int i = 0; i < c->nr_vkept; i++) {
		munmap((void *)c->vkept[i]->start, c->vkept[i]->len);
		free(c->vkept[i]);
	}
	c->nr_vkept = 0;
	c->vkept_bytes = 0;
	free(c->vareas);
	c->vareas = NULL;
	c->nr_vareas = 0;
	c->cap_vareas = 0;
}

/* ---- areas kept for reuse -------------------------------------------------- */

void kmc_vmalloc_init(struct km_client *c)
{
	c->vkept_budget = c->caching ? c->pool_size / VKEEP_POOL_SHARE : 0;
	if (c->vkept_budget > VKEEP_MAX_BYTES)
		c->vkept_budget = VKEEP_MAX_BYTES;
}

static uint64_t varea_bytes(const struct km_client *c, const struct kmc_varea *a)
{
	return (uint64_t)a->nr_frames * c->frame_size;
}

/* Unmaps @a and gives its grant back, if still held (riding on the next
 * request, or at once without waiting when @now). */
static void varea_give_back(struct km_client *c, struct kmc_varea *a, bool now)
{
	munmap((void *)a->start, a->len);
	if (a->id) {
		kmc_rpc_release(c, a->id);
		if (now)
			kmc_rpc_release_now(c);
	}
	free(a);
}

/* A kept area of exactly @nr_frames frames, taken off the kept list, or NULL. */
static struct kmc_varea *vkept_take(struct km_client *c, size_t nr_frames)
{
	struct kmc_varea *a = NULL;

	pthread_mutex_lock(&c->vm_lock);
	for (unsigned int i = c->nr_vkept; i-- > 0;) {
		if (c->vkept[i]->nr_frames != nr_frames)
			continue;
		a = c->vkept[i];
		memmove(&c->vkept[i], &c->vkept[i + 1], (c->nr_vkept - i - 1) * sizeof(a));
		c->nr_vkept--;
		c->vkept_bytes -= varea_bytes(c, a);
		break;
	}
	pthread_mutex_unlock(&c->vm_lock);
	return a;
}

/* Keeps @a for reuse if it fits the budget, making room by giving the
 * oldest kept areas back; otherwise gives @a back at once. */
static void vkept_put(struct km_client *c, struct kmc_varea *a)
{
	struct kmc_varea *evicted[KMC_VKEEP_MAX];
	unsigned int nr_evicted = 0;
	bool keep = c->caching && a->kind == KMC_AREA_VMALLOC && !a->flags &&
		    varea_bytes(c, a) <= c->vkept_budget;

	pthread_mutex_lock(&c->vm_lock);
	while (keep && c->nr_vkept &&
	       (c->nr_vkept == KMC_VKEEP_MAX ||
		c->vkept_bytes + varea_bytes(c, a) > c->vkept_budget)) {
		evicted[nr_evicted] = c->vkept[0];
		c->vkept_bytes -= varea_bytes(c, evicted[nr_evicted++]);
		memmove(&c->vkept[0], &c->vkept[1], (--c->nr_vkept) * sizeof(a));
	}
	if (keep) {
		c->vkept[c->nr_vkept++] = a;
		c->vkept_bytes += varea_bytes(c, a);
	}
	pthread_mutex_unlock(&c->vm_lock);
	for (unsigned int i = 0; i < nr_evicted; i++)
		varea_give_back(c, evicted[i], false);
	if (!keep)
		varea_give_back(c, a, false);
	/* Whatever went, goes now: the frames return promptly, and nobody
	 * waits for the answer. */
	if (nr_evicted || !keep)
		kmc_rpc_release_now(c);
}

bool kmc_vkept_drain(struct km_client *c)
{
	struct kmc_varea *all[KMC_VKEEP_MAX];
	unsigned int n;

	pthread_mutex_lock(&c->vm_lock);
	n = c->nr_vkept;
	memcpy(all, c->vkept, n * sizeof(all[0]));
	c->nr_vkept = 0;
	c->vkept_bytes = 0;
	pthread_mutex_unlock(&c->vm_lock);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t id = all[i]->id;

		munmap((void *)all[i]->start, all[i]->len);
		free(all[i]);
		/* Back now: the caller retries an allocation or reads figures. */
		kmc_rpc_give_back(c, &id, 1);
	}
	return n > 0;
}

/* ---- vmalloc ------------------------------------------------------------- */

/* "symbol+0xoff" of the caller for vmallocinfo, as the kernel's %pS. dladdr()
 * scans the object's dynamic symbols (a few us); vmalloc costs a round trip
 * and mmaps anyway. Callers in executables without -rdynamic get @fallback. */
static void caller_name(const void *ret_addr, const char *fallback, char *buf, size_t len)
{
	Dl_info info;

	if (ret_addr && dladdr(ret_addr, &info) && info.dli_sname && info.dli_saddr)
		snprintf(buf, len, "%s+0x%tx", info.dli_sname,
			 (const char *)ret_addr - (const char *)info.dli_saddr);
	else
		snprintf(buf, len, "%s", fallback);
}

int kmc_area_reserve(size_t len, size_t align, uintptr_t *out)
{
	uintptr_t res, start;
	void *p;

	if (len > SIZE_MAX - align)
		return -ENOMEM;
	p = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	res = (uintptr_t)p;
	start = (res + align - 1) & ~(uintptr_t)(align - 1);
	if (start > res)
		munmap((void *)res, start - res);
	if (res + align > start)
		munmap((void *)(start + len), res + align - start);
	*out = start;
	return 0;
}

static int map_flags(const struct km_client *c)
{
	return MAP_SHARED | MAP_FIXED | MAP_POPULATE | (c->hugetlb ? MAP_NORESERVE : 0);
}

int kmc_area_map_frames(struct km_client *c, const struct kmc_varea *a, int prot)
{
	size_t fs = c->frame_size;
	uint32_t i = 0;

	while (i < a->nr_frames) {
		uint32_t j = i + 1;
		void *p;

		while (j < a->nr_frames && a->frames[j] == a->frames[j - 1] + 1)
			j++;
		p = mmap((void *)(a->start + (size_t)i * fs), (size_t)(j - i) * fs, prot,
			 map_flags(c), c->memfd, (off_t)a->frames[i] * (off_t)fs);
		if (p == MAP_FAILED)
			return -errno;
		i = j;
	}
	return 0;
}

int kmc_area_map_fd(struct km_client *c, const struct kmc_varea *a, int fd, uint64_t offset,
		    int prot)
{
	struct stat st = { 0 };

	/* A memfd shorter than what we map would make touching the rest a
	 * SIGBUS: refuse it instead (the daemon's own memfd is the pool's). */
	if (fd != c->memfd && (fstat(fd, &st) || (uint64_t)st.st_size < offset + a->span)) {
		kmc_dbg(c, "a memfd of %lld bytes for %zu to map", (long long)st.st_size, a->span);
		return -EPROTO;
	}
	if (mmap((void *)a->start, a->span, prot, map_flags(c), fd, (off_t)offset) == MAP_FAILED)
		return -errno;
	return 0;
}

int kmc_vmalloc(struct km_client *c, size_t size, km_gfp_t gfp, const void *ret_addr,
		const char *fallback_caller, void **out)
{
	size_t fs = c->frame_size, nr_frames;
	bool shared = gfp & KM___GFP_SHARED;
	char caller[CALLER_LEN];
	struct kmc_varea *a;
	int memfd = -1, err;

	kmc_share_poll(c);
	if (!size)
		return -EINVAL;
	nr_frames = size / fs + (size % fs != 0);
	/* More than the pool can never be served; this also bounds every product below. */
	if (nr_frames > c->pool_size / fs || nr_frames > UINT32_MAX)
		return -ENOMEM;
	if (!(gfp & (KM___GFP_ZERO | KM___GFP_SHARED))) {
		a = vkept_take(c, nr_frames);
		if (a) {
			err = varea_insert(c, a);
			if (err) {
				varea_give_back(c, a, true);
				return err;
			}
			*out = (void *)a->start;
			return 0;
		}
	}
	a = kmc_area_new(nr_frames);
	if (!a)
		return -ENOMEM;
	a->kind = shared ? KMC_AREA_SHARED_VMALLOC : KMC_AREA_VMALLOC;
	a->span = nr_frames * fs;
	a->len = (nr_frames + 1) * fs;
	a->size = a->span;
	err = kmc_area_reserve(a->len, fs, &a->start);
	if (err)
		goto err_free;
	a->addr = a->start;

	caller_name(ret_addr, fallback_caller, caller, sizeof(caller));
	err = kmc_rpc_vmalloc(c, size, gfp, a->start, caller, &a->id, a->frames, a->nr_frames,
			      shared ? &memfd : NULL);
	if ((err == -ENOMEM || err == -EDQUOT) && kmc_drain_caches(c))
		err = kmc_rpc_vmalloc(c, size, gfp, a->start, caller, &a->id, a->frames,
				      a->nr_frames, shared ? &memfd : NULL);
	if (err)
		goto err_unmap;
	if (shared) {
		err = kmc_area_map_fd(c, a, memfd, 0, PROT_READ | PROT_WRITE);
		close(memfd);
	} else {
		err = kmc_area_map_frames(c, a, PROT_READ | PROT_WRITE);
	}
	if (!err)
		err = varea_insert(c, a);
	if (err) {
		/* Unmap before the frames go back, so none is mapped once it is not ours. */
		munmap((void *)a->start, a->len);
		kmc_rpc_give_back(c, &a->id, 1);
		goto err_free;
	}
	*out = (void *)a->start;
	return 0;

err_unmap:
	munmap((void *)a->start, a->len);
err_free:
	free(a);
	return err;
}

/* The alignment of a shareable kmalloc of @bytes (whole frames): its size
 * when a power of two (as every power-of-two kmalloc), else a frame. */
static size_t shared_align(const struct km_client *c, uint64_t bytes)
{
	return (bytes & (bytes - 1)) ? c->frame_size : (size_t)bytes;
}

int kmc_shared_kmalloc(struct km_client *c, size_t size, km_gfp_t gfp, void **out)
{
	struct kmc_grant g;
	struct kmc_varea *a;
	int memfd, err;

	err = kmc_rpc_alloc_shared(c, size, gfp, &g, &memfd);
	if ((err == -ENOMEM || err == -EDQUOT) && kmc_drain_caches(c))
		err = kmc_rpc_alloc_shared(c, size, gfp, &g, &memfd);
	if (err)
		return err;
	a = kmc_area_new(0);
	if (!a) {
		err = -ENOMEM;
		goto err_give_back;
	}
	a->kind = KMC_AREA_SHARED_KMALLOC;
	a->id = g.id;
	a->phys = g.phys;
	a->span = a->len = a->size = g.size;
	err = kmc_area_reserve(a->len, shared_align(c, g.size), &a->start);
	if (err)
		goto err_free;
	a->addr = a->start;
	err = kmc_area_map_fd(c, a, memfd, 0, PROT_READ | PROT_WRITE);
	if (!err)
		err = varea_insert(c, a);
	if (err) {
		munmap((void *)a->start, a->len);
		goto err_free;
	}
	close(memfd);
	*out = (void *)a->start;
	return 0;

err_free:
	free(a);
err_give_back:
	close(memfd);
	kmc_rpc_give_back(c, &g.id, 1);
	return err;
}

bool kmc_area_free(struct km_client *c, const void *p, enum kmc_free_how how)
{
	struct kmc_varea *a = varea_take(c, p, how);

	if (!a)
		return false;
	if (a->kind == KMC_AREA_VMALLOC && !a->flags)
		vkept_put(c, a);
	else
		varea_give_back(c, a, true); /* the last holder's memory goes back now */
	return true;
}

void kmc_vfree(struct km_client *c, const void *p)
{
	if (!p)
		return;
	kmc_share_poll(c);
	if (!kmc_area_free(c, p, KMC_FREE_VFREE))
		kmc_dbg(c, "vfree of %p, which is not a vmalloc area", p);
}

uint64_t kmc_area_ksize(struct km_client *c, const void *p)
{
	struct kmc_varea *a;
	uint64_t size = 0;

	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_at_locked(c, p);
	if (a && area_freeable(a, KMC_FREE_KFREE))
		size = a->size;
	pthread_mutex_unlock(&c->vm_lock);
	return size;
}

uint64_t kmc_area_phys(struct km_client *c, const void *p)
{
	struct kmc_varea *a;
	uint64_t phys = UINT64_MAX;

	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_find_locked(c, (uintptr_t)p);
	if (a && a->phys != UINT64_MAX && !(a->flags & KMC_AREA_REVOKED))
		phys = a->phys + ((uintptr_t)p - a->start);
	pthread_mutex_unlock(&c->vm_lock);
	return phys;
}

int kmc_area_export_begin(struct km_client *c, const void *p, uint64_t *grant, bool *was)
{
	struct kmc_varea *a;
	int err = -EINVAL;

	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_at_locked(c, p);
	if (a && a->id) {
		*grant = a->id;
		*was = a->flags & KMC_AREA_EXPORTED;
		a->flags |= KMC_AREA_EXPORTED;
		err = 0;
	}
	pthread_mutex_unlock(&c->vm_lock);
	return err;
}

void kmc_area_export_undo(struct km_client *c, const void *p, uint64_t grant)
{
	struct kmc_varea *a;

	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_at_locked(c, p);
	if (a && a->id == grant)
		a->flags &= ~KMC_AREA_EXPORTED;
	pthread_mutex_unlock(&c->vm_lock);
}

static void *vmalloc_ret(struct km_client *c, size_t size, km_gfp_t gfp, const void *ret_addr,
			 const char *name)
{
	void *p;
	int err = kmc_vmalloc(c, size, gfp, ret_addr, name, &p);

	if (err) {
		errno = -err;
		return NULL;
	}
	return p;
}

KM_EXPORT void *km_vmalloc(km_client *c, size_t size)
{
	return vmalloc_ret(c, size, KM_GFP_KERNEL, __builtin_return_address(0), "km_vmalloc");
}

KM_EXPORT void *km_vzalloc(km_client *c, size_t size)
{
	return vmalloc_ret(c, size, KM_GFP_KERNEL | KM___GFP_ZERO, __builtin_return_address(0),
			   "km_vzalloc");
}

KM_EXPORT void *km___vmalloc(km_client *c, size_t size, km_gfp_t gfp)
{
	return vmalloc_ret(c, size, gfp, __builtin_return_address(0), "km___vmalloc");
}

KM_EXPORT void km_vfree(km_client *c, const void *p)
{
	kmc_vfree(c, p);
}

/* Any area with known frames or a contiguous phys: vmalloc areas, shareable
 * allocations, imports (not revoked ones). */
KM_EXPORT uint64_t km_vmalloc_to_pfn(km_client *c, const void *p)
{
	uint64_t pfn = UINT64_MAX;
	struct kmc_varea *a;

	kmc_share_poll(c);
	pthread_mutex_lock(&c->vm_lock);
	a = kmc_area_find_locked(c, (uintptr_t)p);
	if (a && !(a->flags & KMC_AREA_REVOKED)) {
		uint64_t off = (uintptr_t)p - a->start;

		if (a->nr_frames)
			pfn = ((uint64_t)a->frames[off / c->frame_size] * c->frame_size +
			       off % c->frame_size) >>
			      KM_PAGE_SHIFT;
		else if (a->phys != UINT64_MAX)
			pfn = (a->phys + off) >> KM_PAGE_SHIFT;
	}
	pthread_mutex_unlock(&c->vm_lock);
	return pfn;
}
