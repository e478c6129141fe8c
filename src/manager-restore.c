/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "event-util.h"
#include "log.h"
#include "manager.h"

/* Putting every ban back into the kernel, in transactions of MANAGER_RESTORE_CHUNK elements
 * (see kernel_transaction() in manager-bans.c for why not in one).
 *
 * At start and at a reload this is done before READY=1, so that READY=1 means the sets hold
 * every saved ban. After `nft flush ruleset` that would hold up banning for seconds with a
 * million bans, so a repair goes in steps of MANAGER_RESTORE_STEP elements with a turn of the
 * event loop between two, in which new bans reach the kernel by themselves. A restore keeps
 * the addresses to put back, not their bans: each step looks them up in the ban table again,
 * so a ban lifted meanwhile is not put back, and one changed meanwhile goes in as it is now
 * (adding an element that a new ban added already is harmless). The bans queued when the
 * restore begins (the ban whose transaction found the sets gone) go first, on their own. The
 * monitor stays deaf from the first step to the last (nft_monitor_pause()). */

/* A new ban waits for at most one step: 2000 elements take 20-40 ms on 2 busy cores. */
#define MANAGER_RESTORE_STEP 2000U
/* After everything else (see MANAGER_PRIORITY_VARLINK_CALLS): a step is pending again as soon
 * as it ran, and at the same priority it would go before a varlink call each time. New bans,
 * calls and the restore go in that order; the restore still goes on whenever the loop has
 * nothing else to do. */
#define MANAGER_PRIORITY_RESTORE (MANAGER_PRIORITY_VARLINK_CALLS + 1)

struct ManagerRestore {
        NftElement *elements; /* when the restore began; each step refreshes its elements */
        size_t n, next;
        bool paused;
        usec_t began;         /* CLOCK_MONOTONIC */
        sd_event_source *step;
};

static void restore_end(Manager *m) {
        ManagerRestore *r = TAKE_PTR(m->restore);

        if (!r)
                return;
        if (r->paused) {
                int k = nft_monitor_resume(m->nft_monitor);
                if (k < 0)
                        log_warning_errno(k, "Cannot watch nftables for changes by others any more: %m");
        }
        sd_event_source_disable_unref(r->step);
        free(r->elements);
        free(r);
}

/* The end of a repair (the benchmark waits for it). */
static void log_put_back(Manager *m) {
        log_info("Put %zu active ban%s back into the nftables sets.", ban_table_size(m->bans),
                 ban_table_size(m->bans) == 1 ? "" : "s");
}

void manager_restore_cancel(Manager *m) {
        restore_end(m);
}

/* The next step's elements, in place of those it went through: those whose ban is still in
 * the table, with its time left now. */
static size_t refresh(Manager *m, NftElement **ret) {
        ManagerRestore *r = m->restore;
        NftElement *chunk = r->elements + r->next;
        usec_t now = now_realtime();
        size_t n = 0;

        for (size_t k = 0; k < MANAGER_RESTORE_STEP && r->next < r->n; k++) {
                const NftElement e = r->elements[r->next++];
                const Ban *b = ban_table_get(m->bans, &e.address);

                if (!b || b->prefixlen != e.prefixlen || b->expires_usec <= now)
                        continue;
                chunk[n++] = (NftElement) { .address = b->address, .prefixlen = b->prefixlen,
                                            .timeout = ban_is_permanent(b) ? USEC_INFINITY : b->expires_usec - now };
        }
        *ret = chunk;
        return n;
}

static int on_step(sd_event_source *s, uint64_t usec, void *userdata);

/* Due at once, with an accuracy of 1us: an accuracy of 0 is sd-event's default of 250 ms, by
 * which each step waited for the loop to wake up for something else (1M bans: 500 steps, two
 * minutes on an idle host). */
static int schedule(Manager *m, sd_event_source **s) {
        int r = event_reset_time(m->event, s, CLOCK_MONOTONIC, 0, 1, true, on_step, m);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(*s, MANAGER_PRIORITY_RESTORE);
}

static int step(Manager *m) {
        NftElement *chunk;
        size_t n = refresh(m, &chunk);
        return nft_set_apply(m->nft, chunk, n, NULL, 0);
}

static int on_step(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        ManagerRestore *r = m->restore;
        int k;
        (void) s, (void) usec;

        k = step(m);
        if (k >= 0 && r->next < r->n) {
                k = schedule(m, &r->step);
                if (k >= 0)
                        return 0;
                log_warning_errno(k, "Failed to schedule the next step of the restore, finishing it now: %m");
                while (k >= 0 && r->next < r->n)
                        k = step(m);
        }
        restore_end(m);
        if (k < 0) {
                log_warning_errno(k, "Failed to put bans back into the nftables sets (%s); checking the table.",
                                  nft_set_error(m->nft));
                m->kernel_stale = true;
                m->restore_in_steps = true;
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
                return 0;
        }
        log_put_back(m);
        return 0;
}

bool manager_restore_began_since(const Manager *m, usec_t since) {
        return m->restore && m->restore->began >= since;
}

/* Takes *adds from the caller if it returns 0. */
static int start_steps(Manager *m, NftElement **adds, size_t n_adds, size_t next, bool paused, usec_t began) {
        ManagerRestore *r = calloc(1, sizeof(ManagerRestore));
        int k;

        if (!r)
                return -ENOMEM;
        k = schedule(m, &r->step);
        if (k < 0) {
                sd_event_source_disable_unref(r->step);
                free(r);
                return k;
        }
        r->elements = TAKE_PTR(*adds);
        r->n = n_adds;
        r->next = next;
        r->paused = paused;
        r->began = began;
        m->restore = r;
        return 0;
}

int manager_restore(Manager *m, NftElement **adds, size_t n_adds, const NftElement *first, size_t n_first,
                    const NftElement *removes, size_t n_removes, bool in_steps) {
        bool paused, repair = in_steps;
        usec_t began = now_monotonic();
        size_t i = 0;
        int r = 0;

        restore_end(m); /* this one puts back every ban, also those of a restore under way */
        paused = nft_monitor_pause(m->nft_monitor) >= 0;
        /* The queued changes on their own first: a new ban does not wait for the old ones. */
        if (n_first > 0 || n_removes > 0)
                r = nft_set_apply(m->nft, first, n_first, removes, n_removes);
        /* In steps, even the first one waits for a turn of the event loop: what else is
         * pending (the varlink reply for the ban that found the sets gone) goes first. */
        if (r >= 0 && in_steps && n_adds > MANAGER_RESTORE_STEP && start_steps(m, adds, n_adds, 0, paused, began) >= 0)
                return 0;
        while (r >= 0 && i < n_adds) {
                size_t k = MIN(in_steps ? MANAGER_RESTORE_STEP : MANAGER_RESTORE_CHUNK, n_adds - i);
                r = nft_set_apply(m->nft, *adds + i, k, NULL, 0);
                i += k;
                if (r >= 0 && i < n_adds && in_steps && start_steps(m, adds, n_adds, i, paused, began) >= 0)
                        return 0;
                in_steps = false; /* could not start the steps: the rest here and now */
        }
        if (paused) {
                int k = nft_monitor_resume(m->nft_monitor);
                if (k < 0)
                        log_warning_errno(k, "Cannot watch nftables for changes by others any more: %m");
        }
        if (r >= 0 && repair)
                log_put_back(m);
        return r;
}
