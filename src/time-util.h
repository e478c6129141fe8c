/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <stddef.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY (24ULL * USEC_PER_HOUR)

/* CLOCK_REALTIME / CLOCK_MONOTONIC in microseconds. */
usec_t now_realtime(void);
usec_t now_monotonic(void);

/* Parses a time span as systemd.time(7) writes it: "90s", "10min", "1h 30min", "2d", "1.5h",
 * "500ms", a bare number means seconds; units us, ms, s/sec/second(s), m/min/minute(s),
 * h/hr/hour(s), d/day(s), w/week(s), M/month(s) (30.44d), y/year(s) (365.25d).
 * "infinity" is not accepted. -EINVAL on syntax errors, -ERANGE on overflow. */
int parse_timespan(const char *s, usec_t *ret);

/* a + b, saturating at USEC_INFINITY: infinity plus anything stays infinity. */
static inline usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

/* Formats a span the way parse_timespan() reads it back, e.g. "1h 30min", "10min", "250ms",
 * "0"; USEC_INFINITY as "infinity". Always NUL-terminates buf; returns buf. */
#define TIMESPAN_MAX 64
char *format_timespan(char *buf, size_t size, usec_t span);
