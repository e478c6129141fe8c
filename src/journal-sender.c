/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal-sender.h"
#include "log.h"
#include "macro.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* Larger entries need journald's memfd protocol: sd_journal_sendv() does that. */
#define DATAGRAM_MAX (128U * 1024U)

typedef struct Datagram {
        struct Datagram *next;
        size_t size;
        char data[];
} Datagram;

struct JournalSender {
        sd_event *event;
        sd_event_source *io;
        int fd;
        struct sockaddr_un address;
        usec_t connect_failed; /* CLOCK_MONOTONIC; no new attempt for a second after a failure */
        Datagram *head, *tail;
        size_t n_queued, bytes_queued;
        uint64_t n_dropped;
        JournalSenderDrained on_drained;
        void *userdata;
};

static void disconnect(JournalSender *s) {
        s->io = sd_event_source_disable_unref(s->io);
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -EBADF;
}

static int on_writable(sd_event_source *source, int fd, uint32_t revents, void *userdata);

static int connect_socket(JournalSender *s) {
        int r;

        if (s->fd >= 0)
                return 0;
        if (s->connect_failed > 0 && now_monotonic() < s->connect_failed + USEC_PER_SEC)
                return -ENOTCONN;
        s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0)
                return -errno;
        /* The kernel's default send buffer, unlike sd-journal's 8 MiB: it keeps ~100 of our
         * entries in flight, enough to keep journald busy, while a flood's own lines, in the same
         * socket queue, are not crowded out by ours (with 8 MiB the benchmark's 100 000-attacker
         * burst took journald 1.5 times as long to take in, and so to ban). */
        if (connect(s->fd, (const struct sockaddr *) &s->address, sizeof s->address) < 0) {
                r = -errno;
                disconnect(s);
                s->connect_failed = now_monotonic();
                return r;
        }
        s->connect_failed = 0;
        if (s->event) {
                r = sd_event_add_io(s->event, &s->io, s->fd, EPOLLOUT, on_writable, s);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
                if (r < 0) {
                        disconnect(s);
                        return r;
                }
        }
        return 0;
}

/* 1: sent; 0: the socket is full; negative: journald is gone or refused it. */
static int send_datagram(JournalSender *s, const Datagram *d) {
        for (unsigned attempt = 0;; attempt++) {
                int r = connect_socket(s);
                if (r < 0)
                        return r;
                if (send(s->fd, d->data, d->size, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
                        return 1;
                if (errno == EAGAIN)
                        return 0;
                if (errno == EINTR)
                        continue;
                r = -errno;
                /* journald restarted: its new socket has the same path. */
                if (attempt > 0 || (r != -ECONNREFUSED && r != -ENOTCONN && r != -ENOENT))
                        return r;
                disconnect(s);
        }
}

static void pop(JournalSender *s) {
        Datagram *d = s->head;
        s->head = d->next;
        if (!s->head)
                s->tail = NULL;
        s->n_queued--;
        s->bytes_queued -= d->size;
        free(d);
}

/* Sends from the head of the queue until it is empty (1) or the socket is full (0). */
static int send_queued(JournalSender *s) {
        while (s->head) {
                int r = send_datagram(s, s->head);
                if (r == 0)
                        return 0;
                if (r < 0) {
                        log_debug_errno(r, "Failed to send a journal entry, dropping it: %m");
                        s->n_dropped++;
                }
                pop(s);
        }
        return 1;
}

static void update_io(JournalSender *s) {
        if (s->io)
                (void) sd_event_source_set_enabled(s->io, s->head ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int on_writable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        JournalSender *s = userdata;
        (void) source, (void) fd, (void) revents;

        if (send_queued(s) == 0)
                return 0;
        update_io(s);
        if (s->on_drained)
                s->on_drained(s, s->userdata);
        return 0;
}

int journal_sender_new(sd_event *event, const char *socket_path, JournalSender **ret) {
        const char *path = socket_path ?: JOURNAL_SOCKET;
        JournalSender *s;

        if (strlen(path) >= sizeof s->address.sun_path)
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;
        s->address.sun_family = AF_UNIX;
        strcpy(s->address.sun_path, path);
        s->event = event ? sd_event_ref(event) : NULL;
        *ret = s;
        return 0;
}

JournalSender *journal_sender_free(JournalSender *s) {
        if (!s)
                return NULL;
        while (s->head)
                pop(s);
        disconnect(s);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void journal_sender_set_drained_callback(JournalSender *s, JournalSenderDrained callback, void *userdata) {
        s->on_drained = callback;
        s->userdata = userdata;
}

/* journald's native protocol: "NAME=value\n", or for values with a newline
 * "NAME\n" + 64-bit little-endian length + value + "\n". */
static Datagram *serialize(const struct iovec *fields, size_t n_fields) {
        size_t size = 0;
        for (size_t i = 0; i < n_fields; i++)
                size += fields[i].iov_len + 1 + sizeof(uint64_t);

        Datagram *d = malloc(sizeof(Datagram) + size);
        if (!d)
                return NULL;
        char *p = d->data;
        for (size_t i = 0; i < n_fields; i++) {
                const char *f = fields[i].iov_base, *eq = memchr(f, '=', fields[i].iov_len);
                size_t len = fields[i].iov_len;

                if (eq && !memchr(eq, '\n', len - (size_t) (eq - f))) {
                        p = mempcpy(p, f, len);
                        *p++ = '\n';
                        continue;
                }
                size_t name = eq ? (size_t) (eq - f) : len, vlen = eq ? len - name - 1 : 0;
                p = mempcpy(p, f, name);
                *p++ = '\n';
                for (unsigned b = 0; b < sizeof(uint64_t); b++)
                        *p++ = (char) (((uint64_t) vlen >> (8 * b)) & 0xff);
                if (vlen > 0)
                        p = mempcpy(p, eq + 1, vlen);
                *p++ = '\n';
        }
        d->next = NULL;
        d->size = (size_t) (p - d->data);
        return d;
}

static int drain_to(JournalSender *s, size_t target, usec_t timeout);

int journal_sender_send(JournalSender *s, const struct iovec *fields, size_t n_fields) {
        Datagram *d;
        int r;

        if (s->bytes_queued >= JOURNAL_SENDER_QUEUE_MAX)
                /* journald has been behind for a long time: wait until it took a quarter of the
                 * queue rather than grow (a full drain would stall banning for seconds). */
                (void) drain_to(s, JOURNAL_SENDER_QUEUE_MAX / 4 * 3, 10 * USEC_PER_SEC);

        d = serialize(fields, n_fields);
        if (!d)
                return -ENOMEM;
        if (d->size > DATAGRAM_MAX) {
                free(d);
                (void) journal_sender_flush(s, 10 * USEC_PER_SEC); /* keep the order */
                return sd_journal_sendv(fields, (int) n_fields);
        }

        if (!s->head) {
                r = send_datagram(s, d);
                if (r != 0) {
                        free(d);
                        if (r < 0)
                                s->n_dropped++;
                        return r < 0 ? r : 0;
                }
        }
        if (s->tail)
                s->tail->next = d;
        else
                s->head = d;
        s->tail = d;
        s->n_queued++;
        s->bytes_queued += d->size;
        update_io(s);
        return 0;
}

/* Sends until at most target bytes wait, blocking as needed. */
static int drain_to(JournalSender *s, size_t target, usec_t timeout) {
        usec_t deadline = now_monotonic() + timeout;

        while (s->bytes_queued > target && send_queued(s) == 0) {
                usec_t now = now_monotonic();
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = s->fd, .events = POLLOUT };
                usec_t left_ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                if (poll(&p, 1, (int) MIN(left_ms, (usec_t) 1000)) < 0 && errno != EINTR)
                        return -errno;
        }
        update_io(s);
        return 0;
}

int journal_sender_flush(JournalSender *s, usec_t timeout) {
        return drain_to(s, 0, timeout);
}

void journal_sender_pump(JournalSender *s) {
        if (s && s->head && send_queued(s) > 0)
                update_io(s);
}

size_t journal_sender_queued(const JournalSender *s) {
        return s ? s->n_queued : 0;
}

uint64_t journal_sender_dropped(const JournalSender *s) {
        return s ? s->n_dropped : 0;
}
