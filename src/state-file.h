/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h> /* for ban-table.h */

#include "address.h"
#include "ban-history.h"
#include "ban-table.h"
#include "journal-position.h"
#include "macro.h"

/* The daemon's whole durable state in one file, STATE_FILE_NAME in the state directory: the
 * journal cursor of the last processed entry, the open failure windows and the active bans.
 *
 * Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the
 * directory), so after a crash the file is either the old or the new state, never a mix. The
 * file ends with a trailer holding the record count and a checksum, so truncation or damage by
 * anything else is detected rather than silently read as less state.
 *
 * Nothing here logs: errors come back as negative errno plus, for the loader, a message that
 * names the line. */

#define STATE_FILE_NAME "state"
/* Version 2 added each ban's number and the ban history; version 3 prefixes ("2001:db8::/64")
 * where ban and fail records name an address. Older files still load (version 1: their bans
 * count as first bans, with no history). */
/* Version 4 added the fleet peers' positions ("peer NAME CURSOR") and the origin "fleet". */
#define STATE_FILE_VERSION 4
/* Temporary files are named STATE_FILE_TEMP_PREFIX plus six random characters; stale ones
 * (from a crash) are removed by the next state_writer_open(). */
#define STATE_FILE_TEMP_PREFIX ".#state."

/* Limits, enforced by the writer (-E2BIG for a line, -EFBIG for the file) and the loader. */
#define STATE_FILE_SIZE_MAX (UINT64_C(1) << 30)
#define STATE_LINE_MAX (64U * 1024U)  /* bytes of one line, its newline included */
#define STATE_CURSOR_MAX 4096U        /* the cursor line's text: any non-space printable ASCII */

typedef struct StateWriter StateWriter;

/* Starts a new state file in dir (a temporary file next to the final one), after removing
 * stale temporary files there. dir must exist: -ENOENT otherwise; -EROFS, -EACCES, ... as
 * open(2) reports them. */
int state_writer_open(const char *dir, StateWriter **ret);
/* The same, with the scan of dir for stale temporary files only if remove_stale: a writer
 * that saves again and again need not list the directory every time (manager-state.c). */
int state_writer_open_full(const char *dir, bool remove_stale, StateWriter **ret);
/* At most one cursor (-EEXIST for a second one); -EINVAL if it is empty, longer than
 * STATE_CURSOR_MAX or has bytes outside 0x21..0x7e. */
int state_writer_cursor(StateWriter *w, const char *cursor);
/* The position in a fleet peer's journal files (manager-fleet.c), once per peer: -EINVAL for
 * an invalid name (fleet_peer_name_is_valid()) or cursor (as above). */
int state_writer_peer_cursor(StateWriter *w, const char *peer, const char *cursor);
/* -EINVAL for an invalid jail name, address family or origin. */
int state_writer_ban(StateWriter *w, const Ban *b);
/* One address's ban history. -EINVAL for a count of 0 or an invalid address. */
int state_writer_history(StateWriter *w, const BanRecord *r);
/* One failure window, failures oldest first. n == 0 writes nothing. A position whose cursor
 * cannot be printed (see journal_position_to_cursor()) is saved with its timestamp only. */
int state_writer_failures(StateWriter *w, const char *jail, const Address *a, const JournalPosition *failures, size_t n);
/* The same for failures counted per prefix (a full-length prefix is the address alone). */
int state_writer_failures_prefix(StateWriter *w, const char *jail, const AddressPrefix *prefix,
                                 const JournalPosition *failures, size_t n);
/* Makes the new file the state (fsync, rename, fsync dir). Errors: -ENOSPC, -EROFS, -EIO, ...
 * Buffered data is written as it accumulates, so the add calls above may fail with these too;
 * after a write error every further call returns it. If only the final fsync of the directory
 * fails, the new state is already in place and the error is still returned. */
int state_writer_commit(StateWriter *w);
/* The two halves of state_writer_commit(): finish writes the trailer and the buffered data;
 * sync does the fsyncs and the rename, which can take long on a busy disk and touch nothing
 * but w, so that another thread may run it. */
int state_writer_finish(StateWriter *w);
int state_writer_sync(StateWriter *w);
/* Discards an uncommitted file. Accepts NULL, returns NULL. */
StateWriter *state_writer_free(StateWriter *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateWriter *, state_writer_free);

typedef struct StateCallbacks {
        int (*cursor)(const char *cursor, void *userdata);
        int (*ban)(const Ban *b, void *userdata);
        int (*failures)(const char *jail, const AddressPrefix *p, const JournalPosition *failures, size_t n, void *userdata);
        int (*history)(const BanRecord *r, void *userdata);
        int (*peer_cursor)(const char *peer, const char *cursor, void *userdata);
} StateCallbacks;

/* Reads dir/STATE_FILE_NAME. The whole file is verified (version, every line, trailer) before
 * any callback runs, so a damaged file changes nothing. Returns 0; -ENOENT if there is no
 * state file; -EBADMSG if it is damaged or truncated, -EPROTONOSUPPORT if it is from a newer
 * version (with *ret_error, allocated, e.g. "line 17: invalid address \"1.2.3\""); a
 * callback's negative return is passed through. *ret_error (may be NULL) is written only
 * together with -EBADMSG or -EPROTONOSUPPORT. Callbacks run in this order: the cursor, then
 * the bans, then the failure windows, then the ban history, then the peers' positions, each in
 * file order; any of them may be NULL. The
 * pointers they get are valid only during the call. */
int state_load(const char *dir, const StateCallbacks *cb, void *userdata, char **ret_error);
/* The same for the contents of a file in memory (tests and fuzzers). */
int state_load_buffer(const char *data, size_t size, const StateCallbacks *cb, void *userdata, char **ret_error);
