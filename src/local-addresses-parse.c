/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include "local-addresses.h"

/* The rtnetlink address messages, parsed: every length is checked against the datagram before
 * it is used, although only the kernel's messages are read (the caller checks the sender). */

static bool address_from_attribute(int family, const uint8_t *v, size_t len, Address *ret) {
        static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

        if (family == AF_INET && len == 4) {
                *ret = (Address) { .family = AF_INET };
                memcpy(ret->bytes, v, 4);
                return true;
        }
        if (family == AF_INET6 && len == 16) {
                /* Stored as IPv4, as address.h requires, so that it matches what the logs say. */
                if (memcmp(v, v4mapped, sizeof v4mapped) == 0)
                        return address_from_attribute(AF_INET, v + 12, 4, ret);
                *ret = (Address) { .family = AF_INET6 };
                memcpy(ret->bytes, v, 16);
                return true;
        }
        return false;
}

/* RTM_NEWADDR/RTM_DELADDR: 1 if m is filled, 0 to skip (another family), -EBADMSG. */
static int parse_address(const uint8_t *msg, size_t len, LocalAddressMessage *m) {
        const uint8_t *local = NULL, *peer = NULL;
        size_t local_len = 0, peer_len = 0, off = NLMSG_SPACE(sizeof(struct ifaddrmsg));
        struct ifaddrmsg ifa;

        if (len < NLMSG_LENGTH(sizeof ifa))
                return -EBADMSG;
        memcpy(&ifa, msg + NLMSG_HDRLEN, sizeof ifa);
        if (ifa.ifa_family != AF_INET && ifa.ifa_family != AF_INET6)
                return 0;
        if (ifa.ifa_prefixlen > (ifa.ifa_family == AF_INET ? 32 : 128))
                return -EBADMSG;

        while (off < len) {
                struct rtattr rta;

                if (len - off < sizeof rta)
                        return -EBADMSG;
                memcpy(&rta, msg + off, sizeof rta);
                if (rta.rta_len < sizeof rta || rta.rta_len > len - off)
                        return -EBADMSG;
                /* IFA_LOCAL is the interface's own address; IFA_ADDRESS is the same, or the peer's
                 * on a point-to-point link (IPv6 sends IFA_LOCAL only then). */
                if (rta.rta_type == IFA_LOCAL || rta.rta_type == IFA_ADDRESS) {
                        const uint8_t **v = rta.rta_type == IFA_LOCAL ? &local : &peer;
                        if (*v)
                                return -EBADMSG; /* twice */
                        *v = msg + off + RTA_LENGTH(0);
                        *(rta.rta_type == IFA_LOCAL ? &local_len : &peer_len) = rta.rta_len - RTA_LENGTH(0);
                }
                off += RTA_ALIGN(rta.rta_len);
        }

        if (local ? !address_from_attribute(ifa.ifa_family, local, local_len, &m->address)
                  : !peer || !address_from_attribute(ifa.ifa_family, peer, peer_len, &m->address))
                return -EBADMSG;
        /* A peer address that is present must be well formed too. */
        if (local && peer && !address_from_attribute(ifa.ifa_family, peer, peer_len, &(Address) {}))
                return -EBADMSG;
        m->ifindex = ifa.ifa_index;
        m->prefixlen = ifa.ifa_prefixlen;
        return 1;
}

/* 1 if m is filled, 0 to skip, -EBADMSG. */
static int parse_message(const uint8_t *msg, const struct nlmsghdr *h, LocalAddressMessage *m) {
        int error = 0;

        *m = (LocalAddressMessage) {
                .seq = h->nlmsg_seq,
                .portid = h->nlmsg_pid,
                .multi = h->nlmsg_flags & NLM_F_MULTI,
                .interrupted = h->nlmsg_flags & NLM_F_DUMP_INTR,
        };
        switch (h->nlmsg_type) {
        case RTM_NEWADDR:
        case RTM_DELADDR:
                m->kind = h->nlmsg_type == RTM_NEWADDR ? LOCAL_ADDRESS_NEW : LOCAL_ADDRESS_DEL;
                return parse_address(msg, h->nlmsg_len, m);
        case NLMSG_DONE:
                /* Its payload, if any, is the listing's error (0 when it went well). */
                m->kind = LOCAL_ADDRESS_DONE;
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof error))
                        memcpy(&error, msg + NLMSG_HDRLEN, sizeof error);
                break;
        case NLMSG_ERROR:
                m->kind = LOCAL_ADDRESS_ERROR;
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                        return -EBADMSG;
                memcpy(&error, msg + NLMSG_HDRLEN, sizeof error);
                break;
        default:
                return 0;
        }
        if (error > 0 || error < -4095)
                return -EBADMSG;
        m->error = error;
        return 1;
}

int local_addresses_parse(const void *buf, size_t len, LocalAddressMessageHandler handler, void *userdata) {
        const uint8_t *p = buf;
        size_t off = 0;
        bool bad = false;

        while (off < len) {
                LocalAddressMessage m;
                struct nlmsghdr h;
                int r;

                if (len - off < sizeof h)
                        return -EBADMSG;
                memcpy(&h, p + off, sizeof h);
                if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
                        return -EBADMSG;
                r = parse_message(p + off, &h, &m);
                if (r < 0)
                        bad = true;
                else if (r > 0) {
                        r = handler(&m, userdata);
                        if (r < 0)
                                return r;
                }
                off += NLMSG_ALIGN((size_t) h.nlmsg_len);
        }
        return bad ? -EBADMSG : 0;
}
