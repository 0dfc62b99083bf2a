// SPDX-License-Identifier: MIT
/*
 * fakesd.c - a stand-in for systemd for the restart tests (fakesd.h).
 */
#include "config.h"
#include "fakesd.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testutil.h"

void fake_systemd_init(struct fake_systemd *sd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(sd, 0, sizeof(*sd));
	snprintf(sd->dir, sizeof(sd->dir), "/tmp/kmsd.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sd->dir));
	snprintf(sd->sock, sizeof(sd->sock), "%s/sock", sd->dir);
	snprintf(sd->notify, sizeof(sd->notify), "%s/notify", sd->dir);
	snprintf(sd->log, sizeof(sd->log), "%s/log", sd->dir);
	sd->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sd->notify);
	ck_assert_int_eq(bind(sd->notify_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	sd->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sd->sock);
	ck_assert_int_eq(bind(sd->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(sd->listen_fd, 64), 0);
}

/* Reads NOTIFY_SOCKET messages until one contains @until (or 10 s pass),
 * taking FDSTORE descriptors into the store. */
bool fake_systemd_read(struct fake_systemd *sd, const char *until, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms;) {
		char buf[512], ctl[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = ctl,
				      .msg_controllen = sizeof(ctl) };
		struct cmsghdr *cmsg;
		ssize_t n = recvmsg(sd->notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int fd = -1;

		if (n < 0) {
			usleep(10000);
			waited += 10;
			continue;
		}
		buf[n] = '\0';
		for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
			if (cmsg->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
		if (strstr(buf, "FDSTORE=1") && fd >= 0 && sd->nr < 64) {
			const char *name = strstr(buf, "FDNAME=");

			snprintf(sd->names[sd->nr], sizeof(sd->names[0]), "%s",
				 name ? name + 7 : "");
			sd->names[sd->nr][strcspn(sd->names[sd->nr], "\n")] = '\0';
			sd->poll[sd->nr] = !strstr(buf, "FDPOLL=0");
			sd->stored++;
			sd->stored_fdpoll0 += !sd->poll[sd->nr];
			sd->fds[sd->nr++] = fd;
		} else if (fd >= 0) {
			close(fd);
		}
		if (strstr(buf, "FDSTOREREMOVE=1")) {
			const char *name = strstr(buf, "FDNAME=");
			size_t len = name ? strcspn(name + 7, "\n") : 0;

			/* As systemd: the named entry leaves the store (and our copy
			 * of the descriptor with it). */
			for (int i = 0; name && i < sd->nr; i++) {
				if (sd->fds[i] >= 0 && strlen(sd->names[i]) == len &&
				    !strncmp(sd->names[i], name + 7, len)) {
					close(sd->fds[i]);
					sd->fds[i] = -1;
				}
			}
			sd->removed++;
		}
		if (until && strstr(buf, until))
			return true;
	}
	return until == NULL;
}

/* Starts kmallocd as systemd would: the listening socket and the stored
 * descriptors from fd 3 on, with LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID. */
pid_t fake_systemd_start(struct fake_systemd *sd, bool fd_store)
{
	const char *exe = getenv("KMALLOCD");
	bool hugetlb = !strcmp(test_backing(), "hugetlb");
	pid_t pid = fork();

	if (pid == 0) {
		char names[4096] = "kmallocd.socket", value[32], notify[128];
		int logfd = open(sd->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int i, n = 1, high[65];

		/* First: the log's descriptor may have a number the stored ones
		 * are about to take. */
		dup2(logfd, STDERR_FILENO);

		/* CLOEXEC on the high copies: the daemon must hold each stored
		 * descriptor once, as under systemd, or closing one would not
		 * hang its client up. Entries taken out of the store are gone. */
		high[0] = fcntl(sd->listen_fd, F_DUPFD_CLOEXEC, 200);
		/* As systemd (NonBlocking=no) at every start: the daemon must set
		 * O_NONBLOCK itself, whichever way it starts. */
		fcntl(high[0], F_SETFL, fcntl(high[0], F_GETFL) & ~O_NONBLOCK);
		for (i = 0; i < sd->nr; i++) {
			if (sd->fds[i] < 0)
				continue;
			high[n++] = fcntl(sd->fds[i], F_DUPFD_CLOEXEC, 200);
			strcat(names, ":");
			strcat(names, sd->names[i]);
		}
		for (i = 0; i < n; i++)
			dup2(high[i], 3 + i); /* dup2 clears CLOEXEC */
		snprintf(value, sizeof(value), "%d", n);
		setenv("LISTEN_FDS", value, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		snprintf(value, sizeof(value), "%d", (int)getpid());
		setenv("LISTEN_PID", value, 1);
		snprintf(notify, sizeof(notify), "%s", sd->notify);
		setenv("NOTIFY_SOCKET", notify, 1);
		{
			const char *argv[12] = { exe,		"--pool-size", "32M",
						 "--log-level", "debug",       "--paranoid" };
			int argc = 6;

			if (hugetlb) {
				argv[argc++] = "--require-hugepages";
			} else {
				argv[argc++] = "--backing";
				argv[argc++] = "shmem";
			}
			if (fd_store)
				argv[argc++] = "--fd-store";
			argv[argc] = NULL;
			execv(exe, (char *const *)argv);
		}
		_exit(127);
	}
	ck_assert_msg(fake_systemd_read(sd, "READY=1", 10000), "kmallocd never said READY=1");
	return pid;
}

/* Lines of the daemons' log with @needle (and @also, unless NULL). */
int fake_systemd_log_count2(const struct fake_systemd *sd, const char *needle, const char *also)
{
	return test_count_lines(sd->log, needle, also);
}

int fake_systemd_log_count(const struct fake_systemd *sd, const char *needle)
{
	return fake_systemd_log_count2(sd, needle, NULL);
}

void fake_systemd_dump_log(const struct fake_systemd *sd)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "cat %s >&2", sd->log);
	if (system(cmd) != 0)
		fprintf(stderr, "no log at %s\n", sd->log);
}

void fake_systemd_stop(struct fake_systemd *sd, pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fake_systemd_dump_log(sd);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

void fake_systemd_cleanup(struct fake_systemd *sd)
{
	char cmd[160];

	for (int i = 0; i < sd->nr; i++)
		if (sd->fds[i] >= 0)
			close(sd->fds[i]);
	close(sd->listen_fd);
	close(sd->notify_fd);
	if (getenv("KM_TEST_KEEP"))
		return; /* as test_daemon_cleanup(): the log stays */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sd->dir);
	ck_assert_int_eq(system(cmd), 0);
}
