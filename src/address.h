/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 host address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is always stored as IPv4,
 * so equal hosts compare equal byte for byte. Unused bytes are zero. */
typedef struct Address {
        uint8_t family; /* AF_INET or AF_INET6 */
        uint8_t bytes[16];
} Address;

#define ADDRESS_STRING_MAX 46 /* INET6_ADDRSTRLEN */

/* Strict parsing of address text as vpopmail and other daemons print it, never a name:
 * dotted IPv4 (inet_pton rules: no leading zeros, exactly four parts), colon IPv6, and
 * vpopmail's underscore IPv6 (every ':' printed as '_'; text with '_' must have no ':').
 * s need not be NUL-terminated. -EINVAL for anything else, including empty text. */
int address_parse(const char *s, size_t len, Address *ret);

/* Canonical text (inet_ntop), e.g. "192.0.2.7", "2001:db8::7". Returns buf. */
const char *address_to_string(const Address *a, char buf[static ADDRESS_STRING_MAX]);

bool address_equal(const Address *a, const Address *b);
/* A total order for sorting and binary search, consistent with address_equal(): by family
 * (AF_INET before AF_INET6), then by the address bytes as numbers. Negative, 0 or positive. */
int address_compare(const Address *a, const Address *b);
/* SipHash-2-4 of the address under a secret key chosen per process (from getrandom() on first
 * use), so that attackers cannot compute colliding addresses; hash values, and so bucket
 * positions, differ between runs. */
uint64_t address_hash(const Address *a);
/* Replaces the per-process key, e.g. for a test that needs reproducible hashes. Only before
 * any table holds addresses: their hashes change. */
void address_hash_set_key(const uint8_t key[static 16]);
bool address_is_loopback(const Address *a); /* 127.0.0.0/8 and ::1 */

/* An address with a prefix length, for IgnoreAddress= ("192.0.2.0/24", "2001:db8::/32",
 * "192.0.2.7"). Host bits beyond the prefix are cleared. */
typedef struct AddressPrefix {
        Address address;
        uint8_t prefixlen;
} AddressPrefix;

#define ADDRESS_PREFIX_STRING_MAX (ADDRESS_STRING_MAX + 4)

/* 32 for AF_INET, 128 for AF_INET6. */
unsigned address_family_bits(int family);
/* Clears the bits of a beyond prefixlen (prefixlen may exceed the family's length: no change). */
void address_mask(Address *a, unsigned prefixlen);
/* The prefix of length prefixlen (at most the family's length) that holds a. */
AddressPrefix address_prefix_of(const Address *a, unsigned prefixlen);

/* -EINVAL on bad syntax or a prefix length out of range. */
int address_prefix_parse(const char *s, AddressPrefix *ret);
bool address_prefix_contains(const AddressPrefix *p, const Address *a);
/* Whether q lies wholly inside p (equal prefixes included). */
bool address_prefix_covers(const AddressPrefix *p, const AddressPrefix *q);
/* Whether p and q share an address: for prefixes, one covers the other. */
bool address_prefix_overlaps(const AddressPrefix *p, const AddressPrefix *q);
bool address_prefix_is_host(const AddressPrefix *p); /* the full length: one address */
/* "192.0.2.0/24"; a full-length prefix prints as the bare address. */
const char *address_prefix_to_string(const AddressPrefix *p, char buf[static ADDRESS_PREFIX_STRING_MAX]);
