// SPDX-License-Identifier: MIT
/*
 * gen-corpus.c - writes the seed corpus of fuzz-dispatch (tests/fuzz/corpus/)
 * into the directory given: inputs in its format ([conn][length, 2 bytes
 * little-endian][packed Request], repeated), each a valid sequence. Grant id
 * 0..0xffff and 1-byte handles are the fuzzer's (fuzz-dispatch.c's top).
 *
 *	build-fuzz/tests/fuzz/gen-corpus tests/fuzz/corpus
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmalloc.pb-c.h"

#define GFP_SHARED 0x10000000u /* KM_GFP_SHARED (kmalloc-abi.h) */

struct input {
	uint8_t buf[8192];
	size_t len;
	uint64_t id;
};

static void add(struct input *in, unsigned int conn, Kmalloc__Request *req)
{
	size_t n;

	req->id = ++in->id;
	n = kmalloc__request__get_packed_size(req);
	if (in->len + 3 + n > sizeof(in->buf)) {
		fprintf(stderr, "gen-corpus: input too long\n");
		exit(1);
	}
	in->buf[in->len++] = (uint8_t)conn;
	in->buf[in->len++] = (uint8_t)n;
	in->buf[in->len++] = (uint8_t)(n >> 8);
	in->len += kmalloc__request__pack(req, in->buf + in->len);
}

static void alloc(struct input *in, unsigned int conn, uint64_t size, uint32_t count, bool slab,
		  uint32_t gfp)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Alloc a = KMALLOC__ALLOC__INIT;
	Kmalloc__SlabAlloc sa = KMALLOC__SLAB_ALLOC__INIT;

	if (slab) {
		sa.size = size;
		sa.count = count;
		sa.gfp = gfp;
		req.body_case = KMALLOC__REQUEST__BODY_SLAB_ALLOC;
		req.slab_alloc = &sa;
	} else {
		a.size = size;
		a.count = count;
		a.gfp = gfp;
		req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
		req.alloc = &a;
	}
	add(in, conn, &req);
}

static void vmalloc(struct input *in, unsigned int conn, uint64_t size, uint32_t gfp)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Vmalloc v = KMALLOC__VMALLOC__INIT;

	v.size = size;
	v.gfp = gfp;
	v.caller = "fuzz_caller";
	v.vaddr = 0x7f0000000000;
	req.body_case = KMALLOC__REQUEST__BODY_VMALLOC;
	req.vmalloc = &v;
	add(in, conn, &req);
}

static void kfree(struct input *in, unsigned int conn, uint64_t id)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Free f = KMALLOC__FREE__INIT;

	f.n_grants = 1;
	f.grants = &id;
	req.body_case = KMALLOC__REQUEST__BODY_FREE;
	req.free = &f;
	add(in, conn, &req);
}

static void release_nop(struct input *in, unsigned int conn, uint64_t id)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;

	req.n_release = 1;
	req.release = &id;
	req.body_case = KMALLOC__REQUEST__BODY_NOP;
	req.nop = &nop;
	add(in, conn, &req);
}

static void export(struct input *in, unsigned int conn, uint64_t grant, uint64_t offset,
		   uint64_t size, uint32_t flags, uint32_t uid, uint32_t max_imports)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Export e = KMALLOC__EXPORT__INIT;

	e.grant = grant;
	e.offset = offset;
	e.size = size;
	e.flags = flags;
	e.uid = uid;
	e.max_imports = max_imports;
	req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
	req.export_grant = &e;
	add(in, conn, &req);
}

static void import(struct input *in, unsigned int conn, uint8_t handle, bool rdonly)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__ImportShare im = KMALLOC__IMPORT_SHARE__INIT;

	im.handle.data = &handle;
	im.handle.len = 1;
	im.rdonly = rdonly;
	req.body_case = KMALLOC__REQUEST__BODY_IMPORT_SHARE;
	req.import_share = &im;
	add(in, conn, &req);
}

static void revoke(struct input *in, unsigned int conn, uint8_t handle)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Revoke rv = KMALLOC__REVOKE__INIT;

	rv.handle.data = &handle;
	rv.handle.len = 1;
	req.body_case = KMALLOC__REQUEST__BODY_REVOKE;
	req.revoke = &rv;
	add(in, conn, &req);
}

static void inspect(struct input *in, unsigned int conn, Kmalloc__Inspect__Table table)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Inspect i = KMALLOC__INSPECT__INIT;

	i.table = table;
	req.body_case = KMALLOC__REQUEST__BODY_INSPECT;
	req.inspect = &i;
	add(in, conn, &req);
}

static void meminfo(struct input *in, unsigned int conn)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__MeminfoRequest m = KMALLOC__MEMINFO_REQUEST__INIT;

	req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
	req.meminfo = &m;
	add(in, conn, &req);
}

static void save(const char *dir, const char *name, const struct input *in)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(in->buf, 1, in->len, f) != in->len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct input in;

	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus DIR\n");
		return 2;
	}

	memset(&in, 0, sizeof(in));
	alloc(&in, 0, 64, 4, false, 0);
	alloc(&in, 1, 4096, 1, false, 0);
	alloc(&in, 0, 3 << 20, 1, false, 0);
	kfree(&in, 0, 1);
	release_nop(&in, 1, 0);
	meminfo(&in, 2);
	save(argv[1], "alloc-free", &in);

	memset(&in, 0, sizeof(in));
	alloc(&in, 0, 256, 8, true, 0);
	vmalloc(&in, 1, 5 << 20, 0);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_SLABINFO);
	inspect(&in, 2, KMALLOC__INSPECT__TABLE__TABLE_VMALLOCINFO);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_BUDDYINFO);
	inspect(&in, 2, KMALLOC__INSPECT__TABLE__TABLE_CLIENTS);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_ACCOUNTS);
	inspect(&in, 2, KMALLOC__INSPECT__TABLE__TABLE_LOOP);
	inspect(&in, 1, KMALLOC__INSPECT__TABLE__TABLE_MAP);
	save(argv[1], "slab-vmalloc-inspect", &in);

	/* uid 0 exports a shareable kmalloc to uid 1000, which imports it
	 * twice; uid 0 revokes, then frees. */
	memset(&in, 0, sizeof(in));
	alloc(&in, 0, 8192, 1, false, GFP_SHARED);
	export(&in, 0, 0, 0, 0, 1, 1000, 0);
	import(&in, 1, 0, false);
	import(&in, 3, 0, true);
	inspect(&in, 2, KMALLOC__INSPECT__TABLE__TABLE_SHARES);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_MAP);
	revoke(&in, 0, 0);
	kfree(&in, 0, 0);
	save(argv[1], "export-import-revoke", &in);

	/* The same in one domain (uid 0 to uid 0), without KM_GFP_SHARED. */
	memset(&in, 0, sizeof(in));
	alloc(&in, 0, 100, 1, false, 0);
	export(&in, 0, 0, 0, 0, 2, 0, 1);
	import(&in, 2, 0, false);
	import(&in, 2, 0, false);
	kfree(&in, 0, 0);
	inspect(&in, 2, KMALLOC__INSPECT__TABLE__TABLE_SHARES);
	save(argv[1], "same-domain-share", &in);

	/* A shared vmalloc exported read-only, imported, re-exported and
	 * imported again; the exporter frees it while imports live. */
	memset(&in, 0, sizeof(in));
	vmalloc(&in, 2, 3 << 20, GFP_SHARED);
	export(&in, 2, 0, 0, 0, 2, 0, 2);
	import(&in, 1, 0, false);
	export(&in, 1, 0, 0, 0, 0, 0, 0);
	import(&in, 0, 1, false);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_SHARES);
	kfree(&in, 2, 0);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_MAP);
	revoke(&in, 1, 1);
	save(argv[1], "vmalloc-share-chain", &in);

	/* Shared slab objects and a big kmalloc; an importer releases its
	 * import, the exporter's connection revokes the other handle. */
	memset(&in, 0, sizeof(in));
	alloc(&in, 1, 512, 1, true, GFP_SHARED);
	alloc(&in, 1, 4 << 20, 1, false, GFP_SHARED);
	export(&in, 1, 0, 512, 512, 0, 0, 1);
	export(&in, 1, 1, 0, 0, 0, 0, 0);
	import(&in, 0, 0, false);
	import(&in, 2, 0, false);
	import(&in, 2, 1, false);
	release_nop(&in, 2, 0);
	inspect(&in, 0, KMALLOC__INSPECT__TABLE__TABLE_SHARES);
	revoke(&in, 3, 1);
	save(argv[1], "slab-large-share", &in);
	return 0;
}
