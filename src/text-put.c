/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "text-put.h"

/* Digits come out least significant first, so they are reversed through tmp. */
static char *put_digits(char *p, uint64_t v, unsigned base) {
        static const char digits[] = "0123456789abcdef";
        char tmp[TEXT_U64_DECIMAL_MAX];
        unsigned n = 0;

        do {
                tmp[n++] = digits[v % base];
                v /= base;
        } while (v > 0);
        while (n > 0)
                *p++ = tmp[--n];
        return p;
}

char *text_put_u64(char *p, uint64_t v) {
        return put_digits(p, v, 10);
}

char *text_put_hex(char *p, uint64_t v) {
        return put_digits(p, v, 16);
}
