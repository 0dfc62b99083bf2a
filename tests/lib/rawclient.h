/* SPDX-License-Identifier: MIT */
/*
 * rawclient.h - speak the wire protocol directly, without libkmclient, to
 * test what the daemon does with requests the library would never send.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kmalloc.pb-c.h"

/* Connects to @path; -1 on failure. */
int raw_connect(const char *path);
/* Connects and completes Hello/Welcome; the domain memfd goes to *memfd
 * (closed if memfd is NULL), the Welcome to *welcome (freed if NULL). */
int raw_connect_hello(const char *path, int *memfd, Kmalloc__Reply **welcome);
/* Sends a Hello (id 1, protocol 1) from a client called @name. 0 or -errno. */
int raw_send_hello(int fd, const char *name);
/* Sends @req (packed) and returns 0 or -errno. */
int raw_send(int fd, const Kmalloc__Request *req);
/* Sends raw bytes as one packet. */
int raw_send_bytes(int fd, const void *buf, size_t len);
/* Receives one Reply (NULL on EOF or error); an fd with it goes to *fd_out
 * (closed when fd_out is NULL). Waits at most @timeout_ms. */
Kmalloc__Reply *raw_recv(int fd, int *fd_out, int timeout_ms);
/* raw_send + raw_recv with a 5 s timeout. */
Kmalloc__Reply *raw_call(int fd, const Kmalloc__Request *req, int *fd_out);
/* Convenience requests. */
Kmalloc__Reply *raw_alloc(int fd, uint64_t id, uint64_t size, uint32_t gfp, uint32_t count);
Kmalloc__Reply *raw_free(int fd, uint64_t id, const uint64_t *grants, size_t n);
Kmalloc__Reply *raw_meminfo(int fd, uint64_t id);
Kmalloc__Reply *raw_inspect(int fd, uint64_t id, Kmalloc__Inspect__Table table, uint32_t offset);
/* The pool's figures into *out (a plain copy); 0, or -1 when no Meminfo
 * reply came. */
int raw_get_meminfo(int fd, uint64_t id, Kmalloc__Meminfo *out);
