/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>

#include "address.h"
#include "config.h"
#include "ctl-metrics.h"
#include "ctl-print.h"
#include "jail.h"
#include "log.h"
#include "manager-varlink.h"
#include "time-util.h"
#include "varlink-client.h"

/* Exit statuses, part of the interface (see vpopguardctl(1)). */
enum {
        EXIT_OK = 0,
        EXIT_REMOTE = 1,      /* vpopguardd answered with an error, or something else failed */
        EXIT_USAGE = 2,       /* bad command line; nothing was sent */
        EXIT_UNREACHABLE = 3, /* no connection, or it broke before the answer */
};

/* Long enough for a large ListBans() on a busy machine, short enough that a wedged daemon does
 * not hang scripts forever. Monitor() waits without limit. */
#define CALL_TIMEOUT_USEC (30 * USEC_PER_SEC)
/* SYSLOG_IDENTIFIER of `test` without -t: the one vchkpw logs with (see 10-vpopmail.conf). */
#define DEFAULT_TEST_IDENTIFIER "vpopmail"

/* Options that only some commands take, as a bit mask, to refuse them elsewhere. */
enum {
        OPT_JAIL = 1 << 0,
        OPT_TIME = 1 << 1,
        OPT_IDENTIFIER = 1 << 2,
        OPT_FIELD = 1 << 3,
        OPT_CONFIG = 1 << 4,
        OPT_LOCAL = 1 << 5,
        OPT_OUTPUT = 1 << 6,
};
static const char * const option_names[] = { "--jail", "--time", "-t/--identifier", "--field", "--config", "--local",
                                             "--output" };

static const char *arg_socket = NULL;
static bool arg_json = false;
static bool arg_legend = true;
static const char *arg_jail = NULL;
static usec_t arg_time = 0;
static const char *arg_identifier = NULL;
static char **arg_fields = NULL; /* "NAME=VALUE" or "NAME", in command-line order */
static const char *arg_config = NULL;
static bool arg_local = false;
static const char *arg_output = NULL;
static unsigned arg_options = 0; /* OPT_* given */

#define usage_error(...) (log_error(__VA_ARGS__), EXIT_USAGE)

static void help(void) {
        printf("vpopguardctl [OPTIONS...] COMMAND ...\n\n"
               "Queries and controls vpopguardd.\n\n"
               "Commands:\n"
               "  status                      Show the daemon's counters and its jails\n"
               "  bans [JAIL]                 List active bans\n"
               "  failures [ADDRESS]          List addresses with failures in their FindTime window\n"
               "  ban ADDRESS                 Ban an address by hand (root only)\n"
               "  unban ADDRESS               Lift a ban and forget the address's failures (root only)\n"
               "  test MESSAGE                Show whether a journal MESSAGE would count as a failure\n"
               "                              (asks the daemon as root, else reads the configuration)\n"
               "  reload                      Reload the configuration (root only)\n"
               "  monitor                     Print bans, unbans and expiries as they happen\n"
               "  metrics                     Print the counters as OpenMetrics text (Prometheus)\n\n"
               "Options:\n"
               "  -h --help                   Show this help\n"
               "     --version                Show the version\n"
               "     --socket=PATH            Talk to the daemon at PATH (default: $VPOPGUARD_SOCKET\n"
               "                              or " MANAGER_VARLINK_SOCKET ")\n"
               "     --json                   Print the daemon's replies as JSON, one object per line\n"
               "     --no-legend              Print tables without header and footer\n"
               "     --jail=JAIL              Only JAIL (failures, bans), the jail to act in (ban, unban),\n"
               "                              or the one jail to try, enabled or not (test)\n"
               "     --time=SPAN              Ban for SPAN, e.g. 1h or 2d, or infinity (default: the jail's BanTime=)\n"
               "  -t --identifier=IDENT       test: SYSLOG_IDENTIFIER of the message (default: "
               DEFAULT_TEST_IDENTIFIER ",\n"
               "                              with --jail= the jail's own)\n"
               "     --field=NAME=VALUE       test: set another journal field (default: _UID=0);\n"
               "                              --field=NAME removes one\n"
               "     --local                  test: judge with the configuration files, not the daemon\n"
               "     --config=FILE            test: judge with FILE and FILE.d/*.conf (implies --local)\n"
               "     --output=FILE            metrics: replace FILE atomically instead of printing\n");
}

/* Journal field names: upper case letters, digits and '_', not starting with a digit. */
static bool field_name_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

/* Returns 1 to go on, 0 to exit successfully, EXIT_USAGE negated on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SOCKET,
                ARG_JSON,
                ARG_NO_LEGEND,
                ARG_JAIL,
                ARG_TIME,
                ARG_FIELD,
                ARG_CONFIG,
                ARG_LOCAL,
                ARG_OUTPUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "jail", required_argument, NULL, ARG_JAIL },
                { "time", required_argument, NULL, ARG_TIME },
                { "identifier", required_argument, NULL, 't' },
                { "field", required_argument, NULL, ARG_FIELD },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "local", no_argument, NULL, ARG_LOCAL },
                { "output", required_argument, NULL, ARG_OUTPUT },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "ht:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("vpopguardctl " VPOPGUARD_VERSION);
                        return 0;
                case ARG_SOCKET:
                        if (!*optarg)
                                return -usage_error("--socket= needs a path.");
                        arg_socket = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_JAIL:
                        if (!jail_name_is_valid(optarg))
                                return -usage_error("Invalid --jail=%s: expected 1-64 of A-Z a-z 0-9 _ . -", optarg);
                        arg_jail = optarg;
                        arg_options |= OPT_JAIL;
                        break;
                case ARG_TIME:
                        if (streq(optarg, "infinity")) {
                                arg_time = USEC_INFINITY;
                                arg_options |= OPT_TIME;
                                break;
                        }
                        r = parse_timespan(optarg, &arg_time);
                        if (r < 0)
                                return -usage_error("Invalid --time=%s: expected a time span such as 90min, 1h or 2d.", optarg);
                        if (arg_time == 0 || arg_time > INT64_MAX)
                                return -usage_error("Invalid --time=%s: must be more than 0 and less than 292000 years.", optarg);
                        arg_options |= OPT_TIME;
                        break;
                case 't':
                        arg_identifier = optarg;
                        arg_options |= OPT_IDENTIFIER;
                        break;
                case ARG_FIELD: {
                        size_t n = strcspn(optarg, "=");
                        if (!field_name_is_valid(optarg, n))
                                return -usage_error("Invalid --field=%s: expected NAME=VALUE with a journal field NAME (A-Z 0-9 _).", optarg);
                        if (n == strlen("MESSAGE") && strncmp(optarg, "MESSAGE", n) == 0)
                                return -usage_error("MESSAGE is given as the argument of test, not with --field=.");
                        if (strv_extend(&arg_fields, optarg) < 0)
                                return log_oom(), -EXIT_REMOTE;
                        arg_options |= OPT_FIELD;
                        break;
                }
                case ARG_CONFIG:
                        if (!*optarg)
                                return -usage_error("--config= needs a file.");
                        arg_config = optarg;
                        arg_options |= OPT_CONFIG;
                        break;
                case ARG_LOCAL:
                        arg_local = true;
                        arg_options |= OPT_LOCAL;
                        break;
                case ARG_OUTPUT:
                        if (!*optarg)
                                return -usage_error("--output= needs a file.");
                        arg_output = optarg;
                        arg_options |= OPT_OUTPUT;
                        break;
                case '?':
                default:
                        return -EXIT_USAGE; /* getopt_long() has said what is wrong */
                }
        return 1;
}

static const char *socket_path(void) {
        const char *e;

        if (arg_socket)
                return arg_socket;
        e = getenv("VPOPGUARD_SOCKET");
        return e && *e ? e : MANAGER_VARLINK_SOCKET;
}

/* Short explanations for the errors of io.vpopguard.Manager. */
static const char *error_hint(const char *error) {
        static const struct { const char *name, *hint; } hints[] = {
                { MANAGER_VARLINK_INTERFACE ".NoSuchJail", "there is no such jail" },
                { MANAGER_VARLINK_INTERFACE ".NotBanned", "the address is not banned" },
                { MANAGER_VARLINK_INTERFACE ".InvalidAddress", "the daemon refused the address" },
                { MANAGER_VARLINK_INTERFACE ".ConfigurationError", "the running configuration stays" },
                { "org.varlink.service.MethodNotFound", "this vpopguardd is too old for the command" },
        };
        for (size_t i = 0; i < ELEMENTSOF(hints); i++)
                if (streq(error, hints[i].name))
                        return hints[i].hint;
        return NULL;
}

/* Who may call what is vpopguardd(8)'s "VARLINK INTERFACE". */
static const char *permission_hint(const char *method) {
        if (streq(method, "ListBans") || streq(method, "ListFailures") || streq(method, "Monitor"))
                return "only root and members of the groups systemd-journal and adm may see addresses";
        return "only root may do this";
}

static int remote_error(const char *method, const char *error, json_t *parameters) {
        _cleanup_free_ char *p = json_object_size(parameters) > 0 ? json_dumps(parameters, JSON_COMPACT) : NULL;
        const char *hint = streq(error, MANAGER_VARLINK_INTERFACE ".PermissionDenied") ? permission_hint(method)
                                                                                        : error_hint(error);
        const char *message = json_string_value(json_object_get(parameters, "message"));

        log_error("%s() failed: %s%s%s%s%s", method, error, p ? " " : "", p ?: "",
                  hint ? ": " : "", hint ?: "");
        if (message)
                log_error("%s", message);
        return EXIT_REMOTE;
}

static int transport_error(const char *method, const char *path, int r) {
        switch (r) {
        case -ETIMEDOUT:
                log_error("Timed out waiting for vpopguardd at %s to answer %s().", path, method);
                break;
        case -ECONNRESET:
                log_error("vpopguardd at %s closed the connection during %s().", path, method);
                break;
        case -EMSGSIZE:
                log_error("The reply of vpopguardd to %s() is larger than %u MiB.", method,
                          VARLINK_CLIENT_MESSAGE_MAX / 1024U / 1024U);
                break;
        case -EBADMSG:
                log_error("vpopguardd at %s sent an invalid reply to %s().", path, method);
                break;
        case -ENOMEM:
                log_oom();
                return EXIT_REMOTE;
        default:
                log_error_errno(r, "Failed to call %s() at %s: %m", method, path);
        }
        return EXIT_UNREACHABLE;
}

/* Sends the call; returns 0, or logs and returns the exit status. */
static int start_call(const char *method, json_t *parameters, VarlinkCallFlags flags, VarlinkClient **ret) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_free_ char *full = NULL;
        const char *path = socket_path();
        int r;

        r = varlink_client_connect(path, &c);
        if (r < 0) {
                log_error_errno(r, "Failed to connect to vpopguardd at %s: %m%s", path,
                                r == -ENOENT || r == -ECONNREFUSED ? " (is vpopguardd running?)" : "");
                return EXIT_UNREACHABLE;
        }
        if (asprintf(&full, MANAGER_VARLINK_INTERFACE ".%s", method) < 0)
                return log_oom(), EXIT_REMOTE;
        r = varlink_client_send(c, full, parameters, flags);
        if (r < 0)
                return transport_error(method, path, r);
        *ret = TAKE_PTR(c);
        return 0;
}

/* Calls method and hands out the parameters of its reply; or logs and returns the exit status. */
static int call(const char *method, json_t *parameters, json_t **ret) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_free_ char *error = NULL;
        json_auto_t *reply = NULL;
        int r;

        r = start_call(method, parameters, 0, &c);
        if (r != 0)
                return r;
        varlink_client_set_timeout(c, CALL_TIMEOUT_USEC);
        r = varlink_client_receive(c, &reply, &error, NULL);
        if (r < 0)
                return transport_error(method, socket_path(), r);
        if (error)
                return remote_error(method, error, reply);
        *ret = TAKE_PTR(reply);
        return 0;
}

/* Calls method with "more" and hands each reply to each() as it arrives (ListBans streams a
 * long list in chunks); a server that answers at once gives one. Returns the exit status. */
static int call_each(const char *method, json_t *parameters, int (*each)(json_t *reply, void *userdata),
                     void *userdata) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        bool continues = true;
        int r;

        r = start_call(method, parameters, VARLINK_CALL_MORE, &c);
        if (r != 0)
                return r;
        varlink_client_set_timeout(c, CALL_TIMEOUT_USEC);
        while (continues) {
                _cleanup_free_ char *error = NULL;
                json_auto_t *reply = NULL;

                r = varlink_client_receive(c, &reply, &error, &continues);
                if (r < 0)
                        return transport_error(method, socket_path(), r);
                if (error)
                        return remote_error(method, error, reply);
                r = each(reply, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* Prints a reply: as one line of JSON with --json, else with the human printer (if any). */
static int print_reply(json_t *reply, int (*human)(FILE *f, json_t *reply, usec_t now, bool legend)) {
        int r;

        if (arg_json) {
                r = json_dumpf(reply, stdout, JSON_COMPACT);
                if (r == 0)
                        r = putchar('\n') == EOF ? -EIO : 0;
        } else if (human)
                r = human(stdout, reply, now_realtime(), arg_legend);
        else
                r = 0;
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? ENOMEM : EIO, "Failed to print the reply: %m"), EXIT_REMOTE;
        return EXIT_OK;
}

/* Adapters for the printers that take neither time nor legend. */
static int print_ban(FILE *f, json_t *reply, usec_t now, bool legend) {
        return ctl_print_ban(f, reply, now);
}

static int print_test(FILE *f, json_t *reply, usec_t now, bool legend) {
        return ctl_print_test(f, reply);
}

static int print_event(FILE *f, json_t *reply, usec_t now, bool legend) {
        return ctl_print_event(f, reply, now);
}

static int print_reload(FILE *f, json_t *reply, usec_t now, bool legend) {
        return fputs("Reloaded the configuration.\n", f) == EOF ? -EIO : 0;
}

/* json_string() fails on invalid UTF-8 (and on OOM, which is rarer). */
static int set_string(json_t *o, const char *key, const char *value) {
        json_t *s = json_string(value);

        if (!s)
                return usage_error("\"%s\" is not valid UTF-8.", value);
        if (json_object_set_new(o, key, s) < 0)
                return log_oom(), EXIT_REMOTE;
        return 0;
}

/* Checks address text locally and stores its canonical form, which is what the daemon prints. */
static int set_address(json_t *o, const char *s) {
        char buf[ADDRESS_STRING_MAX];
        Address a;

        if (address_parse(s, strlen(s), &a) < 0)
                return usage_error("Invalid address \"%s\": expected an IPv4 or IPv6 address.", s);
        return set_string(o, "address", address_to_string(&a, buf));
}

/* Calls method and prints its reply; returns the exit status. */
static int call_and_print(const char *method, json_t *parameters,
                          int (*human)(FILE *f, json_t *reply, usec_t now, bool legend)) {
        json_auto_t *reply = NULL;
        int r;

        r = call(method, parameters, &reply);
        if (r != 0)
                return r;
        return print_reply(reply, human);
}

static int verb_status(char **args) {
        return call_and_print("GetStatus", NULL, ctl_print_status);
}

/* Each reply of ListBans() printed as it arrives: with --json, the bans of all of them as one
 * document, {"bans":[...]}, exactly as if it had come in one reply. */
typedef struct BansOutput {
        CtlBansPrinter *human;
        size_t n_json; /* bans printed with --json */
} BansOutput;

static int print_failed(int r) {
        return log_error_errno(r == -ENOMEM ? ENOMEM : EIO, "Failed to print the reply: %m"), EXIT_REMOTE;
}

static int print_bans_part(json_t *reply, void *userdata) {
        BansOutput *o = userdata;
        json_t *bans = json_object_get(reply, "bans"), *ban;
        size_t i;
        int r;

        if (!arg_json) {
                r = ctl_bans_printer_add(o->human, reply);
                return r < 0 ? print_failed(r) : 0;
        }
        if (!json_is_array(bans))
                return log_error_errno(EBADMSG, "ListBans: a reply without the array \"bans\"."), EXIT_REMOTE;
        json_array_foreach(bans, i, ban) {
                if (fputs(o->n_json++ == 0 ? "{\"bans\":[" : ",", stdout) == EOF ||
                    json_dumpf(ban, stdout, JSON_COMPACT | JSON_ENCODE_ANY) < 0)
                        return print_failed(-EIO);
        }
        return fflush(stdout) == EOF ? print_failed(-EIO) : 0;
}

static int verb_bans(char **args) {
        _cleanup_(ctl_bans_printer_freep) CtlBansPrinter *human = NULL;
        json_auto_t *parameters = json_object();
        const char *jail = args[0] ?: arg_jail;
        int r = 0;

        if (args[0] && arg_jail)
                return usage_error("Give the jail either as argument or with --jail=, not both.");
        if (jail && !jail_name_is_valid(jail))
                return usage_error("Invalid jail name \"%s\": expected 1-64 of A-Z a-z 0-9 _ . -", jail);
        if (!parameters)
                return log_oom(), EXIT_REMOTE;
        if (jail)
                r = set_string(parameters, "jail", jail);
        if (r != 0)
                return r;
        if (!arg_json && ctl_bans_printer_new(stdout, now_realtime(), arg_legend, &human) < 0)
                return log_oom(), EXIT_REMOTE;

        BansOutput o = { .human = human };
        /* A failure part way leaves the output unfinished (no footer, the JSON not closed), so
         * that no script takes it for the whole list; the exit status says so too. */
        r = call_each("ListBans", parameters, print_bans_part, &o);
        if (r != 0)
                return r;
        if (arg_json)
                r = fputs(o.n_json == 0 ? "{\"bans\":[]}\n" : "]}\n", stdout) == EOF ? -EIO : 0;
        else
                r = ctl_bans_printer_end(human);
        return r < 0 ? print_failed(r) : EXIT_OK;
}

static int verb_failures(char **args) {
        json_auto_t *parameters = json_object();
        int r = 0;

        if (!parameters)
                return log_oom(), EXIT_REMOTE;
        if (args[0])
                r = set_address(parameters, args[0]);
        if (r == 0 && arg_jail)
                r = set_string(parameters, "jail", arg_jail);
        return r != 0 ? r : call_and_print("ListFailures", parameters, ctl_print_failures);
}

static int verb_ban(char **args) {
        json_auto_t *parameters = json_object();
        int r;

        if (!parameters)
                return log_oom(), EXIT_REMOTE;
        r = set_address(parameters, args[0]);
        if (r == 0 && arg_jail)
                r = set_string(parameters, "jail", arg_jail);
        if (r == 0 && arg_time == USEC_INFINITY) {
                if (json_object_set_new(parameters, "permanent", json_true()) < 0)
                        r = (log_oom(), EXIT_REMOTE);
        } else if (r == 0 && arg_time > 0 && json_object_set_new(parameters, "durationUSec", json_integer((json_int_t) arg_time)) < 0)
                r = (log_oom(), EXIT_REMOTE);
        return r != 0 ? r : call_and_print("Ban", parameters, print_ban);
}

static int verb_unban(char **args) {
        json_auto_t *parameters = json_object(), *reply = NULL;
        int r;

        if (!parameters)
                return log_oom(), EXIT_REMOTE;
        r = set_address(parameters, args[0]);
        if (r == 0 && arg_jail)
                r = set_string(parameters, "jail", arg_jail);
        if (r == 0)
                r = call("Unban", parameters, &reply);
        if (r != 0)
                return r;
        if (arg_json)
                return print_reply(reply, NULL);
        printf("Unbanned %s%s%s.\n", json_string_value(json_object_get(parameters, "address")),
               arg_jail ? " in jail " : "", arg_jail ?: "");
        return EXIT_OK;
}

static void jails_free(Jail **jails, size_t n) {
        for (size_t i = 0; i < n; i++)
                jail_free(jails[i]);
        free(jails);
}

/* Judges message as the daemon would if it had just loaded the configuration files: the same
 * parser, the same jails, the same judgement (manager_test_message()). */
static int test_locally(const char *message, json_t *fields) {
        _cleanup_(config_errors_done) ConfigErrors errors = {};
        _cleanup_strv_free_ char **dirs = config_dropin_dirs_for(arg_config);
        const char *file = arg_config ?: CONFIG_MAIN_FILE;
        json_auto_t *reply = NULL;
        Config *c = NULL;
        Jail **jails = NULL;
        size_t n = 0;
        int r;

        if (!dirs)
                return log_oom(), EXIT_REMOTE;
        r = config_load(file, (const char * const *) dirs, &c, &errors);
        if (r < 0) {
                config_errors_print(&errors, stderr);
                if (errors.n_errors == 0)
                        log_error_errno(r, "Failed to load the configuration from %s: %m", file);
                log_error("The configuration in %s and its drop-ins is invalid; nothing was judged.", file);
                return EXIT_REMOTE;
        }
        jails = calloc(c->n_jails ?: 1, sizeof(Jail *));
        r = jails ? 0 : -ENOMEM;
        /* --jail= names a configured jail, enabled or not: it can be tried before it is turned on. */
        for (size_t i = 0; i < c->n_jails && r >= 0; i++)
                if (arg_jail ? streq(c->jails[i].name, arg_jail) : c->jails[i].enabled) {
                        r = jail_new(&c->jails[i], &jails[n]);
                        if (r >= 0)
                                n++;
                }
        if (r < 0)
                log_error_errno(r, "Failed to set up the jails: %m");
        else if (n == 0 && arg_jail)
                r = log_error_errno(ENOENT, "There is no jail %s in %s or its drop-ins; nothing was judged.",
                                    arg_jail, file);
        else if (n == 0)
                r = log_error_errno(ENOENT, "No jail is enabled in %s or its drop-ins; nothing was judged.", file);
        else {
                r = arg_jail ? manager_test_message_in_jail(jails[0], message, fields, &reply)
                             : manager_test_message(jails, n, message, fields, &reply);
                if (r < 0)
                        log_error_errno(r, "Failed to judge the message: %m");
        }
        jails_free(jails, n);
        config_free(c);
        if (r < 0)
                return EXIT_REMOTE;
        return print_reply(reply, print_test);
}

static int verb_test(char **args) {
        json_auto_t *fields = json_object(), *parameters = json_object();
        int r;

        if (!fields || !parameters)
                return log_oom(), EXIT_REMOTE;
        /* With --jail=, the jail's own identifier stands in for a missing one (see
         * manager_test_message_in_jail()). */
        r = arg_identifier || !arg_jail ? set_string(fields, "SYSLOG_IDENTIFIER", arg_identifier ?: DEFAULT_TEST_IDENTIFIER) : 0;
        if (r == 0)
                r = set_string(fields, "_UID", "0");
        STRV_FOREACH(f, arg_fields) {
                _cleanup_free_ char *name = strndup(*f, strcspn(*f, "="));
                const char *eq = strchr(*f, '=');

                if (r != 0)
                        break;
                if (!name)
                        return log_oom(), EXIT_REMOTE;
                if (eq)
                        r = set_string(fields, name, eq + 1);
                else
                        (void) json_object_del(fields, name);
        }
        if (r == 0)
                r = set_string(parameters, "message", args[0]);
        if (r == 0 && arg_jail)
                r = set_string(parameters, "jail", arg_jail);
        if (r == 0 && json_object_set(parameters, "fields", fields) < 0)
                r = (log_oom(), EXIT_REMOTE);
        if (r != 0)
                return r;
        /* Only root may ask the daemon (it would let anybody probe IgnoreAddress=); everybody
         * else gets the same judgement from the same code, on the files they can read. */
        if (arg_local || arg_config || geteuid() != 0)
                return test_locally(args[0], fields);
        return call_and_print("TestMessage", parameters, print_test);
}

static int verb_reload(char **args) {
        return call_and_print("Reload", NULL, print_reload);
}

static int verb_monitor(char **args) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        int r;

        r = start_call("Monitor", NULL, VARLINK_CALL_MORE, &c);
        if (r != 0)
                return r;
        for (;;) {
                json_auto_t *reply = NULL;
                _cleanup_free_ char *error = NULL;
                bool continues;

                r = varlink_client_receive(c, &reply, &error, &continues);
                if (r < 0)
                        return transport_error("Monitor", socket_path(), r);
                if (error)
                        return remote_error("Monitor", error, reply);
                r = print_reply(reply, print_event);
                if (r != 0)
                        return r;
                /* Line by line, so that "vpopguardctl monitor | grep ban" shows each event at once. */
                if (fflush(stdout) != 0)
                        return log_error_errno(errno, "Failed to write to standard output: %m"), EXIT_REMOTE;
                if (!continues)
                        return EXIT_OK;
        }
}

/* GetStatus() as OpenMetrics text; with --output= the file is replaced atomically (the textfile
 * collector of node_exporter may read it at any moment). */
static int verb_metrics(char **args) {
        json_auto_t *reply = NULL;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = call("GetStatus", NULL, &reply);
        if (r != 0)
                return r;
        f = open_memstream(&text, &size);
        if (!f)
                return log_oom(), EXIT_REMOTE;
        r = ctl_metrics_write(f, reply);
        if (fclose(f) != 0 || r < 0)
                return log_oom(), EXIT_REMOTE;
        if (!arg_output)
                return fwrite(text, 1, size, stdout) == size ? EXIT_OK : EXIT_REMOTE;
        r = ctl_metrics_write_file(arg_output, text, size);
        if (r < 0)
                return log_error_errno(r, "Failed to write the metrics to %s: %m", arg_output), EXIT_REMOTE;
        return EXIT_OK;
}

static const struct Verb {
        const char *name;
        unsigned min_args, max_args;
        unsigned options; /* OPT_* it takes */
        int (*run)(char **args);
} verbs[] = {
        { "status",   0, 0, 0,                         verb_status },
        { "bans",     0, 1, OPT_JAIL,                  verb_bans },
        { "failures", 0, 1, OPT_JAIL,                  verb_failures },
        { "ban",      1, 1, OPT_JAIL | OPT_TIME,       verb_ban },
        { "unban",    1, 1, OPT_JAIL,                  verb_unban },
        { "test",     1, 1, OPT_JAIL | OPT_IDENTIFIER | OPT_FIELD | OPT_CONFIG | OPT_LOCAL, verb_test },
        { "reload",   0, 0, 0,                         verb_reload },
        { "monitor",  0, 0, 0,                         verb_monitor },
        { "metrics",  0, 0, OPT_OUTPUT,                verb_metrics },
};

static int dispatch(int argc, char *argv[]) {
        const struct Verb *v = NULL;
        char *args[2] = {};
        unsigned n;

        if (optind >= argc)
                return usage_error("Missing command; see --help.");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        v = &verbs[i];
        if (!v)
                return usage_error("Unknown command \"%s\"; see --help.", argv[optind]);

        n = (unsigned) (argc - optind - 1);
        if (n < v->min_args)
                return usage_error("%s: missing argument; see --help.", v->name);
        if (n > v->max_args)
                return usage_error("%s: unexpected argument \"%s\"; see --help.", v->name, argv[optind + 1 + v->max_args]);
        for (size_t i = 0; i < ELEMENTSOF(option_names); i++)
                if ((arg_options & ~v->options) & (1U << i))
                        return usage_error("%s: option %s does not apply; see --help.", v->name, option_names[i]);

        for (unsigned i = 0; i < n; i++)
                args[i] = argv[optind + 1 + i];
        return v->run(args);
}

int main(int argc, char *argv[]) {
        int r;

        log_open();
        r = parse_argv(argc, argv);
        if (r > 0)
                r = dispatch(argc, argv);
        else
                r = -r;

        strv_free(arg_fields);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error("Failed to write to standard output.");
                return r == EXIT_OK ? EXIT_REMOTE : r;
        }
        return r;
}
