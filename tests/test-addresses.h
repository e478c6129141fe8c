/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Numbered test addresses: n in the last four bytes of 0.0.0.0/0 or of 2001:db8::/96. */

#include <stdint.h>
#include <sys/socket.h>

#include "address.h"

static inline void put_be32(uint8_t *p, uint32_t n) {
        p[0] = n >> 24;
        p[1] = n >> 16;
        p[2] = n >> 8;
        p[3] = n;
}

static inline Address addr4(uint32_t n) {
        Address a = { .family = AF_INET };
        put_be32(a.bytes, n);
        return a;
}

static inline Address addr6(uint32_t n) {
        Address a = { .family = AF_INET6, .bytes = { 0x20, 0x01, 0x0d, 0xb8 } };
        put_be32(a.bytes + 12, n);
        return a;
}
