/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "macro.h"

/* A table of text cells for terminal output: every column as wide as its widest cell, cells
 * left-aligned and separated by two spaces, the last column not padded. Cells are copied;
 * control characters in them are replaced by '?', so a cell cannot move the cursor or end the
 * line. Widths count bytes, which is right for the ASCII that vpopguardctl prints. */
typedef struct Table Table;

/* n_columns headers, e.g. table_new((const char *[]) { "ADDRESS", "JAIL" }, 2). NULL on OOM. */
Table *table_new(const char * const *headers, size_t n_columns);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Appends a cell to the last row, starting a new row when it is full. NULL prints as "-". */
int table_add_cell(Table *t, const char *text);
int table_add_cellf(Table *t, const char *format, ...) _printf_(2, 3);

/* Complete rows so far. */
size_t table_rows(const Table *t);

/* Prints the header line (if header) and every row; a partial last row is filled with "-". */
int table_print(const Table *t, FILE *f, bool header);

/* Prints the rows added since the last flush and forgets them, for tables that arrive in parts
 * too large to hold together. The header comes with the first flush (if header). Columns are
 * as wide as in table_print() for the first part, and widen only if a later part has a wider
 * cell: a table in one part prints exactly as with table_print(). table_rows() still counts
 * the rows printed. */
int table_flush(Table *t, FILE *f, bool header);
