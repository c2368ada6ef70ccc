/* SPDX-License-Identifier: GPL-2.0-only */
/* Logging: one line per message to stderr (or a sink the program sets), with a level filter. */
#ifndef VMMS_LIB_LOG_H
#define VMMS_LIB_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

void log_set_level(enum log_level level);
void log_set_prefix(const char *prefix); /* e.g. "vmms-worker[web1]" */
/* Logs and returns -abs(err) so callers can write `return log_error_errno(r, "...")`. */
int log_full_errno(enum log_level level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) (void)log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) (void)log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_info(...) (void)log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) (void)log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
/* With an errno value: the message gets ": <strerror>" appended. */
#define log_error_errno(err, ...) log_full_errno(LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(LOG_WARNING, (err), __VA_ARGS__)
#define log_debug_errno(err, ...) log_full_errno(LOG_DEBUG, (err), __VA_ARGS__)

#endif
