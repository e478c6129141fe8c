/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "event-util.h"

int event_reset_time(sd_event *e, sd_event_source **s, clockid_t clock, usec_t usec, usec_t accuracy, bool relative,
                     sd_event_time_handler_t callback, void *userdata) {
        int r;

        if (!*s) {
                if (relative)
                        return sd_event_add_time_relative(e, s, clock, usec, accuracy, callback, userdata);
                return sd_event_add_time(e, s, clock, usec, accuracy, callback, userdata);
        }
        r = relative ? sd_event_source_set_time_relative(*s, usec) : sd_event_source_set_time(*s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

bool event_source_is_armed(sd_event_source *s) {
        int enabled = SD_EVENT_OFF;
        return s && sd_event_source_get_enabled(s, &enabled) >= 0 && enabled != SD_EVENT_OFF;
}
