/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <string.h>

#include "fleet-entry.h"
#include "journal-events.h"
#include "macro.h"
#include "tests.h"

#define MACHINE_A "0123456789abcdef0123456789abcdef"
#define MACHINE_B "fedcba9876543210fedcba9876543210"
#define T0 1700000000000000ULL

/* An entry of the given fields (NULL-terminated), logged at T0 on the sender's clock. */
static FleetEntry entry_of(const char *field, ...) {
        FleetEntry e;
        va_list ap;

        fleet_entry_init(&e);
        va_start(ap, field);
        for (const char *f = field; f; f = va_arg(ap, const char *))
                fleet_entry_add_field(&e, f, strlen(f));
        va_end(ap);
        e.realtime_usec = T0;
        return e;
}

/* A ban event as the peer's vpopguardd logs it (root, native protocol), plus the extra fields. */
#define BAN_EVENT(...)                                                                             \
        entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=0", "_TRANSPORT=journal",              \
                 "_MACHINE_ID=" MACHINE_A, "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32", \
                 "VPOPGUARD_BAN_USEC=3600000000", "VPOPGUARD_EXPIRES_USEC=1700003600000000", ##__VA_ARGS__, NULL)
#define UNBAN_EVENT(...)                                                                           \
        entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_UNBAN, "_UID=0", "_TRANSPORT=journal",            \
                 "_MACHINE_ID=" MACHINE_A, "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32", \
                 "VPOPGUARD_EXPIRES_USEC=1700003600000000", ##__VA_ARGS__, NULL)

TEST(parse) {
        FleetEntry e = BAN_EVENT();
        char buf[ADDRESS_PREFIX_STRING_MAX];

        ASSERT_EQ(e.kind, FLEET_ENTRY_BAN);
        ASSERT_STREQ(address_prefix_to_string(&e.prefix, buf), "192.0.2.7");
        ASSERT_STREQ(e.jail, "vpopmail");
        ASSERT_UINT_EQ(e.expires_usec, 1700003600000000ULL);
        ASSERT_STREQ(e.machine, MACHINE_A);
        ASSERT_EQ(fleet_entry_judge(&e, MACHINE_B), FLEET_VERDICT_APPLY);
}

TEST(trust) {
        /* Only what the peer's journald sets decides: root or the service, natively. */
        FleetEntry user = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=1000", "_TRANSPORT=journal",
                                   "_MACHINE_ID=" MACHINE_A, "VPOPGUARD_JAIL=vpopmail",
                                   "VPOPGUARD_PREFIX=192.0.2.7/32", "VPOPGUARD_EXPIRES_USEC=1700003600000000", NULL);
        ASSERT_EQ(fleet_entry_judge(&user, MACHINE_B), FLEET_VERDICT_UNTRUSTED);
        FleetEntry unit = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=61234", "_TRANSPORT=journal",
                                   "_SYSTEMD_UNIT=vpopguard.service", "_MACHINE_ID=" MACHINE_A,
                                   "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32",
                                   "VPOPGUARD_EXPIRES_USEC=1700003600000000", NULL);
        ASSERT_EQ(fleet_entry_judge(&unit, MACHINE_B), FLEET_VERDICT_APPLY);
        FleetEntry other_unit = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=61234", "_TRANSPORT=journal",
                                         "_SYSTEMD_UNIT=vpopguard.service.evil", "_MACHINE_ID=" MACHINE_A,
                                         "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32",
                                         "VPOPGUARD_EXPIRES_USEC=1700003600000000", NULL);
        ASSERT_EQ(fleet_entry_judge(&other_unit, MACHINE_B), FLEET_VERDICT_UNTRUSTED);
        FleetEntry syslog = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=0", "_TRANSPORT=syslog",
                                     "_MACHINE_ID=" MACHINE_A, "VPOPGUARD_JAIL=vpopmail",
                                     "VPOPGUARD_PREFIX=192.0.2.7/32", "VPOPGUARD_EXPIRES_USEC=1700003600000000", NULL);
        ASSERT_EQ(fleet_entry_judge(&syslog, MACHINE_B), FLEET_VERDICT_UNTRUSTED);
        /* A value with a NUL byte or a trailing garbage is no match. */
        FleetEntry nul = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_TRANSPORT=journal", "_MACHINE_ID=" MACHINE_A,
                                  "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32",
                                  "VPOPGUARD_EXPIRES_USEC=1700003600000000", NULL);
        fleet_entry_add_field(&nul, "_UID=0\0x", 8);
        ASSERT_EQ(fleet_entry_judge(&nul, MACHINE_B), FLEET_VERDICT_UNTRUSTED);
}

TEST(echoes_and_relays) {
        /* What a peer applied for others is not a decision... */
        FleetEntry applied = BAN_EVENT("VPOPGUARD_FLEET_PEER=10.0.0.1", "VPOPGUARD_FLEET_ORIGIN_MACHINE_ID=" MACHINE_B);
        ASSERT_EQ(fleet_entry_judge(&applied, NULL), FLEET_VERDICT_IGNORE);
        /* ...unless a relay passed it on; then its origin decides whether it is our own. */
        FleetEntry relayed = BAN_EVENT("VPOPGUARD_FLEET_PEER=10.0.0.2", "VPOPGUARD_FLEET_RELAY=1",
                                       "VPOPGUARD_FLEET_ORIGIN_MACHINE_ID=" MACHINE_B);
        ASSERT_EQ(fleet_entry_judge(&relayed, "00000000000000000000000000000000"), FLEET_VERDICT_APPLY);
        ASSERT_EQ(fleet_entry_judge(&relayed, MACHINE_B), FLEET_VERDICT_IGNORE);
        FleetEntry relayed_no_origin = BAN_EVENT("VPOPGUARD_FLEET_PEER=10.0.0.2", "VPOPGUARD_FLEET_RELAY=1");
        ASSERT_EQ(fleet_entry_judge(&relayed_no_origin, NULL), FLEET_VERDICT_MALFORMED);
        /* Our own decision, come back. */
        FleetEntry own = BAN_EVENT();
        ASSERT_EQ(fleet_entry_judge(&own, MACHINE_A), FLEET_VERDICT_IGNORE);
        FleetEntry dry = BAN_EVENT("VPOPGUARD_DRY_RUN=1");
        ASSERT_EQ(fleet_entry_judge(&dry, NULL), FLEET_VERDICT_IGNORE);
}

TEST(unbans) {
        FleetEntry manual = UNBAN_EVENT("VPOPGUARD_UNBAN_REASON=manual");
        ASSERT_EQ(fleet_entry_judge(&manual, MACHINE_B), FLEET_VERDICT_APPLY);
        ASSERT_EQ(manual.kind, FLEET_ENTRY_UNBAN);
        static const char * const local_reasons[] = {
                "VPOPGUARD_UNBAN_REASON=expired", "VPOPGUARD_UNBAN_REASON=ignored",
                "VPOPGUARD_UNBAN_REASON=local", "VPOPGUARD_UNBAN_REASON=prefix",
        };
        for (size_t i = 0; i < ELEMENTSOF(local_reasons); i++) {
                FleetEntry e = UNBAN_EVENT(local_reasons[i]);
                ASSERT_EQ(fleet_entry_judge(&e, MACHINE_B), FLEET_VERDICT_IGNORE);
        }
}

TEST(malformed) {
        static const char * const bad[] = {
                "VPOPGUARD_PREFIX=192.0.2.300/32", "VPOPGUARD_PREFIX=example.com",
                "VPOPGUARD_JAIL=bad jail", "_MACHINE_ID=xyz",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                /* A later bad value of a field replaces the good one. */
                FleetEntry e = BAN_EVENT(bad[i]);
                ASSERT_EQ(fleet_entry_judge(&e, NULL), FLEET_VERDICT_MALFORMED);
        }
        FleetEntry no_expiry = entry_of("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, "_UID=0", "_TRANSPORT=journal",
                                        "_MACHINE_ID=" MACHINE_A, "VPOPGUARD_JAIL=vpopmail",
                                        "VPOPGUARD_PREFIX=192.0.2.7/32", "VPOPGUARD_EXPIRES_USEC=-5", NULL);
        ASSERT_EQ(fleet_entry_judge(&no_expiry, NULL), FLEET_VERDICT_MALFORMED);
        FleetEntry other = entry_of("MESSAGE_ID=0123", "_UID=0", "_TRANSPORT=journal", "_MACHINE_ID=" MACHINE_A,
                                    "VPOPGUARD_JAIL=vpopmail", "VPOPGUARD_PREFIX=192.0.2.7/32", NULL);
        ASSERT_EQ(fleet_entry_judge(&other, NULL), FLEET_VERDICT_MALFORMED);
        /* Overlong and odd fields are skipped without harm. */
        char big[4096];
        memset(big, 'A', sizeof big);
        memcpy(big, "VPOPGUARD_JAIL=", 15);
        FleetEntry e = BAN_EVENT();
        fleet_entry_add_field(&e, big, sizeof big);
        fleet_entry_add_field(&e, "=", 1);
        fleet_entry_add_field(&e, "", 0);
        ASSERT_EQ(fleet_entry_judge(&e, NULL), FLEET_VERDICT_APPLY);
}

TEST(remaining_time) {
        FleetEntry e = BAN_EVENT();

        /* Read when logged, or a minute later on our clock: what it had left, less that minute. */
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0), 1700003600000000ULL);
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0 + 60 * USEC_PER_SEC), 1700003600000000ULL);
        /* Our clock behind the sender's: never longer than it had left. */
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0 - 600 * USEC_PER_SEC), T0 - 600 * USEC_PER_SEC + USEC_PER_HOUR);
        /* Over. */
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0 + USEC_PER_HOUR), 0);
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0 + 2 * USEC_PER_HOUR), 0);
        e.realtime_usec = 1700003600000000ULL + 1; /* logged after its own end */
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&e, T0), 0);
        FleetEntry permanent = BAN_EVENT("VPOPGUARD_BAN_USEC=infinity", "VPOPGUARD_EXPIRES_USEC=18446744073709551615");
        ASSERT_UINT_EQ(fleet_entry_local_expiry(&permanent, T0 + 1000 * USEC_PER_HOUR), USEC_INFINITY);
        ASSERT_EQ(fleet_entry_judge(&permanent, NULL), FLEET_VERDICT_APPLY);
}

int main(void) {
        RUN(parse);
        RUN(trust);
        RUN(echoes_and_relays);
        RUN(unbans);
        RUN(malformed);
        RUN(remaining_time);
        return 0;
}
