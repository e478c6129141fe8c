/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "journal-events.h"
#include "journal-sender.h"
#include "log.h"
#include "text-put.h"

#define FIELD_MAX 256

typedef struct Fields {
        struct iovec iov[16 + 2 * 100];
        char text[16 + 2 * 100][FIELD_MAX];
        size_t n;
} Fields;

static void fields_add(Fields *f, const char *format, ...) _printf_(2, 3);
static void fields_add(Fields *f, const char *format, ...) {
        va_list ap;
        if (f->n >= ELEMENTSOF(f->iov))
                return;
        va_start(ap, format);
        int k = vsnprintf(f->text[f->n], FIELD_MAX, format, ap);
        va_end(ap);
        if (k < 0)
                return;
        f->iov[f->n].iov_base = f->text[f->n];
        f->iov[f->n].iov_len = MIN((size_t) k, (size_t) FIELD_MAX - 1);
        f->n++;
}

/* The fields of every event are written without printf, which was most of an event's cost;
 * like vsnprintf() into a FIELD_MAX buffer, a field longer than FIELD_MAX - 1 is cut there. */
typedef struct FieldText {
        char *p, *end;
} FieldText;

static bool field_begin(Fields *f, FieldText *ret) {
        if (f->n >= ELEMENTSOF(f->iov))
                return false;
        *ret = (FieldText) { f->text[f->n], f->text[f->n] + FIELD_MAX - 1 };
        return true;
}

static void field_put(FieldText *t, const char *s, size_t n) {
        n = MIN(n, (size_t) (t->end - t->p));
        memcpy(t->p, s, n);
        t->p += n;
}

static void field_put_str(FieldText *t, const char *s) {
        field_put(t, s, strlen(s));
}

static void field_put_u64(FieldText *t, uint64_t v) {
        char digits[TEXT_U64_DECIMAL_MAX];
        field_put(t, digits, (size_t) (text_put_u64(digits, v) - digits));
}

static void field_end(Fields *f, FieldText *t) {
        *t->p = 0;
        f->iov[f->n].iov_base = f->text[f->n];
        f->iov[f->n].iov_len = (size_t) (t->p - f->text[f->n]);
        f->n++;
}

static void fields_add_str(Fields *f, const char *name_eq, const char *value) {
        FieldText t;
        if (!field_begin(f, &t))
                return;
        field_put_str(&t, name_eq);
        field_put_str(&t, value);
        field_end(f, &t);
}

static void fields_add_u64(Fields *f, const char *name_eq, uint64_t v) {
        FieldText t;
        if (!field_begin(f, &t))
                return;
        field_put_str(&t, name_eq);
        field_put_u64(&t, v);
        field_end(f, &t);
}

/* NAME=ADDRESS/LENGTH, the length always written. */
static void fields_add_prefix(Fields *f, const char *name_eq, const AddressPrefix *p) {
        char a[ADDRESS_STRING_MAX];
        FieldText t;
        if (!field_begin(f, &t))
                return;
        field_put_str(&t, name_eq);
        field_put_str(&t, address_to_string(&p->address, a));
        field_put(&t, "/", 1);
        field_put_u64(&t, p->prefixlen);
        field_end(f, &t);
}

static void fields_add_ban(Fields *f, const Ban *b, const char *address) {
        AddressPrefix p = ban_prefix(b);

        fields_add_str(f, "VPOPGUARD_JAIL=", b->jail);
        fields_add_str(f, "VPOPGUARD_ADDRESS=", address);
        /* The element banned, always with its length ("192.0.2.7/32", "2001:db8:1:2::/64"). */
        fields_add_prefix(f, "VPOPGUARD_PREFIX=", &p);
        if (b->fallback_prefixlen > 0) {
                AddressPrefix wide = address_prefix_of(&p.address, b->fallback_prefixlen);
                fields_add_prefix(f, "VPOPGUARD_PREFIX_NOT_BANNED=", &wide);
        }
        fields_add_u64(f, "VPOPGUARD_FAILURES=", b->failures);
        if (b->count > 0)
                fields_add_u64(f, "VPOPGUARD_BAN_COUNT=", b->count);
        /* A permanent ban keeps VPOPGUARD_EXPIRES_USEC a number (UINT64_MAX) for readers of
         * older events; its length is the word "infinity". */
        if (ban_is_permanent(b))
                fields_add_str(f, "VPOPGUARD_BAN_USEC=", "infinity");
        else
                fields_add_u64(f, "VPOPGUARD_BAN_USEC=", b->expires_usec - b->banned_usec);
        fields_add_u64(f, "VPOPGUARD_BANNED_USEC=", b->banned_usec);
        fields_add_u64(f, "VPOPGUARD_EXPIRES_USEC=", b->expires_usec);
        fields_add_str(f, "VPOPGUARD_ORIGIN=", ban_origin_to_string(b->origin));
}

static int fields_send(JournalSender *sender, Fields *f) {
        /* sd_journal_sendv() adds it; journald's native socket does not. */
        fields_add_str(f, "SYSLOG_IDENTIFIER=", program_invocation_short_name);
        if (!log_stderr_is_journal())
                log_notice("%.*s", (int) f->iov[2].iov_len - 8, (const char *) f->iov[2].iov_base + 8);
        if (sender)
                return journal_sender_send(sender, f->iov, f->n);
        return sd_journal_sendv(f->iov, (int) f->n);
}

static void fields_add_ban_message(Fields *f, const BanChange *c, const char *address, const char *dry) {
        const Ban *b = &c->ban;
        char span[TIMESPAN_MAX], window[TIMESPAN_MAX];

        if (ban_is_permanent(b))
                snprintf(span, sizeof span, "permanently");
        else {
                char t[TIMESPAN_MAX];
                snprintf(span, sizeof span, "for %s", format_timespan(t, sizeof t, b->expires_usec - b->banned_usec));
        }
        format_timespan(window, sizeof window, c->find_time);
        char jail[JAIL_NAME_MAX + 32];
        if (b->count > 1)
                snprintf(jail, sizeof jail, "jail %s, ban %u", b->jail, b->count);
        else
                snprintf(jail, sizeof jail, "jail %s", b->jail);
        char fallback[96] = "";
        if (b->fallback_prefixlen > 0)
                snprintf(fallback, sizeof fallback, " Not its /%u: that holds an ignored, local or loopback address.",
                         (unsigned) b->fallback_prefixlen);
        if (b->origin == BAN_ORIGIN_MANUAL)
                fields_add(f, "MESSAGE=%sBanned %s %s (%s): by hand.", dry, address, span, jail);
        else if (c->fleet.peer[0])
                fields_add(f, "MESSAGE=%sBanned %s %s (%s): decided in the fleet, received from %s.", dry, address,
                           span, jail, c->fleet.peer);
        else
                fields_add(f, "MESSAGE=%sBanned %s %s (%s): %u failures within %s.%s", dry, address, span,
                           jail, b->failures, window, fallback);
}

static const char *unban_text(const BanChange *c) {
        if (c->kind == BAN_CHANGE_EXPIRE)
                return "ban time over";
        switch (c->reason) {
        case UNBAN_IGNORED:
                return "IgnoreAddress= covers it now";
        case UNBAN_LOCAL:
                return "it is configured on this host's interfaces now";
        case UNBAN_PREFIX:
                return "a ban of its prefix takes its place";
        default:
                return "lifted by hand";
        }
}

int journal_event_change(JournalSender *sender, const BanChange *c, bool dry_run) {
        const char *dry = dry_run ? "[dry run] " : "";
        char address[ADDRESS_PREFIX_STRING_MAX];
        AddressPrefix p = ban_prefix(&c->ban);
        Fields *f = malloc(sizeof(Fields)); /* ~60 KiB: too much for the stack */
        int r;

        if (!f)
                return -ENOMEM;
        f->n = 0;
        address_prefix_to_string(&p, address);

        if (c->kind == BAN_CHANGE_BAN) {
                fields_add_str(f, "MESSAGE_ID=", VPOPGUARD_MESSAGE_BAN);
                fields_add_u64(f, "PRIORITY=", LOG_NOTICE);
                fields_add_ban_message(f, c, address, dry);
        } else {
                fields_add_str(f, "MESSAGE_ID=", VPOPGUARD_MESSAGE_UNBAN);
                fields_add_u64(f, "PRIORITY=", LOG_NOTICE);
                fields_add(f, "MESSAGE=%sUnbanned %s (jail %s): %s%s%s.", dry, address, c->ban.jail, unban_text(c),
                           c->fleet.peer[0] ? " in the fleet, received from " : "", c->fleet.peer);
        }
        fields_add_ban(f, &c->ban, address);
        if (dry_run)
                fields_add_str(f, "VPOPGUARD_DRY_RUN=", "1");
        if (c->fleet.peer[0]) {
                fields_add(f, VPOPGUARD_FIELD_FLEET_PEER "=%s", c->fleet.peer);
                fields_add(f, VPOPGUARD_FIELD_FLEET_ORIGIN "=%s", c->fleet.origin_machine);
                if (c->fleet.relay)
                        fields_add(f, VPOPGUARD_FIELD_FLEET_RELAY "=1");
        }
        if (c->kind != BAN_CHANGE_BAN)
                fields_add_str(f, "VPOPGUARD_UNBAN_REASON=",
                               c->kind == BAN_CHANGE_EXPIRE ? "expired" : unban_reason_to_string(c->reason));
        for (size_t i = 0; c->kind == BAN_CHANGE_BAN && i < c->n_causes; i++) {
                char cursor[JOURNAL_CURSOR_MAX];
                fields_add_u64(f, "VPOPGUARD_CAUSE_REALTIME_USEC=", c->causes[i].realtime);
                if (journal_position_to_cursor(&c->causes[i], cursor) >= 0)
                        fields_add_str(f, "VPOPGUARD_CAUSE_CURSOR=", cursor);
        }

        r = fields_send(sender, f);
        free(f);
        return r;
}

int journal_event_entries_missed(const char *cursor) {
        return sd_journal_send("MESSAGE_ID=" VPOPGUARD_MESSAGE_ENTRIES_MISSED,
                               "PRIORITY=%d", LOG_WARNING,
                               "MESSAGE=The saved journal position is no longer in the journal (rotated or vacuumed); "
                               "resumed at the oldest entry after it, entries in between may have been missed.",
                               "VPOPGUARD_CURSOR=%s", cursor,
                               NULL);
}
