/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small test harness: assertions print both sides and where they failed, then abort the
 * test program (so meson reports it). Each test program runs its TEST()s in order. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                        \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)
#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_INT_OP(a, op, b)                                                                  \
        do {                                                                                     \
                long long _a = (long long) (a), _b = (long long) (b);                            \
                if (!(_a op _b)) {                                                               \
                        fprintf(stderr, "%s:%d: assertion failed: %s " #op " %s (%lld vs %lld)\n", \
                                __FILE__, __LINE__, #a, #b, _a, _b);                             \
                        abort();                                                                 \
                }                                                                                \
        } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_OK(r) ASSERT_INT_OP(r, >=, 0)

#define ASSERT_UINT_EQ(a, b)                                                                     \
        do {                                                                                     \
                unsigned long long _a = (unsigned long long) (a), _b = (unsigned long long) (b); \
                if (_a != _b) {                                                                  \
                        fprintf(stderr, "%s:%d: assertion failed: %s == %s (%llu vs %llu)\n",    \
                                __FILE__, __LINE__, #a, #b, _a, _b);                             \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                       \
        do {                                                                                     \
                const char *_a = (a), *_b = (b);                                                 \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                         \
                        fprintf(stderr, "%s:%d: assertion failed: %s == %s (\"%s\" vs \"%s\")\n", \
                                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                                \
        do {                                                                                     \
                fprintf(stderr, "== %s\n", #name);                                               \
                test_##name();                                                                   \
        } while (0)

/* Part of a test cannot run here (WHY names it and the reason): reported, and the rest goes on.
 * Under CI=true, where nothing may be skipped, the test program fails instead. */
static inline void skip_part(const char *why) {
        const char *ci = getenv("CI");

        if (ci && strcmp(ci, "true") == 0) {
                fprintf(stderr, "would skip %s, but CI=true\n", why);
                abort();
        }
        fprintf(stderr, "SKIP (part): %s\n", why);
}
