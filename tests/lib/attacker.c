// SPDX-License-Identifier: MIT
/*
 * attacker.c - fork a child, let it become another user, and talk to it
 * over two pipes: its reports up, the test's go-aheads down.
 */
#include "config.h"
#include "attacker.h"

#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "daemon.h"
#include "testutil.h"

void attacker_start(struct attacker *a, const struct test_daemon *d, attacker_fn *fn, void *arg)
{
	int go[2], rep[2];

	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
	fflush(NULL);
	a->d = d;
	a->pid = fork();
	ck_assert_int_ge(a->pid, 0);
	if (a->pid == 0) {
		struct attacker self = { getpid(), go[0], rep[1], d };

		close(go[1]);
		close(rep[0]);
		test_keep_only_fds(go[0], rep[1]);
		_exit(fn(&self, arg));
	}
	close(go[0]);
	close(rep[1]);
	a->go = go[1];
	a->report = rep[0];
}

void attacker_read(struct attacker *a, void *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = a->report, .events = POLLIN };
	const char *daemon_state = "";
	ssize_t n = -1;
	int status = 0;
	char how[64];

	if (poll(&pfd, 1, timeout_ms) == 1)
		n = read(a->report, buf, len);
	if (n == (ssize_t)len)
		return;
	/* At EOF it has exited already: its own status says more. */
	if (n != 0)
		kill(a->pid, SIGKILL);
	waitpid(a->pid, &status, 0);
	a->pid = 0;
	if (a->d)
		daemon_state = test_daemon_alive(a->d) ? "; kmallocd alive" : "; kmallocd dead";
	ck_abort_msg("no report from the attacker (read %zd of %zu bytes; %s%s)", n, len,
		     test_status_text(status, how, sizeof(how)), daemon_state);
}

void attacker_go(struct attacker *a, char what)
{
	ck_assert_int_eq(write(a->go, &what, 1), 1);
}

void attacker_finish(struct attacker *a)
{
	int status = 0;
	char how[64];

	close(a->go);
	ck_assert_int_eq(waitpid(a->pid, &status, 0), a->pid);
	close(a->report);
	a->pid = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the attacker failed: %s (its message is above)",
		      test_status_text(status, how, sizeof(how)));
}

void attacker_reap(struct attacker *a)
{
	int status = 0;
	char how[64];

	ck_assert_int_eq(waitpid(a->pid, &status, 0), a->pid);
	close(a->go);
	close(a->report);
	a->pid = 0;
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "the attacker ended with %s, not SIGKILL",
		      test_status_text(status, how, sizeof(how)));
}

int attacker_become(uid_t uid, gid_t gid, const gid_t *groups, size_t nr_groups)
{
	pid_t parent = getppid();

	if (setgroups(nr_groups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		fprintf(stderr, "attacker: cannot become uid %u gid %u: %s\n", (unsigned int)uid,
			(unsigned int)gid, strerror(errno));
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
		fprintf(stderr, "attacker: uid %u/%u gid %u/%u, not uid %u gid %u\n",
			(unsigned int)getuid(), (unsigned int)geteuid(), (unsigned int)getgid(),
			(unsigned int)getegid(), (unsigned int)uid, (unsigned int)gid);
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		fprintf(stderr, "attacker: uid %u could become root again\n", (unsigned int)uid);
		return -1;
	}
	/* Set after the uid change, which clears it: a test that dies takes
	 * its attacker along. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
		fprintf(stderr, "attacker: uid %u does not die with the test\n", (unsigned int)uid);
		return -1;
	}
	return 0;
}

void attacker_become_nobody(void)
{
	ATTACKER_CHECK(attacker_become(NOBODY, NOBODY, NULL, 0) == 0);
}

void attacker_report(struct attacker *self, const void *buf, size_t len)
{
	ATTACKER_CHECK(write(self->report, buf, len) == (ssize_t)len);
}

int attacker_wait(struct attacker *self)
{
	char what;

	return read(self->go, &what, 1) == 1 ? (unsigned char)what : -1;
}
