/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal sender against a fake journald: a datagram socket nobody reads until the test
 * says so, so that its queue (net.unix.max_dgram_qlen datagrams) fills up as journald's does
 * when it falls behind. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal-sender.h"
#include "tests.h"

static char dir[] = "/tmp/test-journal-sender.XXXXXX";
static char path[sizeof dir + 16];

static int fake_journald(void) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_OK(fd);
        (void) unlink(path);
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        ASSERT_OK(bind(fd, (struct sockaddr *) &a, sizeof a));
        return fd;
}

/* The next datagram, or -1 if none is waiting. */
static ssize_t receive(int fd, char *buf, size_t size) {
        ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);
        if (n >= 0)
                buf[n] = 0;
        return n;
}

static int send_text(JournalSender *s, const char *a, const char *b) {
        struct iovec iov[2] = {
                { .iov_base = (void *) a, .iov_len = strlen(a) },
                { .iov_base = (void *) b, .iov_len = b ? strlen(b) : 0 },
        };
        return journal_sender_send(s, iov, b ? 2 : 1);
}

static unsigned drained_calls;
static void on_drained(JournalSender *s, void *userdata) {
        (void) s;
        (void) userdata;
        drained_calls++;
}

/* Sends entries "MESSAGE=entry I" + "PRIORITY=5" for I from 0 to n - 1. */
static void send_numbered(JournalSender *s, unsigned n) {
        char message[64];
        for (unsigned i = 0; i < n; i++) {
                snprintf(message, sizeof message, "MESSAGE=entry %u", i);
                ASSERT_OK(send_text(s, message, "PRIORITY=5"));
        }
}

/* Reads those n entries from the fake journald, checking their order; whenever its socket is
 * empty, refill() must get the sender to send more. */
typedef void (*Refill)(JournalSender *s, sd_event *e);
static void receive_numbered(int fd, unsigned n, Refill refill, JournalSender *s, sd_event *e) {
        char buf[256], want[64];
        for (unsigned got = 0; got < n;) {
                if (receive(fd, buf, sizeof buf) < 0) {
                        ASSERT_EQ(errno, EAGAIN);
                        refill(s, e);
                        continue;
                }
                snprintf(want, sizeof want, "MESSAGE=entry %u\nPRIORITY=5\n", got);
                ASSERT_STREQ(buf, want);
                got++;
        }
}

static void refill_by_event_loop(JournalSender *s, sd_event *e) {
        (void) s;
        ASSERT_OK(sd_event_run(e, USEC_PER_SEC));
}

static void refill_by_pump(JournalSender *s, sd_event *e) {
        (void) e;
        size_t before = journal_sender_queued(s);
        ASSERT_TRUE(before > 0);
        journal_sender_pump(s);
        ASSERT_TRUE(journal_sender_queued(s) < before);
}

TEST(queues_in_order_when_journald_is_behind) {
        sd_event *e = NULL;
        JournalSender *s = NULL;
        char buf[256];
        int fd = fake_journald();

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(journal_sender_new(e, path, &s));
        drained_calls = 0;
        journal_sender_set_drained_callback(s, on_drained, NULL);
        send_numbered(s, 500);
        /* Nobody read: the socket took a few, the rest wait in order (sending did not block). */
        ASSERT_TRUE(journal_sender_queued(s) > 0);
        ASSERT_TRUE(journal_sender_queued(s) < 500);

        receive_numbered(fd, 500, refill_by_event_loop, s, e);
        ASSERT_OK(sd_event_run(e, 0));
        ASSERT_EQ(journal_sender_queued(s), 0);
        ASSERT_EQ(drained_calls, 1);
        ASSERT_EQ(journal_sender_dropped(s), 0);
        ASSERT_TRUE(receive(fd, buf, sizeof buf) < 0);

        journal_sender_free(s);
        sd_event_unref(e);
        close(fd);
}

TEST(pump_sends_what_fits_without_the_event_loop) {
        sd_event *e = NULL;
        JournalSender *s = NULL;
        char buf[256];
        int fd = fake_journald();

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(journal_sender_new(e, path, &s));
        drained_calls = 0;
        journal_sender_set_drained_callback(s, on_drained, NULL);
        journal_sender_pump(s); /* nothing queued: nothing happens */
        send_numbered(s, 300);
        size_t queued = journal_sender_queued(s);
        ASSERT_TRUE(queued > 0);

        /* Socket still full: the pump returns at once and keeps everything. */
        journal_sender_pump(s);
        ASSERT_EQ(journal_sender_queued(s), queued);

        /* journald took some: the pump refills the socket without running the event loop,
         * in order, and does not report a drain (its caller is mid-batch). */
        receive_numbered(fd, 300, refill_by_pump, s, e);
        ASSERT_EQ(journal_sender_queued(s), 0);
        ASSERT_EQ(drained_calls, 0);
        ASSERT_EQ(journal_sender_dropped(s), 0);
        ASSERT_TRUE(receive(fd, buf, sizeof buf) < 0);

        journal_sender_free(s);
        sd_event_unref(e);
        close(fd);
}

TEST(values_with_newlines_use_the_binary_form) {
        JournalSender *s = NULL;
        char buf[256];
        int fd = fake_journald();

        ASSERT_OK(journal_sender_new(NULL, path, &s));
        ASSERT_OK(send_text(s, "MESSAGE=two\nlines", "X=y"));
        ssize_t n = receive(fd, buf, sizeof buf);
        const char want[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\nX=y\n";
        ASSERT_EQ(n, (ssize_t) sizeof want - 1);
        ASSERT_TRUE(memcmp(buf, want, sizeof want - 1) == 0);
        journal_sender_free(s);
        close(fd);
}

TEST(flush_waits_for_journald_and_times_out_without_it) {
        JournalSender *s = NULL;
        char buf[256];
        int fd = fake_journald();

        ASSERT_OK(journal_sender_new(NULL, path, &s));
        for (unsigned i = 0; i < 100; i++)
                ASSERT_OK(send_text(s, "MESSAGE=x", NULL));
        ASSERT_TRUE(journal_sender_queued(s) > 0);
        ASSERT_EQ(journal_sender_flush(s, 50 * USEC_PER_MSEC), -ETIMEDOUT);
        ASSERT_TRUE(journal_sender_queued(s) > 0);

        /* A reader in another process drains the socket: the flush completes. */
        pid_t pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                unsigned got = 0;
                while (got < 100)
                        if (recv(fd, buf, sizeof buf, 0) >= 0)
                                got++;
                _exit(0);
        }
        ASSERT_OK(journal_sender_flush(s, 30 * USEC_PER_SEC));
        ASSERT_EQ(journal_sender_queued(s), 0);
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        journal_sender_free(s);
        close(fd);
}

TEST(journald_restarted_and_gone) {
        JournalSender *s = NULL;
        char buf[256];
        int fd = fake_journald();

        ASSERT_OK(journal_sender_new(NULL, path, &s));
        ASSERT_OK(send_text(s, "MESSAGE=before", NULL));
        ASSERT_TRUE(receive(fd, buf, sizeof buf) > 0);

        /* A new journald binds the same path: the sender connects to it. */
        close(fd);
        fd = fake_journald();
        ASSERT_OK(send_text(s, "MESSAGE=after", NULL));
        ASSERT_TRUE(receive(fd, buf, sizeof buf) > 0);
        ASSERT_STREQ(buf, "MESSAGE=after\n");

        /* No journald: the entry is dropped and counted, nothing waits forever. */
        close(fd);
        ASSERT_OK(unlink(path));
        ASSERT_TRUE(send_text(s, "MESSAGE=lost", NULL) < 0);
        ASSERT_EQ(journal_sender_dropped(s), 1);
        ASSERT_EQ(journal_sender_queued(s), 0);
        ASSERT_OK(journal_sender_flush(s, USEC_PER_SEC));
        journal_sender_free(s);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/socket", dir);
        RUN(queues_in_order_when_journald_is_behind);
        RUN(pump_sends_what_fits_without_the_event_loop);
        RUN(values_with_newlines_use_the_binary_form);
        RUN(flush_waits_for_journald_and_times_out_without_it);
        RUN(journald_restarted_and_gone);
        (void) unlink(path);
        (void) rmdir(dir);
        return 0;
}
