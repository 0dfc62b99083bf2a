// SPDX-License-Identifier: MIT
/*
 * rawproto.c - pack, send, receive and unpack one request at a time.
 */
#include "config.h"
#include "rawproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kmalloc.pb-c.h"
#include "wire.h"

#define RP_GFP_KERNEL 0xcc0u

/* Sends @req and waits for the reply with the same id (replies to nothing
 * else are outstanding). Return: the reply, or NULL with errno. */
static Kmalloc__Reply *rp_call(int fd, const Kmalloc__Request *req, int *memfd)
{
	static uint8_t rbuf[WIRE_MAX_REPLY];
	uint8_t sbuf[16384], *buf = sbuf;
	size_t len = kmalloc__request__get_packed_size(req);
	int fds[WIRE_SCM_MAX_FDS];
	unsigned int nr_fds = 0;
	Kmalloc__Reply *r;
	ssize_t n;
	int err;

	if (len > sizeof(sbuf)) {
		buf = malloc(len);
		if (!buf)
			return NULL;
	}
	kmalloc__request__pack(req, buf);
	err = kmwire_send(fd, buf, len, NULL, 0, 0);
	if (buf != sbuf)
		free(buf);
	if (err < 0) {
		errno = err == -EPIPE ? ECONNRESET : -err;
		return NULL;
	}
	do
		n = kmwire_recv(fd, rbuf, sizeof(rbuf), fds, WIRE_SCM_MAX_FDS, &nr_fds, 0);
	while (n == -EINTR);
	for (unsigned int i = 0; i < nr_fds; i++) {
		if (memfd && i == 0)
			*memfd = fds[i];
		else
			close(fds[i]);
	}
	if (n <= 0) {
		errno = n == 0 ? ECONNRESET : (int)-n;
		return NULL;
	}
	r = kmalloc__reply__unpack(NULL, (size_t)n, rbuf);
	if (!r) {
		errno = EPROTO;
		return NULL;
	}
	if (r->id != req->id) {
		kmalloc__reply__free_unpacked(r, NULL);
		errno = EPROTO;
		return NULL;
	}
	return r;
}

/* The reply's error as -errno, or 0 when it has body @body. */
static int rp_check(const Kmalloc__Reply *r, Kmalloc__Reply__BodyCase body)
{
	if (r->error)
		return -r->error;
	return r->body_case == body ? 0 : -EPROTO;
}

int rp_connect(const char *path, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	Kmalloc__Reply *r;
	int fd, err, memfd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	hello.version = 1;
	hello.name = (char *)name;
	req.id = 1;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	r = rp_call(fd, &req, &memfd);
	if (memfd >= 0)
		close(memfd);
	if (!r) {
		err = -errno;
		close(fd);
		return err;
	}
	err = rp_check(r, KMALLOC__REPLY__BODY_WELCOME);
	kmalloc__reply__free_unpacked(r, NULL);
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int rp_alloc(int fd, uint64_t id, uint64_t size, uint32_t count, const uint64_t *release,
	     size_t nr_release, uint64_t *ids)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Alloc a = KMALLOC__ALLOC__INIT;
	Kmalloc__Reply *r;
	int ret;

	a.size = size;
	a.gfp = RP_GFP_KERNEL;
	a.count = count;
	req.id = id;
	req.n_release = nr_release;
	req.release = (uint64_t *)release;
	req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
	req.alloc = &a;
	r = rp_call(fd, &req, NULL);
	if (!r)
		return -errno;
	ret = rp_check(r, KMALLOC__REPLY__BODY_ALLOC);
	if (ret == 0) {
		ret = (int)r->alloc->n_grants;
		for (int i = 0; ids && i < ret && i < (int)count; i++)
			ids[i] = r->alloc->grants[i]->id;
	}
	kmalloc__reply__free_unpacked(r, NULL);
	return ret;
}

int rp_free(int fd, uint64_t id, const uint64_t *ids, size_t n)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Free f = KMALLOC__FREE__INIT;
	Kmalloc__Reply *r;
	int ret;

	f.n_grants = n;
	f.grants = (uint64_t *)ids;
	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_FREE;
	req.free = &f;
	r = rp_call(fd, &req, NULL);
	if (!r)
		return -errno;
	ret = rp_check(r, KMALLOC__REPLY__BODY_FREE);
	kmalloc__reply__free_unpacked(r, NULL);
	return ret;
}

int rp_nop(int fd, uint64_t id, const uint64_t *release, size_t nr_release)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	Kmalloc__Reply *r;
	int ret;

	req.id = id;
	req.n_release = nr_release;
	req.release = (uint64_t *)release;
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	r = rp_call(fd, &req, NULL);
	if (!r)
		return -errno;
	ret = rp_check(r, KMALLOC__REPLY__BODY_NOP);
	if (ret == 0 && r->n_release_failed)
		ret = -ENOENT;
	kmalloc__reply__free_unpacked(r, NULL);
	return ret;
}

int rp_meminfo(int fd, uint64_t id, uint64_t *grants, uint32_t *clients)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest m = KMALLOC__MEMINFO_REQUEST__INIT;
	Kmalloc__Reply *r;
	int ret;

	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &m;
	r = rp_call(fd, &req, NULL);
	if (!r)
		return -errno;
	ret = rp_check(r, KMALLOC__REPLY__BODY_MEMINFO);
	if (ret == 0 && grants)
		*grants = r->meminfo->grants;
	if (ret == 0 && clients)
		*clients = r->meminfo->clients;
	kmalloc__reply__free_unpacked(r, NULL);
	return ret;
}

int rp_loop(int fd, uint64_t id, struct rp_loop *out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Inspect in = KMALLOC__INSPECT__INIT;
	const Kmalloc__LoopRow *row;
	Kmalloc__Reply *r;
	int ret;

	in.table = KMALLOC__INSPECT__TABLE__TABLE_LOOP;
	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
	req.inspect = &in;
	r = rp_call(fd, &req, NULL);
	if (!r)
		return -errno;
	ret = rp_check(r, KMALLOC__REPLY__BODY_INSPECT);
	if (ret == 0 && r->inspect->n_loop != 1)
		ret = -EPROTO;
	if (ret == 0) {
		row = r->inspect->loop[0];
		memset(out, 0, sizeof(*out));
		out->requests = row->requests;
		out->request_max_ns = row->request_max_ns;
		out->requests_over_1ms = row->requests_over_1ms;
		snprintf(out->request_max_kind, sizeof(out->request_max_kind), "%s",
			 row->request_max_kind);
		for (size_t i = 0; i < row->n_request_hist && i < 5; i++)
			out->request_hist[i] = row->request_hist[i];
		out->teardown_turns = row->teardown_turns;
		out->teardown_max_ns = row->teardown_max_ns;
		out->tick_max_ns = row->tick_max_ns;
		out->accept_max_ns = row->accept_max_ns;
		out->uptime_ns = row->uptime_ns;
		out->grants = row->grants;
		out->connections = row->connections;
	}
	kmalloc__reply__free_unpacked(r, NULL);
	return ret;
}

int rp_peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	return (int)cred.pid;
}
