/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr. Under systemd (JOURNAL_STREAM set)
 * each line starts with its syslog priority ("<3>") for the journal.
 * Warnings about client behaviour go through log_ratelimit() so a hostile
 * client cannot flood the journal.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7
};

void log_init(enum log_level max_level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs, then exits with status 1. Only before the daemon serves. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A rate limit: at most @burst lines per second window. */
struct ratelimit {
	int64_t window; /* the second it counts in (monotonic) */
	unsigned int printed;
	unsigned int suppressed; /* reported when the next window opens */
};

/* True when one more line may be printed under @rl (at most @burst per
 * second); a false counts as suppressed, and the first line of the next
 * window says how many were. @who names the source in that report. */
bool ratelimit_ok(struct ratelimit *rl, unsigned int burst, const char *who);

/* The daemon-wide limit every line a client can cause also passes (10 per
 * second). */
bool log_ratelimit(void);

#define log_err(...)	log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LEVEL_DEBUG))                                                  \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                     \
	} while (0)
