/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jail.h"
#include "macro.h"
#include "config-text.h"
#include "tests.h"

typedef struct Fields {
        const char *names[8];
        const char *values[8];
} Fields;

static int get_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        Fields *f = userdata;
        for (size_t i = 0; i < ELEMENTSOF(f->names) && f->names[i]; i++)
                if (streq(f->names[i], field)) {
                        *ret_value = f->values[i];
                        *ret_len = strlen(f->values[i]);
                        return 0;
                }
        return -ENOENT;
}

static const char *conf =
        "[Defaults]\n"
        "IgnoreAddress=198.51.100.0/24\n"
        "[Jail]\n"
        "Name=mail\n"
        "JournalMatch=SYSLOG_IDENTIFIER=vpopmail\n"
        "JournalMatch=SYSLOG_IDENTIFIER=vchkpw\n"
        "JournalMatch=_TRANSPORT=syslog\n"
        "TrustedUID=0-999\n"
        "HostFormat=vpopmail\n"
        "FailRegex=^vchkpw-[a-z0-9]+: password fail [^ ]*:<HOST>$\n"
        "IgnoreRegex=password fail test@\n"
        "IgnoreAddress=2001:db8::/32\n";

TEST(fields) {
        Config *c = config_from_text(conf);
        Jail *j;
        JailVerdict v;

        ASSERT_OK(jail_new(&c->jails[0], &j));
        ASSERT_EQ(j->n_matches, 3);

        Fields ok = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "vchkpw", "syslog", "0" } };
        ASSERT_TRUE(jail_accepts_entry(j, get_field, &ok, &v));

        Fields other_ident = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "sshd", "syslog", "0" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &other_ident, &v));
        ASSERT_EQ(v, JAIL_VERDICT_NO_MATCH);

        Fields other_transport = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "vpopmail", "stdout", "0" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &other_transport, &v));

        /* A shell user running `logger -t vpopmail` must never count. */
        Fields user = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "vpopmail", "syslog", "1000" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &user, &v));
        ASSERT_EQ(v, JAIL_VERDICT_UNTRUSTED);

        Fields no_uid = { { "SYSLOG_IDENTIFIER", "_TRANSPORT" }, { "vpopmail", "syslog" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &no_uid, &v));
        ASSERT_EQ(v, JAIL_VERDICT_UNTRUSTED);

        Fields bad_uid = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "vpopmail", "syslog", "-1" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &bad_uid, &v));
        Fields prefix_value = { { "SYSLOG_IDENTIFIER", "_TRANSPORT", "_UID" }, { "vpopmailx", "syslog", "0" } };
        ASSERT_FALSE(jail_accepts_entry(j, get_field, &prefix_value, &v));

        jail_free(j);
        config_free(c);
}

TEST(messages) {
        Config *c = config_from_text(conf);
        char buf[ADDRESS_STRING_MAX];
        Jail *j;
        Address a;

        ASSERT_OK(jail_new(&c->jails[0], &j));

        const char *m = "vchkpw-pop3: password fail joe@example.com:192.0.2.7";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_FAILURE);
        ASSERT_STREQ(address_to_string(&a, buf), "192.0.2.7");

        m = "vchkpw-pop3: password fail test@example.com:192.0.2.7";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_IGNORE_REGEX);

        m = "vchkpw-pop3: password fail joe@example.com:198.51.100.9";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_IGNORED_ADDRESS);
        m = "vchkpw-pop3: password fail joe@example.com:2001_db8__7";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_IGNORED_ADDRESS);
        m = "vchkpw-pop3: password fail joe@example.com:127.0.0.1";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_IGNORED_ADDRESS);

        m = "vchkpw-pop3: password fail joe@example.com:2001_db9__7";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_FAILURE);
        ASSERT_STREQ(address_to_string(&a, buf), "2001:db9::7");

        m = "vchkpw-pop3: login success joe@example.com:192.0.2.7";
        ASSERT_EQ(jail_match_message(j, m, strlen(m), &a), JAIL_VERDICT_NO_MATCH);

        jail_free(j);
        config_free(c);
}

TEST(carry_over) {
        Config *c = config_from_text(conf);
        Jail *old, *new;
        Address a;
        JournalPosition p = { .realtime = 1000 * USEC_PER_SEC, .seqnum_id = JOURNAL_ID_NONE, .boot_id = JOURNAL_ID_NONE };
        FailureWindow w;

        ASSERT_OK(jail_new(&c->jails[0], &old));
        ASSERT_OK(jail_new(&c->jails[0], &new));
        ASSERT_OK(address_parse("192.0.2.7", 9, &a));
        ASSERT_EQ(failure_table_record(old->failures, &a, &p), 1);
        p.realtime += USEC_PER_SEC;
        ASSERT_EQ(failure_table_record(old->failures, &a, &p), 2);
        old->failures_total = 2;

        ASSERT_OK(jail_take_failures(new, old));
        ASSERT_TRUE(failure_table_get(new->failures, &a, &w));
        ASSERT_EQ(w.n_failures, 2);
        ASSERT_EQ(new->failures_total, 2);

        jail_free(old);
        jail_free(new);
        config_free(c);
}

int main(void) {
        RUN(fields);
        RUN(messages);
        RUN(carry_over);
        return 0;
}
