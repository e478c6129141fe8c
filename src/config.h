/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "address.h"
#include "ban-table.h"
#include "failregex.h"
#include "time-util.h"

/* The effective configuration: the main file plus drop-ins, merged, defaults applied and
 * validated. Produced by config_load() (config-load.c); read-only afterwards. */

#define CONFIG_MAIN_FILE "/etc/vpopguard/vpopguard.conf"
/* Drop-in directories, most important first: a file in an earlier directory masks the file
 * with the same name in a later one. */
#define CONFIG_DROPIN_DIRS { "/etc/vpopguard/vpopguard.conf.d", "/run/vpopguard/vpopguard.conf.d", "/usr/lib/vpopguard/vpopguard.conf.d" }

#define DEFAULT_MAX_RETRY 3U
#define DEFAULT_FIND_TIME (10 * USEC_PER_MINUTE)
#define DEFAULT_BAN_TIME USEC_PER_HOUR
/* Repeat offenders (see vpopguard.conf(5) for why these): 1h, 4h, 16h, 2d 16h, then a week. */
#define DEFAULT_BAN_TIME_FACTOR 4.0
#define DEFAULT_BAN_TIME_MAX (7 * USEC_PER_DAY)
#define DEFAULT_BAN_HISTORY (30 * USEC_PER_DAY)
#define BAN_TIME_FACTOR_MAX 100.0
#define DEFAULT_MAX_TRACKED 100000U
/* Failures are counted, and bans made, per prefix of these lengths: one IPv6 customer owns a
 * whole /64 (RFC 6177), while an IPv4 address is one host. */
#define DEFAULT_IPV4_PREFIX 32U
#define DEFAULT_IPV6_PREFIX 64U
/* The widest allowed: a typo must not ban a continent. */
#define IPV4_PREFIX_MIN 16U
#define IPV6_PREFIX_MIN 32U
#define DEFAULT_FAMILY "inet"
#define DEFAULT_TABLE "vpopguard"
#define DEFAULT_SET4 "banned4"
#define DEFAULT_SET6 "banned6"

typedef struct UIDRange {
        uid_t first, last; /* inclusive */
} UIDRange;

typedef struct FirewallConfig {
        char *family;  /* "inet" (default), "ip" or "ip6" */
        char *table;   /* "vpopguard" */
        char *set4;    /* "banned4" */
        char *set6;    /* "banned6" */
        bool create_table; /* yes */
} FirewallConfig;

/* [Fleet]: ban decisions of other hosts, read from the journal files that
 * systemd-journal-remote writes per sender (--split-mode=host: DIR/remote-NAME.journal). */
#define DEFAULT_FLEET_DIRECTORY "/var/log/journal/remote"
typedef struct FleetConfig {
        char *directory; /* Directory=, absolute */
        char **peers;    /* Peer=: the senders whose ban events are applied; none: no fleet */
        bool relay;      /* Relay=: what this host applies from a peer's own decision, its peers apply too */
        bool count;      /* CountFailures=: the failures in the peers' journals count as if logged here */
} FleetConfig;

typedef struct JailConfig {
        char *name;           /* [A-Za-z0-9_.-]{1,64} */
        bool enabled;         /* default yes */
        char **journal_matches; /* "FIELD=VALUE"; same field ORed, different fields ANDed */
        char **fail_regex;    /* at least one for an enabled jail; each has <HOST> once */
        char **ignore_regex;
        HostFormat host_format; /* what <HOST> matches; default HOST_FORMAT_STANDARD */
        unsigned max_retry;   /* 1..100 */
        usec_t find_time;     /* 1s .. 365d */
        usec_t ban_time;      /* 1s .. 365d, or USEC_INFINITY: permanent */
        double ban_time_factor; /* 1 .. BAN_TIME_FACTOR_MAX: each further ban within ban_history lasts this much longer */
        usec_t ban_time_max;  /* 1s .. 365d or USEC_INFINITY: the cap of that growth (never below ban_time) */
        usec_t ban_history;   /* 1s .. 365d: how long an address's past bans count */
        unsigned ipv4_prefix; /* IPv4Prefix=, IPV4_PREFIX_MIN .. 32: failures count and bans fall per prefix */
        unsigned ipv6_prefix; /* IPv6Prefix=, IPV6_PREFIX_MIN .. 128 */
        AddressPrefix *ignore_addresses; /* the jail's own plus [Defaults]'; loopback is always ignored on top */
        size_t n_ignore_addresses;
        UIDRange *trusted_uids; /* TrustedUID=: if this or TrustedUser= is set, entries whose _UID is
                                 * missing or neither here nor a trusted user's never count */
        size_t n_trusted_uids;
        char **trusted_users;   /* TrustedUser=, as written */
        uid_t *trusted_user_uids; /* those that named an account when the configuration was loaded */
        size_t n_trusted_user_uids;
        char **trusted_users_missing; /* those that did not: skipped */
        unsigned max_tracked; /* MaxTrackedAddresses=, cap on addresses with open failure windows */
        char *source_file;    /* where the jail was first defined, for messages */
        unsigned source_line;
} JailConfig;

typedef struct Config {
        FirewallConfig firewall;
        FleetConfig fleet;
        JailConfig *jails; /* in order of first appearance */
        size_t n_jails;
        char **files;      /* the files read, in the order applied */
} Config;

/* One problem found while loading. All are collected, not just the first. */
typedef struct ConfigError {
        char *file;     /* may be NULL for errors not tied to a file */
        unsigned line;  /* 0 if not tied to a line */
        char *section;  /* may be NULL */
        char *key;      /* may be NULL */
        char *value;    /* may be NULL; escaped for printing */
        char *message;  /* e.g. "invalid time span", "unknown key" */
} ConfigError;

typedef struct ConfigErrors {
        ConfigError *errors;
        size_t n_errors;   /* at most CONFIG_ERRORS_MAX, the last one then says that more were left out */
        size_t n_dropped;  /* errors found but not kept */
} ConfigErrors;

/* Loads main_file (may be missing: defaults apply) and the drop-ins "*.conf" of dropin_dirs
 * (NULL-terminated, most important first; same file name: earlier masks later; files applied
 * in file-name order across all directories). Every problem goes to *errors; the return value
 * is 0 only if there were none and *ret is then set; -EINVAL if any error was collected;
 * other negative errno (e.g. -ENOMEM) on failure. */
int config_load(const char *main_file, const char * const *dropin_dirs, Config **ret, ConfigErrors *errors);

/* The drop-in directories for --config=FILE: only "FILE.d"; for NULL (no --config), the three
 * of CONFIG_DROPIN_DIRS. Allocated, NULL-terminated; NULL on OOM. */
char **config_dropin_dirs_for(const char *main_file);

Config *config_free(Config *c);
void config_errors_done(ConfigErrors *e);
/* "FILE:LINE: [Section] Key=Value: message" per error, one per line. */
void config_errors_print(const ConfigErrors *e, FILE *f);
/* The same line for one error, without the newline, e.g. for log_error(). NULL on OOM. */
char *config_error_to_string(const ConfigError *e);

/* Writes the effective configuration as a configuration file that config_load() reads back to
 * the same Config (used by --test-config and golden tests). */
void config_dump(const Config *c, FILE *f);

const JailConfig *config_find_jail(const Config *c, const char *name);
/* Whether TrustedUID= or TrustedUser= restricts who may report failures (then only those count). */
bool jail_config_restricts_senders(const JailConfig *j);
bool jail_config_trusts_uid(const JailConfig *j, uid_t uid);
bool jail_config_ignores_address(const JailConfig *j, const Address *a); /* includes loopback */
/* Whether some address of p is one the jail ignores (IgnoreAddress=, loopback). */
bool jail_config_ignores_some_of(const JailConfig *j, const AddressPrefix *p);
/* IPv4Prefix= or IPv6Prefix=, for a's family. */
unsigned jail_config_prefix_length(const JailConfig *j, int family);

/* Limits on what a configuration may hold, so that a damaged or hostile file costs bounded time
 * and memory (config_load() is fuzzed with whole files). */
#define CONFIG_FILE_MAX (1024U * 1024U)  /* bytes per file */
#define CONFIG_LINE_MAX (64U * 1024U)    /* bytes per line */
#define CONFIG_JAILS_MAX 1024U
#define CONFIG_LIST_MAX 4096U            /* entries per list setting, also after inheritance */
#define CONFIG_ERRORS_MAX 1000U          /* errors kept in a ConfigErrors */

/* Names that go into nft command text: [A-Za-z_][A-Za-z0-9_]{0,63}. */
bool nft_name_is_valid(const char *s);
/* [A-Za-z0-9_.-]{1,64}, also for jail names from elsewhere (e.g. a varlink parameter). */
bool jail_name_is_valid(const char *s);
/* A sender's name as journal-remote puts it into a file name (a host name or an address):
 * [A-Za-z0-9_.:-]{1,FLEET_PEER_NAME_MAX}, not starting with '.'; nothing a glob would expand. */
bool fleet_peer_name_is_valid(const char *s);
/* "FIELD=VALUE" with FIELD of [A-Z0-9_], not starting with a digit, at most 64 characters;
 * VALUE may be empty. */
bool journal_match_is_valid(const char *s);
