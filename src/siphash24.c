/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SipHash-2-4 (Aumasson and Bernstein), written from the paper. */

#include "siphash24.h"

static uint64_t rotl64(uint64_t x, unsigned b) {
        return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

static void sip_round(uint64_t v[static 4]) {
        v[0] += v[1];
        v[1] = rotl64(v[1], 13) ^ v[0];
        v[0] = rotl64(v[0], 32);
        v[2] += v[3];
        v[3] = rotl64(v[3], 16) ^ v[2];
        v[0] += v[3];
        v[3] = rotl64(v[3], 21) ^ v[0];
        v[2] += v[1];
        v[1] = rotl64(v[1], 17) ^ v[2];
        v[2] = rotl64(v[2], 32);
}

uint64_t siphash24(const void *data, size_t len, const uint8_t key[static 16]) {
        const uint8_t *p = data;
        uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
        uint64_t v[4] = {
                k0 ^ UINT64_C(0x736f6d6570736575),
                k1 ^ UINT64_C(0x646f72616e646f6d),
                k0 ^ UINT64_C(0x6c7967656e657261),
                k1 ^ UINT64_C(0x7465646279746573),
        };
        uint64_t m, last = (uint64_t) len << 56;
        size_t i;

        for (i = 0; i + 8 <= len; i += 8) {
                m = load_le64(p + i);
                v[3] ^= m;
                sip_round(v);
                sip_round(v);
                v[0] ^= m;
        }
        for (size_t j = 0; i + j < len; j++)
                last |= (uint64_t) p[i + j] << (8 * j);

        v[3] ^= last;
        sip_round(v);
        sip_round(v);
        v[0] ^= last;

        v[2] ^= 0xff;
        for (unsigned r = 0; r < 4; r++)
                sip_round(v);
        return v[0] ^ v[1] ^ v[2] ^ v[3];
}
