/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "address.h"
#include "text-put.h"
#include "macro.h"
#include "siphash24.h"

/* The longest text we accept: a full IPv6 address with an embedded IPv4 tail
 * ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") is 45 characters. */
#define ADDRESS_TEXT_MAX (ADDRESS_STRING_MAX - 1)

static size_t family_bytes(uint8_t family) {
        return family == AF_INET ? 4 : 16;
}

static unsigned family_bits(uint8_t family) {
        return family == AF_INET ? 32 : 128;
}

/* Dotted IPv4 as inet_pton(3) documents it, checked here too so that the rules do not depend on
 * the libc: exactly four decimal parts of one to three digits, no leading zeros, each <= 255. */
static bool ipv4_text_is_strict(const char *s, size_t len) {
        unsigned parts = 0, digits = 0, value = 0;

        for (size_t i = 0; i <= len; i++) {
                if (i == len || s[i] == '.') {
                        if (digits == 0 || value > 255)
                                return false;
                        parts++;
                        digits = value = 0;
                        continue;
                }
                if (s[i] < '0' || s[i] > '9')
                        return false;
                if (digits == 1 && value == 0)
                        return false; /* leading zero */
                if (++digits > 3)
                        return false;
                value = value * 10 + (unsigned) (s[i] - '0');
        }
        return parts == 4;
}

int address_parse(const char *s, size_t len, Address *ret) {
        char buf[ADDRESS_TEXT_MAX + 1];
        bool colon = false, underscore = false, dot = false;
        Address a = {};

        if (!s || len == 0 || len > ADDRESS_TEXT_MAX)
                return -EINVAL;

        /* Only the characters of address text: this rejects names, whitespace, zone ids ("%eth0"),
         * brackets, ports and NUL bytes before libc sees anything. */
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (c == ':')
                        colon = true;
                else if (c == '_') {
                        underscore = true;
                        c = ':'; /* vpopmail prints short IPv6 with every ':' as '_' */
                } else if (c == '.')
                        dot = true;
                else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return -EINVAL;
                buf[i] = c;
        }
        buf[len] = 0;

        if (colon && underscore)
                return -EINVAL;

        if (!colon && !underscore) {
                if (!ipv4_text_is_strict(buf, len))
                        return -EINVAL;
                if (inet_pton(AF_INET, buf, a.bytes) != 1)
                        return -EINVAL;
                a.family = AF_INET;
        } else {
                struct in6_addr in6;

                if (dot) {
                        /* An embedded IPv4 tail follows the same strict rules. */
                        const char *tail = strrchr(buf, ':') + 1;
                        if (!ipv4_text_is_strict(tail, len - (size_t) (tail - buf)))
                                return -EINVAL;
                }
                if (inet_pton(AF_INET6, buf, &in6) != 1)
                        return -EINVAL;

                if (IN6_IS_ADDR_V4MAPPED(&in6)) {
                        a.family = AF_INET;
                        memcpy(a.bytes, in6.s6_addr + 12, 4);
                } else {
                        a.family = AF_INET6;
                        memcpy(a.bytes, in6.s6_addr, 16);
                }
        }

        *ret = a;
        return 0;
}

static char *put_ipv4(char *p, const uint8_t b[static 4]) {
        for (size_t i = 0; i < 4; i++) {
                if (i > 0)
                        *p++ = '.';
                p = text_put_u64(p, b[i]);
        }
        return p;
}

/* inet_ntop()'s text, which the state file, the sets and the journal entries carry, without its
 * sprintf per group (it was the larger part of a ban's cost): the longest run of two or more
 * zero groups (the first of equal ones) as "::", and the last 32 bits as dotted IPv4 where the
 * first 96 are zero, or the first 80 zero and the next 16 ones, and that run is the leading
 * one. */
static char *put_ipv6(char *p, const uint8_t b[static 16]) {
        unsigned w[8];
        int best = -1, best_len = 0, cur = -1, cur_len = 0;

        for (size_t i = 0; i < 8; i++) {
                w[i] = (unsigned) b[2 * i] << 8 | b[2 * i + 1];
                if (w[i] == 0) {
                        if (cur < 0)
                                cur = (int) i, cur_len = 0;
                        cur_len++;
                        if (cur_len > best_len)
                                best = cur, best_len = cur_len;
                } else
                        cur = -1;
        }
        if (best_len < 2)
                best = -1;

        for (int i = 0; i < 8; i++) {
                if (best >= 0 && i >= best && i < best + best_len) {
                        if (i == best)
                                *p++ = ':';
                        continue;
                }
                if (i != 0)
                        *p++ = ':';
                if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
                        return put_ipv4(p, b + 12);
                p = text_put_hex(p, w[i]);
        }
        if (best >= 0 && best + best_len == 8)
                *p++ = ':';
        return p;
}

const char *address_to_string(const Address *a, char buf[static ADDRESS_STRING_MAX]) {
        char *end;

        if (!a || (a->family != AF_INET && a->family != AF_INET6)) {
                snprintf(buf, ADDRESS_STRING_MAX, "(invalid)");
                return buf;
        }
        end = a->family == AF_INET ? put_ipv4(buf, a->bytes) : put_ipv6(buf, a->bytes);
        *end = 0;
        return buf;
}

bool address_equal(const Address *a, const Address *b) {
        if (a->family != b->family)
                return false;
        return memcmp(a->bytes, b->bytes, family_bytes(a->family)) == 0;
}

int address_compare(const Address *a, const Address *b) {
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        return memcmp(a->bytes, b->bytes, family_bytes(a->family));
}

bool address_is_loopback(const Address *a) {
        if (a->family == AF_INET)
                return a->bytes[0] == 127;
        if (a->family == AF_INET6) {
                static const uint8_t loopback6[16] = { [15] = 1 };
                return memcmp(a->bytes, loopback6, 16) == 0;
        }
        return false;
}

/* The hash tables keyed by address are filled by attackers (an IPv6 client alone controls 64
 * bits of its address), so the key is secret and chosen per process: colliding addresses
 * cannot be computed offline. The price is that iteration order differs between runs, which
 * no caller may depend on. A fixed key would make the order reproducible but let anyone who
 * reads this file build collisions. */
static uint8_t hash_key[16];
static bool hash_key_set;

void address_hash_set_key(const uint8_t key[static 16]) {
        memcpy(hash_key, key, sizeof hash_key);
        hash_key_set = true;
}

static void hash_key_ensure(void) {
        size_t n = 0;

        if (hash_key_set)
                return;
        while (n < sizeof hash_key) {
                ssize_t k = getrandom(hash_key + n, sizeof hash_key - n, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        /* Only kernels without getrandom() (before 3.17) get here: a key
                         * that differs per process is still better than a fixed one. */
                        struct timespec ts;
                        uint64_t seed[2];

                        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                        seed[0] = (uint64_t) ts.tv_nsec ^ ((uint64_t) getpid() << 32);
                        seed[1] = (uint64_t) ts.tv_sec ^ (uint64_t) (uintptr_t) &ts;
                        memcpy(hash_key, seed, sizeof hash_key);
                        break;
                }
                n += (size_t) k;
        }
        hash_key_set = true;
}

uint64_t address_hash(const Address *a) {
        uint8_t data[1 + 16] = { a->family };

        hash_key_ensure();
        memcpy(data + 1, a->bytes, family_bytes(a->family));
        return siphash24(data, 1 + family_bytes(a->family), hash_key);
}

unsigned address_family_bits(int family) {
        return family_bits((uint8_t) family);
}

static void clear_host_bits(Address *a, unsigned prefixlen) {
        size_t n = family_bytes(a->family);

        for (size_t i = 0; i < n; i++) {
                unsigned first_bit = (unsigned) i * 8;
                if (first_bit >= prefixlen)
                        a->bytes[i] = 0;
                else if (prefixlen - first_bit < 8)
                        a->bytes[i] &= (uint8_t) (0xff00 >> (prefixlen - first_bit));
        }
}

int address_prefix_parse(const char *s, AddressPrefix *ret) {
        const char *slash;
        unsigned prefixlen;
        size_t addr_len;
        Address a;
        int r;

        if (!s)
                return -EINVAL;

        slash = strchr(s, '/');
        addr_len = slash ? (size_t) (slash - s) : strlen(s);
        r = address_parse(s, addr_len, &a);
        if (r < 0)
                return r;

        if (!slash)
                prefixlen = family_bits(a.family);
        else {
                const char *p = slash + 1;
                size_t n = strlen(p);

                /* One to three decimal digits, no sign, no spaces, no leading zeros. */
                if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
                        return -EINVAL;
                prefixlen = 0;
                for (size_t i = 0; i < n; i++) {
                        if (p[i] < '0' || p[i] > '9')
                                return -EINVAL;
                        prefixlen = prefixlen * 10 + (unsigned) (p[i] - '0');
                }

                /* "::ffff:192.0.2.0/120" was written for IPv6 but is stored as IPv4. */
                if (a.family == AF_INET && (memchr(s, ':', addr_len) || memchr(s, '_', addr_len))) {
                        if (prefixlen < 96 || prefixlen > 128)
                                return -EINVAL;
                        prefixlen -= 96;
                }
                if (prefixlen > family_bits(a.family))
                        return -EINVAL;
        }

        clear_host_bits(&a, prefixlen);
        *ret = (AddressPrefix) { .address = a, .prefixlen = (uint8_t) prefixlen };
        return 0;
}

void address_mask(Address *a, unsigned prefixlen) {
        clear_host_bits(a, prefixlen);
}

AddressPrefix address_prefix_of(const Address *a, unsigned prefixlen) {
        AddressPrefix p = { .address = *a, .prefixlen = (uint8_t) MIN(prefixlen, family_bits(a->family)) };

        clear_host_bits(&p.address, p.prefixlen);
        return p;
}

bool address_prefix_covers(const AddressPrefix *p, const AddressPrefix *q) {
        return p->prefixlen <= q->prefixlen && address_prefix_contains(p, &q->address);
}

bool address_prefix_overlaps(const AddressPrefix *p, const AddressPrefix *q) {
        return address_prefix_covers(p, q) || address_prefix_covers(q, p);
}

bool address_prefix_is_host(const AddressPrefix *p) {
        return p->prefixlen >= family_bits(p->address.family);
}

bool address_prefix_contains(const AddressPrefix *p, const Address *a) {
        Address masked;

        if (p->address.family != a->family)
                return false;
        masked = *a;
        clear_host_bits(&masked, p->prefixlen);
        return address_equal(&masked, &p->address);
}

const char *address_prefix_to_string(const AddressPrefix *p, char buf[static ADDRESS_PREFIX_STRING_MAX]) {
        char *end;

        /* The address's text is at most ADDRESS_STRING_MAX - 1 bytes, "/128" fits behind it. */
        address_to_string(&p->address, buf);
        if (p->prefixlen < family_bits(p->address.family)) {
                end = buf + strlen(buf);
                *end++ = '/';
                end = text_put_u64(end, p->prefixlen);
                *end = 0;
        }
        return buf;
}
