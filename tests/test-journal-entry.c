/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal-entry.h"
#include "macro.h"
#include "tests.h"

#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"

/* Entries in journal export format: the wanted fields present, missing, repeated, empty, with
 * '=' in the value, next to fields whose names they begin or end with. */
static const char *const entries[] = {
        "SYSLOG_IDENTIFIER=vchkpw\n_UID=0\nMESSAGE=vchkpw-pop3: password fail x@y:192.0.2.7\n",
        "MESSAGE=no identifier, no uid\nPRIORITY=5\n",
        "SYSLOG_IDENTIFIER_X=decoy\nX_UID=1\nMESSAGE=the real one\n_UID=1000\nSYSLOG_IDENTIFIER=vpopmail\n",
        "SYSLOG_IDENTIFIER=vpopmail\nSYSLOG_IDENTIFIER=second\nMESSAGE=twice\nMESSAGE=again\n",
        "SYSLOG_IDENTIFIER=\n_UID=0\nMESSAGE=a=b=c\n",
        "PRIORITY=3\n",
};

static const char *const wanted[] = { "SYSLOG_IDENTIFIER", "_UID", "MESSAGE" };

static int make_journal(const char *path) {
        char cmd[4096];
        FILE *f;

        if ((size_t) snprintf(cmd, sizeof cmd, "%s --output=%s - 2>/dev/null", JOURNAL_REMOTE, path) >= sizeof cmd)
                return -ENAMETOOLONG;
        f = popen(cmd, "w");
        if (!f)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                fprintf(f,
                        "__REALTIME_TIMESTAMP=%" PRIu64 "\n"
                        "__MONOTONIC_TIMESTAMP=%" PRIu64 "\n"
                        "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                        "%s\n",
                        UINT64_C(1700000000000000) + i, (uint64_t) i + 1, entries[i]);
        return pclose(f) == 0 ? 0 : -EIO;
}

/* Each wanted field of the entry as the reader read it must be what sd_journal_get_data() gives
 * for it (the first value of a repeated field), or absent where it is. */
static void assert_entry_as_get_data(sd_journal *j, const JournalEntry *e) {
        ASSERT_EQ(e->n_fields, ELEMENTSOF(wanted));
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                const void *data;
                size_t len, flen = strlen(wanted[i]);

                ASSERT_STREQ(e->fields[i].name, wanted[i]);
                if (sd_journal_get_data(j, wanted[i], &data, &len) < 0) {
                        ASSERT_TRUE(e->fields[i].value == NULL);
                        continue;
                }
                ASSERT_TRUE(e->fields[i].value != NULL);
                ASSERT_UINT_EQ(e->fields[i].len, len - flen - 1);
                ASSERT_TRUE(memcmp(e->fields[i].value, (const char *) data + flen + 1, len - flen - 1) == 0);
        }
}

static void assert_field(const JournalEntry *e, const char *name, const char *value) {
        const char *v;
        size_t len;
        int r = journal_entry_get_field(name, &v, &len, (void *) e);

        if (!value) {
                ASSERT_EQ(r, -ENOENT);
                return;
        }
        ASSERT_OK(r);
        ASSERT_UINT_EQ(len, strlen(value));
        ASSERT_TRUE(memcmp(v, value, len) == 0);
}

TEST(read_fields) {
        char dir[] = "/tmp/test-journal-entry-XXXXXX";
        char path[sizeof dir + 16];
        JournalEntryReader *reader = NULL;
        sd_journal *j = NULL;
        size_t n = 0;

        if (access(JOURNAL_REMOTE, X_OK) < 0) {
                skip_part("the journal test: no " JOURNAL_REMOTE);
                return;
        }
        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/x.journal", dir);
        ASSERT_OK(make_journal(path));

        ASSERT_OK(journal_entry_reader_new(&reader));
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++)
                ASSERT_OK(journal_entry_reader_want(reader, wanted[i]));
        ASSERT_OK(journal_entry_reader_want(reader, "MESSAGE")); /* a duplicate is ignored */

        ASSERT_OK(sd_journal_open_files(&j, (const char *[]) { path, NULL }, 0));
        SD_JOURNAL_FOREACH(j) {
                JournalEntry e;

                ASSERT_OK(journal_entry_read(reader, j, &e));
                assert_entry_as_get_data(j, &e);
                ASSERT_UINT_EQ(e.realtime, UINT64_C(1700000000000000) + n);
                switch (n) {
                case 0:
                        assert_field(&e, "SYSLOG_IDENTIFIER", "vchkpw");
                        assert_field(&e, "_UID", "0");
                        assert_field(&e, "MESSAGE", "vchkpw-pop3: password fail x@y:192.0.2.7");
                        break;
                case 1:
                        assert_field(&e, "SYSLOG_IDENTIFIER", NULL);
                        assert_field(&e, "_UID", NULL);
                        assert_field(&e, "MESSAGE", "no identifier, no uid");
                        assert_field(&e, "PRIORITY", NULL); /* not wanted */
                        break;
                case 2:
                        assert_field(&e, "SYSLOG_IDENTIFIER", "vpopmail");
                        assert_field(&e, "_UID", "1000");
                        assert_field(&e, "MESSAGE", "the real one");
                        break;
                case 4:
                        assert_field(&e, "SYSLOG_IDENTIFIER", "");
                        assert_field(&e, "MESSAGE", "a=b=c");
                        break;
                case 5:
                        assert_field(&e, "MESSAGE", NULL);
                        break;
                }
                n++;
        }
        ASSERT_EQ(n, ELEMENTSOF(entries));

        sd_journal_close(j);
        journal_entry_reader_free(reader);
        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        RUN(read_fields);
        return 0;
}
