// SPDX-License-Identifier: MIT
/*
 * wire.c - SEQPACKET framing: sendmsg/recvmsg with SCM_RIGHTS and a size cap.
 * A packet longer than the reader's buffer is reported (MSG_TRUNC) rather than
 * silently cut, so the daemon can answer E2BIG instead of decoding half a
 * message.
 */
#include "config.h"
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

int kmwire_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nr_fds,
		int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nr_fds > WIRE_MAX_FDS)
		return -EINVAL;
	if (nr_fds) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nr_fds);
	}
	do
		n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

ssize_t kmwire_recv(int sock, void *buf, size_t cap, int *fds, unsigned int max_fds,
		    unsigned int *nr_fds, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_SCM_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	unsigned int got = 0;
	ssize_t n;

	if (nr_fds)
		*nr_fds = 0;
	do
		n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		size_t count, i;
		int *data;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		data = (int *)CMSG_DATA(cmsg);
		for (i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, &data[i], sizeof(fd));
			if (fds && got < max_fds)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (nr_fds)
		*nr_fds = got;
	/* The control buffer holds SCM_MAX_FD descriptors, so none is cut off
	 * (and closed by the kernel in our thread). A truncated payload must
	 * not be decoded; its descriptors stay with the caller. */
	if (msg.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	return n;
}
