/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <string.h>

#include "event-util.h"
#include "journal-events.h"
#include "log.h"
#include "manager.h"
#include "prefix-policy.h"

/* The one way every change of what is banned takes (a ban the journal decided, a ban or unban by
 * hand, an expiry, a ban IgnoreAddress= now covers, a repair):
 *
 *   1. manager_queue_change(): the ban table (the truth) changes at once and the change is queued;
 *   2. commit_to_kernel(): one nft transaction for the whole queue; when the kernel may have
 *      drifted (start, reload, a failed commit, another process changed nftables) it also puts
 *      back every active ban;
 *   3. fan_out(): per change, one journal event and one notice to every subscriber (Monitor()
 *      subscribes; this file knows nothing of varlink);
 *   4. save_when_safe(): the state file, only once the events are in journald's socket, so the
 *      saved cursor never runs ahead of the logged events.
 *
 * Changes the journal decided stay queued until the kernel takes them (a restart replays them
 * meanwhile). A change an admin asked for is applied or refused as a whole (manager_apply_now()). */

static bool is_manual(const BanChange *c) {
        return (c->kind == BAN_CHANGE_BAN && c->ban.origin == BAN_ORIGIN_MANUAL) ||
                (c->kind == BAN_CHANGE_UNBAN && c->reason == UNBAN_MANUAL);
}

/* A ban's number and, for a ban the journal decided, its length: BanTime= × BanTimeFactor= for
 * each earlier ban of the address within BanHistory=, whichever jail decided those. A replayed
 * ban whose event was logged keeps the times it was logged with. */
static void escalate(Manager *m, BanChange *c) {
        Ban *b = &c->ban;
        const JailConfig *jc = config_find_jail(m->config, b->jail);
        usec_t window = jc ? jc->ban_history : DEFAULT_BAN_HISTORY;
        unsigned earlier = ban_history_count(m->history, &b->address, b->banned_usec, window);

        b->count = earlier < UINT_MAX ? earlier + 1 : UINT_MAX;
        if (jc && b->origin == BAN_ORIGIN_JOURNAL && !c->logged)
                b->expires_usec = usec_add(b->banned_usec,
                                           ban_length(jc->ban_time, jc->ban_time_factor, jc->ban_time_max, earlier));
}

/* A ban inside an active prefix ban becomes a ban of that prefix (of two bans of one element,
 * the later expiry wins): bans never overlap, so one ban answers for each address (the one that
 * unban lifts and bans shows), and the ban table's key stays unique. */
static void widen_to_covering(Manager *m, Ban *b) {
        const Ban *covering = ban_table_find_covering(m->bans, &b->address);
        AddressPrefix p = ban_prefix(b);

        if (!covering || covering->prefixlen >= p.prefixlen || covering->expires_usec <= b->banned_usec)
                return;
        b->address = covering->address;
        b->prefixlen = covering->prefixlen;
        b->fallback_prefixlen = 0;
}

/* A prefix ban takes the place of the bans inside it: they are lifted (UNBAN_PREFIX) and the
 * prefix keeps the latest of their expiries, so that nothing is banned for less long. */
static int absorb_inside(Manager *m, Ban *b) {
        _cleanup_free_ Ban *inside = NULL;
        AddressPrefix p = ban_prefix(b);
        int n, r;

        if (address_prefix_is_host(&p))
                return 0;
        n = ban_table_find_inside(m->bans, &p, &inside);
        if (n < 0)
                return log_oom();
        for (int i = 0; i < n; i++) {
                BanChange lift = { .kind = BAN_CHANGE_UNBAN, .ban = inside[i], .reason = UNBAN_PREFIX };

                /* One whose time is over (the expiry timer has not run yet) expires now: the
                 * kernel dropped its element already. */
                if (inside[i].expires_usec <= b->banned_usec) {
                        lift.kind = BAN_CHANGE_EXPIRE;
                        (void) ban_table_remove(m->bans, &inside[i].address);
                } else
                        b->expires_usec = MAX(b->expires_usec, inside[i].expires_usec);
                r = manager_queue_change(m, &lift);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int queue_reserve(Manager *m) {
        if (m->n_changes == m->n_changes_allocated) {
                size_t n = MAX(16U, m->n_changes_allocated * 2);
                BanChange *grown = reallocarray(m->changes, n, sizeof(BanChange));
                if (!grown)
                        return log_oom();
                m->changes = grown;
                m->n_changes_allocated = n;
        }
        return 0;
}

int manager_queue_change(Manager *m, BanChange *c) {
        int r;

        r = queue_reserve(m);
        if (r < 0)
                return r;

        /* The table changes at once, so that later failures of a banned address in the same batch
         * do not count. An expiry was already taken out by ban_table_expire(). */
        if (c->kind == BAN_CHANGE_BAN) {
                widen_to_covering(m, &c->ban);
                escalate(m, c);
                r = absorb_inside(m, &c->ban);
                if (r >= 0)
                        r = queue_reserve(m); /* the lifts took room */
                if (r < 0)
                        return r;
                r = ban_history_put(m->history, &c->ban.address, c->ban.count, c->ban.banned_usec);
                if (r < 0)
                        return log_oom();
                r = ban_table_put(m->bans, &c->ban);
                if (r < 0)
                        return log_oom();
                m->bans_total++;
        } else if (c->kind == BAN_CHANGE_UNBAN)
                (void) ban_table_remove(m->bans, &c->ban.address);

        m->changes[m->n_changes++] = *c;
        *c = (BanChange) {}; /* the queue owns the causes now */
        m->state_dirty = true;
        return 0;
}

void manager_request_reconcile(Manager *m) {
        m->kernel_stale = true;
        m->restore_in_steps = false; /* at start and reload: before READY=1 */
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec;
        (void) manager_commit(userdata, MANAGER_SAVE_WHEN_DUE);
        return 0;
}

static void schedule_retry(Manager *m) {
        int r = event_reset_time(m->event, &m->retry_timer, CLOCK_MONOTONIC, MANAGER_RETRY_USEC, 0, true, on_retry, m);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a retry of the firewall update: %m");
}

static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec;
        (void) manager_commit(userdata, MANAGER_SAVE_WHEN_DUE);
        return 0;
}

/* The state file is rewritten at most every manager_save_interval() (it holds every failure
 * window and ban, so rewriting it after each of a burst's many small batches would cost more
 * than judging them); this timer writes what the last batches changed. */
static void schedule_save(Manager *m, usec_t when) {
        int r = event_reset_time(m->event, &m->save_timer, CLOCK_MONOTONIC, when, 10 * USEC_PER_MSEC, false,
                                 on_save_timer, m);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule saving the state: %m");
}

static usec_t element_timeout(const Ban *b, usec_t now) {
        if (ban_is_permanent(b))
                return USEC_INFINITY;
        return b->expires_usec > now ? b->expires_usec - now : 1;
}

/* The elements to add: every active ban when the kernel may have drifted, else the queued bans. */
static int collect_adds(Manager *m, bool all, NftElement **ret, size_t *ret_n) {
        usec_t now = now_realtime();
        size_t n = 0, max = all ? ban_table_size(m->bans) : m->n_changes;
        NftElement *elements = malloc(MAX(max, 1U) * sizeof(NftElement));

        if (!elements)
                return log_oom();
        if (all) {
                const Ban *b;
                size_t iter = 0;
                while (ban_table_next(m->bans, &iter, &b))
                        if (b->expires_usec > now && nft_set_has_family(m->nft, b->address.family))
                                elements[n++] = (NftElement) { .address = b->address, .prefixlen = b->prefixlen,
                                                               .timeout = element_timeout(b, now) };
        } else
                for (size_t i = 0; i < m->n_changes; i++) {
                        /* The table's ban: of two bans of one address the later expiry wins. */
                        const Ban *b = ban_table_get(m->bans, &m->changes[i].ban.address);
                        if (m->changes[i].kind != BAN_CHANGE_BAN || !b)
                                continue;
                        if (!nft_set_has_family(m->nft, b->address.family)) {
                                /* Family=ip or ip6: the ban is kept and logged, the kernel cannot hold it. */
                                log_warning("No nftables set for %s addresses (Family=%s): ban of jail %s not enforced.",
                                            b->address.family == AF_INET ? "IPv4" : "IPv6",
                                            m->config->firewall.family, b->jail);
                                continue;
                        }
                        elements[n++] = (NftElement) { .address = b->address, .prefixlen = b->prefixlen,
                                                       .timeout = element_timeout(b, now) };
                }
        *ret = elements;
        *ret_n = n;
        return 0;
}

static int collect_removes(Manager *m, NftElement **ret, size_t *ret_n) {
        NftElement *removes = malloc(MAX(m->n_changes, 1U) * sizeof(NftElement));
        size_t n = 0;

        if (!removes)
                return log_oom();
        for (size_t i = 0; i < m->n_changes; i++)
                if (m->changes[i].kind == BAN_CHANGE_UNBAN)
                        removes[n++] = (NftElement) { .address = m->changes[i].ban.address,
                                                      .prefixlen = m->changes[i].ban.prefixlen };
        *ret = removes;
        *ret_n = n;
        return 0;
}

/* A full restore goes in transactions of MANAGER_RESTORE_CHUNK elements: the kernel holds a
 * notification per element until its transaction ends, and one transaction of a million
 * elements cost it five times the system time of twenty of 50 000 (16-20 s against 3-4 s on
 * kernel 6.18). Each is complete in itself: a crash between two leaves bans out of the kernel
 * only until the next start puts every ban back. */
static int kernel_transaction(Manager *m, bool all) {
        _cleanup_free_ NftElement *adds = NULL, *removes = NULL;
        size_t n_adds = 0, n_removes = 0;
        int r;

        r = collect_adds(m, all, &adds, &n_adds);
        if (r < 0)
                return r;
        if (all) {
                /* Saved bans may be prefixes of a length no jail bans any more: their sets too. */
                for (size_t i = 0; i < n_adds; i++)
                        nft_set_require_prefix(m->nft, adds[i].address.family, adds[i].prefixlen);
                r = nft_set_ensure(m->nft);
                if (r < 0)
                        return r;
        }
        r = collect_removes(m, &removes, &n_removes);
        if (r < 0)
                return r;
        if (!all)
                return nft_set_apply(m->nft, adds, n_adds, removes, n_removes);
        _cleanup_free_ NftElement *changed = NULL;
        size_t n_changed = 0;
        r = collect_adds(m, false, &changed, &n_changed);
        if (r < 0)
                return r;
        return manager_restore(m, &adds, n_adds, changed, n_changed, removes, n_removes, m->restore_in_steps);
}

/* Stage 2. */
static int commit_to_kernel(Manager *m) {
        int r;

        if (m->options.dry_run || !m->nft)
                return 0;
        if (!m->kernel_stale && m->n_changes == 0)
                return 0;

        if (!m->kernel_stale) {
                r = kernel_transaction(m, false);
                if (r >= 0)
                        return 0;
                /* Someone may have deleted the table or flushed the ruleset: rebuild it from our state. */
                log_warning_errno(r, "Failed to apply %zu ban change%s to the nftables sets (%s); checking the table.",
                                  m->n_changes, m->n_changes == 1 ? "" : "s", nft_set_error(m->nft));
                m->kernel_stale = true;
                m->restore_in_steps = true;
        }
        r = kernel_transaction(m, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the nftables sets and put %zu active ban%s into them: %s",
                                       ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s",
                                       nft_set_error(m->nft));
        m->kernel_stale = false;
        m->restore_in_steps = false;
        return 0;
}

/* The jails' unban and expiry counters (GetStatus) count what the kernel holds. */
static void count_lifted(Manager *m, const BanChange *c) {
        Jail *j = c->kind == BAN_CHANGE_BAN ? NULL : manager_find_jail(m, c->ban.jail);

        if (!j)
                return;
        if (c->kind == BAN_CHANGE_UNBAN)
                j->unbans_total++;
        else
                j->expired_total++;
}

/* Stage 3. */
static void fan_out(Manager *m) {
        for (size_t i = 0; i < m->n_changes; i++) {
                BanChange *c = &m->changes[i];

                if (!(c->kind == BAN_CHANGE_BAN && c->logged)) {
                        int r = journal_event_change(m->events, c, m->options.dry_run);
                        if (r < 0)
                                log_debug_errno(r, "Failed to log the %s event: %m", ban_change_kind_to_string(c->kind));
                }
                for (size_t k = 0; k < m->n_subscribers; k++)
                        m->subscribers[k].callback(c, m->subscribers[k].userdata);
                count_lifted(m, c);
                /* An admin's word settles the address: failures read before it must not ban it
                 * again, now or after a restart. */
                if (is_manual(c))
                        for (size_t k = 0; k < m->n_jails; k++)
                                failure_table_forget(m->jails[k]->failures, &c->ban.address);
                /* A ban lifted before its time (by hand, or because the address is ignored or
                 * the host's own now) was a mistake: the next ban starts again at BanTime=. */
                if (c->kind == BAN_CHANGE_UNBAN && c->reason != UNBAN_PREFIX)
                        ban_history_remove(m->history, &c->ban.address);
                ban_change_done(c);
        }
        m->n_changes = 0;
}

/* Stage 4: writes the state file if it is due, and only once the events are in journald's socket. */
static int save_when_safe(Manager *m, ManagerSave save) {
        usec_t now = now_monotonic(), next = usec_add(m->state_saved_monotonic, manager_save_interval(m->state_save_cost));
        int r;

        if (!m->state_dirty || m->options.dry_run)
                return 0;
        if (!m->journal)
                next = now;
        /* After a failed write (disk full, read-only), retry only every MANAGER_RETRY_USEC. */
        if (m->state_failed_monotonic > 0)
                next = MAX(next, m->state_failed_monotonic + MANAGER_RETRY_USEC);
        if (save != MANAGER_SAVE_NOW && now < next) {
                schedule_save(m, next);
                return 0;
        }
        if (journal_sender_queued(m->events) > 0) {
                /* While journald catches up, the save waits for manager_on_events_sent() (a crash
                 * meanwhile replays more, and decides the same). At exit or reload we wait here. */
                if (save != MANAGER_SAVE_NOW)
                        return 0;
                if (journal_sender_flush(m->events, MANAGER_FLUSH_TIMEOUT_USEC) < 0) {
                        log_warning("journald has not taken our events within %llus; the state file is not written "
                                    "so that a restart logs them again.",
                                    (unsigned long long) (MANAGER_FLUSH_TIMEOUT_USEC / USEC_PER_SEC));
                        schedule_retry(m);
                        return -ETIMEDOUT;
                }
        }
        r = manager_save_state(m, save == MANAGER_SAVE_NOW);
        if (r == -EBUSY)
                return 0; /* the save in flight commits again when it is done */
        if (r < 0) {
                schedule_save(m, m->state_failed_monotonic + MANAGER_RETRY_USEC);
                return r;
        }
        return 0;
}

/* Keeps the queue: no state is saved, so a restart replays it; retries shortly. */
static int kernel_failed(Manager *m, int r) {
        if (!m->nft_broken)
                log_error("Bans are not reaching the kernel; retrying every %llus.",
                          (unsigned long long) (MANAGER_RETRY_USEC / USEC_PER_SEC));
        m->nft_broken = true;
        schedule_retry(m);
        manager_update_status(m);
        return r;
}

/* Stages 3 and 4, once the kernel holds the queue. */
static int commit_after_kernel(Manager *m, ManagerSave save) {
        bool changed = m->n_changes > 0;

        if (m->nft_broken) {
                log_info("The nftables sets are up to date again.");
                m->nft_broken = false;
                changed = true;
        }

        fan_out(m);
        if (changed) {
                (void) manager_arm_expiry_timer(m);
                manager_update_status(m);
        }
        return save_when_safe(m, save);
}

int manager_commit(Manager *m, ManagerSave save) {
        int r = commit_to_kernel(m);
        if (r < 0)
                return kernel_failed(m, r);
        return commit_after_kernel(m, save);
}

void manager_on_events_sent(JournalSender *s, void *userdata) {
        Manager *m = userdata;
        (void) s;
        if (m->state_dirty)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
}

/* Undoes the last queued change (the kernel refused it): the tables are as they were before. */
static void unqueue_last(Manager *m, const Ban *previous, const BanRecord *record) {
        BanChange *c = &m->changes[--m->n_changes];

        if (c->kind == BAN_CHANGE_BAN) {
                m->bans_total--;
                if (record)
                        (void) ban_history_put(m->history, &record->address, record->count, record->last_usec);
                else
                        ban_history_remove(m->history, &c->ban.address);
        }
        (void) ban_table_remove(m->bans, &c->ban.address);
        if (previous)
                (void) ban_table_put(m->bans, previous);
        ban_change_done(c);
}

int manager_apply_now(Manager *m, BanChange *c) {
        const Ban *found = ban_table_get(m->bans, &c->ban.address);
        const BanRecord *found_record = ban_history_get(m->history, &c->ban.address);
        Ban previous = found ? *found : (Ban) {};
        BanRecord record = found_record ? *found_record : (BanRecord) {};
        int r;

        r = manager_queue_change(m, c);
        if (r < 0)
                return r;
        r = commit_to_kernel(m);
        if (r < 0) {
                unqueue_last(m, found ? &previous : NULL, found_record ? &record : NULL);
                /* The kernel may lack other bans too: they are retried as after any failed commit. */
                return kernel_failed(m, r);
        }
        /* The admin is told once it is durable: its event in journald's socket, the state on disk. */
        (void) commit_after_kernel(m, MANAGER_SAVE_NOW);
        return 0;
}

int manager_subscribe(Manager *m, BanChangeSubscriber callback, void *userdata) {
        ManagerSubscriber *grown = reallocarray(m->subscribers, m->n_subscribers + 1, sizeof(ManagerSubscriber));
        if (!grown)
                return -ENOMEM;
        m->subscribers = grown;
        m->subscribers[m->n_subscribers++] = (ManagerSubscriber) { callback, userdata };
        return 0;
}

static int on_repair(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) usec;
        if (manager_restore_began_since(m, m->repair_noticed_monotonic)) {
                /* A ban found the sets gone first: that restore, under way, puts back every ban. */
                m->repair_foreign = false;
                return 0;
        }
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
        manager_request_reconcile(m);
        m->restore_in_steps = true; /* banning goes on meanwhile */
        /* A failure is logged there, naming what cannot be honoured (e.g. a set of the wrong type). */
        (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
        return 0;
}

static void on_foreign_nft_change(void *userdata, bool lost) {
        Manager *m = userdata;
        usec_t delay = MANAGER_REPAIR_DELAY_USEC, now = now_monotonic();
        int r;

        m->repair_noticed_monotonic = now;
        if (!lost)
                m->repair_foreign = true;
        else if (m->repair_lost_monotonic > 0 && now < m->repair_lost_monotonic + MANAGER_REPAIR_LOST_INTERVAL_USEC)
                delay = MAX(delay, m->repair_lost_monotonic + MANAGER_REPAIR_LOST_INTERVAL_USEC - now);
        if (event_source_is_armed(m->repair_timer)) {
                /* Already scheduled: a change by another process moves it to soon, lost
                 * notifications leave it where it is. */
                if (lost)
                        return;
                delay = MANAGER_REPAIR_DELAY_USEC;
        }
        /* 10 ms of slack, not sd-event's default of 250 ms (an accuracy of 0), which more
         * than tripled the wait before the sets are put back. */
        r = event_reset_time(m->event, &m->repair_timer, CLOCK_MONOTONIC, delay, 10 * USEC_PER_MSEC, true, on_repair, m);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a repair of the nftables sets: %m");
}

/* A saved ban of an address that its jail now ignores (IgnoreAddress=, loopback) is lifted:
 * an admin who adds an address there expects it to be free after the next start or reload. So
 * is a ban of the host's own address (see manager_on_local_address()). */
int manager_lift_ignored_bans(Manager *m) {
        _cleanup_free_ BanChange *lift = NULL;
        size_t n = 0, iter = 0;
        const Ban *b;
        int r;

        lift = malloc(MAX(ban_table_size(m->bans), 1U) * sizeof(BanChange));
        if (!lift)
                return log_oom();
        while (ban_table_next(m->bans, &iter, &b)) {
                const JailConfig *jc = config_find_jail(m->config, b->jail);
                AddressPrefix p = ban_prefix(b);
                if (jc ? jail_config_ignores_some_of(jc, &p) : address_is_loopback(&b->address))
                        lift[n++] = (BanChange) { .kind = BAN_CHANGE_UNBAN, .ban = *b, .reason = UNBAN_IGNORED };
                else if (local_addresses_overlap(m->local, &p))
                        lift[n++] = (BanChange) { .kind = BAN_CHANGE_UNBAN, .ban = *b, .reason = UNBAN_LOCAL };
        }
        for (size_t i = 0; i < n; i++) {
                char text[ADDRESS_PREFIX_STRING_MAX];
                AddressPrefix p = ban_prefix(&lift[i].ban);
                log_notice("Lifting the ban of %s (jail %s): %s.", address_prefix_to_string(&p, text),
                           lift[i].ban.jail, lift[i].reason == UNBAN_LOCAL ? "it is this host's own address"
                                                                            : "the jail ignores this address now");
                r = manager_queue_change(m, &lift[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The host must not ban itself: from the moment an address is configured on one of its
 * interfaces, its failures are not counted (entry-judge.c), those counted so far are forgotten,
 * and a ban of it is lifted. Once it leaves, it is an address like any other. */
void manager_on_local_address(const Address *a, bool added, void *userdata) {
        Manager *m = userdata;
        char text[ADDRESS_PREFIX_STRING_MAX];
        const Ban *b;

        address_to_string(a, text);
        if (!added) {
                log_debug("%s is no longer configured on this host: its failures count again.", text);
                return;
        }
        log_debug("%s is configured on this host now: its failures are not counted.", text);
        for (size_t k = 0; k < m->n_jails; k++) {
                /* Also those counted for its prefix, which is now never banned as a whole. */
                AddressPrefix p = address_prefix_of(a, jail_config_prefix_length(m->jails[k]->config, a->family));
                failure_table_forget(m->jails[k]->failures, a);
                failure_table_forget(m->jails[k]->failures, &p.address);
        }
        b = ban_table_find_covering(m->bans, a);
        if (!b || b->expires_usec <= now_realtime())
                return; /* an expired ban is the expiry timer's */
        if (b->prefixlen < address_family_bits(a->family)) {
                AddressPrefix p = ban_prefix(b);
                address_prefix_to_string(&p, text);
        }
        log_notice("Lifting the ban of %s (jail %s): it is configured on this host now.", text, b->jail);
        BanChange c = { .kind = BAN_CHANGE_UNBAN, .ban = *b, .reason = UNBAN_LOCAL };
        if (manager_queue_change(m, &c) >= 0)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
}

int manager_nft_new(const Config *c, NftSet **ret) {
        NftSet *nft;
        int r;

        r = nft_set_new(&c->firewall, &nft);
        if (r < 0)
                return r;
        PrefixLengths lengths;
        prefix_policy_lengths(c, &lengths);
        for (unsigned len = 0; len <= 128; len++) {
                if (lengths.used[0][len])
                        nft_set_require_prefix(nft, AF_INET, len);
                if (lengths.used[1][len])
                        nft_set_require_prefix(nft, AF_INET6, len);
        }
        *ret = nft;
        return 0;
}

int manager_setup_firewall(Manager *m) {
        int r;

        r = manager_lift_ignored_bans(m);
        if (r < 0)
                return r;
        if (!m->options.dry_run) {
                r = manager_nft_new(m->config, &m->nft);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up libnftables: %m");
                r = nft_monitor_new(m->event, on_foreign_nft_change, m, &m->nft_monitor);
                if (r < 0)
                        /* Repairs then happen at the next ban, start or reload only. */
                        log_warning_errno(r, "Cannot watch nftables for changes by others: %m");
        }
        /* At start a kernel that refuses is fatal (the next step would be to retry forever). */
        manager_request_reconcile(m);
        r = commit_to_kernel(m);
        if (r < 0)
                return r;
        (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE); /* the events of lifted bans */
        if (ban_table_size(m->bans) > 0 && !m->options.dry_run)
                log_info("Restored %zu active ban%s into the nftables sets.", ban_table_size(m->bans),
                         ban_table_size(m->bans) == 1 ? "" : "s");
        return 0;
}

static void on_ban_expired(const Ban *b, void *userdata) {
        BanChange c = { .kind = BAN_CHANGE_EXPIRE, .ban = *b };
        (void) manager_queue_change(userdata, &c);
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s, (void) usec;
        /* The kernel already dropped the elements; this only keeps our table and log in step. */
        if (ban_table_expire(m->bans, now_realtime(), on_ban_expired, m) > 0)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
        return manager_arm_expiry_timer(m);
}

int manager_arm_expiry_timer(Manager *m) {
        usec_t next = ban_table_next_expiry(m->bans);

        if (next == USEC_INFINITY)
                return m->expiry_timer ? sd_event_source_set_enabled(m->expiry_timer, SD_EVENT_OFF) : 0;
        return event_reset_time(m->event, &m->expiry_timer, CLOCK_REALTIME, next, USEC_PER_SEC, false, on_expiry, m);
}

int manager_ban_manually(Manager *m, const Ban *b) {
        if (!m->options.dry_run && !nft_set_has_family(m->nft, b->address.family))
                return -EAFNOSUPPORT;
        BanChange c = { .kind = BAN_CHANGE_BAN, .ban = *b };
        /* Before manager_apply_now() looks up the ban it may have to put back: that of the
         * prefix, if the address lies in a banned one. */
        widen_to_covering(m, &c.ban);
        return manager_apply_now(m, &c);
}

/* An address inside a banned prefix lifts the prefix: that is what keeps it out. */
int manager_unban(Manager *m, const Address *a, const char *jail, Ban *ret_ban) {
        const Ban *found = ban_table_find_covering(m->bans, a);
        int r;

        if (!found || found->expires_usec <= now_realtime() || (jail && !streq(found->jail, jail)))
                return -ENOENT;
        BanChange c = { .kind = BAN_CHANGE_UNBAN, .ban = *found, .reason = UNBAN_MANUAL };
        Ban lifted = *found;
        r = manager_apply_now(m, &c);
        if (r < 0)
                return log_warning_errno(r, "Failed to remove a ban from the nftables sets: %s",
                                         m->nft ? nft_set_error(m->nft) : "");
        if (ret_ban)
                *ret_ban = lifted;
        return 0;
}
