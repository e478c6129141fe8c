/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "jail.h"
#include "journal-field.h"
#include "macro.h"

/* Which jails a journal entry can be for, found from the entry's fields instead of by asking
 * every jail in turn: with many jails enabled (sshd, dovecot, postfix, courier, vpopmail), an
 * sshd line meets the sshd jail only.
 *
 * Each jail with JournalMatch= is filed under one field it matches on (the one most jails share,
 * usually SYSLOG_IDENTIFIER) and each value it accepts there. A jail without JournalMatch= is a
 * candidate for every entry. Candidates are a superset of the jails that accept an entry:
 * jail_accepts_entry() still decides, with the other fields and TrustedUID=. They come in the
 * order of the jails array, the configuration's, which decides who bans first. */

typedef struct JailIndex JailIndex;

/* The index keeps copies of the names and values: it may outlive the jails it was built from. */
int jail_index_new(Jail * const *jails, size_t n_jails, JailIndex **ret);
JailIndex *jail_index_free(JailIndex *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(JailIndex *, jail_index_free);

/* How many jails the index was built for: ret of jail_index_lookup() needs room for that many. */
size_t jail_index_size(const JailIndex *x);

/* Writes the positions (in the jails array) of the jails the entry may be for to ret, in
 * increasing order, and returns their number. */
size_t jail_index_lookup(const JailIndex *x, JournalFieldGetter get, void *userdata, size_t *ret);
