/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ban-table.h"
#include "jail-index.h"
#include "jail.h"
#include "journal-entry.h"
#include "local-addresses.h"

/* Judges one journal entry for every jail: which jails it is for (JournalMatch=, TrustedUID=),
 * what their patterns say of its MESSAGE, and counts the failures; an address that reaches a
 * jail's MaxRetry is handed to on_ban. It needs no journal and no firewall: what it knows of the
 * world is the entry, the jails, the ban table (a banned address's failures do not count) and the
 * host's own addresses (whose failures do not count either, like loopback's). */

/* A jail's verdict reached MaxRetry: b is the ban (banned now, for the jail's BanTime), w the
 * failures that led to it, oldest first (valid during the call). Returns 0 when it bans, 1 when
 * the ban is over already (judged late: not counted as a ban); negative errno aborts. */
typedef int (*EntryJudgeBanCallback)(Jail *jail, Ban *b, const FailureWindow *w, void *userdata);

/* Jails are tried in the order of the jails array (the configuration's): when one bans the
 * address an entry names, the later ones find it banned and do not count that entry. */
typedef struct EntryJudge {
        Jail **jails;
        size_t n_jails;
        const JailIndex *index; /* built from jails; NULL: every entry meets every jail */
        BanTable *bans;
        const LocalAddresses *local; /* NULL: only loopback is the host's own */
        EntryJudgeBanCallback on_ban;
        void *userdata;
} EntryJudge;

typedef struct EntryJudgement {
        bool accepted;   /* some jail takes the entry */
        bool matched;    /* some jail's FailRegex= matched (counted or not) */
        bool unreadable; /* a jail would take it but MESSAGE (or _UID for TrustedUID=) is missing */
        Jail *untrusted_jail; /* a jail whose FailRegex= matched but that does not trust the sender
                               * (counted in its untrusted_failures), or NULL */
        uid_t untrusted_uid;  /* that sender */
} EntryJudgement;

/* Returned (positive) instead of judging when an entry a jail might take lacks a field and the
 * judgement is not final: journald may not have linked the field yet, so nothing was counted and
 * the entry should be read again. */
#define ENTRY_JUDGE_INCOMPLETE 1

/* Returns 0 with *ret filled, ENTRY_JUDGE_INCOMPLETE, or negative errno (on_ban's, -ENOMEM). */
int entry_judge(const EntryJudge *judge, JournalEntry *e, usec_t now, bool final, EntryJudgement *ret);
