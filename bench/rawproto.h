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

/* The daemon's pid (SO_PEERCRED), or -1. */
int rp_peer_pid(int fd);
