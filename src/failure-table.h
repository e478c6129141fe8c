/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "journal-position.h"

/* The open failure windows of one jail: per address, the positions (timestamp + cursor) of its
 * recent failures, oldest first, at most max_retry of them.
 *
 * Time is the journal entries' own realtime, never the wall clock: a failure counts while its
 * timestamp is within find_time of the newest failure recorded for that address.
 *
 * Memory is bounded: at most max_tracked addresses. Eviction policy when a new address arrives
 * and the table is full: first windows that have expired (newest failure older than find_time
 * before the newest failure the table has seen), then the least recently failing address. So
 * an attacker who floods with many addresses can at worst make us forget the addresses that
 * have been quiet the longest. */

typedef struct FailureTable FailureTable;

typedef struct FailureWindow {
        Address address;                   /* the prefix's first address */
        uint8_t prefixlen;                 /* what was counted: the family's length for one address */
        size_t n_failures;                 /* 1 .. max_retry */
        const JournalPosition *failures;   /* n_failures entries, oldest first */
} FailureWindow;

int failure_table_new(unsigned max_retry, usec_t find_time, size_t max_tracked, FailureTable **ret);
FailureTable *failure_table_free(FailureTable *t);

/* Records a failure of a at position p and returns how many failures of a are now inside the
 * window (1 .. max_retry), or negative errno (-ENOMEM). When it returns max_retry the caller
 * bans and then calls failure_table_forget(). */
int failure_table_record(FailureTable *t, const Address *a, const JournalPosition *p);
/* The same for a prefix (IPv6Prefix=): its address, host bits clear, is the key. A prefix and a
 * single address with the same first address share one window. */
int failure_table_record_prefix(FailureTable *t, const AddressPrefix *prefix, const JournalPosition *p);

/* The window of a, or false if a is not tracked. ret stays valid until the next change. */
bool failure_table_get(FailureTable *t, const Address *a, FailureWindow *ret);
void failure_table_forget(FailureTable *t, const Address *a);

/* Puts back a window loaded from the state file (failures oldest first; only those still inside
 * the window relative to the last one are kept, at most max_retry - 1... max_retry). */
int failure_table_restore(FailureTable *t, const Address *a, const JournalPosition *failures, size_t n);
int failure_table_restore_prefix(FailureTable *t, const AddressPrefix *prefix, const JournalPosition *failures, size_t n);

/* Iteration in unspecified order; *iter starts at 0. Returns false at the end. The table must
 * not change during iteration. */
bool failure_table_next(FailureTable *t, size_t *iter, FailureWindow *ret);

size_t failure_table_size(const FailureTable *t);
uint64_t failure_table_evictions(const FailureTable *t); /* addresses evicted while still inside their window */
unsigned failure_table_max_retry(const FailureTable *t);
usec_t failure_table_find_time(const FailureTable *t);
/* Bytes allocated for the tracked addresses (entries, hash index, bookkeeping). */
size_t failure_table_memory_usage(const FailureTable *t);
