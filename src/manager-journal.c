/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pwd.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "entry-judge.h"
#include "event-util.h"
#include "failregex.h"
#include "journal-events.h"
#include "log.h"
#include "manager.h"

/* Reads the journal: only entries that match some jail (the jails' matches are added to the
 * journal, so unrelated entries are never read) and journald's notes about messages its rate
 * limit dropped, in bounded batches, resuming exactly after the cursor of the last committed
 * entry. Each entry is read once into a value (journal-entry.c) and judged by entry-judge.c;
 * journald's notes are manager-suppression.c's. */

static int on_journal_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_journal_eager(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_journal_continue(sd_event_source *s, void *userdata);

void manager_close_journal(Manager *m) {
        manager_close_lookback(m);
        m->journal_io = sd_event_source_disable_unref(m->journal_io);
        m->journal_eager = sd_event_source_disable_unref(m->journal_eager);
        m->eager_armed = false;
        m->journal_continue = sd_event_source_disable_unref(m->journal_continue);
        sd_journal_close(m->journal);
        m->journal = NULL;
        m->reader = journal_entry_reader_free(m->reader);
        m->jail_index = jail_index_free(m->jail_index);
}

/* Positions the journal so that the next sd_journal_next() returns the first unprocessed entry. */
static int seek_start(Manager *m, sd_journal *j) {
        int r;

        if (!m->cursor) {
                /* First start: an attack that began before we did still counts. */
                usec_t now = now_realtime(), from = now > m->max_find_time ? now - m->max_find_time : 0;
                log_info("No saved journal position: starting at entries of the last %llus.",
                         (unsigned long long) (m->max_find_time / USEC_PER_SEC));
                return sd_journal_seek_realtime_usec(j, from);
        }

        r = sd_journal_seek_cursor(j, m->cursor);
        if (r < 0)
                return log_error_errno(r, "Failed to seek to the saved journal position: %m");
        r = sd_journal_next(j);
        if (r < 0)
                return log_error_errno(r, "Failed to read the journal: %m");
        if (r > 0 && sd_journal_test_cursor(j, m->cursor) > 0)
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
        r = sd_journal_previous(j);
        if (r == 0)
                return sd_journal_seek_head(j);
        return r < 0 ? r : 0;
}

int manager_open_journal_handle(Manager *m, sd_journal **ret) {
        if (m->options.journal_directory)
                return sd_journal_open_directory(ret, m->options.journal_directory, 0);
        return sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY);
}

/* The fields the jails look at, read once per entry. */
static int want_fields(JournalEntryReader *reader, Jail **jails, size_t n_jails) {
        bool uid = false;
        int r = 0;

        for (size_t i = 0; i < n_jails; i++) {
                for (size_t k = 0; k < jails[i]->n_matches && r >= 0; k++)
                        r = journal_entry_reader_want(reader, jails[i]->matches[k].field);
                uid = uid || jail_config_restricts_senders(jails[i]->config);
        }
        if (r >= 0 && uid)
                r = journal_entry_reader_want(reader, "_UID");
        if (r >= 0)
                r = journal_entry_reader_want(reader, "MESSAGE");
        return r;
}

int manager_prepare_journal(Manager *m, Jail **jails, size_t n_jails, ManagerJournal *ret) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_(journal_entry_reader_freep) JournalEntryReader *reader = NULL;
        _cleanup_(jail_index_freep) JailIndex *index = NULL;
        int r;

        r = manager_open_journal_handle(m, &j);
        if (r < 0)
                return log_error_errno(r, "Failed to open the journal%s%s: %m",
                                       m->options.journal_directory ? " in " : "",
                                       m->options.journal_directory ?: "");

        /* MESSAGE up to the regex cap plus its "MESSAGE=" prefix; longer data is cut here. */
        (void) sd_journal_set_data_threshold(j, REGEX_MESSAGE_MAX + 16);

        for (size_t i = 0; i < n_jails; i++) {
                r = jail_add_journal_matches(jails[i], j);
                if (r < 0)
                        return log_error_errno(r, "Failed to add journal matches of jail %s: %m",
                                               jails[i]->config->name);
        }
        /* One more group, ANDed within: journald's own notes, which nobody else can write. */
        r = sd_journal_add_match(j, "MESSAGE_ID=" JOURNAL_SUPPRESSION_MESSAGE_ID, 0);
        if (r >= 0)
                r = sd_journal_add_match(j, "_TRANSPORT=driver", 0);
        if (r >= 0)
                r = sd_journal_add_disjunction(j);
        if (r < 0)
                return log_error_errno(r, "Failed to add the journal match for journald's rate-limit notes: %m");

        r = journal_entry_reader_new(&reader);
        if (r >= 0)
                r = want_fields(reader, jails, n_jails);
        if (r < 0)
                return log_error_errno(r, "Failed to set up reading the jails' journal fields: %m");
        r = jail_index_new(jails, n_jails, &index);
        if (r < 0)
                return log_error_errno(r, "Failed to index the jails' journal matches: %m");

        r = seek_start(m, j);
        if (r < 0)
                return log_error_errno(r, "Failed to position the journal: %m");

        ret->journal = TAKE_PTR(j);
        ret->reader = TAKE_PTR(reader);
        ret->index = TAKE_PTR(index);
        return 0;
}

void manager_journal_done(ManagerJournal *j) {
        sd_journal_close(j->journal);
        j->journal = NULL;
        j->reader = journal_entry_reader_free(j->reader);
        j->index = jail_index_free(j->index);
}

int manager_attach_journal(Manager *m, ManagerJournal *prepared) {
        int r;

        manager_close_journal(m);
        m->journal = TAKE_PTR(prepared->journal);
        m->reader = TAKE_PTR(prepared->reader);
        m->jail_index = TAKE_PTR(prepared->index);

        r = manager_track_suppression(m);
        if (r < 0)
                return log_oom();

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
        /* A backlog's next batch yields to everything else that is ready but varlink calls (a
         * defer source keeps the pending iteration it first got, so at equal priority it would
         * win every turn until the backlog is done). */
        r = sd_event_source_set_priority(m->journal_continue, MANAGER_PRIORITY_BACKLOG);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule journal processing: %m");
        /* Process what is already there right away (the backlog since the cursor). */
        return sd_event_source_set_enabled(m->journal_continue, SD_EVENT_ONESHOT);
}

int manager_open_journal(Manager *m) {
        _cleanup_(manager_journal_done) ManagerJournal j = {};
        int r;

        r = manager_prepare_journal(m, m->jails, m->n_jails, &j);
        if (r < 0)
                return r;
        return manager_attach_journal(m, &j);
}

/* Hands a ban the judge decided to the ban pipeline, unless it was logged before a crash, or
 * is over already (a fleet peer's failures, judged at their time, read after the ban's end). */
static int on_judged_ban(Jail *jail, Ban *b, const FailureWindow *w, void *userdata) {
        Manager *m = userdata;
        char trigger[JOURNAL_CURSOR_MAX];
        BanChange c = { .kind = BAN_CHANGE_BAN, .find_time = jail->config->find_time };

        if (b->expires_usec <= now_realtime())
                return 1;

        /* The trigger's cursor text only while a replay after a crash has logged bans to match. */
        c.logged = m->n_logged_bans > 0 && journal_position_to_cursor(&w->failures[w->n_failures - 1], trigger) >= 0 &&
                manager_take_logged_ban(m, &b->address, trigger, b);
        c.ban = *b;
        c.causes = reallocarray(NULL, w->n_failures, sizeof(JournalPosition));
        if (!c.causes)
                return log_oom();
        memcpy(c.causes, w->failures, w->n_failures * sizeof(JournalPosition));
        c.n_causes = w->n_failures;
        return manager_queue_change(m, &c);
}

typedef enum EntryOutcome {
        ENTRY_DONE,
        ENTRY_INCOMPLETE, /* see process_entry() */
        ENTRY_RETRY,      /* see process_incomplete_entry() */
} EntryOutcome;

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

/* A failure line from a sender the jail does not trust: one warning a minute at most (anyone may
 * log such lines), naming the account and what to change if it is the mail service's. */
static void warn_untrusted(Manager *m, Jail *jail, uid_t uid) {
        struct passwd pw, *found = NULL;
        usec_t now = now_monotonic();
        char buf[4096];

        if (m->untrusted_logged_usec != 0 && now < m->untrusted_logged_usec + 60 * USEC_PER_SEC)
                return;
        m->untrusted_logged_usec = now;
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || !found) {
                log_warning("Jail %s: a failure logged by UID %lu, which has no account, was not counted: the jail "
                            "does not trust it (%llu such entries so far). If the mail service logs as that UID, "
                            "add TrustedUID=%lu to the jail, see vpopguard.conf(5).",
                            jail->config->name, (unsigned long) uid, (unsigned long long) jail->untrusted_failures,
                            (unsigned long) uid);
                return;
        }
        /* Account names are not attacker text, but the escaper costs nothing here. */
        char name[4 * 32 + 1];
        log_escape(found->pw_name, strlen(found->pw_name), name, sizeof name);
        log_warning("Jail %s: a failure logged by UID %lu (%s) was not counted: the jail does not trust that "
                    "account (%llu such entries so far). If the mail service runs as %s, add TrustedUser=%s to "
                    "the jail, see vpopguard.conf(5).",
                    jail->config->name, (unsigned long) uid, name, (unsigned long long) jail->untrusted_failures,
                    name, name);
}

/* What judges the entries of this journal and of the fleet's peers alike. */
static EntryJudge manager_entry_judge(Manager *m) {
        return (EntryJudge) {
                .jails = m->jails,
                .n_jails = m->n_jails,
                .index = m->jail_index,
                .bans = m->bans,
                .local = m->local,
                .on_ban = on_judged_ban,
                .userdata = m,
        };
}

static void count_verdict(Manager *m, const EntryJudgement *verdict) {
        if (verdict->unreadable)
                count_unreadable(m);
        if (verdict->untrusted_jail)
                warn_untrusted(m, verdict->untrusted_jail, verdict->untrusted_uid);
        if (verdict->matched)
                m->entries_matched++;
}

/* journald makes an entry visible before it has linked the entry's new data objects (the MESSAGE
 * of a line never seen before, a _UID new in this journal file), and until it has, sd-journal
 * takes such a field for corrupt and reports it absent. So an entry that a jail accepts but that
 * lacks MESSAGE, or lacks the _UID that TrustedUID= needs, is not judged unless `final`:
 * ENTRY_INCOMPLETE is returned before anything is counted, and the caller reads it again. */
static int process_entry(Manager *m, usec_t now, bool final) {
        const EntryJudge judge = manager_entry_judge(m);
        EntryJudgement verdict;
        JournalEntry e;
        NoteOutcome note;
        int r;

        /* Usually no jail can accept a note, and then only the entries that none accepts need a
         * look; that spares the jails' entries a field lookup each. */
        if (m->notes_reach_jails) {
                note = manager_process_note(m, final);
                if (note != NOTE_NONE)
                        return note == NOTE_INCOMPLETE ? ENTRY_INCOMPLETE : entry_done(m);
        }

        r = journal_entry_read(m->reader, m->journal, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to read a journal entry: %m");
        r = entry_judge(&judge, &e, now, final, &verdict);
        if (r == ENTRY_JUDGE_INCOMPLETE)
                return ENTRY_INCOMPLETE;
        if (r < 0)
                return r == -ENOMEM ? log_oom() : log_error_errno(r, "Failed to judge a journal entry: %m");

        if (!verdict.accepted && !m->notes_reach_jails) {
                note = manager_process_note(m, final);
                if (note != NOTE_NONE)
                        return note == NOTE_INCOMPLETE ? ENTRY_INCOMPLETE : entry_done(m);
        }
        count_verdict(m, &verdict);
        return entry_done(m);
}

int manager_judge_peer_entry(Manager *m, sd_journal *j, usec_t now) {
        const EntryJudge judge = manager_entry_judge(m);
        EntryJudgement verdict;
        JournalEntry e;
        int r;

        if (!m->reader || !m->jail_index)
                return 0;
        r = journal_entry_read(m->reader, j, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to read a journal entry of a fleet peer: %m");
        /* Judged at the time the peer logged it: a ban counted from a peer's failures then ends
         * when the peer's own ban from the same failures ends, also when they are read late (after
         * an outage), and the peer takes it for the duplicate it is. Never later than now, so a
         * peer's clock ahead of ours lengthens nothing. */
        uint64_t logged;
        if (sd_journal_get_realtime_usec(j, &logged) >= 0 && logged < now)
                now = logged;
        /* Final: journal-remote writes whole entries, and a peer's file has no journald behind it
         * that would still be linking one. */
        r = entry_judge(&judge, &e, now, true, &verdict);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : log_error_errno(r, "Failed to judge a journal entry: %m");
        count_verdict(m, &verdict);
        m->entries_read++;
        return 0;
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

/* The eager re-reads tick on a periodic timerfd of their own, armed once per attack: as an
 * sd-event timer, each tick would re-arm the loop's timer (a timerfd_settime(), a hundred a
 * second during an attack). The source owns the fd. */
static int eager_timer_set(Manager *m, bool on) {
        struct itimerspec its = {};

        if (on)
                its.it_value = its.it_interval = (struct timespec) {
                        .tv_nsec = (long) (MANAGER_EAGER_INTERVAL_USEC * 1000U),
                };
        if (timerfd_settime(sd_event_source_get_io_fd(m->journal_eager), 0, &its, NULL) < 0)
                return -errno;
        m->eager_armed = on;
        return 0;
}

static int eager_timer_new(Manager *m) {
        int fd, r;

        fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sd_event_add_io(m->event, &m->journal_eager, fd, EPOLLIN, on_journal_eager, m);
        if (r >= 0)
                r = sd_event_source_set_io_fd_own(m->journal_eager, true);
        if (r < 0) {
                m->journal_eager = sd_event_source_disable_unref(m->journal_eager);
                close(fd);
        }
        return r;
}

/* Entries are arriving: keep re-reading for a while without waiting for journald's wakeup. */
static void schedule_eager_read(Manager *m) {
        int r = 0;

        m->eager_until = now_monotonic() + MANAGER_EAGER_WINDOW_USEC;
        if (m->eager_armed)
                return;
        if (!m->journal_eager)
                r = eager_timer_new(m);
        if (r >= 0)
                r = eager_timer_set(m, true);
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
        manager_close_lookback(m);

        if (n > 0 && !at_head) {
                char *cursor = NULL;
                int k = sd_journal_get_cursor(m->journal, &cursor);
                if (k < 0)
                        log_warning_errno(k, "Failed to read the journal position: %m");
                else {
                        free(m->cursor);
                        m->cursor = cursor;
                        m->state_dirty = true;
                        if (sd_journal_get_realtime_usec(m->journal, &m->cursor_realtime) < 0)
                                m->cursor_realtime = 0;
                }
        }

        /* A failed commit retries on its own timers (the firewall) or at the next save (the
         * state file): reading goes on meanwhile, and a run without following still ends. */
        int k = manager_commit(m, MANAGER_SAVE_WHEN_DUE);
        if (m->journal_at_end && m->n_logged_bans > 0)
                manager_forget_logged_bans(m); /* the replay is over */

        if (retry)
                ; /* the newest entry is incomplete: the eager read below comes back for it */
        else if (!m->journal_at_end && r >= 0)
                /* More is waiting: continue on the next loop iteration, after other events. */
                (void) sd_event_source_set_enabled(m->journal_continue, SD_EVENT_ONESHOT);
        else if (!m->options.follow) {
                /* At the end, or the journal cannot be read on: nothing will wake us again. */
                manager_send_status(m);
                return sd_event_exit(m->event, r < 0 ? r : k < 0 ? k : 0);
        }
        if (r >= 0 && k < 0)
                r = k;

        if (n > 0 || retry) {
                manager_update_status(m);
                if (m->options.follow)
                        schedule_eager_read(m);
        }
        /* Calls wait while the journal keeps us busy, but one slice of them follows each batch
         * (see MANAGER_PRIORITY_VARLINK_CALLS). */
        if (n > 0)
                varlink_server_dispatch(m->varlink);
        return r;
}

static int on_journal_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) fd, (void) revents;

        /* The journal is read now: the next eager read is due a period from now, not at the
         * tick already on its way (journald's wakeups, four a second during an attack, would
         * each add one). */
        bool ticking = m->eager_armed;
        int r = sd_journal_process(m->journal);
        if (r < 0)
                /* Returning the error would make sd-event drop this source for good. */
                log_warning_errno(r, "Failed to process journal changes, reading on: %m");
        (void) manager_process_journal(m);
        if (ticking && m->eager_armed)
                (void) eager_timer_set(m, true);
        return 0;
}

static int on_journal_continue(sd_event_source *s, void *userdata) {
        (void) s;
        (void) manager_process_journal(userdata);
        return 0;
}

static int on_journal_eager(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint64_t ticks;
        (void) s, (void) revents;

        (void) read(fd, &ticks, sizeof ticks); /* clears the readiness; missed ticks do not matter */
        (void) manager_process_journal(m);
        /* Nothing new for a while: back to waiting on journald alone. */
        if (m->eager_armed && now_monotonic() >= m->eager_until)
                (void) eager_timer_set(m, false);
        return 0;
}
