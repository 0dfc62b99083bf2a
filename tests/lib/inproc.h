/* SPDX-License-Identifier: MIT */
/*
 * inproc.h - the real daemon core for unit tests, without a kmallocd binary,
 * a socket path or a temporary directory: server_init_unlisted() in a forked
 * child, serving one end of a socketpair per connection with the real
 * dispatcher, allocators and accounting (--paranoid: every request checks the
 * allocators, and a failed check aborts the child). The test holds the other
 * ends: one for the client under test (kmc_connect_fd()), and a probe, a raw
 * connection of the same uid that asks the daemon for its own numbers
 * (Meminfo, grants included) without going through the client.
 *
 * Only test programs that link kmallocd-core may call these.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "kmalloc.pb-c.h"

struct inproc {
	pid_t pid;	   /* the daemon core */
	int fd;		   /* the client's end, for kmc_connect_fd(); -1 once handed over */
	int probe;	   /* said Hello already; -1 once closed */
	uint64_t probe_id; /* last request id sent on the probe */
};

/* Forks the daemon core with a @pool_size-byte shmem pool and connects both
 * ends. Aborts the test on failure. */
void inproc_start(struct inproc *d, uint64_t pool_size);

/* The daemon's Meminfo, asked over the probe; aborts the test on failure. */
void inproc_meminfo(struct inproc *d, Kmalloc__Meminfo *out);

/* Closes the probe. As any client of the uid that leaves while another
 * stays, it makes the daemon give the domain's empty slabs back (conn.c),
 * shortly after: MemFree counts them again. */
void inproc_probe_close(struct inproc *d);

/* Closes the probe and @d->fd if still open, then waits (10 s at most, then
 * kills it) for the daemon core to exit, which it does once every
 * connection is gone: the client must be disconnected first. Returns 0 when
 * it stopped cleanly, else its exit status, or -1 when it was killed or died
 * of a signal (a failed paranoid check). */
int inproc_stop(struct inproc *d);
