/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "ban-table.h"
#include "jail.h"
#include "varlink.h"

#define MANAGER_VARLINK_INTERFACE "io.vpopguard.Manager"
#define MANAGER_VARLINK_SOCKET "/run/vpopguard/io.vpopguard.Manager"

extern const char manager_varlink_idl[];

/* Judges one MESSAGE with the journal fields of its entry (an object of strings; NULL: no field
 * checks) as the jails would, without counting it, and builds the reply of TestMessage(). The
 * daemon runs it on its jails, vpopguardctl test on jails made from the configuration files.
 * -EINVAL if a field is not a string, -ENOMEM. */
int manager_test_message(Jail **jails, size_t n_jails, const char *message, json_t *fields, json_t **ret);
/* The same with one jail alone (TestMessage(jail:), vpopguardctl test --jail=): a field the jail
 * matches on that fields lacks is taken to hold the jail's first JournalMatch= value for it, so
 * that an sshd line needs no SYSLOG_IDENTIFIER to be tried in the sshd jail. */
int manager_test_message_in_jail(Jail *jail, const char *message, json_t *fields, json_t **ret);

/* Writes b as a BanEntry object (JSON text). */
void manager_ban_write(FILE *f, const Ban *b);

typedef struct Manager Manager;
/* ListBans() with "more": the active bans (of jail, if not NULL) as a stream of replies, a
 * chunk per event loop iteration (manager-list-bans.c). Takes over the call; negative errno
 * if it could not start. */
int manager_list_bans_stream(Manager *m, VarlinkCall *call, const char *jail);
