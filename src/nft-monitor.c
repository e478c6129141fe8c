/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "netlink-receive.h"
#include "nft-monitor.h"

/* Listens to the kernel's nftables notifications (the NFNLGRP_NFTABLES group of nfnetlink). It
 * only listens: repairs go through nft-set.c. Each transaction's notifications end with a
 * NEWGEN message naming the process that made it, which is how our own transactions (which
 * delete too: "flush chain", unbans) are told apart from someone else's. Once one of ours has
 * been seen, a socket filter drops the rest of them in the kernel (see own_port_filter()). */

#define RECEIVE_BUFFER (64U * 1024U)

struct NftMonitor {
        sd_event_source *source;
        int fd;
        bool batch_deletes; /* the transaction being announced deleted something */
        char comm[16];      /* our process name, as the kernel reports it */
        uint32_t own_port;  /* the netlink port of our transactions, 0 until seen */
        uint64_t n_read;    /* notifications read, for tests */
        NftMonitorCallback callback;
        void *userdata;
};

static bool is_deletion(uint8_t msg) {
        switch (msg) {
        case NFT_MSG_DELTABLE:
        case NFT_MSG_DELCHAIN:
        case NFT_MSG_DELRULE:
        case NFT_MSG_DELSET:
        case NFT_MSG_DELSETELEM:
        case NFT_MSG_NEWSET: /* a set recreated, maybe with another type */
                return true;
        default:
                return false;
        }
}

/* Whether the transaction a NEWGEN message announces was made by this process. The kernel
 * gives the pid as seen from the initial pid namespace, which differs from getpid() inside a
 * container, so the process name counts too (only root can change nftables at all). */
static bool newgen_is_ours(const struct nlmsghdr *h, const char *comm) {
        size_t off = NLMSG_LENGTH(sizeof(struct nfgenmsg));

        while (off + NLA_HDRLEN <= h->nlmsg_len) {
                const struct nlattr *a = (const struct nlattr *) ((const uint8_t *) h + off);
                const uint8_t *v = (const uint8_t *) a + NLA_HDRLEN;
                size_t len;

                if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
                        break;
                len = a->nla_len - NLA_HDRLEN;
                if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_PROC_PID && len >= sizeof(uint32_t)) {
                        uint32_t pid;
                        memcpy(&pid, v, sizeof pid);
                        if ((pid_t) ntohl(pid) == getpid())
                                return true;
                }
                if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_PROC_NAME && *comm &&
                    strnlen((const char *) v, len) == strlen(comm) && memcmp(v, comm, strlen(comm)) == 0)
                        return true;
                off += NLA_ALIGN(a->nla_len);
        }
        return false;
}

/* Each notification carries the netlink port of the socket whose transaction caused it, and
 * the kernel never puts two transactions' notifications into one buffer: a buffer whose first
 * header names our port is ours from end to end. Dropping those in the
 * kernel saves a wakeup and three reads per ban, and keeps a big restore from overflowing the
 * socket with elements we added ourselves. libnftables keeps its socket, and so its port, for
 * the context's lifetime; were it to change, the new port's NEWGEN would come through and
 * replace the filter. */
static int own_port_filter(NftMonitor *m, uint32_t port) {
        struct sock_filter code[] = {
                /* Absolute loads read big-endian; the header is in host order. */
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(port), 0, 1),
                BPF_STMT(BPF_RET | BPF_K, 0),
                BPF_STMT(BPF_RET | BPF_K, UINT32_MAX),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(code), .filter = code };

        if (setsockopt(m->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
                return -errno;
        m->own_port = port;
        return 0;
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        NftMonitor *m = userdata;
        bool changed = false, lost = false;
        (void) s, (void) revents;

        /* Notifications may be lost (our own big transactions send one per element): another
         * process may have changed something then. */
        _Alignas(struct nlmsghdr) uint8_t buf[RECEIVE_BUFFER];
        ssize_t n;
        while ((n = netlink_receive(fd, buf, sizeof buf, &lost)) > 0)
                for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n)) {
                        uint8_t subsys = h->nlmsg_type >> 8, msg = h->nlmsg_type & 0xff;

                        if (subsys != NFNL_SUBSYS_NFTABLES)
                                continue;
                        m->n_read++;
                        if (msg == NFT_MSG_NEWGEN) {
                                bool ours = newgen_is_ours(h, m->comm);
                                /* Port 0 is the kernel's own. */
                                if (ours && h->nlmsg_pid != 0 && h->nlmsg_pid != m->own_port) {
                                        int r = own_port_filter(m, h->nlmsg_pid);
                                        if (r < 0)
                                                log_debug_errno(r, "nftables: cannot filter our own notifications, reading them: %m");
                                }
                                if (m->batch_deletes && !ours) {
                                        /* One line per foreign transaction, before the repair
                                         * merges them: what tells our own apart in tests. */
                                        log_debug("nftables: a transaction of another process deleted something.");
                                        changed = true;
                                }
                                m->batch_deletes = false;
                        } else if (is_deletion(msg))
                                m->batch_deletes = true;
                }

        if (changed || lost)
                m->callback(m->userdata, !changed);
        return 0;
}

int nft_monitor_new(sd_event *event, NftMonitorCallback callback, void *userdata, NftMonitor **ret) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        int group = NFNLGRP_NFTABLES, size = 16 * 1024 * 1024;
        NftMonitor *m;
        int r;

        m = calloc(1, sizeof(NftMonitor));
        if (!m)
                return -ENOMEM;
        m->callback = callback;
        m->userdata = userdata;
        m->fd = -EBADF;
        FILE *f = fopen("/proc/self/comm", "re");
        if (f) {
                if (fgets(m->comm, sizeof m->comm, f))
                        m->comm[strcspn(m->comm, "\n")] = 0;
                fclose(f);
        }
        m->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
        if (m->fd < 0) {
                r = -errno;
                goto fail;
        }
        /* Beyond net.core.rmem_max with CAP_NET_ADMIN, which we have; else as much as allowed. */
        if (setsockopt(m->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (bind(m->fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            setsockopt(m->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &m->source, m->fd, EPOLLIN, on_readable, m);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;

fail:
        nft_monitor_free(m);
        return r;
}

static int set_membership(NftMonitor *m, int option) {
        int group = NFNLGRP_NFTABLES;

        if (!m)
                return 0;
        if (setsockopt(m->fd, SOL_NETLINK, option, &group, sizeof group) < 0)
                return -errno;
        return 0;
}

uint64_t nft_monitor_notifications_read(const NftMonitor *m) {
        return m ? m->n_read : 0;
}

int nft_monitor_pause(NftMonitor *m) {
        return set_membership(m, NETLINK_DROP_MEMBERSHIP);
}

int nft_monitor_resume(NftMonitor *m) {
        return set_membership(m, NETLINK_ADD_MEMBERSHIP);
}

NftMonitor *nft_monitor_free(NftMonitor *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->source);
        safe_close(m->fd);
        free(m);
        return NULL;
}
