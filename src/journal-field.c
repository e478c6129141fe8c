/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <systemd/sd-journal.h>

#include "journal-field.h"

int journal_field_get(const char *field, const char **ret_value, size_t *ret_len, void *userdata) {
        size_t flen = strlen(field), len;
        const void *data;
        int r;

        r = sd_journal_get_data(userdata, field, &data, &len);
        if (r < 0)
                return r;
        if (len < flen + 1)
                return -EBADMSG;
        *ret_value = (const char *) data + flen + 1;
        *ret_len = len - flen - 1;
        return 0;
}
