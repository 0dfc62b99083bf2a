// SPDX-License-Identifier: MIT
/*
 * test-settings.c - sizes with suffixes, each setting by key, the config
 * file, and flags overriding the file.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"
#include "testutil.h"

START_TEST(test_parse_size)
{
	static const struct { const char *s; uint64_t v; int err; } cases[] = {
		{ "4096", 4096, 0 }, { "64K", 64 << 10, 0 }, { "64k", 64 << 10, 0 },
		{ "256M", 256ull << 20, 0 }, { "2G", 2ull << 30, 0 }, { "1T", 1ull << 40, 0 },
		{ "16MiB", 16ull << 20, 0 }, { "0x1000", 4096, 0 }, { "8MB", 8ull << 20, 0 },
		{ "", 0, -1 }, { "-1", 0, -1 }, { "12Q", 0, -1 }, { "M", 0, -1 },
		{ "99999999999999999999", 0, -1 }, { "17179869184G", 0, -1 },
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
	ck_assert_uint_eq(cfg.pool_size, 32ull << 20);	/* the flag wins */
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

int main(void)
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("settings");
	int failed;

	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_set_keys);
	tcase_add_test(tc, test_file_then_flags);
	tcase_add_test(tc, test_bad_file_and_flags);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
