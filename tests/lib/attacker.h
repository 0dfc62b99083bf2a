/* SPDX-License-Identifier: MIT */
/*
 * attacker.h - another process against kmallocd: a forked child that may
 * become another user (and checks it cannot come back), runs a function,
 * reports to the test over one pipe and waits for the test's go-ahead on
 * another. It keeps no other descriptor of the test's, and a child that
 * became another user dies with the test.
 *
 * In the test: attacker_start(), attacker_read(), attacker_go(),
 * attacker_finish() or attacker_reap(). In the child: attacker_become(),
 * attacker_report(), attacker_wait() and ATTACKER_CHECK().
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/types.h>

#define NOBODY 65534u /* uid and gid of nobody */

struct test_daemon;

struct attacker {
	pid_t pid;		     /* 0: not running */
	int go;			     /* the test writes one byte per step */
	int report;		     /* the child writes its reports */
	const struct test_daemon *d; /* named in failure messages, or NULL */
};

/* What the child runs; it exits with the return value. */
typedef int attacker_fn(struct attacker *self, void *arg);

/* In the child (no check there): a failed check ends it with status 2
 * after saying which. */
#define ATTACKER_CHECK(cond)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "attacker uid %u: line %d: check failed: %s (errno %d)\n", \
				(unsigned int)getuid(), __LINE__, #cond, errno);                   \
			_exit(2);                                                                  \
		}                                                                                  \
	} while (0)

/* Forks a child that runs @fn(self, @arg) with only stdio and its two pipe
 * ends open; @d (or NULL) is the daemon it works against. */
void attacker_start(struct attacker *a, const struct test_daemon *d, attacker_fn *fn, void *arg);
/* The child's next report, exactly @len bytes within @timeout_ms; else
 * the child is killed and the test fails, saying how it ended. */
void attacker_read(struct attacker *a, void *buf, size_t len, int timeout_ms);
/* Lets the child go on; @what is what attacker_wait() returns there. */
void attacker_go(struct attacker *a, char what);
/* Closes the go pipe (attacker_wait() returns -1 from then on) and checks
 * that the child exits with status 0. */
void attacker_finish(struct attacker *a);
/* Waits for a child the test killed with SIGKILL and checks that it died
 * of it. */
void attacker_reap(struct attacker *a);

/* In the child: becomes @uid with @gid and the supplementary @groups,
 * checks that it is so and that setuid(0) fails, and dies with its parent.
 * 0, or -1 after saying what failed. */
int attacker_become(uid_t uid, gid_t gid, const gid_t *groups, size_t nr_groups);
/* In the child: attacker_become() for nobody, or exit with status 2. */
void attacker_become_nobody(void);
/* In the child: sends a report, or exits with status 2. */
void attacker_report(struct attacker *self, const void *buf, size_t len);
/* In the child: the test's next go-ahead, -1 once it closed the pipe. */
int attacker_wait(struct attacker *self);
