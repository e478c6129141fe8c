/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "tests.h"
#include "varlink.h"

/* The server and its clients share one process: clients are nonblocking sockets that the test
 * reads and writes between iterations of the server's event loop. Every wait is a loop with an
 * iteration cap and a deadline; nothing sleeps. */

#define ITERATIONS_MAX 20000U
#define DEADLINE_USEC (20U * 1000000ULL)
#define SLOW_USEC (300U * 1000ULL)
#define FLOOD_CHUNK (64U * 1024U)

typedef struct State {
        sd_event *event;
        unsigned echo_calls;
        unsigned close_callbacks;
        bool enotconn_after_close;
        VarlinkCall *held;
        VarlinkCall *flood;
        sd_event_source *flood_source;
        int flood_error;
        VarlinkCall *slow;
        sd_event_source *slow_timer;
        /* Echo calls by UID 0 and by others; a "tick" source that each Echo makes pending, and
         * how many Echo calls ran between two of its runs at most. */
        unsigned echo_root, echo_other;
        sd_event_source *tick;
        unsigned since_tick, max_since_tick, ticks;
        /* Runs of a source that stands for the owner's own work (the journal). */
        unsigned busy_left, busy_runs;
        /* The same work that lets one slice of calls run before each of its steps. */
        VarlinkServer *server;
        unsigned backlog_left, in_steps, max_in_step;
        unsigned burns_other; /* Burn calls of UIDs other than 0 */
} State;

typedef struct Fixture {
        char dir[64];
        char path[128];
        sd_event *event;
        VarlinkServer *server;
        State state;
} Fixture;

typedef struct Client {
        int fd;
        char *buf;
        size_t len, alloc;
        bool eof;
} Client;

static const char test_idl[] =
        "interface io.test.Test\n"
        "method Echo() -> ()\n"
        "method Fail() -> ()\n"
        "method Stream() -> (index: ?int, done: ?bool)\n"
        "method Slow() -> (slow: bool)\n"
        "error Failure (reason: string)\n";

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* One bounded step of the server's loop. */
static void step(Fixture *f, unsigned *i, uint64_t deadline) {
        ASSERT_LT(*i, ITERATIONS_MAX);
        ASSERT_LT(now_usec(), deadline);
        (*i)++;
        ASSERT_OK(sd_event_run(f->event, 10 * 1000));
}

/* Runs until nothing is left to do: a server that busy-loops never gets there. */
static void run_until_quiet(Fixture *f) {
        for (unsigned i = 0;; i++) {
                ASSERT_LT(i, 1000);
                if (sd_event_run(f->event, 1000) == 0)
                        return;
        }
}

#define RUN_UNTIL(f, cond)                                                       \
        do {                                                                     \
                unsigned _i = 0;                                                 \
                uint64_t _deadline = now_usec() + DEADLINE_USEC;                 \
                while (!(cond))                                                  \
                        step((f), &_i, _deadline);                               \
        } while (0)


static int vl_echo(VarlinkCall *call, json_t *parameters, void *userdata) {
        State *st = userdata;
        st->echo_calls++;
        if (varlink_call_peer_uid(call) == 0)
                st->echo_root++;
        else
                st->echo_other++;
        if (st->tick) {
                st->since_tick++;
                ASSERT_OK(sd_event_source_set_enabled(st->tick, SD_EVENT_ONESHOT));
        }
        return varlink_call_reply(call, json_incref(parameters));
}

static uint64_t thread_cpu_nsec(void) {
        struct timespec ts;
        ASSERT_OK(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts));
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* Takes BURN_NSEC of CPU time, like an expensive method. */
#define BURN_NSEC (2U * 1000U * 1000U)
static int vl_burn(VarlinkCall *call, _unused_ json_t *parameters, void *userdata) {
        State *st = userdata;
        uint64_t until = thread_cpu_nsec() + BURN_NSEC;

        while (thread_cpu_nsec() < until)
                ;
        if (varlink_call_peer_uid(call) != 0)
                st->burns_other++;
        return varlink_call_reply(call, NULL);
}

/* {"n": N}: a reply written as text, with a list of N numbers. */
static int vl_text(VarlinkCall *call, json_t *parameters, _unused_ void *userdata) {
        json_int_t n = json_integer_value(json_object_get(parameters, "n"));
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        int r;

        ASSERT_TRUE(f);
        fputs("{\"list\":[", f);
        for (json_int_t i = 0; i < n; i++)
                fprintf(f, "%s%lld", i > 0 ? "," : "", (long long) i);
        fputs("]}", f);
        ASSERT_EQ(fclose(f), 0);
        r = varlink_call_reply_text(call, text);
        ASSERT_EQ(varlink_call_reply_text(call, text), -EALREADY);
        free(text);
        return r == -ENOBUFS ? 0 : r;
}

/* Replies which of the groups 4141, 4242, 4343, 5099 and 5555 the peer is in. */
static int vl_groups(VarlinkCall *call, _unused_ json_t *parameters, _unused_ void *userdata) {
        static const gid_t candidates[] = { 4141, 4242, 4343, 5099, 5555 };
        json_t *in = json_array();

        ASSERT_TRUE(in);
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (varlink_call_peer_in_group(call, candidates[i]))
                        ASSERT_OK(json_array_append_new(in, json_integer(candidates[i])));
        return varlink_call_reply(call, json_pack("{s:o}", "in", in));
}

static int vl_fail(VarlinkCall *call, _unused_ json_t *parameters, _unused_ void *userdata) {
        ASSERT_EQ(varlink_call_notify(call, NULL), -EINVAL); /* not a "more" call */
        ASSERT_OK(varlink_call_error(call, "io.test.Test.Failure", json_pack("{s:s}", "reason", "asked to")));
        ASSERT_EQ(varlink_call_reply(call, NULL), -EALREADY);
        return 0;
}

static void on_close(VarlinkCall *call, void *userdata) {
        State *st = userdata;

        st->close_callbacks++;
        st->enotconn_after_close = varlink_call_notify(call, NULL) == -ENOTCONN &&
                                   varlink_call_reply(call, NULL) == -ENOTCONN;
        if (call == st->held)
                st->held = varlink_call_unref(st->held);
        if (call == st->flood) {
                st->flood = varlink_call_unref(st->flood);
                st->flood_source = sd_event_source_disable_unref(st->flood_source);
        }
}

static int vl_stream(VarlinkCall *call, _unused_ json_t *parameters, void *userdata) {
        if (!varlink_call_wants_more(call))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        varlink_call_set_close_callback(call, on_close, userdata); /* must not run: the call ends */
        for (int i = 0; i < 3; i++)
                ASSERT_OK(varlink_call_notify(call, json_pack("{s:i}", "index", i)));
        return varlink_call_reply(call, json_pack("{s:b}", "done", 1));
}

static int on_slow_timer(_unused_ sd_event_source *s, _unused_ uint64_t usec, void *userdata) {
        State *st = userdata;
        ASSERT_OK(varlink_call_reply(st->slow, json_pack("{s:b}", "slow", 1)));
        st->slow = varlink_call_unref(st->slow);
        st->slow_timer = sd_event_source_disable_unref(st->slow_timer);
        return 0;
}

static int vl_slow(VarlinkCall *call, _unused_ json_t *parameters, void *userdata) {
        State *st = userdata;
        int r;

        ASSERT_TRUE(!st->slow);
        r = sd_event_add_time_relative(st->event, &st->slow_timer, CLOCK_MONOTONIC, SLOW_USEC, 0, on_slow_timer, st);
        if (r < 0)
                return r;
        st->slow = varlink_call_ref(call);
        return 0;
}

/* Streams one notification and stays open until the client goes away. */
static int vl_hold(VarlinkCall *call, _unused_ json_t *parameters, void *userdata) {
        State *st = userdata;

        ASSERT_TRUE(varlink_call_wants_more(call));
        ASSERT_TRUE(!st->held);
        st->held = varlink_call_ref(call);
        varlink_call_set_close_callback(call, on_close, st);
        return varlink_call_notify(call, json_pack("{s:s}", "event", "hello"));
}

static int on_flood(sd_event_source *s, void *userdata) {
        static char chunk[FLOOD_CHUNK + 1];
        State *st = userdata;
        int r;

        if (!chunk[0])
                memset(chunk, 'x', FLOOD_CHUNK);
        r = varlink_call_notify(st->flood, json_pack("{s:s}", "data", chunk));
        if (r < 0) {
                st->flood_error = r;
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Sends large notifications, one per loop iteration, until the connection fails. */
static int vl_flood(VarlinkCall *call, _unused_ json_t *parameters, void *userdata) {
        State *st = userdata;

        st->flood = varlink_call_ref(call);
        varlink_call_set_close_callback(call, on_close, st);
        return sd_event_add_defer(st->event, &st->flood_source, on_flood, st);
}

static int vl_check(VarlinkCall *call, json_t *parameters, _unused_ void *userdata) {
        static const VarlinkField fields[] = {
                { "name", VARLINK_STRING, true },
                { "count", VARLINK_INT, false },
                { "flag", VARLINK_BOOL, false },
                { "map", VARLINK_OBJECT, false },
                { "list", VARLINK_ARRAY, false },
        };
        int r = varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields));
        if (r < 0)
                return r;
        return varlink_call_reply(call, NULL);
}

static int vl_broken(_unused_ VarlinkCall *call, _unused_ json_t *parameters, _unused_ void *userdata) {
        return -EIO;
}

static int vl_forget(_unused_ VarlinkCall *call, _unused_ json_t *parameters, _unused_ void *userdata) {
        return 0;
}

static const VarlinkMethodEntry test_methods[] = {
        { "Echo", vl_echo },
        { "Fail", vl_fail },
        { "Stream", vl_stream },
        { "Slow", vl_slow },
        { "Hold", vl_hold },
        { "Flood", vl_flood },
        { "Check", vl_check },
        { "Broken", vl_broken },
        { "Forget", vl_forget },
        { "Groups", vl_groups },
        { "Burn", vl_burn },
        { "Text", vl_text },
        {}
};

static const VarlinkInterface test_interface = {
        .name = "io.test.Test",
        .description = test_idl,
        .methods = test_methods,
};


static const VarlinkServerInfo test_info = {
        .vendor = "vpopguard",
        .product = "test-varlink",
        .version = "1.2.3",
        .url = "https://example.invalid/",
};

static void fixture_setup(Fixture *f, uint64_t idle_usec, size_t output_max) {
        *f = (Fixture) {};
        strcpy(f->dir, "/tmp/test-varlink-XXXXXX");
        ASSERT_TRUE(mkdtemp(f->dir));
        snprintf(f->path, sizeof f->path, "%s/io.test.Test", f->dir);

        ASSERT_OK(sd_event_new(&f->event));
        f->state.event = f->event;
        ASSERT_OK(varlink_server_new(f->event, &test_info, &f->state, &f->server));
        varlink_server_set_idle_timeout(f->server, idle_usec);
        if (output_max > 0)
                varlink_server_set_output_max(f->server, output_max);
        ASSERT_OK(varlink_server_add_interface(f->server, &test_interface));
        ASSERT_OK(varlink_server_listen_path(f->server, f->path, 0600));
}

static void fixture_teardown(Fixture *f) {
        struct stat st;

        f->server = varlink_server_free(f->server);
        ASSERT_TRUE(!f->state.held && !f->state.flood); /* released by their close callbacks */
        ASSERT_TRUE(stat(f->path, &st) < 0 && errno == ENOENT);
        f->state.slow = varlink_call_unref(f->state.slow);
        f->state.slow_timer = sd_event_source_disable_unref(f->state.slow_timer);
        f->event = sd_event_unref(f->event);
        ASSERT_OK(rmdir(f->dir));
}

static Client *client_new_at(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Client *c = calloc(1, sizeof *c);

        ASSERT_TRUE(c);
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_OK(c->fd);
        ASSERT_OK(connect(c->fd, (struct sockaddr *) &sa, sizeof sa));
        return c;
}

static Client *client_new(Fixture *f) {
        return client_new_at(f->path);
}

static Client *client_free(Client *c) {
        if (c) {
                safe_close(c->fd);
                free(c->buf);
                free(c);
        }
        return NULL;
}

/* Reads whatever is available without waiting. */
static void client_pump(Client *c) {
        while (!c->eof) {
                ssize_t n;

                if (c->alloc - c->len < 65536) {
                        c->alloc = c->alloc * 2 + 65536;
                        c->buf = realloc(c->buf, c->alloc);
                        ASSERT_TRUE(c->buf);
                }
                n = recv(c->fd, c->buf + c->len, c->alloc - c->len, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n <= 0) {
                        ASSERT_TRUE(n == 0 || errno == ECONNRESET);
                        c->eof = true;
                        return;
                }
                c->len += (size_t) n;
        }
}

/* Writes all of data while the server runs; false if the server hung up first. */
static bool client_write(Fixture *f, Client *c, const char *data, size_t len) {
        unsigned i = 0;
        uint64_t deadline = now_usec() + DEADLINE_USEC;

        while (len > 0) {
                ssize_t n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EPIPE || errno == ECONNRESET)
                                return false;
                        ASSERT_TRUE(errno == EAGAIN);
                        step(f, &i, deadline);
                        continue;
                }
                data += n;
                len -= (size_t) n;
        }
        return true;
}

/* Sends text with its NUL terminator. */
static void client_send(Fixture *f, Client *c, const char *text) {
        ASSERT_TRUE(client_write(f, c, text, strlen(text) + 1));
}

static bool client_has_message(Client *c) {
        client_pump(c);
        return memchr(c->buf, 0, c->len) || c->eof;
}

/* The next message from the server, or NULL once it disconnected. */
static json_t *client_next(Fixture *f, Client *c) {
        json_error_t error;
        json_t *m;
        char *nul;
        size_t n;

        RUN_UNTIL(f, client_has_message(c));
        nul = memchr(c->buf, 0, c->len);
        if (!nul)
                return NULL;
        n = (size_t) (nul - c->buf);
        m = json_loadb(c->buf, n, 0, &error);
        ASSERT_TRUE(m);
        memmove(c->buf, nul + 1, c->len - n - 1);
        c->len -= n + 1;
        return m;
}

static bool client_disconnected(Client *c) {
        client_pump(c);
        c->len = 0; /* replies sent before the hangup are not of interest here */
        return c->eof;
}

static json_t *call(Fixture *f, Client *c, const char *text) {
        json_t *m;

        client_send(f, c, text);
        m = client_next(f, c);
        ASSERT_TRUE(m);
        return m;
}

static void assert_error(json_t *m, const char *error, const char *key, const char *value) {
        json_t *p = json_object_get(m, "parameters");

        ASSERT_STREQ(json_string_value(json_object_get(m, "error")), error);
        ASSERT_TRUE(json_is_object(p));
        if (key)
                ASSERT_STREQ(json_string_value(json_object_get(p, key)), value);
        json_decref(m);
}

static void assert_reply(json_t *m, const char *expected_parameters) {
        json_t *want = json_loads(expected_parameters, 0, NULL);

        ASSERT_TRUE(want);
        ASSERT_TRUE(!json_object_get(m, "error"));
        ASSERT_FALSE(json_is_true(json_object_get(m, "continues")));
        if (!json_equal(json_object_get(m, "parameters"), want)) {
                char *got = json_dumps(m, JSON_COMPACT);
                fprintf(stderr, "unexpected reply %s, wanted parameters %s\n", got, expected_parameters);
                abort();
        }
        json_decref(want);
        json_decref(m);
}


TEST(service) {
        Fixture f;
        Client *c;
        json_t *m, *p;
        struct stat st;
        const char *d;

        fixture_setup(&f, 0, 0);
        ASSERT_OK(stat(f.path, &st));
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_EQ(st.st_mode & 0777, 0600);
        ASSERT_EQ(varlink_server_add_interface(f.server, &test_interface), -EEXIST);

        c = client_new(&f);
        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInfo\"}");
        p = json_object_get(m, "parameters");
        ASSERT_STREQ(json_string_value(json_object_get(p, "vendor")), "vpopguard");
        ASSERT_STREQ(json_string_value(json_object_get(p, "product")), "test-varlink");
        ASSERT_STREQ(json_string_value(json_object_get(p, "version")), "1.2.3");
        ASSERT_STREQ(json_string_value(json_object_get(p, "url")), "https://example.invalid/");
        ASSERT_UINT_EQ(json_array_size(json_object_get(p, "interfaces")), 2);
        ASSERT_STREQ(json_string_value(json_array_get(json_object_get(p, "interfaces"), 0)), "org.varlink.service");
        ASSERT_STREQ(json_string_value(json_array_get(json_object_get(p, "interfaces"), 1)), "io.test.Test");
        json_decref(m);

        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.test.Test\"}}");
        assert_reply(m, "{\"description\":\"interface io.test.Test\\nmethod Echo() -> ()\\nmethod Fail() -> ()\\n"
                        "method Stream() -> (index: ?int, done: ?bool)\\nmethod Slow() -> (slow: bool)\\n"
                        "error Failure (reason: string)\\n\"}");

        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"org.varlink.service\"}}");
        d = json_string_value(json_object_get(json_object_get(m, "parameters"), "description"));
        ASSERT_TRUE(d && strstr(d, "interface org.varlink.service\n"));
        ASSERT_TRUE(strstr(d, "method GetInfo() -> (\n"));
        ASSERT_TRUE(strstr(d, "method GetInterfaceDescription(interface: string) -> (description: string)\n"));
        ASSERT_TRUE(strstr(d, "error InvalidParameter (parameter: string)\n"));
        json_decref(m);

        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.test.Nope\"}}");
        assert_error(m, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", "io.test.Nope");
        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\"}");
        assert_error(m, VARLINK_ERROR_INVALID_PARAMETER, "parameter", "interface");
        m = call(&f, c, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{\"x\":1}}");
        assert_error(m, VARLINK_ERROR_INVALID_PARAMETER, "parameter", "x");

        client_free(c);
        fixture_teardown(&f);
}

TEST(errors) {
        Fixture f;
        Client *c;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);

        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Fail\"}"), "io.test.Test.Failure", "reason", "asked to");
        assert_error(call(&f, c, "{\"method\":\"io.nope.Thing.Do\"}"), VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", "io.nope.Thing");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Nope\"}"), VARLINK_ERROR_METHOD_NOT_FOUND, "method", "io.test.Test.Nope");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.\"}"), VARLINK_ERROR_METHOD_NOT_FOUND, "method", "io.test.Test.");
        assert_error(call(&f, c, "{\"method\":\"Nope\"}"), VARLINK_ERROR_METHOD_NOT_FOUND, "method", "Nope");
        assert_error(call(&f, c, "{\"method\":\"\"}"), VARLINK_ERROR_METHOD_NOT_FOUND, "method", "");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Stream\"}"), VARLINK_ERROR_EXPECTED_MORE, NULL, NULL);

        /* Handlers that fail, or forget to end their call, still get the client an answer. */
        {
                json_t *m = call(&f, c, "{\"method\":\"io.test.Test.Broken\"}");
                ASSERT_EQ(json_integer_value(json_object_get(json_object_get(m, "parameters"), "errno")), EIO);
                assert_error(m, VARLINK_ERROR_INTERNAL, NULL, NULL);
                m = call(&f, c, "{\"method\":\"io.test.Test.Forget\"}");
                assert_error(m, VARLINK_ERROR_INTERNAL, NULL, NULL);
        }

        /* varlink_check_parameters() */
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\"}}"), "{}");
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"count\":-3,\"flag\":false,"
                                 "\"map\":{\"k\":\"v\"},\"list\":[]}}"), "{}");
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"count\":null,\"flag\":null}}"), "{}");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"bogus\":1}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "bogus");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "name");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\"}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "name");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":null}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "name");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":1}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "name");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"count\":1.5}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "count");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"flag\":0}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "flag");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"map\":[]}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "map");
        assert_error(call(&f, c, "{\"method\":\"io.test.Test.Check\",\"parameters\":{\"name\":\"a\",\"list\":{}}}"),
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "list");

        /* Still connected after all of that. */
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"ok\":true}}"), "{\"ok\":true}");
        ASSERT_UINT_EQ(varlink_server_connections(f.server), 1);

        client_free(c);
        fixture_teardown(&f);
}

TEST(parameters_absent_null_empty) {
        Fixture f;
        Client *c;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\"}"), "{}");
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":null}"), "{}");
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{}}"), "{}");
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\",\"more\":false,\"oneway\":false,\"unknown\":1}"), "{}");
        ASSERT_UINT_EQ(f.state.echo_calls, 4);
        client_free(c);
        fixture_teardown(&f);
}

TEST(more) {
        Fixture f;
        Client *c;
        json_t *m;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Stream\",\"more\":true}");
        for (int i = 0; i < 3; i++) {
                m = client_next(&f, c);
                ASSERT_TRUE(m);
                ASSERT_TRUE(json_is_true(json_object_get(m, "continues")));
                ASSERT_EQ(json_integer_value(json_object_get(json_object_get(m, "parameters"), "index")), i);
                json_decref(m);
        }
        assert_reply(client_next(&f, c), "{\"done\":true}");
        /* A "more" call may be answered with a single reply, too. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"more\":true,\"parameters\":{\"a\":1}}");
        assert_reply(client_next(&f, c), "{\"a\":1}");
        client_free(c);
        fixture_teardown(&f);
}

TEST(oneway) {
        Fixture f;
        Client *c;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"oneway\":true,\"parameters\":{\"n\":1}}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Fail\",\"oneway\":true}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Nope\",\"oneway\":true}");
        /* The first answer is the one to the first call that wants one. */
        assert_reply(call(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"n\":2}}"), "{\"n\":2}");
        ASSERT_UINT_EQ(f.state.echo_calls, 2);
        client_free(c);
        fixture_teardown(&f);
}

TEST(pipelined_and_split) {
        static const char two[] = "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"n\":1}}\0"
                                  "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"n\":2}}";
        static const char one[] = "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"split\":true}}";
        Fixture f;
        Client *c;
        char *many = NULL;
        size_t len = 0;
        FILE *s;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);

        ASSERT_TRUE(client_write(&f, c, two, sizeof two));
        assert_reply(client_next(&f, c), "{\"n\":1}");
        assert_reply(client_next(&f, c), "{\"n\":2}");

        for (size_t i = 0; i < sizeof one; i++) {
                unsigned n = 0;
                ASSERT_TRUE(client_write(&f, c, one + i, 1));
                step(&f, &n, now_usec() + DEADLINE_USEC);
        }
        assert_reply(client_next(&f, c), "{\"split\":true}");

        /* More calls in one write than are run per wakeup: all answered, in order. */
        s = open_memstream(&many, &len);
        ASSERT_TRUE(s);
        for (int i = 0; i < 100; i++) {
                fprintf(s, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"i\":%d}}", i);
                fputc(0, s);
        }
        ASSERT_OK(fclose(s));
        ASSERT_TRUE(client_write(&f, c, many, len));
        free(many);
        for (int i = 0; i < 100; i++) {
                json_t *m = client_next(&f, c);
                ASSERT_TRUE(m);
                ASSERT_EQ(json_integer_value(json_object_get(json_object_get(m, "parameters"), "i")), i);
                json_decref(m);
        }

        /* A call in progress holds back the next one on its connection. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Slow\"}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"after\":\"slow\"}}");
        assert_reply(client_next(&f, c), "{\"slow\":true}");
        assert_reply(client_next(&f, c), "{\"after\":\"slow\"}");

        client_free(c);
        fixture_teardown(&f);
}

TEST(fairness) {
        Fixture f;
        Client *bulk, *other;
        char *many = NULL;
        size_t len = 0;
        unsigned at_other;
        FILE *s;

        fixture_setup(&f, 0, 0);
        bulk = client_new(&f);
        other = client_new(&f);

        s = open_memstream(&many, &len);
        ASSERT_TRUE(s);
        for (int i = 0; i < 100; i++) {
                fputs("{\"method\":\"io.test.Test.Echo\"}", s);
                fputc(0, s);
        }
        ASSERT_OK(fclose(s));
        ASSERT_TRUE(client_write(&f, bulk, many, len));
        free(many);
        RUN_UNTIL(&f, f.state.echo_calls > 0);

        /* The other client is answered long before the pipelined batch is through. */
        client_send(&f, other, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"other\":1}}");
        RUN_UNTIL(&f, client_has_message(other));
        at_other = f.state.echo_calls;
        ASSERT_LT(at_other, 100);
        assert_reply(client_next(&f, other), "{\"other\":1}");
        for (int i = 0; i < 100; i++)
                assert_reply(client_next(&f, bulk), "{}");
        ASSERT_UINT_EQ(f.state.echo_calls, 101);

        client_free(bulk);
        client_free(other);
        fixture_teardown(&f);
}

/* Sends per_client Echo calls on each client, in one write per client. */
static void send_echoes(Fixture *f, Client **c, size_t n_clients, unsigned per_client) {
        static const char echo[] = "{\"method\":\"io.test.Test.Echo\"}";
        char *many = malloc(per_client * sizeof echo);

        ASSERT_TRUE(many);
        for (unsigned i = 0; i < per_client; i++)
                memcpy(many + i * sizeof echo, echo, sizeof echo);
        for (size_t i = 0; i < n_clients; i++)
                ASSERT_TRUE(client_write(f, c[i], many, per_client * sizeof echo));
        free(many);
}

static unsigned count_replies(Client *c) {
        unsigned n = 0;

        client_pump(c);
        for (size_t i = 0; i < c->len; i++)
                n += c->buf[i] == 0;
        return n;
}

static int on_tick(_unused_ sd_event_source *s, void *userdata) {
        State *st = userdata;

        st->ticks++;
        st->max_since_tick = MAX(st->max_since_tick, st->since_tick);
        st->since_tick = 0;
        return 0;
}

/* Stands for the journal's backlog: higher priority work that reschedules itself. No call may run
 * while it is pending. */
static int on_busy(sd_event_source *s, void *userdata) {
        State *st = userdata;

        st->busy_runs++;
        ASSERT_UINT_EQ(st->echo_calls, 0);
        if (--st->busy_left > 0)
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_backlog(sd_event_source *s, void *userdata) {
        State *st = userdata;
        unsigned before = st->echo_calls;

        varlink_server_dispatch(st->server);
        st->in_steps += st->echo_calls - before;
        st->max_in_step = MAX(st->max_in_step, st->echo_calls - before);
        if (--st->backlog_left > 0)
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

TEST(priority_and_budget) {
        Client *c[4];
        sd_event_source *busy = NULL, *backlog = NULL;
        Fixture f;

        fixture_setup(&f, 0, 0);
        /* As vpopguardd has them: sockets, then the owner's work, then calls. */
        ASSERT_EQ(varlink_server_set_priorities(f.server, SD_EVENT_PRIORITY_NORMAL + 3, SD_EVENT_PRIORITY_NORMAL + 1),
                  -EINVAL);
        ASSERT_OK(varlink_server_set_priorities(f.server, SD_EVENT_PRIORITY_NORMAL + 1, SD_EVENT_PRIORITY_NORMAL + 3));
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                c[i] = client_new(&f);

        /* The owner's work comes first: calls wait until it is done, both those already read
         * (25 behind a call in progress, which ends as the work starts) and those still unread. */
        client_send(&f, c[0], "{\"method\":\"io.test.Test.Hold\",\"more\":true}");
        json_decref(client_next(&f, c[0]));
        send_echoes(&f, c, 1, 25);
        run_until_quiet(&f);
        ASSERT_UINT_EQ(f.state.echo_calls, 0);
        ASSERT_OK(sd_event_add_defer(f.event, &busy, on_busy, &f.state));
        ASSERT_OK(sd_event_source_set_priority(busy, SD_EVENT_PRIORITY_NORMAL + 2));
        f.state.busy_left = 50;
        varlink_call_set_close_callback(f.state.held, NULL, NULL);
        ASSERT_OK(varlink_call_reply(f.state.held, NULL));
        f.state.held = varlink_call_unref(f.state.held);
        send_echoes(&f, c + 1, ELEMENTSOF(c) - 1, 25);
        RUN_UNTIL(&f, f.state.echo_calls == 100);
        ASSERT_UINT_EQ(f.state.busy_runs, 50);
        RUN_UNTIL(&f, count_replies(c[0]) == 25 + 1); /* and the reply that ended Hold */
        for (size_t i = 1; i < ELEMENTSOF(c); i++)
                RUN_UNTIL(&f, count_replies(c[i]) == 25);

        /* Work that becomes ready meanwhile (like the journal's) runs after at most
         * VARLINK_CALLS_PER_WAKEUP calls, whoever asked them. */
        ASSERT_OK(sd_event_add_defer(f.event, &f.state.tick, on_tick, &f.state));
        ASSERT_OK(sd_event_source_set_enabled(f.state.tick, SD_EVENT_OFF));
        ASSERT_OK(sd_event_source_set_priority(f.state.tick, SD_EVENT_PRIORITY_NORMAL));
        send_echoes(&f, c, ELEMENTSOF(c), 50);
        RUN_UNTIL(&f, f.state.echo_calls == 300);
        run_until_quiet(&f);
        ASSERT_UINT_EQ(f.state.since_tick, 0);
        ASSERT_TRUE(f.state.max_since_tick >= 1);
        ASSERT_LE(f.state.max_since_tick, VARLINK_CALLS_PER_WAKEUP);
        ASSERT_GE(f.state.ticks, 200 / VARLINK_CALLS_PER_WAKEUP);
        f.state.tick = sd_event_source_disable_unref(f.state.tick);

        /* Work that yields one slice of calls per step (like a backlog of the journal): the calls
         * are answered while it lasts, a slice at a time, and only there. */
        f.state.server = f.server;
        ASSERT_OK(sd_event_add_defer(f.event, &backlog, on_backlog, &f.state));
        ASSERT_OK(sd_event_source_set_priority(backlog, SD_EVENT_PRIORITY_NORMAL + 2));
        f.state.backlog_left = 1000;
        send_echoes(&f, c, ELEMENTSOF(c), 50);
        RUN_UNTIL(&f, f.state.echo_calls == 500);
        ASSERT_TRUE(f.state.backlog_left > 0);
        ASSERT_UINT_EQ(f.state.in_steps, 200);
        ASSERT_TRUE(f.state.max_in_step >= 1);
        ASSERT_LE(f.state.max_in_step, VARLINK_CALLS_PER_WAKEUP);
        RUN_UNTIL(&f, f.state.backlog_left == 0);

        backlog = sd_event_source_disable_unref(backlog);
        busy = sd_event_source_disable_unref(busy);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_free(c[i]);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

/* A client connected with other credentials: a child takes them, connects and hands the socket
 * over. Needs root. */
static Client *client_new_as(Fixture *f, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups) {
        char control[CMSG_SPACE(sizeof(int))] = {};
        char byte = 0;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        struct cmsghdr *cmsg;
        Client *c;
        int pair[2], status;
        pid_t pid;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd;

                if (strlen(f->path) >= sizeof sa.sun_path)
                        _exit(4);
                memcpy(sa.sun_path, f->path, strlen(f->path));
                if (setgroups(n_groups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                        _exit(2);
                cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
                _exit(sendmsg(pair[1], &mh, 0) == 1 ? 0 : 3);
        }
        safe_close(pair[1]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        ASSERT_EQ(recvmsg(pair[0], &mh, MSG_CMSG_CLOEXEC), 1);
        safe_close(pair[0]);
        cmsg = CMSG_FIRSTHDR(&mh);
        ASSERT_TRUE(cmsg && cmsg->cmsg_type == SCM_RIGHTS);
        c = calloc(1, sizeof *c);
        ASSERT_TRUE(c);
        memcpy(&c->fd, CMSG_DATA(cmsg), sizeof(int));
        ASSERT_OK(fcntl(c->fd, F_SETFL, O_NONBLOCK));
        return c;
}

/* Other users must be able to reach the fixture's socket. */
static void fixture_open_up(Fixture *f) {
        ASSERT_OK(chmod(f->dir, 0755));
        ASSERT_OK(chmod(f->path, 0666));
}

TEST(fair_between_uids) {
        Client *many[32], *root, *late;
        unsigned total_at_send;
        Fixture f;

        if (geteuid() != 0)
                return skip_part("connecting as other UIDs: not root");
        fixture_setup(&f, 0, 0);
        fixture_open_up(&f);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = client_new_as(&f, 1000, 1000, NULL, 0);
        root = client_new(&f);

        /* UID 1000 asks on 32 connections, root on one: root gets half of the turns, not 1/33. */
        send_echoes(&f, many, ELEMENTSOF(many), 20);
        send_echoes(&f, &root, 1, 100);
        RUN_UNTIL(&f, count_replies(root) == 100);
        fprintf(stderr, "  root's 100 calls were answered after %u of UID 1000's\n", f.state.echo_other);
        ASSERT_LT(f.state.echo_other, 300);

        /* A UID that starts asking is served within one wakeup of the dispatcher. */
        late = client_new_as(&f, 1001, 1001, NULL, 0);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == ELEMENTSOF(many) + 2);
        total_at_send = f.state.echo_calls;
        ASSERT_LT(total_at_send, 740);
        client_send(&f, late, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"late\":1}}");
        assert_reply(client_next(&f, late), "{\"late\":1}");
        ASSERT_LE(f.state.echo_calls - total_at_send, VARLINK_CALLS_PER_WAKEUP);

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                RUN_UNTIL(&f, count_replies(many[i]) == 20);
        ASSERT_UINT_EQ(f.state.echo_calls, 741);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                client_free(many[i]);
        client_free(root);
        client_free(late);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

/* An Echo call of exactly len bytes before its NUL. */
static char *echo_of_length(size_t len) {
        static const char head[] = "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"p\":\"", tail[] = "\"}}";
        char *m = malloc(len + 1);

        ASSERT_TRUE(m && len > strlen(head) + strlen(tail));
        memcpy(m, head, strlen(head));
        memset(m + strlen(head), 'p', len - strlen(head) - strlen(tail));
        memcpy(m + len - strlen(tail), tail, strlen(tail) + 1);
        return m;
}

TEST(unprivileged_message_max) {
        Client *user, *root;
        char *m;
        json_t *reply;
        Fixture f;

        if (geteuid() != 0)
                return skip_part("connecting as another UID: not root");
        fixture_setup(&f, 0, 0);
        fixture_open_up(&f);
        user = client_new_as(&f, 1000, 1000, NULL, 0);
        root = client_new(&f);

        /* Root may send more than other users, who may send their limit with its NUL. */
        m = echo_of_length(VARLINK_MESSAGE_UNPRIVILEGED_MAX + 100);
        reply = call(&f, root, m);
        ASSERT_TRUE(!json_object_get(reply, "error"));
        ASSERT_GE(strlen(json_string_value(json_object_get(json_object_get(reply, "parameters"), "p")) ?: ""),
                  VARLINK_MESSAGE_UNPRIVILEGED_MAX);
        json_decref(reply);
        free(m);
        m = echo_of_length(VARLINK_MESSAGE_UNPRIVILEGED_MAX - 1);
        json_decref(call(&f, user, m));
        free(m);

        /* One byte more, and the user is disconnected; root is not. */
        m = echo_of_length(VARLINK_MESSAGE_UNPRIVILEGED_MAX);
        (void) client_write(&f, user, m, strlen(m) + 1);
        free(m);
        RUN_UNTIL(&f, client_disconnected(user));
        assert_reply(call(&f, root, "{\"method\":\"io.test.Test.Echo\"}"), "{}");

        client_free(user);
        client_free(root);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

/* Whether the loop has nothing to do for a while: the server waits although calls are queued. */
static bool loop_idle(Fixture *f) {
        return sd_event_run(f->event, 5 * 1000) == 0;
}

TEST(cpu_allowance) {
        static const char burn[] = "{\"method\":\"io.test.Test.Burn\"}";
        Client *user, *root;
        unsigned at_idle;
        Fixture f;

        if (geteuid() != 0)
                return skip_part("connecting as another UID: not root");
        fixture_setup(&f, 0, 0);
        fixture_open_up(&f);
        /* 2.5 calls' worth at once, then one call per 0.4 s. */
        varlink_server_set_cpu_limit(f.server, 5U * 1000U * 1000U, 5U * 1000U * 1000U);
        user = client_new_as(&f, 1000, 1000, NULL, 0);
        root = client_new(&f);

        for (int i = 0; i < 6; i++)
                ASSERT_TRUE(client_write(&f, user, burn, sizeof burn));
        /* The burst is spent, the rest waits: not refused, not run. */
        RUN_UNTIL(&f, f.state.burns_other > 0 && loop_idle(&f));
        at_idle = f.state.burns_other;
        fprintf(stderr, "  the loop went idle after %u of UID 1000's 6 calls\n", at_idle);
        ASSERT_LT(at_idle, 6);
        ASSERT_UINT_EQ(count_replies(user), at_idle);

        /* Root has no limit and is served meanwhile. */
        for (int i = 0; i < 6; i++)
                ASSERT_TRUE(client_write(&f, root, burn, sizeof burn));
        RUN_UNTIL(&f, count_replies(root) == 6);
        ASSERT_LT(f.state.burns_other, 6);

        /* UID 1000 gets the rest in time, and reconnecting does not refill its allowance: its
         * next call, on a new connection, waits too. */
        RUN_UNTIL(&f, count_replies(user) == 6);
        user = client_free(user);
        user = client_new_as(&f, 1000, 1000, NULL, 0);
        ASSERT_TRUE(client_write(&f, user, burn, sizeof burn));
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 2 && loop_idle(&f));
        ASSERT_UINT_EQ(f.state.burns_other, 6);
        RUN_UNTIL(&f, count_replies(user) == 1);

        client_free(user);
        client_free(root);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

TEST(reply_text) {
        Client *c, *other;
        json_t *m;
        Fixture f;

        fixture_setup(&f, 0, 64 * 1024);
        c = client_new(&f);
        other = client_new(&f);

        /* What the client gets is an ordinary reply, in order with the others. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Text\",\"parameters\":{\"n\":3}}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Text\",\"parameters\":{\"n\":0},\"oneway\":true}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"after\":1}}");
        assert_reply(client_next(&f, c), "{\"list\":[0,1,2]}");
        assert_reply(client_next(&f, c), "{\"after\":1}");

        /* The output cap holds for text too: 100000 numbers are more than 64 KiB. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Text\",\"parameters\":{\"n\":100000}}");
        RUN_UNTIL(&f, client_disconnected(c));
        m = call(&f, other, "{\"method\":\"io.test.Test.Text\",\"parameters\":{\"n\":1000}}");
        ASSERT_UINT_EQ(json_array_size(json_object_get(json_object_get(m, "parameters"), "list")), 1000);
        json_decref(m);

        client_free(c);
        client_free(other);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

static void assert_groups(Fixture *f, Client *c, const char *expected) {
        assert_reply(call(f, c, "{\"method\":\"io.test.Test.Groups\"}"), expected);
}

TEST(peer_groups) {
        static const gid_t watched[] = { 4141, 4343, 5099, 5555 };
        gid_t two[] = { 4242, 4343 }, hundred[100];
        Client *primary, *none, *many, *before;
        Fixture f;

        if (geteuid() != 0)
                return skip_part("connecting as other users: not root");
        for (size_t i = 0; i < ELEMENTSOF(hundred); i++)
                hundred[i] = 5000 + (gid_t) i;
        fixture_setup(&f, 0, 0);
        fixture_open_up(&f);
        ASSERT_EQ(varlink_server_set_groups(f.server, watched, VARLINK_GROUPS_MAX + 1), -E2BIG);

        /* Connected before the server knew which groups matter: none. */
        before = client_new_as(&f, 1000, 4141, two, ELEMENTSOF(two));
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 1);
        ASSERT_OK(varlink_server_set_groups(f.server, watched, ELEMENTSOF(watched)));
        assert_groups(&f, before, "{\"in\":[]}");

        /* The primary group counts; 4242 is the peer's but not watched. */
        primary = client_new_as(&f, 1000, 4141, two, ELEMENTSOF(two));
        assert_groups(&f, primary, "{\"in\":[4141,4343]}");
        none = client_new_as(&f, 1000, 1000, NULL, 0);
        assert_groups(&f, none, "{\"in\":[]}");
        /* More groups than fit the first buffer: the last one is still found. */
        many = client_new_as(&f, 1000, 1000, hundred, ELEMENTSOF(hundred));
        assert_groups(&f, many, "{\"in\":[5099]}");

        client_free(before);
        client_free(primary);
        client_free(none);
        client_free(many);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

TEST(input_during_call) {
        Fixture f;
        Client *c;
        char *junk;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Hold\",\"more\":true}");
        json_decref(client_next(&f, c));
        ASSERT_TRUE(f.state.held);

        /* Read, but not run, while the call is in progress. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"queued\":1}}");
        run_until_quiet(&f);
        ASSERT_UINT_EQ(f.state.echo_calls, 0);

        /* The owner ends the call from outside any handler: the queued call runs next. */
        varlink_call_set_close_callback(f.state.held, NULL, NULL);
        ASSERT_OK(varlink_call_reply(f.state.held, json_pack("{s:s}", "event", "bye")));
        f.state.held = varlink_call_unref(f.state.held);
        assert_reply(client_next(&f, c), "{\"event\":\"bye\"}");
        assert_reply(client_next(&f, c), "{\"queued\":1}");

        /* Input buffered during a call is capped at one message: the rest waits in the kernel,
         * and an overlong message is still refused once the call ends. */
        client_send(&f, c, "{\"method\":\"io.test.Test.Hold\",\"more\":true}");
        json_decref(client_next(&f, c));
        junk = malloc(VARLINK_MESSAGE_MAX + 4096);
        ASSERT_TRUE(junk);
        memset(junk, 'j', VARLINK_MESSAGE_MAX + 4096);
        ASSERT_TRUE(client_write(&f, c, junk, VARLINK_MESSAGE_MAX + 4096));
        free(junk);
        run_until_quiet(&f);
        ASSERT_UINT_EQ(varlink_server_connections(f.server), 1);
        ASSERT_UINT_EQ(f.state.close_callbacks, 0);

        varlink_call_set_close_callback(f.state.held, NULL, NULL);
        ASSERT_OK(varlink_call_reply(f.state.held, NULL));
        f.state.held = varlink_call_unref(f.state.held);
        assert_reply(client_next(&f, c), "{}");
        RUN_UNTIL(&f, client_disconnected(c));
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);

        client_free(c);
        fixture_teardown(&f);
}

TEST(large_message) {
        size_t n = VARLINK_MESSAGE_MAX - 100;
        char *text = malloc(n + 1);
        Fixture f;
        Client *c;
        json_t *m;

        ASSERT_TRUE(text);
        fixture_setup(&f, 0, 0);
        c = client_new(&f);

        /* Just under the limit: fine. */
        memset(text, 'y', n);
        text[n] = 0;
        memcpy(text, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"s\":\"", 49);
        memcpy(text + n - 3, "\"}}", 3);
        client_send(&f, c, text);
        m = client_next(&f, c);
        ASSERT_TRUE(m);
        ASSERT_UINT_EQ(strlen(json_string_value(json_object_get(json_object_get(m, "parameters"), "s"))), n - 52);
        json_decref(m);
        client_free(c);

        /* The limit without a NUL: disconnected. */
        text = realloc(text, VARLINK_MESSAGE_MAX);
        ASSERT_TRUE(text);
        memset(text, 'z', VARLINK_MESSAGE_MAX);
        c = client_new(&f);
        (void) client_write(&f, c, text, VARLINK_MESSAGE_MAX);
        RUN_UNTIL(&f, client_disconnected(c));
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        client_free(c);

        free(text);
        fixture_teardown(&f);
}

TEST(garbage) {
        static const char *const bad[] = {
                "garbage",
                "",
                "[1,2]",
                "\"method\"",
                "null",
                "{}",
                "{\"method\":1}",
                "{\"method\":null}",
                "{\"parameters\":{}}",
                "{\"method\":\"io.test.Test.Echo\",\"parameters\":5}",
                "{\"method\":\"io.test.Test.Echo\",\"parameters\":[]}",
                "{\"method\":\"io.test.Test.Echo\",\"more\":\"yes\"}",
                "{\"method\":\"io.test.Test.Echo\",\"oneway\":1}",
                "{\"method\":\"io.test.Test.Echo\",\"more\":true,\"oneway\":true}",
                "{\"method\":\"io.test.Test.Echo\",\"upgrade\":true}",
                "{\"method\":\"io.test.Test.Echo\"} trailing",
                "{\"method\":\"io.test.Test.Echo\",\"method\":\"io.test.Test.Fail\"}",
                "{\"method\":\"io.test.Test.\xff\"}",
                "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"a\":\"\\u0000\"}}",
                "{\"method\":\"io.test.Test.Echo\"",
        };
        Fixture f;
        Client *good;
        char *deep;

        fixture_setup(&f, 0, 0);
        good = client_new(&f);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Client *c = client_new(&f);

                client_send(&f, c, bad[i]);
                RUN_UNTIL(&f, client_disconnected(c));
                client_free(c);
                /* Another client is unaffected. */
                assert_reply(call(&f, good, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"still\":\"here\"}}"),
                             "{\"still\":\"here\"}");
        }

        /* Nesting far deeper than the parser allows must not exhaust the stack. */
        deep = malloc(500001);
        ASSERT_TRUE(deep);
        memset(deep, '[', 500000);
        deep[500000] = 0;
        {
                Client *c = client_new(&f);
                client_send(&f, c, deep);
                RUN_UNTIL(&f, client_disconnected(c));
                client_free(c);
        }
        free(deep);

        assert_reply(call(&f, good, "{\"method\":\"io.test.Test.Echo\"}"), "{}");
        ASSERT_UINT_EQ(varlink_server_connections(f.server), 1);
        client_free(good);
        fixture_teardown(&f);
}

TEST(per_uid_limit) {
        Client *c[VARLINK_CONNECTIONS_PER_UID_MAX + 1];
        Fixture f;

        fixture_setup(&f, 0, 0);
        for (size_t i = 0; i < VARLINK_CONNECTIONS_PER_UID_MAX; i++)
                c[i] = client_new(&f);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == VARLINK_CONNECTIONS_PER_UID_MAX);

        c[VARLINK_CONNECTIONS_PER_UID_MAX] = client_new(&f);
        RUN_UNTIL(&f, client_disconnected(c[VARLINK_CONNECTIONS_PER_UID_MAX]));
        ASSERT_UINT_EQ(varlink_server_connections(f.server), VARLINK_CONNECTIONS_PER_UID_MAX);
        assert_reply(call(&f, c[0], "{\"method\":\"io.test.Test.Echo\"}"), "{}");
        assert_reply(call(&f, c[VARLINK_CONNECTIONS_PER_UID_MAX - 1], "{\"method\":\"io.test.Test.Echo\"}"), "{}");

        /* A slot freed is a slot usable again. */
        c[0] = client_free(c[0]);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == VARLINK_CONNECTIONS_PER_UID_MAX - 1);
        client_free(c[VARLINK_CONNECTIONS_PER_UID_MAX]);
        c[VARLINK_CONNECTIONS_PER_UID_MAX] = client_new(&f);
        assert_reply(call(&f, c[VARLINK_CONNECTIONS_PER_UID_MAX], "{\"method\":\"io.test.Test.Echo\"}"), "{}");

        for (size_t i = 0; i <= VARLINK_CONNECTIONS_PER_UID_MAX; i++)
                client_free(c[i]);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

TEST(output_cap) {
        Fixture f;
        Client *flooder, *good;
        unsigned served = 0;

        fixture_setup(&f, 0, 1024 * 1024);
        flooder = client_new(&f);
        good = client_new(&f);

        client_send(&f, flooder, "{\"method\":\"io.test.Test.Flood\",\"more\":true}");
        /* Served while the flood runs; the flooder never reads. */
        while (f.state.close_callbacks == 0) {
                assert_reply(call(&f, good, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"x\":1}}"), "{\"x\":1}");
                served++;
                ASSERT_LT(served, 1000);
        }
        ASSERT_GE(served, 2);
        ASSERT_EQ(f.state.flood_error, -ENOBUFS);
        ASSERT_TRUE(f.state.enotconn_after_close);
        ASSERT_TRUE(!f.state.flood);
        ASSERT_UINT_EQ(varlink_server_connections(f.server), 1);
        RUN_UNTIL(&f, client_disconnected(flooder));
        assert_reply(call(&f, good, "{\"method\":\"io.test.Test.Echo\"}"), "{}");

        client_free(flooder);
        client_free(good);
        fixture_teardown(&f);
}

TEST(idle_timeout) {
        Fixture f;
        Client *idle, *busy, *half;

        fixture_setup(&f, SLOW_USEC / 3, 0);

        idle = client_new(&f);
        RUN_UNTIL(&f, client_disconnected(idle));
        client_free(idle);

        /* A call in progress is not idleness, even if it lasts longer than the timeout. */
        busy = client_new(&f);
        assert_reply(call(&f, busy, "{\"method\":\"io.test.Test.Slow\"}"), "{\"slow\":true}");
        /* After it, the connection idles out again. */
        RUN_UNTIL(&f, client_disconnected(busy));
        client_free(busy);

        /* Half a message is no activity either. */
        half = client_new(&f);
        ASSERT_TRUE(client_write(&f, half, "{\"method\"", 9));
        RUN_UNTIL(&f, client_disconnected(half));
        client_free(half);

        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        fixture_teardown(&f);
}

TEST(half_close) {
        Fixture f;
        Client *c;

        fixture_setup(&f, 0, 0);
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Slow\"}");
        client_send(&f, c, "{\"method\":\"io.test.Test.Echo\",\"parameters\":{\"last\":1}}");
        ASSERT_OK(shutdown(c->fd, SHUT_WR));
        assert_reply(client_next(&f, c), "{\"slow\":true}");
        assert_reply(client_next(&f, c), "{\"last\":1}");
        ASSERT_TRUE(client_next(&f, c) == NULL);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        client_free(c);
        fixture_teardown(&f);
}

TEST(close_callback) {
        Fixture f;
        Client *c;
        json_t *m;

        fixture_setup(&f, 0, 0);

        /* The client of a streaming call goes away. */
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Hold\",\"more\":true}");
        m = client_next(&f, c);
        ASSERT_TRUE(json_is_true(json_object_get(m, "continues")));
        json_decref(m);
        ASSERT_TRUE(f.state.held);
        ASSERT_UINT_EQ(varlink_call_peer_uid(f.state.held), getuid());
        ASSERT_EQ(varlink_call_peer_pid(f.state.held), getpid());
        ASSERT_STREQ(varlink_call_method(f.state.held), "io.test.Test.Hold");
        ASSERT_TRUE(varlink_call_wants_more(f.state.held));
        ASSERT_FALSE(varlink_call_is_oneway(f.state.held));
        client_free(c);
        RUN_UNTIL(&f, f.state.close_callbacks == 1);
        ASSERT_TRUE(f.state.enotconn_after_close);
        ASSERT_TRUE(!f.state.held);
        ASSERT_UINT_EQ(varlink_server_connections(f.server), 0);

        /* Calls that ended normally get no callback. */
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Stream\",\"more\":true}");
        for (int i = 0; i < 3; i++)
                json_decref(client_next(&f, c));
        assert_reply(client_next(&f, c), "{\"done\":true}");
        client_free(c);
        RUN_UNTIL(&f, varlink_server_connections(f.server) == 0);
        ASSERT_UINT_EQ(f.state.close_callbacks, 1);

        /* The server goes away under a streaming call. */
        c = client_new(&f);
        client_send(&f, c, "{\"method\":\"io.test.Test.Hold\",\"more\":true}");
        json_decref(client_next(&f, c));
        ASSERT_TRUE(f.state.held);
        f.server = varlink_server_free(f.server);
        ASSERT_UINT_EQ(f.state.close_callbacks, 2);
        ASSERT_TRUE(!f.state.held);
        client_pump(c);
        ASSERT_TRUE(c->eof);
        client_free(c);

        fixture_teardown(&f);
}

TEST(listen_fd_and_stale_socket) {
        _cleanup_(varlink_server_freep) VarlinkServer *s = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/test-varlink-XXXXXX", path[128], file[128];
        sd_event *e = NULL;
        State st = {};
        Client *c;
        struct stat sb;
        int fd;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/passed", dir);
        snprintf(file, sizeof file, "%s/file", dir);
        ASSERT_OK(sd_event_new(&e));
        st.event = e;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_OK(fd);
        strcpy(sa.sun_path, path);
        ASSERT_OK(bind(fd, (struct sockaddr *) &sa, sizeof sa));
        ASSERT_OK(listen(fd, 16));

        ASSERT_OK(varlink_server_new(e, NULL, &st, &s));
        ASSERT_OK(varlink_server_add_interface(s, &test_interface));
        ASSERT_OK(varlink_server_listen_fd(s, fd));
        ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);

        /* A socket file left behind is replaced; anything else is not touched. */
        ASSERT_OK(close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)));
        ASSERT_EQ(varlink_server_listen_path(s, file, 0600), -EEXIST);
        ASSERT_OK(stat(file, &sb));
        ASSERT_TRUE(S_ISREG(sb.st_mode));
        ASSERT_OK(unlink(file));

        {
                Fixture f = { .event = e, .server = s };
                json_t *m;

                c = client_new_at(path);
                m = call(&f, c, "{\"method\":\"org.varlink.service.GetInfo\"}");
                ASSERT_STREQ(json_string_value(json_object_get(json_object_get(m, "parameters"), "vendor")), "");
                json_decref(m);
                client_free(c);
        }

        s = varlink_server_free(s);
        ASSERT_OK(stat(path, &sb)); /* not ours to remove */
        ASSERT_OK(unlink(path));

        /* Stale: bound once, then its server went away without unlinking. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_OK(bind(fd, (struct sockaddr *) &sa, sizeof sa));
        safe_close(fd);
        ASSERT_OK(varlink_server_new(e, NULL, &st, &s));
        ASSERT_OK(varlink_server_listen_path(s, path, 0666));
        ASSERT_OK(stat(path, &sb));
        ASSERT_EQ(sb.st_mode & 0777, 0666);
        s = varlink_server_free(s);
        ASSERT_TRUE(stat(path, &sb) < 0 && errno == ENOENT);

        sd_event_unref(e);
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        if (getenv("TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);
        RUN(service);
        RUN(errors);
        RUN(parameters_absent_null_empty);
        RUN(more);
        RUN(oneway);
        RUN(pipelined_and_split);
        RUN(fairness);
        RUN(priority_and_budget);
        RUN(fair_between_uids);
        RUN(peer_groups);
        RUN(unprivileged_message_max);
        RUN(cpu_allowance);
        RUN(reply_text);
        RUN(input_during_call);
        RUN(large_message);
        RUN(garbage);
        RUN(per_uid_limit);
        RUN(output_cap);
        RUN(idle_timeout);
        RUN(half_close);
        RUN(close_callback);
        RUN(listen_fd_and_stale_socket);
        return 0;
}
