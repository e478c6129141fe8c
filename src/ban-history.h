/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "time-util.h"

/* How often each address was banned, across all jails, and when last: a repeat offender's next
 * ban is longer (BanTimeFactor=), whichever jail catches it. It is kept in the state file, and
 * bounded: beyond BAN_HISTORY_MAX addresses the ones banned longest ago are forgotten first. */

#define BAN_HISTORY_MAX 100000U

typedef struct BanRecord {
        Address address;
        unsigned count;   /* bans so far, the last one included */
        usec_t last_usec; /* wall clock when the last one was decided */
} BanRecord;

typedef struct BanHistory BanHistory;

int ban_history_new(BanHistory **ret);
BanHistory *ban_history_free(BanHistory *h);

/* The bans of a that still count at now: its record's count if its last ban is at most window
 * old, else 0. */
unsigned ban_history_count(const BanHistory *h, const Address *a, usec_t now, usec_t window);
/* The record of a, or NULL; valid until the next change of h. */
const BanRecord *ban_history_get(const BanHistory *h, const Address *a);
/* Sets a's record (a new ban, or one read back from the state file); makes room first by
 * forgetting the oldest records. -ENOMEM, -EINVAL for a count of 0. */
int ban_history_put(BanHistory *h, const Address *a, unsigned count, usec_t last_usec);
void ban_history_remove(BanHistory *h, const Address *a);
/* Lowers the limit of BAN_HISTORY_MAX records (tests). */
void ban_history_set_limit(BanHistory *h, size_t limit);

bool ban_history_next(const BanHistory *h, size_t *iter, const BanRecord **ret);
size_t ban_history_size(const BanHistory *h);

/* The length of a ban after `earlier` counted bans: base × factor^earlier, at most
 * MAX(max, base); USEC_INFINITY stays infinite. */
usec_t ban_length(usec_t base, double factor, usec_t max, unsigned earlier);
