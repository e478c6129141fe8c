/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The address parsers on arbitrary text. Properties: whatever address_parse() accepts prints
 * (address_to_string()) as text that parses back to the same address and prints the same again;
 * the underscore form vpopmail writes for IPv6 parses to it too; unused bytes are zero. The
 * same for address_prefix_parse(), whose host bits beyond the prefix are clear and whose
 * prefix contains its own address. */

#include <arpa/inet.h>

#include "address.h"
#include "fuzz.h"

static void check_unused_bytes(const Address *a) {
        ASSERT_TRUE(a->family == AF_INET || a->family == AF_INET6);
        for (size_t i = a->family == AF_INET ? 4 : 16; i < sizeof a->bytes; i++)
                ASSERT_EQ(a->bytes[i], 0);
}

static void check_address(const Address *a) {
        char text[ADDRESS_STRING_MAX], again[ADDRESS_STRING_MAX];
        Address b;

        check_unused_bytes(a);
        address_to_string(a, text);
        ASSERT_LT(strlen(text), (size_t) ADDRESS_STRING_MAX);
        ASSERT_EQ(address_parse(text, strlen(text), &b), 0);
        ASSERT_TRUE(address_equal(a, &b));
        ASSERT_UINT_EQ(address_hash(a), address_hash(&b));
        ASSERT_STREQ(address_to_string(&b, again), text);
        ASSERT_EQ(address_is_loopback(a), address_is_loopback(&b));

        /* vpopmail's form: every ':' as '_'. It has no embedded IPv4 tail. */
        if (a->family == AF_INET6 && !strchr(text, '.')) {
                for (char *p = text; *p; p++)
                        if (*p == ':')
                                *p = '_';
                ASSERT_EQ(address_parse(text, strlen(text), &b), 0);
                ASSERT_TRUE(address_equal(a, &b));
        }
}

static void check_prefix(const AddressPrefix *p) {
        char text[ADDRESS_STRING_MAX + 4], again[ADDRESS_STRING_MAX + 4];
        unsigned bits = p->address.family == AF_INET ? 32 : 128;
        AddressPrefix q;

        check_unused_bytes(&p->address);
        ASSERT_LE(p->prefixlen, bits);
        for (unsigned i = p->prefixlen; i < bits; i++)
                ASSERT_EQ(p->address.bytes[i / 8] & (0x80 >> (i % 8)), 0);
        ASSERT_TRUE(address_prefix_contains(p, &p->address));

        address_prefix_to_string(p, text);
        ASSERT_EQ(!!strchr(text, '/'), p->prefixlen != bits);
        ASSERT_EQ(address_prefix_parse(text, &q), 0);
        ASSERT_TRUE(address_equal(&p->address, &q.address));
        ASSERT_EQ(p->prefixlen, q.prefixlen);
        ASSERT_STREQ(address_prefix_to_string(&q, again), text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        AddressPrefix p;
        Address a;

        /* The raw bytes, NULs included: address_parse() takes a length. */
        if (address_parse((const char *) data, size, &a) == 0) {
                check_address(&a);
                /* A full-length prefix of the same text is the same address. */
                s = fuzz_strndup(data, size);
                if (strlen(s) == size) {
                        ASSERT_EQ(address_prefix_parse(s, &p), 0);
                        ASSERT_TRUE(address_equal(&a, &p.address));
                        ASSERT_EQ(p.prefixlen, a.family == AF_INET ? 32 : 128);
                }
        }

        free(s);
        s = fuzz_strndup(data, size);
        if (address_prefix_parse(s, &p) == 0)
                check_prefix(&p);
        return 0;
}
