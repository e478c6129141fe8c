/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glob.h>
#include <string.h>
#include <systemd/sd-id128.h>

#include "event-util.h"
#include "fleet-entry.h"
#include "journal-events.h"
#include "log.h"
#include "manager.h"

/* Applies the ban decisions of the fleet peers listed in [Fleet] Peer=. Each peer's events
 * arrive through systemd-journal-remote, which writes one journal file per sender
 * (--split-mode=host: DIR/remote-NAME.journal, rotated into DIR/remote-NAME@....journal); the
 * file is the only thing that says who sent an entry. So every peer has a journal handle of its
 * own on exactly its files: one peer's entries can never pass for another's, and each peer's
 * stream is read in its own order, whatever the clocks of the others say.
 *
 * Powers: reads those files (only the ban and unban events in them) and queues changes for the
 * ban pipeline (manager-bans.c), which logs them marked as applied for a peer (BanChange.fleet):
 * a peer that reads them applies only decisions, so nothing echoes back and forth. */

/* How often the peers' files are looked for (a peer's first file, a rotation) and read again
 * besides the journal's wakeups. */
#define FLEET_RESCAN_USEC (1 * USEC_PER_SEC)
/* A ban that would end within this much of a ban we hold is the same ban come back again. */
#define FLEET_SLACK_USEC (1 * USEC_PER_SEC)
/* A malformed entry that is the newest of its file may still be being linked (see
 * manager-journal.c): it is read again at this many rescans before it is skipped. */
#define FLEET_MALFORMED_TRIES 3U

struct FleetPeer {
        Manager *manager;
        char *name;
        char *files;          /* the paths open, joined: another list means a rotation or a first file */
        sd_journal *journal;
        sd_event_source *io;
        char *cursor;         /* of the last entry processed; kept across reopening */
        unsigned malformed_tries;
};

static FleetPeer *fleet_peer_free(FleetPeer *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->io);
        sd_journal_close(p->journal);
        free(p->name);
        free(p->files);
        free(p->cursor);
        free(p);
        return NULL;
}

void manager_stop_fleet(Manager *m) {
        for (size_t i = 0; i < m->n_fleet_peers; i++)
                fleet_peer_free(m->fleet_peers[i]);
        free(m->fleet_peers);
        m->fleet_peers = NULL;
        m->n_fleet_peers = 0;
        m->fleet_timer = sd_event_source_disable_unref(m->fleet_timer);
}

/* The peer's files, joined by newlines (NULL if there are none yet). */
static int peer_glob(Manager *m, const FleetPeer *p, glob_t *g, char **ret) {
        _cleanup_free_ char *pattern = NULL, *joined = NULL;
        size_t len = 0;
        int r;

        *ret = NULL;
        for (int k = 0; k < 2; k++) {
                free(pattern);
                /* The names hold no glob characters (fleet_peer_name_is_valid()). */
                if (asprintf(&pattern, "%s/remote-%s%s.journal", m->config->fleet.directory, p->name,
                             k == 0 ? "" : "@*") < 0)
                        return -ENOMEM;
                r = glob(pattern, k == 0 ? 0 : GLOB_APPEND, NULL, g);
                if (r == GLOB_NOSPACE)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < g->gl_pathc; i++)
                len += strlen(g->gl_pathv[i]) + 1;
        if (len == 0)
                return 0;
        joined = malloc(len + 1);
        if (!joined)
                return -ENOMEM;
        char *end = joined;
        for (size_t i = 0; i < g->gl_pathc; i++)
                end = stpcpy(stpcpy(end, g->gl_pathv[i]), "\n");
        *end = 0;
        *ret = TAKE_PTR(joined);
        return 0;
}

/* Positions the peer's journal so that the next sd_journal_next() returns the first entry not
 * processed yet. The first time, that is its first entry: bans still running are applied, those
 * over are skipped, and the rest are already in our ban table (a restart) or duplicates. */
static int peer_seek(FleetPeer *p) {
        int r;

        if (!p->cursor)
                return sd_journal_seek_head(p->journal);
        r = sd_journal_seek_cursor(p->journal, p->cursor);
        if (r < 0)
                return r;
        r = sd_journal_next(p->journal);
        if (r <= 0)
                return r < 0 ? r : sd_journal_seek_head(p->journal);
        if (sd_journal_test_cursor(p->journal, p->cursor) > 0)
                return 0;
        /* The entry itself is gone (vacuumed): the one we stand on is new. */
        r = sd_journal_previous(p->journal);
        return r == 0 ? sd_journal_seek_head(p->journal) : MIN(r, 0);
}

static int on_peer_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_fleet_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Takes files (the joined paths) in every case. */
static int peer_open(FleetPeer *p, char **paths, char *files) {
        Manager *m = p->manager;
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_free_ char *owned = files;
        int r;

        r = sd_journal_open_files(&j, (const char **) paths, 0);
        if (r < 0)
                return log_warning_errno(r, "Failed to open the journal files of fleet peer %s: %m", p->name);
        /* The jails' matches, each group followed by a disjunction, then the ban events. */
        for (size_t i = 0; m->config->fleet.count && i < m->n_jails && r >= 0; i++)
                r = jail_add_journal_matches(m->jails[i], j);
        if (r >= 0)
                r = sd_journal_add_match(j, "MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, 0);
        if (r >= 0)
                r = sd_journal_add_match(j, "MESSAGE_ID=" VPOPGUARD_MESSAGE_UNBAN, 0);
        if (r < 0)
                return log_warning_errno(r, "Failed to add the journal matches for fleet peer %s: %m", p->name);

        p->io = sd_event_source_disable_unref(p->io);
        sd_journal_close(p->journal);
        p->journal = TAKE_PTR(j);
        free(p->files);
        p->files = TAKE_PTR(owned);

        r = peer_seek(p);
        if (r < 0) {
                /* Not read from an unknown position: the next rescan opens it again. */
                sd_journal_close(p->journal);
                p->journal = NULL;
                free(p->files);
                p->files = NULL;
                return log_warning_errno(r, "Failed to position the journal of fleet peer %s: %m", p->name);
        }
        int fd = sd_journal_get_fd(p->journal);
        if (fd >= 0)
                r = sd_event_add_io(m->event, &p->io, fd, (uint32_t) sd_journal_get_events(p->journal), on_peer_io, p);
        if (fd < 0 || r < 0)
                log_warning_errno(fd < 0 ? fd : r, "Failed to watch the journal of fleet peer %s, reading it every "
                                  "second instead: %m", p->name);
        log_info("Reading the ban events of fleet peer %s.", p->name);
        return 0;
}

static void warn_untrusted(Manager *m, const FleetPeer *p) {
        usec_t now = now_monotonic();

        m->fleet_untrusted++;
        /* Any user on that host may log such entries: one warning a minute at most. */
        if (m->fleet_untrusted_logged_usec != 0 && now < m->fleet_untrusted_logged_usec + 60 * USEC_PER_SEC)
                return;
        m->fleet_untrusted_logged_usec = now;
        log_warning("Fleet peer %s sent a ban event that its vpopguardd did not log (neither root nor %s "
                    "wrote it): not applied (%llu such entries so far).", p->name, FLEET_TRUSTED_UNIT,
                    (unsigned long long) m->fleet_untrusted);
}

static void mark(const Manager *m, const FleetPeer *p, const FleetEntry *e, BanChange *c) {
        snprintf(c->fleet.peer, sizeof c->fleet.peer, "%s", p->name);
        memcpy(c->fleet.origin_machine, e->fleet_applied ? e->origin_machine : e->machine, sizeof c->fleet.origin_machine);
        /* One hop at most: a relay passes on decisions, never what it received relayed. */
        c->fleet.relay = m->config->fleet.relay && !e->fleet_applied;
}

/* The jail of that name, if the ban is one it could have made here: an address it does not
 * ignore, not ours, and a prefix of its length (so that the sets hold it). */
static Jail *jail_for(Manager *m, const FleetEntry *e) {
        Jail *jail = manager_find_jail(m, e->jail);
        const Address *a = &e->prefix.address;

        if (!jail || jail_config_ignores_some_of(jail->config, &e->prefix))
                return NULL;
        if (address_prefix_is_host(&e->prefix))
                return m->local && local_addresses_contains(m->local, a) ? NULL : jail;
        return e->prefix.prefixlen == jail_config_prefix_length(jail->config, a->family) ? jail : NULL;
}

static int apply_ban(Manager *m, const FleetPeer *p, const FleetEntry *e, usec_t now) {
        usec_t expires = fleet_entry_local_expiry(e, now);
        Jail *jail = jail_for(m, e);
        const Ban *held;
        int r;

        if (!jail || expires == 0 || (!m->options.dry_run && !nft_set_has_family(m->nft, e->prefix.address.family)))
                return 0;
        held = ban_table_find_covering(m->bans, &e->prefix.address);
        if (held && held->expires_usec > now &&
            (held->expires_usec == USEC_INFINITY ||
             (expires != USEC_INFINITY && usec_add(held->expires_usec, FLEET_SLACK_USEC) >= expires)))
                return 0; /* a duplicate, or our own ban relayed back */

        BanChange c = {
                .kind = BAN_CHANGE_BAN,
                .ban = {
                        .address = e->prefix.address,
                        .prefixlen = e->prefix.prefixlen,
                        .banned_usec = now,
                        .expires_usec = expires,
                        .origin = BAN_ORIGIN_FLEET,
                },
        };
        strcpy(c.ban.jail, e->jail);
        mark(m, p, e, &c);
        r = manager_queue_change(m, &c);
        if (r < 0)
                return r;
        jail->fleet_bans_applied++;
        return 0;
}

static int apply_unban(Manager *m, const FleetPeer *p, const FleetEntry *e, usec_t now) {
        const Ban *held = ban_table_find_covering(m->bans, &e->prefix.address);

        if (!held || held->expires_usec <= now)
                return 0;
        BanChange c = { .kind = BAN_CHANGE_UNBAN, .ban = *held, .reason = UNBAN_MANUAL };
        mark(m, p, e, &c);
        return manager_queue_change(m, &c);
}

static void read_entry(sd_journal *j, FleetEntry *e) {
        const void *data;
        size_t len;

        fleet_entry_init(e);
        SD_JOURNAL_FOREACH_DATA(j, data, len)
                fleet_entry_add_field(e, data, len);
        if (sd_journal_get_realtime_usec(j, &e->realtime_usec) < 0)
                e->realtime_usec = 0;
}

static bool is_ban_event(sd_journal *j) {
        const void *data;
        size_t len;

        if (sd_journal_get_data(j, "MESSAGE_ID", &data, &len) < 0)
                return false;
        return (len == strlen("MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN) &&
                memcmp(data, "MESSAGE_ID=" VPOPGUARD_MESSAGE_BAN, len) == 0) ||
               (len == strlen("MESSAGE_ID=" VPOPGUARD_MESSAGE_UNBAN) &&
                memcmp(data, "MESSAGE_ID=" VPOPGUARD_MESSAGE_UNBAN, len) == 0);
}

/* Reads what is new in the peer's files (with CountFailures=, the jails' entries too) and
 * commits what it applied and decided. */
static int peer_process(FleetPeer *p) {
        Manager *m = p->manager;
        usec_t now = now_realtime();
        size_t n = 0;
        int r = 0;

        if (!p->journal)
                return 0;
        for (; n < MANAGER_BATCH_MAX; n++) {
                FleetEntry e;

                r = sd_journal_next(p->journal);
                if (r <= 0)
                        break;
                if (m->config->fleet.count && !is_ban_event(p->journal)) {
                        r = manager_judge_peer_entry(m, p->journal, now);
                        if (r < 0)
                                break;
                        goto next;
                }
                read_entry(p->journal, &e);
                FleetVerdict v = fleet_entry_judge(&e, m->fleet_machine);
                if (v == FLEET_VERDICT_MALFORMED && p->malformed_tries + 1 < FLEET_MALFORMED_TRIES) {
                        r = sd_journal_next(p->journal);
                        if (r == 0) {
                                /* The newest entry: perhaps still being written. Again at the next rescan. */
                                p->malformed_tries++;
                                r = peer_seek(p);
                                break;
                        }
                        /* Others follow it: it is complete, and malformed. Back onto it. */
                        if (r > 0)
                                r = sd_journal_previous(p->journal);
                        if (r < 0)
                                break;
                        r = 0;
                }
                p->malformed_tries = 0;
                if (v == FLEET_VERDICT_UNTRUSTED)
                        warn_untrusted(m, p);
                else if (v == FLEET_VERDICT_MALFORMED)
                        m->fleet_malformed++;
                else if (v == FLEET_VERDICT_APPLY)
                        r = e.kind == FLEET_ENTRY_BAN ? apply_ban(m, p, &e, now) : apply_unban(m, p, &e, now);
                if (r < 0)
                        break;
        next:;
                char *cursor = NULL;
                if (sd_journal_get_cursor(p->journal, &cursor) >= 0) {
                        free(p->cursor);
                        p->cursor = cursor;
                        m->state_dirty = true;
                }
        }
        if (r < 0)
                log_warning_errno(r, "Failed to read the ban events of fleet peer %s: %m", p->name);
        if (n > 0)
                (void) manager_commit(m, MANAGER_SAVE_WHEN_DUE);
        if (n == MANAGER_BATCH_MAX) {
                /* More is waiting: the rescan comes at once, after other events. */
                m->fleet_more = true;
                (void) event_reset_time(m->event, &m->fleet_timer, CLOCK_MONOTONIC, 0, 1, true, on_fleet_timer, m);
        }
        return r;
}

static int on_peer_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FleetPeer *p = userdata;
        (void) s, (void) fd, (void) revents;

        int r = sd_journal_process(p->journal);
        if (r < 0)
                log_warning_errno(r, "Failed to process changes of fleet peer %s's journal, reading on: %m", p->name);
        (void) peer_process(p);
        return 0;
}

static void peer_rescan(FleetPeer *p) {
        glob_t g = {};
        char *files = NULL;
        int r;

        r = peer_glob(p->manager, p, &g, &files);
        if (r < 0)
                log_oom();
        else if (files && !streq_ptr(files, p->files)) {
                (void) peer_open(p, g.gl_pathv, files);
        } else
                free(files);
        globfree(&g);
        (void) peer_process(p);
}

static int on_fleet_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) s;

        m->fleet_more = false;
        for (size_t i = 0; i < m->n_fleet_peers; i++)
                peer_rescan(m->fleet_peers[i]);
        (void) event_reset_time(m->event, &m->fleet_timer, CLOCK_MONOTONIC, m->fleet_more ? 0 : usec + FLEET_RESCAN_USEC,
                                m->fleet_more ? 1 : 100 * USEC_PER_MSEC, m->fleet_more, on_fleet_timer, m);
        return 0;
}

int manager_fleet_restore_position(Manager *m, const char *peer, const char *cursor) {
        int r = strv_extend(&m->fleet_saved, peer);
        return r < 0 ? r : strv_extend(&m->fleet_saved, cursor);
}

int manager_fleet_save_positions(Manager *m, StateWriter *w) {
        for (size_t i = 0; i < m->n_fleet_peers; i++) {
                const FleetPeer *p = m->fleet_peers[i];
                if (!p->cursor)
                        continue;
                int r = state_writer_peer_cursor(w, p->name, p->cursor);
                if (r < 0 && r != -EINVAL)
                        return r;
        }
        return 0;
}

static int peer_new(Manager *m, const char *name, FleetPeer **ret) {
        FleetPeer *p = calloc(1, sizeof(FleetPeer));

        if (!p || !(p->name = strdup(name))) {
                free(p);
                return -ENOMEM;
        }
        p->manager = m;
        /* Where the last run left off, if it read this peer in the same directory. */
        for (char **s = m->fleet_saved; s && s[0] && s[1]; s += 2)
                if (streq(s[0], name) && !p->cursor && !(p->cursor = strdup(s[1]))) {
                        fleet_peer_free(p);
                        return -ENOMEM;
                }
        *ret = p;
        return 0;
}

/* Follows the peers of the current configuration; a peer that stays keeps its position. */
int manager_start_fleet(Manager *m) {
        char **peers = m->config->fleet.peers;
        FleetPeer **kept = NULL;
        size_t n = strv_length(peers);
        sd_id128_t id;
        int r;

        if (!m->fleet_machine[0]) {
                r = sd_id128_get_machine(&id);
                if (r < 0)
                        log_warning_errno(r, "Failed to read the machine ID: our own bans relayed back are "
                                          "recognised only as duplicates: %m");
                else
                        sd_id128_to_string(id, m->fleet_machine);
        }
        /* Another directory: other files, and none of the positions in the old ones hold. */
        if (m->fleet_directory_open && !streq(m->fleet_directory_open, m->config->fleet.directory))
                m->fleet_saved = strv_free(m->fleet_saved);
        if (n > 0) {
                kept = calloc(n, sizeof(FleetPeer *));
                if (!kept)
                        return log_oom();
        }
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < m->n_fleet_peers && !kept[i]; k++)
                        if (m->fleet_peers[k] && streq(m->fleet_peers[k]->name, peers[i]))
                                kept[i] = TAKE_PTR(m->fleet_peers[k]);
                /* Another directory: the files are others, the position too. */
                if (kept[i] && !streq_ptr(m->fleet_directory_open, m->config->fleet.directory))
                        kept[i] = fleet_peer_free(kept[i]);
                if (kept[i]) {
                        /* The jails' matches may have changed: the next rescan opens it again. */
                        kept[i]->io = sd_event_source_disable_unref(kept[i]->io);
                        sd_journal_close(kept[i]->journal);
                        kept[i]->journal = NULL;
                        free(kept[i]->files);
                        kept[i]->files = NULL;
                }
                if (!kept[i] && peer_new(m, peers[i], &kept[i]) < 0) {
                        for (size_t k = 0; k < i; k++)
                                fleet_peer_free(kept[k]);
                        free(kept);
                        return log_oom();
                }
        }
        manager_stop_fleet(m);
        m->fleet_peers = kept;
        m->n_fleet_peers = n;
        free(m->fleet_directory_open);
        m->fleet_directory_open = strdup(m->config->fleet.directory);
        if (!m->fleet_directory_open)
                return log_oom();
        if (n == 0)
                return 0;
        /* An accuracy of 0 would be sd-event's default of 250 ms: "at once" needs 1us. */
        r = event_reset_time(m->event, &m->fleet_timer, CLOCK_MONOTONIC, 0, 1, true, on_fleet_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule reading the fleet peers' journals: %m");
        log_info("Applying the bans of %zu fleet peer%s from %s.", n, n == 1 ? "" : "s", m->config->fleet.directory);
        return 0;
}
