/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/socket.h>

#include "ban-history.h"
#include "macro.h"
#include "test-addresses.h"
#include "tests.h"

#define A(n) (&(Address[]) { addr4(n) }[0])

TEST(count_within_window) {
        BanHistory *h = NULL;
        Address a = addr4(1), b = addr4(2);

        ASSERT_OK(ban_history_new(&h));
        ASSERT_UINT_EQ(ban_history_count(h, &a, 100, 10), 0);
        ASSERT_OK(ban_history_put(h, &a, 2, 100));
        ASSERT_EQ(ban_history_put(h, &b, 0, 100), -EINVAL);
        ASSERT_UINT_EQ(ban_history_count(h, &a, 110, 10), 2);  /* exactly BanHistory old: counts */
        ASSERT_UINT_EQ(ban_history_count(h, &a, 111, 10), 0);  /* older: forgotten */
        ASSERT_UINT_EQ(ban_history_count(h, &a, 50, 10), 2);   /* the clock went back: still recent */
        ASSERT_UINT_EQ(ban_history_count(h, &b, 100, 10), 0);
        ASSERT_OK(ban_history_put(h, &a, 3, 200));
        ASSERT_UINT_EQ(ban_history_size(h), 1);
        ASSERT_UINT_EQ(ban_history_get(h, &a)->count, 3);
        ban_history_remove(h, &a);
        ASSERT_TRUE(!ban_history_get(h, &a));
        ban_history_free(h);
}

/* Full: the records banned longest ago make room, the recent ones stay. */
TEST(evicts_oldest) {
        BanHistory *h = NULL;
        size_t iter = 0;
        const BanRecord *r;

        ASSERT_OK(ban_history_new(&h));
        ban_history_set_limit(h, 64);
        for (uint32_t i = 0; i < 64; i++)
                ASSERT_OK(ban_history_put(h, A(1000 + i), 1, 1000 - i)); /* 1000+63 is the oldest */
        ASSERT_UINT_EQ(ban_history_size(h), 64);
        ASSERT_OK(ban_history_put(h, A(1000), 5, 2000)); /* an update needs no room */
        ASSERT_UINT_EQ(ban_history_size(h), 64);
        ASSERT_OK(ban_history_put(h, A(5), 1, 3000));
        ASSERT_TRUE(ban_history_size(h) <= 64);
        ASSERT_TRUE(ban_history_get(h, A(5)));
        ASSERT_TRUE(ban_history_get(h, A(1000)));
        ASSERT_TRUE(!ban_history_get(h, A(1063)));
        while (ban_history_next(h, &iter, &r))
                ASSERT_TRUE(r->last_usec >= 1000 - 59 || r->count == 5);
        for (uint32_t i = 0; i < 100000; i++) /* a flood stays within the limit */
                ASSERT_OK(ban_history_put(h, A(100000 + i), 1, 5000 + i));
        ASSERT_TRUE(ban_history_size(h) <= 64);
        ASSERT_TRUE(ban_history_get(h, A(100000 + 99999)));
        ban_history_free(h);
}

TEST(length) {
        /* BanTime=2s, BanTimeFactor=3: 2s, 6s, 18s, then the cap. */
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, 0), 2 * USEC_PER_SEC);
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, 1), 6 * USEC_PER_SEC);
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, 2), 18 * USEC_PER_SEC);
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, 3), 54 * USEC_PER_SEC);
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, 4), USEC_PER_MINUTE);
        ASSERT_UINT_EQ(ban_length(2 * USEC_PER_SEC, 3, USEC_PER_MINUTE, UINT32_MAX), USEC_PER_MINUTE);
        /* The defaults: 1h, 4h, 16h, 64h, then a week. */
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 4, 7 * USEC_PER_DAY, 3), 64 * USEC_PER_HOUR);
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 4, 7 * USEC_PER_DAY, 4), 7 * USEC_PER_DAY);
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 1.5, USEC_INFINITY, 1), 90 * USEC_PER_MINUTE);
        /* BanTimeMax=infinity: grows without a cap, saturating at infinity. */
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 100, USEC_INFINITY, 1000), USEC_INFINITY);
        /* Factor 1: no escalation; a cap below BanTime does not shorten the first ban. */
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 1, 7 * USEC_PER_DAY, 50), USEC_PER_HOUR);
        ASSERT_UINT_EQ(ban_length(USEC_PER_HOUR, 4, USEC_PER_MINUTE, 2), USEC_PER_HOUR);
        ASSERT_UINT_EQ(ban_length(USEC_INFINITY, 4, USEC_PER_MINUTE, 0), USEC_INFINITY);
}

int main(void) {
        RUN(count_within_window);
        RUN(evicts_oldest);
        RUN(length);
        return 0;
}
