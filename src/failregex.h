/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

/* A FailRegex= or IgnoreRegex= pattern, compiled with PCRE2 (JIT where available).
 *
 * fail2ban's <HOST> tag stands for the client address: it matches address text only (dotted
 * IPv4, underscore IPv6, or colon IPv6 longer than 30 characters, as vpopmail prints them),
 * never a host name, and never text ending in ':'. It must be a whole token: the bytes around
 * it may not be letters, digits, '.' or '_' (':' may follow, as in "1.2.3.4:25"). Each
 * candidate is checked with address_parse() during matching (a PCRE2 callout), so backtracking
 * only ever settles on text that is a valid address; with a greedy prefix such as ".*:<HOST>$"
 * the shortest valid suffix wins, which is the real client address even when the attacker
 * wrote address-like text earlier in the line.
 *
 * Patterns are compiled in byte mode (MESSAGE may be invalid UTF-8) with PCRE2_DOTALL and
 * PCRE2_DOLLAR_ENDONLY, so an embedded newline can neither hide a failure nor end a line
 * early. Matching runs under fixed match and depth limits (REGEX_MATCH_LIMIT, ...). */

typedef struct Regex Regex;

#define REGEX_MATCH_LIMIT 1000000U
#define REGEX_DEPTH_LIMIT 10000U
#define REGEX_HEAP_LIMIT_KIB 20480U
/* Longer text is not matched at all: regex_match() returns -E2BIG, as for a limit hit. Cutting it
 * instead would be unsafe: the address is the end of the line, and a cut line ends in whatever
 * the attacker placed at the cut. */
#define REGEX_MESSAGE_MAX (64U * 1024U)

typedef enum RegexKind {
        REGEX_FAIL,   /* must contain <HOST> exactly once */
        REGEX_IGNORE, /* may not contain <HOST> */
} RegexKind;

/* On failure returns a negative errno and, if ret_error is given, a message such as
 * "missing <HOST>" or PCRE2's text with the offset ("at offset 7: missing closing parenthesis"),
 * allocated. */
int regex_new(const char *pattern, RegexKind kind, Regex **ret, char **ret_error);
Regex *regex_free(Regex *r);

typedef enum RegexFlags {
        REGEX_NO_JIT = 1 << 0, /* always use the interpreter, as when JIT is unavailable (e.g.
                                * MemoryDenyWriteExecute=yes); for tests */
} RegexFlags;
/* regex_new() with flags; regex_new() passes 0. */
int regex_new_full(const char *pattern, RegexKind kind, RegexFlags flags, Regex **ret, char **ret_error);

const char *regex_pattern(const Regex *r); /* the pattern as written */
bool regex_uses_jit(const Regex *r); /* whether PCRE2's JIT compiled it (else the interpreter runs) */

/* Returns 1 on a match (for REGEX_FAIL, *ret_address is then set to the client address),
 * 0 on no match (also when <HOST> sat in an optional part that the match skipped), -E2BIG when
 * a match/depth/heap/JIT stack limit was hit or len > REGEX_MESSAGE_MAX (treated as no match by
 * the caller, who counts it), other negative errno on failure. */
int regex_match(Regex *r, const char *text, size_t len, Address *ret_address);
