/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "ctl-print.h"
#include "format-table.h"
#include "macro.h"

char *ctl_format_span(char buf[static TIMESPAN_MAX], usec_t span) {
        /* Under a minute seconds; under a day minutes ("3h 12min"); beyond, hours ("2d 5h"). */
        usec_t unit = span >= USEC_PER_DAY ? USEC_PER_HOUR : span >= USEC_PER_MINUTE ? USEC_PER_MINUTE : USEC_PER_SEC;

        usec_t rest = span % unit;

        span -= rest;
        if (rest >= unit / 2 && span < USEC_INFINITY - unit)
                span += unit;
        return format_timespan(buf, TIMESPAN_MAX, span);
}

const char *ctl_format_relative(char buf[static CTL_RELATIVE_MAX], usec_t t, usec_t now) {
        char span[TIMESPAN_MAX];

        if (t == 0)
                return "-";
        ctl_format_span(span, t > now ? t - now : now - t);
        if (streq(span, "0"))
                return "now";
        snprintf(buf, CTL_RELATIVE_MAX, t > now ? "in %s" : "%s ago", span);
        return buf;
}

/* Local time, "Thu 2024-05-02 09:00:00 UTC" with the date, else "09:00:00". */
static const char *format_time(char buf[static 64], usec_t t, bool date) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        if (!localtime_r(&sec, &tm))
                return "-";
        n = date ? strftime(buf, 64, "%a %Y-%m-%d %H:%M:%S %Z", &tm) : strftime(buf, 64, "%H:%M:%S", &tm);
        if (n == 0)
                return "-";
        return buf;
}

/* Accessors that tolerate missing fields and wrong types: see the header. */
static usec_t get_usec(json_t *o, const char *key) {
        json_int_t v = json_integer_value(json_object_get(o, key));
        return v > 0 ? (usec_t) v : 0;
}

static long long get_int(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

static const char *get_string(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* For sentences: "expires in 47min", or "has expired" (a ban reported just as it ended). */
static const char *expiry_phrase(char buf[static CTL_RELATIVE_MAX + 8], usec_t expires, usec_t now) {
        char rel[CTL_RELATIVE_MAX];

        if (expires <= now)
                return "has expired";
        snprintf(buf, CTL_RELATIVE_MAX + 8, "expires %s", ctl_format_relative(rel, expires, now));
        return buf;
}

static int finish(FILE *f) {
        return ferror(f) ? -EIO : 0;
}

/* Only jails whose units journald throttled, so a healthy system shows nothing here. */
static int print_suppressed(FILE *f, json_t *reply, usec_t now, bool legend) {
        _cleanup_(table_freep) Table *t = NULL;
        char last[CTL_RELATIVE_MAX];
        json_t *jail;
        size_t i;
        int r;

        t = table_new((const char *[]) { "JAIL", "DROPPED", "TIMES", "LAST", "UNIT" }, 5);
        if (!t)
                return -ENOMEM;
        json_array_foreach(json_object_get(reply, "jails"), i, jail)
                if (get_int(jail, "suppressionEvents") > 0 &&
                    (table_add_cell(t, get_string(jail, "name")) < 0 ||
                     table_add_cellf(t, "%lld", get_int(jail, "suppressedMessages")) < 0 ||
                     table_add_cellf(t, "%lld", get_int(jail, "suppressionEvents")) < 0 ||
                     table_add_cell(t, ctl_format_relative(last, get_usec(jail, "lastSuppressedUSec"), now)) < 0 ||
                     table_add_cell(t, get_string(jail, "lastSuppressedUnit")) < 0))
                        return -ENOMEM;
        if (table_rows(t) == 0)
                return finish(f);

        fputc('\n', f);
        if (legend)
                fputs("Dropped by journald's rate limit, not counted (see vpopguardd(8)):\n", f);
        r = table_print(t, f, legend);
        if (r < 0)
                return r;
        return finish(f);
}

int ctl_print_status(FILE *f, json_t *reply, usec_t now, bool legend) {
        char buf[64], span[TIMESPAN_MAX];
        _cleanup_(table_freep) Table *t = NULL;
        usec_t started = get_usec(reply, "startedUSec");
        json_t *jail;
        size_t i;
        int r;

        fprintf(f, "Version:          %s\n", get_string(reply, "version") ?: "-");
        if (started > 0)
                fprintf(f, "Uptime:           %s (since %s)\n",
                        ctl_format_span(span, now > started ? now - started : 0),
                        format_time(buf, started, true));
        /* The daemon sends no cursor before the first entry, nor to who may not read the journal. */
        fprintf(f, "Cursor:           %s\n", get_string(reply, "cursor") ?:
                get_int(reply, "entriesRead") > 0 ? "- (shown to root, systemd-journal and adm only)" : "none yet");
        fprintf(f, "Entries read:     %lld\n", get_int(reply, "entriesRead"));
        fprintf(f, "Entries matched:  %lld\n", get_int(reply, "entriesMatched"));
        /* Rare (vpopguardd(8), JOURNAL ENTRIES BEING WRITTEN): shown only when there were some. */
        if (get_int(reply, "entriesUnreadable") > 0)
                fprintf(f, "Not judged:       %lld (no readable MESSAGE, see vpopguardd(8))\n",
                        get_int(reply, "entriesUnreadable"));
        fprintf(f, "Bans active:      %lld\n", get_int(reply, "bansActive"));

        t = table_new((const char *[]) { "JAIL", "ENABLED", "MAXRETRY", "FINDTIME", "BANTIME", "TRACKED",
                                         "BANNED", "FAILURES", "BANS" }, 9);
        if (!t)
                return -ENOMEM;
        json_array_foreach(json_object_get(reply, "jails"), i, jail)
                if (table_add_cell(t, get_string(jail, "name")) < 0 ||
                    table_add_cell(t, json_is_true(json_object_get(jail, "enabled")) ? "yes" : "no") < 0 ||
                    table_add_cellf(t, "%lld", get_int(jail, "maxRetry")) < 0 ||
                    table_add_cell(t, format_timespan(span, sizeof span, get_usec(jail, "findTimeUSec"))) < 0 ||
                    table_add_cell(t, format_timespan(span, sizeof span, get_usec(jail, "banTimeUSec"))) < 0 ||
                    table_add_cellf(t, "%lld", get_int(jail, "tracked")) < 0 ||
                    table_add_cellf(t, "%lld", get_int(jail, "banned")) < 0 ||
                    table_add_cellf(t, "%lld", get_int(jail, "failuresTotal")) < 0 ||
                    table_add_cellf(t, "%lld", get_int(jail, "bansTotal")) < 0)
                        return -ENOMEM;
        if (table_rows(t) > 0) {
                fputc('\n', f);
                r = table_print(t, f, legend);
                if (r < 0)
                        return r;
        }
        r = print_suppressed(f, reply, now, legend);
        if (r < 0)
                return r;
        /* Shown only when a jail had some: a hint that its TrustedUser= may be too narrow. */
        json_array_foreach(json_object_get(reply, "jails"), i, jail)
                if (get_int(jail, "untrustedFailures") > 0)
                        fprintf(f, "\nJail %s: %lld failure line%s from senders it does not trust, not counted "
                                "(TrustedUser=, see vpopguard.conf(5)).\n", get_string(jail, "name"),
                                get_int(jail, "untrustedFailures"), get_int(jail, "untrustedFailures") == 1 ? "" : "s");
        return 0;
}

struct CtlBansPrinter {
        FILE *f;
        usec_t now;
        bool legend;
        Table *table;
};

CtlBansPrinter *ctl_bans_printer_free(CtlBansPrinter *p) {
        if (!p)
                return NULL;
        table_free(p->table);
        free(p);
        return NULL;
}

int ctl_bans_printer_new(FILE *f, usec_t now, bool legend, CtlBansPrinter **ret) {
        _cleanup_(ctl_bans_printer_freep) CtlBansPrinter *p = calloc(1, sizeof(CtlBansPrinter));

        if (!p)
                return -ENOMEM;
        *p = (CtlBansPrinter) { .f = f, .now = now, .legend = legend };
        p->table = table_new((const char *[]) { "ADDRESS", "JAIL", "FAILURES", "BAN", "LENGTH", "BANNED", "EXPIRES", "ORIGIN" }, 8);
        if (!p->table)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

int ctl_bans_printer_add(CtlBansPrinter *p, json_t *reply) {
        char banned[CTL_RELATIVE_MAX], expires[CTL_RELATIVE_MAX];
        json_t *bans = json_object_get(reply, "bans"), *ban;
        size_t i;

        if (json_array_size(bans) == 0)
                return finish(p->f);
        json_array_foreach(bans, i, ban) {
                /* count and permanent are missing from older daemons. */
                bool permanent = json_is_true(json_object_get(ban, "permanent"));
                usec_t b = get_usec(ban, "bannedUSec"), e = get_usec(ban, "expiresUSec");
                char length[TIMESPAN_MAX];
                Table *t = p->table;

                format_timespan(length, sizeof length, permanent ? USEC_INFINITY : e > b ? e - b : 0);
                if (table_add_cell(t, get_string(ban, "address")) < 0 ||
                    table_add_cell(t, get_string(ban, "jail")) < 0 ||
                    table_add_cellf(t, "%lld", get_int(ban, "failures")) < 0 ||
                    table_add_cellf(t, "%lld", MAX(get_int(ban, "count"), 1LL)) < 0 ||
                    table_add_cell(t, permanent ? "permanent" : length) < 0 ||
                    table_add_cell(t, ctl_format_relative(banned, b, p->now)) < 0 ||
                    table_add_cell(t, permanent ? "never" : ctl_format_relative(expires, e, p->now)) < 0 ||
                    table_add_cell(t, get_string(ban, "origin")) < 0)
                        return -ENOMEM;
        }
        int r = table_flush(p->table, p->f, p->legend);
        if (r < 0)
                return r;
        return fflush(p->f) == EOF ? -EIO : finish(p->f);
}

int ctl_bans_printer_end(CtlBansPrinter *p) {
        size_t n = table_rows(p->table);

        if (p->legend && n == 0)
                fputs("No active bans.\n", p->f);
        else if (p->legend)
                fprintf(p->f, "\n%zu ban%s listed.\n", n, n == 1 ? "" : "s");
        return finish(p->f);
}

int ctl_print_bans(FILE *f, json_t *reply, usec_t now, bool legend) {
        _cleanup_(ctl_bans_printer_freep) CtlBansPrinter *p = NULL;
        int r;

        r = ctl_bans_printer_new(f, now, legend, &p);
        if (r < 0)
                return r;
        r = ctl_bans_printer_add(p, reply);
        if (r < 0)
                return r;
        return ctl_bans_printer_end(p);
}

int ctl_print_failures(FILE *f, json_t *reply, usec_t now, bool legend) {
        char first[CTL_RELATIVE_MAX], last[CTL_RELATIVE_MAX];
        _cleanup_(table_freep) Table *t = NULL;
        json_t *failures = json_object_get(reply, "failures"), *w;
        size_t i;
        int r;

        if (json_array_size(failures) == 0) {
                if (legend)
                        fputs("No open failure windows.\n", f);
                return finish(f);
        }
        t = table_new((const char *[]) { "ADDRESS", "JAIL", "FAILURES", "FIRST", "LAST" }, 5);
        if (!t)
                return -ENOMEM;
        json_array_foreach(failures, i, w)
                if (table_add_cell(t, get_string(w, "address")) < 0 ||
                    table_add_cell(t, get_string(w, "jail")) < 0 ||
                    table_add_cellf(t, "%lld", get_int(w, "count")) < 0 ||
                    table_add_cell(t, ctl_format_relative(first, get_usec(w, "firstUSec"), now)) < 0 ||
                    table_add_cell(t, ctl_format_relative(last, get_usec(w, "lastUSec"), now)) < 0)
                        return -ENOMEM;
        r = table_print(t, f, legend);
        if (r < 0)
                return r;
        if (legend)
                fprintf(f, "\n%zu failure window%s listed.\n", table_rows(t), table_rows(t) == 1 ? "" : "s");
        return finish(f);
}

int ctl_print_ban(FILE *f, json_t *reply, usec_t now) {
        char expires[CTL_RELATIVE_MAX + 8];
        json_t *ban = json_object_get(reply, "ban");

        fprintf(f, "Banned %s in jail %s, %s.\n", get_string(ban, "address") ?: "-", get_string(ban, "jail") ?: "-",
                json_is_true(json_object_get(ban, "permanent")) ? "permanently"
                                                                 : expiry_phrase(expires, get_usec(ban, "expiresUSec"), now));
        return finish(f);
}

static const char *reason_to_text(const char *reason) {
        static const struct {
                const char *reason, *text;
        } table[] = {
                { "no-match",         "no FailRegex= matches" },
                { "untrusted-sender", "the sender is not trusted (TrustedUser=, TrustedUID=)" },
                { "ignore-regex",     "an IgnoreRegex= matches" },
                { "ignored-address",  "the address is ignored (IgnoreAddress= or loopback)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(reason, table[i].reason))
                        return table[i].text;
        return NULL;
}

int ctl_print_test(FILE *f, json_t *reply) {
        const char *jail = get_string(reply, "jail"), *address = get_string(reply, "address");
        const char *reason = get_string(reply, "reason") ?: "unknown", *text;

        if (jail && address)
                fprintf(f, "jail %s, address %s: ", jail, address);
        else if (jail)
                fprintf(f, "jail %s: ", jail);
        else
                fputs("no jail: ", f);

        /* Trust "reason" over "ignored": a reply with both set is odd, and then it does not count. */
        if (streq(reason, "failure") && !json_is_true(json_object_get(reply, "ignored")))
                fputs("counts as a failure\n", f);
        else if ((text = reason_to_text(reason)))
                fprintf(f, "does not count: %s (%s)\n", text, reason);
        else
                fprintf(f, "does not count (%s)\n", reason);
        return finish(f);
}

int ctl_print_event(FILE *f, json_t *reply, usec_t now) {
        char when[64], expires[CTL_RELATIVE_MAX + 8];
        const char *event = get_string(reply, "event") ?: "unknown";
        json_t *ban = json_object_get(reply, "ban");

        fprintf(f, "%s %s", format_time(when, now, false), event);
        if (json_is_object(ban)) {
                fprintf(f, " %s in jail %s", get_string(ban, "address") ?: "-", get_string(ban, "jail") ?: "-");
                if (streq(event, "ban"))
                        fprintf(f, ", %lld failures, %s, origin %s", get_int(ban, "failures"),
                                expiry_phrase(expires, get_usec(ban, "expiresUSec"), now),
                                get_string(ban, "origin") ?: "-");
        }
        fputc('\n', f);
        return finish(f);
}
