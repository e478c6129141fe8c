/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <nftables/libnftables.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static int compare_elements(const void *a, const void *b) {
        const NftElement *x = a, *y = b;

        if (x->address.family != y->address.family)
                return x->address.family < y->address.family ? -1 : 1;
        return memcmp(x->address.bytes, y->address.bytes, sizeof x->address.bytes);
}

/* How many different addresses the listing holds (it is sorted in place). */
static size_t count_distinct(NftElement *l, size_t n) {
        size_t k = 0;

        qsort(l, n, sizeof *l, compare_elements);
        for (size_t i = 0; i < n; i++)
                if (i == 0 || compare_elements(&l[i - 1], &l[i]) != 0)
                        k++;
        return k;
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
        ASSERT_EQ(nft_set_ensure(s), 0);
        fprintf(stderr, "   nft_set_ensure() with %zu elements: %.3f s\n", N, now_sec() - t);

        /* Right after so many additions the kernel may still be growing the set's hash table
         * in the background (a loaded machine delays that work), and a listing meanwhile can
         * repeat some elements and miss others. The daemon never lists a set; the test lists
         * until one listing holds every element once. */
        for (unsigned tries = 1;; tries++) {
                t = now_sec();
                free(l);
                l = NULL;
                ASSERT_EQ(nft_set_list(s, &l, &n), 0);
                fprintf(stderr, "   nft_set_list() of %zu elements: %.3f s\n", n, now_sec() - t);
                size_t distinct = count_distinct(l, n);
                if (n == N && distinct == N && find(l, n, "10.1.134.159") /* i = 99999 */ &&
                    find(l, n, "2001:db8::1:8696") /* i = 99990 */)
                        break;
                fprintf(stderr, "   listing %u: %zu elements, %zu distinct; again\n", tries, n, distinct);
                ASSERT_TRUE(tries < 30); /* each listing takes about a second here */
                (void) usleep(100 * 1000);
        }

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

/* IPv6Prefix=64: a plain set banned6_64 and a rule that masks the source to 64 bits; prefixes go
 * in as network addresses and come back out with their set's length. */
TEST(prefixes) {
        _cleanup_(nft_set_freep) NftSet *s = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft_set_require_prefix(s, AF_INET6, 64);
        nft_set_require_prefix(s, AF_INET6, 128); /* single addresses: nothing more */
        nft_set_require_prefix(s, AF_INET, 0);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_STREQ(nft("list ruleset"),
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
                     "\tset banned6_64 {\n"
                     "\t\ttype ipv6_addr\n"
                     "\t\tflags timeout\n"
                     "\t}\n"
                     "\n"
                     "\tchain input {\n"
                     "\t\ttype filter hook input priority -10; policy accept;\n"
                     "\t\tip saddr @banned4 drop\n"
                     "\t\tip6 saddr @banned6 drop\n"
                     "\t\tip6 saddr & ffff:ffff:ffff:ffff:: == @banned6_64 drop\n"
                     "\t}\n"
                     "}\n");
        ASSERT_EQ(nft_set_exists(s), 1);

        NftElement e[] = {
                prefix_elem("2001:db8:1:2::5", 64, 100 * USEC_PER_SEC), /* host bits: the network goes in */
                elem("2001:db8:9::7", 100 * USEC_PER_SEC),
                elem("192.0.2.7", 100 * USEC_PER_SEC),
        };
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6_64"), "2001:db8:1:2:: timeout 100s"), 1);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6"), "2001:db8:1:2:"), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6"), "2001:db8:9::7 timeout"), 1);

        /* A length whose set was not set up yet (a saved ban of an older IPv6Prefix=) fails the
         * transaction; the next ensure, as a repair does, sets it up. */
        NftElement forever48 = prefix_elem("2001:db8:3::", 48, USEC_INFINITY);
        ASSERT_EQ(nft_set_add(s, &forever48, 1), -ENOENT);
        ASSERT_EQ(nft_set_exists(s), 0);
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(nft_set_add(s, &forever48, 1), 0);
        ASSERT_EQ(count_lines_with(nft("list chain inet vpopguard input"),
                                   "ip6 saddr & ffff:ffff:ffff:: == @banned6_48 drop"), 1);

        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:1:2::", 64));
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:3::", 48));
        ASSERT_EQ(find_prefix(l, n, "2001:db8:3::", 48)->timeout, 0); /* permanent */
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:9::7", 0));
        ASSERT_TRUE(find_prefix(l, n, "192.0.2.7", 0));

        /* Re-adding refreshes, also the permanent prefix (removed and added afresh). */
        ASSERT_EQ(nft_set_add(s, e, ELEMENTSOF(e)), 0);
        ASSERT_EQ(nft_set_add(s, &forever48, 1), 0);

        /* A single address gives way to its prefix in one call; each is in its own set. */
        NftElement wide = prefix_elem("2001:db8:9::", 64, USEC_INFINITY), single = elem("2001:db8:9::7", 0);
        ASSERT_EQ(nft_set_apply(s, &wide, 1, &single, 1), 0);
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:9::", 64));
        ASSERT_EQ(find_prefix(l, n, "2001:db8:9::", 64)->timeout, 0);
        ASSERT_FALSE(find_prefix(l, n, "2001:db8:9::7", 0));
        ASSERT_EQ(n, 4);

        /* Removed and added in one call: present. */
        ASSERT_EQ(nft_set_apply(s, &e[0], 1, &e[0], 1), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet vpopguard banned6_64"), "2001:db8:1:2::"), 1);

        /* Removing prefixes, present or not; the single set is not touched. */
        NftElement gone[] = { prefix_elem("2001:db8:1:2::", 64, 0), prefix_elem("2001:db8:77::", 64, 0),
                              prefix_elem("2001:db8:9::", 64, 0), prefix_elem("2001:db8:3::", 48, 0) };
        ASSERT_EQ(nft_set_apply(s, NULL, 0, gone, ELEMENTSOF(gone)), 0);
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(find_prefix(l, n, "192.0.2.7", 0));

        /* An element someone else put in with host bits is listed as the network the rule matches. */
        nft("add element inet vpopguard banned6_64 { 2001:db8:4:4::9 }");
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:4:4::", 64));
}

/* IPv4Prefix=24 in an "ip" table: the rule masks with 255.255.255.0. */
TEST(prefixes_ipv4) {
        _cleanup_(nft_set_freep) NftSet *s = new_set("ip", "vpg4", true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft_set_require_prefix(s, AF_INET, 24);
        nft_set_require_prefix(s, AF_INET6, 64); /* no IPv6 set in an "ip" table: nothing */
        ASSERT_EQ(nft_set_ensure(s), 0);
        ASSERT_EQ(count_lines_with(nft("list chain ip vpg4 input"), "ip saddr & 255.255.255.0 == @banned4_24 drop"), 1);
        ASSERT_EQ(count_lines_with(nft("list table ip vpg4"), "set "), 2);
        NftElement e = prefix_elem("198.51.100.77", 24, 100 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(s, &e, 1), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set ip vpg4 banned4_24"), "198.51.100.0 timeout"), 1);
        ASSERT_EQ(nft_set_list(s, &l, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(find_prefix(l, n, "198.51.100.0", 24));
}

/* Runs the nft commands an error tells the admin to run ("... with: nft A; nft B"), as a shell
 * would: without the quotes. */
static void run_advice(const char *error) {
        const char *p = strstr(error, "with: nft ");
        char cmd[1024];

        ASSERT_TRUE(p);
        p += strlen("with: nft ");
        while (p) {
                const char *end = strstr(p, "; nft ");
                size_t len = end ? (size_t) (end - p) : strcspn(p, "(");
                size_t k = 0;

                ASSERT_LT(len, sizeof(cmd));
                for (size_t i = 0; i < len; i++)
                        if (p[i] != '\'')
                                cmd[k++] = p[i];
                cmd[k] = 0;
                fprintf(stderr, "   running: nft %s\n", cmd);
                nft(cmd);
                p = end ? end + strlen("; nft ") : NULL;
        }
}

/* CreateTable=no: a missing prefix set, a missing or wrong rule, and a set with flags interval
 * are refused, and the error names the nft commands that make it right (which the test runs). */
TEST(create_table_no_prefix_sets) {
        _cleanup_(nft_set_freep) NftSet *no = new_set(NULL, "existing", false);

        nft("flush ruleset");
        nft("add table inet existing\n"
            "add set inet existing banned4 { type ipv4_addr; flags timeout; }\n"
            "add set inet existing banned6 { type ipv6_addr; flags timeout; }\n"
            "add chain inet existing filter_in { type filter hook input priority 0; }\n"
            "add rule inet existing filter_in ip6 saddr @banned6 drop\n");
        ASSERT_EQ(nft_set_ensure(no), 0); /* nothing needs a prefix set yet */
        nft_set_require_prefix(no, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(no), -ENOENT);
        fprintf(stderr, "   error: %s\n", nft_set_error(no));
        ASSERT_TRUE(strstr(nft_set_error(no), "Set inet existing banned6_64 does not exist (for bans of /64 prefixes, IPv6Prefix=64)"));
        ASSERT_TRUE(strstr(nft_set_error(no), "nft add set inet existing banned6_64 '{ type ipv6_addr; flags timeout; }'"));
        /* In the chain where the admin drops single addresses. */
        ASSERT_TRUE(strstr(nft_set_error(no), "nft add rule inet existing filter_in ip6 saddr and ffff:ffff:ffff:ffff:: @banned6_64 drop"));
        ASSERT_EQ(count_lines_with(nft("list table inet existing"), "banned6_64"), 0); /* CreateTable=no changes nothing */

        /* The set alone, or a rule with another mask, is not enough. */
        nft("add set inet existing banned6_64 { type ipv6_addr; flags timeout; }\n"
            "add rule inet existing filter_in ip6 saddr & ffff:ffff:ffff:: @banned6_64 drop\n"
            "add rule inet existing filter_in ip saddr & 255.255.255.0 @banned4 drop\n");
        ASSERT_EQ(nft_set_ensure(no), -ENOENT);
        fprintf(stderr, "   error: %s\n", nft_set_error(no));
        ASSERT_TRUE(strstr(nft_set_error(no), "No rule of table inet existing matches the source address masked to /64 against set banned6_64"));
        run_advice(nft_set_error(no));
        ASSERT_EQ(nft_set_ensure(no), 0);
        ASSERT_STREQ(nft_set_error(no), "");

        /* A set with flags interval (an older version asked for it) is refused too. */
        nft("flush chain inet existing filter_in\n"
            "delete set inet existing banned6_64\n"
            "add set inet existing banned6_64 { type ipv6_addr; flags interval,timeout; }\n"
            "add rule inet existing filter_in ip6 saddr & ffff:ffff:ffff:ffff:: @banned6_64 drop\n");
        ASSERT_EQ(nft_set_ensure(no), -EMEDIUMTYPE);
        fprintf(stderr, "   error: %s\n", nft_set_error(no));
        ASSERT_TRUE(strstr(nft_set_error(no), "banned6_64 has type ipv6_addr with flag interval"));
        ASSERT_TRUE(strstr(nft_set_error(no), "nft delete set inet existing banned6_64; nft add set inet existing banned6_64 "
                                              "'{ type ipv6_addr; flags timeout; }'"));
        nft("flush chain inet existing filter_in");
        run_advice(nft_set_error(no));
        nft("add rule inet existing filter_in ip6 saddr and ffff:ffff:ffff:ffff:: @banned6_64 drop");
        ASSERT_EQ(nft_set_ensure(no), 0);

        NftElement wide = prefix_elem("2001:db8::", 64, 100 * USEC_PER_SEC);
        ASSERT_EQ(nft_set_add(no, &wide, 1), 0);
        ASSERT_EQ(count_lines_with(nft_with(0, "list set inet existing banned6_64"), "2001:db8:: timeout"), 1);
}

/* CreateTable=yes upgrades the table of the previous version (banned6 with flags interval,timeout
 * holding a /64 and an address): no set keeps the interval flag, each prefix length has its
 * set and rule. The old elements go with the old set: the caller puts its bans back. */
TEST(upgrade_interval_set) {
        _cleanup_(nft_set_freep) NftSet *yes = new_set(NULL, NULL, true);
        _cleanup_free_ NftElement *l = NULL;
        size_t n;

        nft("flush ruleset");
        nft("add table inet vpopguard\n"
            "add set inet vpopguard banned4 { type ipv4_addr; flags timeout; }\n"
            "add set inet vpopguard banned6 { type ipv6_addr; flags interval,timeout; }\n"
            "add chain inet vpopguard input { type filter hook input priority -10; policy accept; }\n"
            "add rule inet vpopguard input ip saddr @banned4 drop\n"
            "add rule inet vpopguard input ip6 saddr @banned6 drop\n"
            "add element inet vpopguard banned6 { 2001:db8::/64 timeout 100s, 2001:db8:5::1 timeout 100s }\n"
            "add element inet vpopguard banned4 { 192.0.2.1 timeout 100s }\n");
        nft_set_require_prefix(yes, AF_INET6, 64);
        ASSERT_EQ(nft_set_ensure(yes), 0);
        ASSERT_EQ(count_lines_with(nft("list table inet vpopguard"), "interval"), 0);
        ASSERT_EQ(count_lines_with(nft("list chain inet vpopguard input"), " drop\n"), 3);
        ASSERT_EQ(nft_set_list(yes, &l, &n), 0);
        ASSERT_EQ(n, 1); /* only the set that was not recreated kept its element */
        ASSERT_TRUE(find_prefix(l, n, "192.0.2.1", 0));

        NftElement back[] = { prefix_elem("2001:db8::", 64, 100 * USEC_PER_SEC), elem("2001:db8:5::1", 100 * USEC_PER_SEC) };
        ASSERT_EQ(nft_set_add(yes, back, ELEMENTSOF(back)), 0);
        ASSERT_EQ(nft_set_ensure(yes), 0); /* idempotent: the elements stay */
        free(l);
        l = NULL;
        ASSERT_EQ(nft_set_list(yes, &l, &n), 0);
        ASSERT_EQ(n, 3);
        ASSERT_TRUE(find_prefix(l, n, "2001:db8::", 64));
        ASSERT_TRUE(find_prefix(l, n, "2001:db8:5::1", 0));
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
        RUN(prefixes_ipv4);
        RUN(create_table_no_prefix_sets);
        RUN(upgrade_interval_set);

        nft_ctx_free(checker);
        return 0;
}
