// SPDX-License-Identifier: MIT
/*
 * test-kmctl.c - the inspector against a real kmallocd with live clients:
 * every subcommand's text parses the way the /proc file it imitates is
 * parsed (slabtop's sscanf for slabinfo, the buddyinfo and meminfo shapes),
 * shows what the clients hold, --json is valid JSON of the shape scripts
 * expect, with integers kept integers, and a user outside the admin group is
 * refused.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
		/* 100 + 1 + the vmalloc area, and the objects the library keeps
		 * on its own lists (they count as held, as per-CPU objects do). */
		ck_assert_uint_ge(grants, 102);
		ck_assert_uint_ge(bytes, 100 * 64 + 131072 + (6u << 20));
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
		{ "top -n 1", "top" },
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
			 " && ! %s --socket %s clients >/dev/null 2>&1",
			 getenv("KMCTL"), daemon_under_test.socket, getenv("KMCTL"),
			 daemon_under_test.socket);
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
	tcase_add_test(tc, test_vmallocinfo_and_clients);
	tcase_add_test(tc, test_json_is_valid);
	tcase_add_test(tc, test_unprivileged_user_refused);
	suite_add_tcase(s, tc);
	return test_daemon_main(&daemon_under_test, s, POOL_SIZE, NULL);
}
