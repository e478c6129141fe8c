/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl-metrics.h"
#include "macro.h"
#include "tests.h"

/* `vpopguardctl metrics` without a daemon: the text for a fixed GetStatus() reply, byte for byte
 * (tests/integration/test-metrics.sh feeds the real daemon's through a real OpenMetrics parser),
 * and the atomic replacement of the output file. */

static char *metrics_of(const char *reply_text) {
        json_auto_t *reply = json_loads(reply_text, 0, NULL);
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        ASSERT_TRUE(reply);
        f = open_memstream(&text, &size);
        ASSERT_TRUE(f);
        ASSERT_EQ(ctl_metrics_write(f, reply), 0);
        ASSERT_EQ(fclose(f), 0);
        return text;
}

TEST(golden) {
        /* Two jails, the second disabled and as an older daemon sends it (no newer counters);
         * the lag and start time with sub-second parts. */
        _cleanup_free_ char *text = metrics_of(
                "{\"version\":\"1\",\"startedUSec\":1700000000123456,\"cursor\":null,\"entriesRead\":40,"
                "\"entriesMatched\":12,\"entriesUnreadable\":3,\"bansActive\":2,"
                "\"lastEntryUSec\":1700000100000001,\"journalLagUSec\":2500000,\"fleetPeers\":1,"
                "\"fleetUntrustedEntries\":2,"
                "\"jails\":[{\"name\":\"vpopmail\",\"enabled\":true,\"maxRetry\":5,\"findTimeUSec\":600000000,"
                "\"banTimeUSec\":3600000000,\"tracked\":4,\"banned\":2,\"failuresTotal\":11,\"bansTotal\":3,"
                "\"suppressedMessages\":7,\"suppressionEvents\":1,\"lastSuppressedUSec\":1,"
                "\"lastSuppressedUnit\":\"x.service\",\"untrustedFailures\":1,\"entriesUnreadable\":3,"
                "\"unbansTotal\":1,\"expiredTotal\":0,\"fleetBansApplied\":4},"
                "{\"name\":\"sshd\",\"enabled\":false,\"maxRetry\":3,\"findTimeUSec\":1,\"banTimeUSec\":1,"
                "\"tracked\":0,\"banned\":0,\"failuresTotal\":0,\"bansTotal\":0}]}");

        ASSERT_STREQ(text,
                "# TYPE vpopguard_start_time_seconds gauge\n"
                "# UNIT vpopguard_start_time_seconds seconds\n"
                "# HELP vpopguard_start_time_seconds When vpopguardd started (the counters count since then), "
                "seconds since the epoch.\n"
                "vpopguard_start_time_seconds 1700000000.123456\n"
                "# TYPE vpopguard_journal_entries_read counter\n"
                "# HELP vpopguard_journal_entries_read Journal entries read: those that some jail's JournalMatch= "
                "selects, and journald's rate-limit notes.\n"
                "vpopguard_journal_entries_read_total 40\n"
                "# TYPE vpopguard_journal_entries_matched counter\n"
                "# HELP vpopguard_journal_entries_matched Journal entries in which some jail's FailRegex= found an "
                "address.\n"
                "vpopguard_journal_entries_matched_total 12\n"
                "# TYPE vpopguard_journal_lag_seconds gauge\n"
                "# UNIT vpopguard_journal_lag_seconds seconds\n"
                "# HELP vpopguard_journal_lag_seconds How far behind the journal vpopguardd is: 0 once it has read "
                "to the end, else the age of the last entry it processed. No sample while unknown.\n"
                "vpopguard_journal_lag_seconds 2.500000\n"
                "# TYPE vpopguard_journal_last_entry_timestamp_seconds gauge\n"
                "# UNIT vpopguard_journal_last_entry_timestamp_seconds seconds\n"
                "# HELP vpopguard_journal_last_entry_timestamp_seconds When the last journal entry that vpopguardd "
                "processed was logged, seconds since the epoch. No sample before the first entry since the start.\n"
                "vpopguard_journal_last_entry_timestamp_seconds 1700000100.000001\n"
                "# TYPE vpopguard_fleet_peers gauge\n"
                "# HELP vpopguard_fleet_peers Fleet peers whose ban events are applied ([Fleet] Peer=).\n"
                "vpopguard_fleet_peers 1\n"
                "# TYPE vpopguard_fleet_untrusted_entries counter\n"
                "# HELP vpopguard_fleet_untrusted_entries Ban events in fleet peers' journal files that their "
                "vpopguardd did not log, not applied.\n"
                "vpopguard_fleet_untrusted_entries_total 2\n"
                "# TYPE vpopguard_failures counter\n"
                "# HELP vpopguard_failures Failures counted towards a ban.\n"
                "vpopguard_failures_total{jail=\"vpopmail\"} 11\n"
                "vpopguard_failures_total{jail=\"sshd\"} 0\n"
                "# TYPE vpopguard_bans counter\n"
                "# HELP vpopguard_bans Bans decided from failures (bans by hand are not counted).\n"
                "vpopguard_bans_total{jail=\"vpopmail\"} 3\n"
                "vpopguard_bans_total{jail=\"sshd\"} 0\n"
                "# TYPE vpopguard_unbans counter\n"
                "# HELP vpopguard_unbans Bans lifted before their time: by hand, or because the address became "
                "ignored or the host's own.\n"
                "vpopguard_unbans_total{jail=\"vpopmail\"} 1\n"
                "# TYPE vpopguard_expired_bans counter\n"
                "# HELP vpopguard_expired_bans Bans that ran out.\n"
                "vpopguard_expired_bans_total{jail=\"vpopmail\"} 0\n"
                "# TYPE vpopguard_active_bans gauge\n"
                "# HELP vpopguard_active_bans Addresses banned now.\n"
                "vpopguard_active_bans{jail=\"vpopmail\"} 2\n"
                "vpopguard_active_bans{jail=\"sshd\"} 0\n"
                "# TYPE vpopguard_tracked_addresses gauge\n"
                "# HELP vpopguard_tracked_addresses Addresses with failures inside the FindTime window.\n"
                "vpopguard_tracked_addresses{jail=\"vpopmail\"} 4\n"
                "vpopguard_tracked_addresses{jail=\"sshd\"} 0\n"
                "# TYPE vpopguard_untrusted_failures counter\n"
                "# HELP vpopguard_untrusted_failures Failure lines from senders that TrustedUID= and TrustedUser= "
                "do not trust, not counted.\n"
                "vpopguard_untrusted_failures_total{jail=\"vpopmail\"} 1\n"
                "# TYPE vpopguard_unreadable_entries counter\n"
                "# HELP vpopguard_unreadable_entries Journal entries without a readable MESSAGE (or _UID), not "
                "judged.\n"
                "vpopguard_unreadable_entries_total{jail=\"vpopmail\"} 3\n"
                "# TYPE vpopguard_journald_suppressed_messages counter\n"
                "# HELP vpopguard_journald_suppressed_messages Messages of the units that log for the jail that "
                "journald's rate limit dropped, never seen.\n"
                "vpopguard_journald_suppressed_messages_total{jail=\"vpopmail\"} 7\n"
                "# TYPE vpopguard_fleet_bans_applied counter\n"
                "# HELP vpopguard_fleet_bans_applied Bans that fleet peers decided, applied here.\n"
                "vpopguard_fleet_bans_applied_total{jail=\"vpopmail\"} 4\n"
                "# EOF\n");
}

/* The lines of text that start with prefix, concatenated. */
static char *lines_starting(const char *text, const char *prefix) {
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        ASSERT_TRUE(f);
        for (const char *l = text; *l; ) {
                const char *end = strchrnul(l, '\n');
                if (strncmp(l, prefix, strlen(prefix)) == 0)
                        fprintf(f, "%.*s\n", (int) (end - l), l);
                l = *end ? end + 1 : end;
        }
        ASSERT_EQ(fclose(f), 0);
        return out;
}

TEST(label_escaping) {
        /* Jail names are checked by the configuration, but the text must stay parseable anyway. */
        _cleanup_free_ char *text = metrics_of("{\"jails\":[{\"name\":\"a\\\\b\\\"c\\nd\",\"banned\":1}]}");
        _cleanup_free_ char *samples = lines_starting(text, "vpopguard_active_bans{");

        ASSERT_STREQ(samples, "vpopguard_active_bans{jail=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(missing_and_bad_fields) {
        /* Nothing the daemon did not send becomes a sample: not a null lag, not a negative or
         * non-integer counter, not a jail without a name; the text still ends in # EOF. */
        _cleanup_free_ char *text = metrics_of(
                "{\"journalLagUSec\":null,\"entriesRead\":-1,\"entriesMatched\":\"7\","
                "\"jails\":[{\"banned\":3},{\"name\":5,\"banned\":4},{\"name\":\"x\",\"banned\":1.5,\"bansTotal\":2}]}");
        _cleanup_free_ char *samples = lines_starting(text, "vpopguard_");

        ASSERT_STREQ(samples, "vpopguard_bans_total{jail=\"x\"} 2\n");
        ASSERT_TRUE(strlen(text) > 6 && streq(text + strlen(text) - 6, "# EOF\n"));

        _cleanup_free_ char *empty = metrics_of("[]");
        _cleanup_free_ char *none = lines_starting(empty, "vpopguard_");
        ASSERT_STREQ(none, "");
}

TEST(write_file) {
        char dir[] = "/tmp/test-ctl-metrics.XXXXXX";
        _cleanup_free_ char *path = NULL, *missing = NULL, *content = NULL;
        struct stat st;
        size_t size = 0;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_TRUE(asprintf(&path, "%s/vpopguard.prom", dir) >= 0);
        ASSERT_EQ(ctl_metrics_write_file(path, "old\n", 4), 0);
        ASSERT_EQ(stat(path, &st), 0);
        ino_t old_inode = st.st_ino;
        /* A reader that has the old file open keeps all of it. */
        FILE *reader = fopen(path, "re");
        ASSERT_TRUE(reader);
        ASSERT_EQ(ctl_metrics_write_file(path, "new text\n", 9), 0);
        ASSERT_EQ(getdelim(&content, &size, 0, reader), 4);
        ASSERT_STREQ(content, "old\n");
        fclose(reader);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_TRUE(st.st_ino != old_inode);

        f = fopen(path, "re");
        ASSERT_TRUE(f);
        ASSERT_EQ(getdelim(&content, &size, 0, f), 9);
        fclose(f);
        ASSERT_STREQ(content, "new text\n");
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0644);

        /* A directory that does not exist: the error, and nothing left behind anywhere. */
        ASSERT_TRUE(asprintf(&missing, "%s/no/such/x.prom", dir) >= 0);
        ASSERT_EQ(ctl_metrics_write_file(missing, "x", 1), -ENOENT);
        ASSERT_EQ(ctl_metrics_write_file(dir, "x", 1), -EISDIR); /* rename() onto a directory */
        ASSERT_EQ(ctl_metrics_write_file("", "x", 1), -EISDIR);

        /* Only the file itself is left: no temporary file. */
        ASSERT_EQ(unlink(path), 0);
        ASSERT_EQ(rmdir(dir), 0);
}

int main(void) {
        RUN(golden);
        RUN(label_escaping);
        RUN(missing_and_bad_fields);
        RUN(write_file);
        return 0;
}
