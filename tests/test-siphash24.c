/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "siphash24.h"
#include "tests.h"

TEST(vectors) {
        /* Key 00..0f, message 00..(n-1): values from the SipHash paper and its reference code. */
        uint8_t key[16], msg[16];
        for (unsigned i = 0; i < 16; i++)
                key[i] = msg[i] = (uint8_t) i;

        ASSERT_UINT_EQ(siphash24(msg, 0, key), UINT64_C(0x726fdb47dd0e0e31));
        ASSERT_UINT_EQ(siphash24(msg, 1, key), UINT64_C(0x74f839c593dc67fd));
        ASSERT_UINT_EQ(siphash24(msg, 8, key), UINT64_C(0x93f5f5799a932462));
        ASSERT_UINT_EQ(siphash24(msg, 15, key), UINT64_C(0xa129ca6149be45e5));
}

int main(void) {
        RUN(vectors);
        return 0;
}
