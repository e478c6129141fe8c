/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The address parsers, and <HOST> in both HostFormats, on arbitrary text. Properties:
 *  - whatever address_parse() accepts prints (address_to_string()) as text that parses back to
 *    the same address and prints the same again; the underscore form vpopmail writes for IPv6
 *    parses to it too; unused bytes are zero. The same for address_prefix_parse(), whose host
 *    bits beyond the prefix are clear and whose prefix contains its own address;
 *  - "^<HOST>$" matches the input exactly when the format's rules say it is an address, and
 *    then yields the address address_parse() reads;
 *  - the input as a client's text (a user name) in lines shaped like the shipped jails' never
 *    moves the address: the pattern yields the daemon's address behind it, or hits a limit. */

#include <arpa/inet.h>

#include "address.h"
#include "failregex.h"
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

/* The format's rules for a whole text, written out independently of failregex.c: -EINVAL, or
 * 0 with the address. */
static int host_text_parse(HostFormat format, const uint8_t *data, size_t size, Address *ret) {
        const char *s = (const char *) data;
        Address a;

        if (format == HOST_FORMAT_VPOPMAIL) {
                if (address_parse(s, size, &a) < 0)
                        return -EINVAL;
                if (s[size - 1] == ':' && (size < 2 || s[size - 2] != ':'))
                        return -EINVAL; /* an unknown client */
                if (memchr(s, ':', size) && size < 31 && a.family != AF_INET)
                        return -EINVAL; /* vchkpw would have printed '_' */
        } else {
                if (size >= 2 && s[0] == '[' && s[size - 1] == ']') {
                        s++;
                        size -= 2;
                }
                if (memchr(s, '_', size) || memchr(s, '[', size) || memchr(s, ']', size) ||
                    address_parse(s, size, &a) < 0)
                        return -EINVAL;
        }
        *ret = a;
        return 0;
}

static void check_whole_text(const uint8_t *data, size_t size) {
        static Regex *whole[_HOST_FORMAT_MAX];

        for (HostFormat f = 0; f < _HOST_FORMAT_MAX; f++) {
                Address expected, got;
                int r, k;

                if (!whole[f])
                        ASSERT_EQ(regex_new("^<HOST>$", REGEX_FAIL, f, &whole[f], NULL), 0);
                r = regex_match(whole[f], (const char *) data, size, &got);
                k = size > 0 ? host_text_parse(f, data, size, &expected) : -EINVAL;
                if (r != (k == 0)) {
                        fprintf(stderr, "%s: \"^<HOST>$\" says %d, the rules %d\n", host_format_to_string(f), r, k);
                        abort();
                }
                if (r == 1)
                        ASSERT_TRUE(address_equal(&got, &expected));
        }
}

/* A line as a daemon prints it, with the client's text (the input) where the daemon puts a user
 * name: prefix, client text, middle, address, suffix. */
typedef struct Shape {
        HostFormat format;
        const char *pattern;
        const char *prefix, *middle, *suffix;
        bool bracketed_ok; /* the address may itself be written in brackets here */
} Shape;

static const Shape shapes[] = {
        { HOST_FORMAT_STANDARD, "^u .* from <HOST> port [0-9]{1,5}$", "u ", " from ", " port 22", true },
        { HOST_FORMAT_STANDARD, "^u user=<.*>, (method=.*, )?rip=<HOST>, lip=[0-9.]+, session=<[A-Za-z0-9+/]+>$",
          "u user=<", ">, method=PLAIN, rip=", ", lip=192.0.2.1, session=<4Lyd0x7xMM7LcXEF>", true },
        { HOST_FORMAT_STANDARD, "^u (user|method)=.*, ip=[[]<HOST>[]], port=[[][0-9]{1,5}[]]$",
          "u user=", ", ip=[", "], port=[4242]", false },
        { HOST_FORMAT_STANDARD, "^u passwd-file[(][^)]*,<HOST>(,<[A-Za-z0-9+/]+>)?[)]: unknown user$",
          "u passwd-file(", ",", ",<4Lyd0x7xMM7LcXEF>): unknown user", true },
        { HOST_FORMAT_VPOPMAIL, "^u .*:<HOST>$", "u ", ":", "", false },
};

/* The daemon's addresses, as each format prints them. */
static const char * const standard_addresses[] = {
        "192.0.2.7", "2001:db8::7", "::ffff:192.0.2.8", "2001:db8:85a3::8a2e:370:7334", "2a02:8109:b6c0:1a2b::",
        "::1", "[2001:db8::9]",
};
static const char * const vpopmail_addresses[] = {
        "192.0.2.7", "2001_db8__7", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2a02:8109:b6c0:1a2b:ffff:ffff::",
};

static void check_client_text(const uint8_t *data, size_t size) {
        static Regex *compiled[ELEMENTSOF(shapes)];

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                const Shape *sh = &shapes[i];
                bool standard = sh->format == HOST_FORMAT_STANDARD;
                const char * const *addresses = standard ? standard_addresses : vpopmail_addresses;
                size_t n = standard ? ELEMENTSOF(standard_addresses) : ELEMENTSOF(vpopmail_addresses);

                if (!compiled[i])
                        ASSERT_EQ(regex_new(sh->pattern, REGEX_FAIL, sh->format, &compiled[i], NULL), 0);
                for (size_t k = 0; k < n; k++) {
                        _cleanup_free_ char *line = NULL;
                        char want_text[ADDRESS_STRING_MAX], got_text[ADDRESS_STRING_MAX];
                        size_t len = 0;
                        Address want, got;
                        FILE *f;
                        int r;

                        if (addresses[k][0] == '[' && !sh->bracketed_ok)
                                continue;
                        ASSERT_EQ(host_text_parse(sh->format, (const uint8_t *) addresses[k], strlen(addresses[k]),
                                                  &want), 0);

                        f = open_memstream(&line, &len);
                        ASSERT_TRUE(f);
                        fputs(sh->prefix, f);
                        fwrite(data, 1, size, f);
                        fprintf(f, "%s%s%s", sh->middle, addresses[k], sh->suffix);
                        ASSERT_EQ(fclose(f), 0);

                        r = regex_match(compiled[i], line, len, &got);
                        if (r == -E2BIG)
                                continue;
                        /* A ")" in the client's text is refused where the pattern says so. */
                        if (r == 0 && strstr(sh->pattern, "[^)]*") && memchr(data, ')', size))
                                continue;
                        if (r != 1 || !address_equal(&got, &want)) {
                                fprintf(stderr, "\"%s\" on a line with %s: %d, %s\n", sh->pattern,
                                        address_to_string(&want, want_text), r,
                                        r == 1 ? address_to_string(&got, got_text) : "no address");
                                abort();
                        }
                }
        }
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

        check_whole_text(data, size);
        check_client_text(data, size);
        return 0;
}
