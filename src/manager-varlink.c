/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager-varlink.h"
#include "manager.h"

/* io.vpopguard.Manager: every method validates its parameters against a table first, then
 * checks the caller, then acts through the same manager functions the journal path uses.
 *
 * Who may do what. The addresses of clients that failed to log in are what journald shows only
 * to root and the groups systemd-journal and adm: ListBans(), ListFailures() and Monitor()
 * serve those (peer_reads_journal()), and GetStatus() leaves out its one datum about an entry,
 * the cursor, for everybody else; its counters are open to all. Changes (Ban, Unban, Reload)
 * are root's, and so is TestMessage(): it would let anybody probe IgnoreAddress= and make the
 * daemon run regular expressions on 64 KiB messages of their choosing; other users run
 * `vpopguardctl test`, which judges the message itself from the configuration files. */

#define ERROR_PREFIX MANAGER_VARLINK_INTERFACE "."

static json_int_t json_int_clamp(uint64_t v);

/* JSON integers are signed; a saturated uint64_t counter must not turn negative. */
static json_int_t json_int_clamp(uint64_t v) {
        return v > (uint64_t) INT64_MAX ? (json_int_t) INT64_MAX : (json_int_t) v;
}

/* The lists that grow with an attack (ListBans, ListFailures) are written as text: built as
 * jansson objects and serialized they cost ten times as much, and a call runs in one piece
 * while the journal waits. No string here needs escaping: addresses the daemon formatted, jail
 * names ([A-Za-z0-9_.-], checked by the configuration and the state file), constant words. */
typedef struct ListText {
        FILE *f;
        char *text;
        size_t size;
        bool first;
} ListText;

static int list_text_begin(ListText *t, const char *name) {
        *t = (ListText) { .first = true };
        t->f = open_memstream(&t->text, &t->size);
        if (!t->f)
                return -ENOMEM;
        fprintf(t->f, "{\"%s\":[", name);
        return 0;
}

/* Starts the next element. */
static FILE *list_text_next(ListText *t) {
        if (!t->first)
                fputc(',', t->f);
        t->first = false;
        return t->f;
}

/* Ends the call with the list as its reply. */
static int list_text_reply(VarlinkCall *call, ListText *t) {
        int r;

        fputs("]}", t->f);
        r = ferror(t->f) ? -ENOMEM : 0;
        if (fclose(t->f) != 0)
                r = -ENOMEM;
        if (r >= 0)
                r = varlink_call_reply_text(call, t->text);
        free(t->text);
        return r;
}

/* The one place a BanEntry is spelled out: ListBans() writes it as text, the rest parse it. */
void manager_ban_write(FILE *f, const Ban *b) {
        char address[ADDRESS_PREFIX_STRING_MAX];
        AddressPrefix p = ban_prefix(b);

        fprintf(f, "{\"address\":\"%s\",\"jail\":\"%s\",\"failures\":%u,\"bannedUSec\":%lld,"
                "\"expiresUSec\":%lld,\"origin\":\"%s\",\"count\":%u,\"permanent\":%s}",
                address_prefix_to_string(&p, address), b->jail, b->failures,
                (long long) json_int_clamp(b->banned_usec), (long long) json_int_clamp(b->expires_usec),
                ban_origin_to_string(b->origin), MAX(b->count, 1U), ban_is_permanent(b) ? "true" : "false");
}

static json_t *ban_to_json(const Ban *b) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return NULL;
        manager_ban_write(f, b);
        if (fclose(f) != 0)
                return NULL;
        return json_loads(text, 0, NULL);
}

static bool caller_is_root(VarlinkCall *call) {
        if (varlink_call_peer_uid(call) == 0)
                return true;
        (void) varlink_call_error(call, ERROR_PREFIX "PermissionDenied", NULL);
        return false;
}

/* Root, or a member of a group that may read the system journal (MANAGER_READER_GROUPS). */
static bool peer_reads_journal(Manager *m, VarlinkCall *call) {
        if (varlink_call_peer_uid(call) == 0)
                return true;
        for (size_t i = 0; i < m->n_reader_gids; i++)
                if (varlink_call_peer_in_group(call, m->reader_gids[i]))
                        return true;
        return false;
}

static bool caller_reads_journal(Manager *m, VarlinkCall *call) {
        if (peer_reads_journal(m, call))
                return true;
        (void) varlink_call_error(call, ERROR_PREFIX "PermissionDenied", NULL);
        return false;
}

/* Replies NoSuchJail unless name is NULL or a configured jail (enabled or not). */
static bool jail_name_ok(Manager *m, VarlinkCall *call, const char *name) {
        if (!name || config_find_jail(m->config, name))
                return true;
        (void) varlink_call_error(call, ERROR_PREFIX "NoSuchJail", json_pack("{s:s}", "jail", name));
        return false;
}

static bool parse_address_param(VarlinkCall *call, const char *text, Address *ret) {
        if (text && address_parse(text, strlen(text), ret) >= 0)
                return true;
        (void) varlink_call_error(call, ERROR_PREFIX "InvalidAddress", json_pack("{s:s}", "address", text ?: ""));
        return false;
}

static const char *string_param(json_t *parameters, const char *name) {
        return json_string_value(json_object_get(parameters, name));
}

/* How far behind the journal the daemon is: nothing once it has read to the end (however old
 * the last entry), else the age of the last processed entry; null before it knows either. */
static json_t *journal_lag(Manager *m, usec_t now) {
        if (m->journal && m->journal_at_end)
                return json_integer(0);
        if (!m->journal || m->cursor_realtime == 0)
                return json_null();
        return json_integer(json_int_clamp(now > m->cursor_realtime ? now - m->cursor_realtime : 0));
}

/* The active bans of each configured jail, in one pass over the table rather than one per
 * jail, each over a million bans at worst. *ret allocated, indexed like m->config->jails. */
static int count_bans_per_jail(Manager *m, usec_t now, size_t **ret) {
        size_t *counts = calloc(MAX(m->config->n_jails, 1U), sizeof(size_t)), iter = 0, last = 0;
        const Ban *b;

        if (!counts)
                return -ENOMEM;
        while (ban_table_next(m->bans, &iter, &b)) {
                if (b->expires_usec <= now)
                        continue;
                /* Mostly one jail after the other: try the last one's first. */
                for (size_t k = 0; k < m->config->n_jails; k++) {
                        size_t i = (last + k) % m->config->n_jails;
                        if (streq(b->jail, m->config->jails[i].name)) {
                                counts[i]++;
                                last = i;
                                break;
                        }
                }
        }
        *ret = counts;
        return 0;
}

static int vl_method_get_status(VarlinkCall *call, json_t *parameters, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ size_t *banned = NULL;
        json_t *jails;
        usec_t now = now_realtime();
        int r;

        if (varlink_check_parameters(call, parameters, NULL, 0) < 0)
                return 0;
        r = count_bans_per_jail(m, now, &banned);
        if (r < 0)
                return r;

        jails = json_array();
        for (size_t i = 0; jails && i < m->config->n_jails; i++) {
                const JailConfig *jc = &m->config->jails[i];
                Jail *j = manager_find_jail(m, jc->name);
                const SuppressionStats *st =
                        j && m->suppression ? suppression_tracker_get(m->suppression, jc->name) : NULL;
                bool suppressed = st && st->events > 0;

                json_array_append_new(jails, json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                                                       "s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I}",
                        "name", jc->name,
                        "enabled", jc->enabled,
                        "maxRetry", (json_int_t) jc->max_retry,
                        "findTimeUSec", (json_int_t) jc->find_time,
                        "banTimeUSec", (json_int_t) jc->ban_time,
                        "tracked", (json_int_t) (j ? failure_table_size(j->failures) : 0),
                        "banned", (json_int_t) banned[i],
                        "failuresTotal", (json_int_t) (j ? j->failures_total : 0),
                        "bansTotal", (json_int_t) (j ? j->bans_total : 0),
                        "suppressedMessages", json_int_clamp(st ? st->messages : 0),
                        "suppressionEvents", json_int_clamp(st ? st->events : 0),
                        "lastSuppressedUSec", suppressed ? json_integer(json_int_clamp(st->last_usec)) : json_null(),
                        "lastSuppressedUnit", suppressed ? json_string(st->last_unit) : json_null(),
                        "untrustedFailures", json_int_clamp(j ? j->untrusted_failures : 0),
                        "entriesUnreadable", json_int_clamp(j ? j->entries_unreadable : 0),
                        "unbansTotal", json_int_clamp(j ? j->unbans_total : 0),
                        "expiredTotal", json_int_clamp(j ? j->expired_total : 0),
                        "fleetBansApplied", json_int_clamp(j ? j->fleet_bans_applied : 0)));
        }

        return varlink_call_reply(call, json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I}",
                "version", VPOPGUARD_VERSION,
                "startedUSec", (json_int_t) m->started_usec,
                /* A cursor names an entry, and its x= is a hash of the entry's fields. */
                "cursor", m->cursor && peer_reads_journal(m, call) ? json_string(m->cursor) : json_null(),
                "entriesRead", (json_int_t) m->entries_read,
                "entriesMatched", (json_int_t) m->entries_matched,
                "entriesUnreadable", (json_int_t) m->entries_unreadable,
                "bansActive", (json_int_t) ban_table_size(m->bans),
                "jails", jails ?: json_array(),
                /* Open to all like the counters: a time names no entry, the cursor would. */
                "lastEntryUSec", m->cursor_realtime > 0 ? json_integer(json_int_clamp(m->cursor_realtime)) : json_null(),
                "journalLagUSec", journal_lag(m, now),
                "fleetPeers", (json_int_t) m->n_fleet_peers,
                "fleetUntrustedEntries", json_int_clamp(m->fleet_untrusted)));
}

static int vl_method_list_bans(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = { { "jail", VARLINK_STRING, false } };
        Manager *m = userdata;
        usec_t now = now_realtime();
        const char *jail;
        const Ban *b;
        size_t iter = 0;
        ListText t;
        int r;

        if (varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields)) < 0)
                return 0;
        if (!caller_reads_journal(m, call))
                return 0;
        jail = string_param(parameters, "jail");
        if (!jail_name_ok(m, call, jail))
                return 0;
        if (varlink_call_wants_more(call))
                return manager_list_bans_stream(m, call, jail);

        r = list_text_begin(&t, "bans");
        if (r < 0)
                return r;
        while (ban_table_next(m->bans, &iter, &b))
                if (b->expires_usec > now && (!jail || streq(b->jail, jail)))
                        manager_ban_write(list_text_next(&t), b);
        return list_text_reply(call, &t);
}

static int vl_method_list_failures(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = {
                { "jail", VARLINK_STRING, false },
                { "address", VARLINK_STRING, false },
        };
        Manager *m = userdata;
        const char *jail, *address_text;
        Address address;
        ListText t;
        int r;

        if (varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields)) < 0)
                return 0;
        if (!caller_reads_journal(m, call))
                return 0;
        jail = string_param(parameters, "jail");
        address_text = string_param(parameters, "address");
        if (!jail_name_ok(m, call, jail))
                return 0;
        if (address_text && !parse_address_param(call, address_text, &address))
                return 0;

        r = list_text_begin(&t, "failures");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_jails; i++) {
                Jail *j = m->jails[i];
                FailureWindow w;
                size_t iter = 0;

                if (jail && !streq(j->config->name, jail))
                        continue;
                while (failure_table_next(j->failures, &iter, &w)) {
                        char text[ADDRESS_PREFIX_STRING_MAX];
                        AddressPrefix p = { w.address, w.prefixlen };
                        /* An address finds the prefix it is counted under. */
                        if (address_text && !address_prefix_contains(&p, &address))
                                continue;
                        fprintf(list_text_next(&t),
                                "{\"address\":\"%s\",\"jail\":\"%s\",\"count\":%zu,\"firstUSec\":%lld,\"lastUSec\":%lld}",
                                address_prefix_to_string(&p, text), j->config->name, (size_t) w.n_failures,
                                (long long) json_int_clamp(w.failures[0].realtime),
                                (long long) json_int_clamp(w.failures[w.n_failures - 1].realtime));
                }
        }
        return list_text_reply(call, &t);
}

static int vl_method_ban(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = {
                { "address", VARLINK_STRING, true },
                { "jail", VARLINK_STRING, false },
                { "durationUSec", VARLINK_INT, false },
                { "permanent", VARLINK_BOOL, false },
        };
        Manager *m = userdata;
        const char *jail;
        json_t *duration;
        Address address;
        Jail *j;
        int r;

        if (varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields)) < 0)
                return 0;
        if (!caller_is_root(call))
                return 0;
        if (!parse_address_param(call, string_param(parameters, "address"), &address))
                return 0;
        if (address_is_loopback(&address))
                /* Banning loopback would cut the machine off from its own services. */
                return varlink_call_error(call, ERROR_PREFIX "InvalidAddress",
                                          json_pack("{s:s}", "address", string_param(parameters, "address")));
        if (local_addresses_contains(m->local, &address))
                return varlink_call_error(call, ERROR_PREFIX "InvalidAddress",
                                          json_pack("{s:s,s:s}", "address", string_param(parameters, "address"),
                                                    "message", "The address is configured on one of this host's "
                                                    "interfaces, and the host never bans itself."));

        jail = string_param(parameters, "jail");
        if (!jail_name_ok(m, call, jail))
                return 0;
        j = jail ? manager_find_jail(m, jail) : m->jails[0];
        if (!j) /* configured but disabled */
                return varlink_call_error(call, ERROR_PREFIX "NoSuchJail", json_pack("{s:s}", "jail", jail));

        usec_t span = j->config->ban_time;
        duration = json_object_get(parameters, "durationUSec");
        if (duration && !json_is_null(duration)) {
                json_int_t d = json_integer_value(duration);
                if (d <= 0 || (uint64_t) d > 10 * 365 * USEC_PER_DAY)
                        return varlink_call_error_invalid_parameter(call, "durationUSec");
                span = (usec_t) d;
        }
        if (json_is_true(json_object_get(parameters, "permanent")))
                span = USEC_INFINITY;

        usec_t now = now_realtime();
        Ban b = {
                .address = address,
                .failures = 0,
                .banned_usec = now,
                .expires_usec = usec_add(now, span),
                .origin = BAN_ORIGIN_MANUAL,
        };
        snprintf(b.jail, sizeof b.jail, "%s", j->config->name);

        r = manager_ban_manually(m, &b);
        if (r == -EAFNOSUPPORT)
                return varlink_call_error(call, ERROR_PREFIX "InvalidAddress",
                                          json_pack("{s:s}", "address", string_param(parameters, "address")));
        if (r < 0)
                return varlink_call_error(call, ERROR_PREFIX "FirewallError",
                                          json_pack("{s:s}", "message", m->nft ? nft_set_error(m->nft) : strerror(-r)));

        const Ban *now_banned = ban_table_find_covering(m->bans, &address);
        return varlink_call_reply(call, json_pack("{s:o}", "ban", ban_to_json(now_banned ?: &b)));
}

static int vl_method_unban(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = {
                { "address", VARLINK_STRING, true },
                { "jail", VARLINK_STRING, false },
        };
        Manager *m = userdata;
        const char *jail;
        Address address;
        int r;

        if (varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields)) < 0)
                return 0;
        if (!caller_is_root(call))
                return 0;
        if (!parse_address_param(call, string_param(parameters, "address"), &address))
                return 0;
        jail = string_param(parameters, "jail");
        if (!jail_name_ok(m, call, jail))
                return 0;

        r = manager_unban(m, &address, jail, NULL);
        if (r == -ENOENT)
                return varlink_call_error(call, ERROR_PREFIX "NotBanned",
                                          json_pack("{s:s}", "address", string_param(parameters, "address")));
        if (r < 0)
                return varlink_call_error(call, ERROR_PREFIX "FirewallError",
                                          json_pack("{s:s}", "message", m->nft ? nft_set_error(m->nft) : strerror(-r)));
        return varlink_call_reply(call, NULL);
}

typedef struct TestFields {
        json_t *fields;      /* NULL: no field checks */
        const Jail *missing; /* if not NULL: where a missing field's value comes from */
} TestFields;

static int test_get_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        TestFields *t = userdata;
        const char *v = json_string_value(json_object_get(t->fields, field));

        for (size_t i = 0; !v && t->missing && i < t->missing->n_matches; i++)
                if (streq(t->missing->matches[i].field, field))
                        v = t->missing->matches[i].value;
        if (!v)
                return -ENOENT;
        *ret_value = v;
        *ret_len = strlen(v);
        return 0;
}

static int test_message(Jail **jails, size_t n_jails, bool fill_from_jail, const char *message, json_t *fields,
                        json_t **ret) {
        /* When no jail counts the message, the most telling reason wins. */
        static const JailVerdict priority[] = {
                JAIL_VERDICT_IGNORED_ADDRESS, JAIL_VERDICT_IGNORE_REGEX, JAIL_VERDICT_LIMIT,
                JAIL_VERDICT_UNTRUSTED, JAIL_VERDICT_NO_MATCH,
        };
        TestFields t = {};
        const char *key;
        json_t *value, *reply;
        JailVerdict best = JAIL_VERDICT_NO_MATCH;
        const char *best_jail = NULL;
        Address best_address;
        bool have_address = false;
        char text[ADDRESS_STRING_MAX];

        if (fields && !json_is_null(fields)) {
                json_object_foreach(fields, key, value)
                        if (!json_is_string(value))
                                return -EINVAL;
                t.fields = fields;
                t.missing = fill_from_jail && n_jails == 1 ? jails[0] : NULL;
        }

        for (size_t i = 0; i < n_jails; i++) {
                Jail *j = jails[i];
                JailVerdict v;
                Address a;

                if (t.fields && !jail_accepts_entry(j, test_get_field, &t, &v))
                        ;
                else
                        v = jail_match_message(j, message, strlen(message), &a);

                if (v == JAIL_VERDICT_FAILURE) {
                        reply = json_pack("{s:s, s:s, s:b, s:s}",
                                          "jail", j->config->name,
                                          "address", address_to_string(&a, text),
                                          "ignored", false,
                                          "reason", jail_verdict_to_string(v));
                        goto done;
                }
                for (size_t k = 0; k < ELEMENTSOF(priority); k++) {
                        if (priority[k] == best)
                                break;
                        if (priority[k] == v) {
                                best = v;
                                best_jail = j->config->name;
                                /* jail_match_message() sets the address only for FAILURE; re-derive
                                 * it for an ignored address so the caller sees which one. */
                                have_address = false;
                                if (v == JAIL_VERDICT_IGNORED_ADDRESS) {
                                        for (size_t r = 0; r < j->n_fail_regex && !have_address; r++)
                                                have_address = regex_match(j->fail_regex[r], message, strlen(message),
                                                                           &best_address) > 0;
                                }
                                break;
                        }
                }
        }

        reply = json_pack("{s:o, s:o, s:b, s:s}",
                "jail", best_jail && best != JAIL_VERDICT_NO_MATCH ? json_string(best_jail) : json_null(),
                "address", have_address ? json_string(address_to_string(&best_address, text)) : json_null(),
                "ignored", best == JAIL_VERDICT_IGNORED_ADDRESS || best == JAIL_VERDICT_IGNORE_REGEX,
                "reason", jail_verdict_to_string(best));
done:
        if (!reply)
                return -ENOMEM;
        *ret = reply;
        return 0;
}

int manager_test_message(Jail **jails, size_t n_jails, const char *message, json_t *fields, json_t **ret) {
        return test_message(jails, n_jails, false, message, fields, ret);
}

int manager_test_message_in_jail(Jail *jail, const char *message, json_t *fields, json_t **ret) {
        return test_message(&jail, 1, true, message, fields, ret);
}

/* A configured jail that is not enabled is built for the call: a jail can be tried before it
 * is turned on. */
static int test_message_in_jail(Manager *m, const char *name, const char *message, json_t *fields, json_t **ret) {
        Jail *j = manager_find_jail(m, name), *disabled = NULL;
        int r;

        if (!j) {
                r = jail_new(config_find_jail(m->config, name), &disabled);
                if (r < 0)
                        return r;
                j = disabled;
        }
        r = manager_test_message_in_jail(j, message, fields, ret);
        jail_free(disabled);
        return r;
}

static int vl_method_test_message(VarlinkCall *call, json_t *parameters, void *userdata) {
        static const VarlinkField fields[] = {
                { "message", VARLINK_STRING, true },
                { "fields", VARLINK_OBJECT, false },
                { "jail", VARLINK_STRING, false },
        };
        Manager *m = userdata;
        const char *jail;
        json_t *reply;
        int r;

        if (varlink_check_parameters(call, parameters, fields, ELEMENTSOF(fields)) < 0)
                return 0;
        if (!caller_is_root(call))
                return 0;
        jail = string_param(parameters, "jail");
        if (!jail_name_ok(m, call, jail))
                return 0;
        if (jail)
                r = test_message_in_jail(m, jail, string_param(parameters, "message"),
                                         json_object_get(parameters, "fields"), &reply);
        else
                r = manager_test_message(m->jails, m->n_jails, string_param(parameters, "message"),
                                         json_object_get(parameters, "fields"), &reply);
        if (r == -EINVAL)
                return varlink_call_error_invalid_parameter(call, "fields");
        if (r < 0)
                return r;
        return varlink_call_reply(call, reply);
}

static int vl_method_reload(VarlinkCall *call, json_t *parameters, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *message = NULL;

        if (varlink_check_parameters(call, parameters, NULL, 0) < 0)
                return 0;
        if (!caller_is_root(call))
                return 0;
        if (manager_reload(m, &message) < 0)
                return varlink_call_error(call, ERROR_PREFIX "ConfigurationError",
                                          json_pack("{s:s}", "message", message ?: "The configuration was refused."));
        return varlink_call_reply(call, NULL);
}

static void on_monitor_closed(VarlinkCall *call, void *userdata) {
        Manager *m = userdata;
        for (size_t i = 0; i < m->n_monitors; i++)
                if (m->monitors[i] == call) {
                        m->monitors[i] = m->monitors[--m->n_monitors];
                        varlink_call_unref(call);
                        return;
                }
}

static int vl_method_monitor(VarlinkCall *call, json_t *parameters, void *userdata) {
        Manager *m = userdata;
        VarlinkCall **grown;

        if (varlink_check_parameters(call, parameters, NULL, 0) < 0)
                return 0;
        if (!caller_reads_journal(m, call))
                return 0;
        if (!varlink_call_wants_more(call))
                return varlink_call_error(call, "org.varlink.service.ExpectedMore", NULL);

        grown = realloc(m->monitors, (m->n_monitors + 1) * sizeof(VarlinkCall *));
        if (!grown)
                return -ENOMEM;
        m->monitors = grown;
        m->monitors[m->n_monitors++] = varlink_call_ref(call);
        varlink_call_set_close_callback(call, on_monitor_closed, m);
        return 0;
}

/* Subscribed to the ban pipeline: every committed change goes to every Monitor() caller. */
static void on_ban_change(const BanChange *c, void *userdata) {
        Manager *m = userdata;
        /* Back to front: a notify that fails closes the connection, which removes the entry. */
        for (size_t i = m->n_monitors; i > 0; i--)
                (void) varlink_call_notify(m->monitors[i - 1],
                                           json_pack("{s:s, s:o}", "event", ban_change_kind_to_string(c->kind),
                                                     "ban", ban_to_json(&c->ban)));
}

static const VarlinkMethodEntry manager_methods[] = {
        { "GetStatus", vl_method_get_status },
        { "ListBans", vl_method_list_bans },
        { "ListFailures", vl_method_list_failures },
        { "Ban", vl_method_ban },
        { "Unban", vl_method_unban },
        { "TestMessage", vl_method_test_message },
        { "Reload", vl_method_reload },
        { "Monitor", vl_method_monitor },
        {}
};

static const VarlinkInterface manager_interface = {
        .name = MANAGER_VARLINK_INTERFACE,
        .description = manager_varlink_idl,
        .methods = manager_methods,
};

/* The socket from socket activation: the one named "varlink", or the only one passed. */
static int take_activation_fd(void) {
        char **names = NULL;
        int n, fd = -EBADF;

        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0)
                return n < 0 ? n : -ENOENT;
        for (int i = 0; i < n; i++)
                if (names && names[i] && streq(names[i], "varlink"))
                        fd = SD_LISTEN_FDS_START + i;
        if (fd < 0 && n == 1)
                fd = SD_LISTEN_FDS_START;
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        if (fd < 0)
                return log_error_errno(EINVAL, "%d sockets were passed, none named \"varlink\".", n);
        return fd;
}

/* Once at start: a group added later counts after a restart, and a missing one grants nothing. */
static int resolve_reader_groups(Manager *m) {
        static const char * const names[] = MANAGER_READER_GROUPS;

        m->n_reader_gids = 0;
        for (size_t i = 0; i < ELEMENTSOF(names) && m->n_reader_gids < ELEMENTSOF(m->reader_gids); i++) {
                struct group *g = getgrnam(names[i]);
                if (!g) {
                        log_debug("No group %s: its members may not read addresses over varlink.", names[i]);
                        continue;
                }
                m->reader_gids[m->n_reader_gids++] = g->gr_gid;
        }
        return varlink_server_set_groups(m->varlink, m->reader_gids, m->n_reader_gids);
}

int manager_setup_varlink(Manager *m) {
        static const VarlinkServerInfo info = {
                .vendor = "vpopguard",
                .product = "vpopguardd",
                .version = VPOPGUARD_VERSION,
                .url = "man:vpopguardd(8)",
        };
        const char *path = m->options.socket_path;
        int fd, r;

        fd = take_activation_fd();
        if (fd < 0 && fd != -ENOENT)
                return fd;
        if (fd == -ENOENT && path && !*path)
                return 0; /* --socket= with no value: no control interface */
        if (fd == -ENOENT && !path && !m->options.follow)
                return 0; /* a --no-follow run is over before anyone could ask */

        r = manager_subscribe(m, on_ban_change, m);
        if (r < 0)
                return log_oom();
        r = varlink_server_new(m->event, &info, m, &m->varlink);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the varlink server: %m");
        r = varlink_server_add_interface(m->varlink, &manager_interface);
        if (r >= 0)
                r = varlink_server_set_priorities(m->varlink, MANAGER_PRIORITY_VARLINK_SOCKETS,
                                                  MANAGER_PRIORITY_VARLINK_CALLS);
        if (r >= 0)
                r = resolve_reader_groups(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the varlink server: %m");

        if (fd >= 0) {
                r = varlink_server_listen_fd(m->varlink, fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on the socket passed by the service manager: %m");
                log_debug("Listening on the socket passed by the service manager.");
                return 0;
        }

        if (!path) {
                path = MANAGER_VARLINK_SOCKET;
                (void) mkdir("/run/vpopguard", 0755);
        }
        r = varlink_server_listen_path(m->varlink, path, 0666);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", path);
        log_debug("Listening on %s.", path);
        return 0;
}

void manager_close_varlink(Manager *m) {
        /* Freeing the server fires the monitors' close callbacks, which empty the list. */
        m->varlink = varlink_server_free(m->varlink);
        for (size_t i = 0; i < m->n_monitors; i++)
                varlink_call_unref(m->monitors[i]);
        m->n_monitors = 0;
        free(m->monitors);
        m->monitors = NULL;
}
