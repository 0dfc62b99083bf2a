// SPDX-License-Identifier: MIT
/*
 * meminfo.c - km_get_meminfo(): the pool totals, as /proc/meminfo shows the
 * kernel's. One round trip (more if the client's own lists hold objects, which
 * go back first); any client may ask (no admin rights needed).
 * The request is built and decoded in rpc.c, the only file that sees the
 * generated protobuf-c types.
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>

KM_EXPORT int km_get_meminfo(km_client *c, km_meminfo *out)
{
	int err = out ? 0 : -EINVAL;

	/* What this client keeps on its lists counts as free in its own eyes. */
	if (!err)
		err = kmc_pcp_drain(c);
	if (!err)
		err = kmc_rpc_meminfo(c, out);

	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}
