/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "ctl-print.h"
#include "format-table.h"
#include "macro.h"
#include "tests.h"
#include "time-util.h"
#include "varlink-client.h"

/* Three layers, bottom up: the varlink client against a socketpair, the human printers with a
 * fixed clock, and the vpopguardctl binary against a fake vpopguardd that this process plays
 * itself: it accepts the one connection, records the call and answers with canned replies. */

static char scratch[] = "/tmp/test-vpopguardctl.XXXXXX";
static char socket_path[sizeof scratch + 16];
static int listen_fd = -EBADF;
static const char *ctl_binary;

static char *xasprintf(const char *format, ...) _printf_(1, 2);
static char *xasprintf(const char *format, ...) {
        char *s = NULL;
        va_list ap;

        va_start(ap, format);
        ASSERT_TRUE(vasprintf(&s, format, ap) >= 0);
        va_end(ap);
        return s;
}

static void write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                ASSERT_TRUE(k > 0);
                p = (const char *) p + k;
                n -= (size_t) k;
        }
}

/* Sends text and its terminating NUL, as a varlink peer does. */
static void send_message(int fd, const char *text) {
        write_all(fd, text, strlen(text) + 1);
}

/* Reads one NUL-terminated message from a blocking socket. */
static json_t *read_message(int fd) {
        char buf[65536];
        size_t n = 0;

        for (;;) {
                ASSERT_TRUE(n < sizeof buf);
                ssize_t k = recv(fd, buf + n, 1, 0);
                ASSERT_EQ(k, 1);
                if (buf[n] == 0)
                        break;
                n++;
        }
        json_t *v = json_loadb(buf, n, 0, NULL);
        ASSERT_TRUE(json_is_object(v));
        return v;
}

static VarlinkClient *client_pair(int *ret_peer) {
        VarlinkClient *c = NULL;
        int fds[2];

        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        ASSERT_EQ(varlink_client_new_from_fd(fds[0], &c), 0);
        *ret_peer = fds[1];
        return c;
}

TEST(client_send) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_close_ int peer = -EBADF;
        json_auto_t *p = json_pack("{s:s}", "address", "192.0.2.7"), *call = NULL, *call2 = NULL;

        c = client_pair(&peer);
        ASSERT_EQ(varlink_client_send(c, "io.vpopguard.Manager.Ban", p, 0), 0);
        call = read_message(peer);
        ASSERT_STREQ(json_string_value(json_object_get(call, "method")), "io.vpopguard.Manager.Ban");
        ASSERT_TRUE(json_equal(json_object_get(call, "parameters"), p));
        ASSERT_TRUE(json_object_get(call, "more") == NULL && json_object_get(call, "oneway") == NULL);

        ASSERT_EQ(varlink_client_send(c, "io.vpopguard.Manager.Monitor", NULL, VARLINK_CALL_MORE), 0);
        call2 = read_message(peer);
        ASSERT_TRUE(json_is_true(json_object_get(call2, "more")));
        ASSERT_TRUE(json_object_get(call2, "parameters") == NULL);

        ASSERT_EQ(varlink_client_send(c, "x.Y", NULL, VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY), -EINVAL);
        ASSERT_EQ(varlink_client_send(c, "x.Y", json_object_get(p, "address"), 0), -EINVAL);
}

TEST(client_receive) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_close_ int peer = -EBADF;
        bool continues = false;

        c = client_pair(&peer);
        /* Three replies in one write: each is returned on its own. */
        const char wire[] = "{\"parameters\":{\"n\":1},\"continues\":true}\0"
                            "{\"error\":\"io.vpopguard.Manager.NotBanned\",\"parameters\":{\"address\":\"192.0.2.7\"}}\0"
                            "{\"parameters\":null,\"future\":1}";
        write_all(peer, wire, sizeof wire);

        json_t *p = NULL;
        char *error = (char *) "unset";
        ASSERT_EQ(varlink_client_receive(c, &p, &error, &continues), 0);
        ASSERT_EQ(json_integer_value(json_object_get(p, "n")), 1);
        ASSERT_TRUE(error == NULL && continues);
        json_decref(p);

        ASSERT_EQ(varlink_client_receive(c, &p, &error, &continues), 0);
        ASSERT_STREQ(error, "io.vpopguard.Manager.NotBanned");
        ASSERT_STREQ(json_string_value(json_object_get(p, "address")), "192.0.2.7");
        ASSERT_FALSE(continues);
        free(error);
        json_decref(p);

        ASSERT_EQ(varlink_client_receive(c, &p, NULL, NULL), 0);
        ASSERT_TRUE(json_is_object(p) && json_object_size(p) == 0);
        json_decref(p);

        /* The server hangs up: reported, and the client stays unusable. */
        peer = safe_close(peer);
        ASSERT_EQ(varlink_client_receive(c, NULL, NULL, NULL), -ECONNRESET);
        ASSERT_EQ(varlink_client_receive(c, NULL, NULL, NULL), -ENOTCONN);
        ASSERT_EQ(varlink_client_send(c, "x.Y", NULL, 0), -ENOTCONN);
}

TEST(client_bad_replies) {
        static const char * const bad[] = {
                "not json", "", "[1]", "\"s\"", "{\"parameters\":5}", "{\"error\":7}",
                "{\"continues\":\"yes\"}", "{\"a\":1,\"a\":2}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                _cleanup_close_ int peer = -EBADF;

                fprintf(stderr, "  %s\n", bad[i]);
                c = client_pair(&peer);
                send_message(peer, bad[i]);
                ASSERT_EQ(varlink_client_receive(c, NULL, NULL, NULL), -EBADMSG);
        }
}

TEST(client_timeout) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_close_ int peer = -EBADF;

        c = client_pair(&peer);
        varlink_client_set_timeout(c, 20 * USEC_PER_MSEC);
        write_all(peer, "{\"parameters\":", 14); /* half a reply is no reply */
        ASSERT_EQ(varlink_client_receive(c, NULL, NULL, NULL), -ETIMEDOUT);
}

/* A child writes size bytes: a valid reply padded with whitespace (which jansson skips much
 * faster than it copies a long string), or bytes without any NUL. */
static pid_t write_big(int fd, size_t size, bool valid) {
        pid_t pid = fork();

        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                const char *head = valid ? "{\"parameters\":{\"n\":1}" : "", *tail = valid ? "}" : "";
                size_t body = size - strlen(head) - strlen(tail) - valid;
                char chunk[65536];

                memset(chunk, ' ', sizeof chunk);
                write_all(fd, head, strlen(head));
                for (size_t n = 0; n < body; ) {
                        size_t k = MIN(sizeof chunk, body - n);
                        if (send(fd, chunk, k, MSG_NOSIGNAL) != (ssize_t) k)
                                _exit(0); /* the client gave up, as it should on an invalid reply */
                        n += k;
                }
                write_all(fd, tail, strlen(tail) + valid);
                _exit(0);
        }
        return pid;
}

TEST(client_large_replies) {
        for (int valid = 1; valid >= 0; valid--) {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                _cleanup_close_ int peer = -EBADF;
                json_t *p = NULL;
                /* The largest valid reply, and one byte more than any reply may have. */
                size_t size = valid ? VARLINK_CLIENT_MESSAGE_MAX : VARLINK_CLIENT_MESSAGE_MAX + 1;
                int status;

                c = client_pair(&peer);
                pid_t pid = write_big(peer, size, valid);
                peer = safe_close(peer);
                if (valid) {
                        ASSERT_EQ(varlink_client_receive(c, &p, NULL, NULL), 0);
                        ASSERT_EQ(json_integer_value(json_object_get(p, "n")), 1);
                        json_decref(p);
                } else
                        ASSERT_EQ(varlink_client_receive(c, &p, NULL, NULL), -EMSGSIZE);
                c = varlink_client_free(c);
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
}

TEST(client_connect) {
        _cleanup_free_ char *missing = xasprintf("%s/missing", scratch), *unbound = xasprintf("%s/unbound", scratch);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        VarlinkClient *c = NULL;
        char long_path[200];

        ASSERT_EQ(varlink_client_connect(missing, &c), -ENOENT);
        /* Bound but not listening: nobody accepts. */
        strcpy(sa.sun_path, unbound);
        ASSERT_EQ(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ASSERT_EQ(varlink_client_connect(unbound, &c), -ECONNREFUSED);
        memset(long_path, 'a', sizeof long_path - 1);
        long_path[sizeof long_path - 1] = 0;
        ASSERT_EQ(varlink_client_connect(long_path, &c), -EINVAL);
        ASSERT_EQ(varlink_client_connect("", &c), -EINVAL);
        ASSERT_TRUE(c == NULL);

        ASSERT_EQ(varlink_client_connect(socket_path, &c), 0);
        c = varlink_client_free(c);
        _cleanup_close_ int accepted = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        ASSERT_TRUE(accepted >= 0);

        /* Without permission to the socket: only testable as a user that lacks it. */
        if (geteuid() != 0)
                skip_part("connecting without permission (EACCES): not root, cannot drop privileges");
        else {
                pid_t pid = fork();
                int status;
                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                                _exit(77);
                        _exit(varlink_client_connect(socket_path, &c) == -EACCES ? 0 : 1);
                }
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status));
                if (WEXITSTATUS(status) == 77)
                        skip_part("connecting without permission (EACCES): cannot drop privileges");
                else
                        ASSERT_EQ(WEXITSTATUS(status), 0);
        }
}

/* Printers, with a fixed clock and in UTC. */

#define NOW ((usec_t) 1714640400 * USEC_PER_SEC) /* Thu 2024-05-02 09:00:00 UTC */
#define S USEC_PER_SEC
#define M USEC_PER_MINUTE
#define H USEC_PER_HOUR

static char *print_to_string(int (*print)(FILE *f, json_t *reply, usec_t now, bool legend),
                             const char *reply_text, bool legend) {
        json_auto_t *reply = json_loads(reply_text, 0, NULL);
        char *s = NULL;
        size_t n;
        FILE *f;

        ASSERT_TRUE(reply);
        f = open_memstream(&s, &n);
        ASSERT_TRUE(f);
        ASSERT_EQ(print(f, reply, NOW, legend), 0);
        ASSERT_EQ(fclose(f), 0);
        return s;
}

TEST(format_span) {
        static const struct {
                usec_t span;
                const char *text;
        } table[] = {
                { 0, "0" }, { 400 * USEC_PER_MSEC, "0" }, { 12 * S + 400 * USEC_PER_MSEC, "12s" },
                { 59 * S + 600 * USEC_PER_MSEC, "1min" }, { 47 * M + 10 * S, "47min" },
                { 47 * M + 40 * S, "48min" }, { 3 * H + 12 * M + 29 * S, "3h 12min" },
                { 23 * H + 59 * M + 40 * S, "1d" }, { 53 * H + 20 * M, "2d 5h" },
                { USEC_INFINITY - 1, "213503982d 8h" },
        };
        char buf[TIMESPAN_MAX], rel[CTL_RELATIVE_MAX];

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                ASSERT_STREQ(ctl_format_span(buf, table[i].span), table[i].text);

        ASSERT_STREQ(ctl_format_relative(rel, NOW + 47 * M + 10 * S, NOW), "in 47min");
        ASSERT_STREQ(ctl_format_relative(rel, NOW - 2 * M - 10 * S, NOW), "2min ago");
        ASSERT_STREQ(ctl_format_relative(rel, NOW + 100 * USEC_PER_MSEC, NOW), "now");
        ASSERT_STREQ(ctl_format_relative(rel, 0, NOW), "-");
}

TEST(print_bans) {
        _cleanup_free_ char *reply = xasprintf(
                "{\"bans\":[{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\",\"failures\":5,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"journal\"},"
                "{\"address\":\"2001:db8::7\",\"jail\":\"x\\u001b[2J\",\"failures\":0,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"manual\",\"count\":3,\"permanent\":false},"
                "{\"address\":\"198.51.100.9\",\"jail\":\"vpopmail\",\"failures\":3,"
                "\"bannedUSec\":%llu,\"expiresUSec\":9223372036854775807,\"origin\":\"journal\",\"count\":1,"
                "\"permanent\":true}]}",
                (unsigned long long) (NOW - 2 * M - 10 * S), (unsigned long long) (NOW + 47 * M + 10 * S),
                (unsigned long long) (NOW - 5 * S), (unsigned long long) (NOW + 2 * 24 * H),
                (unsigned long long) (NOW - 5 * S));
        _cleanup_free_ char *with = print_to_string(ctl_print_bans, reply, true);
        _cleanup_free_ char *without = print_to_string(ctl_print_bans, reply, false);
        _cleanup_free_ char *none = print_to_string(ctl_print_bans, "{\"bans\":[]}", true);
        _cleanup_free_ char *none_quiet = print_to_string(ctl_print_bans, "{\"bans\":[]}", false);

        /* The escape sequence in the jail name is defused. */
        /* BAN and LENGTH: 1 and the span for a daemon that sends no count (the first entry). */
        ASSERT_STREQ(with,
                     "ADDRESS       JAIL      FAILURES  BAN  LENGTH     BANNED    EXPIRES   ORIGIN\n"
                     "192.0.2.7     vpopmail  5         1    49min 20s  2min ago  in 47min  journal\n"
                     "2001:db8::7   x?[2J     0         3    2d 5s      5s ago    in 2d     manual\n"
                     "198.51.100.9  vpopmail  3         1    permanent  5s ago    never     journal\n"
                     "\n3 bans listed.\n");
        ASSERT_STREQ(without,
                     "192.0.2.7     vpopmail  5  1  49min 20s  2min ago  in 47min  journal\n"
                     "2001:db8::7   x?[2J     0  3  2d 5s      5s ago    in 2d     manual\n"
                     "198.51.100.9  vpopmail  3  1  permanent  5s ago    never     journal\n");
        ASSERT_STREQ(none, "No active bans.\n");
        ASSERT_STREQ(none_quiet, "");
}

TEST(print_status) {
        _cleanup_free_ char *reply = xasprintf(
                "{\"version\":\"0.1.0\",\"startedUSec\":%llu,\"cursor\":\"s=abc;i=7\",\"entriesRead\":1234,"
                "\"entriesMatched\":42,\"bansActive\":3,\"jails\":[{\"name\":\"vpopmail\",\"enabled\":true,"
                "\"maxRetry\":3,\"findTimeUSec\":600000000,\"banTimeUSec\":3600000000,\"tracked\":12,"
                "\"banned\":3,\"failuresTotal\":57,\"bansTotal\":4}]}",
                (unsigned long long) (NOW - 3 * H - 12 * M - 10 * S));
        _cleanup_free_ char *s = print_to_string(ctl_print_status, reply, true);
        _cleanup_free_ char *minimal = print_to_string(ctl_print_status, "{\"cursor\":null}", true);
        _cleanup_free_ char *unreadable = print_to_string(
                ctl_print_status, "{\"cursor\":null,\"entriesRead\":9,\"entriesUnreadable\":2}", true);

        ASSERT_STREQ(s,
                     "Version:          0.1.0\n"
                     "Uptime:           3h 12min (since Thu 2024-05-02 05:47:50 UTC)\n"
                     "Cursor:           s=abc;i=7\n"
                     "Entries read:     1234\n"
                     "Entries matched:  42\n"
                     "Bans active:      3\n"
                     "\n"
                     "JAIL      ENABLED  MAXRETRY  FINDTIME  BANTIME  TRACKED  BANNED  FAILURES  BANS\n"
                     "vpopmail  yes      3         10min     1h       12       3       57        4\n");
        /* A reply without the expected fields still prints. */
        ASSERT_STREQ(minimal,
                     "Version:          -\n"
                     "Cursor:           none yet\n"
                     "Entries read:     0\n"
                     "Entries matched:  0\n"
                     "Bans active:      0\n");
        /* Entries not judged are shown only when there are some. A cursor missing after entries
         * were read was withheld. */
        ASSERT_STREQ(unreadable,
                     "Version:          -\n"
                     "Cursor:           - (shown to root, systemd-journal and adm only)\n"
                     "Entries read:     9\n"
                     "Entries matched:  0\n"
                     "Not judged:       2 (no readable MESSAGE, see vpopguardd(8))\n"
                     "Bans active:      0\n");
}

static int print_test_adapter(FILE *f, json_t *reply, usec_t now, bool legend) {
        return ctl_print_test(f, reply);
}

static int print_event_adapter(FILE *f, json_t *reply, usec_t now, bool legend) {
        return ctl_print_event(f, reply, now);
}

TEST(print_test_and_events) {
        static const struct {
                const char *reply, *text;
        } table[] = {
                { "{\"jail\":\"vpopmail\",\"address\":\"192.0.2.7\",\"ignored\":false,\"reason\":\"failure\"}",
                  "jail vpopmail, address 192.0.2.7: counts as a failure\n" },
                { "{\"jail\":\"vpopmail\",\"address\":\"127.0.0.1\",\"ignored\":true,\"reason\":\"ignored-address\"}",
                  "jail vpopmail, address 127.0.0.1: does not count: the address is ignored (IgnoreAddress= or loopback) (ignored-address)\n" },
                { "{\"jail\":\"vpopmail\",\"ignored\":true,\"reason\":\"untrusted-sender\"}",
                  "jail vpopmail: does not count: the sender is not trusted (TrustedUser=, TrustedUID=) (untrusted-sender)\n" },
                { "{\"jail\":null,\"address\":null,\"ignored\":false,\"reason\":\"no-match\"}",
                  "no jail: does not count: no FailRegex= matches (no-match)\n" },
                { "{\"ignored\":false,\"reason\":\"something-new\"}", "no jail: does not count (something-new)\n" },
                { "{\"jail\":\"j\",\"address\":\"192.0.2.7\",\"ignored\":true,\"reason\":\"failure\"}",
                  "jail j, address 192.0.2.7: does not count (failure)\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *s = print_to_string(print_test_adapter, table[i].reply, true);
                ASSERT_STREQ(s, table[i].text);
        }

        _cleanup_free_ char *ban = xasprintf(
                "{\"event\":\"ban\",\"ban\":{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\",\"failures\":3,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"journal\"}}",
                (unsigned long long) NOW, (unsigned long long) (NOW + H));
        _cleanup_free_ char *s1 = print_to_string(print_event_adapter, ban, true);
        _cleanup_free_ char *s2 = print_to_string(print_event_adapter,
                                                  "{\"event\":\"expire\",\"ban\":{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\"}}", true);
        ASSERT_STREQ(s1, "09:00:00 ban 192.0.2.7 in jail vpopmail, 3 failures, expires in 1h, origin journal\n");
        ASSERT_STREQ(s2, "09:00:00 expire 192.0.2.7 in jail vpopmail\n");

        _cleanup_free_ char *late = print_to_string(print_event_adapter,
                                                    "{\"event\":\"ban\",\"ban\":{\"address\":\"192.0.2.7\",\"jail\":\"j\","
                                                    "\"failures\":3,\"expiresUSec\":1,\"origin\":\"manual\"}}", true);
        ASSERT_STREQ(late, "09:00:00 ban 192.0.2.7 in jail j, 3 failures, has expired, origin manual\n");
}

/* The binary against the fake daemon. */

typedef struct CtlRun {
        int status;           /* exit status; -1 if killed by a signal */
        char *out, *err;
        json_t *call;         /* the call the fake daemon received, NULL if none */
        unsigned connections;
} CtlRun;

static void ctl_run_done(CtlRun *r) {
        free(r->out);
        free(r->err);
        json_decref(r->call);
        *r = (CtlRun) {};
}

static char *read_memfd(int fd) {
        struct stat st;
        char *s;

        ASSERT_EQ(fstat(fd, &st), 0);
        s = malloc((size_t) st.st_size + 1);
        ASSERT_TRUE(s);
        ASSERT_EQ(pread(fd, s, (size_t) st.st_size, 0), st.st_size);
        s[st.st_size] = 0;
        return s;
}

/* Accepts a connection, records its call, answers with replies (each sent with its NUL), hangs
 * up. */
static void serve(CtlRun *run, const char * const *replies) {
        _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        struct timeval tv = { .tv_sec = 10 };

        ASSERT_TRUE(fd >= 0);
        run->connections++;
        ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        json_decref(run->call);
        run->call = read_message(fd);
        for (const char * const *r = replies; r && *r; r++)
                send_message(fd, *r);
}

/* How long one run of vpopguardctl may take: generous, as a busy machine is no failure. */
#define CTL_RUN_DEADLINE_USEC (30 * USEC_PER_SEC)

/* Runs vpopguardctl ARGS... with $VPOPGUARD_SOCKET set to env_socket (socket_path if NULL),
 * playing vpopguardd meanwhile. Its output goes to memfds, so it can never block on a pipe
 * that we do not read while we serve. */
static void ctl_run(CtlRun *run, const char *env_socket, const char * const *replies, const char * const *args) {
        _cleanup_close_ int out = memfd_create("stdout", MFD_CLOEXEC), err = memfd_create("stderr", MFD_CLOEXEC);
        const char *argv[32] = { ctl_binary };
        int exit_pipe[2], status;
        size_t n = 1;
        usec_t deadline = now_monotonic() + CTL_RUN_DEADLINE_USEC;

        *run = (CtlRun) {};
        for (const char * const *a = args; *a; a++) {
                ASSERT_TRUE(n + 1 < ELEMENTSOF(argv));
                argv[n++] = *a;
        }
        ASSERT_TRUE(out >= 0 && err >= 0);
        /* The write end stays open in the child until it exits: POLLHUP on the read end. */
        ASSERT_EQ(pipe2(exit_pipe, 0), 0);
        ASSERT_EQ(fcntl(exit_pipe[0], F_SETFD, FD_CLOEXEC), 0);

        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0 ||
                    setenv("VPOPGUARD_SOCKET", env_socket ?: socket_path, 1) < 0)
                        _exit(127);
                execv(ctl_binary, (char **) argv);
                _exit(127);
        }
        safe_close(exit_pipe[1]);

        for (;;) {
                struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = exit_pipe[0], .events = POLLIN } };

                ASSERT_TRUE(now_monotonic() < deadline);
                if (poll(p, 2, 1000) < 0) {
                        ASSERT_EQ(errno, EINTR);
                        continue;
                }
                if (p[0].revents & POLLIN)
                        serve(run, replies);
                else if (p[1].revents)
                        break;
        }
        safe_close(exit_pipe[0]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        /* A connection that came in after all: counted, never left for the next run. */
        for (int fd; (fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0; safe_close(fd))
                run->connections++;

        run->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        run->out = read_memfd(out);
        run->err = read_memfd(err);
        fprintf(stderr, "  vpopguardctl");
        for (size_t i = 1; i < n; i++)
                fprintf(stderr, " '%s'", argv[i]);
        fprintf(stderr, " -> %d\n%s%s", run->status, run->out, run->err);
}

#define ARGS(...) ((const char * const[]) { __VA_ARGS__, NULL })
#define REPLIES(...) ((const char * const[]) { __VA_ARGS__, NULL })

static const char *call_method(const CtlRun *run) {
        return json_string_value(json_object_get(run->call, "method"));
}

/* Asserts that the call's parameters are exactly the JSON text. */
static void assert_parameters(const CtlRun *run, const char *expected) {
        json_auto_t *e = json_loads(expected, 0, NULL);
        json_t *p = json_object_get(run->call, "parameters");

        ASSERT_TRUE(e);
        if (!p)
                p = json_object_size(e) == 0 ? e : NULL;
        if (!json_equal(p, e)) {
                char *got = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                fprintf(stderr, "parameters: got %s, expected %s\n", got ?: "(none)", expected);
                free(got);
        }
        ASSERT_TRUE(json_equal(p, e));
}

TEST(cli_usage_errors) {
        static const char * const bad[][6] = {
                { NULL }, { "frobnicate" }, { "--bogus", "status" }, { "status", "extra" }, { "ban" },
                { "ban", "1.2.3" }, { "ban", "192.0.2.7", "--time=5 parsecs" }, { "ban", "192.0.2.7", "--time=0" },
                { "ban", "192.0.2.7", "--time=1000000y" },
                { "ban", "192.0.2.7", "--time=300000y" }, { "bans", "--time=1h" }, { "unban", "192.0.2.999" },
                { "failures", "example.com" }, { "test" }, { "test", "m", "--field=lower=x" },
                { "test", "m", "--field=MESSAGE=x" }, { "test", "m", "--field==x" }, { "bans", "--jail=bad/name" },
                { "bans", "a", "--jail=b" }, { "bans", "bad/name" }, { "test", "\xff" }, { "--socket=", "status" },
                { "status", "-t", "x" }, { "reload", "--field=A=b" }, { "ban", "192.0.2.7", "192.0.2.8" },
                { "test", "m", "--jail=bad/name" }, { "test", "m", "--jail=" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *args[7] = {};
                CtlRun run;

                for (size_t j = 0; j < 6 && bad[i][j]; j++)
                        args[j] = bad[i][j];
                ctl_run(&run, NULL, REPLIES("{}"), args);
                ASSERT_EQ(run.status, 2);
                ASSERT_EQ(run.connections, 0u);
                ASSERT_TRUE(run.err[0] != 0);
                ASSERT_STREQ(run.out, "");
                ctl_run_done(&run);
        }
}

TEST(cli_help_version) {
        CtlRun run;

        ctl_run(&run, NULL, NULL, ARGS("--help"));
        ASSERT_EQ(run.status, 0);
        ASSERT_TRUE(strstr(run.out, "vpopguardctl [OPTIONS...] COMMAND"));
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("--version"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(run.out, "vpopguardctl " VPOPGUARD_VERSION "\n");
        ASSERT_EQ(run.connections, 0u);
        ctl_run_done(&run);
}

TEST(cli_unreachable) {
        _cleanup_free_ char *missing = xasprintf("%s/missing", scratch), *unbound = xasprintf("%s/unbound", scratch);
        _cleanup_free_ char *socket_option = xasprintf("--socket=%s", socket_path);
        _cleanup_free_ char *unbound_option = xasprintf("--socket=%s", unbound);
        CtlRun run;

        ctl_run(&run, missing, NULL, ARGS("status"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.err, missing) && strstr(run.err, "No such file or directory"));
        ctl_run_done(&run);

        ctl_run(&run, NULL, NULL, ARGS(unbound_option, "bans"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.err, unbound) && strstr(run.err, "Connection refused"));
        ctl_run_done(&run);

        /* --socket= beats $VPOPGUARD_SOCKET. */
        ctl_run(&run, missing, REPLIES("{\"parameters\":{}}"), ARGS("reload", socket_option));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.Reload");
        ASSERT_STREQ(run.out, "Reloaded the configuration.\n");
        ctl_run_done(&run);

        /* Garbage, and a hang-up instead of a reply. */
        ctl_run(&run, NULL, REPLIES("no json"), ARGS("status"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.err, "invalid reply"));
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("status"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.err, "closed the connection"));
        ctl_run_done(&run);
}

/* Times in replies are made just before each run, 29 s off whole minutes: vpopguardctl, which
 * reads its clock up to a run's CTL_RUN_DEADLINE_USEC (30 s) later, prints "N min ago" or "in N
 * min" for them if that is less than 59 s later, so no run slow enough to pass changes them. */
static usec_t ago_min(usec_t now, usec_t span) {
        return now - span + 29 * S;
}

static usec_t in_min(usec_t now, usec_t span) {
        return now + span + 29 * S;
}

static char *bans_reply(void) {
        usec_t now = now_realtime();

        return xasprintf("{\"parameters\":{\"bans\":[{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\",\"failures\":5,"
                         "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"journal\"}]}}",
                         (unsigned long long) ago_min(now, 2 * M), (unsigned long long) in_min(now, 47 * M));
}

/* ListBans() in three replies, as vpopguardd streams a long list: printed as they arrive, yet
 * one table (one header, one footer counting all) and, with --json, one document. */
TEST(cli_bans_streamed) {
        usec_t now = now_realtime();
        unsigned long long b = ago_min(now, 2 * M), e = in_min(now, 47 * M);
        _cleanup_free_ char *first = xasprintf(
                "{\"parameters\":{\"bans\":[{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\",\"failures\":5,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"journal\"},"
                "{\"address\":\"192.0.2.8\",\"jail\":\"vpopmail\",\"failures\":6,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"journal\"}]},\"continues\":true}", b, e, b, e);
        _cleanup_free_ char *second = xasprintf(
                "{\"parameters\":{\"bans\":[{\"address\":\"2001:db8::7\",\"jail\":\"vpopmail\",\"failures\":7,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"manual\"}]},\"continues\":true}", b, e);
        const char *last = "{\"parameters\":{\"bans\":[]}}";
        json_auto_t *printed = NULL, *expected = NULL;
        CtlRun run;

        ctl_run(&run, NULL, REPLIES(first, second, last), ARGS("bans"));
        ASSERT_EQ(run.status, 0);
        /* The first reply sets the widths; a wider address later widens its column from there. */
        ASSERT_STREQ(run.out,
                     "ADDRESS    JAIL      FAILURES  BAN  LENGTH  BANNED    EXPIRES   ORIGIN\n"
                     "192.0.2.7  vpopmail  5         1    49min   2min ago  in 47min  journal\n"
                     "192.0.2.8  vpopmail  6         1    49min   2min ago  in 47min  journal\n"
                     "2001:db8::7  vpopmail  7         1    49min   2min ago  in 47min  manual\n"
                     "\n3 bans listed.\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES(first, second, last), ARGS("bans", "--json"));
        ASSERT_EQ(run.status, 0);
        ASSERT_TRUE(strchr(run.out, '\n') == run.out + strlen(run.out) - 1);
        printed = json_loads(run.out, 0, NULL);
        ASSERT_TRUE(printed);
        expected = json_pack("{s:[{s:s,s:s,s:i,s:I,s:I,s:s},{s:s,s:s,s:i,s:I,s:I,s:s},{s:s,s:s,s:i,s:I,s:I,s:s}]}", "bans",
                             "address", "192.0.2.7", "jail", "vpopmail", "failures", 5, "bannedUSec", (json_int_t) b,
                             "expiresUSec", (json_int_t) e, "origin", "journal",
                             "address", "192.0.2.8", "jail", "vpopmail", "failures", 6, "bannedUSec", (json_int_t) b,
                             "expiresUSec", (json_int_t) e, "origin", "journal",
                             "address", "2001:db8::7", "jail", "vpopmail", "failures", 7, "bannedUSec", (json_int_t) b,
                             "expiresUSec", (json_int_t) e, "origin", "manual");
        ASSERT_TRUE(json_equal(printed, expected));
        ctl_run_done(&run);

        /* Only empty replies: as for a daemon without bans. */
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"bans\":[]},\"continues\":true}", last), ARGS("bans"));
        ASSERT_STREQ(run.out, "No active bans.\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"bans\":[]},\"continues\":true}", last), ARGS("bans", "--json"));
        ASSERT_STREQ(run.out, "{\"bans\":[]}\n");
        ctl_run_done(&run);

        /* The stream breaks off: the status says so, and the output cannot pass for the whole
         * list (no footer, the JSON not closed). */
        ctl_run(&run, NULL, REPLIES(first), ARGS("bans"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.out, "192.0.2.8"));
        ASSERT_FALSE(strstr(run.out, "listed"));
        ctl_run_done(&run);
        ctl_run(&run, NULL, REPLIES(first), ARGS("bans", "--json"));
        ASSERT_EQ(run.status, 3);
        json_decref(printed);
        printed = json_loads(run.out, 0, NULL);
        ASSERT_TRUE(printed == NULL);
        ctl_run_done(&run);
}

TEST(cli_queries) {
        _cleanup_free_ char *bans = bans_reply(), *failures = NULL;
        json_auto_t *bans_reply_json = NULL, *printed = NULL;
        usec_t now;
        CtlRun run;

        ctl_run(&run, NULL, REPLIES(bans), ARGS("bans", "vpopmail"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.ListBans");
        assert_parameters(&run, "{\"jail\":\"vpopmail\"}");
        ASSERT_STREQ(run.out,
                     "ADDRESS    JAIL      FAILURES  BAN  LENGTH  BANNED    EXPIRES   ORIGIN\n"
                     "192.0.2.7  vpopmail  5         1    49min   2min ago  in 47min  journal\n"
                     "\n1 ban listed.\n");
        ctl_run_done(&run);

        free(bans);
        bans = bans_reply();
        ctl_run(&run, NULL, REPLIES(bans), ARGS("--no-legend", "bans"));
        assert_parameters(&run, "{}");
        ASSERT_STREQ(run.out, "192.0.2.7  vpopmail  5  1  49min  2min ago  in 47min  journal\n");
        ctl_run_done(&run);

        /* --json: the reply's parameters, unchanged, on one line. */
        ctl_run(&run, NULL, REPLIES(bans), ARGS("bans", "--json", "--jail=vpopmail"));
        ASSERT_EQ(run.status, 0);
        assert_parameters(&run, "{\"jail\":\"vpopmail\"}");
        ASSERT_TRUE(strchr(run.out, '\n') == run.out + strlen(run.out) - 1);
        printed = json_loads(run.out, 0, NULL);
        bans_reply_json = json_loads(bans, 0, NULL);
        ASSERT_TRUE(json_equal(printed, json_object_get(bans_reply_json, "parameters")));
        ctl_run_done(&run);

        /* Addresses are sent in canonical form. */
        now = now_realtime();
        failures = xasprintf(
                "{\"parameters\":{\"failures\":[{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\",\"count\":2,"
                "\"firstUSec\":%llu,\"lastUSec\":%llu}]}}",
                (unsigned long long) ago_min(now, 15 * M), (unsigned long long) ago_min(now, 10 * M));
        ctl_run(&run, NULL, REPLIES(failures), ARGS("failures", "::ffff:192.0.2.7", "--jail=vpopmail"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.ListFailures");
        assert_parameters(&run, "{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\"}");
        ASSERT_STREQ(run.out,
                     "ADDRESS    JAIL      FAILURES  FIRST      LAST\n"
                     "192.0.2.7  vpopmail  2         15min ago  10min ago\n"
                     "\n1 failure window listed.\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"version\":\"9.9\",\"jails\":[]}}"), ARGS("status"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.GetStatus");
        ASSERT_TRUE(strstr(run.out, "Version:          9.9\n"));
        ctl_run_done(&run);
}

TEST(cli_ban_unban) {
        usec_t now = now_realtime();
        _cleanup_free_ char *ban = xasprintf(
                "{\"parameters\":{\"ban\":{\"address\":\"2001:db8::7\",\"jail\":\"vpopmail\",\"failures\":0,"
                "\"bannedUSec\":%llu,\"expiresUSec\":%llu,\"origin\":\"manual\"}}}",
                (unsigned long long) now, (unsigned long long) in_min(now, 90 * M));
        CtlRun run;

        ctl_run(&run, NULL, REPLIES(ban), ARGS("ban", "2001_db8__7", "--time=1h 30min", "--jail=vpopmail"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.Ban");
        assert_parameters(&run, "{\"address\":\"2001:db8::7\",\"jail\":\"vpopmail\",\"durationUSec\":5400000000}");
        ASSERT_STREQ(run.out, "Banned 2001:db8::7 in jail vpopmail, expires in 1h 30min.\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES(ban), ARGS("ban", "192.0.2.7"));
        assert_parameters(&run, "{\"address\":\"192.0.2.7\"}");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"error\":\"io.vpopguard.Manager.PermissionDenied\",\"parameters\":{}}"),
                ARGS("ban", "192.0.2.7"));
        ASSERT_EQ(run.status, 1);
        ASSERT_TRUE(strstr(run.err, "io.vpopguard.Manager.PermissionDenied"));
        ASSERT_STREQ(run.out, "");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"error\":\"io.vpopguard.Manager.NoSuchJail\",\"parameters\":{\"jail\":\"nope\"}}"),
                ARGS("unban", "192.0.2.7", "--jail=nope"));
        ASSERT_EQ(run.status, 1);
        ASSERT_TRUE(strstr(run.err, "io.vpopguard.Manager.NoSuchJail {\"jail\":\"nope\"}"));
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{}"), ARGS("unban", "192.0.2.7"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.Unban");
        assert_parameters(&run, "{\"address\":\"192.0.2.7\"}");
        ASSERT_STREQ(run.out, "Unbanned 192.0.2.7.\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{}"), ARGS("--json", "unban", "192.0.2.7"));
        ASSERT_STREQ(run.out, "{}\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"error\":\"io.vpopguard.Manager.ConfigurationError\","
                                    "\"parameters\":{\"message\":\"x.conf:3: bad\"}}"), ARGS("reload"));
        ASSERT_EQ(run.status, 1);
        ASSERT_TRUE(strstr(run.err, "io.vpopguard.Manager.ConfigurationError"));
        ASSERT_TRUE(strstr(run.err, "\nx.conf:3: bad\n"));
        ctl_run_done(&run);
}

TEST(cli_test_message) {
        const char *message = "vchkpw-pop3: password fail joe@example.com:192.0.2.7";
        CtlRun run;

        /* Other users judge the message themselves: see cli_test_local. */
        if (geteuid() != 0)
                return skip_part("asking the daemon: only root does");
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"jail\":\"vpopmail\",\"address\":\"192.0.2.7\","
                                    "\"ignored\":false,\"reason\":\"failure\"}}"),
                ARGS("test", message));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.TestMessage");
        assert_parameters(&run, "{\"message\":\"vchkpw-pop3: password fail joe@example.com:192.0.2.7\","
                                "\"fields\":{\"SYSLOG_IDENTIFIER\":\"vpopmail\",\"_UID\":\"0\"}}");
        ASSERT_STREQ(run.out, "jail vpopmail, address 192.0.2.7: counts as a failure\n");
        ctl_run_done(&run);

        /* -t sets the identifier, --field=NAME=VALUE adds or replaces, --field=NAME removes. */
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"jail\":\"vpopmail\",\"ignored\":true,\"reason\":\"untrusted-sender\"}}"),
                ARGS("test", "-t", "vchkpw", "--field=_UID=1000", "--", "-odd message",
                     "--field=_SYSTEMD_UNIT=qmail.service"));
        ASSERT_EQ(run.status, 2); /* after "--" every word is an argument: one too many */
        ASSERT_EQ(run.connections, 0u);
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"jail\":\"vpopmail\",\"ignored\":true,\"reason\":\"untrusted-sender\"}}"),
                ARGS("test", "-t", "vchkpw", "--field=_UID=1000", "--field=_SYSTEMD_UNIT=qmail.service",
                     "--field=X=", "--", "-odd message"));
        ASSERT_EQ(run.status, 0);
        assert_parameters(&run, "{\"message\":\"-odd message\",\"fields\":{\"SYSLOG_IDENTIFIER\":\"vchkpw\","
                                "\"_UID\":\"1000\",\"_SYSTEMD_UNIT\":\"qmail.service\",\"X\":\"\"}}");
        ASSERT_STREQ(run.out, "jail vpopmail: does not count: the sender is not trusted (TrustedUser=, TrustedUID=) (untrusted-sender)\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"ignored\":false,\"reason\":\"no-match\"}}"),
                ARGS("test", "hello", "--field=SYSLOG_IDENTIFIER", "--field=_UID"));
        assert_parameters(&run, "{\"message\":\"hello\",\"fields\":{}}");
        ctl_run_done(&run);

        /* --jail= sends the jail and leaves the identifier to it, unless -t gives one. */
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"jail\":\"sshd\",\"address\":\"192.0.2.7\","
                                    "\"ignored\":false,\"reason\":\"failure\"}}"),
                ARGS("test", "--jail=sshd", "Failed password for root from 192.0.2.7 port 22 ssh2"));
        ASSERT_EQ(run.status, 0);
        assert_parameters(&run, "{\"message\":\"Failed password for root from 192.0.2.7 port 22 ssh2\","
                                "\"fields\":{\"_UID\":\"0\"},\"jail\":\"sshd\"}");
        ASSERT_STREQ(run.out, "jail sshd, address 192.0.2.7: counts as a failure\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, REPLIES("{\"parameters\":{\"ignored\":false,\"reason\":\"no-match\"}}"),
                ARGS("test", "--jail=sshd", "-t", "sshd-session", "x"));
        assert_parameters(&run, "{\"message\":\"x\",\"fields\":{\"SYSLOG_IDENTIFIER\":\"sshd-session\","
                                "\"_UID\":\"0\"},\"jail\":\"sshd\"}");
        ctl_run_done(&run);

        /* An unknown jail: the daemon's error, naming it. */
        ctl_run(&run, NULL, REPLIES("{\"error\":\"io.vpopguard.Manager.NoSuchJail\",\"parameters\":{\"jail\":\"imap\"}}"),
                ARGS("test", "--jail=imap", "x"));
        ASSERT_EQ(run.status, 1);
        ASSERT_STREQ(run.out, "");
        ASSERT_TRUE(strstr(run.err, "NoSuchJail {\"jail\":\"imap\"}: there is no such jail"));
        ctl_run_done(&run);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        ASSERT_TRUE(fputs(text, f) >= 0);
        ASSERT_EQ(fclose(f), 0);
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char buf[65536], *text;
        size_t n;

        ASSERT_TRUE(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        ASSERT_TRUE(n > 0 && n < sizeof buf - 1);
        buf[n] = 0;
        ASSERT_EQ(fclose(f), 0);
        text = strdup(buf);
        ASSERT_TRUE(text);
        return text;
}

/* test with --config= or --local: judged by vpopguardctl itself, from the files, with the
 * daemon's code; the daemon is never asked. */
TEST(cli_test_local) {
        _cleanup_free_ char *conf = xasprintf("%s/local.conf", scratch), *dropins = xasprintf("%s.d", conf),
                            *jail = xasprintf("%s/10-vpopmail.conf", dropins),
                            *shipped = read_text(SRCDIR "/conf.d/10-vpopmail.conf"),
                            *sshd = xasprintf("%s/10-sshd.conf", dropins), *shipped_sshd = read_text(SRCDIR "/conf.d/10-sshd.conf"),
                            *missing = xasprintf("--config=%s/missing.conf", scratch),
                            *config = xasprintf("--config=%s", conf);
        CtlRun run;

        ASSERT_EQ(mkdir(dropins, 0755), 0);
        write_file(jail, shipped);
        write_file(conf, "[Defaults]\nIgnoreAddress=198.51.100.0/28\n");

        ctl_run(&run, NULL, NULL, ARGS("test", config, "vchkpw-pop3: password fail joe@example.com:192.0.2.7"));
        ASSERT_EQ(run.status, 0);
        ASSERT_EQ(run.connections, 0u);
        ASSERT_STREQ(run.out, "jail vpopmail, address 192.0.2.7: counts as a failure\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, NULL, ARGS("test", "--json", config, "vchkpw-smtp: password fail joe@example.com:198.51.100.3"));
        ASSERT_EQ(run.status, 0);
        ASSERT_EQ(run.connections, 0u);
        ASSERT_STREQ(run.out, "{\"jail\":\"vpopmail\",\"address\":\"198.51.100.3\",\"ignored\":true,"
                              "\"reason\":\"ignored-address\"}\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, NULL, ARGS("test", "--local", config, "--field=_UID=1000",
                                       "vchkpw-pop3: password fail joe@example.com:192.0.2.7"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(run.out, "jail vpopmail: does not count: the sender is not trusted (TrustedUser=, TrustedUID=) (untrusted-sender)\n");
        ctl_run_done(&run);

        ctl_run(&run, NULL, NULL, ARGS("test", config, "-t", "sshd", "vchkpw-pop3: password fail joe@example.com:192.0.2.7"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(run.out, "no jail: does not count: no FailRegex= matches (no-match)\n");
        ctl_run_done(&run);

        /* --jail=: that jail alone, enabled or not (the shipped sshd jail is not), with its own
         * identifier unless -t gives another. */
        write_file(sshd, shipped_sshd);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "-t", "sshd", "Failed password for root from 192.0.2.8 port 22 ssh2"));
        ASSERT_STREQ(run.out, "no jail: does not count: no FailRegex= matches (no-match)\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=sshd", "Failed password for root from 192.0.2.8 port 22 ssh2"));
        ASSERT_EQ(run.status, 0);
        ASSERT_EQ(run.connections, 0u);
        ASSERT_STREQ(run.out, "jail sshd, address 192.0.2.8: counts as a failure\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=sshd", "-t", "vpopmail",
                                       "Failed password for root from 192.0.2.8 port 22 ssh2"));
        ASSERT_STREQ(run.out, "no jail: does not count: no FailRegex= matches (no-match)\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=sshd", "vchkpw-pop3: password fail joe@example.com:192.0.2.7"));
        ASSERT_STREQ(run.out, "no jail: does not count: no FailRegex= matches (no-match)\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=sshd", "--field=_UID=1000",
                                       "Failed password for root from 192.0.2.8 port 22 ssh2"));
        ASSERT_STREQ(run.out, "jail sshd: does not count: the sender is not trusted (TrustedUser=, TrustedUID=) (untrusted-sender)\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=vpopmail", "vchkpw-pop3: password fail joe@example.com:192.0.2.7"));
        ASSERT_STREQ(run.out, "jail vpopmail, address 192.0.2.7: counts as a failure\n");
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", config, "--jail=imap", "x"));
        ASSERT_EQ(run.status, 1);
        ASSERT_EQ(run.connections, 0u);
        ASSERT_STREQ(run.out, "");
        ASSERT_TRUE(strstr(run.err, "There is no jail imap in "));
        ctl_run_done(&run);
        ASSERT_EQ(unlink(sshd), 0);

        /* A broken or empty configuration judges nothing. */
        write_file(conf, "[Defaults]\nMaxRetry=many\n");
        ctl_run(&run, NULL, NULL, ARGS("test", config, "x"));
        ASSERT_EQ(run.status, 1);
        ASSERT_EQ(run.connections, 0u);
        ASSERT_STREQ(run.out, "");
        ASSERT_TRUE(strstr(run.err, "local.conf:2: [Defaults] MaxRetry=many: "));
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("test", missing, "x"));
        ASSERT_EQ(run.status, 1);
        ASSERT_TRUE(strstr(run.err, "No jail is enabled in "));
        ctl_run_done(&run);

        ctl_run(&run, NULL, NULL, ARGS("status", config));
        ASSERT_EQ(run.status, 2);
        ASSERT_EQ(run.connections, 0u);
        ctl_run_done(&run);
        ctl_run(&run, NULL, NULL, ARGS("bans", "--local"));
        ASSERT_EQ(run.status, 2);
        ctl_run_done(&run);

        ASSERT_EQ(unlink(jail), 0);
        ASSERT_EQ(rmdir(dropins), 0);
        ASSERT_EQ(unlink(conf), 0);
}

/* PermissionDenied says who may: readers of the journal for addresses, root for the rest. */
TEST(cli_permission_denied) {
        static const char denied[] = "{\"error\":\"io.vpopguard.Manager.PermissionDenied\",\"parameters\":{}}";
        static const char * const readers[][2] = { { "bans", NULL }, { "failures", NULL }, { "monitor", NULL } };
        CtlRun run;

        for (size_t i = 0; i < ELEMENTSOF(readers); i++) {
                ctl_run(&run, NULL, REPLIES(denied), ARGS(readers[i][0]));
                ASSERT_EQ(run.status, 1);
                ASSERT_TRUE(strstr(run.err, "io.vpopguard.Manager.PermissionDenied: only root and members of the "
                                            "groups systemd-journal and adm may see addresses\n"));
                ctl_run_done(&run);
        }
        ctl_run(&run, NULL, REPLIES(denied), ARGS("reload"));
        ASSERT_EQ(run.status, 1);
        ASSERT_TRUE(strstr(run.err, "io.vpopguard.Manager.PermissionDenied: only root may do this\n"));
        ctl_run_done(&run);
}

TEST(cli_monitor) {
        static const char * const events[] = {
                "{\"parameters\":{\"event\":\"ban\",\"ban\":{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\","
                "\"failures\":3,\"bannedUSec\":1,\"expiresUSec\":2,\"origin\":\"journal\"}},\"continues\":true}",
                "{\"parameters\":{\"event\":\"unban\",\"ban\":{\"address\":\"192.0.2.7\",\"jail\":\"vpopmail\"}},\"continues\":true}",
                "{\"parameters\":{\"event\":\"expire\",\"ban\":null}}",
                NULL,
        };
        CtlRun run;
        char *line;

        ctl_run(&run, NULL, events, ARGS("monitor"));
        ASSERT_EQ(run.status, 0);
        ASSERT_STREQ(call_method(&run), "io.vpopguard.Manager.Monitor");
        ASSERT_TRUE(json_is_true(json_object_get(run.call, "more")));
        ASSERT_TRUE(strstr(run.out, " ban 192.0.2.7 in jail vpopmail, 3 failures, has expired, origin journal\n"));
        ASSERT_TRUE(strstr(run.out, " unban 192.0.2.7 in jail vpopmail\n"));
        ASSERT_TRUE(strstr(run.out, " expire\n"));
        ctl_run_done(&run);

        ctl_run(&run, NULL, events, ARGS("monitor", "--json"));
        ASSERT_EQ(run.status, 0);
        line = run.out;
        for (size_t i = 0; events[i]; i++) {
                json_auto_t *e = json_loads(events[i], 0, NULL), *got = NULL;
                char *nl = strchr(line, '\n');

                ASSERT_TRUE(nl);
                got = json_loadb(line, (size_t) (nl - line), 0, NULL);
                ASSERT_TRUE(json_equal(got, json_object_get(e, "parameters")));
                line = nl + 1;
        }
        ASSERT_STREQ(line, "");
        ctl_run_done(&run);

        /* The daemon goes away in the middle of the stream. */
        ctl_run(&run, NULL, REPLIES(events[0]), ARGS("monitor"));
        ASSERT_EQ(run.status, 3);
        ASSERT_TRUE(strstr(run.out, " ban 192.0.2.7"));
        ctl_run_done(&run);
}

static void run_cli_tests(void) {
        RUN(cli_usage_errors);
        RUN(cli_help_version);
        RUN(cli_unreachable);
        RUN(cli_queries);
        RUN(cli_bans_streamed);
        RUN(cli_ban_unban);
        RUN(cli_test_message);
        RUN(cli_test_local);
        RUN(cli_permission_denied);
        RUN(cli_monitor);
}

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *build = getenv("VPOPGUARD_BUILD_DIR");

        ctl_binary = getenv("VPOPGUARDCTL");
        if (!ctl_binary && build)
                ctl_binary = xasprintf("%s/src/vpopguardctl", build);
        ASSERT_TRUE(ctl_binary); /* set VPOPGUARDCTL= or VPOPGUARD_BUILD_DIR= */

        ASSERT_EQ(setenv("TZ", "UTC", 1), 0);
        tzset();
        ASSERT_TRUE(mkdtemp(scratch));
        snprintf(socket_path, sizeof socket_path, "%s/sock", scratch);
        strcpy(sa.sun_path, socket_path);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(listen_fd >= 0);
        ASSERT_EQ(bind(listen_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ASSERT_EQ(chmod(socket_path, 0600), 0);
        ASSERT_EQ(listen(listen_fd, 16), 0);

        RUN(client_send);
        RUN(client_receive);
        RUN(client_bad_replies);
        RUN(client_timeout);
        RUN(client_large_replies);
        RUN(client_connect);
        RUN(format_span);
        RUN(print_bans);
        RUN(print_status);
        RUN(print_test_and_events);
        run_cli_tests();

        safe_close(listen_fd);
        (void) unlink(socket_path);
        char *unbound = xasprintf("%s/unbound", scratch);
        (void) unlink(unbound);
        free(unbound);
        ASSERT_EQ(rmdir(scratch), 0);
        return 0;
}
