/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "event-util.h"
#include "huge-pages.h"
#include "log.h"
#include "manager-varlink.h"
#include "manager.h"

/* ListBans() with "more": the bans as a stream of replies of BAN_LIST_CHUNK each. A million bans
 * are 190 MB of JSON: as one reply they kept the event loop (and so banning) waiting for
 * seconds, and exceeded the connection's output limit (VARLINK_OUTPUT_MAX), which closed it.
 *
 * The addresses of the active bans are taken at the call; each chunk looks their bans up again,
 * so a ban lifted meanwhile is left out and one decided meanwhile is not listed. One chunk per
 * event loop iteration, at idle priority, and only while the client keeps up with reading. */

#define BAN_LIST_CHUNK 2048U
#define BAN_LIST_PENDING_MAX (4U * 1024U * 1024U)
#define BAN_LIST_WAIT_USEC (2 * USEC_PER_MSEC)

typedef struct BanLister {
        Manager *manager;
        VarlinkCall *call;
        sd_event_source *source;
        Address *addresses;
        size_t n, next;
        char jail[JAIL_NAME_MAX + 1]; /* empty: every jail */
} BanLister;

static BanLister *ban_lister_free(BanLister *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->source);
        if (l->call) {
                varlink_call_set_close_callback(l->call, NULL, NULL);
                varlink_call_unref(l->call);
        }
        free(l->addresses);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(BanLister *, ban_lister_free);

static void on_call_closed(VarlinkCall *call, void *userdata) {
        (void) call;
        ban_lister_free(userdata);
}

static int on_chunk(sd_event_source *s, uint64_t usec, void *userdata);

/* An accuracy of 1us: 0 is sd-event's default of 250 ms, which an idle loop waited out
 * before each chunk. */
static int schedule(BanLister *l, usec_t delay) {
        int r = event_reset_time(l->manager->event, &l->source, CLOCK_MONOTONIC, delay, 1, true, on_chunk, l);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(l->source, SD_EVENT_PRIORITY_IDLE);
}

static bool listed(const BanLister *l, const Ban *b, usec_t now) {
        return b && b->expires_usec > now && (!l->jail[0] || streq(b->jail, l->jail));
}

/* The next chunk as the text of the reply's parameters, {"bans":[...]}. */
static int chunk_text(BanLister *l, char **ret) {
        usec_t now = now_realtime();
        char *text = NULL;
        size_t size = 0, end = MIN(l->n, l->next + BAN_LIST_CHUNK);
        bool first = true;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs("{\"bans\":[", f);
        for (; l->next < end; l->next++) {
                const Ban *b = ban_table_get(l->manager->bans, &l->addresses[l->next]);
                if (!listed(l, b, now))
                        continue;
                if (!first)
                        fputc(',', f);
                first = false;
                manager_ban_write(f, b);
        }
        fputs("]}", f);
        if (fclose(f) != 0 || !text) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

static int on_chunk(sd_event_source *s, uint64_t usec, void *userdata) {
        BanLister *l = userdata;
        _cleanup_free_ char *text = NULL;
        int r;

        (void) s, (void) usec;
        if (varlink_call_pending_output(l->call) > BAN_LIST_PENDING_MAX) {
                r = schedule(l, BAN_LIST_WAIT_USEC);
                if (r < 0)
                        goto fail;
                return 0;
        }
        r = chunk_text(l, &text);
        if (r < 0)
                goto fail;
        if (l->next >= l->n) {
                (void) varlink_call_reply_text(l->call, text);
                ban_lister_free(l);
                return 0;
        }
        r = varlink_call_notify_text(l->call, text);
        if (r < 0) {
                /* The connection is closed from the event loop, whose close callback frees us. */
                (void) sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
                return 0;
        }
        r = schedule(l, 0);
        if (r < 0)
                goto fail;
        return 0;

fail:
        log_warning_errno(r, "Failed to list the bans: %m");
        (void) varlink_call_error(l->call, VARLINK_ERROR_INTERNAL, NULL);
        ban_lister_free(l);
        return 0;
}

int manager_list_bans_stream(Manager *m, VarlinkCall *call, const char *jail) {
        _cleanup_(ban_lister_freep) BanLister *l = NULL;
        usec_t now = now_realtime();
        size_t iter = 0;
        const Ban *b;
        int r;

        l = calloc(1, sizeof(BanLister));
        if (!l)
                return -ENOMEM;
        l->manager = m;
        if (jail)
                (void) snprintf(l->jail, sizeof l->jail, "%s", jail);
        l->addresses = reallocarray(NULL, MAX(ban_table_size(m->bans), 1U), sizeof(Address));
        if (!l->addresses)
                return -ENOMEM;
        /* Taken in one go, while banning waits: 1M bans fill 20 MB. */
        advise_huge_pages(l->addresses, ban_table_size(m->bans) * sizeof(Address));
        while (ban_table_next(m->bans, &iter, &b))
                if (listed(l, b, now))
                        l->addresses[l->n++] = b->address;
        if (l->n == 0)
                return varlink_call_reply_text(call, "{\"bans\":[]}");

        r = schedule(l, 0);
        if (r < 0)
                return r;
        l->call = varlink_call_ref(call);
        varlink_call_set_close_callback(call, on_call_closed, l);
        TAKE_PTR(l);
        return 0;
}
