/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "ban-table.h"
#include "time-util.h"

/* A ban or unban event of a fleet peer's vpopguardd, as read from the journal file that
 * systemd-journal-remote wrote for that peer, and what this host does with it. Pure: no
 * journal, no manager; manager-fleet.c feeds it the entry's fields.
 *
 * Which peer an entry is from is known only by the file it is in (the transport), never from
 * its fields. Within a listed peer's journal, the kernel-made fields that peer's journald
 * added (_UID, _SYSTEMD_UNIT, _TRANSPORT) tell whether its vpopguardd wrote the event, or a
 * local user who logged the same MESSAGE_ID. */

#define FLEET_TRUSTED_UNIT "vpopguard.service"

typedef enum FleetEntryKind {
        FLEET_ENTRY_BAN,
        FLEET_ENTRY_UNBAN,
        _FLEET_ENTRY_KIND_MAX,
        _FLEET_ENTRY_KIND_INVALID = -EINVAL,
} FleetEntryKind;

typedef struct FleetEntry {
        FleetEntryKind kind;          /* from MESSAGE_ID; invalid if neither */
        AddressPrefix prefix;         /* VPOPGUARD_PREFIX= */
        char jail[JAIL_NAME_MAX + 1]; /* VPOPGUARD_JAIL= */
        usec_t expires_usec;          /* VPOPGUARD_EXPIRES_USEC=, on the sender's clock */
        usec_t realtime_usec;         /* when the sender logged it, on the sender's clock */
        char machine[33];             /* _MACHINE_ID=: the sender's machine */
        char origin_machine[33];      /* VPOPGUARD_FLEET_ORIGIN_MACHINE_ID=: who decided a relayed one */
        char unban_reason[16];        /* VPOPGUARD_UNBAN_REASON= */
        bool has_prefix, has_jail, has_expires, permanent;
        bool uid_root, trusted_unit, native_transport;
        bool dry_run, fleet_applied, relay;
} FleetEntry;

typedef enum FleetVerdict {
        FLEET_VERDICT_APPLY,      /* a ban to apply (until fleet_entry_local_expiry()) or an unban */
        FLEET_VERDICT_UNTRUSTED,  /* not written by the peer's vpopguardd */
        FLEET_VERDICT_IGNORE,     /* trusted, but not for us: a dry run, an expiry, an echo, our own */
        FLEET_VERDICT_MALFORMED,  /* a field is missing or unreadable */
} FleetVerdict;

void fleet_entry_init(FleetEntry *e);
/* One "NAME=value" field of the entry (as sd_journal_enumerate_data() gives it); fields that
 * do not matter are skipped. Never fails: a bad value leaves its field unset. */
void fleet_entry_add_field(FleetEntry *e, const void *data, size_t len);
/* What to do with a complete entry. own_machine: this host's machine ID (32 hex digits), so
 * that its own decisions relayed back to it are ignored. */
FleetVerdict fleet_entry_judge(const FleetEntry *e, const char *own_machine);
/* When a ban ends on our clock: it keeps the time it had left when the sender logged it, minus
 * the time since by our clock; a sender clock ahead of ours costs nothing, so no ban ever lasts
 * longer than it had left. 0 if it is over, USEC_INFINITY if permanent. */
usec_t fleet_entry_local_expiry(const FleetEntry *e, usec_t now);
