// SPDX-License-Identifier: MIT
/*
 * rawclient.c - a minimal protocol client for tests: pack, send, poll,
 * receive, unpack.
 */
#include "config.h"
#include "rawclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "wire.h"

int raw_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int raw_send(int fd, const Kmalloc__Request *req)
{
	size_t len = kmalloc__request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int err;

	if (!buf)
		return -ENOMEM;
	kmalloc__request__pack(req, buf);
	err = kmwire_send(fd, buf, len, NULL, 0, 0);
	free(buf);
	return err;
}

int raw_send_bytes(int fd, const void *buf, size_t len)
{
	return kmwire_send(fd, buf, len, NULL, 0, 0);
}

Kmalloc__Reply *raw_recv(int fd, int *fd_out, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	static uint8_t buf[WIRE_MAX_REPLY];
	int fds[WIRE_MAX_FDS];
	unsigned int nr = 0, i;
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return NULL;
	n = kmwire_recv(fd, buf, sizeof(buf), fds, WIRE_MAX_FDS, &nr, 0);
	if (n <= 0) {
		for (i = 0; i < nr; i++)
			close(fds[i]);
		return NULL;
	}
	for (i = 0; i < nr; i++) {
		if (fd_out && i == 0)
			*fd_out = fds[i];
		else
			close(fds[i]);
	}
	{
		Kmalloc__Reply *r = kmalloc__reply__unpack(NULL, (size_t)n, buf);

		if (!r)
			fprintf(stderr, "rawclient: a reply of %zd bytes does not decode\n", n);
		return r;
	}
}

Kmalloc__Reply *raw_call(int fd, const Kmalloc__Request *req, int *fd_out)
{
	if (raw_send(fd, req) < 0)
		return NULL;
	return raw_recv(fd, fd_out, 5000);
}

int raw_send_hello(int fd, const char *name)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;

	req.id = 1;
	hello.version = 1;
	hello.name = (char *)name;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return raw_send(fd, &req);
}

int raw_connect_hello(const char *path, int *memfd, Kmalloc__Reply **welcome)
{
	Kmalloc__Reply *reply = NULL;
	int fd = raw_connect(path), mfd = -1;

	if (fd < 0)
		return -1;
	if (raw_send_hello(fd, "rawtest") == 0)
		reply = raw_recv(fd, &mfd, 5000);
	if (!reply || reply->error || reply->body_case != KMALLOC__REPLY__BODY_WELCOME || mfd < 0) {
		if (reply)
			kmalloc__reply__free_unpacked(reply, NULL);
		if (mfd >= 0)
			close(mfd);
		close(fd);
		return -1;
	}
	if (memfd)
		*memfd = mfd;
	else
		close(mfd);
	if (welcome)
		*welcome = reply;
	else
		kmalloc__reply__free_unpacked(reply, NULL);
	return fd;
}

Kmalloc__Reply *raw_alloc(int fd, uint64_t id, uint64_t size, uint32_t gfp, uint32_t count)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Alloc a = KMALLOC__ALLOC__INIT;

	req.id = id;
	a.size = size;
	a.gfp = gfp;
	a.count = count;
	req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
	req.alloc = &a;
	return raw_call(fd, &req, NULL);
}

Kmalloc__Reply *raw_free(int fd, uint64_t id, const uint64_t *grants, size_t n)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Free f = KMALLOC__FREE__INIT;

	req.id = id;
	f.n_grants = n;
	f.grants = (uint64_t *)grants;
	req.body_case = KMALLOC__REQUEST__BODY_FREE;
	req.free = &f;
	return raw_call(fd, &req, NULL);
}

Kmalloc__Reply *raw_meminfo(int fd, uint64_t id)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest m = KMALLOC__MEMINFO_REQUEST__INIT;

	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &m;
	return raw_call(fd, &req, NULL);
}

Kmalloc__Reply *raw_inspect(int fd, uint64_t id, Kmalloc__Inspect__Table table, uint32_t offset)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Inspect ins = KMALLOC__INSPECT__INIT;

	req.id = id;
	ins.table = table;
	ins.offset = offset;
	req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
	req.inspect = &ins;
	return raw_call(fd, &req, NULL);
}

int raw_get_meminfo(int fd, uint64_t id, Kmalloc__Meminfo *out)
{
	Kmalloc__Reply *r = raw_meminfo(fd, id);

	if (!r || r->error || r->body_case != KMALLOC__REPLY__BODY_MEMINFO) {
		if (r)
			kmalloc__reply__free_unpacked(r, NULL);
		return -1;
	}
	*out = *r->meminfo;
	/* Nothing of the reply's stays reachable from the copy. */
	out->base.n_unknown_fields = 0;
	out->base.unknown_fields = NULL;
	kmalloc__reply__free_unpacked(r, NULL);
	return 0;
}
