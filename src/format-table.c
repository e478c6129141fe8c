/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>

#include "format-table.h"

/* Invariant: cells holds n_cells strings, row by row; the first n_columns are the headers.
 * After a table_flush(), cells holds the headers and the rows added since; widths (NULL before
 * the first flush) how wide the printed columns were, n_flushed how many rows were printed. */
struct Table {
        size_t n_columns;
        char **cells;
        size_t n_cells, allocated;
        size_t *widths;
        size_t n_flushed;
};

static int append(Table *t, const char *text) {
        char *copy;

        if (t->n_cells == t->allocated) {
                size_t n = MAX(t->allocated * 2, (size_t) 16);
                char **p = realloc(t->cells, n * sizeof *p);
                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->allocated = n;
        }

        copy = strdup(text ?: "-");
        if (!copy)
                return -ENOMEM;
        for (char *c = copy; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
        t->cells[t->n_cells++] = copy;
        return 0;
}

Table *table_new(const char * const *headers, size_t n_columns) {
        Table *t;

        if (n_columns == 0)
                return NULL;
        t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        for (size_t i = 0; i < n_columns; i++)
                if (append(t, headers[i]) < 0)
                        return table_free(t);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->widths);
        free(t);
        return NULL;
}

int table_add_cell(Table *t, const char *text) {
        return append(t, text);
}

int table_add_cellf(Table *t, const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return append(t, s);
}

size_t table_rows(const Table *t) {
        return t->n_flushed + t->n_cells / t->n_columns - 1;
}

static void print_row(const Table *t, FILE *f, size_t row, const size_t *widths) {
        for (size_t col = 0; col < t->n_columns; col++) {
                size_t i = row * t->n_columns + col;
                const char *s = i < t->n_cells ? t->cells[i] : "-";

                if (col + 1 < t->n_columns)
                        fprintf(f, "%-*s  ", (int) widths[col], s);
                else
                        fprintf(f, "%s\n", s);
        }
}

/* Widens widths to the cells from the headers (with_header) or the first row on. */
static void measure(const Table *t, size_t *widths, bool with_header) {
        size_t n_rows = (t->n_cells + t->n_columns - 1) / t->n_columns;

        for (size_t i = with_header ? 0 : t->n_columns; i < t->n_cells; i++)
                widths[i % t->n_columns] = MAX(widths[i % t->n_columns], strlen(t->cells[i]));
        if (n_rows * t->n_columns > t->n_cells)
                for (size_t col = t->n_cells % t->n_columns; col < t->n_columns; col++)
                        widths[col] = MAX(widths[col], (size_t) 1);
}

static void print_rows(const Table *t, FILE *f, bool header, const size_t *widths) {
        size_t n_rows = (t->n_cells + t->n_columns - 1) / t->n_columns;

        for (size_t row = header ? 0 : 1; row < n_rows; row++)
                print_row(t, f, row, widths);
}

int table_print(const Table *t, FILE *f, bool header) {
        _cleanup_free_ size_t *widths = calloc(t->n_columns, sizeof *widths);

        if (!widths)
                return -ENOMEM;
        measure(t, widths, header);
        print_rows(t, f, header, widths);
        return ferror(f) ? -EIO : 0;
}

int table_flush(Table *t, FILE *f, bool header) {
        bool first = !t->widths;

        if (first) {
                t->widths = calloc(t->n_columns, sizeof *t->widths);
                if (!t->widths)
                        return -ENOMEM;
        }
        header = header && first;
        measure(t, t->widths, header);
        print_rows(t, f, header, t->widths);

        t->n_flushed = table_rows(t) + (t->n_cells % t->n_columns > 0); /* a partial row was printed too */
        for (size_t i = t->n_columns; i < t->n_cells; i++)
                free(t->cells[i]);
        t->n_cells = t->n_columns;
        return ferror(f) ? -EIO : 0;
}
