/* SPDX-License-Identifier: MIT */
/*
 * dispatch.h - one packet in, one reply out: decodes a Request, checks it,
 * calls the allocators and encodes the Reply. The only daemon file that sees
 * both the generated protobuf-c types and the allocators.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct conn;

/* Handles one received packet of @len bytes. Garbage closes the connection;
 * everything else gets a reply. @c may be closing afterwards (c->state):
 * it stays valid until the event loop frees it. */
void dispatch_packet(struct conn *c, const uint8_t *buf, size_t len);

/* Sends the refusal of a connection on @fd: a Reply with id 0, error @err
 * and "connection refused: @why". Never blocks; the caller closes @fd. */
void dispatch_refuse(int fd, int err, const char *why);

/* Answers a packet that was too big to read (E2BIG, id 0). */
void dispatch_oversized(struct conn *c);
