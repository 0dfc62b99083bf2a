/* SPDX-License-Identifier: MIT */
/*
 * rawproto.h - kmperf's own protocol client (proto/kmalloc.proto), for the
 * figures that measure the daemon rather than the library: every call is one
 * request and one reply, whatever libkmclient does today. It never maps the
 * domain memfd (it never touches what it is granted).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Connects to @path and says Hello as @name; the domain memfd is closed.
 * Return: the socket, or -errno. */
int rp_connect(const char *path, const char *name);

/*
 * Alloc of @count objects of @size bytes (one request), with @release ids
 * riding on it. The grant ids go to @ids (room for @count) when not NULL.
 * Return: the number of grants, or -errno (the daemon's error, or ours;
 * -ECONNRESET when it hung up).
 */
int rp_alloc(int fd, uint64_t id, uint64_t size, uint32_t count, const uint64_t *release,
	     size_t nr_release, uint64_t *ids);

/* Free of @n grants (at most 1024). Return: 0 or -errno. */
int rp_free(int fd, uint64_t id, const uint64_t *ids, size_t n);

/* Nop, with @release ids riding on it. Return: 0 or -errno. */
int rp_nop(int fd, uint64_t id, const uint64_t *release, size_t nr_release);

/* Meminfo: the number of live grants in the whole daemon and of its clients
 * (either may be NULL). Return: 0 or -errno. */
int rp_meminfo(int fd, uint64_t id, uint64_t *grants, uint32_t *clients);

/* The daemon's own event-loop figures (Inspect TABLE_LOOP, `kmctl stats`),
 * durations in ns, counted since it started. */
struct rp_loop {
	uint64_t requests, request_max_ns, requests_over_1ms;
	char request_max_kind[16];
	uint64_t request_hist[5]; /* <10us, <100us, <1ms, <10ms, >=10ms */
	uint64_t teardown_turns, teardown_max_ns, tick_max_ns, accept_max_ns;
	uint64_t uptime_ns, grants;
	uint32_t connections;
};

/* Inspect TABLE_LOOP (root or the daemon's admin group).
 * Return: 0, or -errno (-EACCES when not allowed). */
int rp_loop(int fd, uint64_t id, struct rp_loop *out);

/* The daemon's pid (SO_PEERCRED), or -1. */
int rp_peer_pid(int fd);
