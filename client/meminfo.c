// SPDX-License-Identifier: MIT
/*
 * meminfo.c - km_get_meminfo(): the pool totals, as /proc/meminfo shows the
 * kernel's. One round trip; any client may ask (no admin rights needed).
 * Nothing is drained first: what this client keeps for reuse (its slabs,
 * freed large blocks) is granted to it, counted where the kernel counts a
 * CPU's slab and per-CPU pages, and the figures add up as they are.
 * The request is built and decoded in rpc.c, the only file that sees the
 * generated protobuf-c types.
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>

KM_EXPORT int km_get_meminfo(km_client *c, km_meminfo *out)
{
	int err = out ? 0 : -EINVAL;

	if (!err)
		err = kmc_rpc_meminfo(c, out);

	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}
