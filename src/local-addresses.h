/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "address.h"
#include "macro.h"
#include "time-util.h"

/* The addresses configured on the host's interfaces (in the daemon's network namespace), kept
 * current through rtnetlink: listed once (RTM_GETADDR), then followed (RTMGRP_IPV4_IFADDR,
 * RTMGRP_IPV6_IFADDR), listed again whenever notifications were lost. The host must never ban
 * itself: webmail that logs in through the server's public name, or a proxy in front of vchkpw,
 * would otherwise let three wrong passwords cut the host off from its own services.
 *
 * It only listens: it never changes an interface. Messages from anyone but the kernel are
 * dropped, so a local process cannot make an address look local (and so exempt) by sending us a
 * forged RTM_NEWADDR. */

/* Addresses (one per interface and prefix length they are configured with) tracked at most;
 * beyond that further ones are not exempt (a warning says so). */
#define LOCAL_ADDRESSES_MAX 65536U

typedef struct LocalAddresses LocalAddresses;

/* a is now configured on some interface (added) or on none any more (!added). Not called for
 * what the first listing finds, nor for an address on a second interface. */
typedef void (*LocalAddressesCallback)(const Address *a, bool added, void *userdata);

/* An empty set; callback may be NULL. */
int local_addresses_new(LocalAddressesCallback callback, void *userdata, LocalAddresses **ret);
LocalAddresses *local_addresses_free(LocalAddresses *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(LocalAddresses *, local_addresses_free);

/* Opens the rtnetlink socket, lists the addresses (waiting for the kernel's answer, which is
 * immediate, for LOCAL_ADDRESSES_DUMP_TIMEOUT_USEC at most) and follows changes in event.
 * On failure the set stays as it was and nothing is followed. */
#define LOCAL_ADDRESSES_DUMP_TIMEOUT_USEC (5 * USEC_PER_SEC)
int local_addresses_watch(LocalAddresses *l, sd_event *event);

/* l may be NULL (no tracker): false. Loopback is only in it if lo is up; callers check
 * address_is_loopback() themselves. */
bool local_addresses_contains(const LocalAddresses *l, const Address *a);
/* Whether some address of l lies inside p (l may be NULL: false). */
bool local_addresses_overlap(const LocalAddresses *l, const AddressPrefix *p);
size_t local_addresses_size(const LocalAddresses *l);

/* Applies one datagram from the kernel: notifications change the set at once (calling the
 * callback), the messages of a listing in progress replace the set at its end. Returns what
 * local_addresses_parse() returned; a malformed message is skipped. */
int local_addresses_process(LocalAddresses *l, const void *buf, size_t len);

/* One rtnetlink message, as local_addresses_parse() understood it. */
typedef enum LocalAddressMessageKind {
        LOCAL_ADDRESS_NEW,  /* RTM_NEWADDR: address, ifindex, prefixlen */
        LOCAL_ADDRESS_DEL,  /* RTM_DELADDR: the same */
        LOCAL_ADDRESS_DONE, /* NLMSG_DONE: a listing ended */
        LOCAL_ADDRESS_ERROR, /* NLMSG_ERROR: error is the kernel's negative errno (0: an ACK) */
        _LOCAL_ADDRESS_MESSAGE_KIND_MAX,
        _LOCAL_ADDRESS_MESSAGE_KIND_INVALID = -EINVAL,
} LocalAddressMessageKind;

typedef struct LocalAddressMessage {
        LocalAddressMessageKind kind;
        uint32_t seq;      /* nlmsg_seq: of the request it answers; for ERROR, of the failed request */
        uint32_t portid;   /* nlmsg_pid: the socket that asked (ours for our listing) */
        bool multi;        /* NLM_F_MULTI: part of a listing */
        bool interrupted;  /* NLM_F_DUMP_INTR: the listing changed while it was made */
        int error;
        Address address;   /* the interface's own address (IFA_LOCAL, else IFA_ADDRESS) */
        uint32_t ifindex;
        uint8_t prefixlen;
} LocalAddressMessage;

/* Negative errno stops the parsing and is returned. */
typedef int (*LocalAddressMessageHandler)(const LocalAddressMessage *m, void *userdata);

/* Calls handler for each message of the datagram buf that it understands. Other message types,
 * and addresses of other families, are skipped. Every length is checked against the datagram:
 * a message whose header is cut off or whose length points beyond the end stops the parsing; a
 * NEWADDR/DELADDR/ERROR whose body or attributes are short, overlong or inconsistent is skipped.
 * Returns 0, -EBADMSG if anything was malformed (the valid messages were still handled), or
 * handler's error. Never logs. */
int local_addresses_parse(const void *buf, size_t len, LocalAddressMessageHandler handler, void *userdata);
