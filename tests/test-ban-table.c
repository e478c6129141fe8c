/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/socket.h>

#include "ban-table.h"
#include "macro.h"
#include "test-addresses.h"
#include "tests.h"

/* Odd numbers IPv4, even ones IPv6, n in the first four bytes either way. */
static Address addr(uint32_t n) {
        Address a = { .family = n % 2 ? AF_INET : AF_INET6 };
        put_be32(a.bytes, n);
        return a;
}

static uint32_t addr_number(const Address *a) {
        return (uint32_t) a->bytes[0] << 24 | (uint32_t) a->bytes[1] << 16 | (uint32_t) a->bytes[2] << 8 | a->bytes[3];
}

static Ban ban(uint32_t n, usec_t expires, unsigned failures, BanOrigin origin) {
        Ban b = {
                .address = addr(n),
                .failures = failures,
                .banned_usec = expires / 2,
                .expires_usec = expires,
                .origin = origin,
        };
        strcpy(b.jail, "vpopmail");
        return b;
}

static BanTable *table(void) {
        BanTable *t = NULL;
        ASSERT_OK(ban_table_new(&t));
        return t;
}

TEST(origin_strings) {
        ASSERT_STREQ(ban_origin_to_string(BAN_ORIGIN_JOURNAL), "journal");
        ASSERT_STREQ(ban_origin_to_string(BAN_ORIGIN_MANUAL), "manual");
        ASSERT_TRUE(ban_origin_to_string(_BAN_ORIGIN_MAX) == NULL);
        ASSERT_TRUE(ban_origin_to_string(_BAN_ORIGIN_INVALID) == NULL);
        ASSERT_EQ(ban_origin_from_string("journal"), BAN_ORIGIN_JOURNAL);
        ASSERT_EQ(ban_origin_from_string("manual"), BAN_ORIGIN_MANUAL);
        ASSERT_EQ(ban_origin_from_string("Manual"), -EINVAL);
        ASSERT_EQ(ban_origin_from_string(""), -EINVAL);
        ASSERT_EQ(ban_origin_from_string(NULL), -EINVAL);
}

/* A permanent ban is never due: it stays through any expiry, and the timer sleeps for it. */
TEST(permanent) {
        BanTable *t = table();
        Ban p = ban(1, USEC_INFINITY, 3, BAN_ORIGIN_JOURNAL), b = ban(2, 1000, 3, BAN_ORIGIN_JOURNAL);

        p.banned_usec = 500;
        ASSERT_TRUE(ban_is_permanent(&p));
        ASSERT_FALSE(ban_is_permanent(&b));
        ASSERT_EQ(ban_table_put(t, &p), 1);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), USEC_INFINITY);
        ASSERT_EQ(ban_table_put(t, &b), 1);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1000);
        ASSERT_UINT_EQ(ban_table_expire(t, UINT64_MAX - 1, NULL, NULL), 1);
        ASSERT_UINT_EQ(ban_table_size(t), 1);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), USEC_INFINITY);

        /* A shorter ban of the same address does not end it. */
        b.address = p.address;
        ASSERT_EQ(ban_table_put(t, &b), 0);
        ASSERT_TRUE(ban_is_permanent(ban_table_get(t, &p.address)));

        /* Clamped to a clock that went back: begins now, still permanent. */
        ban_clamp_to_now(&p, 100);
        ASSERT_UINT_EQ(p.banned_usec, 100);
        ASSERT_TRUE(ban_is_permanent(&p));
        ban_table_free(t);
}

TEST(usec_add_saturates) {
        ASSERT_UINT_EQ(usec_add(1, 2), 3);
        ASSERT_UINT_EQ(usec_add(USEC_INFINITY, 1), USEC_INFINITY);
        ASSERT_UINT_EQ(usec_add(5, USEC_INFINITY), USEC_INFINITY);
        ASSERT_UINT_EQ(usec_add(USEC_INFINITY - 1, 1), USEC_INFINITY);
        ASSERT_UINT_EQ(usec_add(USEC_INFINITY - 2, 1), USEC_INFINITY - 1);
}

TEST(put_get_update) {
        BanTable *t = table();
        Ban b = ban(1, 1000, 3, BAN_ORIGIN_JOURNAL);
        const Ban *g;

        ASSERT_UINT_EQ(ban_table_size(t), 0);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), USEC_INFINITY);
        ASSERT_TRUE(ban_table_get(t, &b.address) == NULL);

        ASSERT_EQ(ban_table_put(t, &b), 1);
        g = ban_table_get(t, &b.address);
        ASSERT_TRUE(g);
        ASSERT_UINT_EQ(g->expires_usec, 1000);
        ASSERT_STREQ(g->jail, "vpopmail");
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1000);

        /* A later ban of the same address replaces it, every field. */
        Ban later = ban(1, 2000, 0, BAN_ORIGIN_MANUAL);
        strcpy(later.jail, "other");
        ASSERT_EQ(ban_table_put(t, &later), 0);
        g = ban_table_get(t, &b.address);
        ASSERT_UINT_EQ(g->expires_usec, 2000);
        ASSERT_EQ(g->origin, BAN_ORIGIN_MANUAL);
        ASSERT_UINT_EQ(g->failures, 0);
        ASSERT_STREQ(g->jail, "other");
        ASSERT_UINT_EQ(ban_table_size(t), 1);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 2000);

        /* An earlier one changes nothing. */
        Ban earlier = ban(1, 1500, 7, BAN_ORIGIN_JOURNAL);
        ASSERT_EQ(ban_table_put(t, &earlier), 0);
        g = ban_table_get(t, &b.address);
        ASSERT_UINT_EQ(g->expires_usec, 2000);
        ASSERT_EQ(g->origin, BAN_ORIGIN_MANUAL);
        ASSERT_UINT_EQ(g->failures, 0);

        /* The same expiry: the newer ban's fields. */
        Ban same = ban(1, 2000, 5, BAN_ORIGIN_JOURNAL);
        ASSERT_EQ(ban_table_put(t, &same), 0);
        ASSERT_UINT_EQ(ban_table_get(t, &b.address)->failures, 5);

        /* An update moves the ban in the expiry order. */
        ASSERT_EQ(ban_table_put(t, (Ban[]) { ban(2, 3000, 3, BAN_ORIGIN_JOURNAL) }), 1);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 2000);
        ASSERT_EQ(ban_table_put(t, (Ban[]) { ban(1, 4000, 3, BAN_ORIGIN_JOURNAL) }), 0);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 3000);

        ASSERT_TRUE(ban_table_remove(t, &b.address));
        ASSERT_FALSE(ban_table_remove(t, &b.address));
        ASSERT_TRUE(ban_table_get(t, &b.address) == NULL);
        ASSERT_UINT_EQ(ban_table_size(t), 1);
        ban_table_free(t);
}

TEST(put_invalid) {
        BanTable *t = table();
        Ban b;

        b = ban(1, 10, 3, BAN_ORIGIN_JOURNAL);
        b.address.family = AF_UNSPEC;
        ASSERT_EQ(ban_table_put(t, &b), -EINVAL);
        b = ban(1, 10, 3, _BAN_ORIGIN_MAX);
        ASSERT_EQ(ban_table_put(t, &b), -EINVAL);
        b = ban(1, 10, 3, BAN_ORIGIN_JOURNAL);
        memset(b.jail, 'x', sizeof(b.jail));
        ASSERT_EQ(ban_table_put(t, &b), -EINVAL);
        ASSERT_UINT_EQ(ban_table_size(t), 0);
        ban_table_free(t);
}

typedef struct Seen {
        BanTable *table;
        uint32_t count[64];
} Seen;

static void collect(const Ban *b, void *userdata) {
        Seen *seen = userdata;
        uint32_t n = addr_number(&b->address);

        ASSERT_LT(n, 64);
        seen->count[n]++;
        /* The callback sees the ban while it is still in the table. */
        ASSERT_TRUE(ban_table_get(seen->table, &b->address) == b);
}

TEST(expire) {
        BanTable *t = table();
        Seen seen = { .table = t };

        /* Expiries 100, 200, ... 6400 in a scrambled order. */
        for (uint32_t i = 0; i < 64; i++) {
                uint32_t k = (i * 37) % 64;
                ASSERT_EQ(ban_table_put(t, (Ban[]) { ban(k, (k + 1) * 100, 3, BAN_ORIGIN_JOURNAL) }), 1);
        }
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 100);

        ASSERT_UINT_EQ(ban_table_expire(t, 99, collect, &seen), 0);
        /* expires_usec <= now expires: exactly 100 .. 1000. */
        ASSERT_UINT_EQ(ban_table_expire(t, 1000, collect, &seen), 10);
        for (uint32_t k = 0; k < 64; k++) {
                ASSERT_UINT_EQ(seen.count[k], k < 10);
                ASSERT_EQ(ban_table_get(t, (Address[]) { addr(k) }) != NULL, k >= 10);
        }
        ASSERT_UINT_EQ(ban_table_size(t), 54);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1100);

        /* Removing the earliest ones moves next_expiry on. */
        ASSERT_TRUE(ban_table_remove(t, (Address[]) { addr(10) }));
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1200);
        ASSERT_TRUE(ban_table_remove(t, (Address[]) { addr(30) }));
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1200);
        ASSERT_TRUE(ban_table_remove(t, (Address[]) { addr(11) }));
        ASSERT_UINT_EQ(ban_table_next_expiry(t), 1300);

        /* Without a callback. */
        ASSERT_UINT_EQ(ban_table_expire(t, 1300, NULL, NULL), 1);
        ASSERT_UINT_EQ(ban_table_expire(t, USEC_INFINITY, collect, &seen), 50);
        ASSERT_UINT_EQ(ban_table_size(t), 0);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), USEC_INFINITY);
        for (uint32_t k = 0; k < 64; k++)
                ASSERT_UINT_EQ(seen.count[k], k == 10 || k == 11 || k == 12 || k == 30 ? 0 : 1);
        ban_table_free(t);
}

static uint64_t rnd(uint64_t *s) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        return *s >> 22;
}

static usec_t min_by_iteration(BanTable *t) {
        usec_t m = USEC_INFINITY;
        size_t iter = 0;
        const Ban *b;

        while (ban_table_next(t, &iter, &b))
                m = MIN(m, b->expires_usec);
        return m;
}

static void check_order(const Ban *b, void *userdata) {
        usec_t *last = userdata;

        ASSERT_LE(*last, b->expires_usec);
        *last = b->expires_usec;
}

TEST(many) {
        enum { N = 100000 };
        static uint8_t seen[N];
        BanTable *t = table();
        uint64_t s = 42;
        size_t iter = 0, n = 0;
        const Ban *b;

        for (uint32_t i = 0; i < N; i++)
                ASSERT_EQ(ban_table_put(t, (Ban[]) { ban(i, 1000 + rnd(&s) % 1000000, 3, BAN_ORIGIN_JOURNAL) }), 1);
        ASSERT_UINT_EQ(ban_table_size(t), N);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), min_by_iteration(t));

        /* Updates in both directions, and removals. */
        for (uint32_t i = 0; i < N; i += 7)
                ASSERT_EQ(ban_table_put(t, (Ban[]) { ban(i, rnd(&s) % 2000000, 4, BAN_ORIGIN_MANUAL) }), 0);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), min_by_iteration(t));
        for (uint32_t i = 0; i < N; i += 5)
                ASSERT_TRUE(ban_table_remove(t, (Address[]) { addr(i) }));
        ASSERT_UINT_EQ(ban_table_size(t), N - N / 5);
        ASSERT_UINT_EQ(ban_table_next_expiry(t), min_by_iteration(t));

        while (ban_table_next(t, &iter, &b)) {
                uint32_t k = addr_number(&b->address);
                ASSERT_LT(k, N);
                ASSERT_NE(k % 5, 0);
                ASSERT_EQ(seen[k], 0);
                seen[k] = 1;
                ASSERT_TRUE(ban_table_get(t, &b->address) == b);
                n++;
        }
        ASSERT_UINT_EQ(n, ban_table_size(t));

        /* Expire in steps: each step removes exactly what is due, in expiry order. */
        usec_t last = 0;
        for (usec_t now = 0; now <= 2000000; now += 100000) {
                size_t before = ban_table_size(t), due = 0;
                iter = 0;
                while (ban_table_next(t, &iter, &b))
                        due += b->expires_usec <= now;
                ASSERT_UINT_EQ(ban_table_expire(t, now, check_order, &last), due);
                ASSERT_UINT_EQ(ban_table_size(t), before - due);
                ASSERT_TRUE(ban_table_next_expiry(t) > now);
                ASSERT_UINT_EQ(ban_table_next_expiry(t), min_by_iteration(t));
        }
        ASSERT_UINT_EQ(ban_table_size(t), 0);
        ban_table_free(t);
}

TEST(clamp_to_now) {
        Ban b = { .banned_usec = 5000 * USEC_PER_SEC, .expires_usec = 8600 * USEC_PER_SEC };

        /* Decided while the clock was ahead: moved to begin now, same duration. */
        ban_clamp_to_now(&b, 1000 * USEC_PER_SEC);
        ASSERT_UINT_EQ(b.banned_usec, 1000 * USEC_PER_SEC);
        ASSERT_UINT_EQ(b.expires_usec, 4600 * USEC_PER_SEC);
        /* An ordinary ban is left alone. */
        ban_clamp_to_now(&b, 2000 * USEC_PER_SEC);
        ASSERT_UINT_EQ(b.banned_usec, 1000 * USEC_PER_SEC);
        ASSERT_UINT_EQ(b.expires_usec, 4600 * USEC_PER_SEC);
}

static Ban prefix_ban(const char *text, unsigned len, usec_t expires) {
        Ban b = { .prefixlen = (uint8_t) len, .banned_usec = 1, .expires_usec = expires, .origin = BAN_ORIGIN_JOURNAL };
        ASSERT_OK(address_parse(text, strlen(text), &b.address));
        strcpy(b.jail, "vpopmail");
        return b;
}

static Address text_addr(const char *text) {
        Address a;
        ASSERT_OK(address_parse(text, strlen(text), &a));
        return a;
}

/* Prefix bans: stored with their host bits clear and their length; an address inside one
 * finds it, whatever other lengths the table holds; bans inside a prefix are found. */
TEST(prefixes) {
        BanTable *t = table();
        _cleanup_free_ Ban *inside = NULL;
        const Ban *b;
        Address a;

        Ban p64 = prefix_ban("2001:db8:1:2::77", 64, 100); /* host bits are cleared on put */
        ASSERT_EQ(ban_table_put(t, &p64), 1);
        Ban p48 = prefix_ban("2001:db8:9::", 48, 100);
        ASSERT_EQ(ban_table_put(t, &p48), 1);
        Ban single = prefix_ban("2001:db8:5::5", 0, 100); /* 0: the address alone */
        ASSERT_EQ(ban_table_put(t, &single), 1);
        Ban v4 = prefix_ban("198.51.100.0", 24, 100);
        ASSERT_EQ(ban_table_put(t, &v4), 1);

        a = text_addr("2001:db8:1:2::");
        ASSERT_TRUE((b = ban_table_get(t, &a)));
        ASSERT_EQ(b->prefixlen, 64);
        ASSERT_TRUE(ban_table_get(t, &p64.address) == NULL); /* the key is the first address */

        a = text_addr("2001:db8:1:2:ffff:ffff:ffff:ffff");
        ASSERT_TRUE((b = ban_table_find_covering(t, &a)) && b->prefixlen == 64);
        a = text_addr("2001:db8:1:3::");
        ASSERT_TRUE(ban_table_find_covering(t, &a) == NULL);
        a = text_addr("2001:db8:9:ffff::1");
        ASSERT_TRUE((b = ban_table_find_covering(t, &a)) && b->prefixlen == 48);
        a = text_addr("2001:db8:5::5");
        ASSERT_TRUE((b = ban_table_find_covering(t, &a)) && b->prefixlen == 128);
        a = text_addr("2001:db8:5::6");
        ASSERT_TRUE(ban_table_find_covering(t, &a) == NULL);
        a = text_addr("198.51.100.200");
        ASSERT_TRUE((b = ban_table_find_covering(t, &a)) && b->prefixlen == 24);
        a = text_addr("198.51.101.1");
        ASSERT_TRUE(ban_table_find_covering(t, &a) == NULL);

        /* Inside 2001:db8::/32: the three IPv6 bans; inside 2001:db8:1:2::/64 itself: none. */
        AddressPrefix wide = { text_addr("2001:db8::"), 32 };
        ASSERT_EQ(ban_table_find_inside(t, &wide, &inside), 3);
        free(inside);
        inside = NULL;
        AddressPrefix same = { text_addr("2001:db8:1:2::"), 64 };
        ASSERT_EQ(ban_table_find_inside(t, &same, &inside), 0);
        AddressPrefix five = { text_addr("2001:db8:5::"), 64 };
        ASSERT_EQ(ban_table_find_inside(t, &five, &inside), 1);
        ASSERT_EQ(inside[0].prefixlen, 128);

        /* Gone with its removal: the lengths in use are counted right. */
        a = text_addr("2001:db8:9::");
        ASSERT_TRUE(ban_table_remove(t, &a));
        a = text_addr("2001:db8:9:ffff::1");
        ASSERT_TRUE(ban_table_find_covering(t, &a) == NULL);
        ASSERT_EQ(ban_table_expire(t, 100, NULL, NULL), 3);
        a = text_addr("2001:db8:1:2::1");
        ASSERT_TRUE(ban_table_find_covering(t, &a) == NULL);

        Ban bad = prefix_ban("192.0.2.0", 33, 100);
        ASSERT_EQ(ban_table_put(t, &bad), -EINVAL);
        ban_table_free(t);
}

/* A small random generator, so that a failing run repeats. */
static uint64_t rand_state;

static uint32_t next_rnd(uint32_t n) {
        rand_state ^= rand_state << 13;
        rand_state ^= rand_state >> 7;
        rand_state ^= rand_state << 17;
        return (uint32_t) (rand_state >> 32) % n;
}

static const uint8_t lens4[] = { 0, 8, 12, 16, 20, 24, 28, 31, 32 };
static const uint8_t lens6[] = { 0, 16, 32, 40, 48, 56, 60, 64, 96, 120, 127, 128 };

/* Few distinct values per byte, so that prefixes of every length hold several bans. */
static Address random_address(int family) {
        static const uint8_t values[] = { 0x00, 0x01, 0x80, 0xff };
        Address a = { .family = family };
        size_t n = family == AF_INET ? 4 : 16;

        for (size_t i = 0; i < n; i++)
                a.bytes[i] = i < 2 && family == AF_INET6 ? 0x20 : values[next_rnd(4)];
        return a;
}

static Ban random_ban(usec_t now) {
        int family = next_rnd(2) ? AF_INET : AF_INET6;
        const uint8_t *lens = family == AF_INET ? lens4 : lens6;
        size_t n_lens = family == AF_INET ? ELEMENTSOF(lens4) : ELEMENTSOF(lens6);
        Ban b = {
                .address = random_address(family),
                .prefixlen = lens[next_rnd((uint32_t) n_lens)],
                .failures = next_rnd(10),
                .banned_usec = now,
                .expires_usec = now + 1 + next_rnd(400),
                .origin = BAN_ORIGIN_JOURNAL,
        };
        snprintf(b.jail, sizeof b.jail, "jail%u", next_rnd(5));
        return b;
}

/* What ban_table_find_inside() must return: every ban inside p but not p, in table order,
 * found by looking at every ban. */
static size_t brute_inside(BanTable *t, const AddressPrefix *p, Ban *ret) {
        const Ban *b;
        size_t n = 0;

        for (size_t i = 0; ban_table_next(t, &i, &b); ) {
                AddressPrefix q = ban_prefix(b);
                if (q.prefixlen > p->prefixlen && address_prefix_covers(p, &q))
                        ret[n++] = *b;
        }
        return n;
}

static void check_inside(BanTable *t, const AddressPrefix *p, Ban *expected) {
        _cleanup_free_ Ban *inside = NULL;
        size_t n = brute_inside(t, p, expected);

        ASSERT_EQ(ban_table_find_inside(t, p, &inside), (int) n);
        ASSERT_TRUE((n == 0) == (inside == NULL));
        for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(address_equal(&inside[i].address, &expected[i].address));
                ASSERT_EQ(inside[i].prefixlen, expected[i].prefixlen);
                ASSERT_UINT_EQ(inside[i].expires_usec, expected[i].expires_usec);
                ASSERT_EQ(inside[i].failures, expected[i].failures);
                ASSERT_STREQ(inside[i].jail, expected[i].jail);
        }
}

/* find_inside against a look at every ban, through puts (new and updated, lengths changing),
 * removals and expiries that move entries around, with queries of every length, the shortest
 * allowed one shrinking as each round goes on. */
TEST(find_inside_random) {
        size_t checked = 0, found = 0;

        rand_state = 0x9e3779b97f4a7c15ULL;
        for (unsigned round = 0; round < 12; round++) {
                BanTable *t = table();
                Ban *expected = calloc(4096, sizeof(Ban));
                usec_t now = 1000;

                ASSERT_TRUE(expected);
                for (unsigned step = 0; step < 3000; step++) {
                        uint32_t op = next_rnd(100);

                        if (op < 50) {
                                Ban b = random_ban(now);
                                ASSERT_OK(ban_table_put(t, &b));
                        } else if (op < 62 && ban_table_size(t) > 0) {
                                size_t i = next_rnd((uint32_t) ban_table_size(t));
                                const Ban *b;
                                ASSERT_TRUE(ban_table_next(t, &i, &b));
                                Address a = b->address;
                                ASSERT_TRUE(ban_table_remove(t, &a));
                        } else if (op < 66) {
                                now += next_rnd(40);
                                (void) ban_table_expire(t, now, NULL, NULL);
                        } else {
                                int family = next_rnd(2) ? AF_INET : AF_INET6;
                                const uint8_t *lens = family == AF_INET ? lens4 : lens6;
                                size_t n_lens = family == AF_INET ? ELEMENTSOF(lens4) : ELEMENTSOF(lens6);
                                /* Early in a round only long queries, later shorter ones too. */
                                size_t lowest = (n_lens - 1) - (n_lens - 1) * step / 3000;
                                uint8_t len = lens[lowest + next_rnd((uint32_t) (n_lens - lowest))];
                                Address a = random_address(family);
                                AddressPrefix p = address_prefix_of(&a, len);

                                if (len == 0 && next_rnd(2) == 0)
                                        p.prefixlen = 1; /* a length no ban has */
                                check_inside(t, &p, expected);
                                checked++;
                                found += brute_inside(t, &p, expected);
                        }
                        ASSERT_LE(ban_table_size(t), 4096U);
                }
                free(expected);
                ban_table_free(t);
        }
        /* The queries did find bans, many of them. */
        ASSERT_GE(checked, 10000U);
        ASSERT_GE(found, 3000U);
}

int main(void) {
        RUN(clamp_to_now);
        RUN(origin_strings);
        RUN(permanent);
        RUN(usec_add_saturates);
        RUN(put_get_update);
        RUN(put_invalid);
        RUN(expire);
        RUN(many);
        RUN(prefixes);
        RUN(find_inside_random);
        return 0;
}
