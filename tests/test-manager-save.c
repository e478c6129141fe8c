/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"
#include "tests.h"

/* How long the state file waits after a save: the interval, or ten times the last save's cost
 * (a million bans take most of a second to write, during which nothing is banned). */
TEST(save_interval) {
        ASSERT_UINT_EQ(manager_save_interval(0), MANAGER_SAVE_INTERVAL_USEC);
        ASSERT_UINT_EQ(manager_save_interval(50 * USEC_PER_MSEC), MANAGER_SAVE_INTERVAL_USEC);
        ASSERT_UINT_EQ(manager_save_interval(100 * USEC_PER_MSEC), MANAGER_SAVE_INTERVAL_USEC);
        ASSERT_UINT_EQ(manager_save_interval(600 * USEC_PER_MSEC), 6 * USEC_PER_SEC);
        ASSERT_UINT_EQ(manager_save_interval(2 * USEC_PER_SEC), 20 * USEC_PER_SEC);
        /* Saturates instead of wrapping around to a short wait. */
        ASSERT_UINT_EQ(manager_save_interval(USEC_INFINITY / 2), USEC_INFINITY);
        ASSERT_UINT_EQ(manager_save_interval(USEC_INFINITY), USEC_INFINITY);
}

int main(void) {
        RUN(save_interval);
        return 0;
}
