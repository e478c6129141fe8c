/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internal to the configuration loader: config-load.c (files, lines, sections, merging [Jail]
 * sections by Name=), config-assign.c (checking each value) and config.c (defaults, checks of
 * the whole), and to their unit test. Other modules see only config.h. */

#include "config.h"
#include "macro.h"

enum {
        JAIL_SET_ENABLED     = 1U << 0,
        JAIL_SET_MAX_RETRY   = 1U << 1,
        JAIL_SET_FIND_TIME   = 1U << 2,
        JAIL_SET_BAN_TIME    = 1U << 3,
        JAIL_SET_MAX_TRACKED = 1U << 4,
        JAIL_SET_BAN_FACTOR  = 1U << 5,
        JAIL_SET_BAN_MAX     = 1U << 6,
        JAIL_SET_BAN_HISTORY = 1U << 7,
        JAIL_SET_HOST_FORMAT = 1U << 8,
        JAIL_SET_IPV4_PREFIX = 1U << 9,
        JAIL_SET_IPV6_PREFIX = 1U << 10,
};

typedef struct ConfigBuilder {
        Config *config;        /* [Firewall] (defaults until assigned), files read, jails */
        unsigned *jail_set;    /* per jail: JAIL_SET_* of the scalars it assigned itself */
        JailConfig defaults;   /* [Defaults]: built-in defaults until assigned */
        const char *set_file;  /* where IPv4Set=/IPv6Set= was last assigned, for messages */
        unsigned set_line;
        ConfigErrors *errors;
        size_t n_errors_start, n_dropped_start;
} ConfigBuilder;

/* One Key=Value as read, with where it was, for error messages. */
typedef struct ConfigAssignment {
        ConfigBuilder *builder;
        const char *file;
        unsigned line;
        const char *section;
        const char *key;
        const char *value;
} ConfigAssignment;

/* Check and apply one assignment: problems are reported, the return value is 0 or -ENOMEM.
 * For [Defaults] pass &builder->defaults and set NULL; for a jail its JAIL_SET_* mask. */
int config_assign_firewall(const ConfigAssignment *a);
int config_assign_fleet(const ConfigAssignment *a);
int config_assign_jail(const ConfigAssignment *a, JailConfig *j, unsigned *set);

int config_builder_init(ConfigBuilder *b, ConfigErrors *errors);
void config_builder_done(ConfigBuilder *b);
/* Applies [Defaults] to the jails and checks the whole; *ret is set only without errors. */
int config_builder_finish(ConfigBuilder *b, Config **ret);
void jail_config_done(JailConfig *j);

/* Adds an error; every string may be NULL and is escaped. -ENOMEM on failure. Beyond
 * CONFIG_ERRORS_MAX the error is only counted in n_dropped. */
int config_errors_add(ConfigErrors *e, const char *file, unsigned line, const char *section,
                      const char *key, const char *value, const char *format, ...) _printf_(7, 8);
