/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* Tells the manager when another process deleted or replaced nftables objects (a table, chain,
 * rule, set or elements: "nft flush ruleset", "nft flush set ...", a table recreated with other
 * sets), so the sets can be repaired at once instead of at the next ban. Our own transactions
 * are not reported. The callback runs at most once per wakeup. */

typedef struct NftMonitor NftMonitor;

/* lost: notifications were lost (the socket overflowed) and none seen says another process
 * changed something; it may have. */
typedef void (*NftMonitorCallback)(void *userdata, bool lost);

int nft_monitor_new(sd_event *event, NftMonitorCallback callback, void *userdata, NftMonitor **ret);
NftMonitor *nft_monitor_free(NftMonitor *m);

/* Leave and rejoin the notification group, around our own transactions that put back every
 * ban: they announce every element, and a million notifications are far more than the socket
 * holds; the overflow called for another full restore, and that one for the next, every 30 s.
 * What another process changes while paused goes unseen; notifications queued before the
 * pause are still read. Both accept NULL (no monitor). */
int nft_monitor_pause(NftMonitor *m);
int nft_monitor_resume(NftMonitor *m);

/* Notifications read so far: after our first transaction, ours no longer reach the socket. */
uint64_t nft_monitor_notifications_read(const NftMonitor *m);
