/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdio.h>

#include "bench-match.h"
#include "macro.h"

/* The five FailRegex= of conf.d/10-vpopmail.conf as one alternation. Instead of <HOST> and its
 * callout, a plain capture of the three spellings vchkpw uses: dotted IPv4, IPv6 with '_' for
 * ':', and colon IPv6 of eight groups (the only colon form longer than 30 characters without
 * "::"). Preceded by ':' and anchored at the end, it can only start where the address starts. */
#define SERVICE "vchkpw(?:-(?:smtp|pop3|imap|smtps|submission|imaps|pop3s|webmail|[0-9]{1,10}))?: "
#define USER "[!#$&'*+./0-9=?A-Z^_`a-z{|}~-]*"
#define LOGIN "[!#$&'*+./0-9=?@A-Z^_`a-z{|}~-]*"
#define PASS "(?: [(]pass: '.*'[)])?"
#define HOST "([0-9]{1,3}(?:[.][0-9]{1,3}){3}|[0-9A-Fa-f]{0,4}(?:_[0-9A-Fa-f]{0,4}){2,7}|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7})"
#define PATTERN                                                                                   \
        "^" SERVICE "(?:"                                                                         \
        "(?:vpopmail user not found|password fail" PASS ") " USER "@[-.0-9A-Za-z]*"               \
        "|(?:invalid user/domain characters|null password given) .*"                              \
        "|null user name given "                                                                  \
        "|system user not found " USER                                                            \
        "|system (?:user shadow entry not found|password fail" PASS ") " LOGIN                    \
        "):" HOST "$"

struct BenchMatcher {
        pcre2_code *code;
        pcre2_match_data *match_data;
};

BenchMatcher *bench_matcher_free(BenchMatcher *m) {
        if (!m)
                return NULL;
        pcre2_match_data_free(m->match_data);
        pcre2_code_free(m->code);
        free(m);
        return NULL;
}

int bench_matcher_new(BenchMatcher **ret) {
        BenchMatcher *m = calloc(1, sizeof(BenchMatcher));
        PCRE2_SIZE offset;
        int error;

        if (!m)
                return -ENOMEM;
        /* The daemon's flags: byte mode, '.' matches newlines, '$' only at the very end. */
        m->code = pcre2_compile((PCRE2_SPTR) PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY,
                                &error, &offset, NULL);
        if (!m->code || pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE) != 0) {
                bench_matcher_free(m);
                return -EINVAL;
        }
        m->match_data = pcre2_match_data_create_from_pattern(m->code, NULL);
        if (!m->match_data) {
                bench_matcher_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int bench_matcher_match(BenchMatcher *m, const char *message, size_t len, Address *ret_address) {
        PCRE2_SIZE *ov;
        Address a;

        /* The daemon's cap on MESSAGE: longer text is never matched. */
        if (len > 64U * 1024U || pcre2_jit_match(m->code, (PCRE2_SPTR) message, len, 0, 0, m->match_data, NULL) < 2)
                return 0;
        ov = pcre2_get_ovector_pointer(m->match_data);
        /* Colon text of 30 characters or less would have been printed with '_' by vchkpw. */
        if (ov[3] - ov[2] < 31 && memchr(message + ov[2], ':', ov[3] - ov[2]))
                return 0;
        if (address_parse(message + ov[2], ov[3] - ov[2], &a) < 0 || address_is_loopback(&a))
                return 0;
        *ret_address = a;
        return 1;
}

typedef struct BenchSlot {
        Address address;
        bool used;
        bool banned;
        uint8_t count; /* failures in the ring, saturating at the ring's size */
        uint8_t next;  /* ring position of the next failure */
        usec_t times[BENCH_MAX_RETRY_MAX - 1]; /* of the last MaxRetry-1 failures */
} BenchSlot;

/* Invariant: at most half the slots are used, so probing always ends at a free slot. With
 * positions kept, slot i's ring of positions is positions[i * ring ...], in step with times. */
struct BenchTable {
        BenchSlot *slots;
        JournalPosition *positions; /* NULL unless kept (and MaxRetry > 1) */
        bool keep_positions;
        size_t n_slots; /* a power of two */
        size_t n_used;
        unsigned ring;  /* MaxRetry - 1 */
        usec_t find_time;
};

BenchTable *bench_table_free(BenchTable *t) {
        if (!t)
                return NULL;
        free(t->slots);
        free(t->positions);
        free(t);
        return NULL;
}

static int alloc_slots(size_t n, unsigned ring, bool positions, BenchSlot **ret_slots, JournalPosition **ret_positions) {
        BenchSlot *slots = calloc(n, sizeof(BenchSlot));
        JournalPosition *p = NULL;

        if (!slots)
                return -ENOMEM;
        if (positions && ring > 0 && !(p = calloc(n * ring, sizeof(JournalPosition)))) {
                free(slots);
                return -ENOMEM;
        }
        *ret_slots = slots;
        *ret_positions = p;
        return 0;
}

int bench_table_new(unsigned max_retry, usec_t find_time, bool keep_positions, BenchTable **ret) {
        BenchTable *t;

        if (max_retry < 1 || max_retry > BENCH_MAX_RETRY_MAX)
                return -EINVAL;
        t = calloc(1, sizeof(BenchTable));
        if (!t)
                return -ENOMEM;
        t->n_slots = 1024;
        t->ring = max_retry - 1;
        t->find_time = find_time;
        t->keep_positions = keep_positions;
        if (alloc_slots(t->n_slots, t->ring, keep_positions, &t->slots, &t->positions) < 0)
                return bench_table_free(t), -ENOMEM;
        *ret = t;
        return 0;
}

static uint64_t hash_address(const Address *a) {
        uint64_t x, y;

        memcpy(&x, a->bytes, 8);
        memcpy(&y, a->bytes + 8, 8);
        x = (x ^ (y * 0x9e3779b97f4a7c15ULL) ^ a->family) * 0xbf58476d1ce4e5b9ULL;
        return x ^ (x >> 31);
}

static size_t find_slot(BenchSlot *slots, size_t n_slots, const Address *a) {
        size_t mask = n_slots - 1, i = hash_address(a) & mask;

        while (slots[i].used && !address_equal(&slots[i].address, a))
                i = (i + 1) & mask;
        return i;
}

static int grow(BenchTable *t) {
        size_t n = t->n_slots * 2;
        BenchSlot *slots;
        JournalPosition *positions;

        if (alloc_slots(n, t->ring, t->keep_positions, &slots, &positions) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_slots; i++) {
                if (!t->slots[i].used)
                        continue;
                size_t k = find_slot(slots, n, &t->slots[i].address);
                slots[k] = t->slots[i];
                if (positions)
                        memcpy(positions + k * t->ring, t->positions + i * t->ring, t->ring * sizeof(JournalPosition));
        }
        free(t->slots);
        free(t->positions);
        t->slots = slots;
        t->positions = positions;
        t->n_slots = n;
        return 0;
}

int bench_table_record(BenchTable *t, const Address *a, usec_t when, const JournalPosition *p,
                       JournalPosition *ret_causes) {
        JournalPosition *ring;
        BenchSlot *s;
        size_t k;

        if (2 * (t->n_used + 1) > t->n_slots && grow(t) < 0)
                return -ENOMEM;
        k = find_slot(t->slots, t->n_slots, a);
        s = t->slots + k;
        ring = t->positions ? t->positions + k * t->ring : NULL;
        if (!s->used) {
                *s = (BenchSlot) { .address = *a, .used = true };
                t->n_used++;
        }
        if (s->banned)
                return 0;
        /* The oldest of the last MaxRetry-1 failures sits where the next one goes. */
        if (s->count >= t->ring && (t->ring == 0 || when - s->times[s->next] < t->find_time)) {
                s->banned = true;
                if (t->keep_positions) {
                        for (unsigned i = 0; i < t->ring; i++)
                                ret_causes[i] = ring[(s->next + i) % t->ring];
                        ret_causes[t->ring] = *p;
                }
                return 1;
        }
        if (t->ring > 0) {
                s->times[s->next] = when;
                if (ring)
                        ring[s->next] = *p;
                s->next = (uint8_t) ((s->next + 1) % t->ring);
                if (s->count < t->ring)
                        s->count++;
        }
        return 0;
}

size_t bench_table_size(const BenchTable *t) {
        return t->n_used;
}

unsigned long bench_rss_anon_kib(void) {
        _cleanup_free_ char *line = NULL;
        unsigned long kib = 0;
        size_t size = 0;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return 0;
        while (getline(&line, &size, f) > 0)
                if (sscanf(line, "RssAnon: %lu kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}
