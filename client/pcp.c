// SPDX-License-Identifier: MIT
/*
 * pcp.c - per-client lists of kmalloc objects and blocks the client holds
 * but does not use: the broker's counterpart of SLUB's per-CPU freelists and
 * the page allocator's per-CPU page lists (docs/kernel.md).
 *
 * A round trip costs as much as ~1,200 mallocs, so small kmallocs must not
 * each cost one. A miss in a slab class asks the daemon for `batch` objects
 * of the class at once (one bulk Alloc); the rest wait here. A kfree puts the
 * object back here while the list is below `high`, else its id goes back to
 * the daemon with the next request. Large kmallocs (2^order pages) keep up
 * to `large_high` bytes of freed blocks the same way, so a buffer freed and
 * asked for again costs no round trip either.
 *
 * What sits here is still granted to this client: the daemon counts it as
 * in use (as /proc/slabinfo counts per-CPU free objects as active), a client
 * that dies gives it back, and km_get_meminfo() drains the lists first so
 * the caller sees exact numbers, and an allocation the daemon refuses for
 * want of memory drains them and tries once more (as the kernel drains the
 * per-CPU lists before it gives up). Limits follow SLUB's set_cpu_partial():
 * 120 objects below 256 bytes, 52 below 1 KiB, 24 below 4 KiB, 6 above;
 * KMCLIENT_NO_CACHE=1 turns the lists off (every call one round trip).
 *
 * Everything here runs under ktab_lock, with the kmalloc table.
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PCP_LARGE_HIGH_MAX   (8ull << 20) /* bytes of freed large blocks kept */
#define PCP_LARGE_POOL_SHARE 64		  /* and at most 1/64 of the pool */

static uint32_t slub_cpu_partial(uint32_t size)
{
	if (size < 256)
		return 120;
	if (size < 1024)
		return 52;
	if (size < 4096)
		return 24;
	return 6;
}

static int pcp_list_init(struct kmc_pcp_list *l, uint32_t high, uint32_t batch)
{
	l->nr = 0;
	l->high = high;
	l->batch = batch;
	l->objs = high ? calloc(high, sizeof(*l->objs)) : NULL;
	return high && !l->objs ? -ENOMEM : 0;
}

int kmc_pcp_init(struct km_client *c)
{
	const char *off = getenv("KMCLIENT_NO_CACHE");
	bool enabled = !(off && *off && strcmp(off, "0"));
	unsigned int i;
	int err = 0;

	/* A client may hide at most 1/64 of the pool in freed large blocks. */
	c->pcp_large_high = enabled ? c->pool_size / PCP_LARGE_POOL_SHARE : 0;
	if (c->pcp_large_high > PCP_LARGE_HIGH_MAX)
		c->pcp_large_high = PCP_LARGE_HIGH_MAX;
	c->pcp_large_bytes = 0;
	for (i = 0; i < KM_NR_KMALLOC_CLASSES && !err; i++) {
		uint32_t high = enabled ? slub_cpu_partial(kms_class_size[i]) : 0;

		err = pcp_list_init(&c->pcp_small[i], high, high / 2);
	}
	for (i = 1; i <= KM_MAX_ORDER && !err; i++)
		err = pcp_list_init(&c->pcp_large[i],
				    (uint32_t)(c->pcp_large_high >> (KM_PAGE_SHIFT + i)), 1);
	return err;
}

void kmc_pcp_destroy(struct km_client *c)
{
	unsigned int i;

	for (i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		free(c->pcp_small[i].objs);
	for (i = 0; i <= KM_MAX_ORDER; i++)
		free(c->pcp_large[i].objs);
	memset(c->pcp_small, 0, sizeof(c->pcp_small));
	memset(c->pcp_large, 0, sizeof(c->pcp_large));
}

/* The list serving objects of usable size @ksize, or NULL (no list). */
struct kmc_pcp_list *kmc_pcp_list_for(struct km_client *c, uint64_t ksize)
{
	if (ksize <= KM_KMALLOC_MAX_CACHE_SIZE) {
		int idx = kms_class_index(ksize);

		return idx < 0 ? NULL : &c->pcp_small[idx];
	}
	if (ksize > (4096ull << KM_MAX_ORDER))
		return NULL;
	return &c->pcp_large[kms_get_order(ksize)];
}

bool kmc_pcp_pop_locked(struct km_client *c, struct kmc_pcp_list *l, struct kmc_kobj *out)
{
	if (!l || !l->nr)
		return false;
	*out = l->objs[--l->nr];
	if (out->size > KM_KMALLOC_MAX_CACHE_SIZE)
		c->pcp_large_bytes -= out->size;
	return true;
}

bool kmc_pcp_push_locked(struct km_client *c, struct kmc_pcp_list *l, const struct kmc_kobj *o)
{
	if (!l || l->nr >= l->high)
		return false;
	if (o->size > KM_KMALLOC_MAX_CACHE_SIZE) {
		if (c->pcp_large_bytes + o->size > c->pcp_large_high)
			return false;
		c->pcp_large_bytes += o->size;
	}
	l->objs[l->nr++] = *o;
	return true;
}

bool kmc_pcp_drain_if_any(struct km_client *c)
{
	bool any = false;
	unsigned int k;

	pthread_mutex_lock(&c->ktab_lock);
	for (k = 0; k < KM_NR_KMALLOC_CLASSES && !any; k++)
		any = c->pcp_small[k].nr != 0;
	for (k = 0; k <= KM_MAX_ORDER && !any; k++)
		any = c->pcp_large[k].nr != 0;
	pthread_mutex_unlock(&c->ktab_lock);
	return any && kmc_pcp_drain(c) == 0;
}

int kmc_pcp_drain(struct km_client *c)
{
	size_t chunk = kmc_rpc_max_ids(c), n = 0, i;
	uint64_t *ids;
	unsigned int k;
	int err = 0;

	ids = malloc(chunk * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (;;) {
		struct kmc_kobj o;

		n = 0;
		pthread_mutex_lock(&c->ktab_lock);
		for (k = 0; k < KM_NR_KMALLOC_CLASSES && n < chunk; k++)
			while (n < chunk && kmc_pcp_pop_locked(c, &c->pcp_small[k], &o))
				ids[n++] = o.id;
		for (k = 0; k <= KM_MAX_ORDER && n < chunk; k++)
			while (n < chunk && kmc_pcp_pop_locked(c, &c->pcp_large[k], &o))
				ids[n++] = o.id;
		pthread_mutex_unlock(&c->ktab_lock);
		if (!n)
			break;
		err = kmc_rpc_free(c, ids, n);
		if (err) {
			/* Off the lists already: they go back with later requests. */
			for (i = 0; i < n; i++)
				kmc_rpc_release(c, ids[i]);
			break;
		}
	}
	free(ids);
	return err;
}
