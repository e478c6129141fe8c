/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "log.h"
#include "varlink-internal.h"

/* Calls: validating a parsed message, finding its method, and building replies. Nothing here
 * closes a connection; sending failures only mark it failed (see varlink.c). */

static const char service_idl[] =
        "# Implemented by every varlink service: what the service is and which interfaces it\n"
        "# offers.\n"
        "interface org.varlink.service\n"
        "\n"
        "# The service's identity and the names of all its interfaces.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# The description (interface definition) of one interface of the service.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# No interface of that name.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# The interface has no method of that name.\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The interface declares the method, but the service does not implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# A parameter is missing, unknown, or has a wrong type or value.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# The caller may not call this method.\n"
        "error PermissionDenied ()\n"
        "\n"
        "# The method must be called with \"more\" set.\n"
        "error ExpectedMore ()\n";

static VarlinkCall *call_free(VarlinkCall *c) {
        json_decref(c->message);
        free(c);
        return NULL;
}

VarlinkCall *varlink_call_ref(VarlinkCall *c) {
        if (c)
                c->n_ref++;
        return c;
}

VarlinkCall *varlink_call_unref(VarlinkCall *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref == 0)
                call_free(c);
        return NULL;
}

void varlink_call_set_close_callback(VarlinkCall *c, void (*callback)(VarlinkCall *c, void *userdata), void *userdata) {
        assert(c);
        c->close_callback = callback;
        c->close_userdata = userdata;
}

uid_t varlink_call_peer_uid(const VarlinkCall *c) {
        return c->uid;
}

pid_t varlink_call_peer_pid(const VarlinkCall *c) {
        return c->pid;
}

bool varlink_call_peer_in_group(const VarlinkCall *c, gid_t gid) {
        for (size_t i = 0; i < c->groups.n; i++)
                if (c->groups.gids[i] == gid)
                        return true;
        return false;
}

const char *varlink_call_method(const VarlinkCall *c) {
        return c->method;
}

bool varlink_call_wants_more(const VarlinkCall *c) {
        return c->more;
}

bool varlink_call_is_oneway(const VarlinkCall *c) {
        return c->oneway;
}

void varlink_call_disconnect(VarlinkCall *call) {
        void (*callback)(VarlinkCall *c, void *userdata) = call->close_callback;

        assert(!call->ended); /* ended calls are no longer the connection's */
        call->connection = NULL;
        call->close_callback = NULL; /* once */
        if (callback)
                callback(call, call->close_userdata); /* the connection's reference is still held */
        varlink_call_unref(call);
}

/* Marks the call ended and hands back its connection, which the caller answers on and then
 * tells with varlink_connection_end_call(). A call ends once. */
static int call_mark_ended(VarlinkCall *c, VarlinkConnection **ret) {
        assert(c);
        assert(ret);

        if (c->ended)
                return -EALREADY;
        if (!c->connection)
                return -ENOTCONN;
        c->ended = true;
        *ret = c->connection;
        return 0;
}

/* Ends the call with a reply (error == NULL) or an error. Steals parameters. */
static int call_end(VarlinkCall *c, const char *error, json_t *parameters) {
        json_auto_t *p = parameters, *m = NULL;
        VarlinkConnection *conn;
        int r;

        r = call_mark_ended(c, &conn);
        if (r < 0)
                return r;

        if (p && !json_is_object(p)) {
                /* A handler bug; still tell the client something it can parse. */
                json_decref(p);
                p = json_pack("{s:i}", "errno", EINVAL);
                error = VARLINK_ERROR_INTERNAL;
                r = -EINVAL;
        } else if (!p)
                p = json_object();

        if (!c->oneway) {
                if (p)
                        m = error ? json_pack("{s:s,s:O}", "error", error, "parameters", p)
                                  : json_pack("{s:O}", "parameters", p);
                if (!m) {
                        varlink_connection_fail(conn); /* the client would wait forever */
                        r = -ENOMEM;
                } else {
                        int k = varlink_connection_send(conn, m);
                        if (r == 0)
                                r = k;
                }
        }

        varlink_connection_end_call(conn);
        return r;
}

int varlink_call_reply(VarlinkCall *c, json_t *parameters) {
        return call_end(c, NULL, parameters);
}

int varlink_call_reply_text(VarlinkCall *c, const char *parameters) {
        VarlinkConnection *conn;
        int r;

        assert(parameters);

        r = call_mark_ended(c, &conn);
        if (r < 0)
                return r;
        if (!c->oneway)
                r = varlink_connection_send_text(conn, (const char *[]) { "{\"parameters\":", parameters, "}" }, 3);
        varlink_connection_end_call(conn);
        return r;
}

int varlink_call_error(VarlinkCall *c, const char *error, json_t *parameters) {
        assert(error && *error);
        return call_end(c, error, parameters);
}

int varlink_call_error_invalid_parameter(VarlinkCall *c, const char *name) {
        return varlink_call_error(c, VARLINK_ERROR_INVALID_PARAMETER, json_pack("{s:s}", "parameter", name));
}

/* A notification needs a call that asked for more, is not over and has a connection. */
static int notify_allowed(const VarlinkCall *c) {
        if (!c->more)
                return -EINVAL;
        if (c->ended)
                return -EALREADY;
        if (!c->connection || c->connection->failed)
                return -ENOTCONN;
        return 0;
}

int varlink_call_notify_text(VarlinkCall *c, const char *parameters) {
        int r;

        assert(c);
        assert(parameters);

        r = notify_allowed(c);
        if (r < 0)
                return r;
        return varlink_connection_send_text(c->connection,
                                            (const char *[]) { "{\"parameters\":", parameters, ",\"continues\":true}" }, 3);
}

size_t varlink_call_pending_output(const VarlinkCall *c) {
        if (!c->connection || c->connection->failed)
                return 0;
        return c->connection->out_end - c->connection->out_start;
}

int varlink_call_notify(VarlinkCall *c, json_t *parameters) {
        json_auto_t *p = parameters, *m = NULL;
        int r;

        assert(c);

        r = notify_allowed(c);
        if (r < 0)
                return r;
        if (p && !json_is_object(p))
                return -EINVAL;

        if (!p)
                p = json_object();
        if (p)
                m = json_pack("{s:O,s:b}", "parameters", p, "continues", 1);
        if (!m)
                return -ENOMEM;
        return varlink_connection_send(c->connection, m);
}

static bool field_type_matches(const VarlinkField *f, json_t *v) {
        if (json_is_null(v))
                return !f->required;

        switch (f->type) {
        case VARLINK_STRING:
                return json_is_string(v);
        case VARLINK_INT:
                return json_is_integer(v);
        case VARLINK_BOOL:
                return json_is_boolean(v);
        case VARLINK_OBJECT:
                return json_is_object(v);
        case VARLINK_ARRAY:
                return json_is_array(v);
        }
        return false;
}

int varlink_check_parameters(VarlinkCall *c, json_t *parameters, const VarlinkField *fields, size_t n_fields) {
        const char *key;
        json_t *v;

        json_object_foreach(parameters, key, v) {
                const VarlinkField *f = NULL;

                for (size_t i = 0; i < n_fields && !f; i++)
                        if (streq(fields[i].name, key))
                                f = fields + i;
                if (!f || !field_type_matches(f, v)) {
                        (void) varlink_call_error_invalid_parameter(c, key);
                        return -EINVAL;
                }
        }

        for (size_t i = 0; i < n_fields; i++) {
                if (!fields[i].required)
                        continue;
                v = json_object_get(parameters, fields[i].name);
                if (!v || json_is_null(v)) {
                        (void) varlink_call_error_invalid_parameter(c, fields[i].name);
                        return -EINVAL;
                }
        }

        return 0;
}

static int vl_method_get_info(VarlinkCall *call, json_t *parameters, void *userdata) {
        VarlinkServer *s = userdata;
        json_auto_t *interfaces = NULL;
        json_t *reply;
        int r;

        r = varlink_check_parameters(call, parameters, NULL, 0);
        if (r < 0)
                return r;

        interfaces = json_array();
        if (!interfaces)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_interfaces; i++)
                if (json_array_append_new(interfaces, json_string(s->interfaces[i]->name)) < 0)
                        return -ENOMEM;

        reply = json_pack("{s:s,s:s,s:s,s:s,s:O}",
                          "vendor", s->vendor,
                          "product", s->product,
                          "version", s->version,
                          "url", s->url,
                          "interfaces", interfaces);
        if (!reply)
                return -ENOMEM;
        return varlink_call_reply(call, reply);
}

static const VarlinkInterface *server_find_interface(const VarlinkServer *s, const char *name, size_t len) {
        for (size_t i = 0; i < s->n_interfaces; i++)
                if (strlen(s->interfaces[i]->name) == len && memcmp(s->interfaces[i]->name, name, len) == 0)
                        return s->interfaces[i];
        return NULL;
}

static int vl_method_get_interface_description(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = {
                { "interface", VARLINK_STRING, true },
        };
        VarlinkServer *s = userdata;
        const VarlinkInterface *iface;
        const char *name;
        json_t *reply;
        int r;

        r = varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields));
        if (r < 0)
                return r;

        name = json_string_value(json_object_get(parameters, "interface"));
        iface = server_find_interface(s, name, strlen(name));
        if (!iface)
                return varlink_call_error(call, VARLINK_ERROR_INTERFACE_NOT_FOUND, json_pack("{s:s}", "interface", name));

        reply = json_pack("{s:s}", "description", iface->description ?: "");
        if (!reply)
                return -ENOMEM;
        return varlink_call_reply(call, reply);
}

static const VarlinkMethodEntry service_methods[] = {
        { "GetInfo", vl_method_get_info },
        { "GetInterfaceDescription", vl_method_get_interface_description },
        {}
};

const VarlinkInterface varlink_service_interface = {
        .name = "org.varlink.service",
        .description = service_idl,
        .methods = service_methods,
};

static int message_get_bool(json_t *message, const char *key, bool *ret) {
        json_t *v = json_object_get(message, key);

        if (v && !json_is_boolean(v))
                return -EBADMSG;
        *ret = json_is_true(v);
        return 0;
}

/* Runs the call: the method's handler, or an error reply if there is none. */
static void call_run(VarlinkCall *call, json_t *parameters) {
        VarlinkServer *s = call->connection->server;
        const char *method = call->method, *dot = strrchr(method, '.');
        const VarlinkInterface *iface;
        const VarlinkMethodEntry *e = NULL;
        int r;

        if (!dot || dot == method || !dot[1]) {
                (void) varlink_call_error(call, VARLINK_ERROR_METHOD_NOT_FOUND, json_pack("{s:s}", "method", method));
                return;
        }
        iface = server_find_interface(s, method, (size_t) (dot - method));
        if (!iface) {
                (void) varlink_call_error(call, VARLINK_ERROR_INTERFACE_NOT_FOUND,
                                          json_pack("{s:s#}", "interface", method, (int) (dot - method)));
                return;
        }
        for (const VarlinkMethodEntry *i = iface->methods; i && i->name && !e; i++)
                if (streq(i->name, dot + 1))
                        e = i;
        if (!e) {
                (void) varlink_call_error(call, VARLINK_ERROR_METHOD_NOT_FOUND, json_pack("{s:s}", "method", method));
                return;
        }

        r = e->callback(call, parameters, iface == &varlink_service_interface ? s : s->userdata);
        if (call->ended || !call->connection)
                return;
        /* Two references are ours and the connection's: nobody else will ever end this call. */
        if (r >= 0 && call->n_ref <= 2) {
                log_debug("Varlink method %s returned without ending its call.", method);
                r = -EPROTO;
        }
        if (r < 0)
                (void) varlink_call_error(call, VARLINK_ERROR_INTERNAL, json_pack("{s:i}", "errno", -r));
}

int varlink_connection_dispatch(VarlinkConnection *c, json_t *message) {
        json_t *method, *parameters;
        VarlinkCall *call;
        bool more, oneway, upgrade;

        /* Anything that is not a well-formed call is a protocol violation: the caller
         * disconnects, since we cannot know what the client meant to be answered. */
        if (!json_is_object(message))
                return -EBADMSG;
        method = json_object_get(message, "method");
        if (!json_is_string(method))
                return -EBADMSG;
        if (message_get_bool(message, "more", &more) < 0 ||
            message_get_bool(message, "oneway", &oneway) < 0 ||
            message_get_bool(message, "upgrade", &upgrade) < 0)
                return -EBADMSG;
        if ((more && oneway) || upgrade)
                return -EPROTONOSUPPORT;

        parameters = json_object_get(message, "parameters");
        if (!parameters || json_is_null(parameters)) {
                parameters = json_object();
                if (!parameters || json_object_set_new(message, "parameters", parameters) < 0)
                        return -ENOMEM;
        } else if (!json_is_object(parameters))
                return -EBADMSG;

        call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        *call = (VarlinkCall) {
                .n_ref = 2, /* the connection's, and ours while the handler runs */
                .connection = c,
                .message = json_incref(message),
                .method = json_string_value(method),
                .uid = c->uid,
                .pid = c->pid,
                .groups = c->groups,
                .more = more,
                .oneway = oneway,
        };
        c->call = call;

        call_run(call, parameters);
        varlink_call_unref(call);
        return 0;
}
