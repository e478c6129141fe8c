/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* A varlink server (https://varlink.org) on sd-event, because libsystemd 252 exports none.
 *
 * Wire format: each message is one JSON object followed by a NUL byte. A call is
 *   {"method": "iface.Method", "parameters": {...}, "more": bool, "oneway": bool}
 * and a reply {"parameters": {...}, "continues": bool} or {"error": "iface.Name",
 * "parameters": {...}}. Calls on one connection are answered in order: the next message is
 * only read once the current call has ended.
 *
 * The server implements org.varlink.service (GetInfo, GetInterfaceDescription) and its errors
 * (InterfaceNotFound, MethodNotFound, InvalidParameter, ExpectedMore) itself; "parameters"
 * omitted, null or {} all mean "no parameters". Unknown fields of a call are ignored.
 *
 * A message that is not a well-formed call (invalid JSON, not an object, "method" missing or not
 * a string, "parameters" neither an object nor null, "more"/"oneway" not booleans or both true,
 * "upgrade" requested) gets no reply: the connection is closed, since we cannot tell what the
 * client meant.
 *
 * Everything a local client can grow has a named limit below. A client that breaks one (too
 * large a message, too much unread output, too many connections, idle too long, garbage) is
 * disconnected; it can never block the event loop or other clients (see "Who runs next" below
 * for clients that merely ask a lot). Nothing here logs above
 * debug level: a misbehaving client must not be able to fill the journal. */

#define VARLINK_MESSAGE_MAX (1024U * 1024U)        /* one incoming message of root's, NUL included */
/* One incoming message of any other user's. Parsing costs time in proportion to the size and
 * comes before any method could refuse the call: a MiB of "[],[],..." keeps jansson busy for a
 * tenth of a second or more. Calls that other users may make carry names and addresses, a few
 * hundred bytes. */
#define VARLINK_MESSAGE_UNPRIVILEGED_MAX (8U * 1024U)
#define VARLINK_OUTPUT_MAX (128U * 1024U * 1024U)  /* queued, unread output per connection */
/* Unread output of all connections together: beyond it, the connection with the most goes. */
#define VARLINK_OUTPUT_TOTAL_MAX (256U * 1024U * 1024U)
/* Every connection is a file descriptor. With VARLINK_FDS_RESERVED more for everything else (the
 * journal's files, nftables, the state file) they stay below 1024: systemd's default soft
 * RLIMIT_NOFILE for services, and FD_SETSIZE, which libnftables' select() on its netlink socket
 * cannot exceed. A lower soft limit lowers the connection limit to match, so that the excess is
 * refused rather than left unaccepted for want of descriptors. */
#define VARLINK_CONNECTIONS_MAX 768U
#define VARLINK_FDS_RESERVED 256U
#define VARLINK_CONNECTIONS_PER_UID_MAX 64U
/* The last connections are root's: other users filling the limit cannot lock out the admin. */
#define VARLINK_CONNECTIONS_ROOT_RESERVED 16U
/* Closed after this long without a call in progress, a call ended or output drained; half a
 * message dripping in does not count as activity. */
#define VARLINK_IDLE_TIMEOUT_USEC (5U * 60U * 1000000ULL)
#define VARLINK_READ_MAX (64U * 1024U)             /* bytes read from one connection per wakeup */
#define VARLINK_ACCEPT_PER_WAKEUP 16U              /* connections accepted per wakeup of a listener */
#define VARLINK_ACCEPT_RETRY_USEC (250U * 1000ULL) /* pause of the listeners when out of fds */

/* Who runs next. Reading and writing sockets is cheap and bounded per wakeup; running calls may
 * not be. So calls run from one place, the dispatcher, which takes turns between UIDs by the CPU
 * time their calls took (start-time fair queuing): with n UIDs waiting, each gets 1/n of the
 * time, however many connections it holds, and a UID whose call took long waits until the
 * others have had as much. The connections of one UID take turns among themselves. Per wakeup
 * the dispatcher runs at most VARLINK_CALLS_PER_WAKEUP calls and stops once they took
 * VARLINK_WAKEUP_NSEC of CPU time, then yields to every other event source that is ready; it runs
 * at a priority below the sockets' (varlink_server_set_priorities()), so that new connections
 * and input are taken in while calls wait. A UID's waiting calls are bounded by its connections
 * (VARLINK_CONNECTIONS_PER_UID_MAX) times the input buffered per connection (one message's
 * maximum). */
#define VARLINK_CALLS_PER_WAKEUP 16U
#define VARLINK_WAKEUP_NSEC (1000U * 1000U)
/* Charged for every call however fast it was: handling its socket costs too. */
#define VARLINK_CALL_COST_MIN_NSEC (10U * 1000U)
/* The CPU time the calls of one UID other than root may take: 10% of a CPU, in bursts of up to
 * 0.2 s (varlink_server_set_cpu_limit() changes it). The calls beyond wait, they are not refused. */
#define VARLINK_UID_CPU_PER_SEC_NSEC (100ULL * 1000ULL * 1000ULL)
#define VARLINK_UID_CPU_BURST_NSEC (200ULL * 1000ULL * 1000ULL)

/* Groups whose membership varlink_call_peer_in_group() can tell. */
#define VARLINK_GROUPS_MAX 8U

#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
/* Not in the standard IDL: sent with {"errno": N} when a method handler fails without ending
 * its call. */
#define VARLINK_ERROR_INTERNAL "org.varlink.service.InternalError"

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkCall VarlinkCall;

/* A method handler. parameters is a JSON object (never NULL; {} when the client sent none),
 * borrowed for the duration of the call. The handler must end the call with
 * varlink_call_reply() or varlink_call_error() before it returns, or take a reference
 * (varlink_call_ref()) to end it later (for "more" calls that stream replies). Its return
 * value: 0, or a negative errno, on which the server replies VARLINK_ERROR_INTERNAL if the call
 * has not ended. A handler that returns without ending the call and without a reference of its
 * own gets VARLINK_ERROR_INTERNAL sent for it too, so no client waits forever. Handlers must not
 * free the server. */
typedef int (*VarlinkMethod)(VarlinkCall *call, json_t *parameters, void *userdata);

typedef struct VarlinkMethodEntry {
        const char *name; /* "GetStatus" (without the interface) */
        VarlinkMethod callback;
} VarlinkMethodEntry;

typedef struct VarlinkInterface {
        const char *name;        /* "io.vpopguard.Manager" */
        const char *description; /* the IDL text, for GetInterfaceDescription */
        const VarlinkMethodEntry *methods; /* terminated by an entry with name == NULL */
} VarlinkInterface;

typedef struct VarlinkServerInfo {
        const char *vendor, *product, *version, *url;
} VarlinkServerInfo;

int varlink_server_new(sd_event *event, const VarlinkServerInfo *info, void *userdata, VarlinkServer **ret);
VarlinkServer *varlink_server_free(VarlinkServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkServer *, varlink_server_free);

/* The interface must stay valid while the server lives. */
int varlink_server_add_interface(VarlinkServer *s, const VarlinkInterface *iface);

/* Accepts connections on a listening socket we were handed (socket activation); it is never
 * unlinked. The server owns fd from then on (on failure the caller still does) and makes it
 * nonblocking. */
int varlink_server_listen_fd(VarlinkServer *s, int fd);
/* Creates, binds and listens on an AF_UNIX stream socket at path with the given mode; a stale
 * socket file is replaced, and the file is unlinked when the server is freed. */
int varlink_server_listen_path(VarlinkServer *s, const char *path, mode_t mode);

size_t varlink_server_connections(const VarlinkServer *s);

/* The priorities of the sockets' event sources (accepting, reading, writing: cheap and bounded
 * per wakeup) and of the dispatcher that runs calls (calls >= sockets; default
 * SD_EVENT_PRIORITY_NORMAL and one below). An owner whose own work must come first gives the
 * calls, or both, a lower priority (a larger number) than that work. */
int varlink_server_set_priorities(VarlinkServer *s, int64_t sockets, int64_t calls);

/* Runs one slice of the calls that wait (as the dispatcher does when it gets its turn) now: for
 * an owner whose own work keeps the dispatcher's priority busy for long, so that clients are
 * still answered between its steps. Does nothing for NULL, from inside a call, nor for UIDs that
 * have run out of CPU time. */
void varlink_server_dispatch(VarlinkServer *s);

/* The CPU time per second that the calls of one UID other than root may take, and the most
 * they may take at once after a pause; rate 0 means no limit. For UIDs that connect from now on. */
void varlink_server_set_cpu_limit(VarlinkServer *s, uint64_t rate_nsec_per_sec, uint64_t burst_nsec);

/* The groups (at most VARLINK_GROUPS_MAX) whose members varlink_call_peer_in_group() recognizes,
 * for connections accepted from now on. */
int varlink_server_set_groups(VarlinkServer *s, const gid_t *gids, size_t n);

/* Overrides VARLINK_IDLE_TIMEOUT_USEC (0 = never) and VARLINK_OUTPUT_MAX for connections
 * accepted from now on (for tests and small deployments). */
void varlink_server_set_idle_timeout(VarlinkServer *s, uint64_t usec);
void varlink_server_set_output_max(VarlinkServer *s, size_t bytes);

/* The calling peer's credentials, from SO_PEERCRED when it connected. */
uid_t varlink_call_peer_uid(const VarlinkCall *c);
pid_t varlink_call_peer_pid(const VarlinkCall *c);
/* Whether gid was the peer's primary or one of its supplementary groups when it connected
 * (SO_PEERCRED, SO_PEERGROUPS). Always false for a group not given to varlink_server_set_groups()
 * before the connection was accepted. */
bool varlink_call_peer_in_group(const VarlinkCall *c, gid_t gid);
const char *varlink_call_method(const VarlinkCall *c); /* "io.vpopguard.Manager.GetStatus" */
bool varlink_call_wants_more(const VarlinkCall *c);
bool varlink_call_is_oneway(const VarlinkCall *c);

/* Ends the call with a reply; parameters may be NULL (= {}). Steals the reference to
 * parameters. For a oneway call nothing is sent. Returns 0 or negative errno (-ENOTCONN if the
 * client is gone, -EALREADY if the call already ended, which callers may ignore). The call ends
 * even when sending fails. None of these functions ever closes a connection synchronously or runs
 * a close callback: a failed connection is closed from the event loop, so they are safe to use
 * while iterating the owner's list of calls. */
int varlink_call_reply(VarlinkCall *c, json_t *parameters);
/* The same with the parameters given as the text of a JSON object, which the caller vouches for
 * (e.g. it formatted every value itself): large replies are written much faster as text than
 * built as objects and serialized, and a call runs in one piece. */
int varlink_call_reply_text(VarlinkCall *c, const char *parameters);
/* Sends one reply with "continues": true and keeps the call open; only for calls with "more".
 * Steals the reference to parameters. -ENOBUFS if the client does not read fast enough (the
 * connection is then closed). */
int varlink_call_notify(VarlinkCall *c, json_t *parameters);
/* The same with the parameters as text, as varlink_call_reply_text() takes them. */
int varlink_call_notify_text(VarlinkCall *c, const char *parameters);
/* Bytes of replies queued for the call's client and not yet read by it; 0 once it is gone. A
 * long stream waits while this is high, rather than run into the output limit. */
size_t varlink_call_pending_output(const VarlinkCall *c);
/* Ends the call with an error such as "io.vpopguard.Manager.NoSuchJail"; parameters may be
 * NULL. Steals the reference. */
int varlink_call_error(VarlinkCall *c, const char *error, json_t *parameters);
/* org.varlink.service.InvalidParameter with {"parameter": name}. */
int varlink_call_error_invalid_parameter(VarlinkCall *c, const char *name);

/* Keeps a call alive after its method handler returned (streaming). The close callback runs
 * once when the client disconnects, its connection fails (e.g. after -ENOBUFS from notify) or
 * the server goes away, so the owner can drop its reference; it is not called for calls that
 * ended by reply or error. It runs from the event loop (or varlink_server_free()), never from
 * inside a varlink_call_*() function. An owner that drops its reference before that should
 * clear the callback first (callback NULL). */
VarlinkCall *varlink_call_ref(VarlinkCall *c);
VarlinkCall *varlink_call_unref(VarlinkCall *c);
void varlink_call_set_close_callback(VarlinkCall *c, void (*callback)(VarlinkCall *c, void *userdata), void *userdata);

/* Validates parameters against a table: every field present in parameters must be listed
 * (else InvalidParameter naming it), and have the listed type; required fields must be
 * present and not null; nullable ones may be absent or null. On a violation this replies
 * InvalidParameter itself and returns -EINVAL. */
typedef enum VarlinkFieldType {
        VARLINK_STRING,
        VARLINK_INT,     /* a JSON integer */
        VARLINK_BOOL,
        VARLINK_OBJECT,  /* e.g. [string]string maps (values checked by the caller) */
        VARLINK_ARRAY,
} VarlinkFieldType;

typedef struct VarlinkField {
        const char *name;
        VarlinkFieldType type;
        bool required;
} VarlinkField;

int varlink_check_parameters(VarlinkCall *c, json_t *parameters, const VarlinkField *fields, size_t n_fields);
