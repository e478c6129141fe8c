/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The varlink server on arbitrary client bytes: the input is what one client writes to a fresh
 * connection (any number of NUL-terminated messages, or garbage) before shutting down its
 * sending side. The server runs in this process on its own sd-event loop, with
 * org.varlink.service and a small test interface whose methods end their calls in every way a
 * handler may (reply, error, stream, hold until disconnect, fail, forget). Properties: no
 * crash; everything the server sends is a NUL-terminated JSON object, a reply or an error; and
 * once the client has gone, the connection and any call held for it are gone too. */

#include <sys/socket.h>
#include <sys/un.h>

#include "fuzz.h"
#include "varlink.h"

#define ITERATIONS_MAX 100000U
#define OUTPUT_CHECK_MAX (16U * 1024U * 1024U) /* output beyond this is read, not kept */

static sd_event *event;
static VarlinkServer *server;
static struct sockaddr_un address = { .sun_family = AF_UNIX };
static socklen_t address_len;
static VarlinkCall *held;      /* by Hold, until its client disconnects */
static unsigned close_callbacks;

static int vl_echo(VarlinkCall *call, json_t *parameters, void *userdata) {
        return varlink_call_reply(call, json_incref(parameters));
}

static int vl_check(VarlinkCall *call, json_t *parameters, void *userdata) {
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
        return varlink_call_reply(call, json_pack("{s:O}", "name", json_object_get(parameters, "name")));
}

/* {"count": N}: N notifications (at most 16), then the reply. */
static int vl_stream(VarlinkCall *call, json_t *parameters, void *userdata) {
        json_int_t n = json_integer_value(json_object_get(parameters, "count"));

        if (!varlink_call_wants_more(call))
                return varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
        for (json_int_t i = 0; i < MIN(n, (json_int_t) 16); i++)
                if (varlink_call_notify(call, json_pack("{s:I}", "index", i)) < 0)
                        break;
        return varlink_call_reply(call, json_pack("{s:b}", "done", 1));
}

static void on_close(VarlinkCall *call, void *userdata) {
        ASSERT_TRUE(call == held);
        close_callbacks++;
        ASSERT_EQ(varlink_call_reply(call, NULL), -ENOTCONN);
        held = varlink_call_unref(held);
}

/* Keeps the call (and so the connection's input) until the client goes away. */
static int vl_hold(VarlinkCall *call, json_t *parameters, void *userdata) {
        ASSERT_TRUE(!held);
        held = varlink_call_ref(call);
        varlink_call_set_close_callback(call, on_close, NULL);
        if (varlink_call_wants_more(call))
                (void) varlink_call_notify(call, json_pack("{s:s}", "event", "held"));
        return 0;
}

static int vl_fail(VarlinkCall *call, json_t *parameters, void *userdata) {
        ASSERT_OK(varlink_call_error(call, "io.fuzz.Test.Failure", json_incref(parameters)));
        ASSERT_EQ(varlink_call_reply(call, NULL), -EALREADY);
        return 0;
}

static int vl_broken(VarlinkCall *call, json_t *parameters, void *userdata) {
        return -EIO;
}

static int vl_forget(VarlinkCall *call, json_t *parameters, void *userdata) {
        return 0;
}

static const VarlinkMethodEntry test_methods[] = {
        { "Echo", vl_echo },
        { "Check", vl_check },
        { "Stream", vl_stream },
        { "Hold", vl_hold },
        { "Fail", vl_fail },
        { "Broken", vl_broken },
        { "Forget", vl_forget },
        {}
};

static const VarlinkInterface test_interface = {
        .name = "io.fuzz.Test",
        .description = "interface io.fuzz.Test\n"
                       "method Echo() -> ()\n"
                       "method Check(name: string, count: ?int, flag: ?bool, map: ?[string]string, list: ?[]string) -> (name: string)\n"
                       "method Stream(count: ?int) -> (index: ?int, done: ?bool)\n"
                       "method Hold() -> (event: ?string)\n"
                       "method Fail() -> ()\n"
                       "method Broken() -> ()\n"
                       "method Forget() -> ()\n"
                       "error Failure ()\n",
        .methods = test_methods,
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static const VarlinkServerInfo info = { "vpopguard", "fuzz-varlink", "0", "https://example.invalid/" };
        int fd, n;

        if (server)
                return 0;
        ASSERT_OK(sd_event_new(&event));
        ASSERT_OK(varlink_server_new(event, &info, NULL, &server));
        ASSERT_OK(varlink_server_add_interface(server, &test_interface));
        /* Runs must not depend on the clock. */
        varlink_server_set_idle_timeout(server, 0);

        /* An abstract socket: nothing in the file system to clean up. */
        n = snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "vpopguard-fuzz-varlink-%d", (int) getpid());
        address_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) n);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(bind(fd, (struct sockaddr *) &address, address_len), 0);
        ASSERT_EQ(listen(fd, 16), 0);
        ASSERT_OK(varlink_server_listen_fd(server, fd));
        return 0;
}

typedef struct Client {
        int fd;
        char *out;   /* what the server sent, up to OUTPUT_CHECK_MAX */
        size_t n_out;
        bool eof;
} Client;

/* Reads what is there; returns whether anything (or EOF) came. */
static bool client_read(Client *c) {
        static char buf[64 * 1024];
        bool progress = false;

        while (c->fd >= 0 && !c->eof) {
                ssize_t k = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                if (k < 0 && errno == ECONNRESET)
                        k = 0;
                ASSERT_TRUE(k >= 0);
                progress = true;
                if (k == 0) {
                        c->eof = true;
                        break;
                }
                if (c->n_out + (size_t) k <= OUTPUT_CHECK_MAX) {
                        char *p = realloc(c->out, c->n_out + (size_t) k);
                        ASSERT_TRUE(p);
                        memcpy(p + c->n_out, buf, (size_t) k);
                        c->out = p;
                        c->n_out += (size_t) k;
                }
        }
        return progress;
}

/* One iteration of the server and the client; false once neither has anything left to do. */
static bool step(Client *c, unsigned *iterations) {
        int r;

        ASSERT_LT((*iterations)++, ITERATIONS_MAX);
        r = sd_event_run(event, 0);
        ASSERT_OK(r);
        return client_read(c) || r > 0;
}

/* Every message the server sent is a JSON object: a reply with "parameters" or an error. */
static void check_output(const Client *c) {
        size_t start = 0;

        if (c->n_out >= OUTPUT_CHECK_MAX)
                return; /* cut: the last message may be incomplete */
        while (start < c->n_out) {
                const char *nul = memchr(c->out + start, 0, c->n_out - start);
                json_auto_t *m = NULL;
                json_error_t error;

                /* The server closes only between messages. */
                ASSERT_TRUE(nul);
                m = json_loadb(c->out + start, (size_t) (nul - (c->out + start)), JSON_REJECT_DUPLICATES, &error);
                if (!m) {
                        fprintf(stderr, "Invalid JSON from the server: %s\n", error.text);
                        abort();
                }
                ASSERT_TRUE(json_is_object(m));
                ASSERT_TRUE(json_is_object(json_object_get(m, "parameters")));
                ASSERT_TRUE(!json_object_get(m, "error") || json_is_string(json_object_get(m, "error")));
                start = (size_t) (nul - c->out) + 1;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Client c = { .fd = -EBADF };
        unsigned iterations = 0;
        size_t sent = 0;

        if (!server)
                LLVMFuzzerInitialize(NULL, NULL);

        c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(c.fd >= 0);
        ASSERT_EQ(connect(c.fd, (struct sockaddr *) &address, address_len), 0);

        /* The server may close early (a protocol violation): then the rest cannot be sent. */
        while (sent < size && !c.eof) {
                ssize_t k = send(c.fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
                        break;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                        (void) step(&c, &iterations);
                        continue;
                }
                ASSERT_TRUE(k > 0);
                sent += (size_t) k;
        }
        /* The client waits for what the server does with it (so the server also runs with its
         * input drained but the connection open), then hangs up its sending side. */
        while (!c.eof && step(&c, &iterations))
                ;
        (void) shutdown(c.fd, SHUT_WR);

        /* Until the server closes, or waits for more (a held call). */
        while (!c.eof && step(&c, &iterations))
                ;
        check_output(&c);

        c.fd = safe_close(c.fd);
        while (varlink_server_connections(server) > 0 || held)
                (void) step(&c, &iterations);
        ASSERT_TRUE(!held);

        free(c.out);
        return 0;
}
