/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl-metrics.h"
#include "macro.h"

/* The text is OpenMetrics 1.0 (# TYPE, # HELP, # UNIT, counters' samples ending in _total, a
 * final # EOF) and, on purpose, no more than the older Prometheus text format also reads:
 * node_exporter's textfile collector parses only that one, and takes # UNIT and # EOF for
 * comments. So no info or stateset types (it refuses the whole file) and no timestamps (the
 * collector refuses them). */

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_SECONDS, /* a gauge in seconds, sent in microseconds */
} MetricType;

typedef struct Metric {
        const char *name;  /* the family; a counter's sample adds _total */
        MetricType type;
        const char *field; /* in the reply, or in each of its jails */
        const char *help;
} Metric;

static const Metric daemon_metrics[] = {
        { "vpopguard_start_time_seconds", METRIC_SECONDS, "startedUSec",
          "When vpopguardd started (the counters count since then), seconds since the epoch." },
        { "vpopguard_journal_entries_read", METRIC_COUNTER, "entriesRead",
          "Journal entries read: those that some jail's JournalMatch= selects, and journald's rate-limit notes." },
        { "vpopguard_journal_entries_matched", METRIC_COUNTER, "entriesMatched",
          "Journal entries in which some jail's FailRegex= found an address." },
        { "vpopguard_journal_lag_seconds", METRIC_SECONDS, "journalLagUSec",
          "How far behind the journal vpopguardd is: 0 once it has read to the end, else the age of the last "
          "entry it processed. No sample while unknown." },
        { "vpopguard_journal_last_entry_timestamp_seconds", METRIC_SECONDS, "lastEntryUSec",
          "When the last journal entry that vpopguardd processed was logged, seconds since the epoch. No sample "
          "before the first entry since the start." },
        { "vpopguard_fleet_peers", METRIC_GAUGE, "fleetPeers",
          "Fleet peers whose ban events are applied ([Fleet] Peer=)." },
        { "vpopguard_fleet_untrusted_entries", METRIC_COUNTER, "fleetUntrustedEntries",
          "Ban events in fleet peers' journal files that their vpopguardd did not log, not applied." },
};

static const Metric jail_metrics[] = {
        { "vpopguard_failures", METRIC_COUNTER, "failuresTotal",
          "Failures counted towards a ban." },
        { "vpopguard_bans", METRIC_COUNTER, "bansTotal",
          "Bans decided from failures (bans by hand are not counted)." },
        { "vpopguard_unbans", METRIC_COUNTER, "unbansTotal",
          "Bans lifted before their time: by hand, or because the address became ignored or the host's own." },
        { "vpopguard_expired_bans", METRIC_COUNTER, "expiredTotal",
          "Bans that ran out." },
        { "vpopguard_active_bans", METRIC_GAUGE, "banned",
          "Addresses banned now." },
        { "vpopguard_tracked_addresses", METRIC_GAUGE, "tracked",
          "Addresses with failures inside the FindTime window." },
        { "vpopguard_untrusted_failures", METRIC_COUNTER, "untrustedFailures",
          "Failure lines from senders that TrustedUID= and TrustedUser= do not trust, not counted." },
        { "vpopguard_unreadable_entries", METRIC_COUNTER, "entriesUnreadable",
          "Journal entries without a readable MESSAGE (or _UID), not judged." },
        { "vpopguard_journald_suppressed_messages", METRIC_COUNTER, "suppressedMessages",
          "Messages of the units that log for the jail that journald's rate limit dropped, never seen." },
        { "vpopguard_fleet_bans_applied", METRIC_COUNTER, "fleetBansApplied",
          "Bans that fleet peers decided, applied here." },
};

static void write_metadata(FILE *f, const Metric *m) {
        fprintf(f, "# TYPE %s %s\n", m->name, m->type == METRIC_COUNTER ? "counter" : "gauge");
        if (m->type == METRIC_SECONDS)
                fprintf(f, "# UNIT %s seconds\n", m->name);
        fprintf(f, "# HELP %s %s\n", m->name, m->help);
}

/* A label value in quotes, escaped as the format wants: \\, \" and \n. */
static void write_label_value(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++)
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        fputc('"', f);
}

/* One sample of m from o, if o has the field as a non-negative integer. */
static void write_sample(FILE *f, const Metric *m, json_t *o, const char *jail) {
        json_t *v = json_object_get(o, m->field);
        json_int_t n;

        if (!json_is_integer(v) || (n = json_integer_value(v)) < 0)
                return;
        fputs(m->name, f);
        if (m->type == METRIC_COUNTER)
                fputs("_total", f);
        if (jail) {
                fputs("{jail=", f);
                write_label_value(f, jail);
                fputc('}', f);
        }
        if (m->type == METRIC_SECONDS)
                fprintf(f, " %lld.%06lld\n", (long long) (n / 1000000), (long long) (n % 1000000));
        else
                fprintf(f, " %lld\n", (long long) n);
}

int ctl_metrics_write(FILE *f, json_t *status) {
        json_t *jails = json_object_get(status, "jails"), *jail;
        size_t i;

        for (size_t k = 0; k < ELEMENTSOF(daemon_metrics); k++) {
                write_metadata(f, &daemon_metrics[k]);
                write_sample(f, &daemon_metrics[k], status, NULL);
        }
        /* A family's samples must be together: one family after the other, each over all jails. */
        for (size_t k = 0; k < ELEMENTSOF(jail_metrics); k++) {
                write_metadata(f, &jail_metrics[k]);
                json_array_foreach(jails, i, jail) {
                        const char *name = json_string_value(json_object_get(jail, "name"));
                        if (name)
                                write_sample(f, &jail_metrics[k], jail, name);
                }
        }
        fputs("# EOF\n", f);
        return ferror(f) ? -EIO : 0;
}

int ctl_metrics_write_file(const char *path, const char *text, size_t size) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *base = strrchr(path, '/');
        int dir_len = base ? (int) (base - path + 1) : 0;
        int r = 0;

        base = base ? base + 1 : path;
        if (!*base)
                return -EISDIR;
        /* Hidden, and not ending in .prom: the textfile collector reads *.prom only. */
        if (asprintf(&tmp, "%.*s.%s.XXXXXX", dir_len, path, base) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0644) < 0)
                r = -errno;
        while (r == 0 && size > 0) {
                ssize_t n = write(fd, text, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        r = n < 0 ? -errno : -EIO;
                else
                        text += n, size -= (size_t) n;
        }
        if (r == 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
