/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-journal.h>

#include "journal-field.h"
#include "journal-position.h"
#include "macro.h"

/* One journal entry as a value: the fields the jails look at (their JournalMatch= fields, _UID
 * and MESSAGE), its timestamp and its position. It is read from sd-journal once and then passed
 * down, so judging an entry needs no journal (tests build entries by hand).
 *
 * The position is the one thing read on demand: formatting a cursor costs more than judging,
 * and only entries that count need one. */

#define JOURNAL_ENTRY_FIELDS_MAX 32

typedef struct JournalEntryField {
        const char *name;  /* "MESSAGE": the reader's, static for a hand-made entry */
        const char *value; /* not NUL-terminated; NULL if the entry lacks the field (or it is unreadable) */
        size_t len;
} JournalEntryField;

typedef struct JournalEntry {
        JournalEntryField fields[JOURNAL_ENTRY_FIELDS_MAX];
        size_t n_fields;
        usec_t realtime;
        JournalPosition position;
        bool has_position;
        sd_journal *journal; /* where the position is read from if !has_position; NULL for a hand-made entry */
} JournalEntry;

/* The JournalFieldGetter over an entry (userdata: the JournalEntry): -ENOENT for a field that
 * the entry lacks or that was not read. */
int journal_entry_get_field(const char *field, const char **ret_value, size_t *ret_len, void *userdata);

/* The entry's position, read from its journal the first time. */
int journal_entry_position(JournalEntry *e, const JournalPosition **ret);

/* Reads the same set of fields from every entry; owns the copies of their values. */
typedef struct JournalEntryReader JournalEntryReader;

int journal_entry_reader_new(JournalEntryReader **ret);
JournalEntryReader *journal_entry_reader_free(JournalEntryReader *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalEntryReader *, journal_entry_reader_free);

/* Adds a field to read (duplicates are ignored). -E2BIG beyond JOURNAL_ENTRY_FIELDS_MAX. */
int journal_entry_reader_want(JournalEntryReader *r, const char *field);

/* Reads the entry j stands on into *ret, valid until the next read. A field that is absent or
 * unreadable (journald may not have linked it yet) is left NULL. */
int journal_entry_read(JournalEntryReader *r, sd_journal *j, JournalEntry *ret);
