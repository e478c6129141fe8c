/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "address.h"
#include "config.h"
#include "local-addresses.h"

/* Which prefix a jail counts an address's failures under, and bans: IPv4Prefix= or IPv6Prefix=
 * around it, so that an attacker who owns a /64 and rotates through it is one attacker. A
 * prefix that holds an address the jail ignores (IgnoreAddress=, loopback) or one of the
 * host's own is never banned as a whole: the host's neighbours and the admin's own network are
 * not to be cut off for one bad client among them. Then the address alone counts. */

/* Sets *ret to the prefix; returns true if it fell back to the single address although the
 * jail's prefix is shorter. local may be NULL. */
bool prefix_policy_for(const JailConfig *j, const LocalAddresses *local, const Address *a, AddressPrefix *ret);

/* The prefix lengths the enabled jails ban (IPv4Prefix= below 32, IPv6Prefix= below 128), per
 * family (0: IPv4, 1: IPv6): each has an nft set of its own. */
typedef struct PrefixLengths {
        bool used[2][129];
} PrefixLengths;

void prefix_policy_lengths(const Config *c, PrefixLengths *ret);
