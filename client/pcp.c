// SPDX-License-Identifier: MIT
/*
 * pcp.c - per-client lists of freed large kmalloc blocks (2^order pages):
 * the broker's counterpart of the page allocator's per-CPU page lists
 * (docs/kernel.md). Small objects have the client's own slabs instead
 * (slab.c).
 *
 * A round trip costs as much as ~1,200 mallocs: a large block freed and
 * asked for again should not cost two. A kfree keeps up to `large_high`
 * bytes of blocks here (1/64 of the pool, 8 MiB at most), one list per
 * order; the next kmalloc of that order takes one without asking.
 *
 * What sits here is still granted to this client: the daemon counts it as
 * in use (as the kernel does not count pages on per-CPU lists as free), a
 * client that dies gives it back, and an allocation the daemon refuses for
 * want of memory drains the lists and tries once more (as the kernel drains
 * the per-CPU lists before it gives up). KMCLIENT_NO_CACHE=1 turns the lists
 * off.
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

static int pcp_list_init(struct kmc_pcp_list *l, uint32_t high)
{
	l->nr = 0;
	l->high = high;
	l->objs = high ? calloc(high, sizeof(*l->objs)) : NULL;
	return high && !l->objs ? -ENOMEM : 0;
}

int kmc_pcp_init(struct km_client *c)
{
	unsigned int i;
	int err = 0;

	/* A client may hide at most 1/64 of the pool in freed large blocks. */
	c->pcp_large_high = c->caching ? c->pool_size / PCP_LARGE_POOL_SHARE : 0;
	if (c->pcp_large_high > PCP_LARGE_HIGH_MAX)
		c->pcp_large_high = PCP_LARGE_HIGH_MAX;
	c->pcp_large_bytes = 0;
	for (i = 1; i <= KM_MAX_ORDER && !err; i++)
		err = pcp_list_init(&c->pcp_large[i],
				    (uint32_t)(c->pcp_large_high >> (KM_PAGE_SHIFT + i)));
	return err;
}

void kmc_pcp_destroy(struct km_client *c)
{
	unsigned int i;

	for (i = 0; i <= KM_MAX_ORDER; i++)
		free(c->pcp_large[i].objs);
	memset(c->pcp_large, 0, sizeof(c->pcp_large));
}

/* The list serving blocks of usable size @ksize, or NULL (no list). */
struct kmc_pcp_list *kmc_pcp_list_for(struct km_client *c, uint64_t ksize)
{
	if (ksize <= KM_KMALLOC_MAX_CACHE_SIZE)
		return NULL;
	if (ksize > (4096ull << KM_MAX_ORDER))
		return NULL;
	return &c->pcp_large[kms_get_order(ksize)];
}

bool kmc_pcp_pop_locked(struct km_client *c, struct kmc_pcp_list *l, struct kmc_kobj *out)
{
	if (!l || !l->nr)
		return false;
	*out = l->objs[--l->nr];
	c->pcp_large_bytes -= out->size;
	return true;
}

bool kmc_pcp_push_locked(struct km_client *c, struct kmc_pcp_list *l, const struct kmc_kobj *o)
{
	if (!l || l->nr >= l->high)
		return false;
	if (c->pcp_large_bytes + o->size > c->pcp_large_high)
		return false;
	c->pcp_large_bytes += o->size;
	l->objs[l->nr++] = *o;
	return true;
}

bool kmc_pcp_drain_if_any(struct km_client *c)
{
	bool any = false;
	unsigned int k;

	pthread_mutex_lock(&c->ktab_lock);
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
