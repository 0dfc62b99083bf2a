/* SPDX-License-Identifier: MIT */
/*
 * fakesd.h - a stand-in for systemd for the restart tests: the listening
 * socket passed with LISTEN_FDS, readiness and the fd store over
 * NOTIFY_SOCKET (FDSTORE=1, FDSTOREREMOVE=1), the stored descriptors
 * passed to the next kmallocd; for every test that restarts the daemon
 * as systemd would (test-lifecycle.c, test-share.c, test-share-wire.c).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct fake_systemd {
	char dir[64];
	char sock[96];
	char notify[96];
	char log[96];
	int listen_fd;
	int notify_fd;
	int nr; /* stored descriptors */
	int fds[64];
	char names[64][48];
	bool poll[64];	    /* stored without FDPOLL=0: dropped on hang-up */
	int removed;	    /* FDSTOREREMOVE messages seen */
	int stored;	    /* FDSTORE=1 messages seen */
	int stored_fdpoll0; /* of those, with FDPOLL=0 */
};

/* A temporary directory with the listening socket, the notify socket and
 * the daemons' log. */
void fake_systemd_init(struct fake_systemd *sd);
/* Reads NOTIFY_SOCKET messages until one contains @until (or @timeout_ms
 * pass), taking FDSTORE descriptors into the store. True when @until came
 * (or was NULL). */
bool fake_systemd_read(struct fake_systemd *sd, const char *until, int timeout_ms);
/* Starts $KMALLOCD as systemd would (32 MiB pool, the test's backing,
 * --fd-store when @fd_store), the store's descriptors from fd 4 on; waits
 * for READY=1. */
pid_t fake_systemd_start(struct fake_systemd *sd, bool fd_store);
/* Lines of the daemons' log with @needle (and @also, unless NULL). */
int fake_systemd_log_count2(const struct fake_systemd *sd, const char *needle, const char *also);
int fake_systemd_log_count(const struct fake_systemd *sd, const char *needle);
void fake_systemd_dump_log(const struct fake_systemd *sd);
/* SIGTERM, and a clean exit (else the log is shown). */
void fake_systemd_stop(struct fake_systemd *sd, pid_t pid);
/* Closes the store and removes the directory (kept with KM_TEST_KEEP). */
void fake_systemd_cleanup(struct fake_systemd *sd);
