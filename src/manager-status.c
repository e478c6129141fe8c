/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-daemon.h>

#include "event-util.h"
#include "manager.h"

/* The service manager's STATUS= line. Each update is a datagram to PID 1 on a socket made for it,
 * and while an attack goes on a batch of entries comes every MANAGER_EAGER_INTERVAL_USEC: that
 * was a fifth of the daemon's CPU at 1000 failures/s. So it is sent at most once per
 * MANAGER_STATUS_INTERVAL_USEC, and a change within that interval when it is over. */

void manager_send_status(Manager *m) {
        uint64_t failures = 0;

        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);
        m->status_sent_monotonic = now_monotonic();
        for (size_t i = 0; i < m->n_jails; i++)
                failures += m->jails[i]->failures_total;
        (void) sd_notifyf(false, "STATUS=%zu jail%s, %zu ban%s active, %llu entries read, %llu failures counted%s",
                          m->n_jails, m->n_jails == 1 ? "" : "s",
                          ban_table_size(m->bans), ban_table_size(m->bans) == 1 ? "" : "s",
                          (unsigned long long) m->entries_read, (unsigned long long) failures,
                          m->nft_broken ? "; FIREWALL UPDATE FAILING, retrying" : "");
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec;
        manager_send_status(userdata);
        return 0;
}

void manager_update_status(Manager *m) {
        usec_t due = usec_add(m->status_sent_monotonic, MANAGER_STATUS_INTERVAL_USEC);

        if (m->status_sent_monotonic == 0 || now_monotonic() >= due) {
                manager_send_status(m);
                return;
        }
        if (event_source_is_armed(m->status_timer))
                return;
        if (event_reset_time(m->event, &m->status_timer, CLOCK_MONOTONIC, due, USEC_PER_MSEC, false, on_status_timer,
                             m) < 0)
                manager_send_status(m); /* better early than stale */
}
