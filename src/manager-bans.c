/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "journal-events.h"
#include "log.h"
#include "manager.h"

/* Decided bans become kernel state here: all bans of a batch in one nft transaction, then their
 * journal events, then the state file. The ban table is the truth; the kernel's sets are made
 * to match it whenever they may have drifted (start, reload, a failed commit, another process
 * changing nftables). */

int manager_queue_ban(Manager *m, const Ban *b, bool logged, usec_t find_time, const JournalPosition *causes,
                      size_t n_causes) {
        PendingBan *p;
        int r;

        if (m->n_pending == m->n_pending_allocated) {
                size_t n = MAX(16U, m->n_pending_allocated * 2);
                PendingBan *grown = realloc(m->pending, n * sizeof(PendingBan));
                if (!grown)
                        return log_oom();
                m->pending = grown;
                m->n_pending_allocated = n;
        }

        /* In the table at once, so later failures of this address in the same batch do not count. */
        r = ban_table_put(m->bans, b);
        if (r < 0)
                return log_oom();

        p = &m->pending[m->n_pending];
        *p = (PendingBan) { .ban = *b, .logged = logged, .find_time = find_time };
        if (n_causes > 0) {
                p->causes = malloc(n_causes * sizeof(JournalPosition));
                if (!p->causes)
                        return log_oom();
                memcpy(p->causes, causes, n_causes * sizeof(JournalPosition));
                p->n_causes = n_causes;
        }
        m->n_pending++;
        m->bans_total++;
        m->state_dirty = true;
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) usec;
        (void) manager_commit(m, false);
        return 0;
}

static void schedule_retry(Manager *m) {
        int r;
        if (!m->retry_timer)
                r = sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_MONOTONIC, MANAGER_RETRY_USEC, 0,
                                               on_retry, m);
        else {
                r = sd_event_source_set_time_relative(m->retry_timer, MANAGER_RETRY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->retry_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a retry of the firewall update: %m");
}

static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec;
        (void) manager_commit(userdata, false);
        return 0;
}

/* The state file is rewritten at most every MANAGER_SAVE_INTERVAL_USEC (it holds every failure
 * window, so rewriting it after each of a burst's many small batches would cost more than
 * judging them); this timer writes what the last batches changed. */
static void schedule_save(Manager *m, usec_t when) {
        int r;

        if (!m->save_timer)
                r = sd_event_add_time(m->event, &m->save_timer, CLOCK_MONOTONIC, when, 10 * USEC_PER_MSEC,
                                      on_save_timer, m);
        else {
                r = sd_event_source_set_time(m->save_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->save_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule saving the state: %m");
}

/* Adds the elements of every active ban in one transaction. */
static int add_active_bans(Manager *m) {
        _cleanup_free_ NftElement *elements = NULL;
        usec_t now = now_realtime();
        const Ban *b;
        size_t iter = 0, n = 0;

        elements = malloc(MAX(ban_table_size(m->bans), 1U) * sizeof(NftElement));
        if (!elements)
                return log_oom();
        while (ban_table_next(m->bans, &iter, &b))
                if (b->expires_usec > now && nft_set_has_family(m->nft, b->address.family))
                        elements[n++] = (NftElement) { .address = b->address, .timeout = b->expires_usec - now };
        if (n == 0)
                return 0;
        return nft_set_add(m->nft, elements, n);
}

int manager_reconcile_firewall(Manager *m) {
        int r;

        if (m->options.dry_run || !m->nft)
                return 0;
        r = nft_set_ensure(m->nft);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the nftables sets: %s", nft_set_error(m->nft));
        r = add_active_bans(m);
        if (r < 0)
                return log_error_errno(r, "Failed to put %zu active bans into the nftables sets: %s",
                                       ban_table_size(m->bans), nft_set_error(m->nft));
        return 0;
}

static int on_repair(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) usec;
        if (m->repair_foreign)
                log_info("Another process changed nftables; checking the table and putting back %zu active ban%s.",
                         ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s");
        else {
                /* Our own large transactions can overflow the notification socket: repair, but
                 * not again for a while, or the repair's own notifications would loop. */
                log_info("Notifications from nftables were lost (too many at once); checking the table and "
                         "putting back %zu active ban%s in case another process changed it meanwhile.",
                         ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s");
                m->repair_lost_monotonic = now_monotonic();
        }
        m->repair_foreign = false;
        /* A failure is logged there, naming what cannot be honoured (e.g. a set of the wrong type). */
        (void) manager_reconcile_firewall(m);
        return 0;
}

static void on_foreign_nft_change(void *userdata, bool lost) {
        Manager *m = userdata;
        usec_t delay = MANAGER_REPAIR_DELAY_USEC, now = now_monotonic();
        int enabled = SD_EVENT_OFF, r;

        if (!lost)
                m->repair_foreign = true;
        else if (m->repair_lost_monotonic > 0 && now < m->repair_lost_monotonic + MANAGER_REPAIR_LOST_INTERVAL_USEC)
                delay = MAX(delay, m->repair_lost_monotonic + MANAGER_REPAIR_LOST_INTERVAL_USEC - now);
        if (m->repair_timer) {
                (void) sd_event_source_get_enabled(m->repair_timer, &enabled);
                if (enabled != SD_EVENT_OFF) {
                        /* Already scheduled; a change by another process is repaired soon. */
                        if (!lost)
                                (void) sd_event_source_set_time_relative(m->repair_timer, MANAGER_REPAIR_DELAY_USEC);
                        return;
                }
                r = sd_event_source_set_time_relative(m->repair_timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->repair_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &m->repair_timer, CLOCK_MONOTONIC, delay, 0, on_repair, m);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a repair of the nftables sets: %m");
}

int manager_setup_firewall(Manager *m) {
        int r;

        if (m->options.dry_run)
                return 0;
        r = nft_set_new(&m->config->firewall, &m->nft);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libnftables: %m");
        r = nft_monitor_new(m->event, on_foreign_nft_change, m, &m->nft_monitor);
        if (r < 0)
                /* Repairs then happen at the next ban, start or reload only. */
                log_warning_errno(r, "Cannot watch nftables for changes by others: %m");
        r = manager_reconcile_firewall(m);
        if (r < 0)
                return r;
        if (ban_table_size(m->bans) > 0)
                log_info("Restored %zu active ban%s into the nftables sets.", ban_table_size(m->bans),
                         ban_table_size(m->bans) == 1 ? "" : "s");
        return 0;
}

static int commit_pending_to_kernel(Manager *m) {
        _cleanup_free_ NftElement *elements = NULL;
        usec_t now = now_realtime();
        int r;

        if (m->options.dry_run || m->n_pending == 0)
                return 0;

        if (m->nft_broken) {
                /* The last commit failed: the kernel may lack earlier bans too, so put back all. */
                r = manager_reconcile_firewall(m);
                if (r >= 0)
                        log_info("The nftables sets are up to date again.");
                return r;
        }

        elements = malloc(m->n_pending * sizeof(NftElement));
        if (!elements)
                return log_oom();
        size_t n = 0;
        for (size_t i = 0; i < m->n_pending; i++) {
                const Ban *b = &m->pending[i].ban;
                if (!nft_set_has_family(m->nft, b->address.family)) {
                        /* Family=ip or ip6: the ban is kept and logged, the kernel cannot hold it. */
                        log_warning("No nftables set for %s addresses (Family=%s): ban of jail %s not enforced.",
                                    b->address.family == AF_INET ? "IPv4" : "IPv6", m->config->firewall.family, b->jail);
                        continue;
                }
                elements[n++] = (NftElement) { .address = b->address,
                                               .timeout = b->expires_usec > now ? b->expires_usec - now : 1 };
        }
        if (n == 0)
                return 0;
        r = nft_set_add(m->nft, elements, n);
        if (r >= 0)
                return 0;

        /* Someone may have deleted the table or flushed the ruleset: rebuild it from our state. */
        log_warning_errno(r, "Failed to add %zu ban%s to the nftables sets (%s); checking the table.", m->n_pending,
                          m->n_pending == 1 ? "" : "s", nft_set_error(m->nft));
        return manager_reconcile_firewall(m);
}

static void emit_pending_events(Manager *m) {
        for (size_t i = 0; i < m->n_pending; i++) {
                PendingBan *p = &m->pending[i];
                if (!p->logged) {
                        int r = journal_event_ban(m->events, &p->ban, p->find_time, p->causes, p->n_causes, m->options.dry_run);
                        if (r < 0)
                                log_debug_errno(r, "Failed to log the ban event: %m");
                }
                manager_monitor_event(m, "ban", &p->ban);
                free(p->causes);
        }
        m->n_pending = 0;
}

int manager_commit(Manager *m, bool force_save) {
        int r;

        r = commit_pending_to_kernel(m);
        if (r < 0) {
                /* Keep the batch: no state is saved, so a restart replays it; retry shortly. */
                if (!m->nft_broken)
                        log_error("Bans are not reaching the kernel; retrying every %llus.",
                                  (unsigned long long) (MANAGER_RETRY_USEC / USEC_PER_SEC));
                m->nft_broken = true;
                schedule_retry(m);
                return r;
        }
        m->nft_broken = false;

        emit_pending_events(m);
        (void) manager_arm_expiry_timer(m);

        usec_t now = now_monotonic(), next = m->state_saved_monotonic + MANAGER_SAVE_INTERVAL_USEC;
        /* After a failed write (disk full, read-only), retry only every MANAGER_RETRY_USEC. */
        if (m->state_failed_monotonic > 0)
                next = MAX(next, m->state_failed_monotonic + MANAGER_RETRY_USEC);
        bool due = force_save || !m->journal || now >= next;
        if (m->state_dirty && !m->options.dry_run && !due)
                schedule_save(m, next);
        if (m->state_dirty && !m->options.dry_run && due && journal_sender_queued(m->events) > 0) {
                /* The state may record a batch only once its events are safe in journald's socket:
                 * while journald catches up, the save waits for manager_on_events_sent() (a crash
                 * meanwhile replays more, and decides the same). At exit or reload we wait here. */
                if (!force_save)
                        due = false;
                else if (journal_sender_flush(m->events, MANAGER_FLUSH_TIMEOUT_USEC) < 0) {
                        log_warning("journald has not taken our events within %llus; the state file is not written "
                                    "so that a restart logs them again.",
                                    (unsigned long long) (MANAGER_FLUSH_TIMEOUT_USEC / USEC_PER_SEC));
                        schedule_retry(m);
                        return -ETIMEDOUT;
                }
        }
        if (m->state_dirty && !m->options.dry_run && due) {
                r = manager_save_state(m, force_save);
                if (r == -EBUSY)
                        return 0; /* the save in flight commits again when it is done */
                if (r < 0) {
                        schedule_save(m, m->state_failed_monotonic + MANAGER_RETRY_USEC);
                        return r;
                }
        }
        return 0;
}

void manager_on_events_sent(JournalSender *s, void *userdata) {
        Manager *m = userdata;
        (void) s;
        if (m->state_dirty)
                (void) manager_commit(m, false);
}

static void on_ban_expired(const Ban *b, void *userdata) {
        Manager *m = userdata;
        (void) journal_event_unban(m->events, b, UNBAN_EXPIRED, m->options.dry_run);
        manager_monitor_event(m, "expire", b);
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) usec;
        /* The kernel already dropped the elements; this only keeps our table and log in step. */
        if (ban_table_expire(m->bans, now_realtime(), on_ban_expired, m) > 0) {
                m->state_dirty = true;
                manager_update_status(m);
        }
        return manager_arm_expiry_timer(m);
}

int manager_arm_expiry_timer(Manager *m) {
        usec_t next = ban_table_next_expiry(m->bans);
        int r;

        if (next == USEC_INFINITY)
                return m->expiry_timer ? sd_event_source_set_enabled(m->expiry_timer, SD_EVENT_OFF) : 0;
        if (!m->expiry_timer)
                return sd_event_add_time(m->event, &m->expiry_timer, CLOCK_REALTIME, next, USEC_PER_SEC, on_expiry, m);
        r = sd_event_source_set_time(m->expiry_timer, next);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->expiry_timer, SD_EVENT_ONESHOT);
}

int manager_ban_manually(Manager *m, const Ban *b) {
        const Ban *existing = ban_table_get(m->bans, &b->address);
        usec_t now = now_realtime(), expires = b->expires_usec;
        int r;

        /* The element's timeout must match what the table keeps: the later expiry wins. */
        if (existing && existing->expires_usec > expires)
                expires = existing->expires_usec;

        if (!m->options.dry_run) {
                if (!nft_set_has_family(m->nft, b->address.family))
                        return -EAFNOSUPPORT;
                NftElement e = { .address = b->address, .timeout = expires > now ? expires - now : 1 };
                r = nft_set_add(m->nft, &e, 1);
                if (r < 0) {
                        log_warning_errno(r, "Failed to add a manual ban (%s); checking the table.", nft_set_error(m->nft));
                        /* Recreates the table if it vanished; a ban that is still refused is reported. */
                        if (manager_reconcile_firewall(m) < 0 || nft_set_add(m->nft, &e, 1) < 0)
                                return r;
                }
        }

        r = ban_table_put(m->bans, b);
        if (r < 0)
                return log_oom();
        for (size_t i = 0; i < m->n_jails; i++)
                failure_table_forget(m->jails[i]->failures, &b->address);
        m->bans_total++;

        (void) journal_event_ban(m->events, b, 0, NULL, 0, m->options.dry_run);
        manager_monitor_event(m, "ban", b);
        (void) manager_arm_expiry_timer(m);
        m->state_dirty = true;
        if (!m->options.dry_run)
                (void) manager_save_state(m, true); /* clears state_dirty, or logs and retries */
        manager_update_status(m);
        return 0;
}

int manager_unban(Manager *m, const Address *a, const char *jail, Ban *ret_ban) {
        const Ban *found = ban_table_get(m->bans, a);
        Ban b;
        int r;

        if (!found || found->expires_usec <= now_realtime() || (jail && !streq(found->jail, jail)))
                return -ENOENT;
        b = *found;

        if (!m->options.dry_run) {
                r = nft_set_remove(m->nft, a, 1);
                if (r < 0)
                        return log_warning_errno(r, "Failed to remove a ban from the nftables sets: %s", nft_set_error(m->nft));
        }
        ban_table_remove(m->bans, a);
        /* Failures read before the unban must not ban the address again, now or after a restart. */
        for (size_t i = 0; i < m->n_jails; i++)
                failure_table_forget(m->jails[i]->failures, a);

        (void) journal_event_unban(m->events, &b, UNBAN_MANUAL, m->options.dry_run);
        manager_monitor_event(m, "unban", &b);
        (void) manager_arm_expiry_timer(m);
        m->state_dirty = true;
        if (!m->options.dry_run)
                (void) manager_save_state(m, true); /* clears state_dirty, or logs and retries */
        manager_update_status(m);
        if (ret_ban)
                *ret_ban = b;
        return 0;
}
