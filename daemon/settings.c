// SPDX-License-Identifier: MIT
/*
 * settings.c - defaults, the ini config file (libinih) and flags, from one
 * table: each row names a setting once, with its key (the file key, and the
 * long flag with '-' for '_'), its argument, its default, its help line, the
 * parser that reads it and the field it fills. The defaults, --help, the
 * flag parser and the ini loader all walk the same rows. Flags override the
 * file, the file overrides the defaults.
 *
 * Limit sections ([user:alice], [group:batch], ...) and --limit fill
 * cfg->limits; user and group names (allow lists, groups, limit scopes) are
 * resolved to numbers at the end of settings_load(), before the daemon
 * serves: NSS lookups may block, and never run on the event loop.
 */
#include "config.h"
#include "settings.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct setting {
	struct setting_info info;
	int (*parse)(struct settings *cfg, const struct setting *s, const char *value);
	size_t offset;	   /* of the field in struct settings */
	uint64_t min, max; /* numbers: accepted range */
};

static int parse_string(struct settings *cfg, const struct setting *s, const char *value);
static int parse_size_field(struct settings *cfg, const struct setting *s, const char *value);
static int parse_u32_field(struct settings *cfg, const struct setting *s, const char *value);
static int parse_bool_field(struct settings *cfg, const struct setting *s, const char *value);
static int parse_backing(struct settings *cfg, const struct setting *s, const char *value);
static int parse_require_hugepages(struct settings *cfg, const struct setting *s,
				   const char *value);
static int parse_reserve(struct settings *cfg, const struct setting *s, const char *value);
static int parse_log_level(struct settings *cfg, const struct setting *s, const char *value);
static int parse_percent(struct settings *cfg, const struct setting *s, const char *value);
static int parse_limit_flag(struct settings *cfg, const struct setting *s, const char *value);

#define FIELD(f) offsetof(struct settings, f)

/* clang-format off */
static const struct setting settings_table[] = {
	{ { "socket", "PATH", KM_DEFAULT_SOCKET,
	    "listen on PATH (ignored under socket activation)" },
	  parse_string, FIELD(socket_path), 0, 0 },
	{ { "pool_size", "SIZE", KM_DEFAULT_POOL_SIZE,
	    "pool size in bytes, or with K/M/G; rounded up to 2 MiB frames" },
	  parse_size_field, FIELD(pool_size), 1, UINT64_MAX >> 1 },
	{ { "require_hugepages", NULL, "",
	    "fail instead of falling back to shmem without hugepages" },
	  parse_require_hugepages, 0, 0, 0 },
	{ { "backing", "KIND", "auto", "auto (hugetlb, else shmem), hugetlb, or shmem" },
	  parse_backing, FIELD(backing), 0, 0 },
	{ { "reserve", "SIZE", "auto",
	    "emergency reserve (min watermark); auto: the kernel's min_free_kbytes rule" },
	  parse_reserve, FIELD(reserve), 0, 0 },
	{ { "max_packet", "SIZE", "64K", "largest request packet accepted (256 bytes to 16M)" },
	  parse_u32_field, FIELD(max_packet), 256, 16u << 20 },
	{ { "max_queued", "SIZE", "64K",
	    "unsent replies kept per connection before the daemon stops reading it" },
	  parse_u32_field, FIELD(max_queued), 4096, 16u << 20 },
	{ { "max_clients", "N", "1024", "most connections served at once" },
	  parse_u32_field, FIELD(max_clients), 1, 1u << 20 },
	{ { "reserved_connections", "N", "16",
	    "of max_clients, connections only privileged users may take" },
	  parse_u32_field, FIELD(reserved_connections), 0, 1u << 20 },
	{ { "admin_group", "GROUP", "",
	    "group whose members may inspect the pool with kmctl (root always may)" },
	  parse_string, FIELD(admin_group), 0, 0 },
	{ { "privileged_group", "GROUP", "",
	    "group whose members may use the emergency reserve (__GFP_HIGH, GFP_ATOMIC, "
	    "__GFP_NOFAIL) and have no default limits, as root" },
	  parse_string, FIELD(privileged_group), 0, 0 },
	{ { "allow_users", "LIST", "",
	    "users (names or uids, comma-separated) who may connect; with allow_groups "
	    "unset too, everyone may" },
	  parse_string, FIELD(allow_users), 0, 0 },
	{ { "allow_groups", "LIST", "", "groups whose members may connect" },
	  parse_string, FIELD(allow_groups), 0, 0 },
	{ { "uid_max_share", "PERCENT", "50",
	    "share of the pool one unprivileged uid may hold, by default" },
	  parse_percent, FIELD(uid_max_share), 1, 100 },
	{ { "uid_max_grants", "N", "262144",
	    "grants one unprivileged uid may hold, by default (bounds daemon memory)" },
	  parse_size_field, FIELD(uid_max_grants), 1, UINT64_MAX },
	{ { "uid_max_connections", "N", "64",
	    "connections one unprivileged uid may have, by default" },
	  parse_u32_field, FIELD(uid_max_connections), 1, 1u << 20 },
	{ { "uid_max_handles", "N", "4096",
	    "live share handles one unprivileged uid may have made, by default (bounds "
	    "daemon memory)" },
	  parse_size_field, FIELD(uid_max_handles), 1, UINT64_MAX },
	{ { "limit", "SCOPE:KEY=VALUE,...", "",
	    "limits of a user or group, as a [user:NAME], [uid:N], [group:NAME] or [gid:N] "
	    "section does (keys max_bytes, max_grants, max_connections, max_handles); may repeat" },
	  parse_limit_flag, 0, 0, 0 },
	{ { "log_level", "LEVEL", "info", "err, warning, notice, info or debug" },
	  parse_log_level, FIELD(log_level), 0, 0 },
	{ { "paranoid", NULL, "", "check every allocator structure after each request (slow)" },
	  parse_bool_field, FIELD(paranoid), 0, 0 },
	{ { "reconcile_interval", "SECONDS", "10",
	    "how often domain memfds are checked for phantom frames (0 = never)" },
	  parse_u32_field, FIELD(reconcile_interval), 0, UINT32_MAX },
	{ { "hello_timeout", "SECONDS", "10",
	    "close connections that have not said Hello after this long" },
	  parse_u32_field, FIELD(hello_timeout), 1, UINT32_MAX },
	{ { "fd_store", NULL, "",
	    "under systemd, keep clients, grants and memory in the fd store across a restart" },
	  parse_bool_field, FIELD(fd_store), 0, 0 },
};
/* clang-format on */

#define NR_SETTINGS (sizeof(settings_table) / sizeof(settings_table[0]))

const struct setting_info *settings_info(size_t i)
{
	return i < NR_SETTINGS ? &settings_table[i].info : NULL;
}

static void *field(struct settings *cfg, const struct setting *s)
{
	return (char *)cfg + s->offset;
}

/* ---- value parsers ------------------------------------------------------- */

int settings_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' && shift) /* accept "MiB"-style "Mi" too */
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!s || !strcasecmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") ||
	    !strcasecmp(s, "on")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "false") ||
	    !strcasecmp(s, "off")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_ranged(const struct setting *s, const char *value, uint64_t *out)
{
	uint64_t v;

	if (settings_parse_size(value, &v) < 0 || v < s->min || v > s->max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_string(struct settings *cfg, const struct setting *s, const char *value)
{
	char **dst = field(cfg, s), *copy;

	if (!value || !*value)
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_size_field(struct settings *cfg, const struct setting *s, const char *value)
{
	return parse_ranged(s, value, field(cfg, s));
}

static int parse_u32_field(struct settings *cfg, const struct setting *s, const char *value)
{
	uint64_t v;

	if (parse_ranged(s, value, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	*(uint32_t *)field(cfg, s) = (uint32_t)v;
	return 0;
}

static int parse_bool_field(struct settings *cfg, const struct setting *s, const char *value)
{
	return parse_bool(value, field(cfg, s));
}

static int parse_percent(struct settings *cfg, const struct setting *s, const char *value)
{
	char buf[32];
	size_t len;

	if (!value || (len = strlen(value)) == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, value, len + 1);
	if (buf[len - 1] == '%')
		buf[len - 1] = '\0';
	return parse_u32_field(cfg, s, buf);
}

static int parse_backing(struct settings *cfg, const struct setting *s, const char *value)
{
	static const char *const names[] = {
		[POOL_BACKING_AUTO] = "auto",
		[POOL_BACKING_HUGETLB] = "hugetlb",
		[POOL_BACKING_SHMEM] = "shmem",
	};

	for (size_t i = 0; value && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(value, names[i])) {
			*(enum pool_backing *)field(cfg, s) = (enum pool_backing)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_require_hugepages(struct settings *cfg, const struct setting *s, const char *value)
{
	bool b;

	if (parse_bool(value, &b) < 0)
		return -EINVAL;
	if (b)
		cfg->backing = POOL_BACKING_HUGETLB;
	else if (cfg->backing == POOL_BACKING_HUGETLB)
		cfg->backing = POOL_BACKING_AUTO;
	return 0;
}

static int parse_reserve(struct settings *cfg, const struct setting *s, const char *value)
{
	if (value && !strcmp(value, "auto")) {
		cfg->reserve = UINT64_MAX;
		return 0;
	}
	return settings_parse_size(value, &cfg->reserve);
}

static int parse_log_level(struct settings *cfg, const struct setting *s, const char *value)
{
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {
		{ "err", LOG_LEVEL_ERR },	{ "error", LOG_LEVEL_ERR },
		{ "warning", LOG_LEVEL_WARN },	{ "warn", LOG_LEVEL_WARN },
		{ "notice", LOG_LEVEL_NOTICE }, { "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};

	for (size_t i = 0; value && i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (!strcasecmp(value, levels[i].name)) {
			cfg->log_level = levels[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- limit sections ------------------------------------------------------ */

/* A uid or gid from a name or a number; -ENOENT for an unknown name. */
static int resolve_id(enum limit_scope scope, const char *name, uint32_t *out)
{
	char buf[4096], *end;
	unsigned long v;

	errno = 0;
	v = strtoul(name, &end, 10);
	if (*name >= '0' && *name <= '9' && !*end && !errno && v < UINT32_MAX) {
		*out = (uint32_t)v;
		return 0;
	}
	if (scope == LIMIT_USER) {
		struct passwd pw, *found = NULL;

		if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || !found)
			return -ENOENT;
		*out = found->pw_uid;
	} else {
		struct group gr, *found = NULL;

		if (getgrnam_r(name, &gr, buf, sizeof(buf), &found) != 0 || !found)
			return -ENOENT;
		*out = found->gr_gid;
	}
	return 0;
}

/* The rule for "user:NAME", "uid:N", "group:NAME" or "gid:N", made on first
 * use. NULL (with a message) for any other scope or an unknown name. */
static struct limit_rule *limit_rule_for(struct settings *cfg, const char *scope)
{
	static const struct {
		const char *prefix;
		enum limit_scope scope;
	} kinds[] = {
		{ "user:", LIMIT_USER },
		{ "uid:", LIMIT_USER },
		{ "group:", LIMIT_GROUP },
		{ "gid:", LIMIT_GROUP },
	};
	const char *name = NULL;
	enum limit_scope kind = LIMIT_USER;
	struct limit_rule *r;
	uint32_t id;
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !name; i++) {
		if (!strncmp(scope, kinds[i].prefix, strlen(kinds[i].prefix))) {
			name = scope + strlen(kinds[i].prefix);
			kind = kinds[i].scope;
		}
	}
	if (!name || !*name) {
		fprintf(stderr,
			"kmallocd: limit scope %s is not user:NAME, uid:N, group:NAME "
			"or gid:N\n",
			scope);
		return NULL;
	}
	if (resolve_id(kind, name, &id) < 0) {
		fprintf(stderr, "kmallocd: limits for unknown %s %s\n",
			kind == LIMIT_USER ? "user" : "group", name);
		return NULL;
	}
	for (i = 0; i < cfg->nr_limits; i++)
		if (cfg->limits[i].scope == kind && cfg->limits[i].id == id)
			return &cfg->limits[i];
	r = realloc(cfg->limits, (cfg->nr_limits + 1) * sizeof(*r));
	if (!r)
		return NULL;
	cfg->limits = r;
	r = &cfg->limits[cfg->nr_limits++];
	memset(r, 0, sizeof(*r));
	r->scope = kind;
	r->id = id;
	return r;
}

int settings_set_limit(struct settings *cfg, const char *scope, const char *key, const char *value)
{
	struct limit_rule *r = limit_rule_for(cfg, scope);
	uint64_t v;

	if (!r || !value)
		return -EINVAL;
	if (!strcmp(key, "max_bytes")) {
		size_t len = strlen(value);

		if (len > 1 && value[len - 1] == '%') {
			char buf[16];

			if (len >= sizeof(buf))
				return -EINVAL;
			memcpy(buf, value, len - 1);
			buf[len - 1] = '\0';
			if (settings_parse_size(buf, &v) < 0 || v < 1 || v > 100)
				return -EINVAL;
			r->max_bytes_pct = (uint32_t)v;
			r->max_bytes = 0;
		} else {
			if (settings_parse_size(value, &r->max_bytes) < 0)
				return -EINVAL;
			r->max_bytes_pct = 0;
		}
		r->has |= LIMIT_HAS_BYTES;
		return 0;
	}
	if (!strcmp(key, "max_grants")) {
		if (settings_parse_size(value, &r->max_grants) < 0)
			return -EINVAL;
		r->has |= LIMIT_HAS_GRANTS;
		return 0;
	}
	if (!strcmp(key, "max_connections")) {
		if (settings_parse_size(value, &v) < 0 || v > UINT32_MAX)
			return -EINVAL;
		r->max_connections = (uint32_t)v;
		r->has |= LIMIT_HAS_CONNS;
		return 0;
	}
	if (!strcmp(key, "max_handles")) {
		if (settings_parse_size(value, &r->max_handles) < 0)
			return -EINVAL;
		r->has |= LIMIT_HAS_HANDLES;
		return 0;
	}
	return -EINVAL;
}

/* "user:alice:max_bytes=1G,max_grants=1000" */
static int parse_limit_flag(struct settings *cfg, const struct setting *s, const char *value)
{
	char *copy, *colon, *item, *save = NULL;
	unsigned int items = 0;
	int err = 0;

	if (!value)
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	colon = strchr(copy, ':');
	colon = colon ? strchr(colon + 1, ':') : NULL;
	if (!colon) {
		free(copy);
		return -EINVAL;
	}
	*colon = '\0';
	for (item = strtok_r(colon + 1, ",", &save); item && !err;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (!eq) {
			err = -EINVAL;
		} else {
			*eq = '\0';
			err = settings_set_limit(cfg, copy, item, eq + 1);
		}
		items++;
	}
	free(copy);
	return err ? err : items ? 0 : -EINVAL;
}

/* ---- the whole set --------------------------------------------------------- */

void settings_defaults(struct settings *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->allow_all = true; /* until allow lists say otherwise */
	for (i = 0; i < NR_SETTINGS; i++) {
		const struct setting *s = &settings_table[i];

		/* A default that does not parse is a bug in the table (test-settings). */
		if (s->info.def[0] && s->parse(cfg, s, s->info.def) < 0)
			fprintf(stderr, "kmallocd: bad built-in default %s = %s\n", s->info.key,
				s->info.def);
	}
}

void settings_fini(struct settings *cfg)
{
	free(cfg->socket_path);
	free(cfg->admin_group);
	free(cfg->privileged_group);
	free(cfg->allow_users);
	free(cfg->allow_groups);
	free(cfg->config_file);
	free(cfg->limits);
	free(cfg->allow_uids.ids);
	free(cfg->allow_gids.ids);
	memset(cfg, 0, sizeof(*cfg));
}

int settings_set(struct settings *cfg, const char *key, const char *value)
{
	char name[64];
	size_t i;

	/* Flags spell keys with '-', the file with '_': accept both. */
	snprintf(name, sizeof(name), "%s", key);
	for (i = 0; name[i]; i++)
		if (name[i] == '-')
			name[i] = '_';
	for (i = 0; i < NR_SETTINGS; i++)
		if (!strcmp(name, settings_table[i].info.key))
			return settings_table[i].parse(cfg, &settings_table[i], value);
	return -EINVAL;
}

static int settings_ini_handler(void *user, const char *section, const char *key, const char *value)
{
	struct settings *cfg = user;
	int err;

	if (!*section || !strcmp(section, "kmallocd"))
		err = settings_set(cfg, key, value);
	else
		err = settings_set_limit(cfg, section, key, value);
	if (err < 0) {
		fprintf(stderr, "kmallocd: %s: bad setting [%s] %s = %s\n", cfg->config_file,
			*section ? section : "kmallocd", key, value);
		return 0;
	}
	return 1;
}

static void settings_usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"Usage: kmallocd [OPTION]...\n"
		"The kmalloc broker: grants regions of a hugepage-backed memory pool to\n"
		"client processes over a Unix socket.\n\n"
		"  -c, --config FILE             read settings from FILE (ini, section "
		"[kmallocd];\n"
		"                                default " KM_DEFAULT_CONFIG " if it exists)\n"
		"  -h, --help                    this text\n"
		"  -V, --version\n\n"
		"Settings (each also a key of the config file, with '_' for '-'; -s is --socket,\n"
		"-p is --pool-size):\n");
	for (i = 0; i < NR_SETTINGS; i++) {
		const struct setting_info *s = &settings_table[i].info;
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s%s%s", s->key, s->arg ? " " : "",
			 s->arg ? s->arg : "");
		for (char *p = flag + 2; *p && *p != ' '; p++)
			if (*p == '_')
				*p = '-';
		fprintf(out, "  %-28s  %s", flag, s->help);
		if (s->def[0])
			fprintf(out, " (default %s)", s->def);
		fputc('\n', out);
	}
}

/* "alice,1000, bob" into @set; unknown names are left out with a warning
 * (an allow list must not fail open, and must not stop the daemon either). */
static int resolve_list(const char *list, enum limit_scope scope, struct id_set *set)
{
	char *copy, *item, *save = NULL;

	if (!list)
		return 0;
	copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
		uint32_t id, *ids;

		if (resolve_id(scope, item, &id) < 0) {
			fprintf(stderr, "kmallocd: warning: unknown %s %s in the allow list\n",
				scope == LIMIT_USER ? "user" : "group", item);
			continue;
		}
		ids = realloc(set->ids, (set->nr + 1) * sizeof(*ids));
		if (!ids) {
			free(copy);
			return -ENOMEM;
		}
		set->ids = ids;
		set->ids[set->nr++] = id;
	}
	free(copy);
	return 0;
}

static void resolve_group(const char *name, const char *what, bool *valid, gid_t *gid)
{
	uint32_t id;

	*valid = false;
	if (!name)
		return;
	if (resolve_id(LIMIT_GROUP, name, &id) < 0) {
		fprintf(stderr, "kmallocd: warning: %s %s does not exist: root only\n", what, name);
		return;
	}
	*valid = true;
	*gid = (gid_t)id;
}

/* Names to numbers, once, before the daemon serves. */
static int settings_resolve(struct settings *cfg)
{
	int err;

	resolve_group(cfg->admin_group, "admin group", &cfg->admin_gid_valid, &cfg->admin_gid);
	resolve_group(cfg->privileged_group, "privileged group", &cfg->privileged_gid_valid,
		      &cfg->privileged_gid);
	cfg->allow_all = !cfg->allow_users && !cfg->allow_groups;
	err = resolve_list(cfg->allow_users, LIMIT_USER, &cfg->allow_uids);
	if (!err)
		err = resolve_list(cfg->allow_groups, LIMIT_GROUP, &cfg->allow_gids);
	if (cfg->reserved_connections >= cfg->max_clients) {
		fprintf(stderr,
			"kmallocd: reserved_connections (%u) must be below max_clients (%u)\n",
			cfg->reserved_connections, cfg->max_clients);
		return -EINVAL;
	}
	return err;
}

bool id_set_has(const struct id_set *set, uint32_t id)
{
	for (size_t i = 0; i < set->nr; i++)
		if (set->ids[i] == id)
			return true;
	return false;
}

/* The long options: one per row (--key with '-' for '_', spelled in
 * @names), then --config, --help and --version. */
static void build_longopts(struct option longopts[NR_SETTINGS + 4], char names[NR_SETTINGS][32])
{
	size_t i, j, n = 0;

	for (i = 0; i < NR_SETTINGS; i++) {
		snprintf(names[i], sizeof(names[i]), "%s", settings_table[i].info.key);
		for (j = 0; names[i][j]; j++)
			if (names[i][j] == '_')
				names[i][j] = '-';
		longopts[n++] = (struct option){ names[i],
						 settings_table[i].info.arg ? required_argument
									    : no_argument,
						 NULL, 0 };
	}
	longopts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* First pass over @argv: only --config, --help and --version, so that the
 * file can be read before the flags that override it. Returns 0, or 1 when
 * the program should exit successfully (--help, --version). */
static int scan_early_flags(int argc, char **argv, const struct option *longopts,
			    const char **config_path)
{
	int opt, idx;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:p:c:hV", longopts, &idx)) != -1) {
		if (opt == 'c') {
			*config_path = optarg;
		} else if (opt == 'h') {
			settings_usage(stdout);
			return 1;
		} else if (opt == 'V') {
			printf("kmallocd %s\n", PACKAGE_VERSION);
			return 1;
		}
	}
	return 0;
}

/* Reads @config_path, or KM_DEFAULT_CONFIG when none was given and it is
 * readable. A file given with --config must be there. 0 or -EINVAL. */
static int read_config_file(struct settings *cfg, const char *config_path)
{
	bool config_given = config_path != NULL;
	int err;

	if (!config_path && access(KM_DEFAULT_CONFIG, R_OK) == 0)
		config_path = KM_DEFAULT_CONFIG;
	if (!config_path)
		return 0;
	cfg->config_file = strdup(config_path);
	err = ini_parse(config_path, settings_ini_handler, cfg);
	if (err < 0 && (config_given || err != -1)) {
		fprintf(stderr, "kmallocd: cannot read config file %s\n", config_path);
		return -EINVAL;
	}
	if (err > 0) {
		fprintf(stderr, "kmallocd: %s:%d: invalid line\n", config_path, err);
		return -EINVAL;
	}
	return 0;
}

/* Second pass: every setting flag, over what the file said. 0 or -EINVAL
 * after printing what is wrong. */
static int apply_flags(struct settings *cfg, int argc, char **argv, const struct option *longopts)
{
	int opt, idx;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:p:c:hV", longopts, &idx)) != -1) {
		const char *key;

		switch (opt) {
		case 's':
			key = "socket";
			break;
		case 'p':
			key = "pool_size";
			break;
		case 'c':
		case 'h':
		case 'V':
			continue;
		case 0:
			key = longopts[idx].name;
			break;
		default:
			settings_usage(stderr);
			return -EINVAL;
		}
		if (settings_set(cfg, key, optarg) < 0) {
			fprintf(stderr, "kmallocd: invalid value for --%s: %s\n", key,
				optarg ? optarg : "(none)");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kmallocd: unexpected argument: %s\n", argv[optind]);
		settings_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int settings_load(struct settings *cfg, int argc, char **argv)
{
	struct option longopts[NR_SETTINGS + 4];
	char names[NR_SETTINGS][32];
	const char *config_path = NULL;
	int ret;

	settings_defaults(cfg);
	if (!cfg->socket_path)
		return -ENOMEM;
	build_longopts(longopts, names);
	ret = scan_early_flags(argc, argv, longopts, &config_path);
	if (ret)
		return ret;
	if (read_config_file(cfg, config_path) < 0 || apply_flags(cfg, argc, argv, longopts) < 0)
		return -EINVAL;
	return settings_resolve(cfg) < 0 ? -EINVAL : 0;
}
