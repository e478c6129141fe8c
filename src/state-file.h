/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "address.h"
#include "ban-table.h"
#include "journal-position.h"

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
#define STATE_FILE_VERSION 1

typedef struct StateWriter StateWriter;

/* Starts a new state file in dir (a temporary file next to the final one). */
int state_writer_open(const char *dir, StateWriter **ret);
int state_writer_cursor(StateWriter *w, const char *cursor);
int state_writer_ban(StateWriter *w, const Ban *b);
int state_writer_failures(StateWriter *w, const char *jail, const Address *a, const JournalPosition *failures, size_t n);
/* Makes the new file the state (fsync, rename, fsync dir). Errors: -ENOSPC, -EROFS, -EIO, ... */
int state_writer_commit(StateWriter *w);
/* Discards an uncommitted file. Accepts NULL, returns NULL. */
StateWriter *state_writer_free(StateWriter *w);

typedef struct StateCallbacks {
        int (*cursor)(const char *cursor, void *userdata);
        int (*ban)(const Ban *b, void *userdata);
        int (*failures)(const char *jail, const Address *a, const JournalPosition *failures, size_t n, void *userdata);
} StateCallbacks;

/* Reads dir/STATE_FILE_NAME. The whole file is verified (version, every line, trailer) before
 * any callback runs, so a damaged file changes nothing. Returns 0; -ENOENT if there is no
 * state file; -EBADMSG if it is damaged or truncated, -EPROTONOSUPPORT if it is from a newer
 * version (with *ret_error, allocated, e.g. "line 17: invalid address \"1.2.3\""); a
 * callback's negative return is passed through. */
int state_load(const char *dir, const StateCallbacks *cb, void *userdata, char **ret_error);
