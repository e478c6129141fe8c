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

void prefix_policy_lengths(const Config *c, PrefixLengths *ret) {
        *ret = (PrefixLengths) {};
        for (size_t i = 0; i < c->n_jails; i++)
                if (c->jails[i].enabled) {
                        unsigned l4 = jail_config_prefix_length(&c->jails[i], AF_INET);
                        unsigned l6 = jail_config_prefix_length(&c->jails[i], AF_INET6);
                        if (l4 < 32)
                                ret->used[0][l4] = true;
                        if (l6 < 128)
                                ret->used[1][l6] = true;
                }
}
