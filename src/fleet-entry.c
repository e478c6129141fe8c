/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fleet-entry.h"
#include "journal-events.h"
#include "macro.h"

void fleet_entry_init(FleetEntry *e) {
        *e = (FleetEntry) { .kind = _FLEET_ENTRY_KIND_INVALID };
}

/* The value of data if it is the field name, NUL-terminated in buf; NULL otherwise or if it
 * does not fit. */
static const char *field(const void *data, size_t len, const char *name, char *buf, size_t size) {
        size_t n = strlen(name);

        if (len <= n || memcmp(data, name, n) != 0 || ((const char *) data)[n] != '=')
                return NULL;
        len -= n + 1;
        if (len >= size || memchr((const char *) data + n + 1, 0, len))
                return NULL;
        memcpy(buf, (const char *) data + n + 1, len);
        buf[len] = 0;
        return buf;
}

static bool parse_usec(const char *s, usec_t *ret) {
        char *end;

        if (!s || !(*s >= '0' && *s <= '9'))
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return false;
        *ret = v;
        return true;
}

static bool machine_id_valid(const char *s) {
        return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

void fleet_entry_add_field(FleetEntry *e, const void *data, size_t len) {
        char buf[256]; /* more than any value we read: FLEET_PEER_NAME_MAX, an address, a number */
        const char *v;

        if (len < 2 || len > 2 * sizeof buf)
                return;
        /* Only its presence matters. */
        if (len > strlen(VPOPGUARD_FIELD_FLEET_PEER "=") &&
            memcmp(data, VPOPGUARD_FIELD_FLEET_PEER "=", strlen(VPOPGUARD_FIELD_FLEET_PEER "=")) == 0) {
                e->fleet_applied = true;
                return;
        }
        if ((v = field(data, len, "MESSAGE_ID", buf, sizeof buf)))
                e->kind = streq(v, VPOPGUARD_MESSAGE_BAN) ? FLEET_ENTRY_BAN :
                          streq(v, VPOPGUARD_MESSAGE_UNBAN) ? FLEET_ENTRY_UNBAN : _FLEET_ENTRY_KIND_INVALID;
        else if ((v = field(data, len, "VPOPGUARD_PREFIX", buf, sizeof buf)))
                e->has_prefix = address_prefix_parse(v, &e->prefix) >= 0;
        else if ((v = field(data, len, "VPOPGUARD_JAIL", buf, sizeof buf))) {
                e->has_jail = jail_name_is_valid(v);
                strcpy(e->jail, e->has_jail ? v : "");
        } else if ((v = field(data, len, "VPOPGUARD_EXPIRES_USEC", buf, sizeof buf)))
                e->has_expires = parse_usec(v, &e->expires_usec);
        else if ((v = field(data, len, "VPOPGUARD_BAN_USEC", buf, sizeof buf)))
                e->permanent = streq(v, "infinity");
        else if ((v = field(data, len, "VPOPGUARD_UNBAN_REASON", buf, sizeof buf)))
                snprintf(e->unban_reason, sizeof e->unban_reason, "%s", v);
        else if ((v = field(data, len, "_MACHINE_ID", buf, sizeof buf)))
                strcpy(e->machine, machine_id_valid(v) ? v : "");
        else if ((v = field(data, len, VPOPGUARD_FIELD_FLEET_ORIGIN, buf, sizeof buf)))
                strcpy(e->origin_machine, machine_id_valid(v) ? v : "");
        else if ((v = field(data, len, VPOPGUARD_FIELD_FLEET_RELAY, buf, sizeof buf)))
                e->relay = streq(v, "1");
        else if ((v = field(data, len, "VPOPGUARD_DRY_RUN", buf, sizeof buf)))
                e->dry_run = true;
        else if ((v = field(data, len, "_UID", buf, sizeof buf)))
                e->uid_root = streq(v, "0");
        else if ((v = field(data, len, "_SYSTEMD_UNIT", buf, sizeof buf)))
                e->trusted_unit = streq(v, FLEET_TRUSTED_UNIT);
        else if ((v = field(data, len, "_TRANSPORT", buf, sizeof buf)))
                e->native_transport = streq(v, "journal");
}

FleetVerdict fleet_entry_judge(const FleetEntry *e, const char *own_machine) {
        /* Root, or the service itself (a dynamic user), through the native protocol: a local user
         * can log any fields but these, which the peer's journald sets. */
        if (!e->native_transport || !(e->uid_root || e->trusted_unit))
                return FLEET_VERDICT_UNTRUSTED;
        if (e->kind < 0 || !e->has_prefix || !e->has_jail || !e->machine[0])
                return FLEET_VERDICT_MALFORMED;
        if (e->dry_run)
                return FLEET_VERDICT_IGNORE;
        /* Only decisions travel: the peer's own, or those a relay passes on. What a peer merely
         * applied for others is their echo, and applying it could bring a lifted ban back. */
        if (e->fleet_applied && !e->relay)
                return FLEET_VERDICT_IGNORE;
        if (e->fleet_applied && !e->origin_machine[0])
                return FLEET_VERDICT_MALFORMED;
        const char *origin = e->fleet_applied ? e->origin_machine : e->machine;
        if (own_machine && streq(origin, own_machine))
                return FLEET_VERDICT_IGNORE;
        if (e->kind == FLEET_ENTRY_BAN)
                return e->has_expires || e->permanent ? FLEET_VERDICT_APPLY : FLEET_VERDICT_MALFORMED;
        /* Expiries happen everywhere on their own; bans lifted because the address is ignored or
         * local on the peer say nothing about us. Only an admin's unban is the fleet's. */
        return streq(e->unban_reason, "manual") ? FLEET_VERDICT_APPLY : FLEET_VERDICT_IGNORE;
}

usec_t fleet_entry_local_expiry(const FleetEntry *e, usec_t now) {
        if (e->permanent || e->expires_usec == USEC_INFINITY)
                return USEC_INFINITY;
        if (e->expires_usec <= e->realtime_usec)
                return 0;
        usec_t left = e->expires_usec - e->realtime_usec;
        usec_t since = now > e->realtime_usec ? now - e->realtime_usec : 0;
        return since >= left ? 0 : usec_add(now, left - since);
}
