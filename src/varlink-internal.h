/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by varlink.c (server, listeners, connection limits), varlink-connection.c (one client's
 * socket and buffers), varlink-dispatch.c (which connection's call runs next) and varlink-call.c
 * (calls, method dispatch, org.varlink.service). Nothing else includes it. */

#include "time-util.h"
#include "varlink.h"

typedef struct VarlinkListener VarlinkListener;
typedef struct VarlinkConnection VarlinkConnection;
typedef struct VarlinkUser VarlinkUser;

/* Of the server's groups (varlink_server_set_groups()), those the peer was in when it connected. */
typedef struct VarlinkPeerGroups {
        gid_t gids[VARLINK_GROUPS_MAX];
        size_t n;
} VarlinkPeerGroups;

struct VarlinkServer {
        sd_event *event;
        void *userdata;
        char *vendor, *product, *version, *url;

        const VarlinkInterface **interfaces;
        size_t n_interfaces;

        VarlinkListener *listeners;
        sd_event_source *accept_retry; /* re-enables the listeners after EMFILE and friends */

        VarlinkConnection *connections;
        size_t n_connections, connections_max;

        int64_t priority, call_priority; /* of the sockets; of the dispatcher */
        gid_t groups[VARLINK_GROUPS_MAX];
        size_t n_groups;

        VarlinkUser *users;           /* every UID with a connection */
        VarlinkUser *ready, *ready_tail; /* the UIDs with a call to run, in order of arrival */
        uint64_t virtual_nsec;        /* start of the call running or last run (varlink-dispatch.c) */
        sd_event_source *dispatcher;
        bool dispatching;             /* in dispatch_slice(): varlink_server_dispatch() does nothing */
        sd_event_source *throttle;    /* wakes the dispatcher when a UID has allowance again */
        uint64_t cpu_rate_nsec, cpu_burst_nsec; /* per second, 0: no limit */

        uint64_t idle_timeout_usec;
        size_t output_max;
        size_t output_pending, output_total_max; /* unread output of all connections */
};

/* Invariant: call != NULL exactly while a call is in progress; the connection then holds one
 * reference to it and call->connection points back here. Input after the current message stays
 * buffered until the call ends. */
struct VarlinkConnection {
        VarlinkServer *server;
        VarlinkConnection *next, *prev;

        int fd;
        uid_t uid;
        pid_t pid;
        VarlinkPeerGroups groups;
        VarlinkUser *user;
        VarlinkConnection *queue_next, *queue_prev; /* in user's queue while queued */
        bool queued;     /* a complete message waits and no call is in progress */
        sd_event_source *io, *idle, *defer;
        uint32_t events; /* what io is currently armed for */

        char *in;
        size_t in_alloc, in_start, in_end;
        size_t message_max; /* VARLINK_MESSAGE_MAX for root, else VARLINK_MESSAGE_UNPRIVILEGED_MAX */
        size_t in_scanned; /* bytes after in_start known to contain no NUL */

        char *out;
        size_t out_alloc, out_start, out_end;
        size_t output_max;

        VarlinkCall *call;
        bool read_eof; /* the peer shut down its sending side */
        bool failed;   /* to be closed from the event loop */
};

struct VarlinkCall {
        unsigned n_ref;
        VarlinkConnection *connection; /* NULL once the call ended or its connection closed */
        json_t *message;               /* keeps the parameters alive as long as the call */
        const char *method;            /* points into message */
        uid_t uid;
        pid_t pid;
        VarlinkPeerGroups groups;
        bool more, oneway, ended;
        void (*close_callback)(VarlinkCall *c, void *userdata);
        void *close_userdata;
};

/* A UID's connections, its place among those with calls to run, and its allowance of CPU
 * time. Kept while it has connections, and then until its allowance is full again. */
struct VarlinkUser {
        VarlinkServer *server;
        VarlinkUser *next, *prev;             /* in server->users */
        VarlinkUser *ready_next, *ready_prev; /* in server->ready while its queue is not empty */
        uid_t uid;
        size_t n_connections;
        VarlinkConnection *queue, *queue_tail; /* its connections with a call to run, in turn */
        uint64_t virtual_nsec;                /* CPU time its calls took, on the server's clock */
        int64_t allowance_nsec;               /* CPU time it may still take; negative: in debt */
        usec_t refilled_usec;                 /* CLOCK_MONOTONIC of the last refill */
};

/* Bounds the CPU time that allowances and costs are counted in (1000 s). */
#define VARLINK_CPU_MAX_NSEC (1000ULL * 1000ULL * 1000ULL * 1000ULL)

/* varlink-connection.c */
/* Takes fd in all cases. */
int varlink_connection_new(VarlinkServer *s, int fd, uid_t uid, pid_t pid, const VarlinkPeerGroups *groups);
/* Closes at once and runs the close callback of a call in progress; only from our own event
 * sources and varlink_server_free(). */
VarlinkConnection *varlink_connection_free(VarlinkConnection *c);
/* Queues message (with its NUL) and tries to send it. On failure the connection is marked
 * failed and closed later from the event loop: -ENOBUFS over the output cap, else -errno. */
int varlink_connection_send(VarlinkConnection *c, json_t *message);
/* The same for a message given as text, in parts that are sent one after the other. */
int varlink_connection_send_text(VarlinkConnection *c, const char * const *parts, size_t n_parts);
/* Schedules closing from the event loop; safe from anywhere, including method handlers. */
void varlink_connection_fail(VarlinkConnection *c);
/* The call in progress ended: drop our reference and queue the next buffered call, if any. */
void varlink_connection_end_call(VarlinkConnection *c);
/* Runs the next buffered call (only from the dispatcher). */
void varlink_connection_run(VarlinkConnection *c);

/* varlink-dispatch.c */
int varlink_dispatch_setup(VarlinkServer *s);
void varlink_dispatch_done(VarlinkServer *s);
size_t varlink_dispatch_connections_of(const VarlinkServer *s, uid_t uid);
/* Counts c for its UID (c->uid); on failure c is not counted. */
int varlink_dispatch_attach(VarlinkConnection *c);
/* Takes c out of the queue and stops counting it. */
void varlink_dispatch_detach(VarlinkConnection *c);
/* c has a complete message and no call in progress: it gets a turn. Idempotent. */
void varlink_dispatch_queue(VarlinkConnection *c);
void varlink_dispatch_dequeue(VarlinkConnection *c);

/* varlink-call.c */
extern const VarlinkInterface varlink_service_interface; /* org.varlink.service */
/* Takes one parsed message: < 0 for a protocol violation (the caller disconnects). Otherwise the
 * method ran and c->call is set if the call is still in progress. */
int varlink_connection_dispatch(VarlinkConnection *c, json_t *message);
/* The connection closes under a call in progress: detach it and run its close callback. */
void varlink_call_disconnect(VarlinkCall *call);
