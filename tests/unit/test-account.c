// SPDX-License-Identifier: MIT
/*
 * test-account.c - per-uid accounts (daemon/account.c): the limits a uid
 * works under (defaults for unprivileged uids and root, the privileged
 * group by primary or supplementary gid, [user:] / [uid:] / [group:] /
 * [gid:] rules where the most generous group wins and a user rule wins over
 * groups, percentages of the pool), the allow lists as settings_load()
 * resolves them, reference counting, and account_may_charge() answering
 * -EDQUOT exactly at the boundary, without wrapping near UINT64_MAX.
 *
 * Settings come from settings_defaults() / settings_set_limit() or from
 * settings_load() with a made-up command line and --config /dev/null, so
 * nothing of the host's config is read; numeric ids need no NSS lookup.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "settings.h"
#include "testutil.h"

#define MiB (1ull << 20)
/* Divisible by 100: a share of it is exact however it is computed. */
#define POOL_BYTES (200 * MiB)

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])) - 1)

static void limits_eq(const struct account_limits *l, uint64_t bytes, uint64_t grants,
		      uint64_t conns, bool privileged)
{
	ck_assert_uint_eq(l->max_bytes, bytes);
	ck_assert_uint_eq(l->max_grants, grants);
	ck_assert_uint_eq(l->max_connections, conns);
	ck_assert_int_eq(l->privileged, privileged);
}

static void load(struct settings *cfg, int argc, char **argv)
{
	ck_assert_int_eq(settings_load(cfg, argc, argv), 0);
}

/* ---- defaults ---------------------------------------------------------- */

START_TEST(test_defaults)
{
	struct settings cfg;
	struct accounts a;
	struct account_limits l;
	const gid_t groups[] = { 27, 100 };

	settings_defaults(&cfg);
	accounts_init(&a, &cfg, POOL_BYTES);
	/* unprivileged: half the pool, 262144 grants, 64 connections */
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);
	account_limits_for(&a, 1000, 1000, groups, 2, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);
	/* root: privileged, unlimited, whatever its groups */
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);
	account_limits_for(&a, 0, 1000, groups, 2, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);
	/* gid 0 alone makes nobody privileged */
	account_limits_for(&a, 1000, 0, NULL, 0, &l);
	ck_assert(!l.privileged);

	/* the defaults follow the settings */
	ck_assert_int_eq(settings_set(&cfg, "uid_max_share", "25%"), 0);
	ck_assert_int_eq(settings_set(&cfg, "uid_max_grants", "1000"), 0);
	ck_assert_int_eq(settings_set(&cfg, "uid_max_connections", "3"), 0);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	limits_eq(&l, POOL_BYTES / 4, 1000, 3, false);
	ck_assert_int_eq(settings_set(&cfg, "uid_max_share", "100"), 0);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES);
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);

	/* shares are of the pool the accounts were made for */
	accounts_init(&a, &cfg, 4 * POOL_BYTES);
	ck_assert_int_eq(settings_set(&cfg, "uid_max_share", "50"), 0);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, 2 * POOL_BYTES);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* ---- the privileged group --------------------------------------------- */

START_TEST(test_privileged_group)
{
	char *argv[] = { "kmallocd", "--config", "/dev/null", "--privileged-group", "2000", NULL };
	char *unknown[] = {
		"kmallocd", "--config", "/dev/null", "--privileged-group", "kmtest-no-such-group",
		NULL
	};
	const gid_t member[] = { 10, 2000, 20 }, other[] = { 10, 20 };
	struct settings cfg;
	struct accounts a;
	struct account_limits l;

	load(&cfg, ARGC(argv), argv);
	ck_assert(cfg.privileged_gid_valid);
	ck_assert_uint_eq(cfg.privileged_gid, 2000);
	accounts_init(&a, &cfg, POOL_BYTES);
	/* by the primary gid */
	account_limits_for(&a, 1000, 2000, NULL, 0, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);
	/* by a supplementary group, anywhere in the list */
	account_limits_for(&a, 1000, 100, member, 3, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);
	account_limits_for(&a, 1000, 100, member + 1, 1, &l);
	ck_assert(l.privileged);
	/* not a member: the ordinary defaults */
	account_limits_for(&a, 1000, 100, other, 2, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);
	/* only the groups given count: a member list cut short is not a member */
	account_limits_for(&a, 1000, 100, member, 1, &l);
	ck_assert(!l.privileged);
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	ck_assert(l.privileged);
	accounts_fini(&a);
	settings_fini(&cfg);

	/* a group that does not exist: root only (with a warning), no failure */
	load(&cfg, ARGC(unknown), unknown);
	ck_assert(!cfg.privileged_gid_valid);
	accounts_init(&a, &cfg, POOL_BYTES);
	account_limits_for(&a, 1000, 0, NULL, 0, &l);
	ck_assert(!l.privileged);
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	ck_assert(l.privileged);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* ---- limit rules --------------------------------------------------------- */

START_TEST(test_user_and_group_rules)
{
	const gid_t in_200[] = { 200 }, in_200_300[] = { 300, 200 };
	struct settings cfg;
	struct accounts a;
	struct account_limits l;

	settings_defaults(&cfg);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_bytes", "10M"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_grants", "500"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:100", "max_bytes", "20M"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:100", "max_connections", "5"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:200", "max_bytes", "30M"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:200", "max_grants", "100"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:300", "max_bytes", "1M"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:300", "max_connections", "9"), 0);
	ck_assert_uint_eq(cfg.nr_limits, 4);
	accounts_init(&a, &cfg, POOL_BYTES);

	/* no rule for the uid nor its groups: the defaults */
	account_limits_for(&a, 1002, 400, NULL, 0, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);
	/* one group: its keys replace the defaults, the others stay */
	account_limits_for(&a, 1001, 100, NULL, 0, &l);
	limits_eq(&l, 20 * MiB, 262144, 5, false);
	/* a group section may be stricter than the default (pam_limits) */
	account_limits_for(&a, 1001, 300, NULL, 0, &l);
	limits_eq(&l, 1 * MiB, 262144, 9, false);
	/* several groups: key by key, the most generous one */
	account_limits_for(&a, 1001, 100, in_200, 1, &l);
	limits_eq(&l, 30 * MiB, 100, 5, false);
	account_limits_for(&a, 1001, 100, in_200_300, 2, &l);
	limits_eq(&l, 30 * MiB, 100, 9, false);
	account_limits_for(&a, 1001, 300, in_200, 1, &l);
	limits_eq(&l, 30 * MiB, 100, 9, false);
	/* the user's own rule wins over its groups for the keys it sets */
	account_limits_for(&a, 1000, 100, in_200_300, 2, &l);
	limits_eq(&l, 10 * MiB, 500, 9, false);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	limits_eq(&l, 10 * MiB, 500, 64, false);
	/* a user rule for another uid changes nothing */
	account_limits_for(&a, 1003, 1003, NULL, 0, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);

	/* rules name ids: "user:N" and "uid:N" are one rule, as are "group:N"
	 * and "gid:N"; a later key overrides an earlier one */
	ck_assert_int_eq(settings_set_limit(&cfg, "user:1000", "max_grants", "700"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "group:100", "max_connections", "6"), 0);
	ck_assert_uint_eq(cfg.nr_limits, 4);
	account_limits_for(&a, 1000, 100, NULL, 0, &l);
	limits_eq(&l, 10 * MiB, 700, 6, false);
	/* uid 100 and gid 100 are different scopes */
	account_limits_for(&a, 100, 1, NULL, 0, &l);
	limits_eq(&l, POOL_BYTES / 2, 262144, 64, false);

	/* max_handles: the default, the most generous group, the user's own */
	ck_assert_uint_eq(l.max_handles, 4096);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:100", "max_handles", "10"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:200", "max_handles", "20"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_handles", "5"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_handles", "x"), -EINVAL);
	account_limits_for(&a, 1001, 100, in_200, 1, &l);
	ck_assert_uint_eq(l.max_handles, 20);
	account_limits_for(&a, 1000, 100, in_200, 1, &l);
	ck_assert_uint_eq(l.max_handles, 5);
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	ck_assert_uint_eq(l.max_handles, ACCOUNT_UNLIMITED);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

START_TEST(test_percent_rules)
{
	struct settings cfg;
	struct accounts a;
	struct account_limits l;

	settings_defaults(&cfg);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_bytes", "25%"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:100", "max_bytes", "10%"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "gid:200", "max_bytes", "15M"), 0);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1001", "max_bytes", "100%"), 0);
	accounts_init(&a, &cfg, POOL_BYTES);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES / 4);
	account_limits_for(&a, 1002, 100, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES / 10);
	/* a percentage and a size compare as bytes: 10 % of 200M is 20M > 15M */
	{
		const gid_t g200[] = { 200 };

		account_limits_for(&a, 1002, 100, g200, 1, &l);
		ck_assert_uint_eq(l.max_bytes, POOL_BYTES / 10);
	}
	account_limits_for(&a, 1001, 1001, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES);
	/* a size after a percentage replaces it, and the other way round */
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_bytes", "3M"), 0);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, 3 * MiB);
	ck_assert_int_eq(settings_set_limit(&cfg, "uid:1000", "max_bytes", "50%"), 0);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES / 2);
	/* percentages follow the pool */
	accounts_init(&a, &cfg, 2 * POOL_BYTES);
	account_limits_for(&a, 1000, 1000, NULL, 0, &l);
	ck_assert_uint_eq(l.max_bytes, POOL_BYTES);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* Explicit rules are not "default limits": they apply to privileged uids
 * too, who stay privileged (may use the reserve). */
START_TEST(test_rules_for_privileged)
{
	char *argv[] = { "kmallocd",
			 "--config",
			 "/dev/null",
			 "--privileged-group",
			 "2000",
			 "--limit",
			 "uid:0:max_grants=1000",
			 "--limit",
			 "gid:2000:max_bytes=8M",
			 NULL };
	struct settings cfg;
	struct accounts a;
	struct account_limits l;

	load(&cfg, ARGC(argv), argv);
	accounts_init(&a, &cfg, POOL_BYTES);
	account_limits_for(&a, 0, 0, NULL, 0, &l);
	limits_eq(&l, ACCOUNT_UNLIMITED, 1000, ACCOUNT_UNLIMITED, true);
	account_limits_for(&a, 1000, 2000, NULL, 0, &l);
	limits_eq(&l, 8 * MiB, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, true);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* --limit, as the daemon's command line gives it, ends in the same rules. */
START_TEST(test_limit_flags)
{
	char *argv[] = { "kmallocd",
			 "--config",
			 "/dev/null",
			 "--limit",
			 "uid:1000:max_bytes=12M,max_grants=77,max_connections=2,max_handles=9",
			 "--limit",
			 "gid:100:max_bytes=40%",
			 NULL };
	const gid_t g100[] = { 100 };
	struct settings cfg;
	struct accounts a;
	struct account_limits l;

	load(&cfg, ARGC(argv), argv);
	ck_assert_uint_eq(cfg.nr_limits, 2);
	accounts_init(&a, &cfg, POOL_BYTES);
	account_limits_for(&a, 1000, 1000, g100, 1, &l);
	limits_eq(&l, 12 * MiB, 77, 2, false);
	ck_assert_uint_eq(l.max_handles, 9);
	account_limits_for(&a, 1001, 1001, g100, 1, &l);
	limits_eq(&l, POOL_BYTES / 100 * 40, 262144, 64, false);
	ck_assert_uint_eq(l.max_handles, 4096);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* ---- allow lists ---------------------------------------------------------- */

START_TEST(test_allowed)
{
	char *none[] = { "kmallocd", "--config", "/dev/null", NULL };
	char *users[] = { "kmallocd", "--config", "/dev/null", "--allow-users", "1000,1001", NULL };
	char *groups[] = {
		"kmallocd", "--config", "/dev/null", "--allow-groups", "100, 200", NULL
	};
	char *both[] = { "kmallocd", "--config",       "/dev/null", "--allow-users",
			 "1000",     "--allow-groups", "100",	    NULL };
	const gid_t g100[] = { 7, 100 }, g7[] = { 7 };
	struct settings cfg;
	struct accounts a;

	/* no list: everyone */
	load(&cfg, ARGC(none), none);
	ck_assert(cfg.allow_all);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(account_allowed(&a, 1000, 1000, NULL, 0));
	ck_assert(account_allowed(&a, 65534, 65534, NULL, 0));
	accounts_fini(&a);
	settings_fini(&cfg);

	/* users */
	load(&cfg, ARGC(users), users);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_uids.nr, 2);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(account_allowed(&a, 1000, 1000, NULL, 0));
	ck_assert(account_allowed(&a, 1001, 5, g7, 1));
	ck_assert(!account_allowed(&a, 1002, 1002, NULL, 0));
	ck_assert(!account_allowed(&a, 1002, 1000, NULL, 0)); /* a gid is not a uid */
	ck_assert(account_allowed(&a, 0, 0, NULL, 0));	      /* root always */
	accounts_fini(&a);
	settings_fini(&cfg);

	/* groups: by primary gid or supplementary group */
	load(&cfg, ARGC(groups), groups);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_gids.nr, 2);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(account_allowed(&a, 1002, 100, NULL, 0));
	ck_assert(account_allowed(&a, 1002, 5, g100, 2));
	ck_assert(account_allowed(&a, 1002, 200, g7, 1));
	ck_assert(!account_allowed(&a, 1002, 5, g7, 1));
	ck_assert(!account_allowed(&a, 100, 5, NULL, 0)); /* a uid is not a gid */
	ck_assert(account_allowed(&a, 0, 0, NULL, 0));
	accounts_fini(&a);
	settings_fini(&cfg);

	/* both lists: either admits */
	load(&cfg, ARGC(both), both);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(account_allowed(&a, 1000, 5, NULL, 0));
	ck_assert(account_allowed(&a, 1005, 100, NULL, 0));
	ck_assert(!account_allowed(&a, 1005, 5, g7, 1));
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* An allow list of names that do not exist must not fail open: it admits
 * root and nobody else. */
START_TEST(test_allowed_unknown_names)
{
	char *unknown[] = {
		"kmallocd", "--config", "/dev/null", "--allow-users", "kmtest-no-such-user", NULL
	};
	char *mixed[] = { "kmallocd",
			  "--config",
			  "/dev/null",
			  "--allow-users",
			  "kmtest-no-such-user,1000",
			  "--allow-groups",
			  "kmtest-no-such-group",
			  NULL };
	struct settings cfg;
	struct accounts a;

	load(&cfg, ARGC(unknown), unknown);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_uids.nr, 0);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(!account_allowed(&a, 1000, 1000, NULL, 0));
	ck_assert(!account_allowed(&a, 65534, 65534, NULL, 0));
	ck_assert(account_allowed(&a, 0, 0, NULL, 0));
	accounts_fini(&a);
	settings_fini(&cfg);

	load(&cfg, ARGC(mixed), mixed);
	ck_assert(!cfg.allow_all);
	ck_assert_uint_eq(cfg.allow_uids.nr, 1);
	ck_assert_uint_eq(cfg.allow_gids.nr, 0);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert(account_allowed(&a, 1000, 1000, NULL, 0));
	ck_assert(!account_allowed(&a, 1001, 1001, NULL, 0));
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* ---- references -------------------------------------------------------------- */

START_TEST(test_get_put)
{
	struct settings cfg;
	struct accounts a;
	struct account *x, *y, *z;

	settings_defaults(&cfg);
	accounts_init(&a, &cfg, POOL_BYTES);
	ck_assert_ptr_null(account_find(&a, 1000));
	x = account_get(&a, 1000);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(x->uid, 1000);
	ck_assert_uint_eq(x->refs, 1);
	ck_assert_uint_eq(x->bytes + x->grants + x->connections + x->refusals, 0);
	ck_assert_uint_eq(a.nr, 1);
	y = account_get(&a, 1000);
	ck_assert_ptr_eq(y, x);
	ck_assert_uint_eq(x->refs, 2);
	ck_assert_uint_eq(a.nr, 1);
	z = account_get(&a, 1001);
	ck_assert_ptr_ne(z, x);
	ck_assert_uint_eq(a.nr, 2);
	ck_assert_ptr_eq(account_find(&a, 1000), x);
	ck_assert_ptr_eq(account_find(&a, 1001), z);
	ck_assert_uint_eq(x->refs, 2); /* find takes no reference */

	/* counters stay with the account while any reference does */
	account_charge(x, 4096, 1);
	account_put(&a, y);
	ck_assert_ptr_eq(account_find(&a, 1000), x);
	ck_assert_uint_eq(x->bytes, 4096);
	account_uncharge(x, 4096, 1);
	account_put(&a, x);
	ck_assert_ptr_null(account_find(&a, 1000));
	ck_assert_uint_eq(a.nr, 1);
	account_put(&a, NULL); /* no-op */
	ck_assert_uint_eq(a.nr, 1);

	/* a new account for the uid starts from zero */
	x = account_get(&a, 1000);
	ck_assert_uint_eq(x->refs, 1);
	ck_assert_uint_eq(x->bytes + x->grants, 0);
	account_put(&a, x);
	/* fini frees what is left */
	accounts_fini(&a);
	ck_assert_uint_eq(a.nr, 0);
	ck_assert_ptr_null(account_find(&a, 1001));
	settings_fini(&cfg);
}
END_TEST

/* ---- charging ----------------------------------------------------------------- */

START_TEST(test_may_charge_boundaries)
{
	struct account_limits l = {
		.max_bytes = 1000, .max_grants = 3, .max_connections = 1, .privileged = false
	};
	struct settings cfg;
	struct accounts a;
	struct account *x;

	settings_defaults(&cfg);
	accounts_init(&a, &cfg, POOL_BYTES);
	x = account_get(&a, 1000);

	/* bytes: up to the limit exactly */
	ck_assert_int_eq(account_may_charge(x, &l, 1000, 1), 0);
	ck_assert_int_eq(account_may_charge(x, &l, 1001, 1), -EDQUOT);
	account_charge(x, 600, 1);
	ck_assert_int_eq(account_may_charge(x, &l, 400, 1), 0);
	ck_assert_int_eq(account_may_charge(x, &l, 401, 1), -EDQUOT);
	account_charge(x, 400, 1);
	ck_assert_uint_eq(x->bytes, 1000);
	ck_assert_int_eq(account_may_charge(x, &l, 0, 1), 0);
	ck_assert_int_eq(account_may_charge(x, &l, 1, 0), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &l, 1, 1), -EDQUOT);

	/* grants: up to the limit exactly, checked apart from bytes */
	ck_assert_int_eq(account_may_charge(x, &l, 0, 2), -EDQUOT);
	account_charge(x, 0, 1);
	ck_assert_uint_eq(x->grants, 3);
	ck_assert_int_eq(account_may_charge(x, &l, 0, 1), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &l, 0, 0), 0);

	/* giving back makes room again, exactly */
	account_uncharge(x, 1, 1);
	ck_assert_int_eq(account_may_charge(x, &l, 1, 1), 0);
	ck_assert_int_eq(account_may_charge(x, &l, 2, 1), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &l, 1, 2), -EDQUOT);
	account_uncharge(x, 999, 2);
	ck_assert_uint_eq(x->bytes + x->grants, 0);

	/* a zero limit refuses everything but nothing */
	l.max_bytes = 0;
	ck_assert_int_eq(account_may_charge(x, &l, 1, 1), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &l, 0, 1), 0);
	l.max_grants = 0;
	ck_assert_int_eq(account_may_charge(x, &l, 0, 1), -EDQUOT);
	account_put(&a, x);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

/* Sums near UINT64_MAX must not wrap into a yes. */
START_TEST(test_may_charge_overflow)
{
	struct account_limits unlimited = { ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED, ACCOUNT_UNLIMITED,
					    true };
	struct account_limits big = { UINT64_MAX - 5, UINT64_MAX - 5, ACCOUNT_UNLIMITED, false };
	struct settings cfg;
	struct accounts a;
	struct account *x;

	settings_defaults(&cfg);
	accounts_init(&a, &cfg, POOL_BYTES);
	x = account_get(&a, 0);

	/* a request larger than any limit, on an empty account */
	ck_assert_int_eq(account_may_charge(x, &big, UINT64_MAX, 1), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &big, UINT64_MAX - 5, 1), 0);
	ck_assert_int_eq(account_may_charge(x, &big, 1, UINT64_MAX), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &unlimited, UINT64_MAX, UINT64_MAX), 0);

	/* an account holding almost everything */
	account_charge(x, UINT64_MAX - 10, UINT64_MAX - 10);
	ck_assert_int_eq(account_may_charge(x, &unlimited, 10, 10), 0);
	ck_assert_int_eq(account_may_charge(x, &unlimited, 11, 1), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &unlimited, 1, 11), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &unlimited, UINT64_MAX, 0), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &unlimited, 0, UINT64_MAX), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &big, 5, 5), 0);
	ck_assert_int_eq(account_may_charge(x, &big, 6, 0), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &big, 0, 6), -EDQUOT);
	/* the largest request that still wraps a naive sum back below the limit */
	ck_assert_int_eq(account_may_charge(x, &big, UINT64_MAX - 1, 0), -EDQUOT);
	ck_assert_int_eq(account_may_charge(x, &big, 0, UINT64_MAX - 1), -EDQUOT);
	account_uncharge(x, UINT64_MAX - 10, UINT64_MAX - 10);
	account_put(&a, x);
	accounts_fini(&a);
	settings_fini(&cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("account");
	TCase *tc;
	int failed;

	tc = tcase_create("limits");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_privileged_group);
	tcase_add_test(tc, test_user_and_group_rules);
	tcase_add_test(tc, test_percent_rules);
	tcase_add_test(tc, test_rules_for_privileged);
	tcase_add_test(tc, test_limit_flags);
	suite_add_tcase(s, tc);
	tc = tcase_create("allow");
	tcase_add_test(tc, test_allowed);
	tcase_add_test(tc, test_allowed_unknown_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("refs");
	tcase_add_test(tc, test_get_put);
	suite_add_tcase(s, tc);
	tc = tcase_create("charge");
	tcase_add_test(tc, test_may_charge_boundaries);
	tcase_add_test(tc, test_may_charge_overflow);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
