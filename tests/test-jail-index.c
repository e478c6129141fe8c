/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "config-text.h"
#include "jail-index.h"
#include "macro.h"
#include "tests.h"

/* Which jails an entry meets: the jails its fields can satisfy, in the configuration's order,
 * and the jails without JournalMatch= for every entry. */

static const char *conf =
        "[Jail]\n"
        "Name=sshd\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd-session\n"
        "FailRegex=^Failed password for .* from <HOST> port\n"
        "[Jail]\n"
        "Name=dovecot\n"
        "JournalMatch=SYSLOG_IDENTIFIER=dovecot\n"
        "FailRegex=^auth failed, rip=<HOST>$\n"
        "[Jail]\n"
        "Name=unit\n"
        "JournalMatch=_SYSTEMD_UNIT=ssh.service\n"
        "FailRegex=^Failed password for .* from <HOST> port\n"
        "[Jail]\n"
        "Name=sshd-unit\n"
        "JournalMatch=_SYSTEMD_UNIT=ssh.service\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "FailRegex=^Failed password for .* from <HOST> port\n"
        "[Jail]\n"
        "Name=sshd-again\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "FailRegex=^Invalid user .* from <HOST> port\n"
        /* Five units and one identifier: filed under the identifier, which five jails share
         * (its five values must not count as five jails). */
        "[Jail]\n"
        "Name=units\n"
        "JournalMatch=_SYSTEMD_UNIT=a.service\n"
        "JournalMatch=_SYSTEMD_UNIT=b.service\n"
        "JournalMatch=_SYSTEMD_UNIT=c.service\n"
        "JournalMatch=_SYSTEMD_UNIT=d.service\n"
        "JournalMatch=_SYSTEMD_UNIT=e.service\n"
        "JournalMatch=SYSLOG_IDENTIFIER=sshd\n"
        "FailRegex=^Invalid user .* from <HOST> port\n";

/* The jails array: the configured ones with, third, one without JournalMatch= (which the
 * configuration refuses for an enabled jail, but a Jail may have). */
#define N_JAILS 7
#define EVERYWHERE 2

typedef struct World {
        Config *config;
        Jail *configured[6];
        Jail everywhere;
        Jail *jails[N_JAILS];
        JailIndex *index;
} World;

static void world_init(World *w) {
        *w = (World) { .config = config_from_text(conf) };
        ASSERT_EQ(w->config->n_jails, 6);
        for (size_t i = 0, k = 0; i < N_JAILS; i++) {
                if (i == EVERYWHERE) {
                        w->jails[i] = &w->everywhere;
                        continue;
                }
                ASSERT_OK(jail_new(&w->config->jails[k], &w->configured[k]));
                w->jails[i] = w->configured[k++];
        }
        ASSERT_OK(jail_index_new(w->jails, N_JAILS, &w->index));
        ASSERT_EQ(jail_index_size(w->index), N_JAILS);
}

static void world_done(World *w) {
        for (size_t k = 0; k < ELEMENTSOF(w->configured); k++)
                jail_free(w->configured[k]);
        jail_index_free(w->index);
        config_free(w->config);
}

/* An entry: up to two fields; a NULL name ends the list. len SIZE_MAX means strlen(value). */
typedef struct Field {
        const char *name, *value;
        size_t len;
} Field;

static int get_field(const char *name, const char **ret_value, size_t *ret_len, void *userdata) {
        for (const Field *f = userdata; f->name; f++)
                if (streq(f->name, name)) {
                        *ret_value = f->value;
                        *ret_len = f->len == SIZE_MAX ? strlen(f->value) : f->len;
                        return 0;
                }
        return -ENOENT;
}

/* The jails the entry meets, as "0,2,4" (positions in the jails array). */
static const char *lookup(const World *w, const Field *fields, char buf[static 64]) {
        size_t found[N_JAILS];
        size_t n = jail_index_lookup(w->index, get_field, (void *) fields, found);
        char *p = buf;

        ASSERT_LE(n, N_JAILS);
        *p = 0;
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s%zu", i > 0 ? "," : "", found[i]);
        return buf;
}

#define ID(v) { "SYSLOG_IDENTIFIER", v, SIZE_MAX }
#define UNIT(v) { "_SYSTEMD_UNIT", v, SIZE_MAX }

TEST(entries_meet_their_jails_in_order) {
        World w;
        char buf[64];
        world_init(&w);

        /* sshd (0) by either value, sshd-unit (4), sshd-again (5) and units (6) by "sshd" only;
         * the jail without matches (2) always. */
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("sshd"), {} }, buf), "0,2,4,5,6");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("sshd-session"), {} }, buf), "0,2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("dovecot"), {} }, buf), "1,2");
        /* unit (3) is filed under _SYSTEMD_UNIT, the only field it matches on; sshd-unit (4)
         * under SYSLOG_IDENTIFIER, which more jails share, so the unit alone does not reach it. */
        ASSERT_STREQ(lookup(&w, (Field[]) { UNIT("ssh.service"), {} }, buf), "2,3");
        ASSERT_STREQ(lookup(&w, (Field[]) { UNIT("ssh.service"), ID("sshd"), {} }, buf), "0,2,3,4,5,6");
        ASSERT_STREQ(lookup(&w, (Field[]) { UNIT("a.service"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("dovecot"), UNIT("ssh.service"), {} }, buf), "1,2,3");
        world_done(&w);
}

TEST(near_misses_meet_only_the_unfiltered_jail) {
        World w;
        char buf[64];
        world_init(&w);

        ASSERT_STREQ(lookup(&w, (Field[]) { {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("vpopmail"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("ssh"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("sshd-sessio"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("sshd-session2"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID("SSHD"), {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { ID(""), {} }, buf), "2");
        /* Values are bytes with a length: "sshd" followed by a NUL and more is not "sshd". */
        ASSERT_STREQ(lookup(&w, (Field[]) { { "SYSLOG_IDENTIFIER", "sshd\0x", 6 }, {} }, buf), "2");
        ASSERT_STREQ(lookup(&w, (Field[]) { { "SYSLOG_IDENTIFIER", "sshd\0x", 4 }, {} }, buf), "0,2,4,5,6");
        /* A value filed under one field does not count under another. */
        ASSERT_STREQ(lookup(&w, (Field[]) { UNIT("sshd"), {} }, buf), "2");
        world_done(&w);
}

/* Whatever the entry, every jail that accepts it is among the jails it meets: the index only
 * spares the jails that would have said no. */
TEST(never_misses_an_accepting_jail) {
        static const char *ids[] = { "sshd", "sshd-session", "dovecot", "vpopmail", NULL };
        static const char *units[] = { "ssh.service", "dovecot.service", "a.service", "e.service", NULL };
        World w;
        world_init(&w);

        for (size_t a = 0; a < ELEMENTSOF(ids); a++)
                for (size_t b = 0; b < ELEMENTSOF(units); b++) {
                        Field fields[3] = {};
                        size_t n = 0, found[N_JAILS], n_found, k = 0;

                        if (ids[a])
                                fields[n++] = (Field) ID(ids[a]);
                        if (units[b])
                                fields[n++] = (Field) UNIT(units[b]);
                        n_found = jail_index_lookup(w.index, get_field, fields, found);
                        for (size_t i = 0; i < N_JAILS; i++) {
                                if (i == EVERYWHERE)
                                        continue;
                                if (!jail_accepts_entry(w.jails[i], get_field, fields, NULL))
                                        continue;
                                while (k < n_found && found[k] < i)
                                        k++;
                                if (k == n_found || found[k] != i) {
                                        fprintf(stderr, "jail %zu accepts %s/%s but was not found\n", i,
                                                ids[a] ?: "-", units[b] ?: "-");
                                        ASSERT_TRUE(false);
                                }
                        }
                }
        world_done(&w);
}

TEST(no_jails) {
        JailIndex *x = NULL;
        size_t found[1];

        ASSERT_OK(jail_index_new(NULL, 0, &x));
        ASSERT_EQ(jail_index_lookup(x, get_field, (Field[]) { ID("sshd"), {} }, found), 0);
        jail_index_free(x);
}

int main(void) {
        RUN(entries_meet_their_jails_in_order);
        RUN(near_misses_meet_only_the_unfiltered_jail);
        RUN(never_misses_an_accepting_jail);
        RUN(no_jails);
        return 0;
}
