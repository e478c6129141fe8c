/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "prefix-policy.h"
#include "tests.h"

static Address addr(const char *text) {
        Address a;
        ASSERT_OK(address_parse(text, strlen(text), &a));
        return a;
}

static AddressPrefix prefix(const char *text) {
        AddressPrefix p;
        ASSERT_OK(address_prefix_parse(text, &p));
        return p;
}

static void assert_policy(const JailConfig *j, const char *address, const char *expected, bool fallback) {
        char text[ADDRESS_PREFIX_STRING_MAX];
        Address a = addr(address);
        AddressPrefix p;
        bool f;

        f = prefix_policy_for(j, NULL, &a, &p);
        fprintf(stderr, "   %s -> %s%s\n", address, address_prefix_to_string(&p, text), f ? " (fallback)" : "");
        ASSERT_STREQ(text, expected);
        ASSERT_EQ(f, fallback);
        ASSERT_TRUE(address_prefix_contains(&p, &a));
}

/* The prefix failures count under: the jail's length, or the address alone where that prefix
 * holds an ignored or loopback address (the host's own are tested in test-ban-policy-prefix). */
TEST(prefix_for) {
        AddressPrefix ignored[] = { prefix("2001:db8:5:5::1"), prefix("192.0.2.0/28") };
        JailConfig j = { .ipv4_prefix = 24, .ipv6_prefix = 64, .ignore_addresses = ignored, .n_ignore_addresses = 2 };

        assert_policy(&j, "2001:db8:1:2::a", "2001:db8:1:2::/64", false);
        assert_policy(&j, "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", false);
        assert_policy(&j, "2001:db8:5:5::a", "2001:db8:5:5::a", true);   /* holds an ignored address */
        assert_policy(&j, "2001:db8:5:6::a", "2001:db8:5:6::/64", false); /* the next /64 does not */
        assert_policy(&j, "::2", "::2", true);                            /* holds ::1 */
        assert_policy(&j, "192.0.2.100", "192.0.2.100", true);            /* holds 192.0.2.0/28 */
        assert_policy(&j, "198.51.100.7", "198.51.100.0/24", false);
        assert_policy(&j, "127.0.1.5", "127.0.1.5", true);                /* loopback */

        j.ipv6_prefix = 128;
        j.ipv4_prefix = 32;
        assert_policy(&j, "2001:db8:1:2::a", "2001:db8:1:2::a", false);
        assert_policy(&j, "198.51.100.7", "198.51.100.7", false);

        /* A wider ignored prefix around the jail's prefix: the address would be ignored itself,
         * but the policy alone still does not ban the prefix. */
        AddressPrefix wide[] = { prefix("2001:db8::/32") };
        JailConfig k = { .ipv4_prefix = 32, .ipv6_prefix = 48, .ignore_addresses = wide, .n_ignore_addresses = 1 };
        assert_policy(&k, "2001:db8:1::1", "2001:db8:1::1", true);
}

TEST(lengths) {
        JailConfig jails[3] = {
                { .enabled = true, .ipv4_prefix = 32, .ipv6_prefix = 128 },
                { .enabled = false, .ipv4_prefix = 16, .ipv6_prefix = 32 },
                { .enabled = true, .ipv4_prefix = 28, .ipv6_prefix = 128 },
        };
        Config c = { .jails = jails, .n_jails = 3 };
        PrefixLengths l;

        prefix_policy_lengths(&c, &l);
        ASSERT_TRUE(l.used[0][28]);
        ASSERT_FALSE(l.used[0][32]); /* single addresses need no prefix set */
        ASSERT_FALSE(l.used[0][16]); /* a disabled jail needs nothing */
        for (unsigned len = 0; len <= 128; len++)
                ASSERT_FALSE(l.used[1][len]);
        jails[0].ipv6_prefix = 64;
        jails[2].ipv6_prefix = 48;
        prefix_policy_lengths(&c, &l);
        ASSERT_TRUE(l.used[1][64]);
        ASSERT_TRUE(l.used[1][48]);
        ASSERT_FALSE(l.used[1][32]);
}

int main(void) {
        RUN(prefix_for);
        RUN(lengths);
        return 0;
}
