/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Numbers written into a line that the caller builds in a buffer it has sized (state file
 * records, journal cursors), without printf: one way of writing each, no leading zeros, so
 * that the strict parsers read back exactly what was written. Each writes no NUL and returns
 * the end of what it wrote. */

#define TEXT_U64_DECIMAL_MAX 20 /* digits of UINT64_MAX */
#define TEXT_U64_HEX_MAX 16

/* Decimal, at most TEXT_U64_DECIMAL_MAX bytes. */
char *text_put_u64(char *p, uint64_t v);
/* Lowercase hex as %PRIx64 writes it, at most TEXT_U64_HEX_MAX bytes. */
char *text_put_hex(char *p, uint64_t v);
