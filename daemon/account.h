/* SPDX-License-Identifier: MIT */
/*
 * account.h - what each uid holds and may hold: per-uid counters of
 * connections, grants and bytes, the limits a connection of that uid works
 * under, its privilege, and the rate limit on the log lines its clients can
 * cause.
 *
 * Limits are per uid, as ulimits are: settings give defaults for
 * unprivileged uids (a share of the pool, a number of grants and of
 * connections), a [user:...] section overrides them for one uid, and a
 * [group:...] section for each member of a group (pam_limits' @group; the
 * most generous of a uid's groups wins, a user section wins over groups).
 * Privileged uids (root, members of privileged_group) have no default
 * limits and may use the emergency reserve. A connection's groups come from
 * the socket (SO_PEERCRED, SO_PEERGROUPS), never from NSS lookups.
 *
 * Every grant is charged to its holder's account when it is linked to the
 * connection and uncharged when it is unlinked (conn.c), so the counters
 * are exact at every moment; account_may_charge() is asked before an
 * allocation and answers -EDQUOT past a limit.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "log.h"

struct settings;

#define ACCOUNT_UNLIMITED UINT64_MAX

struct account_limits {
	uint64_t max_bytes; /* bytes held, or ACCOUNT_UNLIMITED */
	uint64_t max_grants;
	uint64_t max_connections;
	uint64_t max_handles; /* live share handles its uid may have created */
	bool privileged;      /* may use the reserve; no default limits */
};

struct account {
	TAILQ_ENTRY(account) link;
	uid_t uid;
	unsigned int refs;	      /* connections, open or still giving back */
	struct account_limits limits; /* of the latest connection (for kmctl) */
	uint32_t connections;	      /* open connections */
	uint64_t grants;	      /* held by all connections of the uid */
	uint64_t bytes;
	/* Live share handles the uid created (share.c): each holds a reference
	 * on the account, since a handle outlives its exporter's connection. */
	uint64_t handles;
	uint64_t refusals;	 /* EDQUOT and EACCES answers */
	struct ratelimit log_rl; /* lines this uid's clients may cause */
};

TAILQ_HEAD(account_list, account);

struct accounts {
	struct account_list list;
	uint32_t nr;
	const struct settings *cfg;
	uint64_t pool_size; /* bytes: shares are of this */
};

void accounts_init(struct accounts *a, const struct settings *cfg, uint64_t pool_size);
/* Frees every account; none may still be referenced. */
void accounts_fini(struct accounts *a);

/* The limits a connection of @uid with primary group @gid and supplementary
 * @groups works under. Pure: reads only the settings. */
void account_limits_for(const struct accounts *a, uid_t uid, gid_t gid, const gid_t *groups,
			size_t nr_groups, struct account_limits *out);

/* True when @uid (with those groups) is on the allow lists (root always is). */
bool account_allowed(const struct accounts *a, uid_t uid, gid_t gid, const gid_t *groups,
		     size_t nr_groups);

/* The account of @uid, made on first use, with a reference taken. NULL on
 * ENOMEM. */
struct account *account_get(struct accounts *a, uid_t uid);
/* Another reference on @acct (a share handle's). */
void account_ref(struct account *acct);
/* Drops a reference; the last one frees the account (it holds nothing then). */
void account_put(struct accounts *a, struct account *acct);
/* The account of @uid if it exists, else NULL (no reference taken). */
struct account *account_find(const struct accounts *a, uid_t uid);

/* 0 if @acct may hold @bytes and @grants more under @limits, else -EDQUOT. */
int account_may_charge(const struct account *acct, const struct account_limits *limits,
		       uint64_t bytes, uint64_t grants);
void account_charge(struct account *acct, uint64_t bytes, uint64_t grants);
void account_uncharge(struct account *acct, uint64_t bytes, uint64_t grants);
/* 0 if @acct may create one more share handle under @limits, else -EDQUOT. */
int account_may_add_handle(const struct account *acct, const struct account_limits *limits);
