// SPDX-License-Identifier: MIT
/*
 * gfp.c - GFP masks in words, as the kernel prints them (%pGg): the
 * composite names first (GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT), then the
 * single bits, and "..." for bits it has no name for.
 */
#include "config.h"
#include "gfp.h"

#include <stdio.h>

const char *gfp_describe(unsigned int gfp, char *buf, size_t len)
{
	static const struct {
		unsigned int mask;
		const char *name;
	} names[] = {
		{ KM_GFP_KERNEL, "GFP_KERNEL" },
		{ KM_GFP_ATOMIC, "GFP_ATOMIC" },
		{ KM_GFP_NOWAIT, "GFP_NOWAIT" },
		{ KM___GFP_HIGH, "__GFP_HIGH" },
		{ KM___GFP_ZERO, "__GFP_ZERO" },
		{ KM___GFP_NOWARN, "__GFP_NOWARN" },
		{ KM___GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL" },
		{ KM___GFP_NOFAIL, "__GFP_NOFAIL" },
		{ KM___GFP_NORETRY, "__GFP_NORETRY" },
	};
	unsigned int left = gfp & ~GFP_NO_RESERVE;
	size_t off = (size_t)snprintf(buf, len, "%#x(", left), i;
	bool first = true;

	for (i = 0; i < sizeof(names) / sizeof(names[0]) && off < len; i++) {
		if ((left & names[i].mask) != names[i].mask || !(left & names[i].mask))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", first ? "" : "|",
					names[i].name);
		left &= ~names[i].mask;
		first = false;
	}
	if (off < len)
		snprintf(buf + off, len - off, "%s%s)", left && !first ? "|" : "",
			 left ? "..." : "");
	return buf;
}
