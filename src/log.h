/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include "macro.h"

/* Logging goes to stderr; under systemd (JOURNAL_STREAM) each line carries its syslog
 * priority as a "<N>" prefix so journald records it. Structured events (bans) are sent
 * separately by journal-events.c. */

void log_set_max_level(int level);
int log_get_max_level(void);
void log_open(void);
/* Whether stderr goes to journald (then structured events need no second copy on stderr). */
bool log_stderr_is_journal(void);

/* Logs the message; "%m" expands to strerror(-error). Returns -abs(error) (or 0 for error 0) so
 * callers can write "return log_error_errno(r, ...)". */
int log_internal(int level, int error, const char *file, int line, const char *format, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")

/* Makes text that an attacker may have written safe to log or print: into buf goes only
 * printable ASCII, with '\\' for a backslash and \xNN for control characters, NUL and bytes
 * from 0x7f (UTF-8 or not). Text that does not fit in size bytes is cut and ends in "...".
 * Always NUL-terminates (unless size is 0); returns buf. */
char *log_escape(const char *text, size_t len, char *buf, size_t size);
#define LOG_ESCAPE_MAX 256
