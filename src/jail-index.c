/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jail-index.h"

/* One value of an indexed field and the jails filed under it. Keys are sorted by (field, len,
 * value) and looked up by binary search: there are a few dozen, fixed when the configuration is
 * loaded, so a sorted array does as well as a hash table with less code. */
typedef struct IndexKey {
        size_t field; /* in JailIndex.fields */
        char *value;
        size_t len;
        size_t *jails; /* increasing */
        size_t n_jails;
} IndexKey;

struct JailIndex {
        size_t n_jails;
        char **fields; /* the fields some jail is filed under, looked up once per entry */
        size_t n_fields;
        IndexKey *keys;
        size_t n_keys;
        size_t *everywhere; /* jails without JournalMatch=, increasing */
        size_t n_everywhere;
};

/* A (field, value, jail) triple while building: sorted, runs of equal (field, value) become keys. */
typedef struct Filing {
        size_t field;
        const char *value;
        size_t len;
        size_t jail;
} Filing;

JailIndex *jail_index_free(JailIndex *x) {
        if (!x)
                return NULL;
        for (size_t i = 0; i < x->n_fields; i++)
                free(x->fields[i]);
        free(x->fields);
        for (size_t i = 0; i < x->n_keys; i++) {
                free(x->keys[i].value);
                free(x->keys[i].jails);
        }
        free(x->keys);
        free(x->everywhere);
        free(x);
        return NULL;
}

size_t jail_index_size(const JailIndex *x) {
        return x->n_jails;
}

static int compare_value(size_t field_a, const char *a, size_t len_a, size_t field_b, const char *b, size_t len_b) {
        if (field_a != field_b)
                return field_a < field_b ? -1 : 1;
        if (len_a != len_b)
                return len_a < len_b ? -1 : 1;
        return memcmp(a, b, len_a);
}

static int compare_filing(const void *p, const void *q) {
        const Filing *a = p, *b = q;
        int c = compare_value(a->field, a->value, a->len, b->field, b->value, b->len);
        if (c != 0)
                return c;
        return a->jail < b->jail ? -1 : a->jail > b->jail;
}

/* Position of name in names[0..n), or n. */
static size_t find_name(char * const *names, size_t n, const char *name) {
        size_t i = 0;
        while (i < n && !streq(names[i], name))
                i++;
        return i;
}

/* How many jails match on each field: names[i] (borrowed from the jails) by counts[i]. */
typedef struct FieldCounts {
        const char **names;
        size_t *counts;
        size_t n;
} FieldCounts;

static int count_fields(Jail * const *jails, size_t n_jails, size_t n_matches, FieldCounts *ret) {
        *ret = (FieldCounts) {
                .names = calloc(n_matches ?: 1, sizeof(char *)),
                .counts = calloc(n_matches ?: 1, sizeof(size_t)),
        };
        if (!ret->names || !ret->counts)
                return -ENOMEM;
        for (size_t i = 0; i < n_jails; i++)
                for (size_t k = 0; k < jails[i]->n_matches; k++) {
                        const char *f = jails[i]->matches[k].field;
                        bool earlier = false;
                        size_t c;

                        for (size_t m = 0; m < k && !earlier; m++)
                                earlier = streq(jails[i]->matches[m].field, f);
                        if (earlier)
                                continue; /* a jail counts once per field */
                        for (c = 0; c < ret->n && !streq(ret->names[c], f); c++)
                                ;
                        if (c == ret->n)
                                ret->names[ret->n++] = f;
                        ret->counts[c]++;
                }
        return 0;
}

static void field_counts_done(FieldCounts *fc) {
        free(fc->names);
        free(fc->counts);
}

/* The field jail j is filed under: of the fields it matches on, the one the most jails match on
 * (the first of those in its JournalMatch= list), so that an entry needs few lookups. */
static const char *pick_field(const Jail *j, const FieldCounts *fc) {
        const char *best = NULL;
        size_t best_count = 0;

        for (size_t k = 0; k < j->n_matches; k++)
                for (size_t c = 0; c < fc->n; c++)
                        if (streq(fc->names[c], j->matches[k].field) && fc->counts[c] > best_count) {
                                best = fc->names[c];
                                best_count = fc->counts[c];
                        }
        return best;
}

static int add_key(JailIndex *x, const Filing *run, size_t n) {
        IndexKey *k = &x->keys[x->n_keys];

        *k = (IndexKey) { .field = run[0].field, .len = run[0].len };
        k->value = strndup(run[0].value, run[0].len);
        k->jails = calloc(n, sizeof(size_t));
        if (!k->value || !k->jails) {
                free(k->value);
                free(k->jails);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                /* A jail that lists the same value twice is filed once. */
                if (k->n_jails == 0 || k->jails[k->n_jails - 1] != run[i].jail)
                        k->jails[k->n_jails++] = run[i].jail;
        x->n_keys++;
        return 0;
}

int jail_index_new(Jail * const *jails, size_t n_jails, JailIndex **ret) {
        _cleanup_(jail_index_freep) JailIndex *x = calloc(1, sizeof(JailIndex));
        _cleanup_free_ Filing *filings = NULL;
        _cleanup_(field_counts_done) FieldCounts fc = {};
        size_t n_filings = 0, n_matches = 0;
        int r;

        if (!x)
                return -ENOMEM;
        x->n_jails = n_jails;
        for (size_t i = 0; i < n_jails; i++)
                n_matches += jails[i]->n_matches;
        filings = calloc(n_matches ?: 1, sizeof(Filing));
        x->fields = calloc(n_matches ?: 1, sizeof(char *));
        x->everywhere = calloc(n_jails ?: 1, sizeof(size_t));
        if (!filings || !x->fields || !x->everywhere)
                return -ENOMEM;
        r = count_fields(jails, n_jails, n_matches, &fc);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_jails; i++) {
                const char *field = pick_field(jails[i], &fc);
                size_t f;

                if (!field) {
                        x->everywhere[x->n_everywhere++] = i;
                        continue;
                }
                f = find_name(x->fields, x->n_fields, field);
                if (f == x->n_fields) {
                        x->fields[f] = strdup(field);
                        if (!x->fields[f])
                                return -ENOMEM;
                        x->n_fields++;
                }
                /* Values of one field are ORed: the jail is filed under each. */
                for (size_t k = 0; k < jails[i]->n_matches; k++)
                        if (streq(jails[i]->matches[k].field, field))
                                filings[n_filings++] = (Filing) {
                                        .field = f,
                                        .value = jails[i]->matches[k].value,
                                        .len = strlen(jails[i]->matches[k].value),
                                        .jail = i,
                                };
        }

        qsort(filings, n_filings, sizeof(Filing), compare_filing);
        x->keys = calloc(n_filings ?: 1, sizeof(IndexKey));
        if (!x->keys)
                return -ENOMEM;
        for (size_t start = 0, end; start < n_filings; start = end) {
                end = start + 1;
                while (end < n_filings && compare_value(filings[start].field, filings[start].value, filings[start].len,
                                                        filings[end].field, filings[end].value, filings[end].len) == 0)
                        end++;
                r = add_key(x, filings + start, end - start);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(x);
        return 0;
}

static const IndexKey *find_key(const JailIndex *x, size_t field, const char *value, size_t len) {
        size_t lo = 0, hi = x->n_keys;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const IndexKey *k = &x->keys[mid];
                int c = compare_value(field, value, len, k->field, k->value, k->len);
                if (c == 0)
                        return k;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* Merges the increasing list add[0..n_add) into the increasing ret[0..n), from the back, so no
 * scratch space is needed. The two are disjoint: a jail is filed under one field only, and an
 * entry has one value for it. */
static size_t merge(size_t *ret, size_t n, const size_t *add, size_t n_add) {
        size_t i = n, j = n_add, w = n + n_add;

        while (j > 0) {
                if (i > 0 && ret[i - 1] > add[j - 1])
                        ret[--w] = ret[--i];
                else
                        ret[--w] = add[--j];
        }
        return n + n_add;
}

size_t jail_index_lookup(const JailIndex *x, JournalFieldGetter get, void *userdata, size_t *ret) {
        size_t n = x->n_everywhere;

        memcpy(ret, x->everywhere, n * sizeof(size_t));
        for (size_t f = 0; f < x->n_fields; f++) {
                const IndexKey *k;
                const char *value;
                size_t len;

                if (get(x->fields[f], &value, &len, userdata) < 0)
                        continue;
                k = find_key(x, f, value, len);
                if (k)
                        n = merge(ret, n, k->jails, k->n_jails);
        }
        return n;
}
