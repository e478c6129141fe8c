/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h" /* also config_errors_add() */
#include "macro.h"
#include "tests.h"

/* Fixture trees live in tests/config/<case>/: vpopguard.conf, vpopguard.conf.d/ and the golden
 * outputs expected.conf (config_dump()) or expected.errors (config_errors_print()). Set
 * VPOPGUARD_UPDATE_GOLDEN=1 to rewrite the golden files from the actual output. */

static const char *srcdir;
static char scratch[] = "/tmp/test-config-XXXXXX";

static char *xasprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        ASSERT_TRUE(vasprintf(&s, format, ap) >= 0);
        va_end(ap);
        return s;
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *s = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        ASSERT_TRUE(getdelim(&s, &n, '\0', f) >= 0 || feof(f));
        fclose(f);
        return s ?: strdup("");
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

static char *mfree_text(char *s) {
        free(s);
        return NULL;
}

static char *dump_string(const Config *c) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        ASSERT_TRUE(f);
        config_dump(c, f);
        ASSERT_EQ(fclose(f), 0);
        return s;
}

static char *errors_string(const ConfigErrors *e) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        ASSERT_TRUE(f);
        config_errors_print(e, f);
        ASSERT_EQ(fclose(f), 0);
        return s;
}

static void assert_golden(const char *actual, const char *case_name, const char *golden) {
        _cleanup_free_ char *path = xasprintf("%s/tests/config/%s/%s", srcdir, case_name, golden);
        _cleanup_free_ char *expected = NULL;

        if (getenv("VPOPGUARD_UPDATE_GOLDEN")) {
                write_text(path, actual);
                return;
        }
        expected = read_text(path);
        if (!expected)
                fprintf(stderr, "missing golden file %s\n", path);
        ASSERT_STREQ(actual, expected);
}

/* Loads a fixture case with relative paths, so that messages name files as the golden files do. */
static int load_case(const char *case_name, Config **ret, ConfigErrors *e) {
        _cleanup_free_ char *dir = xasprintf("%s/tests/config/%s", srcdir, case_name);
        _cleanup_strv_free_ char **dirs = config_dropin_dirs_for("vpopguard.conf");
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        ASSERT_TRUE(cwd >= 0 && dirs);
        ASSERT_EQ(chdir(dir), 0);
        r = config_load("vpopguard.conf", (const char * const *) dirs, ret, e);
        ASSERT_EQ(fchdir(cwd), 0);
        if (r < 0 && !streq(case_name, "errors"))
                config_errors_print(e, stderr);
        return r;
}

static void assert_strv_eq(char * const *a, char * const *b) {
        ASSERT_EQ(strv_length(a), strv_length(b));
        for (size_t i = 0; i < strv_length(a); i++)
                ASSERT_STREQ(a[i], b[i]);
}

/* Everything but where things came from. */
static void assert_config_eq(const Config *a, const Config *b) {
        ASSERT_STREQ(a->firewall.family, b->firewall.family);
        ASSERT_STREQ(a->firewall.table, b->firewall.table);
        ASSERT_STREQ(a->firewall.set4, b->firewall.set4);
        ASSERT_STREQ(a->firewall.set6, b->firewall.set6);
        ASSERT_EQ(a->firewall.create_table, b->firewall.create_table);
        ASSERT_EQ(a->n_jails, b->n_jails);
        for (size_t i = 0; i < a->n_jails; i++) {
                const JailConfig *x = &a->jails[i], *y = &b->jails[i];

                ASSERT_STREQ(x->name, y->name);
                ASSERT_EQ(x->enabled, y->enabled);
                assert_strv_eq(x->journal_matches, y->journal_matches);
                assert_strv_eq(x->fail_regex, y->fail_regex);
                assert_strv_eq(x->ignore_regex, y->ignore_regex);
                ASSERT_EQ(x->host_format, y->host_format);
                ASSERT_EQ(x->max_retry, y->max_retry);
                ASSERT_UINT_EQ(x->find_time, y->find_time);
                ASSERT_UINT_EQ(x->ban_time, y->ban_time);
                ASSERT_EQ(x->max_tracked, y->max_tracked);
                ASSERT_EQ(x->n_ignore_addresses, y->n_ignore_addresses);
                ASSERT_TRUE(x->n_ignore_addresses == 0 ||
                            memcmp(x->ignore_addresses, y->ignore_addresses,
                                   sizeof(AddressPrefix) * x->n_ignore_addresses) == 0);
                ASSERT_EQ(x->n_trusted_uids, y->n_trusted_uids);
                ASSERT_TRUE(x->n_trusted_uids == 0 ||
                            memcmp(x->trusted_uids, y->trusted_uids, sizeof(UIDRange) * x->n_trusted_uids) == 0);
        }
}

/* Writes c's dump to a file, loads it alone, and checks that nothing changed. */
static void assert_round_trip(const Config *c) {
        _cleanup_free_ char *path = xasprintf("%s/round-trip.conf", scratch);
        _cleanup_free_ char *text = dump_string(c), *again = NULL;
        _cleanup_(config_errors_done) ConfigErrors e = {};
        Config *back = NULL;

        write_text(path, text);
        ASSERT_EQ(config_load(path, NULL, &back, &e), 0);
        ASSERT_EQ(e.n_errors, 0);
        assert_config_eq(c, back);
        again = dump_string(back);
        ASSERT_STREQ(again, text);
        config_free(back);
}

/* Loads text as the only file; returns the printed errors ("" on success, and *ret set). */
static char *load_text(const char *text, Config **ret, int *ret_r) {
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_(config_errors_done) ConfigErrors e = {};
        Config *c = NULL;
        int r;

        /* A relative name, so that messages are the same on every run. */
        ASSERT_TRUE(cwd >= 0);
        ASSERT_EQ(chdir(scratch), 0);
        write_text("text.conf", text);
        r = config_load("text.conf", NULL, &c, &e);
        ASSERT_EQ(fchdir(cwd), 0);
        ASSERT_EQ(r < 0, e.n_errors > 0);
        ASSERT_TRUE(r < 0 ? c == NULL : c != NULL);
        if (ret_r)
                *ret_r = r;
        if (ret)
                *ret = c;
        else
                config_free(c);
        return errors_string(&e);
}

#define MINIMAL_JAIL "[Jail]\nName=j\nJournalMatch=SYSLOG_IDENTIFIER=x\nFailRegex=^fail <HOST>$\n"

TEST(missing_files) {
        _cleanup_free_ char *main_file = xasprintf("%s/absent.conf", scratch);
        _cleanup_strv_free_ char **dirs = config_dropin_dirs_for(main_file);
        _cleanup_(config_errors_done) ConfigErrors e = {};
        _cleanup_free_ char *dump = NULL;
        Config *c = NULL;

        ASSERT_EQ(config_load(main_file, (const char * const *) dirs, &c, &e), 0);
        ASSERT_EQ(e.n_errors, 0);
        ASSERT_EQ(c->n_jails, 0);
        ASSERT_EQ(strv_length(c->files), 0);
        dump = dump_string(c);
        ASSERT_STREQ(dump, "[Firewall]\nFamily=inet\nTable=vpopguard\nIPv4Set=banned4\nIPv6Set=banned6\nCreateTable=yes\n");
        assert_round_trip(c);
        config_free(c);

        /* Without error collection the result is the same. */
        ASSERT_EQ(config_load(main_file, NULL, &c, NULL), 0);
        config_free(c);
}

TEST(dropin_dirs_for) {
        _cleanup_strv_free_ char **d = config_dropin_dirs_for("/tmp/x.conf");

        ASSERT_EQ(strv_length(d), 1);
        ASSERT_STREQ(d[0], "/tmp/x.conf.d");

        _cleanup_strv_free_ char **defaults = config_dropin_dirs_for(NULL);
        ASSERT_EQ(strv_length(defaults), 3);
        ASSERT_STREQ(defaults[0], "/etc/vpopguard/vpopguard.conf.d");
        ASSERT_STREQ(defaults[1], "/run/vpopguard/vpopguard.conf.d");
        ASSERT_STREQ(defaults[2], "/usr/lib/vpopguard/vpopguard.conf.d");
}

TEST(defaults) {
        _cleanup_(config_errors_done) ConfigErrors e = {};
        _cleanup_free_ char *dump = NULL;
        const JailConfig *j;
        Config *c = NULL;

        ASSERT_EQ(load_case("defaults", &c, &e), 0);
        j = config_find_jail(c, "vpopmail");
        ASSERT_TRUE(j);
        ASSERT_TRUE(j->enabled);
        ASSERT_EQ(j->max_retry, DEFAULT_MAX_RETRY);
        ASSERT_UINT_EQ(j->find_time, DEFAULT_FIND_TIME);
        ASSERT_UINT_EQ(j->ban_time, DEFAULT_BAN_TIME);
        ASSERT_EQ(j->max_tracked, DEFAULT_MAX_TRACKED);
        ASSERT_EQ(j->n_ignore_addresses, 0);
        ASSERT_EQ(j->n_trusted_uids, 0);
        ASSERT_STREQ(j->source_file, "vpopguard.conf");
        ASSERT_EQ(j->source_line, 4);
        ASSERT_TRUE(!config_find_jail(c, "VPOPMAIL"));
        dump = dump_string(c);
        assert_golden(dump, "defaults", "expected.conf");
        assert_round_trip(c);
        config_free(c);
}

TEST(override) {
        _cleanup_(config_errors_done) ConfigErrors e = {};
        _cleanup_free_ char *dump = NULL;
        const JailConfig *j, *b;
        char buf[ADDRESS_STRING_MAX + 4];
        Config *c = NULL;

        ASSERT_EQ(load_case("override", &c, &e), 0);
        ASSERT_EQ(e.n_errors, 0);

        /* The main file first, then the drop-ins in name order; README is not a drop-in. */
        ASSERT_EQ(strv_length(c->files), 4);
        ASSERT_STREQ(c->files[0], "vpopguard.conf");
        ASSERT_STREQ(c->files[1], "vpopguard.conf.d/50-vpopmail.conf");
        ASSERT_STREQ(c->files[2], "vpopguard.conf.d/60-local.conf");
        ASSERT_STREQ(c->files[3], "vpopguard.conf.d/70-late-defaults.conf");

        ASSERT_STREQ(c->firewall.family, "ip");
        ASSERT_STREQ(c->firewall.set6, "bad6"); /* spaces around key and value trimmed */
        ASSERT_FALSE(c->firewall.create_table);

        ASSERT_EQ(c->n_jails, 2);
        j = &c->jails[0];
        b = &c->jails[1];
        ASSERT_STREQ(j->name, "vpopmail");
        ASSERT_STREQ(j->source_file, "vpopguard.conf.d/50-vpopmail.conf");
        ASSERT_EQ(j->source_line, 2);
        ASSERT_EQ(j->max_retry, 3);                    /* the later drop-in wins */
        ASSERT_UINT_EQ(j->ban_time, USEC_PER_DAY);
        ASSERT_UINT_EQ(j->find_time, 20 * USEC_PER_MINUTE); /* [Defaults] from a later file */
        ASSERT_EQ(j->max_tracked, 5000);
        ASSERT_EQ(strv_length(j->journal_matches), 2);  /* cleared, then two new */
        ASSERT_STREQ(j->journal_matches[0], "SYSLOG_IDENTIFIER=vpopmail-custom");
        ASSERT_EQ(strv_length(j->fail_regex), 1);
        ASSERT_EQ(strv_length(j->ignore_regex), 0);
        ASSERT_EQ(j->n_ignore_addresses, 3);            /* [Defaults]' two, then its own */
        ASSERT_STREQ(address_prefix_to_string(&j->ignore_addresses[0], buf), "192.0.2.0/24");
        ASSERT_STREQ(address_prefix_to_string(&j->ignore_addresses[2], buf), "2001:db8::/32");
        ASSERT_EQ(j->n_trusted_uids, 2);                /* its own, not [Defaults]' */
        ASSERT_EQ(j->host_format, HOST_FORMAT_VPOPMAIL);

        ASSERT_STREQ(b->name, "backup");
        ASSERT_FALSE(b->enabled);                       /* kept, though incomplete */
        ASSERT_EQ(b->max_retry, 4);
        ASSERT_UINT_EQ(b->find_time, USEC_PER_HOUR + 30 * USEC_PER_MINUTE);
        ASSERT_EQ(b->n_trusted_uids, 1);                /* inherited */
        ASSERT_EQ(b->trusted_uids[0].first, 0);
        ASSERT_EQ(b->n_ignore_addresses, 2);
        ASSERT_EQ(b->host_format, HOST_FORMAT_STANDARD); /* the built-in default */

        dump = dump_string(c);
        assert_golden(dump, "override", "expected.conf");
        assert_round_trip(c);
        config_free(c);
}

static void make_file(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
        write_text(p, text);
}

TEST(masking_three_dirs) {
        _cleanup_free_ char *etc = xasprintf("%s/etc", scratch), *run = xasprintf("%s/run", scratch),
                            *lib = xasprintf("%s/lib", scratch), *null_link = NULL;
        _cleanup_(config_errors_done) ConfigErrors e = {};
        const char *dirs[] = { etc, run, lib, NULL };
        const JailConfig *j;
        Config *c = NULL;

        ASSERT_EQ(mkdir(etc, 0755), 0);
        ASSERT_EQ(mkdir(run, 0755), 0);
        ASSERT_EQ(mkdir(lib, 0755), 0);

        /* Each drop-in appends one JournalMatch=, so the list shows which files were applied. */
        make_file(lib, "10-jail.conf", MINIMAL_JAIL "JournalMatch=F=lib-10\n");
        make_file(run, "10-jail.conf", MINIMAL_JAIL "JournalMatch=F=run-10\n"); /* masks lib */
        make_file(etc, "20-x.conf", "[Jail]\nName=j\nJournalMatch=F=etc-20\n");
        make_file(run, "20-x.conf", "[Jail]\nName=j\nJournalMatch=F=run-20\n");
        make_file(lib, "20-x.conf", "[Jail]\nName=j\nJournalMatch=F=lib-20\n");
        make_file(lib, "30-y.conf", "[Jail]\nName=j\nJournalMatch=F=lib-30\n");
        make_file(lib, "40-null.conf", "[Jail]\nName=j\nJournalMatch=F=lib-40\n");
        null_link = xasprintf("%s/40-null.conf", etc);
        ASSERT_EQ(symlink("/dev/null", null_link), 0);
        make_file(lib, "50-empty.conf", "[Jail]\nName=j\nJournalMatch=F=lib-50\n");
        make_file(run, "50-empty.conf", "");
        make_file(lib, "05-early.conf", "[Jail]\nName=j\nJournalMatch=F=lib-05\n");
        make_file(etc, "60-late.conf.disabled", "garbage\n");
        make_file(etc, ".70-hidden.conf", "garbage\n");

        ASSERT_EQ(config_load(NULL, dirs, &c, &e), 0);
        ASSERT_EQ(e.n_errors, 0);
        /* Name order across the directories; a masked file is not read at all. */
        ASSERT_EQ(strv_length(c->files), 4);
        ASSERT_TRUE(strstr(c->files[0], "/lib/05-early.conf"));
        ASSERT_TRUE(strstr(c->files[1], "/run/10-jail.conf"));
        ASSERT_TRUE(strstr(c->files[2], "/etc/20-x.conf"));
        ASSERT_TRUE(strstr(c->files[3], "/lib/30-y.conf"));

        j = config_find_jail(c, "j");
        ASSERT_TRUE(j);
        ASSERT_STREQ(j->source_file, c->files[0]);
        ASSERT_EQ(strv_length(j->journal_matches), 5);
        ASSERT_STREQ(j->journal_matches[0], "F=lib-05");
        ASSERT_STREQ(j->journal_matches[1], "SYSLOG_IDENTIFIER=x");
        ASSERT_STREQ(j->journal_matches[2], "F=run-10");
        ASSERT_STREQ(j->journal_matches[3], "F=etc-20");
        ASSERT_STREQ(j->journal_matches[4], "F=lib-30");
        assert_round_trip(c);
        config_free(c);
}

TEST(errors) {
        _cleanup_(config_errors_done) ConfigErrors e = {};
        _cleanup_free_ char *text = NULL;
        Config *c = NULL;

        ASSERT_EQ(load_case("errors", &c, &e), -EINVAL);
        ASSERT_TRUE(c == NULL);
        text = errors_string(&e);
        assert_golden(text, "errors", "expected.errors");
}

TEST(regex_errors) {
        _cleanup_free_ char *text = NULL;
        int r;

        /* failregex.c words the reasons; here only that each bad pattern is reported on its line. */
        text = load_text("[Jail]\n"
                         "Name=j\n"
                         "JournalMatch=SYSLOG_IDENTIFIER=x\n"
                         "FailRegex=^no host here$\n"
                         "FailRegex=^(unclosed <HOST>$\n"
                         "FailRegex=^<HOST> and <HOST>$\n"
                         "FailRegex=^good <HOST>$\n"
                         "IgnoreRegex=^ignore <HOST>$\n"
                         "IgnoreRegex=[z-a]\n"
                         "IgnoreRegex=^fine$\n", NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(text, ":4: [Jail] FailRegex=^no host here$: invalid regular expression: "));
        ASSERT_TRUE(strstr(text, ":5: [Jail] FailRegex=^(unclosed <HOST>$: invalid regular expression: "));
        ASSERT_TRUE(strstr(text, ":6: [Jail] FailRegex=^<HOST> and <HOST>$: invalid regular expression: "));
        ASSERT_TRUE(strstr(text, ":8: [Jail] IgnoreRegex=^ignore <HOST>$: invalid regular expression: "));
        ASSERT_TRUE(strstr(text, ":9: [Jail] IgnoreRegex=[z-a]: invalid regular expression: "));
        ASSERT_FALSE(strstr(text, ":7:"));
        ASSERT_FALSE(strstr(text, ":10:"));
        /* Five errors, five lines. */
        size_t lines = 0;
        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        ASSERT_EQ(lines, 5);
}

TEST(syntax) {
        _cleanup_free_ char *text = NULL;
        const JailConfig *j;
        Config *c = NULL;
        int r;

        text = load_text("\xef\xbb\xbf# BOM, CRLF, comments and spacing\r\n"
                         "  ; indented comment\r\n"
                         "\r\n"
                         "  [Jail]  \r\n"
                         "Name = j\r\n"
                         "Name=j\r\n"                       /* the same name again is fine */
                         "JournalMatch=EMPTY_VALUE=\r\n"    /* an empty VALUE is allowed */
                         "JournalMatch = _UID=0 \r\n"
                         "FailRegex=  ^x # not a comment <HOST>$  \r\n"
                         "MaxRetry=7\r\n"
                         "MaxRetry=8\r\n"                   /* last wins */
                         "BanTime=5min\r\n"
                         "BanTime=\r\n"                     /* back to inheriting */
                         "Enabled=off\r\n"
                         "Enabled=1\r\n"
                         "[Firewall]\r\n"
                         "Table=t\r\n"
                         "Table=\r\n"                       /* back to the default */
                         "CreateTable=false\r\n"
                         "[Defaults]\r\n"
                         "BanTime=2h\r\n"
                         "MaxRetry=9\r\n"
                         "MaxRetry=\r\n",                   /* back to the built-in default */
                         &c, &r);
        ASSERT_STREQ(text, "");
        ASSERT_EQ(r, 0);
        j = config_find_jail(c, "j");
        ASSERT_TRUE(j && j->enabled);
        ASSERT_EQ(strv_length(j->journal_matches), 2);
        ASSERT_STREQ(j->journal_matches[0], "EMPTY_VALUE=");
        ASSERT_STREQ(j->journal_matches[1], "_UID=0");
        ASSERT_STREQ(j->fail_regex[0], "^x # not a comment <HOST>$");
        ASSERT_EQ(j->max_retry, 8);
        ASSERT_UINT_EQ(j->ban_time, 2 * USEC_PER_HOUR);
        ASSERT_STREQ(c->firewall.table, "vpopguard");
        ASSERT_FALSE(c->firewall.create_table);
        assert_round_trip(c);
        config_free(c);

        /* A jail's explicit value beats [Defaults], and a value equal to the default is still
         * the jail's own. */
        text = mfree_text(text);
        text = load_text(MINIMAL_JAIL "MaxRetry=3\n[Defaults]\nMaxRetry=9\nFindTime=1h\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].max_retry, 3);
        ASSERT_UINT_EQ(c->jails[0].find_time, USEC_PER_HOUR);
        config_free(c);
}

/* BanTime=infinity: permanent bans, written back as "infinity"; FindTime= has no such value. */
TEST(ban_time_infinity) {
        _cleanup_free_ char *text = NULL;
        Config *c = NULL;
        int r;

        text = load_text(MINIMAL_JAIL "BanTime=infinity\n", &c, &r);
        ASSERT_STREQ(text, "");
        ASSERT_UINT_EQ(c->jails[0].ban_time, USEC_INFINITY);
        assert_round_trip(c);
        config_free(c);

        text = mfree_text(text);
        text = load_text(MINIMAL_JAIL "FindTime=infinity\n", &c, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(text, "FindTime=infinity") != NULL);
}

TEST(space_separated_lists) {
        _cleanup_free_ char *errors = NULL;
        Config *c = NULL;
        int r;

        errors = load_text("[Defaults]\nIgnoreAddress= 192.0.2.0/24\t2001:db8::/32  198.51.100.7 \n"
                           "TrustedUID=0 100-199\n" MINIMAL_JAIL, &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].n_ignore_addresses, 3);
        ASSERT_EQ(c->jails[0].n_trusted_uids, 2);
        ASSERT_EQ(c->jails[0].trusted_uids[1].first, 100);
        ASSERT_EQ(c->jails[0].trusted_uids[1].last, 199);
        config_free(c);

        /* An empty assignment empties the list so far; later ones add again. */
        free(errors);
        errors = load_text("[Defaults]\nIgnoreAddress=192.0.2.0/24\nIgnoreAddress=\nIgnoreAddress=198.51.100.7\n"
                           "TrustedUID=0\nTrustedUID=\n" MINIMAL_JAIL "TrustedUID=5\nTrustedUID=\nTrustedUID=7\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].n_ignore_addresses, 1);
        ASSERT_EQ(c->jails[0].ignore_addresses[0].address.bytes[0], 198);
        ASSERT_EQ(c->jails[0].n_trusted_uids, 1);
        ASSERT_EQ(c->jails[0].trusted_uids[0].first, 7);
        config_free(c);

        free(errors);
        errors = load_text("[Defaults]\nIgnoreAddress=192.0.2.0/24 mail.example.com\n" MINIMAL_JAIL, NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(errors, "IgnoreAddress=192.0.2.0/24 mail.example.com") != NULL);
}

/* [Fleet]: the peers as a list (empty clears it), the booleans, the directory; the dump shows
 * the section only when there are peers, and reads back the same. */
TEST(fleet) {
        _cleanup_free_ char *errors = NULL, *dump = NULL;
        Config *c = NULL;
        int r;

        errors = load_text(MINIMAL_JAIL, &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_TRUE(!c->fleet.peers && !c->fleet.relay && !c->fleet.count);
        ASSERT_STREQ(c->fleet.directory, DEFAULT_FLEET_DIRECTORY);
        dump = dump_string(c);
        ASSERT_TRUE(!strstr(dump, "[Fleet]"));
        config_free(c);

        free(errors);
        errors = load_text("[Fleet]\nPeer=gone\nPeer=\nPeer=10.0.0.1  fd00::1\tcollector.example.com\nPeer=h_2\n"
                           "Relay=yes\nCountFailures=on\nDirectory=/srv/remote\n" MINIMAL_JAIL, &c, &r);
        ASSERT_STREQ(errors, "");
        ASSERT_EQ(strv_length(c->fleet.peers), 4);
        ASSERT_STREQ(c->fleet.peers[0], "10.0.0.1");
        ASSERT_STREQ(c->fleet.peers[1], "fd00::1");
        ASSERT_STREQ(c->fleet.peers[2], "collector.example.com");
        ASSERT_STREQ(c->fleet.peers[3], "h_2");
        ASSERT_TRUE(c->fleet.relay && c->fleet.count);
        ASSERT_STREQ(c->fleet.directory, "/srv/remote");
        free(dump);
        dump = dump_string(c);
        ASSERT_TRUE(strstr(dump, "\n[Fleet]\nDirectory=/srv/remote\nPeer=10.0.0.1\nPeer=fd00::1\n"
                                 "Peer=collector.example.com\nPeer=h_2\nRelay=yes\nCountFailures=yes\n"));
        assert_round_trip(c);
        config_free(c);

        static const char * const bad[] = {
                "Peer=../etc", "Peer=a/b", "Peer=*", "Peer=.hidden", "Peer=a?b", "Relay=maybe",
                "CountFailures=2", "Directory=relative", "Directory=/a/*", "Unknown=1",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = xasprintf("[Fleet]\n%s\n" MINIMAL_JAIL, bad[i]);
                free(errors);
                errors = load_text(text, NULL, &r);
                ASSERT_EQ(r, -EINVAL);
                ASSERT_TRUE(strstr(errors, bad[i]) != NULL);
        }
}

/* IPv4Prefix= and IPv6Prefix=: per jail, inherited from [Defaults], within their ranges. */
TEST(prefix_lengths) {
        _cleanup_free_ char *text = NULL;
        Config *c = NULL;
        int r;

        text = load_text(MINIMAL_JAIL, &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].ipv4_prefix, 32);
        ASSERT_EQ(c->jails[0].ipv6_prefix, 64);
        ASSERT_EQ(jail_config_prefix_length(&c->jails[0], AF_INET), 32);
        ASSERT_EQ(jail_config_prefix_length(&c->jails[0], AF_INET6), 64);
        config_free(c);

        text = mfree_text(text);
        text = load_text("[Defaults]\nIPv6Prefix=48\nIPv4Prefix=24\n" MINIMAL_JAIL "IPv6Prefix=128\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].ipv4_prefix, 24);
        ASSERT_EQ(c->jails[0].ipv6_prefix, 128);
        assert_round_trip(c);
        config_free(c);

        text = mfree_text(text);
        text = load_text("[Defaults]\nIPv6Prefix=48\n" MINIMAL_JAIL "IPv6Prefix=128\nIPv6Prefix=\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(c->jails[0].ipv6_prefix, 48); /* empty: inherit again */
        config_free(c);

        static const char * const bad[] = {
                "IPv4Prefix=15\n", "IPv4Prefix=33\n", "IPv6Prefix=31\n", "IPv6Prefix=129\n",
                "IPv6Prefix=/64\n", "IPv6Prefix=-64\n", "IPv6Prefix=6 4\n", "IPv4Prefix=0x20\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *jail = xasprintf(MINIMAL_JAIL "%s", bad[i]);
                text = mfree_text(text);
                text = load_text(jail, NULL, &r);
                ASSERT_EQ(r, -EINVAL);
                ASSERT_TRUE(strstr(text, "expected a number from") != NULL);
        }
}

TEST(host_format) {
        /* Standard unless said otherwise; [Defaults] sets it for every jail that does not set
         * it itself, and an empty value in a jail inherits again. */
        static const struct {
                const char *text;
                HostFormat expected;
        } cases[] = {
                { MINIMAL_JAIL, HOST_FORMAT_STANDARD },
                { MINIMAL_JAIL "HostFormat=vpopmail\n", HOST_FORMAT_VPOPMAIL },
                { "[Defaults]\nHostFormat=vpopmail\n" MINIMAL_JAIL, HOST_FORMAT_VPOPMAIL },
                { "[Defaults]\nHostFormat=vpopmail\n" MINIMAL_JAIL "HostFormat=standard\n", HOST_FORMAT_STANDARD },
                { "[Defaults]\nHostFormat=vpopmail\n" MINIMAL_JAIL "HostFormat=standard\nHostFormat=\n", HOST_FORMAT_VPOPMAIL },
                { "[Defaults]\nHostFormat=vpopmail\nHostFormat=\n" MINIMAL_JAIL, HOST_FORMAT_STANDARD },
        };
        _cleanup_free_ char *errors = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = NULL;
                Config *c = NULL;

                e = load_text(cases[i].text, &c, &r);
                ASSERT_EQ(r, 0);
                ASSERT_EQ(c->jails[0].host_format, cases[i].expected);
                config_free(c);
        }

        errors = load_text(MINIMAL_JAIL "HostFormat=Standard\n", NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(errors, "HostFormat=Standard: expected \"standard\" or \"vpopmail\"") != NULL);
}

static void assert_one_error(const char *text, const char *expected) {
        _cleanup_free_ char *actual = NULL;
        int r;

        actual = load_text(text, NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_STREQ(actual, expected);
}

TEST(hostile_input) {
        _cleanup_free_ char *big = NULL, *path = NULL, *dir = NULL, *text = NULL;
        _cleanup_(config_errors_done) ConfigErrors e = {};
        size_t n = CONFIG_LINE_MAX + 10;
        Config *c = NULL;
        char *p;

        /* A line over the limit is an error, and the lines after it still count. */
        big = malloc(n + 100);
        ASSERT_TRUE(big);
        p = stpcpy(big, "[Jail]\nFailRegex=");
        memset(p, 'a', n);
        strcpy(p + n, "\nName=\n");
        assert_one_error(big, "text.conf:2: [Jail]: line too long (more than 64 KiB)\n"
                              "text.conf:3: [Jail] Name=: expected a jail name of letters, digits, '_', '.' and '-', at most 64 characters\n");

        /* A NUL byte in a line. */
        path = xasprintf("%s/nul.conf", scratch);
        {
                static const char data[] = "[Jail]\nName=j\0x\nMaxRetry=0\n";
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                ASSERT_TRUE(fd >= 0);
                ASSERT_EQ(write(fd, data, sizeof data - 1), (ssize_t) sizeof data - 1);
                close(fd);
        }
        ASSERT_EQ(config_load(path, NULL, &c, &e), -EINVAL);
        text = errors_string(&e);
        ASSERT_TRUE(strstr(text, "nul.conf:2: [Jail]: line contains a NUL byte\n"));
        ASSERT_TRUE(strstr(text, "nul.conf:1: [Jail]: section has no Name=\n"));
        ASSERT_TRUE(strstr(text, "nul.conf:3: [Jail] MaxRetry=0: expected a number from 1 to 100\n"));
        config_errors_done(&e);
        text = mfree_text(text);

        /* A file over the size limit is refused as a whole. */
        big = mfree_text(big);
        big = malloc(CONFIG_FILE_MAX + 2);
        ASSERT_TRUE(big);
        memset(big, '#', CONFIG_FILE_MAX + 1);
        big[CONFIG_FILE_MAX + 1] = 0;
        assert_one_error(big, "text.conf: file too large (more than 1048576 bytes)\n");

        /* Directories and FIFOs are not configuration files (and must not hang the load). */
        dir = xasprintf("%s/dir.conf", scratch);
        ASSERT_EQ(mkdir(dir, 0755), 0);
        ASSERT_EQ(config_load(dir, NULL, &c, &e), -EINVAL);
        ASSERT_EQ(e.n_errors, 1);
        ASSERT_STREQ(e.errors[0].message, "not a regular file");
        config_errors_done(&e);
        free(path);
        path = xasprintf("%s/fifo.conf", scratch);
        ASSERT_EQ(mkfifo(path, 0644), 0);
        ASSERT_EQ(config_load(path, NULL, &c, &e), -EINVAL);
        ASSERT_STREQ(e.errors[0].message, "not a regular file");
        config_errors_done(&e);

        /* Control characters and overlong values are escaped and cut in messages. */
        big = mfree_text(big);
        big = malloc(2000);
        ASSERT_TRUE(big);
        p = stpcpy(big, "[Firewall]\nTable=\x1b]0;owned\x07");
        memset(p, 'b', 1000);
        strcpy(p + 1000, "\n");
        text = load_text(big, NULL, NULL);
        ASSERT_TRUE(strstr(text, "[Firewall] Table=\\x1b]0;owned\\x07bbbb"));
        ASSERT_TRUE(strstr(text, "bbb...: expected a name of letters"));
        ASSERT_LT(strlen(text), 500);
}

TEST(limits) {
        _cleanup_free_ char *text = NULL;
        FILE *f;
        char *s = NULL;
        size_t n = 0;
        int r;

        /* One jail more than allowed. */
        f = open_memstream(&s, &n);
        ASSERT_TRUE(f);
        for (unsigned i = 0; i <= CONFIG_JAILS_MAX; i++)
                fprintf(f, "[Jail]\nName=j%u\nEnabled=no\n", i);
        ASSERT_EQ(fclose(f), 0);
        text = load_text(s, NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(text, ": [Jail] Name=j1024: too many jails (at most 1024)\n"));
        free(s);
        text = mfree_text(text);

        /* One list entry more than allowed, and [Defaults]' entries count for each jail. */
        f = open_memstream(&s, &n);
        ASSERT_TRUE(f);
        fputs(MINIMAL_JAIL, f);
        for (unsigned i = 0; i <= CONFIG_LIST_MAX; i++)
                fprintf(f, "TrustedUID=%u\n", i);
        fputs("[Defaults]\n", f);
        for (unsigned i = 0; i < CONFIG_LIST_MAX; i++)
                fprintf(f, "IgnoreAddress=10.%u.%u.0/24\n", i / 256, i % 256);
        fputs("[Jail]\nName=j\nIgnoreAddress=192.0.2.1\n", f);
        ASSERT_EQ(fclose(f), 0);
        text = load_text(s, NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(text, ":4101: [Jail] TrustedUID=4096: too many entries (at most 4096)\n"));
        ASSERT_TRUE(strstr(text, ":1: [Jail] Name=j: too many IgnoreAddress= entries with those of [Defaults] (at most 4096)\n"));
        free(s);
}

TEST(error_limit) {
        _cleanup_free_ char *path = xasprintf("%s/many.conf", scratch), *good = xasprintf("%s/good.conf", scratch);
        _cleanup_(config_errors_done) ConfigErrors e = {};
        Config *c = NULL;
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        for (unsigned i = 0; i < 2 * CONFIG_ERRORS_MAX; i++)
                fputs("no equals sign\n", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_EQ(config_load(path, NULL, &c, &e), -EINVAL);
        ASSERT_EQ(e.n_errors, CONFIG_ERRORS_MAX);
        ASSERT_EQ(e.n_dropped, CONFIG_ERRORS_MAX + 1);
        ASSERT_STREQ(e.errors[CONFIG_ERRORS_MAX - 2].message, "expected Key=Value");
        ASSERT_STREQ(e.errors[CONFIG_ERRORS_MAX - 1].message, "too many errors, not listing more");
        ASSERT_TRUE(e.errors[CONFIG_ERRORS_MAX - 1].file == NULL);

        /* Even when nothing more can be listed, a new error still fails the load... */
        ASSERT_EQ(config_load(path, NULL, &c, &e), -EINVAL);
        ASSERT_EQ(e.n_errors, CONFIG_ERRORS_MAX);

        /* ...and errors collected before do not fail a good load. */
        write_text(good, MINIMAL_JAIL);
        ASSERT_EQ(config_load(good, NULL, &c, &e), 0);
        config_free(c);
}

TEST(errors_print) {
        ConfigErrors e = {};

        ASSERT_EQ(config_errors_add(&e, "f.conf", 3, "Jail", "Key", "v\n", "message %d", 1), 0);
        ASSERT_EQ(config_errors_add(&e, "f.conf", 0, NULL, NULL, NULL, "whole file"), 0);
        ASSERT_EQ(config_errors_add(&e, NULL, 0, NULL, NULL, NULL, "nowhere"), 0);
        ASSERT_EQ(config_errors_add(&e, "f.conf", 7, "Jail", NULL, NULL, "section"), 0);
        ASSERT_EQ(config_errors_add(&e, "f.conf", 8, NULL, "text", NULL, "no value"), 0);
        ASSERT_EQ(config_errors_add(&e, "f.conf", 9, NULL, "K", "", "empty value"), 0);
        _cleanup_free_ char *text = errors_string(&e);
        ASSERT_STREQ(text,
                     "f.conf:3: [Jail] Key=v\\x0a: message 1\n"
                     "f.conf: whole file\n"
                     "nowhere\n"
                     "f.conf:7: [Jail]: section\n"
                     "f.conf:8: text: no value\n"
                     "f.conf:9: K=: empty value\n");
        _cleanup_free_ char *one = config_error_to_string(&e.errors[0]);
        ASSERT_STREQ(one, "f.conf:3: [Jail] Key=v\\x0a: message 1");
        config_errors_done(&e);
        ASSERT_EQ(e.n_errors, 0);
        config_errors_done(&e); /* twice is fine */
}

TEST(predicates) {
        _cleanup_free_ char *text = NULL;
        const JailConfig *j, *k;
        Address a;
        Config *c = NULL;
        int r;

        text = load_text(MINIMAL_JAIL
                         "TrustedUID=0\n"
                         "TrustedUID=1000-1999\n"
                         "IgnoreAddress=192.0.2.0/24\n"
                         "IgnoreAddress=2001:db8::/32\n"
                         "[Jail]\nName=k\nEnabled=no\n", &c, &r);
        ASSERT_EQ(r, 0);
        j = config_find_jail(c, "j");
        k = config_find_jail(c, "k");
        ASSERT_TRUE(j && k);
        ASSERT_TRUE(config_find_jail(c, "x") == NULL);

        ASSERT_TRUE(jail_config_trusts_uid(j, 0));
        ASSERT_TRUE(jail_config_trusts_uid(j, 1000));
        ASSERT_TRUE(jail_config_trusts_uid(j, 1999));
        ASSERT_FALSE(jail_config_trusts_uid(j, 1));
        ASSERT_FALSE(jail_config_trusts_uid(j, 2000));
        ASSERT_FALSE(jail_config_trusts_uid(j, (uid_t) -1));
        ASSERT_TRUE(jail_config_trusts_uid(k, 12345)); /* no TrustedUID=: every UID */

        ASSERT_EQ(address_parse("192.0.2.200", 11, &a), 0);
        ASSERT_TRUE(jail_config_ignores_address(j, &a));
        ASSERT_FALSE(jail_config_ignores_address(k, &a));
        ASSERT_EQ(address_parse("192.0.3.1", 9, &a), 0);
        ASSERT_FALSE(jail_config_ignores_address(j, &a));
        ASSERT_EQ(address_parse("2001:db8::7", 11, &a), 0);
        ASSERT_TRUE(jail_config_ignores_address(j, &a));
        ASSERT_EQ(address_parse("127.0.0.2", 9, &a), 0);
        ASSERT_TRUE(jail_config_ignores_address(k, &a)); /* loopback always */
        ASSERT_EQ(address_parse("::1", 3, &a), 0);
        ASSERT_TRUE(jail_config_ignores_address(k, &a));
        config_free(c);
}

TEST(name_validators) {
        ASSERT_TRUE(nft_name_is_valid("banned4"));
        ASSERT_TRUE(nft_name_is_valid("_x"));
        ASSERT_FALSE(nft_name_is_valid(""));
        ASSERT_FALSE(nft_name_is_valid("4x"));
        ASSERT_FALSE(nft_name_is_valid("a-b"));
        ASSERT_FALSE(nft_name_is_valid("a;flush ruleset"));
        ASSERT_TRUE(nft_name_is_valid("a123456789012345678901234567890123456789012345678901234567890123"));
        ASSERT_FALSE(nft_name_is_valid("a1234567890123456789012345678901234567890123456789012345678901234"));

        ASSERT_TRUE(jail_name_is_valid("vpopmail-smtp.v2_x"));
        ASSERT_FALSE(jail_name_is_valid(""));
        ASSERT_FALSE(jail_name_is_valid("a b"));
        ASSERT_FALSE(jail_name_is_valid("a/b"));
        ASSERT_FALSE(jail_name_is_valid("a123456789012345678901234567890123456789012345678901234567890123x"));
        ASSERT_TRUE(jail_name_is_valid("a123456789012345678901234567890123456789012345678901234567890123"));
        /* A full char[JAIL_NAME_MAX + 1] without its NUL (a damaged Ban) is rejected, and ASan
         * sees that nothing past it is read. */
        char unterminated[64 + 1];
        memset(unterminated, 'a', sizeof unterminated);
        ASSERT_FALSE(jail_name_is_valid(unterminated));

        ASSERT_TRUE(journal_match_is_valid("SYSLOG_IDENTIFIER=vpopmail"));
        ASSERT_TRUE(journal_match_is_valid("_UID="));
        ASSERT_TRUE(journal_match_is_valid("A=b=c"));
        ASSERT_FALSE(journal_match_is_valid("=x"));
        ASSERT_FALSE(journal_match_is_valid("syslog=x"));
        ASSERT_FALSE(journal_match_is_valid("9A=x"));
        ASSERT_FALSE(journal_match_is_valid("NOEQUALS"));
        ASSERT_FALSE(journal_match_is_valid("A B=x"));
        ASSERT_TRUE(journal_match_is_valid("A123456789012345678901234567890123456789012345678901234567890123=x"));
        ASSERT_FALSE(journal_match_is_valid("A1234567890123456789012345678901234567890123456789012345678901234=x"));
}

TEST(trusted_users) {
        _cleanup_free_ char *errors = NULL;
        _cleanup_free_ char *dump = NULL;
        size_t dump_size = 0;
        Config *c = NULL;
        int r;

        /* Names resolve when loaded; a name without an account is kept aside and trusts nobody. */
        errors = load_text("[Defaults]\nTrustedUser=root vpopguard-no-such-account\n" MINIMAL_JAIL, &c, &r);
        ASSERT_EQ(r, 0);
        const JailConfig *j = &c->jails[0];
        ASSERT_EQ(strv_length(j->trusted_users), 2);       /* inherited from [Defaults] */
        ASSERT_EQ(j->n_trusted_user_uids, 1);
        ASSERT_EQ(j->trusted_user_uids[0], 0);
        ASSERT_EQ(strv_length(j->trusted_users_missing), 1);
        ASSERT_STREQ(j->trusted_users_missing[0], "vpopguard-no-such-account");
        ASSERT_TRUE(jail_config_restricts_senders(j));
        ASSERT_TRUE(jail_config_trusts_uid(j, 0));
        ASSERT_FALSE(jail_config_trusts_uid(j, 1000));

        /* --test-config shows what each name stands for. */
        FILE *f = open_memstream(&dump, &dump_size);
        ASSERT_TRUE(f);
        config_dump(c, f);
        fclose(f);
        ASSERT_TRUE(strstr(dump, "TrustedUser=root\n# root: UID 0\n"));
        ASSERT_TRUE(strstr(dump, "TrustedUser=vpopguard-no-such-account\n# vpopguard-no-such-account: no such account, skipped\n"));
        config_free(c);

        /* Only missing names: the jail still trusts nobody, not everybody. */
        free(errors);
        errors = load_text(MINIMAL_JAIL "TrustedUser=vpopguard-no-such-account\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_TRUE(jail_config_restricts_senders(&c->jails[0]));
        ASSERT_FALSE(jail_config_trusts_uid(&c->jails[0], 0));
        config_free(c);

        /* The union with TrustedUID=, and an empty assignment empties the list. */
        free(errors);
        errors = load_text(MINIMAL_JAIL "TrustedUser=nobody\nTrustedUser=\nTrustedUser=root\nTrustedUID=1000\n", &c, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(strv_length(c->jails[0].trusted_users), 1);
        ASSERT_TRUE(jail_config_trusts_uid(&c->jails[0], 0));
        ASSERT_TRUE(jail_config_trusts_uid(&c->jails[0], 1000));
        ASSERT_FALSE(jail_config_trusts_uid(&c->jails[0], 65534));
        config_free(c);

        /* Not an account name: an error naming the line, nothing resolved. */
        free(errors);
        errors = load_text(MINIMAL_JAIL "TrustedUser=root mail:x\n", NULL, &r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(strstr(errors, "TrustedUser=root mail:x") != NULL);
        free(errors);
        errors = load_text(MINIMAL_JAIL "TrustedUser=-root\n", NULL, &r);
        ASSERT_EQ(r, -EINVAL);
}

int main(int argc, char *argv[]) {
        srcdir = argc > 1 ? argv[1] : SRCDIR;
        ASSERT_TRUE(mkdtemp(scratch));

        RUN(missing_files);
        RUN(dropin_dirs_for);
        RUN(defaults);
        RUN(override);
        RUN(masking_three_dirs);
        RUN(errors);
        RUN(regex_errors);
        RUN(syntax);
        RUN(hostile_input);
        RUN(limits);
        RUN(error_limit);
        RUN(errors_print);
        RUN(predicates);
        RUN(name_validators);
        RUN(ban_time_infinity);
        RUN(space_separated_lists);
        RUN(trusted_users);
        RUN(prefix_lengths);
        RUN(fleet);
        RUN(host_format);

        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", scratch);
        ASSERT_EQ(system(cmd), 0);
        return 0;
}
