/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <time.h>

#include "macro.h"
#include "time-util.h"

static usec_t now_clock(clockid_t clock) {
        struct timespec ts;

        /* Cannot fail for these clocks on Linux. */
        (void) clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000U;
}

usec_t now_realtime(void) {
        return now_clock(CLOCK_REALTIME);
}

usec_t now_monotonic(void) {
        return now_clock(CLOCK_MONOTONIC);
}

#define USEC_PER_WEEK (7ULL * USEC_PER_DAY)
#define USEC_PER_MONTH (2629800ULL * USEC_PER_SEC)  /* 30.44 days */
#define USEC_PER_YEAR (31557600ULL * USEC_PER_SEC)  /* 365.25 days */

/* Case matters: "m" is a minute, "M" a month. */
static const struct {
        const char *suffix;
        usec_t usec;
} units[] = {
        { "us",      1 },
        { "usec",    1 },
        { "ms",      USEC_PER_MSEC },
        { "msec",    USEC_PER_MSEC },
        { "s",       USEC_PER_SEC },
        { "sec",     USEC_PER_SEC },
        { "second",  USEC_PER_SEC },
        { "seconds", USEC_PER_SEC },
        { "m",       USEC_PER_MINUTE },
        { "min",     USEC_PER_MINUTE },
        { "minute",  USEC_PER_MINUTE },
        { "minutes", USEC_PER_MINUTE },
        { "h",       USEC_PER_HOUR },
        { "hr",      USEC_PER_HOUR },
        { "hour",    USEC_PER_HOUR },
        { "hours",   USEC_PER_HOUR },
        { "d",       USEC_PER_DAY },
        { "day",     USEC_PER_DAY },
        { "days",    USEC_PER_DAY },
        { "w",       USEC_PER_WEEK },
        { "week",    USEC_PER_WEEK },
        { "weeks",   USEC_PER_WEEK },
        { "M",       USEC_PER_MONTH },
        { "month",   USEC_PER_MONTH },
        { "months",  USEC_PER_MONTH },
        { "y",       USEC_PER_YEAR },
        { "year",    USEC_PER_YEAR },
        { "years",   USEC_PER_YEAR },
};

static bool is_space(char c) {
        return c != 0 && strchr(" \t\n\r\v\f", c);
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* The longest unit at p that is followed by the end, a space or the next number: "10ms" is
 * milliseconds, "10mo" is nothing. Returns the length of the suffix or 0. */
static size_t match_unit(const char *p, usec_t *ret) {
        size_t best = 0;

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                size_t l = strlen(units[i].suffix);

                if (l <= best || strncmp(p, units[i].suffix, l) != 0)
                        continue;
                if (p[l] != 0 && !is_space(p[l]) && !is_digit(p[l]) && p[l] != '.')
                        continue;
                best = l;
                *ret = units[i].usec;
        }
        return best;
}

int parse_timespan(const char *s, usec_t *ret) {
        usec_t total = 0;
        bool first = true;
        const char *p = s;

        if (!s)
                return -EINVAL;

        for (;;) {
                uint64_t whole = 0, frac = 0, frac_scale = 1;
                bool digits = false, overflow = false;
                usec_t unit = USEC_PER_SEC, part;

                while (is_space(*p))
                        p++;
                if (*p == 0)
                        break;

                for (; is_digit(*p); p++) {
                        digits = true;
                        if (__builtin_mul_overflow(whole, 10, &whole) ||
                            __builtin_add_overflow(whole, (uint64_t) (*p - '0'), &whole))
                                overflow = true;
                }
                if (*p == '.') {
                        p++;
                        if (!is_digit(*p))
                                return -EINVAL;
                        /* Digits beyond 10^-18 cannot change a result in microseconds. */
                        for (; is_digit(*p); p++)
                                if (frac_scale < 1000000000000000000ULL) {
                                        frac = frac * 10 + (uint64_t) (*p - '0');
                                        frac_scale *= 10;
                                }
                        digits = true;
                }
                if (!digits)
                        return -EINVAL;

                while (is_space(*p))
                        p++;
                size_t l = match_unit(p, &unit);
                if (l == 0) {
                        /* A bare number means seconds, but only as the whole span: "1h 30" is
                         * more likely a typo than 1h and 30 seconds. */
                        if (!first || *p != 0)
                                return -EINVAL;
                }
                p += l;

                /* frac < frac_scale, so the fraction is worth less than one unit. */
                usec_t fraction = (usec_t) (((unsigned __int128) frac * unit) / frac_scale);
                if (overflow ||
                    __builtin_mul_overflow(whole, unit, &part) ||
                    __builtin_add_overflow(part, fraction, &part) ||
                    __builtin_add_overflow(total, part, &total))
                        return -ERANGE;
                first = false;
        }

        if (first)
                return -EINVAL;
        /* USEC_INFINITY is reserved for "never". */
        if (total == USEC_INFINITY)
                return -ERANGE;

        *ret = total;
        return 0;
}

/* Days are the largest unit written: "365d" reads better than weeks and months of 30.44 days,
 * and every component is a whole number, so parse_timespan() reads it back exactly. */
char *format_timespan(char *buf, size_t size, usec_t span) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } parts[] = {
                { "d",   USEC_PER_DAY },
                { "h",   USEC_PER_HOUR },
                { "min", USEC_PER_MINUTE },
                { "s",   USEC_PER_SEC },
                { "ms",  USEC_PER_MSEC },
                { "us",  1 },
        };
        size_t o = 0;

        if (size == 0)
                return buf;
        buf[0] = 0;

        if (span == USEC_INFINITY) {
                snprintf(buf, size, "infinity");
                return buf;
        }
        if (span == 0) {
                snprintf(buf, size, "0");
                return buf;
        }

        for (size_t i = 0; i < ELEMENTSOF(parts) && span > 0; i++) {
                usec_t n = span / parts[i].usec;
                int k;

                if (n == 0)
                        continue;
                span -= n * parts[i].usec;

                k = snprintf(buf + o, size - o, "%s%llu%s", o > 0 ? " " : "",
                             (unsigned long long) n, parts[i].suffix);
                if (k < 0 || (size_t) k >= size - o) {
                        buf[o] = 0; /* only whole components, never "1h 3" */
                        break;
                }
                o += (size_t) k;
        }
        return buf;
}
