/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Hands out the value of a field of the current journal entry (not NUL-terminated); negative
 * errno if the entry has no such field. Jails and the rate-limit note parser read entries only
 * through this, so tests can give them fields without a journal. */
typedef int (*JournalFieldGetter)(const char *field, const char **ret_value, size_t *ret_len, void *userdata);

/* The getter for a real journal: userdata is the sd_journal, positioned on the entry. */
int journal_field_get(const char *field, const char **ret_value, size_t *ret_len, void *userdata);
