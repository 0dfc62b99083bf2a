// SPDX-License-Identifier: MIT
/*
 * log.c - stderr logging with journal priority prefixes and a rate limit.
 */
#include "config.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static enum log_level log_max = LOG_LEVEL_INFO;
static bool log_journal;

void log_init(enum log_level max_level)
{
	log_max = max_level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

bool log_enabled(enum log_level level)
{
	return level <= log_max;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[LOG_LEVEL_ERR] = "error",     [LOG_LEVEL_WARN] = "warning",
		[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
		[LOG_LEVEL_DEBUG] = "debug",
	};
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	else
		fprintf(stderr, "kmallocd: %s: %s\n", names[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERR, fmt, ap);
	va_end(ap);
	exit(EXIT_FAILURE);
}

bool ratelimit_ok(struct ratelimit *rl, unsigned int burst, const char *who)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != rl->window) {
		if (rl->suppressed)
			log_msg(LOG_LEVEL_WARN, "%s%s%u log lines suppressed", who ? who : "",
				who ? ": " : "", rl->suppressed);
		rl->window = now.tv_sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed < burst) {
		rl->printed++;
		return true;
	}
	rl->suppressed++;
	return false;
}

bool log_ratelimit(void)
{
	static struct ratelimit global;

	return ratelimit_ok(&global, 10, NULL);
}
