/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "tests.h"
#include "time-util.h"

#define SEC USEC_PER_SEC
#define MIN USEC_PER_MINUTE
#define HOUR USEC_PER_HOUR
#define DAY USEC_PER_DAY

TEST(parse_valid) {
        static const struct {
                const char *text;
                usec_t usec;
        } table[] = {
                { "0",              0 },
                { "90",             90 * SEC },
                { "  90  ",         90 * SEC },
                { "90s",            90 * SEC },
                { "90 s",           90 * SEC },
                { "10min",          10 * MIN },
                { "10m",            10 * MIN },
                { "10 minutes",     10 * MIN },
                { "1h 30min",       HOUR + 30 * MIN },
                { "1h30min",        HOUR + 30 * MIN },
                { "1hour 30 min 5s", HOUR + 30 * MIN + 5 * SEC },
                { "2d",             2 * DAY },
                { "1.5h",           HOUR + 30 * MIN },
                { "0.5s",           500 * USEC_PER_MSEC },
                { ".25s",           250 * USEC_PER_MSEC },
                { "1.5",            1500 * USEC_PER_MSEC },
                { "500ms",          500 * USEC_PER_MSEC },
                { "500msec",        500 * USEC_PER_MSEC },
                { "7us",            7 },
                { "1w",             7 * DAY },
                { "2weeks",         14 * DAY },
                { "1M",             2629800 * SEC },
                { "1y",             31557600 * SEC },
                { "1years",         31557600 * SEC },
                { "3hr",            3 * HOUR },
                { "1d\t2h",         DAY + 2 * HOUR },
                { "0.0000001s",     0 },
                { "1.123456789012345678901234567s", SEC + 123456 },
                { "365d",           365 * DAY },
                { "18446744073709551614us", UINT64_MAX - 1 },
        };

        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
                usec_t u = 12345;
                fprintf(stderr, "  \"%s\"\n", table[i].text);
                ASSERT_EQ(parse_timespan(table[i].text, &u), 0);
                ASSERT_UINT_EQ(u, table[i].usec);
        }
}

TEST(parse_invalid) {
        static const char * const einval[] = {
                "", " ", "abc", "s", "min", "-1s", "+1s", "1.s", "1..5s", ".", "1 2", "1h 30",
                "10mins", "10mo", "1e3", "infinity", "1h,30min", "1 h x", "0x10", "1ns", "1\x01s",
        };
        static const char * const erange[] = {
                "18446744073709551615us",   /* USEC_INFINITY itself */
                "18446744073709551616us",   /* one more than fits */
                "99999999999999999999999",
                "213503983d",
                "584543y",
                "213503982d 213503982d",
                "18446744073709551614us 1us",
        };

        for (size_t i = 0; i < sizeof einval / sizeof einval[0]; i++) {
                usec_t u = 4711;
                fprintf(stderr, "  \"%s\"\n", einval[i]);
                ASSERT_EQ(parse_timespan(einval[i], &u), -EINVAL);
                ASSERT_UINT_EQ(u, 4711); /* untouched on failure */
        }
        for (size_t i = 0; i < sizeof erange / sizeof erange[0]; i++) {
                usec_t u = 4711;
                fprintf(stderr, "  \"%s\"\n", erange[i]);
                ASSERT_EQ(parse_timespan(erange[i], &u), -ERANGE);
                ASSERT_UINT_EQ(u, 4711);
        }
        ASSERT_EQ(parse_timespan(NULL, &(usec_t) {0}), -EINVAL);
}

TEST(format) {
        static const struct {
                usec_t usec;
                const char *text;
        } table[] = {
                { 0,                        "0" },
                { 1,                        "1us" },
                { 250 * USEC_PER_MSEC,      "250ms" },
                { 90 * SEC,                 "1min 30s" },
                { 10 * MIN,                 "10min" },
                { HOUR + 30 * MIN,          "1h 30min" },
                { 2 * DAY,                  "2d" },
                { 365 * DAY,                "365d" },
                { DAY + SEC + 1,            "1d 1s 1us" },
                { UINT64_MAX - 1,           "213503982d 8h 1min 49s 551ms 614us" },
                { USEC_INFINITY,            "infinity" },
        };
        char buf[TIMESPAN_MAX];

        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
                ASSERT_STREQ(format_timespan(buf, sizeof buf, table[i].usec), table[i].text);
}

TEST(format_truncates) {
        char small[6];

        memset(small, 'x', sizeof small);
        /* "1h 30min" does not fit: the part that fits, always terminated. */
        ASSERT_STREQ(format_timespan(small, sizeof small, HOUR + 30 * MIN), "1h");
        ASSERT_STREQ(format_timespan(small, 1, HOUR), "");
        ASSERT_TRUE(format_timespan(small, 0, HOUR) == small);
}

static void assert_round_trip(usec_t u) {
        char buf[TIMESPAN_MAX];
        usec_t back = 0;

        format_timespan(buf, sizeof buf, u);
        if (parse_timespan(buf, &back) != 0 || back != u) {
                fprintf(stderr, "round trip of %llu failed: \"%s\" -> %llu\n",
                        (unsigned long long) u, buf, (unsigned long long) back);
                abort();
        }
}

TEST(round_trip) {
        static const usec_t fixed[] = {
                0, 1, 999, 1000, SEC, SEC + 1, MIN - 1, HOUR, DAY - 1, 365 * DAY, 10 * MIN,
                UINT64_MAX - 1, UINT64_MAX / 2, 2629800 * SEC, 31557600 * SEC,
        };
        uint64_t x = 0x9e3779b97f4a7c15ULL;

        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
                assert_round_trip(fixed[i]);

        /* Many values of every magnitude (xorshift, fixed seed). */
        for (unsigned i = 0; i < 100000; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                usec_t u = x >> (i % 64);
                if (u == USEC_INFINITY)
                        continue;
                assert_round_trip(u);
        }
}

TEST(clocks) {
        usec_t a = now_monotonic(), b = now_monotonic();

        ASSERT_LE(a, b);
        ASSERT_TRUE(now_realtime() > 1500000000ULL * SEC); /* after 2017 */
}

int main(void) {
        RUN(parse_valid);
        RUN(parse_invalid);
        RUN(format);
        RUN(format_truncates);
        RUN(round_trip);
        RUN(clocks);
        return 0;
}
