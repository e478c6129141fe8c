/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <nftables/libnftables.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "nft-set.h"
#include "text-put.h"

#define NFT_SET_CHAIN "input"
#define NFT_SET_NAME_MAX 255 /* the kernel's NFT_NAME_MAXLEN without the NUL */
#define NFT_SET_SUFFIX_MAX 4 /* "_127" of a prefix set's name */
#define NFT_SET_ERROR_MAX 1024

/* Removal adds every element before deleting it in the same transaction (see nft_set_remove()).
 * The added timeout only has to outlive that transaction; it is generous so that a slow batch on
 * a kernel that checks expiry against the wall clock cannot see the element vanish in between. */
#define NFT_SET_REMOVE_TIMEOUT_SEC 60

/* Numeric output everywhere: no service names, no symbolic priorities, nothing resolved. */
#define OUTPUT_FLAGS_BASE NFT_CTX_OUTPUT_NUMERIC_ALL

struct NftSet {
        struct nft_ctx *ctx; /* buffered output and error: libnftables never prints */
        char *family;        /* "inet", "ip" or "ip6" */
        char *table;
        char *set4;          /* NULL if the family has no IPv4 set ("ip6") */
        char *set6;          /* NULL if the family has no IPv6 set ("ip") */
        bool create_table;
        /* Per family (0: IPv4, 1: IPv6): the prefix lengths, shorter than the family's, whose
         * bans have a set of their own (see nft_set_require_prefix()). */
        bool prefix[2][129];
        char error[NFT_SET_ERROR_MAX]; /* of the last failed call, one line */
};

static int family_index(int family) {
        return family == AF_INET6;
}

void nft_set_require_prefix(NftSet *s, int family, unsigned prefixlen) {
        assert(s);
        assert(family == AF_INET || family == AF_INET6);
        if (prefixlen > 0 && prefixlen < address_family_bits(family))
                s->prefix[family_index(family)][prefixlen] = true;
}

/* An element's length: the family's for a single address. */
static unsigned element_length(const NftElement *e) {
        unsigned bits = address_family_bits(e->address.family);
        return e->prefixlen == 0 || e->prefixlen > bits ? bits : e->prefixlen;
}

#define NAME_FIRST "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"

/* The only names that may enter command text; anything else could change its syntax. */
static bool name_is_safe(const char *n) {
        size_t len = n ? strlen(n) : 0;

        return len > 0 && len <= NFT_SET_NAME_MAX && strchr(NAME_FIRST, n[0]) &&
                strspn(n, NAME_FIRST "0123456789") == len;
}

NftSet *nft_set_free(NftSet *s) {
        if (!s)
                return NULL;
        if (s->ctx)
                nft_ctx_free(s->ctx);
        free(s->family);
        free(s->table);
        free(s->set4);
        free(s->set6);
        free(s);
        return NULL;
}

int nft_set_new(const FirewallConfig *c, NftSet **ret) {
        _cleanup_(nft_set_freep) NftSet *s = NULL;
        const char *family, *table, *set4, *set6;

        assert(c);
        assert(ret);

        family = c->family ?: "inet";
        table = c->table ?: "vpopguard";
        set4 = c->set4 ?: "banned4";
        set6 = c->set6 ?: "banned6";

        if (!streq(family, "inet") && !streq(family, "ip") && !streq(family, "ip6"))
                return -EINVAL;
        if (!name_is_safe(table) || !name_is_safe(set4) || !name_is_safe(set6))
                return -EINVAL;
        if (MAX(strlen(set4), strlen(set6)) > NFT_SET_NAME_MAX - NFT_SET_SUFFIX_MAX)
                return -EINVAL; /* no room for the prefix sets' names */
        if (streq(family, "inet") && streq(set4, set6))
                return -EINVAL;

        s = calloc(1, sizeof(NftSet));
        if (!s)
                return -ENOMEM;
        s->create_table = c->create_table;
        s->family = strdup(family);
        s->table = strdup(table);
        if (!s->family || !s->table)
                return -ENOMEM;
        if (!streq(family, "ip6") && !(s->set4 = strdup(set4)))
                return -ENOMEM;
        if (!streq(family, "ip") && !(s->set6 = strdup(set6)))
                return -ENOMEM;

        s->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!s->ctx)
                return -ENOMEM;
        if (nft_ctx_buffer_output(s->ctx) != 0 || nft_ctx_buffer_error(s->ctx) != 0)
                return -ENOMEM;
        nft_ctx_output_set_flags(s->ctx, OUTPUT_FLAGS_BASE);

        *ret = TAKE_PTR(s);
        return 0;
}

const char *nft_set_error(const NftSet *s) {
        return s ? s->error : "";
}

_printf_(2, 3)
static void set_error(NftSet *s, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(s->error, sizeof(s->error), format, ap);
        va_end(ap);
}

static void append_error(NftSet *s, const char *text, size_t len) {
        size_t used = strlen(s->error);

        if (used + 1 >= sizeof(s->error))
                return;
        len = MIN(len, sizeof(s->error) - used - 1);
        memcpy(s->error + used, text, len);
        s->error[used + len] = 0;
}

/* libnftables writes "Error: <message>", a line of the command and a line of carets per error.
 * For a command buffer of several lines, version 1.0.6 quotes the wrong line, so keep only the
 * messages, on one line for the log, without repeats. */
static void set_error_from_nft(NftSet *s, const char *text) {
        const char *last = NULL;
        size_t last_len = 0;

        s->error[0] = 0;
        for (const char *p = text; *p; ) {
                const char *eol = strchrnul(p, '\n'), *b = p, *e = eol;

                p = *eol ? eol + 1 : eol;
                while (e > b && strchr(" \t\r", e[-1]))
                        e--;
                if ((size_t) (e - b) <= 7 || strncmp(b, "Error: ", 7) != 0)
                        continue;
                b += 7;
                if (last && last_len == (size_t) (e - b) && strncmp(last, b, last_len) == 0)
                        continue;
                if (s->error[0])
                        append_error(s, "; ", 2);
                append_error(s, b, e - b);
                last = b;
                last_len = e - b;
        }
        if (!s->error[0])
                append_error(s, text, strcspn(text, "\n"));
        if (!s->error[0])
                set_error(s, "libnftables failed without an error message");
}

/* libnftables only says -1; its text carries the kernel's errno as strerror() wrote it in this
 * same process. */
static int errno_from_nft(const char *text) {
        static const int errors[] = { ENOENT, EEXIST, EPERM, ENOMEM, EBUSY, ENOSPC, EOPNOTSUPP };

        for (size_t i = 0; i < ELEMENTSOF(errors); i++)
                if (strstr(text, strerror(errors[i])))
                        return -errors[i];
        return -EIO;
}

static int run_with(NftSet *s, const char *cmd, unsigned flags, json_t **ret) {
        const char *out, *err;
        int r;

        nft_ctx_output_set_flags(s->ctx, OUTPUT_FLAGS_BASE | flags);
        r = nft_run_cmd_from_buffer(s->ctx, cmd);
        /* Fetching rewinds the buffers, so do it every time. */
        out = nft_ctx_get_output_buffer(s->ctx);
        err = nft_ctx_get_error_buffer(s->ctx);
        nft_ctx_output_set_flags(s->ctx, OUTPUT_FLAGS_BASE);

        if (r < 0) {
                set_error_from_nft(s, err);
                return errno_from_nft(err);
        }
        if (ret) {
                json_error_t jerr;
                json_t *j = json_loads(out, 0, &jerr);

                if (!j) {
                        set_error(s, "Cannot parse libnftables' JSON output: %s (line %d)", jerr.text, jerr.line);
                        return -EBADMSG;
                }
                *ret = j;
        }
        return 0;
}

static int run(NftSet *s, const char *cmd, bool json, json_t **ret) {
        return run_with(s, cmd, json ? NFT_CTX_OUTPUT_JSON : 0, ret);
}

/* Command text is written to a memstream (stdio grows it geometrically, so 100 000 elements
 * cost linear time), then run as one transaction. Closes m; nothing written, nothing run. */
static int run_memstream(NftSet *s, FILE *m, char **buf, size_t *size) {
        bool bad = fflush(m) != 0 || ferror(m);

        if (fclose(m) != 0 || bad || !*buf)
                return -ENOMEM;
        return *size > 0 ? run(s, *buf, false, NULL) : 0;
}

/* One set of ours: the single-address set of a family, or the set of its prefixes of one length. */
typedef struct SetRef {
        int family;
        unsigned prefixlen; /* the family's length for the single-address set */
        char name[NFT_SET_NAME_MAX + 1];
} SetRef;

static const char *base_name(const NftSet *s, int family) {
        return family == AF_INET ? s->set4 : family == AF_INET6 ? s->set6 : NULL;
}

bool nft_set_has_family(const NftSet *s, int family) {
        return base_name(s, family) != NULL;
}

/* false if the family has no set. */
static bool set_ref(const NftSet *s, int family, unsigned prefixlen, SetRef *ret) {
        const char *base = base_name(s, family);
        unsigned bits;

        if (!base)
                return false;
        bits = address_family_bits(family);
        ret->family = family;
        ret->prefixlen = prefixlen == 0 || prefixlen >= bits ? bits : prefixlen;
        if (ret->prefixlen == bits)
                (void) snprintf(ret->name, sizeof(ret->name), "%s", base);
        else
                (void) snprintf(ret->name, sizeof(ret->name), "%s_%u", base, prefixlen);
        return true;
}

static bool set_ref_is_prefix(const SetRef *r) {
        return r->prefixlen < address_family_bits(r->family);
}

/* Our sets, one per call (*iter starts at 0): per family the single-address set, then the prefix
 * sets, shortest first. */
static bool next_set(const NftSet *s, unsigned *iter, SetRef *ret) {
        for (; *iter < 2 * 129; (*iter)++) {
                int family = *iter < 129 ? AF_INET : AF_INET6;
                unsigned len = *iter % 129;

                if ((len == 0 || s->prefix[family_index(family)][len]) && set_ref(s, family, len, ret)) {
                        (*iter)++;
                        return true;
                }
        }
        return false;
}

/* The mask of a prefix set's rule: 255.255.255.0 for /24, ffff:ffff:ffff:ffff:: for /64. */
static Address prefix_mask(const SetRef *r) {
        Address mask = { .family = r->family };

        memset(mask.bytes, 0xff, sizeof(mask.bytes));
        address_mask(&mask, r->prefixlen);
        return mask;
}

static const char *set_type(const SetRef *r) {
        return r->family == AF_INET ? "ipv4_addr" : "ipv6_addr";
}

/* What the rule for set r says after "add rule <family> <table> <chain> ". "and" is nft's
 * spelling of "&" that needs no quoting in a shell. */
static const char *rule_text(const SetRef *r, char buf[static 2 * NFT_SET_NAME_MAX]) {
        const char *proto = r->family == AF_INET ? "ip" : "ip6";

        if (set_ref_is_prefix(r)) {
                Address mask = prefix_mask(r);
                char m[ADDRESS_STRING_MAX];

                (void) snprintf(buf, 2 * NFT_SET_NAME_MAX, "%s saddr and %s @%s drop", proto,
                                address_to_string(&mask, m), r->name);
        } else
                (void) snprintf(buf, 2 * NFT_SET_NAME_MAX, "%s saddr @%s drop", proto, r->name);
        return buf;
}

static bool object_is_ours(json_t *o, const NftSet *s) {
        return streq_ptr(json_string_value(json_object_get(o, "family")), s->family) &&
               streq_ptr(json_string_value(json_object_get(o, "table")), s->table);
}

static bool table_exists(json_t *root, const NftSet *s) {
        json_t *item;
        size_t i;

        json_array_foreach(json_object_get(root, "nftables"), i, item) {
                json_t *t = json_object_get(item, "table");
                if (t && streq_ptr(json_string_value(json_object_get(t, "family")), s->family) &&
                    streq_ptr(json_string_value(json_object_get(t, "name")), s->table))
                        return true;
        }
        return false;
}

static json_t *find_set(json_t *root, const NftSet *s, const char *name) {
        json_t *item;
        size_t i;

        json_array_foreach(json_object_get(root, "nftables"), i, item) {
                json_t *set = json_object_get(item, "set");
                if (set && object_is_ours(set, s) && streq_ptr(json_string_value(json_object_get(set, "name")), name))
                        return set;
        }
        return NULL;
}

static bool set_has_flag(json_t *set, const char *flag) {
        json_t *flags = json_object_get(set, "flags"), *f;
        size_t i;

        if (json_is_string(flags)) /* a single flag may be written without the array */
                return streq(json_string_value(flags), flag);
        json_array_foreach(flags, i, f)
                if (streq_ptr(json_string_value(f), flag))
                        return true;
        return false;
}

/* Whether a "match" expression looks up set r with the source address, masked for a prefix set. */
static bool match_is_rule_for(json_t *match, const SetRef *r) {
        char at[NFT_SET_NAME_MAX + 2];
        json_t *left = json_object_get(match, "left"), *payload;
        const char *mask;
        Address a, want = prefix_mask(r);

        (void) snprintf(at, sizeof(at), "@%s", r->name);
        if (!streq_ptr(json_string_value(json_object_get(match, "right")), at) ||
            streq_ptr(json_string_value(json_object_get(match, "op")), "!="))
                return false;
        if (set_ref_is_prefix(r)) {
                json_t *and = json_object_get(left, "&");
                payload = json_array_get(and, 0);
                mask = json_string_value(json_array_get(and, 1));
                if (json_array_size(and) != 2 || !mask || address_parse(mask, strlen(mask), &a) < 0 ||
                    !address_equal(&a, &want))
                        return false;
        } else
                payload = left;
        payload = json_object_get(payload, "payload");
        return streq_ptr(json_string_value(json_object_get(payload, "protocol")), r->family == AF_INET ? "ip" : "ip6") &&
               streq_ptr(json_string_value(json_object_get(payload, "field")), "saddr");
}

/* The chain of a rule of our table that uses set r as it should, or NULL. */
static const char *find_rule(json_t *root, const NftSet *s, const SetRef *r) {
        json_t *item, *e;
        size_t i, k;

        json_array_foreach(json_object_get(root, "nftables"), i, item) {
                json_t *rule = json_object_get(item, "rule");
                if (!rule || !object_is_ours(rule, s))
                        continue;
                json_array_foreach(json_object_get(rule, "expr"), k, e) {
                        json_t *match = json_object_get(e, "match");
                        if (match && match_is_rule_for(match, r))
                                return json_string_value(json_object_get(rule, "chain")) ?: NFT_SET_CHAIN;
                }
        }
        return NULL;
}

/* Our table's sets and rules, without elements. Terse: without it libnftables 1.0.6 fetches
 * every element first (2 s at 100 000 elements, 0.04 s terse), at every start, reload and
 * repair; and of the terse listings that include rules, only that of the ruleset skips them
 * ("list table" fetches them all the same). A missing table is no error here. */
static int query_ruleset(NftSet *s, json_t **ret) {
        char cmd[64];

        (void) snprintf(cmd, sizeof(cmd), "list ruleset %s", s->family);
        return run_with(s, cmd, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_TERSE, ret);
}

static const char *prefix_option(int family) {
        return family == AF_INET ? "IPv4Prefix" : "IPv6Prefix";
}

/* ignore_interval: when diagnosing a failed CreateTable=yes, which recreates such a set. */
static int check_set(NftSet *s, json_t *root, const SetRef *r, bool ignore_interval) {
        json_t *set = find_set(root, s, r->name);
        char rule[2 * NFT_SET_NAME_MAX], why[64] = "";
        bool timeout, interval;
        const char *t, *chain;

        if (set_ref_is_prefix(r)) {
                (void) snprintf(why, sizeof(why), " (for bans of /%u prefixes, %s=%u)", r->prefixlen,
                                prefix_option(r->family), r->prefixlen);
                /* Where the admin drops single addresses, the prefixes belong too. */
                SetRef single;
                (void) set_ref(s, r->family, 0, &single);
                chain = find_rule(root, s, &single) ?: NFT_SET_CHAIN;
        } else
                chain = NFT_SET_CHAIN;

        if (!set) {
                char add_rule[4 * NFT_SET_NAME_MAX] = "";

                if (set_ref_is_prefix(r))
                        (void) snprintf(add_rule, sizeof(add_rule), " and the rule that uses it with: nft add set %s %s %s "
                                        "'{ type %s; flags timeout; }'; nft add rule %s %s %s %s",
                                        s->family, s->table, r->name, set_type(r), s->family, s->table, chain,
                                        rule_text(r, rule));
                else
                        (void) snprintf(add_rule, sizeof(add_rule), " with: nft add set %s %s %s '{ type %s; flags timeout; }'",
                                        s->family, s->table, r->name, set_type(r));
                set_error(s, "Set %s %s %s does not exist%s; create it%s", s->family, s->table, r->name, why, add_rule);
                return -ENOENT;
        }
        t = json_string_value(json_object_get(set, "type"));
        timeout = set_has_flag(set, "timeout");
        interval = set_has_flag(set, "interval") && !ignore_interval;
        if (!streq_ptr(t, set_type(r)) || !timeout || interval) {
                set_error(s, "Set %s %s %s has type %s%s%s, expected type %s with flags timeout%s; recreate it with: "
                          "nft delete set %s %s %s; nft add set %s %s %s '{ type %s; flags timeout; }' "
                          "(rules that use it must go first)",
                          s->family, s->table, r->name, t ?: "(concatenation)", timeout ? "" : " without flag timeout",
                          interval ? " with flag interval" : "", set_type(r),
                          interval ? " only (libnftables reads every element of an interval set before each change)" : "",
                          s->family, s->table, r->name, s->family, s->table, r->name, set_type(r));
                return -EMEDIUMTYPE;
        }
        if (set_ref_is_prefix(r) && !ignore_interval && !find_rule(root, s, r)) {
                set_error(s, "No rule of table %s %s matches the source address masked to /%u against set %s%s; add it with: "
                          "nft add rule %s %s %s %s",
                          s->family, s->table, r->prefixlen, r->name, why, s->family, s->table, chain, rule_text(r, rule));
                return -ENOENT;
        }
        return 0;
}

/* CreateTable=no, and the diagnosis of a failed CreateTable=yes (for_create: the rules need not
 * be there, sets with flags interval are recreated). */
static int verify(NftSet *s, bool for_create) {
        json_auto_t *root = NULL;
        unsigned iter = 0;
        SetRef r;
        int k;

        k = query_ruleset(s, &root);
        if (k < 0)
                return k;
        if (!table_exists(root, s)) {
                set_error(s, "Table %s %s does not exist; create it with: nft add table %s %s",
                          s->family, s->table, s->family, s->table);
                return -ENOENT;
        }
        while (next_set(s, &iter, &r))
                if ((k = check_set(s, root, &r, for_create)) < 0)
                        return k;
        return 0;
}

/* A set of another type or flags makes the transaction fail with EEXIST, or earlier with a
 * "datatype mismatch" for the rule that uses it. Say which set is wrong, with -EEXIST for both. */
static int diagnose_ensure(NftSet *s, int error) {
        char nft_error[sizeof(s->error)];

        memcpy(nft_error, s->error, sizeof(nft_error));
        if (verify(s, true) != -EMEDIUMTYPE) {
                memcpy(s->error, nft_error, sizeof(s->error));
                return error;
        }
        append_error(s, " (libnftables: ", 15);
        append_error(s, nft_error, strlen(nft_error));
        append_error(s, ")", 1);
        return -EEXIST;
}

int nft_set_ensure(NftSet *s) {
        _cleanup_free_ char *buf = NULL;
        json_auto_t *root = NULL;
        char rule[2 * NFT_SET_NAME_MAX];
        const char *f, *t;
        unsigned iter;
        SetRef r;
        size_t size;
        FILE *m;
        int k;

        assert(s);
        s->error[0] = 0;

        if (!s->create_table)
                return verify(s, false);

        f = s->family;
        t = s->table;
        k = query_ruleset(s, &root);
        if (k < 0)
                return k;

        /* "add" leaves what exists alone (and fails with EEXIST if it differs); the chain's rules
         * are flushed and added again in the same transaction, so they never pile up and are
         * never missing. The sets keep their elements, but for one with flags interval: it can
         * only be deleted (once the flushed rules no longer use it) and made anew. */
        m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        fprintf(m, "add table %s %s\n", f, t);
        fprintf(m, "add chain %s %s %s { type filter hook input priority filter - 10; policy accept; }\n",
                f, t, NFT_SET_CHAIN);
        fprintf(m, "flush chain %s %s %s\n", f, t, NFT_SET_CHAIN);
        for (iter = 0; next_set(s, &iter, &r); ) {
                json_t *set = find_set(root, s, r.name);
                if (set && set_has_flag(set, "interval") &&
                    streq_ptr(json_string_value(json_object_get(set, "type")), set_type(&r)))
                        fprintf(m, "delete set %s %s %s\n", f, t, r.name);
        }
        for (iter = 0; next_set(s, &iter, &r); )
                fprintf(m, "add set %s %s %s { type %s; flags timeout; }\n", f, t, r.name, set_type(&r));
        for (iter = 0; next_set(s, &iter, &r); )
                fprintf(m, "add rule %s %s %s %s\n", f, t, NFT_SET_CHAIN, rule_text(&r, rule));
        k = run_memstream(s, m, &buf, &size);
        if (k < 0 && k != -ENOMEM)
                return diagnose_ensure(s, k);
        return k;
}

int nft_set_exists(NftSet *s) {
        json_auto_t *root = NULL;
        unsigned iter = 0;
        SetRef r;
        int k;

        assert(s);
        s->error[0] = 0;

        k = query_ruleset(s, &root);
        if (k < 0)
                return k;
        if (!table_exists(root, s))
                return 0;
        while (next_set(s, &iter, &r))
                if (!find_set(root, s, r.name))
                        return 0;
        return 1;
}

/* An element as written: its set's length and network address, its timeout. */
typedef struct Item {
        AddressPrefix prefix;
        usec_t timeout;
} Item;

static Item item_of(const NftElement *e) {
        return (Item) { address_prefix_of(&e->address, element_length(e)), e->timeout };
}

/* By family, length (so each set's elements are adjacent), then address. */
static int item_compare(const void *a, const void *b) {
        const AddressPrefix *p = &((const Item *) a)->prefix, *q = &((const Item *) b)->prefix;

        if (p->address.family != q->address.family)
                return p->address.family < q->address.family ? -1 : 1;
        if (p->prefixlen != q->prefixlen)
                return (int) p->prefixlen - (int) q->prefixlen;
        return address_compare(&p->address, &q->address);
}

static uint64_t timeout_sec(usec_t t) {
        return MAX(t / USEC_PER_SEC + (t % USEC_PER_SEC != 0), (usec_t) 1);
}

typedef enum WriteMode {
        WRITE_ADD,    /* with the item's timeout; USEC_INFINITY: none */
        WRITE_GUARD,  /* added with NFT_SET_REMOVE_TIMEOUT_SEC, so that the delete finds it */
        WRITE_DELETE,
} WriteMode;

/* The adds grouped by set (family, then length) in linear time, each set's in the order given:
 * sorting a restore's chunks by address cost more than writing them, and nft does not care. */
static void group_by_set(const Item *in, Item *out, size_t n) {
        size_t start[2 * 129 + 1] = {};

        for (size_t i = 0; i < n; i++)
                start[family_index(in[i].prefix.address.family) * 129 + in[i].prefix.prefixlen + 1]++;
        for (size_t k = 1; k < ELEMENTSOF(start); k++)
                start[k] += start[k - 1];
        for (size_t i = 0; i < n; i++)
                out[start[family_index(in[i].prefix.address.family) * 129 + in[i].prefix.prefixlen]++] = in[i];
}

/* items: of families that have a set, each set's adjacent (sorted by item_compare(), or
 * grouped by group_by_set()). One command per set. */
static void write_items(FILE *m, const NftSet *s, WriteMode mode, const Item *items, size_t n) {
        for (size_t i = 0; i < n; ) {
                SetRef r;
                size_t end = i;

                while (end < n && items[end].prefix.address.family == items[i].prefix.address.family &&
                       items[end].prefix.prefixlen == items[i].prefix.prefixlen)
                        end++;
                if (!set_ref(s, items[i].prefix.address.family, items[i].prefix.prefixlen, &r)) {
                        i = end;
                        continue;
                }
                fprintf(m, "%s element %s %s %s {\n", mode == WRITE_DELETE ? "delete" : "add", s->family, s->table, r.name);
                /* A restore writes a million of these lines: no printf. */
                for (; i < end; i++) {
                        char line[ADDRESS_STRING_MAX + sizeof(" timeout s,\n") + TEXT_U64_DECIMAL_MAX], *e;

                        address_to_string(&items[i].prefix.address, line);
                        e = line + strlen(line);
                        if (mode == WRITE_GUARD || (mode == WRITE_ADD && items[i].timeout != USEC_INFINITY)) {
                                e = stpcpy(e, " timeout ");
                                e = text_put_u64(e, mode == WRITE_GUARD ? (uint64_t) NFT_SET_REMOVE_TIMEOUT_SEC
                                                                        : timeout_sec(items[i].timeout));
                                *e++ = 's';
                        }
                        e = stpcpy(e, ",\n");
                        fwrite_unlocked(line, 1, (size_t) (e - line), m);
                }
                fputs("}\n", m);
        }
}

static int check_elements(NftSet *s, const NftElement *elements, size_t n, bool need_set) {
        for (size_t i = 0; i < n; i++) {
                int family = elements[i].address.family;

                if (family != AF_INET && family != AF_INET6)
                        return -EINVAL;
                if (elements[i].prefixlen > address_family_bits(family))
                        return -EINVAL;
                if (need_set && !base_name(s, family)) {
                        char a[ADDRESS_STRING_MAX];

                        set_error(s, "Cannot ban %s: table %s %s has no %s set",
                                  address_to_string(&elements[i].address, a), s->family, s->table,
                                  family == AF_INET ? "IPv4" : "IPv6");
                        return -EAFNOSUPPORT;
                }
        }
        return 0;
}

int nft_set_apply(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes) {
        _cleanup_free_ Item *add = NULL, *del = NULL, *grouped = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size, n_add = 0, n_del = 0, k = 0;
        FILE *m;
        int r;

        assert(s);
        assert(adds || n_adds == 0);
        assert(removes || n_removes == 0);
        s->error[0] = 0;

        r = check_elements(s, adds, n_adds, true);
        if (r < 0)
                return r;
        r = check_elements(s, removes, n_removes, false);
        if (r < 0)
                return r;
        if (n_adds == 0 && n_removes == 0)
                return 0;

        add = reallocarray(NULL, MAX(n_adds, 1U), sizeof(Item));
        grouped = reallocarray(NULL, MAX(n_adds, 1U), sizeof(Item));
        del = reallocarray(NULL, n_removes + n_adds + 1, sizeof(Item));
        if (!add || !grouped || !del)
                return -ENOMEM;
        for (size_t i = 0; i < n_removes; i++)
                if (base_name(s, removes[i].address.family)) { /* else it cannot be present */
                        del[n_del++] = item_of(&removes[i]);
                        nft_set_require_prefix(s, removes[i].address.family, element_length(&removes[i]));
                }
        /* An element without timeout replaces one that has a timeout only on kernels that refresh
         * re-added elements; older ones would keep the timeout and drop a permanent ban. So it is
         * removed first, in the same transaction, and added afresh. */
        for (size_t i = 0; i < n_adds; i++) {
                add[n_add++] = item_of(&adds[i]);
                if (adds[i].timeout == USEC_INFINITY)
                        del[n_del++] = item_of(&adds[i]);
                nft_set_require_prefix(s, adds[i].address.family, element_length(&adds[i]));
        }
        group_by_set(add, grouped, n_add);
        qsort(del, n_del, sizeof(Item), item_compare);
        /* A duplicate would be deleted twice, which fails. */
        for (size_t i = 0; i < n_del; i++)
                if (k == 0 || item_compare(&del[k - 1], &del[i]) != 0)
                        del[k++] = del[i];
        n_del = k;

        /* "delete element" of an absent element fails with ENOENT and aborts the whole
         * transaction, so each removal is added first (harmless if present), then deleted. The
         * adds come last: what is both removed and added ends up present. */
        m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        write_items(m, s, WRITE_GUARD, del, n_del);
        write_items(m, s, WRITE_DELETE, del, n_del);
        write_items(m, s, WRITE_ADD, grouped, n_add);
        return run_memstream(s, m, &buf, &size);
}

int nft_set_add(NftSet *s, const NftElement *elements, size_t n) {
        return nft_set_apply(s, elements, n, NULL, 0);
}

int nft_set_remove(NftSet *s, const Address *addresses, size_t n) {
        _cleanup_free_ NftElement *removes = NULL;

        removes = reallocarray(NULL, MAX(n, 1U), sizeof(NftElement));
        if (!removes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                removes[i] = (NftElement) { .address = addresses[i] };
        return nft_set_apply(s, NULL, 0, removes, n);
}

/* Appends the elements of one set. Elements we cannot represent (a range, an address of the
 * other family) are skipped. */
static int list_one(NftSet *s, const SetRef *ref, NftElement **array, size_t *n) {
        char cmd[64 + 2 * NFT_SET_NAME_MAX];
        json_auto_t *root = NULL;
        json_t *set, *elems, *e;
        NftElement *grown;
        size_t i;
        int r;

        (void) snprintf(cmd, sizeof(cmd), "list set %s %s %s", s->family, s->table, ref->name);
        r = run(s, cmd, true, &root);
        if (r < 0)
                return r;
        set = find_set(root, s, ref->name);
        if (!set) {
                set_error(s, "Set %s %s %s missing from libnftables' listing", s->family, s->table, ref->name);
                return -EBADMSG;
        }
        elems = json_object_get(set, "elem");
        if (json_array_size(elems) == 0)
                return 0;

        grown = reallocarray(*array, *n + json_array_size(elems), sizeof(NftElement));
        if (!grown)
                return -ENOMEM;
        *array = grown;

        json_array_foreach(elems, i, e) {
                json_t *obj = json_object_get(e, "elem");
                const char *text = json_string_value(obj ? json_object_get(obj, "val") : e);
                NftElement *x = &(*array)[*n];

                if (!text || address_parse(text, strlen(text), &x->address) < 0 || x->address.family != ref->family)
                        continue;
                if (set_ref_is_prefix(ref)) {
                        /* The rule masks the source; an element with host bits matches that network. */
                        address_mask(&x->address, ref->prefixlen);
                        x->prefixlen = (uint8_t) ref->prefixlen;
                } else
                        x->prefixlen = 0;

                x->timeout = 0;
                if (json_object_get(obj, "timeout")) {
                        json_int_t expires = json_integer_value(json_object_get(obj, "expires"));

                        /* libnftables truncates to whole seconds; an element in its last
                         * second still has a timeout, so do not report it as permanent. */
                        x->timeout = expires > 0 ? (usec_t) expires * USEC_PER_SEC : 1;
                }
                (*n)++;
        }
        return 0;
}

int nft_set_list(NftSet *s, NftElement **ret, size_t *ret_n) {
        _cleanup_free_ NftElement *array = NULL;
        unsigned iter = 0;
        size_t n = 0;
        SetRef r;
        int k;

        assert(s);
        assert(ret);
        assert(ret_n);
        s->error[0] = 0;

        while (next_set(s, &iter, &r))
                if ((k = list_one(s, &r, &array, &n)) < 0)
                        return k;

        *ret = TAKE_PTR(array);
        *ret_n = n;
        return 0;
}
