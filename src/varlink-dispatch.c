/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <time.h>

#include "event-util.h"
#include "log.h"
#include "varlink-internal.h"

/* Which call runs next (see "Who runs next" in varlink.h). The only place that runs calls is
 * dispatch_slice(), from the dispatcher's event source or varlink_server_dispatch(); everything
 * else only queues connections.
 *
 * Start-time fair queuing: every UID has a virtual time, the CPU time its calls took. The next
 * call is that of the waiting UID with the smallest virtual time; a UID that starts waiting
 * begins at the virtual time of the call that ran last, so it gets no credit for having been
 * quiet, and none of the UIDs that kept asking loses its place.
 *
 * On top of that, every UID but root has an allowance of CPU time (varlink_server_set_cpu_limit()):
 * it grows at a fixed rate up to a burst, each call is paid from it, and a UID that has run out
 * waits until it has some again, even if nothing else is to be done. However many calls a local
 * user sends, the owner spends a bounded share of a CPU on them: priorities order the owner's own
 * work, but only this leaves CPU time to the processes it depends on (for vpopguardd, journald). */

static uint64_t cpu_nsec(void) {
        struct timespec ts;

        /* The main thread's own time: a busy machine that preempts us does not count against a
         * client. Cannot fail for this clock; should it, every call costs the minimum. */
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static VarlinkUser *user_find(const VarlinkServer *s, uid_t uid) {
        for (VarlinkUser *u = s->users; u; u = u->next)
                if (u->uid == uid)
                        return u;
        return NULL;
}

static bool user_limited(const VarlinkUser *u) {
        return u->uid != 0 && u->server->cpu_rate_nsec > 0;
}

/* Adds what the allowance grew by since the last time, up to the burst. */
static void user_refill(VarlinkUser *u, usec_t now) {
        const VarlinkServer *s = u->server;

        if (now > u->refilled_usec) {
                /* With the bounds of varlink_server_set_cpu_limit(), nothing here overflows. */
                usec_t gap = MIN(now - u->refilled_usec, 1000 * USEC_PER_SEC);
                u->allowance_nsec = MIN(u->allowance_nsec + (int64_t) (gap * s->cpu_rate_nsec / USEC_PER_SEC),
                                        (int64_t) s->cpu_burst_nsec);
        }
        u->refilled_usec = now;
}

static void user_free(VarlinkUser *u) {
        if (u->prev)
                u->prev->next = u->next;
        else
                u->server->users = u->next;
        if (u->next)
                u->next->prev = u->prev;
        free(u);
}

/* A UID without connections is remembered until its allowance is full again: reconnecting must
 * not refill it. */
static void forget_idle_users(VarlinkServer *s, usec_t now) {
        VarlinkUser *next;

        for (VarlinkUser *u = s->users; u; u = next) {
                next = u->next;
                if (u->n_connections > 0)
                        continue;
                if (user_limited(u))
                        user_refill(u, now);
                if (!user_limited(u) || u->allowance_nsec >= (int64_t) s->cpu_burst_nsec)
                        user_free(u);
        }
}

size_t varlink_dispatch_connections_of(const VarlinkServer *s, uid_t uid) {
        const VarlinkUser *u = user_find(s, uid);
        return u ? u->n_connections : 0;
}

static void ready_remove(VarlinkServer *s, VarlinkUser *u) {
        if (u->ready_prev)
                u->ready_prev->ready_next = u->ready_next;
        else
                s->ready = u->ready_next;
        if (u->ready_next)
                u->ready_next->ready_prev = u->ready_prev;
        else
                s->ready_tail = u->ready_prev;
        u->ready_next = u->ready_prev = NULL;
}

static void ready_append(VarlinkServer *s, VarlinkUser *u) {
        u->ready_prev = s->ready_tail;
        u->ready_next = NULL;
        if (s->ready_tail)
                s->ready_tail->ready_next = u;
        else
                s->ready = u;
        s->ready_tail = u;
}

int varlink_dispatch_attach(VarlinkConnection *c) {
        VarlinkServer *s = c->server;
        VarlinkUser *u;

        forget_idle_users(s, now_monotonic());
        u = user_find(s, c->uid);
        if (!u) {
                u = calloc(1, sizeof *u);
                if (!u)
                        return -ENOMEM;
                u->server = s;
                u->uid = c->uid;
                u->allowance_nsec = (int64_t) s->cpu_burst_nsec;
                u->refilled_usec = now_monotonic();
                u->next = s->users;
                if (s->users)
                        s->users->prev = u;
                s->users = u;
        }
        u->n_connections++;
        c->user = u;
        return 0;
}

void varlink_dispatch_detach(VarlinkConnection *c) {
        VarlinkUser *u = c->user;

        if (!u)
                return;
        varlink_dispatch_dequeue(c);
        c->user = NULL;
        if (--u->n_connections == 0)
                forget_idle_users(u->server, now_monotonic());
}

void varlink_dispatch_queue(VarlinkConnection *c) {
        VarlinkServer *s = c->server;
        VarlinkUser *u = c->user;

        if (c->queued || c->failed)
                return;
        if (!u->queue) {
                u->virtual_nsec = MAX(u->virtual_nsec, s->virtual_nsec);
                ready_append(s, u);
        }
        c->queue_prev = u->queue_tail;
        c->queue_next = NULL;
        if (u->queue_tail)
                u->queue_tail->queue_next = c;
        else
                u->queue = c;
        u->queue_tail = c;
        c->queued = true;

        /* A defer source cannot fail to enable; should it, the next call queued tries again. */
        (void) sd_event_source_set_enabled(s->dispatcher, SD_EVENT_ONESHOT);
}

void varlink_dispatch_dequeue(VarlinkConnection *c) {
        VarlinkUser *u = c->user;

        if (!c->queued)
                return;
        if (c->queue_prev)
                c->queue_prev->queue_next = c->queue_next;
        else
                u->queue = c->queue_next;
        if (c->queue_next)
                c->queue_next->queue_prev = c->queue_prev;
        else
                u->queue_tail = c->queue_prev;
        c->queue_next = c->queue_prev = NULL;
        c->queued = false;
        if (!u->queue)
                ready_remove(c->server, u);
}

/* The waiting UID with the smallest virtual time that has allowance left; the one that waits
 * longest among equals. NULL if all have run out; *ret_wait is then how long until the first
 * has some again. */
static VarlinkUser *next_user(const VarlinkServer *s, usec_t now, usec_t *ret_wait) {
        VarlinkUser *best = NULL;
        usec_t wait = USEC_INFINITY;

        for (VarlinkUser *u = s->ready; u; u = u->ready_next) {
                if (user_limited(u)) {
                        user_refill(u, now);
                        if (u->allowance_nsec <= 0) {
                                wait = MIN(wait, (usec_t) (-u->allowance_nsec) * USEC_PER_SEC / s->cpu_rate_nsec + 1);
                                continue;
                        }
                }
                if (!best || u->virtual_nsec < best->virtual_nsec)
                        best = u;
        }
        *ret_wait = wait;
        return best;
}

static int on_throttle(_unused_ sd_event_source *source, _unused_ uint64_t usec, void *userdata) {
        VarlinkServer *s = userdata;
        return sd_event_source_set_enabled(s->dispatcher, SD_EVENT_ONESHOT);
}

/* Everybody who waits has run out: come back when the first has some allowance again. */
static void throttle(VarlinkServer *s, usec_t wait) {
        int r;

        r = event_reset_time(s->event, &s->throttle, CLOCK_MONOTONIC, wait, 0, true, on_throttle, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->throttle, s->call_priority);
        if (r < 0) {
                /* Better to serve too much than to leave clients waiting forever. */
                log_debug_errno(r, "Failed to arm the varlink throttle, serving on: %m");
                (void) sd_event_source_set_enabled(s->dispatcher, SD_EVENT_ONESHOT);
        }
}

/* Runs one slice of calls: at most VARLINK_CALLS_PER_WAKEUP, and no more once they took
 * VARLINK_WAKEUP_NSEC. Then the dispatcher is armed for the next slice, or the throttle. */
static void dispatch_slice(VarlinkServer *s) {
        uint64_t start = cpu_nsec(), t = start;
        usec_t now = now_monotonic(), wait = USEC_INFINITY;

        s->dispatching = true;

        for (unsigned n = 0; s->ready && n < VARLINK_CALLS_PER_WAKEUP && t - start < VARLINK_WAKEUP_NSEC; n++) {
                VarlinkUser *u = next_user(s, now, &wait);
                VarlinkConnection *c;
                uint64_t cost, spent;

                if (!u)
                        break;
                /* Off the queue while its call runs; it queues itself again if more calls wait,
                 * behind the other connections of its UID. Connections are only freed from
                 * their own event sources, so neither c nor u goes away in here. */
                c = u->queue;
                varlink_dispatch_dequeue(c);
                s->virtual_nsec = u->virtual_nsec;
                varlink_connection_run(c);

                spent = MAX(cpu_nsec(), t);
                cost = MAX(spent - t, (uint64_t) VARLINK_CALL_COST_MIN_NSEC);
                t = spent;
                u->virtual_nsec += cost;
                if (user_limited(u))
                        u->allowance_nsec = MAX(u->allowance_nsec - (int64_t) MIN(cost, VARLINK_CPU_MAX_NSEC),
                                                -(int64_t) VARLINK_CPU_MAX_NSEC);
                wait = USEC_INFINITY;
        }
        s->dispatching = false;

        if (!s->ready)
                return;
        if (wait != USEC_INFINITY)
                throttle(s, wait);
        else
                (void) sd_event_source_set_enabled(s->dispatcher, SD_EVENT_ONESHOT);
}

static int on_dispatch(_unused_ sd_event_source *source, void *userdata) {
        dispatch_slice(userdata);
        return 0;
}

void varlink_server_dispatch(VarlinkServer *s) {
        /* Not from inside a call: whatever a method does, calls do not nest. */
        if (s && s->ready && !s->dispatching)
                dispatch_slice(s);
}

int varlink_dispatch_setup(VarlinkServer *s) {
        int r;

        r = sd_event_add_defer(s->event, &s->dispatcher, on_dispatch, s);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s->dispatcher, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(s->dispatcher, s->call_priority);
        return r;
}

void varlink_dispatch_done(VarlinkServer *s) {
        while (s->users) {
                assert(s->users->n_connections == 0); /* every connection is gone */
                user_free(s->users);
        }
        s->dispatcher = sd_event_source_disable_unref(s->dispatcher);
        s->throttle = sd_event_source_disable_unref(s->throttle);
}
