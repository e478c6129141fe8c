/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <limits.h>

#include "address-map.h"
#include "ban-table.h"
#include "macro.h"

static const char * const ban_origin_table[_BAN_ORIGIN_MAX] = {
        [BAN_ORIGIN_JOURNAL] = "journal",
        [BAN_ORIGIN_MANUAL] = "manual",
        [BAN_ORIGIN_FLEET] = "fleet",
};

const char *ban_origin_to_string(BanOrigin o) {
        if (o < 0 || o >= _BAN_ORIGIN_MAX)
                return NULL;
        return ban_origin_table[o];
}

BanOrigin ban_origin_from_string(const char *s) {
        if (!s)
                return _BAN_ORIGIN_INVALID;
        for (BanOrigin o = 0; o < _BAN_ORIGIN_MAX; o++)
                if (streq(ban_origin_table[o], s))
                        return o;
        return _BAN_ORIGIN_INVALID;
}

/* Invariant: heap[0 .. n_heap-1] holds every entry exactly once, as a binary min-heap on
 * expires_usec, and each entry knows its own heap slot, so that the next expiry is read in O(1)
 * and a ban is updated or removed in O(log n). The heap keeps a copy of the expiry so that
 * sifting compares within the array instead of visiting an entry per step. */
typedef struct BanEntry {
        Ban ban;
        uint32_t heap_index;
        uint32_t bucket_next, bucket_prev; /* ids in its bucket's list, ADDRESS_MAP_NONE at the ends */
} BanEntry;
/* Two cache lines: a bigger entry made a load of a million bans slower. */
static_assert(sizeof(BanEntry) <= 128, "BanEntry grew beyond 128 bytes");

/* The bans of one family whose address, masked to the index's length, is this address. */
typedef struct Bucket {
        Address address;
        uint32_t head; /* a ban id; a bucket without bans is removed */
} Bucket;

typedef struct HeapItem {
        usec_t expires_usec;
        uint32_t id;
} HeapItem;

struct BanTable {
        AddressMap *map;
        /* How many bans have each prefix length, per family (0: IPv4, 1: IPv6), so that a
         * lookup of an address tries only the lengths in use. */
        uint32_t n_prefixlen[2][129];
        uint64_t used_prefixlen[2][3]; /* bit len set: n_prefixlen[.][len] > 0 */
        HeapItem *heap;
        size_t n_heap, n_heap_allocated;
        /* An index for ban_table_find_inside(), per family, built by its first query that
         * cannot take the fast path: every ban of the family is linked into the bucket of its
         * address masked to bucket_len, so that a query for a prefix of that length or longer
         * visits one bucket instead of the whole table. NULL: no index. */
        AddressMap *buckets[2];
        uint8_t bucket_len[2];
        /* Bans visited in buckets but not inside the query, since the index was built: once
         * that is more than the table holds, a longer query makes the buckets narrower again,
         * so that the rebuilds cost no more than the walks they save. */
        uint64_t bucket_waste[2];
};

static BanEntry *entry(const BanTable *t, uint32_t id) {
        return address_map_entry(t->map, id);
}

static void heap_set(BanTable *t, size_t i, HeapItem item) {
        t->heap[i] = item;
        entry(t, item.id)->heap_index = (uint32_t) i;
}

static void heap_sift_up(BanTable *t, size_t i) {
        HeapItem item = t->heap[i];

        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (t->heap[parent].expires_usec <= item.expires_usec)
                        break;
                heap_set(t, i, t->heap[parent]);
                i = parent;
        }
        heap_set(t, i, item);
}

static void heap_sift_down(BanTable *t, size_t i) {
        HeapItem item = t->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= t->n_heap)
                        break;
                if (c + 1 < t->n_heap && t->heap[c + 1].expires_usec < t->heap[c].expires_usec)
                        c++;
                if (item.expires_usec <= t->heap[c].expires_usec)
                        break;
                heap_set(t, i, t->heap[c]);
                i = c;
        }
        heap_set(t, i, item);
}

static void heap_delete(BanTable *t, size_t i) {
        assert(i < t->n_heap);

        t->n_heap--;
        if (i == t->n_heap)
                return;
        heap_set(t, i, t->heap[t->n_heap]);
        if (i > 0 && t->heap[(i - 1) / 2].expires_usec > t->heap[i].expires_usec)
                heap_sift_up(t, i);
        else
                heap_sift_down(t, i);
}

static int family_index(const Address *a) {
        return a->family == AF_INET6;
}

static Bucket *bucket_of_ban(const BanTable *t, const Ban *b, uint32_t *ret_id) {
        AddressMap *buckets = t->buckets[family_index(&b->address)];
        Address key = b->address;
        uint32_t id;

        address_mask(&key, t->bucket_len[family_index(&b->address)]);
        id = address_map_find(buckets, &key);
        assert(id != ADDRESS_MAP_NONE);
        if (ret_id)
                *ret_id = id;
        return address_map_entry(buckets, id);
}

static void on_move(void *p, uint32_t from, uint32_t to, void *userdata) {
        BanTable *t = userdata;
        BanEntry *e = p;

        (void) from;
        t->heap[e->heap_index].id = to;

        if (!t->buckets[family_index(&e->ban.address)])
                return;
        if (e->bucket_prev != ADDRESS_MAP_NONE)
                entry(t, e->bucket_prev)->bucket_next = to;
        else
                bucket_of_ban(t, &e->ban, NULL)->head = to;
        if (e->bucket_next != ADDRESS_MAP_NONE)
                entry(t, e->bucket_next)->bucket_prev = to;
}

static void index_free(BanTable *t, int f) {
        t->buckets[f] = address_map_free(t->buckets[f]);
        t->bucket_len[f] = 0;
        t->bucket_waste[f] = 0;
}

/* Links ban id at the head of its bucket, if its family has an index. */
static int index_link(BanTable *t, uint32_t id) {
        BanEntry *e = entry(t, id);
        int f = family_index(&e->ban.address);
        Address key = e->ban.address;
        uint32_t bid;
        Bucket *k;
        int r;

        if (!t->buckets[f])
                return 0;
        address_mask(&key, t->bucket_len[f]);
        r = address_map_put(t->buckets[f], &key, &bid);
        if (r < 0)
                return r;
        k = address_map_entry(t->buckets[f], bid);
        if (r > 0)
                k->head = ADDRESS_MAP_NONE;
        e->bucket_prev = ADDRESS_MAP_NONE;
        e->bucket_next = k->head;
        if (k->head != ADDRESS_MAP_NONE)
                entry(t, k->head)->bucket_prev = id;
        k->head = id;
        return 0;
}

static void index_unlink(BanTable *t, uint32_t id) {
        BanEntry *e = entry(t, id);
        int f = family_index(&e->ban.address);
        uint32_t bid;
        Bucket *k;

        if (!t->buckets[f])
                return;
        k = bucket_of_ban(t, &e->ban, &bid);
        if (e->bucket_prev != ADDRESS_MAP_NONE)
                entry(t, e->bucket_prev)->bucket_next = e->bucket_next;
        else
                k->head = e->bucket_next;
        if (e->bucket_next != ADDRESS_MAP_NONE)
                entry(t, e->bucket_next)->bucket_prev = e->bucket_prev;
        if (k->head == ADDRESS_MAP_NONE)
                address_map_remove(t->buckets[f], bid);
}

/* (Re)builds family f's index with buckets of length len, in one pass over the table. */
static int index_build(BanTable *t, int f, unsigned len) {
        int r;

        index_free(t, f);
        r = address_map_new(sizeof(Bucket), NULL, NULL, &t->buckets[f]);
        if (r < 0)
                return r;
        t->bucket_len[f] = (uint8_t) len;
        for (size_t id = 0; id < address_map_size(t->map); id++) {
                if (family_index(&entry(t, (uint32_t) id)->ban.address) != f)
                        continue;
                r = index_link(t, (uint32_t) id);
                if (r < 0) {
                        index_free(t, f);
                        return r;
                }
        }
        return 0;
}

static void prefix_count_add(BanTable *t, const Ban *b, int delta) {
        int f = b->address.family == AF_INET6;
        uint32_t *n = &t->n_prefixlen[f][b->prefixlen];

        *n += (uint32_t) delta;
        if (*n > 0)
                t->used_prefixlen[f][b->prefixlen / 64] |= UINT64_C(1) << (b->prefixlen % 64);
        else
                t->used_prefixlen[f][b->prefixlen / 64] &= ~(UINT64_C(1) << (b->prefixlen % 64));
}

/* Removes entry id from both the heap and the map. */
static void drop(BanTable *t, uint32_t id) {
        index_unlink(t, id);
        prefix_count_add(t, &entry(t, id)->ban, -1);
        heap_delete(t, entry(t, id)->heap_index);
        address_map_remove(t->map, id);

        /* Give memory back after a flood of bans has expired. */
        if (t->n_heap_allocated > 64 && t->n_heap < t->n_heap_allocated / 4) {
                HeapItem *h = realloc(t->heap, t->n_heap_allocated / 2 * sizeof(HeapItem));
                if (h) {
                        t->heap = h;
                        t->n_heap_allocated /= 2;
                }
        }
}

int ban_table_new(BanTable **ret) {
        BanTable *t;
        int r;

        assert(ret);

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        r = address_map_new(sizeof(BanEntry), on_move, t, &t->map);
        if (r < 0) {
                free(t);
                return r;
        }

        *ret = t;
        return 0;
}

BanTable *ban_table_free(BanTable *t) {
        if (!t)
                return NULL;
        address_map_free(t->map);
        for (int f = 0; f < 2; f++)
                address_map_free(t->buckets[f]);
        free(t->heap);
        free(t);
        return NULL;
}

static bool ban_valid(const Ban *b) {
        return (b->address.family == AF_INET || b->address.family == AF_INET6) &&
                b->prefixlen <= address_family_bits(b->address.family) &&
                b->origin >= 0 && b->origin < _BAN_ORIGIN_MAX &&
                memchr(b->jail, 0, sizeof(b->jail));
}

int ban_table_put(BanTable *t, const Ban *ban) {
        AddressPrefix p;
        uint32_t id;
        Ban copy;
        int r;

        assert(t);
        assert(ban);

        if (!ban_valid(ban))
                return -EINVAL;
        /* Stored with an explicit length and the host bits clear. */
        p = ban_prefix(ban);
        copy = *ban;
        copy.address = p.address;
        copy.prefixlen = p.prefixlen;
        const Ban *b = &copy;

        id = address_map_find(t->map, &b->address);
        if (id != ADDRESS_MAP_NONE) {
                BanEntry *e = entry(t, id);

                /* On a tie the newer ban wins, so a repeated put refreshes the other fields. */
                if (b->expires_usec < e->ban.expires_usec)
                        return 0;
                bool later = b->expires_usec > e->ban.expires_usec;
                prefix_count_add(t, &e->ban, -1);
                e->ban = *b;
                prefix_count_add(t, &e->ban, +1);
                if (later) {
                        t->heap[e->heap_index].expires_usec = b->expires_usec;
                        heap_sift_down(t, e->heap_index);
                }
                return 0;
        }

        /* Make room in the heap first, so that a failure leaves the table as it was. */
        if (t->n_heap == t->n_heap_allocated) {
                size_t n = MAX(t->n_heap_allocated * 2, (size_t) 64);
                HeapItem *h = realloc(t->heap, n * sizeof(HeapItem));
                if (!h)
                        return -ENOMEM;
                t->heap = h;
                t->n_heap_allocated = n;
        }

        r = address_map_put(t->map, &b->address, &id);
        if (r < 0)
                return r;
        assert(r > 0);

        entry(t, id)->ban = *b;
        prefix_count_add(t, b, +1);
        t->heap[t->n_heap] = (HeapItem) { .expires_usec = b->expires_usec, .id = id };
        heap_sift_up(t, t->n_heap++);
        /* Without memory for the index, go without it: the next query rebuilds it. */
        if (index_link(t, id) < 0)
                index_free(t, family_index(&b->address));
        return 1;
}

const Ban *ban_table_get(BanTable *t, const Address *a) {
        uint32_t id;

        assert(t);
        assert(a);

        id = address_map_find(t->map, a);
        return id == ADDRESS_MAP_NONE ? NULL : &entry(t, id)->ban;
}

const Ban *ban_table_find_covering(BanTable *t, const Address *a) {
        const uint64_t *used;

        assert(t);
        assert(a);

        /* The lengths in use, longest first: the exact address is the common case. */
        used = t->used_prefixlen[a->family == AF_INET6];
        for (unsigned w = 3; w-- > 0; )
                for (uint64_t bits = used[w]; bits != 0; ) {
                        unsigned bit = 63 - (unsigned) __builtin_clzll(bits), len = w * 64 + bit;
                        Address masked = *a;
                        const Ban *b;

                        bits &= ~(UINT64_C(1) << bit);
                        address_mask(&masked, len);
                        b = ban_table_get(t, &masked);
                        if (b && b->prefixlen == len)
                                return b;
                }
        return NULL;
}

static int cmp_id(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

typedef struct IdList {
        uint32_t *ids;
        size_t n, allocated;
} IdList;

/* Adds id to l if its ban lies inside p but is not p. */
static int collect(BanTable *t, const AddressPrefix *p, uint32_t id, IdList *l) {
        AddressPrefix q = ban_prefix(&entry(t, id)->ban);

        if (q.prefixlen <= p->prefixlen || !address_prefix_covers(p, &q))
                return 0;
        if (l->n == l->allocated) {
                size_t k = MAX(8U, l->allocated * 2);
                uint32_t *grown = reallocarray(l->ids, k, sizeof(uint32_t));
                if (!grown)
                        return -ENOMEM;
                l->ids = grown;
                l->allocated = k;
        }
        l->ids[l->n++] = id;
        return 0;
}

int ban_table_find_inside(BanTable *t, const AddressPrefix *p, Ban **ret) {
        const uint32_t *counts;
        unsigned bits;
        _cleanup_free_ uint32_t *ids = NULL;
        IdList l = {};
        Ban *found;
        bool any = false;
        int f, r = 0;

        assert(t);
        assert(p);
        assert(ret);

        f = family_index(&p->address);
        counts = t->n_prefixlen[f];
        bits = address_family_bits(p->address.family);
        for (unsigned len = p->prefixlen + 1; len <= bits && !any; len++)
                any = counts[len] > 0;
        if (!any) {
                *ret = NULL;
                return 0;
        }

        /* A query shorter than the index's buckets needs wider ones; one longer may want
         * narrower ones (see bucket_waste). */
        if (!t->buckets[f] || p->prefixlen < t->bucket_len[f] ||
            (p->prefixlen > t->bucket_len[f] && t->bucket_waste[f] > address_map_size(t->map)))
                (void) index_build(t, f, p->prefixlen);

        if (t->buckets[f]) {
                Address key = p->address;
                uint32_t bid;

                address_mask(&key, t->bucket_len[f]);
                bid = address_map_find(t->buckets[f], &key);
                if (bid != ADDRESS_MAP_NONE)
                        for (uint32_t id = ((Bucket *) address_map_entry(t->buckets[f], bid))->head;
                             id != ADDRESS_MAP_NONE && r >= 0; id = entry(t, id)->bucket_next) {
                                size_t before = l.n;
                                r = collect(t, p, id, &l);
                                t->bucket_waste[f] += l.n == before;
                        }
                /* In id order, as a scan of the table would find them. */
                if (r >= 0 && l.n > 1)
                        qsort(l.ids, l.n, sizeof(uint32_t), cmp_id);
        } else /* no memory for the index: scan */
                for (size_t id = 0; id < address_map_size(t->map) && r >= 0; id++)
                        r = collect(t, p, (uint32_t) id, &l);
        ids = l.ids;
        if (r < 0)
                return r;
        if (l.n == 0) {
                *ret = NULL;
                return 0;
        }

        found = reallocarray(NULL, l.n, sizeof(Ban));
        if (!found)
                return -ENOMEM;
        for (size_t i = 0; i < l.n; i++)
                found[i] = entry(t, ids[i])->ban;
        *ret = found;
        return (int) MIN(l.n, (size_t) INT_MAX);
}

bool ban_table_remove(BanTable *t, const Address *a) {
        uint32_t id;

        assert(t);
        assert(a);

        id = address_map_find(t->map, a);
        if (id == ADDRESS_MAP_NONE)
                return false;
        drop(t, id);
        return true;
}

/* cb runs before the ban leaves the table and must not change the table. */
size_t ban_table_expire(BanTable *t, usec_t now, void (*cb)(const Ban *b, void *userdata), void *userdata) {
        size_t n = 0;

        assert(t);

        while (t->n_heap > 0 && t->heap[0].expires_usec <= now) {
                uint32_t id = t->heap[0].id;

                if (cb)
                        cb(&entry(t, id)->ban, userdata);
                drop(t, id);
                n++;
        }
        return n;
}

usec_t ban_table_next_expiry(const BanTable *t) {
        assert(t);
        return t->n_heap > 0 ? t->heap[0].expires_usec : USEC_INFINITY;
}

bool ban_table_next(BanTable *t, size_t *iter, const Ban **ret) {
        assert(t);
        assert(iter);

        if (*iter >= address_map_size(t->map))
                return false;
        if (ret)
                *ret = &entry(t, (uint32_t) *iter)->ban;
        (*iter)++;
        return true;
}

size_t ban_table_size(const BanTable *t) {
        return t ? address_map_size(t->map) : 0;
}

void ban_clamp_to_now(Ban *b, usec_t now) {
        if (b->banned_usec <= now)
                return;
        if (ban_is_permanent(b)) {
                b->banned_usec = now;
                return;
        }
        usec_t duration = b->expires_usec > b->banned_usec ? b->expires_usec - b->banned_usec : 0;
        b->banned_usec = now;
        b->expires_usec = now + duration;
}
