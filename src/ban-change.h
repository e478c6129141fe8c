/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>

#include "ban-table.h"
#include "journal-position.h"

/* A change of what is banned, as a value: the journal decided a ban, an admin banned or unbanned
 * by hand, a ban ran out, or a ban lost its ground (IgnoreAddress= now covers it, or the address
 * is the host's own). Every change
 * takes the same way through the manager (manager-bans.c): queued, one nft transaction for the
 * queue, one journal event and one notice to each subscriber per change, the state file last. */

typedef enum BanChangeKind {
        BAN_CHANGE_BAN,
        BAN_CHANGE_UNBAN,
        BAN_CHANGE_EXPIRE,
        _BAN_CHANGE_KIND_MAX,
        _BAN_CHANGE_KIND_INVALID = -EINVAL,
} BanChangeKind;

/* Why a ban was lifted before its time (BAN_CHANGE_UNBAN). */
typedef enum UnbanReason {
        UNBAN_MANUAL,   /* Unban() */
        UNBAN_IGNORED,  /* its jail's IgnoreAddress= (or loopback) covers the address now */
        UNBAN_LOCAL,    /* the address is configured on one of the host's interfaces now */
        UNBAN_PREFIX,   /* a ban of a prefix around it takes its place (one nft element) */
        _UNBAN_REASON_MAX,
        _UNBAN_REASON_INVALID = -EINVAL,
} UnbanReason;

/* A change applied for a fleet peer (manager-fleet.c) is logged with where it came from, so that
 * the peers that read this host's events can tell it from a decision of this host's own. */
typedef struct BanChangeFleet {
        char peer[FLEET_PEER_NAME_MAX + 1]; /* the sender whose journal file held it; "" if none */
        char origin_machine[33];            /* the machine ID of the host that decided it */
        bool relay;                         /* [Fleet] Relay=yes: this host's peers apply it too */
} BanChangeFleet;

typedef struct BanChange {
        BanChangeKind kind;
        Ban ban;                  /* the ban decided, lifted or run out */
        UnbanReason reason;       /* BAN_CHANGE_UNBAN only */
        bool logged;              /* BAN_CHANGE_BAN: its event is in the journal already (a replay) */
        usec_t find_time;         /* BAN_CHANGE_BAN from the journal: the jail's window */
        JournalPosition *causes;  /* BAN_CHANGE_BAN from the journal: its failures, oldest first; owned */
        size_t n_causes;
        BanChangeFleet fleet;     /* set for changes applied for a fleet peer */
} BanChange;

/* "ban", "unban", "expire": the names Monitor() streams. */
const char *ban_change_kind_to_string(BanChangeKind k);
/* "manual", "ignored", "local", "prefix"; the journal event's VPOPGUARD_UNBAN_REASON= ("expired" is an expiry). */
const char *unban_reason_to_string(UnbanReason r);

/* Frees what c owns (not c). */
void ban_change_done(BanChange *c);

/* Told of every change once the kernel holds it (the subscribers of manager_subscribe()). */
typedef void (*BanChangeSubscriber)(const BanChange *c, void *userdata);
