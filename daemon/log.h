/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr. Under systemd (JOURNAL_STREAM set)
 * each line starts with its syslog priority ("<3>") for the journal.
 * Warnings about client behaviour go through log_ratelimit() so a hostile
 * client cannot flood the journal.
 */
#pragma once

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARN = 4, LOG_LEVEL_NOTICE = 5,
		 LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

void log_init(enum log_level max_level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs, then exits with status 1. Only before the daemon serves. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* True when another rate-limited line may be printed now (10 per second
 * burst, then 1 per second); counts what it suppresses and reports it. */
bool log_ratelimit(void);

#define log_err(...)	log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
