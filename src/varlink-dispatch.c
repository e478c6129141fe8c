/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <time.h>

#include "log.h"
#include "varlink-internal.h"

/* Which call runs next (see "Who runs next" in varlink.h). The only place that runs calls is
 * on_dispatch(); everything else only queues connections.
 *
 * Start-time fair queuing: every UID has a virtual time, the CPU time its calls took. The next
 * call is that of the waiting UID with the smallest virtual time; a UID that starts waiting
 * begins at the virtual time of the call that ran last, so it gets no credit for having been
 * quiet, and none of the UIDs that kept asking loses its place. */

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
        VarlinkUser *u = user_find(s, c->uid);

        if (!u) {
                u = calloc(1, sizeof *u);
                if (!u)
                        return -ENOMEM;
                u->server = s;
                u->uid = c->uid;
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
        if (--u->n_connections > 0)
                return;
        if (u->prev)
                u->prev->next = u->next;
        else
                u->server->users = u->next;
        if (u->next)
                u->next->prev = u->prev;
        free(u);
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

/* The waiting UID with the smallest virtual time; the one that waits longest among equals. */
static VarlinkUser *next_user(const VarlinkServer *s) {
        VarlinkUser *best = s->ready;

        for (VarlinkUser *u = s->ready; u; u = u->ready_next)
                if (u->virtual_nsec < best->virtual_nsec)
                        best = u;
        return best;
}

static int on_dispatch(_unused_ sd_event_source *source, void *userdata) {
        VarlinkServer *s = userdata;
        uint64_t start = cpu_nsec(), t = start;

        for (unsigned n = 0; s->ready && n < VARLINK_CALLS_PER_WAKEUP && t - start < VARLINK_WAKEUP_NSEC; n++) {
                VarlinkUser *u = next_user(s);
                VarlinkConnection *c = u->queue;
                uint64_t now;

                /* Off the queue while its call runs; it queues itself again if more calls wait,
                 * behind the other connections of its UID. Connections are only freed from
                 * their own event sources, so neither c nor u goes away in here. */
                varlink_dispatch_dequeue(c);
                s->virtual_nsec = u->virtual_nsec;
                varlink_connection_run(c);

                now = MAX(cpu_nsec(), t);
                u->virtual_nsec += MAX(now - t, (uint64_t) VARLINK_CALL_COST_MIN_NSEC);
                t = now;
        }

        if (s->ready)
                (void) sd_event_source_set_enabled(s->dispatcher, SD_EVENT_ONESHOT);
        return 0;
}

int varlink_dispatch_setup(VarlinkServer *s) {
        int r;

        r = sd_event_add_defer(s->event, &s->dispatcher, on_dispatch, s);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s->dispatcher, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(s->dispatcher, s->priority + 1);
        return r;
}

void varlink_dispatch_done(VarlinkServer *s) {
        assert(!s->users); /* every connection is gone */
        s->dispatcher = sd_event_source_disable_unref(s->dispatcher);
}
