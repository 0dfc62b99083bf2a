// SPDX-License-Identifier: MIT
/*
 * test-settings.c - sizes with suffixes, each setting by key, the config
 * file, and flags overriding the file; the account settings (shares,
 * grants, connections, reserved connections below max_clients, max_queued,
 * the privileged group and allow lists resolved from names), --limit and
 * the [user:] / [uid:] / [group:] / [gid:] sections, that every
 * built-in default of the table parses, and that every row of the table is
 * documented in `kmallocd --help`, the man page's OPTIONS and the README's
 * settings table, which name nothing else ($KMALLOCD and $KM_SOURCE_ROOT
 * come from meson).
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "settings.h"
#include "testutil.h"

START_TEST(test_parse_size)
{
	static const struct {
		const char *s;
		uint64_t v;
		int err;
	} cases[] = {
		{ "4096", 4096, 0 },
		{ "64K", 64 << 10, 0 },
		{ "64k", 64 << 10, 0 },
		{ "256M", 256ull << 20, 0 },
		{ "2G", 2ull << 30, 0 },
		{ "1T", 1ull << 40, 0 },
		{ "16MiB", 16ull << 20, 0 },
		{ "0x1000", 4096, 0 },
		{ "8MB", 8ull << 20, 0 },
		{ "", 0, -1 },
		{ "-1", 0, -1 },
		{ "12Q", 0, -1 },
		{ "M", 0, -1 },
		{ "99999999999999999999", 0, -1 },
		{ "17179869184G", 0, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		int err = settings_parse_size(cases[i].s, &v);

		if (cases[i].err) {
			ck_assert_msg(err < 0, "%s should be rejected", cases[i].s);
		} else {
			ck_assert_msg(err == 0, "%s should parse", cases[i].s);
			ck_assert_uint_eq(v, cases[i].v);
		}
	}
}
END_TEST

START_TEST(test_set_keys)
{
	struct settings cfg;

	settings_defaults(&cfg);
	ck_assert_uint_eq(cfg.max_packet, 64 * 1024);
	ck_assert_int_eq(cfg.backing, POOL_BACKING_AUTO);
	ck_assert_int_eq(settings_set(&cfg, "pool-size", "128M"), 0);
	ck_assert_uint_eq(cfg.pool_size, 128ull << 20);
	ck_assert_int_eq(settings_set(&cfg, "pool_size", "0"), -EINVAL);
	ck_assert_int_eq(settings_set(&cfg, "require_hugepages", "yes"), 0);
	ck_assert_int_eq(cfg.backing, POOL_BACKING_HUGETLB);
	ck_assert_int_eq(settings_set(&cfg, "backing", "shmem"), 0);
	ck_assert_int_eq(cfg.backing, POOL_BACKING_SHMEM);
	ck_assert_int_eq(settings_set(&cfg, "backing", "nvme"), -EINVAL);
	ck_assert_int_eq(settings_set(&cfg, "max_packet", "16"), -EINVAL);
	ck_assert_int_eq(settings_set(&cfg, "max_packet", "1M"), 0);
	ck_assert_int_eq(settings_set(&cfg, "log_level", "debug"), 0);
	ck_assert_int_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(settings_set(&cfg, "log_level", "loud"), -EINVAL);
	ck_assert_int_eq(settings_set(&cfg, "admin_group", "kmalloc"), 0);
	ck_assert_str_eq(cfg.admin_group, "kmalloc");
	ck_assert_int_eq(settings_set(&cfg, "no_such_key", "1"), -EINVAL);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_file_then_flags)
{
	char path[] = "/tmp/kmsettings.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	char *argv[] = { "kmallocd", "--config", path, "--pool-size", "32M", NULL };
	struct settings cfg;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "# comment\n[kmallocd]\npool_size = 8M\nsocket = /tmp/x.sock\n"
		   "reserve = 4M\nparanoid = yes\n");
	fclose(f);
	ck_assert_int_eq(settings_load(&cfg, 5, argv), 0);
	ck_assert_uint_eq(cfg.pool_size, 32ull << 20); /* the flag wins */
	ck_assert_str_eq(cfg.socket_path, "/tmp/x.sock");
	ck_assert_uint_eq(cfg.reserve, 4ull << 20);
	ck_assert(cfg.paranoid);
	settings_fini(&cfg);
	unlink(path);
}
END_TEST

START_TEST(test_bad_file_and_flags)
{
	char path[] = "/tmp/kmsettings.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	char *bad_file[] = { "kmallocd", "--config", path, NULL };
	char *missing[] = { "kmallocd", "--config", "/nonexistent/kmallocd.conf", NULL };
	char *bad_flag[] = { "kmallocd", "--pool-size", "lots", NULL };
	char *stray[] = { "kmallocd", "extra", NULL };
	struct settings cfg;

	fprintf(f, "pool_size = huge\n");
	fclose(f);
	ck_assert_int_eq(settings_load(&cfg, 3, bad_file), -EINVAL);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, 3, missing), -EINVAL);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, 3, bad_flag), -EINVAL);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, 2, stray), -EINVAL);
	settings_fini(&cfg);
	unlink(path);
}
END_TEST

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])) - 1)

/* A config file with @text; the caller unlinks @path. */
static void write_config(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static const struct limit_rule *rule_of(const struct settings *cfg, enum limit_scope scope,
					uint32_t id)
{
	for (size_t i = 0; i < cfg->nr_limits; i++)
		if (cfg->limits[i].scope == scope && cfg->limits[i].id == id)
			return &cfg->limits[i];
	return NULL;
}

/* Every row's default is a value its own parser takes. */
START_TEST(test_defaults_parse)
{
	const struct setting_info *info;
	struct settings cfg;
	size_t i, n = 0;

	settings_defaults(&cfg);
	for (i = 0; (info = settings_info(i)); i++) {
		ck_assert_ptr_nonnull(info->key);
		ck_assert_ptr_nonnull(info->def);
		ck_assert_ptr_nonnull(info->help);
		if (!info->def[0])
			continue;
		ck_assert_msg(settings_set(&cfg, info->key, info->def) == 0,
			      "built-in default %s = %s does not parse", info->key, info->def);
		n++;
	}
	ck_assert_uint_gt(i, 20);
	ck_assert_uint_gt(n, 10);
	ck_assert_ptr_null(settings_info(i));
	ck_assert_ptr_null(settings_info(SIZE_MAX));
	settings_fini(&cfg);

	/* and what they give */
	settings_defaults(&cfg);
	ck_assert_uint_eq(cfg.uid_max_share, 50);
	ck_assert_uint_eq(cfg.uid_max_grants, 262144);
	ck_assert_uint_eq(cfg.uid_max_connections, 64);
	ck_assert_uint_eq(cfg.uid_max_handles, 4096);
	ck_assert_uint_eq(cfg.max_clients, 1024);
	ck_assert_uint_eq(cfg.reserved_connections, 16);
	ck_assert_uint_eq(cfg.max_queued, 64 * 1024);
	ck_assert_uint_eq(cfg.reserve, UINT64_MAX);
	ck_assert_ptr_null(cfg.privileged_group);
	ck_assert_ptr_null(cfg.allow_users);
	ck_assert_ptr_null(cfg.allow_groups);
	ck_assert_uint_eq(cfg.nr_limits, 0);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_account_settings)
{
	static const struct {
		const char *key, *value;
		int err;
		uint64_t want;
	} cases[] = {
		{ "uid_max_share", "25", 0, 25 },
		{ "uid_max_share", "25%", 0, 25 },
		{ "uid-max-share", "100%", 0, 100 },
		{ "uid_max_share", "1", 0, 1 },
		{ "uid_max_share", "0", -EINVAL, 0 },
		{ "uid_max_share", "0%", -EINVAL, 0 },
		{ "uid_max_share", "101", -EINVAL, 0 },
		{ "uid_max_share", "101%", -EINVAL, 0 },
		{ "uid_max_share", "%", -EINVAL, 0 },
		{ "uid_max_share", "", -EINVAL, 0 },
		{ "uid_max_share", "half", -EINVAL, 0 },
		{ "uid_max_share", "50%%", -EINVAL, 0 },
		{ "uid_max_share", "-5%", -EINVAL, 0 },
		{ "uid_max_grants", "1", 0, 1 },
		{ "uid_max_grants", "1000", 0, 1000 },
		{ "uid-max-grants", "64K", 0, 65536 },
		{ "uid_max_grants", "18446744073709551615", 0, UINT64_MAX },
		{ "uid_max_grants", "0", -EINVAL, 0 },
		{ "uid_max_grants", "-1", -EINVAL, 0 },
		{ "uid_max_grants", "many", -EINVAL, 0 },
		{ "uid_max_connections", "1", 0, 1 },
		{ "uid-max-connections", "64", 0, 64 },
		{ "uid_max_connections", "1048576", 0, 1048576 },
		{ "uid_max_connections", "1048577", -EINVAL, 0 },
		{ "uid_max_connections", "0", -EINVAL, 0 },
		{ "uid_max_handles", "1", 0, 1 },
		{ "uid-max-handles", "64K", 0, 65536 },
		{ "uid_max_handles", "0", -EINVAL, 0 },
		{ "uid_max_handles", "some", -EINVAL, 0 },
		{ "max_queued", "4096", 0, 4096 },
		{ "max-queued", "64K", 0, 65536 },
		{ "max_queued", "16M", 0, 16 << 20 },
		{ "max_queued", "4095", -EINVAL, 0 },
		{ "max_queued", "16777217", -EINVAL, 0 },
		{ "max_queued", "1G", -EINVAL, 0 },
		{ "max_clients", "1", 0, 1 },
		{ "max_clients", "0", -EINVAL, 0 },
		{ "max_clients", "1048577", -EINVAL, 0 },
		{ "reserved_connections", "0", 0, 0 },
		{ "reserved-connections", "100", 0, 100 },
		{ "reserved_connections", "1048577", -EINVAL, 0 },
	};
	struct settings cfg;
	size_t i;

	settings_defaults(&cfg);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got;
		int err = settings_set(&cfg, cases[i].key, cases[i].value);

		ck_assert_msg(err == cases[i].err, "%s = \"%s\": %d, expected %d", cases[i].key,
			      cases[i].value, err, cases[i].err);
		if (err)
			continue;
		if (strstr(cases[i].key, "share"))
			got = cfg.uid_max_share;
		else if (strstr(cases[i].key, "grants"))
			got = cfg.uid_max_grants;
		else if (strstr(cases[i].key, "handles"))
			got = cfg.uid_max_handles;
		else if (strstr(cases[i].key, "uid"))
			got = cfg.uid_max_connections;
		else if (strstr(cases[i].key, "queued"))
			got = cfg.max_queued;
		else if (strstr(cases[i].key, "max_clients"))
			got = cfg.max_clients;
		else
			got = cfg.reserved_connections;
		ck_assert_msg(got == cases[i].want, "%s = \"%s\" gave %" PRIu64, cases[i].key,
			      cases[i].value, got);
	}

	/* names are strings here, resolved by settings_load() */
	ck_assert_int_eq(settings_set(&cfg, "privileged_group", "wheel"), 0);
	ck_assert_str_eq(cfg.privileged_group, "wheel");
	ck_assert_int_eq(settings_set(&cfg, "privileged-group", "kmalloc"), 0);
	ck_assert_str_eq(cfg.privileged_group, "kmalloc");
	ck_assert_int_eq(settings_set(&cfg, "privileged_group", ""), -EINVAL);
	ck_assert_int_eq(settings_set(&cfg, "allow_users", "alice,1000"), 0);
	ck_assert_str_eq(cfg.allow_users, "alice,1000");
	ck_assert_int_eq(settings_set(&cfg, "allow-groups", "users"), 0);
	ck_assert_str_eq(cfg.allow_groups, "users");
	ck_assert_int_eq(settings_set(&cfg, "allow_users", ""), -EINVAL);
	settings_fini(&cfg);
}
END_TEST

/* Only privileged users may take the last reserved_connections slots, so
 * there must be slots left for the others. */
START_TEST(test_reserved_connections)
{
	char *equal[] = { "kmallocd",  "--config",
			  "/dev/null", "--max-clients",
			  "16",	       "--reserved-connections",
			  "16",	       NULL };
	char *above[] = { "kmallocd",  "--config",
			  "/dev/null", "--max-clients",
			  "16",	       "--reserved-connections",
			  "17",	       NULL };
	char *default_reserve[] = {
		"kmallocd", "--config", "/dev/null", "--max-clients", "16", NULL
	};
	char *below[] = { "kmallocd",  "--config",
			  "/dev/null", "--max-clients",
			  "16",	       "--reserved-connections",
			  "15",	       NULL };
	char *none[] = { "kmallocd",  "--config",
			 "/dev/null", "--max-clients",
			 "1",	      "--reserved-connections",
			 "0",	      NULL };
	struct settings cfg;

	ck_assert_int_eq(settings_load(&cfg, ARGC(equal), equal), -EINVAL);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, ARGC(above), above), -EINVAL);
	settings_fini(&cfg);
	/* the default (16) is as much a reservation as a flag */
	ck_assert_int_eq(settings_load(&cfg, ARGC(default_reserve), default_reserve), -EINVAL);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, ARGC(below), below), 0);
	ck_assert_uint_eq(cfg.max_clients, 16);
	ck_assert_uint_eq(cfg.reserved_connections, 15);
	settings_fini(&cfg);
	ck_assert_int_eq(settings_load(&cfg, ARGC(none), none), 0);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_names_resolved)
{
	char *argv[] = { "kmallocd",
			 "--config",
			 "/dev/null",
			 "--privileged-group",
			 "root",
			 "--admin-group",
			 "0",
			 "--allow-users",
			 "root,1000, 1001",
			 "--allow-groups",
			 "0,100",
			 NULL };
	char *unknown[] = { "kmallocd",
			    "--config",
			    "/dev/null",
			    "--privileged-group",
			    "kmtest-no-such-group",
			    "--allow-users",
			    "kmtest-no-such-user,7",
			    NULL };
	char *plain[] = { "kmallocd", "--config", "/dev/null", NULL };
	struct settings cfg;

	ck_assert_int_eq(settings_load(&cfg, ARGC(argv), argv), 0);
	ck_assert(cfg.privileged_gid_valid);
	ck_assert_uint_eq(cfg.privileged_gid, 0);
	ck_assert(cfg.admin_gid_valid);
	ck_assert_uint_eq(cfg.admin_gid, 0);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_uids.nr, 3);
	ck_assert(id_set_has(&cfg.allow_uids, 0));
	ck_assert(id_set_has(&cfg.allow_uids, 1000));
	ck_assert(id_set_has(&cfg.allow_uids, 1001));
	ck_assert(!id_set_has(&cfg.allow_uids, 1002));
	ck_assert_uint_eq(cfg.allow_gids.nr, 2);
	ck_assert(id_set_has(&cfg.allow_gids, 100));
	settings_fini(&cfg);

	/* unknown names: left out (with a warning), never failing open */
	ck_assert_int_eq(settings_load(&cfg, ARGC(unknown), unknown), 0);
	ck_assert(!cfg.privileged_gid_valid);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_uids.nr, 1);
	ck_assert(id_set_has(&cfg.allow_uids, 7));
	settings_fini(&cfg);

	ck_assert_int_eq(settings_load(&cfg, ARGC(plain), plain), 0);
	ck_assert(cfg.allow_all);
	ck_assert(!cfg.privileged_gid_valid);
	ck_assert(!cfg.admin_gid_valid);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_limit_flag)
{
	static const char *const bad[] = {
		"",
		"uid",
		"uid:1000",
		"uid:1000:max_bytes",
		"uid:1000:max_bytes=",
		"uid:1000:bogus=1",
		"uid:1000:max_bytes=lots",
		"uid:1000:max_bytes=0%",
		"uid:1000:max_bytes=101%",
		"uid:1000:max_bytes=%",
		"uid:1000:max_bytes=-1",
		"uid:1000:max_grants=-1",
		"uid:1000:max_connections=4294967296",
		"uid:1000:max_grants=5,max_bytes",
		"host:x:max_bytes=1M",
		"uid::max_bytes=1M",
		":1000:max_bytes=1M",
		"user:kmtest-no-such-user:max_bytes=1M",
		"group:kmtest-no-such-group:max_grants=1",
	};
	char *argv[] = { "kmallocd",
			 "--config",
			 "/dev/null",
			 "--limit",
			 "uid:1000:max_bytes=10M,max_grants=5,max_connections=3",
			 "--limit",
			 "user:root:max_bytes=25%",
			 "--limit",
			 "gid:100:max_connections=2",
			 "--limit",
			 "group:0:max_grants=64K",
			 "--limit",
			 "uid:1000:max_grants=6",
			 NULL };
	char *bad_argv[] = { "kmallocd", "--config", "/dev/null", "--limit", "uid:1000", NULL };
	const struct limit_rule *r;
	struct settings cfg;
	size_t i;

	settings_defaults(&cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(settings_set(&cfg, "limit", bad[i]) == -EINVAL, "--limit %s accepted",
			      bad[i]);
	settings_fini(&cfg);

	ck_assert_int_eq(settings_load(&cfg, ARGC(argv), argv), 0);
	ck_assert_uint_eq(cfg.nr_limits, 4);
	r = rule_of(&cfg, LIMIT_USER, 1000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_BYTES | LIMIT_HAS_GRANTS | LIMIT_HAS_CONNS);
	ck_assert_uint_eq(r->max_bytes, 10 << 20);
	ck_assert_uint_eq(r->max_bytes_pct, 0);
	ck_assert_uint_eq(r->max_grants, 6); /* the later flag wins */
	ck_assert_uint_eq(r->max_connections, 3);
	r = rule_of(&cfg, LIMIT_USER, 0); /* root by name */
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_BYTES);
	ck_assert_uint_eq(r->max_bytes_pct, 25);
	r = rule_of(&cfg, LIMIT_GROUP, 100);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_CONNS);
	ck_assert_uint_eq(r->max_connections, 2);
	r = rule_of(&cfg, LIMIT_GROUP, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_GRANTS);
	ck_assert_uint_eq(r->max_grants, 65536);
	ck_assert_ptr_null(rule_of(&cfg, LIMIT_GROUP, 1000));
	settings_fini(&cfg);

	ck_assert_int_eq(settings_load(&cfg, ARGC(bad_argv), bad_argv), -EINVAL);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_limit_sections)
{
	char path[] = "/tmp/kmsettings.XXXXXX";
	char *argv[] = { "kmallocd", "--config", path, "--limit", "gid:100:max_grants=9", NULL };
	const struct limit_rule *r;
	struct settings cfg;

	write_config(path, "[kmallocd]\nuid_max_share = 30%\nuid_max_grants = 1000\n"
			   "max_queued = 128K\nprivileged_group = 0\n"
			   "[user:root]\nmax_bytes = 1M\n"
			   "[uid:0]\nmax_grants = 10\n"
			   "[group:100]\nmax_bytes = 5%\nmax_connections = 4\n"
			   "[gid:200]\nmax_bytes = 2G\n"
			   "[uid:1000]\nmax_connections = 1\n");
	ck_assert_int_eq(settings_load(&cfg, ARGC(argv), argv), 0);
	ck_assert_uint_eq(cfg.uid_max_share, 30);
	ck_assert_uint_eq(cfg.uid_max_grants, 1000);
	ck_assert_uint_eq(cfg.max_queued, 128 << 10);
	ck_assert(cfg.privileged_gid_valid);
	ck_assert_uint_eq(cfg.nr_limits, 4);
	/* [user:root] and [uid:0] are one rule */
	r = rule_of(&cfg, LIMIT_USER, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_BYTES | LIMIT_HAS_GRANTS);
	ck_assert_uint_eq(r->max_bytes, 1 << 20);
	ck_assert_uint_eq(r->max_grants, 10);
	/* the flag adds to the file's section */
	r = rule_of(&cfg, LIMIT_GROUP, 100);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_BYTES | LIMIT_HAS_GRANTS | LIMIT_HAS_CONNS);
	ck_assert_uint_eq(r->max_bytes_pct, 5);
	ck_assert_uint_eq(r->max_connections, 4);
	ck_assert_uint_eq(r->max_grants, 9);
	r = rule_of(&cfg, LIMIT_GROUP, 200);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->max_bytes, 2ull << 30);
	r = rule_of(&cfg, LIMIT_USER, 1000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->has, LIMIT_HAS_CONNS);
	ck_assert_uint_eq(r->max_connections, 1);
	settings_fini(&cfg);
	unlink(path);
}
END_TEST

START_TEST(test_bad_limit_sections)
{
	static const char *const files[] = {
		"[user:kmtest-no-such-user]\nmax_bytes = 1M\n",
		"[group:kmtest-no-such-group]\nmax_bytes = 1M\n",
		"[uid:1000]\nmax_bytez = 1M\n",
		"[uid:1000]\nmax_bytes = 0%\n",
		"[uid:1000]\nmax_connections = 4294967296\n",
		"[host:1000]\nmax_bytes = 1M\n",
		"[uid:]\nmax_bytes = 1M\n",
		"[kmallocd]\nuid_max_share = 0\n",
		"[kmallocd]\nmax_queued = 1K\n",
		"[kmallocd]\nmax_clients = 8\nreserved_connections = 8\n",
	};
	struct settings cfg;
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[] = "/tmp/kmsettings.XXXXXX";
		char *argv[] = { "kmallocd", "--config", path, NULL };

		write_config(path, files[i]);
		ck_assert_msg(settings_load(&cfg, ARGC(argv), argv) == -EINVAL, "accepted:\n%s",
			      files[i]);
		settings_fini(&cfg);
		unlink(path);
	}
}
END_TEST

/* ---- every row documented, and nothing else ------------------------------ */

/* What kmallocd takes besides the table's rows. */
static const char *const other_flags[] = { "--config", "--help", "--version" };

/* A document's flag cells, one a line: what names the options it lists. */
struct doc {
	const char *name; /* for messages */
	char *cells;
};

/* @key as a flag: "pool_size" -> "--pool-size". */
static void flag_of(const char *key, char *flag, size_t len)
{
	size_t i;

	snprintf(flag, len, "--%s", key);
	for (i = 2; flag[i]; i++)
		if (flag[i] == '_')
			flag[i] = '-';
}

static bool is_flag_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Whether @cells name @flag whole ("--reserve" is not in "--reserved-connections"). */
static bool cells_have_flag(const char *cells, const char *flag)
{
	size_t n = strlen(flag);
	const char *p;

	for (p = strstr(cells, flag); p; p = strstr(p + 1, flag))
		if ((p == cells || !is_flag_char(p[-1])) && !is_flag_char(p[n]))
			return true;
	return false;
}

static bool is_known_flag(const char *flag)
{
	const struct setting_info *info;
	char want[64];
	size_t i;

	for (i = 0; (info = settings_info(i)); i++) {
		flag_of(info->key, want, sizeof(want));
		if (!strcmp(flag, want))
			return true;
	}
	for (i = 0; i < sizeof(other_flags) / sizeof(other_flags[0]); i++)
		if (!strcmp(flag, other_flags[i]))
			return true;
	return false;
}

/* Every row of the table is named by @doc, which names no flag kmallocd
 * does not have; the message lists what is missing, or extra. */
static void check_doc(const struct doc *doc)
{
	const struct setting_info *info;
	char flag[64], missing[1024] = "", unknown[1024] = "";
	const char *p;
	size_t i, n;

	for (i = 0; (info = settings_info(i)); i++) {
		flag_of(info->key, flag, sizeof(flag));
		if (!cells_have_flag(doc->cells, flag))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 " %s", flag);
	}
	for (p = strstr(doc->cells, "--"); p; p = strstr(p + n, "--")) {
		for (n = 2; is_flag_char(p[n]) && n < sizeof(flag) - 1; n++)
			;
		snprintf(flag, sizeof(flag), "%.*s", (int)n, p);
		if ((p == doc->cells || !is_flag_char(p[-1])) && !is_known_flag(flag))
			snprintf(unknown + strlen(unknown), sizeof(unknown) - strlen(unknown),
				 " %s", flag);
	}
	ck_assert_msg(!missing[0] && !unknown[0], "%s: missing setting(s):%s; unknown flag(s):%s",
		      doc->name, missing[0] ? missing : " none", unknown[0] ? unknown : " none");
}

/* Appends [@p, @end) and a newline to @doc's cells. */
static void add_cell(struct doc *doc, const char *p, const char *end)
{
	size_t have = doc->cells ? strlen(doc->cells) : 0, len = (size_t)(end - p);

	doc->cells = realloc(doc->cells, have + len + 2);
	ck_assert_ptr_nonnull(doc->cells);
	memcpy(doc->cells + have, p, len);
	doc->cells[have + len] = '\n';
	doc->cells[have + len + 1] = '\0';
}

/* The whole of @fd until EOF, NUL-terminated. */
static char *read_all(int fd)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t n;

	do {
		if (cap - len < 4096) {
			cap += 65536;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		ck_assert_int_ge(n, 0);
		len += (size_t)n;
	} while (n > 0);
	buf[len] = '\0';
	return buf;
}

/* $KM_SOURCE_ROOT/@rel. */
static char *read_source(const char *rel)
{
	const char *root = getenv("KM_SOURCE_ROOT");
	char path[4096];
	char *text;
	FILE *f;

	ck_assert_msg(root && *root,
		      "KM_SOURCE_ROOT is not set (run the tests through meson test)");
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "re");
	ck_assert_msg(f != NULL, "cannot read %s: %s", path, strerror(errno));
	text = read_all(fileno(f));
	fclose(f);
	return text;
}

/* `$KMALLOCD --help`, which must exit 0. */
static char *kmallocd_help(void)
{
	const char *exe = getenv("KMALLOCD");
	int out[2], status;
	char *text;
	pid_t pid;

	ck_assert_msg(exe && *exe, "KMALLOCD is not set (run the tests through meson test)");
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		execl(exe, exe, "--help", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	text = read_all(out[0]);
	close(out[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s --help: status %#x", exe,
		      status);
	return text;
}

/* The option column of `kmallocd --help`: each indented line that starts
 * with a dash, up to the two spaces before its help text. */
START_TEST(test_rows_in_help)
{
	struct doc doc = { "kmallocd --help", NULL };
	char *text = kmallocd_help(), *line, *p, *end, *gap;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		for (p = line; *p == ' '; p++)
			;
		if (p == line || *p != '-')
			continue;
		gap = strstr(p, "  ");
		add_cell(&doc, p, gap && gap < end ? gap : end);
	}
	ck_assert_msg(doc.cells != NULL, "no options in kmallocd --help:\n%s", text);
	check_doc(&doc);
	free(doc.cells);
	free(text);
}
END_TEST

/* The tags of man/kmallocd.8's OPTIONS (each line after a .TP), where
 * a flag's dashes must be written "\-": "\-" reads as '-' here, and a bare
 * '-' as nothing a flag is made of. */
START_TEST(test_rows_in_man_page)
{
	struct doc doc = { "man/kmallocd.8 (OPTIONS)", NULL };
	char *text = read_source("man/kmallocd.8"), *line, *end, *p, *q;
	bool options = false, after_tp = false;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		if (!strncmp(line, ".SH", 3))
			options = !strncmp(line, ".SH OPTIONS", 11);
		else if (options && after_tp)
			add_cell(&doc, line, end);
		after_tp = options && !strncmp(line, ".TP", 3) && line + 3 == end;
	}
	ck_assert_msg(doc.cells != NULL, "no OPTIONS in man/kmallocd.8");
	for (p = q = doc.cells; *p; p++, q++) {
		if (p[0] == '\\' && p[1] == '-')
			*q = *++p;
		else
			*q = *p == '-' ? '~' : *p;
	}
	*q = '\0';
	check_doc(&doc);
	free(doc.cells);
	free(text);
}
END_TEST

/* The first column of README.md's table of settings. */
START_TEST(test_rows_in_readme)
{
	struct doc doc = { "README.md (table of settings)", NULL };
	char *text = read_source("README.md"), *line, *end, *p;
	bool table = false;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		if (!strncmp(line, "| setting |", 11)) {
			table = true;
			continue;
		}
		if (!table)
			continue;
		if (*line != '|')
			break;
		if (!strncmp(line, "| ---", 5))
			continue;
		/* The first cell ends at the next '|' that is not "\|". */
		for (p = line + 1; p < end && !(*p == '|' && p[-1] != '\\'); p++)
			;
		add_cell(&doc, line + 1, p);
	}
	ck_assert_msg(doc.cells != NULL, "no table of settings in README.md");
	check_doc(&doc);
	free(doc.cells);
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("settings");
	int failed;

	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_set_keys);
	tcase_add_test(tc, test_file_then_flags);
	tcase_add_test(tc, test_bad_file_and_flags);
	tcase_add_test(tc, test_defaults_parse);
	suite_add_tcase(s, tc);
	tc = tcase_create("accounts");
	tcase_add_test(tc, test_account_settings);
	tcase_add_test(tc, test_reserved_connections);
	tcase_add_test(tc, test_names_resolved);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, test_limit_flag);
	tcase_add_test(tc, test_limit_sections);
	tcase_add_test(tc, test_bad_limit_sections);
	suite_add_tcase(s, tc);
	tc = tcase_create("documented");
	tcase_add_test(tc, test_rows_in_help);
	tcase_add_test(tc, test_rows_in_man_page);
	tcase_add_test(tc, test_rows_in_readme);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
