// SPDX-License-Identifier: MIT
/*
 * test-kmctl.c - the inspector against a real kmallocd with live clients:
 * every subcommand's text parses the way the /proc file it imitates is
 * parsed (slabtop's sscanf for slabinfo, the buddyinfo and meminfo shapes),
 * shows what the clients hold, --json is valid JSON of the shape scripts
 * expect, with integers kept integers, `kmctl stats` counts the requests
 * sent through the daemon, and a user outside the admin group is refused.
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
	static const char *const kinds[] = { "hello", "alloc",	 "slab_alloc", "vmalloc",
					     "free",  "meminfo", "inspect",    "nop" };

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
		{ "top -n 1", "top" },	   { "stats", "object" },
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
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, NULL);
}
