// SPDX-License-Identifier: MIT
/*
 * inproc.c - the real daemon core in a forked child over socketpairs, for
 * unit tests (inproc.h). The child is kmallocd's main() without the settings
 * file, the listening socket and systemd: settings_defaults(), memguard,
 * server_init_unlisted(), one server_add_connection() per socketpair, and
 * the event loop until no connection is left (a timer looks every 10 ms).
 * Its own library, linked with kmallocd-core by the tests that use it.
 */
#include "config.h"
#include "inproc.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "log.h"
#include "memguard.h"
#include "server.h"
#include "settings.h"
#include "rawclient.h"

#define INPROC_TICK_USEC    10000 /* the child looks this often for no connection left */
#define INPROC_STOP_WAIT_MS 10000 /* inproc_stop() waits this long, then kills */

/* ---- the child ----------------------------------------------------------- */

static void child_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (!srv->nr_conns)
		event_base_loopbreak(srv->base);
}

/* Serves @fds until every connection has gone; returns the exit status. */
static int child_serve(uint64_t pool_size, const int *fds, size_t nr_fds)
{
	const struct timeval tick = { .tv_usec = INPROC_TICK_USEC };
	struct event *ev_tick = NULL;
	struct event_base *base;
	struct settings cfg;
	struct server srv;
	int ret = 0;
	size_t i;

	settings_defaults(&cfg);
	cfg.pool_size = pool_size;
	cfg.backing = POOL_BACKING_SHMEM;
	cfg.paranoid = true;
	cfg.allow_all = true;	 /* what settings_load() makes of no allow list */
	cfg.uid_max_share = 100; /* a run as non-root sees ENOMEM, not EDQUOT */
	log_init(LOG_LEVEL_WARN);
	if (memguard_init() < 0)
		return 10;
	base = event_base_new();
	if (!base)
		return 11;
	if (server_init_unlisted(&srv, &cfg, base) < 0) {
		ret = 12;
		goto out_base;
	}
	for (i = 0; i < nr_fds && !ret; i++)
		if (server_add_connection(&srv, fds[i]) < 0)
			ret = 13;
	if (!ret) {
		ev_tick = event_new(base, -1, EV_PERSIST, child_on_tick, &srv);
		if (!ev_tick || event_add(ev_tick, &tick) < 0)
			ret = 14;
	}
	if (!ret)
		event_base_dispatch(base);
	if (ev_tick)
		event_free(ev_tick);
	server_fini(&srv);
out_base:
	event_base_free(base);
	settings_fini(&cfg);
	return ret;
}

/* ---- the test's side ----------------------------------------------------- */

/* Why the child is gone, for a failure message; "" while it runs. */
static const char *child_gone(const struct inproc *d, char *buf, size_t len)
{
	int status;

	if (waitpid(d->pid, &status, WNOHANG) != d->pid)
		return "";
	if (WIFEXITED(status))
		snprintf(buf, len, " (the daemon core exited with status %d)", WEXITSTATUS(status));
	else
		snprintf(buf, len, " (the daemon core died of signal %d)", WTERMSIG(status));
	return buf;
}

static void probe_hello(struct inproc *d)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	Kmalloc__Reply *r;
	char why[80];
	int memfd = -1;

	hello.version = 1;
	hello.name = "inproc-probe";
	req.id = ++d->probe_id;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	r = raw_call(d->probe, &req, &memfd);
	ck_assert_msg(r && !r->error && r->body_case == KMALLOC__REPLY__BODY_WELCOME,
		      "the probe got no Welcome%s", child_gone(d, why, sizeof(why)));
	kmalloc__reply__free_unpacked(r, NULL);
	if (memfd >= 0)
		close(memfd);
}

void inproc_start(struct inproc *d, uint64_t pool_size)
{
	int client[2], probe[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, client), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, probe), 0);
	fflush(NULL);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		const int fds[2] = { client[1], probe[1] };

		close(client[0]);
		close(probe[0]);
		_exit(child_serve(pool_size, fds, 2));
	}
	close(client[1]);
	close(probe[1]);
	d->fd = client[0];
	d->probe = probe[0];
	d->probe_id = 0;
	probe_hello(d);
}

void inproc_meminfo(struct inproc *d, Kmalloc__Meminfo *out)
{
	Kmalloc__Reply *r;
	char why[80];

	ck_assert_int_ge(d->probe, 0);
	r = raw_meminfo(d->probe, ++d->probe_id);
	ck_assert_msg(r && !r->error && r->body_case == KMALLOC__REPLY__BODY_MEMINFO,
		      "the probe got no Meminfo%s", child_gone(d, why, sizeof(why)));
	*out = *r->meminfo;
	out->base.n_unknown_fields = 0;
	out->base.unknown_fields = NULL;
	kmalloc__reply__free_unpacked(r, NULL);
}

void inproc_probe_close(struct inproc *d)
{
	if (d->probe >= 0)
		close(d->probe);
	d->probe = -1;
}

int inproc_stop(struct inproc *d)
{
	const struct timespec step = { .tv_nsec = 10 * 1000000 };
	int status, waited;
	pid_t pid;

	inproc_probe_close(d);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	for (waited = 0;; waited += 10) {
		pid = waitpid(d->pid, &status, WNOHANG);
		if (pid == d->pid)
			break;
		if (pid < 0)
			return -1;
		if (waited >= INPROC_STOP_WAIT_MS) {
			fprintf(stderr, "inproc: the daemon core still runs after %d ms: killed\n",
				INPROC_STOP_WAIT_MS);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = -1;
			return -1;
		}
		nanosleep(&step, NULL);
	}
	d->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
