/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "ban-change.h"
#include "ban-history.h"
#include "ban-table.h"
#include "config.h"
#include "jail-index.h"
#include "jail.h"
#include "journal-entry.h"
#include "journal-suppression.h"
#include "journal-sender.h"
#include "local-addresses.h"
#include "nft-monitor.h"
#include "nft-set.h"
#include "state-file.h"
#include "varlink.h"

/* The Manager owns everything that lives as long as the daemon: the event loop, the
 * configuration and jails, the journal, the firewall and the ban table.
 *
 * Data flow, once per wakeup: read a bounded batch of journal entries (manager-journal.c), let
 * each jail judge them (jail.c), queue the bans they decide, then commit the batch
 * (manager-bans.c): one nft transaction, the journal events, and only then the state file
 * (manager-state.c), so the saved cursor never runs ahead of what the kernel holds. The events
 * go out without waiting for journald (journal-sender.c); the state file is written only once
 * they are all in journald's socket, so a crash cannot lose one. */

/* A backlog is read in batches of this many entries: each one commits, so bans reach the kernel
 * and their events reach journald while the next batch is read, and journald (which needs nearly
 * as much CPU for our ban events as we need for the backlog) works alongside from the first. */
#define MANAGER_BATCH_MAX 4096U
/* Within a batch, events still queued from earlier ones are passed on every this many entries. */
#define MANAGER_PUMP_EVERY 256U
#define MANAGER_RETRY_USEC (5 * USEC_PER_SEC)
/* The state file is rewritten at most this often (a timer saves what changed since). Any saved
 * state is a snapshot between two committed batches, so a crash replays more, but still decides
 * exactly the same bans. */
#define MANAGER_SAVE_INTERVAL_USEC (1 * USEC_PER_SEC)
/* Writing the state takes 1-2 s with a million bans (in a child process, see manager-state.c):
 * the next save waits at least this many times that long, so that saving takes at most a tenth
 * of a core however many bans there are. */
#define MANAGER_SAVE_COST_FACTOR 10U
/* A state of fewer records than this is saved by the daemon itself, more by a child (manager-state.c). */
#define MANAGER_SAVE_FORK_MIN 10000U

/* When the next save may come: the interval, or more after a costly save. */
static inline usec_t manager_save_interval(usec_t last_save_cost) {
        usec_t wait = last_save_cost > USEC_INFINITY / MANAGER_SAVE_COST_FACTOR ? USEC_INFINITY
                                                                                : last_save_cost * MANAGER_SAVE_COST_FACTOR;
        return MAX((usec_t) MANAGER_SAVE_INTERVAL_USEC, wait);
}
/* How long an exit or reload waits for journald to take the queued ban events. */
#define MANAGER_FLUSH_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* After another process changed nftables, wait this long for it to finish, then repair. */
#define MANAGER_REPAIR_DELAY_USEC (100 * USEC_PER_MSEC)
/* After a repair because notifications were lost, the next such repair waits this long. */
#define MANAGER_REPAIR_LOST_INTERVAL_USEC (30 * USEC_PER_SEC)
/* Elements per transaction when every ban goes back into the kernel (manager-bans.c). */
#define MANAGER_RESTORE_CHUNK 50000U
/* journald wakes readers at most every 250 ms. While entries keep arriving, the journal is also
 * re-read every MANAGER_EAGER_INTERVAL_USEC, until nothing new came for MANAGER_EAGER_WINDOW_USEC:
 * bans land within milliseconds during an attack, and an idle daemon does not wake up. */
#define MANAGER_EAGER_INTERVAL_USEC (10 * USEC_PER_MSEC)
#define MANAGER_EAGER_WINDOW_USEC (1 * USEC_PER_SEC)
/* A jail's newest entry that lacks a field it must have (journald may still be linking it) is
 * read again every MANAGER_EAGER_INTERVAL_USEC, this many times at most (a second), and then
 * judged as it is. */
#define MANAGER_INCOMPLETE_TRIES 100U

/* Event priorities. The journal and nftables come first (SD_EVENT_PRIORITY_NORMAL: the journal's
 * wakeups and eager reads, signals, timers, nft monitoring), and with them the varlink sockets,
 * whose work is bounded per wakeup and runs no call; then a backlog's next batch; then varlink
 * calls. So that clients are still answered while the journal keeps the loop busy (a backlog,
 * or a flood that journald writes as fast as it is read), one slice of calls runs after each
 * batch that read entries (varlink_server_dispatch(): a millisecond, the batch's bans already in
 * the kernel). No local user can delay a ban by more than that. */
#define MANAGER_PRIORITY_VARLINK_SOCKETS SD_EVENT_PRIORITY_NORMAL
#define MANAGER_PRIORITY_BACKLOG (SD_EVENT_PRIORITY_NORMAL + 1)
#define MANAGER_PRIORITY_VARLINK_CALLS (SD_EVENT_PRIORITY_NORMAL + 2)

/* Whose varlink calls may reveal client addresses (failures, bans, Monitor()): root's and those
 * of members of the groups that may read the system journal, where the addresses come from. */
#define MANAGER_READER_GROUPS { "systemd-journal", "adm" }
#define MANAGER_READER_GROUPS_MAX 2U

typedef struct ManagerOptions {
        const char *config_file;       /* NULL: CONFIG_MAIN_FILE and the three drop-in dirs */
        const char *journal_directory; /* NULL: the local system journal */
        const char *state_directory;
        const char *socket_path;       /* NULL: the default unless --no-follow; "": no varlink */
        bool dry_run;
        bool follow;
} ManagerOptions;

typedef struct LoggedBan LoggedBan;
typedef struct FleetPeer FleetPeer;
typedef struct StateSyncJob StateSyncJob;
typedef struct ManagerRestore ManagerRestore;

typedef struct ManagerSubscriber {
        BanChangeSubscriber callback;
        void *userdata;
} ManagerSubscriber;

/* When manager_commit() writes the state file. */
typedef enum ManagerSave {
        MANAGER_SAVE_WHEN_DUE, /* at most every MANAGER_SAVE_INTERVAL_USEC, by a timer */
        MANAGER_SAVE_NOW,      /* now, waiting for journald and fsync (exit, reload, an admin's change) */
} ManagerSave;

typedef struct Manager {
        sd_event *event;
        ManagerOptions options;
        char *config_file;
        char **dropin_dirs;
        Config *config;
        Jail **jails;
        size_t n_jails;

        sd_journal *journal;
        JournalEntryReader *reader;        /* the fields the jails need, read once per entry */
        JailIndex *jail_index;             /* which of the jails an entry may be for */
        sd_event_source *journal_io;
        sd_event_source *journal_continue; /* defer source: the batch limit was hit */
        sd_event_source *journal_eager;    /* re-reads while an attack is in progress (a timerfd) */
        bool eager_armed;
        usec_t eager_until;                /* CLOCK_MONOTONIC */
        char *cursor;                      /* of the last processed entry */
        usec_t cursor_realtime;            /* its CLOCK_REALTIME timestamp, 0 if unknown */
        bool state_dirty;                  /* something changed since the last save */
        usec_t state_saved_usec;           /* mtime of the state file found at start */
        usec_t state_saved_monotonic;      /* when we last wrote it */
        usec_t state_save_cost;            /* how long the last save took (manager_save_interval()) */
        usec_t state_failed_monotonic;     /* when writing it last failed, 0 once it works again */
        bool journal_at_end;
        SuppressionTracker *suppression;   /* journald's rate-limit notes per jail (manager-journal.c) */
        bool notes_reach_jails;            /* some jail's JournalMatch= may accept such a note */
        sd_journal *lookback;              /* looks behind such notes; open during one batch at most */

        NftSet *nft;
        NftMonitor *nft_monitor;
        LocalAddresses *local;             /* the host's own addresses, never banned; NULL without rtnetlink */
        sd_event_source *repair_timer;     /* debounces repairs after foreign nft changes */
        bool repair_foreign;               /* the repair is for a change by another process */
        usec_t repair_lost_monotonic;      /* last repair after lost notifications */
        usec_t repair_noticed_monotonic;   /* when the change the repair is for was noticed */
        BanTable *bans;
        BanHistory *history;               /* every address's past bans, across jails (manager-bans.c) */
        BanChange *changes;                /* queued for the next commit (manager-bans.c) */
        size_t n_changes, n_changes_allocated;
        ManagerSubscriber *subscribers;    /* told of every committed change */
        size_t n_subscribers;
        bool kernel_stale;                 /* the next commit puts every active ban back */
        bool restore_in_steps;             /* ... and may do so between other events (manager-restore.c) */
        ManagerRestore *restore;           /* a restore under way, in steps */
        bool nft_broken;                   /* a commit failed: retry and reconcile */
        sd_event_source *retry_timer;
        sd_event_source *expiry_timer;
        sd_event_source *save_timer;       /* writes the state once MANAGER_SAVE_INTERVAL_USEC is over */
        sd_event_source *status_timer;     /* sends STATUS= once MANAGER_STATUS_INTERVAL_USEC is over */
        usec_t status_sent_monotonic;
        int notify_fd;                     /* connected to NOTIFY_SOCKET (manager-status.c); -ENOENT: none */
        StateSyncJob *state_syncing;       /* a save running in a child process (manager-state.c) */
        int state_sync_fd;                 /* pidfd: that child exited */
        bool state_dir_clean;              /* no stale temporary file in the state directory (manager-state.c) */
        sd_event_source *state_sync_source;

        JournalSender *events;             /* ban and unban events on their way to journald */
        LoggedBan *logged_bans;            /* see manager-recover.c */
        size_t n_logged_bans;

        VarlinkServer *varlink;
        VarlinkCall **monitors;            /* Monitor() calls streaming events */
        size_t n_monitors;
        gid_t reader_gids[MANAGER_READER_GROUPS_MAX]; /* those of MANAGER_READER_GROUPS that exist */
        size_t n_reader_gids;

        uint64_t entries_read;
        uint64_t entries_matched;
        uint64_t entries_unreadable;       /* a jail's entries without a readable MESSAGE or _UID */
        unsigned incomplete_tries;         /* reads of the newest entry, found incomplete */
        usec_t unreadable_logged_usec;     /* when the last warning about them was logged */
        uint64_t unreadable_logged;        /* entries_unreadable then */
        usec_t untrusted_logged_usec;      /* when the last warning about an untrusted sender was logged */
        uint64_t bans_total;

        FleetPeer **fleet_peers;           /* [Fleet] Peer=, in order (manager-fleet.c) */
        size_t n_fleet_peers;
        char *fleet_directory_open;        /* the [Fleet] Directory= the peers' positions are in */
        char **fleet_saved;                /* from the state file: peer, cursor, peer, cursor, ... */
        sd_event_source *fleet_timer;      /* looks for the peers' files, reads them again */
        bool fleet_more;                   /* a peer's batch was full */
        char fleet_machine[33];            /* our machine ID: our own decisions relayed back are skipped */
        uint64_t fleet_untrusted;          /* ban events in a peer's files that its vpopguardd did not log */
        uint64_t fleet_malformed;          /* ban events of a peer's vpopguardd lacking a field */
        usec_t fleet_untrusted_logged_usec;

        usec_t started_usec;
        usec_t max_find_time;
} Manager;

int manager_new(const ManagerOptions *options, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* manager-status.c */
#define MANAGER_STATUS_INTERVAL_USEC (1 * USEC_PER_SEC)
/* STATUS= now, or when MANAGER_STATUS_INTERVAL_USEC since the last is over. */
void manager_update_status(Manager *m);
void manager_send_status(Manager *m);

/* manager.c */
/* The enabled jail of that name, or NULL. */
Jail *manager_find_jail(Manager *m, const char *name);
int manager_load_config(Manager *m);
int manager_run(Manager *m);
/* Returns negative errno if the new configuration was refused; *ret_message then says why. */
int manager_reload(Manager *m, char **ret_message);
/* Lists the host's addresses and follows them; without rtnetlink only loopback is exempt (a
 * warning, not a failure). */
int manager_watch_local_addresses(Manager *m);

/* manager-journal.c */
/* A journal handle for a set of jails, positioned after the cursor, not yet followed. */
typedef struct ManagerJournal {
        sd_journal *journal;
        JournalEntryReader *reader;
        JailIndex *index; /* of the same jails */
} ManagerJournal;
int manager_open_journal_handle(Manager *m, sd_journal **ret);
int manager_prepare_journal(Manager *m, Jail **jails, size_t n_jails, ManagerJournal *ret);
void manager_journal_done(ManagerJournal *j);
/* Replaces the journal being followed by a prepared one (taken from *prepared). */
int manager_attach_journal(Manager *m, ManagerJournal *prepared);
/* Prepares and attaches the journal for m's jails. */
int manager_open_journal(Manager *m);
void manager_close_journal(Manager *m);
/* Reads up to MANAGER_BATCH_MAX entries and commits them. */
int manager_process_journal(Manager *m);
/* Judges the current entry of j, a fleet peer's journal ([Fleet] CountFailures=), as one of ours:
 * its failures count and its bans go the usual way. */
int manager_judge_peer_entry(Manager *m, sd_journal *j, usec_t now);

/* manager-bans.c: the ban pipeline, see there. */
int manager_setup_firewall(Manager *m);
/* The nft sets of c's [Firewall], with a set for each prefix length a jail bans. */
int manager_nft_new(const Config *c, NftSet **ret);
/* Stage 1: changes the ban table at once and queues c, taking what it owns. */
int manager_queue_change(Manager *m, BanChange *c);
/* Stages 2-4 for the queue: one nft transaction, the events and subscribers, the state file. */
int manager_commit(Manager *m, ManagerSave save);
/* Queues c and commits it now; if the kernel refuses, c is undone and the error returned. */
int manager_apply_now(Manager *m, BanChange *c);
/* The next commit puts every active ban back into the kernel (start, reload, repair). */
void manager_request_reconcile(Manager *m);
/* Queues the unban of every ban whose jail now ignores its address, or of an address that is
 * configured on the host's interfaces (start, reload). */
int manager_lift_ignored_bans(Manager *m);
/* LocalAddressesCallback: an address came to (or left) the host's interfaces. */
void manager_on_local_address(const Address *a, bool added, void *userdata);
int manager_subscribe(Manager *m, BanChangeSubscriber callback, void *userdata);
/* The event queue drained: writes the state file if it waited for that. */
void manager_on_events_sent(JournalSender *s, void *userdata);
int manager_arm_expiry_timer(Manager *m);
/* A ban by hand (origin manual). -EAFNOSUPPORT if no set takes its family, -EIO etc. if the
 * kernel refused (nothing changed then). */
int manager_ban_manually(Manager *m, const Ban *b);
/* Lifts the ban of a (if jail is non-NULL, only a ban of that jail) and forgets a's failures
 * in every jail. -ENOENT if a is not banned. *ret_ban (optional) is the lifted ban. */
int manager_unban(Manager *m, const Address *a, const char *jail, Ban *ret_ban);

/* manager-varlink.c */
/* Listens on the socket passed by socket activation (name "varlink", or a single fd), else on
 * options.socket_path. */
int manager_setup_varlink(Manager *m);
void manager_close_varlink(Manager *m);

/* manager-suppression.c: journald's rate-limit notes */
typedef enum NoteOutcome {
        NOTE_NONE,       /* the entry is not such a note */
        NOTE_DONE,       /* it was one, and is accounted for */
        NOTE_INCOMPLETE, /* it is one that lacks fields and the reading was not final (see manager-journal.c) */
} NoteOutcome;
/* Follows the jail list (after every change of it) and decides whether notes can reach a jail. */
int manager_track_suppression(Manager *m);
NoteOutcome manager_process_note(Manager *m, bool final);
/* The look-back handle serves one batch at most. */
void manager_close_lookback(Manager *m);

/* manager-fleet.c: the bans of the fleet peers, from the files systemd-journal-remote writes. */
/* Follows the peers of the current [Fleet] (again after a reload; a peer that stays keeps its
 * position). */
int manager_start_fleet(Manager *m);
void manager_stop_fleet(Manager *m);
/* The positions in the peers' files, saved with the state (the state's snapshot of the ban
 * table holds what was applied up to them). */
int manager_fleet_restore_position(Manager *m, const char *peer, const char *cursor);
int manager_fleet_save_positions(Manager *m, StateWriter *w);

/* manager-recover.c */
/* Reads the ban events logged after the saved state (a crash between logging and saving). */
int manager_load_logged_bans(Manager *m);
/* If a ban of a triggered by trigger_cursor was logged before a crash, gives b its original
 * times and returns true: the event must not be logged again. */
bool manager_take_logged_ban(Manager *m, const Address *a, const char *trigger_cursor, Ban *b);
void manager_forget_logged_bans(Manager *m);

/* manager-state.c */
int manager_load_state(Manager *m);
/* Writes the state file. Unless wait, the fsyncs and the rename happen in a thread and -EBUSY
 * means one is still in flight (its end commits again if anything changed meanwhile). */
int manager_save_state(Manager *m, bool wait);
/* Waits for a save in flight and releases what saving in a thread needs. */
void manager_stop_state_sync(Manager *m);

/* manager-restore.c: puts every element of *adds into the kernel, after a transaction of its
 * own that removes removes and adds first (the queued changes). in_steps: returns after the
 * first transaction of *adds and does the rest between other events, taking *adds. */
int manager_restore(Manager *m, NftElement **adds, size_t n_adds, const NftElement *first, size_t n_first,
                    const NftElement *removes, size_t n_removes, bool in_steps);
void manager_restore_cancel(Manager *m);
/* A restore is under way that began at or after since: it puts back what was lost before. */
bool manager_restore_began_since(const Manager *m, usec_t since);
