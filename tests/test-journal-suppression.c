/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal-suppression.h"
#include "macro.h"
#include "tests.h"

/* An entry as "FIELD=value" strings, NULL-terminated. */
static int get_from_list(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        size_t flen = strlen(field);
        for (const char * const *f = userdata; *f; f++)
                if (strncmp(*f, field, flen) == 0 && (*f)[flen] == '=') {
                        *ret_value = *f + flen + 1;
                        *ret_len = strlen(*f + flen + 1);
                        return 0;
                }
        return -ENOENT;
}

static int get_journal_entry_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        size_t flen = strlen(field), len;
        const void *data;
        int r = sd_journal_get_data(userdata, field, &data, &len);
        if (r < 0)
                return r;
        *ret_value = (const char *) data + flen + 1;
        *ret_len = len - flen - 1;
        return 0;
}

static int parse(const char * const *fields, JournalSuppression *ret) {
        return journal_suppression_parse(get_from_list, (void *) fields, ret);
}

#define ID "MESSAGE_ID=" JOURNAL_SUPPRESSION_MESSAGE_ID

TEST(parse_real_note) {
        /* The fields of a note written by systemd-journald 252, as journalctl -o export showed. */
        const char *note[] = {
                "SYSLOG_FACILITY=3", "SYSLOG_IDENTIFIER=systemd-journald", "_TRANSPORT=driver", "PRIORITY=6",
                "_PID=31", "_UID=0", "_COMM=systemd-journal", ID, "OBJECT_UID=0", "OBJECT_COMM=logger",
                "OBJECT_SYSTEMD_CGROUP=/vg-exp-1.service", "OBJECT_SYSTEMD_UNIT=vg-exp-1.service",
                "MESSAGE=Suppressed 86 messages from vg-exp-1.service", "N_DROPPED=86", "OBJECT_PID=143", NULL,
        };
        JournalSuppression s;

        ASSERT_EQ(parse(note, &s), 1);
        ASSERT_STREQ(s.unit, "vg-exp-1.service");
        ASSERT_UINT_EQ(s.n_dropped, 86);

        /* OBJECT_SYSTEMD_UNIT wins over the text. */
        const char *differ[] = { "_TRANSPORT=driver", ID, "OBJECT_SYSTEMD_UNIT=a.service",
                                 "MESSAGE=Suppressed 5 messages from b.service", "N_DROPPED=5", NULL };
        ASSERT_EQ(parse(differ, &s), 1);
        ASSERT_STREQ(s.unit, "a.service");

        /* Without OBJECT_SYSTEMD_UNIT (or with a bad one), the unit comes from MESSAGE. */
        const char *text_only[] = { "_TRANSPORT=driver", ID, "OBJECT_SYSTEMD_UNIT=bad unit",
                                    "MESSAGE=Suppressed 18446744073709551615 messages from user@1000.service",
                                    "N_DROPPED=18446744073709551615", NULL };
        ASSERT_EQ(parse(text_only, &s), 1);
        ASSERT_STREQ(s.unit, "user@1000.service");
        ASSERT_UINT_EQ(s.n_dropped, UINT64_MAX);
}

TEST(parse_not_a_note) {
        JournalSuppression s = { .unit = "untouched", .n_dropped = 7 };

        /* A local user's sd_journal_send() cannot set _TRANSPORT=driver. */
        const char *forged[] = { "_TRANSPORT=journal", ID, "N_DROPPED=99", "OBJECT_SYSTEMD_UNIT=x.service",
                                 "MESSAGE=Suppressed 99 messages from x.service", NULL };
        const char *syslog[] = { "_TRANSPORT=syslog", ID, "N_DROPPED=1", "OBJECT_SYSTEMD_UNIT=x.service", NULL };
        const char *no_transport[] = { ID, "N_DROPPED=1", "OBJECT_SYSTEMD_UNIT=x.service", NULL };
        const char *prefix_transport[] = { "_TRANSPORT=driverX", ID, "N_DROPPED=1", "OBJECT_SYSTEMD_UNIT=x.service", NULL };
        const char *other_driver[] = { "_TRANSPORT=driver", "MESSAGE_ID=f77379a8490b408bbe5f6940505a777b",
                                       "MESSAGE=Journal started", NULL };
        const char *no_id[] = { "_TRANSPORT=driver", "N_DROPPED=1", "OBJECT_SYSTEMD_UNIT=x.service", NULL };
        /* The OOM kill message id, easily mixed up with this one. */
        const char *oom[] = { "_TRANSPORT=driver", "MESSAGE_ID=fe6faa94e7774663a0da52717891d8ef", "N_DROPPED=1",
                              "OBJECT_SYSTEMD_UNIT=x.service", NULL };
        const char *longer_id[] = { "_TRANSPORT=driver", ID "0", "N_DROPPED=1", "OBJECT_SYSTEMD_UNIT=x.service", NULL };

        ASSERT_EQ(parse(forged, &s), 0);
        ASSERT_EQ(parse(syslog, &s), 0);
        ASSERT_EQ(parse(no_transport, &s), 0);
        ASSERT_EQ(parse(prefix_transport, &s), 0);
        ASSERT_EQ(parse(other_driver, &s), 0);
        ASSERT_EQ(parse(no_id, &s), 0);
        ASSERT_EQ(parse(oom, &s), 0);
        ASSERT_EQ(parse(longer_id, &s), 0);
        ASSERT_STREQ(s.unit, "untouched");
        ASSERT_UINT_EQ(s.n_dropped, 7);
}

TEST(parse_malformed) {
        static const char * const counts[] = {
                "", "0", "00", "012", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.5", "18446744073709551616",
                "99999999999999999999", "123456789012345678901", "\xd9\xa1", "1\n",
        };
        JournalSuppression s = { .unit = "untouched", .n_dropped = 7 };

        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                char n_dropped[64], message[128];
                snprintf(n_dropped, sizeof n_dropped, "N_DROPPED=%s", counts[i]);
                snprintf(message, sizeof message, "MESSAGE=Suppressed %s messages from x.service", counts[i]);
                const char *note[] = { "_TRANSPORT=driver", ID, n_dropped, "OBJECT_SYSTEMD_UNIT=x.service", NULL };
                const char *text_only[] = { "_TRANSPORT=driver", ID, n_dropped, message, NULL };
                if (parse(note, &s) != -EBADMSG || parse(text_only, &s) != -EBADMSG)
                        fprintf(stderr, "accepted N_DROPPED \"%s\"\n", counts[i]);
                ASSERT_EQ(parse(note, &s), -EBADMSG);
                ASSERT_EQ(parse(text_only, &s), -EBADMSG);
        }

        const char *no_count[] = { "_TRANSPORT=driver", ID, "OBJECT_SYSTEMD_UNIT=x.service",
                                   "MESSAGE=Suppressed 5 messages from x.service", NULL };
        const char *no_unit[] = { "_TRANSPORT=driver", ID, "N_DROPPED=5", NULL };
        const char *count_differs[] = { "_TRANSPORT=driver", ID, "N_DROPPED=5",
                                        "MESSAGE=Suppressed 6 messages from x.service", NULL };
        const char *other_text[] = { "_TRANSPORT=driver", ID, "N_DROPPED=5",
                                     "MESSAGE=Dropped 5 messages from x.service", NULL };
        const char *trailing[] = { "_TRANSPORT=driver", ID, "N_DROPPED=5",
                                   "MESSAGE=Suppressed 5 messages from x.service\n", NULL };
        const char *escape[] = { "_TRANSPORT=driver", ID, "N_DROPPED=5",
                                 "OBJECT_SYSTEMD_UNIT=x\x1b[2J.service", NULL };
        ASSERT_EQ(parse(no_count, &s), -EBADMSG);
        ASSERT_EQ(parse(no_unit, &s), -EBADMSG);
        ASSERT_EQ(parse(count_differs, &s), -EBADMSG);
        ASSERT_EQ(parse(other_text, &s), -EBADMSG);
        ASSERT_EQ(parse(trailing, &s), -EBADMSG);
        ASSERT_EQ(parse(escape, &s), -EBADMSG);
        ASSERT_STREQ(s.unit, "untouched");
        ASSERT_UINT_EQ(s.n_dropped, 7);
}

TEST(unit_names) {
        static const char * const good[] = {
                "qmail-smtpd.service", "a.b", "user@1000.service", "getty@tty1.service", "x-y:z_w\\x2d.scope",
                "-.slice",
        };
        static const char * const bad[] = {
                "", ".", "service", ".service", "a.", "a b.service", "a/b.service", "a\nb.service", "ä.service",
                "a\"b.service", "a%b.service",
        };
        char longest[JOURNAL_UNIT_NAME_MAX + 2];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (!journal_unit_name_is_valid(good[i], strlen(good[i])))
                        fprintf(stderr, "refused \"%s\"\n", good[i]);
                ASSERT_TRUE(journal_unit_name_is_valid(good[i], strlen(good[i])));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (journal_unit_name_is_valid(bad[i], strlen(bad[i])))
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                ASSERT_FALSE(journal_unit_name_is_valid(bad[i], strlen(bad[i])));
        }
        /* A NUL inside the value ends nothing: it is an invalid character. */
        ASSERT_FALSE(journal_unit_name_is_valid("a.service\0x", 11));

        memset(longest, 'a', sizeof longest);
        memcpy(longest + JOURNAL_UNIT_NAME_MAX - 8, ".service", 8);
        ASSERT_TRUE(journal_unit_name_is_valid(longest, JOURNAL_UNIT_NAME_MAX));
        memcpy(longest + JOURNAL_UNIT_NAME_MAX - 7, ".service", 8);
        ASSERT_FALSE(journal_unit_name_is_valid(longest, JOURNAL_UNIT_NAME_MAX + 1));
}

TEST(may_match) {
        ASSERT_TRUE(journal_suppression_may_match("SYSLOG_IDENTIFIER", "systemd-journald"));
        ASSERT_FALSE(journal_suppression_may_match("SYSLOG_IDENTIFIER", "vpopmail"));
        ASSERT_FALSE(journal_suppression_may_match("SYSLOG_IDENTIFIER", "systemd-journald "));
        ASSERT_TRUE(journal_suppression_may_match("_TRANSPORT", "driver"));
        ASSERT_FALSE(journal_suppression_may_match("_TRANSPORT", "syslog"));
        ASSERT_TRUE(journal_suppression_may_match("MESSAGE_ID", JOURNAL_SUPPRESSION_MESSAGE_ID));
        ASSERT_FALSE(journal_suppression_may_match("MESSAGE_ID", "fe6faa94e7774663a0da52717891d8ef"));
        /* Fields a note has with varying values, or that are not known to be fixed. */
        ASSERT_TRUE(journal_suppression_may_match("_SYSTEMD_UNIT", "qmail.service"));
        ASSERT_TRUE(journal_suppression_may_match("_UID", "0"));
        ASSERT_TRUE(journal_suppression_may_match("PRIORITY", "3"));
}

static JournalSuppression note(const char *unit, uint64_t n) {
        JournalSuppression s = { .n_dropped = n };
        snprintf(s.unit, sizeof s.unit, "%s", unit);
        return s;
}

static const char * const two_jails[] = { "vpopmail", "smtp" };

TEST(tracker) {
        _cleanup_(suppression_tracker_freep) SuppressionTracker *t = NULL;
        JournalSuppression s;
        const SuppressionStats *st;

        ASSERT_OK(suppression_tracker_new(&t));
        ASSERT_OK(suppression_tracker_set_jails(t, two_jails, 2));
        ASSERT_TRUE(suppression_tracker_get(t, "nope") == NULL);
        st = suppression_tracker_get(t, "vpopmail");
        ASSERT_TRUE(st);
        ASSERT_UINT_EQ(st->messages, 0);
        ASSERT_UINT_EQ(st->events, 0);
        ASSERT_UINT_EQ(st->last_usec, 0);
        ASSERT_STREQ(st->last_unit, "");

        s = note("pop.service", 100);
        suppression_tracker_count(t, 0, &s, 2000);
        s = note("smtp.service", 7);
        suppression_tracker_count(t, 0, &s, 3000);
        suppression_tracker_count(t, 1, &s, 3000);
        /* An older note (journal order is not time order) does not move "last". */
        s = note("old.service", 1);
        suppression_tracker_count(t, 0, &s, 1000);
        suppression_tracker_count(t, 2, &s, 5000); /* no such jail */

        st = suppression_tracker_get(t, "vpopmail");
        ASSERT_UINT_EQ(st->messages, 108);
        ASSERT_UINT_EQ(st->events, 3);
        ASSERT_UINT_EQ(st->last_usec, 3000);
        ASSERT_STREQ(st->last_unit, "smtp.service");
        st = suppression_tracker_get(t, "smtp");
        ASSERT_UINT_EQ(st->messages, 7);
        ASSERT_UINT_EQ(st->events, 1);

        /* The sum saturates instead of wrapping. */
        s = note("pop.service", UINT64_MAX - 10);
        suppression_tracker_count(t, 1, &s, 4000);
        suppression_tracker_count(t, 1, &s, 4000);
        st = suppression_tracker_get(t, "smtp");
        ASSERT_UINT_EQ(st->messages, UINT64_MAX);
        ASSERT_UINT_EQ(st->events, 3);

        /* A reload: "smtp" goes, "vpopmail" moves to index 1 with its counts, "new" comes. */
        ASSERT_OK(suppression_tracker_set_jails(t, (const char *[]) { "new", "vpopmail" }, 2));
        ASSERT_TRUE(suppression_tracker_get(t, "smtp") == NULL);
        ASSERT_UINT_EQ(suppression_tracker_get(t, "new")->events, 0);
        ASSERT_UINT_EQ(suppression_tracker_get(t, "vpopmail")->messages, 108);
        s = note("pop.service", 2);
        suppression_tracker_count(t, 1, &s, 6000);
        st = suppression_tracker_get(t, "vpopmail");
        ASSERT_UINT_EQ(st->messages, 110);
        ASSERT_UINT_EQ(st->events, 4);
        ASSERT_STREQ(st->last_unit, "pop.service");
        /* A jail that goes and comes back starts from zero. */
        ASSERT_OK(suppression_tracker_set_jails(t, (const char *[]) { "smtp" }, 1));
        ASSERT_UINT_EQ(suppression_tracker_get(t, "smtp")->events, 0);
        ASSERT_OK(suppression_tracker_set_jails(t, NULL, 0));
        ASSERT_TRUE(suppression_tracker_get(t, "vpopmail") == NULL);
}

#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"

static uint64_t entry_usec = UINT64_C(1700000000000000);

/* One entry in journal export format, as journald would have written it. */
static void put_entry(FILE *f, const char *unit, const char *identifier, unsigned uid, const char *message) {
        entry_usec += 1000;
        fprintf(f, "__REALTIME_TIMESTAMP=%" PRIu64 "\n__MONOTONIC_TIMESTAMP=%" PRIu64 "\n"
                "_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=syslog\n_UID=%u\n"
                "SYSLOG_IDENTIFIER=%s\nMESSAGE=%s\n",
                entry_usec, entry_usec - UINT64_C(1690000000000000), uid, identifier, message);
        if (unit)
                fprintf(f, "_SYSTEMD_UNIT=%s\n", unit);
        fputc('\n', f);
}

static void put_note(FILE *f, const char *unit, unsigned n) {
        entry_usec += 1000;
        fprintf(f, "__REALTIME_TIMESTAMP=%" PRIu64 "\n__MONOTONIC_TIMESTAMP=%" PRIu64 "\n"
                "_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=driver\n_UID=0\n"
                "_SYSTEMD_UNIT=systemd-journald.service\nSYSLOG_IDENTIFIER=systemd-journald\n"
                "MESSAGE_ID=" JOURNAL_SUPPRESSION_MESSAGE_ID "\nMESSAGE=Suppressed %u messages from %s\n"
                "N_DROPPED=%u\nOBJECT_SYSTEMD_UNIT=%s\nOBJECT_PID=42\n\n",
                entry_usec, entry_usec - UINT64_C(1690000000000000), n, unit, n, unit);
}

static bool get_is(JournalFieldGetter get, void *entry, const char *field, const char *value) {
        const char *v;
        size_t len;
        return get(field, &v, &len, entry) >= 0 && len == strlen(value) && memcmp(v, value, len) == 0;
}

/* Jail 0 reads vpopmail from system users (uid 0 here), jail 1 vchkpw from anyone. */
static bool test_accepts(size_t jail, JournalFieldGetter get, void *entry, void *userdata) {
        unsigned *calls = userdata;
        (*calls)++;
        if (jail == 0)
                return get_is(get, entry, "SYSLOG_IDENTIFIER", "vpopmail") && get_is(get, entry, "_UID", "0");
        return get_is(get, entry, "SYSLOG_IDENTIFIER", "vchkpw");
}

TEST(find_jails) {
        char dir[] = "/tmp/test-journal-suppression-XXXXXX", path[sizeof dir + 16], cmd[4096];
        const char *files[] = { path, NULL };
        char *cursors[8] = {};
        unsigned n_notes = 0, calls = 0;
        sd_journal *j = NULL;
        FILE *f;

        if (access(JOURNAL_REMOTE, X_OK) < 0) {
                skip_part("the real journal test: no " JOURNAL_REMOTE);
                return;
        }
        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/x.journal", dir);
        snprintf(cmd, sizeof cmd, "%s --output=%s - 2>/dev/null", JOURNAL_REMOTE, path);
        f = popen(cmd, "w");
        ASSERT_TRUE(f);

        /* Long ago, pop.service logged for jail 0; then a lot of others' lines. */
        put_entry(f, "pop.service", "vpopmail", 0, "vchkpw-pop3: password fail a@b:192.0.2.1");
        for (unsigned i = 0; i < 200; i++)
                put_entry(f, "chatty.service", "chatty", 0, "chatter");
        /* smtp.service: vchkpw lines from uid 1000 (jail 1 only) and vpopmail lines from uid
         * 1000 (no jail: untrusted). mixed.service: one vpopmail line, then more other lines
         * than the lookback reads. */
        put_entry(f, "smtp.service", "vchkpw", 1000, "vchkpw-smtp: password fail a@b:192.0.2.2");
        put_entry(f, "smtp.service", "vpopmail", 1000, "vchkpw-smtp: password fail a@b:192.0.2.3");
        put_entry(f, "mixed.service", "vpopmail", 0, "vchkpw-pop3: password fail a@b:192.0.2.4");
        for (unsigned i = 0; i < SUPPRESSION_LOOKBACK_MAX; i++)
                put_entry(f, "mixed.service", "other", 0, "other");
        put_entry(f, NULL, "vpopmail", 0, "vchkpw-pop3: password fail a@b:192.0.2.5");
        put_note(f, "pop.service", 1);
        put_note(f, "chatty.service", 2);
        put_note(f, "smtp.service", 3);
        put_note(f, "mixed.service", 4);
        /* late.service logs for jail 0 only after its note: that does not count. */
        put_note(f, "late.service", 5);
        put_entry(f, "late.service", "vpopmail", 0, "vchkpw-pop3: password fail a@b:192.0.2.6");
        /* Both jails, and a note whose unit logged only right before it. */
        put_entry(f, "both.service", "vchkpw", 0, "x");
        put_entry(f, "both.service", "vpopmail", 0, "y");
        put_note(f, "both.service", 6);
        ASSERT_EQ(pclose(f), 0);

        /* The notes' cursors, in order; each parses as a note. */
        ASSERT_OK(sd_journal_open_files(&j, files, 0));
        ASSERT_OK(sd_journal_add_match(j, "MESSAGE_ID=" JOURNAL_SUPPRESSION_MESSAGE_ID, 0));
        SD_JOURNAL_FOREACH(j) {
                JournalSuppression s;
                ASSERT_LT(n_notes, ELEMENTSOF(cursors));
                ASSERT_OK(sd_journal_get_cursor(j, &cursors[n_notes]));
                ASSERT_EQ(journal_suppression_parse(get_journal_entry_field, j, &s), 1);
                ASSERT_UINT_EQ(s.n_dropped, n_notes + 1);
                n_notes++;
        }
        sd_journal_close(j);
        ASSERT_EQ(n_notes, 6);

        static const struct {
                const char *unit;
                int n;
                bool fed[2];
        } expected[] = {
                { "pop.service",    1, { true,  false } },
                { "chatty.service", 0, { false, false } },
                { "smtp.service",   1, { false, true } },
                { "mixed.service",  0, { false, false } }, /* its vpopmail line is 65 entries back */
                { "late.service",   0, { false, false } },
                { "both.service",   2, { true,  true } },
        };
        for (unsigned i = 0; i < n_notes; i++) {
                bool fed[2] = { true, true };
                ASSERT_OK(sd_journal_open_files(&j, files, 0));
                /* Matches of the caller's are dropped. */
                ASSERT_OK(sd_journal_add_match(j, "SYSLOG_IDENTIFIER=nothing", 0));
                calls = 0;
                int r = journal_suppression_find_jails(j, cursors[i], expected[i].unit, 2, test_accepts, &calls, fed);
                if (r != expected[i].n || fed[0] != expected[i].fed[0] || fed[1] != expected[i].fed[1])
                        fprintf(stderr, "note about %s: %d jails, fed %d %d\n", expected[i].unit, r, fed[0], fed[1]);
                ASSERT_EQ(r, expected[i].n);
                ASSERT_EQ(fed[0], expected[i].fed[0]);
                ASSERT_EQ(fed[1], expected[i].fed[1]);
                /* Never more than the lookback's entries, each judged by at most both jails. */
                ASSERT_LE(calls, 2 * SUPPRESSION_LOOKBACK_MAX);
                sd_journal_close(j);
        }

        /* An invalid unit name is refused before the journal is touched. */
        ASSERT_OK(sd_journal_open_files(&j, files, 0));
        bool fed[2] = { true, true };
        ASSERT_EQ(journal_suppression_find_jails(j, cursors[0], "pop service", 2, test_accepts, &calls, fed), -EINVAL);
        ASSERT_TRUE(fed[0] && fed[1]);
        sd_journal_close(j);

        for (unsigned i = 0; i < n_notes; i++)
                free(cursors[i]);
        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        RUN(parse_real_note);
        RUN(parse_not_a_note);
        RUN(parse_malformed);
        RUN(unit_names);
        RUN(may_match);
        RUN(tracker);
        RUN(find_jails);
        return 0;
}
