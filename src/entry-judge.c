/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "entry-judge.h"
#include "prefix-policy.h"

/* What the jails think of an entry before anything is counted. */
typedef struct Acceptance {
        uint64_t jails[(CONFIG_JAILS_MAX + 63) / 64];
        uint64_t untrusted[(CONFIG_JAILS_MAX + 63) / 64]; /* would take it from a trusted sender */
        uint64_t unreadable[(CONFIG_JAILS_MAX + 63) / 64]; /* lack what they need (counted if final) */
        bool any;
        bool any_untrusted;
        bool incomplete;
        const char *message;
        size_t message_len;
} Acceptance;

static bool bit(const uint64_t *set, size_t i) {
        return set[i / 64] & (UINT64_C(1) << (i % 64));
}

static void set_bit(uint64_t *set, size_t i) {
        set[i / 64] |= UINT64_C(1) << (i % 64);
}

/* The jails the entry may be for, in the order of judge->jails; ret has room for n_jails. */
static size_t candidates(const EntryJudge *judge, JournalEntry *e, size_t *ret) {
        if (judge->index)
                return jail_index_lookup(judge->index, journal_entry_get_field, e, ret);
        for (size_t i = 0; i < judge->n_jails; i++)
                ret[i] = i;
        return judge->n_jails;
}

static void accept_entry(const EntryJudge *judge, JournalEntry *e, const size_t *cand, size_t n_cand,
                         Acceptance *ret) {
        *ret = (Acceptance) {};
        for (size_t c = 0; c < n_cand; c++) {
                size_t i = cand[c];
                JailVerdict v;

                if (jail_accepts_entry(judge->jails[i], journal_entry_get_field, e, &v)) {
                        set_bit(ret->jails, i);
                        ret->any = true;
                } else if (v != JAIL_VERDICT_UNTRUSTED)
                        continue;
                else if (journal_entry_get_field("_UID", &(const char *) { NULL }, &(size_t) { 0 }, e) < 0) {
                        ret->incomplete = true; /* untrusted only for want of a _UID */
                        set_bit(ret->unreadable, i);
                } else {
                        set_bit(ret->untrusted, i);
                        ret->any_untrusted = true;
                }
        }
        if ((ret->any || ret->any_untrusted) &&
            journal_entry_get_field("MESSAGE", &ret->message, &ret->message_len, e) < 0) {
                ret->message = NULL;
                ret->incomplete = true;
                for (size_t i = 0; i < ELEMENTSOF(ret->unreadable); i++)
                        ret->unreadable[i] |= ret->jails[i] | ret->untrusted[i];
        }
}

static bool is_banned(const EntryJudge *judge, const Address *a, usec_t now) {
        const Ban *b = ban_table_find_covering(judge->bans, a);
        return b && b->expires_usec > now;
}

static int count_failure(const EntryJudge *judge, Jail *jail, JournalEntry *e, const Address *a, usec_t now) {
        const JournalPosition *p;
        AddressPrefix prefix;
        FailureWindow w;
        bool fallback;
        int r, count;

        r = journal_entry_position(e, &p);
        if (r < 0)
                return r;
        fallback = prefix_policy_for(jail->config, judge->local, a, &prefix);
        count = failure_table_record_prefix(jail->failures, &prefix, p);
        if (count < 0)
                return count;
        jail->failures_total++;
        if ((unsigned) count < jail->config->max_retry)
                return 0;

        Ban b = {
                .address = prefix.address,
                .prefixlen = prefix.prefixlen,
                .fallback_prefixlen = fallback ? (uint8_t) jail_config_prefix_length(jail->config, a->family) : 0,
                .failures = (unsigned) count,
                .banned_usec = now,
                .expires_usec = usec_add(now, jail->config->ban_time),
                .origin = BAN_ORIGIN_JOURNAL,
        };
        snprintf(b.jail, sizeof b.jail, "%s", jail->config->name);
        if (!failure_table_get(jail->failures, &prefix.address, &w))
                return -ESRCH;
        r = judge->on_ban(jail, &b, &w, judge->userdata);
        if (r < 0)
                return r;
        failure_table_forget(jail->failures, &prefix.address);
        if (r == 0)
                jail->bans_total++;
        return 0;
}

/* A sender the jail does not trust wrote a line its patterns count: not counted, but told, so
 * that a mail service running as an account nobody listed does not fail in silence. */
static void note_untrusted(Jail *jail, JournalEntry *e, const char *message, size_t len, EntryJudgement *ret) {
        const char *value;
        size_t n;
        char buf[16];
        Address a;

        if (jail_match_message(jail, message, len, &a) != JAIL_VERDICT_FAILURE)
                return;
        jail->untrusted_failures++;
        if (journal_entry_get_field("_UID", &value, &n, e) < 0 || n == 0 || n >= sizeof buf)
                return;
        memcpy(buf, value, n);
        buf[n] = 0;
        ret->untrusted_jail = jail;
        ret->untrusted_uid = (uid_t) strtoul(buf, NULL, 10);
}

int entry_judge(const EntryJudge *judge, JournalEntry *e, usec_t now, bool final, EntryJudgement *ret) {
        size_t cand[CONFIG_JAILS_MAX], n_cand;
        Acceptance acc;
        int r;

        assert(judge->n_jails <= CONFIG_JAILS_MAX);
        assert(!judge->index || jail_index_size(judge->index) == judge->n_jails);
        n_cand = candidates(judge, e, cand);
        accept_entry(judge, e, cand, n_cand, &acc);
        if (acc.incomplete && !final)
                return ENTRY_JUDGE_INCOMPLETE;

        *ret = (EntryJudgement) { .accepted = acc.any, .unreadable = acc.incomplete };
        for (size_t i = 0; acc.incomplete && i < judge->n_jails; i++)
                judge->jails[i]->entries_unreadable += bit(acc.unreadable, i);
        for (size_t c = 0; acc.message && c < n_cand; c++) {
                size_t i = cand[c];
                Jail *jail = judge->jails[i];
                Address a;

                if (bit(acc.untrusted, i)) {
                        note_untrusted(jail, e, acc.message, acc.message_len, ret);
                        continue;
                }
                if (!bit(acc.jails, i))
                        continue;
                if (jail_match_message(jail, acc.message, acc.message_len, &a) != JAIL_VERDICT_FAILURE)
                        continue;
                /* The host's own address is ignored like loopback: a webmail or proxy on this
                 * host logs in from it on behalf of remote users. */
                if (local_addresses_contains(judge->local, &a))
                        continue;
                ret->matched = true;
                if (is_banned(judge, &a, now))
                        continue;
                r = count_failure(judge, jail, e, &a, now);
                if (r < 0)
                        return r;
        }
        return 0;
}
