/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "time-util.h"

/* Arms the one-shot timer *s for usec (absolute on clock, or from now if relative), creating it
 * on first use: every timer of the daemon is armed this way, so none can be left disabled by a
 * forgotten set_enabled(). An accuracy of 0 is sd-event's default of 250 ms, not "exact": a timer
 * meant to fire at once passes 1. */
int event_reset_time(sd_event *e, sd_event_source **s, clockid_t clock, usec_t usec, usec_t accuracy, bool relative,
                     sd_event_time_handler_t callback, void *userdata);

/* Whether the one-shot timer s exists and is armed. */
bool event_source_is_armed(sd_event_source *s);
