/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "address-map.h"
#include "failure-table.h"
#include "macro.h"

/* Windows hold at most this many failures (n_failures is a byte). */
#define FAILURE_TABLE_RETRY_MAX 255U
/* How many expired windows one record may drop from the old end besides the one it evicts:
 * more than one, so expired windows go away faster than new ones arrive. */
#define PRUNE_PER_RECORD 2U

/* One tracked address. failures[0 .. n_failures-1] are sorted by realtime, oldest first, and
 * all lie within find_time of the last one. The entries form a doubly linked list by id in the
 * order their windows were last recorded, least recent at the head: with journal time moving
 * forward that is also the order of their newest failures, so both the expired windows and the
 * least recently failing address are found at the head in O(1). */
typedef struct FailureEntry {
        Address address;              /* with the bits beyond prefixlen clear */
        uint8_t n_failures;
        uint8_t prefixlen;            /* what the failures were counted for; the family's length: one address */
        uint32_t prev, next;
        JournalPosition failures[];   /* max_retry slots */
} FailureEntry;

struct FailureTable {
        AddressMap *map;
        unsigned max_retry;
        usec_t find_time;
        size_t max_tracked;
        uint32_t head, tail;
        /* Timestamp of the latest failure recorded. It follows the journal backwards too, so one
         * entry from the future cannot make every open window look expired until time catches up. */
        usec_t now;
        uint64_t evictions;
};

static bool address_family_valid(const Address *a) {
        return a->family == AF_INET || a->family == AF_INET6;
}

static FailureEntry *entry(const FailureTable *t, uint32_t id) {
        return address_map_entry(t->map, id);
}

static usec_t entry_newest(const FailureEntry *e) {
        assert(e->n_failures > 0);
        return e->failures[e->n_failures - 1].realtime;
}

static bool entry_expired(const FailureTable *t, const FailureEntry *e) {
        usec_t newest = entry_newest(e);
        return t->now >= newest && t->now - newest >= t->find_time;
}

static void list_unlink(FailureTable *t, uint32_t id) {
        FailureEntry *e = entry(t, id);

        if (e->prev == ADDRESS_MAP_NONE)
                t->head = e->next;
        else
                entry(t, e->prev)->next = e->next;
        if (e->next == ADDRESS_MAP_NONE)
                t->tail = e->prev;
        else
                entry(t, e->next)->prev = e->prev;
        e->prev = e->next = ADDRESS_MAP_NONE;
}

static void list_append(FailureTable *t, uint32_t id) {
        FailureEntry *e = entry(t, id);

        e->prev = t->tail;
        e->next = ADDRESS_MAP_NONE;
        if (t->tail == ADDRESS_MAP_NONE)
                t->head = id;
        else
                entry(t, t->tail)->next = id;
        t->tail = id;
}

static void on_move(void *p, uint32_t from, uint32_t to, void *userdata) {
        FailureTable *t = userdata;
        FailureEntry *e = p;

        (void) from;
        if (e->prev == ADDRESS_MAP_NONE)
                t->head = to;
        else
                entry(t, e->prev)->next = to;
        if (e->next == ADDRESS_MAP_NONE)
                t->tail = to;
        else
                entry(t, e->next)->prev = to;
}

static void drop(FailureTable *t, uint32_t id) {
        list_unlink(t, id);
        address_map_remove(t->map, id);
}

int failure_table_new(unsigned max_retry, usec_t find_time, size_t max_tracked, FailureTable **ret) {
        FailureTable *t;
        int r;

        assert(ret);

        if (max_retry < 1 || max_retry > FAILURE_TABLE_RETRY_MAX)
                return -EINVAL;
        if (find_time == 0 || find_time == USEC_INFINITY)
                return -EINVAL;
        if (max_tracked < 1 || max_tracked > ADDRESS_MAP_SIZE_MAX)
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        r = address_map_new(offsetof(FailureEntry, failures) + max_retry * sizeof(JournalPosition), on_move, t, &t->map);
        if (r < 0) {
                free(t);
                return r;
        }

        t->max_retry = max_retry;
        t->find_time = find_time;
        t->max_tracked = max_tracked;
        t->head = t->tail = ADDRESS_MAP_NONE;
        *ret = t;
        return 0;
}

FailureTable *failure_table_free(FailureTable *t) {
        if (!t)
                return NULL;
        address_map_free(t->map);
        free(t);
        return NULL;
}

/* Expired windows count for nothing; they are only kept until someone needs the room. */
static void prune(FailureTable *t, unsigned max) {
        for (unsigned i = 0; i < max && t->head != ADDRESS_MAP_NONE; i++) {
                if (!entry_expired(t, entry(t, t->head)))
                        break;
                drop(t, t->head);
        }
}

/* Makes room for one more address: the head is the oldest window, expired or the least
 * recently failing one. */
static void make_room(FailureTable *t, size_t limit) {
        if (address_map_size(t->map) <= limit)
                return;

        assert(t->head != ADDRESS_MAP_NONE);
        if (!entry_expired(t, entry(t, t->head)))
                t->evictions++;
        drop(t, t->head);
}

static bool position_equal(const JournalPosition *a, const JournalPosition *b) {
        /* Only a full cursor identifies an entry; bare timestamps may repeat. */
        return journal_position_has_cursor(a) && journal_position_has_cursor(b) &&
                a->realtime == b->realtime && a->seqnum == b->seqnum && a->monotonic == b->monotonic &&
                a->xor_hash == b->xor_hash && a->seqnum_id == b->seqnum_id && a->boot_id == b->boot_id;
}

/* Adds p to the sorted window v[0 .. *n-1] of capacity max (keeping the newest max), after
 * dropping what lies find_time or more before newest. Equal timestamps keep arrival order. */
static void window_add(JournalPosition *v, size_t *n, size_t max, usec_t newest, usec_t find_time, const JournalPosition *p) {
        size_t k = 0, pos;

        while (k < *n && newest - v[k].realtime >= find_time)
                k++;
        if (k > 0) {
                memmove(v, v + k, (*n - k) * sizeof(JournalPosition));
                *n -= k;
        }

        if (newest - p->realtime >= find_time)
                return;
        for (size_t i = 0; i < *n; i++)
                if (position_equal(v + i, p))
                        return;

        pos = *n;
        while (pos > 0 && v[pos - 1].realtime > p->realtime)
                pos--;
        if (*n == max) {
                /* Full: the oldest goes, unless p itself would be the oldest. */
                if (pos == 0)
                        return;
                memmove(v, v + 1, (pos - 1) * sizeof(JournalPosition));
                v[pos - 1] = *p;
                return;
        }
        memmove(v + pos + 1, v + pos, (*n - pos) * sizeof(JournalPosition));
        v[pos] = *p;
        (*n)++;
}

int failure_table_record(FailureTable *t, const Address *a, const JournalPosition *p) {
        assert(a);
        return failure_table_record_prefix(t, &(AddressPrefix) { *a, (uint8_t) address_family_bits(a->family) }, p);
}

int failure_table_record_prefix(FailureTable *t, const AddressPrefix *prefix, const JournalPosition *p) {
        const Address *a = &prefix->address;
        FailureEntry *e;
        uint32_t id;
        int r;

        assert(t);
        assert(prefix);
        assert(p);

        if (!address_family_valid(a) || prefix->prefixlen > address_family_bits(a->family))
                return -EINVAL;

        t->now = p->realtime;
        prune(t, PRUNE_PER_RECORD);

        r = address_map_put(t->map, a, &id);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Linked at the tail before the eviction, so it is never the one evicted. The
                 * table holds max_tracked + 1 addresses only for this moment. */
                e = entry(t, id);
                e->failures[0] = *p;
                e->n_failures = 1;
                e->prefixlen = prefix->prefixlen;
                list_append(t, id);
                make_room(t, t->max_tracked);
                return 1;
        }

        /* A failure from before the window's newest one (time went backwards) is sorted in, and
         * still refreshes the address's place in the eviction order: it was just seen. */
        e = entry(t, id);
        size_t n = e->n_failures;
        /* Failures stamped find_time or more after this one came from a clock that was ahead
         * (or this one's is behind): the latest arrival says what "now" is, so they go.
         * Otherwise one entry from 2100 would keep every later failure of the address from
         * counting until the wall clock reached it. */
        while (n > 0 && e->failures[n - 1].realtime > p->realtime &&
               e->failures[n - 1].realtime - p->realtime >= t->find_time)
                n--;
        usec_t newest = n > 0 ? MAX(e->failures[n - 1].realtime, p->realtime) : p->realtime;
        window_add(e->failures, &n, t->max_retry, newest, t->find_time, p);
        assert(n >= 1);
        e->n_failures = (uint8_t) n;
        e->prefixlen = prefix->prefixlen;

        list_unlink(t, id);
        list_append(t, id);
        return (int) n;
}

static FailureWindow window_of(const FailureEntry *e) {
        return (FailureWindow) {
                .address = e->address,
                .prefixlen = e->prefixlen,
                .n_failures = e->n_failures,
                .failures = e->failures,
        };
}

bool failure_table_get(FailureTable *t, const Address *a, FailureWindow *ret) {
        uint32_t id;

        assert(t);
        assert(a);

        id = address_map_find(t->map, a);
        if (id == ADDRESS_MAP_NONE)
                return false;
        if (ret)
                *ret = window_of(entry(t, id));
        return true;
}

void failure_table_forget(FailureTable *t, const Address *a) {
        uint32_t id;

        assert(t);
        assert(a);

        id = address_map_find(t->map, a);
        if (id != ADDRESS_MAP_NONE)
                drop(t, id);
}

/* Merges failures into a's window (if any), keeping what lies within find_time of the newest of
 * both and at most max_retry of the newest. Restoring the same window twice counts it once.
 * Returns the number of failures now in the window. */
int failure_table_restore(FailureTable *t, const Address *a, const JournalPosition *failures, size_t n) {
        assert(a);
        return failure_table_restore_prefix(t, &(AddressPrefix) { *a, (uint8_t) address_family_bits(a->family) },
                                            failures, n);
}

int failure_table_restore_prefix(FailureTable *t, const AddressPrefix *prefix, const JournalPosition *failures, size_t n) {
        const Address *a = &prefix->address;
        JournalPosition v[FAILURE_TABLE_RETRY_MAX];
        size_t k = 0;
        usec_t newest = 0;
        uint32_t id;
        int r;

        assert(t);
        assert(a);

        if (n == 0 || !failures)
                return -EINVAL;
        if (!address_family_valid(a) || prefix->prefixlen > address_family_bits(a->family))
                return -EINVAL;

        id = address_map_find(t->map, a);
        if (id != ADDRESS_MAP_NONE)
                newest = entry_newest(entry(t, id));
        for (size_t i = 0; i < n; i++)
                newest = MAX(newest, failures[i].realtime);

        if (id != ADDRESS_MAP_NONE) {
                FailureEntry *e = entry(t, id);
                for (size_t i = 0; i < e->n_failures; i++)
                        window_add(v, &k, t->max_retry, newest, t->find_time, e->failures + i);
        }
        for (size_t i = 0; i < n; i++)
                window_add(v, &k, t->max_retry, newest, t->find_time, failures + i);
        assert(k >= 1);

        t->now = MAX(t->now, newest);
        if (id == ADDRESS_MAP_NONE) {
                make_room(t, t->max_tracked - 1);
                r = address_map_put(t->map, a, &id);
                if (r < 0)
                        return r;
        } else
                list_unlink(t, id);

        FailureEntry *e = entry(t, id);
        memcpy(e->failures, v, k * sizeof(JournalPosition));
        e->n_failures = (uint8_t) k;
        e->prefixlen = prefix->prefixlen;
        list_append(t, id);
        return (int) k;
}

/* Iterates from the least to the most recently recorded window, so that saving and restoring
 * (or a reload with fewer MaxTrackedAddresses=) keeps the eviction order. *iter is 0 before the
 * head, id + 1 of the next window, or SIZE_MAX at the end. */
bool failure_table_next(FailureTable *t, size_t *iter, FailureWindow *ret) {
        uint32_t id;

        assert(t);
        assert(iter);

        if (*iter == SIZE_MAX)
                return false;
        id = *iter == 0 ? t->head : (uint32_t) (*iter - 1);
        if (id == ADDRESS_MAP_NONE || id >= address_map_size(t->map)) {
                *iter = SIZE_MAX;
                return false;
        }

        const FailureEntry *e = entry(t, id);
        *iter = e->next == ADDRESS_MAP_NONE ? SIZE_MAX : (size_t) e->next + 1;
        if (ret)
                *ret = window_of(e);
        return true;
}

size_t failure_table_size(const FailureTable *t) {
        return t ? address_map_size(t->map) : 0;
}

uint64_t failure_table_evictions(const FailureTable *t) {
        return t ? t->evictions : 0;
}

unsigned failure_table_max_retry(const FailureTable *t) {
        return t->max_retry;
}

usec_t failure_table_find_time(const FailureTable *t) {
        return t->find_time;
}

size_t failure_table_memory_usage(const FailureTable *t) {
        return t ? sizeof(*t) + address_map_memory_usage(t->map) : 0;
}
