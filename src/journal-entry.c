/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal-entry.h"

struct JournalEntryReader {
        char *names[JOURNAL_ENTRY_FIELDS_MAX];
        size_t name_lens[JOURNAL_ENTRY_FIELDS_MAX];
        size_t n_names;
        char *buffer; /* the values of the current entry, back to back */
        size_t allocated;
};

int journal_entry_get_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        const JournalEntry *e = userdata;

        for (size_t i = 0; i < e->n_fields; i++)
                if (streq(e->fields[i].name, field)) {
                        if (!e->fields[i].value)
                                return -ENOENT;
                        *ret_value = e->fields[i].value;
                        *ret_len = e->fields[i].len;
                        return 0;
                }
        return -ENOENT;
}

int journal_entry_position(JournalEntry *e, const JournalPosition **ret) {
        _cleanup_free_ char *cursor = NULL;
        int r;

        if (!e->has_position) {
                if (!e->journal)
                        return -ENODATA;
                r = sd_journal_get_cursor(e->journal, &cursor);
                if (r < 0)
                        return r;
                r = journal_position_from_cursor(cursor, e->realtime, &e->position);
                if (r < 0)
                        return r;
                e->has_position = true;
        }
        *ret = &e->position;
        return 0;
}

int journal_entry_reader_new(JournalEntryReader **ret) {
        JournalEntryReader *r = calloc(1, sizeof(JournalEntryReader));
        if (!r)
                return -ENOMEM;
        /* Never NULL, so that an empty value is told apart from a missing one. */
        r->allocated = 1024;
        r->buffer = malloc(r->allocated);
        if (!r->buffer) {
                free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

JournalEntryReader *journal_entry_reader_free(JournalEntryReader *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_names; i++)
                free(r->names[i]);
        free(r->buffer);
        free(r);
        return NULL;
}

int journal_entry_reader_want(JournalEntryReader *r, const char *field) {
        for (size_t i = 0; i < r->n_names; i++)
                if (streq(r->names[i], field))
                        return 0;
        if (r->n_names >= JOURNAL_ENTRY_FIELDS_MAX)
                return -E2BIG;
        r->names[r->n_names] = strdup(field);
        if (!r->names[r->n_names])
                return -ENOMEM;
        r->name_lens[r->n_names] = strlen(field);
        r->n_names++;
        return 0;
}

/* Copies the value of wanted field i into the reader's buffer, at offsets[i]. */
static int keep_value(JournalEntryReader *r, size_t i, const char *value, size_t len, JournalEntry *e,
                      size_t offsets[], size_t *used) {
        if (*used + len > r->allocated) {
                size_t n = MAX(r->allocated * 2, *used + len + 256);
                char *grown = realloc(r->buffer, n);
                if (!grown)
                        return -ENOMEM;
                r->buffer = grown;
                r->allocated = n;
        }
        if (len > 0)
                memcpy(r->buffer + *used, value, len);
        offsets[i] = *used;
        e->fields[i].len = len;
        *used += len;
        return 0;
}

/* One walk over the entry's fields, keeping the first value of each wanted one: a field lookup
 * by name walks the entry from its start each time. Returns 1, or 0 at the first field that
 * sd-journal cannot read (journald may not have linked it yet), which a lookup by name skips
 * instead; negative only if our buffer cannot grow. */
static int read_in_one_walk(JournalEntryReader *r, sd_journal *j, JournalEntry *e, size_t offsets[], size_t *used) {
        const void *data;
        size_t size, found = 0;
        int k = 0;

        sd_journal_restart_data(j);
        while (found < r->n_names && (k = sd_journal_enumerate_data(j, &data, &size)) > 0) {
                const char *eq = memchr(data, '=', size);
                if (!eq)
                        continue;
                size_t name_len = (size_t) (eq - (const char *) data);
                for (size_t i = 0; i < r->n_names; i++) {
                        if (offsets[i] != SIZE_MAX || r->name_lens[i] != name_len ||
                            memcmp(r->names[i], data, name_len) != 0)
                                continue;
                        k = keep_value(r, i, eq + 1, size - name_len - 1, e, offsets, used);
                        if (k < 0)
                                return k;
                        found++;
                        break;
                }
        }
        return k >= 0;
}

/* The same by name, field after field: what a field that cannot be read leaves absent. */
static int read_by_name(JournalEntryReader *r, sd_journal *j, JournalEntry *e, size_t offsets[], size_t *used) {
        for (size_t i = 0; i < r->n_names; i++) {
                const char *value;
                size_t len;
                int k;

                if (journal_field_get(r->names[i], &value, &len, j) < 0)
                        continue;
                k = keep_value(r, i, value, len, e, offsets, used);
                if (k < 0)
                        return k;
        }
        return 0;
}

int journal_entry_read(JournalEntryReader *r, sd_journal *j, JournalEntry *ret) {
        size_t offsets[JOURNAL_ENTRY_FIELDS_MAX], used = 0;
        int k;

        ret->n_fields = r->n_names;
        ret->has_position = false;
        ret->journal = j;
        k = sd_journal_get_realtime_usec(j, &ret->realtime);
        if (k < 0)
                return k;

        /* sd-journal's data pointers are only good until its next call: copy each value. */
        for (size_t i = 0; i < r->n_names; i++) {
                ret->fields[i] = (JournalEntryField) { .name = r->names[i] };
                offsets[i] = SIZE_MAX;
        }
        k = read_in_one_walk(r, j, ret, offsets, &used);
        if (k < 0)
                return k;
        if (k == 0) {
                for (size_t i = 0; i < r->n_names; i++) {
                        ret->fields[i].len = 0;
                        offsets[i] = SIZE_MAX;
                }
                used = 0;
                k = read_by_name(r, j, ret, offsets, &used);
                if (k < 0)
                        return k;
        }
        /* Pointers only now: the buffer may have moved while it grew. */
        for (size_t i = 0; i < r->n_names; i++)
                if (offsets[i] != SIZE_MAX)
                        ret->fields[i].value = r->buffer + offsets[i];
        return 0;
}
