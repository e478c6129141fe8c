/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "varlink-client.h"

#define READ_CHUNK_MIN (16U * 1024U)

/* Invariant: buf[0..size) holds bytes received but not yet returned as replies; none of
 * buf[0..scanned) is a NUL, so a reply's end is only ever searched for in new bytes. */
struct VarlinkClient {
        int fd;
        bool broken;
        usec_t timeout;
        char *buf;
        size_t size, allocated, scanned;
};

int varlink_client_new_from_fd(int fd, VarlinkClient **ret) {
        VarlinkClient *c;

        if (fd < 0)
                return -EBADF;
        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        c->timeout = USEC_INFINITY;
        *ret = c;
        return 0;
}

int varlink_client_connect(const char *path, VarlinkClient **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        socklen_t salen;

        if (!path)
                return -EINVAL;
        len = strlen(path);
        if (len == 0 || len >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (path[0] == '@') {
                /* Abstract names are not NUL-terminated: the length says where they end. */
                sa.sun_path[0] = 0;
                salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
        } else
                salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        while (connect(fd, (const struct sockaddr *) &sa, salen) < 0)
                if (errno != EINTR)
                        return -errno;

        return varlink_client_new_from_fd(TAKE_FD(fd), ret);
}

VarlinkClient *varlink_client_free(VarlinkClient *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        free(c->buf);
        free(c);
        return NULL;
}

void varlink_client_set_timeout(VarlinkClient *c, usec_t timeout) {
        c->timeout = timeout;
}

static int fail(VarlinkClient *c, int error) {
        c->broken = true;
        return error;
}

static int write_all(VarlinkClient *c, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return fail(c, errno == EPIPE ? -ECONNRESET : -errno);
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int varlink_client_send(VarlinkClient *c, const char *method, json_t *parameters, VarlinkCallFlags flags) {
        json_auto_t *call = NULL;
        _cleanup_free_ char *text = NULL;

        if (!method || (parameters && !json_is_object(parameters)))
                return -EINVAL;
        if ((flags & VARLINK_CALL_MORE) && (flags & VARLINK_CALL_ONEWAY))
                return -EINVAL;
        if (c->broken)
                return -ENOTCONN;

        call = json_pack("{s:s}", "method", method);
        if (!call)
                return -ENOMEM;
        if (parameters && json_object_set(call, "parameters", parameters) < 0)
                return -ENOMEM;
        if ((flags & VARLINK_CALL_MORE) && json_object_set_new(call, "more", json_true()) < 0)
                return -ENOMEM;
        if ((flags & VARLINK_CALL_ONEWAY) && json_object_set_new(call, "oneway", json_true()) < 0)
                return -ENOMEM;

        /* jansson escapes NUL inside strings as \u0000, so the text holds no NUL of its own. */
        text = json_dumps(call, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        return write_all(c, text, strlen(text) + 1);
}

/* Waits until the socket is readable or the deadline passed. */
static int wait_readable(VarlinkClient *c, usec_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int timeout_ms = -1, r;

                if (deadline != USEC_INFINITY) {
                        usec_t n = now_monotonic();
                        if (n >= deadline)
                                return -ETIMEDOUT;
                        /* Round up, so we never wake a little early and spin. */
                        timeout_ms = (int) MIN((deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (usec_t) INT32_MAX);
                }
                r = poll(&p, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
        }
}

/* Makes room for at least one more read, without ever holding more than one maximal reply. */
static int grow(VarlinkClient *c) {
        size_t want;
        char *p;

        if (c->allocated - c->size >= READ_CHUNK_MIN || c->allocated >= VARLINK_CLIENT_MESSAGE_MAX)
                return 0;
        want = MAX(c->allocated * 2, (size_t) 4 * READ_CHUNK_MIN);
        want = MIN(want, (size_t) VARLINK_CLIENT_MESSAGE_MAX);
        p = realloc(c->buf, want);
        if (!p)
                return -ENOMEM;
        c->buf = p;
        c->allocated = want;
        return 0;
}

/* Returns the length of the next complete message (without its NUL) once one is buffered. */
static int read_message(VarlinkClient *c, size_t *ret_len) {
        usec_t deadline = c->timeout == USEC_INFINITY ? USEC_INFINITY : now_monotonic() + c->timeout;
        int r;

        for (;;) {
                char *nul = c->size > c->scanned ? memchr(c->buf + c->scanned, 0, c->size - c->scanned) : NULL;
                if (nul) {
                        *ret_len = (size_t) (nul - c->buf);
                        return 0;
                }
                c->scanned = c->size;

                if (c->size >= VARLINK_CLIENT_MESSAGE_MAX)
                        return fail(c, -EMSGSIZE);
                r = grow(c);
                if (r < 0)
                        return r;

                r = wait_readable(c, deadline);
                if (r < 0)
                        return fail(c, r);

                ssize_t k = recv(c->fd, c->buf + c->size, c->allocated - c->size, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return fail(c, -errno);
                }
                if (k == 0)
                        return fail(c, -ECONNRESET);
                c->size += (size_t) k;
        }
}

static void consume(VarlinkClient *c, size_t n) {
        memmove(c->buf, c->buf + n, c->size - n);
        c->size -= n;
        c->scanned = 0;
}

int varlink_client_receive(VarlinkClient *c, json_t **ret_parameters, char **ret_error, bool *ret_continues) {
        json_auto_t *reply = NULL, *parameters = NULL;
        _cleanup_free_ char *error_name = NULL;
        json_t *e, *p, *cont;
        size_t len = 0;
        int r;

        if (c->broken)
                return -ENOTCONN;

        r = read_message(c, &len);
        if (r < 0)
                return r;
        reply = json_loadb(c->buf, len, JSON_REJECT_DUPLICATES, NULL);
        consume(c, len + 1);
        if (!json_is_object(reply))
                return fail(c, -EBADMSG);

        /* Unknown keys are ignored: later versions of the protocol may add some. */
        e = json_object_get(reply, "error");
        p = json_object_get(reply, "parameters");
        cont = json_object_get(reply, "continues");
        if ((e && !json_is_string(e)) || (p && !json_is_object(p) && !json_is_null(p)) ||
            (cont && !json_is_boolean(cont)))
                return fail(c, -EBADMSG);

        parameters = json_is_object(p) ? json_incref(p) : json_object();
        if (!parameters)
                return -ENOMEM;
        if (e) {
                error_name = strdup(json_string_value(e));
                if (!error_name)
                        return -ENOMEM;
        }

        if (ret_parameters)
                *ret_parameters = TAKE_PTR(parameters);
        if (ret_error)
                *ret_error = TAKE_PTR(error_name);
        if (ret_continues)
                *ret_continues = json_is_true(cont);
        return 0;
}

int varlink_client_call(VarlinkClient *c, const char *method, json_t *parameters,
                        json_t **ret_parameters, char **ret_error) {
        int r;

        r = varlink_client_send(c, method, parameters, 0);
        if (r < 0)
                return r;
        return varlink_client_receive(c, ret_parameters, ret_error, NULL);
}
