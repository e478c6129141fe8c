/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shipped jail against the table of real and hostile vpopmail lines: loads
 * conf.d/10-vpopmail.conf with config_load(), compiles its patterns, and checks every line of
 * tests/vpopmail-lines.txt, with JIT and with the interpreter. Usage: test-vpopmail-jail [SRCDIR] */

#include <stdio.h>

#include "config.h"
#include "failregex.h"
#include "log.h"
#include "macro.h"
#include "tests.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

#define MIN_CASES 80

typedef struct Patterns {
        Regex **fail, **ignore;
        size_t n_fail, n_ignore;
        unsigned *fail_hits; /* per FailRegex=, how many table lines it decided */
} Patterns;

static void patterns_done(Patterns *p) {
        for (size_t i = 0; i < p->n_fail; i++)
                regex_free(p->fail[i]);
        for (size_t i = 0; i < p->n_ignore; i++)
                regex_free(p->ignore[i]);
        free(p->fail);
        free(p->ignore);
        free(p->fail_hits);
}

static Regex **compile_all(char **patterns, RegexKind kind, RegexFlags flags, size_t *ret_n) {
        size_t n = strv_length(patterns);
        Regex **r = calloc(n + 1, sizeof *r);

        ASSERT_TRUE(r);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *error = NULL;
                int k = regex_new_full(patterns[i], kind, HOST_FORMAT_VPOPMAIL, flags, &r[i], &error);
                if (k < 0)
                        fprintf(stderr, "%s \"%s\": %s\n", kind == REGEX_FAIL ? "FailRegex=" : "IgnoreRegex=",
                                patterns[i], error ?: strerror(-k));
                ASSERT_EQ(k, 0);
        }
        *ret_n = n;
        return r;
}

/* The same order as jail_match_message(): IgnoreRegex= first, then the first FailRegex= that
 * matches; an effort limit anywhere ends the search. Returns "none", "limit" or the address. */
static const char *verdict(Patterns *p, const char *msg, size_t len, char buf[static ADDRESS_STRING_MAX]) {
        for (size_t i = 0; i < p->n_ignore; i++) {
                int k = regex_match(p->ignore[i], msg, len, NULL);
                if (k == -E2BIG)
                        return "limit";
                ASSERT_OK(k);
                if (k > 0)
                        return "none";
        }
        for (size_t i = 0; i < p->n_fail; i++) {
                Address a;
                int k = regex_match(p->fail[i], msg, len, &a);
                if (k == -E2BIG)
                        return "limit";
                ASSERT_OK(k);
                if (k > 0) {
                        p->fail_hits[i]++;
                        return address_to_string(&a, buf);
                }
        }
        return "none";
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes one byte at *s (an escape or a plain byte) and advances *s; -EINVAL on a bad escape. */
static int decode_byte(const char **s) {
        const char *p = *s;
        int hi, lo;

        if (*p != '\\') {
                *s = p + 1;
                return (unsigned char) *p;
        }
        switch (p[1]) {
        case '\\': *s = p + 2; return '\\';
        case 't': *s = p + 2; return '\t';
        case 'n': *s = p + 2; return '\n';
        case 'r': *s = p + 2; return '\r';
        case '0': *s = p + 2; return 0;
        case 'x':
                hi = unhex(p[2]);
                lo = hi >= 0 ? unhex(p[3]) : -1;
                if (lo < 0)
                        return -EINVAL;
                *s = p + 4;
                return hi * 16 + lo;
        default:
                return -EINVAL;
        }
}

/* The table's escapes (see the header of vpopmail-lines.txt): \\ \t \n \r \0 \xNN, and \{N}
 * followed by one byte or escape, meaning that byte N times. */
static int decode_message(const char *s, char **ret, size_t *ret_len) {
        size_t cap = strlen(s) + 1, n = 0;
        _cleanup_free_ char *out = malloc(cap);

        if (!out)
                return -ENOMEM;
        while (*s) {
                unsigned long count = 1;
                int c;

                if (s[0] == '\\' && s[1] == '{') {
                        char *end;

                        errno = 0;
                        count = strtoul(s + 2, &end, 10);
                        if (errno != 0 || end == s + 2 || *end != '}' || count == 0 || count > 1024 * 1024)
                                return -EINVAL;
                        s = end + 1;
                        if (!*s)
                                return -EINVAL;
                }
                c = decode_byte(&s);
                if (c < 0)
                        return c;
                if (n + count + 1 > cap) {
                        cap = (n + count + 1) * 2;
                        char *grown = realloc(out, cap);
                        if (!grown)
                                return -ENOMEM;
                        out = grown;
                }
                memset(out + n, c, count);
                n += count;
        }
        out[n] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* Runs the table; returns the number of failing cases and sets *ret_cases. */
static unsigned run_table(const char *path, Patterns *p, const char *mode, unsigned *ret_cases) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        unsigned lineno = 0, cases = 0, failed = 0;
        size_t size = 0;
        ssize_t l;

        if (!f)
                fprintf(stderr, "%s: %m\n", path);
        ASSERT_TRUE(f);

        while ((l = getline(&line, &size, f)) >= 0) {
                _cleanup_free_ char *msg = NULL;
                char buf[ADDRESS_STRING_MAX], esc[LOG_ESCAPE_MAX];
                const char *got;
                size_t len;
                char *tab;

                lineno++;
                if (l > 0 && line[l - 1] == '\n')
                        line[--l] = 0;
                if (l == 0 || line[0] == '#')
                        continue;

                tab = strchr(line, '\t');
                if (!tab || decode_message(tab + 1, &msg, &len) < 0) {
                        fprintf(stderr, "%s:%u: malformed table line\n", path, lineno);
                        failed++;
                        continue;
                }
                *tab = 0;

                /* Expected addresses must be canonical, so a typo cannot pass by accident. */
                if (!streq(line, "none") && !streq(line, "limit")) {
                        Address a;
                        if (address_parse(line, strlen(line), &a) < 0 ||
                            !streq(address_to_string(&a, buf), line)) {
                                fprintf(stderr, "%s:%u: expectation \"%s\" is not a canonical address\n", path,
                                        lineno, line);
                                failed++;
                                continue;
                        }
                }

                cases++;
                got = verdict(p, msg, len, buf);
                if (!streq(got, line)) {
                        fprintf(stderr, "%s:%u: (%s) expected %s, got %s: %s\n", path, lineno, mode, line, got,
                                log_escape(msg, len, esc, sizeof esc));
                        failed++;
                }
        }
        ASSERT_FALSE(ferror(f));
        *ret_cases = cases;
        return failed;
}

static const char *srcdir;

TEST(jail_table) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *conf = NULL, *table = NULL;
        const char *const no_dropins[] = { NULL };
        ConfigErrors errors = {};
        const JailConfig *j;
        int k;

        ASSERT_TRUE(asprintf(&conf, "%s/conf.d/10-vpopmail.conf", srcdir) > 0);
        ASSERT_TRUE(asprintf(&table, "%s/tests/vpopmail-lines.txt", srcdir) > 0);

        /* config_load() accepts a missing main file (defaults apply): say what is wrong. */
        if (access(conf, R_OK) < 0)
                fprintf(stderr, "%s: %m (pass the source directory as the first argument)\n", conf);
        ASSERT_EQ(access(conf, R_OK), 0);

        k = config_load(conf, no_dropins, &c, &errors);
        if (k < 0)
                config_errors_print(&errors, stderr);
        config_errors_done(&errors);
        ASSERT_EQ(k, 0);

        j = config_find_jail(c, "vpopmail");
        ASSERT_TRUE(j);
        ASSERT_TRUE(j->enabled);
        ASSERT_GE(strv_length(j->fail_regex), 1);
        ASSERT_EQ(strv_length(j->journal_matches), 2);
        ASSERT_STREQ(j->journal_matches[0], "SYSLOG_IDENTIFIER=vpopmail");
        ASSERT_STREQ(j->journal_matches[1], "SYSLOG_IDENTIFIER=vchkpw");
        /* Root and the accounts of a standard vpopmail/qmail install, by name, and nobody else:
         * not the web server (33), not an unnamed system UID, not a user. */
        ASSERT_EQ(j->n_trusted_uids, 0);
        ASSERT_EQ(strv_length(j->trusted_users), 3);
        ASSERT_STREQ(j->trusted_users[0], "root");
        ASSERT_STREQ(j->trusted_users[1], "vpopmail");
        ASSERT_STREQ(j->trusted_users[2], "qmaild");
        ASSERT_TRUE(jail_config_trusts_uid(j, 0));
        ASSERT_FALSE(jail_config_trusts_uid(j, 33));
        ASSERT_FALSE(jail_config_trusts_uid(j, 777));
        ASSERT_FALSE(jail_config_trusts_uid(j, 1000));

        static const struct {
                RegexFlags flags;
                const char *name;
        } modes[] = { { 0, "jit" }, { REGEX_NO_JIT, "interpreter" } };

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                Patterns p = {};
                unsigned cases, failed;

                p.fail = compile_all(j->fail_regex, REGEX_FAIL, modes[m].flags, &p.n_fail);
                p.ignore = compile_all(j->ignore_regex, REGEX_IGNORE, modes[m].flags, &p.n_ignore);
                p.fail_hits = calloc(p.n_fail + 1, sizeof *p.fail_hits);
                ASSERT_TRUE(p.fail_hits);

                failed = run_table(table, &p, modes[m].name, &cases);
                fprintf(stderr, "   %s: %u cases, %u failed\n", modes[m].name, cases, failed);

                /* Every FailRegex= must earn its place with at least one line of the table. */
                for (size_t i = 0; i < p.n_fail; i++)
                        if (p.fail_hits[i] == 0) {
                                fprintf(stderr, "FailRegex= no. %zu decides no table line: %s\n", i + 1,
                                        j->fail_regex[i]);
                                failed++;
                        }

                patterns_done(&p);
                ASSERT_GE(cases, MIN_CASES);
                ASSERT_EQ(failed, 0);
        }
}

int main(int argc, char *argv[]) {
        srcdir = argc > 1 ? argv[1] : SRCDIR;
        RUN(jail_table);
        return 0;
}
