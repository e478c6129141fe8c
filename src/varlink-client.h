/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "macro.h"
#include "time-util.h"

/* A blocking varlink client on one AF_UNIX connection, for vpopguardctl (the server side is
 * varlink.h). One call at a time: send it, then read its replies in order. The wire format is
 * described in varlink.h: JSON objects, each followed by a NUL byte.
 *
 * After a transport or protocol failure (timeout, closed connection, oversized or malformed
 * reply) the connection is unusable and every later call returns -ENOTCONN. */

/* One incoming reply, NUL included. A ListBans reply of a full ban table runs to a few hundred
 * bytes per ban, far more than the server accepts in a call (VARLINK_MESSAGE_MAX). */
#define VARLINK_CLIENT_MESSAGE_MAX (64U * 1024U * 1024U)

typedef struct VarlinkClient VarlinkClient;

typedef enum VarlinkCallFlags {
        VARLINK_CALL_MORE = 1 << 0,   /* ask for several replies ("more": true) */
        VARLINK_CALL_ONEWAY = 1 << 1, /* ask for no reply at all ("oneway": true) */
} VarlinkCallFlags;

/* Connects to the AF_UNIX stream socket at path; "@name" is a socket in the abstract
 * namespace. The errno of connect() is passed on, so callers can tell -ENOENT (no socket
 * file), -ECONNREFUSED (nobody listening) and -EACCES (no permission) apart; -EINVAL for a path
 * that is empty or does not fit into sockaddr_un. */
int varlink_client_connect(const char *path, VarlinkClient **ret);
/* Takes over fd, a connected stream socket (e.g. one end of a socketpair), also on failure. */
int varlink_client_new_from_fd(int fd, VarlinkClient **ret);
VarlinkClient *varlink_client_free(VarlinkClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkClient *, varlink_client_free);

/* How long each varlink_client_receive() waits for its reply. USEC_INFINITY, the default, waits
 * forever (for Monitor()). */
void varlink_client_set_timeout(VarlinkClient *c, usec_t timeout);

/* Sends a call of method ("io.vpopguard.Manager.Ban"); parameters (borrowed) must be a JSON
 * object or NULL for none. -EINVAL for both MORE and ONEWAY, or parameters that are not an
 * object. */
int varlink_client_send(VarlinkClient *c, const char *method, json_t *parameters, VarlinkCallFlags flags);

/* Reads the next reply. ret_parameters gets a new reference to its "parameters" (an empty
 * object when absent or null), ret_error a copy of its "error" name or NULL when the call
 * succeeded, ret_continues whether more replies to this call follow. Each may be NULL.
 * Returns 0 for any reply, error replies included; -ETIMEDOUT; -ECONNRESET when the server
 * closed the connection; -EMSGSIZE for a reply larger than VARLINK_CLIENT_MESSAGE_MAX; -EBADMSG
 * for one that is not a varlink reply; other negative errnos of the socket. */
int varlink_client_receive(VarlinkClient *c, json_t **ret_parameters, char **ret_error, bool *ret_continues);

/* varlink_client_send() without flags, then varlink_client_receive() of its single reply. */
int varlink_client_call(VarlinkClient *c, const char *method, json_t *parameters,
                        json_t **ret_parameters, char **ret_error);
