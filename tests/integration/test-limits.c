// SPDX-License-Identifier: MIT
/*
 * test-limits.c - what one unprivileged user (nobody, in a forked child that
 * dropped every privilege) can no longer do to a --paranoid kmallocd: take
 * every connection slot (a per-uid limit, slots reserved for root, silent
 * connections closed after --hello-timeout), grow the daemon without bound
 * through grants or through replies it never reads, flood the journal, get
 * in past the allow lists or past limits set in the config file or by
 * --limit, or break kmctl buddyinfo with many domains; a connection with
 * 200,000 grants is given back without freezing anyone else, and kmallocd
 * refuses socket directories others could tamper with. Each case checks
 * that root is still served and that the pool's figures come back.
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "attacker.h"
#include "daemon.h"
#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"

#define POOL_SIZE (32ull << 20)
/* One frame for each of 300 domains, and room to spare. */
#define BIG_POOL_SIZE (640ull << 20)

/* The daemon of most cases (see main()). */
#define UID_MAX_CONNS  8
#define MAX_CLIENTS    64
#define RESERVED_CONNS 8
#define UID_MAX_GRANTS 2000

static struct test_daemon main_daemon;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- forked helpers ---------------------------------------------------- */

/* Helpers are attackers (attacker.h) that report a struct report, within
 * REPORT_MS; they exit once the test closes their go pipe, so a test that
 * dies takes its helpers with it. */
#define REPORT_MS 60000

struct report {
	int64_t v[6];
	char msg[160];
};

/* ---- daemons started by a case ------------------------------------------- */

/* check runs each case in a process group of its own and kills that group
 * when the case ends, so a daemon a case starts (or a helper) never outlives
 * it, even when an assertion fails half-way. A case stops its daemon with
 * SIGTERM: a clean exit (no crash, no leak under ASan) is part of it. */
static void stop_own_daemon(struct test_daemon *d)
{
	int status = test_daemon_stop(d);

	ck_assert_msg(status == 0, "kmallocd did not exit cleanly (%d)", status);
	test_daemon_cleanup(d);
}

/* ---- talking to the daemon --------------------------------------------- */

/* Connects and says Hello. The descriptor when welcomed; -1 when refused,
 * with *err the refusal's error (or -1 if the refusal did not carry id 0)
 * and @why its message; -2 when no answer came. */
static int hello_or_refusal(const char *sock, int *err, char *why, size_t len)
{
	Kmalloc__Reply *r;
	int fd = raw_connect(sock), mfd = -1;

	*err = 0;
	if (why && len)
		why[0] = '\0';
	if (fd < 0)
		return -2;
	/* A refused client may find the socket closed already; the refusal
	 * still waits in its queue. */
	(void)raw_send_hello(fd, "limits");
	r = raw_recv(fd, &mfd, 5000);
	/* And when the daemon closed it with our Hello unread, the kernel
	 * reports ECONNRESET once before that refusal. */
	if (!r)
		r = raw_recv(fd, &mfd, 1000);
	if (mfd >= 0)
		close(mfd);
	if (r && !r->error && r->body_case == KMALLOC__REPLY__BODY_WELCOME) {
		kmalloc__reply__free_unpacked(r, NULL);
		return fd;
	}
	close(fd);
	if (!r)
		return -2;
	*err = r->id == 0 ? r->error : -1;
	if (why && len)
		snprintf(why, len, "%s", r->message ? r->message : "");
	kmalloc__reply__free_unpacked(r, NULL);
	return -1;
}

/* What the pool looks like: what nobody holds (free frames, free pages in
 * domains, empty slabs), live grants, connections (this one included). */
struct figures {
	uint64_t free;
	uint64_t grants;
	uint64_t clients;
};

/* Root's connection. Connections just closed hold their slots until they
 * are given back, so a refusal is tried again for a while. */
static int root_connect(const char *sock)
{
	char why[160];
	int err, fd, i;

	for (i = 0; i < 500; i++) {
		fd = hello_or_refusal(sock, &err, why, sizeof(why));
		if (fd >= 0)
			return fd;
		usleep(10000);
	}
	ck_abort_msg("root cannot connect to %s (%d, error %d: %s)", sock, fd, err, why);
	return -1;
}

static void figures_of(const char *sock, struct figures *f)
{
	int fd = root_connect(sock);
	Kmalloc__Meminfo mi;

	ck_assert_int_eq(raw_get_meminfo(fd, 2, &mi), 0);
	f->free = mi.free + mi.slab_reclaimable;
	f->grants = mi.grants;
	f->clients = mi.clients;
	close(fd);
}

/* The figures to come back to, once the connections of what ran before
 * (the start-up probe of the harness, a previous case) are gone: only the
 * one asking is left. */
static void baseline_of(const char *sock, struct figures *f)
{
	int i;

	for (i = 0; i < 500; i++) {
		figures_of(sock, f);
		if (f->clients == 1)
			return;
		usleep(10000);
	}
	ck_abort_msg("%" PRIu64 " connections left on %s", f->clients - 1, sock);
}

/* Connections are given back asynchronously: wait (10 s at most) until the
 * figures are @base again. */
static void assert_back_to(const char *sock, const struct figures *base)
{
	struct figures now = { 0 };
	int i;

	for (i = 0; i < 1000; i++) {
		figures_of(sock, &now);
		if (now.free == base->free && now.grants == base->grants &&
		    now.clients == base->clients)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(now.free, base->free);
	ck_assert_uint_eq(now.grants, base->grants);
	ck_assert_uint_eq(now.clients, base->clients);
}

/* The daemon is alive and serves root a kmalloc. */
static void assert_serves(const struct test_daemon *d)
{
	int fd;

	ck_assert_msg(test_daemon_alive(d), "kmallocd died");
	fd = root_connect(d->socket);
	test_daemon_assert_serves(d, fd);
	close(fd);
}

/* VmRSS of @pid in KiB. */
static uint64_t rss_kib(pid_t pid)
{
	char path[64], line[256];
	uint64_t kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	ck_assert_uint_gt(kib, 0);
	return kib;
}

/* ---- kmctl --------------------------------------------------------------- */

#define KMCTL_OUT_MAX (1u << 20)

/* Runs $KMCTL --socket @sock @args; stdout and stderr into @out. Returns
 * its exit status, or -1. No assertions: helpers use it too. */
static int run_kmctl(const char *sock, const char *args, char *out, size_t len)
{
	const char *exe = getenv("KMCTL");
	char cmd[512], sink[4096];
	size_t n = 0, got;
	int status;
	FILE *p;

	out[0] = '\0';
	if (!exe)
		return -1;
	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' %s 2>&1", exe, sock, args);
	p = popen(cmd, "re");
	if (!p)
		return -1;
	while (n + 1 < len && (got = fread(out + n, 1, len - 1 - n, p)) > 0)
		n += got;
	out[n] = '\0';
	/* Never leave kmctl blocked on a full pipe. */
	while (fread(sink, 1, sizeof(sink), p) > 0)
		;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct limits_row {
	uint64_t connections, max_connections;
	uint64_t grants, max_grants;
	uint64_t bytes, max_bytes;
	uint64_t handles, max_handles;
	uint64_t refusals;
	bool privileged;
};

static uint64_t limit_value(const char *s)
{
	return strcmp(s, "unlimited") ? strtoull(s, NULL, 10) : UINT64_MAX;
}

/* The row of @uid in `kmctl limits` text. */
static bool limits_text_row(const char *out, unsigned int uid, struct limits_row *row)
{
	const char *line;

	for (line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned int u, domain, conns;
		char mc[32], mg[32], mb[32], mh[32], priv[8];
		uint64_t grants, bytes, handles, refused;

		if (sscanf(line,
			   "%u %u %u %31s %" SCNu64 " %31s %" SCNu64 " %31s %" SCNu64
			   " %31s %" SCNu64 " %7s",
			   &u, &domain, &conns, mc, &grants, mg, &bytes, mb, &handles, mh, &refused,
			   priv) != 12 ||
		    u != uid)
			continue;
		row->handles = handles;
		row->max_handles = limit_value(mh);
		row->connections = conns;
		row->max_connections = limit_value(mc);
		row->grants = grants;
		row->max_grants = limit_value(mg);
		row->bytes = bytes;
		row->max_bytes = limit_value(mb);
		row->refusals = refused;
		row->privileged = !strcmp(priv, "yes");
		return true;
	}
	return false;
}

/* Where the value of "@key" starts in the flat object [@obj, @end), or NULL. */
static const char *json_value(const char *obj, const char *end, const char *key)
{
	char pat[48];
	const char *p = obj, *q;
	size_t n = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);

	while ((p = strstr(p, pat)) && p < end) {
		for (q = p + n; isspace((unsigned char)*q); q++)
			;
		if (*q == ':') {
			for (q++; isspace((unsigned char)*q); q++)
				;
			return q < end ? q : NULL;
		}
		p = q;
	}
	return NULL;
}

static bool json_u64(const char *obj, const char *end, const char *key, uint64_t *v)
{
	const char *p = json_value(obj, end, key);

	if (!p || !isdigit((unsigned char)*p))
		return false;
	*v = strtoull(p, NULL, 10);
	return true;
}

/* The next flat object of a JSON document at or after @p: *end its '}'. */
static const char *json_next_object(const char *p, const char **end)
{
	const char *obj = strchr(p, '{');

	*end = obj ? strchr(obj, '}') : NULL;
	return *end ? obj : NULL;
}

/* The object of @uid in `kmctl --json limits`. */
static bool limits_json_row(const char *out, unsigned int uid, struct limits_row *row)
{
	const char *obj, *end, *priv;
	uint64_t u;

	for (obj = json_next_object(out, &end); obj; obj = json_next_object(end, &end)) {
		if (!json_u64(obj, end, "uid", &u) || u != uid)
			continue;
		priv = json_value(obj, end, "privileged");
		row->privileged = priv && !strncmp(priv, "true", 4);
		return json_u64(obj, end, "connections", &row->connections) &&
		       json_u64(obj, end, "max_connections", &row->max_connections) &&
		       json_u64(obj, end, "grants", &row->grants) &&
		       json_u64(obj, end, "max_grants", &row->max_grants) &&
		       json_u64(obj, end, "bytes", &row->bytes) &&
		       json_u64(obj, end, "max_bytes", &row->max_bytes) &&
		       json_u64(obj, end, "handles", &row->handles) &&
		       json_u64(obj, end, "max_handles", &row->max_handles) &&
		       json_u64(obj, end, "refusals", &row->refusals);
	}
	return false;
}

/* `kmctl limits` and `kmctl --json limits` agree on @uid's row. */
static void kmctl_limits_row(const char *sock, unsigned int uid, struct limits_row *row)
{
	char *out = malloc(KMCTL_OUT_MAX);
	struct limits_row json;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(run_kmctl(sock, "limits", out, KMCTL_OUT_MAX), 0);
	ck_assert_msg(strstr(out, "MAX_GRANTS") != NULL, "no header in:\n%s", out);
	ck_assert_msg(limits_text_row(out, uid, row), "uid %u not in:\n%s", uid, out);
	ck_assert_int_eq(run_kmctl(sock, "--json limits", out, KMCTL_OUT_MAX), 0);
	ck_assert_msg(limits_json_row(out, uid, &json), "uid %u not in:\n%s", uid, out);
	ck_assert_uint_eq(json.connections, row->connections);
	ck_assert_uint_eq(json.max_connections, row->max_connections);
	ck_assert_uint_eq(json.grants, row->grants);
	ck_assert_uint_eq(json.max_grants, row->max_grants);
	ck_assert_uint_eq(json.bytes, row->bytes);
	ck_assert_uint_eq(json.max_bytes, row->max_bytes);
	ck_assert_uint_eq(json.handles, row->handles);
	ck_assert_uint_eq(json.max_handles, row->max_handles);
	ck_assert_int_eq(json.privileged, row->privileged);
	/* Refusals may move between the two runs only if someone is refused. */
	ck_assert_uint_ge(json.refusals, row->refusals);
	free(out);
}

/* ---- helpers' bodies ------------------------------------------------------ */

/* Opens Hello'd connections as one uid until refused or @max. */
struct fill_arg {
	const char *sock;
	uid_t uid;
	gid_t gid;
	gid_t groups[2];
	size_t nr_groups;
	int max;
};

/* Reports v[0] accepted, v[1] the refusal's error (0: none, -1: not id 0,
 * -2: no answer), v[2] errno of a km_connect() after (0 if it connected),
 * v[3] the error of a kmalloc on the first connection, msg the refusal. */
static int child_fill(struct attacker *self, void *arg)
{
	const struct fill_arg *a = arg;
	struct report rep = { { 0 } };
	int fds[64], n = 0, fd = -1, err = 0, i;
	km_client *c;

	ATTACKER_CHECK(attacker_become(a->uid, a->gid, a->groups, a->nr_groups) == 0);
	while (n < a->max && n < 64) {
		fd = hello_or_refusal(a->sock, &err, rep.msg, sizeof(rep.msg));
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	rep.v[0] = n;
	rep.v[1] = fd >= 0 ? 0 : fd == -1 ? err : -2;
	if (n > 0) {
		Kmalloc__Reply *r = raw_alloc(fds[0], 2, 64, KM_GFP_KERNEL, 1);

		rep.v[3] = r ? r->error : -1;
		if (r)
			kmalloc__reply__free_unpacked(r, NULL);
	}
	errno = 0;
	c = km_connect(a->sock);
	rep.v[2] = c ? 0 : errno;
	if (c)
		km_disconnect(c);
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	for (i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

static void fill_as(struct attacker *ch, struct report *rep, const char *sock, uid_t uid, gid_t gid,
		    int max)
{
	static struct fill_arg a;

	memset(&a, 0, sizeof(a));
	a.sock = sock;
	a.uid = uid;
	a.gid = gid;
	a.max = max;
	attacker_start(ch, NULL, child_fill, &a);
	attacker_read(ch, rep, sizeof(*rep), REPORT_MS);
}

/* ---- 1. connection slots --------------------------------------------------- */

START_TEST(test_uid_connection_limit)
{
	const char *sock = main_daemon.socket;
	struct figures base;
	struct limits_row row;
	struct report rep;
	struct attacker ch;
	int fd;

	baseline_of(sock, &base);
	fill_as(&ch, &rep, sock, NOBODY, NOBODY, 20);
	/* Refused past its limit, with the documented reply... */
	ck_assert_int_eq(rep.v[0], UID_MAX_CONNS);
	ck_assert_int_eq(rep.v[1], EACCES);
	ck_assert_msg(strstr(rep.msg, "connection limit") != NULL, "refusal: %s", rep.msg);
	ck_assert_int_eq(rep.v[3], 0);
	/* ...and libkmclient says EACCES. */
	ck_assert_int_eq(rep.v[2], EACCES);
	/* Root is not limited, even now. */
	assert_serves(&main_daemon);
	fd = raw_connect_hello(sock, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	kmctl_limits_row(sock, NOBODY, &row);
	ck_assert_uint_eq(row.connections, UID_MAX_CONNS);
	ck_assert_uint_eq(row.max_connections, UID_MAX_CONNS);
	ck_assert_uint_ge(row.refusals, 2);
	ck_assert(!row.privileged);
	close(fd);
	attacker_finish(&ch);
	assert_back_to(sock, &base);
	ck_assert_int_ge(test_daemon_log_count(&main_daemon, "connection refused"), 1);
}
END_TEST

/* Unprivileged uids together fill max_clients - reserved_connections; the
 * rest is root's, up to max_clients. */
START_TEST(test_reserved_connections)
{
	const char *sock = main_daemon.socket;
	struct attacker ch[12];
	struct figures base;
	struct report rep;
	int fds[MAX_CLIENTS], nr_children = 0, nr_fds = 0, root_fd, fd, err, i;
	uint64_t unprivileged = 0;
	Kmalloc__Reply *r;
	char why[160];
	bool full = false;

	baseline_of(sock, &base);
	root_fd = raw_connect_hello(sock, NULL, NULL);
	ck_assert_int_ge(root_fd, 0);
	while (!full && nr_children < 10) {
		uid_t uid = NOBODY - (uid_t)nr_children;

		fill_as(&ch[nr_children++], &rep, sock, uid, uid, 20);
		unprivileged += (uint64_t)rep.v[0];
		ck_assert_int_eq(rep.v[1], EACCES);
		full = strstr(rep.msg, "only reserved connections") != NULL;
		ck_assert_msg(full || (rep.v[0] == UID_MAX_CONNS &&
				       strstr(rep.msg, "connection limit") != NULL),
			      "uid %u: %d connections, refusal: %s", (unsigned int)uid,
			      (int)rep.v[0], rep.msg);
	}
	ck_assert_msg(full, "unprivileged uids were never refused a reserved slot");
	r = raw_meminfo(root_fd, 2);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->meminfo->clients, MAX_CLIENTS - RESERVED_CONNS);
	ck_assert_uint_eq(unprivileged, MAX_CLIENTS - RESERVED_CONNS - base.clients);
	kmalloc__reply__free_unpacked(r, NULL);

	/* Another uid is refused a reserved slot, raw and with libkmclient. */
	fill_as(&ch[nr_children++], &rep, sock, NOBODY - 40, NOBODY - 40, 20);
	ck_assert_int_eq(rep.v[0], 0);
	ck_assert_int_eq(rep.v[1], EACCES);
	ck_assert_msg(strstr(rep.msg, "only reserved connections") != NULL, "refusal: %s", rep.msg);
	ck_assert_int_eq(rep.v[2], EACCES);

	/* Root takes the reserved slots, and then max_clients holds for it too. */
	for (;;) {
		fd = hello_or_refusal(sock, &err, why, sizeof(why));
		if (fd < 0)
			break;
		ck_assert_int_lt(nr_fds, MAX_CLIENTS);
		fds[nr_fds++] = fd;
	}
	ck_assert_int_eq(nr_fds, RESERVED_CONNS);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(err, EACCES);
	ck_assert_msg(strstr(why, "max_clients") != NULL, "refusal: %s", why);
	r = raw_alloc(fds[0], 3, 64, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);

	for (i = 0; i < nr_fds; i++)
		close(fds[i]);
	close(root_fd);
	for (i = 0; i < nr_children; i++)
		attacker_finish(&ch[i]);
	assert_back_to(sock, &base);
	assert_serves(&main_daemon);
}
END_TEST

/* A connection that never says Hello holds a slot, until --hello-timeout. */
static int child_silent(struct attacker *self, void *arg)
{
	const char *sock = arg;
	struct report rep = { { 0 } };
	int fds[UID_MAX_CONNS], fd, err, closed = 0, i;
	uint64_t t0;

	attacker_become_nobody();
	for (i = 0; i < UID_MAX_CONNS; i++)
		ATTACKER_CHECK((fds[i] = raw_connect(sock)) >= 0);
	t0 = now_us();
	fd = hello_or_refusal(sock, &err, rep.msg, sizeof(rep.msg));
	ATTACKER_CHECK(fd < 0);
	rep.v[0] = fd == -1 ? err : -2;
	for (i = 0; i < UID_MAX_CONNS; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
		char b;

		if (poll(&pfd, 1, 10000) == 1 && recv(fds[i], &b, 1, MSG_DONTWAIT) == 0)
			closed++;
		close(fds[i]);
	}
	rep.v[1] = closed;
	rep.v[2] = (int64_t)((now_us() - t0) / 1000);
	/* The slots are free again. */
	fd = hello_or_refusal(sock, &err, NULL, 0);
	rep.v[3] = fd >= 0;
	if (fd >= 0)
		close(fd);
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	return 0;
}

START_TEST(test_silent_connections_time_out)
{
	const char *sock = main_daemon.socket;
	int before = test_daemon_log_count(&main_daemon, "no hello in time");
	struct figures base;
	struct report rep;
	struct attacker ch;

	baseline_of(sock, &base);
	attacker_start(&ch, &main_daemon, child_silent, (void *)sock);
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_eq(rep.v[0], EACCES);
	ck_assert_msg(strstr(rep.msg, "connection limit") != NULL, "refusal: %s", rep.msg);
	ck_assert_int_eq(rep.v[1], UID_MAX_CONNS);
	/* --hello-timeout 1: closed after a second, not kept. */
	ck_assert_int_ge(rep.v[2], 500);
	ck_assert_int_eq(rep.v[3], 1);
	attacker_finish(&ch);
	ck_assert_int_ge(test_daemon_log_count(&main_daemon, "no hello in time") - before,
			 UID_MAX_CONNS);
	assert_back_to(sock, &base);
	assert_serves(&main_daemon);
}
END_TEST

/* ---- 2. grants ------------------------------------------------------------- */

/* nobody takes its UID_MAX_GRANTS grants; on 'a' it tries 100,000 more. */
static int child_grant_hog(struct attacker *self, void *arg)
{
	const char *sock = arg;
	struct report rep = { { 0 } };
	Kmalloc__Reply *r;
	int fd, i;

	attacker_become_nobody();
	fd = raw_connect_hello(sock, NULL, NULL);
	ATTACKER_CHECK(fd >= 0);
	for (i = 0; i < 2; i++) {
		r = raw_alloc(fd, 2 + (uint64_t)i, 8, KM_GFP_KERNEL, UID_MAX_GRANTS / 2);
		ATTACKER_CHECK(r && !r->error && r->body_case == KMALLOC__REPLY__BODY_ALLOC &&
			       r->alloc->n_grants == UID_MAX_GRANTS / 2);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	r = raw_alloc(fd, 4, 8, KM_GFP_KERNEL, 1);
	ATTACKER_CHECK(r != NULL);
	rep.v[0] = r->error;
	rep.v[1] = r->body_case;
	rep.v[2] = (int64_t)r->id;
	snprintf(rep.msg, sizeof(rep.msg), "%s", r->message ? r->message : "");
	kmalloc__reply__free_unpacked(r, NULL);
	attacker_report(self, &rep, sizeof(rep));
	if (attacker_wait(self) == 'a') {
		memset(&rep, 0, sizeof(rep));
		for (i = 0; i < 100; i++) {
			r = raw_alloc(fd, 10 + (uint64_t)i, 8, KM_GFP_KERNEL, 1000);
			ATTACKER_CHECK(r != NULL);
			rep.v[0] += r->error == EDQUOT;
			kmalloc__reply__free_unpacked(r, NULL);
		}
		attacker_report(self, &rep, sizeof(rep));
		attacker_wait(self);
	}
	close(fd);
	return 0;
}

/* nobody with libkmclient: kmallocs of 64 bytes until one fails; reports
 * v[0] how many worked, v[1] the errno of the failure. */
struct lib_arg {
	const char *sock;
	int max;
};

static int child_lib_kmalloc(struct attacker *self, void *arg)
{
	const struct lib_arg *a = arg;
	struct report rep = { { 0 } };
	km_client *c;
	int n;

	attacker_become_nobody();
	/* One grant per kmalloc: the library carves small objects from slabs
	 * (a grant per 64 objects of 64 bytes) unless told not to. */
	setenv("KMCLIENT_NO_CACHE", "1", 1);
	c = km_connect(a->sock);
	ATTACKER_CHECK(c != NULL);
	for (n = 0; n < a->max; n++) {
		errno = 0;
		if (!km_kmalloc(c, 64, KM_GFP_KERNEL))
			break;
	}
	rep.v[0] = n;
	rep.v[1] = n < a->max ? errno : 0;
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	km_disconnect(c);
	return 0;
}

START_TEST(test_grant_limit)
{
	const char *sock = main_daemon.socket;
	struct lib_arg one = { sock, 10 }, many = { sock, 5000 };
	uint64_t rss_before, rss_after;
	struct attacker hog, lib;
	struct limits_row row;
	struct figures base;
	struct report rep;
	Kmalloc__Reply *r;
	int root_fd, i;

	baseline_of(sock, &base);
	rss_before = rss_kib(main_daemon.pid);
	attacker_start(&hog, &main_daemon, child_grant_hog, (void *)sock);
	attacker_read(&hog, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_eq(rep.v[0], EDQUOT);
	ck_assert_int_eq(rep.v[1], KMALLOC__REPLY__BODY__NOT_SET);
	ck_assert_int_eq(rep.v[2], 4);
	ck_assert_msg(strstr(rep.msg, "limits of uid 65534") != NULL, "reply: %s", rep.msg);

	/* kmctl shows it at its limit. */
	kmctl_limits_row(sock, NOBODY, &row);
	ck_assert_uint_eq(row.grants, UID_MAX_GRANTS);
	ck_assert_uint_eq(row.max_grants, UID_MAX_GRANTS);
	ck_assert_uint_eq(row.handles, 0);
	ck_assert_uint_eq(row.max_handles, 4096); /* uid_max_handles' default */
	ck_assert_uint_eq(row.connections, 1);
	ck_assert_uint_ge(row.refusals, 1);
	ck_assert(!row.privileged);

	/* The limit is the uid's: another client of nobody gets EDQUOT at once. */
	attacker_start(&lib, &main_daemon, child_lib_kmalloc, &one);
	attacker_read(&lib, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_eq(rep.v[0], 0);
	ck_assert_int_eq(rep.v[1], EDQUOT);
	attacker_finish(&lib);

	/* 100,000 more tries cost the daemon nothing that stays: what it holds
	 * for nobody is bounded by the limit (the issue saw 6 GB). */
	attacker_go(&hog, 'a');
	attacker_read(&hog, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_eq(rep.v[0], 100);
	rss_after = rss_kib(main_daemon.pid);
	fprintf(stderr,
		"grant limit: 100,000 allocations refused; daemon VmRSS %" PRIu64 " -> %" PRIu64
		" KiB\n",
		rss_before, rss_after);
	ck_assert_msg(rss_after < rss_before + 4096,
		      "daemon RSS grew from %" PRIu64 " to %" PRIu64 " KiB", rss_before, rss_after);

	/* Root is not limited, while nobody sits at its limit. */
	root_fd = raw_connect_hello(sock, NULL, NULL);
	ck_assert_int_ge(root_fd, 0);
	for (i = 0; i < 3; i++) {
		r = raw_alloc(root_fd, 2 + (uint64_t)i, 8, KM_GFP_KERNEL, 1000);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, 0);
		ck_assert_uint_eq(r->alloc->n_grants, 1000);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	kmctl_limits_row(sock, 0, &row);
	ck_assert_uint_eq(row.grants, 3000);
	ck_assert_uint_eq(row.max_grants, UINT64_MAX);
	ck_assert_uint_eq(row.max_bytes, UINT64_MAX);
	ck_assert_uint_eq(row.max_handles, UINT64_MAX);
	ck_assert(row.privileged);
	assert_serves(&main_daemon);
	attacker_finish(&hog);
	close(root_fd);

	/* libkmclient alone: up to the limit, then EDQUOT. */
	attacker_start(&lib, &main_daemon, child_lib_kmalloc, &many);
	attacker_read(&lib, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_le(rep.v[0], UID_MAX_GRANTS);
	ck_assert_int_ge(rep.v[0], UID_MAX_GRANTS - 100);
	ck_assert_int_eq(rep.v[1], EDQUOT);
	attacker_finish(&lib);
	assert_back_to(sock, &base);
	ck_assert_int_ge(test_daemon_log_count(&main_daemon, "refused: uid holds"), 1);
}
END_TEST

/* ---- 3. clients that never read ------------------------------------------ */

#define NOREAD_CONNS 32
#define NOREAD_CAP   20000

/* Reports v[0] fewest requests sent on a connection, v[1] most, v[2] all,
 * v[3] connections that reached NOREAD_CAP, v[4] send errors but EAGAIN. */
static int child_never_reads(struct attacker *self, void *arg)
{
	const char *sock = arg;
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest m = KMALLOC__MEMINFO_REQUEST__INIT;
	int fds[NOREAD_CONNS], sent[NOREAD_CONNS] = { 0 }, idle = 0, pass, k;
	struct report rep = { { 0 } };
	bool broken[NOREAD_CONNS] = { false };

	attacker_become_nobody();
	for (k = 0; k < NOREAD_CONNS; k++)
		ATTACKER_CHECK((fds[k] = raw_connect_hello(sock, NULL, NULL)) >= 0);
	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &m;
	/* Send on every connection until none takes more for half a second:
	 * the daemon stopped reading us. */
	for (pass = 0; idle < 5 && pass < 100000; pass++) {
		int progress = 0;

		for (k = 0; k < NOREAD_CONNS; k++) {
			while (!broken[k] && sent[k] < NOREAD_CAP) {
				uint8_t buf[64];
				size_t len;

				req.id = (uint64_t)sent[k] + 2;
				len = kmalloc__request__get_packed_size(&req);
				kmalloc__request__pack(&req, buf);
				if (send(fds[k], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
					broken[k] = errno != EAGAIN && errno != EWOULDBLOCK;
					break;
				}
				sent[k]++;
				progress++;
			}
		}
		if (progress) {
			idle = 0;
		} else {
			idle++;
			usleep(100000);
		}
	}
	rep.v[0] = NOREAD_CAP;
	for (k = 0; k < NOREAD_CONNS; k++) {
		rep.v[0] = sent[k] < rep.v[0] ? sent[k] : rep.v[0];
		rep.v[1] = sent[k] > rep.v[1] ? sent[k] : rep.v[1];
		rep.v[2] += sent[k];
		rep.v[3] += sent[k] == NOREAD_CAP;
		rep.v[4] += broken[k];
	}
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	for (k = 0; k < NOREAD_CONNS; k++)
		close(fds[k]);
	return 0;
}

START_TEST(test_clients_that_never_read)
{
	static const char *const extra[] = { "--paranoid", "--hello-timeout", "1", NULL };
	struct test_daemon o;
	char asan[512];
	struct figures base;
	struct report rep;
	struct attacker ch;
	uint64_t rss_before, rss_after, t0, rtt_ms;
	int fd;
	Kmalloc__Reply *r;

	/* AddressSanitizer keeps what the daemon frees in a quarantine (256 MiB
	 * by default), which would count as growth here: keep it small for
	 * this daemon (a build without ASan ignores the variable). */
	snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=1",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	test_daemon_start(&o, POOL_SIZE, extra);
	baseline_of(o.socket, &base);
	assert_serves(&o);
	rss_before = rss_kib(o.pid);
	attacker_start(&ch, &o, child_never_reads, o.socket);
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	fprintf(stderr,
		"never-read: %d connections sent %" PRId64 " to %" PRId64 " requests each (%" PRId64
		" in all)\n",
		NOREAD_CONNS, rep.v[0], rep.v[1], rep.v[2]);
	/* The daemon stopped reading every one of them long before the cap... */
	ck_assert_int_eq(rep.v[3], 0);
	ck_assert_int_eq(rep.v[4], 0);
	ck_assert_int_ge(rep.v[0], 100);
	/* ...so its memory stayed bounded (64 KiB of replies each)... */
	rss_after = rss_kib(o.pid);
	fprintf(stderr, "never-read: daemon VmRSS %" PRIu64 " -> %" PRIu64 " KiB\n", rss_before,
		rss_after);
	ck_assert_msg(rss_after < rss_before + 16384,
		      "daemon RSS grew from %" PRIu64 " to %" PRIu64 " KiB", rss_before, rss_after);
	/* ...and root is answered at once. */
	t0 = now_us();
	fd = raw_connect_hello(o.socket, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	r = raw_meminfo(fd, 2);
	ck_assert_ptr_nonnull(r);
	kmalloc__reply__free_unpacked(r, NULL);
	r = raw_alloc(fd, 3, 100, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);
	rtt_ms = (now_us() - t0) / 1000;
	ck_assert_msg(rtt_ms < 2000, "root waited %" PRIu64 " ms", rtt_ms);
	close(fd);
	attacker_finish(&ch);
	assert_back_to(o.socket, &base);
	assert_serves(&o);
	stop_own_daemon(&o);
}
END_TEST

/* ---- 4. journal flood -------------------------------------------------------- */

#define FLOOD_REQUESTS 20000
#define FLOOD_WINDOW   32

/* One request each of whose kinds makes the daemon want to log a line:
 * a free of a grant we do not hold, a release list of one, id 0. */
static int send_bad(int fd, int i)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Free f = KMALLOC__FREE__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	uint64_t id = 0x7000000000ull + (uint64_t)i;

	req.id = (uint64_t)i + 1;
	switch (i % 3) {
	case 0:
		f.n_grants = 1;
		f.grants = &id;
		req.body_case = KMALLOC__REQUEST__BODY_FREE;
		req.free = &f;
		break;
	case 1:
		req.n_release = 1;
		req.release = &id;
		req.body_case = KMALLOC__REQUEST__BODY_NOP;
		req.nop = &nop;
		break;
	default:
		req.id = 0;
		req.body_case = KMALLOC__REQUEST__BODY_NOP;
		req.nop = &nop;
		break;
	}
	return raw_send(fd, &req);
}

static bool bad_reply_ok(const Kmalloc__Reply *r, int i)
{
	switch (i % 3) {
	case 0:
		return r->id == (uint64_t)i + 1 && r->error == ENOENT;
	case 1:
		return r->id == (uint64_t)i + 1 && !r->error && r->n_release_failed == 1;
	default:
		return r->id == 0 && r->error == EINVAL;
	}
}

/* Reports v[0] requests, v[1] milliseconds, v[2] unexpected replies; on 'x'
 * one more. */
static int child_flood(struct attacker *self, void *arg)
{
	const char *sock = arg;
	struct report rep = { { 0 } };
	Kmalloc__Reply *r;
	uint64_t t0;
	int fd, i, j;

	attacker_become_nobody();
	fd = raw_connect_hello(sock, NULL, NULL);
	ATTACKER_CHECK(fd >= 0);
	t0 = now_us();
	for (i = 0; i < FLOOD_REQUESTS; i += FLOOD_WINDOW) {
		int n = FLOOD_REQUESTS - i < FLOOD_WINDOW ? FLOOD_REQUESTS - i : FLOOD_WINDOW;

		for (j = 0; j < n; j++)
			ATTACKER_CHECK(send_bad(fd, i + j) == 0);
		for (j = 0; j < n; j++) {
			r = raw_recv(fd, NULL, 5000);
			ATTACKER_CHECK(r != NULL);
			rep.v[2] += !bad_reply_ok(r, i + j);
			kmalloc__reply__free_unpacked(r, NULL);
		}
	}
	rep.v[0] = FLOOD_REQUESTS;
	rep.v[1] = (int64_t)((now_us() - t0) / 1000);
	attacker_report(self, &rep, sizeof(rep));
	if (attacker_wait(self) == 'x') {
		ATTACKER_CHECK(send_bad(fd, 0) == 0);
		r = raw_recv(fd, NULL, 5000);
		ATTACKER_CHECK(r != NULL && bad_reply_ok(r, 0));
		kmalloc__reply__free_unpacked(r, NULL);
		attacker_report(self, &rep, sizeof(rep));
		attacker_wait(self);
	}
	close(fd);
	return 0;
}

/* Sums the counts of "uid @uid: N log lines suppressed" lines. */
static uint64_t suppressed_sum(const struct test_daemon *d, unsigned int uid, int *lines)
{
	char line[2048], who[32];
	uint64_t sum = 0;
	const char *p;
	FILE *f = fopen(d->log, "re");

	*lines = 0;
	ck_assert_ptr_nonnull(f);
	snprintf(who, sizeof(who), "uid %u: ", uid);
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, who);
		if (!p || !strstr(line, "log lines suppressed"))
			continue;
		sum += strtoull(p + strlen(who), NULL, 10);
		(*lines)++;
	}
	fclose(f);
	return sum;
}

START_TEST(test_journal_flood)
{
	const struct test_daemon *d = &main_daemon;
	int uid_before, all_before, uid_lines, all_lines, supp_before, supp_lines;
	uint64_t supp_sum_before, supp_sum, max_rtt = 0, secs;
	struct figures base;
	struct report rep;
	struct attacker ch;
	int root_fd, rtts = 0;

	baseline_of(d->socket, &base);
	root_fd = raw_connect_hello(d->socket, NULL, NULL);
	ck_assert_int_ge(root_fd, 0);
	test_daemon_log_window();
	uid_before = test_daemon_log_count(d, "uid 65534");
	all_before = test_daemon_log_count(d, "");
	supp_sum_before = suppressed_sum(d, NOBODY, &supp_before);

	attacker_start(&ch, d, child_flood, (void *)d->socket);
	/* Root is served all along. */
	for (;;) {
		struct pollfd pfd = { .fd = ch.report, .events = POLLIN };
		uint64_t t0 = now_us(), rtt;
		Kmalloc__Reply *r;

		if (poll(&pfd, 1, 20) != 0)
			break;
		r = raw_meminfo(root_fd, 2 + (uint64_t)rtts);
		ck_assert_ptr_nonnull(r);
		kmalloc__reply__free_unpacked(r, NULL);
		rtt = now_us() - t0;
		max_rtt = rtt > max_rtt ? rtt : max_rtt;
		rtts++;
	}
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	ck_assert_int_eq(rep.v[2], 0);
	ck_assert_msg(max_rtt < 2000000, "root waited %" PRIu64 " us", max_rtt);
	/* The last window's count is reported with the next line of the uid. */
	test_daemon_log_window();
	attacker_go(&ch, 'x');
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	uid_lines = test_daemon_log_count(d, "uid 65534") - uid_before;
	all_lines = test_daemon_log_count(d, "") - all_before;
	supp_sum = suppressed_sum(d, NOBODY, &supp_lines) - supp_sum_before;
	supp_lines -= supp_before;
	secs = (uint64_t)rep.v[1] / 1000 + 1;
	fprintf(stderr,
		"journal flood: %d requests in %" PRId64 " ms made %d lines about uid "
		"65534 (%d in all), %d reports of %" PRIu64 " lines suppressed; root's worst "
		"round trip %" PRIu64 " us of %d\n",
		FLOOD_REQUESTS, rep.v[1], uid_lines, all_lines, supp_lines, supp_sum, max_rtt,
		rtts);
	/* 5 lines per second and a report; 10 per second daemon-wide; plus the
	 * debug lines of the connection and the window after the flood. */
	ck_assert_int_le(uid_lines, (int)(6 * (secs + 2) + 6));
	ck_assert_int_lt(uid_lines, 100);
	ck_assert_int_le(all_lines, (int)(11 * (secs + 2) + 30));
	ck_assert_int_ge(supp_lines, 1);
	/* What was not printed was counted: all but a few lines per second. */
	ck_assert_uint_le(supp_sum, FLOOD_REQUESTS + 1);
	ck_assert_uint_ge(supp_sum, FLOOD_REQUESTS - 5 * (secs + 2));
	attacker_finish(&ch);
	close(root_fd);
	assert_back_to(d->socket, &base);
}
END_TEST

/* ---- 5. allow lists ---------------------------------------------------------- */

static void probe_access(struct test_daemon *o, uid_t uid, gid_t gid, const gid_t *groups,
			 size_t nr_groups, bool allowed)
{
	static struct fill_arg a;
	struct report rep;
	struct attacker ch;

	memset(&a, 0, sizeof(a));
	a.sock = o->socket;
	a.uid = uid;
	a.gid = gid;
	if (nr_groups)
		memcpy(a.groups, groups, nr_groups * sizeof(*groups));
	a.nr_groups = nr_groups;
	a.max = 1;
	attacker_start(&ch, o, child_fill, &a);
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	if (allowed) {
		ck_assert_msg(rep.v[0] == 1, "uid %u gid %u refused: %s", (unsigned int)uid,
			      (unsigned int)gid, rep.msg);
		ck_assert_int_eq(rep.v[3], 0);
		ck_assert_int_eq(rep.v[2], 0);
	} else {
		ck_assert_msg(rep.v[0] == 0, "uid %u gid %u let in", (unsigned int)uid,
			      (unsigned int)gid);
		ck_assert_int_eq(rep.v[1], EACCES);
		ck_assert_msg(strstr(rep.msg, "not on the allow list") != NULL, "refusal: %s",
			      rep.msg);
		ck_assert_int_eq(rep.v[2], EACCES);
	}
	attacker_finish(&ch);
}

/* nobody runs `kmctl meminfo`: v[0] its exit status, msg what it said. */
static int child_kmctl(struct attacker *self, void *arg)
{
	struct report rep = { { 0 } };

	attacker_become_nobody();
	rep.v[0] = run_kmctl(arg, "meminfo", rep.msg, sizeof(rep.msg));
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	return 0;
}

START_TEST(test_allow_lists)
{
	static const char *const extra[] = { "--paranoid",     "--allow-users", "root,65533",
					     "--allow-groups", "4242",		NULL };
	static const gid_t allowed_group[] = { 4242 }, other_group[] = { 4343 };
	struct test_daemon o;
	struct figures base;
	struct report rep;
	struct attacker ch;

	test_daemon_start(&o, POOL_SIZE, extra);
	baseline_of(o.socket, &base);
	probe_access(&o, NOBODY, NOBODY, NULL, 0, false);
	/* kmctl says why too. */
	attacker_start(&ch, &o, child_kmctl, o.socket);
	attacker_read(&ch, &rep, sizeof(rep), REPORT_MS);
	if (rep.v[0] == 126 || rep.v[0] == 127)
		fprintf(stderr, "allow lists: nobody cannot run $KMCTL here: %s\n", rep.msg);
	else
		ck_assert_msg(rep.v[0] == 1 && strstr(rep.msg, "not on the allow list") != NULL,
			      "kmctl as nobody: status %d: %s", (int)rep.v[0], rep.msg);
	attacker_finish(&ch);
	probe_access(&o, 65533, 65533, NULL, 0, true);
	/* Through a group: supplementary or primary. */
	probe_access(&o, 65532, 65532, allowed_group, 1, true);
	probe_access(&o, 65532, 4242, NULL, 0, true);
	probe_access(&o, 65532, 65532, other_group, 1, false);
	/* Root always. */
	assert_serves(&o);
	assert_back_to(o.socket, &base);
	ck_assert_int_ge(test_daemon_log_count(&o, "not on the allow list"), 1);
	stop_own_daemon(&o);
}
END_TEST

/* ---- 6. limits from the config file and --limit ----------------------------- */

/* A uid allocates up to its limits and checks the first refusal of each. */
struct probe_arg {
	const char *sock;
	uid_t uid;
	gid_t gid;
	gid_t groups[2];
	size_t nr_groups;
	uint32_t grants_ok; /* 8-byte grants that fit (0: skip) */
	uint64_t big_size;  /* then big_ok allocations of big_size fit... */
	uint32_t big_ok;
	uint64_t over_size; /* ...and one of over_size does not... */
	uint64_t fits_size; /* ...while one of fits_size (0: skip) still does */
};

static int child_probe(struct attacker *self, void *arg)
{
	const struct probe_arg *a = arg;
	struct report rep = { { 0 } };
	uint64_t id = 2, *ids;
	Kmalloc__Reply *r;
	uint32_t i;
	int fd;

	ATTACKER_CHECK(attacker_become(a->uid, a->gid, a->groups, a->nr_groups) == 0);
	fd = raw_connect_hello(a->sock, NULL, NULL);
	ATTACKER_CHECK(fd >= 0);
	if (a->grants_ok) {
		r = raw_alloc(fd, id++, 8, KM_GFP_KERNEL, a->grants_ok);
		ATTACKER_CHECK(r && !r->error && r->alloc->n_grants == a->grants_ok);
		ids = calloc(a->grants_ok, sizeof(*ids));
		ATTACKER_CHECK(ids != NULL);
		for (i = 0; i < a->grants_ok; i++)
			ids[i] = r->alloc->grants[i]->id;
		kmalloc__reply__free_unpacked(r, NULL);
		r = raw_alloc(fd, id++, 8, KM_GFP_KERNEL, 1);
		ATTACKER_CHECK(r && r->error == EDQUOT);
		kmalloc__reply__free_unpacked(r, NULL);
		r = raw_free(fd, id++, ids, a->grants_ok);
		ATTACKER_CHECK(r && !r->error && r->free->freed == a->grants_ok);
		kmalloc__reply__free_unpacked(r, NULL);
		free(ids);
	}
	for (i = 0; i < a->big_ok; i++) {
		r = raw_alloc(fd, id++, a->big_size, KM_GFP_KERNEL, 1);
		ATTACKER_CHECK(r && !r->error);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	r = raw_alloc(fd, id++, a->over_size, KM_GFP_KERNEL, 1);
	ATTACKER_CHECK(r && r->error == EDQUOT);
	kmalloc__reply__free_unpacked(r, NULL);
	if (a->fits_size) {
		r = raw_alloc(fd, id++, a->fits_size, KM_GFP_KERNEL, 1);
		ATTACKER_CHECK(r && !r->error);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	attacker_report(self, &rep, sizeof(rep));
	attacker_wait(self);
	close(fd);
	return 0;
}

/* What the config of both cases says: the default share 10 % (3355440
 * bytes of 32 MiB), uid 65534 4 MiB and 100 grants (a user section wins over
 * its groups), group 65533 1 MiB and 50 grants per member. */
static void check_configured_limits(struct test_daemon *o)
{
	const uint64_t share = POOL_SIZE * 10 / 100;
	struct probe_arg probes[3] = {
		{ .uid = NOBODY,
		  .gid = NOBODY,
		  .groups = { 65533 },
		  .nr_groups = 1,
		  .grants_ok = 100,
		  .big_size = 1u << 20,
		  .big_ok = 4,
		  .over_size = 8 },
		{ .uid = 65531,
		  .gid = 65533,
		  .grants_ok = 50,
		  .big_size = 1u << 20,
		  .big_ok = 1,
		  .over_size = 8 },
		{ .uid = 65530,
		  .gid = 65530,
		  .big_size = 1u << 20,
		  .big_ok = 3,
		  .over_size = 256u << 10,
		  .fits_size = 128u << 10 },
	};
	const struct {
		unsigned int uid;
		uint64_t grants, max_grants, bytes, max_bytes;
	} want[3] = {
		{ NOBODY, 4, 100, 4u << 20, 4u << 20 },
		{ 65531, 1, 50, 1u << 20, 1u << 20 },
		{ 65530, 4, 262144, (3u << 20) + (128u << 10), share },
	};
	struct attacker ch[3];
	struct figures base;
	struct limits_row row;
	struct report rep;
	Kmalloc__Reply *r;
	int root_fd, i;

	baseline_of(o->socket, &base);
	for (i = 0; i < 3; i++) {
		probes[i].sock = o->socket;
		attacker_start(&ch[i], o, child_probe, &probes[i]);
		attacker_read(&ch[i], &rep, sizeof(rep), REPORT_MS);
	}
	/* Root has no limit. */
	root_fd = raw_connect_hello(o->socket, NULL, NULL);
	ck_assert_int_ge(root_fd, 0);
	for (i = 0; i < 5; i++) {
		r = raw_alloc(root_fd, 2 + (uint64_t)i, 1u << 20, KM_GFP_KERNEL, 1);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, 0);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	for (i = 0; i < 3; i++) {
		kmctl_limits_row(o->socket, want[i].uid, &row);
		ck_assert_uint_eq(row.grants, want[i].grants);
		ck_assert_uint_eq(row.max_grants, want[i].max_grants);
		ck_assert_uint_eq(row.bytes, want[i].bytes);
		ck_assert_uint_eq(row.max_bytes, want[i].max_bytes);
		ck_assert_uint_eq(row.connections, 1);
		ck_assert_uint_ge(row.refusals, 1);
		ck_assert(!row.privileged);
	}
	kmctl_limits_row(o->socket, 0, &row);
	ck_assert_uint_eq(row.bytes, 5u << 20);
	ck_assert_uint_eq(row.max_bytes, UINT64_MAX);
	ck_assert(row.privileged);
	close(root_fd);
	for (i = 0; i < 3; i++)
		attacker_finish(&ch[i]);
	assert_back_to(o->socket, &base);
	ck_assert_int_ge(test_daemon_log_count(o, "refused: uid holds"), 1);
}

START_TEST(test_limits_from_config_file)
{
	static const char ini[] = "# test-limits\n"
				  "[kmallocd]\n"
				  "uid_max_share = 10\n"
				  "\n"
				  "[uid:65534]\n"
				  "max_bytes = 4M\n"
				  "max_grants = 100\n"
				  "\n"
				  "[gid:65533]\n"
				  "max_bytes = 1M\n"
				  "max_grants = 50\n";
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const char *extra[] = { "--paranoid", "--config", NULL, NULL };
	char path[128];
	struct test_daemon o;
	int fd;

	snprintf(path, sizeof(path), "%s/kmlimits-conf.XXXXXX", tmp);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, ini, sizeof(ini) - 1), (ssize_t)sizeof(ini) - 1);
	close(fd);
	extra[2] = path;
	test_daemon_start(&o, POOL_SIZE, extra);
	unlink(path);
	ck_assert_int_ge(test_daemon_log_count(&o, "read settings from"), 1);
	check_configured_limits(&o);
	stop_own_daemon(&o);
}
END_TEST

START_TEST(test_limits_from_flags)
{
	static const char *const extra[] = { "--paranoid",
					     "--uid-max-share",
					     "10",
					     "--limit",
					     "uid:65534:max_bytes=4M,max_grants=100",
					     "--limit",
					     "gid:65533:max_bytes=1M,max_grants=50",
					     NULL };
	struct test_daemon o;

	test_daemon_start(&o, POOL_SIZE, extra);
	check_configured_limits(&o);
	stop_own_daemon(&o);
}
END_TEST

/* ---- 7. buddyinfo with many domains ----------------------------------------- */

#define MANY_UIDS     300
#define MANY_UID_BASE 20000

/* `kmctl buddyinfo` (text or JSON) lists the free zone and each domain once. */
static void check_buddyinfo(const char *out, bool json)
{
	static int seen[MANY_UIDS];
	int free_zone = 0, root = 0, other = 0, lines = 0, i;
	const char *p = out;

	memset(seen, 0, sizeof(seen));
	for (;;) {
		char zone[64];
		unsigned int uid;

		if (json) {
			const char *end, *obj = json_next_object(p, &end), *v;

			if (!obj)
				break;
			v = json_value(obj, end, "zone");
			if (!v || sscanf(v, "\"%63[^\"]", zone) != 1)
				zone[0] = '\0';
			p = end + 1;
		} else {
			if (!*p)
				break;
			if (sscanf(p, "Node 0, zone %63s", zone) != 1)
				zone[0] = '\0';
			p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
		}
		lines++;
		if (!strcmp(zone, "free"))
			free_zone++;
		else if (!strcmp(zone, "uid0"))
			root++;
		else if (sscanf(zone, "uid%u", &uid) == 1 && uid >= MANY_UID_BASE &&
			 uid < MANY_UID_BASE + MANY_UIDS)
			seen[uid - MANY_UID_BASE]++;
		else
			other++;
	}
	ck_assert_int_eq(free_zone, 1);
	/* kmctl's own connection has root's domain. */
	ck_assert_int_le(root, 1);
	ck_assert_int_eq(other, 0);
	for (i = 0; i < MANY_UIDS; i++)
		ck_assert_msg(seen[i] == 1, "zone uid%d listed %d times", MANY_UID_BASE + i,
			      seen[i]);
	ck_assert_int_eq(lines, 1 + root + MANY_UIDS);
}

START_TEST(test_buddyinfo_many_domains)
{
	static const char *const extra[] = { "--paranoid", NULL };
	static pid_t pids[MANY_UIDS];
	int ready[2], release[2], i, got = 0;
	struct test_daemon o;
	struct figures base;
	char *out;

	test_daemon_start(&o, BIG_POOL_SIZE, extra);
	baseline_of(o.socket, &base);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(release, O_CLOEXEC), 0);
	fflush(NULL);
	for (i = 0; i < MANY_UIDS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			uid_t uid = MANY_UID_BASE + (uid_t)i;
			Kmalloc__Reply *r;
			char status = 'k', b;
			int fd;

			close(ready[0]);
			close(release[1]);
			test_keep_only_fds(ready[1], release[0]);
			if (attacker_become(uid, uid, NULL, 0) < 0)
				_exit(90);
			fd = raw_connect_hello(o.socket, NULL, NULL);
			r = fd >= 0 ? raw_alloc(fd, 2, 8, KM_GFP_KERNEL, 1) : NULL;
			if (!r || r->error)
				status = 'e';
			if (write(ready[1], &status, 1) != 1)
				_exit(91);
			/* Connected until the test lets go. */
			while (read(release[0], &b, 1) > 0)
				;
			_exit(status == 'k' ? 0 : 1);
		}
	}
	close(ready[1]);
	close(release[0]);
	while (got < MANY_UIDS) {
		struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
		char status[MANY_UIDS];
		ssize_t n;

		ck_assert_int_eq(poll(&pfd, 1, 60000), 1);
		n = read(ready[0], status, sizeof(status) - (size_t)got);
		ck_assert_int_gt(n, 0);
		for (i = 0; i < n; i++)
			ck_assert_msg(status[i] == 'k', "a client of a new uid was not served");
		got += (int)n;
	}
	out = malloc(KMCTL_OUT_MAX);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(run_kmctl(o.socket, "buddyinfo", out, KMCTL_OUT_MAX), 0);
	check_buddyinfo(out, false);
	ck_assert_int_eq(run_kmctl(o.socket, "--json buddyinfo", out, KMCTL_OUT_MAX), 0);
	check_buddyinfo(out, true);
	free(out);

	close(release[1]);
	for (i = 0; i < MANY_UIDS; i++) {
		int status;

		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(ready[0]);
	assert_back_to(o.socket, &base);
	stop_own_daemon(&o);
}
END_TEST

/* ---- 8. a large teardown ------------------------------------------------------ */

#define TEARDOWN_BULKS 196 /* of 1024 grants: 200,704 */

START_TEST(test_large_teardown_is_bounded)
{
	const struct test_daemon *d = &main_daemon;
	const uint64_t total = TEARDOWN_BULKS * 1024ull;
	uint64_t max_rtt = 0, grants_before, last, hog_conn = 0, t0;
	int hog, other, i, rtts = 0, during = 0, seen_closing = 0;
	char needle[64], *out;
	struct figures base;
	Kmalloc__Reply *r;
	size_t k;

	baseline_of(d->socket, &base);
	other = raw_connect_hello(d->socket, NULL, NULL);
	hog = raw_connect_hello(d->socket, NULL, NULL);
	ck_assert_int_ge(other, 0);
	ck_assert_int_ge(hog, 0);
	r = raw_meminfo(other, 2);
	ck_assert_ptr_nonnull(r);
	grants_before = r->meminfo->grants;
	kmalloc__reply__free_unpacked(r, NULL);
	for (i = 0; i < TEARDOWN_BULKS; i++) {
		r = raw_alloc(hog, 2 + (uint64_t)i, 8, KM_GFP_KERNEL, 1024);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->error, 0);
		ck_assert_uint_eq(r->alloc->n_grants, 1024);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	r = raw_inspect(other, 3, KMALLOC__INSPECT__TABLE__TABLE_CLIENTS, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	for (k = 0; k < r->inspect->n_clients; k++)
		if (r->inspect->clients[k]->grants == total)
			hog_conn = r->inspect->clients[k]->conn;
	kmalloc__reply__free_unpacked(r, NULL);
	ck_assert_uint_ne(hog_conn, 0);

	/* The log line at the end must not fall to the rate limit. */
	test_daemon_log_window();
	close(hog);
	last = grants_before + total;
	out = malloc(KMCTL_OUT_MAX);
	ck_assert_ptr_nonnull(out);
	t0 = now_us();
	while (rtts < 200 || last != grants_before) {
		uint64_t start, rtt, now;

		/* 200 round trips back to back, then at a gentler pace. */
		if (rtts >= 200)
			usleep(2000);
		start = now_us();
		ck_assert_msg(now_us() - t0 < 30000000,
			      "grants not back after 30 s (%" PRIu64 " left)",
			      last - grants_before);
		r = raw_meminfo(other, 10 + (uint64_t)rtts);
		ck_assert_ptr_nonnull(r);
		rtt = now_us() - start;
		now = r->meminfo->grants;
		kmalloc__reply__free_unpacked(r, NULL);
		max_rtt = rtt > max_rtt ? rtt : max_rtt;
		rtts++;
		/* Given back bit by bit, never all at once. */
		ck_assert_uint_le(now, last);
		last = now;
		if (now == grants_before || now == grants_before + total)
			continue;
		if (during++)
			continue;
		/* Half given back: the connection is closing. kmctl clients
		 * shows it so while it is there. */
		ck_assert_int_eq(run_kmctl(d->socket, "clients", out, KMCTL_OUT_MAX), 0);
		for (char *line = out; line && *line;
		     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
			unsigned int pid, uid, domain;
			uint64_t conn;

			if (sscanf(line, "%u %u %u %" SCNu64, &pid, &uid, &domain, &conn) == 4 &&
			    conn == hog_conn) {
				char *end = strchr(line, '\n');

				if (end)
					*end = '\0';
				ck_assert_msg(strstr(line, "(closing)") != NULL, "row: %s", line);
				seen_closing = 1;
				if (end)
					*end = '\n';
			}
		}
	}
	free(out);
	fprintf(stderr,
		"teardown of %" PRIu64 " grants: %d round trips, %d during it, worst "
		"%" PRIu64 " us; kmctl clients %s it closing\n",
		total, rtts, during, max_rtt, seen_closing ? "showed" : "did not catch");
	/* Everyone else was served while it went on (it used to block the
	 * loop for the whole teardown): at least one answer came between two
	 * of its 0.5 ms turns (200k grants take a few). */
	ck_assert_int_ge(during, 1);
	ck_assert_msg(max_rtt < 50000, "a round trip took %" PRIu64 " us", max_rtt);
	snprintf(needle, sizeof(needle), "gave back %" PRIu64 " grants", total);
	for (i = 0; i < 500 && test_daemon_log_count(d, needle) == 0; i++)
		usleep(10000);
	ck_assert_msg(test_daemon_log_count(d, needle) >= 1, "no '%s' in the log", needle);
	close(other);
	assert_back_to(d->socket, &base);
	assert_serves(d);
}
END_TEST

/* ---- 9. the socket's directory ------------------------------------------------ */

/* Its exit status (20 s at most), or -1. */
static int wait_exit(pid_t pid)
{
	int i, status;

	for (i = 0; i < 2000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* kmallocd must not listen at @sock: it exits non-zero, saying @why. */
static void assert_refused(const char *base, const char *sock, const char *why)
{
	char log[192], text[8192];
	pid_t pid;
	int status;

	snprintf(log, sizeof(log), "%s/refused.log", base);
	pid = test_kmallocd_spawn(sock, "4M", log, NULL);
	status = wait_exit(pid);
	read_text(log, text, sizeof(text));
	ck_assert_msg(status > 0, "kmallocd on %s: status %d, log:\n%s", sock, status, text);
	ck_assert_msg(strstr(text, why) != NULL, "kmallocd on %s did not say '%s':\n%s", sock, why,
		      text);
}

/* kmallocd listens at @sock, anyone may connect, the socket is srw-rw-rw-,
 * and SIGTERM stops it cleanly. */
static void assert_listens(const char *base, const char *sock)
{
	char log[192], text[8192];
	struct report rep;
	struct attacker ch;
	struct stat st;
	pid_t pid;
	int i, fd = -1, status;

	snprintf(log, sizeof(log), "%s/listens.log", base);
	pid = test_kmallocd_spawn(sock, "4M", log, NULL);
	for (i = 0; i < 1000 && fd < 0; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		fd = raw_connect_hello(sock, NULL, NULL);
		if (fd < 0)
			usleep(10000);
	}
	read_text(log, text, sizeof(text));
	ck_assert_msg(fd >= 0, "kmallocd does not listen on %s:\n%s", sock, text);
	close(fd);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0666);
	/* Any local user may connect. */
	fill_as(&ch, &rep, sock, NOBODY, NOBODY, 1);
	ck_assert_int_eq(rep.v[0], 1);
	attacker_finish(&ch);
	kill(pid, SIGTERM);
	status = wait_exit(pid);
	read_text(log, text, sizeof(text));
	ck_assert_msg(status == 0, "kmallocd on %s: status %d, log:\n%s", sock, status, text);
}

START_TEST(test_socket_directory)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char base[96], dir[160], sock[192], cmd[160], text[16];
	struct stat st;
	int fd;

	test_backing_prepare(4u << 20);
	snprintf(base, sizeof(base), "%s/kmlimits.XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(base));
	ck_assert_int_eq(chmod(base, 0755), 0);

	/* A directory that belongs to someone else. */
	snprintf(dir, sizeof(dir), "%s/nobodys", base);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(chown(dir, NOBODY, NOBODY), 0);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	assert_refused(base, sock, "belongs to uid 65534");
	ck_assert_int_ne(access(sock, F_OK), 0);

	/* One that anyone may write to, without the sticky bit. */
	snprintf(dir, sizeof(dir), "%s/open", base);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	assert_refused(base, sock, "writable by others");

	/* A symbolic link to a good directory. */
	snprintf(dir, sizeof(dir), "%s/good", base);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(sock, sizeof(sock), "%s/link", base);
	ck_assert_int_eq(symlink(dir, sock), 0);
	snprintf(sock, sizeof(sock), "%s/link/sock", base);
	assert_refused(base, sock, "symbolic link");
	snprintf(sock, sizeof(sock), "%s/good/sock", base);
	ck_assert_int_ne(access(sock, F_OK), 0);

	/* A file that is not a socket: refused, and left alone. */
	snprintf(sock, sizeof(sock), "%s/good/file", base);
	fd = open(sock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "keep", 4), 4);
	close(fd);
	assert_refused(base, sock, "is not a socket");
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	read_text(sock, text, sizeof(text));
	ck_assert_str_eq(text, "keep");

	/* Writable by all with the sticky bit, as /tmp: fine. */
	snprintf(dir, sizeof(dir), "%s/sticky", base);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	assert_listens(base, sock);

	/* A directory that is not there yet: made 0755, ours. */
	snprintf(dir, sizeof(dir), "%s/new", base);
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	assert_listens(base, sock);
	ck_assert_int_eq(lstat(dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	ck_assert_uint_eq(st.st_uid, geteuid());
	/* A clean stop takes its socket away. */
	ck_assert_int_ne(access(sock, F_OK), 0);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- main ------------------------------------------------------------------- */

static void add_case(Suite *s, const char *name, const TTest *test, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int main(void)
{
	static const char *const extra[] = {
		"--paranoid", "--hello-timeout",  "1",	  "--uid-max-connections",
		"8",	      "--max-clients",	  "64",	  "--reserved-connections",
		"8",	      "--uid-max-grants", "2000", NULL
	};
	Suite *s = suite_create("limits");

	if (!getenv("KMALLOCD") || !getenv("KMCTL")) {
		fprintf(stderr,
			"KMALLOCD and KMCTL must be set (run the tests through meson test)\n");
		return EXIT_FAILURE;
	}
	if (geteuid() != 0) {
		printf("SKIP: acting as other users needs root\n");
		return 77;
	}
	/* The main daemon's pool and the largest one a case starts, at once. */
	test_backing_prepare(POOL_SIZE + BIG_POOL_SIZE);
	add_case(s, "uid connection limit", test_uid_connection_limit, 60);
	add_case(s, "reserved connections", test_reserved_connections, 60);
	add_case(s, "silent connections", test_silent_connections_time_out, 60);
	add_case(s, "grant limit", test_grant_limit, 60);
	add_case(s, "clients that never read", test_clients_that_never_read, 60);
	add_case(s, "journal flood", test_journal_flood, 60);
	add_case(s, "allow lists", test_allow_lists, 60);
	add_case(s, "limits from the config file", test_limits_from_config_file, 60);
	add_case(s, "limits from flags", test_limits_from_flags, 60);
	add_case(s, "buddyinfo with many domains", test_buddyinfo_many_domains, 120);
	add_case(s, "large teardown", test_large_teardown_is_bounded, 120);
	add_case(s, "socket directory", test_socket_directory, 60);
	return test_daemon_main(&main_daemon, s, POOL_SIZE, extra);
}
