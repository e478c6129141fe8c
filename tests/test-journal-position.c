/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal-position.h"
#include "macro.h"
#include "tests.h"

#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"

static const char bid_a[] = "0123456789abcdef0123456789abcdef";

static void assert_no_cursor(const char *cursor, usec_t realtime) {
        char buf[JOURNAL_CURSOR_MAX];
        JournalPosition p;

        ASSERT_OK(journal_position_from_cursor(cursor, realtime, &p));
        if (journal_position_has_cursor(&p))
                fprintf(stderr, "accepted: \"%s\"\n", cursor);
        ASSERT_FALSE(journal_position_has_cursor(&p));
        ASSERT_UINT_EQ(p.seqnum_id, JOURNAL_ID_NONE);
        ASSERT_UINT_EQ(p.boot_id, JOURNAL_ID_NONE);
        ASSERT_UINT_EQ(p.realtime, realtime);
        ASSERT_EQ(journal_position_to_cursor(&p, buf), -ENODATA);
        ASSERT_EQ(journal_position_parse(cursor, realtime, &p), -EINVAL);
}

static void assert_round_trip(const char *cursor, usec_t realtime) {
        char buf[JOURNAL_CURSOR_MAX];
        JournalPosition p;

        ASSERT_OK(journal_position_from_cursor(cursor, realtime, &p));
        ASSERT_TRUE(journal_position_has_cursor(&p));
        ASSERT_UINT_EQ(p.realtime, realtime);
        ASSERT_EQ(journal_position_to_cursor(&p, buf), (int) strlen(cursor));
        ASSERT_STREQ(buf, cursor);
}

TEST(synthetic) {
        JournalPosition p, q;

        assert_round_trip("s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=60a24181e4000;x=b23269e781e12a2a",
                          UINT64_C(1700000000000000));
        assert_round_trip("s=f0079243600e4b54bad236821d43e17d;i=0;b=0123456789abcdef0123456789abcdef;m=0;t=0;x=0", 0);
        assert_round_trip("s=ffffffffffffffffffffffffffffffff;i=ffffffffffffffff;b=00000000000000000000000000000000;"
                          "m=ffffffffffffffff;t=ffffffffffffffff;x=ffffffffffffffff", UINT64_MAX);

        /* The same ids intern to the same indexes; different ones do not. */
        ASSERT_OK(journal_position_from_cursor("s=f0079243600e4b54bad236821d43e17d;i=2;b=0123456789abcdef0123456789abcdef;m=5;t=7;x=9", 7, &p));
        ASSERT_OK(journal_position_from_cursor("s=f0079243600e4b54bad236821d43e17d;i=3;b=0123456789abcdef0123456789abcdee;m=5;t=8;x=9", 8, &q));
        ASSERT_EQ(p.seqnum_id, q.seqnum_id);
        ASSERT_NE(p.boot_id, q.boot_id);
        ASSERT_UINT_EQ(p.seqnum, 2);
        ASSERT_UINT_EQ(p.monotonic, 5);
        ASSERT_UINT_EQ(p.xor_hash, 9);
}

TEST(deviations) {
        static const char *const bad[] = {
                "",
                "s=",
                /* a field missing */
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10",
                "i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=1;m=1;t=10;x=1",
                /* wrong order */
                "s=f0079243600e4b54bad236821d43e17d;b=0123456789abcdef0123456789abcdef;i=1;m=1;t=10;x=1",
                "b=0123456789abcdef0123456789abcdef;s=f0079243600e4b54bad236821d43e17d;i=1;m=1;t=10;x=1",
                /* uppercase */
                "s=F0079243600E4B54BAD236821D43E17D;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=A;t=10;x=1",
                "S=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                /* extra fields, trailing bytes */
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1;y=2",
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1;",
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1 ",
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1\n",
                " s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                /* ids of the wrong length */
                "s=f0079243600e4b54bad236821d43e17;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d0;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54-bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                /* numbers printf would not print: empty, leading zero, over 64 bits, signs */
                "s=f0079243600e4b54bad236821d43e17d;i=;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=01;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=00;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=10000000000000000;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=0x1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=-1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                "s=f0079243600e4b54bad236821d43e17d;i=+1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1",
                /* t= is not the entry's realtime (16 here) */
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=11;x=1",
                /* the format of another systemd version */
                "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1;n=2",
        };
        char longer[4096];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_no_cursor(bad[i], 16);

        /* The good one, to show that the table above fails for the reason it names. */
        assert_round_trip("s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1", 16);

        /* Over-long text is refused without being read to its end. */
        memset(longer, 'a', sizeof longer - 1);
        longer[sizeof longer - 1] = 0;
        assert_no_cursor(longer, 16);
        memcpy(longer, "s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=", 86);
        memset(longer + 86, '1', 70);
        longer[156] = 0;
        assert_no_cursor(longer, 16);

        assert_no_cursor(NULL, 16);
}

TEST(table_full) {
        char cursor[JOURNAL_CURSOR_MAX], buf[JOURNAL_CURSOR_MAX];
        JournalPosition first, p;

        journal_position_table_reset();

        /* Two new ids per cursor: fill the table exactly. */
        for (unsigned i = 0; i < JOURNAL_ID_TABLE_MAX / 2; i++) {
                snprintf(cursor, sizeof cursor, "s=%032x;i=%x;b=%016x%016x;m=1;t=5;x=2", i, i, 1u, i);
                ASSERT_OK(journal_position_parse(cursor, 5, &p));
                ASSERT_UINT_EQ(p.seqnum_id, 2 * i);
                ASSERT_UINT_EQ(p.boot_id, 2 * i + 1);
                ASSERT_EQ(journal_position_to_cursor(&p, buf), (int) strlen(cursor));
                ASSERT_STREQ(buf, cursor);
                if (i == 0)
                        first = p;
        }

        /* A new id no longer fits: no cursor, never a wrong one. */
        snprintf(cursor, sizeof cursor, "s=%032x;i=1;b=%032x;m=1;t=5;x=2", 0u, 0xfffffu);
        ASSERT_EQ(journal_position_parse(cursor, 5, &p), -ENOSPC);
        ASSERT_OK(journal_position_from_cursor(cursor, 5, &p));
        ASSERT_FALSE(journal_position_has_cursor(&p));
        ASSERT_UINT_EQ(p.realtime, 5);
        ASSERT_EQ(journal_position_to_cursor(&p, buf), -ENODATA);

        /* Known ids still work, in any combination. */
        snprintf(cursor, sizeof cursor, "s=%032x;i=1;b=%016x%016x;m=1;t=5;x=2", 77u, 1u, 3u);
        assert_round_trip(cursor, 5);
        ASSERT_OK(journal_position_to_cursor(&first, buf));
        ASSERT_STREQ(buf, "s=00000000000000000000000000000000;i=0;b=00000000000000010000000000000000;m=1;t=5;x=2");

        /* Positions do not survive a reset. */
        journal_position_table_reset();
        ASSERT_EQ(journal_position_to_cursor(&first, buf), -ENODATA);
        assert_round_trip("s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1", 16);
        journal_position_table_reset();
}

/* Feeds journal export format to systemd-journal-remote, returns 0 or -errno. */
static int make_journal(const char *path, unsigned n_entries) {
        char cmd[4096];
        FILE *f;
        int r;

        if ((size_t) snprintf(cmd, sizeof cmd, "%s --output=%s - 2>/dev/null", JOURNAL_REMOTE, path) >= sizeof cmd)
                return -ENAMETOOLONG;
        f = popen(cmd, "w");
        if (!f)
                return -errno;
        for (unsigned i = 0; i < n_entries; i++)
                /* Two boots; monotonic and realtime with many hex digits and with few. */
                fprintf(f,
                        "__REALTIME_TIMESTAMP=%" PRIu64 "\n"
                        "__MONOTONIC_TIMESTAMP=%" PRIu64 "\n"
                        "_BOOT_ID=%s\n"
                        "MESSAGE=vchkpw-pop3: password fail (pass: 'x') user@example.com:192.0.2.%u\n"
                        "\n",
                        UINT64_C(1700000000000000) + i * UINT64_C(1000003),
                        i < n_entries / 2 ? (uint64_t) i + 1 : UINT64_C(0xfedcba987654) + i,
                        i < n_entries / 2 ? bid_a : "fedcba9876543210fedcba9876543210",
                        i % 256);
        r = pclose(f);
        if (r != 0)
                return -EIO;
        return 0;
}

TEST(real_journal) {
        char dir[] = "/tmp/test-journal-position-XXXXXX";
        char path[sizeof dir + 16];
        sd_journal *j = NULL;
        unsigned n = 0, n_boot_a = 0;
        uint16_t boot_first = JOURNAL_ID_NONE;
        int r;

        if (access(JOURNAL_REMOTE, X_OK) < 0) {
                skip_part("the real journal test: no " JOURNAL_REMOTE);
                return;
        }

        journal_position_table_reset();
        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/x.journal", dir);
        ASSERT_OK(make_journal(path, 200));

        ASSERT_OK(sd_journal_open_files(&j, (const char *[]) { path, NULL }, 0));
        SD_JOURNAL_FOREACH(j) {
                _cleanup_free_ char *cursor = NULL;
                char buf[JOURNAL_CURSOR_MAX];
                JournalPosition p;
                uint64_t realtime;

                ASSERT_OK(sd_journal_get_cursor(j, &cursor));
                ASSERT_OK(sd_journal_get_realtime_usec(j, &realtime));
                ASSERT_LT(strlen(cursor), JOURNAL_CURSOR_MAX);

                ASSERT_OK(journal_position_from_cursor(cursor, realtime, &p));
                ASSERT_TRUE(journal_position_has_cursor(&p));
                ASSERT_UINT_EQ(p.realtime, realtime);
                ASSERT_EQ(journal_position_to_cursor(&p, buf), (int) strlen(cursor));
                ASSERT_STREQ(buf, cursor);

                r = sd_journal_test_cursor(j, buf);
                ASSERT_TRUE(r > 0);

                if (boot_first == JOURNAL_ID_NONE)
                        boot_first = p.boot_id;
                if (p.boot_id == boot_first)
                        n_boot_a++;
                n++;
        }
        sd_journal_close(j);

        ASSERT_EQ(n, 200);
        ASSERT_EQ(n_boot_a, 100);
        fprintf(stderr, "round trip of %u real cursors\n", n);

        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
        journal_position_table_reset();
}

int main(void) {
        RUN(synthetic);
        RUN(deviations);
        RUN(table_full);
        RUN(real_journal);
        journal_position_table_reset();
        return 0;
}
