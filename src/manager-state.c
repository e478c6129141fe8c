/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
        m->state_dir_clean = false; /* the failed save may have left its temporary file */
        m->state_failed_monotonic = now_monotonic();
        m->state_dirty = true;
        return log_full_errno(first ? LOG_ERR : LOG_DEBUG, r,
                              "Failed to save the state to %s/%s: %m; the previous state file is kept, banning "
                              "continues and saving is retried every %llus.",
                              m->options.state_directory, STATE_FILE_NAME,
                              (unsigned long long) (MANAGER_RETRY_USEC / USEC_PER_SEC));
}

/* A save of a million bans formats for a second or more. It runs in a child process, which
 * fork() gives an exact copy of the tables as they are between two batches: the loop pays only
 * for the fork (copying page tables) and goes on banning while the child formats, fsyncs and
 * renames. A copy made by hand would cost as much memory as the tables (MemoryMax=) and a pass
 * over them on the loop; a thread formatting the live tables would need locks on every one.
 * The daemon runs no other thread, so the child inherits no lock held elsewhere; it touches
 * nothing but the new file and reports through its exit status. */
struct StateSyncJob {
        pid_t pid;
        usec_t started;
};

/* How long any jail counts a past ban: older records need not be saved. */
static usec_t longest_history(const Manager *m) {
        usec_t longest = 0;
        for (size_t i = 0; i < m->n_jails; i++)
                longest = MAX(longest, m->jails[i]->config->ban_history);
        return longest;
}

static int write_tables(Manager *m, StateWriter *w, usec_t now) {
        const Ban *b;
        size_t iter;
        int r;

        if (m->cursor) {
                r = state_writer_cursor(w, m->cursor);
                if (r < 0)
                        return r;
        }
        iter = 0;
        while (ban_table_next(m->bans, &iter, &b)) {
                if (b->expires_usec <= now)
                        continue;
                r = state_writer_ban(w, b);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_jails; i++) {
                FailureWindow fw;
                iter = 0;
                while (failure_table_next(m->jails[i]->failures, &iter, &fw)) {
                        r = state_writer_failures_prefix(w, m->jails[i]->config->name,
                                                         &(AddressPrefix) { fw.address, fw.prefixlen },
                                                         fw.failures, fw.n_failures);
                        if (r < 0)
                                return r;
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
                        return r;
        }
        return manager_fleet_save_positions(m, w);
}

/* The whole save: the new file is the state when this returns 0. */
static int write_state(Manager *m) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        int r;

        /* A temporary file is left behind only by a crash or a failed save: the directory is
         * scanned for one by the first save, and after a failure; not by each of a save a
         * second during an attack. */
        r = state_writer_open_full(m->options.state_directory, !m->state_dir_clean, &w);
        if (r < 0)
                return r;
        m->state_dir_clean = true;
        r = write_tables(m, w, now_realtime());
        if (r < 0)
                return r;
        return state_writer_commit(w);
}

/* Accounts for the child's end: status as waitpid() gave it. */
static int save_ended(Manager *m, int status) {
        StateSyncJob *job = TAKE_PTR(m->state_syncing);
        int r = 0;

        /* The next save waits ten times this long (manager_save_interval()): the saves, though
         * off the loop, take at most a tenth of a core. */
        m->state_save_cost = now_monotonic() - job->started;
        free(job);
        m->state_sync_source = sd_event_source_disable_unref(m->state_sync_source);
        m->state_sync_fd = safe_close(m->state_sync_fd);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                r = -WEXITSTATUS(status);
        else if (!WIFEXITED(status))
                r = -ECHILD; /* killed: the old file is still the state */
        if (r < 0)
                return state_save_failed(m, r);
        state_saved(m);
        return 0;
}

/* Waits for the save in flight, if any. */
static int join_save(Manager *m) {
        int status;

        if (!m->state_syncing)
                return 0;
        while (waitpid(m->state_syncing->pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = W_EXITCODE(ECHILD, 0);
                        break;
                }
        return save_ended(m, status);
}

static int on_save_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        int status;
        (void) s, (void) fd, (void) revents;

        if (waitpid(m->state_syncing->pid, &status, WNOHANG) <= 0)
                return 0; /* a pidfd is readable only once the child exited: spurious */
        (void) save_ended(m, status);
        if (m->state_dirty)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE); /* what changed meanwhile, or a retry */
        return 0;
}

/* What a save writes, about. Below MANAGER_SAVE_FORK_MIN records the daemon formats the file
 * in a few milliseconds, less than a fork and the copies-on-write after it cost (with a save a
 * second while an attack goes on, forking doubled the CPU per failure at 100 failures/s). */
static size_t state_records(const Manager *m) {
        size_t n = ban_table_size(m->bans) + ban_history_size(m->history);

        for (size_t i = 0; i < m->n_jails; i++)
                n += failure_table_size(m->jails[i]->failures);
        return n;
}

/* Negative only if no child was started; a child's failure is accounted by save_ended(). */
static int save_in_child(Manager *m) {
        _cleanup_free_ StateSyncJob *job = calloc(1, sizeof(StateSyncJob));
        _cleanup_close_ int pidfd = -EBADF;
        pid_t parent = getpid();
        int r;

        if (!job)
                return -ENOMEM;
        job->started = now_monotonic();
        job->pid = fork();
        if (job->pid < 0)
                return -errno;
        if (job->pid == 0) {
                /* If the daemon dies, so does the save: the next daemon writes its own. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(ECHILD);
                r = write_state(m);
                _exit(r < 0 ? MIN(-r, 255) : 0); /* no atexit handlers, no stdio flushed twice */
        }

        pidfd = (int) syscall(SYS_pidfd_open, job->pid, 0);
        if (pidfd >= 0)
                r = sd_event_add_io(m->event, &m->state_sync_source, pidfd, EPOLLIN, on_save_done, m);
        else
                r = -errno;
        m->state_syncing = TAKE_PTR(job);
        if (r < 0) {
                /* Correct, only not in the background. */
                log_debug_errno(r, "Cannot watch the saving process, waiting for it: %m");
                (void) join_save(m);
                return 0;
        }
        m->state_sync_fd = TAKE_FD(pidfd);
        log_debug("Saving the state in process %d, forked in %llu us.", (int) m->state_syncing->pid,
                  (unsigned long long) (now_monotonic() - m->state_syncing->started));
        return 0;
}

int manager_save_state(Manager *m, bool wait) {
        usec_t began;
        int r;

        if (m->state_syncing) {
                if (!wait)
                        return -EBUSY;
                (void) join_save(m);
        }
        m->state_dirty = false; /* the snapshot holds everything so far; a failure sets it again */
        if (!wait && state_records(m) >= MANAGER_SAVE_FORK_MIN) {
                r = save_in_child(m);
                if (r >= 0)
                        return 0;
                /* fork() failed (no memory, TasksMax=): save here, holding up the loop. */
                log_debug_errno(r, "Cannot fork to save the state, saving in the daemon: %m");
        }
        began = now_monotonic();
        r = write_state(m);
        m->state_save_cost = now_monotonic() - began;
        if (r < 0)
                return state_save_failed(m, r);
        state_saved(m);
        return 0;
}

void manager_stop_state_sync(Manager *m) {
        (void) join_save(m);
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
