/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "entry-judge.h"
#include "macro.h"
#include "config-text.h"
#include "tests.h"

/* The judging of journal entries, on entries made by hand: no journal, no root, no firewall. */

static const char *conf =
        "[Jail]\n"
        "Name=mail\n"
        "JournalMatch=SYSLOG_IDENTIFIER=vpopmail\n"
        "TrustedUID=0-999\n"
        "MaxRetry=3\n"
        "BanTime=1h\n"
        "FailRegex=^vchkpw-[a-z0-9]+: password fail [^ ]*:<HOST>$\n"
        "[Jail]\n"
        "Name=strict\n"
        "JournalMatch=SYSLOG_IDENTIFIER=vpopmail\n"
        "MaxRetry=2\n"
        "BanTime=2h\n"
        "FailRegex=^vchkpw-pop3: password fail [^ ]*:<HOST>$\n";

typedef struct Decided {
        Ban bans[8];
        size_t n_causes[8];
        usec_t last_cause[8];
        size_t n;
} Decided;

static int on_ban(Jail *jail, Ban *b, const FailureWindow *w, void *userdata) {
        Decided *d = userdata;
        ASSERT_LT(d->n, ELEMENTSOF(d->bans));
        ASSERT_STREQ(b->jail, jail->config->name);
        d->bans[d->n] = *b;
        d->n_causes[d->n] = w->n_failures;
        d->last_cause[d->n] = w->failures[w->n_failures - 1].realtime;
        d->n++;
        return 0;
}

typedef struct World {
        Config *config;
        Jail *jails[2];
        BanTable *bans;
        Decided decided;
        EntryJudge judge;
} World;

static void world_init(World *w) {
        *w = (World) { .config = config_from_text(conf) };
        ASSERT_OK(jail_new(&w->config->jails[0], &w->jails[0]));
        ASSERT_OK(jail_new(&w->config->jails[1], &w->jails[1]));
        ASSERT_OK(ban_table_new(&w->bans));
        w->judge = (EntryJudge) { .jails = w->jails, .n_jails = 1, .bans = w->bans, .on_ban = on_ban,
                                  .userdata = &w->decided };
}

static void world_done(World *w) {
        jail_free(w->jails[0]);
        jail_free(w->jails[1]);
        ban_table_free(w->bans);
        config_free(w->config);
}

/* What jail i has counted and still tracks. */
static void assert_counted(const World *w, size_t i, uint64_t failures_total, size_t tracked) {
        ASSERT_UINT_EQ(w->jails[i]->failures_total, failures_total);
        ASSERT_UINT_EQ(failure_table_size(w->jails[i]->failures), tracked);
}

/* An entry as the reader would hand it over; a NULL value is a field the entry lacks. */
static JournalEntry entry(const char *uid, const char *message, usec_t realtime) {
        JournalEntry e = {
                .fields = {
                        { "SYSLOG_IDENTIFIER", "vpopmail", strlen("vpopmail") },
                        { "_UID", uid, uid ? strlen(uid) : 0 },
                        { "MESSAGE", message, message ? strlen(message) : 0 },
                },
                .n_fields = 3,
                .realtime = realtime,
                .has_position = true,
        };
        e.position.realtime = realtime;
        e.position.seqnum_id = e.position.boot_id = JOURNAL_ID_NONE;
        return e;
}

#define FAIL_LINE "vchkpw-pop3: password fail joe@example.com:192.0.2.7"
#define NOW (1700000000ULL * USEC_PER_SEC)

TEST(bans_at_max_retry_with_its_causes) {
        World w;
        EntryJudgement v;
        world_init(&w);

        for (unsigned i = 1; i <= 3; i++) {
                JournalEntry e = entry("0", FAIL_LINE, NOW + i * USEC_PER_SEC);
                ASSERT_EQ(entry_judge(&w.judge, &e, NOW + 10 * USEC_PER_SEC, false, &v), 0);
                ASSERT_TRUE(v.accepted);
                ASSERT_TRUE(v.matched);
                ASSERT_FALSE(v.unreadable);
                ASSERT_EQ(w.decided.n, i == 3 ? 1 : 0);
        }
        char text[ADDRESS_STRING_MAX];
        ASSERT_STREQ(address_to_string(&w.decided.bans[0].address, text), "192.0.2.7");
        ASSERT_EQ(w.decided.bans[0].failures, 3);
        ASSERT_UINT_EQ(w.decided.bans[0].banned_usec, NOW + 10 * USEC_PER_SEC);
        ASSERT_UINT_EQ(w.decided.bans[0].expires_usec, NOW + 10 * USEC_PER_SEC + 3600 * USEC_PER_SEC);
        ASSERT_EQ(w.decided.n_causes[0], 3);
        ASSERT_UINT_EQ(w.decided.last_cause[0], NOW + 3 * USEC_PER_SEC);
        /* The window is closed with the ban. */
        assert_counted(&w, 0, 3, 0);
        ASSERT_EQ(w.jails[0]->bans_total, 1);
        world_done(&w);
}

TEST(untrusted_sender_counts_nothing) {
        World w;
        EntryJudgement v;
        world_init(&w);

        for (unsigned i = 0; i < 5; i++) {
                JournalEntry e = entry("1000", FAIL_LINE, NOW + i);
                ASSERT_EQ(entry_judge(&w.judge, &e, NOW, true, &v), 0);
                ASSERT_FALSE(v.accepted);
                ASSERT_FALSE(v.matched);
                /* ... but reported: the jail, the sender. */
                ASSERT_TRUE(v.untrusted_jail == w.jails[0]);
                ASSERT_EQ(v.untrusted_uid, 1000);
        }
        ASSERT_EQ(w.jails[0]->untrusted_failures, 5);
        /* A line its patterns would not count is no untrusted failure. */
        JournalEntry other = entry("1000", "vchkpw-pop3: (PLAIN) login success joe@example.com:192.0.2.80", NOW);
        ASSERT_EQ(entry_judge(&w.judge, &other, NOW, true, &v), 0);
        ASSERT_TRUE(v.untrusted_jail == NULL);
        ASSERT_EQ(w.jails[0]->untrusted_failures, 5);
        ASSERT_EQ(w.decided.n, 0);
        assert_counted(&w, 0, 0, 0);
        world_done(&w);
}

TEST(incomplete_entry_waits_then_is_unreadable) {
        World w;
        EntryJudgement v;
        world_init(&w);

        /* No MESSAGE yet: not judged while it may still come. */
        JournalEntry e = entry("0", NULL, NOW);
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), ENTRY_JUDGE_INCOMPLETE);
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, true, &v), 0);
        ASSERT_TRUE(v.accepted);
        ASSERT_TRUE(v.unreadable);
        ASSERT_FALSE(v.matched);

        /* No _UID where TrustedUID= needs one: the same. */
        e = entry(NULL, FAIL_LINE, NOW);
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), ENTRY_JUDGE_INCOMPLETE);
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, true, &v), 0);
        ASSERT_FALSE(v.accepted);
        ASSERT_TRUE(v.unreadable);

        assert_counted(&w, 0, 0, 0);
        world_done(&w);
}

TEST(banned_address_does_not_count) {
        World w;
        EntryJudgement v;
        world_init(&w);

        Ban b = { .banned_usec = NOW, .expires_usec = NOW + USEC_PER_SEC, .origin = BAN_ORIGIN_MANUAL };
        ASSERT_OK(address_parse("192.0.2.7", strlen("192.0.2.7"), &b.address));
        ASSERT_OK(ban_table_put(w.bans, &b));

        JournalEntry e = entry("0", FAIL_LINE, NOW);
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), 0);
        ASSERT_TRUE(v.matched);
        ASSERT_EQ(failure_table_size(w.jails[0]->failures), 0);

        /* Once the ban is over, it counts again. */
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW + USEC_PER_SEC, false, &v), 0);
        ASSERT_EQ(failure_table_size(w.jails[0]->failures), 1);
        world_done(&w);
}

/* What rtnetlink says when an IPv4 address is added to (type RTM_NEWADDR) or removed from
 * (RTM_DELADDR) an interface. */
static void local_change(LocalAddresses *l, uint16_t type, const char *text) {
        struct {
                struct nlmsghdr h;
                struct ifaddrmsg ifa;
                struct rtattr rta;
                uint8_t address[4];
        } msg = {
                .h = { .nlmsg_len = sizeof msg, .nlmsg_type = type },
                .ifa = { .ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 3 },
                .rta = { .rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL },
        };
        ASSERT_EQ(inet_pton(AF_INET, text, msg.address), 1);
        ASSERT_EQ(local_addresses_process(l, &msg, sizeof msg), 0);
}

TEST(local_address_does_not_count) {
        _cleanup_(local_addresses_freep) LocalAddresses *local = NULL;
        World w;
        EntryJudgement v;
        world_init(&w);
        ASSERT_OK(local_addresses_new(NULL, NULL, &local));
        w.judge.local = local;

        /* The host's own address, like loopback: as if no pattern had matched. */
        local_change(local, RTM_NEWADDR, "192.0.2.7");
        for (unsigned i = 1; i <= 5; i++) {
                JournalEntry e = entry("0", FAIL_LINE, NOW + i);
                ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), 0);
                ASSERT_TRUE(v.accepted);
                ASSERT_FALSE(v.matched);
        }
        ASSERT_EQ(w.decided.n, 0);
        assert_counted(&w, 0, 0, 0);

        /* Another address on the same network still counts. */
        JournalEntry other = entry("0", "vchkpw-pop3: password fail joe@example.com:192.0.2.8", NOW);
        ASSERT_EQ(entry_judge(&w.judge, &other, NOW, false, &v), 0);
        ASSERT_TRUE(v.matched);
        assert_counted(&w, 0, 1, 1);

        /* Gone from the interface, it is an address like any other. */
        local_change(local, RTM_DELADDR, "192.0.2.7");
        for (unsigned i = 1; i <= 3; i++) {
                JournalEntry e = entry("0", FAIL_LINE, NOW + 10 + i);
                ASSERT_EQ(entry_judge(&w.judge, &e, NOW + 20, false, &v), 0);
                ASSERT_TRUE(v.matched);
        }
        ASSERT_EQ(w.decided.n, 1);
        char text[ADDRESS_STRING_MAX];
        ASSERT_STREQ(address_to_string(&w.decided.bans[0].address, text), "192.0.2.7");
        world_done(&w);
}

TEST(one_entry_two_jails) {
        World w;
        EntryJudgement v;
        world_init(&w);
        w.judge.n_jails = 2;

        for (unsigned i = 1; i <= 2; i++) {
                JournalEntry e = entry("0", FAIL_LINE, NOW + i);
                ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), 0);
        }
        /* "strict" bans at its MaxRetry=2; "mail" has counted both and waits for its third. */
        ASSERT_EQ(w.decided.n, 1);
        ASSERT_STREQ(w.decided.bans[0].jail, "strict");
        ASSERT_UINT_EQ(w.decided.bans[0].expires_usec, NOW + 2 * 3600 * USEC_PER_SEC);
        assert_counted(&w, 0, 2, 1);
        assert_counted(&w, 1, 2, 0);
        world_done(&w);
}

TEST(not_for_any_jail) {
        World w;
        EntryJudgement v;
        world_init(&w);

        JournalEntry e = entry("0", FAIL_LINE, NOW);
        e.fields[0].value = "sshd";
        e.fields[0].len = strlen("sshd");
        ASSERT_EQ(entry_judge(&w.judge, &e, NOW, false, &v), 0);
        ASSERT_FALSE(v.accepted);
        ASSERT_FALSE(v.unreadable);
        assert_counted(&w, 0, 0, 0);
        world_done(&w);
}

int main(void) {
        RUN(bans_at_max_retry_with_its_causes);
        RUN(untrusted_sender_counts_nothing);
        RUN(incomplete_entry_waits_then_is_unreadable);
        RUN(banned_address_does_not_count);
        RUN(local_address_does_not_count);
        RUN(one_entry_two_jails);
        RUN(not_for_any_jail);
        return 0;
}
