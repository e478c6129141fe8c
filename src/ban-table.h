/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "time-util.h"

/* The bans the daemon believes are active, keyed by address (one nft element per address, so
 * one ban per address: a second ban of the same address keeps the later expiry). This table,
 * not the kernel, is the truth: the nft sets are reconciled from it.
 *
 * A ban may cover a prefix (IPv6Prefix=, IPv4Prefix=): its address is then the prefix's first
 * address. The manager keeps bans from overlapping (see widen_to_covering() in manager-bans.c),
 * and prefixes that do not overlap have different first addresses, so the address stays a
 * unique key. */

typedef enum BanOrigin {
        BAN_ORIGIN_JOURNAL,
        BAN_ORIGIN_MANUAL,
        BAN_ORIGIN_FLEET, /* decided by a fleet peer, applied here (manager-fleet.c) */
        _BAN_ORIGIN_MAX,
        _BAN_ORIGIN_INVALID = -EINVAL,
} BanOrigin;

const char *ban_origin_to_string(BanOrigin o);  /* "journal", "manual", "fleet" */
BanOrigin ban_origin_from_string(const char *s);

#define JAIL_NAME_MAX 64
#define FLEET_PEER_NAME_MAX 128 /* a fleet sender's name, see config.h */

typedef struct Ban {
        Address address;      /* with the bits beyond prefixlen clear */
        uint8_t prefixlen;    /* 0 (as older callers write it) or the family's length: one address */
        uint8_t fallback_prefixlen; /* non-zero: the jail's prefix of this length was not banned as
                                     * a whole (it holds an ignored, local or loopback address),
                                     * so this bans the single address instead */
        char jail[JAIL_NAME_MAX + 1];
        unsigned failures;
        unsigned count;       /* the address's how-manieth ban within BanHistory= (1: its first) */
        BanOrigin origin;     /* here, where it fills a hole: see BanEntry in ban-table.c */
        usec_t banned_usec;   /* wall clock when the ban was decided */
        usec_t expires_usec;  /* wall clock when the kernel drops it */
} Ban;

/* A permanent ban (BanTime=infinity) expires at USEC_INFINITY: it never leaves the table by
 * itself and its nft element has no timeout. */
static inline bool ban_is_permanent(const Ban *b) {
        return b->expires_usec == USEC_INFINITY;
}

/* What the ban covers; a prefixlen of 0 is the whole address. */
static inline AddressPrefix ban_prefix(const Ban *b) {
        return address_prefix_of(&b->address, b->prefixlen == 0 ? 128 : b->prefixlen);
}

/* A ban decided while the clock was ahead (banned_usec after now) is moved to begin now: no
 * ban ever has more time left than its own duration, whatever the clock did meanwhile. */
void ban_clamp_to_now(Ban *b, usec_t now);

typedef struct BanTable BanTable;

int ban_table_new(BanTable **ret);
BanTable *ban_table_free(BanTable *t);

/* Inserts b, or updates the existing ban of the same address (the later expiry wins, the other
 * fields follow the ban with the later expiry). Returns 1 if inserted, 0 if updated, -ENOMEM. */
int ban_table_put(BanTable *t, const Ban *b);
const Ban *ban_table_get(BanTable *t, const Address *a);
/* The ban whose prefix holds a (a ban of a itself, or of a prefix around it), or NULL. Costs one
 * lookup per prefix length that some ban in the table has. */
const Ban *ban_table_find_covering(BanTable *t, const Address *a);
/* Copies of the bans that lie inside p but are not p itself, in table order; *ret allocated
 * (NULL if none). Returns their number or -ENOMEM. Free if no ban of p's family has a longer
 * prefix; otherwise it walks one bucket of an index of p's family that the table keeps from
 * the first such query on (built then in one pass; rebuilt for a shorter p, or for a longer one
 * once bucket walks have visited more bans in vain than the table holds). */
int ban_table_find_inside(BanTable *t, const AddressPrefix *p, Ban **ret);
bool ban_table_remove(BanTable *t, const Address *a);

/* Removes every ban with expires_usec <= now, calling cb for each first (cb may be NULL). */
size_t ban_table_expire(BanTable *t, usec_t now, void (*cb)(const Ban *b, void *userdata), void *userdata);
/* The earliest expires_usec, or USEC_INFINITY if empty or every ban is permanent. */
usec_t ban_table_next_expiry(const BanTable *t);

bool ban_table_next(BanTable *t, size_t *iter, const Ban **ret); /* like failure_table_next() */
size_t ban_table_size(const BanTable *t);
