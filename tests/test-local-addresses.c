/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>

#include "local-addresses.h"
#include "macro.h"
#include "tests.h"

/* The rtnetlink parser on datagrams made by hand (well formed, cut short, with lengths that lie),
 * and the set it keeps. Every datagram is copied to a buffer of exactly its length, so that
 * ASan catches a read beyond it. */

typedef struct Datagram {
        _Alignas(struct nlmsghdr) uint8_t data[4096];
        size_t len;
} Datagram;

/* Appends a message of type with body (len bytes); returns its offset. */
static size_t put_message(Datagram *d, uint16_t type, uint16_t flags, uint32_t seq, uint32_t portid,
                          const void *body, size_t len) {
        struct nlmsghdr h = {
                .nlmsg_len = NLMSG_LENGTH(len),
                .nlmsg_type = type,
                .nlmsg_flags = flags,
                .nlmsg_seq = seq,
                .nlmsg_pid = portid,
        };
        size_t off = d->len;
        ASSERT_LE(off + NLMSG_SPACE(len), sizeof d->data);
        memcpy(d->data + off, &h, sizeof h);
        if (len > 0)
                memcpy(d->data + off + NLMSG_HDRLEN, body, len);
        d->len += NLMSG_SPACE(len);
        return off;
}

/* Appends an attribute to the last message, which starts at off. */
static void put_attribute(Datagram *d, size_t off, uint16_t type, const void *value, size_t len) {
        struct rtattr rta = { .rta_len = RTA_LENGTH(len), .rta_type = type };
        struct nlmsghdr h;
        ASSERT_LE(d->len + RTA_SPACE(len), sizeof d->data);
        memcpy(d->data + d->len, &rta, sizeof rta);
        memcpy(d->data + d->len + RTA_LENGTH(0), value, len);
        d->len += RTA_SPACE(len);
        memcpy(&h, d->data + off, sizeof h);
        h.nlmsg_len = d->len - off;
        memcpy(d->data + off, &h, sizeof h);
}

static size_t put_ifaddr(Datagram *d, uint16_t type, int family, uint8_t prefixlen, uint32_t ifindex) {
        struct ifaddrmsg ifa = { .ifa_family = family, .ifa_prefixlen = prefixlen, .ifa_index = ifindex };
        return put_message(d, type, 0, 0, 4242, &ifa, sizeof ifa);
}

static void put_ip(Datagram *d, size_t off, uint16_t type, const char *text) {
        uint8_t bytes[16];
        int family = strchr(text, ':') ? AF_INET6 : AF_INET;
        ASSERT_EQ(inet_pton(family, text, bytes), 1);
        put_attribute(d, off, type, bytes, family == AF_INET ? 4 : 16);
}

/* A whole RTM_NEWADDR/RTM_DELADDR as the kernel sends it for an address on a broadcast link. */
static void put_address(Datagram *d, uint16_t type, const char *text, uint8_t prefixlen, uint32_t ifindex) {
        int family = strchr(text, ':') ? AF_INET6 : AF_INET;
        size_t off = put_ifaddr(d, type, family, prefixlen, ifindex);
        if (family == AF_INET)
                put_ip(d, off, IFA_LOCAL, text);
        put_ip(d, off, IFA_ADDRESS, text);
        put_attribute(d, off, IFA_LABEL, "d0", 3);
}

typedef struct Seen {
        LocalAddressMessage m[16];
        size_t n;
} Seen;

static int on_message(const LocalAddressMessage *m, void *userdata) {
        Seen *s = userdata;
        ASSERT_LT(s->n, ELEMENTSOF(s->m));
        s->m[s->n++] = *m;
        return 0;
}

/* Parses the first len bytes of d from a buffer of exactly that size. */
static int parse(const Datagram *d, size_t len, Seen *s) {
        uint8_t *copy = malloc(MAX(len, 1U));
        int r;
        ASSERT_TRUE(copy);
        memcpy(copy, d->data, len);
        *s = (Seen) {};
        r = local_addresses_parse(copy, len, on_message, s);
        free(copy);
        return r;
}

static void assert_address(const LocalAddressMessage *m, LocalAddressMessageKind kind, const char *text,
                           uint8_t prefixlen, uint32_t ifindex) {
        char buf[ADDRESS_STRING_MAX];
        ASSERT_EQ(m->kind, kind);
        ASSERT_STREQ(address_to_string(&m->address, buf), text);
        ASSERT_EQ(m->prefixlen, prefixlen);
        ASSERT_UINT_EQ(m->ifindex, ifindex);
}

static Address ip(const char *text) {
        Address a;
        ASSERT_OK(address_parse(text, strlen(text), &a));
        return a;
}

TEST(ipv4_and_ipv6_added_and_removed) {
        Datagram d = {};
        Seen s;

        put_address(&d, RTM_NEWADDR, "192.0.2.200", 24, 3);
        put_address(&d, RTM_NEWADDR, "2001:db8::200", 64, 3);
        put_address(&d, RTM_DELADDR, "192.0.2.200", 24, 3);
        put_address(&d, RTM_DELADDR, "2001:db8::200", 64, 3);
        ASSERT_EQ(parse(&d, d.len, &s), 0);
        ASSERT_EQ(s.n, 4);
        assert_address(&s.m[0], LOCAL_ADDRESS_NEW, "192.0.2.200", 24, 3);
        assert_address(&s.m[1], LOCAL_ADDRESS_NEW, "2001:db8::200", 64, 3);
        assert_address(&s.m[2], LOCAL_ADDRESS_DEL, "192.0.2.200", 24, 3);
        assert_address(&s.m[3], LOCAL_ADDRESS_DEL, "2001:db8::200", 64, 3);
        ASSERT_UINT_EQ(s.m[0].portid, 4242);
}

TEST(own_address_not_the_peer) {
        Datagram d = {};
        Seen s;
        size_t off;

        /* Point-to-point: IFA_ADDRESS is the other end, IFA_LOCAL ours, in either order. */
        off = put_ifaddr(&d, RTM_NEWADDR, AF_INET, 32, 5);
        put_ip(&d, off, IFA_ADDRESS, "198.51.100.2");
        put_ip(&d, off, IFA_LOCAL, "198.51.100.1");
        off = put_ifaddr(&d, RTM_NEWADDR, AF_INET6, 128, 5);
        put_ip(&d, off, IFA_LOCAL, "2001:db8::1");
        put_ip(&d, off, IFA_ADDRESS, "2001:db8::2");
        /* An IPv4-mapped IPv6 address is an IPv4 address, as everywhere else. */
        off = put_ifaddr(&d, RTM_NEWADDR, AF_INET6, 128, 5);
        put_ip(&d, off, IFA_ADDRESS, "::ffff:203.0.113.9");
        ASSERT_EQ(parse(&d, d.len, &s), 0);
        ASSERT_EQ(s.n, 3);
        assert_address(&s.m[0], LOCAL_ADDRESS_NEW, "198.51.100.1", 32, 5);
        assert_address(&s.m[1], LOCAL_ADDRESS_NEW, "2001:db8::1", 128, 5);
        assert_address(&s.m[2], LOCAL_ADDRESS_NEW, "203.0.113.9", 128, 5);
        ASSERT_EQ(s.m[2].address.family, AF_INET);
}

TEST(done_error_and_others) {
        Datagram d = {};
        struct nlmsgerr e = { .error = -EBUSY };
        struct ifinfomsg link = {};
        int zero = 0, failed = -EINTR;
        Seen s;

        put_message(&d, RTM_NEWLINK, 0, 0, 0, &link, sizeof link);                  /* not ours: skipped */
        put_message(&d, NLMSG_NOOP, 0, 0, 0, NULL, 0);                               /* skipped */
        put_message(&d, NLMSG_DONE, NLM_F_MULTI, 7, 99, &zero, sizeof zero);
        put_message(&d, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 8, 99, &failed, sizeof failed);
        put_message(&d, NLMSG_DONE, NLM_F_MULTI, 9, 99, NULL, 0);                    /* old kernels: no payload */
        put_message(&d, NLMSG_ERROR, 0, 10, 99, &e, sizeof e);
        {
                /* A family we do not track. */
                size_t off = put_ifaddr(&d, RTM_NEWADDR, AF_PACKET, 0, 1);
                put_attribute(&d, off, IFA_ADDRESS, "\1\2\3\4\5\6", 6);
        }
        ASSERT_EQ(parse(&d, d.len, &s), 0);
        ASSERT_EQ(s.n, 4);
        ASSERT_EQ(s.m[0].kind, LOCAL_ADDRESS_DONE);
        ASSERT_EQ(s.m[0].error, 0);
        ASSERT_UINT_EQ(s.m[0].seq, 7);
        ASSERT_UINT_EQ(s.m[0].portid, 99);
        ASSERT_TRUE(s.m[0].multi);
        ASSERT_FALSE(s.m[0].interrupted);
        ASSERT_EQ(s.m[1].error, -EINTR);
        ASSERT_TRUE(s.m[1].interrupted);
        ASSERT_EQ(s.m[2].kind, LOCAL_ADDRESS_DONE);
        ASSERT_EQ(s.m[2].error, 0);
        ASSERT_EQ(s.m[3].kind, LOCAL_ADDRESS_ERROR);
        ASSERT_EQ(s.m[3].error, -EBUSY);
        ASSERT_UINT_EQ(s.m[3].seq, 10);
}

/* Cut anywhere, a datagram yields the messages that are whole before the cut, and -EBADMSG
 * unless the cut falls between two messages. */
TEST(truncated_anywhere) {
        Datagram d = {};
        size_t second, third;
        Seen s;

        put_address(&d, RTM_NEWADDR, "192.0.2.1", 24, 1);
        second = d.len;
        put_address(&d, RTM_NEWADDR, "2001:db8::1", 64, 1);
        third = d.len;
        put_address(&d, RTM_DELADDR, "192.0.2.1", 24, 1);

        for (size_t len = 0; len <= d.len; len++) {
                size_t whole = len >= d.len ? 3 : len >= third ? 2 : len >= second ? 1 : 0;
                bool boundary = len == 0 || len == second || len == third || len == d.len;
                int r = parse(&d, len, &s);
                if (s.n != whole || r != (boundary ? 0 : -EBADMSG))
                        fprintf(stderr, "cut at %zu of %zu: %zu messages, r=%d\n", len, d.len, s.n, r);
                ASSERT_EQ(s.n, whole);
                ASSERT_EQ(r, boundary ? 0 : -EBADMSG);
        }
}

static void set_u32(Datagram *d, size_t off, uint32_t v) {
        memcpy(d->data + off, &v, sizeof v);
}

static void set_u16(Datagram *d, size_t off, uint16_t v) {
        memcpy(d->data + off, &v, sizeof v);
}

/* A header whose length lies stops the parsing (nothing after it can be found). */
TEST(bad_message_lengths) {
        static const uint32_t lies[] = { 0, 1, sizeof(struct nlmsghdr) - 1, 4096, UINT32_MAX };
        Seen s;

        for (size_t i = 0; i < ELEMENTSOF(lies); i++) {
                Datagram d = {};
                put_address(&d, RTM_NEWADDR, "192.0.2.1", 24, 1);
                size_t off = put_ifaddr(&d, RTM_NEWADDR, AF_INET, 24, 1);
                put_ip(&d, off, IFA_LOCAL, "192.0.2.2");
                put_address(&d, RTM_NEWADDR, "192.0.2.3", 24, 1);
                set_u32(&d, off + offsetof(struct nlmsghdr, nlmsg_len), lies[i]);
                ASSERT_EQ(parse(&d, d.len, &s), -EBADMSG);
                ASSERT_EQ(s.n, 1);
        }
}

/* A message whose body lies is skipped, and the next one is still read. */
TEST(bad_bodies_are_skipped) {
        enum { SHORT_BODY, ATTR_TOO_SHORT, ATTR_BEYOND, ATTR_PAST_END, ATTR_CUT, V4_LEN_5, V4_LEN_16, V6_LEN_4, NO_ADDRESS,
               TWICE, BAD_PEER, PREFIX_33, ERROR_SHORT, ERROR_POSITIVE, _CASES };
        Seen s;

        for (int c = 0; c < _CASES; c++) {
                Datagram d = {};
                uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
                size_t off;

                if (c == SHORT_BODY) {
                        uint8_t half[4] = { AF_INET, 24 };
                        put_message(&d, RTM_NEWADDR, 0, 0, 0, half, sizeof half);
                } else if (c == ERROR_SHORT) {
                        int error = -EPERM;
                        put_message(&d, NLMSG_ERROR, 0, 1, 1, &error, sizeof error);
                } else if (c == ERROR_POSITIVE) {
                        struct nlmsgerr e = { .error = EPERM };
                        put_message(&d, NLMSG_ERROR, 0, 1, 1, &e, sizeof e);
                } else {
                        off = put_ifaddr(&d, RTM_NEWADDR, c == V6_LEN_4 ? AF_INET6 : AF_INET, c == PREFIX_33 ? 33 : 24, 1);
                        switch (c) {
                        case V4_LEN_5:
                                put_attribute(&d, off, IFA_LOCAL, "\xc0\0\2\7\0", 5);
                                break;
                        case V4_LEN_16:
                                put_attribute(&d, off, IFA_LOCAL, v6, 16);
                                break;
                        case V6_LEN_4:
                                put_attribute(&d, off, IFA_ADDRESS, "\xc0\0\2\7", 4);
                                break;
                        case NO_ADDRESS:
                                put_attribute(&d, off, IFA_LABEL, "d0", 3);
                                break;
                        case TWICE:
                                put_ip(&d, off, IFA_LOCAL, "192.0.2.7");
                                put_ip(&d, off, IFA_LOCAL, "192.0.2.8");
                                break;
                        case BAD_PEER:
                                put_ip(&d, off, IFA_LOCAL, "192.0.2.7");
                                put_attribute(&d, off, IFA_ADDRESS, "\xc0\0", 2);
                                break;
                        case PREFIX_33:
                                put_ip(&d, off, IFA_LOCAL, "192.0.2.7");
                                break;
                        default: {
                                /* The attribute's own length lies: below its header, far beyond
                                 * the message, or just beyond it (its last bytes are the
                                 * message's padding); or the message ends inside an attribute
                                 * header. */
                                size_t at = d.len;
                                put_ip(&d, off, IFA_LOCAL, "192.0.2.7");
                                if (c == ATTR_TOO_SHORT)
                                        set_u16(&d, at, 3);
                                else if (c == ATTR_BEYOND)
                                        set_u16(&d, at, 64);
                                else if (c == ATTR_PAST_END)
                                        set_u32(&d, off + offsetof(struct nlmsghdr, nlmsg_len), d.len - off - 2);
                                else {
                                        struct nlmsghdr h;
                                        memcpy(&h, d.data + off, sizeof h);
                                        h.nlmsg_len += 2; /* two bytes of a next attribute */
                                        memcpy(d.data + off, &h, sizeof h);
                                        memset(d.data + d.len, 0, 4);
                                        d.len += 4;
                                }
                        }
                        }
                }
                put_address(&d, RTM_NEWADDR, "192.0.2.9", 24, 1);
                int r = parse(&d, d.len, &s);
                if (r != -EBADMSG || s.n != 1)
                        fprintf(stderr, "case %d: r=%d, %zu messages\n", c, r, s.n);
                ASSERT_EQ(r, -EBADMSG);
                ASSERT_EQ(s.n, 1);
                assert_address(&s.m[0], LOCAL_ADDRESS_NEW, "192.0.2.9", 24, 1);
        }
}

typedef struct Changes {
        char text[16][ADDRESS_STRING_MAX + 1];
        size_t n;
} Changes;

static void on_change(const Address *a, bool added, void *userdata) {
        Changes *c = userdata;
        char buf[ADDRESS_STRING_MAX];
        ASSERT_LT(c->n, ELEMENTSOF(c->text));
        snprintf(c->text[c->n++], sizeof c->text[0], "%c%s", added ? '+' : '-', address_to_string(a, buf));
}

static void feed(LocalAddresses *l, const Datagram *d) {
        ASSERT_EQ(local_addresses_process(l, d->data, d->len), 0);
}

/* Notifications change the set; the callback hears when an address becomes local or stops
 * being local anywhere, not about a second interface with the same address. */
TEST(set_follows_notifications) {
        _cleanup_(local_addresses_freep) LocalAddresses *l = NULL;
        Changes c = {};
        Datagram d = {};
        Address a4 = ip("192.0.2.200"), a6 = ip("2001:db8::200"), other = ip("192.0.2.201");

        ASSERT_OK(local_addresses_new(on_change, &c, &l));
        ASSERT_FALSE(local_addresses_contains(l, &a4));
        ASSERT_FALSE(local_addresses_contains(NULL, &a4));

        put_address(&d, RTM_NEWADDR, "192.0.2.200", 24, 3);
        put_address(&d, RTM_NEWADDR, "2001:db8::200", 64, 3);
        put_address(&d, RTM_NEWADDR, "192.0.2.200", 24, 3); /* again (an update): no change */
        put_address(&d, RTM_NEWADDR, "192.0.2.200", 32, 4); /* on a second interface */
        feed(l, &d);
        ASSERT_TRUE(local_addresses_contains(l, &a4));
        ASSERT_TRUE(local_addresses_contains(l, &a6));
        ASSERT_FALSE(local_addresses_contains(l, &other));
        ASSERT_EQ(local_addresses_size(l), 3);

        d = (Datagram) {};
        put_address(&d, RTM_DELADDR, "192.0.2.200", 24, 3);
        feed(l, &d);
        ASSERT_TRUE(local_addresses_contains(l, &a4)); /* still on interface 4 */
        d = (Datagram) {};
        put_address(&d, RTM_DELADDR, "192.0.2.200", 32, 4);
        put_address(&d, RTM_DELADDR, "2001:db8::200", 64, 3);
        put_address(&d, RTM_DELADDR, "2001:db8::200", 64, 3); /* gone already */
        feed(l, &d);
        ASSERT_FALSE(local_addresses_contains(l, &a4));
        ASSERT_FALSE(local_addresses_contains(l, &a6));
        ASSERT_EQ(local_addresses_size(l), 0);

        ASSERT_EQ(c.n, 4);
        ASSERT_STREQ(c.text[0], "+192.0.2.200");
        ASSERT_STREQ(c.text[1], "+2001:db8::200");
        ASSERT_STREQ(c.text[2], "-192.0.2.200");
        ASSERT_STREQ(c.text[3], "-2001:db8::200");
}

/* A message that says it answers a listing nobody asked for changes nothing. */
TEST(stray_listing_replies) {
        _cleanup_(local_addresses_freep) LocalAddresses *l = NULL;
        Datagram d = {};
        int zero = 0;
        Address a = ip("192.0.2.200");

        ASSERT_OK(local_addresses_new(NULL, NULL, &l));
        put_address(&d, RTM_NEWADDR, "192.0.2.200", 24, 3);
        put_message(&d, NLMSG_DONE, NLM_F_MULTI, 1, 0, &zero, sizeof zero);
        feed(l, &d);
        ASSERT_TRUE(local_addresses_contains(l, &a));
        d = (Datagram) {};
        put_message(&d, NLMSG_DONE, NLM_F_MULTI, 0, 0, &zero, sizeof zero);
        feed(l, &d);
        ASSERT_TRUE(local_addresses_contains(l, &a));
}

/* The real thing, read only: after watching, the set holds every address getifaddrs() lists
 * (glibc asks the kernel its own way). */
TEST(watch_lists_what_getifaddrs_lists) {
        _cleanup_(local_addresses_freep) LocalAddresses *l = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct ifaddrs *list = NULL;
        size_t n = 0;
        int r;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(local_addresses_new(NULL, NULL, &l));
        r = local_addresses_watch(l, e);
        if (r == -EAFNOSUPPORT || r == -EPERM || r == -EACCES || r == -EPROTONOSUPPORT) {
                fprintf(stderr, "no rtnetlink here (%s), skipped\n", strerror(-r));
                return;
        }
        ASSERT_OK(r);
        ASSERT_EQ(local_addresses_watch(l, e), -EBUSY);
        ASSERT_EQ(getifaddrs(&list), 0);
        for (struct ifaddrs *i = list; i; i = i->ifa_next) {
                Address a = {};
                char text[ADDRESS_STRING_MAX];

                if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                if (i->ifa_addr->sa_family == AF_INET) {
                        a.family = AF_INET;
                        memcpy(a.bytes, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, 4);
                } else {
                        a.family = AF_INET6;
                        memcpy(a.bytes, &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, 16);
                }
                if (!local_addresses_contains(l, &a))
                        fprintf(stderr, "%s (%s) is missing\n", address_to_string(&a, text), i->ifa_name);
                ASSERT_TRUE(local_addresses_contains(l, &a));
                n++;
        }
        freeifaddrs(list);
        ASSERT_EQ(local_addresses_size(l), n);
}

int main(void) {
        RUN(ipv4_and_ipv6_added_and_removed);
        RUN(own_address_not_the_peer);
        RUN(done_error_and_others);
        RUN(truncated_anywhere);
        RUN(bad_message_lengths);
        RUN(bad_bodies_are_skipped);
        RUN(set_follows_notifications);
        RUN(stray_listing_replies);
        RUN(watch_lists_what_getifaddrs_lists);
        return 0;
}
