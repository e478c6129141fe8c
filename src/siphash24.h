/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of arbitrary bytes under a secret 128-bit key: a keyed hash for tables that
 * attackers fill (see address_hash()). */
uint64_t siphash24(const void *data, size_t len, const uint8_t key[static 16]);
