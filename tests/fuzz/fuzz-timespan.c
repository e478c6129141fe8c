/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The time-span parser on arbitrary text (an embedded NUL ends it). Properties: an accepted
 * span formats (format_timespan()) as text that parses back to the same value, and formatting
 * into any buffer size stays inside the buffer and NUL-terminates. The first eight bytes are
 * also read as a number of microseconds and formatted, so that format_timespan() sees every
 * value, not only those that text reaches easily. */

#include "fuzz.h"
#include "time-util.h"

static void check_round_trip(usec_t v) {
        char text[TIMESPAN_MAX];
        usec_t w;

        format_timespan(text, sizeof text, v);
        ASSERT_LT(strlen(text), (size_t) TIMESPAN_MAX);
        if (v == USEC_INFINITY) {
                ASSERT_STREQ(text, "infinity");
                return;
        }
        if (parse_timespan(text, &w) != 0) {
                fprintf(stderr, "\"%s\" (from %llu) does not parse\n", text, (unsigned long long) v);
                abort();
        }
        ASSERT_UINT_EQ(w, v);
}

/* Formatting into a buffer of n bytes (0 = every size up to the full text): exact-size heap
 * buffers, so the sanitizer sees any write past the end. A cut text holds whole components only
 * ("infinity" is one word and is simply cut, so it is left out of that check). */
static void check_small_buffers(usec_t v, size_t n) {
        char full[TIMESPAN_MAX];
        size_t first, last;

        format_timespan(full, sizeof full, v);
        first = n > 0 ? n : 1;
        last = n > 0 ? n : strlen(full) + 1;
        for (n = first; n <= last; n++) {
                _cleanup_free_ char *buf = malloc(n);

                ASSERT_TRUE(buf);
                format_timespan(buf, n, v);
                ASSERT_LT(strlen(buf), n);
                ASSERT_EQ(strncmp(buf, full, strlen(buf)), 0);
                if (v != USEC_INFINITY)
                        ASSERT_TRUE(buf[0] == 0 || full[strlen(buf)] == 0 || full[strlen(buf)] == ' ');
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        usec_t v;
        int r;

        r = parse_timespan(s, &v);
        ASSERT_TRUE(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r == 0) {
                ASSERT_TRUE(v != USEC_INFINITY);
                check_round_trip(v);
        }

        if (size >= sizeof(uint64_t)) {
                uint64_t raw;

                memcpy(&raw, data, sizeof raw);
                check_round_trip(raw);
                /* The ninth byte picks one buffer size, which keeps the fuzzer fast; the
                 * corpus files of exactly eight bytes check every size. */
                check_small_buffers(raw, size > sizeof raw ? 1 + data[sizeof raw] % TIMESPAN_MAX : 0);
        }
        return 0;
}
