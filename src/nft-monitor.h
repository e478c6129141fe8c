/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

/* Tells the manager when another process deleted or replaced nftables objects (a table, chain,
 * rule, set or elements: "nft flush ruleset", "nft flush set ...", a table recreated with other
 * sets), so the sets can be repaired at once instead of at the next ban. Our own transactions
 * are not reported. The callback runs at most once per wakeup. */

typedef struct NftMonitor NftMonitor;

int nft_monitor_new(sd_event *event, void (*callback)(void *userdata), void *userdata, NftMonitor **ret);
NftMonitor *nft_monitor_free(NftMonitor *m);
