/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ban-change.h"
#include "journal-sender.h"

/* Structured journal entries for bans and unbans, so that `journalctl VPOPGUARD_ADDRESS=…`
 * shows an address's history and `journalctl -x` explains it (units/vpopguard.catalog). */

#define VPOPGUARD_MESSAGE_BAN "7fc6f43d6e5d457ba31097a4cc519474"
#define VPOPGUARD_MESSAGE_UNBAN "16f9f8826ed04c4b9f2a2591444632bc"
#define VPOPGUARD_MESSAGE_ENTRIES_MISSED "a88198937379434e853764a891c2a4cf"

/* Fields of the events of changes applied for a fleet peer (BanChange.fleet). */
#define VPOPGUARD_FIELD_FLEET_PEER "VPOPGUARD_FLEET_PEER"
#define VPOPGUARD_FIELD_FLEET_ORIGIN "VPOPGUARD_FLEET_ORIGIN_MACHINE_ID"
#define VPOPGUARD_FIELD_FLEET_RELAY "VPOPGUARD_FLEET_RELAY"

/* The event of one change: a ban (its causes' cursors become VPOPGUARD_CAUSE_CURSOR= fields),
 * an unban (VPOPGUARD_UNBAN_REASON=manual, ignored or local) or an expiry (VPOPGUARD_UNBAN_REASON=expired).
 * sender NULL: sent with sd_journal_sendv(), which blocks while journald is behind. Failing to
 * log is not fatal: returns negative errno. */
int journal_event_change(JournalSender *sender, const BanChange *c, bool dry_run);
/* The cursor we saved no longer exists in the journal: entries may have been missed. */
int journal_event_entries_missed(const char *cursor);
