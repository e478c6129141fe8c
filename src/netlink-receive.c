/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "netlink-receive.h"

ssize_t netlink_receive(int fd, void *buf, size_t size, bool *lost) {
        for (;;) {
                struct sockaddr_nl sender = {};
                struct iovec iov = { .iov_base = buf, .iov_len = size };
                struct msghdr mh = { .msg_name = &sender, .msg_namelen = sizeof sender, .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) {
                                *lost = true;
                                continue;
                        }
                        return errno == EAGAIN ? 0 : -errno;
                }
                if ((size_t) n > size || (mh.msg_flags & MSG_TRUNC)) {
                        *lost = true;
                        continue;
                }
                if (mh.msg_namelen != sizeof sender || sender.nl_pid != 0)
                        continue;
                if (n > 0)
                        return n;
        }
}
