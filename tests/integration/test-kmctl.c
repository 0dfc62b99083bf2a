// SPDX-License-Identifier: MIT
/*
 * test-kmctl.c - the inspector against a real kmallocd with live clients:
 * every subcommand's text parses the way the /proc file it imitates is
 * parsed (slabtop's sscanf for slabinfo, the buddyinfo and meminfo shapes),
 * shows what the clients hold, --json is valid JSON of the shape scripts
 * expect, with integers kept integers, `kmctl stats` counts the requests
 * sent through the daemon, and a user outside the admin group is refused.
 * `kmctl map` shows what was allocated, frame by frame (and as SVG an XML
 * parser reads), vmallocinfo names the owner, `kmctl shares` lists shares
 * with their holders.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "daemon.h"
#include "kmclient.h"
#include "rawclient.h"
#include "testutil.h"

#define POOL_SIZE (64ull << 20)

static struct test_daemon daemon_under_test;

/* Runs kmctl with @args; returns its stdout (malloc'd) and exit status. */
static char *kmctl(const char *args, int *status)
{
	char cmd[512], *out = NULL;
	size_t len = 0;
	FILE *p, *mem = open_memstream(&out, &len);
	char buf[4096];
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s --socket %s %s 2>/dev/null", getenv("KMCTL"),
		 daemon_under_test.socket, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, mem);
	*status = pclose(p);
	fclose(mem);
	return out;
}

static char *kmctl_ok(const char *args)
{
	int status;
	char *out = kmctl(args, &status);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kmctl %s: status %#x", args,
		      status);
	return out;
}

/* A client holding a known set of grants while the test looks. */
static km_client *holder;
static void *vm_area;

static void hold_some_memory(void)
{
	int i;

	holder = km_connect(daemon_under_test.socket);
	ck_assert_ptr_nonnull(holder);
	for (i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(km_kmalloc(holder, 64, KM_GFP_KERNEL));
	ck_assert_ptr_nonnull(km_kmalloc(holder, 100000, KM_GFP_KERNEL));
	vm_area = km_vmalloc(holder, 5u << 20);
	ck_assert_ptr_nonnull(vm_area);
}

START_TEST(test_meminfo)
{
	char *out, *line, *save;
	regex_t re;
	unsigned long long total = 0, vmalloc_used = 0;
	int lines = 0;

	hold_some_memory();
	out = kmctl_ok("meminfo");
	ck_assert_int_eq(regcomp(&re, "^[A-Za-z_()]+: +[0-9]+( kB)?$", REG_EXTENDED | REG_NOSUB),
			 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad meminfo line: '%s'", line);
		sscanf(line, "MemTotal: %llu kB", &total);
		sscanf(line, "VmallocUsed: %llu kB", &vmalloc_used);
		lines++;
	}
	ck_assert_int_ge(lines, 16);
	ck_assert_uint_eq(total, POOL_SIZE >> 10);
	ck_assert_uint_eq(vmalloc_used, 6144); /* 5 MiB -> 3 frames */
	regfree(&re);
	free(out);
}
END_TEST

START_TEST(test_slabinfo_parses_like_slabtop)
{
	char *out, *line, *save, *mem;
	unsigned long long slab_kb = 0, caches_kb = 0;
	int n = 0, found64 = 0;

	hold_some_memory();
	mem = kmctl_ok("meminfo");
	for (line = strtok_r(mem, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		sscanf(line, "Slab: %llu kB", &slab_kb);
	free(mem);
	out = kmctl_ok("slabinfo");
	line = strtok_r(out, "\n", &save);
	ck_assert_str_eq(line, "slabinfo - version: 2.1");
	line = strtok_r(NULL, "\n", &save);
	ck_assert_msg(strncmp(line, "# name            <active_objs> <num_objs> <objsize>", 52) ==
			      0,
		      "header: %s", line);
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[129];
		unsigned int active, num, objsize, objperslab, pages, slabs_active, slabs;

		/* procps library/slabinfo.c: parse_slabinfo20() */
		ck_assert_int_eq(sscanf(line,
					"%128s %u %u %u %u %u : tunables %*u %*u %*u : "
					"slabdata %u %u %*u",
					name, &active, &num, &objsize, &objperslab, &pages,
					&slabs_active, &slabs),
				 8);
		ck_assert_uint_le(active, num);
		ck_assert_uint_eq(slabs_active, slabs);
		caches_kb += (unsigned long long)slabs * pages * 4; /* slabtop's CACHE SIZE */
		if (!strcmp(name, "kmalloc-64")) {
			found64 = 1;
			ck_assert_uint_ge(active, 100);
			ck_assert_uint_eq(objsize, 64);
			ck_assert_uint_eq(objperslab, 64);
			ck_assert_uint_eq(pages, 1);
		}
		n++;
	}
	ck_assert_int_eq(n, 13);
	ck_assert(found64);
	/* Slab is the caches plus large kmallocs (not in slabinfo), as in the kernel:
	 * here the 100000-byte object's 128 KiB. */
	ck_assert_uint_eq(slab_kb, caches_kb + 128);
	free(out);
}
END_TEST

/* ---- figures that add up while a client churns ---------------------------- */

#define CHURN_LIVE 2000

/* The kmalloc class serving @size (1..8192): slabinfo's row. */
static int test_class_index(size_t size)
{
	static const size_t classes[KM_NR_KMALLOC_CLASSES] = { 8,   16,	 32,   64,   96,   128, 192,
							       256, 512, 1024, 2048, 4096, 8192 };
	int i = 0;

	while (i < KM_NR_KMALLOC_CLASSES - 1 && classes[i] < size)
		i++;
	return i;
}

/* Objects the churner has in use, per class (shared with the test). */
static unsigned long *churn_live;

static void *churn_thread(void *arg)
{
	km_client *c = arg;
	void *live[CHURN_LIVE] = { 0 };
	int cls[CHURN_LIVE];
	uint64_t r = (uint64_t)(uintptr_t)&live | 1;

	for (;;) {
		unsigned int k;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		k = (unsigned int)(r % CHURN_LIVE);
		if (live[k]) {
			__atomic_sub_fetch(&churn_live[cls[k]], 1, __ATOMIC_RELAXED);
			km_kfree(c, live[k]);
			live[k] = NULL;
		} else {
			size_t size = 1 + (r >> 20) % 8192;

			live[k] = km_kmalloc(c, size, KM_GFP_KERNEL);
			if (!live[k])
				_exit(3);
			cls[k] = test_class_index(size);
			__atomic_add_fetch(&churn_live[cls[k]], 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static pid_t spawn_churner(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		km_client *c = km_connect(daemon_under_test.socket);
		pthread_t th;

		if (!c)
			_exit(2);
		if (pthread_create(&th, NULL, churn_thread, c))
			_exit(2);
		churn_thread(c);
	}
	return pid;
}

/* meminfo's own sum; returns Slab in kB. */
static unsigned long long meminfo_checked(void)
{
	unsigned long long total = 0, free_kb = 0, slab = 0, vm = 0, bad = 0;
	char *out = kmctl_ok("meminfo"), *line, *save;

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		sscanf(line, "MemTotal: %llu kB", &total);
		sscanf(line, "MemFree: %llu kB", &free_kb);
		sscanf(line, "Slab: %llu kB", &slab);
		sscanf(line, "VmallocUsed: %llu kB", &vm);
		sscanf(line, "HardwareCorrupted: %llu kB", &bad);
	}
	free(out);
	ck_assert_msg(total == free_kb + slab + vm + bad,
		      "MemTotal %llu != MemFree %llu + Slab %llu + VmallocUsed %llu + "
		      "HardwareCorrupted %llu",
		      total, free_kb, slab, vm, bad);
	return slab;
}

/* slabinfo's caches in kB (slabtop's CACHE SIZE); each class's active
 * objects into @active. */
static unsigned long long slabinfo_checked(unsigned long *active)
{
	unsigned long long kb = 0;
	char *out = kmctl_ok("slabinfo"), *line, *save;
	int row = 0;

	strtok_r(out, "\n", &save);
	strtok_r(NULL, "\n", &save);
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[129];
		unsigned int act, num, objsize, objperslab, pages, slabs_active, slabs;

		ck_assert_int_eq(sscanf(line,
					"%128s %u %u %u %u %u : tunables %*u %*u %*u : "
					"slabdata %u %u %*u",
					name, &act, &num, &objsize, &objperslab, &pages,
					&slabs_active, &slabs),
				 8);
		ck_assert_uint_le(act, num);
		ck_assert_uint_eq(num, slabs * objperslab);
		ck_assert_int_lt(row++, KM_NR_KMALLOC_CLASSES);
		active[test_class_index(objsize)] = act;
		kb += (unsigned long long)slabs * pages * 4;
	}
	free(out);
	ck_assert_int_eq(row, KM_NR_KMALLOC_CLASSES);
	return kb;
}

/*
 * A client churns small objects from two threads. Running, every meminfo
 * adds up on its own. Stopped at arbitrary moments (SIGSTOP: mid-request,
 * magazines half full), with nothing drained: Slab is exactly slabinfo's
 * caches, and every class counts at least the objects the client has in
 * use as active (the rest of its slabs too, as the kernel counts a CPU's
 * slab). Killed, everything comes back.
 */
START_TEST(test_figures_add_up_while_churning)
{
	unsigned long active[KM_NR_KMALLOC_CLASSES];
	unsigned long long slab_before, slab_kb, caches_kb;
	int round, status;
	pid_t pid;

	churn_live = mmap(NULL, KM_NR_KMALLOC_CLASSES * sizeof(*churn_live), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(churn_live, MAP_FAILED);
	memset(churn_live, 0, KM_NR_KMALLOC_CLASSES * sizeof(*churn_live));
	slab_before = meminfo_checked();
	pid = spawn_churner();
	for (round = 0; round < 8; round++) {
		usleep(30000);
		meminfo_checked();
		ck_assert_int_eq(kill(pid, SIGSTOP), 0);
		ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
		ck_assert(WIFSTOPPED(status));
		/* A request it sent just before may still be on its way. */
		usleep(20000);
		slab_kb = meminfo_checked();
		caches_kb = slabinfo_checked(active);
		ck_assert_uint_eq(slab_kb, caches_kb);
		ck_assert_uint_eq(slab_kb, meminfo_checked());
		for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
			ck_assert_msg(active[i] >= churn_live[i],
				      "class %d: %lu active, the client uses %lu", i, active[i],
				      churn_live[i]);
		ck_assert_int_eq(kill(pid, SIGCONT), 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	for (round = 0; round < 300 && meminfo_checked() > slab_before; round++)
		usleep(10000);
	slabinfo_checked(active);
	for (int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		ck_assert_uint_eq(active[i], 0);
	munmap(churn_live, KM_NR_KMALLOC_CLASSES * sizeof(*churn_live));
}
END_TEST

START_TEST(test_buddyinfo)
{
	char *out, *line, *save, *mem;
	unsigned long long memfree = 0, pages = 0;
	int zones = 0;

	hold_some_memory();
	mem = kmctl_ok("meminfo");
	out = kmctl_ok("buddyinfo");
	for (line = strtok_r(mem, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		sscanf(line, "MemFree: %llu kB", &memfree);
	free(mem);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long v[11];
		char zone[32];

		ck_assert_int_eq(sscanf(line,
					"Node 0, zone %31s %lu %lu %lu %lu %lu %lu %lu %lu %lu "
					"%lu %lu",
					zone, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
					&v[7], &v[8], &v[9], &v[10]),
				 12);
		ck_assert_uint_eq(line[strlen(line) - 1], ' '); /* the kernel's trailing space */
		for (int o = 0; o < 11; o++)
			pages += (unsigned long long)v[o] << o;
		if (zones == 0)
			ck_assert_str_eq(zone, "free");
		else
			ck_assert_str_eq(zone, "uid0");
		zones++;
	}
	ck_assert_int_eq(zones, 2); /* the frame allocator and root's domain */
	/* As on the kernel, free pages summed over buddyinfo are MemFree. */
	ck_assert_uint_eq(pages * 4, memfree);
	free(out);
}
END_TEST

START_TEST(test_vmallocinfo_and_clients)
{
	char *out, needle[64];
	int status;

	hold_some_memory();
	out = kmctl_ok("vmallocinfo");
	snprintf(needle, sizeof(needle), "0x%016lx-0x%016lx %7lu", (unsigned long)vm_area,
		 (unsigned long)vm_area + (8ul << 20), 8ul << 20);
	ck_assert_msg(strstr(out, needle) != NULL, "'%s' not in:\n%s", needle, out);
	ck_assert_ptr_nonnull(strstr(out, " pages=1536 vmalloc"));
	free(out);

	out = kmctl_ok("clients");
	{
		char *line, *save;
		unsigned long long grants = 0, bytes = 0;
		int pid, found = 0;

		for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			unsigned int uid, domain, conn;

			if (sscanf(line, "%d %u %u %u %llu %llu", &pid, &uid, &domain, &conn,
				   &grants, &bytes) == 6 &&
			    pid == (int)getpid()) {
				found = 1;
				break;
			}
		}
		ck_assert_msg(found, "our pid %d is not listed", (int)getpid());
		/* Two slabs of kmalloc-64 at least (the library carves the 100
		 * objects from whole slabs, one grant each, and may hold more),
		 * the large kmalloc and the vmalloc area. */
		ck_assert_uint_ge(grants, 4);
		ck_assert_uint_ge(bytes, 2 * 4096 + 131072 + (6u << 20));
	}
	free(out);

	out = kmctl_ok("top -n 1");
	ck_assert_ptr_nonnull(strstr(out, "Active / Total Objects"));
	free(out);

	out = kmctl("no-such-command", &status);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	free(out);
}
END_TEST

/* ---- stats: the event loop's own figures --------------------------------- */

struct stats {
	unsigned long long requests, request_max_us, over_1ms, hist[5], teardown_turns;
	unsigned long long teardown_max_us, tick_max_us, accept_max_us, uptime_s, grants;
	unsigned long long connections;
	char kind[64];
	int lines;
};

/* A request body's name as `kmctl stats` gives the worst one's. */
static bool is_request_kind(const char *kind)
{
	static const char *const kinds[] = { "hello",  "alloc",	  "slab_alloc", "vmalloc",
					     "free",   "meminfo", "inspect",	"export",
					     "import", "revoke",  "nop" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kind, kinds[i]))
			return true;
	return false;
}

/* `kmctl stats`, every line checked to be "name value" and read. */
static void stats_read(struct stats *st)
{
	static const char *const hist[5] = { "10us", "100us", "1ms", "10ms", "inf" };
	char *out = kmctl_ok("stats"), *line, *save;
	regex_t re;

	memset(st, 0, sizeof(*st));
	ck_assert_int_eq(regcomp(&re, "^[a-z0-9_]+ [a-z0-9_-]+$", REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64], value[64];

		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad stats line: '%s'", line);
		ck_assert_int_eq(sscanf(line, "%63s %63s", name, value), 2);
		st->lines++;
		if (!strcmp(name, "request_max_kind")) {
			snprintf(st->kind, sizeof(st->kind), "%s", value);
			continue;
		}
		sscanf(line, "requests %llu", &st->requests);
		sscanf(line, "request_max_us %llu", &st->request_max_us);
		sscanf(line, "requests_over_1ms %llu", &st->over_1ms);
		sscanf(line, "teardown_turns %llu", &st->teardown_turns);
		sscanf(line, "teardown_max_us %llu", &st->teardown_max_us);
		sscanf(line, "tick_max_us %llu", &st->tick_max_us);
		sscanf(line, "accept_max_us %llu", &st->accept_max_us);
		sscanf(line, "uptime_s %llu", &st->uptime_s);
		sscanf(line, "grants %llu", &st->grants);
		sscanf(line, "connections %llu", &st->connections);
		for (int i = 0; i < 5; i++) {
			char key[32];

			snprintf(key, sizeof(key), "request_hist_%s", hist[i]);
			if (!strcmp(name, key))
				st->hist[i] = strtoull(value, NULL, 10);
		}
	}
	regfree(&re);
	free(out);
	ck_assert_int_eq(st->lines, 16);
	ck_assert_uint_eq(st->hist[0] + st->hist[1] + st->hist[2] + st->hist[3] + st->hist[4],
			  st->requests);
	ck_assert_uint_le(st->over_1ms, st->hist[3] + st->hist[4]);
	ck_assert_msg(is_request_kind(st->kind), "worst request of kind '%s'", st->kind);
}

/*
 * Requests through the real daemon show in `kmctl stats`: the count grows by
 * at least what was sent, the histogram adds up to it, a client that left
 * was torn down in timed turns, the scale (grants, connections) is the
 * daemon's, and --json carries the same figures as integers.
 */
START_TEST(test_stats)
{
	struct stats before, after;
	km_meminfo mi;
	km_client *c;
	char cmd[4096];
	int i;

	stats_read(&before);
	hold_some_memory();
	/* A second client: a Hello, 50 Meminfo round trips (the library
	 * answers none itself), a large kmalloc, then it leaves. */
	c = km_connect(daemon_under_test.socket);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(km_get_meminfo(c, &mi), 0);
	ck_assert_ptr_nonnull(km_kmalloc(c, 65536, KM_GFP_KERNEL));
	km_disconnect(c);
	/* Its grants come back over loop turns of their own. */
	for (i = 0; i < 200; i++) {
		stats_read(&after);
		if (after.teardown_turns > before.teardown_turns && after.connections == 2)
			break;
		usleep(10000);
	}
	/* The two Hellos and 50 Meminfos at least, kmctl's own requests too. */
	ck_assert_uint_ge(after.requests, before.requests + 2 + 50 + 2);
	ck_assert_uint_gt(after.teardown_turns, before.teardown_turns);
	ck_assert_uint_ge(after.request_max_us, before.request_max_us);
	ck_assert_uint_ge(after.uptime_s, before.uptime_s);
	/* The holder and this kmctl; the holder's grants at least. */
	ck_assert_uint_eq(after.connections, 2);
	ck_assert_uint_ge(after.grants, 4);

	if (system("python3 -c 'import json' 2>/dev/null") != 0)
		return;
	snprintf(cmd, sizeof(cmd),
		 "%s --socket %s --json stats | python3 -c '"
		 "import json, sys\n"
		 "d = json.load(sys.stdin)\n"
		 "h = [d[\"request_hist_\" + b] for b in (\"10us\", \"100us\", \"1ms\", "
		 "\"10ms\", \"inf\")]\n"
		 "ints = all(type(v) is int for k, v in d.items() if k != \"request_max_kind\")\n"
		 "ok = ints and sum(h) == d[\"requests\"] and d[\"requests\"] > %llu\n"
		 "ok = ok and d[\"teardown_turns\"] >= %llu and d[\"uptime_ns\"] > 0\n"
		 "ok = ok and isinstance(d[\"request_max_kind\"], str) and d[\"grants\"] >= 4\n"
		 "sys.exit(0 if ok else 1)'",
		 getenv("KMCTL"), daemon_under_test.socket, after.requests, after.teardown_turns);
	ck_assert_msg(system(cmd) == 0, "kmctl --json stats: not the figures expected");
}
END_TEST

/*
 * Reads one kmctl --json document on stdin and checks what scripts rely on:
 * the top-level shape (argv[1]: "object"; "rows", a non-empty array of
 * objects; "top", an object of slab, meminfo and clients), and that every
 * number is an integer but slabtop's average object size. As root, the limits
 * of uid 0 (none) must read back as exactly UINT64_MAX. No single quotes: the
 * script goes to the shell inside them.
 */
static const char json_check_py[] =
	"import json, sys\n"
	"doc = json.load(sys.stdin)\n"
	"def ints(v, key=None):\n"
	"    if isinstance(v, dict):\n"
	"        return all(ints(x, k) for k, x in v.items())\n"
	"    if isinstance(v, list):\n"
	"        return all(ints(x, key) for x in v)\n"
	"    return not isinstance(v, float) or key == \"avg_obj_size\"\n"
	"shape = sys.argv[1]\n"
	"if shape == \"rows\":\n"
	"    ok = isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc)\n"
	"elif shape == \"top\":\n"
	"    ok = isinstance(doc, dict) and list(doc) == [\"slab\", \"meminfo\", \"clients\"]\n"
	"else:\n"
	"    ok = isinstance(doc, dict)\n"
	"if ok and len(sys.argv) > 2:\n"
	"    ok = any(r[\"uid\"] == 0 and r[\"max_bytes\"] == 2**64 - 1 for r in doc)\n"
	"sys.exit(0 if ok and ints(doc) else 1)\n";

START_TEST(test_json_is_valid)
{
	static const struct {
		const char *args, *shape;
	} subs[] = {
		{ "meminfo", "object" },   { "slabinfo", "rows" }, { "buddyinfo", "rows" },
		{ "vmallocinfo", "rows" }, { "clients", "rows" },  { "limits", "rows" },
		{ "top -n 1", "top" },	   { "stats", "object" },  { "map", "object" },
		{ "shares", "object" },
	};
	char cmd[4096];
	size_t i;

	hold_some_memory();
	if (system("python3 -c 'import json' 2>/dev/null") != 0)
		return; /* the format unit test checks JSON without python */
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		bool root_limits = !strcmp(subs[i].args, "limits") && geteuid() == 0;

		snprintf(cmd, sizeof(cmd), "%s --socket %s --json %s | python3 -c '%s' %s%s",
			 getenv("KMCTL"), daemon_under_test.socket, subs[i].args, json_check_py,
			 subs[i].shape, root_limits ? " root" : "");
		ck_assert_msg(system(cmd) == 0, "kmctl --json %s: not valid JSON of shape %s",
			      subs[i].args, subs[i].shape);
	}
}
END_TEST

START_TEST(test_unprivileged_user_refused)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		char cmd[512];

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		snprintf(cmd, sizeof(cmd),
			 "%s --socket %s slabinfo 2>&1 | grep -q 'Permission denied'"
			 " && ! %s --socket %s clients >/dev/null 2>&1"
			 " && %s --socket %s stats 2>&1 | grep -q 'Permission denied'",
			 getenv("KMCTL"), daemon_under_test.socket, getenv("KMCTL"),
			 daemon_under_test.socket, getenv("KMCTL"), daemon_under_test.socket);
		_exit(system(cmd) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "an unprivileged user could inspect");
}
END_TEST

/* ---- map: one cell per frame ------------------------------------------------ */

#define FRAME_KB 2048ull /* a frame, 2 MiB, in kB */

/* `kmctl map` read back: the header's figures, the cells in order, and the
 * legend's count per cell character. */
struct map_view {
	unsigned int frames, width;
	char *cells;
	unsigned long long counts[128];
	unsigned long long legend[128];
	bool coloured;
};

/* One line of `kmctl map`: a header, a row of cells, or a legend line. */
static void map_line(struct map_view *v, const char *line, size_t *n)
{
	unsigned int first;
	char cells[4097];

	if (sscanf(line, "pool: %u frames of 2 MiB, %u per row", &v->frames, &v->width) == 2) {
		v->cells = calloc(v->frames + 1, 1);
		ck_assert_ptr_nonnull(v->cells);
	} else if (line[0] == ' ' && line[1] == ' ' && line[2] && line[3] == ' ') {
		const char *last = strrchr(line, ' ');

		v->legend[(unsigned char)line[2]] = strtoull(last + 1, NULL, 10);
	} else if (sscanf(line, "%u %4096s", &first, cells) == 2 && v->cells &&
		   strspn(cells, ".dsLvSXm?") == strlen(cells)) {
		ck_assert_uint_eq(first, *n); /* each row led by its first frame */
		ck_assert_uint_le(*n + strlen(cells), v->frames);
		memcpy(v->cells + *n, cells, strlen(cells));
		for (const char *c = cells; *c; c++)
			v->counts[(unsigned char)*c]++;
		*n += strlen(cells);
	}
}

static void map_read(struct map_view *v, const char *args)
{
	char *out = kmctl_ok(args), *line, *save;
	size_t n = 0;

	memset(v, 0, sizeof(*v));
	v->coloured = strchr(out, '\033') != NULL;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		map_line(v, line, &n);
	free(out);
	ck_assert_msg(v->cells, "no map header");
	ck_assert_uint_eq(n, v->frames);
	/* The legend counts what the cells show. */
	for (const char *c = ".dsLvSXm"; *c; c++)
		ck_assert_msg(v->legend[(unsigned char)*c] == v->counts[(unsigned char)*c],
			      "legend says %llu '%c', the map shows %llu",
			      v->legend[(unsigned char)*c], *c, v->counts[(unsigned char)*c]);
}

/* A line of the form "<label>: <value> kB" of `kmctl meminfo`, in kB. */
static unsigned long long meminfo_kb(const char *label)
{
	char *out = kmctl_ok("meminfo"), *p = strstr(out, label);
	unsigned long long v;

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p + strlen(label), ": %llu", &v), 1);
	free(out);
	return v;
}

/* Free pages of buddyinfo's zone @zone ("free": the frame allocator's). */
static unsigned long long buddyinfo_pages(const char *zone)
{
	char *out = kmctl_ok("buddyinfo"), *line, *save;
	unsigned long long pages = 0;

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long v[11];
		char z[32];

		if (sscanf(line, "Node 0, zone %31s %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", z,
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
			   &v[10]) == 12 &&
		    !strcmp(z, zone))
			for (int o = 0; o < 11; o++)
				pages += (unsigned long long)v[o] << o;
	}
	free(out);
	return pages;
}

/* Until only this test's @mine connections and kmctl are connected:
 * earlier tests' clients gone, their grants given back. */
static void wait_for_quiet(unsigned int mine)
{
	struct stats st;

	for (int i = 0; i < 1000; i++) {
		stats_read(&st);
		if (st.connections == mine + 1)
			return;
		usleep(10000);
	}
	ck_abort_msg("clients of earlier tests still connected");
}

/*
 * `kmctl map` after known allocations: a 5 MiB vmalloc is 3 'v' frames (all
 * of VmallocUsed), a 4 MiB kmalloc 2 'L' frames at least, a shareable 3 MiB
 * kmalloc 2 'S' frames, the small objects
 * slab frames ('s' or 'm'), the frame allocator's free frames '.' (its
 * buddyinfo zone), a domain's free frames 'd' at most its free pages; no
 * colours into a pipe; the JSON form says the same.
 */
START_TEST(test_map)
{
	struct map_view v, again;
	unsigned long long vmalloc_kb, free_pages, domain_pages, total_kb;
	char cmd[4096];
	int tries;

	hold_some_memory();
	ck_assert_ptr_nonnull(km_kmalloc(holder, 4u << 20, KM_GFP_KERNEL));
	/* Shareable: 2 frames in a memfd of their own. */
	ck_assert_ptr_nonnull(km_kmalloc(holder, 3u << 20, KM_GFP_KERNEL | KM_GFP_SHARED));
	wait_for_quiet(1);
	/* The figures of one moment: a map, the figures, the same map again
	 * (domains give frames back on a timer). */
	for (tries = 0; tries < 50; tries++) {
		map_read(&v, "map --width 16");
		vmalloc_kb = meminfo_kb("VmallocUsed");
		total_kb = meminfo_kb("MemTotal");
		free_pages = buddyinfo_pages("free");
		domain_pages = buddyinfo_pages("uid0");
		map_read(&again, "map --width 16");
		if (!strcmp(v.cells, again.cells))
			break;
		free(v.cells);
		free(again.cells);
		usleep(20000);
	}
	ck_assert_int_lt(tries, 50);
	ck_assert(!v.coloured);
	ck_assert_uint_eq(v.width, 16);
	ck_assert_uint_eq(v.frames, POOL_SIZE >> 21);
	ck_assert_uint_eq(v.frames * FRAME_KB, total_kb);
	ck_assert_uint_eq(v.counts['v'], 3);
	ck_assert_uint_eq(v.counts['v'] * FRAME_KB, vmalloc_kb);
	ck_assert_uint_ge(v.counts['L'], 2);
	ck_assert_uint_ge(v.counts['s'] + v.counts['m'], 1);
	ck_assert_uint_eq(v.counts['.'] * 512, free_pages);
	ck_assert_uint_le(v.counts['d'] * 512, domain_pages);
	ck_assert_uint_eq(v.counts['S'], 2);
	ck_assert_uint_eq(v.counts['X'] + v.counts['?'], 0);
	free(v.cells);
	free(again.cells);

	if (system("python3 -c 'import json' 2>/dev/null") != 0)
		return;
	/* Counts add up to the frames; every frame but free and quarantined
	 * ones is a domain's; 3 vmalloc frames. */
	snprintf(cmd, sizeof(cmd),
		 "%s --socket %s --json map | python3 -c '"
		 "import json, sys\n"
		 "d = json.load(sys.stdin)\n"
		 "f = d[\"frames\"]\n"
		 "ok = d[\"nr_frames\"] == len(f) == %u and d[\"frame_size\"] == 2097152\n"
		 "ok = ok and sum(d[\"counts\"].values()) == len(f)\n"
		 "ok = ok and d[\"counts\"][\"vmalloc\"] == 3\n"
		 "ok = ok and all((x[\"domain\"] == 0) == (x[\"kind\"] in (\"free\", "
		 "\"quarantined\")) for x in f)\n"
		 "ok = ok and all(x[\"frame\"] == i for i, x in enumerate(f))\n"
		 "ok = ok and sum(x[\"frames\"] for x in d[\"domains\"]) == "
		 "len(f) - d[\"counts\"][\"free\"] - d[\"counts\"][\"quarantined\"]\n"
		 "sys.exit(0 if ok else 1)'",
		 getenv("KMCTL"), daemon_under_test.socket, (unsigned int)(POOL_SIZE >> 21));
	ck_assert_msg(system(cmd) == 0, "kmctl --json map: not the figures expected");
}
END_TEST

/* Whether @path is well-formed XML whose root is an SVG <svg> with one
 * <rect> with a <title> per frame: 0 yes, 1 no, 77 no python3. */
static int svg_check(const char *path, unsigned int frames)
{
	char cmd[2048];
	int status;

	if (system("python3 -c 'import xml.etree.ElementTree' 2>/dev/null") != 0)
		return 77;
	snprintf(cmd, sizeof(cmd),
		 "python3 -c '"
		 "import sys, xml.etree.ElementTree as ET\n"
		 "ns = \"{http://www.w3.org/2000/svg}\"\n"
		 "root = ET.parse(sys.argv[1]).getroot()\n"
		 "titles = [r.find(ns + \"title\").text for r in root.iter(ns + \"rect\")\n"
		 "          if r.find(ns + \"title\") is not None]\n"
		 "ok = root.tag == ns + \"svg\" and len(titles) == %u\n"
		 "ok = ok and all(t.startswith(\"frame %%d: \" %% i) for i, t in "
		 "enumerate(titles))\n"
		 "ok = ok and sum(\"vmalloc, domain \" in t for t in titles) == 3\n"
		 "sys.exit(0 if ok else 1)' %s",
		 frames, path);
	status = system(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* `kmctl map --svg FILE`: a well-formed SVG document, one titled rect per
 * frame; options that do not go with map, or with each other, refused. */
START_TEST(test_map_svg)
{
	char path[160], args[256], *out, *doc;
	size_t len = 0;
	int status, rc;
	FILE *f;

	hold_some_memory();
	snprintf(path, sizeof(path), "%s/map.svg", daemon_under_test.dir);
	snprintf(args, sizeof(args), "map --svg %s", path);
	out = kmctl_ok(args);
	ck_assert_str_eq(out, ""); /* the picture goes to the file only */
	free(out);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(getdelim(&doc, &len, '\0', f) > 0, 1);
	fclose(f);
	ck_assert_int_eq(strncmp(doc, "<?xml ", 6), 0);
	ck_assert_ptr_nonnull(strstr(doc, "</svg>\n"));
	free(doc);
	rc = svg_check(path, (unsigned int)(POOL_SIZE >> 21));
	ck_assert_msg(rc == 0 || rc == 77, "%s: not the SVG expected", path);
	unlink(path);

	out = kmctl_ok("map --svg - --width 8");
	ck_assert_int_eq(strncmp(out, "<?xml ", 6), 0);
	free(out);
	for (const char *bad = "map --svg x --json\0meminfo --svg x\0map --width 0\0"
			       "slabinfo --width 8\0map --width 99999\0map extra\0";
	     *bad; bad += strlen(bad) + 1) {
		out = kmctl(bad, &status);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2,
			      "kmctl %s: status %#x, not a usage error", bad, status);
		free(out);
	}
}
END_TEST

/* ---- owners and shares --------------------------------------------------------- */

/* vmallocinfo names each area's owner after the kernel's fields, which
 * still read as the kernel's; an area another connection imported is
 * listed once, for its owner, with shared=2. */
START_TEST(test_vmallocinfo_owner)
{
	char *out, *line, *save, needle[64], want[96], shared_needle[64], shared_want[96];
	int found = 0, shared = 0;
	km_client *other;
	km_handle h;
	void *area;
	size_t imported;

	hold_some_memory();
	wait_for_quiet(1); /* no area of an earlier test's client at our address */
	area = km_vmalloc(holder, 3u << 20);
	ck_assert_ptr_nonnull(area);
	ck_assert_int_eq(km_export(holder, area, &h), 0);
	other = km_connect(daemon_under_test.socket);
	ck_assert_ptr_nonnull(other);
	ck_assert_ptr_nonnull(km_import(other, &h, &imported));
	ck_assert_uint_ge(imported, 3u << 20); /* whole frames */
	snprintf(shared_needle, sizeof(shared_needle), "0x%016lx-", (unsigned long)area);
	snprintf(shared_want, sizeof(shared_want),
		 " pages=1024 vmalloc N0=1024 pid=%d comm=%s shared=2", (int)getpid(),
		 program_invocation_short_name);
	out = kmctl_ok("vmallocinfo");
	snprintf(needle, sizeof(needle), "0x%016lx-", (unsigned long)vm_area);
	snprintf(want, sizeof(want), " vmalloc N0=1536 pid=%d comm=%s", (int)getpid(),
		 program_invocation_short_name);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end, size;
		char caller[128], pages[32];

		/* As tools read /proc/vmallocinfo: range, size, then tokens. */
		ck_assert_int_ge(sscanf(line, "0x%lx-0x%lx %lu %127s %31s", &start, &end, &size,
					caller, pages),
				 4);
		ck_assert_uint_eq(end - start, size);
		ck_assert_ptr_nonnull(strstr(line, " pid="));
		ck_assert_ptr_nonnull(strstr(line, " comm="));
		if (strstr(line, " shared="))
			shared++;
		if (!strncmp(line, shared_needle, strlen(shared_needle)))
			ck_assert_msg(strstr(line, shared_want) &&
					      !strcmp(strstr(line, shared_want), shared_want),
				      "'%s' does not end in '%s'", line, shared_want);
		if (strncmp(line, needle, strlen(needle)))
			continue;
		found++;
		ck_assert_msg(strstr(line, want) && !strcmp(strstr(line, want), want),
			      "'%s' does not end in '%s'", line, want);
	}
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(shared, 1);
	free(out);
	km_disconnect(other);
}
END_TEST

static const char shares_header[] = "# handle         share kind                 size domain "
				    "exporter                 state       age expires flags       "
				    "     holders\n";

/* Nothing exported: the header alone, and {"rows": []}. */
START_TEST(test_shares_none)
{
	char *out;

	wait_for_quiet(0); /* no share of an earlier test's client left */
	out = kmctl_ok("shares");
	ck_assert_str_eq(out, shares_header);
	free(out);
	out = kmctl_ok("--json shares");
	ck_assert_str_eq(out, "{\n  \"rows\": [\n  ]\n}\n");
	free(out);
}
END_TEST

/* Request helpers for the share test, over raw connections. */
static Kmalloc__Reply *raw_export(int fd, uint64_t id, uint64_t grant, uint32_t max_imports)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Export body = KMALLOC__EXPORT__INIT;

	body.grant = grant;
	body.max_imports = max_imports;
	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_EXPORT_GRANT;
	req.export_grant = &body;
	return raw_call(fd, &req, NULL);
}

static Kmalloc__Reply *raw_import(int fd, uint64_t id, ProtobufCBinaryData handle, bool rdonly)
{
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__ImportShare body = KMALLOC__IMPORT_SHARE__INIT;
	int memfd = -1;
	Kmalloc__Reply *reply;

	body.handle = handle;
	body.rdonly = rdonly;
	req.id = id;
	req.body_case = KMALLOC__REQUEST__BODY_IMPORT_SHARE;
	req.import_share = &body;
	reply = raw_call(fd, &req, &memfd);
	if (memfd >= 0)
		close(memfd);
	return reply;
}

/* A kmalloc grant of connection a, exported (3 imports at most) and
 * imported twice by connection b, the second time read-only. */
struct share_setup {
	int a, b;
	uint64_t grant, size, imports[2];
	char handle[17]; /* the handle's public part, as kmctl shows it */
};

static void share_setup(struct share_setup *s)
{
	Kmalloc__Reply *r, *exp;

	s->a = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	s->b = raw_connect_hello(daemon_under_test.socket, NULL, NULL);
	ck_assert_int_ge(s->a, 0);
	ck_assert_int_ge(s->b, 0);
	r = raw_alloc(s->a, 2, 100000, KM_GFP_KERNEL, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	s->grant = r->alloc->grants[0]->id;
	s->size = r->alloc->grants[0]->size; /* what is shared: all of it */
	kmalloc__reply__free_unpacked(r, NULL);
	exp = raw_export(s->a, 3, s->grant, 3);
	ck_assert_ptr_nonnull(exp);
	ck_assert_msg(exp->error == 0, "export: %s", exp->message);
	ck_assert_uint_eq(exp->export_grant->handle.len, 32);
	for (int i = 0; i < 8; i++)
		snprintf(s->handle + 2 * i, 3, "%02x", exp->export_grant->handle.data[i]);
	for (int i = 0; i < 2; i++) {
		r = raw_import(s->b, 4 + (uint64_t)i, exp->export_grant->handle, i == 1);
		ck_assert_ptr_nonnull(r);
		ck_assert_msg(r->error == 0, "import: %s", r->message);
		s->imports[i] = r->import_share->id;
		kmalloc__reply__free_unpacked(r, NULL);
	}
	kmalloc__reply__free_unpacked(exp, NULL);
}

/* `kmctl --json shares`: one row of @size bytes, imported twice, held by
 * the exporter and two imports, one read-only. */
static void shares_json_check(uint64_t size)
{
	char cmd[2048];

	if (system("python3 -c 'import json' 2>/dev/null") != 0)
		return;
	snprintf(cmd, sizeof(cmd),
		 "%s --socket %s --json shares | python3 -c '"
		 "import json, sys\n"
		 "r = json.load(sys.stdin)[\"rows\"]\n"
		 "ok = len(r) == 1 and r[0][\"size\"] == %llu and r[0][\"imports\"] == 2\n"
		 "h = r[0][\"holders\"]\n"
		 "ok = ok and len(h) == 3 and sum(x[\"exporter\"] for x in h) == 1\n"
		 "ok = ok and sum(x[\"rdonly\"] for x in h) == 1\n"
		 "sys.exit(0 if ok else 1)'",
		 getenv("KMCTL"), daemon_under_test.socket, (unsigned long long)size);
	ck_assert_msg(system(cmd) == 0, "kmctl --json shares: not the share expected");
}

static void raw_free_ok(int fd, const uint64_t *ids, size_t n)
{
	Kmalloc__Reply *r = raw_free(fd, 10, ids, n);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);
}

/*
 * A 100000-byte kmalloc (a 128 KiB grant) exported (at most 3 imports) and
 * imported twice, once read-only: one line, the handle as its text form
 * begins, the exporter starred, the read-only import marked, uses=2/3,
 * live; --json the same as integers. The exporter's free leaves the share
 * to the importers; their frees end it.
 */
START_TEST(test_shares_listed)
{
	struct share_setup s;
	char *out, exporter[32], line[512], *p, size[32];

	wait_for_quiet(0);
	share_setup(&s);
	out = kmctl_ok("shares");
	ck_assert_int_eq(strncmp(out, shares_header, strlen(shares_header)), 0);
	p = strstr(out, s.handle);
	ck_assert_msg(p && p[-1] == '\n', "handle %s not listed:\n%s", s.handle, out);
	ck_assert_int_eq(sscanf(p, "%511[^\n]", line), 1);
	snprintf(exporter, sizeof(exporter), "*%d:", (int)getpid());
	snprintf(size, sizeof(size), " %llu ", (unsigned long long)s.size);
	ck_assert_msg(strstr(line, " kmalloc ") && strstr(line, size) && strstr(line, " live ") &&
			      strstr(line, " uses=2/3 ") && strstr(line, exporter) &&
			      strstr(line, "):ro"),
		      "share line: %s", line);
	free(out);
	shares_json_check(s.size);

	/* The exporter's free: the importers still hold it. */
	raw_free_ok(s.a, &s.grant, 1);
	out = kmctl_ok("shares");
	ck_assert_ptr_nonnull(strstr(out, s.handle));
	ck_assert_ptr_null(strstr(out, exporter));
	free(out);
	raw_free_ok(s.b, s.imports, 2);
	out = kmctl_ok("shares");
	ck_assert_str_eq(out, shares_header);
	free(out);
	close(s.a);
	close(s.b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kmctl");
	TCase *tc = tcase_create("kmctl");

	if (!getenv("KMCTL")) {
		fprintf(stderr, "KMCTL is not set (run through meson test)\n");
		return EXIT_FAILURE;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_meminfo);
	tcase_add_test(tc, test_slabinfo_parses_like_slabtop);
	tcase_add_test(tc, test_buddyinfo);
	tcase_add_test(tc, test_figures_add_up_while_churning);
	tcase_add_test(tc, test_vmallocinfo_and_clients);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_json_is_valid);
	tcase_add_test(tc, test_unprivileged_user_refused);
	tcase_add_test(tc, test_map);
	tcase_add_test(tc, test_map_svg);
	tcase_add_test(tc, test_vmallocinfo_owner);
	tcase_add_test(tc, test_shares_none);
	tcase_add_test(tc, test_shares_listed);
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, NULL);
}
