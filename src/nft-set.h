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
 * reaches nft syntax, and nothing is resolved. It never forks nft.
 *
 * Every set is a plain hash set with flags timeout, never an interval set: libnftables 1.0.6
 * reads every element of every interval set in the table before each transaction that adds
 * elements (2.3 s of CPU at 100 000 prefixes). A ban of a single address is an element of the
 * family's set (IPv4Set=, IPv6Set=); a ban of a prefix of length L is its network address in the
 * set "<that set>_<L>" (banned6_64), which a rule matches against the source address masked to
 * L bits ("ip6 saddr & ffff:ffff:ffff:ffff:: @banned6_64 drop"). */

typedef struct NftSet NftSet;

typedef struct NftElement {
        Address address;
        uint8_t prefixlen; /* a prefix ("2001:db8::/64": its network address in the set of that
                            * length); 0 or the family's length: the address alone */
        usec_t timeout; /* to add: the ban's duration (rounded up to whole seconds), USEC_INFINITY
                         * for an element without timeout; from
                         * nft_set_list(): the remaining time, 0 if the element has no timeout */
} NftElement;

int nft_set_new(const FirewallConfig *c, NftSet **ret);
NftSet *nft_set_free(NftSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(NftSet *, nft_set_free);

/* Prefixes of this length and family will be banned (IPv4Prefix= or IPv6Prefix=, or a saved
 * ban): nft_set_ensure() sets up their set and rule. nft_set_apply() registers the lengths of
 * what it adds or removes itself; a set it has not ensured yet then fails the transaction
 * (-ENOENT), and the caller's repair ensures it. A length of 0 or the family's: nothing. */
void nft_set_require_prefix(NftSet *s, int family, unsigned prefixlen);

/* CreateTable=yes: creates, in one transaction, what is missing of the table, the two sets, a
 * set per required prefix length (all "flags timeout") and an input chain that drops packets
 * whose source is in them (rules are replaced, the sets' elements kept). A set of ours with flags
 * interval (an older version made those) is created afresh in the same transaction: its elements
 * are lost, and the caller puts its bans back. CreateTable=no: checks that the sets exist with the
 * right type and flags and that a rule uses each prefix set with its mask; the error then says
 * which nft commands make it right. -ENOENT, -EEXIST (CreateTable=yes: a set of another type or
 * flags), -EMEDIUMTYPE (CreateTable=no: wrong type or flags), -EPERM, ... with nft_set_error(). */
int nft_set_ensure(NftSet *s);

/* 1 if the table and all its sets exist, 0 if not, negative errno on failure. */
int nft_set_exists(NftSet *s);

/* One transaction for all elements, each into the set of its family and length; an element
 * that is already present gets the new timeout (on kernel 6.18; older kernels may keep the old
 * one), but an element without timeout always replaces the present one. -EAFNOSUPPORT if the
 * family ("ip", "ip6") has no set for an element's address family; then nothing is added
 * (filter with nft_set_has_family() first). */
int nft_set_add(NftSet *s, const NftElement *elements, size_t n);

/* One transaction; elements that are absent (or already timed out) are not an error, nor are
 * addresses of a family without a set (they cannot be present). */
int nft_set_remove(NftSet *s, const Address *addresses, size_t n);

/* One transaction that removes (as nft_set_remove(); timeouts are ignored) and then adds (as
 * nft_set_add()): all of it happens, or nothing. An element both removed and added ends up
 * present. A prefix and the single addresses inside it are elements of different sets, so
 * neither is in the other's way. */
int nft_set_apply(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes);

/* Every element of the single-address sets and of the required prefix sets with its remaining
 * timeout (whole seconds, as libnftables reports it; 1us for an element in its last second)
 * and, for a prefix, the length of the set it is in. *ret allocated (NULL if there are none). */
int nft_set_list(NftSet *s, NftElement **ret, size_t *ret_n);

/* Whether there is a set for AF_INET / AF_INET6 addresses (Family=ip has no IPv6 set, ip6 no IPv4
 * set). */
bool nft_set_has_family(const NftSet *s, int family);

/* libnftables' error text for the last failed call (or ""). */
const char *nft_set_error(const NftSet *s);
