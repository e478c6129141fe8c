/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "ban-change.h"

static const char * const kind_table[_BAN_CHANGE_KIND_MAX] = {
        [BAN_CHANGE_BAN] = "ban",
        [BAN_CHANGE_UNBAN] = "unban",
        [BAN_CHANGE_EXPIRE] = "expire",
};

static const char * const reason_table[_UNBAN_REASON_MAX] = {
        [UNBAN_MANUAL] = "manual",
        [UNBAN_IGNORED] = "ignored",
        [UNBAN_LOCAL] = "local",
        [UNBAN_PREFIX] = "prefix",
};

const char *ban_change_kind_to_string(BanChangeKind k) {
        return k >= 0 && k < _BAN_CHANGE_KIND_MAX ? kind_table[k] : NULL;
}

const char *unban_reason_to_string(UnbanReason r) {
        return r >= 0 && r < _UNBAN_REASON_MAX ? reason_table[r] : NULL;
}

void ban_change_done(BanChange *c) {
        free(c->causes);
        c->causes = NULL;
        c->n_causes = 0;
}
