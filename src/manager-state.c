/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"
#include "state-file.h"

/* Glue between the manager's tables and the state file: what is saved is always one consistent
 * snapshot (cursor, failure windows, bans) taken between two batches. */

static void state_saved(Manager *m) {
        m->state_saved_monotonic = now_monotonic();
        if (m->state_failed_monotonic > 0)
                log_info("The state is saved to %s/%s again.", m->options.state_directory, STATE_FILE_NAME);
        m->state_failed_monotonic = 0;
}

static int state_save_failed(Manager *m, int r) {
        /* Logged once per outage; retries come every MANAGER_RETRY_USEC (see manager_commit()). */
        bool first = m->state_failed_monotonic == 0;
        m->state_failed_monotonic = now_monotonic();
        m->state_dirty = true;
        return log_full_errno(first ? LOG_ERR : LOG_DEBUG, r,
                              "Failed to save the state to %s/%s: %m; the previous state file is kept, banning "
                              "continues and saving is retried every %llus.",
                              m->options.state_directory, STATE_FILE_NAME,
                              (unsigned long long) (MANAGER_RETRY_USEC / USEC_PER_SEC));
}

/* What the fsync thread gets: the writer, a place for the result and the eventfd to ring,
 * nothing of the Manager, which only the event loop's thread touches. */
struct StateSyncJob {
        StateWriter *writer;
        int result;
        int done_fd;
        pthread_t thread;
};

static void *sync_thread(void *userdata) {
        StateSyncJob *job = userdata;
        uint64_t one = 1;

        job->result = state_writer_sync(job->writer);
        if (write(job->done_fd, &one, sizeof one) < 0)
                abort(); /* an eventfd write of 1 cannot fail */
        return NULL;
}

/* Waits for the save in flight, if any, and accounts for it. */
static int join_sync(Manager *m) {
        StateSyncJob *job = m->state_syncing;
        uint64_t v;
        int r;

        if (!job)
                return 0;
        (void) pthread_join(job->thread, NULL);
        (void) read(job->done_fd, &v, sizeof v);
        r = job->result;
        state_writer_free(job->writer);
        free(job);
        m->state_syncing = NULL;
        if (r < 0)
                return state_save_failed(m, r);
        state_saved(m);
        return 0;
}

static int on_sync_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) fd, (void) revents;
        (void) join_sync(m);
        if (m->state_dirty)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE); /* what changed meanwhile, or a retry */
        return 0;
}

/* Starts sync_thread on w; false if that is not possible (then the caller syncs itself). */
static bool start_sync(Manager *m, StateWriter *w) {
        StateSyncJob *job;
        int r;

        if (m->state_sync_fd < 0) {
                m->state_sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (m->state_sync_fd < 0)
                        return false;
                r = sd_event_add_io(m->event, &m->state_sync_source, m->state_sync_fd, EPOLLIN, on_sync_done, m);
                if (r < 0) {
                        m->state_sync_fd = safe_close(m->state_sync_fd);
                        return false;
                }
        }
        job = calloc(1, sizeof(StateSyncJob));
        if (!job)
                return false;
        *job = (StateSyncJob) { .writer = w, .done_fd = m->state_sync_fd };
        if (pthread_create(&job->thread, NULL, sync_thread, job) != 0) {
                free(job);
                return false;
        }
        m->state_syncing = job;
        return true;
}

/* How long any jail counts a past ban: older records need not be saved. */
static usec_t longest_history(const Manager *m) {
        usec_t longest = 0;
        for (size_t i = 0; i < m->n_jails; i++)
                longest = MAX(longest, m->jails[i]->config->ban_history);
        return longest;
}

int manager_save_state(Manager *m, bool wait) {
        StateWriter *w = NULL;
        usec_t now = now_realtime(), began = now_monotonic();
        const Ban *b;
        size_t iter;
        int r;

        if (m->state_syncing) {
                if (!wait)
                        return -EBUSY;
                (void) join_sync(m);
        }

        r = state_writer_open(m->options.state_directory, &w);
        if (r < 0)
                goto fail;
        if (m->cursor) {
                r = state_writer_cursor(w, m->cursor);
                if (r < 0)
                        goto fail;
        }
        iter = 0;
        while (ban_table_next(m->bans, &iter, &b)) {
                if (b->expires_usec <= now)
                        continue;
                r = state_writer_ban(w, b);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < m->n_jails; i++) {
                FailureWindow fw;
                iter = 0;
                while (failure_table_next(m->jails[i]->failures, &iter, &fw)) {
                        r = state_writer_failures_prefix(w, m->jails[i]->config->name,
                                                         &(AddressPrefix) { fw.address, fw.prefixlen },
                                                         fw.failures, fw.n_failures);
                        if (r < 0)
                                goto fail;
                }
        }
        usec_t keep = longest_history(m);
        const BanRecord *rec;
        iter = 0;
        while (ban_history_next(m->history, &iter, &rec)) {
                if (now > rec->last_usec && now - rec->last_usec > keep)
                        continue;
                r = state_writer_history(w, rec);
                if (r < 0)
                        goto fail;
        }
        r = manager_fleet_save_positions(m, w);
        if (r < 0)
                goto fail;
        r = state_writer_finish(w);
        if (r < 0)
                goto fail;
        m->state_dirty = false; /* this snapshot holds everything so far */
        m->state_save_cost = now_monotonic() - began;

        /* fsync takes tens of milliseconds on a busy disk: meanwhile the loop goes on banning. */
        if (!wait && start_sync(m, w))
                return 0;
        r = state_writer_sync(w);
        if (r < 0)
                goto fail;
        state_writer_free(w);
        state_saved(m);
        return 0;

fail:
        state_writer_free(w);
        return state_save_failed(m, r);
}

void manager_stop_state_sync(Manager *m) {
        (void) join_sync(m);
        m->state_sync_source = sd_event_source_disable_unref(m->state_sync_source);
        m->state_sync_fd = safe_close(m->state_sync_fd);
}

static int on_cursor(const char *cursor, void *userdata) {
        Manager *m = userdata;
        char *c = strdup(cursor);
        if (!c)
                return -ENOMEM;
        free(m->cursor);
        m->cursor = c;
        return 0;
}

static int on_peer_cursor(const char *peer, const char *cursor, void *userdata) {
        return manager_fleet_restore_position(userdata, peer, cursor);
}

/* Bans must not overlap (see ban-table.h); a file edited by hand may have them do so. A ban
 * inside another joins it, one around others takes them in, the latest expiry wins. */
static int put_without_overlap(Manager *m, Ban *b) {
        _cleanup_free_ Ban *inside = NULL;
        const Ban *covering = ban_table_find_covering(m->bans, &b->address);
        AddressPrefix p = ban_prefix(b);
        int n;

        if (covering && covering->prefixlen < p.prefixlen) {
                b->address = covering->address;
                b->prefixlen = covering->prefixlen;
                p = ban_prefix(b);
        }
        n = ban_table_find_inside(m->bans, &p, &inside);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                b->expires_usec = MAX(b->expires_usec, inside[i].expires_usec);
                (void) ban_table_remove(m->bans, &inside[i].address);
        }
        return ban_table_put(m->bans, b) < 0 ? -ENOMEM : 0;
}

static int on_ban(const Ban *saved, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_realtime();
        Ban b = *saved;

        ban_clamp_to_now(&b, now);
        if (b.banned_usec != saved->banned_usec)
                m->state_dirty = true; /* saved while the clock was ahead: write the corrected times */
        /* A ban from a version 1 file is its address's first; the history records, read
         * after the bans, replace this where the file has them. */
        if (!ban_history_get(m->history, &b.address) &&
            ban_history_put(m->history, &b.address, MAX(b.count, 1U), b.banned_usec) < 0)
                return -ENOMEM;
        if (b.expires_usec <= now)
                return 0;
        return put_without_overlap(m, &b);
}

static int on_history(const BanRecord *rec, void *userdata) {
        Manager *m = userdata;
        return ban_history_put(m->history, &rec->address, rec->count, rec->last_usec) < 0 ? -ENOMEM : 0;
}

static int on_failures(const char *jail, const AddressPrefix *a, const JournalPosition *failures, size_t n, void *userdata) {
        Manager *m = userdata;
        Jail *j = manager_find_jail(m, jail);
        if (!j) {
                log_debug("Dropping saved failures of jail %s, which is no longer enabled.", jail);
                return 0;
        }
        return failure_table_restore_prefix(j->failures, a, failures, n);
}

static int set_aside(const char *dir) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", dir, STATE_FILE_NAME);
        snprintf(to, sizeof to, "%s/%s.broken-%llu", dir, STATE_FILE_NAME, (unsigned long long) now_realtime());
        if (rename(from, to) < 0)
                return -errno;
        log_error("Kept the unreadable state file as %s for inspection.", to);
        return 0;
}

int manager_load_state(Manager *m) {
        static const StateCallbacks callbacks = {
                .cursor = on_cursor,
                .ban = on_ban,
                .failures = on_failures,
                .history = on_history,
                .peer_cursor = on_peer_cursor,
        };
        _cleanup_free_ char *error = NULL;
        int r;

        if (!m->options.dry_run && mkdir(m->options.state_directory, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create the state directory %s: %m", m->options.state_directory);

        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", m->options.state_directory, STATE_FILE_NAME);
        if (stat(path, &st) >= 0)
                m->state_saved_usec = (usec_t) st.st_mtim.tv_sec * USEC_PER_SEC + (usec_t) st.st_mtim.tv_nsec / 1000;

        r = state_load(m->options.state_directory, &callbacks, m, &error);
        if (r == -ENOENT) {
                log_info("No saved state in %s: first start.", m->options.state_directory);
                return 0;
        }
        if (r == -EBADMSG || r == -EPROTONOSUPPORT) {
                /* Refusing to start would leave the server unprotected; starting over loses at most
                 * the open failure counts, and the bans already in the kernel stay there. */
                log_error("The state file %s/%s is unusable (%s): starting without saved state.",
                          m->options.state_directory, STATE_FILE_NAME, error ?: strerror(-r));
                if (!m->options.dry_run)
                        (void) set_aside(m->options.state_directory);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to load the state from %s: %m", m->options.state_directory);

        log_info("Loaded state: %zu active ban%s, resuming the journal after the saved position.",
                 ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s");
        return 0;
}
