/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>

#include "address.h"
#include "macro.h"
#include "tests.h"

static void assert_parses_to(const char *text, int family, const char *canonical) {
        char buf[ADDRESS_STRING_MAX];
        Address a;

        fprintf(stderr, "   parse \"%s\"\n", text);
        ASSERT_EQ(address_parse(text, strlen(text), &a), 0);
        ASSERT_EQ(a.family, family);
        ASSERT_STREQ(address_to_string(&a, buf), canonical);
        if (family == AF_INET)
                for (size_t i = 4; i < sizeof a.bytes; i++)
                        ASSERT_EQ(a.bytes[i], 0);
}

static void assert_rejected_len(const char *text, size_t len) {
        Address a = { .family = 77 };

        fprintf(stderr, "   reject \"%.*s\" (%zu bytes)\n", (int) len, text, len);
        ASSERT_EQ(address_parse(text, len, &a), -EINVAL);
        ASSERT_EQ(a.family, 77); /* untouched on failure */
}

static void assert_rejected(const char *text) {
        assert_rejected_len(text, strlen(text));
}

TEST(ipv4) {
        assert_parses_to("192.0.2.7", AF_INET, "192.0.2.7");
        assert_parses_to("0.0.0.0", AF_INET, "0.0.0.0");
        assert_parses_to("255.255.255.255", AF_INET, "255.255.255.255");
        assert_parses_to("24.153.205.71", AF_INET, "24.153.205.71");

        assert_rejected("01.2.3.4");
        assert_rejected("1.2.3.04");
        assert_rejected("1.2.3.00");
        assert_rejected("256.1.1.1");
        assert_rejected("1.2.3.999");
        assert_rejected("1.2.3.1000");
        assert_rejected("1.2.3");
        assert_rejected("1.2.3.4.5");
        assert_rejected("1..2.3");
        assert_rejected("1.2.3.");
        assert_rejected(".1.2.3");
        assert_rejected("0x1.2.3.4");
        assert_rejected("1.2.3.a");
        assert_rejected("16909060");
        assert_rejected("1.2.3.4/24");
        assert_rejected("1.2.3.4:25");
        assert_rejected("-1.2.3.4");
        assert_rejected("+1.2.3.4");
}

TEST(ipv6) {
        assert_parses_to("2001:db8::7", AF_INET6, "2001:db8::7");
        assert_parses_to("2001:0db8:85a3:0000:0000:8a2e:0370:7334", AF_INET6, "2001:db8:85a3::8a2e:370:7334");
        assert_parses_to("2001:DB8::A", AF_INET6, "2001:db8::a");
        assert_parses_to("::1", AF_INET6, "::1");
        assert_parses_to("::", AF_INET6, "::");
        assert_parses_to("1:2:3:4:5:6:7:8", AF_INET6, "1:2:3:4:5:6:7:8");
        assert_parses_to("64:ff9b::1.2.3.4", AF_INET6, "64:ff9b::102:304");
        assert_parses_to("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
                         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

        assert_rejected(":::");
        assert_rejected("1:2:3:4:5:6:7:8:9");
        assert_rejected("1:2:3:4:5:6:7");
        assert_rejected("2001:db8::7:");
        assert_rejected(":2001:db8::7");
        assert_rejected("2001:db8::1::2");
        assert_rejected("12345::1");
        assert_rejected("fe80::1%eth0");
        assert_rejected("fe80::1%1");
        assert_rejected("[2001:db8::7]");
        assert_rejected("g::1");
        assert_rejected("64:ff9b::01.2.3.4");
        assert_rejected("64:ff9b::1.2.3.256");
}

TEST(underscore_ipv6) {
        assert_parses_to("2001_db8__7", AF_INET6, "2001:db8::7");
        assert_parses_to("2001_DB8__a", AF_INET6, "2001:db8::a");
        assert_parses_to("__1", AF_INET6, "::1");
        assert_parses_to("fe80__1_2_3_4", AF_INET6, "fe80::1:2:3:4");

        assert_rejected("2001_db8::7");  /* mixed separators */
        assert_rejected("2001:db8__7");
        assert_rejected("_");
        assert_rejected("___");
        assert_rejected("2001_db8__7_");
        assert_rejected("2001__db8__7");
}

TEST(ipv4_mapped) {
        assert_parses_to("::ffff:1.2.3.4", AF_INET, "1.2.3.4");
        assert_parses_to("::FFFF:1.2.3.4", AF_INET, "1.2.3.4");
        assert_parses_to("__ffff_1.2.3.4", AF_INET, "1.2.3.4");
        assert_parses_to("::ffff:102:304", AF_INET, "1.2.3.4");
        assert_parses_to("0:0:0:0:0:ffff:c000:207", AF_INET, "192.0.2.7");
        /* Only ::ffff:0:0/96 is IPv4; its neighbours are not. */
        assert_parses_to("::fffe:1.2.3.4", AF_INET6, "::fffe:102:304");
        assert_parses_to("::1:ffff:1.2.3.4", AF_INET6, "::1:ffff:102:304");

        assert_rejected("::ffff:01.2.3.4");
        assert_rejected("::ffff:1.2.3");
        assert_rejected("__ffff:1.2.3.4");

        /* The mapped and the plain form are the same host. */
        Address a, b;
        ASSERT_EQ(address_parse("::ffff:192.0.2.7", 16, &a), 0);
        ASSERT_EQ(address_parse("192.0.2.7", 9, &b), 0);
        ASSERT_TRUE(address_equal(&a, &b));
        ASSERT_EQ(memcmp(&a, &b, sizeof a), 0);
}

TEST(garbage) {
        assert_rejected("");
        assert_rejected(" ");
        assert_rejected(" 1.2.3.4");
        assert_rejected("1.2.3.4 ");
        assert_rejected("1.2.3.4\n");
        assert_rejected("\t1.2.3.4");
        assert_rejected("localhost");
        assert_rejected("example.com");
        assert_rejected("mail.example.com");
        assert_rejected("cafe");         /* hex digits only: a name, not an address */
        assert_rejected("ad.be.ef.00");
        assert_rejected("1.2.3.4\xff");
        assert_rejected("\xc0\xae.2.3.4");
        assert_rejected_len("1.2.3.4\0", 8);
        assert_rejected_len("1.2\0.3.4", 8);
        assert_rejected_len("", 0);
        /* 46 bytes: too long even though inet_pton could be asked. */
        assert_rejected("0000:0000:0000:0000:0000:0000:0000:0000:0000:1");
        assert_rejected("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555");

        Address a;
        ASSERT_EQ(address_parse(NULL, 3, &a), -EINVAL);
}

TEST(not_nul_terminated) {
        char buf[ADDRESS_STRING_MAX];
        const char *text = "192.0.2.77junk";
        Address a;

        ASSERT_EQ(address_parse(text, 9, &a), 0);
        ASSERT_STREQ(address_to_string(&a, buf), "192.0.2.7");
        ASSERT_EQ(address_parse(text, 10, &a), 0);
        ASSERT_STREQ(address_to_string(&a, buf), "192.0.2.77");
        ASSERT_EQ(address_parse(text, 11, &a), -EINVAL);
}

TEST(round_trip) {
        static const char *const texts[] = {
                "192.0.2.7", "2001:db8::7", "::1", "::", "::1.2.3.4", "fe80::1:2:3:4",
                "2001:db8:85a3::8a2e:370:7334", "1:2:3:4:5:6:7:8",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                char buf[ADDRESS_STRING_MAX];
                Address a, b;

                ASSERT_EQ(address_parse(texts[i], strlen(texts[i]), &a), 0);
                address_to_string(&a, buf);
                ASSERT_EQ(address_parse(buf, strlen(buf), &b), 0);
                ASSERT_TRUE(address_equal(&a, &b));
        }
}

TEST(equal_and_loopback) {
        Address a, b;

        ASSERT_EQ(address_parse("192.0.2.7", 9, &a), 0);
        ASSERT_EQ(address_parse("192.0.2.8", 9, &b), 0);
        ASSERT_FALSE(address_equal(&a, &b));
        ASSERT_EQ(address_parse("::ffff:192.0.2.7", 16, &b), 0);
        ASSERT_TRUE(address_equal(&a, &b));
        ASSERT_EQ(address_parse("::c000:207", 10, &b), 0); /* IPv4-compatible is not IPv4 */
        ASSERT_FALSE(address_equal(&a, &b));

        static const struct {
                const char *text;
                bool loopback;
        } cases[] = {
                { "127.0.0.1", true },       { "127.255.255.254", true }, { "127.1.2.3", true },
                { "128.0.0.1", false },      { "126.255.255.255", false }, { "::1", true },
                { "__1", true },             { "::ffff:127.0.0.1", true }, { "::2", false },
                { "::", false },             { "0.0.0.0", false },         { "2001:db8::1", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                fprintf(stderr, "   loopback \"%s\"\n", cases[i].text);
                ASSERT_EQ(address_parse(cases[i].text, strlen(cases[i].text), &a), 0);
                ASSERT_EQ(address_is_loopback(&a), cases[i].loopback);
        }
}

static int sign(int x) {
        return (x > 0) - (x < 0);
}

TEST(compare) {
        /* Ascending: IPv4 before IPv6 whatever the bytes, then numerically (not as text). */
        static const char *const sorted[] = {
                "0.0.0.0", "1.2.3.4", "1.2.3.5", "1.2.4.0", "2.0.0.0", "10.0.0.2", "10.0.0.10",
                "255.255.255.255", "::", "::1", "::2:0", "2001:db8::7", "2001:db8::10", "ff02::1",
        };
        Address a, b;

        for (size_t i = 0; i < ELEMENTSOF(sorted); i++)
                for (size_t j = 0; j < ELEMENTSOF(sorted); j++) {
                        ASSERT_EQ(address_parse(sorted[i], strlen(sorted[i]), &a), 0);
                        ASSERT_EQ(address_parse(sorted[j], strlen(sorted[j]), &b), 0);
                        fprintf(stderr, "   compare %s %s\n", sorted[i], sorted[j]);
                        ASSERT_EQ(sign(address_compare(&a, &b)), (i > j) - (i < j));
                }

        /* Equal exactly when address_equal() says so: the mapped form is the IPv4 address, and
         * bytes beyond the family's length do not count. */
        ASSERT_EQ(address_parse("192.0.2.7", 9, &a), 0);
        ASSERT_EQ(address_parse("::ffff:192.0.2.7", 16, &b), 0);
        ASSERT_EQ(address_compare(&a, &b), 0);
        b.bytes[10] = 0xff;
        ASSERT_TRUE(address_equal(&a, &b));
        ASSERT_EQ(address_compare(&a, &b), 0);
}

TEST(hash) {
        static const uint8_t key_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        static const uint8_t key_b[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
        Address a, b;
        uint64_t h;

        /* Equal hosts hash equally, whatever the text looked like. */
        ASSERT_EQ(address_parse("192.0.2.7", 9, &a), 0);
        ASSERT_EQ(address_parse("::ffff:192.0.2.7", 16, &b), 0);
        ASSERT_UINT_EQ(address_hash(&a), address_hash(&b));
        ASSERT_EQ(address_parse("2001_db8__7", 11, &a), 0);
        ASSERT_EQ(address_parse("2001:0db8:0000::0007", 20, &b), 0);
        ASSERT_UINT_EQ(address_hash(&a), address_hash(&b));

        /* The family is part of the input: 1.2.3.4 and ::102:304 differ. */
        ASSERT_EQ(address_parse("1.2.3.4", 7, &a), 0);
        ASSERT_EQ(address_parse("::102:304", 9, &b), 0);
        ASSERT_NE(address_hash(&a), address_hash(&b));

        /* The key matters, and a set key gives reproducible values. */
        address_hash_set_key(key_a);
        h = address_hash(&a);
        address_hash_set_key(key_b);
        ASSERT_NE(address_hash(&a), h);
        address_hash_set_key(key_a);
        ASSERT_UINT_EQ(address_hash(&a), h);

        /* Addresses an attacker can pick (the low bits of one /64) spread over every bucket. */
        unsigned buckets[256] = {};
        for (unsigned i = 0; i < 65536; i++) {
                char text[64];
                snprintf(text, sizeof text, "2001:db8::%x", i);
                ASSERT_EQ(address_parse(text, strlen(text), &a), 0);
                buckets[address_hash(&a) & 0xff]++;
        }
        for (unsigned i = 0; i < 256; i++) {
                ASSERT_GE(buckets[i], 156); /* mean 256, far beyond 6 sigma of a fair spread */
                ASSERT_LE(buckets[i], 356);
        }
}

static void assert_prefix(const char *text, const char *canonical, unsigned prefixlen) {
        char buf[ADDRESS_STRING_MAX + 4];
        AddressPrefix p;

        fprintf(stderr, "   prefix \"%s\"\n", text);
        ASSERT_EQ(address_prefix_parse(text, &p), 0);
        ASSERT_EQ(p.prefixlen, prefixlen);
        ASSERT_STREQ(address_prefix_to_string(&p, buf), canonical);
}

static void assert_prefix_rejected(const char *text) {
        AddressPrefix p = { .prefixlen = 99 };

        fprintf(stderr, "   prefix reject \"%s\"\n", text);
        ASSERT_EQ(address_prefix_parse(text, &p), -EINVAL);
        ASSERT_EQ(p.prefixlen, 99);
}

TEST(prefix_parse) {
        assert_prefix("192.0.2.0/24", "192.0.2.0/24", 24);
        assert_prefix("192.0.2.77/24", "192.0.2.0/24", 24);
        assert_prefix("192.0.2.77/25", "192.0.2.0/25", 25);
        assert_prefix("192.0.2.255/31", "192.0.2.254/31", 31);
        assert_prefix("192.0.2.7", "192.0.2.7", 32);
        assert_prefix("192.0.2.7/32", "192.0.2.7", 32);
        assert_prefix("10.1.2.3/0", "0.0.0.0/0", 0);
        assert_prefix("10.255.2.3/9", "10.128.0.0/9", 9);
        assert_prefix("2001:db8::1/32", "2001:db8::/32", 32);
        assert_prefix("2001:db8:ffff::1/33", "2001:db8:8000::/33", 33);
        assert_prefix("2001:db8::7", "2001:db8::7", 128);
        assert_prefix("2001:db8::7/128", "2001:db8::7", 128);
        assert_prefix("2001_db8__7/64", "2001:db8::/64", 64);
        assert_prefix("::/0", "::/0", 0);
        assert_prefix("::ffff:192.0.2.7/120", "192.0.2.0/24", 24);
        assert_prefix("::ffff:192.0.2.7", "192.0.2.7", 32);

        assert_prefix_rejected("");
        assert_prefix_rejected("/24");
        assert_prefix_rejected("192.0.2.0/");
        assert_prefix_rejected("192.0.2.0/33");
        assert_prefix_rejected("192.0.2.0/-1");
        assert_prefix_rejected("192.0.2.0/+24");
        assert_prefix_rejected("192.0.2.0/024");
        assert_prefix_rejected("192.0.2.0/ 24");
        assert_prefix_rejected("192.0.2.0/24 ");
        assert_prefix_rejected("192.0.2.0 /24");
        assert_prefix_rejected("192.0.2.0/24/8");
        assert_prefix_rejected("192.0.2.0/1000");
        assert_prefix_rejected("192.0.2.0/0x18");
        assert_prefix_rejected("2001:db8::/129");
        assert_prefix_rejected("::ffff:192.0.2.0/64");
        assert_prefix_rejected("::ffff:192.0.2.0/129");
        assert_prefix_rejected("example.com/24");
        assert_prefix_rejected("192.0.2/24");
}

static bool prefix_contains(const char *prefix, const char *address) {
        AddressPrefix p;
        Address a;

        ASSERT_EQ(address_prefix_parse(prefix, &p), 0);
        ASSERT_EQ(address_parse(address, strlen(address), &a), 0);
        return address_prefix_contains(&p, &a);
}

TEST(prefix_contains) {
        ASSERT_TRUE(prefix_contains("192.0.2.0/24", "192.0.2.0"));
        ASSERT_TRUE(prefix_contains("192.0.2.0/24", "192.0.2.255"));
        ASSERT_FALSE(prefix_contains("192.0.2.0/24", "192.0.3.0"));
        ASSERT_FALSE(prefix_contains("192.0.2.0/24", "192.0.1.255"));
        ASSERT_TRUE(prefix_contains("192.0.2.128/25", "192.0.2.200"));
        ASSERT_FALSE(prefix_contains("192.0.2.128/25", "192.0.2.127"));
        ASSERT_TRUE(prefix_contains("192.0.2.7", "192.0.2.7"));
        ASSERT_FALSE(prefix_contains("192.0.2.7", "192.0.2.6"));
        ASSERT_TRUE(prefix_contains("0.0.0.0/0", "203.0.113.9"));
        ASSERT_FALSE(prefix_contains("0.0.0.0/0", "2001:db8::1"));
        ASSERT_FALSE(prefix_contains("::/0", "203.0.113.9"));
        ASSERT_TRUE(prefix_contains("::/0", "2001:db8::1"));
        ASSERT_TRUE(prefix_contains("2001:db8::/32", "2001:db8:ffff:ffff::1"));
        ASSERT_FALSE(prefix_contains("2001:db8::/32", "2001:db9::1"));
        ASSERT_TRUE(prefix_contains("2001:db8::/33", "2001:db8:7fff::1"));
        ASSERT_FALSE(prefix_contains("2001:db8::/33", "2001:db8:8000::1"));
        ASSERT_TRUE(prefix_contains("192.0.2.0/24", "::ffff:192.0.2.9"));
        ASSERT_TRUE(prefix_contains("::ffff:192.0.2.0/120", "192.0.2.9"));
        ASSERT_TRUE(prefix_contains("2001_db8__/64", "2001_db8__7"));
}

static Address parse_or_die(const char *text) {
        Address a;
        ASSERT_EQ(address_parse(text, strlen(text), &a), 0);
        return a;
}

/* The network of a/len computed bit by bit, independently of address.c. */
static Address reference_network(const Address *a, unsigned len) {
        Address n = { .family = a->family };
        unsigned bits = a->family == AF_INET ? 32 : 128;

        for (unsigned bit = 0; bit < bits && bit < len; bit++)
                if (a->bytes[bit / 8] & (0x80 >> (bit % 8)))
                        n.bytes[bit / 8] |= (uint8_t) (0x80 >> (bit % 8));
        return n;
}

/* Every length of both families: masking, containment, covering, and the text
 * (a full-length prefix prints as the bare address). */
/* address_to_string() writes what inet_ntop() writes, for every shape of zero runs (each of the
 * 256 patterns of zero and non-zero groups, with small and large values, IPv4 in the tail) and
 * for every IPv4 address of a sample; address_prefix_to_string() adds "/len" below full length. */
TEST(text_as_inet_ntop) {
        static const unsigned values[] = { 1, 0xffff, 0x10, 0xabc };
        static const unsigned tails[] = { 0, 1, 0xffff, 0x0102 };
        char got[ADDRESS_STRING_MAX], want[ADDRESS_STRING_MAX], prefix[ADDRESS_PREFIX_STRING_MAX];
        unsigned n = 0;

        for (unsigned mask = 0; mask < 256; mask++)
                for (size_t v = 0; v < ELEMENTSOF(values); v++)
                        for (size_t t = 0; t < ELEMENTSOF(tails); t++) {
                                Address a = { .family = AF_INET6 };

                                for (unsigned g = 0; g < 8; g++) {
                                        unsigned w = mask & (1U << g) ? values[(v + g) % ELEMENTSOF(values)] : 0;
                                        if (g == 5 && t > 0)
                                                w = tails[t] == 1 ? 0xffff : w;
                                        if (g >= 6 && t > 1 && (mask & (1U << g)))
                                                w = tails[t];
                                        a.bytes[2 * g] = (uint8_t) (w >> 8);
                                        a.bytes[2 * g + 1] = (uint8_t) w;
                                }
                                ASSERT_TRUE(inet_ntop(AF_INET6, a.bytes, want, sizeof want) != NULL);
                                ASSERT_STREQ(address_to_string(&a, got), want);
                                n++;
                        }
        for (unsigned i = 0; i < 70000; i++) {
                uint32_t x = i * UINT32_C(2654435761);
                Address a = { .family = AF_INET, .bytes = { x >> 24, x >> 16, x >> 8, x } };

                if (i < 256)
                        a.bytes[i % 4] = (uint8_t) i; /* 0, one, two and three digits in each place */
                ASSERT_TRUE(inet_ntop(AF_INET, a.bytes, want, sizeof want) != NULL);
                ASSERT_STREQ(address_to_string(&a, got), want);

                AddressPrefix p = { .address = a, .prefixlen = (uint8_t) (i % 33) };
                char expect[ADDRESS_PREFIX_STRING_MAX];
                if (p.prefixlen == 32)
                        snprintf(expect, sizeof expect, "%s", want);
                else
                        snprintf(expect, sizeof expect, "%s/%u", want, (unsigned) p.prefixlen);
                ASSERT_STREQ(address_prefix_to_string(&p, prefix), expect);
                n++;
        }
        {
                Address a = { .family = AF_INET6 };
                memset(a.bytes, 0xff, sizeof a.bytes);
                AddressPrefix p = { .address = a, .prefixlen = 127 };
                ASSERT_STREQ(address_prefix_to_string(&p, prefix), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127");
                ASSERT_LT(strlen(prefix), ADDRESS_PREFIX_STRING_MAX);
        }
        fprintf(stderr, "   %u addresses as inet_ntop() writes them\n", n);
}

TEST(prefix_of_every_length) {
        static const char * const samples[] = {
                "255.255.255.255", "192.0.2.77", "0.0.0.1", "128.0.0.0",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:1:2:3:4:5:6", "::1", "8000::",
        };

        ASSERT_EQ(address_family_bits(AF_INET), 32);
        ASSERT_EQ(address_family_bits(AF_INET6), 128);
        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                Address a = parse_or_die(samples[i]);
                unsigned bits = address_family_bits(a.family);

                for (unsigned len = 0; len <= bits; len++) {
                        AddressPrefix p = address_prefix_of(&a, len), reparsed;
                        Address expected = reference_network(&a, len), masked = a;
                        char text[ADDRESS_PREFIX_STRING_MAX], net[ADDRESS_STRING_MAX], want[ADDRESS_PREFIX_STRING_MAX];

                        ASSERT_EQ(p.prefixlen, len);
                        ASSERT_TRUE(address_equal(&p.address, &expected));
                        address_mask(&masked, len);
                        ASSERT_TRUE(address_equal(&masked, &expected));
                        ASSERT_TRUE(address_prefix_contains(&p, &a));
                        ASSERT_TRUE(address_prefix_covers(&p, &p));
                        ASSERT_EQ(address_prefix_is_host(&p), len == bits);

                        address_to_string(&expected, net);
                        if (len == bits)
                                snprintf(want, sizeof want, "%s", net);
                        else
                                snprintf(want, sizeof want, "%s/%u", net, len);
                        ASSERT_STREQ(address_prefix_to_string(&p, text), want);
                        ASSERT_EQ(address_prefix_parse(text, &reparsed), 0);
                        ASSERT_TRUE(address_equal(&reparsed.address, &p.address) && reparsed.prefixlen == len);

                        /* The next shorter prefix covers this one, not the other way round. */
                        if (len > 0) {
                                AddressPrefix wider = address_prefix_of(&a, len - 1);
                                ASSERT_TRUE(address_prefix_covers(&wider, &p));
                                ASSERT_FALSE(address_prefix_covers(&p, &wider));
                                ASSERT_TRUE(address_prefix_overlaps(&p, &wider));
                                ASSERT_TRUE(address_prefix_overlaps(&wider, &p));
                        }
                        /* Flipping the last network bit leaves the prefix: a neighbour, no overlap. */
                        if (len > 0) {
                                Address other = a;
                                other.bytes[(len - 1) / 8] ^= (uint8_t) (0x80 >> ((len - 1) % 8));
                                AddressPrefix q = address_prefix_of(&other, len);
                                ASSERT_FALSE(address_prefix_contains(&p, &other));
                                ASSERT_FALSE(address_prefix_overlaps(&p, &q));
                        }
                }
                /* Lengths beyond the family's are the full length. */
                ASSERT_EQ(address_prefix_of(&a, 200).prefixlen, bits);
        }

        /* Families never overlap, even at /0. */
        AddressPrefix all4 = address_prefix_of(&(Address) { .family = AF_INET }, 0);
        AddressPrefix all6 = address_prefix_of(&(Address) { .family = AF_INET6 }, 0);
        ASSERT_FALSE(address_prefix_overlaps(&all4, &all6));
        ASSERT_FALSE(address_prefix_covers(&all6, &all4));

        char text[ADDRESS_PREFIX_STRING_MAX];
        Address six = parse_or_die("2001:db8:1:2:aaaa::7"), four = parse_or_die("192.0.2.7");
        AddressPrefix p64 = address_prefix_of(&six, 64);
        ASSERT_STREQ(address_prefix_to_string(&p64, text), "2001:db8:1:2::/64");
        AddressPrefix p128 = address_prefix_of(&six, 128);
        ASSERT_STREQ(address_prefix_to_string(&p128, text), "2001:db8:1:2:aaaa::7");
        AddressPrefix p32 = address_prefix_of(&four, 32);
        ASSERT_STREQ(address_prefix_to_string(&p32, text), "192.0.2.7");
}

int main(void) {
        RUN(ipv4);
        RUN(ipv6);
        RUN(underscore_ipv6);
        RUN(ipv4_mapped);
        RUN(garbage);
        RUN(not_nul_terminated);
        RUN(round_trip);
        RUN(equal_and_loopback);
        RUN(compare);
        RUN(hash);
        RUN(prefix_parse);
        RUN(prefix_contains);
        RUN(prefix_of_every_length);
        RUN(text_as_inet_ntop);
        return 0;
}
