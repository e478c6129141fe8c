/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-journal.h>

#include "journal-field.h"
#include "macro.h"
#include "time-util.h"

/* journald's rate limit (RateLimitBurst= per unit, 10000 messages in 30 s by default) drops
 * messages before any reader sees them. When the unit logs again after the interval, journald
 * writes one note just before that message (systemd 252, observed):
 *
 *     _TRANSPORT=driver  SYSLOG_IDENTIFIER=systemd-journald  PRIORITY=6
 *     MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e  (SD_MESSAGE_JOURNAL_DROPPED)
 *     MESSAGE=Suppressed N messages from UNIT  N_DROPPED=N
 *     OBJECT_SYSTEMD_UNIT=UNIT  OBJECT_PID=...  OBJECT_COMM=...  (the sender that logged again)
 *
 * Rate limiting is keyed by the sender's system unit (_SYSTEMD_UNIT; user services count as
 * their user@UID.service), and only senders with a unit are limited at all.
 *
 * Anyone may log MESSAGE_ID=... with sd_journal_send(), but fields that begin with "_" are
 * set by journald itself: only entries with _TRANSPORT=driver are believed. */

#define JOURNAL_SUPPRESSION_MESSAGE_ID "a596d6fe7bfa4994828e72309e95d61e"
/* systemd's UNIT_NAME_MAX is 256 bytes with the NUL. */
#define JOURNAL_UNIT_NAME_MAX 255
/* How many of the unit's entries before a note are looked at to find the jails it feeds. */
#define SUPPRESSION_LOOKBACK_MAX 64

typedef struct JournalSuppression {
        char unit[JOURNAL_UNIT_NAME_MAX + 1];
        uint64_t n_dropped;
} JournalSuppression;

/* Returns 1 and fills *ret if the entry is journald's note (_TRANSPORT=driver and the message
 * id), 0 if it is not, and -EBADMSG if it is one but N_DROPPED is not a decimal number from 1
 * to UINT64_MAX, or no valid unit name is in OBJECT_SYSTEMD_UNIT nor in MESSAGE (whose count
 * must then equal N_DROPPED). Looks at _TRANSPORT first: one lookup for every other entry. */
int journal_suppression_parse(JournalFieldGetter get, void *userdata, JournalSuppression *ret);

/* Whether a note can have field=value. False for SYSLOG_IDENTIFIER, _TRANSPORT and MESSAGE_ID
 * with any value but the note's; true for every other field. A journal match that excludes
 * notes lets the reader skip looking for them in the entries it accepts. */
bool journal_suppression_may_match(const char *field, const char *value);

/* Whether s is a plausible unit name: 1 to JOURNAL_UNIT_NAME_MAX characters out of
 * [A-Za-z0-9:_.\\@-], with a '.' that is neither first nor last. Such a name can be logged
 * as it is. */
bool journal_unit_name_is_valid(const char *s, size_t len);

/* Whether jail number jail accepts the current entry of the journal, read through get. */
typedef bool (*SuppressionJailAccepts)(size_t jail, JournalFieldGetter get, void *entry, void *userdata);

/* Finds the jails that unit feeds: the jails that accept one of the last
 * SUPPRESSION_LOOKBACK_MAX entries of unit (_SYSTEMD_UNIT=) before the entry at cursor (the
 * note). The entries may be older than anything the caller read, e.g. after a restart. j is a
 * journal handle of the caller's; its matches and position are replaced. Sets ret_fed[i] for
 * each of the n_jails that does, and returns how many do, or negative errno. */
int journal_suppression_find_jails(sd_journal *j, const char *cursor, const char *unit, size_t n_jails,
                                   SuppressionJailAccepts accepts, void *userdata, bool *ret_fed);

/* The counts of each jail, kept across reloads by the jail's name. */

typedef struct SuppressionStats {
        uint64_t messages;   /* the sum of N_DROPPED, saturating */
        uint64_t events;     /* notes */
        usec_t last_usec;    /* the newest note's __REALTIME_TIMESTAMP, 0 if none */
        char last_unit[JOURNAL_UNIT_NAME_MAX + 1];
} SuppressionStats;

typedef struct SuppressionTracker SuppressionTracker;

int suppression_tracker_new(SuppressionTracker **ret);
SuppressionTracker *suppression_tracker_free(SuppressionTracker *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(SuppressionTracker *, suppression_tracker_free);

/* Makes names[0..n) the jails, index i being names[i]. A jail whose name was there before
 * keeps its statistics; the others are forgotten. -ENOMEM leaves t unchanged. */
int suppression_tracker_set_jails(SuppressionTracker *t, const char * const *names, size_t n);

/* Counts note s, logged at realtime, for jail number jail (ignored if there is none). */
void suppression_tracker_count(SuppressionTracker *t, size_t jail, const JournalSuppression *s, usec_t realtime);

/* The statistics of the jail named name, NULL if there is no such jail. */
const SuppressionStats *suppression_tracker_get(const SuppressionTracker *t, const char *name);
