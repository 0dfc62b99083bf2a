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
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16 */
#endif

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "handover.h"
#include "notify.h"
#include "reaper.h"
#include "share.h"

#define SERVER_TICK_USEC      1000000ull
#define SERVER_TRIM_BUDGET_NS 500000ull /* 0.5 ms of give-back per turn */
/* Share handles the tick looks at for expiry: a few milliseconds at most a
 * tick, and every handle seen within nr_handles / 32768 ticks (8 s with 64
 * uids at the default uid_max_handles). */
#define SERVER_SWEEP_BUDGET 32768u

bool server_is_admin(const struct server *srv, uid_t uid, gid_t gid, const gid_t *groups,
		     size_t nr_groups)
{
	const struct settings *cfg = srv->cfg;

	if (uid == 0)
		return true;
	if (!cfg->admin_gid_valid)
		return false;
	if (gid == cfg->admin_gid)
		return true;
	for (size_t i = 0; i < nr_groups; i++)
		if (groups[i] == cfg->admin_gid)
			return true;
	return false;
}

/* Accepts every pending connection; one wake-up is timed as a whole. */
static void server_accept_all(struct server *srv, evutil_socket_t fd)
{
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
		/* conn_new() refuses (and closes) what it may not serve. */
		err = conn_new(srv, cfd, &c);
		if (err < 0 && err != -EACCES && log_ratelimit())
			log_warn("cannot set up a connection: %s", strerror(-err));
	}
}

static void server_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t t0 = loopstat_now_ns();

	server_accept_all(srv, fd);
	loopstat_accept(&srv->loop, loopstat_now_ns() - t0);
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

/* One bounded turn of the give-back work (mm_trim()); another after the
 * next poll while work is left, so every client is served in between. */
static void server_on_trim(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t t0 = loopstat_now_ns();
	bool more = mm_trim(&srv->mm, SERVER_TRIM_BUDGET_NS);

	loopstat_teardown(&srv->loop, loopstat_now_ns() - t0);
	if (more)
		server_trim_soon(srv);
}

void server_trim_soon(struct server *srv)
{
	static const struct timeval now = { 0, 0 };

	if (srv->ev_trim && !evtimer_pending(srv->ev_trim, NULL))
		evtimer_add(srv->ev_trim, &now);
}

static void server_on_tick(evutil_socket_t fd, short what, void *arg)
{
	static uint64_t ticks;
	struct server *srv = arg;
	uint32_t every = srv->cfg->reconcile_interval;
	uint64_t t0 = loopstat_now_ns();

	ticks++;
	notify_watchdog();
	frame_quarantine_retry(&srv->mm.frames);
	/* Expired handles go within seconds, not at the next export of their
	 * share (which may never come): kmctl shares stops listing them and
	 * their uid gets its max_handles back. */
	share_sweep_some(srv->grants.shares, SERVER_SWEEP_BUDGET);
	server_trim_soon(srv);
	if (every && ticks % every == 0) {
		struct domain *d;

		TAILQ_FOREACH(d, &srv->mm.domains, link)
			domain_reconcile(d);
	}
	server_update_status(srv);
	loopstat_tick(&srv->loop, loopstat_now_ns() - t0);
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	if (sig == SIGUSR2) {
		notify_reloading();
		/* Returns only if the new image could not be started. */
		handover_exec(srv, srv->argv);
		notify_ready("reload failed: serving on with the running image");
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

/* Makes sure @dir, the socket's directory, is ours to put a socket in:
 * created 0755 if missing; else a real directory (no symlink followed),
 * owned by us or root, and writable by nobody else, so that no other user
 * can swap the socket for one of their own. */
static int server_socket_dir(const char *dir)
{
	struct stat st;
	int fd, err;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		err = -errno;
		log_err("cannot create %s: %s", dir, strerror(errno));
		return err;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_err("%s: %s", dir,
			errno == ELOOP || errno == ENOTDIR ? "not a directory (a symbolic link?)"
							   : strerror(errno));
		return err;
	}
	err = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		log_err("%s belongs to uid %u, not to us or root: refusing to listen there", dir,
			(unsigned int)st.st_uid);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		log_err("%s is writable by others: refusing to listen there", dir);
		return -EPERM;
	}
	return 0;
}

/* Binds our own socket at @path, refusing to steal it from a daemon that
 * still answers there. */
static int server_bind(struct server *srv, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[sizeof(addr.sun_path)];
	struct stat st;
	char *slash;
	mode_t old_umask;
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		err = server_socket_dir(slash == dir ? "/" : dir);
		if (err)
			return err;
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
	/* A stale socket from a daemon that died; nothing else is removed. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s exists and is not a socket", path);
			return -EEXIST;
		}
		unlink(path);
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Any local user may connect (trust domains keep them apart): the mode
	 * comes from the umask at bind(), so no chmod() that could follow a
	 * link someone put there meanwhile. */
	old_umask = umask(0111);
	err = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ? -errno : 0;
	umask(old_umask);
	if (!err && listen(fd, 128) < 0)
		err = -errno;
	if (err) {
		log_err("cannot listen on %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	srv->own_socket = true;
	return fd;
}

/* Clients never pass descriptors: have the kernel refuse them on every
 * connection of @fd (SO_PASSRIGHTS, Linux 6.16+, inherited by accepted
 * sockets). Without it, conn.c hands whatever arrives to the reaper. */
static void server_refuse_passed_fds(struct server *srv, int fd)
{
	int off = 0;

	srv->passrights_off = setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof(off)) == 0;
	if (!srv->passrights_off)
		log_info("SO_PASSRIGHTS unsupported (%s): descriptors clients pass are closed "
			 "off the event loop",
			 strerror(errno));
}

/* What one unprivileged uid may take, and so what the daemon's own memory
 * is bounded by, said once at start. */
static void server_log_bounds(const struct server *srv)
{
	const struct settings *cfg = srv->cfg;
	struct account_limits l;

	account_limits_for(&srv->accounts, 65534, 65534, NULL, 0, &l);
	log_info("limits: an unprivileged uid may hold %" PRIu64 " MiB (%u%% of the pool), %" PRIu64
		 " grants (%" PRIu64 " MiB of daemon memory) and %" PRIu64
		 " connections; %u connections in all, %u of them for privileged users; "
		 "%u KiB of replies queued per connection",
		 l.max_bytes >> 20, cfg->uid_max_share, l.max_grants,
		 l.max_grants * sizeof(struct grant) >> 20, l.max_connections, cfg->max_clients,
		 cfg->reserved_connections, cfg->max_queued >> 10);
}

/* What every start-up mode needs first: signals, the receive buffer, the
 * grant table, the accounts, the reaper thread. */
static int server_setup(struct server *srv, const struct settings *cfg, struct event_base *base,
			char *const *argv)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGUSR2 };
	size_t i;

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->argv = argv;
	srv->listen_fd = -1;
	srv->mm.pool.reserve_fd = -1; /* server_fini() may run before mm_init() */
	loopstat_init(&srv->loop);    /* a successor after a handover starts fresh */
	TAILQ_INIT(&srv->conns);
	accounts_init(&srv->accounts, cfg, 0);
	reaper_start();
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
	if (grant_table_init(&srv->grants))
		return -ENOMEM;
	srv->grants.shares->accounts = &srv->accounts; /* handles are charged there */
	return 0;
}

/* A fresh start: a new pool, and the socket systemd passed (@listen_fd,
 * socket activation) or our own. */
static int server_start_fresh(struct server *srv, int listen_fd)
{
	const struct settings *cfg = srv->cfg;
	struct mm_options opt = {
		.pool_size = cfg->pool_size,
		.backing = cfg->backing,
		.reserve = cfg->reserve,
	};
	int err;

	err = mm_init(&srv->mm, &opt);
	if (err < 0)
		return err;
	if (listen_fd >= 0) {
		log_info("using the socket passed by systemd");
		srv->listen_fd = listen_fd;
		return 0;
	}
	srv->listen_fd = server_bind(srv, cfg->socket_path);
	return srv->listen_fd < 0 ? srv->listen_fd : 0;
}

/* What every mode does last, once the pool and the socket are there:
 * accept, the housekeeping timer, and the signals we ignore. */
static int server_start_serving(struct server *srv)
{
	uint64_t watchdog = notify_watchdog_usec();
	struct timeval tick = { .tv_sec = 1 };

	srv->accounts.pool_size = srv->mm.pool.size;
	server_log_bounds(srv);
	raise_nofile_limit();
	if (srv->listen_fd >= 0) {
		/* Whatever the start (fresh, socket-activated, re-exec, fd store):
		 * systemd clears O_NONBLOCK on the socket at every start of the
		 * service, and the accept loop runs until EAGAIN, so a blocking
		 * socket would stop the event loop at the first accept too many. */
		int fl = fcntl(srv->listen_fd, F_GETFL);

		if (fl < 0 || fcntl(srv->listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
		server_refuse_passed_fds(srv, srv->listen_fd);
		srv->ev_listen = event_new(srv->base, srv->listen_fd, EV_READ | EV_PERSIST,
					   server_on_accept, srv);
		if (!srv->ev_listen || event_add(srv->ev_listen, NULL) < 0)
			return -ENOMEM;
	}
	srv->ev_accept_pause = evtimer_new(srv->base, server_on_accept_resume, srv);
	if (!srv->ev_accept_pause)
		return -ENOMEM;
	if (watchdog && watchdog / 2 < SERVER_TICK_USEC) {
		tick.tv_sec = (time_t)(watchdog / 2 / 1000000);
		tick.tv_usec = (suseconds_t)(watchdog / 2 % 1000000);
	}
	srv->ev_timer = event_new(srv->base, -1, EV_PERSIST, server_on_tick, srv);
	if (!srv->ev_timer || event_add(srv->ev_timer, &tick) < 0)
		return -ENOMEM;
	srv->ev_trim = evtimer_new(srv->base, server_on_trim, srv);
	if (!srv->ev_trim)
		return -ENOMEM;
	signal(SIGPIPE, SIG_IGN);
	/* Settings are read once; a HUP from a closing terminal must not stop
	 * the daemon and every client's memory with it. */
	signal(SIGHUP, SIG_IGN);
	return 0;
}

int server_init(struct server *srv, const struct settings *cfg, struct event_base *base,
		char *const *argv, int handover_fd)
{
	struct handover_store store;
	int err;

	err = server_setup(srv, cfg, base, argv);
	if (err)
		goto err_fini;
	if (handover_fd >= 0) {
		/* Re-exec'd by a previous kmallocd (SIGUSR2): its pool, clients
		 * and grants; nothing to bind. */
		err = handover_restore(srv, handover_fd, NULL);
	} else {
		/* Descriptors from systemd: a socket unit's listening socket,
		 * and what a previous kmallocd left in the fd store. */
		handover_store_open(&store);
		if (store.state_fd >= 0)
			err = handover_store_restore(srv, &store);
		else
			err = server_start_fresh(srv, store.listen_fd);
		handover_store_close(&store);
	}
	if (!err)
		err = server_start_serving(srv);
	if (!err)
		return 0;
err_fini:
	server_fini(srv);
	return err;
}

int server_init_unlisted(struct server *srv, const struct settings *cfg, struct event_base *base)
{
	struct mm_options opt = {
		.pool_size = cfg->pool_size,
		.backing = cfg->backing,
		.reserve = cfg->reserve,
	};
	int err;

	err = server_setup(srv, cfg, base, NULL);
	if (!err)
		err = mm_init(&srv->mm, &opt);
	if (!err)
		err = server_start_serving(srv);
	if (err)
		server_fini(srv);
	return err;
}

int server_add_connection(struct server *srv, int fd)
{
	struct conn *c;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return conn_new(srv, fd, &c);
}

/* Undoes whatever server_init() got to, in every start-up mode. */
void server_fini(struct server *srv)
{
	struct conn *c;
	size_t i;

	TAILQ_FOREACH(c, &srv->conns, link)
		conn_close(c, "daemon shutting down");
	conn_reap_all(srv);
	for (i = 0; i < sizeof(srv->ev_signals) / sizeof(srv->ev_signals[0]); i++)
		if (srv->ev_signals[i])
			event_free(srv->ev_signals[i]);
	if (srv->ev_timer)
		event_free(srv->ev_timer);
	if (srv->ev_trim)
		event_free(srv->ev_trim);
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
	accounts_fini(&srv->accounts);
	reaper_stop();
	free(srv->rxbuf);
	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = -1;
}
