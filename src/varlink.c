/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* accept4(), struct ucred */
#endif
#include <assert.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "event-util.h"
#include "log.h"
#include "varlink-internal.h"

/* The server: its interfaces, its listening sockets, and who may connect (the connection
 * limits). Connections themselves live in varlink-connection.c, calls in varlink-call.c. */

struct VarlinkListener {
        VarlinkServer *server;
        VarlinkListener *next;
        int fd;
        char *path; /* set only if we bound it, and then unlinked on free */
        sd_event_source *source;
};

/* Those of s->groups that the peer of fd is in. Fails closed: a group we cannot confirm is one
 * the peer is not in. */
static void peer_groups(const VarlinkServer *s, int fd, gid_t primary, VarlinkPeerGroups *ret) {
        gid_t small[64], *list = small;
        socklen_t len = sizeof small;
        size_t n = 0;

        *ret = (VarlinkPeerGroups) {};
        if (s->n_groups == 0)
                return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, list, &len) >= 0)
                n = len / sizeof(gid_t);
        else if (errno == ERANGE && len > sizeof small) {
                /* len is now what the kernel needs: at most NGROUPS_MAX groups, 256 KiB. */
                list = malloc(len);
                if (list && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, list, &len) >= 0)
                        n = len / sizeof(gid_t);
                else
                        log_debug("Failed to get the varlink peer's groups, ignoring them.");
        } else
                log_debug_errno(errno, "Failed to get the varlink peer's groups, ignoring them: %m");

        for (size_t i = 0; i < s->n_groups; i++) {
                bool in = s->groups[i] == primary;
                for (size_t k = 0; k < n && !in; k++)
                        in = list[k] == s->groups[i];
                if (in)
                        ret->gids[ret->n++] = s->groups[i];
        }
        if (list != small)
                free(list);
}

/* Applies the connection limits; takes fd in all cases. */
static int server_accept(VarlinkServer *s, int fd) {
        _cleanup_close_ int cfd = fd;
        struct ucred ucred = {};
        socklen_t len = sizeof ucred;
        VarlinkPeerGroups groups;
        int r;

        if (s->n_connections >= s->connections_max) {
                log_debug("Too many varlink connections, refusing one.");
                return -EBUSY;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &ucred, &len) < 0)
                return log_debug_errno(errno, "Failed to get varlink peer credentials: %m");
        if (len != sizeof ucred)
                return -EIO;
        if (ucred.uid != 0 && s->n_connections + VARLINK_CONNECTIONS_ROOT_RESERVED >= s->connections_max) {
                log_debug("Too many varlink connections, refusing one of UID %u (the rest are root's).",
                          (unsigned) ucred.uid);
                return -EBUSY;
        }
        if (varlink_dispatch_connections_of(s, ucred.uid) >= VARLINK_CONNECTIONS_PER_UID_MAX) {
                log_debug("Too many varlink connections of UID %u, refusing one.", (unsigned) ucred.uid);
                return -EBUSY;
        }

        peer_groups(s, cfd, ucred.gid, &groups);
        r = varlink_connection_new(s, TAKE_FD(cfd), ucred.uid, ucred.pid, &groups);
        if (r < 0)
                return log_debug_errno(r, "Failed to set up varlink connection: %m");
        return 0;
}

static size_t connections_max_for_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= VARLINK_CONNECTIONS_MAX + VARLINK_FDS_RESERVED)
                return VARLINK_CONNECTIONS_MAX;
        return rl.rlim_cur > VARLINK_FDS_RESERVED + 16U ? (size_t) rl.rlim_cur - VARLINK_FDS_RESERVED : 16U;
}

static int on_accept_retry(_unused_ sd_event_source *source, _unused_ uint64_t usec, void *userdata) {
        VarlinkServer *s = userdata;

        for (VarlinkListener *l = s->listeners; l; l = l->next)
                (void) sd_event_source_set_enabled(l->source, SD_EVENT_ON);
        return 0;
}

static void server_pause_accept(VarlinkServer *s) {
        int r;

        r = event_reset_time(s->event, &s->accept_retry, CLOCK_MONOTONIC, VARLINK_ACCEPT_RETRY_USEC, 0, true,
                             on_accept_retry, s);
        if (r < 0)
                return; /* better spin on accept() than never accept again */
        for (VarlinkListener *l = s->listeners; l; l = l->next)
                (void) sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
}

static int on_accept(_unused_ sd_event_source *source, int fd, _unused_ uint32_t revents, void *userdata) {
        VarlinkListener *l = userdata;

        for (unsigned i = 0; i < VARLINK_ACCEPT_PER_WAKEUP; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                                continue; /* about that one connection */
                        /* EMFILE and friends: the socket stays readable, so pause instead of
                         * spinning until descriptors are freed. */
                        log_debug_errno(errno, "Failed to accept varlink connection, pausing: %m");
                        server_pause_accept(l->server);
                        return 0;
                }
                (void) server_accept(l->server, cfd);
        }
        return 0;
}

static int listener_add(VarlinkServer *s, int fd, const char *path) {
        VarlinkListener *l;
        int flags, r;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        /* accept() must never block, even when a client goes away between poll and accept. */
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->server = s;
        l->fd = fd;
        if (path) {
                l->path = strdup(path);
                if (!l->path) {
                        free(l);
                        return -ENOMEM;
                }
        }
        r = sd_event_add_io(s->event, &l->source, fd, EPOLLIN, on_accept, l);
        if (r >= 0) {
                r = sd_event_source_set_priority(l->source, s->priority);
                if (r < 0)
                        l->source = sd_event_source_disable_unref(l->source);
        }
        if (r < 0) {
                free(l->path);
                free(l);
                return r;
        }
        l->next = s->listeners;
        s->listeners = l;
        return 0;
}

int varlink_server_listen_fd(VarlinkServer *s, int fd) {
        assert(s);
        assert(fd >= 0);
        return listener_add(s, fd, NULL);
}

int varlink_server_listen_path(VarlinkServer *s, const char *path, mode_t mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        struct stat st;
        mode_t old;
        int r;

        assert(s);
        assert(path);

        len = strlen(path);
        if (len == 0 || len >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, path, len);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* Replace a stale socket, but never anything else that happens to be there. */
        if (lstat(path, &st) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        /* The socket is created with the mode right away: no window with wider permissions. */
        old = umask(~mode & 0777);
        r = bind(fd, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + len + 1);
        umask(old);
        if (r < 0)
                return -errno;

        if (listen(fd, SOMAXCONN) < 0)
                r = -errno;
        else
                r = listener_add(s, fd, path);
        if (r < 0) {
                (void) unlink(path);
                return r;
        }
        TAKE_FD(fd);
        return 0;
}

int varlink_server_new(sd_event *event, const VarlinkServerInfo *info, void *userdata, VarlinkServer **ret) {
        _cleanup_(varlink_server_freep) VarlinkServer *s = NULL;
        const VarlinkServerInfo empty = {};
        int r;

        assert(event);
        assert(ret);

        if (!info)
                info = &empty;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->userdata = userdata;
        s->idle_timeout_usec = VARLINK_IDLE_TIMEOUT_USEC;
        s->output_max = VARLINK_OUTPUT_MAX;
        s->output_total_max = VARLINK_OUTPUT_TOTAL_MAX;
        s->connections_max = connections_max_for_fd_limit();
        s->priority = SD_EVENT_PRIORITY_NORMAL;
        s->call_priority = SD_EVENT_PRIORITY_NORMAL + 1;
        s->cpu_rate_nsec = VARLINK_UID_CPU_PER_SEC_NSEC;
        s->cpu_burst_nsec = VARLINK_UID_CPU_BURST_NSEC;

        s->vendor = strdup(info->vendor ?: "");
        s->product = strdup(info->product ?: "");
        s->version = strdup(info->version ?: "");
        s->url = strdup(info->url ?: "");
        if (!s->vendor || !s->product || !s->version || !s->url)
                return -ENOMEM;

        r = varlink_dispatch_setup(s);
        if (r < 0)
                return r;
        r = varlink_server_add_interface(s, &varlink_service_interface);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

VarlinkServer *varlink_server_free(VarlinkServer *s) {
        if (!s)
                return NULL;

        while (s->connections)
                varlink_connection_free(s->connections);

        while (s->listeners) {
                VarlinkListener *l = s->listeners;

                s->listeners = l->next;
                l->source = sd_event_source_disable_unref(l->source);
                safe_close(l->fd);
                if (l->path)
                        (void) unlink(l->path);
                free(l->path);
                free(l);
        }
        s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
        varlink_dispatch_done(s);

        free(s->interfaces);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int varlink_server_add_interface(VarlinkServer *s, const VarlinkInterface *iface) {
        const VarlinkInterface **a;

        assert(s);
        assert(iface && iface->name);

        for (size_t i = 0; i < s->n_interfaces; i++)
                if (streq(s->interfaces[i]->name, iface->name))
                        return -EEXIST;

        a = reallocarray(s->interfaces, s->n_interfaces + 1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a[s->n_interfaces++] = iface;
        s->interfaces = a;
        return 0;
}

size_t varlink_server_connections(const VarlinkServer *s) {
        return s ? s->n_connections : 0;
}

void varlink_server_set_idle_timeout(VarlinkServer *s, uint64_t usec) {
        assert(s);
        s->idle_timeout_usec = usec;
}

void varlink_server_set_output_max(VarlinkServer *s, size_t bytes) {
        assert(s);
        s->output_max = bytes;
}

int varlink_server_set_priorities(VarlinkServer *s, int64_t sockets, int64_t calls) {
        int r;

        assert(s);
        if (calls < sockets)
                return -EINVAL;
        s->priority = sockets;
        s->call_priority = calls;
        r = sd_event_source_set_priority(s->dispatcher, calls);
        if (r >= 0 && s->throttle)
                r = sd_event_source_set_priority(s->throttle, calls);
        for (VarlinkListener *l = s->listeners; l && r >= 0; l = l->next)
                r = sd_event_source_set_priority(l->source, sockets);
        for (VarlinkConnection *c = s->connections; c && r >= 0; c = c->next) {
                r = sd_event_source_set_priority(c->io, sockets);
                if (r >= 0)
                        r = sd_event_source_set_priority(c->defer, sockets);
        }
        return r;
}

void varlink_server_set_cpu_limit(VarlinkServer *s, uint64_t rate_nsec_per_sec, uint64_t burst_nsec) {
        assert(s);
        /* More than all of a CPU means nothing; the bounds keep varlink-dispatch.c's arithmetic
         * from overflowing. */
        s->cpu_rate_nsec = MIN(rate_nsec_per_sec, 1000ULL * 1000ULL * 1000ULL);
        s->cpu_burst_nsec = MIN(burst_nsec, VARLINK_CPU_MAX_NSEC);
}

int varlink_server_set_groups(VarlinkServer *s, const gid_t *gids, size_t n) {
        assert(s);
        assert(gids || n == 0);

        if (n > VARLINK_GROUPS_MAX)
                return -E2BIG;
        memcpy(s->groups, gids, n * sizeof(gid_t));
        s->n_groups = n;
        return 0;
}
