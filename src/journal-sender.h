/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>

#include "time-util.h"

/* Structured journal entries sent to journald's native socket without blocking the event loop.
 *
 * journald reads its socket at its own pace (here ~25 000 of our entries/s, one core) and the
 * socket holds a few hundred datagrams at most (net.unix.max_dgram_qlen), so sd_journal_sendv()
 * would make every ban of a burst wait for journald. Entries that do not fit are kept in order
 * in our queue and sent as the socket drains, while the daemon goes on reading and banning.
 *
 * What is queued is lost if the process dies: callers that must not lose an entry (the ban
 * events, before the state file records their batch) call journal_sender_flush() first. */

#define JOURNAL_SENDER_QUEUE_MAX (128U * 1024U * 1024U) /* bytes (~150 000 ban events); beyond, sending blocks */

typedef struct JournalSender JournalSender;

/* The queue became empty. */
typedef void (*JournalSenderDrained)(JournalSender *s, void *userdata);

/* socket_path NULL: journald's, /run/systemd/journal/socket. Never fails for a missing journald:
 * it connects again at the next entry. */
int journal_sender_new(sd_event *event, const char *socket_path, JournalSender **ret);
JournalSender *journal_sender_free(JournalSender *s);

void journal_sender_set_drained_callback(JournalSender *s, JournalSenderDrained callback, void *userdata);

/* One entry of "NAME=value" fields. Returns 0 when sent or queued, negative errno when it had to
 * be dropped (no journald, or it refused the entry). */
int journal_sender_send(JournalSender *s, const struct iovec *fields, size_t n_fields);

/* Waits until every queued entry is in journald's socket. -ETIMEDOUT after timeout; entries
 * journald refuses are dropped (and counted), not retried. */
int journal_sender_flush(JournalSender *s, usec_t timeout);

/* Sends what the socket takes now, without waiting: for loops that keep the event loop waiting,
 * so that journald is not left idle meanwhile. Never calls the drained callback: the caller is
 * in the middle of its work (the manager commits, and so saves, after its batch anyway). */
void journal_sender_pump(JournalSender *s);

size_t journal_sender_queued(const JournalSender *s);
uint64_t journal_sender_dropped(const JournalSender *s);
