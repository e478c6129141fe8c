/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "address-map.h"
#include "macro.h"

/* A chunk holds 1 << chunk_shift entries and is at most this big, so that chunks stay below
 * malloc's mmap threshold and a flood costs one small allocation per few hundred addresses. */
#define CHUNK_BYTES_MAX (64U * 1024U)
#define BUCKETS_MIN 16U

/* hash is the address's hash folded to 32 bits: its low bits are the home bucket, and all of it
 * filters probes without touching the entry. id is ADDRESS_MAP_NONE for an empty bucket. */
typedef struct Bucket {
        uint32_t hash;
        uint32_t id;
} Bucket;

struct AddressMap {
        size_t entry_size;          /* rounded up to 8, so entries may hold 64-bit fields */
        unsigned chunk_shift;
        uint8_t **chunks;           /* n_chunks allocated chunks, the live entries first */
        size_t n_chunks, n_chunk_slots;
        uint32_t size;

        Bucket *buckets;            /* n_buckets, a power of two, or NULL while empty */
        size_t n_buckets;

        AddressMapMove on_move;
        void *userdata;
};

int address_map_new(size_t entry_size, AddressMapMove on_move, void *userdata, AddressMap **ret) {
        AddressMap *m;

        assert(ret);

        if (entry_size < sizeof(Address) || entry_size > CHUNK_BYTES_MAX)
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;

        m->entry_size = (entry_size + 7) & ~(size_t) 7;
        while (m->chunk_shift < 16 && (m->entry_size << (m->chunk_shift + 1)) <= CHUNK_BYTES_MAX)
                m->chunk_shift++;
        m->on_move = on_move;
        m->userdata = userdata;

        *ret = m;
        return 0;
}

AddressMap *address_map_free(AddressMap *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_chunks; i++)
                free(m->chunks[i]);
        free(m->chunks);
        free(m->buckets);
        free(m);
        return NULL;
}

size_t address_map_size(const AddressMap *m) {
        return m ? m->size : 0;
}

size_t address_map_memory_usage(const AddressMap *m) {
        if (!m)
                return 0;
        return sizeof(*m) + m->n_chunk_slots * sizeof(uint8_t *) +
                (m->n_chunks << m->chunk_shift) * m->entry_size + m->n_buckets * sizeof(Bucket);
}

void *address_map_entry(const AddressMap *m, uint32_t id) {
        assert(m);
        assert(id < m->size);

        size_t per_chunk_mask = ((size_t) 1 << m->chunk_shift) - 1;
        return m->chunks[id >> m->chunk_shift] + (id & per_chunk_mask) * m->entry_size;
}

static uint32_t map_hash(const Address *a) {
        uint64_t h = address_hash(a);

        return (uint32_t) (h ^ (h >> 32));
}

/* The bucket that holds id, whose address hashes to h. The entry must be indexed. */
static size_t bucket_of(const AddressMap *m, uint32_t h, uint32_t id) {
        size_t mask = m->n_buckets - 1;

        for (size_t i = h & mask;; i = (i + 1) & mask)
                if (m->buckets[i].id == id)
                        return i;
}

static void bucket_insert(Bucket *buckets, size_t n_buckets, uint32_t h, uint32_t id) {
        size_t mask = n_buckets - 1, i = h & mask;

        while (buckets[i].id != ADDRESS_MAP_NONE)
                i = (i + 1) & mask;
        buckets[i] = (Bucket) { .hash = h, .id = id };
}

static int buckets_resize(AddressMap *m, size_t n_buckets) {
        Bucket *b;

        assert(n_buckets >= BUCKETS_MIN);
        assert((n_buckets & (n_buckets - 1)) == 0);
        assert(m->size < n_buckets);

        b = malloc(n_buckets * sizeof(Bucket));
        if (!b)
                return -ENOMEM;
        memset(b, 0xff, n_buckets * sizeof(Bucket));

        for (size_t i = 0; i < m->n_buckets; i++)
                if (m->buckets[i].id != ADDRESS_MAP_NONE)
                        bucket_insert(b, n_buckets, m->buckets[i].hash, m->buckets[i].id);

        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n_buckets;
        return 0;
}

/* Empties bucket i and shifts later members of its probe run back, so that every entry stays
 * reachable from its home bucket without tombstones. */
static void bucket_delete(AddressMap *m, size_t i) {
        size_t mask = m->n_buckets - 1;

        for (size_t j = (i + 1) & mask; m->buckets[j].id != ADDRESS_MAP_NONE; j = (j + 1) & mask) {
                size_t home = m->buckets[j].hash & mask;

                /* The entry at j may fill the hole at i unless its home lies cyclically in (i, j]. */
                bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
                if (stays)
                        continue;
                m->buckets[i] = m->buckets[j];
                i = j;
        }
        m->buckets[i].id = ADDRESS_MAP_NONE;
}

static uint32_t find_hashed(const AddressMap *m, const Address *a, uint32_t h) {
        size_t mask = m->n_buckets - 1;

        if (m->size == 0)
                return ADDRESS_MAP_NONE;

        for (size_t i = h & mask; m->buckets[i].id != ADDRESS_MAP_NONE; i = (i + 1) & mask)
                if (m->buckets[i].hash == h && address_equal(address_map_entry(m, m->buckets[i].id), a))
                        return m->buckets[i].id;
        return ADDRESS_MAP_NONE;
}

uint32_t address_map_find(const AddressMap *m, const Address *a) {
        assert(m);
        assert(a);

        return m->size == 0 ? ADDRESS_MAP_NONE : find_hashed(m, a, map_hash(a)); /* no hashing when empty */
}

static int chunks_reserve(AddressMap *m) {
        if (((size_t) m->size >> m->chunk_shift) < m->n_chunks)
                return 0;

        if (m->n_chunks == m->n_chunk_slots) {
                size_t n = MAX(m->n_chunk_slots * 2, (size_t) 16);
                uint8_t **c = realloc(m->chunks, n * sizeof(uint8_t *));
                if (!c)
                        return -ENOMEM;
                m->chunks = c;
                m->n_chunk_slots = n;
        }

        m->chunks[m->n_chunks] = malloc(m->entry_size << m->chunk_shift);
        if (!m->chunks[m->n_chunks])
                return -ENOMEM;
        m->n_chunks++;
        return 0;
}

int address_map_put(AddressMap *m, const Address *a, uint32_t *ret_id) {
        uint32_t id, h;
        int r;

        assert(m);
        assert(a);

        h = map_hash(a);
        id = find_hashed(m, a, h);
        if (id != ADDRESS_MAP_NONE) {
                if (ret_id)
                        *ret_id = id;
                return 0;
        }

        if (m->size >= ADDRESS_MAP_SIZE_MAX)
                return -E2BIG;

        if (((size_t) m->size + 1) * 4 > m->n_buckets * 3) {
                r = buckets_resize(m, MAX(m->n_buckets * 2, (size_t) BUCKETS_MIN));
                if (r < 0)
                        return r;
        }
        r = chunks_reserve(m);
        if (r < 0)
                return r;

        id = m->size++;
        void *e = address_map_entry(m, id);
        memset(e, 0, m->entry_size);
        memcpy(e, a, sizeof(Address));
        bucket_insert(m->buckets, m->n_buckets, h, id);

        if (ret_id)
                *ret_id = id;
        return 1;
}

static void shrink(AddressMap *m) {
        /* Keep one empty chunk and a sparse index in reserve, so that a put right after a remove
         * at the boundary does not allocate again. */
        while (m->n_chunks > ((size_t) m->size >> m->chunk_shift) + 2)
                free(m->chunks[--m->n_chunks]);

        if (m->n_buckets > BUCKETS_MIN && (size_t) m->size * 8 < m->n_buckets)
                (void) buckets_resize(m, m->n_buckets / 2); /* on ENOMEM the larger index just stays */
}

void address_map_remove(AddressMap *m, uint32_t id) {
        uint32_t last;

        assert(m);
        assert(id < m->size);

        bucket_delete(m, bucket_of(m, map_hash(address_map_entry(m, id)), id));

        last = m->size - 1;
        if (id != last) {
                void *to = address_map_entry(m, id), *from = address_map_entry(m, last);
                uint32_t h = map_hash(from);

                memcpy(to, from, m->entry_size);
                m->buckets[bucket_of(m, h, last)].id = id;
                if (m->on_move)
                        m->on_move(to, last, id, m->userdata);
        }
        m->size--;

        shrink(m);
}
