/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "event-util.h"
#include "manager.h"

/* The service manager's STATUS= line. Each update is a datagram to PID 1 on a socket made for it,
 * and while an attack goes on a batch of entries comes every MANAGER_EAGER_INTERVAL_USEC: that
 * was a fifth of the daemon's CPU at 1000 failures/s. So it is sent at most once per
 * MANAGER_STATUS_INTERVAL_USEC, and a change within that interval when it is over. */

/* A socket connected to NOTIFY_SOCKET, made once: sd_notify() makes, configures and closes a
 * new one for every message, eleven system calls for one STATUS= line. */
static int notify_connect(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = e ? strlen(e) : 0;
        int fd;

        if (n < 2 || n > sizeof sa.sun_path || (e[0] != '/' && e[0] != '@'))
                return -ENOENT; /* not set, or a kind that only sd_notify() knows */
        memcpy(sa.sun_path, e, n);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0; /* abstract namespace */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        return fd;
}

static void notify_status(Manager *m, const char *text) {
        if (m->notify_fd == -EBADF)
                m->notify_fd = notify_connect();
        if (m->notify_fd >= 0 && send(m->notify_fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
                return;
        /* Not connected, or the socket went away (the service manager re-executed): sd_notify()
         * this time, and connect again next time. */
        if (m->notify_fd >= 0)
                m->notify_fd = safe_close(m->notify_fd);
        m->notify_fd = m->notify_fd == -ENOENT ? -ENOENT : -EBADF;
        (void) sd_notify(false, text);
}

void manager_send_status(Manager *m) {
        uint64_t failures = 0;
        char text[256];

        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);
        m->status_sent_monotonic = now_monotonic();
        for (size_t i = 0; i < m->n_jails; i++)
                failures += m->jails[i]->failures_total;
        (void) snprintf(text, sizeof text, "STATUS=%zu jail%s, %zu ban%s active, %llu entries read, %llu failures counted%s",
                        m->n_jails, m->n_jails == 1 ? "" : "s",
                        ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s",
                        (unsigned long long) m->entries_read, (unsigned long long) failures,
                        m->nft_broken ? "; FIREWALL UPDATE FAILING, retrying" : "");
        notify_status(m, text);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec;
        manager_send_status(userdata);
        return 0;
}

void manager_update_status(Manager *m) {
        usec_t due = usec_add(m->status_sent_monotonic, MANAGER_STATUS_INTERVAL_USEC);

        if (m->status_sent_monotonic == 0 || now_monotonic() >= due) {
                manager_send_status(m);
                return;
        }
        if (event_source_is_armed(m->status_timer))
                return;
        if (event_reset_time(m->event, &m->status_timer, CLOCK_MONOTONIC, due, USEC_PER_MSEC, false, on_status_timer,
                             m) < 0)
                manager_send_status(m); /* better early than stale */
}
