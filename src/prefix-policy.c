/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "prefix-policy.h"

bool prefix_policy_for(const JailConfig *j, const LocalAddresses *local, const Address *a, AddressPrefix *ret) {
        unsigned bits = address_family_bits(a->family), len = jail_config_prefix_length(j, a->family);
        AddressPrefix p;

        /* The common case costs nothing: IPv4Prefix=32, or a /128. */
        if (len == 0 || len >= bits) {
                *ret = address_prefix_of(a, bits);
                return false;
        }
        p = address_prefix_of(a, len);
        if (jail_config_ignores_some_of(j, &p) || local_addresses_overlap(local, &p)) {
                *ret = address_prefix_of(a, bits);
                return true;
        }
        *ret = p;
        return false;
}

unsigned prefix_policy_shortest(const Config *c, int family) {
        unsigned shortest = address_family_bits(family);

        for (size_t i = 0; i < c->n_jails; i++)
                if (c->jails[i].enabled)
                        shortest = MIN(shortest, jail_config_prefix_length(&c->jails[i], family));
        return shortest;
}
