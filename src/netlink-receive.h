/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The next datagram from the kernel on a netlink socket, without waiting: its length, 0 once
 * nothing is waiting, or negative errno. Notifications the kernel could not queue (ENOBUFS) and
 * datagrams larger than size are lost: *lost is set and reading goes on. Datagrams from other
 * processes are dropped: anyone may send to a netlink socket, only the kernel's word counts. */
ssize_t netlink_receive(int fd, void *buf, size_t size, bool *lost);
