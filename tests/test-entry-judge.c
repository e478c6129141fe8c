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

/* What a jail has counted and still tracks. */
static void assert_counted_jail(const Jail *j, uint64_t failures_total, size_t tracked) {
        ASSERT_UINT_EQ(j->failures_total, failures_total);
        ASSERT_UINT_EQ(failure_table_size(j->failures), tracked);
}

static void assert_counted(const World *w, size_t i, uint64_t failures_total, size_t tracked) {
        assert_counted_jail(w->jails[i], failures_total, tracked);
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

/* Several services' jails, in this order; "first" and "second" share sshd's lines. */
static const char *host_conf =
        "[Jail]\n"
        "Name=first\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "MaxRetry=2\n"
        "FailRegex=^Failed password for [^ ]+ from <HOST> port [0-9]+ ssh2$\n"
        "[Jail]\n"
        "Name=dovecot\n"
        "JournalMatch=SYSLOG_IDENTIFIER=dovecot\n"
        "TrustedUID=0\n"
        "MaxRetry=2\n"
        "FailRegex=^auth: passwd-file\\([^,]*,<HOST>\\): unknown user$\n"
        "[Jail]\n"
        "Name=second\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd-session\n"
        "MaxRetry=3\n"
        "FailRegex=^Failed password for [^ ]+ from <HOST> port [0-9]+ ssh2$\n";

typedef struct Host {
        Config *config;
        Jail *jails[3];
        BanTable *bans;
        JailIndex *index;
        Decided decided;
        EntryJudge judge;
} Host;

/* Like the manager: the ban table takes a ban at once, before the next jail looks. */
static int on_host_ban(Jail *jail, Ban *b, const FailureWindow *w, void *userdata) {
        Host *h = userdata;
        ASSERT_OK(on_ban(jail, b, w, &h->decided));
        return ban_table_put(h->bans, b);
}

static void host_init(Host *h, bool indexed) {
        *h = (Host) { .config = config_from_text(host_conf) };
        for (size_t i = 0; i < ELEMENTSOF(h->jails); i++)
                ASSERT_OK(jail_new(&h->config->jails[i], &h->jails[i]));
        ASSERT_OK(ban_table_new(&h->bans));
        if (indexed)
                ASSERT_OK(jail_index_new(h->jails, ELEMENTSOF(h->jails), &h->index));
        h->judge = (EntryJudge) { .jails = h->jails, .n_jails = ELEMENTSOF(h->jails), .index = h->index,
                                  .bans = h->bans, .on_ban = on_host_ban, .userdata = h };
}

static void host_done(Host *h) {
        for (size_t i = 0; i < ELEMENTSOF(h->jails); i++)
                jail_free(h->jails[i]);
        jail_index_free(h->index);
        ban_table_free(h->bans);
        config_free(h->config);
}

static EntryJudgement host_judge(Host *h, const char *identifier, const char *message, usec_t realtime) {
        JournalEntry e = entry("0", message, realtime);
        EntryJudgement v;
        e.fields[0].value = identifier;
        e.fields[0].len = strlen(identifier);
        ASSERT_EQ(entry_judge(&h->judge, &e, NOW, true, &v), 0);
        return v;
}

#define SSHD_FAIL(a) "Failed password for root from " a " port 40022 ssh2"
#define DOVECOT_FAIL(a) "auth: passwd-file(admin," a "): unknown user"

/* Jails are tried in the configuration's order: when "first" bans an address, "second" finds it
 * banned and does not count the entry that did it. An entry meets only its service's jails. */
TEST(jails_in_config_order_first_ban_wins) {
        char text[ADDRESS_STRING_MAX];
        Host h;
        host_init(&h, true);

        ASSERT_TRUE(host_judge(&h, "sshd", SSHD_FAIL("192.0.2.7"), NOW + 1).matched);
        assert_counted_jail(h.jails[0], 1, 1);
        assert_counted_jail(h.jails[2], 1, 1);
        ASSERT_TRUE(host_judge(&h, "sshd", SSHD_FAIL("192.0.2.7"), NOW + 2).matched);
        ASSERT_EQ(h.decided.n, 1);
        ASSERT_STREQ(h.decided.bans[0].jail, "first");
        ASSERT_STREQ(address_to_string(&h.decided.bans[0].address, text), "192.0.2.7");
        assert_counted_jail(h.jails[0], 2, 0);
        assert_counted_jail(h.jails[2], 1, 1); /* not 2: banned by then */

        /* sshd-session is "second"'s alone; dovecot's line is dovecot's alone. */
        ASSERT_TRUE(host_judge(&h, "sshd-session", SSHD_FAIL("192.0.2.8"), NOW + 3).matched);
        assert_counted_jail(h.jails[0], 2, 0);
        assert_counted_jail(h.jails[2], 2, 2);
        ASSERT_TRUE(host_judge(&h, "dovecot", DOVECOT_FAIL("192.0.2.8"), NOW + 4).matched);
        assert_counted_jail(h.jails[1], 1, 1);
        assert_counted_jail(h.jails[2], 2, 2);

        /* A service's line under another's identifier meets that one's jails only. */
        EntryJudgement v = host_judge(&h, "dovecot", SSHD_FAIL("192.0.2.9"), NOW + 5);
        ASSERT_TRUE(v.accepted);
        ASSERT_FALSE(v.matched);
        v = host_judge(&h, "vpopmail", SSHD_FAIL("192.0.2.9"), NOW + 6);
        ASSERT_FALSE(v.accepted);
        ASSERT_FALSE(v.matched);
        ASSERT_EQ(h.decided.n, 1);
        host_done(&h);
}

/* The index changes which jails are asked, never the outcome: the same entries judged with and
 * without it leave the same counts and bans. */
TEST(index_judges_like_every_jail_in_turn) {
        static const struct {
                const char *identifier, *message;
        } entries[] = {
                { "sshd", SSHD_FAIL("192.0.2.7") },        { "dovecot", DOVECOT_FAIL("192.0.2.7") },
                { "sshd-session", SSHD_FAIL("192.0.2.7") }, { "sshd", SSHD_FAIL("192.0.2.8") },
                { "dovecot", DOVECOT_FAIL("192.0.2.9") },   { "vpopmail", FAIL_LINE },
                { "sshd", SSHD_FAIL("192.0.2.7") },        { "dovecot", DOVECOT_FAIL("192.0.2.9") },
                { "sshd-session", SSHD_FAIL("192.0.2.8") }, { "sshd", "Accepted password for joe" },
                { "sshd-session", SSHD_FAIL("192.0.2.8") }, { "dovecot", DOVECOT_FAIL("192.0.2.7") },
        };
        Host a, b;
        host_init(&a, true);
        host_init(&b, false);

        for (unsigned round = 0; round < 2; round++)
                for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                        usec_t t = NOW + round * 100 + i;
                        EntryJudgement va = host_judge(&a, entries[i].identifier, entries[i].message, t);
                        EntryJudgement vb = host_judge(&b, entries[i].identifier, entries[i].message, t);
                        ASSERT_EQ(va.accepted, vb.accepted);
                        ASSERT_EQ(va.matched, vb.matched);
                }
        ASSERT_EQ(a.decided.n, b.decided.n);
        ASSERT_GE(a.decided.n, 3);
        for (size_t i = 0; i < a.decided.n; i++) {
                ASSERT_STREQ(a.decided.bans[i].jail, b.decided.bans[i].jail);
                ASSERT_TRUE(address_equal(&a.decided.bans[i].address, &b.decided.bans[i].address));
        }
        for (size_t i = 0; i < ELEMENTSOF(a.jails); i++) {
                ASSERT_UINT_EQ(a.jails[i]->failures_total, b.jails[i]->failures_total);
                ASSERT_UINT_EQ(failure_table_size(a.jails[i]->failures), failure_table_size(b.jails[i]->failures));
        }
        host_done(&a);
        host_done(&b);
}

int main(void) {
        RUN(bans_at_max_retry_with_its_causes);
        RUN(untrusted_sender_counts_nothing);
        RUN(incomplete_entry_waits_then_is_unreadable);
        RUN(banned_address_does_not_count);
        RUN(local_address_does_not_count);
        RUN(one_entry_two_jails);
        RUN(not_for_any_jail);
        RUN(jails_in_config_order_first_ban_wins);
        RUN(index_judges_like_every_jail_in_turn);
        return 0;
}
