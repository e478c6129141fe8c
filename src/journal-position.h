/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <stddef.h>

#include "time-util.h"

/* A journal entry's cursor in 40 bytes instead of ~130 characters, so each counted failure can
 * keep the exact cursor of its entry (the ban event names them) at a bounded cost.
 *
 * sd_journal_get_cursor() (systemd 252) writes "s=<seqnum id>;i=<seqnum>;b=<boot id>;
 * m=<monotonic>;t=<realtime>;x=<xor hash>", ids as 32 lowercase hex digits, numbers in hex.
 * The two 128-bit ids repeat across entries, so they are interned in a process-wide table and
 * referred to by index. A cursor of any other shape is kept as "unknown" (has_cursor false):
 * it still has a timestamp, it just cannot be printed back. */

typedef struct JournalPosition {
        usec_t realtime;   /* the entry's __REALTIME_TIMESTAMP */
        uint64_t seqnum;
        uint64_t monotonic;
        uint64_t xor_hash;
        uint16_t seqnum_id; /* index into the id table; JOURNAL_ID_NONE if no cursor */
        uint16_t boot_id;
} JournalPosition;

#define JOURNAL_ID_NONE UINT16_MAX
#define JOURNAL_CURSOR_MAX 160

/* At most this many distinct ids (seqnum ids and boot ids together) are interned. */
#define JOURNAL_ID_TABLE_MAX 65534

/* Parses cursor text; on any deviation from the format above (or a full id table) sets the
 * ids to JOURNAL_ID_NONE and only realtime (taken from the argument) is meaningful. A cursor
 * whose t= differs from realtime counts as a deviation, so realtime is always the argument and
 * a printed cursor is always the one parsed. Returns 0, or -ENOMEM. */
int journal_position_from_cursor(const char *cursor, usec_t realtime, JournalPosition *ret);
/* The same, strict: -EINVAL if cursor is not in the format above (or t= is not realtime),
 * -ENOSPC if the id table is full, -ENOMEM. Used by the state file loader to tell damage from
 * a full table. */
int journal_position_parse(const char *cursor, usec_t realtime, JournalPosition *ret);
static inline int journal_position_has_cursor(const JournalPosition *p) {
        return p->seqnum_id != JOURNAL_ID_NONE && p->boot_id != JOURNAL_ID_NONE;
}
/* Writes the cursor text back (identical to what sd_journal_get_cursor() returned) and returns
 * its length. Returns -ENODATA if the position has no cursor, or refers to ids of a table that
 * was reset since (positions do not survive journal_position_table_reset()). */
int journal_position_to_cursor(const JournalPosition *p, char buf[static JOURNAL_CURSOR_MAX]);

/* Frees the id table (tests, fuzzers and the end of the daemon). */
void journal_position_table_reset(void);
