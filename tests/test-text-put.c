/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "tests.h"
#include "text-put.h"

/* Checks one writer against printf's text, and that nothing is written past the end. */
static void assert_put(char *(*put)(char *p, uint64_t v), uint64_t v, const char *expected, size_t max) {
        char buf[32], *end;

        memset(buf, 'x', sizeof buf);
        end = put(buf, v);
        ASSERT_EQ(end - buf, (long long) strlen(expected));
        ASSERT_LE(end - buf, (long long) max);
        ASSERT_EQ(*end, 'x');
        *end = 0;
        ASSERT_STREQ(buf, expected);
}

static void assert_puts(uint64_t v) {
        char decimal[32], hex[32];

        snprintf(decimal, sizeof decimal, "%" PRIu64, v);
        snprintf(hex, sizeof hex, "%" PRIx64, v);
        assert_put(text_put_u64, v, decimal, TEXT_U64_DECIMAL_MAX);
        assert_put(text_put_hex, v, hex, TEXT_U64_HEX_MAX);
}

TEST(numbers) {
        char buf[2 * TEXT_U64_DECIMAL_MAX], *p;

        assert_puts(0);
        assert_puts(UINT64_MAX);
        /* Around every change in the number of digits, in either base. */
        for (uint64_t v = 1; v <= UINT64_MAX / 10; v *= 10) {
                assert_puts(v - 1);
                assert_puts(v);
                assert_puts(v + 1);
        }
        for (unsigned shift = 0; shift < 64; shift += 4) {
                assert_puts((UINT64_C(1) << shift) - 1);
                assert_puts(UINT64_C(1) << shift);
        }

        /* Calls chain: each returns where the next writes. */
        p = text_put_u64(buf, 1700000000000000);
        *p++ = '@';
        p = text_put_hex(p, 0xabcdef);
        *p = 0;
        ASSERT_STREQ(buf, "1700000000000000@abcdef");
}

int main(void) {
        RUN(numbers);
        return 0;
}
