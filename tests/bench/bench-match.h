/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "address.h"
#include "journal-position.h"
#include "macro.h"
#include "time-util.h"

/* The benchmark floor's judging, deliberately bare: ONE PCRE2-JIT pattern that covers every
 * FailRegex= of the shipped vpopmail jail, with a plain capture for the address instead of
 * vpopguard's <HOST> callout, and a flat open-addressing table of failure windows. Shared by the
 * floor program and the live sender, which uses it to know when each attacker reaches MaxRetry. */

#define BENCH_MAX_RETRY_MAX 8U

typedef struct BenchMatcher BenchMatcher;

int bench_matcher_new(BenchMatcher **ret);
BenchMatcher *bench_matcher_free(BenchMatcher *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(BenchMatcher *, bench_matcher_free);

/* 1 and *ret_address if MESSAGE is a counted vpopmail failure from a non-loopback address, else 0. */
int bench_matcher_match(BenchMatcher *m, const char *message, size_t len, Address *ret_address);

typedef struct BenchTable BenchTable;

/* keep_positions: also keep each failure's journal position (cursor), as the daemon does for
 * the causes its ban event names (the floor with --events). */
int bench_table_new(unsigned max_retry, usec_t find_time, bool keep_positions, BenchTable **ret);
BenchTable *bench_table_free(BenchTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(BenchTable *, bench_table_free);

/* Counts a failure at realtime t. Returns 1 if it is the MaxRetry-th within FindTime (the address
 * is then marked banned and never counted again), 0 if merely counted or already banned,
 * -ENOMEM. The window is the daemon's: a failure counts while it is less than FindTime older
 * than the newest. If the table keeps positions, p is the failure's and on 1 ret_causes gets
 * the MaxRetry positions of the ban, oldest first (room for BENCH_MAX_RETRY_MAX); else both
 * may be NULL. */
int bench_table_record(BenchTable *t, const Address *a, usec_t when, const JournalPosition *p,
                       JournalPosition *ret_causes);
size_t bench_table_size(const BenchTable *t);

/* RssAnon of this process from /proc/self/status, in KiB, or 0 if unknown. */
unsigned long bench_rss_anon_kib(void);
