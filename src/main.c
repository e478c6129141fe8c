/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "manager-varlink.h"
#include "manager.h"

#define DEFAULT_STATE_DIRECTORY "/var/lib/vpopguard"

static const char *arg_config_file = NULL;
static const char *arg_journal_directory = NULL;
static const char *arg_state_directory = NULL;
static const char *arg_socket = NULL;
static bool arg_dry_run = false;
static bool arg_follow = true;
static bool arg_test_config = false;

static void help(void) {
        printf("vpopguardd [OPTIONS...]\n\n"
               "Follows the journal, counts failed logins per address and bans attackers in nftables.\n\n"
               "  -h --help                   Show this help\n"
               "     --version                Show the version\n"
               "     --config=FILE            Read FILE and FILE.d/*.conf instead of\n"
               "                              " CONFIG_MAIN_FILE " and its drop-in directories\n"
               "     --test-config            Print the effective configuration and every error, then exit\n"
               "     --journal-directory=DIR  Read journal files in DIR instead of the system journal\n"
               "     --state-directory=DIR    Keep the state in DIR (default: $STATE_DIRECTORY or\n"
               "                              " DEFAULT_STATE_DIRECTORY ")\n"
               "     --socket=PATH            Serve the varlink interface on PATH when not socket-activated\n"
               "                              (default: " MANAGER_VARLINK_SOCKET "; empty: none)\n"
               "     --no-follow              Process the journal to its end, then exit\n"
               "     --dry-run                Decide and log bans, but never touch nftables or the state\n"
               "     --log-level=LEVEL        debug, info (default), notice, warning or err\n");
}

static int parse_log_level(const char *s) {
        static const struct { const char *name; int level; } table[] = {
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "err", LOG_ERR }, { "error", LOG_ERR },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(s, table[i].name))
                        return table[i].level;
        return -EINVAL;
}

/* Returns 1 to go on, 0 to exit successfully, negative errno on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_CONFIG,
                ARG_TEST_CONFIG,
                ARG_JOURNAL_DIRECTORY,
                ARG_STATE_DIRECTORY,
                ARG_NO_FOLLOW,
                ARG_DRY_RUN,
                ARG_LOG_LEVEL,
                ARG_SOCKET,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "test-config", no_argument, NULL, ARG_TEST_CONFIG },
                { "journal-directory", required_argument, NULL, ARG_JOURNAL_DIRECTORY },
                { "state-directory", required_argument, NULL, ARG_STATE_DIRECTORY },
                { "no-follow", no_argument, NULL, ARG_NO_FOLLOW },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "socket", required_argument, NULL, ARG_SOCKET },
                {}
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("vpopguardd " VPOPGUARD_VERSION);
                        return 0;
                case ARG_CONFIG:
                        arg_config_file = optarg;
                        break;
                case ARG_TEST_CONFIG:
                        arg_test_config = true;
                        break;
                case ARG_JOURNAL_DIRECTORY:
                        arg_journal_directory = optarg;
                        break;
                case ARG_STATE_DIRECTORY:
                        arg_state_directory = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_NO_FOLLOW:
                        arg_follow = false;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        break;
                case ARG_LOG_LEVEL:
                        level = parse_log_level(optarg);
                        if (level < 0)
                                return log_error_errno(EINVAL, "Invalid --log-level=%s: expected debug, info, notice, warning or err.", optarg);
                        log_set_max_level(level);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument \"%s\"; see --help.", argv[optind]);

        if (!arg_state_directory) {
                /* systemd passes StateDirectory= as a colon-separated list: ours is the first. */
                static char dir[4096];
                const char *e = getenv("STATE_DIRECTORY");
                if (e && *e) {
                        snprintf(dir, sizeof dir, "%.*s", (int) strcspn(e, ":"), e);
                        arg_state_directory = dir;
                } else
                        arg_state_directory = DEFAULT_STATE_DIRECTORY;
        }
        return 1;
}

static int test_config(void) {
        _cleanup_(config_errors_done) ConfigErrors errors = {};
        _cleanup_strv_free_ char **dirs = NULL;
        const char *file = arg_config_file ?: CONFIG_MAIN_FILE;
        Config *c = NULL;
        int r;

        dirs = config_dropin_dirs_for(arg_config_file);
        if (!dirs)
                return log_oom();

        r = config_load(file, (const char * const *) dirs, &c, &errors);
        if (r < 0) {
                config_errors_print(&errors, stderr);
                fprintf(stderr, "%zu error%s: the configuration is invalid.\n", errors.n_errors,
                        errors.n_errors == 1 ? "" : "s");
                return r;
        }
        config_dump(c, stdout);
        bool any_enabled = false;
        for (size_t i = 0; i < c->n_jails; i++)
                any_enabled = any_enabled || c->jails[i].enabled;
        config_free(c);
        if (!any_enabled) {
                fprintf(stderr, "No jail is enabled: vpopguardd would refuse to run.\n");
                return -EINVAL;
        }
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        /* From the first instruction on, SIGTERM/SIGINT/SIGHUP wait for the event loop (which
         * saves the state before exiting) instead of killing a daemon that is starting up. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        log_open();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (arg_test_config)
                return test_config();

        ManagerOptions options = {
                .config_file = arg_config_file,
                .journal_directory = arg_journal_directory,
                .state_directory = arg_state_directory,
                .socket_path = arg_socket,
                .dry_run = arg_dry_run,
                .follow = arg_follow,
        };
        r = manager_new(&options, &m);
        if (r < 0)
                return r;
        r = manager_load_config(m);
        if (r < 0)
                return r;
        r = manager_load_state(m);
        if (r < 0)
                return r;
        (void) manager_load_logged_bans(m);
        /* Before the firewall: a ban of the host's own address is lifted at once. */
        r = manager_watch_local_addresses(m);
        if (r < 0)
                return r;
        r = manager_setup_firewall(m);
        if (r < 0)
                return r;
        r = manager_open_journal(m);
        if (r < 0)
                return r;
        r = manager_start_fleet(m);
        if (r < 0)
                return r;
        r = manager_setup_varlink(m);
        if (r < 0)
                return r;
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        if (r < 0)
                (void) sd_notifyf(false, "STATUS=Failed: %s\nERRNO=%d", strerror(-r), -r);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
