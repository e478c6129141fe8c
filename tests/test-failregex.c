/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "failregex.h"
#include "macro.h"
#include "tests.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Regex *, regex_free);
#define _cleanup_regex_ _cleanup_(regex_freep)

static const RegexFlags modes[] = { 0, REGEX_NO_JIT };

#define STANDARD HOST_FORMAT_STANDARD
#define VPOPMAIL HOST_FORMAT_VPOPMAIL

/* Matches text against pattern, with JIT and with the interpreter, and checks that both give
 * expect: a canonical address, "none" or "limit" (-E2BIG). */
static void check_format_len(HostFormat format, const char *pattern, const char *text, size_t len, const char *expect) {
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_regex_ Regex *r = NULL;
                _cleanup_free_ char *error = NULL;
                char buf[ADDRESS_STRING_MAX];
                Address a = { .family = 99 };
                const char *got;
                int k;

                k = regex_new_full(pattern, REGEX_FAIL, format, modes[m], &r, &error);
                if (k < 0)
                        fprintf(stderr, "pattern \"%s\": %s\n", pattern, error ?: "?");
                ASSERT_EQ(k, 0);
                if (modes[m] & REGEX_NO_JIT)
                        ASSERT_FALSE(regex_uses_jit(r));

                k = regex_match(r, text, len, &a);
                if (k == -E2BIG)
                        got = "limit";
                else if (k == 0) {
                        got = "none";
                        ASSERT_EQ(a.family, 99); /* untouched */
                } else {
                        ASSERT_EQ(k, 1);
                        got = address_to_string(&a, buf);
                }
                if (!streq(got, expect))
                        fprintf(stderr, "pattern \"%s\" on \"%.*s\" (%s, %s)\n", pattern, (int) MIN(len, 200u), text,
                                host_format_to_string(format), modes[m] & REGEX_NO_JIT ? "interpreter" : "jit");
                ASSERT_STREQ(got, expect);
        }
}

static void check_format(HostFormat format, const char *pattern, const char *text, const char *expect) {
        check_format_len(format, pattern, text, strlen(text), expect);
}

/* The vpopmail format, which most of the older cases below are about. */
static void check_len(const char *pattern, const char *text, size_t len, const char *expect) {
        check_format_len(VPOPMAIL, pattern, text, len, expect);
}

static void check(const char *pattern, const char *text, const char *expect) {
        check_format(VPOPMAIL, pattern, text, expect);
}

static void check_std(const char *pattern, const char *text, const char *expect) {
        check_format(STANDARD, pattern, text, expect);
}

/* The same error, with the same offset, whatever the format. */
static void check_error(const char *pattern, RegexKind kind, int expect_r, const char *expect_msg) {
        for (HostFormat f = 0; f < _HOST_FORMAT_MAX; f++) {
                _cleanup_regex_ Regex *r = NULL;
                _cleanup_free_ char *error = NULL;

                ASSERT_EQ(regex_new(pattern, kind, f, &r, &error), expect_r);
                ASSERT_TRUE(!r);
                ASSERT_STREQ(error, expect_msg);
        }
}

TEST(host_format_names) {
        ASSERT_STREQ(host_format_to_string(HOST_FORMAT_STANDARD), "standard");
        ASSERT_STREQ(host_format_to_string(HOST_FORMAT_VPOPMAIL), "vpopmail");
        ASSERT_TRUE(!host_format_to_string(_HOST_FORMAT_MAX));
        ASSERT_TRUE(!host_format_to_string(_HOST_FORMAT_INVALID));
        ASSERT_EQ(host_format_from_string("standard"), HOST_FORMAT_STANDARD);
        ASSERT_EQ(host_format_from_string("vpopmail"), HOST_FORMAT_VPOPMAIL);
        ASSERT_EQ(host_format_from_string("Standard"), _HOST_FORMAT_INVALID);
        ASSERT_EQ(host_format_from_string(""), _HOST_FORMAT_INVALID);
        ASSERT_EQ(host_format_from_string(NULL), _HOST_FORMAT_INVALID);
}

TEST(new_errors) {
        check_error("", REGEX_FAIL, -EINVAL, "empty pattern");
        check_error("password fail", REGEX_FAIL, -EINVAL, "missing <HOST>");
        check_error("<HOST> <HOST>", REGEX_FAIL, -EINVAL, "<HOST> appears more than once");
        check_error("^from <HOST>$", REGEX_IGNORE, -EINVAL, "<HOST> is not allowed in IgnoreRegex=");
        /* Offsets are those of the pattern as written, not of the expanded one. */
        check_error("^a(b:<HOST>$", REGEX_FAIL, -EINVAL, "at offset 12: missing closing parenthesis");
        check_error("^a:<HOST>$)", REGEX_FAIL, -EINVAL, "at offset 10: unmatched closing parenthesis");
        check_error("^a:<HOST>[b", REGEX_FAIL, -EINVAL,
                    "at offset 11: missing terminating ] for character class");
        /* <HOST> is replaced even inside a class, which breaks the class: the error points at
         * the tag. */
        check_error("^a[b:<HOST>]", REGEX_FAIL, -EINVAL, "at offset 5: unmatched closing parenthesis");
        check_error("a)", REGEX_IGNORE, -EINVAL, "at offset 1: unmatched closing parenthesis");
        /* UTF mode cannot be switched on: MESSAGE may be any bytes. */
        check_error("(*UTF)^a:<HOST>$", REGEX_FAIL, -EINVAL,
                    "at offset 6: using UTF is disabled by the application");

        /* Without ret_error. */
        Regex *r = NULL;
        ASSERT_EQ(regex_new("x", REGEX_FAIL, STANDARD, &r, NULL), -EINVAL);
        ASSERT_TRUE(!r);
        ASSERT_EQ(regex_new(NULL, REGEX_FAIL, STANDARD, &r, NULL), -EINVAL);
        ASSERT_EQ(regex_new("^x <HOST>$", REGEX_FAIL, _HOST_FORMAT_MAX, &r, NULL), -EINVAL);
        ASSERT_EQ(regex_new("^x <HOST>$", REGEX_FAIL, _HOST_FORMAT_INVALID, &r, NULL), -EINVAL);
        ASSERT_TRUE(!r);
}

TEST(pattern_and_ignore) {
        _cleanup_regex_ Regex *f = NULL, *i = NULL;
        Address a;

        ASSERT_EQ(regex_new("^x:<HOST>$", REGEX_FAIL, VPOPMAIL, &f, NULL), 0);
        ASSERT_STREQ(regex_pattern(f), "^x:<HOST>$");

        ASSERT_EQ(regex_new("^vchkpw-pop3: pop access denied ", REGEX_IGNORE, STANDARD, &i, NULL), 0);
        ASSERT_STREQ(regex_pattern(i), "^vchkpw-pop3: pop access denied ");
        ASSERT_EQ(regex_match(i, "vchkpw-pop3: pop access denied a@b:1.2.3.4", 41, NULL), 1);
        ASSERT_EQ(regex_match(i, "vchkpw-pop3: password fail a@b:1.2.3.4", 38, NULL), 0);
        ASSERT_EQ(regex_match(i, "", 0, NULL), 0);
        ASSERT_EQ(regex_match(i, NULL, 0, NULL), 0);
        ASSERT_EQ(regex_match(i, NULL, 1, NULL), -EINVAL);

        /* The address is optional for the caller. */
        ASSERT_EQ(regex_match(f, "x:1.2.3.4", 9, NULL), 1);
        ASSERT_EQ(regex_match(f, "x:1.2.3.4", 9, &a), 1);
        ASSERT_EQ(a.family, AF_INET);
}

TEST(host_forms) {
        check("^x:<HOST>$", "x:192.0.2.7", "192.0.2.7");
        check("^x:<HOST>$", "x:2001_db8__7", "2001:db8::7");
        check("^x:<HOST>$", "x:__ffff_192.0.2.7", "192.0.2.7");
        check("^x:<HOST>$", "x:2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334");
        /* Colon IPv6 of 30 characters would have been printed with underscores; 31 would not. */
        check("^x:<HOST>$", "x:2001:db8:aaa:bbbb:cccc:ddd:e:f", "none");
        check("^x:<HOST>$", "x:2001:db8:aaaa:bbbb:cccc:ddd:e:f", "2001:db8:aaaa:bbbb:cccc:ddd:e:f");
        check("^x:<HOST>$", "x:2001:db8::7", "none");
        /* IPv4-mapped colon text is normalised to IPv4, in case a log passes it through. */
        check("^x:<HOST>$", "x:::ffff:192.0.2.7", "192.0.2.7");
        check("^x:<HOST>$", "x:::FFFF:192.0.2.7", "192.0.2.7");
        check("^x:<HOST>$", "x:::1.2.3.4", "none");
        /* Free text before it: the dotted quad alone is the shorter candidate, with the same result. */
        check("^x (.*):<HOST>$", "x a:::ffff:192.0.2.7", "192.0.2.7");
        check("^x:<HOST>$", "x:", "none");
        check("^x:<HOST>$", "x:mail.example.com", "none");
        check("^x:<HOST>$", "x:192.0.2.07", "none");
        check("^x:<HOST>$", "x:192.0.2.256", "none");
        check("^x:<HOST>$", "x:fe80__1#eth0", "none");
        check("^x:<HOST>$", "x:[2001:db8:85a3:0000:0000:8a2e:0370:7334]", "none");
        check("^x:<HOST>$", "x: 192.0.2.7", "none");
}

TEST(shortest_valid_suffix) {
        /* Greedy ".*" tries the end first: the real address wins over attacker text before it. */
        check("^i .*:<HOST>$", "i x:1:2:3:4:5:6:6.7.8.9", "6.7.8.9");
        check("^i .*:<HOST>$", "i a@b:6.6.6.6:192.0.2.1", "192.0.2.1");
        check("^i .*:<HOST>$", "i x:1111:2222:3333:4444:5555:6666:192.0.2.1", "192.0.2.1");
        check("^i .*:<HOST>$", "i x:2001:db8:1:2:3:4:5:2001_db8__7", "2001:db8::7");
        check("^i .*:<HOST>$", "i x:1111:2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334");
        /* An unknown client leaves the line ending in ':': nothing the attacker wrote counts. */
        check("^i .*:<HOST>$", "i x:1111:2222:3333:4444:5555:6666:", "none");
        check("^i .*:<HOST>$", "i a@b:6.6.6.6:", "none");
        check("^i .*:<HOST>$", "i x:2001_db8__6:", "none");
        /* A long address may end in "::": it counts (a single trailing ':' never does). */
        check("^i .*:<HOST>$", "i x:2a02:8109:b6c0:1a2b:ffff:ffff::", "2a02:8109:b6c0:1a2b:ffff:ffff::");
        check("^i .*:<HOST>$", "i x:2a02:8109:b6c0:1a2b:ffff:ffff:", "none");
        check("^i <HOST>$", "i :::", "none");
        /* After free text, such an end may be an unknown client's login name ending in "7777:":
         * the shortest valid suffix is taken, and a pattern that must not trust it says so. */
        check("^i .*:<HOST>$", "i 1111:2222:3333:4444:5555:6666:7777::", "2222:3333:4444:5555:6666:7777::");
        check("^i .*:<HOST>(?<!::)$", "i 1111:2222:3333:4444:5555:6666:7777::", "none");
        check("^i .*:<HOST>(?<!::)$", "i x:1111:2222:3333:4444:5555:6666:192.0.2.1", "192.0.2.1");
}

TEST(token_boundaries) {
        /* Never part of a longer token, on either side. */
        check("^.*<HOST>$", "from 11.2.3.4", "11.2.3.4");
        check("^a<HOST>$", "a1.2.3.4", "none");
        check("^from <HOST>", "from 1.2.3.456", "none");
        check("^from <HOST>", "from 1.2.3.4x", "none");
        check("^from <HOST>", "from 1.2.3.4.5", "none");
        check("^from <HOST>", "from 1.2.3.4_", "none");
        check("^from <HOST>", "from 1.2.3.4 port 25", "1.2.3.4");
        /* ':' may follow: the candidate shrinks past it (no auto-possessification). */
        check("^from <HOST>", "from 1.2.3.4:25", "1.2.3.4");
        check("^from <HOST>:[0-9]+$", "from 1.2.3.4:25", "1.2.3.4");
        check("^from <HOST>", "from 2001_db8__7 x", "2001:db8::7");
        /* A quantifier after <HOST>, and <HOST> in a part the match skips. */
        check("^from <HOST>?$", "from 1.2.3.4", "1.2.3.4");
        check("^from (<HOST>|nowhere)$", "from nowhere", "none");
        /* The callout accepts a later span (10.0.0.1) that the match then gives up: the address
         * is the one of the span the match kept. */
        check_std("^(?:<HOST> )+10\\.0\\.0\\.1$", "192.0.2.1 10.0.0.1", "192.0.2.1");
        check("^(?:<HOST> )+10\\.0\\.0\\.1$", "192.0.2.1 10.0.0.1", "192.0.2.1");
}

/* The standard format: every text form inet_ntop() and the daemons print. */
TEST(standard_forms) {
        check_std("^x <HOST>$", "x 192.0.2.7", "192.0.2.7");
        check_std("^x <HOST>$", "x 2001:db8::7", "2001:db8::7");
        check_std("^x <HOST>$", "x 2001:0DB8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334");
        check_std("^x <HOST>$", "x fe80::1", "fe80::1");
        check_std("^x <HOST>$", "x ::1", "::1");
        check_std("^x <HOST>$", "x 2a02:8109:b6c0:1a2b::", "2a02:8109:b6c0:1a2b::");
        check_std("^x <HOST>$", "x 64:ff9b::192.0.2.7", "64:ff9b::c000:207");
        /* IPv4-mapped counts as IPv4, bare or in brackets. */
        check_std("^x <HOST>$", "x ::ffff:192.0.2.7", "192.0.2.7");
        check_std("^x <HOST>$", "x ::FFFF:192.0.2.7", "192.0.2.7");
        check_std("^x <HOST>$", "x [::ffff:192.0.2.7]", "192.0.2.7");
        check_std("^x <HOST>$", "x [2001:db8::7]", "2001:db8::7");
        check_std("^x <HOST>$", "x [192.0.2.7]", "192.0.2.7");
        check_std("^x=\\[<HOST>\\]$", "x=[2001:db8::7]", "2001:db8::7");
        check_std("^x=\\[<HOST>\\]$", "x=[[2001:db8::7]]", "none");
        check_std("^x=\\[<HOST>\\]$", "x=[[192.0.2.7]]", "none");
        /* Not addresses here. */
        check_std("^x <HOST>$", "x 2001_db8__7", "none");
        check_std("^x <HOST>$", "x __ffff_192.0.2.7", "none");
        check_std("^x <HOST>$", "x []", "none");
        check_std("^x <HOST>$", "x [2001:db8::7", "none");
        check_std("^x <HOST>$", "x 2001:db8::7]", "none");
        check_std("^x <HOST>$", "x [[2001:db8::7]]", "none");
        check_std("^x <HOST>$", "x [2001:db8::7]]", "none");
        check_std("^x <HOST>$", "x 2001:db8::7:", "none");
        check_std("^x <HOST>$", "x 2001:db8:::7", "none");
        check_std("^x <HOST>$", "x 192.0.2.07", "none");
        check_std("^x <HOST>$", "x 192.0.2.256", "none");
        check_std("^x <HOST>$", "x mail.example.com", "none");
        check_std("^x <HOST>$", "x fe80::1%eth0", "none");
        check_std("^x <HOST>$", "x ", "none");
}

TEST(standard_ports) {
        /* A port after IPv4 or after brackets. */
        check_std("^x <HOST>:[0-9]+$", "x 192.0.2.7:25", "192.0.2.7");
        check_std("^x <HOST>:[0-9]+$", "x [2001:db8::7]:25", "2001:db8::7");
        check_std("^x <HOST>:[0-9]+$", "x [::ffff:192.0.2.7]:25", "192.0.2.7");
        check_std("^x <HOST>(:[0-9]+)?$", "x [2001:db8::7]", "2001:db8::7");
        check_std("^x <HOST>(:[0-9]+)?$", "x 192.0.2.7", "192.0.2.7");
        /* Bare colon IPv6 and a port cannot be told apart: never split. */
        check_std("^x <HOST>:[0-9]+$", "x 2001:db8::7:25", "none");
        check_std("^x <HOST>", "x 2001:db8::7:25", "2001:db8::7:25");
        check_std("^x <HOST>(:[0-9]+)?$", "x 2001:db8::7:25", "2001:db8::7:25");
        /* The shapes daemons print. */
        check_std("^from <HOST> port [0-9]+$", "from 2001:db8::7 port 22", "2001:db8::7");
        check_std("^from <HOST> port [0-9]+$", "from 192.0.2.7 port 22", "192.0.2.7");
        check_std("^a rip=<HOST>, lip=", "a rip=2001:db8::7, lip=2001:db8::1", "2001:db8::7");
        check_std("^a rip=<HOST>, lip=", "a rip=::ffff:192.0.2.7, lip=::1", "192.0.2.7");
        check_std("^w [-.0-9A-Za-z]+\\[<HOST>\\]: ", "w unknown[2001:db8::7]: x", "2001:db8::7");
        check_std("^w [-.0-9A-Za-z]+\\[<HOST>\\]: ", "w mail.example.com[192.0.2.7]: x", "192.0.2.7");
        check_std("^l ip=\\[<HOST>\\], port=\\[[0-9]+\\]$", "l ip=[::ffff:192.0.2.7], port=[4242]", "192.0.2.7");
        check_std("^p \\(user,<HOST>\\)$", "p (user,2001:db8::7)", "2001:db8::7");
}

TEST(standard_tokens) {
        /* Never part of a longer token, whatever the pattern lets the engine try. */
        check_std("^.*<HOST>$", "from 11.2.3.4", "11.2.3.4");
        check_std("^.*<HOST>$", "from 2001:db8::7", "2001:db8::7");
        check_std("^.*<HOST>$", "from 2001:db8::1:7", "2001:db8::1:7");
        check_std("^.*?<HOST>$", "from 2001:db8::1:7", "2001:db8::1:7");
        check_std("^.*<HOST>$", "from [2001:db8::7]", "2001:db8::7");
        check_std("^a<HOST>$", "a1.2.3.4", "none");
        check_std("^a <HOST>", "a 1.2.3.456", "none");
        check_std("^a <HOST>", "a 1.2.3.4x", "none");
        check_std("^a <HOST>", "a 1.2.3.4.5", "none");
        check_std("^a <HOST>", "a 1.2.3.4_", "none");
        check_std("^a <HOST>", "a 2001:db8::7g", "none");
        check_std("^a <HOST>", "a 2001:db8::7.", "none");
        check_std("^a <HOST>", "a [2001:db8::7]x", "none");
        check_std("^a.<HOST>", "ax[2001:db8::7]", "none");
        check_std("^a <HOST>", "a 1.2.3.4 port 25", "1.2.3.4");
        /* A ':' before colon IPv6 means a longer token: its tail is no address. */
        check_std("^x .*:<HOST>$", "x user:2001:db8::7", "none");
        check_std("^x .*:<HOST>$", "x 1111:2001:db8::7", "none");
        check_std("^x .*:<HOST> ", "x user:2001:db8::7 y", "none");
        /* IPv4 may follow a ':' (user:192.0.2.7); the dotted tail of IPv4-mapped text is the same
         * address as the whole. */
        check_std("^x .*:<HOST>$", "x joe@example.com:192.0.2.7", "192.0.2.7");
        check_std("^x .*:<HOST>$", "x a@b:6.6.6.6:192.0.2.1", "192.0.2.1");
        check_std("^x .*<HOST>$", "x ::ffff:192.0.2.7", "192.0.2.7");
        check_std("^x .*:<HOST>$", "x a@b:6.6.6.6:", "none");
        /* A quantifier after <HOST>, and <HOST> in a part the match skips. */
        check_std("^from <HOST>?$", "from 2001:db8::7", "2001:db8::7");
        check_std("^from (<HOST>|nowhere)$", "from nowhere", "none");
}

TEST(bytes) {
        /* Newlines: '.' spans them and '$' is only the very end. */
        check_len("^i .*:<HOST>$", "i a\nb:192.0.2.1", 15, "192.0.2.1");
        check_len("^i .*:<HOST>$", "i a:192.0.2.1\n", 14, "none");
        check_len("^i .*:<HOST>$", "i a:192.0.2.1\nx:6.6.6.6:", 24, "none");
        check_len("^x:<HOST>$", "x:192.0.2.1\n", 12, "none");
        /* NUL bytes and invalid UTF-8 are just bytes. */
        check_len("^i .*:<HOST>$", "i a\0b:192.0.2.1", 15, "192.0.2.1");
        check_len("^i .*:<HOST>$", "i a:192.0.2.1\0", 14, "none");
        check_len("^i .*:<HOST>$", "i a:192.0.2.1\0junk", 18, "none");
        check_len("^x:<HOST>$", "x:192.0\0.2.1", 12, "none");
        check("^i .*:<HOST>$", "i \xff\xfe\xc0\xaf:192.0.2.1", "192.0.2.1");
        check("^i .*:<HOST>$", "i \xc3\x28:192.0.2.1\xff", "none");
}

TEST(message_cap) {
        size_t n = REGEX_MESSAGE_MAX + 1;
        _cleanup_free_ char *text = malloc(n);
        const char *tail = ":192.0.2.1";
        size_t tail_len = strlen(tail);

        ASSERT_TRUE(text);
        memset(text, 'A', n);
        memcpy(text, "i ", 2);

        /* Exactly at the cap: matched. */
        memcpy(text + REGEX_MESSAGE_MAX - tail_len, tail, tail_len);
        check_len("^i .*:<HOST>$", text, REGEX_MESSAGE_MAX, "192.0.2.1");

        /* One byte over: never matched, even though the first REGEX_MESSAGE_MAX bytes end in a
         * valid address, which is the attack a cut would allow. */
        text[REGEX_MESSAGE_MAX] = '7';
        check_len("^i .*:<HOST>$", text, n, "limit");
        memcpy(text + n - tail_len, tail, tail_len);
        check_len("^i .*:<HOST>$", text, n, "limit");
}

TEST(limits) {
        /* Catastrophic backtracking ends with -E2BIG, not a hang: with JIT by the match limit,
         * with the interpreter by the match or depth limit. */
        char text[64];
        memset(text, 'a', sizeof text);
        memcpy(text + sizeof text - 9, ":1.2.3.4X", 9);
        check_len("^(a+)+b.*:<HOST>$", text, sizeof text, "limit");
        check_len("^(a|aa)+$<HOST>", text, sizeof text, "limit");

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_regex_ Regex *r = NULL;

                ASSERT_EQ(regex_new_full("^((a+)+)+$", REGEX_IGNORE, STANDARD, modes[m], &r, NULL), 0);
                ASSERT_EQ(regex_match(r, text, sizeof text, NULL), -E2BIG);
        }

        /* About 2.6 million steps: over REGEX_MATCH_LIMIT, under PCRE2's default of 10 million,
         * so this fails if our limit is not applied. */
        char cubic[251];
        memset(cubic, 'a', sizeof cubic);
        cubic[sizeof cubic - 1] = 'X';
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_regex_ Regex *r = NULL;

                ASSERT_EQ(regex_new_full("^a*a*a*$", REGEX_IGNORE, STANDARD, modes[m], &r, NULL), 0);
                ASSERT_EQ(regex_match(r, cubic, sizeof cubic, NULL), -E2BIG);
                ASSERT_EQ(regex_match(r, cubic + 150, sizeof cubic - 150, NULL), 0); /* 100 a, X */
        }

        /* A deep nest of group repetitions exceeds the depth limit of the interpreter; the
         * heap limit bounds its frames. Either way: -E2BIG. */
        size_t n = 60000;
        _cleanup_free_ char *big = malloc(n);
        ASSERT_TRUE(big);
        memset(big, 'a', n);
        big[n - 1] = 'X';
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_regex_ Regex *r = NULL;

                ASSERT_EQ(regex_new_full("^(a|b)*$", REGEX_IGNORE, STANDARD, modes[m], &r, NULL), 0);
                ASSERT_EQ(regex_match(r, big, n, NULL), -E2BIG);
        }

        /* A line full of address-like text that ends in ':' costs bounded work and never
         * yields an address, in either format. */
        for (size_t i = 0; i < n; i += 2)
                memcpy(big + i, "a:", 2);
        memcpy(big, "i ", 2);
        for (HostFormat f = 0; f < _HOST_FORMAT_MAX; f++)
                for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                        _cleanup_regex_ Regex *r = NULL;
                        Address a;
                        int k;

                        ASSERT_EQ(regex_new_full("^i .*:<HOST>$", REGEX_FAIL, f, modes[m], &r, NULL), 0);
                        k = regex_match(r, big, n, &a);
                        fprintf(stderr, "   %s, %s: %d\n", host_format_to_string(f),
                                modes[m] ? "interpreter" : "jit", k);
                        ASSERT_TRUE(k == 0 || k == -E2BIG);
                }
}

TEST(reuse) {
        /* One match_data per Regex: results of one match do not leak into the next. */
        _cleanup_regex_ Regex *r = NULL;
        char buf[ADDRESS_STRING_MAX];
        Address a;

        ASSERT_EQ(regex_new("^i .*:<HOST>$", REGEX_FAIL, VPOPMAIL, &r, NULL), 0);
        for (unsigned i = 0; i < 1000; i++) {
                char text[64], want[32];

                snprintf(want, sizeof want, "10.0.%u.%u", i / 256, i % 256);
                snprintf(text, sizeof text, "i x%u:%s", i, want);
                ASSERT_EQ(regex_match(r, text, strlen(text), &a), 1);
                ASSERT_STREQ(address_to_string(&a, buf), want);
                ASSERT_EQ(regex_match(r, "i x:", 4, &a), 0);
        }
}

int main(void) {
        RUN(new_errors);
        RUN(host_format_names);
        RUN(pattern_and_ignore);
        RUN(host_forms);
        RUN(shortest_valid_suffix);
        RUN(token_boundaries);
        RUN(standard_forms);
        RUN(standard_ports);
        RUN(standard_tokens);
        RUN(bytes);
        RUN(message_cap);
        RUN(limits);
        RUN(reuse);
        return 0;
}
