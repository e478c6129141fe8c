/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/epoll.h>
#include <sys/socket.h>

#include "event-util.h"
#include "log.h"
#include "varlink-internal.h"

/* One client connection: buffers, reading, writing, and closing. This file is the only place
 * that frees a connection, and does so only from the connection's own event sources (or
 * varlink_server_free()), so the close callbacks of calls never run inside a method handler, a
 * varlink_call_*() function or the dispatcher; those only mark a connection failed. A complete
 * message is not run here: the connection is queued, and the dispatcher (varlink-dispatch.c)
 * decides when its call runs. */

#define BUFFER_MIN 4096U
#define BUFFER_KEEP (64U * 1024U) /* larger buffers are freed once empty */

VarlinkConnection *varlink_connection_free(VarlinkConnection *c) {
        VarlinkServer *s;

        if (!c)
                return NULL;

        s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;
        s->output_pending -= c->out_end - c->out_start;
        varlink_dispatch_detach(c);

        c->io = sd_event_source_disable_unref(c->io);
        c->idle = sd_event_source_disable_unref(c->idle);
        c->defer = sd_event_source_disable_unref(c->defer);
        c->fd = safe_close(c->fd);

        /* Last, so that a close callback finds the connection already gone. */
        if (c->call)
                varlink_call_disconnect(TAKE_PTR(c->call));

        free(c->in);
        free(c->out);
        free(c);
        return NULL;
}

void varlink_connection_fail(VarlinkConnection *c) {
        if (c->failed)
                return;
        c->failed = true;
        varlink_dispatch_dequeue(c);
        /* A defer source cannot fail to enable; should it, EPOLLHUP or the idle timer still ends
         * the connection. */
        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static int on_connection_idle(sd_event_source *source, uint64_t usec, void *userdata);

/* Activity: restarts the idle timeout if no call is in progress. */
static void connection_touch(VarlinkConnection *c) {
        if (!c->idle || c->failed)
                return;
        if (c->call) {
                (void) sd_event_source_set_enabled(c->idle, SD_EVENT_OFF);
                return;
        }
        if (event_reset_time(c->server->event, &c->idle, CLOCK_MONOTONIC, c->server->idle_timeout_usec, 0, true,
                             on_connection_idle, c) < 0)
                varlink_connection_fail(c);
}

static void connection_update_events(VarlinkConnection *c) {
        uint32_t e = 0;

        if (c->failed)
                return;
        /* While a call is in progress input is still read, up to one message's worth. */
        if (!c->read_eof && c->in_end - c->in_start < c->message_max)
                e |= EPOLLIN;
        if (c->out_end > c->out_start)
                e |= EPOLLOUT;
        if (e == c->events)
                return;
        if (sd_event_source_set_io_events(c->io, e) < 0)
                varlink_connection_fail(c);
        else
                c->events = e;
}

static int connection_flush(VarlinkConnection *c) {
        bool progress = false;

        while (c->out_start < c->out_end) {
                ssize_t n = send(c->fd, c->out + c->out_start, c->out_end - c->out_start, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        int r = log_debug_errno(errno, "Varlink client (pid %d): write failed: %m", (int) c->pid);
                        varlink_connection_fail(c);
                        return r;
                }
                c->out_start += (size_t) n;
                c->server->output_pending -= (size_t) n;
                progress = true;
        }

        if (c->out_start == c->out_end) {
                c->out_start = c->out_end = 0;
                if (c->out_alloc > BUFFER_KEEP) {
                        free(c->out);
                        c->out = NULL;
                        c->out_alloc = 0;
                }
        }
        if (progress)
                connection_touch(c); /* a client that reads its replies is not idle */
        return 0;
}

typedef struct DumpContext {
        VarlinkConnection *connection;
        bool overflow;
        bool overflow_total; /* the overflow is of all clients together, and this one has the most */
} DumpContext;

/* Frees what c has not sent and closes it: its client reads too little. */
static void connection_drop_output(VarlinkConnection *c) {
        c->server->output_pending -= c->out_end - c->out_start;
        free(c->out);
        c->out = NULL;
        c->out_alloc = c->out_start = c->out_end = 0;
        varlink_connection_fail(c);
}

/* Whichever connection the cap on all clients' unread output drops, the one with the most. */
#define TOTAL_OVERFLOW_TEXT "the most unread output while all clients together have too much"

static VarlinkConnection *connection_with_most_output(VarlinkServer *s) {
        VarlinkConnection *most = NULL;
        for (VarlinkConnection *c = s->connections; c; c = c->next)
                if (!most || c->out_end - c->out_start > most->out_end - most->out_start)
                        most = c;
        return most;
}

static int on_dump(const char *buffer, size_t size, void *userdata) {
        DumpContext *d = userdata;
        VarlinkConnection *c = d->connection;
        VarlinkServer *s = c->server;
        size_t pending = c->out_end - c->out_start;

        if (size > c->output_max - pending) {
                d->overflow = true;
                return -1;
        }
        /* Many connections that each stay below output_max must not add up to unbounded memory. */
        while (size > s->output_total_max - s->output_pending) {
                VarlinkConnection *most = connection_with_most_output(s);
                if (!most || most == c || most->out_end == most->out_start) {
                        d->overflow = true;
                        d->overflow_total = true;
                        return -1;
                }
                log_debug("Varlink client (pid %d): " TOTAL_OVERFLOW_TEXT ", disconnecting.", (int) most->pid);
                connection_drop_output(most);
                pending = c->out_end - c->out_start;
        }
        if (c->out_alloc - c->out_end < size && c->out_start > 0) {
                memmove(c->out, c->out + c->out_start, pending);
                c->out_start = 0;
                c->out_end = pending;
        }
        if (c->out_alloc - c->out_end < size) {
                size_t n = MAX(MAX(c->out_alloc * 2, c->out_end + size), (size_t) BUFFER_MIN);
                char *p = realloc(c->out, n);
                if (!p)
                        return -1;
                c->out = p;
                c->out_alloc = n;
        }
        memcpy(c->out + c->out_end, buffer, size);
        c->out_end += size;
        s->output_pending += size;
        return 0;
}

/* Appends message, serialized, or else the text of parts, then the NUL terminator; all straight
 * into the output buffer. */
static int connection_send(VarlinkConnection *c, json_t *message, const char * const *parts, size_t n_parts) {
        DumpContext d = { .connection = c };
        size_t pending = c->out_end - c->out_start;
        bool ok;
        int r;

        if (c->failed)
                return -ENOTCONN;

        ok = !message || json_dump_callback(message, on_dump, &d, JSON_COMPACT) >= 0;
        for (size_t i = 0; ok && i < n_parts; i++)
                ok = on_dump(parts[i], strlen(parts[i]), &d) >= 0;
        if (!ok || on_dump("", 1, &d) < 0) {
                c->server->output_pending -= c->out_end - (c->out_start + pending);
                c->out_end = c->out_start + pending; /* drop the partial message */
                log_debug("Varlink client (pid %d): %s, disconnecting.", (int) c->pid,
                          d.overflow_total ? TOTAL_OVERFLOW_TEXT :
                          d.overflow ? "too much unread output" : "cannot serialize reply");
                varlink_connection_fail(c);
                return d.overflow ? -ENOBUFS : -ENOMEM;
        }

        r = connection_flush(c);
        if (r < 0)
                return r;
        connection_update_events(c);
        return 0;
}

int varlink_connection_send(VarlinkConnection *c, json_t *message) {
        return connection_send(c, message, NULL, 0);
}

int varlink_connection_send_text(VarlinkConnection *c, const char * const *parts, size_t n_parts) {
        return connection_send(c, NULL, parts, n_parts);
}

static void connection_check(VarlinkConnection *c);

void varlink_connection_end_call(VarlinkConnection *c) {
        VarlinkCall *call = TAKE_PTR(c->call);

        call->connection = NULL;
        varlink_call_unref(call);
        if (c->failed)
                return;

        connection_touch(c);
        /* A buffered call only gets queued: it runs from the dispatcher, not from inside whoever
         * ended this call. */
        connection_check(c);
}

static void connection_read(VarlinkConnection *c) {
        size_t unconsumed = c->in_end - c->in_start;
        ssize_t n;

        if (c->in_start > 0) {
                memmove(c->in, c->in + c->in_start, unconsumed);
                c->in_start = 0;
                c->in_end = unconsumed;
        }
        /* Grows on demand up to one maximal message; never more, so in_alloc - in_end is also
         * what the current message may still take. */
        if (c->in_alloc - c->in_end < BUFFER_MIN / 4 && c->in_alloc < c->message_max) {
                size_t a = MIN(MAX(c->in_alloc * 2, (size_t) BUFFER_MIN), c->message_max);
                char *p = realloc(c->in, a);
                if (!p) {
                        varlink_connection_fail(c);
                        return;
                }
                c->in = p;
                c->in_alloc = a;
        }
        if (c->in_alloc == c->in_end)
                return; /* full: connection_process() decides */

        n = recv(c->fd, c->in + c->in_end, MIN(c->in_alloc - c->in_end, (size_t) VARLINK_READ_MAX), MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        return;
                log_debug_errno(errno, "Varlink client (pid %d): read failed: %m", (int) c->pid);
                varlink_connection_fail(c);
                return;
        }
        if (n == 0)
                c->read_eof = true;
        c->in_end += (size_t) n;
}

static int connection_parse(VarlinkConnection *c, const char *text, size_t len) {
        json_auto_t *message = NULL;
        json_error_t error;
        char buf[LOG_ESCAPE_MAX];

        message = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
        if (!message) {
                /* jansson quotes the offending input in its text. */
                log_debug("Varlink client (pid %d): invalid JSON at byte %d: %s", (int) c->pid, error.position,
                          log_escape(error.text, strlen(error.text), buf, sizeof buf));
                return -EBADMSG;
        }
        return varlink_connection_dispatch(c, message);
}

/* The NUL that ends the next buffered message, or NULL if it has not all arrived. */
static char *connection_next_message(VarlinkConnection *c) {
        size_t unconsumed = c->in_end - c->in_start;
        char *start, *nul;

        /* The buffer is freed once empty (c->in may be NULL): no pointer arithmetic on it then. */
        if (unconsumed <= c->in_scanned)
                return NULL;
        start = c->in + c->in_start;
        nul = memchr(start + c->in_scanned, 0, unconsumed - c->in_scanned);
        c->in_scanned = nul ? (size_t) (nul - start) : unconsumed;
        return nul;
}

/* Decides what the connection waits for: its turn (a complete message and no call in
 * progress), more input, or closing (too long a message; the client shut down its side and has
 * been answered). */
static void connection_check(VarlinkConnection *c) {
        if (c->failed)
                return;
        if (!c->call) {
                if (connection_next_message(c))
                        varlink_dispatch_queue(c);
                else if (c->in_end - c->in_start >= c->message_max) {
                        log_debug("Varlink client (pid %d): message too long, disconnecting.", (int) c->pid);
                        varlink_connection_fail(c);
                        return;
                } else if (c->read_eof && c->out_start == c->out_end) {
                        varlink_connection_fail(c);
                        return;
                }
        }
        if (c->in_start == c->in_end) {
                c->in_start = c->in_end = c->in_scanned = 0;
                if (c->in_alloc > BUFFER_KEEP) {
                        free(c->in);
                        c->in = NULL;
                        c->in_alloc = 0;
                }
        }
        connection_update_events(c);
}

void varlink_connection_run(VarlinkConnection *c) {
        char *start, *nul;
        int r;

        if (c->failed || c->call)
                return;
        nul = connection_next_message(c);
        if (nul) {
                start = c->in + c->in_start;
                c->in_start += (size_t) (nul - start) + 1;
                c->in_scanned = 0;
                r = connection_parse(c, start, (size_t) (nul - start));
                if (r < 0) {
                        log_debug_errno(r, "Varlink client (pid %d): protocol violation, disconnecting: %m", (int) c->pid);
                        varlink_connection_fail(c);
                        return;
                }
        }
        if (c->call)
                connection_touch(c); /* stops the idle timer */
        connection_check(c);
}

static int on_connection_io(_unused_ sd_event_source *source, _unused_ int fd, uint32_t revents, void *userdata) {
        VarlinkConnection *c = userdata;
        bool did_read = false;

        if (!c->failed && (revents & EPOLLOUT))
                (void) connection_flush(c);
        if (!c->failed && (revents & EPOLLIN) && (c->events & EPOLLIN)) {
                connection_read(c);
                did_read = true;
        }
        /* Hangup with reading off (EOF seen, or input full during a call): nobody is left to
         * answer. With reading on, read first: EOF then comes in order after the last data. */
        if (!c->failed && (revents & (EPOLLHUP | EPOLLERR)) && !did_read) {
                log_debug("Varlink client (pid %d): hung up.", (int) c->pid);
                varlink_connection_fail(c);
        }
        connection_check(c);
        if (c->failed)
                varlink_connection_free(c);
        return 0;
}

/* Enabled by varlink_connection_fail() only. */
static int on_connection_defer(_unused_ sd_event_source *source, void *userdata) {
        VarlinkConnection *c = userdata;

        if (c->failed)
                varlink_connection_free(c);
        return 0;
}

static int on_connection_idle(_unused_ sd_event_source *source, _unused_ uint64_t usec, void *userdata) {
        VarlinkConnection *c = userdata;

        if (c->call && !c->failed)
                return 0;
        log_debug("Varlink client (pid %d): idle, disconnecting.", (int) c->pid);
        varlink_connection_free(c);
        return 0;
}

int varlink_connection_new(VarlinkServer *s, int fd, uid_t uid, pid_t pid, const VarlinkPeerGroups *groups) {
        VarlinkConnection *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        *c = (VarlinkConnection) {
                .server = s,
                .fd = fd,
                .uid = uid,
                .pid = pid,
                .groups = *groups,
                .events = EPOLLIN,
                .output_max = s->output_max,
                .message_max = uid == 0 ? VARLINK_MESSAGE_MAX : VARLINK_MESSAGE_UNPRIVILEGED_MAX,
                .next = s->connections,
        };
        if (s->connections)
                s->connections->prev = c;
        s->connections = c;
        s->n_connections++;

        r = varlink_dispatch_attach(c);
        if (r >= 0)
                r = sd_event_add_io(s->event, &c->io, c->fd, c->events, on_connection_io, c);
        if (r >= 0)
                r = sd_event_source_set_priority(c->io, s->priority);
        if (r >= 0)
                r = sd_event_add_defer(s->event, &c->defer, on_connection_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(c->defer, s->priority);
        if (r >= 0 && s->idle_timeout_usec > 0)
                r = event_reset_time(s->event, &c->idle, CLOCK_MONOTONIC, s->idle_timeout_usec, 0, true,
                                     on_connection_idle, c);
        if (r < 0) {
                varlink_connection_free(c);
                return r;
        }
        return 0;
}
