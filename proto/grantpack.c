// SPDX-License-Identifier: MIT
/*
 * grantpack.c - the grant-carrying Reply packed by hand (grantpack.h).
 *
 * The protobuf wire format, as far as this message needs it: a field is a
 * key varint (number << 3 | wire type) then its value; varints (type 0)
 * for integers, length-delimited (type 2) for sub-messages and packed
 * repeated scalars. protobuf-c writes fields in number order and leaves
 * out proto3 scalars that are zero; so do we.
 */
#include "config.h"
#include "grantpack.h"

#define WT_VARINT  0
#define WT_LEN	   2
#define VARINT_MAX 10
/* A Grant at most: five keys and five varints (under 128: one length byte). */
#define GRANT_MAX (5 * (1 + VARINT_MAX))
_Static_assert(GRANT_MAX < 128, "a Grant's length is one byte");

static size_t varint_len(uint64_t v)
{
	/* 7 bits a byte: 1 + floor(log2(v) / 7) for v > 0, 1 for 0. */
	return 1 + (size_t)(63 - __builtin_clzll(v | 1)) / 7;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_key(uint8_t *p, unsigned int field, unsigned int type)
{
	return put_varint(p, (uint64_t)field << 3 | type);
}

/* A varint field, left out when zero. */
static size_t uint_field_len(uint64_t v)
{
	return v ? 1 + varint_len(v) : 0;
}

static uint8_t *put_uint_field(uint8_t *p, unsigned int field, uint64_t v)
{
	if (!v)
		return p;
	p = put_key(p, field, WT_VARINT);
	return put_varint(p, v);
}

static size_t grant_len(const struct grantpack_grant *g)
{
	return uint_field_len(g->id) + uint_field_len(g->phys) + uint_field_len(g->size) +
	       uint_field_len(g->object_size) + uint_field_len(g->objects);
}

size_t grantpack_reply_max(size_t nr_failed, size_t nr)
{
	/* id; release_failed (key, length, ids); the body's key and length;
	 * each grant with its key and length. */
	return 1 + VARINT_MAX + 2 + VARINT_MAX + nr_failed * VARINT_MAX + 2 + VARINT_MAX +
	       nr * (1 + VARINT_MAX + GRANT_MAX);
}

size_t grantpack_reply(uint8_t *buf, uint64_t id, const uint64_t *failed, size_t nr_failed,
		       unsigned int body_field, const struct grantpack_grant *g, size_t nr)
{
	size_t body = 0, failed_len = 0, i;
	uint8_t *p = buf;

	/* A Grant is under 128 bytes: its length is one byte. */
	for (i = 0; i < nr; i++)
		body += 2 + grant_len(&g[i]);
	p = put_uint_field(p, 1, id);
	if (nr_failed) {
		for (i = 0; i < nr_failed; i++)
			failed_len += varint_len(failed[i]);
		p = put_key(p, 4, WT_LEN);
		p = put_varint(p, failed_len);
		for (i = 0; i < nr_failed; i++)
			p = put_varint(p, failed[i]);
	}
	/* A oneof member is sent even when empty. */
	p = put_key(p, body_field, WT_LEN);
	p = put_varint(p, body);
	for (i = 0; i < nr; i++) {
		*p++ = 1 << 3 | WT_LEN;
		*p++ = (uint8_t)grant_len(&g[i]);
		p = put_uint_field(p, 1, g[i].id);
		p = put_uint_field(p, 2, g[i].phys);
		p = put_uint_field(p, 3, g[i].size);
		p = put_uint_field(p, 4, g[i].object_size);
		p = put_uint_field(p, 5, g[i].objects);
	}
	return (size_t)(p - buf);
}
