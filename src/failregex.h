/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "address.h"

/* A FailRegex= or IgnoreRegex= pattern, compiled with PCRE2 (JIT where available).
 *
 * fail2ban's <HOST> tag stands for the client address. It matches address text only, never a
 * host name, in the form the jail's HostFormat says its daemon prints (see HostFormat below).
 * Each candidate is checked with address_parse() during matching (a PCRE2 callout), so
 * backtracking only ever settles on text that is a valid address, and the same text is never
 * read as two different addresses: in the standard format an address is a whole token, in the
 * vpopmail format the shortest valid suffix wins with a greedy prefix such as ".*:<HOST>$". Either
 * way, address-like text that an attacker wrote earlier in the line cannot move the address of
 * a pattern anchored behind it.
 *
 * Patterns are compiled in byte mode (MESSAGE may be invalid UTF-8) with PCRE2_DOTALL and
 * PCRE2_DOLLAR_ENDONLY, so an embedded newline can neither hide a failure nor end a line
 * early. Matching runs under fixed match and depth limits (REGEX_MATCH_LIMIT, ...). */

/* How the jail's daemon prints client addresses, which decides what <HOST> may match.
 *
 * HOST_FORMAT_STANDARD, as inet_ntop() and the daemons that use it print them: dotted IPv4,
 * IPv6 in any text form (IPv4-mapped ::ffff:a.b.c.d counts as IPv4), either of them inside one
 * pair of brackets ("[2001:db8::7]"). The address is a whole token: the bytes around it may not
 * be letters, digits, '.' or '_', nor '[' before or ']' after brackets. A ':' may follow IPv4 or
 * a ']' (a port), and may precede IPv4 ("user:192.0.2.7"); colon IPv6 without brackets may have
 * a ':' on neither side, since "2001:db8::7:25" could be an address or an address and a port,
 * and "x:db8::7" could be the tail of a longer one. So a place in the line holds one address
 * or none (the dotted tail of "::ffff:192.0.2.7" reads as the same address as the whole).
 *
 * HOST_FORMAT_VPOPMAIL, as vpopmail's vchkpw prints them after a ':': dotted IPv4, IPv6 with every
 * ':' as '_' (2001_db8__7) when the text is at most 30 characters, colon IPv6 when it is longer;
 * ':' may precede and follow it, and text ending in a single ':' (an unknown client) never
 * matches. Short colon IPv6 is refused: vpopmail would have printed it with underscores, so it
 * is attacker text or the tail of a longer address. */
typedef enum HostFormat {
        HOST_FORMAT_STANDARD,
        HOST_FORMAT_VPOPMAIL,
        _HOST_FORMAT_MAX,
        _HOST_FORMAT_INVALID = -EINVAL,
} HostFormat;

const char *host_format_to_string(HostFormat f); /* "standard", "vpopmail"; NULL if invalid */
HostFormat host_format_from_string(const char *s);

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

/* format says what <HOST> matches (ignored for REGEX_IGNORE). On failure returns a negative
 * errno and, if ret_error is given, a message such as "missing <HOST>" or PCRE2's text with the
 * offset ("at offset 7: missing closing parenthesis"), allocated. */
int regex_new(const char *pattern, RegexKind kind, HostFormat format, Regex **ret, char **ret_error);
Regex *regex_free(Regex *r);

typedef enum RegexFlags {
        REGEX_NO_JIT = 1 << 0, /* always use the interpreter, as when JIT is unavailable (e.g.
                                * MemoryDenyWriteExecute=yes); for tests */
} RegexFlags;
/* regex_new() with flags; regex_new() passes 0. */
int regex_new_full(const char *pattern, RegexKind kind, HostFormat format, RegexFlags flags, Regex **ret,
                   char **ret_error);

const char *regex_pattern(const Regex *r); /* the pattern as written */
bool regex_uses_jit(const Regex *r); /* whether PCRE2's JIT compiled it (else the interpreter runs) */

/* Returns 1 on a match (for REGEX_FAIL, *ret_address is then set to the client address),
 * 0 on no match (also when <HOST> sat in an optional part that the match skipped), -E2BIG when
 * a match/depth/heap/JIT stack limit was hit or len > REGEX_MESSAGE_MAX (treated as no match by
 * the caller, who counts it), other negative errno on failure. */
int regex_match(Regex *r, const char *text, size_t len, Address *ret_address);
