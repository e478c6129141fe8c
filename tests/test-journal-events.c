/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ban and unban entries, byte for byte as they reach journald (a fake one: a datagram
 * socket): the fields journalctl users and the fleet's peers read. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal-events.h"
#include "journal-sender.h"
#include "macro.h"
#include "tests.h"

static char dir[] = "/tmp/test-journal-events.XXXXXX";
static char path[sizeof dir + 16];

static int fake_journald(void) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_OK(fd);
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        ASSERT_OK(bind(fd, (struct sockaddr *) &a, sizeof a));
        return fd;
}

static Address parse(const char *s) {
        Address a;
        ASSERT_OK(address_parse(s, strlen(s), &a));
        return a;
}

/* Sends the event of c and checks the datagram journald gets. */
static void assert_event(JournalSender *s, int fd, const BanChange *c, bool dry_run, const char *want) {
        static char buf[65536];

        ASSERT_OK(journal_event_change(s, c, dry_run));
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        ASSERT_TRUE(n >= 0);
        buf[n] = 0;
        if (!streq(buf, want))
                fprintf(stderr, "got:\n%s\nwant:\n%s\n", buf, want);
        ASSERT_STREQ(buf, want);
}

static const char *const cursors[] = {
        "s=0123456789abcdef0123456789abcdef;i=1a;b=fedcba9876543210fedcba9876543210;m=5;t=6619b8ea03479;x=65076ca072fbf79",
        "s=0123456789abcdef0123456789abcdef;i=1b;b=fedcba9876543210fedcba9876543210;m=6;t=6619b8ea0347a;x=0",
        "s=0123456789abcdef0123456789abcdef;i=ffffffffffffffff;b=fedcba9876543210fedcba9876543210;m=ffffffffffffffff;t=6619b8ea0347b;x=ffffffffffffffff",
};

TEST(ban_entries) {
        JournalPosition causes[4];
        JournalSender *s = NULL;
        int fd;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/socket", dir);
        fd = fake_journald();
        ASSERT_OK(journal_sender_new(NULL, path, &s));

        for (size_t i = 0; i < ELEMENTSOF(cursors); i++)
                ASSERT_OK(journal_position_from_cursor(cursors[i], UINT64_C(0x6619b8ea03479) + i, &causes[i]));
        /* A cause without a cursor keeps its time only. */
        ASSERT_OK(journal_position_from_cursor("bogus", 42, &causes[3]));

        BanChange c = {
                .kind = BAN_CHANGE_BAN,
                .ban = {
                        .address = parse("192.0.2.7"),
                        .prefixlen = 32,
                        .jail = "vpopmail",
                        .failures = 3,
                        .count = 1,
                        .banned_usec = UINT64_C(1796170600952953),
                        .expires_usec = UINT64_C(1796170600952953) + UINT64_C(3600000000),
                        .origin = BAN_ORIGIN_JOURNAL,
                },
                .find_time = UINT64_C(1209600000000),
                .causes = causes,
                .n_causes = 4,
        };
        assert_event(s, fd, &c, false,
                     "MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474\n"
                     "PRIORITY=5\n"
                     "MESSAGE=Banned 192.0.2.7 for 1h (jail vpopmail): 3 failures within 14d.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=192.0.2.7\n"
                     "VPOPGUARD_PREFIX=192.0.2.7/32\n"
                     "VPOPGUARD_FAILURES=3\n"
                     "VPOPGUARD_BAN_COUNT=1\n"
                     "VPOPGUARD_BAN_USEC=3600000000\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=1796174200952953\n"
                     "VPOPGUARD_ORIGIN=journal\n"
                     "VPOPGUARD_CAUSE_REALTIME_USEC=1796170600952953\n"
                     "VPOPGUARD_CAUSE_CURSOR=s=0123456789abcdef0123456789abcdef;i=1a;b=fedcba9876543210fedcba9876543210;m=5;t=6619b8ea03479;x=65076ca072fbf79\n"
                     "VPOPGUARD_CAUSE_REALTIME_USEC=1796170600952954\n"
                     "VPOPGUARD_CAUSE_CURSOR=s=0123456789abcdef0123456789abcdef;i=1b;b=fedcba9876543210fedcba9876543210;m=6;t=6619b8ea0347a;x=0\n"
                     "VPOPGUARD_CAUSE_REALTIME_USEC=1796170600952955\n"
                     "VPOPGUARD_CAUSE_CURSOR=s=0123456789abcdef0123456789abcdef;i=ffffffffffffffff;b=fedcba9876543210fedcba9876543210;m=ffffffffffffffff;t=6619b8ea0347b;x=ffffffffffffffff\n"
                     "VPOPGUARD_CAUSE_REALTIME_USEC=42\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        /* A /64 of IPv6, its second ban, in a dry run; then a single address whose /64 holds a
         * local one; then a permanent ban by hand. */
        c.ban.address = parse("2001:db8:1:2::");
        c.ban.prefixlen = 64;
        c.ban.count = 2;
        c.n_causes = 1;
        assert_event(s, fd, &c, true,
                     "MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474\n"
                     "PRIORITY=5\n"
                     "MESSAGE=[dry run] Banned 2001:db8:1:2::/64 for 1h (jail vpopmail, ban 2): 3 failures within 14d.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=2001:db8:1:2::/64\n"
                     "VPOPGUARD_PREFIX=2001:db8:1:2::/64\n"
                     "VPOPGUARD_FAILURES=3\n"
                     "VPOPGUARD_BAN_COUNT=2\n"
                     "VPOPGUARD_BAN_USEC=3600000000\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=1796174200952953\n"
                     "VPOPGUARD_ORIGIN=journal\n"
                     "VPOPGUARD_DRY_RUN=1\n"
                     "VPOPGUARD_CAUSE_REALTIME_USEC=1796170600952953\n"
                     "VPOPGUARD_CAUSE_CURSOR=s=0123456789abcdef0123456789abcdef;i=1a;b=fedcba9876543210fedcba9876543210;m=5;t=6619b8ea03479;x=65076ca072fbf79\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        c.ban.address = parse("2001:db8:1:2::7");
        c.ban.prefixlen = 128;
        c.ban.fallback_prefixlen = 64;
        c.ban.count = 0;
        c.n_causes = 0;
        assert_event(s, fd, &c, false,
                     "MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474\n"
                     "PRIORITY=5\n"
                     "MESSAGE=Banned 2001:db8:1:2::7 for 1h (jail vpopmail): 3 failures within 14d. Not its /64: that holds an ignored, local or loopback address.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=2001:db8:1:2::7\n"
                     "VPOPGUARD_PREFIX=2001:db8:1:2::7/128\n"
                     "VPOPGUARD_PREFIX_NOT_BANNED=2001:db8:1:2::/64\n"
                     "VPOPGUARD_FAILURES=3\n"
                     "VPOPGUARD_BAN_USEC=3600000000\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=1796174200952953\n"
                     "VPOPGUARD_ORIGIN=journal\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        c.ban.address = parse("2001:db8::1");
        c.ban.prefixlen = 0;
        c.ban.fallback_prefixlen = 0;
        c.ban.count = 1;
        c.ban.failures = 0;
        c.ban.origin = BAN_ORIGIN_MANUAL;
        c.ban.expires_usec = USEC_INFINITY;
        assert_event(s, fd, &c, false,
                     "MESSAGE_ID=7fc6f43d6e5d457ba31097a4cc519474\n"
                     "PRIORITY=5\n"
                     "MESSAGE=Banned 2001:db8::1 permanently (jail vpopmail): by hand.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=2001:db8::1\n"
                     "VPOPGUARD_PREFIX=2001:db8::1/128\n"
                     "VPOPGUARD_FAILURES=0\n"
                     "VPOPGUARD_BAN_COUNT=1\n"
                     "VPOPGUARD_BAN_USEC=infinity\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=18446744073709551615\n"
                     "VPOPGUARD_ORIGIN=manual\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        /* An expiry, and an unban received from a fleet peer. */
        c.kind = BAN_CHANGE_EXPIRE;
        c.ban.address = parse("192.0.2.7");
        c.ban.prefixlen = 32;
        c.ban.origin = BAN_ORIGIN_JOURNAL;
        c.ban.failures = 3;
        c.ban.expires_usec = UINT64_C(1796174200952953);
        assert_event(s, fd, &c, false,
                     "MESSAGE_ID=16f9f8826ed04c4b9f2a2591444632bc\n"
                     "PRIORITY=5\n"
                     "MESSAGE=Unbanned 192.0.2.7 (jail vpopmail): ban time over.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=192.0.2.7\n"
                     "VPOPGUARD_PREFIX=192.0.2.7/32\n"
                     "VPOPGUARD_FAILURES=3\n"
                     "VPOPGUARD_BAN_COUNT=1\n"
                     "VPOPGUARD_BAN_USEC=3600000000\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=1796174200952953\n"
                     "VPOPGUARD_ORIGIN=journal\n"
                     "VPOPGUARD_UNBAN_REASON=expired\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        c.kind = BAN_CHANGE_UNBAN;
        c.reason = UNBAN_MANUAL;
        snprintf(c.fleet.peer, sizeof c.fleet.peer, "mx2");
        snprintf(c.fleet.origin_machine, sizeof c.fleet.origin_machine, "00112233445566778899aabbccddeeff");
        c.fleet.relay = true;
        assert_event(s, fd, &c, false,
                     "MESSAGE_ID=16f9f8826ed04c4b9f2a2591444632bc\n"
                     "PRIORITY=5\n"
                     "MESSAGE=Unbanned 192.0.2.7 (jail vpopmail): lifted by hand in the fleet, received from mx2.\n"
                     "VPOPGUARD_JAIL=vpopmail\n"
                     "VPOPGUARD_ADDRESS=192.0.2.7\n"
                     "VPOPGUARD_PREFIX=192.0.2.7/32\n"
                     "VPOPGUARD_FAILURES=3\n"
                     "VPOPGUARD_BAN_COUNT=1\n"
                     "VPOPGUARD_BAN_USEC=3600000000\n"
                     "VPOPGUARD_BANNED_USEC=1796170600952953\n"
                     "VPOPGUARD_EXPIRES_USEC=1796174200952953\n"
                     "VPOPGUARD_ORIGIN=journal\n"
                     "VPOPGUARD_FLEET_PEER=mx2\n"
                     "VPOPGUARD_FLEET_ORIGIN_MACHINE_ID=00112233445566778899aabbccddeeff\n"
                     "VPOPGUARD_FLEET_RELAY=1\n"
                     "VPOPGUARD_UNBAN_REASON=manual\n"
                     "SYSLOG_IDENTIFIER=test-journal-events\n");

        journal_sender_free(s);
        close(fd);
        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
        journal_position_table_reset();
}

int main(void) {
        RUN(ban_entries);
        return 0;
}
