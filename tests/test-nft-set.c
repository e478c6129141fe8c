/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <nftables/libnftables.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "nft-set.h"
#include "tests.h"

/* Runs in its own network namespace (see main()): every ruleset here is private to the test. The
 * test inspects the kernel with its own libnftables context, independent of the code tested. */

static struct nft_ctx *checker;

static const char *nft_with(unsigned flags, const char *cmd) {
        int r;

        nft_ctx_output_set_flags(checker, NFT_CTX_OUTPUT_NUMERIC_ALL | flags);
        r = nft_run_cmd_from_buffer(checker, cmd);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", cmd, nft_ctx_get_error_buffer(checker));
        ASSERT_EQ(r, 0);
        (void) nft_ctx_get_error_buffer(checker);
        return nft_ctx_get_output_buffer(checker); /* valid until the next call */
}

/* Listings without set elements, for golden comparisons. */
static const char *nft(const char *cmd) {
        return nft_with(NFT_CTX_OUTPUT_TERSE, cmd);
}

static NftSet *new_set(const char *family, const char *table, bool create_table) {
        FirewallConfig c = {
                .family = (char *) family,
                .table = (char *) table,
                .set4 = (char *) "banned4",
                .set6 = (char *) "banned6",
                .create_table = create_table,
        };
        NftSet *s = NULL;

        ASSERT_EQ(nft_set_new(&c, &s), 0);
        ASSERT_TRUE(s);
        return s;
}

static Address addr(const char *text) {
        Address a;

        ASSERT_EQ(address_parse(text, strlen(text), &a), 0);
        return a;
}

static NftElement elem(const char *text, usec_t timeout) {
        return (NftElement) { .address = addr(text), .timeout = timeout };
}

static const NftElement *find(const NftElement *l, size_t n, const char *text) {
        Address a = addr(text);

        for (size_t i = 0; i < n; i++)
                if (address_equal(&l[i].address, &a))
                        return &l[i];
        return NULL;
}

static size_t count_lines_with(const char *text, const char *needle) {
        size_t k = 0;

        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                k++;
        return k;
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static usec_t now_usec(void) {
        return (usec_t) (now_sec() * USEC_PER_SEC);
}

/* X was added with TIMEOUT and listed at most ELAPSED later, however slow the machine: what is
 * left of it is at most TIMEOUT, and at least TIMEOUT - ELAPSED (in the whole seconds that
 * libnftables reports). */
static void assert_remaining(const NftElement *x, usec_t timeout, usec_t elapsed) {
        ASSERT_TRUE(x);
        ASSERT_LE(x->timeout, timeout);
        ASSERT_GE(x->timeout + elapsed + USEC_PER_SEC, timeout);
}

static const char golden_inet[] =
        "table inet vpopguard {\n"
        "\tset banned4 {\n"
        "\t\ttype ipv4_addr\n"
        "\t\tflags timeout\n"
        "\t}\n"
        "\n"
        "\tset banned6 {\n"
        "\t\ttype ipv6_addr\n"
        "\t\tflags timeout\n"
        "\t}\n"
        "\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority -10; policy accept;\n"
        "\t\tip saddr @banned4 drop\n"
        "\t\tip6 saddr @banned6 drop\n"
        "\t}\n"
        "}\n";

TEST(new_refuses_bad_names) {
        static const struct { const char *family, *table, *set4, *set6; } bad[] = {
                { "bridge", "t", "a", "b" },
                { "inet", "", "a", "b" },
                { "inet", "1t", "a", "b" },
                { "inet", "t x", "a", "b" },
                { "inet", "t;flush ruleset", "a", "b" },
                { "inet", "t", "a}", "b" },
                { "inet", "t", "a", "@b" },
                { "inet", "t", "same", "same" },
        };
        char longname[300];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                FirewallConfig c = { (char *) bad[i].family, (char *) bad[i].table,
                                     (char *) bad[i].set4, (char *) bad[i].set6, true };
                NftSet *s = NULL;

                ASSERT_EQ(nft_set_new(&c, &s), -EINVAL);
                ASSERT_TRUE(!s);
        }

        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        FirewallConfig c = { (char *) "inet", longname, (char *) "a", (char *) "b", true };
        NftSet *s = NULL;
        ASSERT_EQ(nft_set_new(&c, &s), -EINVAL);

        /* Family "ip" has a single set, so the two names may be equal. */
        FirewallConfig ok = { (char *) "ip", (char *) "_T9", (char *) "same", (char *) "same", true };
        ASSERT_EQ(nft_set_new(&ok, &s), 0);
        nft_set_free(s);
}

TEST(ensure_creates_and_is_idempotent) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n = 99;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_exists(s), 0);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_STREQ(nft_set_error(s), "");
        ASSERT_EQ(nft_set_exists(s), 1);
        ASSERT_STREQ(nft("list ruleset"), golden_inet);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 0);

        /* Again, with an element present: one pair of rules, the element kept. */
        NftElement e = elem("198.51.100.1", 100 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_STREQ(nft("list ruleset"), golden_inet);
        ASSERT_EQ(count_lines_with(nft("list chain inet vpopguard input"), " drop\n"), 2);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(find(l, n, "198.51.100.1"));
}

TEST(add_and_list) {
        _cleanup_(nft_set_freep) NftSet *s = new_set("inet", "vpopguard", true);
        _cleanup_free_ NftElement *l = NULL;
        const NftElement *x;
        size_t n;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(nft_set_add(s, NULL, 0), 0);

        NftElement e[] = {
                elem("192.0.2.7", 100 * USEC_PER_SEC),
                elem("2001:db8::7", 200 * USEC_PER_SEC),
                elem("192.0.2.8", 100 * USEC_PER_SEC + 1), /* rounds up to 101s */
        };
        usec_t start = now_usec();
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);
        ASSERT_STREQ(nft_set_error(s), "");
        nft("add element inet vpopguard banned6 { 2001:db8::9 }"); /* permanent */

        const char *text = nft_with(0, "list set inet vpopguard banned4");
        ASSERT_TRUE(strstr(text, "192.0.2.8 timeout 101s"));

        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        usec_t elapsed = now_usec() - start;
        ASSERT_EQ(n, 4);
        assert_remaining(find(l, n, "192.0.2.7"), 100 * USEC_PER_SEC, elapsed);
        assert_remaining(find(l, n, "2001:db8::7"), 200 * USEC_PER_SEC, elapsed);
        assert_remaining(find(l, n, "192.0.2.8"), 101 * USEC_PER_SEC, elapsed);
        ASSERT_TRUE(x = find(l, n, "2001:db8::9"));
        ASSERT_EQ(x->timeout, 0);
        ASSERT_FALSE(find(l, n, "192.0.2.10"));
}

/* A timeout of 0 (a ban that is over as it is made) is 1s, never "no timeout": the element is
 * only seen while its second lasts, so the test adds it again until one listing came that soon. */
TEST(zero_timeout_is_one_second) {
        _cleanup_(nft_set_freep) NftSet *s = new_set("inet", "vpopguard", true);
        NftElement e = elem("192.0.2.9", 0);
        unsigned tries = 0;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), 0);
        for (;;) {
                usec_t start = now_usec();
                ASSERT_EQ(nft_set_add(s, &e, 1), 0);
                const char *text = nft_with(0, "list set inet vpopguard banned4");
                if (now_usec() - start < USEC_PER_SEC) {
                        ASSERT_TRUE(strstr(text, "192.0.2.9 timeout 1s"));
                        break;
                }
                ASSERT_LT(++tries, 100u); /* never listed within a second of adding */
        }
}

TEST(readd_refreshes_timeout) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL, *l2 = NULL;
        size_t n;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), 0);

        NftElement e = elem("203.0.113.5", 1000 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
        e.timeout = 50 * USEC_PER_SEC; /* shorter: kernel 6.18 takes it too */
        usec_t start = now_usec();
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 1);
        assert_remaining(find(l, n, "203.0.113.5"), 50 * USEC_PER_SEC, now_usec() - start);

        e.timeout = 3000 * USEC_PER_SEC;
        start = now_usec();
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
        ASSERT_EQ(nft_set_list(s, &l2, &n), 0);
        ASSERT_EQ(n, 1);
        assert_remaining(find(l2, n, "203.0.113.5"), 3000 * USEC_PER_SEC, now_usec() - start);
}

TEST(many_in_one_call) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *e = NULL, *l = NULL, *l2 = NULL;
        _cleanup_free_ Address *a = NULL;
        const size_t N = 100000;
        size_t n;
        double t;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), 0);

        ASSERT_TRUE(e = calloc(N, sizeof(NftElement)));
        ASSERT_TRUE(a = calloc(N, sizeof(Address)));
        for (size_t i = 0; i < N; i++) {
                e[i].address.family = AF_INET;
                e[i].address.bytes[0] = 10;
                e[i].address.bytes[1] = i >> 16;
                e[i].address.bytes[2] = i >> 8;
                e[i].address.bytes[3] = i;
                if (i % 10 == 0) { /* every tenth an IPv6 address */
                        e[i].address.family = AF_INET6;
                        e[i].address.bytes[0] = 0x20;
                        e[i].address.bytes[1] = 0x01;
                        e[i].address.bytes[2] = 0x0d;
                        e[i].address.bytes[3] = 0xb8;
                        e[i].address.bytes[13] = i >> 16;
                        e[i].address.bytes[14] = i >> 8;
                        e[i].address.bytes[15] = i;
                }
                e[i].timeout = 600 * USEC_PER_SEC;
                a[i] = e[i].address;
        }

        t = now_sec();
        ASSERT_EQ(nft_set_add(s, e, N), 0);
        fprintf(stderr, "   nft_set_add() of %zu elements: %.3f s\n", N, now_sec() - t);

        t = now_sec();
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        fprintf(stderr, "   nft_set_list() of %zu elements: %.3f s\n", n, now_sec() - t);
        ASSERT_EQ(n, N);
        ASSERT_TRUE(find(l, n, "10.1.134.159"));   /* i = 99999 */
        ASSERT_TRUE(find(l, n, "2001:db8::1:8696")); /* i = 99990 */

        t = now_sec();
        ASSERT_EQ(nft_set_remove(s, a, N), 0);
        fprintf(stderr, "   nft_set_remove() of %zu elements: %.3f s\n", N, now_sec() - t);
        ASSERT_EQ(nft_set_list(s, &l2, &n), 0);
        ASSERT_EQ(n, 0);
}

TEST(remove_present_and_absent) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), 0);
        NftElement e[] = {
                elem("192.0.2.1", 100 * USEC_PER_SEC),
                elem("192.0.2.2", 100 * USEC_PER_SEC),
                elem("2001:db8::1", 100 * USEC_PER_SEC),
        };
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);
        nft("add element inet vpopguard banned6 { 2001:db8::2 }"); /* permanent */

        Address r[] = {
                addr("192.0.2.1"), addr("192.0.2.99"), addr("2001:db8::1"), addr("2001:db8::99"),
                addr("192.0.2.1"), /* twice */ addr("2001:db8::2"),
        };
        ASSERT_EQ(nft_set_remove(s, r, ELEMENTSOF(r)), 0);
        ASSERT_STREQ(nft_set_error(s), "");
        ASSERT_EQ(nft_set_remove(s, r, ELEMENTSOF(r)), 0); /* all absent now */
        ASSERT_EQ(nft_set_remove(s, NULL, 0), 0);

        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(find(l, n, "192.0.2.2"));
}

TEST(create_table_no) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, "existing", false);

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s), -ENOENT);
        ASSERT_TRUE(strstr(nft_set_error(s), "existing"));
        ASSERT_EQ(nft_set_exists(s), 0);
        ASSERT_STREQ(nft("list ruleset"), ""); /* CreateTable=no never creates */

        nft("add table inet existing\n"
            "add set inet existing banned4 { type ipv4_addr; flags timeout; }\n");
        ASSERT_EQ(nft_set_ensure(s), -ENOENT);
        ASSERT_TRUE(strstr(nft_set_error(s), "banned6"));
        ASSERT_EQ(nft_set_exists(s), 0);

        /* A set of the same name in another table does not count. */
        nft("add table inet other\n"
            "add set inet other banned6 { type ipv6_addr; flags timeout; }\n");
        ASSERT_EQ(nft_set_ensure(s), -ENOENT);

        nft("add set inet existing banned6 { type ipv6_addr; flags timeout; }\n");
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_STREQ(nft_set_error(s), "");
        ASSERT_EQ(nft_set_exists(s), 1);
        ASSERT_EQ(count_lines_with(nft("list table inet existing"), "chain"), 0);

        NftElement e = elem("192.0.2.1", 10 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
}

TEST(wrong_type) {
        _cleanup_(nft_set_freep) NftSet *no = new_set(NULL, "wt", false), *yes = new_set(NULL, "wt", true),
                *noflag = new_set(NULL, "nf", false), *noflag_yes = new_set(NULL, "nf", true);
        int r;

        nft("flush ruleset");
        nft("add table inet wt\n"
            "add set inet wt banned4 { type ipv6_addr; flags timeout; }\n"
            "add set inet wt banned6 { type ipv6_addr; flags timeout; }\n"
            "add table inet nf\n"
            "add set inet nf banned4 { type ipv4_addr; }\n"
            "add set inet nf banned6 { type ipv6_addr; flags timeout; }\n");

        ASSERT_EQ(nft_set_ensure(no), -EMEDIUMTYPE);
        ASSERT_TRUE(strstr(nft_set_error(no), "banned4"));
        ASSERT_TRUE(strstr(nft_set_error(no), "ipv6_addr"));

        ASSERT_EQ(nft_set_ensure(noflag), -EMEDIUMTYPE);
        ASSERT_TRUE(strstr(nft_set_error(noflag), "without flag timeout"));

        /* libnftables stops at the rule that uses the set ("datatype mismatch"); the error
         * still names the set. */
        r = nft_set_ensure(yes);
        fprintf(stderr, "   error: %s\n", nft_set_error(yes));
        ASSERT_EQ(r, -EEXIST);
        ASSERT_TRUE(strstr(nft_set_error(yes), "banned4 has type ipv6_addr"));
        ASSERT_FALSE(strchr(nft_set_error(yes), '\n'));
        ASSERT_FALSE(strchr(nft_set_error(yes), '^'));

        /* Here the kernel refuses the "add set" with EEXIST. */
        r = nft_set_ensure(noflag_yes);
        fprintf(stderr, "   error: %s\n", nft_set_error(noflag_yes));
        ASSERT_EQ(r, -EEXIST);
        ASSERT_TRUE(strstr(nft_set_error(noflag_yes), "File exists"));
        ASSERT_TRUE(strstr(nft_set_error(noflag_yes), "without flag timeout"));
        ASSERT_EQ(count_lines_with(nft("list table inet nf"), "chain"), 0);

        /* The transaction was aborted as a whole: no chain. */
        ASSERT_EQ(count_lines_with(nft("list table inet wt"), "chain"), 0);
}

TEST(family_ip_and_ip6) {
        _cleanup_(nft_set_freep) NftSet *s4 = new_set("ip", "vpg", true), *s6 = new_set("ip6", "vpg", true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        ASSERT_EQ(nft_set_ensure(s4), 0);
        ASSERT_EQ(nft_set_ensure(s6), 0);
        ASSERT_EQ(nft_set_exists(s4), 1);
        ASSERT_TRUE(nft_set_has_family(s4, AF_INET));
        ASSERT_FALSE(nft_set_has_family(s4, AF_INET6));
        ASSERT_FALSE(nft_set_has_family(s6, AF_INET));
        ASSERT_TRUE(nft_set_has_family(s6, AF_INET6));
        ASSERT_STREQ(nft("list table ip vpg"),
                     "table ip vpg {\n"
                     "\tset banned4 {\n"
                     "\t\ttype ipv4_addr\n"
                     "\t\tflags timeout\n"
                     "\t}\n"
                     "\n"
                     "\tchain input {\n"
                     "\t\ttype filter hook input priority -10; policy accept;\n"
                     "\t\tip saddr @banned4 drop\n"
                     "\t}\n"
                     "}\n");
        ASSERT_EQ(count_lines_with(nft("list table ip6 vpg"), "ip6 saddr @banned6 drop"), 1);

        NftElement mixed[] = { elem("192.0.2.1", 10 * USEC_PER_SEC), elem("2001:db8::1", 10 * USEC_PER_SEC) };
        ASSERT_EQ(nft_set_add(s4, mixed, 2), -EAFNOSUPPORT);
        ASSERT_TRUE(strstr(nft_set_error(s4), "2001:db8::1"));
        ASSERT_EQ(nft_set_add(s6, mixed, 2), -EAFNOSUPPORT);
        ASSERT_EQ(nft_set_list(s4, &l, &n), 0);
        ASSERT_EQ(n, 0); /* nothing half-done */
        free(l);
        l = NULL;

        ASSERT_EQ(nft_set_add(s4, &mixed[0], 1), 0);
        ASSERT_EQ(nft_set_add(s6, &mixed[1], 1), 0);
        ASSERT_EQ(nft_set_list(s4, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(find(l, n, "192.0.2.1"));

        /* An IPv6 address cannot be in an "ip" table: nothing to remove. */
        Address r = addr("2001:db8::1");
        ASSERT_EQ(nft_set_remove(s4, &r, 1), 0);
        ASSERT_TRUE(strstr(nft_with(0, "list set ip6 vpg banned6"), "2001:db8::1"));
}

TEST(flush_and_recreate) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        ASSERT_EQ(nft_set_ensure(s), 0);
        NftElement e = elem("192.0.2.1", 100 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);

        nft("flush ruleset");
        ASSERT_EQ(nft_set_exists(s), 0);
        ASSERT_STREQ(nft_set_error(s), "");
        ASSERT_EQ(nft_set_list(s, &l, &n), -ENOENT);
        ASSERT_TRUE(strstr(nft_set_error(s), "No such file or directory"));
        ASSERT_EQ(nft_set_add(s, &e, 1), -ENOENT);

        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(nft_set_exists(s), 1);
        ASSERT_STREQ(nft("list ruleset"), golden_inet);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 0);
}

/* The test flushes the ruleset, so it always makes a network namespace of its own, even if the
 * caller already made one: only a namespace it created itself is certainly not the host's. */
static void enter_private_netns(void) {
        struct stat before, after;

        ASSERT_EQ(stat("/proc/self/ns/net", &before), 0);
        if (unshare(CLONE_NEWNET) < 0) {
                printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
                exit(77);
        }
        ASSERT_EQ(stat("/proc/self/ns/net", &after), 0);
        ASSERT_TRUE(before.st_ino != after.st_ino || before.st_dev != after.st_dev);
}

static NftElement prefix_elem(const char *text, unsigned len, usec_t timeout) {
        return (NftElement) { .address = addr(text), .prefixlen = (uint8_t) len, .timeout = timeout };
}

static const NftElement *find_prefix(const NftElement *l, size_t n, const char *text, unsigned len) {
        Address a = addr(text);

        for (size_t i = 0; i < n; i++)
                if (address_equal(&l[i].address, &a) && l[i].prefixlen == len)
                        return &l[i];
        return NULL;
}

/* IPv6Prefix=64: the IPv6 set gets flags interval (the IPv4 set, not needing it, keeps its
 * flags); prefixes go in and come back out with their length. */
TEST(prefixes) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft_set_require_interval(s, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(count_lines_with(nft("list set inet vpopguard banned6"), "flags interval,timeout"), 1);
        ASSERT_EQ(count_lines_with(nft("list set inet vpopguard banned4"), "flags timeout"), 1);
        ASSERT_EQ(count_lines_with(nft("list set inet vpopguard banned4"), "interval"), 0);

        NftElement e[] = {
                prefix_elem("2001:db8:1:2::", 64, 100 * USEC_PER_SEC),
                elem("2001:db8:9::7", 100 * USEC_PER_SEC),
                prefix_elem("2001:db8:3::", 48, USEC_INFINITY),
                elem("192.0.2.7", 100 * USEC_PER_SEC),
        };
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6"), "2001:db8:1:2::/64 timeout"), 1);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6"), "2001:db8:3::/48,"), 1);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:1:2::", 64));
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:3::", 48));
        ASSERT_EQ(find_prefix(l, n, "2001:db8:3::", 48)->timeout, 0); /* permanent */
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:9::7", 0));
        ASSERT_TRUE(find_prefix(l, n, "192.0.2.7", 0));

        /* Re-adding refreshes, also the permanent prefix (removed and added afresh). */
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);

        /* A single address gives way to its prefix in one call (a plain delete first, or the
         * interval set would refuse the prefix). */
        NftElement wide = prefix_elem("2001:db8:9::", 64, 100 * USEC_PER_SEC), single = elem("2001:db8:9::7", 0);
        ASSERT_EQ(nft_set_apply(s, &wide, 1, &single, 1), 0);
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:9::", 64));
        ASSERT_FALSE(find_prefix(l, n, "2001:db8:9::7", 0));
        ASSERT_EQ(n, 4);

        /* Also a permanent prefix (which is otherwise removed and added afresh). */
        NftElement singles[] = { elem("2001:db8:a::1", 100 * USEC_PER_SEC), elem("2001:db8:a::2", 100 * USEC_PER_SEC) };
        ASSERT_EQ(nft_set_add(s, singles, ELEMENTSOF(singles)), 0);
        NftElement forever = prefix_elem("2001:db8:a::", 64, USEC_INFINITY);
        ASSERT_EQ(nft_set_apply(s, &forever, 1, singles, ELEMENTSOF(singles)), 0);
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:a::", 64));
        ASSERT_EQ(find_prefix(l, n, "2001:db8:a::", 64)->timeout, 0);
        ASSERT_FALSE(find_prefix(l, n, "2001:db8:a::1", 0));
        ASSERT_EQ(n, 5);
        NftElement forever_gone = prefix_elem("2001:db8:a::", 64, 0);
        ASSERT_EQ(nft_set_apply(s, NULL, 0, &forever_gone, 1), 0);

        /* Removing a prefix, present or not. */
        NftElement gone[] = { prefix_elem("2001:db8:1:2::", 64, 0), prefix_elem("2001:db8:77::", 64, 0) };
        ASSERT_EQ(nft_set_apply(s, NULL, 0, gone, ELEMENTSOF(gone)), 0);
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_FALSE(find_prefix(l, n, "2001:db8:1:2::", 64));
        ASSERT_EQ(n, 3);
}

/* After a crash the kernel may hold a single address inside a prefix now banned, which the
 * interval set would refuse the prefix for: a reconcile deletes what is in the way; removals of
 * elements that are not there any more are no error. */
TEST(reconcile_overlaps) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft_set_require_interval(s, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(s), 0);
        NftElement old[] = { elem("2001:db8:5::1", 100 * USEC_PER_SEC), elem("2001:db8:5::2", 100 * USEC_PER_SEC),
                             elem("2001:db8:6::1", 100 * USEC_PER_SEC) };
        ASSERT_EQ(nft_set_add(s, old, ELEMENTSOF(old)), 0);

        NftElement wide = prefix_elem("2001:db8:5::", 64, 100 * USEC_PER_SEC);
        ASSERT_TRUE(nft_set_add(s, &wide, 1) < 0); /* refused while they are there */
        NftElement absent = elem("2001:db8:5::9", 0);
        ASSERT_EQ(nft_set_reconcile(s, &wide, 1, &absent, 1), 0);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 2);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:5::", 64));
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:6::1", 0));
}

/* CreateTable=no: a set without the interval flag that a prefix length needs is refused, and the
 * error says which nft command makes it right. CreateTable=yes makes it anew, with its rules. */
TEST(interval_flag_missing) {
        _cleanup_(nft_set_freep) NftSet *no = new_set(NULL, "existing", false), *yes = new_set(NULL, "existing", true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft("add table inet existing\n"
            "add set inet existing banned4 { type ipv4_addr; flags timeout; }\n"
            "add set inet existing banned6 { type ipv6_addr; flags timeout; }\n");
        ASSERT_EQ(nft_set_ensure(no), 0); /* nothing needs the flag yet */
        nft_set_require_interval(no, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(no), -EMEDIUMTYPE);
        fprintf(stderr, "   error: %s\n", nft_set_error(no));
        ASSERT_TRUE(strstr(nft_set_error(no), "banned6 has type ipv6_addr without flag interval (IPv6Prefix=64 needs it)"));
        ASSERT_TRUE(strstr(nft_set_error(no), "nft add set inet existing banned6 '{ type ipv6_addr; flags interval,timeout; }'"));
        ASSERT_EQ(count_lines_with(nft("list table inet existing"), "interval"), 0); /* CreateTable=no changes nothing */

        nft("delete set inet existing banned6\n"
            "add set inet existing banned6 { type ipv6_addr; flags interval,timeout; }\n");
        ASSERT_EQ(nft_set_ensure(no), 0);

        /* A missing set: the command to create it. */
        nft("delete set inet existing banned6\n");
        ASSERT_EQ(nft_set_ensure(no), -ENOENT);
        ASSERT_TRUE(strstr(nft_set_error(no), "nft add set inet existing banned6 '{ type ipv6_addr; flags interval,timeout; }'"));

        /* CreateTable=yes upgrades a set of an older version, keeping the rules in place. */
        nft("add set inet existing banned6 { type ipv6_addr; flags timeout; }\n"
            "add chain inet existing input { type filter hook input priority -10; policy accept; }\n"
            "add rule inet existing input ip6 saddr @banned6 drop\n"
            "add element inet existing banned6 { 2001:db8::1 timeout 100s }\n");
        nft_set_require_interval(yes, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(yes), 0);
        ASSERT_EQ(count_lines_with(nft("list set inet existing banned6"), "flags interval,timeout"), 1);
        ASSERT_EQ(count_lines_with(nft("list chain inet existing input"), " drop\n"), 2);
        NftElement wide = prefix_elem("2001:db8::", 64, 100 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(yes, &wide, 1), 0);
        ASSERT_EQ(nft_set_list(yes, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(nft_set_ensure(yes), 0); /* idempotent */
}

int main(void) {
        enter_private_netns();

        checker = nft_ctx_new(NFT_CTX_DEFAULT);
        ASSERT_TRUE(checker);
        ASSERT_EQ(nft_ctx_buffer_output(checker), 0);
        ASSERT_EQ(nft_ctx_buffer_error(checker), 0);
        if (!streq(nft("list ruleset"), "")) {
                fprintf(stderr, "Refusing to run in a network namespace with a ruleset.\n");
                return EXIT_FAILURE;
        }

        RUN(new_refuses_bad_names);
        RUN(ensure_creates_and_is_idempotent);
        RUN(add_and_list);
        RUN(zero_timeout_is_one_second);
        RUN(readd_refreshes_timeout);
        RUN(many_in_one_call);
        RUN(remove_present_and_absent);
        RUN(create_table_no);
        RUN(wrong_type);
        RUN(family_ip_and_ip6);
        RUN(flush_and_recreate);
        RUN(prefixes);
        RUN(reconcile_overlaps);
        RUN(interval_flag_missing);

        nft_ctx_free(checker);
        return 0;
}
