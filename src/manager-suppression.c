/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "log.h"
#include "manager.h"

/* journald's notes about messages its rate limit dropped ("Suppressed N messages from UNIT"):
 * written by journald itself (_TRANSPORT=driver, which nobody else can forge), never fed to a
 * jail's patterns. A note counts for the jails that the unit's own entries before it feed. */

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

int manager_track_suppression(Manager *m) {
        _cleanup_free_ const char **names = calloc(m->n_jails ? m->n_jails : 1, sizeof(char *));
        int r;

        if (!names)
                return -ENOMEM;
        if (!m->suppression) {
                r = suppression_tracker_new(&m->suppression);
                if (r < 0)
                        return r;
        }
        m->notes_reach_jails = false;
        for (size_t i = 0; i < m->n_jails; i++) {
                names[i] = m->jails[i]->config->name;
                m->notes_reach_jails = m->notes_reach_jails || jail_may_accept_note(m->jails[i]);
        }
        return suppression_tracker_set_jails(m->suppression, names, m->n_jails);
}

void manager_close_lookback(Manager *m) {
        sd_journal_close(m->lookback);
        m->lookback = NULL;
}

static bool jail_accepts(size_t jail, JournalFieldGetter get, void *entry, void *userdata) {
        Manager *m = userdata;
        return jail_accepts_entry(m->jails[jail], get, entry, NULL);
}

NoteOutcome manager_process_note(Manager *m, bool final) {
        _cleanup_free_ char *cursor = NULL;
        _cleanup_free_ bool *fed = NULL;
        JournalSuppression s;
        usec_t realtime = 0;
        int r;

        r = journal_suppression_parse(journal_field_get, m->journal, &s);
        if (r == 0)
                return NOTE_NONE;
        if (r < 0 && !final)
                return NOTE_INCOMPLETE; /* its new N_DROPPED, say, may not be linked yet */
        if (r < 0) {
                log_debug("Ignoring a malformed note from journald about suppressed messages.");
                return NOTE_DONE;
        }

        /* Which jails the unit feeds, from its entries before the note, in a journal handle of
         * its own: this one's matches and position stay as they are. Notes are rare (one per
         * unit and RateLimitIntervalSec= at most), so the cost is only paid then. The handle
         * serves the rest of the batch: it holds every file this one read the batch from. */
        (void) sd_journal_get_realtime_usec(m->journal, &realtime);
        fed = calloc(m->n_jails ? m->n_jails : 1, sizeof(bool));
        if (!fed) {
                log_oom();
                return NOTE_DONE;
        }
        r = sd_journal_get_cursor(m->journal, &cursor);
        if (r >= 0 && !m->lookback)
                r = manager_open_journal_handle(m, &m->lookback);
        if (r >= 0)
                r = journal_suppression_find_jails(m->lookback, cursor, s.unit, m->n_jails, jail_accepts, m, fed);
        if (r < 0) {
                log_warning_errno(r, "journald's rate limit dropped %llu messages of %s; cannot tell whether it logs "
                                  "for a jail: %m", (unsigned long long) s.n_dropped, s.unit);
                return NOTE_DONE;
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
        return NOTE_DONE;
}
