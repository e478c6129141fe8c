/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "failregex.h"
#include "journal-events.h"
#include "log.h"
#include "manager.h"

/* Reads the journal: only entries that match some jail (the jails' matches are added to the
 * journal, so unrelated entries are never read) and journald's notes about messages its rate
 * limit dropped, in bounded batches, resuming exactly after the cursor of the last committed
 * entry. A note never reaches a jail: it only counts for the jails its unit feeds. */

static int on_journal_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_journal_eager(sd_event_source *s, uint64_t usec, void *userdata);
static int on_journal_continue(sd_event_source *s, void *userdata);

static void close_lookback(Manager *m) {
        sd_journal_close(m->lookback);
        m->lookback = NULL;
}

void manager_close_journal(Manager *m) {
        close_lookback(m);
        m->journal_io = sd_event_source_disable_unref(m->journal_io);
        m->journal_eager = sd_event_source_disable_unref(m->journal_eager);
        m->journal_continue = sd_event_source_disable_unref(m->journal_continue);
        sd_journal_close(m->journal);
        m->journal = NULL;
}

/* Positions the journal so that the next sd_journal_next() returns the first unprocessed entry. */
static int seek_start(Manager *m) {
        int r;

        if (!m->cursor) {
                /* First start: an attack that began before we did still counts. */
                usec_t now = now_realtime(), from = now > m->max_find_time ? now - m->max_find_time : 0;
                log_info("No saved journal position: starting at entries of the last %llus.",
                         (unsigned long long) (m->max_find_time / USEC_PER_SEC));
                return sd_journal_seek_realtime_usec(m->journal, from);
        }

        r = sd_journal_seek_cursor(m->journal, m->cursor);
        if (r < 0)
                return log_error_errno(r, "Failed to seek to the saved journal position: %m");
        r = sd_journal_next(m->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to read the journal: %m");
        if (r > 0 && sd_journal_test_cursor(m->journal, m->cursor) > 0)
                return 0; /* the last processed entry itself: the next one is new */
        if (r == 0) {
                /* Nothing at or after the saved position: the entry itself is gone too (it would
                 * be returned), and whatever followed it before a vacuum with it. */
                log_warning("The saved journal position is no longer in the journal, nor anything after it; "
                            "entries logged while the daemon was stopped may have been missed.");
                (void) journal_event_entries_missed(m->cursor);
                return 0;
        }

        /* The saved entry is gone (vacuumed): we stand on the oldest entry after it, which is
         * unprocessed, so step back once to let the loop read it. */
        log_warning("The saved journal position is no longer in the journal; resuming at the oldest entry "
                    "after it. Entries in between may have been missed.");
        (void) journal_event_entries_missed(m->cursor);
        r = sd_journal_previous(m->journal);
        if (r == 0)
                return sd_journal_seek_head(m->journal);
        return r < 0 ? r : 0;
}

/* The tracker follows the jail list; open is the one step after every change of it (start,
 * reload), so this is where it catches up. */
static int track_jails(Manager *m) {
        _cleanup_free_ const char **names = calloc(m->n_jails ? m->n_jails : 1, sizeof(char *));
        int r;

        if (!names)
                return -ENOMEM;
        if (!m->suppression) {
                r = suppression_tracker_new(&m->suppression);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_jails; i++)
                names[i] = m->jails[i]->config->name;
        return suppression_tracker_set_jails(m->suppression, names, m->n_jails);
}

static int open_journal(Manager *m, sd_journal **ret) {
        if (m->options.journal_directory)
                return sd_journal_open_directory(ret, m->options.journal_directory, 0);
        return sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY);
}

/* Whether jail j could accept one of journald's notes: not if one of its JournalMatch= fields
 * rules out the note's value (the shipped jail's SYSLOG_IDENTIFIER= does). */
static bool jail_may_accept_note(const Jail *j) {
        for (size_t i = 0; i < j->n_matches; i++) {
                bool possible = false;
                for (size_t k = 0; k < j->n_matches && !possible; k++)
                        if (streq(j->matches[k].field, j->matches[i].field))
                                possible = journal_suppression_may_match(j->matches[k].field, j->matches[k].value);
                if (!possible)
                        return false;
        }
        return true;
}

int manager_open_journal(Manager *m) {
        int r;

        r = open_journal(m, &m->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to open the journal%s%s: %m",
                                       m->options.journal_directory ? " in " : "",
                                       m->options.journal_directory ?: "");

        /* MESSAGE up to the regex cap plus its "MESSAGE=" prefix; longer data is cut here. */
        (void) sd_journal_set_data_threshold(m->journal, REGEX_MESSAGE_MAX + 16);

        for (size_t i = 0; i < m->n_jails; i++) {
                r = jail_add_journal_matches(m->jails[i], m->journal);
                if (r < 0)
                        return log_error_errno(r, "Failed to add journal matches of jail %s: %m",
                                               m->jails[i]->config->name);
        }
        /* One more group, ANDed within: journald's own notes, which nobody else can write. */
        r = sd_journal_add_match(m->journal, "MESSAGE_ID=" JOURNAL_SUPPRESSION_MESSAGE_ID, 0);
        if (r >= 0)
                r = sd_journal_add_match(m->journal, "_TRANSPORT=driver", 0);
        if (r >= 0)
                r = sd_journal_add_disjunction(m->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to add the journal match for journald's rate-limit notes: %m");

        r = track_jails(m);
        if (r < 0)
                return log_oom();
        m->notes_reach_jails = false;
        for (size_t i = 0; i < m->n_jails; i++)
                m->notes_reach_jails = m->notes_reach_jails || jail_may_accept_note(m->jails[i]);

        r = seek_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to position the journal: %m");

        if (m->options.follow) {
                int fd = sd_journal_get_fd(m->journal);
                if (fd < 0)
                        return log_error_errno(fd, "Failed to watch the journal: %m");
                r = sd_event_add_io(m->event, &m->journal_io, fd, (uint32_t) sd_journal_get_events(m->journal),
                                    on_journal_io, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch the journal: %m");
        }

        r = sd_event_add_defer(m->event, &m->journal_continue, on_journal_continue, m);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule journal processing: %m");
        /* A backlog's next batch yields to everything else that is ready (varlink clients,
         * signals): a defer source keeps the pending iteration it first got, so at equal priority
         * it would win every turn until the backlog is done. */
        r = sd_event_source_set_priority(m->journal_continue, SD_EVENT_PRIORITY_NORMAL + 1);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule journal processing: %m");
        /* Process what is already there right away (the backlog since the cursor). */
        return sd_event_source_set_enabled(m->journal_continue, SD_EVENT_ONESHOT);
}

static bool address_is_banned(Manager *m, const Address *a, usec_t now) {
        const Ban *b = ban_table_get(m->bans, a);
        return b && b->expires_usec > now;
}

static int record_failure(Manager *m, Jail *jail, const Address *a, usec_t now) {
        _cleanup_free_ char *cursor = NULL;
        JournalPosition p;
        FailureWindow w;
        usec_t realtime;
        int r, count;

        r = sd_journal_get_realtime_usec(m->journal, &realtime);
        if (r < 0)
                return log_error_errno(r, "Failed to read an entry's timestamp: %m");
        r = sd_journal_get_cursor(m->journal, &cursor);
        if (r < 0)
                return log_error_errno(r, "Failed to read an entry's cursor: %m");
        r = journal_position_from_cursor(cursor, realtime, &p);
        if (r < 0)
                return log_oom();

        count = failure_table_record(jail->failures, a, &p);
        if (count < 0)
                return log_oom();
        jail->failures_total++;
        if ((unsigned) count < jail->config->max_retry)
                return 0;

        Ban b = {
                .address = *a,
                .failures = (unsigned) count,
                .banned_usec = now,
                .expires_usec = now + jail->config->ban_time,
                .origin = BAN_ORIGIN_JOURNAL,
        };
        snprintf(b.jail, sizeof b.jail, "%s", jail->config->name);

        bool logged = manager_take_logged_ban(m, a, cursor, &b);
        if (!failure_table_get(jail->failures, a, &w))
                return -ESRCH;
        r = manager_queue_ban(m, &b, logged, jail->config->find_time, w.failures, w.n_failures);
        if (r < 0)
                return r;
        failure_table_forget(jail->failures, a);
        jail->bans_total++;
        return 0;
}

static bool jail_accepts(size_t jail, JournalFieldGetter get, void *entry, void *userdata) {
        Manager *m = userdata;
        return jail_accepts_entry(m->jails[jail], get, entry, NULL);
}

#define NOTE_INCOMPLETE 2

/* Returns 1 if the entry is journald's note (then it is done with), 0 if it is an ordinary one,
 * NOTE_INCOMPLETE if it is a note that lacks fields and is not `final` (see process_entry()). */
static int process_suppression_note(Manager *m, bool final) {
        _cleanup_free_ char *cursor = NULL;
        _cleanup_free_ bool *fed = NULL;
        JournalSuppression s;
        usec_t realtime = 0;
        int r;

        r = journal_suppression_parse(journal_field_get, m->journal, &s);
        if (r == 0)
                return 0;
        if (r < 0 && !final)
                return NOTE_INCOMPLETE; /* its new N_DROPPED, say, may not be linked yet */
        if (r < 0) {
                log_debug("Ignoring a malformed note from journald about suppressed messages.");
                return 1;
        }

        /* Which jails the unit feeds, from its entries before the note, in a journal handle of
         * its own: this one's matches and position stay as they are. Notes are rare (one per
         * unit and RateLimitIntervalSec= at most), so the cost is only paid then. The handle
         * serves the rest of the batch: it holds every file this one read the batch from. */
        (void) sd_journal_get_realtime_usec(m->journal, &realtime);
        fed = calloc(m->n_jails ? m->n_jails : 1, sizeof(bool));
        if (!fed) {
                log_oom();
                return 1;
        }
        r = sd_journal_get_cursor(m->journal, &cursor);
        if (r >= 0 && !m->lookback)
                r = open_journal(m, &m->lookback);
        if (r >= 0)
                r = journal_suppression_find_jails(m->lookback, cursor, s.unit, m->n_jails, jail_accepts, m, fed);
        if (r < 0) {
                log_warning_errno(r, "journald's rate limit dropped %llu messages of %s; cannot tell whether it logs "
                                  "for a jail: %m", (unsigned long long) s.n_dropped, s.unit);
                return 1;
        }
        if (r == 0)
                log_debug("journald's rate limit dropped %llu messages of %s, which logs for no jail.",
                          (unsigned long long) s.n_dropped, s.unit);

        for (size_t i = 0; i < m->n_jails; i++) {
                if (!fed[i])
                        continue;
                suppression_tracker_count(m->suppression, i, &s, realtime);
                /* The unit name was checked by journal_suppression_parse(): it can be logged. */
                log_warning("journald's rate limit dropped %llu messages of %s, which logs for jail %s: failures "
                            "among them were not counted. Raise RateLimitBurst= for %s, see vpopguardd(8).",
                            (unsigned long long) s.n_dropped, s.unit, m->jails[i]->config->name, s.unit);
        }
        return 1;
}

/* The current entry's fields, for the jails; remembers whether _UID was missing. */
typedef struct EntryReader {
        sd_journal *journal;
        bool uid_missing;
} EntryReader;

static int get_entry_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        EntryReader *e = userdata;
        int r = journal_field_get(field, ret_value, ret_len, e->journal);
        if (r < 0 && streq(field, "_UID"))
                e->uid_missing = true;
        return r;
}

enum {
        ENTRY_DONE,
        ENTRY_INCOMPLETE, /* see process_entry() */
        ENTRY_RETRY,      /* see process_incomplete_entry() */
};

static int entry_done(Manager *m) {
        m->entries_read++;
        m->incomplete_tries = 0;
        return ENTRY_DONE;
}

static void count_unreadable(Manager *m) {
        _cleanup_free_ char *cursor = NULL;
        usec_t now = now_monotonic();

        m->entries_unreadable++;
        /* Anyone may log such entries: one warning a minute at most, the count is in GetStatus. */
        if (m->unreadable_logged_usec != 0 && now < m->unreadable_logged_usec + 60 * USEC_PER_SEC)
                return;
        (void) sd_journal_get_cursor(m->journal, &cursor);
        log_warning("A journal entry for a jail has no readable MESSAGE (or _UID), also after waiting for "
                    "journald: not judged (%llu such entries so far, %llu since the last warning). Entry: %s",
                    (unsigned long long) m->entries_unreadable,
                    (unsigned long long) (m->entries_unreadable - m->unreadable_logged), cursor ? cursor : "(unknown)");
        m->unreadable_logged_usec = now;
        m->unreadable_logged = m->entries_unreadable;
}

/* journald makes an entry visible before it has linked the entry's new data objects (the MESSAGE
 * of a line never seen before, a _UID new in this journal file), and until it has, sd-journal
 * takes such a field for corrupt and reports it absent. So an entry that a jail accepts but that
 * lacks MESSAGE, or lacks the _UID that TrustedUID= needs, is not judged unless `final`:
 * ENTRY_INCOMPLETE is returned before anything is counted, and the caller reads it again. */
static int process_entry(Manager *m, usec_t now, bool final) {
        uint64_t accepts[(CONFIG_JAILS_MAX + 63) / 64];
        EntryReader e = { .journal = m->journal };
        const void *data = NULL;
        size_t len = 0;
        bool any = false, matched = false, incomplete = false;
        int r;

        /* Usually no jail can accept a note, and then only the entries that none accepts need a
         * look; that spares the jails' entries a field lookup each. */
        if (m->notes_reach_jails) {
                r = process_suppression_note(m, final);
                if (r == NOTE_INCOMPLETE)
                        return ENTRY_INCOMPLETE;
                if (r > 0)
                        return entry_done(m);
        }

        /* First which jails take it, and whether it is whole; only then count. */
        memset(accepts, 0, (m->n_jails + 63) / 64 * sizeof(uint64_t));
        for (size_t i = 0; i < m->n_jails; i++) {
                JailVerdict v;

                e.uid_missing = false;
                if (jail_accepts_entry(m->jails[i], get_entry_field, &e, &v)) {
                        accepts[i / 64] |= UINT64_C(1) << (i % 64);
                        any = true;
                } else if (v == JAIL_VERDICT_UNTRUSTED && e.uid_missing)
                        incomplete = true;
        }
        if (any) {
                r = sd_journal_get_data(m->journal, "MESSAGE", &data, &len);
                if (r >= 0 && len >= strlen("MESSAGE=")) {
                        data = (const char *) data + strlen("MESSAGE=");
                        len -= strlen("MESSAGE=");
                } else {
                        data = NULL;
                        incomplete = true;
                }
        }
        if (incomplete && !final)
                return ENTRY_INCOMPLETE;
        if (!any && !m->notes_reach_jails) {
                r = process_suppression_note(m, final);
                if (r == NOTE_INCOMPLETE)
                        return ENTRY_INCOMPLETE;
                if (r > 0)
                        return entry_done(m);
        }

        if (incomplete)
                count_unreadable(m);
        (void) entry_done(m);

        for (size_t i = 0; data && i < m->n_jails; i++) {
                Jail *jail = m->jails[i];
                Address a;

                if (!(accepts[i / 64] & (UINT64_C(1) << (i % 64))))
                        continue;
                if (jail_match_message(jail, data, len, &a) != JAIL_VERDICT_FAILURE)
                        continue;
                matched = true;
                if (address_is_banned(m, &a, now))
                        continue;
                r = record_failure(m, jail, &a, now);
                if (r < 0)
                        return r;
        }
        if (matched)
                m->entries_matched++;
        return ENTRY_DONE;
}

/* The current entry is incomplete (see process_entry()). If journald has written a later entry
 * since, it has finished this one: it is read again now, for good. If it is the newest, the
 * journal is left so that the next read returns it again, and ENTRY_RETRY says to come back. */
static int process_incomplete_entry(Manager *m, usec_t now, bool *ret_at_head) {
        int r;

        r = sd_journal_next(m->journal);
        if (r < 0)
                return r;
        if (r > 0 || ++m->incomplete_tries > MANAGER_INCOMPLETE_TRIES) {
                if (r > 0) {
                        r = sd_journal_previous(m->journal);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return -ESPIPE; /* it was there a moment ago */
                }
                return process_entry(m, now, true);
        }

        r = sd_journal_previous(m->journal);
        if (r < 0)
                return r;
        if (r == 0) {
                /* Nothing before it: it is the first entry to read at all. */
                r = sd_journal_seek_head(m->journal);
                if (r < 0)
                        return r;
                *ret_at_head = true;
        }
        return ENTRY_RETRY;
}

/* Entries are arriving: keep re-reading for a while without waiting for journald's wakeup. */
static void schedule_eager_read(Manager *m) {
        usec_t now = now_monotonic();
        int r;

        m->eager_until = now + MANAGER_EAGER_WINDOW_USEC;
        if (!m->journal_eager)
                r = sd_event_add_time(m->event, &m->journal_eager, CLOCK_MONOTONIC, now + MANAGER_EAGER_INTERVAL_USEC,
                                      USEC_PER_MSEC, on_journal_eager, m);
        else {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(m->journal_eager, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return;
                r = sd_event_source_set_time(m->journal_eager, now + MANAGER_EAGER_INTERVAL_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->journal_eager, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to schedule an early journal read, relying on journald's wakeups: %m");
}

int manager_process_journal(Manager *m) {
        usec_t now = now_realtime();
        bool retry = false, at_head = false;
        size_t n = 0;
        int r = 0;

        if (!m->journal)
                return 0;

        m->journal_at_end = false;
        for (; n < MANAGER_BATCH_MAX; n++) {
                if (n % MANAGER_PUMP_EVERY == MANAGER_PUMP_EVERY - 1)
                        journal_sender_pump(m->events);
                r = sd_journal_next(m->journal);
                if (r < 0) {
                        log_error_errno(r, "Failed to read the journal: %m");
                        break;
                }
                if (r == 0) {
                        m->journal_at_end = true;
                        break;
                }
                /* Without following, nothing is still being written that we would wait for. */
                r = process_entry(m, now, !m->options.follow);
                if (r == ENTRY_INCOMPLETE) {
                        r = process_incomplete_entry(m, now, &at_head);
                        if (r < 0)
                                log_error_errno(r, "Failed to read the journal again: %m");
                }
                if (r == ENTRY_RETRY) {
                        retry = true;
                        r = 0;
                        break;
                }
                if (r < 0)
                        break;
        }

        /* Journal files come and go between batches: the next note gets a fresh handle. */
        close_lookback(m);

        if (n > 0 && !at_head) {
                char *cursor = NULL;
                int k = sd_journal_get_cursor(m->journal, &cursor);
                if (k < 0)
                        log_warning_errno(k, "Failed to read the journal position: %m");
                else {
                        free(m->cursor);
                        m->cursor = cursor;
                        m->state_dirty = true;
                }
        }

        int k = manager_commit(m, false);
        if (r >= 0 && k < 0)
                r = k;
        if (m->journal_at_end && m->n_logged_bans > 0)
                manager_forget_logged_bans(m); /* the replay is over */

        if (retry)
                ; /* the newest entry is incomplete: the eager read below comes back for it */
        else if (!m->journal_at_end && r >= 0)
                /* More is waiting: continue on the next loop iteration, after other events. */
                (void) sd_event_source_set_enabled(m->journal_continue, SD_EVENT_ONESHOT);
        else if (m->journal_at_end && !m->options.follow) {
                manager_update_status(m);
                return sd_event_exit(m->event, r < 0 ? r : 0);
        }

        if (n > 0 || retry) {
                manager_update_status(m);
                if (m->options.follow)
                        schedule_eager_read(m);
        }
        return r;
}

static int on_journal_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) fd, (void) revents;

        int r = sd_journal_process(m->journal);
        if (r < 0)
                /* Returning the error would make sd-event drop this source for good. */
                log_warning_errno(r, "Failed to process journal changes, reading on: %m");
        (void) manager_process_journal(m);
        return 0;
}

static int on_journal_continue(sd_event_source *s, void *userdata) {
        (void) s;
        (void) manager_process_journal(userdata);
        return 0;
}

static int on_journal_eager(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) manager_process_journal(m);
        /* Nothing new for a while: back to waiting on journald alone. */
        if (now_monotonic() < m->eager_until) {
                (void) sd_event_source_set_time(s, usec + MANAGER_EAGER_INTERVAL_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}
