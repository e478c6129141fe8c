/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "event-util.h"
#include "local-addresses.h"
#include "log.h"
#include "netlink-receive.h"
#include "sorted-array.h"

/* Large enough for any datagram the kernel sends (a listing's chunks are at most 32 KiB). */
#define RECEIVE_BUFFER (64U * 1024U)
#define SOCKET_BUFFER (1024 * 1024)
/* A listing the kernel refused is asked for again this much later. */
#define RETRY_USEC (1 * USEC_PER_SEC)

/* One address as configured: the same address may be on two interfaces, or twice on one with
 * different prefix lengths, and stays local until the last of them goes. */
typedef struct LocalAddress {
        Address address;
        uint32_t ifindex;
        uint8_t prefixlen;
} LocalAddress;

/* Sorted by address, then ifindex, then prefixlen, without duplicates, so the entries of one
 * address are neighbours and a lookup is a binary search. */
typedef struct AddressList {
        LocalAddress *items;
        size_t n, allocated;
} AddressList;

struct LocalAddresses {
        AddressList live;      /* what lookups see */
        AddressList listing;   /* a listing in progress, plus the notifications since it began */
        bool listing_active;
        int listing_error;     /* why the last listing failed, 0 if it did not */
        bool relist;           /* notifications were lost meanwhile: list again after this one */
        bool first_listing;    /* local_addresses_watch() is waiting for it: nothing is reported */
        bool full_warned;
        uint32_t seq;          /* of our last listing request */
        uint32_t portid;       /* our socket's, as the kernel addresses its replies */
        int fd;
        uint8_t *buffer;       /* RECEIVE_BUFFER bytes */
        sd_event *event;
        sd_event_source *io;
        sd_event_source *retry;
        LocalAddressesCallback callback;
        void *userdata;
};

static int local_address_compare(const LocalAddress *a, const LocalAddress *b) {
        int c = memcmp(&a->address, &b->address, sizeof(Address));
        if (c != 0)
                return c;
        if (a->ifindex != b->ifindex)
                return a->ifindex < b->ifindex ? -1 : 1;
        return (int) a->prefixlen - (int) b->prefixlen;
}

static int local_address_compare_qsort(const void *a, const void *b) {
        return local_address_compare(a, b);
}

/* The first index whose entry is not below key. */
static size_t list_lower_bound(const AddressList *l, const LocalAddress *key) {
        return sorted_lower_bound(l->items, l->n, sizeof(LocalAddress), key, local_address_compare_qsort);
}

static bool list_contains(const AddressList *l, const Address *a) {
        LocalAddress key = { .address = *a };
        size_t i = list_lower_bound(l, &key);
        return i < l->n && memcmp(&l->items[i].address, a, sizeof(Address)) == 0;
}

/* 1 if added, 0 if it was there; -E2BIG beyond LOCAL_ADDRESSES_MAX, -ENOMEM. */
static int list_add(AddressList *l, const LocalAddress *e) {
        size_t i = list_lower_bound(l, e);

        if (i < l->n && local_address_compare(&l->items[i], e) == 0)
                return 0;
        if (l->n >= LOCAL_ADDRESSES_MAX)
                return -E2BIG;
        if (l->n == l->allocated) {
                size_t n = MAX(8U, l->allocated * 2);
                LocalAddress *grown = reallocarray(l->items, n, sizeof(LocalAddress));
                if (!grown)
                        return -ENOMEM;
                l->items = grown;
                l->allocated = n;
        }
        memmove(l->items + i + 1, l->items + i, (l->n - i) * sizeof(LocalAddress));
        l->items[i] = *e;
        l->n++;
        return 1;
}

static void list_remove(AddressList *l, const LocalAddress *e) {
        size_t i = list_lower_bound(l, e);

        if (i < l->n && local_address_compare(&l->items[i], e) == 0) {
                memmove(l->items + i, l->items + i + 1, (l->n - i - 1) * sizeof(LocalAddress));
                l->n--;
        }
}

static void list_done(AddressList *l) {
        free(l->items);
        *l = (AddressList) {};
}

int local_addresses_new(LocalAddressesCallback callback, void *userdata, LocalAddresses **ret) {
        LocalAddresses *l = calloc(1, sizeof(LocalAddresses));

        if (!l)
                return -ENOMEM;
        l->fd = -EBADF;
        l->callback = callback;
        l->userdata = userdata;
        *ret = l;
        return 0;
}

LocalAddresses *local_addresses_free(LocalAddresses *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->retry);
        sd_event_unref(l->event);
        safe_close(l->fd);
        free(l->buffer);
        list_done(&l->live);
        list_done(&l->listing);
        free(l);
        return NULL;
}

bool local_addresses_contains(const LocalAddresses *l, const Address *a) {
        return l && list_contains(&l->live, a);
}

bool local_addresses_overlap(const LocalAddresses *l, const AddressPrefix *p) {
        LocalAddress key = { .address = p->address };
        size_t i;

        if (!l)
                return false;
        /* The list is sorted by the address bytes, so the first entry not below the prefix's own
         * (host bits clear) address is the only candidate. */
        i = list_lower_bound(&l->live, &key);
        return i < l->live.n && address_prefix_contains(p, &l->live.items[i].address);
}

size_t local_addresses_size(const LocalAddresses *l) {
        return l ? l->live.n : 0;
}

static void report(LocalAddresses *l, const Address *a, bool added) {
        if (!l->first_listing && l->callback)
                l->callback(a, added, l->userdata);
}

static void add_failed(LocalAddresses *l, const Address *a, int r) {
        char text[ADDRESS_STRING_MAX];

        if (r == -ENOMEM)
                (void) log_oom();
        else if (!l->full_warned) {
                log_warning("More than %u addresses are configured on this host's interfaces: %s and any "
                            "further ones are not exempt from bans.", LOCAL_ADDRESSES_MAX, address_to_string(a, text));
                l->full_warned = true;
        }
}

/* A change the kernel announced: the set changes at once, and so does a listing in progress,
 * which may have reported the address before the change. */
static void apply_change(LocalAddresses *l, const LocalAddressMessage *m) {
        LocalAddress e = { .address = m->address, .ifindex = m->ifindex, .prefixlen = m->prefixlen };
        bool before = list_contains(&l->live, &m->address);
        int r;

        if (m->kind == LOCAL_ADDRESS_NEW) {
                r = list_add(&l->live, &e);
                if (r < 0)
                        add_failed(l, &m->address, r);
                if (l->listing_active) {
                        r = list_add(&l->listing, &e);
                        if (r < 0)
                                add_failed(l, &m->address, r);
                }
        } else {
                list_remove(&l->live, &e);
                list_remove(&l->listing, &e);
        }
        if (before != list_contains(&l->live, &m->address))
                report(l, &m->address, !before);
}

static void report_differences(LocalAddresses *l, const AddressList *old, const AddressList *new) {
        size_t i = 0, j = 0;

        while (i < old->n || j < new->n) {
                int c = i == old->n ? 1
                        : j == new->n ? -1
                                      : memcmp(&old->items[i].address, &new->items[j].address, sizeof(Address));
                Address a = c <= 0 ? old->items[i].address : new->items[j].address;

                while (i < old->n && memcmp(&old->items[i].address, &a, sizeof a) == 0)
                        i++;
                while (j < new->n && memcmp(&new->items[j].address, &a, sizeof a) == 0)
                        j++;
                if (c != 0)
                        report(l, &a, c > 0);
        }
}

static void list_again(LocalAddresses *l);
static void schedule_retry(LocalAddresses *l);

static void listing_done(LocalAddresses *l) {
        AddressList old = l->live;

        l->live = l->listing;
        l->listing = (AddressList) {};
        l->listing_active = false;
        l->listing_error = 0;
        report_differences(l, &old, &l->live);
        list_done(&old);
        if (l->relist)
                list_again(l);
}

static void listing_failed(LocalAddresses *l, int error) {
        if (!l->first_listing) /* else local_addresses_watch() fails with it */
                log_warning_errno(error, "Listing the host's addresses failed, retrying: %m");
        list_done(&l->listing);
        l->listing_active = false;
        l->listing_error = error;
        schedule_retry(l);
}

static bool answers_our_listing(const LocalAddresses *l, const LocalAddressMessage *m) {
        return l->listing_active && m->portid == l->portid && m->seq == l->seq;
}

static int on_message(const LocalAddressMessage *m, void *userdata) {
        LocalAddresses *l = userdata;

        if (!answers_our_listing(l, m)) {
                if (m->kind == LOCAL_ADDRESS_NEW || m->kind == LOCAL_ADDRESS_DEL)
                        apply_change(l, m);
                return 0;
        }
        if (m->interrupted)
                l->relist = true; /* the kernel's list changed while it was sent */
        switch (m->kind) {
        case LOCAL_ADDRESS_NEW: {
                LocalAddress e = { .address = m->address, .ifindex = m->ifindex, .prefixlen = m->prefixlen };
                int r = list_add(&l->listing, &e);
                if (r < 0)
                        add_failed(l, &m->address, r);
                break;
        }
        case LOCAL_ADDRESS_DONE:
                if (m->error < 0)
                        listing_failed(l, m->error);
                else
                        listing_done(l);
                break;
        case LOCAL_ADDRESS_ERROR:
                listing_failed(l, m->error < 0 ? m->error : -EPROTO);
                break;
        default:
                break;
        }
        return 0;
}

int local_addresses_process(LocalAddresses *l, const void *buf, size_t len) {
        return local_addresses_parse(buf, len, on_message, l);
}

static int start_listing(LocalAddresses *l) {
        struct {
                struct nlmsghdr h;
                struct ifaddrmsg ifa;
        } req = {
                .h = {
                        .nlmsg_len = sizeof req,
                        .nlmsg_type = RTM_GETADDR,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                },
                .ifa = { .ifa_family = AF_UNSPEC },
        };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

        /* Never 0, so that a message without a sequence number is never taken for a reply. */
        if (++l->seq == 0)
                l->seq = 1;
        req.h.nlmsg_seq = l->seq;
        if (sendto(l->fd, &req, sizeof req, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
                return -errno;
        list_done(&l->listing);
        l->listing_active = true;
        l->relist = false;
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        LocalAddresses *l = userdata;
        (void) s, (void) usec;
        if (!l->listing_active)
                list_again(l);
        return 0;
}

static void schedule_retry(LocalAddresses *l) {
        int r;

        if (!l->event)
                return; /* the first listing: local_addresses_watch() reports the failure */
        r = event_reset_time(l->event, &l->retry, CLOCK_MONOTONIC, RETRY_USEC, 0, true, on_retry, l);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule listing the host's addresses again: %m");
}

/* Asks for a new listing, or retries later. */
static void list_again(LocalAddresses *l) {
        int r = start_listing(l);
        if (r < 0) {
                log_warning_errno(r, "Failed to ask the kernel for the host's addresses, retrying: %m");
                schedule_retry(l);
        }
}

/* Notifications were lost: only a new listing tells what changed meanwhile. */
static void relist(LocalAddresses *l) {
        log_info("Notifications of address changes were lost; listing the host's addresses again.");
        if (l->listing_active)
                l->relist = true;
        else
                list_again(l);
}

/* Reads every datagram waiting on the socket. */
static void receive(LocalAddresses *l) {
        bool lost = false;
        ssize_t n;

        while ((n = netlink_receive(l->fd, l->buffer, RECEIVE_BUFFER, &lost)) > 0)
                if (local_addresses_process(l, l->buffer, (size_t) n) < 0)
                        log_warning("Ignoring a malformed rtnetlink message about the host's addresses.");
        if (n < 0)
                log_warning_errno((int) n, "Failed to read address changes from the kernel: %m");
        if (lost)
                relist(l);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s, (void) fd, (void) revents;
        receive(userdata);
        return 0;
}

static int open_socket(uint32_t *ret_portid) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
        socklen_t salen = sizeof sa;
        int size = SOCKET_BUFFER;
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        if (fd < 0)
                return -errno;
        /* Beyond net.core.rmem_max if we may (CAP_NET_ADMIN), so that a burst of changes fits. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        if (getsockname(fd, (struct sockaddr *) &sa, &salen) < 0)
                return -errno;
        if (salen != sizeof sa || sa.nl_family != AF_NETLINK)
                return -EPROTO;
        *ret_portid = sa.nl_pid;
        return TAKE_FD(fd);
}

/* The first listing, before the event loop runs: the caller needs the whole set at once. */
static int wait_for_listing(LocalAddresses *l) {
        usec_t deadline = now_monotonic() + LOCAL_ADDRESSES_DUMP_TIMEOUT_USEC;

        while (l->listing_active) {
                struct pollfd p = { .fd = l->fd, .events = POLLIN };
                usec_t now = now_monotonic();
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0)
                        receive(l);
        }
        return l->listing_error;
}

int local_addresses_watch(LocalAddresses *l, sd_event *event) {
        int r;

        if (l->fd >= 0)
                return -EBUSY;
        l->buffer = malloc(RECEIVE_BUFFER);
        if (!l->buffer)
                return -ENOMEM;
        r = open_socket(&l->portid);
        if (r < 0)
                goto fail;
        l->fd = r;
        l->first_listing = true;
        r = start_listing(l);
        if (r < 0)
                goto fail;
        r = wait_for_listing(l);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(event, &l->io, l->fd, EPOLLIN, on_readable, l);
        if (r < 0)
                goto fail;
        l->event = sd_event_ref(event);
        l->first_listing = false;
        return 0;

fail:
        l->fd = safe_close(l->fd);
        free(l->buffer);
        l->buffer = NULL;
        list_done(&l->listing);
        l->listing_active = false;
        l->first_listing = false;
        return r;
}
