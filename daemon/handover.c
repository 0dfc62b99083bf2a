// SPDX-License-Identifier: MIT
/*
 * handover.c - the state one kmallocd hands to the next across exec.
 *
 * Layout of the state memfd, all native-endian fixed-size records (the same
 * build reads what it wrote; the version field refuses anything else):
 *   header | owner[nr_frames] | domains | connections | grants (each followed
 *   by its vmalloc frames) | queued packets (each followed by its bytes)
 * Everything else is derived again on the way in, through the allocators'
 * own _at variants (grant_restore_*()): a domain starts with every frame it
 * owns free, and each grant takes back exactly its object, slab, pages or
 * frames, so a slab is remade by the first object found in it, and a grant
 * that overlaps another or lies outside its domain is refused. Empty slabs
 * are given back before the handover; every counter is recounted, and
 * domain_check() must pass before the new daemon serves.
 *
 * What went missing in between costs only its owners: a connection whose
 * descriptor did not come back (its client died while no daemon ran, and
 * systemd dropped it, or it hung up) is a client that died, so its grants
 * are rebuilt and then given back; a domain whose memfd did not come back or
 * cannot be used (mapped, sealed) loses its clients, and its frames go back
 * to the pool (or to quarantine, frame.h). A state that does not add up is
 * refused whole: it cannot be trusted for anyone.
 */
#include "config.h"
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "conn.h"
#include "domain.h"
#include "grant.h"
#include "log.h"
#include "loopstat.h"
#include "notify.h"
#include "reaper.h"
#include "server.h"
#include "share.h"
#include "vmalloc.h"

#define HANDOVER_MAGIC	 0x31524556484d4b00ull /* "\0KMHVER1" */
#define HANDOVER_VERSION 4u		       /* 4: shares (memobjs, shares, handles) */

struct ho_header {
	uint64_t magic;
	uint32_t version;
	uint32_t hugetlb;
	uint64_t pool_size;
	uint64_t max_generation; /* of grant ids */
	uint32_t nr_frames;
	uint32_t nr_domains;
	uint32_t nr_conns;
	uint32_t nr_grants;
	uint32_t nr_packets;
	int32_t listen_fd;
	int32_t reserve_fd;
	uint32_t own_socket;
	uint64_t next_conn_id;
	uint64_t requests;
	uint32_t nr_memobjs; /* each followed by its frames, shares and handles */
	uint32_t pad;
	uint64_t next_handle_id, next_share_id, next_memobj_id;
};

/* A memory object (share.h); VMALLOC kinds: its area's frames follow. */
struct ho_memobj {
	uint64_t id;
	uint64_t bytes;
	uint64_t phys;
	uint64_t size;	/* VMALLOC kinds: the area's bytes asked for */
	uint64_t vaddr; /* VMALLOC kinds */
	uint32_t domain;
	uint32_t kind;
	int32_t cache;
	uint32_t order;
	int32_t memfd;	      /* MEMFD kinds */
	uint32_t nr_frames;   /* MEMFD kinds: frames in the memfd */
	uint32_t area_frames; /* VMALLOC kinds: frames that follow */
	uint32_t nr_refs;     /* grants that hold it: checked on the way back */
	uint32_t nr_shares;   /* that follow (after the frames) */
	uint32_t pad;
	char caller[VMALLOC_CALLER_LEN];
};

struct ho_share {
	uint64_t id, offset, size, conn_id, age_ns;
	int32_t pid;
	uint32_t uid;
	uint32_t nr_handles; /* that follow */
	uint32_t pad;
	char name[32];
};

struct ho_handle {
	uint64_t id;
	uint64_t age_ns;
	int64_t expires_in_ms; /* -1: never */
	uint32_t creator, flags, uid, max_imports, imports, revoked;
	uint8_t secret[SHARE_SECRET_SIZE];
};

struct ho_domain {
	uint32_t id;
	uint32_t uid;
	int32_t memfd;
	uint32_t pad;
	uint64_t phantom_punches;
};

struct ho_conn {
	uint64_t id;
	int32_t fd;
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
	uint32_t admin;
	uint32_t state;
	uint32_t domain; /* 0 before Hello */
	char name[32];
	uint8_t token[CONN_TOKEN_SIZE];
};

struct ho_grant {
	uint64_t id;
	uint64_t conn;
	uint64_t phys;	/* KMALLOC, SLAB; MEMREF: the memobj's id; IMPORT: the share's */
	uint64_t size;	/* VMALLOC: bytes asked for; IMPORT: the handle's id */
	uint64_t vaddr; /* VMALLOC */
	uint32_t kind;
	int32_t cache;	    /* KMALLOC: class, -1 for large; SLAB: class */
	uint32_t order;	    /* KMALLOC large: page order; IMPORT: read-only */
	uint32_t nr_frames; /* VMALLOC: frames follow, padded to 8 bytes */
	char caller[VMALLOC_CALLER_LEN];
};

struct ho_packet {
	uint64_t conn;
	uint32_t len;	       /* bytes follow, padded to 8 */
	uint32_t domain_fd;    /* the packet carries this domain's memfd, or 0 */
	uint64_t share_fd;     /* or this memobj's memfd (share.h), or 0 */
	uint32_t share_rdonly; /* its read-only descriptor */
	uint32_t pad;
};

/* ---- writing ----------------------------------------------------------- */

struct ho_buf {
	uint8_t *data;
	size_t len, cap;
	bool failed;
};

static void *ho_put(struct ho_buf *b, const void *src, size_t len)
{
	size_t padded = (len + 7) & ~(size_t)7;
	void *dst;

	if (b->failed)
		return NULL;
	if (b->len + padded > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		uint8_t *grown;

		while (cap < b->len + padded)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown) {
			b->failed = true;
			return NULL;
		}
		b->data = grown;
		b->cap = cap;
	}
	dst = b->data + b->len;
	memset(dst, 0, padded);
	if (src)
		memcpy(dst, src, len);
	b->len += padded;
	return dst;
}

static int set_cloexec(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -errno;
	flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

/* Every descriptor the new image needs, CLOEXEC off (@keep) or back on. */
static int keep_fds(struct server *srv, bool keep, int state_fd)
{
	struct memobj *o;
	struct domain *d;
	struct conn *c;
	int err = 0;

	err |= set_cloexec(srv->listen_fd, !keep);
	err |= set_cloexec(srv->mm.pool.reserve_fd, !keep);
	err |= set_cloexec(state_fd, !keep);
	TAILQ_FOREACH(d, &srv->mm.domains, link)
		err |= set_cloexec(d->memfd, !keep);
	TAILQ_FOREACH(o, &srv->grants.shares->memobjs, link)
		if (o->memfd >= 0)
			err |= set_cloexec(o->memfd, !keep);
	TAILQ_FOREACH(c, &srv->conns, link)
		err |= set_cloexec(c->fd, !keep);
	return err ? -EBADF : 0;
}

/* True when @a and @b are the same file: a queued packet holds its own
 * duplicate of the descriptor it carries, never the same number. */
static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return a >= 0 && b >= 0 && !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static uint32_t domain_of_fd(const struct server *srv, int fd)
{
	const struct domain *d;

	TAILQ_FOREACH(d, &srv->mm.domains, link)
		if (same_file(d->memfd, fd))
			return d->id;
	return 0;
}

/* The memobj whose memfd @fd is (0 if none), and whether @fd is read-only. */
static uint64_t memobj_of_fd(const struct server *srv, int fd, uint32_t *rdonly)
{
	const struct memobj *o;

	TAILQ_FOREACH(o, &srv->grants.shares->memobjs, link) {
		if (same_file(o->memfd, fd)) {
			*rdonly = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY;
			return o->id;
		}
	}
	return 0;
}

/* The grants of @c, each followed by its vmalloc frames. Returns how many. */
static uint32_t write_grants(struct ho_buf *b, const struct conn *c)
{
	uint32_t i;

	for (i = 0; i < c->grants.nr; i++) {
		const struct grant *g = grant_set_at(&c->grants, i);
		struct ho_grant hg = { .id = g->id,
				       .conn = c->id,
				       .kind = g->kind,
				       .cache = g->cache,
				       .order = g->order };

		if (g->kind == GRANT_VMALLOC) {
			hg.size = g->area->size;
			hg.vaddr = g->area->vaddr;
			hg.nr_frames = g->area->nr_frames;
			memcpy(hg.caller, g->area->caller, sizeof(hg.caller));
		} else if (g->kind == GRANT_MEMREF) {
			hg.phys = g->ref->obj->id;
		} else if (g->kind == GRANT_IMPORT) {
			hg.phys = g->ref->share->id;
			hg.size = g->ref->handle_id;
			hg.order = g->flags & GRANT_RDONLY;
		} else {
			hg.phys = g->phys;
		}
		ho_put(b, &hg, sizeof(hg));
		if (g->kind == GRANT_VMALLOC)
			ho_put(b, g->area->frames, g->area->nr_frames * sizeof(uint32_t));
	}
	return i;
}

static void write_handle(struct ho_buf *b, const struct share_handle *h, uint64_t now)
{
	struct ho_handle hh = { .id = h->id,
				.age_ns = now - h->created_ns,
				.expires_in_ms = -1,
				.creator = h->creator,
				.flags = h->flags,
				.uid = h->uid,
				.max_imports = h->max_imports,
				.imports = h->imports,
				.revoked = h->revoked };

	if (h->expiry_ns)
		hh.expires_in_ms =
			h->expiry_ns > now ? (int64_t)((h->expiry_ns - now) / 1000000) + 1 : 0;
	memcpy(hh.secret, h->secret, sizeof(hh.secret));
	ho_put(b, &hh, sizeof(hh));
}

static void write_share(struct ho_buf *b, const struct share *s, uint64_t now)
{
	struct ho_share hs = { .id = s->id,
			       .offset = s->offset,
			       .size = s->size,
			       .conn_id = s->conn_id,
			       .age_ns = now - s->created_ns,
			       .pid = s->pid,
			       .uid = s->uid };
	const struct share_handle *h;

	TAILQ_FOREACH(h, &s->handles, link)
		hs.nr_handles++;
	memcpy(hs.name, s->name, sizeof(hs.name));
	ho_put(b, &hs, sizeof(hs));
	TAILQ_FOREACH(h, &s->handles, link)
		write_handle(b, h, now);
}

/* Every memobj, each followed by its area's frames, its shares and their
 * handles. Returns how many. */
static uint32_t write_memobjs(struct ho_buf *b, const struct share_table *t)
{
	uint64_t now = loopstat_now_ns();
	const struct memobj *o;
	const struct share *s;
	uint32_t n = 0;

	TAILQ_FOREACH(o, &t->memobjs, link) {
		struct ho_memobj hm = { .id = o->id,
					.bytes = o->bytes,
					.phys = o->phys,
					.domain = o->d->id,
					.kind = o->kind,
					.cache = o->cache,
					.order = o->order,
					.memfd = o->memfd,
					.nr_frames = o->nr_frames,
					.nr_refs = o->nr_refs };

		if (o->area) {
			hm.size = o->area->size;
			hm.vaddr = o->area->vaddr;
			hm.area_frames = o->area->nr_frames;
			memcpy(hm.caller, o->area->caller, sizeof(hm.caller));
		}
		TAILQ_FOREACH(s, &o->shares, link)
			hm.nr_shares++;
		ho_put(b, &hm, sizeof(hm));
		if (o->area)
			ho_put(b, o->area->frames, o->area->nr_frames * sizeof(uint32_t));
		TAILQ_FOREACH(s, &o->shares, link)
			write_share(b, s, now);
		n++;
	}
	return n;
}

/* The replies queued for @c, each followed by its bytes. Returns how many. */
static uint32_t write_packets(struct ho_buf *b, const struct server *srv, const struct conn *c)
{
	const struct conn_packet *p;
	uint32_t n = 0;

	for (p = c->outq; p; p = p->next) {
		struct ho_packet hp = { .conn = c->id,
					.len = (uint32_t)p->len,
					.domain_fd = p->fd >= 0 ? domain_of_fd(srv, p->fd) : 0 };

		if (p->fd >= 0 && !hp.domain_fd)
			hp.share_fd = memobj_of_fd(srv, p->fd, &hp.share_rdonly);

		ho_put(b, &hp, sizeof(hp));
		ho_put(b, p->data, p->len);
		n++;
	}
	return n;
}

static int handover_write(struct server *srv, struct ho_buf *b)
{
	struct ho_header h = {
		.magic = HANDOVER_MAGIC,
		.version = HANDOVER_VERSION,
		.hugetlb = srv->mm.pool.hugetlb,
		.pool_size = srv->mm.pool.size,
		.max_generation = srv->grants.max_gen,
		.nr_frames = srv->mm.pool.nr_frames,
		.next_conn_id = srv->next_conn_id,
		.listen_fd = srv->listen_fd,
		.reserve_fd = srv->mm.pool.reserve_fd,
		.own_socket = srv->own_socket,
		.requests = srv->requests,
	};
	struct domain *d;
	struct conn *c;

	ho_put(b, &h, sizeof(h));
	ho_put(b, srv->mm.frames.owner, srv->mm.pool.nr_frames * sizeof(uint32_t));
	TAILQ_FOREACH(d, &srv->mm.domains, link) {
		struct ho_domain hd = { .id = d->id,
					.uid = d->uid,
					.memfd = d->memfd,
					.phantom_punches = d->phantom_punches };

		ho_put(b, &hd, sizeof(hd));
		h.nr_domains++;
	}
	TAILQ_FOREACH(c, &srv->conns, link) {
		struct ho_conn hc = { .id = c->id,
				      .fd = c->fd,
				      .pid = c->pid,
				      .uid = c->uid,
				      .gid = c->gid,
				      .admin = c->admin,
				      .state = c->state,
				      .domain = c->domain ? c->domain->id : 0 };

		memcpy(hc.name, c->name, sizeof(hc.name));
		memcpy(hc.token, c->token, sizeof(hc.token));
		ho_put(b, &hc, sizeof(hc));
		h.nr_conns++;
	}
	h.nr_memobjs = write_memobjs(b, srv->grants.shares);
	h.next_handle_id = srv->grants.shares->next_handle_id;
	h.next_share_id = srv->grants.shares->next_share_id;
	h.next_memobj_id = srv->grants.shares->next_memobj_id;
	TAILQ_FOREACH(c, &srv->conns, link)
		h.nr_grants += write_grants(b, c);
	TAILQ_FOREACH(c, &srv->conns, link)
		h.nr_packets += write_packets(b, srv, c);
	if (b->failed)
		return -ENOMEM;
	/* The counts are known now; the buffer may have moved. */
	memcpy(b->data, &h, sizeof(h));
	return 0;
}

/* The state, in a new memfd (CLOEXEC); *len its size. */
static int handover_state_memfd(struct server *srv, int *out, size_t *len)
{
	struct ho_buf b = { 0 };
	struct domain *d;
	int fd, err;

	/* Closing connections finish giving back, and empty slabs go back:
	 * the state then holds neither. */
	conn_reap_all(srv);
	TAILQ_FOREACH(d, &srv->mm.domains, link)
		domain_shrink(d);
	err = handover_write(srv, &b);
	if (err)
		goto out;
	fd = memfd_create("kmallocd-state", MFD_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (write(fd, b.data, b.len) != (ssize_t)b.len || lseek(fd, 0, SEEK_SET) < 0) {
		err = -EIO;
		close(fd);
		goto out;
	}
	*out = fd;
	*len = b.len;
out:
	free(b.data);
	return err;
}

int handover_exec(struct server *srv, char *const *argv)
{
	char value[16];
	size_t len = 0;
	int fd, err;

	err = handover_state_memfd(srv, &fd, &len);
	if (err)
		goto out;
	err = keep_fds(srv, true, fd);
	if (!err) {
		snprintf(value, sizeof(value), "%d", fd);
		setenv(HANDOVER_ENV, value, 1);
		log_notice("handing over to a new kmallocd: %u clients, %zu grants, %zu bytes of "
			   "state",
			   srv->nr_conns, srv->grants.count, len);
		/* Threads do not survive exec: close what the reaper holds. */
		reaper_stop();
		/* The binary by its name, so that an upgraded one is what runs;
		 * the running image itself if that name is gone. */
		execvp(argv[0], argv);
		execv("/proc/self/exe", argv);
		err = -errno;
		unsetenv(HANDOVER_ENV);
		reaper_start();
	}
	keep_fds(srv, false, fd);
	close(fd);
out:
	log_err("handover failed, this daemon keeps serving: %s", strerror(-err));
	return err;
}

/* ---- systemd's fd store ---------------------------------------------------- */

/* Calls @fn(srv, fd, name) for every descriptor the state names, the state
 * itself excluded; stops at the first error. */
static int for_each_named_fd(struct server *srv, int (*fn)(struct server *, int, const char *))
{
	struct memobj *o;
	char name[64];
	struct domain *d;
	struct conn *c;
	int err;

	err = fn(srv, srv->mm.pool.reserve_fd, "kmallocd-reserve");
	if (!err && srv->own_socket)
		err = fn(srv, srv->listen_fd, "kmallocd-listen");
	for (d = TAILQ_FIRST(&srv->mm.domains); d && !err; d = TAILQ_NEXT(d, link)) {
		snprintf(name, sizeof(name), "kmallocd-domain-%u", d->id);
		err = fn(srv, d->memfd, name);
	}
	for (o = TAILQ_FIRST(&srv->grants.shares->memobjs); o && !err; o = TAILQ_NEXT(o, link)) {
		if (o->memfd < 0)
			continue;
		snprintf(name, sizeof(name), "kmallocd-share-%" PRIu64, o->id);
		err = fn(srv, o->memfd, name);
	}
	for (c = TAILQ_FIRST(&srv->conns); c && !err; c = TAILQ_NEXT(c, link)) {
		snprintf(name, sizeof(name), "kmallocd-conn-%" PRIu64, c->id);
		err = fn(srv, c->fd, name);
	}
	return err;
}

static int store_one(struct server *srv, int fd, const char *name)
{
	return notify_fdstore(fd, name);
}

static int forget_one(struct server *srv, int fd, const char *name)
{
	notify_fdstore_remove(name);
	return 0;
}

int handover_store(struct server *srv)
{
	size_t len = 0;
	int fd, err;

	err = handover_state_memfd(srv, &fd, &len);
	if (err)
		goto fail;
	err = for_each_named_fd(srv, store_one);
	if (!err)
		err = notify_fdstore(fd, "kmallocd-state");
	close(fd);
	if (!err) {
		log_notice("state (%zu bytes) and descriptors of %u clients, %zu grants kept in "
			   "systemd's fd store for the next kmallocd",
			   len, srv->nr_conns, srv->grants.count);
		return 0;
	}
	for_each_named_fd(srv, forget_one);
	notify_fdstore_remove("kmallocd-state");
fail:
	log_err("cannot keep the state in systemd's fd store (%s): stopping without it",
		strerror(-err));
	return err;
}

void handover_store_open(struct handover_store *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	st->state_fd = -1;
	st->listen_fd = -1;
	st->n = notify_listen_fds(&st->fds, &st->names);
	st->used = calloc(st->n ? (size_t)st->n : 1, sizeof(*st->used));
	for (i = 0; i < st->n; i++) {
		fcntl(st->fds[i], F_SETFD, FD_CLOEXEC);
		if (!strcmp(st->names[i], "kmallocd-state"))
			st->state_fd = st->fds[i];
		else if (strncmp(st->names[i], "kmallocd-", 9) && st->listen_fd < 0 &&
			 notify_is_listening_seqpacket(st->fds[i]))
			st->listen_fd = st->fds[i];
	}
	/* Ours from here on, whatever happens to the rest. */
	for (i = 0; i < st->n && st->used; i++)
		st->used[i] = st->fds[i] == st->state_fd || st->fds[i] == st->listen_fd;
}

void handover_store_close(struct handover_store *st)
{
	int i;

	/* What a previous kmallocd stored is in our hands now (restored, or of
	 * no use without a state): systemd lets go of every entry, and what
	 * the state did not name is closed. */
	for (i = 0; i < st->n; i++) {
		if (strncmp(st->names[i], "kmallocd-", 9))
			continue;
		notify_fdstore_remove(st->names[i]);
		if (!st->used || !st->used[i])
			close(st->fds[i]);
	}
	notify_fds_free(st->n, st->fds, st->names);
	free(st->used);
	memset(st, 0, sizeof(*st));
	st->state_fd = st->listen_fd = -1;
}

/* handover_fds' resolver over a struct handover_store: the newest entry of
 * that name (systemd lists newest first). */
static int store_resolve(void *ctx, const char *name, int recorded_fd)
{
	struct handover_store *st = ctx;
	int i;

	(void)recorded_fd;
	for (i = 0; i < st->n; i++) {
		if (!strcmp(st->names[i], name)) {
			if (st->used)
				st->used[i] = true;
			return st->fds[i];
		}
	}
	/* Under socket activation the listening socket is the socket unit's. */
	return !strcmp(name, "kmallocd-listen") ? st->listen_fd : -1;
}

int handover_store_restore(struct server *srv, struct handover_store *st)
{
	struct handover_fds by_name = { store_resolve, st };

	log_info("taking over from the fd store");
	return handover_restore(srv, st->state_fd, &by_name);
}

/* ---- reading ------------------------------------------------------------- */

struct ho_reader {
	const uint8_t *p, *end;
};

static const void *ho_get(struct ho_reader *r, size_t len)
{
	size_t padded = (len + 7) & ~(size_t)7;
	const void *at = r->p;

	if ((size_t)(r->end - r->p) < padded)
		return NULL;
	r->p += padded;
	return at;
}

/* A domain of the state that could not be taken over, and its memfd (or -1). */
struct ho_lost_domain {
	uint32_t id;
	int fd;
};

/* A memobj of the state: what it became (NULL when its domain was lost),
 * the holders it had and the grant records found for it so far. */
struct ho_memobj_ref {
	uint64_t id;
	struct memobj *obj;
	uint32_t refs, seen;
};

/* A share of the state, by id, and its memobj's entry. */
struct ho_share_ref {
	uint64_t id;
	struct share *share;
	struct ho_memobj_ref *m;
};

/* What restoring needs besides the server: the domains it lost, and the
 * memobjs and shares the grants name. */
struct ho_restore {
	struct server *srv;
	struct ho_lost_domain *lost;
	uint32_t nr_lost;
	struct ho_memobj_ref *memobjs; /* in the state's order: by id */
	uint32_t nr_memobjs;
	struct ho_share_ref *shares; /* sorted by id once all are read */
	uint32_t nr_shares, cap_shares;
};

static struct conn *conn_by_id(struct server *srv, uint64_t id)
{
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, link)
		if (c->id == id)
			return c;
	return NULL;
}

static struct domain *domain_by_id(struct mm *mm, uint32_t id)
{
	struct domain *d;

	TAILQ_FOREACH(d, &mm->domains, link)
		if (d->id == id)
			return d;
	return NULL;
}

static bool domain_is_lost(const struct ho_restore *ctx, uint32_t id)
{
	for (uint32_t i = 0; i < ctx->nr_lost; i++)
		if (ctx->lost[i].id == id)
			return true;
	return false;
}

/* The descriptor of "kmallocd-@what" (with "-@id" when @id is not 0). */
static int fd_named(const struct handover_fds *fds, int recorded, const char *what, uint64_t id)
{
	char name[64];

	if (!fds || !fds->resolve)
		return recorded;
	if (id)
		snprintf(name, sizeof(name), "kmallocd-%s-%" PRIu64, what, id);
	else
		snprintf(name, sizeof(name), "kmallocd-%s", what);
	return fds->resolve(fds->ctx, name, recorded);
}

/* True when @fd is a descriptor this process has open (after exec, a
 * recorded number may name nothing if the old daemon lost it). */
static bool fd_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* ---- shares ---- */

static int cmp_memobj_ref(const void *key, const void *elt)
{
	uint64_t id = *(const uint64_t *)key, other = ((const struct ho_memobj_ref *)elt)->id;

	return id < other ? -1 : id > other;
}

static int cmp_share_ref(const void *a, const void *b)
{
	uint64_t x = ((const struct ho_share_ref *)a)->id, y = ((const struct ho_share_ref *)b)->id;

	return x < y ? -1 : x > y;
}

static struct ho_memobj_ref *memobj_ref_by_id(const struct ho_restore *ctx, uint64_t id)
{
	/* qsort() and bsearch() want a base even for 0 elements (UBSan). */
	if (!ctx->nr_memobjs)
		return NULL;
	return bsearch(&id, ctx->memobjs, ctx->nr_memobjs, sizeof(*ctx->memobjs), cmp_memobj_ref);
}

static struct ho_share_ref *share_ref_by_id(const struct ho_restore *ctx, uint64_t id)
{
	struct ho_share_ref key = { .id = id };

	if (!ctx->nr_shares)
		return NULL;
	return bsearch(&key, ctx->shares, ctx->nr_shares, sizeof(*ctx->shares), cmp_share_ref);
}

/* A MEMREF or IMPORT grant: a holder of a memobj restored before (or of
 * one whose domain was lost: then nothing). Counted against the holders
 * the memobj had. */
static int restore_ref_grant(struct ho_restore *ctx, const struct ho_grant *hg)
{
	struct ho_memobj_ref *m = NULL;
	struct ho_share_ref *sr = NULL;
	struct conn *c = conn_by_id(ctx->srv, hg->conn);

	if (hg->kind == GRANT_MEMREF)
		m = memobj_ref_by_id(ctx, hg->phys);
	else if ((sr = share_ref_by_id(ctx, hg->phys)))
		m = sr->m;
	if (!c || !m || ++m->seen > m->refs)
		return -EUCLEAN;
	if (!m->obj || !c->domain)
		return 0; /* the memory's domain, or the holder's, was lost */
	return grant_restore_ref(&ctx->srv->grants, c, hg->id, m->obj, sr ? sr->share : NULL,
				 hg->size, hg->order & 1);
}

static int restore_handles(struct ho_restore *ctx, struct ho_reader *r, struct share *s,
			   uint32_t nr)
{
	for (uint32_t i = 0; i < nr; i++) {
		const struct ho_handle *hh = ho_get(r, sizeof(*hh));
		struct share_handle h = { 0 };
		int err;

		if (!hh || !hh->id || (hh->flags & ~SHARE_EXPORT_FLAGS))
			return -EUCLEAN;
		if (!s)
			continue;
		h.id = hh->id;
		memcpy(h.secret, hh->secret, sizeof(h.secret));
		h.creator = hh->creator;
		h.flags = hh->flags;
		h.uid = hh->uid;
		h.max_imports = hh->max_imports;
		h.imports = hh->imports;
		h.revoked = hh->revoked;
		err = handle_restore(ctx->srv->grants.shares, s, &h, hh->age_ns, hh->expires_in_ms);
		if (err)
			return err;
	}
	return 0;
}

/* The shares of memobj @m (NULL obj: lost, read past), with their handles. */
static int restore_shares(struct ho_restore *ctx, struct ho_reader *r, struct ho_memobj_ref *m,
			  uint32_t nr)
{
	for (uint32_t i = 0; i < nr; i++) {
		const struct ho_share *hs = ho_get(r, sizeof(*hs));
		struct share tmpl = { 0 }, *s = NULL;
		int err;

		if (!hs || !hs->id)
			return -EUCLEAN;
		if (ctx->nr_shares == ctx->cap_shares) {
			uint32_t cap = ctx->cap_shares ? 2 * ctx->cap_shares : 16;
			struct ho_share_ref *grown = realloc(ctx->shares, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			ctx->shares = grown;
			ctx->cap_shares = cap;
		}
		if (m->obj) {
			tmpl.id = hs->id;
			tmpl.offset = hs->offset;
			tmpl.size = hs->size;
			tmpl.pid = hs->pid;
			tmpl.uid = hs->uid;
			tmpl.conn_id = hs->conn_id;
			memcpy(tmpl.name, hs->name, sizeof(tmpl.name));
			s = share_restore(ctx->srv->grants.shares, m->obj, &tmpl, hs->age_ns);
			if (!s)
				return -ENOMEM;
		}
		ctx->shares[ctx->nr_shares++] = (struct ho_share_ref){ hs->id, s, m };
		err = restore_handles(ctx, r, s, hs->nr_handles);
		if (err)
			return err;
	}
	return 0;
}

/* One memobj record: its memory taken back in its domain (a lost
 * domain's: skipped, its memfd closed), then its shares. */
static int restore_memobj(struct ho_restore *ctx, struct ho_reader *r,
			  const struct handover_fds *fds, struct ho_memobj_ref *m)
{
	const struct ho_memobj *hm = ho_get(r, sizeof(*hm));
	const uint32_t *frames = NULL;
	struct memobj_state st = { 0 };
	struct domain *d;
	int err;

	if (!hm || !hm->nr_refs || hm->kind >= MEMOBJ_KIND_MAX ||
	    (m > ctx->memobjs && hm->id <= m[-1].id))
		return -EUCLEAN;
	if (hm->area_frames && !(frames = ho_get(r, hm->area_frames * sizeof(uint32_t))))
		return -EUCLEAN;
	*m = (struct ho_memobj_ref){ .id = hm->id, .refs = hm->nr_refs };
	st = (struct memobj_state){ .id = hm->id,
				    .kind = (enum memobj_kind)hm->kind,
				    .bytes = hm->bytes,
				    .phys = hm->phys,
				    .cache = hm->cache,
				    .order = hm->order,
				    .nr_frames = hm->nr_frames,
				    .memfd = -1 };
	if (hm->kind == MEMOBJ_MEMFD_KMALLOC || hm->kind == MEMOBJ_MEMFD_VMALLOC) {
		st.memfd = fd_named(fds, hm->memfd, "share", hm->id);
		if (!fd_open(st.memfd))
			st.memfd = -1;
	}
	d = domain_by_id(&ctx->srv->mm, hm->domain);
	if (!d) {
		if (st.memfd >= 0)
			close(st.memfd);
		return domain_is_lost(ctx, hm->domain) ? restore_shares(ctx, r, m, hm->nr_shares)
						       : -EUCLEAN;
	}
	if (frames) {
		st.area = calloc(1, sizeof(*st.area) + hm->area_frames * sizeof(uint32_t));
		if (!st.area)
			return -ENOMEM;
		st.area->size = hm->size;
		st.area->vaddr = hm->vaddr;
		memcpy(st.area->caller, hm->caller, sizeof(st.area->caller));
		st.area->caller[sizeof(st.area->caller) - 1] = '\0';
		st.area->nr_frames = hm->area_frames;
		memcpy(st.area->frames, frames, hm->area_frames * sizeof(uint32_t));
	}
	err = memobj_restore(ctx->srv->grants.shares, d, &st, &m->obj);
	if (err == -ENODEV) { /* its holders lose it, the rest goes on */
		log_err("handover: the memfd of share memory %" PRIu64 " did not come back: its "
			"holders lose it",
			hm->id);
		m->obj = NULL;
		err = 0;
	}
	return err ? err : restore_shares(ctx, r, m, hm->nr_shares);
}

static int restore_memobjs(struct ho_restore *ctx, struct ho_reader *r, uint32_t nr,
			   const struct handover_fds *fds)
{
	int err = 0;

	ctx->memobjs = calloc(nr ? nr : 1, sizeof(*ctx->memobjs));
	if (!ctx->memobjs)
		return -ENOMEM;
	for (uint32_t i = 0; !err && i < nr; i++) {
		err = restore_memobj(ctx, r, fds, &ctx->memobjs[i]);
		ctx->nr_memobjs = i + 1;
	}
	if (ctx->nr_shares)
		qsort(ctx->shares, ctx->nr_shares, sizeof(*ctx->shares), cmp_share_ref);
	for (uint32_t i = 1; !err && i < ctx->nr_shares; i++)
		if (ctx->shares[i].id == ctx->shares[i - 1].id)
			err = -EUCLEAN;
	return err;
}

/* Every memobj has exactly the holders it had (a holder whose domain was
 * lost counts as found, and is gone). */
static int restore_check_refs(const struct ho_restore *ctx)
{
	for (uint32_t i = 0; i < ctx->nr_memobjs; i++)
		if (ctx->memobjs[i].seen != ctx->memobjs[i].refs) {
			log_err("handover: memobj %" PRIu64 " had %u holders, %u came back",
				ctx->memobjs[i].id, ctx->memobjs[i].refs, ctx->memobjs[i].seen);
			return -EUCLEAN;
		}
	return 0;
}

/* One grant record (and, for vmalloc, its frames), remade for its holder
 * through the live allocators. */
static int restore_grant(struct ho_restore *ctx, struct ho_reader *r)
{
	const struct ho_grant *hg = ho_get(r, sizeof(*hg));
	const uint32_t *frames = NULL;
	struct vmalloc_area *area = NULL;
	struct kmalloc_obj obj = { 0 };
	struct conn *c;

	if (!hg || hg->kind >= GRANT_KIND_MAX)
		return -EUCLEAN;
	if (hg->kind == GRANT_MEMREF || hg->kind == GRANT_IMPORT)
		return restore_ref_grant(ctx, hg);
	if (hg->kind == GRANT_VMALLOC) {
		frames = ho_get(r, hg->nr_frames * sizeof(uint32_t));
		if (!frames)
			return -EUCLEAN;
	}
	c = conn_by_id(ctx->srv, hg->conn);
	if (!c)
		return -EUCLEAN;
	if (!c->domain)
		return 0; /* its domain was lost: so is the grant */
	if (hg->kind == GRANT_VMALLOC) {
		area = calloc(1, sizeof(*area) + hg->nr_frames * sizeof(uint32_t));
		if (!area)
			return -ENOMEM;
		area->size = hg->size;
		area->vaddr = hg->vaddr;
		memcpy(area->caller, hg->caller, sizeof(area->caller));
		area->caller[sizeof(area->caller) - 1] = '\0';
		area->nr_frames = hg->nr_frames;
		memcpy(area->frames, frames, hg->nr_frames * sizeof(uint32_t));
	} else {
		obj.phys = hg->phys;
		obj.cache = hg->cache;
		obj.order = hg->order;
		obj.size = hg->cache >= 0 && hg->cache < KM_NR_KMALLOC_CLASSES
				   ? kmalloc_classes[hg->cache].size
				   : (uint64_t)KM_PAGE_SIZE << (hg->order & 63);
	}
	return grant_restore(&ctx->srv->grants, c, hg->id, (enum grant_kind)hg->kind, &obj, area);
}

static int restore_domains(struct ho_restore *ctx, struct ho_reader *r, uint32_t nr,
			   const struct handover_fds *fds)
{
	struct server *srv = ctx->srv;
	uint32_t i;

	ctx->lost = calloc(nr ? nr : 1, sizeof(*ctx->lost));
	if (!ctx->lost)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		const struct ho_domain *hd = ho_get(r, sizeof(*hd));
		struct domain *d;
		int fd, err = -EBADF;

		if (!hd || hd->id == FRAME_OWNER_NONE || hd->id == FRAME_OWNER_QUARANTINE ||
		    domain_by_id(&srv->mm, hd->id) || domain_is_lost(ctx, hd->id))
			return -EUCLEAN;
		fd = fd_named(fds, hd->memfd, "domain", hd->id);
		if (!fd_open(fd))
			fd = -1;
		if (fd >= 0)
			err = pool_memfd_check(&srv->mm.pool, fd);
		if (!err)
			err = domain_adopt(&srv->mm, hd->id, hd->uid, fd, &d);
		if (err) {
			log_err("handover: the memfd of domain %u (uid %u) %s (%s): its clients "
				"are dropped",
				hd->id, hd->uid, fd < 0 ? "did not come back" : "cannot be used",
				strerror(-err));
			ctx->lost[ctx->nr_lost].id = hd->id;
			ctx->lost[ctx->nr_lost++].fd = fd;
			/* Its id stays unused: frames and a stale store entry
			 * may still name it. */
			if (srv->mm.next_domain_id <= hd->id)
				srv->mm.next_domain_id =
					hd->id + 1 == FRAME_OWNER_QUARANTINE ? 1 : hd->id + 1;
			continue;
		}
		d->phantom_punches = hd->phantom_punches;
	}
	return 0;
}

/* Connections come back not reading yet. One whose descriptor is gone, or
 * whose domain was lost, comes back as a client that died: no descriptor,
 * closed once restoring is done (its grants given back then). */
static int restore_conns(struct ho_restore *ctx, struct ho_reader *r, uint32_t nr,
			 const struct handover_fds *fds)
{
	struct server *srv = ctx->srv;
	uint32_t i;
	int err;

	for (i = 0; i < nr; i++) {
		const struct ho_conn *hc = ho_get(r, sizeof(*hc));
		bool lost_domain;
		struct conn *c;
		int fd;

		if (!hc || hc->state >= CONN_CLOSING || !hc->id || conn_by_id(srv, hc->id))
			return -EUCLEAN;
		lost_domain = hc->domain && domain_is_lost(ctx, hc->domain);
		if (hc->domain && !lost_domain && !domain_by_id(&srv->mm, hc->domain))
			return -EUCLEAN;
		fd = fd_named(fds, hc->fd, "conn", hc->id);
		if (!fd_open(fd)) {
			log_notice("handover: connection %" PRIu64 " (pid %d uid %u) did not come "
				   "back: its client died",
				   hc->id, hc->pid, hc->uid);
			fd = -1;
		} else if (lost_domain) {
			reaper_close(fd); /* the client sees the daemon hang up */
			fd = -1;
		}
		err = conn_adopt(srv, fd, hc->id, hc->uid, hc->gid, &c);
		if (err)
			return err;
		if (fd < 0)
			c->pid = hc->pid;
		c->state = (enum conn_state)hc->state;
		memcpy(c->name, hc->name, sizeof(c->name));
		c->name[sizeof(c->name) - 1] = '\0';
		memcpy(c->token, hc->token, sizeof(c->token));
		if (hc->domain && !lost_domain) {
			c->domain = domain_by_id(&srv->mm, hc->domain);
			c->domain->refs++;
		}
	}
	return 0;
}

/* The share memfd a queued reply carried (an import's or a shareable
 * allocation's), or -1 when it is lost (the client then finds no descriptor
 * with a reply that says there is one, and fails that call). */
static int packet_share_fd(const struct ho_restore *ctx, const struct ho_packet *hp)
{
	const struct ho_memobj_ref *m = hp->share_fd ? memobj_ref_by_id(ctx, hp->share_fd) : NULL;

	return m && m->obj ? memobj_fd(m->obj, hp->share_rdonly) : -1;
}

static int restore_packets(struct ho_restore *ctx, struct ho_reader *r, uint32_t nr)
{
	struct server *srv = ctx->srv;
	uint32_t i;

	for (i = 0; i < nr; i++) {
		const struct ho_packet *hp = ho_get(r, sizeof(*hp));
		const void *data = hp ? ho_get(r, hp->len) : NULL;
		struct conn *c = hp ? conn_by_id(srv, hp->conn) : NULL;
		struct domain *d =
			hp && hp->domain_fd ? domain_by_id(&srv->mm, hp->domain_fd) : NULL;

		if (!data || !c)
			return -EUCLEAN;
		if (c->fd < 0)
			continue; /* a client that died */
		if (hp->domain_fd && !d)
			return -EUCLEAN;
		if (conn_send(c, data, hp->len, d ? d->memfd : packet_share_fd(ctx, hp)) < 0)
			return -EUCLEAN;
	}
	return 0;
}

/* Frames of lost domains go back to the pool: punched from the memfd if it
 * came back, then into the reserve (or quarantine). */
static void release_lost_frames(struct ho_restore *ctx)
{
	struct mm *mm = &ctx->srv->mm;
	uint32_t i, f, start;

	for (i = 0; i < ctx->nr_lost; i++) {
		uint32_t id = ctx->lost[i].id;

		for (f = 0; f < mm->pool.nr_frames; f++) {
			if (mm->frames.owner[f] != id)
				continue;
			for (start = f; f < mm->pool.nr_frames && mm->frames.owner[f] == id; f++)
				;
			frame_release(&mm->frames, ctx->lost[i].fd, start, f - start);
		}
		if (ctx->lost[i].fd >= 0)
			close(ctx->lost[i].fd);
		ctx->lost[i].fd = -1;
	}
}

/* The last steps: every domain checked, domains nobody came with let go,
 * clients that died closed, the others read from now on. */
static int restore_finish(struct ho_restore *ctx)
{
	struct server *srv = ctx->srv;
	struct domain *d, *next;
	struct conn *c, *cnext;

	for (d = TAILQ_FIRST(&srv->mm.domains); d; d = next) {
		next = TAILQ_NEXT(d, link);
		if (domain_check(d) < 0)
			return -EUCLEAN;
		if (d->refs == 0) {
			d->refs = 1; /* nobody came with it: let it go */
			domain_put(d);
		}
	}
	for (c = TAILQ_FIRST(&srv->conns); c; c = cnext) {
		cnext = TAILQ_NEXT(c, link);
		if (c->fd < 0) {
			conn_close(c, "died during the restart");
			continue;
		}
		if (c->state == CONN_HELLO) {
			struct timeval timeout = { .tv_sec = srv->cfg->hello_timeout };

			event_add(c->ev_hello, &timeout);
		}
		conn_start(c);
	}
	return 0;
}

static void restore_free(struct ho_restore *ctx)
{
	free(ctx->memobjs);
	free(ctx->shares);
	for (uint32_t i = 0; i < ctx->nr_lost; i++)
		if (ctx->lost[i].fd >= 0)
			close(ctx->lost[i].fd);
	free(ctx->lost);
}

/* The state memfd @fd, read whole (and closed). */
static int read_state(int fd, uint8_t **buf, size_t *len)
{
	struct stat st;
	int err = 0;

	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct ho_header) ||
	    st.st_size > (1ll << 34)) {
		log_err("handover: no state to read");
		err = -EINVAL;
	} else {
		*buf = malloc((size_t)st.st_size);
		if (!*buf || pread(fd, *buf, (size_t)st.st_size, 0) != st.st_size) {
			free(*buf);
			*buf = NULL;
			err = -EIO;
		}
		*len = (size_t)st.st_size;
	}
	close(fd);
	return err;
}

int handover_restore(struct server *srv, int fd, const struct handover_fds *fds)
{
	struct mm_options opt = {
		.pool_size = srv->cfg->pool_size,
		.backing = srv->cfg->backing,
		.reserve = srv->cfg->reserve,
	};
	struct ho_restore ctx = { .srv = srv };
	const struct ho_header *h;
	const uint32_t *owner;
	struct ho_reader r;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint32_t i;
	int err;

	err = read_state(fd, &buf, &len);
	if (err)
		return err;
	r.p = buf;
	r.end = buf + len;
	h = ho_get(&r, sizeof(*h));
	if (!h || h->magic != HANDOVER_MAGIC || h->version != HANDOVER_VERSION) {
		log_err("handover: the state is not version %u of this daemon's", HANDOVER_VERSION);
		err = -EUCLEAN;
		goto out;
	}
	owner = ho_get(&r, h->nr_frames * sizeof(uint32_t));
	if (!owner || (uint64_t)h->nr_frames << KM_FRAME_SHIFT != h->pool_size)
		goto bad;
	err = mm_adopt(&srv->mm, &opt, fd_named(fds, h->reserve_fd, "reserve", 0), h->pool_size,
		       h->hugetlb, owner);
	if (err)
		goto out;
	if (srv->mm.pool.reserve_fd < 0)
		goto bad;
	srv->accounts.pool_size = srv->mm.pool.size;
	srv->listen_fd = fd_named(fds, h->listen_fd, "listen", 0);
	if (srv->listen_fd < 0)
		goto bad;
	srv->own_socket = h->own_socket;
	srv->requests = h->requests;
	srv->next_conn_id = h->next_conn_id;

	err = restore_domains(&ctx, &r, h->nr_domains, fds);
	if (!err)
		err = restore_conns(&ctx, &r, h->nr_conns, fds);
	if (!err)
		release_lost_frames(&ctx);
	if (!err)
		err = restore_memobjs(&ctx, &r, h->nr_memobjs, fds);
	for (i = 0; !err && i < h->nr_grants; i++)
		err = restore_grant(&ctx, &r);
	if (!err)
		err = restore_check_refs(&ctx);
	grant_table_restored(&srv->grants, (uint32_t)h->max_generation);
	share_table_restored(srv->grants.shares, h->next_handle_id, h->next_share_id,
			     h->next_memobj_id);
	if (!err)
		err = restore_packets(&ctx, &r, h->nr_packets);
	if (!err)
		err = restore_finish(&ctx);
	if (err == -EUCLEAN)
		goto bad;
	if (!err)
		log_notice("handover complete: %u clients, %zu grants, %u domains taken over",
			   srv->nr_conns, srv->grants.count, srv->mm.nr_domains);
	goto out;
bad:
	err = -EUCLEAN;
	log_err("handover: the state does not add up; refusing to serve from it");
out:
	restore_free(&ctx);
	free(buf);
	return err;
}
