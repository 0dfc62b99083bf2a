// SPDX-License-Identifier: MIT
/*
 * kmctl.c - the inspector: subcommand table, options, one connection to
 * kmallocd speaking the raw protocol (proto/kmalloc.proto), Inspect paging,
 * the `top` loop, `map`'s frame paging and output file, and clients' commands
 * from /proc. It does not link libkmclient: it never maps the pool, so
 * the domain memfd that comes with the Welcome is closed on arrival. Requests
 * go one at a time, so a reply must carry the id just sent. Everything printed
 * comes from format.c; this file only fetches and reports errors.
 *
 * Exit status: 0 success, 1 an error (connection, daemon reply, output),
 * 2 a usage error.
 */
#include "config.h"
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "kmalloc.pb-c.h"
#include "wire.h"

#define KM_PROTOCOL_VERSION 1
#define KMCTL_REQUEST_MAX   256	       /* bytes: our requests are tiny */
#define KMCTL_RECV_TIMEOUT  10	       /* seconds to wait for any reply */
#define KMCTL_MAX_PAGES	    65536      /* a daemon that pages forever is broken */
#define KMCTL_MAX_FRAMES    (1u << 26) /* 128 TiB of 2 MiB frames: more is a broken reply */
#define KMCTL_COMM_MAX	    64	       /* bytes of /proc/<pid>/comm read (the kernel's is 16) */

/* Clients' commands read from /proc, by pid (NULL: unreadable). */
struct comm_cache {
	struct comm_entry {
		uint32_t pid;
		char *comm;
	} * entries;
	size_t nr, cap;
	int usable; /* 0 not checked yet, 1 the daemon's pids are ours, -1 not */
};

struct kmctl {
	const char *socket_path;
	const char *cmd; /* subcommand name, for messages */
	int sock;
	uint64_t next_id;
	uint8_t *buf; /* WIRE_MAX_REPLY bytes */
	bool json;
	double delay;		  /* seconds between `top` refreshes */
	unsigned long iterations; /* `top` refreshes, 0: until SIGINT */
	const char *svg_path;	  /* `map --svg`: write an SVG there ("-": stdout) */
	unsigned int width;	  /* `map --width`: cells per row, 0: the default */
	uint64_t frame_size;	  /* Welcome.frame_size */
	struct comm_cache comms;
};

/* Every page of one Inspect table; the rows point into the replies. */
struct pages {
	Kmalloc__Reply **replies;
	Kmalloc__InspectReply **inspect;
	size_t nr;
};

static volatile sig_atomic_t interrupted;

/* ------------------------------------------------------------------------ */
/* Talking to kmallocd                                                      */

/* kmctl: <subcommand>: <strerror>[: <daemon's message>][ (hint)] */
static void report(const struct kmctl *k, int err, const char *msg)
{
	fprintf(stderr, "kmctl: %s: %s", k->cmd, strerror(err));
	if (msg && msg[0])
		fprintf(stderr, ": %s", msg);
	/* Say why unless the daemon's message already does. */
	if (err == EACCES && (!msg || !strstr(msg, "admin")))
		fputs(" (inspection needs root or membership in kmallocd's admin group)", stderr);
	fputc('\n', stderr);
}

static int kmctl_connect(struct kmctl *k)
{
	struct timeval tv = { .tv_sec = KMCTL_RECV_TIMEOUT };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	if (strlen(k->socket_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "kmctl: cannot connect to %s: %s\n", k->socket_path,
			strerror(ENAMETOOLONG));
		return -1;
	}
	strcpy(addr.sun_path, k->socket_path);
	k->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (k->sock < 0) {
		fprintf(stderr, "kmctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(k->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = errno;
		fprintf(stderr, "kmctl: cannot connect to %s: %s%s\n", k->socket_path,
			strerror(err),
			err == ENOENT || err == ECONNREFUSED ? " (is kmallocd running?)" : "");
		close(k->sock);
		k->sock = -1;
		return -1;
	}
	/* A daemon that stops answering must not hang a script forever. */
	setsockopt(k->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

/*
 * Sends @req (its id is set here) and waits for its reply. Returns 0 with
 * *@out set to a reply of body @want, or -1 after reporting the error: a
 * transport failure, a reply with error != 0, or a reply of the wrong shape.
 */
static int kmctl_call(struct kmctl *k, Kmalloc__Request *req, Kmalloc__Reply__BodyCase want,
		      Kmalloc__Reply **out)
{
	uint8_t packet[KMCTL_REQUEST_MAX];
	Kmalloc__Reply *reply;
	size_t len;
	ssize_t n;
	int err;

	req->id = ++k->next_id;
	len = kmalloc__request__get_packed_size(req);
	if (len > sizeof(packet)) {
		report(k, EMSGSIZE, "request too large");
		return -1;
	}
	kmalloc__request__pack(req, packet);
	err = kmwire_send(k->sock, packet, len, NULL, 0, 0);
	/* A daemon that refused the connection left its reason in our queue
	 * before it hung up: read that rather than report the hang-up. */
	if (err && err != -EPIPE && err != -ECONNRESET) {
		report(k, -err, "sending to kmallocd");
		return -1;
	}
	/* The Welcome brings the domain memfd: fds NULL closes it at once. */
	n = kmwire_recv(k->sock, k->buf, WIRE_MAX_REPLY, NULL, 0, NULL, err ? MSG_DONTWAIT : 0);
	/* Closed with our request unread: ECONNRESET comes once, before
	 * the refusal queued ahead of it. */
	if (n == -ECONNRESET) {
		ssize_t again =
			kmwire_recv(k->sock, k->buf, WIRE_MAX_REPLY, NULL, 0, NULL, MSG_DONTWAIT);

		if (again > 0)
			n = again;
	}
	if (err && n <= 0) {
		report(k, -err, "sending to kmallocd");
		return -1;
	}
	if (n == 0) {
		report(k, ECONNRESET, "kmallocd closed the connection");
		return -1;
	}
	if (n < 0) {
		report(k, (int)-n, n == -EAGAIN ? "no reply from kmallocd" : "receiving a reply");
		return -1;
	}
	reply = kmalloc__reply__unpack(NULL, (size_t)n, k->buf);
	if (!reply) {
		report(k, EPROTO, "kmallocd sent a reply that does not decode");
		return -1;
	}
	if (reply->id == 0 && reply->error) {
		report(k, reply->error > 0 ? reply->error : EPROTO, reply->message);
		goto err_free;
	}
	if (reply->id != req->id) {
		report(k, EPROTO, "reply to an unknown request id");
		goto err_free;
	}
	if (reply->error) {
		report(k, reply->error > 0 ? reply->error : EPROTO, reply->message);
		goto err_free;
	}
	if (reply->body_case != want) {
		report(k, EPROTO, "kmallocd sent a reply of the wrong type");
		goto err_free;
	}
	*out = reply;
	return 0;

err_free:
	kmalloc__reply__free_unpacked(reply, NULL);
	return -1;
}

static int kmctl_hello(struct kmctl *k)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	Kmalloc__Reply *reply;
	int ret = 0;

	hello.version = KM_PROTOCOL_VERSION;
	hello.name = "kmctl";
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	if (kmctl_call(k, &req, KMALLOC__REPLY__BODY_WELCOME, &reply))
		return -1;
	if (!reply->welcome || reply->welcome->version != KM_PROTOCOL_VERSION) {
		report(k, EPROTO, "kmallocd speaks another protocol version");
		ret = -1;
	} else {
		k->frame_size = reply->welcome->frame_size;
	}
	kmalloc__reply__free_unpacked(reply, NULL);
	return ret;
}

static int fetch_meminfo(struct kmctl *k, Kmalloc__Reply **out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest body = KMALLOC__MEMINFO_REQUEST__INIT;

	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &body;
	if (kmctl_call(k, &req, KMALLOC__REPLY__BODY_MEMINFO, out))
		return -1;
	if (!(*out)->meminfo) {
		report(k, EPROTO, "empty meminfo reply");
		kmalloc__reply__free_unpacked(*out, NULL);
		return -1;
	}
	return 0;
}

static void pages_free(struct pages *p)
{
	size_t i;

	for (i = 0; i < p->nr; i++)
		kmalloc__reply__free_unpacked(p->replies[i], NULL);
	free(p->replies);
	free(p->inspect);
	memset(p, 0, sizeof(*p));
}

static int pages_add(struct pages *p, Kmalloc__Reply *reply)
{
	Kmalloc__Reply **replies;
	Kmalloc__InspectReply **inspect;

	replies = realloc(p->replies, (p->nr + 1) * sizeof(*replies));
	if (!replies)
		return -ENOMEM;
	p->replies = replies;
	inspect = realloc(p->inspect, (p->nr + 1) * sizeof(*inspect));
	if (!inspect)
		return -ENOMEM;
	p->inspect = inspect;
	p->replies[p->nr] = reply;
	p->inspect[p->nr] = reply->inspect;
	p->nr++;
	return 0;
}

/* Fetches every page of @table: ask again at next_offset until it is 0. */
static int fetch_table(struct kmctl *k, Kmalloc__Inspect__Table table, struct pages *out)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Inspect body = KMALLOC__INSPECT__INIT;
	Kmalloc__Reply *reply;
	uint32_t next;

	memset(out, 0, sizeof(*out));
	body.table = table;
	req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
	req.inspect = &body;
	do {
		if (kmctl_call(k, &req, KMALLOC__REPLY__BODY_INSPECT, &reply))
			goto err_free;
		if (!reply->inspect) {
			report(k, EPROTO, "empty inspect reply");
			goto err_reply;
		}
		next = reply->inspect->next_offset;
		if (pages_add(out, reply)) {
			report(k, ENOMEM, NULL);
			goto err_reply;
		}
		/* Offsets only move forward; anything else would loop forever. */
		if (next && (next <= body.offset || out->nr >= KMCTL_MAX_PAGES)) {
			report(k, EPROTO, "kmallocd returned a bad page offset");
			goto err_free;
		}
		body.offset = next;
	} while (next);
	return 0;

err_reply:
	kmalloc__reply__free_unpacked(reply, NULL);
err_free:
	pages_free(out);
	return -1;
}

/* ---- clients' commands --------------------------------------------------- */

/*
 * The pids in the daemon's rows are as the daemon sees them (SO_PEERCRED in
 * its pid namespace). They name the same processes here only when kmctl runs
 * in that namespace: the daemon's own pid (as this socket's peer) must be
 * visible, and its /proc/<pid>/ns/pid must be ours. Reading another uid's
 * ns link needs root (or CAP_SYS_PTRACE); without it the Hello names serve.
 */
static bool same_pid_namespace(int sock)
{
	char path[64], mine[128], theirs[128];
	struct ucred cred;
	socklen_t len = sizeof(cred);
	ssize_t a, b;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)cred.pid);
	a = readlink("/proc/self/ns/pid", mine, sizeof(mine));
	b = readlink(path, theirs, sizeof(theirs));
	return a > 0 && a < (ssize_t)sizeof(mine) && a == b && !memcmp(mine, theirs, (size_t)a);
}

/* /proc/<pid>/comm without its newline, malloc'd; NULL if unreadable. */
static char *read_comm(uint32_t pid)
{
	char path[64], buf[KMCTL_COMM_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] ? strdup(buf) : NULL;
}

/* format_table.comm: the command of @pid when it can be trusted to be the
 * daemon's client (same pid namespace), else NULL for its Hello name. A
 * client that exited since the daemon answered has no /proc entry; one
 * whose pid was reused meanwhile would show the new process's command: the
 * window is the time between the reply and this look-up. */
static const char *kmctl_comm(void *ctx, uint32_t pid)
{
	struct kmctl *k = ctx;
	struct comm_cache *cc = &k->comms;
	struct comm_entry *e;
	size_t i;

	if (!cc->usable)
		cc->usable = k->sock >= 0 && same_pid_namespace(k->sock) ? 1 : -1;
	if (cc->usable < 0)
		return NULL;
	for (i = 0; i < cc->nr; i++)
		if (cc->entries[i].pid == pid)
			return cc->entries[i].comm;
	if (cc->nr == cc->cap) {
		size_t cap = cc->cap ? 2 * cc->cap : 64;

		e = realloc(cc->entries, cap * sizeof(*e));
		if (!e)
			return NULL;
		cc->entries = e;
		cc->cap = cap;
	}
	e = &cc->entries[cc->nr++];
	e->pid = pid;
	e->comm = read_comm(pid);
	return e->comm;
}

static void comm_cache_free(struct comm_cache *cc)
{
	size_t i;

	for (i = 0; i < cc->nr; i++)
		free(cc->entries[i].comm);
	free(cc->entries);
	memset(cc, 0, sizeof(*cc));
}

/* ---- the frame map ----------------------------------------------------------- */

struct frames {
	uint32_t nr;
	uint8_t *kinds;
	uint32_t *domains;
};

static void frames_free(struct frames *fr)
{
	free(fr->kinds);
	free(fr->domains);
	memset(fr, 0, sizeof(*fr));
}

/* Takes one FrameMap page into @fr: @first is the frame asked for. */
static int frames_add(struct kmctl *k, struct frames *fr, uint32_t first,
		      const Kmalloc__FrameMap *map)
{
	size_t n = map->kinds.len, i;

	if (first == 0) {
		if (map->nr_frames > KMCTL_MAX_FRAMES) {
			report(k, EPROTO, "kmallocd sent a map of too many frames");
			return -1;
		}
		fr->nr = map->nr_frames;
		fr->kinds = malloc(fr->nr ? fr->nr : 1);
		fr->domains = calloc(fr->nr ? fr->nr : 1, sizeof(*fr->domains));
		if (!fr->kinds || !fr->domains) {
			report(k, ENOMEM, NULL);
			return -1;
		}
	}
	if (map->nr_frames != fr->nr || map->first != first || (!n && first < fr->nr) ||
	    n > fr->nr - first) {
		report(k, EPROTO, "kmallocd sent a frame map page that does not fit");
		return -1;
	}
	memcpy(fr->kinds + first, map->kinds.data, n);
	/* A page without domains: every frame's is unknown, 0. */
	for (i = 0; i < n && i < map->n_domains; i++)
		fr->domains[first + i] = map->domains[i];
	return 0;
}

/* Every frame of the pool: TABLE_MAP pages by frames, Inspect.offset the
 * first wanted, until a page reaches FrameMap.nr_frames. */
static int fetch_frames(struct kmctl *k, struct frames *fr)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Inspect body = KMALLOC__INSPECT__INIT;
	Kmalloc__Reply *reply;
	uint32_t got = 0;
	int err;

	memset(fr, 0, sizeof(*fr));
	body.table = KMALLOC__INSPECT__TABLE__TABLE_MAP;
	req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
	req.inspect = &body;
	do {
		body.offset = got;
		if (kmctl_call(k, &req, KMALLOC__REPLY__BODY_INSPECT, &reply))
			goto err_free;
		if (!reply->inspect || !reply->inspect->map) {
			report(k, EPROTO, "kmallocd sent no frame map");
			err = -1;
		} else {
			err = frames_add(k, fr, got, reply->inspect->map);
			got += (uint32_t)reply->inspect->map->kinds.len;
		}
		kmalloc__reply__free_unpacked(reply, NULL);
		if (err)
			goto err_free;
	} while (got < fr->nr);
	return 0;

err_free:
	frames_free(fr);
	return -1;
}

static int print_result(struct kmctl *k, int err)
{
	if (err) {
		report(k, -err, "writing the output");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Subcommands                                                              */

static int cmd_meminfo(struct kmctl *k)
{
	Kmalloc__Reply *reply;
	int ret;

	if (fetch_meminfo(k, &reply))
		return -1;
	ret = print_result(k, format_meminfo(stdout, reply->meminfo, k->json));
	kmalloc__reply__free_unpacked(reply, NULL);
	return ret;
}

static int cmd_table(struct kmctl *k, Kmalloc__Inspect__Table table,
		     int (*format)(FILE *, const struct format_table *, bool))
{
	struct format_table t;
	struct pages p;
	int ret;

	if (fetch_table(k, table, &p))
		return -1;
	t = (struct format_table){
		.pages = p.inspect, .nr_pages = p.nr, .comm = kmctl_comm, .comm_ctx = k
	};
	ret = print_result(k, format(stdout, &t, k->json));
	pages_free(&p);
	return ret;
}

static int cmd_slabinfo(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_SLABINFO, format_slabinfo);
}

static int cmd_buddyinfo(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_BUDDYINFO, format_buddyinfo);
}

static int cmd_vmallocinfo(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_VMALLOCINFO, format_vmallocinfo);
}

/* Colours on a terminal, unless NO_COLOR (no-color.org) or TERM=dumb. */
static bool want_colour(void)
{
	const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");

	return isatty(STDOUT_FILENO) && !(no_color && no_color[0]) &&
	       !(term && !strcmp(term, "dumb"));
}

static int write_svg(struct kmctl *k, const struct format_map *m)
{
	bool to_stdout = !strcmp(k->svg_path, "-");
	FILE *f = to_stdout ? stdout : fopen(k->svg_path, "we");
	int err;

	if (!f) {
		fprintf(stderr, "kmctl: %s: cannot write %s: %s\n", k->cmd, k->svg_path,
			strerror(errno));
		return -1;
	}
	err = format_map_svg(f, m);
	if (!to_stdout && fclose(f) && !err)
		err = -errno;
	if (err) {
		fprintf(stderr, "kmctl: %s: writing %s: %s\n", k->cmd, k->svg_path, strerror(-err));
		return -1;
	}
	return 0;
}

static int cmd_map(struct kmctl *k)
{
	struct format_map m;
	struct frames fr;
	int ret;

	if (fetch_frames(k, &fr))
		return -1;
	m = (struct format_map){ .nr_frames = fr.nr,
				 .kinds = fr.kinds,
				 .domains = fr.domains,
				 .frame_size = k->frame_size,
				 .width = k->width };
	if (k->svg_path)
		ret = write_svg(k, &m);
	else
		ret = print_result(k, format_map(stdout, &m,
						 k->json	 ? FORMAT_MAP_JSON
						 : want_colour() ? FORMAT_MAP_COLOUR
								 : FORMAT_MAP_PLAIN));
	frames_free(&fr);
	return ret;
}

static int cmd_clients(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_CLIENTS, format_clients);
}

static int cmd_shares(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_SHARES, format_shares);
}

static int cmd_limits(struct kmctl *k)
{
	return cmd_table(k, KMALLOC__INSPECT__TABLE__TABLE_ACCOUNTS, format_limits);
}

static int cmd_stats(struct kmctl *k)
{
	struct pages p;
	int ret;

	if (fetch_table(k, KMALLOC__INSPECT__TABLE__TABLE_LOOP, &p))
		return -1;
	if (p.nr != 1 || p.inspect[0]->n_loop != 1) {
		report(k, EPROTO, "kmallocd sent no event loop figures");
		pages_free(&p);
		return -1;
	}
	ret = print_result(k, format_stats(stdout, p.inspect[0]->loop[0], k->json));
	pages_free(&p);
	return ret;
}

static void on_sigint(int sig)
{
	interrupted = 1;
}

/* Sleeps @seconds unless SIGINT arrives first. */
static void top_sleep(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds };

	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);

	while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int top_once(struct kmctl *k, bool clear)
{
	struct format_table slab_t, client_t;
	struct pages slabs, clients;
	Kmalloc__Reply *mi;
	int ret = -1;

	if (fetch_meminfo(k, &mi))
		return -1;
	if (fetch_table(k, KMALLOC__INSPECT__TABLE__TABLE_SLABINFO, &slabs))
		goto out_mi;
	if (fetch_table(k, KMALLOC__INSPECT__TABLE__TABLE_CLIENTS, &clients))
		goto out_slabs;
	slab_t = (struct format_table){ .pages = slabs.inspect, .nr_pages = slabs.nr };
	client_t = (struct format_table){ .pages = clients.inspect, .nr_pages = clients.nr };
	/* Home the cursor and clear the screen, as top(1) does on a terminal. */
	if (clear)
		fputs("\033[H\033[2J", stdout);
	ret = print_result(k, format_top(stdout, mi->meminfo, &slab_t, &client_t, k->json));
	if (!ret && fflush(stdout)) {
		report(k, errno, "writing the output");
		ret = -1;
	}
	pages_free(&clients);
out_slabs:
	pages_free(&slabs);
out_mi:
	kmalloc__reply__free_unpacked(mi, NULL);
	return ret;
}

static int cmd_top(struct kmctl *k)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	bool clear = !k->json && isatty(STDOUT_FILENO);
	unsigned long i;

	/* No SA_RESTART: SIGINT must cut the sleep short. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (i = 0; !k->iterations || i < k->iterations; i++) {
		if (i)
			top_sleep(k->delay);
		if (interrupted)
			break;
		if (top_once(k, clear))
			return -1;
	}
	return 0;
}

struct subcommand {
	const char *name;
	int (*run)(struct kmctl *k);
	const char *help;
};

static const struct subcommand subcommands[] = {
	{ "meminfo", cmd_meminfo, "pool totals, as /proc/meminfo" },
	{ "slabinfo", cmd_slabinfo, "slab caches, as /proc/slabinfo 2.1 (slabtop's input)" },
	{ "buddyinfo", cmd_buddyinfo, "free blocks per order per domain, as /proc/buddyinfo" },
	{ "vmallocinfo", cmd_vmallocinfo, "vmalloc areas, as /proc/vmallocinfo, and their owners" },
	{ "map", cmd_map, "the pool, one cell per frame: what it holds, which domain" },
	{ "clients", cmd_clients, "connected clients and what they hold" },
	{ "shares", cmd_shares, "live share handles: exporter, holders, restrictions, age" },
	{ "limits", cmd_limits, "each uid's connections, grants and bytes against its limits" },
	{ "stats", cmd_stats, "how long requests and teardowns held the daemon's loop" },
	{ "top", cmd_top, "slabtop-like summary and clients by bytes, refreshed" },
};

/* ------------------------------------------------------------------------ */
/* Command line                                                             */

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: kmctl [OPTIONS] SUBCOMMAND\n"
		   "Inspect the kmalloc broker kmallocd (needs root or its admin group).\n"
		   "\n"
		   "Subcommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -s, --socket PATH      daemon socket (default: $KMALLOC_SOCKET, else %s)\n"
		"  -j, --json             print one JSON document instead of text\n"
		"                         (top: one document per refresh)\n"
		"  -d, --delay SECONDS    top: time between refreshes (default 1)\n"
		"  -n, --iterations N     top: exit after N refreshes (default: until SIGINT)\n"
		"      --svg FILE         map: write an SVG picture to FILE (- for stdout)\n"
		"  -w, --width N          map: frames per row (default %d, at most %d)\n"
		"  -h, --help             show this help\n"
		"  -V, --version          show the version\n"
		"\n"
		"Options may also follow the subcommand (kmctl map --svg pool.svg).\n",
		KM_DEFAULT_SOCKET, FORMAT_MAP_WIDTH, FORMAT_MAP_WIDTH_MAX);
}

static const struct subcommand *find_subcommand(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(subcommands[i].name, name))
			return &subcommands[i];
	return NULL;
}

/* A --delay: seconds, > 0 and at most a day. */
static bool parse_delay(const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	return !errno && end != arg && !*end && *out > 0 && *out <= 86400;
}

/* An --iterations count: >= 1. */
static bool parse_iterations(const char *arg, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(arg, &end, 10);
	return !errno && end != arg && !*end && *out && arg[0] != '-';
}

/* A --width: frames per row, 1 .. FORMAT_MAP_WIDTH_MAX. */
static bool parse_width(const char *arg, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	*out = (unsigned int)v;
	return !errno && end != arg && !*end && arg[0] != '-' && v >= 1 &&
	       v <= FORMAT_MAP_WIDTH_MAX;
}

/* Options given that apply to one subcommand only. */
struct only_options {
	bool top; /* -d, -n */
	bool map; /* --svg, --width */
};

#define OPT_SVG 256 /* --svg: no short form */

/* The options (before or after the subcommand: getopt_long() permutes), into
 * @k; @only tells which that apply to one subcommand were given. Returns -1
 * to go on, else the exit status (0 after --help or --version, 2 for a usage
 * error). */
static int parse_options(struct kmctl *k, int argc, char **argv, struct only_options *only)
{
	static const struct option options[] = { { "socket", required_argument, NULL, 's' },
						 { "json", no_argument, NULL, 'j' },
						 { "delay", required_argument, NULL, 'd' },
						 { "iterations", required_argument, NULL, 'n' },
						 { "svg", required_argument, NULL, OPT_SVG },
						 { "width", required_argument, NULL, 'w' },
						 { "help", no_argument, NULL, 'h' },
						 { "version", no_argument, NULL, 'V' },
						 {} };
	int opt;

	while ((opt = getopt_long(argc, argv, "s:jd:n:w:hV", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			k->socket_path = optarg;
			break;
		case 'j':
			k->json = true;
			break;
		case 'd':
			if (!parse_delay(optarg, &k->delay)) {
				fprintf(stderr, "kmctl: invalid delay '%s' (seconds, > 0)\n",
					optarg);
				return 2;
			}
			only->top = true;
			break;
		case 'n':
			if (!parse_iterations(optarg, &k->iterations)) {
				fprintf(stderr, "kmctl: invalid iteration count '%s' (>= 1)\n",
					optarg);
				return 2;
			}
			only->top = true;
			break;
		case OPT_SVG:
			if (!optarg[0]) {
				fputs("kmctl: --svg needs a file name\n", stderr);
				return 2;
			}
			k->svg_path = optarg;
			only->map = true;
			break;
		case 'w':
			if (!parse_width(optarg, &k->width)) {
				fprintf(stderr, "kmctl: invalid width '%s' (1 to %d frames)\n",
					optarg, FORMAT_MAP_WIDTH_MAX);
				return 2;
			}
			only->map = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("kmctl %s (protocol %d)\n", PACKAGE_VERSION, KM_PROTOCOL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

/* The subcommand at argv[optind], alone after the options; NULL after
 * saying what is wrong. */
static const struct subcommand *parse_subcommand(const struct kmctl *k, int argc, char **argv,
						 const struct only_options *only)
{
	const struct subcommand *sub;

	if (optind >= argc) {
		fputs("kmctl: no subcommand given\n", stderr);
		usage(stderr);
		return NULL;
	}
	sub = find_subcommand(argv[optind]);
	if (!sub) {
		fprintf(stderr, "kmctl: unknown subcommand '%s'\n", argv[optind]);
		usage(stderr);
		return NULL;
	}
	if (optind + 1 < argc) {
		fprintf(stderr, "kmctl: %s: unexpected argument '%s'\n", sub->name,
			argv[optind + 1]);
		return NULL;
	}
	if (only->top && sub->run != cmd_top) {
		fprintf(stderr, "kmctl: %s: -d and -n apply to top only\n", sub->name);
		return NULL;
	}
	if (only->map && sub->run != cmd_map) {
		fprintf(stderr, "kmctl: %s: --svg and --width apply to map only\n", sub->name);
		return NULL;
	}
	if (k->svg_path && k->json) {
		fprintf(stderr, "kmctl: %s: --svg and --json do not go together\n", sub->name);
		return NULL;
	}
	return sub;
}

/* Connects, says Hello, runs @sub and flushes its output. The exit status. */
static int run_subcommand(struct kmctl *k, const struct subcommand *sub)
{
	int ret;

	k->buf = malloc(WIRE_MAX_REPLY);
	if (!k->buf) {
		report(k, ENOMEM, NULL);
		return 1;
	}
	ret = kmctl_connect(k);
	if (!ret)
		ret = kmctl_hello(k);
	if (!ret)
		ret = sub->run(k);
	if (k->sock >= 0)
		close(k->sock);
	free(k->buf);
	comm_cache_free(&k->comms);
	if (fflush(stdout) || ferror(stdout)) {
		if (!ret)
			report(k, errno ? errno : EIO, "writing the output");
		ret = -1;
	}
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct kmctl k = { .sock = -1, .delay = 1.0 };
	struct only_options only = { 0 };
	const struct subcommand *sub;
	int ret;

	ret = parse_options(&k, argc, argv, &only);
	if (ret >= 0)
		return ret;
	sub = parse_subcommand(&k, argc, argv, &only);
	if (!sub)
		return 2;
	k.cmd = sub->name;
	if (!k.socket_path)
		k.socket_path = getenv("KMALLOC_SOCKET");
	if (!k.socket_path || !k.socket_path[0])
		k.socket_path = KM_DEFAULT_SOCKET;
	return run_subcommand(&k, sub);
}
