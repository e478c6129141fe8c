/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "macro.h"
#include "time-util.h"

/* vpopguardctl's human output: the replies of io.vpopguard.Manager (manager-varlink-idl.c) as
 * text. now is the CLOCK_REALTIME that times are shown relative to; legend adds table headers
 * and footers. Absolute times are local time. A field the daemon did not send prints as "-" or
 * 0, so an older or newer daemon never makes these fail. Return 0, -ENOMEM or -EIO. */

int ctl_print_status(FILE *f, json_t *reply, usec_t now, bool legend);   /* GetStatus() */
int ctl_print_bans(FILE *f, json_t *reply, usec_t now, bool legend);     /* ListBans() */
/* ListBans() as its replies arrive ("more"), each printed at once, so that a million bans
 * start to show at once and are never all in memory: one table, the header before the first
 * ban, the footer (or "No active bans.") at the end. Columns are as wide as the first reply
 * needs and widen only if a later one needs more (see table_flush()). */
typedef struct CtlBansPrinter CtlBansPrinter;
int ctl_bans_printer_new(FILE *f, usec_t now, bool legend, CtlBansPrinter **ret);
int ctl_bans_printer_add(CtlBansPrinter *p, json_t *reply);
int ctl_bans_printer_end(CtlBansPrinter *p);
CtlBansPrinter *ctl_bans_printer_free(CtlBansPrinter *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(CtlBansPrinter *, ctl_bans_printer_free);

int ctl_print_failures(FILE *f, json_t *reply, usec_t now, bool legend); /* ListFailures() */
int ctl_print_ban(FILE *f, json_t *reply, usec_t now);                   /* Ban() */
int ctl_print_test(FILE *f, json_t *reply);                              /* TestMessage() */
int ctl_print_event(FILE *f, json_t *reply, usec_t now);                 /* a Monitor() reply */

/* At most two units, rounded to the nearest: "12s", "47min", "3h 12min", "2d 5h". */
char *ctl_format_span(char buf[static TIMESPAN_MAX], usec_t span);

/* "in 47min", "2min ago", "now"; "-" for 0 (a time the daemon did not send). Returns buf or a
 * constant string. */
#define CTL_RELATIVE_MAX (TIMESPAN_MAX + 8)
const char *ctl_format_relative(char buf[static CTL_RELATIVE_MAX], usec_t t, usec_t now);
