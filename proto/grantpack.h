/* SPDX-License-Identifier: MIT */
/*
 * grantpack.h - the Reply that carries grants (Alloc, SlabAlloc), packed by
 * hand: byte for byte what kmalloc__reply__pack() makes of it, without
 * protobuf-c's two walks of a thousand Grant messages (sizing, then
 * packing, some 600 instructions a grant: most of what a bulk Alloc costs
 * the daemon). tests/unit/test-wire.c checks the bytes against protobuf-c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* One Grant message's fields (proto/kmalloc.proto); zeros are not sent,
 * as proto3 does. */
struct grantpack_grant {
	uint64_t id;
	uint64_t phys;
	uint64_t size;
	uint32_t object_size;
	uint32_t objects;
};

/* Reply.body fields that hold an AllocReply. */
#define GRANTPACK_ALLOC	     11 /* Reply.alloc */
#define GRANTPACK_SLAB_ALLOC 17 /* Reply.slab_alloc */
/* Reply.nop: an empty body, packed as an AllocReply with no grants (the
 * same bytes): a Nop carries the releases that ride without waiting, and
 * protobuf-c walks every field of Reply's oneof to pack one. */
#define GRANTPACK_NOP 16

/* Bytes grantpack_reply() may need at most for @nr grants and
 * @nr_failed release_failed ids. */
size_t grantpack_reply_max(size_t nr_failed, size_t nr);

/* Packs Reply { id = @id, release_failed = @failed[0..@nr_failed),
 * <@body_field> = AllocReply { grants = @g[0..@nr) } } into @buf (room for
 * grantpack_reply_max()). Returns the bytes written. */
size_t grantpack_reply(uint8_t *buf, uint64_t id, const uint64_t *failed, size_t nr_failed,
		       unsigned int body_field, const struct grantpack_grant *g, size_t nr);
