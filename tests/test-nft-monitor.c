/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "nft-monitor.h"
#include "tests.h"

/* Runs in a network namespace of its own. Changes by "another process" are made by the nft
 * program (another pid and name); the kernel has queued their notifications by the time it
 * exits, so draining the event loop without waiting sees them. */

static unsigned changed, lost;

static void on_change(void *userdata, bool was_lost) {
        (void) userdata;
        if (was_lost)
                lost++;
        else
                changed++;
}

static void run_nft(const char *cmd) {
        char line[512];

        (void) snprintf(line, sizeof line, "nft '%s'", cmd);
        ASSERT_EQ(system(line), 0);
}

static void drain(sd_event *e) {
        int r;

        while ((r = sd_event_run(e, 0)) > 0)
                ;
        ASSERT_EQ(r, 0);
}

TEST(foreign_delete_seen_unless_paused) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        NftMonitor *m = NULL;

        ASSERT_EQ(sd_event_new(&e), 0);
        ASSERT_EQ(nft_monitor_new(e, on_change, NULL, &m), 0);
        changed = lost = 0;

        run_nft("add table inet t; add set inet t s { type ipv4_addr; flags timeout; }");
        drain(e);
        changed = 0; /* a new set counts as a change (it may replace one of another type) */

        /* Added elements are nobody's concern. */
        run_nft("add element inet t s { 192.0.2.1 }");
        drain(e);
        ASSERT_EQ(changed, 0U);

        /* A deletion by another process is reported... */
        run_nft("delete element inet t s { 192.0.2.1 }");
        drain(e);
        ASSERT_EQ(changed, 1U);

        /* ...but not while paused, nor after the resume (it was never queued)... */
        ASSERT_EQ(nft_monitor_pause(m), 0);
        run_nft("add element inet t s { 192.0.2.2 }; delete element inet t s { 192.0.2.2 }");
        drain(e);
        ASSERT_EQ(nft_monitor_resume(m), 0);
        drain(e);
        ASSERT_EQ(changed, 1U);

        /* ...and again once resumed. */
        run_nft("delete table inet t");
        drain(e);
        ASSERT_EQ(changed, 2U);
        ASSERT_EQ(lost, 0U);

        /* Without a monitor (it could not be set up) there is nothing to pause. */
        ASSERT_EQ(nft_monitor_pause(NULL), 0);
        ASSERT_EQ(nft_monitor_resume(NULL), 0);
        nft_monitor_free(m);
}

/* A notification queued before the pause is still read: only the window is deaf. */
TEST(queued_before_pause_still_read) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        NftMonitor *m = NULL;

        ASSERT_EQ(sd_event_new(&e), 0);
        ASSERT_EQ(nft_monitor_new(e, on_change, NULL, &m), 0);
        changed = lost = 0;

        run_nft("add table inet t; delete table inet t");
        ASSERT_EQ(nft_monitor_pause(m), 0);
        drain(e);
        ASSERT_EQ(changed, 1U);
        ASSERT_EQ(nft_monitor_resume(m), 0);
        nft_monitor_free(m);
}

static void run_own(struct nft_ctx *ctx, const char *cmd) {
        int r = nft_run_cmd_from_buffer(ctx, cmd);
        if (r != 0)
                fprintf(stderr, "%s: %s\n", cmd, nft_ctx_get_error_buffer(ctx));
        ASSERT_EQ(r, 0);
}

/* Our own transactions (this process's, through libnftables as the daemon makes them) reach the
 * socket until the first one has told the monitor our netlink port; from then on the kernel
 * drops them, while another process's still come through. */
TEST(own_notifications_dropped_in_kernel) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        NftMonitor *m = NULL;
        struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        uint64_t after_first;

        ASSERT_TRUE(ctx != NULL);
        ASSERT_EQ(nft_ctx_buffer_output(ctx), 0);
        ASSERT_EQ(nft_ctx_buffer_error(ctx), 0);
        ASSERT_EQ(sd_event_new(&e), 0);
        ASSERT_EQ(nft_monitor_new(e, on_change, NULL, &m), 0);
        changed = lost = 0;

        run_own(ctx, "add table inet own; add set inet own s { type ipv4_addr; flags timeout; }");
        drain(e);
        after_first = nft_monitor_notifications_read(m);
        ASSERT_TRUE(after_first >= 3U); /* the table, the set and the NEWGEN naming us */
        ASSERT_EQ(changed, 0U);

        for (unsigned i = 0; i < 20; i++) {
                run_own(ctx, "add element inet own s { 192.0.2.1 timeout 1h, 192.0.2.2 }");
                run_own(ctx, "delete element inet own s { 192.0.2.1, 192.0.2.2 }; flush set inet own s");
        }
        drain(e);
        ASSERT_EQ(nft_monitor_notifications_read(m), after_first);
        ASSERT_EQ(changed, 0U);

        /* Another process's deletion is still read and reported. */
        run_nft("add element inet own s { 192.0.2.3 }");
        run_nft("delete element inet own s { 192.0.2.3 }");
        drain(e);
        ASSERT_TRUE(nft_monitor_notifications_read(m) > after_first);
        ASSERT_EQ(changed, 1U);

        /* And ours stay dropped after it. */
        uint64_t after_foreign = nft_monitor_notifications_read(m);
        run_own(ctx, "delete table inet own");
        drain(e);
        ASSERT_EQ(nft_monitor_notifications_read(m), after_foreign);
        ASSERT_EQ(changed, 1U);
        ASSERT_EQ(lost, 0U);

        ASSERT_EQ(nft_monitor_notifications_read(NULL), 0U);
        nft_monitor_free(m);
        nft_ctx_free(ctx);
}

int main(void) {
        struct stat before, after;

        ASSERT_EQ(stat("/proc/self/ns/net", &before), 0);
        if (unshare(CLONE_NEWNET) < 0) {
                printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
                return 77;
        }
        ASSERT_EQ(stat("/proc/self/ns/net", &after), 0);
        ASSERT_TRUE(before.st_ino != after.st_ino || before.st_dev != after.st_dev);
        if (system("nft --version >/dev/null 2>&1") != 0) {
                printf("SKIP: no nft program\n");
                return 77;
        }

        RUN(foreign_delete_seen_unless_paused);
        RUN(queued_before_pause_still_read);
        RUN(own_notifications_dropped_in_kernel);
        return 0;
}
