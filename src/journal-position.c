/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal-position.h"
#include "macro.h"
#include "text-put.h"

#define ID_LEN 32

/* The interned 128-bit ids, kept as the 32 hex digits the cursor carries so that printing a
 * cursor is a copy. Invariants: ids[0..n_ids) are distinct; slots is an open-addressing table
 * of n_slots (a power of two, at least twice n_ids) entries holding index + 1, 0 for free.
 * Entries are never removed, so an index stays valid until the table is reset. A journal has
 * one seqnum id per file and one boot id per boot, so the table stays tiny; the last hit per
 * kind (seqnum id, boot id) is tried before hashing. */
static struct {
        char (*ids)[ID_LEN];
        size_t n_ids, n_allocated;
        uint16_t *slots;
        size_t n_slots;
        uint16_t last[2];
} table = {
        .last = { JOURNAL_ID_NONE, JOURNAL_ID_NONE },
};

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -EINVAL; /* uppercase too: sd_journal_get_cursor() never writes it */
}

static size_t id_hash(const char id[static ID_LEN]) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < ID_LEN; i++) {
                h ^= (unsigned char) id[i];
                h *= UINT64_C(0x100000001b3);
        }
        return (size_t) (h ^ (h >> 32));
}

static void slots_insert(uint16_t *slots, size_t n_slots, const char id[static ID_LEN], size_t idx) {
        size_t mask = n_slots - 1;

        for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask)
                if (slots[i] == 0) {
                        slots[i] = (uint16_t) (idx + 1);
                        return;
                }
}

static int table_grow(void) {
        if (table.n_ids >= table.n_allocated) {
                size_t n = MIN(MAX(table.n_allocated * 2, (size_t) 4), (size_t) JOURNAL_ID_TABLE_MAX);
                char (*ids)[ID_LEN] = realloc(table.ids, n * sizeof *ids);
                if (!ids)
                        return -ENOMEM;
                table.ids = ids;
                table.n_allocated = n;
        }

        if ((table.n_ids + 1) * 2 > table.n_slots) {
                size_t n = MAX(table.n_slots * 2, (size_t) 16);
                uint16_t *slots = calloc(n, sizeof *slots);
                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < table.n_ids; i++)
                        slots_insert(slots, n, table.ids[i], i);
                free(table.slots);
                table.slots = slots;
                table.n_slots = n;
        }
        return 0;
}

/* kind: 0 for the seqnum id, 1 for the boot id (selects the last-hit cache). */
static int table_intern(const char id[static ID_LEN], unsigned kind, uint16_t *ret) {
        uint16_t last = table.last[kind];
        int r;

        if (last != JOURNAL_ID_NONE && memcmp(table.ids[last], id, ID_LEN) == 0) {
                *ret = last;
                return 0;
        }

        if (table.n_slots > 0) {
                size_t mask = table.n_slots - 1;
                for (size_t i = id_hash(id) & mask; table.slots[i] != 0; i = (i + 1) & mask) {
                        uint16_t idx = table.slots[i] - 1;
                        if (memcmp(table.ids[idx], id, ID_LEN) == 0) {
                                *ret = table.last[kind] = idx;
                                return 0;
                        }
                }
        }

        if (table.n_ids >= JOURNAL_ID_TABLE_MAX)
                return -ENOSPC;
        r = table_grow();
        if (r < 0)
                return r;

        memcpy(table.ids[table.n_ids], id, ID_LEN);
        slots_insert(table.slots, table.n_slots, id, table.n_ids);
        *ret = table.last[kind] = (uint16_t) table.n_ids++;
        return 0;
}

void journal_position_table_reset(void) {
        free(table.ids);
        free(table.slots);
        table.ids = NULL;
        table.slots = NULL;
        table.n_ids = table.n_allocated = table.n_slots = 0;
        table.last[0] = table.last[1] = JOURNAL_ID_NONE;
}

/* Expects key, then exactly 32 lowercase hex digits. */
static int parse_id(const char **p, const char *key, char ret[static ID_LEN]) {
        size_t k = strlen(key);

        if (strncmp(*p, key, k) != 0)
                return -EINVAL;
        for (size_t i = 0; i < ID_LEN; i++)
                if (unhex((*p)[k + i]) < 0) /* also stops at the terminating NUL */
                        return -EINVAL;
        memcpy(ret, *p + k, ID_LEN);
        *p += k + ID_LEN;
        return 0;
}

/* Expects key, then a number as %PRIx64 prints it: 1-16 lowercase hex digits, no leading zero
 * unless the number is 0, so that printing it back gives the same text. */
static int parse_number(const char **p, const char *key, uint64_t *ret) {
        size_t k = strlen(key), i;
        uint64_t v = 0;

        if (strncmp(*p, key, k) != 0)
                return -EINVAL;
        for (i = 0; i < 17; i++) {
                int d = unhex((*p)[k + i]);
                if (d < 0)
                        break;
                if (i == 16 || (i == 1 && v == 0))
                        return -EINVAL;
                v = (v << 4) | (uint64_t) d;
        }
        if (i == 0)
                return -EINVAL;
        *ret = v;
        *p += k + i;
        return 0;
}

int journal_position_parse(const char *cursor, usec_t realtime, JournalPosition *ret) {
        char sid[ID_LEN], bid[ID_LEN];
        uint64_t seqnum, monotonic, t, xor_hash;
        uint16_t si, bi;
        const char *p = cursor;
        int r;

        if (!cursor || strnlen(cursor, JOURNAL_CURSOR_MAX) >= JOURNAL_CURSOR_MAX)
                return -EINVAL;

        if (parse_id(&p, "s=", sid) < 0 ||
            parse_number(&p, ";i=", &seqnum) < 0 ||
            parse_id(&p, ";b=", bid) < 0 ||
            parse_number(&p, ";m=", &monotonic) < 0 ||
            parse_number(&p, ";t=", &t) < 0 ||
            parse_number(&p, ";x=", &xor_hash) < 0 ||
            *p != 0)
                return -EINVAL;
        if (t != realtime)
                return -EINVAL;

        r = table_intern(sid, 0, &si);
        if (r < 0)
                return r;
        r = table_intern(bid, 1, &bi);
        if (r < 0)
                return r;

        *ret = (JournalPosition) {
                .realtime = realtime,
                .seqnum = seqnum,
                .monotonic = monotonic,
                .xor_hash = xor_hash,
                .seqnum_id = si,
                .boot_id = bi,
        };
        return 0;
}

int journal_position_from_cursor(const char *cursor, usec_t realtime, JournalPosition *ret) {
        int r;

        r = journal_position_parse(cursor, realtime, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                *ret = (JournalPosition) {
                        .realtime = realtime,
                        .seqnum_id = JOURNAL_ID_NONE,
                        .boot_id = JOURNAL_ID_NONE,
                };
        return 0;
}

int journal_position_to_cursor(const JournalPosition *p, char buf[static JOURNAL_CURSOR_MAX]) {
        char *o = buf;

        if (!journal_position_has_cursor(p) || p->seqnum_id >= table.n_ids || p->boot_id >= table.n_ids)
                return -ENODATA;

        /* At most 2+32 + 3+16 + 3+32 + 3*(3+16) = 145 characters and a NUL: within JOURNAL_CURSOR_MAX. */
        o = mempcpy(o, "s=", 2);
        o = mempcpy(o, table.ids[p->seqnum_id], ID_LEN);
        o = mempcpy(o, ";i=", 3);
        o = text_put_hex(o, p->seqnum);
        o = mempcpy(o, ";b=", 3);
        o = mempcpy(o, table.ids[p->boot_id], ID_LEN);
        o = mempcpy(o, ";m=", 3);
        o = text_put_hex(o, p->monotonic);
        o = mempcpy(o, ";t=", 3);
        o = text_put_hex(o, p->realtime);
        o = mempcpy(o, ";x=", 3);
        o = text_put_hex(o, p->xor_hash);
        *o = 0;
        return (int) (o - buf);
}
