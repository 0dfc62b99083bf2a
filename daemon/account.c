// SPDX-License-Identifier: MIT
/*
 * account.c - per-uid accounts and the limits of account.h. A short list:
 * it holds one entry per uid with a connection, looked up at accept only;
 * requests reach their account through their connection.
 */
#include "config.h"
#include "account.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

void accounts_init(struct accounts *a, const struct settings *cfg, uint64_t pool_size)
{
	TAILQ_INIT(&a->list);
	a->nr = 0;
	a->cfg = cfg;
	a->pool_size = pool_size;
}

void accounts_fini(struct accounts *a)
{
	struct account *acct;

	while ((acct = TAILQ_FIRST(&a->list))) {
		TAILQ_REMOVE(&a->list, acct, link);
		free(acct);
	}
	a->nr = 0;
}

static bool in_groups(uint32_t id, gid_t gid, const gid_t *groups, size_t nr_groups)
{
	if (gid == id)
		return true;
	for (size_t i = 0; i < nr_groups; i++)
		if (groups[i] == id)
			return true;
	return false;
}

static uint64_t rule_bytes(const struct accounts *a, const struct limit_rule *r)
{
	/* pool sizes stay below 2^45 bytes (pool.c): no overflow */
	return r->max_bytes_pct ? a->pool_size * r->max_bytes_pct / 100 : r->max_bytes;
}

static uint64_t max_u64(uint64_t x, uint64_t y)
{
	return x > y ? x : y;
}

void account_limits_for(const struct accounts *a, uid_t uid, gid_t gid, const gid_t *groups,
			size_t nr_groups, struct account_limits *out)
{
	const struct settings *cfg = a->cfg;
	struct account_limits grp = { 0, 0, 0, 0, false };
	unsigned int grp_has = 0;
	const struct limit_rule *user = NULL;
	size_t i;

	out->privileged = uid == 0 || (cfg->privileged_gid_valid &&
				       in_groups(cfg->privileged_gid, gid, groups, nr_groups));
	if (out->privileged) {
		out->max_bytes = ACCOUNT_UNLIMITED;
		out->max_grants = ACCOUNT_UNLIMITED;
		out->max_connections = ACCOUNT_UNLIMITED;
		out->max_handles = ACCOUNT_UNLIMITED;
	} else {
		out->max_bytes = a->pool_size * cfg->uid_max_share / 100;
		out->max_grants = cfg->uid_max_grants;
		out->max_connections = cfg->uid_max_connections;
		out->max_handles = cfg->uid_max_handles;
	}
	/* The most generous group section of the uid's groups... */
	for (i = 0; i < cfg->nr_limits; i++) {
		const struct limit_rule *r = &cfg->limits[i];

		if (r->scope == LIMIT_USER && r->id == uid)
			user = r;
		if (r->scope != LIMIT_GROUP || !in_groups(r->id, gid, groups, nr_groups))
			continue;
		if (r->has & LIMIT_HAS_BYTES)
			grp.max_bytes = max_u64(grp.max_bytes, rule_bytes(a, r));
		if (r->has & LIMIT_HAS_GRANTS)
			grp.max_grants = max_u64(grp.max_grants, r->max_grants);
		if (r->has & LIMIT_HAS_CONNS)
			grp.max_connections = max_u64(grp.max_connections, r->max_connections);
		if (r->has & LIMIT_HAS_HANDLES)
			grp.max_handles = max_u64(grp.max_handles, r->max_handles);
		grp_has |= r->has;
	}
	if (grp_has & LIMIT_HAS_BYTES)
		out->max_bytes = grp.max_bytes;
	if (grp_has & LIMIT_HAS_GRANTS)
		out->max_grants = grp.max_grants;
	if (grp_has & LIMIT_HAS_CONNS)
		out->max_connections = grp.max_connections;
	if (grp_has & LIMIT_HAS_HANDLES)
		out->max_handles = grp.max_handles;
	/* ...and the user's own section over both. */
	if (user && (user->has & LIMIT_HAS_BYTES))
		out->max_bytes = rule_bytes(a, user);
	if (user && (user->has & LIMIT_HAS_GRANTS))
		out->max_grants = user->max_grants;
	if (user && (user->has & LIMIT_HAS_CONNS))
		out->max_connections = user->max_connections;
	if (user && (user->has & LIMIT_HAS_HANDLES))
		out->max_handles = user->max_handles;
}

bool account_allowed(const struct accounts *a, uid_t uid, gid_t gid, const gid_t *groups,
		     size_t nr_groups)
{
	const struct settings *cfg = a->cfg;
	size_t i;

	if (cfg->allow_all || uid == 0 || id_set_has(&cfg->allow_uids, uid))
		return true;
	for (i = 0; i < cfg->allow_gids.nr; i++)
		if (in_groups(cfg->allow_gids.ids[i], gid, groups, nr_groups))
			return true;
	return false;
}

struct account *account_find(const struct accounts *a, uid_t uid)
{
	struct account *acct;

	TAILQ_FOREACH(acct, &a->list, link)
		if (acct->uid == uid)
			return acct;
	return NULL;
}

struct account *account_get(struct accounts *a, uid_t uid)
{
	struct account *acct = account_find(a, uid);

	if (!acct) {
		acct = calloc(1, sizeof(*acct));
		if (!acct)
			return NULL;
		acct->uid = uid;
		TAILQ_INSERT_TAIL(&a->list, acct, link);
		a->nr++;
	}
	acct->refs++;
	return acct;
}

void account_ref(struct account *acct)
{
	acct->refs++;
}

void account_put(struct accounts *a, struct account *acct)
{
	if (!acct)
		return;
	assert(acct->refs > 0);
	if (--acct->refs)
		return;
	assert(acct->grants == 0 && acct->bytes == 0 && acct->connections == 0 &&
	       acct->handles == 0);
	TAILQ_REMOVE(&a->list, acct, link);
	a->nr--;
	free(acct);
}

int account_may_charge(const struct account *acct, const struct account_limits *limits,
		       uint64_t bytes, uint64_t grants)
{
	if (bytes > limits->max_bytes || acct->bytes > limits->max_bytes - bytes)
		return -EDQUOT;
	if (grants > limits->max_grants || acct->grants > limits->max_grants - grants)
		return -EDQUOT;
	return 0;
}

void account_charge(struct account *acct, uint64_t bytes, uint64_t grants)
{
	acct->bytes += bytes;
	acct->grants += grants;
}

void account_uncharge(struct account *acct, uint64_t bytes, uint64_t grants)
{
	assert(acct->bytes >= bytes && acct->grants >= grants);
	acct->bytes -= bytes;
	acct->grants -= grants;
}

int account_may_add_handle(const struct account *acct, const struct account_limits *limits)
{
	return acct->handles < limits->max_handles ? 0 : -EDQUOT;
}
