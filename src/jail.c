/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "jail.h"
#include "log.h"

static const char * const verdict_table[_JAIL_VERDICT_MAX] = {
        [JAIL_VERDICT_NO_MATCH] = "no-match",
        [JAIL_VERDICT_UNTRUSTED] = "untrusted-sender",
        [JAIL_VERDICT_IGNORE_REGEX] = "ignore-regex",
        [JAIL_VERDICT_IGNORED_ADDRESS] = "ignored-address",
        [JAIL_VERDICT_FAILURE] = "failure",
        [JAIL_VERDICT_LIMIT] = "match-limit",
};

const char *jail_verdict_to_string(JailVerdict v) {
        if (v < 0 || v >= _JAIL_VERDICT_MAX)
                return NULL;
        return verdict_table[v];
}

static void regexes_free(Regex **r, size_t n) {
        for (size_t i = 0; i < n; i++)
                regex_free(r[i]);
        free(r);
}

Jail *jail_free(Jail *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_matches; i++) {
                free(j->matches[i].field);
                free(j->matches[i].value);
        }
        free(j->matches);
        regexes_free(j->fail_regex, j->n_fail_regex);
        regexes_free(j->ignore_regex, j->n_ignore_regex);
        failure_table_free(j->failures);
        free(j);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Jail *, jail_free);

static int compile_all(char * const *patterns, RegexKind kind, HostFormat format, Regex ***ret, size_t *ret_n) {
        size_t n = strv_length(patterns);
        Regex **r = calloc(n ? n : 1, sizeof(Regex *));
        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                /* The configuration was validated when it was loaded, so this only fails on OOM. */
                int k = regex_new(patterns[i], kind, format, &r[i], NULL);
                if (k < 0) {
                        regexes_free(r, i);
                        return k;
                }
        }
        *ret = r;
        *ret_n = n;
        return 0;
}

int jail_new(const JailConfig *config, Jail **ret) {
        _cleanup_(jail_freep) Jail *j = calloc(1, sizeof(Jail));
        int r;

        if (!j)
                return -ENOMEM;
        j->config = config;

        size_t n = strv_length(config->journal_matches);
        j->matches = calloc(n ? n : 1, sizeof(JailMatch));
        if (!j->matches)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *m = config->journal_matches[i], *eq = strchr(m, '=');
                if (!eq)
                        return -EINVAL;
                j->matches[i].field = strndup(m, eq - m);
                j->matches[i].value = strdup(eq + 1);
                j->n_matches++;
                if (!j->matches[i].field || !j->matches[i].value)
                        return -ENOMEM;
        }

        r = compile_all(config->fail_regex, REGEX_FAIL, config->host_format, &j->fail_regex, &j->n_fail_regex);
        if (r < 0)
                return r;
        r = compile_all(config->ignore_regex, REGEX_IGNORE, config->host_format, &j->ignore_regex, &j->n_ignore_regex);
        if (r < 0)
                return r;
        r = failure_table_new(config->max_retry, config->find_time, config->max_tracked, &j->failures);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(j);
        return 0;
}

int jail_add_journal_matches(const Jail *j, sd_journal *journal) {
        for (size_t i = 0; i < j->n_matches; i++) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "%s=%s", j->matches[i].field, j->matches[i].value) < 0)
                        return -ENOMEM;
                int r = sd_journal_add_match(journal, m, 0);
                if (r < 0)
                        return r;
        }
        return sd_journal_add_disjunction(journal);
}

static JailVerdict check_fields(const Jail *j, JournalFieldGetter get, void *userdata) {
        /* Matches on the same field are ORed, different fields ANDed, like sd_journal_add_match(). */
        for (size_t i = 0; i < j->n_matches; i++) {
                bool seen_before = false, satisfied = false;
                for (size_t k = 0; k < i; k++)
                        if (streq(j->matches[k].field, j->matches[i].field))
                                seen_before = true;
                if (seen_before)
                        continue;

                const char *value;
                size_t len;
                if (get(j->matches[i].field, &value, &len, userdata) < 0)
                        return JAIL_VERDICT_NO_MATCH;
                for (size_t k = i; k < j->n_matches && !satisfied; k++)
                        if (streq(j->matches[k].field, j->matches[i].field) &&
                            strlen(j->matches[k].value) == len &&
                            memcmp(j->matches[k].value, value, len) == 0)
                                satisfied = true;
                if (!satisfied)
                        return JAIL_VERDICT_NO_MATCH;
        }

        if (jail_config_restricts_senders(j->config)) {
                const char *value;
                size_t len;
                char buf[16];
                unsigned long uid;
                char *end;

                /* _UID is set by journald from the sender's credentials and cannot be forged. */
                if (get("_UID", &value, &len, userdata) < 0 || len == 0 || len >= sizeof buf)
                        return JAIL_VERDICT_UNTRUSTED;
                memcpy(buf, value, len);
                buf[len] = 0;
                errno = 0;
                uid = strtoul(buf, &end, 10);
                if (buf[0] < '0' || buf[0] > '9' || errno != 0 || *end != 0 || uid > UINT32_MAX - 1)
                        return JAIL_VERDICT_UNTRUSTED;
                if (!jail_config_trusts_uid(j->config, (uid_t) uid))
                        return JAIL_VERDICT_UNTRUSTED;
        }
        return JAIL_VERDICT_FAILURE;
}

bool jail_accepts_entry(const Jail *j, JournalFieldGetter get, void *userdata, JailVerdict *ret_reason) {
        JailVerdict v = check_fields(j, get, userdata);
        if (v == JAIL_VERDICT_FAILURE)
                return true;
        if (ret_reason)
                *ret_reason = v;
        return false;
}

JailVerdict jail_match_message(Jail *j, const char *message, size_t len, Address *ret_address) {
        Address a;
        int r;

        for (size_t i = 0; i < j->n_ignore_regex; i++) {
                r = regex_match(j->ignore_regex[i], message, len, NULL);
                if (r > 0)
                        return JAIL_VERDICT_IGNORE_REGEX;
                if (r < 0) {
                        j->limit_hits++;
                        return JAIL_VERDICT_LIMIT;
                }
        }

        for (size_t i = 0; i < j->n_fail_regex; i++) {
                r = regex_match(j->fail_regex[i], message, len, &a);
                if (r < 0) {
                        j->limit_hits++;
                        return JAIL_VERDICT_LIMIT;
                }
                if (r == 0)
                        continue;
                if (jail_config_ignores_address(j->config, &a))
                        return JAIL_VERDICT_IGNORED_ADDRESS;
                *ret_address = a;
                return JAIL_VERDICT_FAILURE;
        }
        return JAIL_VERDICT_NO_MATCH;
}

int jail_take_failures(Jail *j, Jail *old) {
        FailureWindow w;
        size_t iter = 0;

        while (failure_table_next(old->failures, &iter, &w)) {
                int r = failure_table_restore_prefix(j->failures, &(AddressPrefix) { w.address, w.prefixlen },
                                                     w.failures, w.n_failures);
                if (r < 0)
                        return r;
        }
        j->failures_total = old->failures_total;
        j->bans_total = old->bans_total;
        j->limit_hits = old->limit_hits;
        j->untrusted_failures = old->untrusted_failures;
        j->entries_unreadable = old->entries_unreadable;
        j->unbans_total = old->unbans_total;
        j->expired_total = old->expired_total;
        j->fleet_bans_applied = old->fleet_bans_applied;
        return 0;
}
