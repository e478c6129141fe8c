/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "failregex.h"
#include "failure-table.h"
#include "journal-field.h"

/* A jail at run time: its configuration, compiled regexes, journal matches and open failure
 * windows. Jails never touch the firewall: they only tell the manager which address reached
 * MaxRetry, and with which failures. */

typedef struct JailMatch {
        char *field;  /* "SYSLOG_IDENTIFIER" */
        char *value;  /* "vpopmail" */
} JailMatch;

typedef enum JailVerdict {
        JAIL_VERDICT_NO_MATCH,       /* the entry is not for this jail, or no FailRegex matched */
        JAIL_VERDICT_UNTRUSTED,      /* _UID outside TrustedUID= */
        JAIL_VERDICT_IGNORE_REGEX,   /* an IgnoreRegex= matched */
        JAIL_VERDICT_IGNORED_ADDRESS,/* IgnoreAddress= or loopback */
        JAIL_VERDICT_FAILURE,        /* counted */
        JAIL_VERDICT_LIMIT,          /* regex effort limit hit or oversized MESSAGE: not counted */
        _JAIL_VERDICT_MAX,
        _JAIL_VERDICT_INVALID = -EINVAL,
} JailVerdict;

const char *jail_verdict_to_string(JailVerdict v);

typedef struct Jail {
        const JailConfig *config; /* owned by the manager's Config */
        JailMatch *matches;
        size_t n_matches;
        Regex **fail_regex;
        size_t n_fail_regex;
        Regex **ignore_regex;
        size_t n_ignore_regex;
        FailureTable *failures;

        uint64_t failures_total;
        uint64_t bans_total;
        uint64_t limit_hits;
        uint64_t untrusted_failures; /* failures its patterns found in entries of untrusted senders */
        uint64_t entries_unreadable; /* its entries without a readable MESSAGE (or _UID), not judged */
        uint64_t unbans_total;       /* its bans lifted before their time (committed) */
        uint64_t expired_total;      /* its bans that ran out (committed) */
        uint64_t fleet_bans_applied; /* bans of its name that fleet peers decided, applied here */
} Jail;

int jail_new(const JailConfig *config, Jail **ret);
Jail *jail_free(Jail *j);

/* Adds this jail's matches to the journal as one conjunction followed by a disjunction, so the
 * journal returns entries that match any jail. */
int jail_add_journal_matches(const Jail *j, sd_journal *journal);

/* Whether the journal entry's fields satisfy the jail's JournalMatch= and TrustedUID=: the
 * journal's filter is the OR of all jails, so each jail checks again that the entry is its own.
 * If not, *ret_reason says why (JAIL_VERDICT_NO_MATCH or JAIL_VERDICT_UNTRUSTED). */
bool jail_accepts_entry(const Jail *j, JournalFieldGetter get, void *userdata, JailVerdict *ret_reason);

/* Applies IgnoreRegex=, FailRegex= and IgnoreAddress= to one MESSAGE. On
 * JAIL_VERDICT_FAILURE *ret_address is the client. Does not count. */
JailVerdict jail_match_message(Jail *j, const char *message, size_t len, Address *ret_address);

/* Moves the failure windows of old into j (a reload keeps counts of jails that still exist). */
int jail_take_failures(Jail *j, Jail *old);
