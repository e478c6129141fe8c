/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>

#include "config-internal.h"
#include "log.h"
#include "macro.h"

/* Text from a configuration file may hold anything: errors keep it escaped (log_escape()) and
 * short, a message four times as long as the fields, since it may quote one. */
#define ESCAPED_FIELD_MAX LOG_ESCAPE_MAX
#define ESCAPED_MESSAGE_MAX (4 * LOG_ESCAPE_MAX)

/* NULL for NULL, or on OOM. */
static char *escape(const char *s, size_t size) {
        char buf[ESCAPED_MESSAGE_MAX];

        return s ? strdup(log_escape(s, strlen(s), buf, MIN(size, sizeof buf))) : NULL;
}

static void config_error_done(ConfigError *e) {
        free(e->file);
        free(e->section);
        free(e->key);
        free(e->value);
        free(e->message);
}

int config_errors_add(ConfigErrors *e, const char *file, unsigned line, const char *section,
                      const char *key, const char *value, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        ConfigError n = { .line = line };
        ConfigError *grown;
        va_list ap;
        int r;

        /* A file of a million bad lines must not cost a million messages. */
        if (e->n_errors >= CONFIG_ERRORS_MAX) {
                e->n_dropped++;
                return 0;
        }
        if (e->n_errors == CONFIG_ERRORS_MAX - 1) {
                e->n_dropped++;
                file = section = key = value = NULL;
                line = 0;
                format = "too many errors, not listing more";
        }

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        /* Messages may quote other modules' text (regex_new()), so they are escaped too. */
        n.message = escape(message, ESCAPED_MESSAGE_MAX);
        n.file = escape(file, ESCAPED_FIELD_MAX);
        n.section = escape(section, ESCAPED_FIELD_MAX);
        n.key = escape(key, ESCAPED_FIELD_MAX);
        n.value = escape(value, ESCAPED_FIELD_MAX);
        if (!n.message || (file && !n.file) || (section && !n.section) || (key && !n.key) || (value && !n.value))
                goto oom;

        grown = realloc(e->errors, sizeof(ConfigError) * (e->n_errors + 1));
        if (!grown)
                goto oom;
        e->errors = grown;
        e->errors[e->n_errors++] = n;
        return 0;

oom:
        config_error_done(&n);
        return -ENOMEM;
}

void config_errors_done(ConfigErrors *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_errors; i++)
                config_error_done(&e->errors[i]);
        free(e->errors);
        e->errors = NULL;
        e->n_errors = 0;
        e->n_dropped = 0;
}

char *config_error_to_string(const ConfigError *x) {
        char *s = NULL;
        size_t n = 0;
        FILE *f;

        f = open_memstream(&s, &n);
        if (!f)
                return NULL;
        if (x->file && x->line > 0)
                fprintf(f, "%s:%u: ", x->file, x->line);
        else if (x->file)
                fprintf(f, "%s: ", x->file);
        if (x->section)
                fprintf(f, "[%s]", x->section);
        if (x->key)
                fprintf(f, "%s%s%s%s", x->section ? " " : "", x->key, x->value ? "=" : "", x->value ?: "");
        if (x->section || x->key)
                fputs(": ", f);
        fputs(x->message, f);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

void config_errors_print(const ConfigErrors *e, FILE *f) {
        for (size_t i = 0; e && i < e->n_errors; i++) {
                _cleanup_free_ char *s = config_error_to_string(&e->errors[i]);

                fprintf(f, "%s\n", s ?: e->errors[i].message);
        }
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->firewall.family);
        free(c->firewall.table);
        free(c->firewall.set4);
        free(c->firewall.set6);
        free(c->fleet.directory);
        strv_free(c->fleet.peers);
        for (size_t i = 0; i < c->n_jails; i++)
                jail_config_done(&c->jails[i]);
        free(c->jails);
        strv_free(c->files);
        free(c);
        return NULL;
}

int config_builder_init(ConfigBuilder *b, ConfigErrors *errors) {
        Config *c;

        *b = (ConfigBuilder) {
                .errors = errors,
                .n_errors_start = errors->n_errors,
                .n_dropped_start = errors->n_dropped,
                .defaults = {
                        .enabled = true,
                        .max_retry = DEFAULT_MAX_RETRY,
                        .find_time = DEFAULT_FIND_TIME,
                        .ban_time = DEFAULT_BAN_TIME,
                        .ban_time_factor = DEFAULT_BAN_TIME_FACTOR,
                        .ban_time_max = DEFAULT_BAN_TIME_MAX,
                        .ban_history = DEFAULT_BAN_HISTORY,
                        .ipv4_prefix = DEFAULT_IPV4_PREFIX,
                        .ipv6_prefix = DEFAULT_IPV6_PREFIX,
                        .max_tracked = DEFAULT_MAX_TRACKED,
                        .host_format = HOST_FORMAT_STANDARD,
                },
        };

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        b->config = c;
        c->firewall = (FirewallConfig) {
                .family = strdup(DEFAULT_FAMILY),
                .table = strdup(DEFAULT_TABLE),
                .set4 = strdup(DEFAULT_SET4),
                .set6 = strdup(DEFAULT_SET6),
                .create_table = true,
        };
        c->fleet.directory = strdup(DEFAULT_FLEET_DIRECTORY);
        c->files = calloc(1, sizeof(char *));
        if (!c->firewall.family || !c->firewall.table || !c->firewall.set4 || !c->firewall.set6 || !c->files ||
            !c->fleet.directory)
                return -ENOMEM;
        return 0;
}

void config_builder_done(ConfigBuilder *b) {
        b->config = config_free(b->config);
        free(b->jail_set);
        b->jail_set = NULL;
        jail_config_done(&b->defaults);
}

static int jail_error(ConfigBuilder *b, const JailConfig *j, const char *message) {
        return config_errors_add(b->errors, j->source_file, j->source_line, "Jail", "Name", j->name, "%s", message);
}

/* The jail's own addresses follow [Defaults]' ones. */
static int jail_inherit_addresses(ConfigBuilder *b, JailConfig *j) {
        const JailConfig *d = &b->defaults;
        size_t n = d->n_ignore_addresses + j->n_ignore_addresses;
        AddressPrefix *all;

        if (d->n_ignore_addresses == 0)
                return 0;
        if (n > CONFIG_LIST_MAX)
                return config_errors_add(b->errors, j->source_file, j->source_line, "Jail", "Name", j->name,
                                         "too many IgnoreAddress= entries with those of [Defaults] (at most %u)",
                                         CONFIG_LIST_MAX);
        all = malloc(sizeof(AddressPrefix) * n);
        if (!all)
                return -ENOMEM;
        memcpy(all, d->ignore_addresses, sizeof(AddressPrefix) * d->n_ignore_addresses);
        if (j->n_ignore_addresses > 0)
                memcpy(all + d->n_ignore_addresses, j->ignore_addresses, sizeof(AddressPrefix) * j->n_ignore_addresses);
        free(j->ignore_addresses);
        j->ignore_addresses = all;
        j->n_ignore_addresses = n;
        return 0;
}

/* TrustedUser= names become UIDs now, once: the account database is not read again per entry,
 * and a name with no account is kept aside to be reported (it trusts nobody). */
static int resolve_trusted_users(JailConfig *j) {
        size_t n = strv_length(j->trusted_users);

        free(j->trusted_user_uids);
        j->trusted_user_uids = NULL;
        j->n_trusted_user_uids = 0;
        j->trusted_users_missing = strv_free(j->trusted_users_missing);
        if (n == 0)
                return 0;
        j->trusted_user_uids = calloc(n, sizeof(uid_t));
        if (!j->trusted_user_uids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct passwd pw, *found = NULL;
                char buf[4096];

                if (getpwnam_r(j->trusted_users[i], &pw, buf, sizeof buf, &found) == 0 && found)
                        j->trusted_user_uids[j->n_trusted_user_uids++] = found->pw_uid;
                else if (strv_extend(&j->trusted_users_missing, j->trusted_users[i]) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int jail_inherit(ConfigBuilder *b, JailConfig *j, unsigned set) {
        const JailConfig *d = &b->defaults;
        int r;

        /* Unset scalars come from [Defaults], wherever in the files it was. */
        if (!(set & JAIL_SET_ENABLED))
                j->enabled = true;
        if (!(set & JAIL_SET_MAX_RETRY))
                j->max_retry = d->max_retry;
        if (!(set & JAIL_SET_FIND_TIME))
                j->find_time = d->find_time;
        if (!(set & JAIL_SET_BAN_TIME))
                j->ban_time = d->ban_time;
        if (!(set & JAIL_SET_BAN_FACTOR))
                j->ban_time_factor = d->ban_time_factor;
        if (!(set & JAIL_SET_BAN_MAX))
                j->ban_time_max = d->ban_time_max;
        if (!(set & JAIL_SET_BAN_HISTORY))
                j->ban_history = d->ban_history;
        if (!(set & JAIL_SET_IPV4_PREFIX))
                j->ipv4_prefix = d->ipv4_prefix;
        if (!(set & JAIL_SET_IPV6_PREFIX))
                j->ipv6_prefix = d->ipv6_prefix;
        if (!(set & JAIL_SET_MAX_TRACKED))
                j->max_tracked = d->max_tracked;
        if (!(set & JAIL_SET_HOST_FORMAT))
                j->host_format = d->host_format;

        if (j->n_trusted_uids == 0 && d->n_trusted_uids > 0) {
                j->trusted_uids = malloc(sizeof(UIDRange) * d->n_trusted_uids);
                if (!j->trusted_uids)
                        return -ENOMEM;
                memcpy(j->trusted_uids, d->trusted_uids, sizeof(UIDRange) * d->n_trusted_uids);
                j->n_trusted_uids = d->n_trusted_uids;
        }

        if (strv_length(j->trusted_users) == 0 && strv_length(d->trusted_users) > 0) {
                j->trusted_users = strv_copy(d->trusted_users);
                if (!j->trusted_users)
                        return -ENOMEM;
        }
        r = resolve_trusted_users(j);
        if (r < 0)
                return r;

        r = jail_inherit_addresses(b, j);
        if (r < 0)
                return r;

        /* An enabled jail must say what it reads and what counts: never the whole journal. */
        if (j->enabled && strv_length(j->journal_matches) == 0) {
                r = jail_error(b, j, "enabled jail needs at least one JournalMatch=");
                if (r < 0)
                        return r;
        }
        if (j->enabled && strv_length(j->fail_regex) == 0) {
                r = jail_error(b, j, "enabled jail needs at least one FailRegex=");
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_builder_finish(ConfigBuilder *b, Config **ret) {
        Config *c = b->config;
        int r;

        for (size_t i = 0; i < c->n_jails; i++) {
                r = jail_inherit(b, &c->jails[i], b->jail_set[i]);
                if (r < 0)
                        return r;
        }

        /* Both sets live in one table, with different types. */
        if (streq(c->firewall.set4, c->firewall.set6)) {
                r = config_errors_add(b->errors, b->set_file, b->set_line, "Firewall", "IPv6Set", c->firewall.set6,
                                      "IPv4Set= and IPv6Set= must differ");
                if (r < 0)
                        return r;
        }

        if (b->errors->n_errors > b->n_errors_start || b->errors->n_dropped > b->n_dropped_start)
                return -EINVAL;
        *ret = TAKE_PTR(b->config);
        return 0;
}

static void dump_list(FILE *f, const char *key, char * const *l) {
        STRV_FOREACH(s, l)
                fprintf(f, "%s=%s\n", key, *s);
}

/* Each name with what it resolved to when loaded, so an admin sees whom the jail trusts. */
static void dump_trusted_users(FILE *f, const JailConfig *j) {
        size_t resolved = 0;

        for (size_t k = 0; j->trusted_users && j->trusted_users[k]; k++) {
                bool missing = false;
                for (size_t m = 0; j->trusted_users_missing && j->trusted_users_missing[m] && !missing; m++)
                        missing = streq(j->trusted_users_missing[m], j->trusted_users[k]);
                if (missing)
                        fprintf(f, "TrustedUser=%s\n# %s: no such account, skipped\n", j->trusted_users[k],
                                j->trusted_users[k]);
                else
                        fprintf(f, "TrustedUser=%s\n# %s: UID %lu\n", j->trusted_users[k], j->trusted_users[k],
                                (unsigned long) j->trusted_user_uids[resolved++]);
        }
}

void config_dump(const Config *c, FILE *f) {
        fprintf(f,
                "[Firewall]\n"
                "Family=%s\n"
                "Table=%s\n"
                "IPv4Set=%s\n"
                "IPv6Set=%s\n"
                "CreateTable=%s\n",
                c->firewall.family, c->firewall.table, c->firewall.set4, c->firewall.set6,
                c->firewall.create_table ? "yes" : "no");
        /* Only when used: the dumps of configurations without a fleet stay as they were. */
        if (c->fleet.peers) {
                fprintf(f, "\n[Fleet]\nDirectory=%s\n", c->fleet.directory);
                dump_list(f, "Peer", c->fleet.peers);
                fprintf(f, "Relay=%s\nCountFailures=%s\n", c->fleet.relay ? "yes" : "no", c->fleet.count ? "yes" : "no");
        }

        for (size_t i = 0; i < c->n_jails; i++) {
                const JailConfig *j = &c->jails[i];
                char a[TIMESPAN_MAX], b[TIMESPAN_MAX];

                fprintf(f, "\n[Jail]\nName=%s\nEnabled=%s\n", j->name, j->enabled ? "yes" : "no");
                dump_list(f, "JournalMatch", j->journal_matches);
                dump_list(f, "FailRegex", j->fail_regex);
                dump_list(f, "IgnoreRegex", j->ignore_regex);
                fprintf(f, "HostFormat=%s\n", host_format_to_string(j->host_format));
                fprintf(f, "MaxRetry=%u\nFindTime=%s\nBanTime=%s\n", j->max_retry,
                        format_timespan(a, sizeof a, j->find_time), format_timespan(b, sizeof b, j->ban_time));
                fprintf(f, "BanTimeFactor=%g\nBanTimeMax=%s\nBanHistory=%s\n", j->ban_time_factor,
                        format_timespan(a, sizeof a, j->ban_time_max), format_timespan(b, sizeof b, j->ban_history));
                fprintf(f, "IPv4Prefix=%u\nIPv6Prefix=%u\n", j->ipv4_prefix, j->ipv6_prefix);
                for (size_t k = 0; k < j->n_ignore_addresses; k++) {
                        char buf[ADDRESS_STRING_MAX + 4];
                        fprintf(f, "IgnoreAddress=%s\n", address_prefix_to_string(&j->ignore_addresses[k], buf));
                }
                for (size_t k = 0; k < j->n_trusted_uids; k++) {
                        const UIDRange *u = &j->trusted_uids[k];
                        if (u->first == u->last)
                                fprintf(f, "TrustedUID=%lu\n", (unsigned long) u->first);
                        else
                                fprintf(f, "TrustedUID=%lu-%lu\n", (unsigned long) u->first, (unsigned long) u->last);
                }
                dump_trusted_users(f, j);
                fprintf(f, "MaxTrackedAddresses=%u\n", j->max_tracked);
        }
}

const JailConfig *config_find_jail(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_jails; i++)
                if (streq(c->jails[i].name, name))
                        return &c->jails[i];
        return NULL;
}
