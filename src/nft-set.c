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
#include "sorted-array.h"

#define NFT_SET_CHAIN "input"
#define NFT_SET_NAME_MAX 255 /* the kernel's NFT_NAME_MAXLEN without the NUL */
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
        /* Per family (0: IPv4, 1: IPv6): prefixes will be added, of this length (for messages),
         * so the set needs flags interval; and whether the kernel's set was last seen with it. */
        bool need_interval[2];
        unsigned interval_prefixlen[2];
        bool has_interval[2];
        char error[NFT_SET_ERROR_MAX]; /* of the last failed call, one line */
};

static int family_index(int family) {
        return family == AF_INET6;
}

void nft_set_require_interval(NftSet *s, int family, unsigned prefixlen) {
        int i = family_index(family);

        assert(s);
        if (!s->need_interval[i] || prefixlen < s->interval_prefixlen[i])
                s->interval_prefixlen[i] = prefixlen;
        s->need_interval[i] = true;
}

static AddressPrefix element_prefix(const NftElement *e) {
        return address_prefix_of(&e->address, e->prefixlen == 0 ? 128 : e->prefixlen);
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

/* The "set" objects of a JSON listing that belong to our table. "list sets table ..." in
 * libnftables 1.0.6 returns the sets of every table of the family, so filter here. */
static json_t *find_set(json_t *root, const NftSet *s, const char *name) {
        json_t *array = json_object_get(root, "nftables"), *item;
        size_t i;

        json_array_foreach(array, i, item) {
                json_t *set = json_object_get(item, "set");

                if (set &&
                    streq_ptr(json_string_value(json_object_get(set, "family")), s->family) &&
                    streq_ptr(json_string_value(json_object_get(set, "table")), s->table) &&
                    streq_ptr(json_string_value(json_object_get(set, "name")), name))
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

/* Lists the sets of our table without their elements. Terse: without it libnftables 1.0.6
 * fetches every element first, and the kernel lists a set in time quadratic in its size (19 s
 * for 500 000 elements, against 0.04 s terse), at every start, reload and repair. */
static int query_sets(NftSet *s, json_t **ret) {
        char cmd[64 + NFT_SET_NAME_MAX];

        (void) snprintf(cmd, sizeof(cmd), "list sets table %s %s", s->family, s->table);
        return run_with(s, cmd, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_TERSE, ret);
}

static const char *set_flags_text(bool interval) {
        return interval ? "interval,timeout" : "timeout";
}

static int check_set(NftSet *s, json_t *root, const char *name, const char *type, int family) {
        json_t *set = find_set(root, s, name);
        int i = family_index(family);
        bool timeout, interval;
        const char *t;

        if (!set) {
                set_error(s, "Set %s %s %s does not exist; create it with: nft add set %s %s %s '{ type %s; flags %s; }'",
                          s->family, s->table, name, s->family, s->table, name, type,
                          set_flags_text(s->need_interval[i]));
                return -ENOENT;
        }
        t = json_string_value(json_object_get(set, "type"));
        timeout = set_has_flag(set, "timeout");
        interval = set_has_flag(set, "interval");
        s->has_interval[i] = interval;
        if (!streq_ptr(t, type) || !timeout || (s->need_interval[i] && !interval)) {
                char why[64] = "";

                if (s->need_interval[i] && !interval)
                        (void) snprintf(why, sizeof why, " (%s=%u needs it)",
                                        family == AF_INET ? "IPv4Prefix" : "IPv6Prefix", s->interval_prefixlen[i]);
                set_error(s, "Set %s %s %s has type %s%s%s%s, expected type %s with flags %s; recreate it with: "
                          "nft delete set %s %s %s; nft add set %s %s %s '{ type %s; flags %s; }' "
                          "(rules that use it must go first)",
                          s->family, s->table, name, t ?: "(concatenation)",
                          timeout ? "" : " without flag timeout",
                          s->need_interval[i] && !interval ? " without flag interval" : "", why,
                          type, set_flags_text(s->need_interval[i]),
                          s->family, s->table, name, s->family, s->table, name, type,
                          set_flags_text(s->need_interval[i] || interval));
                return -EMEDIUMTYPE;
        }
        return 0;
}

static int verify(NftSet *s) {
        json_auto_t *root = NULL;
        int r;

        r = query_sets(s, &root);
        if (r == -ENOENT)
                set_error(s, "Table %s %s does not exist; create it with: nft add table %s %s",
                          s->family, s->table, s->family, s->table);
        if (r < 0)
                return r;
        if (s->set4 && (r = check_set(s, root, s->set4, "ipv4_addr", AF_INET)) < 0)
                return r;
        if (s->set6 && (r = check_set(s, root, s->set6, "ipv6_addr", AF_INET6)) < 0)
                return r;
        return 0;
}

/* A set of another type or flags makes the transaction fail with EEXIST, or earlier with a
 * "datatype mismatch" for the rule that uses it. Say which set is wrong, with -EEXIST for both. */
static int diagnose_ensure(NftSet *s, int error) {
        char nft_error[sizeof(s->error)];

        memcpy(nft_error, s->error, sizeof(nft_error));
        if (verify(s) != -EMEDIUMTYPE) {
                memcpy(s->error, nft_error, sizeof(s->error));
                return error;
        }
        append_error(s, " (libnftables: ", 15);
        append_error(s, nft_error, strlen(nft_error));
        append_error(s, ")", 1);
        return -EEXIST;
}

/* What "add set" must say for one family's set, given what exists: flags interval where
 * required or already there (dropping it would fail with EEXIST), and whether the set must be
 * deleted first because it lacks a required interval flag. A set of the wrong type or without
 * timeout is left for the "add set" to refuse. */
static void plan_set(NftSet *s, json_t *root, const char *name, const char *type, int family,
                     bool *ret_interval, bool *ret_recreate) {
        json_t *set = root ? find_set(root, s, name) : NULL;
        int i = family_index(family);
        bool interval = set && set_has_flag(set, "interval");
        bool right = set && streq_ptr(json_string_value(json_object_get(set, "type")), type) &&
                set_has_flag(set, "timeout");

        *ret_recreate = right && s->need_interval[i] && !interval;
        *ret_interval = s->need_interval[i] || interval;
        s->has_interval[i] = *ret_interval;
}

int nft_set_ensure(NftSet *s) {
        _cleanup_free_ char *buf = NULL;
        json_auto_t *root = NULL;
        bool interval4 = false, interval6 = false, recreate4 = false, recreate6 = false;
        const char *f, *t;
        size_t size;
        FILE *m;
        int r;

        assert(s);
        s->error[0] = 0;

        if (!s->create_table)
                return verify(s);

        f = s->family;
        t = s->table;

        r = query_sets(s, &root);
        if (r < 0 && r != -ENOENT)
                return r;
        s->error[0] = 0;
        if (s->set4)
                plan_set(s, root, s->set4, "ipv4_addr", AF_INET, &interval4, &recreate4);
        if (s->set6)
                plan_set(s, root, s->set6, "ipv6_addr", AF_INET6, &interval6, &recreate6);

        /* "add" leaves what exists alone (and fails with EEXIST if it differs); the chain's rules
         * are flushed and added again in the same transaction, so they never pile up and are
         * never missing. The sets keep their elements, but for one that must gain the interval
         * flag: it can only be deleted (once the flushed rules no longer use it) and made anew. */
        m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        fprintf(m, "add table %s %s\n", f, t);
        fprintf(m, "add chain %s %s %s { type filter hook input priority filter - 10; policy accept; }\n",
                f, t, NFT_SET_CHAIN);
        fprintf(m, "flush chain %s %s %s\n", f, t, NFT_SET_CHAIN);
        if (recreate4)
                fprintf(m, "delete set %s %s %s\n", f, t, s->set4);
        if (recreate6)
                fprintf(m, "delete set %s %s %s\n", f, t, s->set6);
        if (s->set4)
                fprintf(m, "add set %s %s %s { type ipv4_addr; flags %s; }\n", f, t, s->set4, set_flags_text(interval4));
        if (s->set6)
                fprintf(m, "add set %s %s %s { type ipv6_addr; flags %s; }\n", f, t, s->set6, set_flags_text(interval6));
        if (s->set4)
                fprintf(m, "add rule %s %s %s ip saddr @%s drop\n", f, t, NFT_SET_CHAIN, s->set4);
        if (s->set6)
                fprintf(m, "add rule %s %s %s ip6 saddr @%s drop\n", f, t, NFT_SET_CHAIN, s->set6);
        r = run_memstream(s, m, &buf, &size);
        if (r < 0 && r != -ENOMEM)
                return diagnose_ensure(s, r);
        return r;
}

int nft_set_exists(NftSet *s) {
        json_auto_t *root = NULL;
        int r;

        assert(s);
        s->error[0] = 0;

        r = query_sets(s, &root);
        if (r == -ENOENT) {
                s->error[0] = 0; /* a missing table is an answer, not a failure */
                return 0;
        }
        if (r < 0)
                return r;
        return (!s->set4 || find_set(root, s, s->set4)) && (!s->set6 || find_set(root, s, s->set6));
}

static const char *set_for(const NftSet *s, int family) {
        return family == AF_INET ? s->set4 : family == AF_INET6 ? s->set6 : NULL;
}

bool nft_set_has_family(const NftSet *s, int family) {
        return set_for(s, family) != NULL;
}

static uint64_t timeout_sec(usec_t t) {
        return MAX(t / USEC_PER_SEC + (t % USEC_PER_SEC != 0), (usec_t) 1);
}

static void write_add(FILE *m, const NftSet *s, int family, const NftElement *elements, size_t n) {
        const char *set = set_for(s, family);
        bool any = false;

        for (size_t i = 0; i < n; i++) {
                char a[ADDRESS_PREFIX_STRING_MAX];
                AddressPrefix p = element_prefix(&elements[i]);

                if (elements[i].address.family != family)
                        continue;
                if (!any)
                        fprintf(m, "add element %s %s %s {\n", s->family, s->table, set);
                any = true;
                if (elements[i].timeout == USEC_INFINITY)
                        fprintf(m, "%s,\n", address_prefix_to_string(&p, a));
                else
                        fprintf(m, "%s timeout %" PRIu64 "s,\n",
                                address_prefix_to_string(&p, a), timeout_sec(elements[i].timeout));
        }
        if (any)
                fputs("}\n", m);
}

static int check_elements(NftSet *s, const NftElement *elements, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int family = elements[i].address.family;

                if (family != AF_INET && family != AF_INET6)
                        return -EINVAL;
                if (elements[i].prefixlen > address_family_bits(family))
                        return -EINVAL;
                if (!set_for(s, family)) {
                        char a[ADDRESS_STRING_MAX];

                        set_error(s, "Cannot ban %s: table %s %s has no %s set",
                                  address_to_string(&elements[i].address, a), s->family, s->table,
                                  family == AF_INET ? "IPv4" : "IPv6");
                        return -EAFNOSUPPORT;
                }
        }
        return 0;
}

/* By family, address, then length: the prefixes inside p follow p. */
static int prefix_compare(const AddressPrefix *a, const AddressPrefix *b) {
        int c = address_compare(&a->address, &b->address);
        if (c != 0)
                return c;
        return (int) a->prefixlen - (int) b->prefixlen;
}

static int prefix_compare_qsort(const void *a, const void *b) {
        return prefix_compare(a, b);
}

/* prefixes: of one family, sorted, without duplicates. The remove_mode says how:
 * REMOVE_PRESENT deletes (the elements must be present), REMOVE_ANY adds each first (harmless
 * if present) and then deletes it, since "delete element" of an absent element fails with
 * ENOENT and aborts the whole transaction. */
typedef enum RemoveMode {
        REMOVE_PRESENT,
        REMOVE_ANY,
} RemoveMode;

static void write_remove(FILE *m, const NftSet *s, const AddressPrefix *prefixes, size_t n, RemoveMode mode) {
        const char *set = n > 0 ? set_for(s, prefixes[0].address.family) : NULL;
        char a[ADDRESS_PREFIX_STRING_MAX];

        if (!set) /* no set for this family: none of them can be present */
                return;
        if (mode == REMOVE_ANY) {
                fprintf(m, "add element %s %s %s {\n", s->family, s->table, set);
                for (size_t i = 0; i < n; i++)
                        fprintf(m, "%s timeout %ds,\n", address_prefix_to_string(&prefixes[i], a),
                                NFT_SET_REMOVE_TIMEOUT_SEC);
                fputs("}\n", m);
        }
        fprintf(m, "delete element %s %s %s {\n", s->family, s->table, set);
        for (size_t i = 0; i < n; i++)
                fprintf(m, "%s,\n", address_prefix_to_string(&prefixes[i], a));
        fputs("}\n", m);
}

/* A duplicate would be deleted twice, so duplicates are dropped. */
static int write_removes(FILE *m, const NftSet *s, const AddressPrefix *prefixes, size_t n, RemoveMode mode) {
        _cleanup_free_ AddressPrefix *sorted = NULL;
        size_t k = 0, k4 = 0;

        if (n == 0)
                return 0;
        sorted = reallocarray(NULL, n, sizeof(AddressPrefix));
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, prefixes, n * sizeof(AddressPrefix));
        qsort(sorted, n, sizeof(AddressPrefix), prefix_compare_qsort);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || prefix_compare(&sorted[k - 1], &sorted[i]) != 0)
                        sorted[k++] = sorted[i];
        while (k4 < k && sorted[k4].address.family == AF_INET) /* AF_INET sorts first */
                k4++;
        write_remove(m, s, sorted, k4, mode);
        write_remove(m, s, sorted + k4, k - k4, mode);
        return 0;
}

/* An element without timeout replaces one that has a timeout only on kernels that refresh
 * re-added elements; older ones would keep the timeout and drop a permanent ban. So each is
 * removed first (in the same transaction, as nft_set_remove() does) and then added afresh.
 * Not a prefix that takes the place of elements deleted before it (in first): it cannot be
 * there yet, and the kernel refuses that add-then-delete after those deletes (ENOENT). */
static int write_permanent_replaces(FILE *m, const NftSet *s, const NftElement *adds, size_t n_adds,
                                    const AddressPrefix *first, size_t n_first) {
        _cleanup_free_ AddressPrefix *permanent = NULL;
        size_t n = 0;

        for (size_t i = 0; i < n_adds; i++)
                n += adds[i].timeout == USEC_INFINITY;
        if (n == 0)
                return 0;
        permanent = reallocarray(NULL, n, sizeof(AddressPrefix));
        if (!permanent)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < n_adds; i++) {
                AddressPrefix p = element_prefix(&adds[i]);
                bool replaces = false;

                if (adds[i].timeout != USEC_INFINITY)
                        continue;
                for (size_t k = 0; k < n_first && !replaces; k++)
                        replaces = address_prefix_overlaps(&p, &first[k]);
                if (!replaces)
                        permanent[n++] = p;
        }
        return write_removes(m, s, permanent, n, REMOVE_ANY);
}

/* The added elements, sorted, for finding what overlaps them. */
typedef struct AddIndex {
        AddressPrefix *sorted;
        size_t n;
        bool lengths[2][129]; /* the prefix lengths among them */
} AddIndex;

static int add_index_build(const NftElement *adds, size_t n, AddIndex *ret) {
        *ret = (AddIndex) {};
        if (n == 0)
                return 0;
        ret->sorted = reallocarray(NULL, n, sizeof(AddressPrefix));
        if (!ret->sorted)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                ret->sorted[i] = element_prefix(&adds[i]);
                ret->lengths[family_index(adds[i].address.family)][ret->sorted[i].prefixlen] = true;
        }
        qsort(ret->sorted, n, sizeof(AddressPrefix), prefix_compare_qsort);
        ret->n = n;
        return 0;
}

static size_t add_index_lower_bound(const AddIndex *x, const AddressPrefix *p) {
        return sorted_lower_bound(x->sorted, x->n, sizeof(AddressPrefix), p, prefix_compare_qsort);
}

static bool add_index_has(const AddIndex *x, const AddressPrefix *p) {
        size_t i = add_index_lower_bound(x, p);
        return i < x->n && prefix_compare(&x->sorted[i], p) == 0;
}

typedef enum Overlap {
        OVERLAP_NONE,
        OVERLAP_EQUAL,   /* p is one of the added elements */
        OVERLAP_PARTIAL, /* p lies inside an added prefix, or holds an added element */
} Overlap;

static Overlap add_index_overlap(const AddIndex *x, const AddressPrefix *p) {
        const bool *lengths = x->lengths[family_index(p->address.family)];

        if (add_index_has(x, p))
                return OVERLAP_EQUAL;
        /* Inside a shorter added prefix: one lookup per length in use. */
        for (unsigned len = 0; len < p->prefixlen; len++) {
                if (!lengths[len])
                        continue;
                AddressPrefix q = address_prefix_of(&p->address, len);
                if (add_index_has(x, &q))
                        return OVERLAP_PARTIAL;
        }
        /* Holding a longer added element: those sort right after p and its shorter namesakes. */
        for (size_t i = add_index_lower_bound(x, p); i < x->n && address_prefix_contains(p, &x->sorted[i].address); i++)
                if (x->sorted[i].prefixlen > p->prefixlen)
                        return OVERLAP_PARTIAL;
        return OVERLAP_NONE;
}

int nft_set_apply(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes) {
        _cleanup_free_ AddressPrefix *first = NULL, *last = NULL;
        _cleanup_free_ char *buf = NULL;
        AddIndex index = {};
        size_t size, n_first = 0, n_last = 0;
        FILE *m;
        int r;

        assert(s);
        assert(adds || n_adds == 0);
        assert(removes || n_removes == 0);
        s->error[0] = 0;

        r = check_elements(s, adds, n_adds);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_removes; i++)
                if ((removes[i].address.family != AF_INET && removes[i].address.family != AF_INET6) ||
                    removes[i].prefixlen > address_family_bits(removes[i].address.family))
                        return -EINVAL;
        if (n_adds == 0 && n_removes == 0)
                return 0;

        /* Removals that overlap an added element go first, as plain deletes: an interval set
         * refuses the add while they are there, and refuses the add-then-delete of nft_set_remove()
         * once the add is in the same transaction. Removals of added elements are dropped. */
        first = reallocarray(NULL, MAX(n_removes, 1U), sizeof(AddressPrefix));
        last = reallocarray(NULL, MAX(n_removes, 1U), sizeof(AddressPrefix));
        if (!first || !last)
                return -ENOMEM;
        r = add_index_build(adds, n_adds, &index);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_removes; i++) {
                AddressPrefix p = element_prefix(&removes[i]);
                Overlap o = add_index_overlap(&index, &p);

                if (o == OVERLAP_PARTIAL)
                        first[n_first++] = p;
                else if (o == OVERLAP_NONE)
                        last[n_last++] = p;
        }
        free(index.sorted);

        m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        r = write_removes(m, s, first, n_first, REMOVE_PRESENT);
        if (r >= 0)
                r = write_permanent_replaces(m, s, adds, n_adds, first, n_first);
        if (r >= 0) {
                write_add(m, s, AF_INET, adds, n_adds);
                write_add(m, s, AF_INET6, adds, n_adds);
                r = write_removes(m, s, last, n_last, REMOVE_ANY);
        }
        if (r < 0) {
                fclose(m);
                return r;
        }
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

/* Appends the elements of one set. Elements we cannot represent (a range that is no prefix)
 * are skipped. */
static int list_one(NftSet *s, const char *name, NftElement **array, size_t *n) {
        char cmd[64 + 2 * NFT_SET_NAME_MAX];
        json_auto_t *root = NULL;
        json_t *set, *elems, *e;
        NftElement *grown;
        size_t i;
        int r;

        (void) snprintf(cmd, sizeof(cmd), "list set %s %s %s", s->family, s->table, name);
        r = run(s, cmd, true, &root);
        if (r < 0)
                return r;
        set = find_set(root, s, name);
        if (!set) {
                set_error(s, "Set %s %s %s missing from libnftables' listing", s->family, s->table, name);
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
                json_t *val = obj ? json_object_get(obj, "val") : e;
                json_t *prefix = json_object_get(val, "prefix");
                const char *text = json_string_value(prefix ? json_object_get(prefix, "addr") : val);
                json_int_t len = prefix ? json_integer_value(json_object_get(prefix, "len")) : 0;
                NftElement *x = &(*array)[*n];

                if (!text || address_parse(text, strlen(text), &x->address) < 0)
                        continue;
                if (len < 0 || len > (json_int_t) address_family_bits(x->address.family))
                        continue;
                x->prefixlen = (uint8_t) len;

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
        size_t n = 0;
        int r;

        assert(s);
        assert(ret);
        assert(ret_n);
        s->error[0] = 0;

        if (s->set4 && (r = list_one(s, s->set4, &array, &n)) < 0)
                return r;
        if (s->set6 && (r = list_one(s, s->set6, &array, &n)) < 0)
                return r;

        *ret = TAKE_PTR(array);
        *ret_n = n;
        return 0;
}

static int element_compare_qsort(const void *a, const void *b) {
        AddressPrefix p = element_prefix(a), q = element_prefix(b);
        return prefix_compare(&p, &q);
}

int nft_set_reconcile(NftSet *s, const NftElement *adds, size_t n_adds, const NftElement *removes, size_t n_removes) {
        _cleanup_free_ NftElement *present = NULL, *all = NULL;
        AddIndex index = {};
        size_t n_present = 0, n_all = 0;
        int r;

        assert(s);

        /* Without an interval set nothing can overlap but the same element. */
        if (!s->has_interval[0] && !s->has_interval[1])
                return nft_set_apply(s, adds, n_adds, removes, n_removes);

        /* Only the interval sets: a listing costs ~20 us per element. */
        s->error[0] = 0;
        if (s->set4 && s->has_interval[0] && (r = list_one(s, s->set4, &present, &n_present)) < 0)
                return r;
        if (s->set6 && s->has_interval[1] && (r = list_one(s, s->set6, &present, &n_present)) < 0)
                return r;
        if (n_present > 1)
                qsort(present, n_present, sizeof(NftElement), element_compare_qsort);
        all = reallocarray(NULL, n_removes + n_present + 1, sizeof(NftElement));
        if (!all)
                return -ENOMEM;
        r = add_index_build(adds, n_adds, &index);
        if (r < 0)
                return r;

        /* What the kernel holds that is in the way of an add goes. */
        for (size_t i = 0; i < n_present; i++) {
                AddressPrefix p = element_prefix(&present[i]);
                if (add_index_overlap(&index, &p) == OVERLAP_PARTIAL)
                        all[n_all++] = present[i];
        }
        /* A removal in the way of an add is deleted without the add-then-delete guard, so it
         * must be there; if it is not, it is gone already. */
        for (size_t i = 0; i < n_removes; i++) {
                AddressPrefix p = element_prefix(&removes[i]);
                if (add_index_overlap(&index, &p) == OVERLAP_PARTIAL &&
                    (n_present == 0 || !bsearch(&removes[i], present, n_present, sizeof(NftElement), element_compare_qsort)))
                        continue;
                all[n_all++] = removes[i];
        }
        free(index.sorted);
        return nft_set_apply(s, adds, n_adds, all, n_all);
}
