// SPDX-License-Identifier: MIT
/*
 * settings.c - defaults, the ini config file (libinih) and flags, from one
 * table that names each setting once: its key (the file key, and the long
 * flag with '-' for '_'), its argument and its help line. Flags override the
 * file, the file overrides the defaults.
 */
#include "config.h"
#include "settings.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct setting {
	const char *key;	/* file key; flag is the same with '-' */
	const char *arg;	/* metavar, NULL for a boolean flag */
	const char *help;
};

static const struct setting settings_table[] = {
	{ "socket", "PATH", "listen on PATH (default " KM_DEFAULT_SOCKET ")" },
	{ "pool_size", "SIZE", "pool size in bytes, or with K/M/G (default " KM_DEFAULT_POOL_SIZE ")" },
	{ "require_hugepages", NULL, "fail instead of falling back to shmem without hugepages" },
	{ "backing", "KIND", "auto (hugetlb, else shmem), hugetlb, or shmem (default auto)" },
	{ "reserve", "SIZE", "emergency reserve (min watermark); default: the kernel's min_free_kbytes rule" },
	{ "max_packet", "SIZE", "largest request packet accepted (default 64K)" },
	{ "max_clients", "N", "most connections served at once (default 1024)" },
	{ "admin_group", "GROUP", "group whose members may inspect the pool with kmctl (default: root only)" },
	{ "log_level", "LEVEL", "err, warning, notice, info or debug (default info)" },
	{ "paranoid", NULL, "check every allocator structure after each request (slow)" },
	{ "reconcile_interval", "SECONDS", "how often domain memfds are checked for phantom frames (default 10, 0 = never)" },
	{ "hello_timeout", "SECONDS", "close connections that have not said Hello after this long (default 10)" },
	{ "fd_store", NULL, "under systemd, keep clients, grants and memory in the fd store across a restart" },
};

#define NR_SETTINGS (sizeof(settings_table) / sizeof(settings_table[0]))

void settings_defaults(struct settings *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_path = strdup(KM_DEFAULT_SOCKET);
	if (settings_parse_size(KM_DEFAULT_POOL_SIZE, &cfg->pool_size) < 0)
		cfg->pool_size = 256ull << 20;
	cfg->backing = POOL_BACKING_AUTO;
	cfg->reserve = UINT64_MAX;
	cfg->max_packet = 64 * 1024;
	cfg->max_clients = 1024;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->reconcile_interval = 10;
	cfg->hello_timeout = 10;
}

void settings_fini(struct settings *cfg)
{
	free(cfg->socket_path);
	free(cfg->admin_group);
	free(cfg->config_file);
	memset(cfg, 0, sizeof(*cfg));
}

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
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' && shift)	/* accept "MiB"-style "Mi" too */
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

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (settings_parse_size(s, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int set_string(char **dst, const char *value)
{
	char *copy;

	if (!value || !*value)
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

int settings_set(struct settings *cfg, const char *key, const char *value)
{
	char name[64];
	size_t i;
	bool b;

	/* Flags spell keys with '-', the file with '_': accept both. */
	snprintf(name, sizeof(name), "%s", key);
	for (i = 0; name[i]; i++)
		if (name[i] == '-')
			name[i] = '_';

	if (!strcmp(name, "socket"))
		return set_string(&cfg->socket_path, value);
	if (!strcmp(name, "pool_size")) {
		uint64_t size;

		if (settings_parse_size(value, &size) < 0 || size == 0)
			return -EINVAL;
		cfg->pool_size = size;
		return 0;
	}
	if (!strcmp(name, "require_hugepages")) {
		if (parse_bool(value, &b) < 0)
			return -EINVAL;
		if (b)
			cfg->backing = POOL_BACKING_HUGETLB;
		else if (cfg->backing == POOL_BACKING_HUGETLB)
			cfg->backing = POOL_BACKING_AUTO;
		return 0;
	}
	if (!strcmp(name, "backing")) {
		if (!value)
			return -EINVAL;
		if (!strcmp(value, "auto"))
			cfg->backing = POOL_BACKING_AUTO;
		else if (!strcmp(value, "hugetlb"))
			cfg->backing = POOL_BACKING_HUGETLB;
		else if (!strcmp(value, "shmem"))
			cfg->backing = POOL_BACKING_SHMEM;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(name, "reserve"))
		return settings_parse_size(value, &cfg->reserve);
	if (!strcmp(name, "max_packet")) {
		uint32_t v;

		/* Below 256 bytes not even a full Hello fits. */
		if (parse_u32(value, &v) < 0 || v < 256 || v > 16u << 20)
			return -EINVAL;
		cfg->max_packet = v;
		return 0;
	}
	if (!strcmp(name, "max_clients")) {
		uint32_t v;

		if (parse_u32(value, &v) < 0 || v == 0)
			return -EINVAL;
		cfg->max_clients = v;
		return 0;
	}
	if (!strcmp(name, "admin_group"))
		return set_string(&cfg->admin_group, value);
	if (!strcmp(name, "log_level")) {
		static const struct { const char *name; enum log_level level; } levels[] = {
			{ "err", LOG_LEVEL_ERR }, { "error", LOG_LEVEL_ERR },
			{ "warning", LOG_LEVEL_WARN }, { "warn", LOG_LEVEL_WARN },
			{ "notice", LOG_LEVEL_NOTICE }, { "info", LOG_LEVEL_INFO },
			{ "debug", LOG_LEVEL_DEBUG },
		};
		for (i = 0; value && i < sizeof(levels) / sizeof(levels[0]); i++) {
			if (!strcasecmp(value, levels[i].name)) {
				cfg->log_level = levels[i].level;
				return 0;
			}
		}
		return -EINVAL;
	}
	if (!strcmp(name, "paranoid"))
		return parse_bool(value, &cfg->paranoid);
	if (!strcmp(name, "fd_store"))
		return parse_bool(value, &cfg->fd_store);
	if (!strcmp(name, "reconcile_interval"))
		return parse_u32(value, &cfg->reconcile_interval);
	if (!strcmp(name, "hello_timeout")) {
		uint32_t v;

		if (parse_u32(value, &v) < 0 || v == 0)
			return -EINVAL;
		cfg->hello_timeout = v;
		return 0;
	}
	return -EINVAL;
}

static int settings_ini_handler(void *user, const char *section, const char *key,
				const char *value)
{
	struct settings *cfg = user;

	if (*section && strcmp(section, "kmallocd")) {
		fprintf(stderr, "kmallocd: %s: unknown section [%s]\n", cfg->config_file, section);
		return 0;
	}
	if (settings_set(cfg, key, value) < 0) {
		fprintf(stderr, "kmallocd: %s: bad setting %s = %s\n", cfg->config_file, key, value);
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
		"  -s, --socket PATH\n"
		"  -p, --pool-size SIZE\n"
		"  -c, --config FILE             read settings from FILE (ini, section [kmallocd];\n"
		"                                default " KM_DEFAULT_CONFIG " if it exists)\n"
		"  -h, --help                    this text\n"
		"  -V, --version\n\n"
		"Settings (each also a key of the config file, with '_' for '-'):\n");
	for (i = 0; i < NR_SETTINGS; i++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s%s%s", settings_table[i].key,
			 settings_table[i].arg ? " " : "",
			 settings_table[i].arg ? settings_table[i].arg : "");
		for (char *p = flag + 2; *p && *p != ' '; p++)
			if (*p == '_')
				*p = '-';
		fprintf(out, "  %-28s  %s\n", flag, settings_table[i].help);
	}
}

int settings_load(struct settings *cfg, int argc, char **argv)
{
	struct option longopts[NR_SETTINGS + 4];
	char names[NR_SETTINGS][32];
	const char *config_path = NULL;
	bool config_given = false;
	size_t i, n = 0;
	int opt, idx, err;

	settings_defaults(cfg);
	if (!cfg->socket_path)
		return -ENOMEM;

	for (i = 0; i < NR_SETTINGS; i++) {
		size_t j;

		snprintf(names[i], sizeof(names[i]), "%s", settings_table[i].key);
		for (j = 0; names[i][j]; j++)
			if (names[i][j] == '_')
				names[i][j] = '-';
		longopts[n++] = (struct option){ names[i],
			settings_table[i].arg ? required_argument : no_argument, NULL, 0 };
	}
	longopts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };

	/* First pass: only --config, --help and --version, so the file can be
	 * read before the flags that override it. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:p:c:hV", longopts, &idx)) != -1) {
		if (opt == 'c') {
			config_path = optarg;
			config_given = true;
		} else if (opt == 'h') {
			settings_usage(stdout);
			return 1;
		} else if (opt == 'V') {
			printf("kmallocd %s\n", PACKAGE_VERSION);
			return 1;
		}
	}
	if (!config_path && access(KM_DEFAULT_CONFIG, R_OK) == 0)
		config_path = KM_DEFAULT_CONFIG;
	if (config_path) {
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
	}

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
