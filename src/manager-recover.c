/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "journal-events.h"
#include "log.h"
#include "manager.h"
#include "sorted-array.h"

/* A batch is committed as: nft transaction, ban events, state file. A crash after the events
 * but before the state file makes the restarted daemon replay that batch and decide the same
 * bans again. The events it already logged are the record of those bans: they are read back
 * here, so the replayed ban keeps its original times and is not logged twice.
 *
 * Only events from root or from our own UID count: anyone can log MESSAGE_ID= and VPOPGUARD_*
 * fields, but not forge _UID=. A ban matches only if its triggering entry (the last cause
 * cursor) is the same, which no earlier or later ban can share. */

#define LOGGED_BANS_MAX 1000000U

struct LoggedBan {
        Address address;
        char *trigger_cursor;
        usec_t banned_usec, expires_usec;
};

static int field_value(const void *data, size_t len, const char *name, char *buf, size_t size) {
        size_t n = strlen(name);
        if (len <= n || memcmp(data, name, n) != 0 || ((const char *) data)[n] != '=')
                return 0;
        len -= n + 1;
        if (len >= size)
                return -E2BIG;
        memcpy(buf, (const char *) data + n + 1, len);
        buf[len] = 0;
        return 1;
}

static int read_logged_ban(sd_journal *j, LoggedBan *ret) {
        char address[ADDRESS_PREFIX_STRING_MAX + 1] = "", trigger[JOURNAL_CURSOR_MAX] = "", number[32];
        AddressPrefix prefix;
        unsigned long long banned = 0, expires = 0;
        const void *data;
        size_t len;

        SD_JOURNAL_FOREACH_DATA(j, data, len) {
                /* A dry run decided nothing: its events must not stand in for a real ban. */
                if (len == strlen("VPOPGUARD_DRY_RUN=1") && memcmp(data, "VPOPGUARD_DRY_RUN=1", len) == 0)
                        return 0;
                /* Causes come oldest first, so the last one is the entry that triggered the ban. */
                (void) field_value(data, len, "VPOPGUARD_ADDRESS", address, sizeof address);
                (void) field_value(data, len, "VPOPGUARD_CAUSE_CURSOR", trigger, sizeof trigger);
                if (field_value(data, len, "VPOPGUARD_BANNED_USEC", number, sizeof number) > 0)
                        banned = strtoull(number, NULL, 10);
                if (field_value(data, len, "VPOPGUARD_EXPIRES_USEC", number, sizeof number) > 0)
                        expires = strtoull(number, NULL, 10);
        }
        if (!*trigger || banned == 0 || expires <= banned)
                return 0;
        /* A prefix ban ("2001:db8:1:2::/64") is keyed, like the ban table, by its first address. */
        if (address_prefix_parse(address, &prefix) < 0)
                return 0;
        ret->address = prefix.address;
        ret->trigger_cursor = strdup(trigger);
        if (!ret->trigger_cursor)
                return -ENOMEM;
        ret->banned_usec = banned;
        ret->expires_usec = expires;
        return 1;
}

static int logged_ban_compare(const void *a, const void *b) {
        return address_compare(&((const LoggedBan *) a)->address, &((const LoggedBan *) b)->address);
}

int manager_load_logged_bans(Manager *m) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        char match[64];
        usec_t from;
        int r;

        if (m->options.dry_run)
                return 0;
        /* Events of the batches the state file does not hold were logged after it was written
         * (a second of slack for coarse file times); with no state at all, a first run may have
         * crashed before its first save. */
        if (m->state_saved_usec > 0)
                from = m->state_saved_usec > USEC_PER_SEC ? m->state_saved_usec - USEC_PER_SEC : 0;
        else {
                usec_t now = now_realtime();
                from = now > m->max_find_time ? now - m->max_find_time : 0;
        }

        /* Our events go to the local journal, also when entries come from --journal-directory. */
        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return log_debug_errno(r, "Cannot open the local journal to look for logged bans: %m");
        r = sd_journal_add_match(j, "MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, 0);
        if (r >= 0)
                r = sd_journal_add_match(j, "_UID=0", 0);
        if (r >= 0 && getuid() != 0) {
                snprintf(match, sizeof match, "_UID=%u", (unsigned) getuid());
                r = sd_journal_add_match(j, match, 0);
        }
        if (r >= 0)
                r = sd_journal_seek_realtime_usec(j, from);
        if (r < 0)
                return log_debug_errno(r, "Cannot search the journal for logged bans: %m");

        size_t allocated = 0;
        while ((r = sd_journal_next(j)) > 0 && m->n_logged_bans < LOGGED_BANS_MAX) {
                LoggedBan b;

                r = read_logged_ban(j, &b);
                if (r < 0)
                        return log_oom();
                if (r == 0)
                        continue;
                if (m->n_logged_bans == allocated) {
                        size_t n = allocated > 0 ? allocated * 2 : 64;
                        LoggedBan *grown = reallocarray(m->logged_bans, n, sizeof(LoggedBan));
                        if (!grown) {
                                free(b.trigger_cursor);
                                return log_oom();
                        }
                        m->logged_bans = grown;
                        allocated = n;
                }
                m->logged_bans[m->n_logged_bans++] = b;
        }
        /* Sorted by address, so that each replayed ban finds its events by binary search: a
         * restart after a flood may hold a million of them. */
        if (m->n_logged_bans > 1)
                qsort(m->logged_bans, m->n_logged_bans, sizeof(LoggedBan), logged_ban_compare);
        if (m->n_logged_bans > 0)
                log_debug("%zu ban event%s logged after the saved state; a replay will not log them again.",
                          m->n_logged_bans, m->n_logged_bans == 1 ? "" : "s");
        return 0;
}

static int logged_ban_compare_address(const void *element, const void *address) {
        const LoggedBan *l = element;
        return address_compare(&l->address, address);
}

bool manager_take_logged_ban(Manager *m, const Address *a, const char *trigger_cursor, Ban *b) {
        /* The first event of a; a taken event keeps its place with its cursor freed. */
        size_t lo = sorted_lower_bound(m->logged_bans, m->n_logged_bans, sizeof(LoggedBan), a,
                                       logged_ban_compare_address);

        for (size_t i = lo; i < m->n_logged_bans && address_equal(&m->logged_bans[i].address, a); i++) {
                LoggedBan *l = &m->logged_bans[i];
                if (!l->trigger_cursor || !streq(l->trigger_cursor, trigger_cursor))
                        continue;
                b->banned_usec = l->banned_usec;
                b->expires_usec = l->expires_usec;
                ban_clamp_to_now(b, now_realtime());
                free(l->trigger_cursor);
                l->trigger_cursor = NULL;
                return true;
        }
        return false;
}

void manager_forget_logged_bans(Manager *m) {
        for (size_t i = 0; i < m->n_logged_bans; i++)
                free(m->logged_bans[i].trigger_cursor);
        free(m->logged_bans);
        m->logged_bans = NULL;
        m->n_logged_bans = 0;
}
