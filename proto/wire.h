/* SPDX-License-Identifier: MIT */
/*
 * wire.h - one packet per message on a SOCK_SEQPACKET socket, with file
 * descriptors passed as SCM_RIGHTS. Shared by the daemon and the client; knows
 * nothing of the message types (the caller packs and unpacks). The kmwire_
 * prefix keeps these names from colliding in programs that link the static
 * libkmclient.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_MAX_FDS		4   /* descriptors our own messages carry, at most */
#define WIRE_SCM_MAX_FDS	253 /* the kernel's SCM_MAX_FD: most one packet can carry */
#define WIRE_DEFAULT_MAX_PACKET (64u * 1024)   /* request cap unless configured */
#define WIRE_MAX_REPLY		(1024u * 1024) /* largest packet the daemon sends */

/* Sends @len bytes as one packet, with @nr_fds descriptors attached.
 * @flags: MSG_DONTWAIT or 0 (MSG_NOSIGNAL is always added).
 * Returns 0, or -errno (-EAGAIN when non-blocking and the socket is full). */
int kmwire_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nr_fds,
		int flags);

/* Receives one packet into @buf (capacity @cap). Descriptors that arrive are
 * stored in @fds (up to @max_fds, the rest closed here), their count in
 * *nr_fds; pass fds NULL to close them all here. With max_fds ==
 * WIRE_SCM_MAX_FDS nothing is ever closed here, which matters to a caller
 * that must not block: closing someone else's descriptor can take as long as
 * that descriptor's owner arranged (a socket with SO_LINGER). Every received
 * descriptor is O_CLOEXEC. Returns the packet's length, 0 on orderly
 * shutdown, -EMSGSIZE if the packet was longer than @cap (it is consumed and
 * dropped; descriptors that came with it are still in @fds), or -errno. */
ssize_t kmwire_recv(int sock, void *buf, size_t cap, int *fds, unsigned int max_fds,
		    unsigned int *nr_fds, int flags);
