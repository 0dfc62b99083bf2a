// SPDX-License-Identifier: MIT
/*
 * handover.c - the state one kmallocd hands to the next across exec.
 *
 * Layout of the state memfd, all native-endian fixed-size records (the same
 * build reads what it wrote; the version field refuses anything else):
 *   header | owner[nr_frames] | domains | connections | grants (each followed
 *   by its vmalloc frames) | queued packets (each followed by its bytes)
 * Everything else is derived again on the way in: a slab is rebuilt from the
 * grants that hold its objects, a domain's free pages are its frames less
 * what grants hold (empty slabs are given back before the handover), every
 * counter is recounted, and domain_check() and buddy_check() must pass
 * before the new daemon serves.
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
#include "notify.h"
#include "server.h"

#define HANDOVER_MAGIC		0x31524556484d4b00ull	/* "\0KMHVER1" */
#define HANDOVER_VERSION	1u

struct ho_header {
	uint64_t magic;
	uint32_t version;
	uint32_t hugetlb;
	uint64_t pool_size;
	uint64_t next_grant_id;
	uint32_t nr_frames;
	uint32_t nr_domains;
	uint32_t nr_conns;
	uint32_t nr_grants;
	uint32_t nr_packets;
	uint32_t next_conn_id;
	int32_t listen_fd;
	int32_t reserve_fd;
	uint32_t own_socket;
	uint32_t pad;
	uint64_t requests;
};

struct ho_domain {
	uint32_t id;
	uint32_t uid;
	int32_t memfd;
	uint32_t pad;
	uint64_t phantom_punches;
};

struct ho_conn {
	uint32_t id;
	int32_t fd;
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
	uint32_t admin;
	uint32_t state;
	uint32_t domain;		/* 0 before Hello */
	char name[32];
	uint8_t token[CONN_TOKEN_SIZE];
};

struct ho_grant {
	uint64_t id;
	uint64_t size;
	uint64_t bytes;
	uint64_t phys;			/* kmalloc */
	uint64_t ksize;
	uint64_t vaddr;			/* vmalloc */
	uint32_t kind;
	uint32_t conn;
	uint32_t gfp;
	int32_t cache;			/* kmalloc: class, -1 for large */
	uint32_t order;			/* kmalloc large: page order */
	uint32_t slab_pfn;		/* kmalloc from a cache */
	uint32_t nr_frames;		/* vmalloc: frames follow, padded to 8 bytes */
	uint32_t pad;
	char caller[64];
};

struct ho_packet {
	uint32_t conn;
	uint32_t len;			/* bytes follow, padded to 8 */
	uint32_t domain_fd;		/* the packet carries this domain's memfd, or 0 */
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
	struct domain *d;
	struct conn *c;
	int err = 0;

	err |= set_cloexec(srv->listen_fd, !keep);
	err |= set_cloexec(srv->mm.pool.reserve_fd, !keep);
	err |= set_cloexec(state_fd, !keep);
	for (d = srv->mm.domains; d; d = d->next)
		err |= set_cloexec(d->memfd, !keep);
	for (c = srv->conns; c; c = c->next)
		err |= set_cloexec(c->fd, !keep);
	return err ? -EBADF : 0;
}

static uint32_t domain_of_fd(const struct server *srv, int fd)
{
	const struct domain *d;

	for (d = srv->mm.domains; d; d = d->next)
		if (d->memfd == fd)
			return d->id;
	return 0;
}

static int handover_write(struct server *srv, struct ho_buf *b)
{
	struct ho_header h = {
		.magic = HANDOVER_MAGIC,
		.version = HANDOVER_VERSION,
		.hugetlb = srv->mm.pool.hugetlb,
		.pool_size = srv->mm.pool.size,
		.next_grant_id = srv->grants.next_id,
		.nr_frames = srv->mm.pool.nr_frames,
		.next_conn_id = srv->next_conn_id,
		.listen_fd = srv->listen_fd,
		.reserve_fd = srv->mm.pool.reserve_fd,
		.own_socket = srv->own_socket,
		.requests = srv->requests,
	};
	struct ho_header *hp;
	struct domain *d;
	struct conn *c;
	struct grant *g;

	hp = ho_put(b, &h, sizeof(h));
	ho_put(b, srv->mm.frames.owner, srv->mm.pool.nr_frames * sizeof(uint32_t));
	for (d = srv->mm.domains; d; d = d->next) {
		struct ho_domain hd = { .id = d->id, .uid = d->uid, .memfd = d->memfd,
					.phantom_punches = d->phantom_punches };

		ho_put(b, &hd, sizeof(hd));
		h.nr_domains++;
	}
	for (c = srv->conns; c; c = c->next) {
		struct ho_conn hc = { .id = c->id, .fd = c->fd, .pid = c->pid, .uid = c->uid,
				      .gid = c->gid, .admin = c->admin, .state = c->state,
				      .domain = c->domain ? c->domain->id : 0 };

		memcpy(hc.name, c->name, sizeof(hc.name));
		memcpy(hc.token, c->token, sizeof(hc.token));
		ho_put(b, &hc, sizeof(hc));
		h.nr_conns++;
	}
	for (c = srv->conns; c; c = c->next) {
		for (g = c->grants; g; g = g->owner_next) {
			struct ho_grant hg = { .id = g->id, .size = g->size, .bytes = g->bytes,
					       .kind = g->kind, .conn = c->id, .gfp = g->gfp };

			if (g->kind == GRANT_KMALLOC) {
				hg.phys = g->k.phys;
				hg.ksize = g->k.size;
				hg.cache = g->k.cache;
				hg.order = g->k.order;
				hg.slab_pfn = g->k.slab ? g->k.slab->pfn : 0;
			} else {
				hg.vaddr = g->v.vaddr;
				hg.nr_frames = g->v.nr_frames;
				memcpy(hg.caller, g->v.caller, sizeof(hg.caller));
			}
			ho_put(b, &hg, sizeof(hg));
			if (g->kind == GRANT_VMALLOC)
				ho_put(b, g->v.frames, g->v.nr_frames * sizeof(uint32_t));
			h.nr_grants++;
		}
	}
	for (c = srv->conns; c; c = c->next) {
		struct conn_packet *p;

		for (p = c->outq; p; p = p->next) {
			struct ho_packet hp2 = { .conn = c->id, .len = (uint32_t)p->len,
						 .domain_fd = p->fd >= 0 ? domain_of_fd(srv, p->fd)
									 : 0 };

			ho_put(b, &hp2, sizeof(hp2));
			ho_put(b, p->data, p->len);
			h.nr_packets++;
		}
	}
	if (b->failed)
		return -ENOMEM;
	hp = (struct ho_header *)b->data;	/* the buffer may have moved */
	*hp = h;
	return 0;
}

/* The state, in a new memfd (CLOEXEC); *len its size. */
static int handover_state_memfd(struct server *srv, int *out, size_t *len)
{
	struct ho_buf b = { 0 };
	struct domain *d;
	int fd, err;

	/* Empty slabs go back first: the state then needs no slab of its own. */
	for (d = srv->mm.domains; d; d = d->next)
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
		log_notice("handing over to a new kmallocd: %u clients, %zu grants, %zu bytes of state",
			   srv->nr_conns, srv->grants.count, len);
		/* The binary by its name, so that an upgraded one is what runs;
		 * the running image itself if that name is gone. */
		execvp(argv[0], argv);
		execv("/proc/self/exe", argv);
		err = -errno;
		unsetenv(HANDOVER_ENV);
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
	char name[64];
	struct domain *d;
	struct conn *c;
	int err;

	err = fn(srv, srv->mm.pool.reserve_fd, "kmallocd-reserve");
	if (!err && srv->own_socket)
		err = fn(srv, srv->listen_fd, "kmallocd-listen");
	for (d = srv->mm.domains; d && !err; d = d->next) {
		snprintf(name, sizeof(name), "kmallocd-domain-%u", d->id);
		err = fn(srv, d->memfd, name);
	}
	for (c = srv->conns; c && !err; c = c->next) {
		snprintf(name, sizeof(name), "kmallocd-conn-%u", c->id);
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
			   "systemd's fd store for the next kmallocd", len, srv->nr_conns,
			   srv->grants.count);
		return 0;
	}
	for_each_named_fd(srv, forget_one);
	notify_fdstore_remove("kmallocd-state");
fail:
	log_err("cannot keep the state in systemd's fd store (%s): stopping without it",
		strerror(-err));
	return err;
}

void handover_store_forget(struct server *srv)
{
	for_each_named_fd(srv, forget_one);
	notify_fdstore_remove("kmallocd-state");
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

static struct conn *conn_by_id(struct server *srv, uint32_t id)
{
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static struct domain *domain_by_id(struct mm *mm, uint32_t id)
{
	struct domain *d;

	for (d = mm->domains; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

/* Marks pages [pfn, pfn + nr) held for @d; they must be d's and not held yet. */
static bool mark_used(struct mm *mm, uint8_t *used, const struct domain *d, uint64_t pfn,
		      uint64_t nr)
{
	uint64_t i;

	if (pfn + nr > mm->pool.nr_pages || pfn + nr < pfn)
		return false;
	for (i = pfn; i < pfn + nr; i++) {
		if (used[i] || mm->frames.owner[i >> POOL_FRAME_ORDER] != d->id)
			return false;
		used[i] = 1;
	}
	return true;
}

/* The slab of @g's object, made on first sight; objects are marked in
 * @in_use[pfn] (a bitmap per slab, indexed by its first pfn). */
static int restore_kmalloc(struct mm *mm, struct grant *g, const struct ho_grant *hg,
			   struct domain *d, uint8_t *used, bool **in_use, int *slab_cache)
{
	const struct kmalloc_class *cls;
	uint64_t base, off;
	uint32_t pfn;

	g->k.phys = hg->phys;
	g->k.size = hg->ksize;
	g->k.order = hg->order;
	g->k.cache = hg->cache;
	g->k.slab = NULL;
	if (hg->cache < 0) {
		uint64_t pages;

		if (hg->order > KMALLOC_MAX_ORDER)
			return -EUCLEAN;
		pages = 1ull << hg->order;
		if (hg->phys % (pages << POOL_PAGE_SHIFT) ||
		    hg->ksize != pages << POOL_PAGE_SHIFT ||
		    !mark_used(mm, used, d, hg->phys >> POOL_PAGE_SHIFT, pages))
			return -EUCLEAN;
		d->large_pages += pages;
		return 0;
	}
	if (hg->cache >= NR_KMALLOC_CACHES)
		return -EUCLEAN;
	cls = &kmalloc_classes[hg->cache];
	pfn = hg->slab_pfn;
	base = (uint64_t)pfn << POOL_PAGE_SHIFT;
	if (pfn >= mm->pool.nr_pages || pfn % (1u << cls->order) || hg->phys < base ||
	    hg->ksize != cls->size)
		return -EUCLEAN;
	off = hg->phys - base;
	if (off % cls->size || off / cls->size >= cls->objs_per_slab)
		return -EUCLEAN;
	if (!in_use[pfn]) {
		in_use[pfn] = calloc(cls->objs_per_slab, sizeof(bool));
		if (!in_use[pfn])
			return -ENOMEM;
		slab_cache[pfn] = hg->cache;
		if (!mark_used(mm, used, d, pfn, 1u << cls->order))
			return -EUCLEAN;
		d->slab_pages += 1u << cls->order;
	} else if (slab_cache[pfn] != hg->cache) {
		return -EUCLEAN;	/* one slab, two classes */
	}
	if (in_use[pfn][off / cls->size])
		return -EUCLEAN;	/* two grants, one object */
	in_use[pfn][off / cls->size] = true;
	return 0;
}

static int restore_grants(struct server *srv, struct ho_reader *r, uint32_t nr, uint8_t *used,
			  bool **in_use, int *slab_cache)
{
	struct mm *mm = &srv->mm;
	uint32_t i, j;
	int err;

	for (i = 0; i < nr; i++) {
		const struct ho_grant *hg = ho_get(r, sizeof(*hg));
		struct conn *c;
		struct domain *d;
		struct grant *g;

		if (!hg || hg->kind >= GRANT_KIND_MAX)
			return -EUCLEAN;
		c = conn_by_id(srv, hg->conn);
		if (!c || !c->domain)
			return -EUCLEAN;
		d = c->domain;
		g = grant_adopt(&srv->grants, hg->id, (enum grant_kind)hg->kind);
		if (!g)
			return -EUCLEAN;
		g->domain = d;
		g->size = hg->size;
		g->bytes = hg->bytes;
		g->gfp = hg->gfp;
		if (hg->kind == GRANT_KMALLOC) {
			err = restore_kmalloc(mm, g, hg, d, used, in_use, slab_cache);
			if (err)
				return err;
		} else {
			const uint32_t *frames = ho_get(r, hg->nr_frames * sizeof(uint32_t));

			if (!frames || !hg->nr_frames)
				return -EUCLEAN;
			g->v.frames = malloc(hg->nr_frames * sizeof(uint32_t));
			if (!g->v.frames)
				return -ENOMEM;
			memcpy(g->v.frames, frames, hg->nr_frames * sizeof(uint32_t));
			g->v.nr_frames = hg->nr_frames;
			g->v.vaddr = hg->vaddr;
			memcpy(g->v.caller, hg->caller, sizeof(g->v.caller));
			g->v.caller[sizeof(g->v.caller) - 1] = '\0';
			for (j = 0; j < hg->nr_frames; j++)
				if (frames[j] >= mm->pool.nr_frames ||
				    !mark_used(mm, used, d, (uint64_t)frames[j] << POOL_FRAME_ORDER,
					       POOL_PAGES_PER_FRAME))
					return -EUCLEAN;
			d->vmalloc_frames += hg->nr_frames;
		}
		conn_grant_add(c, g);
	}
	return 0;
}

/* Slabs from the objects grants hold, then every page no grant holds back
 * into its domain's buddy. */
static int rebuild_pages(struct server *srv, const uint8_t *used, bool **in_use,
			 const int *slab_cache, struct slab **slab_at)
{
	struct mm *mm = &srv->mm;
	struct conn *c;
	struct grant *g;
	uint32_t pfn, f;
	int err;

	for (pfn = 0; pfn < mm->pool.nr_pages; pfn++) {
		struct domain *d;

		if (!in_use[pfn])
			continue;
		d = domain_by_id(mm, mm->frames.owner[pfn >> POOL_FRAME_ORDER]);
		err = kmem_cache_adopt_slab(&d->caches[slab_cache[pfn]], pfn, in_use[pfn],
					    &slab_at[pfn]);
		if (err)
			return err;
	}
	/* Slabs are naturally aligned: an object's slab starts at its pfn
	 * rounded down to the slab's order. */
	for (c = srv->conns; c; c = c->next) {
		for (g = c->grants; g; g = g->owner_next) {
			if (g->kind != GRANT_KMALLOC || g->k.cache < 0)
				continue;
			pfn = (uint32_t)(g->k.phys >> POOL_PAGE_SHIFT) &
			      ~((1u << kmalloc_classes[g->k.cache].order) - 1);
			g->k.slab = slab_at[pfn];
			if (!g->k.slab)
				return -EUCLEAN;
		}
	}
	for (f = 0; f < mm->pool.nr_frames; f++) {
		struct domain *d = domain_by_id(mm, mm->frames.owner[f]);
		uint32_t first = f << POOL_FRAME_ORDER, end = first + POOL_PAGES_PER_FRAME, start;

		if (!d) {
			if (mm->frames.owner[f] != FRAME_OWNER_NONE)
				return -EUCLEAN;	/* a frame of no known domain */
			continue;
		}
		d->nr_frames++;
		for (pfn = first; pfn < end; pfn++) {
			if (used[pfn])
				continue;
			for (start = pfn; pfn < end && !used[pfn]; pfn++)
				;
			buddy_free_range(&d->pages, start, pfn - start);
		}
	}
	return 0;
}

/* The descriptor of "kmallocd-@what" (with "-@id" when @id is not 0). */
static int fd_named(const struct handover_fds *fds, int recorded, const char *what, uint32_t id)
{
	char name[64];

	if (!fds || !fds->resolve)
		return recorded;
	if (id)
		snprintf(name, sizeof(name), "kmallocd-%s-%u", what, id);
	else
		snprintf(name, sizeof(name), "kmallocd-%s", what);
	return fds->resolve(fds->ctx, name, recorded);
}

int handover_restore(struct server *srv, int fd, const struct handover_fds *fds)
{
	const struct ho_header *h;
	struct ho_reader r;
	struct mm_options opt = {
		.pool_size = srv->cfg->pool_size,
		.backing = srv->cfg->backing,
		.reserve = srv->cfg->reserve,
	};
	const uint32_t *owner;
	uint8_t *buf = NULL, *used = NULL;
	bool **in_use = NULL;
	int *slab_cache = NULL;
	struct slab **slab_at = NULL;
	struct stat st;
	uint32_t i;
	int err = -EUCLEAN;

	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*h) || st.st_size > (1ll << 34)) {
		log_err("handover: no state to read");
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		close(fd);
		free(buf);
		return -EIO;
	}
	close(fd);
	r.p = buf;
	r.end = buf + st.st_size;
	h = ho_get(&r, sizeof(*h));
	if (!h || h->magic != HANDOVER_MAGIC || h->version != HANDOVER_VERSION) {
		log_err("handover: the state is not version %u of this daemon's", HANDOVER_VERSION);
		goto out;
	}
	owner = ho_get(&r, h->nr_frames * sizeof(uint32_t));
	if (!owner || (uint64_t)h->nr_frames << POOL_FRAME_SHIFT != h->pool_size)
		goto bad;
	err = mm_adopt(&srv->mm, &opt, fd_named(fds, h->reserve_fd, "reserve", 0),
		       h->pool_size, h->hugetlb, owner);
	if (err)
		goto out;
	if (srv->mm.pool.reserve_fd < 0)
		goto bad;
	srv->listen_fd = fd_named(fds, h->listen_fd, "listen", 0);
	if (srv->listen_fd < 0)
		goto bad;
	srv->own_socket = h->own_socket;
	srv->requests = h->requests;

	for (i = 0; i < h->nr_domains; i++) {
		const struct ho_domain *hd = ho_get(&r, sizeof(*hd));
		struct domain *d;

		if (!hd)
			goto bad;
		fd = fd_named(fds, hd->memfd, "domain", hd->id);
		if (fd < 0 || domain_adopt(&srv->mm, hd->id, hd->uid, fd, &d) < 0)
			goto bad;
		d->phantom_punches = hd->phantom_punches;
	}
	for (i = 0; i < h->nr_conns; i++) {
		const struct ho_conn *hc = ho_get(&r, sizeof(*hc));
		struct conn *c;

		if (!hc || hc->state >= CONN_CLOSING || conn_by_id(srv, hc->id))
			goto bad;
		fd = fd_named(fds, hc->fd, "conn", hc->id);
		if (fd < 0)
			goto bad;
		err = conn_new(srv, fd, &c);
		if (err)
			goto out;
		c->id = hc->id;
		c->pid = hc->pid;
		c->uid = hc->uid;
		c->gid = hc->gid;
		c->admin = hc->admin;
		c->state = (enum conn_state)hc->state;
		memcpy(c->name, hc->name, sizeof(c->name));
		c->name[sizeof(c->name) - 1] = '\0';
		memcpy(c->token, hc->token, sizeof(c->token));
		if (hc->domain) {
			c->domain = domain_by_id(&srv->mm, hc->domain);
			if (!c->domain)
				goto bad;
			c->domain->refs++;
			event_del(c->ev_hello);
		}
	}
	srv->next_conn_id = h->next_conn_id;

	used = calloc(srv->mm.pool.nr_pages, 1);
	in_use = calloc(srv->mm.pool.nr_pages, sizeof(*in_use));
	slab_cache = calloc(srv->mm.pool.nr_pages, sizeof(*slab_cache));
	if (!used || !in_use || !slab_cache) {
		err = -ENOMEM;
		goto out;
	}
	err = restore_grants(srv, &r, h->nr_grants, used, in_use, slab_cache);
	if (err)
		goto check;
	if (srv->grants.next_id < h->next_grant_id)
		srv->grants.next_id = h->next_grant_id;
	slab_at = calloc(srv->mm.pool.nr_pages, sizeof(*slab_at));
	if (!slab_at) {
		err = -ENOMEM;
		goto out;
	}
	err = rebuild_pages(srv, used, in_use, slab_cache, slab_at);
	if (err)
		goto check;

	for (i = 0; i < h->nr_packets; i++) {
		const struct ho_packet *hp = ho_get(&r, sizeof(*hp));
		const void *data = hp ? ho_get(&r, hp->len) : NULL;
		struct conn *c = hp ? conn_by_id(srv, hp->conn) : NULL;
		struct domain *d = hp && hp->domain_fd ? domain_by_id(&srv->mm, hp->domain_fd) : NULL;

		if (!data || !c || (hp->domain_fd && !d))
			goto bad;
		if (conn_send(c, data, hp->len, d ? d->memfd : -1) < 0)
			goto bad;
	}

check:
	if (!err) {
		struct domain *d, *next;

		for (d = srv->mm.domains; d; d = next) {
			next = d->next;
			if (domain_check(d) < 0) {
				err = -EUCLEAN;
				break;
			}
			if (d->refs == 0) {
				d->refs = 1;	/* nobody came with it: let it go */
				domain_put(d);
			}
		}
	}
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
	if (in_use)
		for (i = 0; i < srv->mm.pool.nr_pages; i++)
			free(in_use[i]);
	free(in_use);
	free(used);
	free(slab_cache);
	free(slab_at);
	free(buf);
	return err;
}
