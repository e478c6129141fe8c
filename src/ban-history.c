/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "address-map.h"
#include "ban-history.h"
#include "macro.h"

struct BanHistory {
        AddressMap *map; /* of BanRecord */
        size_t limit;    /* BAN_HISTORY_MAX; smaller in tests */
};

int ban_history_new(BanHistory **ret) {
        BanHistory *h = calloc(1, sizeof(BanHistory));
        int r;

        if (!h)
                return -ENOMEM;
        r = address_map_new(sizeof(BanRecord), NULL, NULL, &h->map);
        if (r < 0) {
                free(h);
                return r;
        }
        h->limit = BAN_HISTORY_MAX;
        *ret = h;
        return 0;
}

BanHistory *ban_history_free(BanHistory *h) {
        if (!h)
                return NULL;
        address_map_free(h->map);
        free(h);
        return NULL;
}

const BanRecord *ban_history_get(const BanHistory *h, const Address *a) {
        uint32_t id = address_map_find(h->map, a);
        return id == ADDRESS_MAP_NONE ? NULL : address_map_entry(h->map, id);
}

unsigned ban_history_count(const BanHistory *h, const Address *a, usec_t now, usec_t window) {
        const BanRecord *r = ban_history_get(h, a);

        /* A record from the future (the clock went back) still counts: it is recent. */
        if (!r || (now > r->last_usec && now - r->last_usec > window))
                return 0;
        return r->count;
}

static int compare_usec(const void *a, const void *b) {
        usec_t x = *(const usec_t *) a, y = *(const usec_t *) b;
        return x < y ? -1 : x > y;
}

/* Forgets the oldest sixteenth (at least one record), so that a flood of new addresses costs
 * one sort per limit/16 insertions rather than a scan per insertion. */
static int evict_oldest(BanHistory *h) {
        size_t n = address_map_size(h->map);
        _cleanup_free_ usec_t *times = malloc(MAX(n, 1U) * sizeof(usec_t));
        usec_t cut;

        if (!times)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                times[i] = ((const BanRecord *) address_map_entry(h->map, (uint32_t) i))->last_usec;
        qsort(times, n, sizeof(usec_t), compare_usec);
        cut = times[n / 16];
        /* Downwards: a removal moves the last entry, already visited, into the hole. */
        for (size_t i = n; i-- > 0;)
                if (((const BanRecord *) address_map_entry(h->map, (uint32_t) i))->last_usec <= cut)
                        address_map_remove(h->map, (uint32_t) i);
        return 0;
}

int ban_history_put(BanHistory *h, const Address *a, unsigned count, usec_t last_usec) {
        uint32_t id = address_map_find(h->map, a);
        BanRecord *rec;
        int r;

        if (count == 0)
                return -EINVAL;
        if (id == ADDRESS_MAP_NONE && address_map_size(h->map) >= h->limit) {
                r = evict_oldest(h);
                if (r < 0)
                        return r;
        }
        r = address_map_put(h->map, a, &id);
        if (r < 0)
                return r;
        rec = address_map_entry(h->map, id);
        rec->count = count;
        rec->last_usec = last_usec;
        return 0;
}

void ban_history_remove(BanHistory *h, const Address *a) {
        uint32_t id = address_map_find(h->map, a);
        if (id != ADDRESS_MAP_NONE)
                address_map_remove(h->map, id);
}

void ban_history_set_limit(BanHistory *h, size_t limit) {
        h->limit = MAX(limit, 1U);
}

bool ban_history_next(const BanHistory *h, size_t *iter, const BanRecord **ret) {
        if (*iter >= address_map_size(h->map))
                return false;
        *ret = address_map_entry(h->map, (uint32_t) (*iter)++);
        return true;
}

size_t ban_history_size(const BanHistory *h) {
        return h ? address_map_size(h->map) : 0;
}

usec_t ban_length(usec_t base, double factor, usec_t max, unsigned earlier) {
        usec_t cap = MAX(max, base);
        double length = (double) base;

        if (base == USEC_INFINITY)
                return USEC_INFINITY;
        for (unsigned i = 0; i < earlier && length < (double) cap; i++)
                length *= factor;
        return length >= (double) cap ? cap : (usec_t) length;
}
