/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <malloc.h>
#include <sys/socket.h>

#include "failure-table.h"
#include "macro.h"
#include "test-addresses.h"
#include "tests.h"

#define FIND_TIME (600 * USEC_PER_SEC)

/* A position with a cursor; seqnum makes it a distinct journal entry. */
static JournalPosition pos(usec_t realtime, uint64_t seqnum) {
        return (JournalPosition) {
                .realtime = realtime,
                .seqnum = seqnum,
                .monotonic = realtime / 2,
                .xor_hash = seqnum * 31,
                .seqnum_id = 0,
                .boot_id = 0,
        };
}

static JournalPosition sec(uint64_t s) {
        static uint64_t seq = 0;
        return pos(s * USEC_PER_SEC, ++seq);
}

static FailureTable *table(unsigned max_retry, size_t max_tracked) {
        FailureTable *t = NULL;
        ASSERT_OK(failure_table_new(max_retry, FIND_TIME, max_tracked, &t));
        return t;
}

static void assert_window(FailureTable *t, const Address *a, const uint64_t *secs, size_t n) {
        FailureWindow w;

        ASSERT_TRUE(failure_table_get(t, a, &w));
        ASSERT_TRUE(address_equal(&w.address, a));
        ASSERT_UINT_EQ(w.n_failures, n);
        for (size_t i = 0; i < n; i++)
                ASSERT_UINT_EQ(w.failures[i].realtime, secs[i] * USEC_PER_SEC);
}

TEST(new_invalid) {
        FailureTable *t = NULL;

        ASSERT_EQ(failure_table_new(0, FIND_TIME, 10, &t), -EINVAL);
        ASSERT_EQ(failure_table_new(256, FIND_TIME, 10, &t), -EINVAL);
        ASSERT_EQ(failure_table_new(3, 0, 10, &t), -EINVAL);
        ASSERT_EQ(failure_table_new(3, FIND_TIME, 0, &t), -EINVAL);
        ASSERT_TRUE(t == NULL);

        t = table(5, 10);
        ASSERT_UINT_EQ(failure_table_max_retry(t), 5);
        ASSERT_UINT_EQ(failure_table_find_time(t), FIND_TIME);
        ASSERT_UINT_EQ(failure_table_size(t), 0);
        Address bad = { .family = AF_UNSPEC };
        JournalPosition p = sec(1);
        ASSERT_EQ(failure_table_record(t, &bad, &p), -EINVAL);
        failure_table_free(t);
}

TEST(window) {
        FailureTable *t = table(3, 100);
        Address a = addr4(0xc0000207), b = addr6(7);
        JournalPosition p;

        p = sec(1000);
        ASSERT_EQ(failure_table_record(t, &a, &p), 1);
        p = sec(1100);
        ASSERT_EQ(failure_table_record(t, &a, &p), 2);
        /* Exactly find_time after the first: the first no longer counts. */
        p = sec(1600);
        ASSERT_EQ(failure_table_record(t, &a, &p), 2);
        assert_window(t, &a, (const uint64_t[]) { 1100, 1600 }, 2);
        /* One microsecond less than find_time after 1100: it still counts. */
        p = pos(1700 * USEC_PER_SEC - 1, 99);
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);

        /* Other addresses are independent, IPv6 too. */
        p = sec(1700);
        ASSERT_EQ(failure_table_record(t, &b, &p), 1);
        ASSERT_UINT_EQ(failure_table_size(t), 2);

        /* A long gap starts over. */
        p = sec(5000);
        ASSERT_EQ(failure_table_record(t, &b, &p), 1);
        assert_window(t, &b, (const uint64_t[]) { 5000 }, 1);
        failure_table_free(t);
}

TEST(max_retry_and_forget) {
        FailureTable *t = table(3, 100);
        Address a = addr4(1), other = addr4(2);
        JournalPosition p;

        for (int i = 1; i <= 3; i++) {
                p = sec(100 + i);
                ASSERT_EQ(failure_table_record(t, &a, &p), i);
        }
        /* Without a forget it stays at max_retry and keeps the newest. */
        p = sec(110);
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);
        assert_window(t, &a, (const uint64_t[]) { 102, 103, 110 }, 3);

        /* The same journal entry recorded again counts once. */
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);
        assert_window(t, &a, (const uint64_t[]) { 102, 103, 110 }, 3);

        failure_table_forget(t, &a);
        ASSERT_FALSE(failure_table_get(t, &a, NULL));
        failure_table_forget(t, &other);
        ASSERT_UINT_EQ(failure_table_size(t), 0);
        p = sec(111);
        ASSERT_EQ(failure_table_record(t, &a, &p), 1);

        /* max_retry 1: every failure bans. */
        FailureTable *one = table(1, 10);
        p = sec(1);
        ASSERT_EQ(failure_table_record(one, &a, &p), 1);
        p = sec(2);
        ASSERT_EQ(failure_table_record(one, &a, &p), 1);
        assert_window(one, &a, (const uint64_t[]) { 2 }, 1);
        failure_table_free(one);
        failure_table_free(t);
}

TEST(restore) {
        FailureTable *t = table(3, 100);
        Address a = addr4(10), b = addr4(11), c = addr4(12);
        JournalPosition v[6] = { sec(100), sec(800), sec(900), sec(1000), sec(1100), sec(1300) };

        ASSERT_EQ(failure_table_restore(t, &a, v, 0), -EINVAL);

        /* 100 is out of the window of 1300 (find_time 600), and only 3 of the rest fit. */
        ASSERT_EQ(failure_table_restore(t, &a, v, 6), 3);
        assert_window(t, &a, (const uint64_t[]) { 1000, 1100, 1300 }, 3);

        /* Restoring the same window again changes nothing. */
        ASSERT_EQ(failure_table_restore(t, &a, v + 3, 3), 3);
        assert_window(t, &a, (const uint64_t[]) { 1000, 1100, 1300 }, 3);

        /* Unsorted input is sorted; the newest always stays. */
        JournalPosition u[3] = { sec(1350), sec(750), sec(1349) };
        ASSERT_EQ(failure_table_restore(t, &b, u, 3), 2);
        assert_window(t, &b, (const uint64_t[]) { 1349, 1350 }, 2);

        /* Restore merges with what is already tracked, then record continues from it. */
        JournalPosition one = sec(1400), older = sec(1390);
        ASSERT_EQ(failure_table_record(t, &c, &one), 1);
        ASSERT_EQ(failure_table_restore(t, &c, &older, 1), 2);
        assert_window(t, &c, (const uint64_t[]) { 1390, 1400 }, 2);
        JournalPosition next = sec(1410);
        ASSERT_EQ(failure_table_record(t, &c, &next), 3);

        /* A reload into a table with a smaller MaxRetry keeps the newest. */
        FailureTable *t2 = table(2, 100);
        FailureWindow w;
        size_t iter = 0;
        while (failure_table_next(t, &iter, &w))
                ASSERT_OK(failure_table_restore(t2, &w.address, w.failures, w.n_failures));
        ASSERT_UINT_EQ(failure_table_size(t2), 3);
        assert_window(t2, &a, (const uint64_t[]) { 1100, 1300 }, 2);
        assert_window(t2, &b, (const uint64_t[]) { 1349, 1350 }, 2);
        assert_window(t2, &c, (const uint64_t[]) { 1400, 1410 }, 2);
        failure_table_free(t2);
        failure_table_free(t);
}

TEST(iteration) {
        enum { N = 5000 };
        FailureTable *t = table(3, N);
        static bool seen[N];
        FailureWindow w;
        size_t iter = 0, n = 0;

        for (uint32_t i = 0; i < N; i++) {
                JournalPosition p = sec(1000 + i / 100);
                ASSERT_EQ(failure_table_record(t, (Address[]) { addr4(i) }, &p), 1);
        }
        /* Forgetting moves entries around inside the table; iteration must not notice. */
        for (uint32_t i = 0; i < N; i += 3)
                failure_table_forget(t, (Address[]) { addr4(i) });
        /* Re-recording moves an address to the end of the order. */
        JournalPosition late = sec(1060);
        ASSERT_EQ(failure_table_record(t, (Address[]) { addr4(1) }, &late), 2);

        while (failure_table_next(t, &iter, &w)) {
                uint32_t i = (uint32_t) w.address.bytes[2] << 8 | w.address.bytes[3];
                ASSERT_LT(i, N);
                ASSERT_NE(i % 3, 0);
                ASSERT_FALSE(seen[i]);
                seen[i] = true;
                n++;
                /* Least recently recorded first. */
                if (n == 1)
                        ASSERT_UINT_EQ(i, 2);
                if (n == failure_table_size(t))
                        ASSERT_UINT_EQ(i, 1);
        }
        ASSERT_UINT_EQ(n, failure_table_size(t));
        ASSERT_UINT_EQ(n, N - (N + 2) / 3);
        ASSERT_FALSE(failure_table_next(t, &iter, &w));

        FailureTable *empty = table(3, 1);
        iter = 0;
        ASSERT_FALSE(failure_table_next(empty, &iter, &w));
        failure_table_free(empty);
        failure_table_free(t);
}

TEST(eviction) {
        FailureTable *t = table(3, 3);
        Address a = addr4(1), b = addr4(2), c = addr4(3), d = addr4(4), e = addr4(5);
        JournalPosition p;

        p = sec(0);
        ASSERT_EQ(failure_table_record(t, &a, &p), 1);
        p = sec(100);
        ASSERT_EQ(failure_table_record(t, &b, &p), 1);
        p = sec(200);
        ASSERT_EQ(failure_table_record(t, &c, &p), 1);
        p = sec(300);
        ASSERT_EQ(failure_table_record(t, &a, &p), 2); /* order now b, c, a */

        /* b's window (100) has expired at 700: it goes first and is not counted. */
        p = sec(700);
        ASSERT_EQ(failure_table_record(t, &d, &p), 1);
        ASSERT_FALSE(failure_table_get(t, &b, NULL));
        ASSERT_UINT_EQ(failure_table_evictions(t), 0);
        ASSERT_UINT_EQ(failure_table_size(t), 3);

        /* Nothing has expired at 710: the least recently failing (c) goes, counted. */
        p = sec(710);
        ASSERT_EQ(failure_table_record(t, &e, &p), 1);
        ASSERT_FALSE(failure_table_get(t, &c, NULL));
        ASSERT_TRUE(failure_table_get(t, &a, NULL));
        ASSERT_TRUE(failure_table_get(t, &d, NULL));
        ASSERT_UINT_EQ(failure_table_evictions(t), 1);
        ASSERT_UINT_EQ(failure_table_size(t), 3);

        /* A flood of new addresses never exceeds the bound and keeps the newest. */
        for (uint32_t i = 100; i < 1100; i++) {
                p = sec(720);
                ASSERT_EQ(failure_table_record(t, (Address[]) { addr4(i) }, &p), 1);
                ASSERT_LE(failure_table_size(t), 3);
        }
        ASSERT_TRUE(failure_table_get(t, (Address[]) { addr4(1099) }, NULL));
        ASSERT_FALSE(failure_table_get(t, &a, NULL));
        ASSERT_UINT_EQ(failure_table_evictions(t), 1001);

        /* A restore into a full table also prefers an expired window over an open one. */
        FailureTable *r = table(3, 2);
        JournalPosition old = sec(0), recent = sec(500), restored = sec(601);
        ASSERT_EQ(failure_table_record(r, &a, &old), 1);
        ASSERT_EQ(failure_table_record(r, &b, &recent), 1);
        ASSERT_EQ(failure_table_restore(r, &c, &restored, 1), 1);
        ASSERT_FALSE(failure_table_get(r, &a, NULL));
        ASSERT_UINT_EQ(failure_table_evictions(r), 0);
        restored = sec(602);
        ASSERT_EQ(failure_table_restore(r, &d, &restored, 1), 1);
        ASSERT_FALSE(failure_table_get(r, &b, NULL));
        ASSERT_UINT_EQ(failure_table_evictions(r), 1);
        failure_table_free(r);

        /* Expired windows are dropped as time moves on, even without pressure. */
        FailureTable *big = table(3, 1000);
        for (uint32_t i = 0; i < 10; i++) {
                p = sec(i);
                ASSERT_OK(failure_table_record(big, (Address[]) { addr4(i) }, &p));
        }
        for (uint32_t i = 0; i < 5; i++) {
                p = sec(10000);
                ASSERT_OK(failure_table_record(big, &a, &p));
        }
        ASSERT_UINT_EQ(failure_table_size(big), 1);
        ASSERT_UINT_EQ(failure_table_evictions(big), 0);
        failure_table_free(big);
        failure_table_free(t);
}

TEST(time_backwards) {
        FailureTable *t = table(3, 100);
        Address a = addr4(1), b = addr4(2), x = addr4(3);
        JournalPosition p;

        p = sec(1000);
        ASSERT_EQ(failure_table_record(t, &a, &p), 1);
        p = sec(1100);
        ASSERT_EQ(failure_table_record(t, &a, &p), 2);
        /* Older but within find_time of the newest: sorted in. */
        p = sec(900);
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);
        assert_window(t, &a, (const uint64_t[]) { 900, 1000, 1100 }, 3);
        /* Older than all of a full window: ignored. */
        p = sec(800);
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);
        assert_window(t, &a, (const uint64_t[]) { 900, 1000, 1100 }, 3);
        /* Newer than some: the oldest goes. */
        p = sec(950);
        ASSERT_EQ(failure_table_record(t, &a, &p), 3);
        assert_window(t, &a, (const uint64_t[]) { 950, 1000, 1100 }, 3);

        /* find_time or more before the address's newest failure: the clock was ahead (or is now
         * behind), and the latest arrival says what "now" is: the newer failures go. */
        p = sec(1200);
        ASSERT_EQ(failure_table_record(t, &b, &p), 1);
        p = sec(600);
        ASSERT_EQ(failure_table_record(t, &b, &p), 1);
        assert_window(t, &b, (const uint64_t[]) { 600 }, 1);
        /* So failures stamped far in the future never keep later ones from counting. */
        p = sec(4000000000ULL);
        ASSERT_EQ(failure_table_record(t, &x, &p), 1);
        p = sec(4000000001ULL);
        ASSERT_EQ(failure_table_record(t, &x, &p), 2);
        for (unsigned i = 0; i < 3; i++) {
                p = sec(2000 + i);
                ASSERT_EQ(failure_table_record(t, &x, &p), (int) i + 1);
        }
        assert_window(t, &x, (const uint64_t[]) { 2000, 2001, 2002 }, 3);
        failure_table_free(t);

        /* One entry from the far future costs at most the two oldest windows (dropped as
         * expired when it is recorded), but does not make the other open windows look expired
         * once the journal is back at the present. */
        Address f1 = addr4(10), f2 = addr4(11);
        t = table(3, 100);
        p = sec(1000);
        ASSERT_EQ(failure_table_record(t, &f1, &p), 1);
        ASSERT_EQ(failure_table_record(t, &f2, (JournalPosition[]) { sec(1000) }), 1);
        ASSERT_EQ(failure_table_record(t, &a, (JournalPosition[]) { sec(1100) }), 1);
        ASSERT_EQ(failure_table_record(t, &b, (JournalPosition[]) { sec(1200) }), 1);
        ASSERT_EQ(failure_table_record(t, &x, (JournalPosition[]) { sec(2000000000) }), 1);
        ASSERT_FALSE(failure_table_get(t, &f1, NULL));
        ASSERT_FALSE(failure_table_get(t, &f2, NULL));
        ASSERT_EQ(failure_table_record(t, &b, (JournalPosition[]) { sec(1201) }), 2);
        ASSERT_EQ(failure_table_record(t, &b, (JournalPosition[]) { sec(1202) }), 3);
        ASSERT_EQ(failure_table_record(t, &a, (JournalPosition[]) { sec(1203) }), 2);
        ASSERT_UINT_EQ(failure_table_size(t), 3);
        ASSERT_UINT_EQ(failure_table_evictions(t), 0);
        failure_table_free(t);
}

TEST(random_order) {
        /* Timestamps jumping back and forth around a point: the window stays sorted, within
         * find_time of its newest, and never above max_retry. */
        FailureTable *t = table(4, 8);
        uint64_t s = 12345;

        for (unsigned i = 0; i < 200000; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                usec_t when = 100000 * USEC_PER_SEC + (s >> 33) % (3 * FIND_TIME) - (s >> 20) % (2 * FIND_TIME);
                Address a = addr4((s >> 40) % 12);
                JournalPosition p = pos(when, i);
                FailureWindow w;

                int r = failure_table_record(t, &a, &p);
                ASSERT_GE(r, 1);
                ASSERT_LE(r, 4);
                ASSERT_TRUE(failure_table_get(t, &a, &w));
                ASSERT_UINT_EQ(w.n_failures, r);
                for (size_t k = 1; k < w.n_failures; k++)
                        ASSERT_LE(w.failures[k - 1].realtime, w.failures[k].realtime);
                ASSERT_LT(w.failures[w.n_failures - 1].realtime - w.failures[0].realtime, FIND_TIME);
                ASSERT_LE(failure_table_size(t), 8);
                if (r == 4 && i % 2)
                        failure_table_forget(t, &a);
        }
        failure_table_free(t);
}

static size_t heap_in_use(void) {
        struct mallinfo2 mi = mallinfo2();
        return mi.uordblks + mi.hblkhd;
}

TEST(memory) {
        enum { N = 1000000 };
        FailureTable *t;
        size_t before, after, usage;

        before = heap_in_use();
        t = table(3, N);
        for (uint32_t i = 0; i < N; i++) {
                JournalPosition p = pos(1000 * USEC_PER_SEC + i, i);
                Address a = i % 2 ? addr4(0x0a000000 + i) : addr6(i);
                ASSERT_EQ(failure_table_record(t, &a, &p), 1);
        }
        after = heap_in_use();
        usage = failure_table_memory_usage(t);
        ASSERT_UINT_EQ(failure_table_size(t), N);
        ASSERT_UINT_EQ(failure_table_evictions(t), 0);

        fprintf(stderr, "tracked %d addresses: %zu bytes/address by the table's accounting, ", N, usage / N);
        /* Under ASan or valgrind malloc is replaced and mallinfo2() sees nothing. */
        if (after > before) {
                fprintf(stderr, "%zu bytes/address by mallinfo2()\n", (after - before) / N);
                ASSERT_LE((after - before) / N, 256);
        } else
                fprintf(stderr, "malloc statistics unavailable\n");
        ASSERT_LE(usage / N, 256);

        /* Lookups still find every one of them. */
        for (uint32_t i = 0; i < N; i += 997) {
                Address a = i % 2 ? addr4(0x0a000000 + i) : addr6(i);
                FailureWindow w;
                ASSERT_TRUE(failure_table_get(t, &a, &w));
                ASSERT_UINT_EQ(w.failures[0].seqnum, i);
        }

        /* Memory goes back after the flood. */
        for (uint32_t i = 0; i < N; i++) {
                Address a = i % 2 ? addr4(0x0a000000 + i) : addr6(i);
                failure_table_forget(t, &a);
        }
        ASSERT_UINT_EQ(failure_table_size(t), 0);
        ASSERT_LE(failure_table_memory_usage(t), 256 * 1024);
        failure_table_free(t);
}

int main(void) {
        RUN(new_invalid);
        RUN(window);
        RUN(max_retry_and_forget);
        RUN(restore);
        RUN(iteration);
        RUN(eviction);
        RUN(time_backwards);
        RUN(random_order);
        RUN(memory);
        return 0;
}
