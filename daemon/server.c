// SPDX-License-Identifier: MIT
/*
 * server.c - the listening socket (bound by us, or passed by systemd),
 * accepting connections, the periodic housekeeping timer (frame balancing,
 * phantom-frame reconciliation, STATUS and WATCHDOG) and the signals that
 * stop the loop.
 */
#include "config.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "handover.h"
#include "notify.h"

#define SERVER_TICK_USEC	1000000ull

bool server_is_admin(const struct server *srv, uid_t uid, gid_t gid)
{
	struct passwd pw, *found = NULL;
	gid_t groups[256];
	int nr = 256, i;
	char buf[4096];

	if (uid == 0)
		return true;
	if (!srv->admin_gid_valid)
		return false;
	if (gid == srv->admin_gid)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &nr) < 0)
		return false;
	for (i = 0; i < nr; i++)
		if (groups[i] == srv->admin_gid)
			return true;
	return false;
}

static void server_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	for (;;) {
		struct conn *c;
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int err;

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* The pending connection stays pending and the socket
				 * readable: pause accepting, or the loop would spin. */
				struct timeval pause = { .tv_usec = 100000 };

				if (log_ratelimit())
					log_warn("accept: %s; pausing new connections for 100 ms",
						 strerror(errno));
				event_del(srv->ev_listen);
				event_add(srv->ev_accept_pause, &pause);
				return;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && log_ratelimit())
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (srv->nr_conns >= srv->cfg->max_clients) {
			if (log_ratelimit())
				log_warn("refusing a connection: max_clients (%u) reached",
					 srv->cfg->max_clients);
			close(cfd);
			continue;
		}
		err = conn_new(srv, cfd, &c);
		if (err < 0) {
			log_warn("cannot set up a connection: %s", strerror(-err));
			close(cfd);
		}
	}
}

static void server_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	event_add(srv->ev_listen, NULL);
}

/* One descriptor per client: take every descriptor the hard limit allows. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug("RLIMIT_NOFILE: %s", strerror(errno));
	}
}

static void server_update_status(struct server *srv)
{
	char status[200];
	uint64_t free_frames = frame_nr_free(&srv->mm.frames);

	snprintf(status, sizeof(status),
		 "%u clients, %u domains, %zu grants, %" PRIu64 "/%u frames free, %s, "
		 "%" PRIu64 " allocation failures",
		 srv->nr_conns, srv->mm.nr_domains, srv->grants.count, free_frames,
		 srv->mm.pool.nr_frames, srv->mm.pool.hugetlb ? "hugetlb" : "shmem",
		 srv->alloc_failures);
	notify_status(status);
}

static void server_on_tick(evutil_socket_t fd, short what, void *arg)
{
	static uint64_t ticks;
	struct server *srv = arg;
	uint32_t every = srv->cfg->reconcile_interval;

	ticks++;
	notify_watchdog();
	mm_balance(&srv->mm);
	if (every && ticks % every == 0) {
		struct domain *d;

		for (d = srv->mm.domains; d; d = d->next)
			domain_reconcile(d);
	}
	server_update_status(srv);
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	if (sig == SIGUSR2) {
		/* Returns only if the new image could not be started. */
		handover_exec(srv, srv->argv);
		return;
	}

	/* A restart by systemd: the next kmallocd takes everything over from the
	 * fd store, so nothing is torn down here (closing the connections or
	 * destroying the domains would give the clients' memory back). */
	if (sig == SIGTERM && srv->cfg->fd_store && handover_store(srv) == 0) {
		notify_stopping();
		fflush(stderr);
		_exit(EXIT_SUCCESS);
	}
	log_info("%s: shutting down", strsignal((int)sig));
	notify_stopping();
	event_base_loopbreak(srv->base);
}

/* Binds our own socket at cfg->socket_path, refusing to steal it from a
 * daemon that still answers there. */
static int server_bind(struct server *srv, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[sizeof(addr.sun_path)];
	char *slash;
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			err = -errno;
			log_err("cannot create %s: %s", dir, strerror(errno));
			return err;
		}
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		log_err("another kmallocd is already listening on %s", path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);	/* a stale socket from a daemon that died */

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
		err = -errno;
		log_err("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return err;
	}
	/* Any local user may connect: trust domains keep them apart. */
	chmod(path, 0666);
	srv->own_socket = true;
	return fd;
}

/* The descriptors systemd passed, for a takeover from the fd store. */
struct systemd_fds {
	int n;
	int *fds;
	char **names;
	int state_fd;
	int listen_fd;		/* a socket unit's, if any */
};

static int store_resolve(void *ctx, const char *name, int recorded_fd)
{
	struct systemd_fds *store = ctx;
	int i;

	for (i = 0; i < store->n; i++)
		if (!strcmp(store->names[i], name))
			return store->fds[i];
	/* Under socket activation the listening socket is the socket unit's. */
	return !strcmp(name, "kmallocd-listen") ? store->listen_fd : -1;
}

int server_init(struct server *srv, const struct settings *cfg, struct event_base *base,
		char *const *argv, int handover_fd)
{
	struct systemd_fds store = { .state_fd = -1, .listen_fd = -1 };
	char **names = NULL;
	int *fds = NULL, nr_fds;
	struct mm_options opt = {
		.pool_size = cfg->pool_size,
		.backing = cfg->backing,
		.reserve = cfg->reserve,
	};
	static const int signals[] = { SIGTERM, SIGINT, SIGUSR2 };
	struct timeval tick = { .tv_sec = 1 };
	uint64_t watchdog = notify_watchdog_usec();
	int err, fd;
	size_t i;

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->argv = argv;
	srv->listen_fd = -1;

	if (cfg->admin_group) {
		struct group gr, *found = NULL;
		char buf[4096];

		if (getgrnam_r(cfg->admin_group, &gr, buf, sizeof(buf), &found) == 0 && found) {
			srv->admin_gid = found->gr_gid;
			srv->admin_gid_valid = true;
		} else {
			log_warn("admin group %s does not exist: only root may inspect",
				 cfg->admin_group);
		}
	}

	/* Signals first: a SIGTERM that comes while the pool is faulted in or
	 * just after the socket listens must stop the daemon cleanly, not kill it. */
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		srv->ev_signals[i] = evsignal_new(base, signals[i], server_on_signal, srv);
		if (!srv->ev_signals[i] || event_add(srv->ev_signals[i], NULL) < 0)
			return -ENOMEM;
	}
	srv->rxbuf = malloc(cfg->max_packet);
	if (!srv->rxbuf)
		return -ENOMEM;
	err = grant_table_init(&srv->grants);
	if (err < 0)
		goto err_rxbuf;
	/* Descriptors from systemd: a socket unit's listening socket, and what a
	 * previous kmallocd left in the fd store when systemd restarted it. */
	nr_fds = notify_listen_fds(&fds, &names);
	for (i = 0; i < (size_t)nr_fds; i++) {
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
		if (!strcmp(names[i], "kmallocd-state"))
			store.state_fd = fds[i];
		else if (strncmp(names[i], "kmallocd-", 9) &&
			 notify_is_listening_seqpacket(fds[i]) && store.listen_fd < 0)
			store.listen_fd = fds[i];
	}
	store.n = nr_fds;
	store.fds = fds;
	store.names = names;
	if (handover_fd < 0 && store.state_fd >= 0) {
		struct handover_fds by_name = { store_resolve, &store };

		log_info("taking over from the fd store");
		err = handover_restore(srv, store.state_fd, &by_name);
		notify_fds_free(nr_fds, fds, names);
		if (err < 0)
			return err;	/* half-built; the caller exits */
		handover_store_forget(srv);
		fd = srv->listen_fd;
		goto listen;
	}
	/* Stored descriptors without a state: an incomplete store, of no use. */
	for (i = 0; i < (size_t)nr_fds; i++) {
		if (!strncmp(names[i], "kmallocd-", 9)) {
			notify_fdstore_remove(names[i]);
			close(fds[i]);
		}
	}
	notify_fds_free(nr_fds, fds, names);
	if (handover_fd >= 0) {
		/* A previous daemon's pool, clients and grants: nothing to bind. */
		err = handover_restore(srv, handover_fd, NULL);
		if (err < 0)
			return err;	/* half-built; the caller exits */
		fd = srv->listen_fd;
		goto listen;
	}
	err = mm_init(&srv->mm, &opt);
	if (err < 0)
		goto err_grants;

	fd = store.listen_fd;
	if (fd >= 0) {
		int flags = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		log_info("using the socket passed by systemd");
	} else {
		fd = server_bind(srv, cfg->socket_path);
		if (fd < 0) {
			err = fd;
			goto err_mm;
		}
	}
	srv->listen_fd = fd;

listen:
	err = -ENOMEM;
	raise_nofile_limit();
	srv->ev_listen = event_new(base, fd, EV_READ | EV_PERSIST, server_on_accept, srv);
	if (!srv->ev_listen || event_add(srv->ev_listen, NULL) < 0)
		goto err_socket;
	srv->ev_accept_pause = evtimer_new(base, server_on_accept_resume, srv);
	if (!srv->ev_accept_pause)
		goto err_socket;
	if (watchdog && watchdog / 2 < SERVER_TICK_USEC) {
		tick.tv_sec = (time_t)(watchdog / 2 / 1000000);
		tick.tv_usec = (suseconds_t)(watchdog / 2 % 1000000);
	}
	srv->ev_timer = event_new(base, -1, EV_PERSIST, server_on_tick, srv);
	if (!srv->ev_timer || event_add(srv->ev_timer, &tick) < 0)
		goto err_socket;
	signal(SIGPIPE, SIG_IGN);
	/* Settings are read once; a HUP from a closing terminal must not stop
	 * the daemon and every client's memory with it. */
	signal(SIGHUP, SIG_IGN);
	return 0;

err_socket:
	server_fini(srv);
	return err;
err_mm:
	mm_fini(&srv->mm);
err_grants:
	grant_table_fini(&srv->grants);
err_rxbuf:
	free(srv->rxbuf);
	srv->rxbuf = NULL;
	return err;
}

void server_fini(struct server *srv)
{
	size_t i;

	while (srv->conns)
		conn_close(srv->conns, "daemon shutting down");
	for (i = 0; i < sizeof(srv->ev_signals) / sizeof(srv->ev_signals[0]); i++)
		if (srv->ev_signals[i])
			event_free(srv->ev_signals[i]);
	if (srv->ev_timer)
		event_free(srv->ev_timer);
	if (srv->ev_accept_pause)
		event_free(srv->ev_accept_pause);
	if (srv->ev_listen)
		event_free(srv->ev_listen);
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		if (srv->own_socket)
			unlink(srv->cfg->socket_path);
	}
	mm_fini(&srv->mm);
	grant_table_fini(&srv->grants);
	free(srv->rxbuf);
	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = -1;
}
