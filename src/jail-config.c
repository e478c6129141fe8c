/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-internal.h"
#include "macro.h"

/* The methods of JailConfig (declared in config.h): what one jail's settings say about an
 * entry, and freeing them. */

void jail_config_done(JailConfig *j) {
        free(j->name);
        strv_free(j->journal_matches);
        strv_free(j->fail_regex);
        strv_free(j->ignore_regex);
        free(j->ignore_addresses);
        free(j->trusted_uids);
        strv_free(j->trusted_users);
        free(j->trusted_user_uids);
        strv_free(j->trusted_users_missing);
        free(j->source_file);
        *j = (JailConfig) {};
}

bool jail_config_restricts_senders(const JailConfig *j) {
        return j->n_trusted_uids > 0 || strv_length(j->trusted_users) > 0;
}

bool jail_config_trusts_uid(const JailConfig *j, uid_t uid) {
        if (!jail_config_restricts_senders(j))
                return true;
        for (size_t i = 0; i < j->n_trusted_uids; i++)
                if (uid >= j->trusted_uids[i].first && uid <= j->trusted_uids[i].last)
                        return true;
        for (size_t i = 0; i < j->n_trusted_user_uids; i++)
                if (uid == j->trusted_user_uids[i])
                        return true;
        return false;
}

bool jail_config_ignores_address(const JailConfig *j, const Address *a) {
        if (address_is_loopback(a))
                return true;
        for (size_t i = 0; i < j->n_ignore_addresses; i++)
                if (address_prefix_contains(&j->ignore_addresses[i], a))
                        return true;
        return false;
}

bool jail_config_ignores_some_of(const JailConfig *j, const AddressPrefix *p) {
        static const AddressPrefix loopback4 = { .address = { .family = AF_INET, .bytes = { 127 } }, .prefixlen = 8 },
                                   loopback6 = { .address = { .family = AF_INET6, .bytes = { [15] = 1 } }, .prefixlen = 128 };

        if (address_prefix_overlaps(p, p->address.family == AF_INET ? &loopback4 : &loopback6))
                return true;
        for (size_t i = 0; i < j->n_ignore_addresses; i++)
                if (address_prefix_overlaps(&j->ignore_addresses[i], p))
                        return true;
        return false;
}

unsigned jail_config_prefix_length(const JailConfig *j, int family) {
        return family == AF_INET ? j->ipv4_prefix : j->ipv6_prefix;
}
