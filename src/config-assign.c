/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "config-internal.h"
#include "failregex.h"
#include "macro.h"

static bool char_is_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool char_is_digit(char c) {
        return c >= '0' && c <= '9';
}

bool nft_name_is_valid(const char *s) {
        size_t n = 0;

        if (!s || !(char_is_alpha(s[0]) || s[0] == '_'))
                return false;
        for (; s[n]; n++)
                if (!char_is_alpha(s[n]) && !char_is_digit(s[n]) && s[n] != '_')
                        return false;
        return n <= 64;
}

bool jail_name_is_valid(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        /* Reads at most 65 bytes: a full char[JAIL_NAME_MAX + 1] need not be terminated. */
        for (; s[n]; n++)
                if (n >= 64 || (!char_is_alpha(s[n]) && !char_is_digit(s[n]) && !strchr("_.-", s[n])))
                        return false;
        return n >= 1;
}

bool journal_match_is_valid(const char *s) {
        const char *eq;

        if (!s || !(eq = strchr(s, '=')))
                return false;
        if (eq == s || eq - s > 64 || char_is_digit(s[0]))
                return false;
        for (const char *p = s; p < eq; p++)
                if (!(*p >= 'A' && *p <= 'Z') && !char_is_digit(*p) && *p != '_')
                        return false;
        return true;
}

static int invalid(const ConfigAssignment *a, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int invalid(const ConfigAssignment *a, const char *format, ...) {
        char message[256];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof message, format, ap);
        va_end(ap);
        return config_errors_add(a->builder->errors, a->file, a->line, a->section, a->key, a->value, "%s", message);
}

static int parse_bool(const char *v) {
        static const char * const yes[] = { "yes", "true", "1", "on" }, * const no[] = { "no", "false", "0", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (streq(v, yes[i]))
                        return 1;
                if (streq(v, no[i]))
                        return 0;
        }
        return -EINVAL;
}

/* Plain decimal digits only: no sign, no spaces, no "0x". */
static int parse_u32(const char *v, size_t len, uint32_t *ret) {
        uint64_t n = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -EINVAL;
                n = n * 10 + (uint64_t) (v[i] - '0');
        }
        if (n > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) n;
        return 0;
}

static int assign_uint(const ConfigAssignment *a, unsigned min, unsigned max, unsigned *ret) {
        uint32_t n;

        if (parse_u32(a->value, strlen(a->value), &n) < 0 || n < min || n > max)
                return invalid(a, "expected a number from %u to %u", min, max);
        *ret = n;
        return 1;
}

static int assign_span(const ConfigAssignment *a, usec_t *ret) {
        usec_t u;
        int r;

        r = parse_timespan(a->value, &u);
        if (r == -EINVAL)
                return invalid(a, "expected a time span such as \"10min\"");
        if (r < 0 || u < USEC_PER_SEC || u > 365 * USEC_PER_DAY)
                return invalid(a, "expected a time span from 1s to 365d");
        *ret = u;
        return 1;
}

/* BanTime=: a span, or "infinity" for bans that only Unban() lifts. */
static int assign_ban_span(const ConfigAssignment *a, usec_t *ret) {
        if (streq(a->value, "infinity")) {
                *ret = USEC_INFINITY;
                return 1;
        }
        return assign_span(a, ret);
}

/* BanTimeFactor=: a plain decimal such as "2" or "1.5", from 1 to BAN_TIME_FACTOR_MAX. */
static int assign_factor(const ConfigAssignment *a, double *ret) {
        const char *v = a->value;
        size_t digits = strspn(v, "0123456789");
        char *end;
        double d;

        if (digits == 0 || digits > 3 || (v[digits] == '.' && (strspn(v + digits + 1, "0123456789") == 0 ||
                                                               strspn(v + digits + 1, "0123456789") > 3)))
                return invalid(a, "expected a number from 1 to %g such as \"2\" or \"1.5\"", BAN_TIME_FACTOR_MAX);
        d = strtod(v, &end);
        if (*end != 0 || !(d >= 1.0 && d <= BAN_TIME_FACTOR_MAX))
                return invalid(a, "expected a number from 1 to %g such as \"2\" or \"1.5\"", BAN_TIME_FACTOR_MAX);
        *ret = d;
        return 1;
}

/* "N" or "N-M". (uid_t) -1 means "no UID" to the kernel and is never in a range. */
static int parse_uid_range(const char *v, UIDRange *ret) {
        const char *dash = strchr(v, '-');
        size_t len = strlen(v);
        uint32_t a, b;

        if (parse_u32(v, dash ? (size_t) (dash - v) : len, &a) < 0)
                return -EINVAL;
        if (!dash)
                b = a;
        else if (parse_u32(dash + 1, len - (size_t) (dash + 1 - v), &b) < 0)
                return -EINVAL;
        if (a > b || b == (uint32_t) (uid_t) -1)
                return -EINVAL;
        *ret = (UIDRange) { .first = a, .last = b };
        return 0;
}

static int array_append(void *array, size_t *n, size_t size, const void *item) {
        void **a = array;
        uint8_t *grown;

        grown = realloc(*a, size * (*n + 1));
        if (!grown)
                return -ENOMEM;
        memcpy(grown + size * *n, item, size);
        *a = grown;
        (*n)++;
        return 0;
}

static int list_is_full(const ConfigAssignment *a, size_t n) {
        if (n < CONFIG_LIST_MAX)
                return 0;
        return invalid(a, "too many entries (at most %u)", CONFIG_LIST_MAX) ?: 1;
}

static int parse_prefix_word(const char *word, void *ret) {
        return address_prefix_parse(word, ret);
}

static int parse_uid_word(const char *word, void *ret) {
        return parse_uid_range(word, ret);
}

/* An account name as useradd(8) accepts it by default: no ':' or space can sneak into a message. */
static bool user_name_is_valid(const char *n, size_t len) {
        static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
        return len > 0 && len <= 32 && n[0] != '-' && strspn(n, chars) >= len;
}

/* TrustedUser=: account names separated by spaces, resolved when the configuration is complete;
 * an empty value clears the list. */
static int assign_user_names(const ConfigAssignment *a, char ***l) {
        int r;

        if (!*a->value) {
                *l = strv_free(*l);
                return 0;
        }
        for (const char *w = a->value; *(w += strspn(w, " \t")); w += strcspn(w, " \t")) {
                size_t len = strcspn(w, " \t");
                _cleanup_free_ char *name = NULL;

                if (!user_name_is_valid(w, len))
                        return invalid(a, "expected account names such as \"root vpopmail qmaild\"");
                r = list_is_full(a, strv_length(*l));
                if (r != 0)
                        return MIN(r, 0);
                name = strndup(w, len);
                if (!name)
                        return -ENOMEM;
                r = strv_extend(l, name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* IgnoreAddress= and TrustedUID=: words separated by spaces, each parsed into an entry of size
 * bytes and appended to *array; an empty value clears the list. */
static int assign_words(const ConfigAssignment *a, void *array, size_t *n, size_t size,
                        int (*parse)(const char *word, void *ret), const char *expected) {
        union {
                AddressPrefix prefix;
                UIDRange uids;
        } entry;
        int r;

        assert(size <= sizeof entry);
        if (!*a->value) {
                void **p = array;

                free(*p);
                *p = NULL;
                *n = 0;
                return 0;
        }
        for (const char *w = a->value; *(w += strspn(w, " \t")); w += strcspn(w, " \t")) {
                char word[64];
                size_t len = strcspn(w, " \t");

                if (len >= sizeof word || (snprintf(word, sizeof word, "%.*s", (int) len, w), parse(word, &entry) < 0))
                        return invalid(a, "%s", expected);
                r = list_is_full(a, *n);
                if (r == 0)
                        r = array_append(array, n, size, &entry);
                if (r != 0)
                        return MIN(r, 0);
        }
        return 0;
}

static int replace_string(char **s, const char *v) {
        char *copy = strdup(v);

        if (!copy)
                return -ENOMEM;
        free(*s);
        *s = copy;
        return 0;
}

int config_assign_firewall(const ConfigAssignment *a) {
        FirewallConfig *fw = &a->builder->config->firewall;
        const char *v = a->value, *k = a->key;
        int r;

        if (streq(k, "Family")) {
                v = *v ? v : DEFAULT_FAMILY;
                if (!streq(v, "inet") && !streq(v, "ip") && !streq(v, "ip6"))
                        return invalid(a, "expected \"inet\", \"ip\" or \"ip6\"");
                return replace_string(&fw->family, v);
        }
        if (streq(k, "Table") || streq(k, "IPv4Set") || streq(k, "IPv6Set")) {
                char **field = streq(k, "Table") ? &fw->table : streq(k, "IPv4Set") ? &fw->set4 : &fw->set6;

                v = *v ? v : streq(k, "Table") ? DEFAULT_TABLE : streq(k, "IPv4Set") ? DEFAULT_SET4 : DEFAULT_SET6;
                /* These names become nft command text. */
                if (!nft_name_is_valid(v))
                        return invalid(a, "expected a name of letters, digits and '_', not starting with a digit, at most 64 characters");
                if (field != &fw->table) {
                        a->builder->set_file = a->file;
                        a->builder->set_line = a->line;
                }
                return replace_string(field, v);
        }
        if (streq(k, "CreateTable")) {
                r = *v ? parse_bool(v) : 1;
                if (r < 0)
                        return invalid(a, "expected a boolean (yes or no)");
                fw->create_table = r;
                return 0;
        }
        return invalid(a, "unknown key");
}

bool fleet_peer_name_is_valid(const char *s) {
        size_t n = 0;

        if (!s || s[0] == '.')
                return false;
        for (; s[n]; n++)
                if (n >= FLEET_PEER_NAME_MAX || (!char_is_alpha(s[n]) && !char_is_digit(s[n]) && !strchr("_.:-", s[n])))
                        return false;
        return n >= 1;
}

int config_assign_fleet(const ConfigAssignment *a) {
        FleetConfig *fl = &a->builder->config->fleet;
        const char *v = a->value, *k = a->key;
        int r;

        if (streq(k, "Directory")) {
                v = *v ? v : DEFAULT_FLEET_DIRECTORY;
                if (v[0] != '/' || strlen(v) > 4096 || strpbrk(v, "*?[\\"))
                        return invalid(a, "expected an absolute path without glob characters");
                return replace_string(&fl->directory, v);
        }
        if (streq(k, "Peer")) {
                /* Names separated by spaces; an empty value clears the list. */
                if (!*v) {
                        fl->peers = strv_free(fl->peers);
                        return 0;
                }
                for (const char *w = v; *(w += strspn(w, " \t")); w += strcspn(w, " \t")) {
                        _cleanup_free_ char *name = strndup(w, strcspn(w, " \t"));

                        if (!name)
                                return -ENOMEM;
                        if (!fleet_peer_name_is_valid(name))
                                return invalid(a, "expected sender names as journal-remote writes them into file "
                                                  "names: letters, digits, '_', '.', ':' and '-'");
                        r = list_is_full(a, strv_length(fl->peers));
                        if (r != 0)
                                return MIN(r, 0);
                        r = strv_extend(&fl->peers, name);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (streq(k, "Relay") || streq(k, "CountFailures")) {
                r = *v ? parse_bool(v) : 0;
                if (r < 0)
                        return invalid(a, "expected a boolean (yes or no)");
                *(streq(k, "Relay") ? &fl->relay : &fl->count) = r;
                return 0;
        }
        return invalid(a, "unknown key");
}

static int assign_regex(const ConfigAssignment *a, char ***l, RegexKind kind) {
        _cleanup_free_ char *message = NULL;
        Regex *re = NULL;
        int r;

        r = list_is_full(a, strv_length(*l));
        if (r != 0)
                return r < 0 ? r : 0;
        /* The jail's HostFormat= may come later: it changes what <HOST> accepts, never whether
         * the pattern compiles. */
        r = regex_new(a->value, kind, HOST_FORMAT_STANDARD, &re, &message);
        if (r == -ENOMEM)
                return r;
        regex_free(re);
        if (r < 0)
                return message ? invalid(a, "invalid regular expression: %s", message)
                               : invalid(a, "invalid regular expression");
        return strv_extend(l, a->value);
}

/* For [Defaults] an empty assignment restores the built-in default; for a jail it makes the
 * scalar inherit from [Defaults]. */
int config_assign_jail(const ConfigAssignment *a, JailConfig *j, unsigned *set) {
        const char *k = a->key, *v = a->value;
        bool defaults = !set, empty = !*v;
        unsigned dummy = 0, flag = 0;
        int r = 1;

        if (defaults)
                set = &dummy;

        if (!defaults && streq(k, "Enabled")) {
                flag = JAIL_SET_ENABLED;
                r = empty ? 1 : parse_bool(v);
                if (r < 0)
                        return invalid(a, "expected a boolean (yes or no)");
                j->enabled = r;
                r = 1;
        } else if (streq(k, "MaxRetry")) {
                flag = JAIL_SET_MAX_RETRY;
                if (empty)
                        j->max_retry = DEFAULT_MAX_RETRY;
                else
                        r = assign_uint(a, 1, 100, &j->max_retry);
        } else if (streq(k, "MaxTrackedAddresses")) {
                flag = JAIL_SET_MAX_TRACKED;
                if (empty)
                        j->max_tracked = DEFAULT_MAX_TRACKED;
                else
                        r = assign_uint(a, 1, 10000000, &j->max_tracked);
        } else if (streq(k, "HostFormat")) {
                HostFormat f = empty ? HOST_FORMAT_STANDARD : host_format_from_string(v);

                flag = JAIL_SET_HOST_FORMAT;
                if (f < 0)
                        return invalid(a, "expected \"standard\" or \"vpopmail\"");
                j->host_format = f;
        } else if (streq(k, "FindTime")) {
                flag = JAIL_SET_FIND_TIME;
                if (empty)
                        j->find_time = DEFAULT_FIND_TIME;
                else
                        r = assign_span(a, &j->find_time);
        } else if (streq(k, "BanTime")) {
                flag = JAIL_SET_BAN_TIME;
                if (empty)
                        j->ban_time = DEFAULT_BAN_TIME;
                else
                        r = assign_ban_span(a, &j->ban_time);
        } else if (streq(k, "BanTimeFactor")) {
                flag = JAIL_SET_BAN_FACTOR;
                if (empty)
                        j->ban_time_factor = DEFAULT_BAN_TIME_FACTOR;
                else
                        r = assign_factor(a, &j->ban_time_factor);
        } else if (streq(k, "BanTimeMax")) {
                flag = JAIL_SET_BAN_MAX;
                if (empty)
                        j->ban_time_max = DEFAULT_BAN_TIME_MAX;
                else
                        r = assign_ban_span(a, &j->ban_time_max);
        } else if (streq(k, "BanHistory")) {
                flag = JAIL_SET_BAN_HISTORY;
                if (empty)
                        j->ban_history = DEFAULT_BAN_HISTORY;
                else
                        r = assign_span(a, &j->ban_history);
        } else if (streq(k, "IPv4Prefix") || streq(k, "IPv6Prefix")) {
                bool v4 = streq(k, "IPv4Prefix");
                unsigned *field = v4 ? &j->ipv4_prefix : &j->ipv6_prefix;

                flag = v4 ? JAIL_SET_IPV4_PREFIX : JAIL_SET_IPV6_PREFIX;
                if (empty)
                        *field = v4 ? DEFAULT_IPV4_PREFIX : DEFAULT_IPV6_PREFIX;
                else
                        r = assign_uint(a, v4 ? IPV4_PREFIX_MIN : IPV6_PREFIX_MIN, v4 ? 32 : 128, field);
        } else if (!defaults && (streq(k, "JournalMatch") || streq(k, "FailRegex") || streq(k, "IgnoreRegex"))) {
                char ***l = streq(k, "JournalMatch") ? &j->journal_matches :
                            streq(k, "FailRegex") ? &j->fail_regex : &j->ignore_regex;

                if (empty) {
                        *l = strv_free(*l);
                        return 0;
                }
                if (l == &j->journal_matches) {
                        if (!journal_match_is_valid(v))
                                return invalid(a, "expected FIELD=VALUE with a journal field name of A-Z, 0-9 and '_' such as SYSLOG_IDENTIFIER=vpopmail");
                        r = list_is_full(a, strv_length(*l));
                        return r != 0 ? MIN(r, 0) : strv_extend(l, v);
                }
                return assign_regex(a, l, l == &j->fail_regex ? REGEX_FAIL : REGEX_IGNORE);
        } else if (streq(k, "IgnoreAddress")) {
                return assign_words(a, &j->ignore_addresses, &j->n_ignore_addresses, sizeof(AddressPrefix),
                                    parse_prefix_word,
                                    "expected addresses or prefixes such as \"192.0.2.0/24 2001:db8::/32\"");
        } else if (streq(k, "TrustedUser")) {
                return assign_user_names(a, &j->trusted_users);
        } else if (streq(k, "TrustedUID")) {
                return assign_words(a, &j->trusted_uids, &j->n_trusted_uids, sizeof(UIDRange), parse_uid_word,
                                    "expected UIDs or ranges of UIDs such as \"0 100-999\"");
        } else
                return invalid(a, "unknown key");

        /* Scalars: r is 1 when a value was stored, 0 when it was invalid (and reported). */
        if (r <= 0)
                return r;
        if (empty)
                *set &= ~flag;
        else
                *set |= flag;
        return 0;
}
