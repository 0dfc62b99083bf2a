/* SPDX-License-Identifier: MIT */
/*
 * settings.h - kmallocd's settings: built-in defaults, then the config file
 * (ini, read with libinih; --config FILE, else /etc/kmallocd.conf if it
 * exists), then command-line flags. Every file setting has a flag; every
 * setting is one row of settings.c's table.
 *
 * Besides [kmallocd], the file may have limit sections, [user:NAME],
 * [uid:N], [group:NAME] and [gid:N], with the keys max_bytes (a size or a
 * percentage of the pool), max_grants, max_connections and max_handles; the flag
 * --limit SCOPE:KEY=VALUE[,KEY=VALUE...] (SCOPE as a section name) says the
 * same. User and group names are resolved to numbers once, when the
 * settings are loaded (never on the event loop).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "pool.h"

#define SETTINGS_UNLIMITED UINT64_MAX

/* A set of uids or gids, resolved from names at load time. */
struct id_set {
	uint32_t *ids;
	size_t nr;
};

enum limit_scope {
	LIMIT_USER,  /* one uid */
	LIMIT_GROUP, /* each member of a group (pam_limits' @group) */
	LIMIT_SCOPE_MAX,
};

/* Which fields of a limit rule were given. */
#define LIMIT_HAS_BYTES	  0x1u
#define LIMIT_HAS_GRANTS  0x2u
#define LIMIT_HAS_CONNS	  0x4u
#define LIMIT_HAS_HANDLES 0x8u

/* Per-uid limits a [user:...] or [group:...] section sets. */
struct limit_rule {
	enum limit_scope scope;
	uint32_t id;		/* uid or gid */
	unsigned int has;	/* LIMIT_HAS_* */
	uint64_t max_bytes;	/* bytes, unless max_bytes_pct */
	uint32_t max_bytes_pct; /* percent of the pool, 0: max_bytes is absolute */
	uint64_t max_grants;
	uint32_t max_connections;
	uint64_t max_handles;
};

struct settings {
	char *socket_path;
	uint64_t pool_size; /* bytes */
	enum pool_backing backing;
	uint64_t reserve;	       /* bytes; UINT64_MAX = kernel's min_free_kbytes formula */
	uint32_t max_packet;	       /* bytes of the largest request accepted */
	uint32_t max_clients;	       /* connections served at once */
	uint32_t reserved_connections; /* of max_clients, kept for privileged users */
	uint32_t max_queued;	       /* bytes of unsent replies before a client is not read */
	char *admin_group;	       /* may run kmctl besides root; NULL = root only */
	char *privileged_group;	       /* may use the reserve, no default limits; NULL = root */
	char *allow_users;	       /* comma-separated names or uids; NULL = everyone */
	char *allow_groups;	       /* comma-separated names or gids */
	uint32_t uid_max_share;	       /* percent of the pool one unprivileged uid may hold */
	uint64_t uid_max_grants;       /* grants one unprivileged uid may hold */
	uint32_t uid_max_connections;  /* connections one unprivileged uid may have */
	uint64_t uid_max_handles;      /* live share handles one unprivileged uid may create */
	enum log_level log_level;
	bool paranoid;		     /* run the costly checkers after every request */
	uint32_t reconcile_interval; /* seconds between phantom-frame checks, 0 = off */
	uint32_t hello_timeout;	     /* seconds a new connection has to say Hello */
	bool fd_store;		     /* keep state in systemd's fd store across restarts */
	char *config_file;	     /* the file that was read, or NULL */

	struct limit_rule *limits; /* from limit sections and --limit, in order */
	size_t nr_limits;

	/* Resolved by settings_load(). */
	bool admin_gid_valid;
	gid_t admin_gid;
	bool privileged_gid_valid;
	gid_t privileged_gid;
	bool allow_all; /* neither allow list given */
	struct id_set allow_uids;
	struct id_set allow_gids;
};

/* One row of the settings table, as --help, the man page and the README
 * list them (a test checks all three). */
struct setting_info {
	const char *key; /* file key; the flag is --key with '-' for '_' */
	const char *arg; /* metavar, NULL for a boolean flag */
	const char *def; /* default, as text ("" when none) */
	const char *help;
};

/* Row @i of the table, or NULL past the end. */
const struct setting_info *settings_info(size_t i);

/* Fills @cfg from defaults, the config file and @argv, and resolves user
 * and group names. Returns 0; 1 when the program should exit successfully
 * (--help, --version); -EINVAL after printing what is wrong. */
int settings_load(struct settings *cfg, int argc, char **argv);
void settings_fini(struct settings *cfg);

/* "4096", "64K", "256M", "2G" (powers of 1024). 0 or -EINVAL (also on overflow). */
int settings_parse_size(const char *s, uint64_t *out);

/* Applies one [kmallocd] setting by its file key (also the long flag's name
 * with '-' for '_'). 0 or -EINVAL. Exposed for tests. */
int settings_set(struct settings *cfg, const char *key, const char *value);

/* Applies KEY=VALUE of the limit section @scope ("user:alice", "gid:100").
 * 0 or -EINVAL. */
int settings_set_limit(struct settings *cfg, const char *scope, const char *key, const char *value);

/* Built-in defaults only. */
void settings_defaults(struct settings *cfg);

/* True when @id is in @set. */
bool id_set_has(const struct id_set *set, uint32_t id);
