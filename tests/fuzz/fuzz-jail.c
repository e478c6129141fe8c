/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One MESSAGE (the raw input, NULs and newlines included) through every shipped jail (the files
 * of conf.d/) as the daemon runs it, the switched-off ones too: they may be switched on.
 * Properties: PCRE2's interpreter agrees with its JIT whenever neither hits a limit; a failure's
 * address is a real, non-loopback address; for the vpopmail jail it is the last field of the
 * line (after a ':'), as every vpopmail pattern says. */

#include <arpa/inet.h>

#include "config.h"
#include "failregex.h"
#include "fuzz.h"
#include "jail.h"

typedef struct FuzzJail {
        Jail *jail;
        Regex **interpreted; /* the same FailRegex= without JIT */
        size_t n_interpreted;
} FuzzJail;

static Config *config;
static FuzzJail *jails;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        _cleanup_free_ char *dir = NULL;
        ConfigErrors errors = {};

        ASSERT_TRUE(asprintf(&dir, "%s/conf.d", fuzz_source_dir()) >= 0);
        /* config_load() treats a missing directory as empty: insist on the vpopmail jail. */
        const char *const dirs[] = { dir, NULL };
        if (config_load("/nonexistent/vpopguard.conf", dirs, &config, &errors) < 0) {
                config_errors_print(&errors, stderr);
                abort();
        }
        if (!config_find_jail(config, "vpopmail")) {
                fprintf(stderr, "%s: no vpopmail jail (set VPOPGUARD_SOURCE_DIR)\n", dir);
                abort();
        }

        jails = calloc(config->n_jails, sizeof(FuzzJail));
        ASSERT_TRUE(jails);
        for (size_t i = 0; i < config->n_jails; i++) {
                const JailConfig *jc = &config->jails[i];
                FuzzJail *fj = &jails[i];

                ASSERT_EQ(jail_new(jc, &fj->jail), 0);
                fj->n_interpreted = strv_length(jc->fail_regex);
                fj->interpreted = calloc(fj->n_interpreted + 1, sizeof(Regex *));
                ASSERT_TRUE(fj->interpreted);
                for (size_t k = 0; k < fj->n_interpreted; k++)
                        ASSERT_EQ(regex_new_full(jc->fail_regex[k], REGEX_FAIL, jc->host_format, REGEX_NO_JIT,
                                                 &fj->interpreted[k], NULL), 0);
        }
        return 0;
}

/* The address text ends the message and follows a ':'. */
static bool address_is_last_field(const char *msg, size_t len, const Address *a) {
        for (size_t k = 1; k <= ADDRESS_STRING_MAX && k < len; k++) {
                Address b;

                if (msg[len - k - 1] == ':' && address_parse(msg + len - k, k, &b) == 0 && address_equal(a, &b))
                        return true;
        }
        return false;
}

/* The first FailRegex= that matches, run by the interpreter: 1 with the address, 0, or -E2BIG. */
static int match_interpreted(const FuzzJail *fj, const char *msg, size_t len, Address *ret) {
        for (size_t i = 0; i < fj->n_interpreted; i++) {
                int r = regex_match(fj->interpreted[i], msg, len, ret);
                if (r != 0)
                        return r;
        }
        return 0;
}

static void check_jail(const FuzzJail *fj, const char *msg, size_t size) {
        const JailConfig *jc = fj->jail->config;
        char text[ADDRESS_STRING_MAX];
        JailVerdict v;
        Address a = {}, b = {};
        int r;

        v = jail_match_message(fj->jail, msg, size, &a);
        ASSERT_TRUE(jail_verdict_to_string(v));
        /* The shipped jails have no IgnoreRegex=, and sender checks are not made here. */
        ASSERT_TRUE(v == JAIL_VERDICT_NO_MATCH || v == JAIL_VERDICT_IGNORED_ADDRESS ||
                    v == JAIL_VERDICT_FAILURE || v == JAIL_VERDICT_LIMIT);
        if (size > REGEX_MESSAGE_MAX)
                ASSERT_EQ(v, JAIL_VERDICT_LIMIT);

        if (v == JAIL_VERDICT_FAILURE) {
                ASSERT_TRUE(a.family == AF_INET || a.family == AF_INET6);
                ASSERT_FALSE(address_is_loopback(&a));
                if (jc->host_format == HOST_FORMAT_VPOPMAIL && !address_is_last_field(msg, size, &a)) {
                        fprintf(stderr, "%s: address %s is not the last field\n", jc->name,
                                address_to_string(&a, text));
                        abort();
                }
        }

        if (v == JAIL_VERDICT_LIMIT)
                return;
        r = match_interpreted(fj, msg, size, &b);
        if (r == -E2BIG)
                return;
        ASSERT_OK(r);
        if (r == 0) {
                ASSERT_EQ(v, JAIL_VERDICT_NO_MATCH);
                return;
        }
        if (v == JAIL_VERDICT_FAILURE) {
                if (!address_equal(&a, &b)) {
                        char other[ADDRESS_STRING_MAX];
                        fprintf(stderr, "%s: JIT found %s, the interpreter %s\n", jc->name,
                                address_to_string(&a, text), address_to_string(&b, other));
                        abort();
                }
        } else {
                ASSERT_EQ(v, JAIL_VERDICT_IGNORED_ADDRESS);
                ASSERT_TRUE(jail_config_ignores_address(jc, &b));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!jails)
                LLVMFuzzerInitialize(NULL, NULL);

        for (size_t i = 0; i < config->n_jails; i++)
                check_jail(&jails[i], (const char *) data, size);
        return 0;
}
