/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internal to state-file-write.c and state-file-load.c: what the writer and the loader must
 * agree on. Not for other modules. */

#include "config.h" /* jail_name_is_valid() */
#include "state-file.h"

/* The format, one record per line, fields separated by one space:
 *
 *   vpopguard-state 3
 *   cursor <cursor text>                                  at most once
 *   ban <jail> <address> <failures> <banned_usec> <expires_usec> <origin> <count>
 *   fail <jail> <address> <failure> [<failure> ...]       one window, oldest failure first
 *   history <address> <count> <last_usec>                 one address's past bans
 *   end <number of records> <checksum>
 *
 * <address> in ban and fail records is an address or, since version 3, a prefix
 * ("2001:db8:1:2::/64", host bits clear; a full-length prefix is written as the bare address).
 * Version 1 had no <count> in ban records and no history records. A permanent ban has
 * <expires_usec> 18446744073709551615 (UINT64_MAX).
 *
 * A failure is "<realtime>" or "<realtime>@<cursor>" (cursors have no '@' or space). Numbers
 * are decimal without leading zeros. The checksum is the 64-bit FNV-1a of every byte before
 * the "end" line, as 16 lowercase hex digits. Nothing may follow the trailer's newline. */

#define HEADER "vpopguard-state "
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static inline uint64_t fnv1a(uint64_t h, const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char) p[i];
                h *= FNV_PRIME;
        }
        return h;
}

static inline bool address_valid(const Address *a) {
        return a->family == AF_INET || a->family == AF_INET6;
}

static inline bool cursor_text_valid(const char *s) {
        size_t n = strnlen(s, STATE_CURSOR_MAX + 1);

        if (n == 0 || n > STATE_CURSOR_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
                        return false;
        return true;
}
