/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "address.h"
#include "config.h"
#include "macro.h"
#include "time-util.h"

/* Only this file changes the kernel's ruleset. It owns one libnftables context for the life of
 * the daemon and builds every command itself from addresses it formatted (address_to_string())
 * and names that config validation restricted to [A-Za-z0-9_]: no text from the journal ever
 * reaches nft syntax, and nothing is resolved. It never forks nft. */

typedef struct NftSet NftSet;

typedef struct NftElement {
        Address address;
        uint8_t prefixlen; /* a prefix ("2001:db8::/64", which needs a set with flags interval);
                            * 0 or the family's length: the address alone */
        usec_t timeout; /* to add: the ban's duration (rounded up to whole seconds), USEC_INFINITY
                         * for an element without timeout; from
                         * nft_set_list(): the remaining time, 0 if the element has no timeout */
} NftElement;

int nft_set_new(const FirewallConfig *c, NftSet **ret);
NftSet *nft_set_free(NftSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(NftSet *, nft_set_free);

/* Prefix elements of this family will be added (IPv4Prefix= or IPv6Prefix= of prefixlen, named
 * in errors): its set needs "flags interval". Before nft_set_ensure(). */
void nft_set_require_interval(NftSet *s, int family, unsigned prefixlen);

/* CreateTable=yes: creates, in one transaction, what is missing of the table, the two sets
 * ("flags timeout", plus "interval" where required or already there) and an input chain that
 * drops packets whose source is in them (rules are replaced, the sets' elements kept). A set
 * that lacks a required interval flag is created afresh in the same transaction (its elements
 * are lost: the caller puts its bans back). CreateTable=no: checks that the sets exist with the
 * right type and flags; the error then says which nft command makes them right. -ENOENT,
 * -EEXIST (CreateTable=yes: a set of another type or flags), -EMEDIUMTYPE (CreateTable=no:
 * wrong type or a missing flag), -EPERM, ... with nft_set_error(). */
int nft_set_ensure(NftSet *s);

/* 1 if the table and its sets exist, 0 if not, negative errno on failure. */
int nft_set_exists(NftSet *s);

/* One transaction for all elements, IPv4 into the v4 set and IPv6 into the v6 set; an element
 * that is already present gets the new timeout (on kernel 6.18; older kernels may keep the old
 * one), but an element without timeout always replaces the present one. -EAFNOSUPPORT if the family ("ip", "ip6") has no set for an element's address family;
 * then nothing is added (filter with nft_set_has_family() first). */
int nft_set_add(NftSet *s, const NftElement *elements, size_t n);

/* One transaction; elements that are absent (or already timed out) are not an error, nor are
 * addresses of a family without a set (they cannot be present). */
int nft_set_remove(NftSet *s, const Address *addresses, size_t n);

/* One transaction that adds (as nft_set_add()) and removes (as nft_set_remove(); timeouts are
 * ignored): all of it happens, or nothing. An element both added and removed ends up present.
 * An interval set refuses an element that overlaps another, so a removed element that overlaps
 * an added one (a single address inside a prefix now banned) is deleted first, and must be
 * present: -ENOENT otherwise (nft_set_reconcile() then sorts it out). */
int nft_set_apply(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes);

/* nft_set_apply() after a look at what the kernel holds: elements of interval sets that overlap
 * an added one without being it (left over from a crash, or another process's) are deleted too,
 * and removals of absent elements are dropped. For when the kernel may have drifted. */
int nft_set_reconcile(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes);

/* Every element of both sets with its remaining timeout (whole seconds, as libnftables reports
 * it; 1us for an element in its last second) and, for a prefix, its length. Ranges that are no
 * prefix are skipped. *ret allocated (NULL if there are none). */
int nft_set_list(NftSet *s, NftElement **ret, size_t *ret_n);

/* Whether there is a set for AF_INET / AF_INET6 addresses (Family=ip has no IPv6 set, ip6 no IPv4
 * set). */
bool nft_set_has_family(const NftSet *s, int family);

/* libnftables' error text for the last failed call (or ""). */
const char *nft_set_error(const NftSet *s);
