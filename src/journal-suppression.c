/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "journal-suppression.h"

#define MESSAGE_PREFIX "Suppressed "
#define MESSAGE_MIDDLE " messages from "
/* UINT64_MAX has 20 digits. */
#define COUNT_DIGITS_MAX 20

static bool field_is(const char *value, size_t len, const char *expected) {
        return len == strlen(expected) && memcmp(value, expected, len) == 0;
}

bool journal_suppression_may_match(const char *field, const char *value) {
        static const struct {
                const char *field, *value;
        } fixed[] = {
                { "SYSLOG_IDENTIFIER", "systemd-journald" },
                { "_TRANSPORT",        "driver" },
                { "MESSAGE_ID",        JOURNAL_SUPPRESSION_MESSAGE_ID },
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (streq(field, fixed[i].field))
                        return streq(value, fixed[i].value);
        return true;
}

bool journal_unit_name_is_valid(const char *s, size_t len) {
        const char *dot = NULL;

        if (len == 0 || len > JOURNAL_UNIT_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == ':' || c == '_' || c == '-' || c == '\\' || c == '@')
                        continue;
                if (c != '.')
                        return false;
                dot = s + i;
        }
        return dot && dot != s && dot != s + len - 1;
}

/* Digits only: no sign, no space, no leading zero, no overflow, not 0. */
static int parse_count(const char *s, size_t len, uint64_t *ret) {
        uint64_t n = 0;

        if (len == 0 || len > COUNT_DIGITS_MAX || s[0] == '0')
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                unsigned d = (unsigned) (s[i] - '0');
                if (n > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                n = n * 10 + d;
        }
        *ret = n;
        return 0;
}

/* "Suppressed N messages from UNIT", as journald writes it. */
static int parse_message(const char *s, size_t len, uint64_t *ret_count, const char **ret_unit, size_t *ret_unit_len) {
        size_t p = strlen(MESSAGE_PREFIX), digits = 0;
        uint64_t n;

        if (len < p || memcmp(s, MESSAGE_PREFIX, p) != 0)
                return -EBADMSG;
        while (p + digits < len && s[p + digits] >= '0' && s[p + digits] <= '9')
                digits++;
        if (parse_count(s + p, digits, &n) < 0)
                return -EBADMSG;
        p += digits;
        if (len - p < strlen(MESSAGE_MIDDLE) || memcmp(s + p, MESSAGE_MIDDLE, strlen(MESSAGE_MIDDLE)) != 0)
                return -EBADMSG;
        p += strlen(MESSAGE_MIDDLE);
        if (!journal_unit_name_is_valid(s + p, len - p))
                return -EBADMSG;
        *ret_count = n;
        *ret_unit = s + p;
        *ret_unit_len = len - p;
        return 0;
}

int journal_suppression_parse(JournalFieldGetter get, void *userdata, JournalSuppression *ret) {
        const char *value, *unit = NULL;
        size_t len, unit_len = 0;
        uint64_t n;

        /* _TRANSPORT first: every entry has it, while a missing MESSAGE_ID costs a full scan. */
        if (get("_TRANSPORT", &value, &len, userdata) < 0 || !field_is(value, len, "driver"))
                return 0;
        if (get("MESSAGE_ID", &value, &len, userdata) < 0 || !field_is(value, len, JOURNAL_SUPPRESSION_MESSAGE_ID))
                return 0;

        if (get("N_DROPPED", &value, &len, userdata) < 0 || parse_count(value, len, &n) < 0)
                return -EBADMSG;

        if (get("OBJECT_SYSTEMD_UNIT", &value, &len, userdata) >= 0 && journal_unit_name_is_valid(value, len)) {
                unit = value;
                unit_len = len;
        } else {
                /* Not seen on systemd 252, which always names the sender; the text says it too. */
                uint64_t m;
                if (get("MESSAGE", &value, &len, userdata) < 0 ||
                    parse_message(value, len, &m, &unit, &unit_len) < 0 || m != n)
                        return -EBADMSG;
        }

        memcpy(ret->unit, unit, unit_len);
        ret->unit[unit_len] = 0;
        ret->n_dropped = n;
        return 1;
}

int journal_suppression_find_jails(sd_journal *j, const char *cursor, const char *unit, size_t n_jails,
                                   SuppressionJailAccepts accepts, void *userdata, bool *ret_fed) {
        _cleanup_free_ bool *fed = calloc(n_jails ? n_jails : 1, sizeof(bool));
        _cleanup_free_ char *match = NULL;
        size_t n_fed = 0;
        int r;

        if (!fed)
                return -ENOMEM;
        if (!journal_unit_name_is_valid(unit, strlen(unit)))
                return -EINVAL;
        if (asprintf(&match, "_SYSTEMD_UNIT=%s", unit) < 0)
                return -ENOMEM;

        /* One match: the journal finds the unit's entries by its index, however old. */
        sd_journal_flush_matches(j);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0)
                return r;
        r = sd_journal_seek_cursor(j, cursor);
        if (r < 0)
                return r;

        for (unsigned k = 0; k < SUPPRESSION_LOOKBACK_MAX && n_fed < n_jails; k++) {
                r = sd_journal_previous(j);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                for (size_t i = 0; i < n_jails; i++)
                        if (!fed[i] && accepts(i, journal_field_get, j, userdata)) {
                                fed[i] = true;
                                n_fed++;
                        }
        }

        memcpy(ret_fed, fed, n_jails * sizeof(bool));
        return (int) n_fed;
}

typedef struct TrackedJail {
        char *name;
        SuppressionStats stats;
} TrackedJail;

struct SuppressionTracker {
        TrackedJail *jails;
        size_t n_jails;
};

int suppression_tracker_new(SuppressionTracker **ret) {
        SuppressionTracker *t = calloc(1, sizeof(SuppressionTracker));
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static void jails_free(TrackedJail *jails, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(jails[i].name);
        free(jails);
}

SuppressionTracker *suppression_tracker_free(SuppressionTracker *t) {
        if (!t)
                return NULL;
        jails_free(t->jails, t->n_jails);
        free(t);
        return NULL;
}

int suppression_tracker_set_jails(SuppressionTracker *t, const char * const *names, size_t n) {
        TrackedJail *jails = calloc(n ? n : 1, sizeof(TrackedJail));
        if (!jails)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                jails[i].name = strdup(names[i]);
                if (!jails[i].name) {
                        jails_free(jails, i);
                        return -ENOMEM;
                }
                for (size_t k = 0; k < t->n_jails; k++)
                        if (streq(t->jails[k].name, names[i]))
                                jails[i].stats = t->jails[k].stats;
        }

        jails_free(t->jails, t->n_jails);
        t->jails = jails;
        t->n_jails = n;
        return 0;
}

void suppression_tracker_count(SuppressionTracker *t, size_t jail, const JournalSuppression *s, usec_t realtime) {
        SuppressionStats *st;

        if (jail >= t->n_jails)
                return;
        st = &t->jails[jail].stats;
        st->messages = st->messages > UINT64_MAX - s->n_dropped ? UINT64_MAX : st->messages + s->n_dropped;
        st->events++;
        /* Notes come in journal order, which is not always time order: keep the newest. */
        if (realtime >= st->last_usec) {
                st->last_usec = realtime;
                memcpy(st->last_unit, s->unit, sizeof st->last_unit);
        }
}

const SuppressionStats *suppression_tracker_get(const SuppressionTracker *t, const char *name) {
        for (size_t i = 0; i < t->n_jails; i++)
                if (streq(t->jails[i].name, name))
                        return &t->jails[i].stats;
        return NULL;
}
