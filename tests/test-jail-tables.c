/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shipped jails against their tables of real and hostile lines. Each conf.d/ file is loaded
 * alone with config_load(); the test checks what the jail is (Name=, Enabled=, HostFormat=,
 * identifiers, trusted accounts), compiles its patterns in its HostFormat=, and checks every line
 * of its table in tests/, with JIT and with the interpreter. Every conf.d/ file must be listed
 * here, and all of them together must load, with a drop-in able to switch each jail on.
 * Usage: test-jail-tables [SRCDIR] */

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

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
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* A shipped jail, as its file must define it, and the table of lines it must decide. */
typedef struct ShippedJail {
        const char *file;  /* in conf.d/ */
        const char *name;
        const char *table; /* in tests/ */
        bool enabled;
        HostFormat host_format;
        const char *journal_matches[6]; /* exactly these, in this order */
        const char *trusted_users[4];   /* exactly these; no TrustedUID= */
        unsigned min_cases;             /* the table's size, so that a truncated table fails */
} ShippedJail;

static const ShippedJail shipped[] = {
        { "10-vpopmail.conf", "vpopmail", "vpopmail-lines.txt", true, HOST_FORMAT_VPOPMAIL,
          { "SYSLOG_IDENTIFIER=vpopmail", "SYSLOG_IDENTIFIER=vchkpw" },
          /* Root and the accounts of a standard vpopmail/qmail install, by name. */
          { "root", "vpopmail", "qmaild" }, 200 },
        { "10-sshd.conf", "sshd", "sshd-lines.txt", false, HOST_FORMAT_STANDARD,
          { "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session" }, { "root" }, 90 },
        { "10-dovecot.conf", "dovecot", "dovecot-lines.txt", false, HOST_FORMAT_STANDARD,
          { "SYSLOG_IDENTIFIER=dovecot" }, { "root" }, 80 },
        { "10-postfix-sasl.conf", "postfix-sasl", "postfix-sasl-lines.txt", false, HOST_FORMAT_STANDARD,
          { "SYSLOG_IDENTIFIER=postfix/smtpd", "SYSLOG_IDENTIFIER=postfix/submission/smtpd",
            "SYSLOG_IDENTIFIER=postfix/smtps/smtpd", "SYSLOG_IDENTIFIER=postfix/submissions/smtpd" },
          { "postfix" }, 45 },
        { "10-courier.conf", "courier", "courier-lines.txt", false, HOST_FORMAT_STANDARD,
          { "SYSLOG_IDENTIFIER=imapd", "SYSLOG_IDENTIFIER=imapd-ssl", "SYSLOG_IDENTIFIER=pop3d",
            "SYSLOG_IDENTIFIER=pop3d-ssl" },
          { "root" }, 45 },
};

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

static Regex **compile_all(char **patterns, RegexKind kind, HostFormat format, RegexFlags flags, size_t *ret_n) {
        size_t n = strv_length(patterns);
        Regex **r = calloc(n + 1, sizeof *r);

        ASSERT_TRUE(r);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *error = NULL;
                int k = regex_new_full(patterns[i], kind, format, flags, &r[i], &error);
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

static Config *load_alone(const ShippedJail *sj) {
        const char *const no_dropins[] = { NULL };
        _cleanup_free_ char *conf = NULL;
        ConfigErrors errors = {};
        Config *c = NULL;
        int k;

        ASSERT_TRUE(asprintf(&conf, "%s/conf.d/%s", srcdir, sj->file) > 0);
        /* config_load() accepts a missing main file (defaults apply): say what is wrong. */
        if (access(conf, R_OK) < 0)
                fprintf(stderr, "%s: %m (pass the source directory as the first argument)\n", conf);
        ASSERT_EQ(access(conf, R_OK), 0);

        k = config_load(conf, no_dropins, &c, &errors);
        if (k < 0)
                config_errors_print(&errors, stderr);
        config_errors_done(&errors);
        ASSERT_EQ(k, 0);
        return c;
}

/* The file defines exactly the jail it should, with the identity and trust it should have. */
static void check_identity(const ShippedJail *sj, const Config *c) {
        const JailConfig *j;
        size_t n;

        ASSERT_EQ(c->n_jails, 1);
        j = config_find_jail(c, sj->name);
        if (!j)
                fprintf(stderr, "%s defines no jail %s\n", sj->file, sj->name);
        ASSERT_TRUE(j);
        ASSERT_EQ(j->enabled, sj->enabled);
        ASSERT_EQ(j->host_format, sj->host_format);
        ASSERT_GE(strv_length(j->fail_regex), 1);

        for (n = 0; n < ELEMENTSOF(sj->journal_matches) && sj->journal_matches[n]; n++)
                ASSERT_STREQ(j->journal_matches[MIN(n, strv_length(j->journal_matches))], sj->journal_matches[n]);
        ASSERT_EQ(strv_length(j->journal_matches), n);

        /* Trusted by name only, and never a web server (33), an unnamed system UID or a user. */
        ASSERT_EQ(j->n_trusted_uids, 0);
        for (n = 0; n < ELEMENTSOF(sj->trusted_users) && sj->trusted_users[n]; n++)
                ASSERT_STREQ(j->trusted_users[MIN(n, strv_length(j->trusted_users))], sj->trusted_users[n]);
        ASSERT_EQ(strv_length(j->trusted_users), n);
        ASSERT_TRUE(jail_config_restricts_senders(j));
        ASSERT_EQ(jail_config_trusts_uid(j, 0), streq(sj->trusted_users[0], "root"));
        ASSERT_FALSE(jail_config_trusts_uid(j, 33));
        ASSERT_FALSE(jail_config_trusts_uid(j, 777));
        ASSERT_FALSE(jail_config_trusts_uid(j, 1000));
}

/* Every line of the jail's table, in both matching modes; every FailRegex= must decide one. */
static void check_table(const ShippedJail *sj, const JailConfig *j) {
        _cleanup_free_ char *table = NULL;
        static const struct {
                RegexFlags flags;
                const char *name;
        } modes[] = { { 0, "jit" }, { REGEX_NO_JIT, "interpreter" } };

        ASSERT_TRUE(asprintf(&table, "%s/tests/%s", srcdir, sj->table) > 0);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                Patterns p = {};
                unsigned cases, failed;

                p.fail = compile_all(j->fail_regex, REGEX_FAIL, j->host_format, modes[m].flags, &p.n_fail);
                p.ignore = compile_all(j->ignore_regex, REGEX_IGNORE, j->host_format, modes[m].flags, &p.n_ignore);
                p.fail_hits = calloc(p.n_fail + 1, sizeof *p.fail_hits);
                ASSERT_TRUE(p.fail_hits);

                failed = run_table(table, &p, modes[m].name, &cases);
                fprintf(stderr, "   %s, %s: %u cases, %u failed\n", sj->name, modes[m].name, cases, failed);

                for (size_t i = 0; i < p.n_fail; i++)
                        if (p.fail_hits[i] == 0) {
                                fprintf(stderr, "%s: FailRegex= no. %zu decides no table line: %s\n", sj->file,
                                        i + 1, j->fail_regex[i]);
                                failed++;
                        }

                patterns_done(&p);
                ASSERT_GE(cases, sj->min_cases);
                ASSERT_EQ(failed, 0);
        }
}

TEST(jail_tables) {
        for (size_t i = 0; i < ELEMENTSOF(shipped); i++) {
                _cleanup_(config_freep) Config *c = load_alone(&shipped[i]);

                check_identity(&shipped[i], c);
                check_table(&shipped[i], config_find_jail(c, shipped[i].name));
        }
}

static const ShippedJail *find_shipped(const char *file) {
        for (size_t i = 0; i < ELEMENTSOF(shipped); i++)
                if (streq(shipped[i].file, file))
                        return &shipped[i];
        return NULL;
}

/* A new file in conf.d/ lands with its table, or this fails. */
TEST(every_file_listed) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        unsigned files = 0;
        struct dirent *de;

        ASSERT_TRUE(asprintf(&dir, "%s/conf.d", srcdir) > 0);
        d = opendir(dir);
        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);

                if (de->d_name[0] == '.')
                        continue;
                files++;
                if (n < 5 || !streq(de->d_name + n - 5, ".conf") || !find_shipped(de->d_name))
                        fprintf(stderr, "conf.d/%s has no entry in shipped[]\n", de->d_name);
                ASSERT_TRUE(n >= 5 && streq(de->d_name + n - 5, ".conf") && find_shipped(de->d_name));
        }
        ASSERT_EQ(files, ELEMENTSOF(shipped));
}

/* As installed: every shipped file in the vendor directory, and an admin's drop-in of two lines,
 * "[Jail]" and "Name=X" with "Enabled=yes", that switches one on. */
TEST(enable_by_dropin) {
        for (size_t i = 0; i < ELEMENTSOF(shipped); i++) {
                char etc[] = "/tmp/vpopguard-test-tables-XXXXXX";
                _cleanup_free_ char *vendor = NULL, *dropin = NULL, *text = NULL, *cmd = NULL;
                _cleanup_(config_freep) Config *c = NULL;
                ConfigErrors errors = {};
                FILE *f;
                int k;

                ASSERT_TRUE(mkdtemp(etc));
                ASSERT_TRUE(asprintf(&vendor, "%s/conf.d", srcdir) > 0);
                ASSERT_TRUE(asprintf(&dropin, "%s/50-%s-local.conf", etc, shipped[i].name) > 0);
                f = fopen(dropin, "we");
                ASSERT_TRUE(f);
                fprintf(f, "[Jail]\nName=%s\nEnabled=yes\n", shipped[i].name);
                ASSERT_EQ(fclose(f), 0);

                const char *const dirs[] = { etc, vendor, NULL };
                k = config_load("/nonexistent/vpopguard.conf", dirs, &c, &errors);
                if (k < 0)
                        config_errors_print(&errors, stderr);
                config_errors_done(&errors);
                ASSERT_TRUE(asprintf(&cmd, "rm -rf '%s'", etc) > 0);
                ASSERT_EQ(system(cmd), 0);
                ASSERT_EQ(k, 0);

                ASSERT_EQ(c->n_jails, ELEMENTSOF(shipped));
                for (size_t k2 = 0; k2 < ELEMENTSOF(shipped); k2++) {
                        const JailConfig *j = config_find_jail(c, shipped[k2].name);

                        ASSERT_TRUE(j);
                        ASSERT_EQ(j->enabled, k2 == i ? true : shipped[k2].enabled);
                }
        }
}

int main(int argc, char *argv[]) {
        srcdir = argc > 1 ? argv[1] : SRCDIR;
        RUN(every_file_listed);
        RUN(jail_tables);
        RUN(enable_by_dropin);
        return 0;
}
