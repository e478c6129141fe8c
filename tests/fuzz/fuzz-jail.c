/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One MESSAGE (the raw input, NULs and newlines included) through the shipped vpopmail jail,
 * conf.d/10-vpopmail.conf, as the daemon runs it. Properties: a failure's address is a real,
 * non-loopback address that is the last field of the line (after a ':'), as every shipped
 * pattern says; and PCRE2's interpreter agrees with its JIT whenever neither hits a limit. */

#include <arpa/inet.h>

#include "config.h"
#include "failregex.h"
#include "fuzz.h"
#include "jail.h"

static Config *config;
static Jail *jail;
static Regex **interpreted; /* the same FailRegex= without JIT */
static size_t n_interpreted;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static const char * const no_dropins[] = { NULL };
        _cleanup_free_ char *path = NULL;
        ConfigErrors errors = {};
        const JailConfig *jc;

        ASSERT_TRUE(asprintf(&path, "%s/conf.d/10-vpopmail.conf", fuzz_source_dir()) >= 0);
        /* config_load() treats a missing main file as empty: insist on it. */
        if (access(path, R_OK) < 0) {
                fprintf(stderr, "%s: %m (set VPOPGUARD_SOURCE_DIR)\n", path);
                abort();
        }
        if (config_load(path, no_dropins, &config, &errors) < 0) {
                config_errors_print(&errors, stderr);
                abort();
        }
        jc = config_find_jail(config, "vpopmail");
        ASSERT_TRUE(jc);
        ASSERT_EQ(jail_new(jc, &jail), 0);

        n_interpreted = strv_length(jc->fail_regex);
        interpreted = calloc(n_interpreted, sizeof(Regex *));
        ASSERT_TRUE(interpreted);
        for (size_t i = 0; i < n_interpreted; i++)
                ASSERT_EQ(regex_new_full(jc->fail_regex[i], REGEX_FAIL, jc->host_format, REGEX_NO_JIT, &interpreted[i], NULL), 0);
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
static int match_interpreted(const char *msg, size_t len, Address *ret) {
        for (size_t i = 0; i < n_interpreted; i++) {
                int r = regex_match(interpreted[i], msg, len, ret);
                if (r != 0)
                        return r;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *msg = (const char *) data;
        char text[ADDRESS_STRING_MAX];
        JailVerdict v;
        Address a = {}, b = {};
        int r;

        if (!jail)
                LLVMFuzzerInitialize(NULL, NULL);

        v = jail_match_message(jail, msg, size, &a);
        ASSERT_TRUE(jail_verdict_to_string(v));
        /* The shipped jail has no IgnoreRegex=, and sender checks are not made here. */
        ASSERT_TRUE(v == JAIL_VERDICT_NO_MATCH || v == JAIL_VERDICT_IGNORED_ADDRESS ||
                    v == JAIL_VERDICT_FAILURE || v == JAIL_VERDICT_LIMIT);
        if (size > REGEX_MESSAGE_MAX)
                ASSERT_EQ(v, JAIL_VERDICT_LIMIT);

        if (v == JAIL_VERDICT_FAILURE) {
                ASSERT_TRUE(a.family == AF_INET || a.family == AF_INET6);
                ASSERT_FALSE(address_is_loopback(&a));
                if (!address_is_last_field(msg, size, &a)) {
                        fprintf(stderr, "Address %s is not the last field\n", address_to_string(&a, text));
                        abort();
                }
        }

        if (v == JAIL_VERDICT_LIMIT)
                return 0;
        r = match_interpreted(msg, size, &b);
        if (r == -E2BIG)
                return 0;
        ASSERT_OK(r);
        if (r == 0) {
                ASSERT_EQ(v, JAIL_VERDICT_NO_MATCH);
                return 0;
        }
        if (v == JAIL_VERDICT_FAILURE) {
                if (!address_equal(&a, &b)) {
                        char other[ADDRESS_STRING_MAX];
                        fprintf(stderr, "JIT found %s, the interpreter %s\n",
                                address_to_string(&a, text), address_to_string(&b, other));
                        abort();
                }
        } else {
                ASSERT_EQ(v, JAIL_VERDICT_IGNORED_ADDRESS);
                ASSERT_TRUE(jail_config_ignores_address(jail->config, &b));
        }
        return 0;
}
