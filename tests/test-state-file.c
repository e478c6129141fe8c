/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare() */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "state-file.h"
#include "tests.h"

static const char cursor_main[] = "s=f0079243600e4b54bad236821d43e17d;i=2a;b=0123456789abcdef0123456789abcdef;m=f4241;t=60a24182d8240;x=1eb310998adf8f5f";

/* What the callbacks saw: every call described as one line of text. */
typedef struct Seen {
        char **calls;
        size_t n_positions;
        size_t n_windows;
        bool keep; /* describe calls (off for the big test) */
        int fail_at; /* return -EUCLEAN from this call on, if > 0 */
} Seen;

static char *describe_window(const char *jail, const AddressPrefix *a, const JournalPosition *f, size_t n) {
        char addr[ADDRESS_PREFIX_STRING_MAX], cursor[JOURNAL_CURSOR_MAX];
        char *s = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&s, &size);

        ASSERT_TRUE(m);
        fprintf(m, "fail %s %s", jail, address_prefix_to_string(a, addr));
        for (size_t i = 0; i < n; i++) {
                fprintf(m, " %" PRIu64, f[i].realtime);
                if (journal_position_to_cursor(&f[i], cursor) >= 0)
                        fprintf(m, "@%s", cursor);
        }
        ASSERT_EQ(fclose(m), 0);
        return s;
}

static char *describe_ban(const Ban *b) {
        char addr[ADDRESS_PREFIX_STRING_MAX], *s = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&s, &size);
        AddressPrefix p = ban_prefix(b);

        ASSERT_TRUE(m);
        fprintf(m, "ban %s %s %u %" PRIu64 " %" PRIu64 " %s #%u", b->jail, address_prefix_to_string(&p, addr),
                b->failures, b->banned_usec, b->expires_usec, ban_origin_to_string(b->origin), b->count);
        ASSERT_EQ(fclose(m), 0);
        return s;
}

static int seen_add(Seen *s, char *text) {
        int r = 0;

        ASSERT_TRUE(text);
        if (s->keep)
                ASSERT_OK(strv_extend(&s->calls, text));
        free(text);
        if (s->fail_at > 0 && strv_length(s->calls) >= (size_t) s->fail_at)
                r = -EUCLEAN;
        return r;
}

static int on_cursor(const char *cursor, void *userdata) {
        char *s = malloc(strlen(cursor) + 8);
        ASSERT_TRUE(s);
        strcpy(s, "cursor ");
        strcat(s, cursor);
        return seen_add(userdata, s);
}

static int on_ban(const Ban *b, void *userdata) {
        return seen_add(userdata, describe_ban(b));
}

static int on_failures(const char *jail, const AddressPrefix *a, const JournalPosition *f, size_t n, void *userdata) {
        Seen *s = userdata;

        s->n_windows++;
        s->n_positions += n;
        if (!s->keep)
                return 0;
        return seen_add(s, describe_window(jail, a, f, n));
}

static char *describe_history(const BanRecord *r) {
        char addr[ADDRESS_STRING_MAX], *s = NULL;
        ASSERT_TRUE(asprintf(&s, "history %s %u %" PRIu64, address_to_string(&r->address, addr), r->count,
                             r->last_usec) > 0);
        return s;
}

static int on_history(const BanRecord *r, void *userdata) {
        return seen_add(userdata, describe_history(r));
}

static int on_peer_cursor(const char *peer, const char *cursor, void *userdata) {
        char *s = NULL;
        ASSERT_TRUE(asprintf(&s, "peer %s %s", peer, cursor) > 0);
        return seen_add(userdata, s);
}

static const StateCallbacks callbacks = {
        .cursor = on_cursor,
        .ban = on_ban,
        .failures = on_failures,
        .history = on_history,
        .peer_cursor = on_peer_cursor,
};

static Address addr(const char *s) {
        Address a;
        ASSERT_OK(address_parse(s, strlen(s), &a));
        return a;
}

static JournalPosition position(const char *cursor, usec_t realtime) {
        JournalPosition p;
        ASSERT_OK(journal_position_from_cursor(cursor, realtime, &p));
        ASSERT_TRUE(journal_position_has_cursor(&p) == !!cursor);
        return p;
}

static void make_dir(char dir[static 64]) {
        strcpy(dir, "/tmp/test-state-file-XXXXXX");
        ASSERT_TRUE(mkdtemp(dir));
}

/* Lists dir's entries (without . and ..) as "a b c" in sorted order. */
static char *list_dir(const char *dir) {
        struct dirent **names;
        char *s = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&s, &size);
        int n = scandir(dir, &names, NULL, alphasort);

        ASSERT_TRUE(m);
        ASSERT_OK(n);
        for (int i = 0, k = 0; i < n; i++) {
                if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, ".."))
                        fprintf(m, "%s%s", k++ > 0 ? " " : "", names[i]->d_name);
                free(names[i]);
        }
        free(names);
        ASSERT_EQ(fclose(m), 0);
        return s;
}

static void remove_dir(const char *dir) {
        struct dirent **names;
        int n = scandir(dir, &names, NULL, alphasort);
        int fd = open(dir, O_RDONLY | O_DIRECTORY);

        ASSERT_OK(n);
        ASSERT_OK(fd);
        for (int i = 0; i < n; i++) {
                if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, ".."))
                        ASSERT_OK(unlinkat(fd, names[i]->d_name, 0));
                free(names[i]);
        }
        free(names);
        close(fd);
        ASSERT_OK(rmdir(dir));
}

static void write_state_file(const char *dir, const char *data, size_t size) {
        char path[128];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE_NAME);
        f = fopen(path, "w");
        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite(data, 1, size, f), size);
        ASSERT_EQ(fclose(f), 0);
}

static char *read_state_file(const char *dir, size_t *ret_size) {
        char path[128], *data;
        struct stat st;
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE_NAME);
        f = fopen(path, "r");
        ASSERT_TRUE(f);
        ASSERT_OK(fstat(fileno(f), &st));
        data = malloc(st.st_size + 1);
        ASSERT_TRUE(data);
        ASSERT_EQ(fread(data, 1, st.st_size, f), (size_t) st.st_size);
        data[st.st_size] = 0;
        ASSERT_EQ(fclose(f), 0);
        *ret_size = st.st_size;
        return data;
}

/* The example state: a cursor, bans of both families and origins, windows with and without
 * cursors. Written through the writer; the calls the loader should make are put in expected. */
static void write_example(const char *dir, char ***expected) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        const Ban bans[] = {
                { .address = addr("192.0.2.7"), .jail = "vpopmail", .failures = 3,
                  .banned_usec = UINT64_C(1700000000000000), .expires_usec = UINT64_C(1700003600000000),
                  .origin = BAN_ORIGIN_JOURNAL, .count = 1 },
                { .address = addr("2001:db8::7"), .jail = "vpop-mail_2.x", .failures = 0,
                  .banned_usec = 0, .expires_usec = USEC_INFINITY, .origin = BAN_ORIGIN_MANUAL, .count = 3 },
                { .address = addr("::ffff:198.51.100.1"), .jail = "J", .failures = UINT32_MAX,
                  .banned_usec = 1, .expires_usec = 2, .origin = BAN_ORIGIN_MANUAL, .count = UINT32_MAX },
                /* Version 3: a prefix ban. */
                { .address = addr("2001:db8:1:2::"), .prefixlen = 64, .jail = "vpopmail", .failures = 3,
                  .banned_usec = 10, .expires_usec = 20, .origin = BAN_ORIGIN_JOURNAL, .count = 1 },
        };
        const JournalPosition w1[] = {
                position("s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=60a24181e4000;x=b23269e781e12a2a",
                         UINT64_C(1700000000000000)),
                position("s=f0079243600e4b54bad236821d43e17d;i=2;b=0123456789abcdef0123456789abcdef;m=f4241;t=60a24182d8240;x=1eb310998adf8f5f",
                         UINT64_C(1700000001000000)),
        };
        const JournalPosition w2[] = { position(NULL, 5) };
        const JournalPosition w3[] = {
                position(NULL, 0),
                position("s=ffffffffffffffffffffffffffffffff;i=ffffffffffffffff;b=fedcba9876543210fedcba9876543210;m=0;t=ffffffffffffffff;x=0",
                         UINT64_MAX),
                position(NULL, UINT64_MAX - 1),
        };
        Address a1 = addr("192.0.2.7"), a2 = addr("2001:db8::1:0:0:1"), a3 = addr("203.0.113.255");
        AddressPrefix p1 = { a1, 32 }, p2 = { a2, 128 }, p3 = { a3, 32 }, p4 = { addr("2001:db8:9:9::"), 64 };
        const BanRecord history[] = {
                { .address = addr("192.0.2.7"), .count = 2, .last_usec = UINT64_C(1700000000000000) },
                { .address = addr("2001:db8::9"), .count = UINT32_MAX, .last_usec = UINT64_MAX },
        };

        *expected = NULL;
        ASSERT_OK(state_writer_open(dir, &w));
        ASSERT_OK(state_writer_failures(w, "vpopmail", &a1, w1, ELEMENTSOF(w1)));
        ASSERT_OK(state_writer_ban(w, &bans[0]));
        ASSERT_OK(state_writer_failures(w, "vpopmail", &a2, w2, ELEMENTSOF(w2)));
        ASSERT_OK(state_writer_cursor(w, cursor_main));
        ASSERT_OK(state_writer_ban(w, &bans[1]));
        ASSERT_OK(state_writer_failures(w, "other", &a3, w3, ELEMENTSOF(w3)));
        ASSERT_OK(state_writer_failures(w, "other", &a3, w3, 0)); /* writes nothing */
        ASSERT_OK(state_writer_ban(w, &bans[2]));
        ASSERT_OK(state_writer_ban(w, &bans[3]));
        ASSERT_OK(state_writer_failures_prefix(w, "other", &p4, w2, ELEMENTSOF(w2)));
        ASSERT_OK(state_writer_history(w, &history[0]));
        ASSERT_OK(state_writer_history(w, &history[1]));
        ASSERT_EQ(state_writer_history(w, &(BanRecord) { .address = a1 }), -EINVAL);
        ASSERT_OK(state_writer_commit(w));

        /* The loader's order: cursor, bans, windows. */
        ASSERT_OK(strv_extend(expected, "cursor s=f0079243600e4b54bad236821d43e17d;i=2a;b=0123456789abcdef0123456789abcdef;m=f4241;t=60a24182d8240;x=1eb310998adf8f5f"));
        for (size_t i = 0; i < ELEMENTSOF(bans); i++) {
                _cleanup_free_ char *s = describe_ban(&bans[i]);
                ASSERT_OK(strv_extend(expected, s));
        }
        _cleanup_free_ char *s1 = describe_window("vpopmail", &p1, w1, ELEMENTSOF(w1));
        _cleanup_free_ char *s2 = describe_window("vpopmail", &p2, w2, ELEMENTSOF(w2));
        _cleanup_free_ char *s3 = describe_window("other", &p3, w3, ELEMENTSOF(w3));
        _cleanup_free_ char *s4 = describe_window("other", &p4, w2, ELEMENTSOF(w2));
        ASSERT_OK(strv_extend(expected, s1));
        ASSERT_OK(strv_extend(expected, s2));
        ASSERT_OK(strv_extend(expected, s3));
        ASSERT_OK(strv_extend(expected, s4));
        for (size_t i = 0; i < ELEMENTSOF(history); i++) {
                _cleanup_free_ char *s = describe_history(&history[i]);
                ASSERT_OK(strv_extend(expected, s));
        }
}

static void assert_calls(char **calls, char **expected) {
        size_t n = strv_length(expected);

        for (size_t i = 0; i < n; i++)
                ASSERT_STREQ(i < strv_length(calls) ? calls[i] : NULL, expected[i]);
        ASSERT_EQ(strv_length(calls), n);
}

static void assert_loads(const char *dir, char **expected) {
        _cleanup_free_ char *error = NULL;
        Seen seen = { .keep = true };

        ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), 0);
        ASSERT_TRUE(!error);
        assert_calls(seen.calls, expected);
        strv_free(seen.calls);
}

/* Loads data from memory; checks that a failure made no callback and came with a message. */
static int load_data(const char *data, size_t size, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        Seen seen = { .keep = true };
        int r;

        r = state_load_buffer(data, size, &callbacks, &seen, &error);
        if (r < 0) {
                ASSERT_EQ(strv_length(seen.calls), 0);
                ASSERT_TRUE(error);
        } else
                ASSERT_TRUE(!error);
        strv_free(seen.calls);
        if (ret_error)
                *ret_error = TAKE_PTR(error);
        return r;
}

TEST(round_trip) {
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_free_ char *data = NULL, *files = NULL;
        char dir[64];
        size_t size;

        make_dir(dir);
        write_example(dir, &expected);
        assert_loads(dir, expected);

        data = read_state_file(dir, &size);
        fprintf(stderr, "%s", data);
        ASSERT_TRUE(strncmp(data, "vpopguard-state 4\n", 18) == 0);
        ASSERT_TRUE(strstr(data, "\nend 11 "));
        ASSERT_TRUE(strstr(data, "\nban vpopmail 2001:db8:1:2::/64 3 10 20 journal 1\n"));
        ASSERT_TRUE(strstr(data, "\nfail other 2001:db8:9:9::/64 5\n"));
        ASSERT_TRUE(strstr(data, "\nban vpop-mail_2.x 2001:db8::7 0 0 18446744073709551615 manual 3\n"));
        ASSERT_TRUE(strstr(data, "\nban J 198.51.100.1 4294967295 1 2 manual 4294967295\n"));
        ASSERT_TRUE(strstr(data, "\nhistory 192.0.2.7 2 1700000000000000\n"));
        ASSERT_TRUE(strstr(data, "\nhistory 2001:db8::9 4294967295 18446744073709551615\n"));
        ASSERT_TRUE(strstr(data, "\nfail other 203.0.113.255 0 18446744073709551615@s=ffffffffffffffffffffffffffffffff;"));
        ASSERT_TRUE(strstr(data, "\nfail vpopmail 2001:db8::1:0:0:1 5\n"));

        /* Replacing a state leaves the new one and nothing else. */
        strv_free(expected);
        write_example(dir, &expected);
        files = list_dir(dir);
        ASSERT_STREQ(files, "state");

        remove_dir(dir);
}

TEST(empty_state) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        _cleanup_free_ char *data = NULL;
        char dir[64];
        size_t size;

        make_dir(dir);
        ASSERT_OK(state_writer_open(dir, &w));
        ASSERT_OK(state_writer_commit(w));
        ASSERT_EQ(state_writer_commit(w), -ESTALE);
        assert_loads(dir, NULL);
        data = read_state_file(dir, &size);
        /* FNV-1a 64 of "vpopguard-state 4\n", computed independently. */
        ASSERT_STREQ(data, "vpopguard-state 4\nend 0 dc4c64e9be4437cd\n");
        remove_dir(dir);
}

TEST(missing) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        char dir[64], sub[96];

        make_dir(dir);
        snprintf(sub, sizeof sub, "%s/nonexistent", dir);
        ASSERT_EQ(state_writer_open(sub, &w), -ENOENT);
        ASSERT_TRUE(!w);
        ASSERT_EQ(state_load(sub, &callbacks, NULL, NULL), -ENOENT);
        ASSERT_EQ(state_load(dir, &callbacks, NULL, NULL), -ENOENT);
        remove_dir(dir);
}

/* The daemon scans its state directory for a crash's temporary files only when it may hold
 * one: state_writer_open_full() without remove_stale leaves them, with it removes them; a
 * writer that is given up removes its own file either way. */
TEST(open_full) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        _cleanup_free_ char *files = NULL, *data = NULL;
        char dir[64], stale[128];
        size_t size;
        int fd;

        make_dir(dir);
        snprintf(stale, sizeof stale, "%s/%sAbC123", dir, STATE_FILE_TEMP_PREFIX);
        fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ASSERT_OK(fd);
        close(fd);
        ASSERT_EQ(state_writer_open_full(NULL, false, &w), -EINVAL);

        for (int i = 0; i < 3; i++) {
                char cursor[32];
                snprintf(cursor, sizeof cursor, "cursor-%d", i);
                ASSERT_OK(state_writer_open_full(dir, false, &w));
                ASSERT_OK(state_writer_cursor(w, cursor));
                ASSERT_OK(state_writer_commit(w));
                w = state_writer_free(w);
                free(data);
                data = read_state_file(dir, &size);
                ASSERT_TRUE(strstr(data, cursor) != NULL);
        }
        ASSERT_OK(state_writer_open_full(dir, false, &w));
        w = state_writer_free(w);
        files = list_dir(dir);
        ASSERT_STREQ(files, ".#state.AbC123 state");
        free(files);

        ASSERT_OK(state_writer_open_full(dir, true, &w));
        w = state_writer_free(w);
        files = list_dir(dir);
        ASSERT_STREQ(files, "state");
        remove_dir(dir);
}

TEST(writer_validation) {
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        _cleanup_free_ char *files = NULL;
        JournalPosition p = position(NULL, 1);
        Address a = addr("192.0.2.1"), bad = { .family = AF_UNIX };
        Ban b = { .address = a, .jail = "j", .origin = BAN_ORIGIN_JOURNAL };
        char dir[64], stale[128];
        int fd;

        make_dir(dir);
        write_example(dir, &expected);

        /* A temporary file left by a crash is cleaned up. */
        snprintf(stale, sizeof stale, "%s/%sAbC123", dir, STATE_FILE_TEMP_PREFIX);
        fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ASSERT_OK(fd);
        close(fd);

        ASSERT_OK(state_writer_open(dir, &w));
        ASSERT_EQ(access(stale, F_OK), -1);

        ASSERT_EQ(state_writer_cursor(w, ""), -EINVAL);
        ASSERT_EQ(state_writer_cursor(w, "with space"), -EINVAL);
        ASSERT_EQ(state_writer_cursor(w, "new\nline"), -EINVAL);
        ASSERT_EQ(state_writer_cursor(w, "caf\xc3\xa9"), -EINVAL);
        ASSERT_OK(state_writer_cursor(w, "any-other;cursor=format"));
        ASSERT_EQ(state_writer_cursor(w, "x"), -EEXIST);

        ASSERT_EQ(state_writer_failures(w, "", &a, &p, 1), -EINVAL);
        ASSERT_EQ(state_writer_failures(w, "a b", &a, &p, 1), -EINVAL);
        ASSERT_EQ(state_writer_failures(w, "0123456789012345678901234567890123456789012345678901234567890123x", &a, &p, 1), -EINVAL);
        ASSERT_OK(state_writer_failures(w, "0123456789012345678901234567890123456789012345678901234567890123", &a, &p, 1));
        ASSERT_EQ(state_writer_failures(w, "j", &bad, &p, 1), -EINVAL);
        ASSERT_EQ(state_writer_ban(w, &(Ban) { .address = bad, .jail = "j" }), -EINVAL);
        ASSERT_EQ(state_writer_ban(w, &(Ban) { .address = a, .jail = "j/k" }), -EINVAL);
        b.origin = _BAN_ORIGIN_MAX;
        ASSERT_EQ(state_writer_ban(w, &b), -EINVAL);

        /* An uncommitted writer leaves the old state as it was, and no temporary file. */
        w = state_writer_free(w);
        files = list_dir(dir);
        ASSERT_STREQ(files, "state");
        assert_loads(dir, expected);

        remove_dir(dir);
}

TEST(not_regular) {
        _cleanup_strv_free_ char **expected = NULL;
        char dir[64], path[96], target[96];

        make_dir(dir);
        snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE_NAME);
        snprintf(target, sizeof target, "%s/elsewhere", dir);

        /* A symlink is not followed, even to a valid state file. */
        write_example(dir, &expected);
        ASSERT_OK(rename(path, target));
        ASSERT_OK(symlink(target, path));
        for (int i = 0; i < 3; i++) {
                _cleanup_free_ char *error = NULL;
                Seen seen = { .keep = true };

                ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), -EBADMSG);
                ASSERT_STREQ(error, "not a regular file");
                ASSERT_EQ(strv_length(seen.calls), 0);

                if (i == 0) {
                        ASSERT_OK(unlink(path));
                        ASSERT_OK(mkfifo(path, 0600)); /* must not block */
                } else if (i == 1) {
                        ASSERT_OK(unlink(path));
                        ASSERT_OK(mkdir(path, 0700));
                }
        }
        ASSERT_OK(rmdir(path));
        ASSERT_OK(unlink(target));
        remove_dir(dir);
}

TEST(callback_errors) {
        _cleanup_strv_free_ char **expected = NULL;
        char dir[64];

        make_dir(dir);
        write_example(dir, &expected);

        for (int k = 1; k <= (int) strv_length(expected); k++) {
                Seen seen = { .keep = true, .fail_at = k };
                _cleanup_free_ char *error = NULL;

                ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), -EUCLEAN);
                ASSERT_TRUE(!error);
                ASSERT_EQ(strv_length(seen.calls), k);
                strv_free(seen.calls);
        }

        /* Without callbacks, loading just verifies. */
        ASSERT_EQ(state_load(dir, NULL, NULL, NULL), 0);
        ASSERT_EQ(state_load(dir, &(StateCallbacks) {}, NULL, NULL), 0);
        remove_dir(dir);
}

TEST(truncation) {
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_free_ char *data = NULL;
        char dir[64];
        size_t size;

        make_dir(dir);
        write_example(dir, &expected);
        data = read_state_file(dir, &size);

        /* Through the file as well as from memory, at every length. */
        for (size_t n = 0; n < size; n++) {
                _cleanup_free_ char *error = NULL;
                Seen seen = { .keep = true };

                write_state_file(dir, data, n);
                ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), -EBADMSG);
                ASSERT_TRUE(error);
                ASSERT_EQ(strv_length(seen.calls), 0);
                ASSERT_EQ(load_data(data, n, NULL), -EBADMSG);
        }
        write_state_file(dir, data, size);
        assert_loads(dir, expected);
        remove_dir(dir);
}

TEST(flipped_bytes) {
        static const uint8_t masks[] = { 0x01, 0x02, 0x20, 0x40, 0x80, 0xff };
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_free_ char *data = NULL;
        char dir[64];
        size_t size;

        make_dir(dir);
        write_example(dir, &expected);
        data = read_state_file(dir, &size);
        remove_dir(dir);

        for (size_t i = 0; i < size; i++)
                for (size_t m = 0; m < ELEMENTSOF(masks); m++) {
                        int r;

                        data[i] ^= masks[m];
                        r = load_data(data, size, NULL);
                        if (r != -EBADMSG && r != -EPROTONOSUPPORT)
                                fprintf(stderr, "offset %zu mask %02x: %d\n", i, masks[m], r);
                        ASSERT_TRUE(r == -EBADMSG || r == -EPROTONOSUPPORT);
                        data[i] ^= masks[m];
                }
        ASSERT_EQ(load_data(data, size, NULL), 0);
}

static uint64_t fnv1a(const char *p, size_t n) {
        uint64_t h = UINT64_C(14695981039346656037);
        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) p[i]) * UINT64_C(1099511628211);
        return h;
}

/* A file with the given records and a correct trailer, so that the parser itself is tested. */
static char *make_file_version(unsigned version, const char *records, size_t n_records, size_t *ret_size) {
        char *s = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&s, &size);

        ASSERT_TRUE(m);
        fprintf(m, "vpopguard-state %u\n%s", version, records);
        fflush(m);
        fprintf(m, "end %zu %016" PRIx64 "\n", n_records, fnv1a(s, size));
        ASSERT_EQ(fclose(m), 0);
        *ret_size = size;
        return s;
}

/* Version 1, as an older vpopguard wrote it: an upgrade must read it. */
static char *make_file(const char *records, size_t n_records, size_t *ret_size) {
        return make_file_version(1, records, n_records, ret_size);
}

static void assert_bad(const char *data, size_t size, int expected_r, const char *expected_msg) {
        _cleanup_free_ char *error = NULL;
        int r = load_data(data, size, &error);

        if (r != expected_r || !strstr(error, expected_msg))
                fprintf(stderr, "input \"%.*s\": %d, \"%s\"\n", (int) size, data, r, error);
        ASSERT_EQ(r, expected_r);
        ASSERT_TRUE(strstr(error, expected_msg));
}

TEST(damage) {
        static const struct {
                const char *data;
                int r;
                const char *msg;
        } table[] = {
                { "", -EBADMSG, "empty file" },
                { "\n", -EBADMSG, "not a vpopguard state file" },
                { "hello world\n", -EBADMSG, "not a vpopguard state file" },
                { "vpopguard-state 1", -EBADMSG, "truncated header" },
                { "vpopguard-state 1\n", -EBADMSG, "no trailer" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134", -EBADMSG, "incomplete last line" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134\nend 0 dc3b62e9be35c134\n", -EBADMSG, "checksum" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134\nx", -EBADMSG, "incomplete last line" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134\n\n", -EBADMSG, "line 2: data after the trailer" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134\nfoo\n", -EBADMSG, "line 2: data after the trailer" },
                { "vpopguard-state 1\nend 0 DC3B62E9BE35C134\n", -EBADMSG, "invalid trailer" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c13\n", -EBADMSG, "invalid trailer" },
                { "vpopguard-state 1\nend 00 dc3b62e9be35c134\n", -EBADMSG, "invalid trailer" },
                { "vpopguard-state 1\nend 0  dc3b62e9be35c134\n", -EBADMSG, "invalid trailer" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c134 \n", -EBADMSG, "invalid trailer" },
                { "vpopguard-state 1\nend 1 dc3b62e9be35c134\n", -EBADMSG, "counts 1 records" },
                { "vpopguard-state 1\nend 0 dc3b62e9be35c135\n", -EBADMSG, "checksum" },
                { "vpopguard-state 1\r\nend 0 dc3b62e9be35c134\n", -EBADMSG, "invalid header" },
                { "vpopguard-state 01\nend 0 dc3b62e9be35c134\n", -EBADMSG, "invalid header" },
                { "vpopguard-state 0\nend 0 dc3b62e9be35c134\n", -EBADMSG, "invalid header" },
                { "vpopguard-state \nend 0 dc3b62e9be35c134\n", -EBADMSG, "invalid header" },
                { "vpopguard-state 1 \nend 0 dc3b62e9be35c134\n", -EBADMSG, "invalid header" },
                { "vpopguard-state 99999999999999999999999\n", -EBADMSG, "invalid header" },
                { "vpopguard-state 5\n", -EPROTONOSUPPORT, "version 5 is newer" },
                { "vpopguard-state 5 zstd\nwhatever\n", -EPROTONOSUPPORT, "version 5 is newer" },
                { "vpopguard-state 17\nend 0 0000000000000000\n", -EPROTONOSUPPORT, "version 17 is newer" },
        };
        char nul[] = "vpopguard-state 1\n\0nd 0 dc3b62e9be35c134\n";

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                assert_bad(table[i].data, strlen(table[i].data), table[i].r, table[i].msg);
        assert_bad(nul, sizeof nul - 1, -EBADMSG, "line 2: NUL byte");
        ASSERT_EQ(load_data("vpopguard-state 1\nend 0 dc3b62e9be35c134\n", 41, NULL), 0);
}

TEST(bad_records) {
        static const struct {
                const char *line;
                const char *msg;
        } table[] = {
                { "", "line 2: empty line" },
                { " ", "line 2: empty field" },
                { "ban  j 192.0.2.1 1 2 3 journal", "line 2: empty field" },
                { "ban j 192.0.2.1 1 2 3 journal ", "line 2: empty field" },
                { "ban j 192.0.2.1 1 2 3 journal\r", "invalid origin \"journal\\x0d\"" },
                { "bam j 192.0.2.1 1 2 3 journal", "line 2: unknown record \"bam\"" },
                { "BAN j 192.0.2.1 1 2 3 journal", "unknown record" },
                { "end 0 0000000000000000", "line 2: trailer before the end" },
                { "ban", "missing fields" },
                { "ban j 192.0.2.1 1 2 3", "missing fields" },
                { "ban j 192.0.2.1 1 2 3 journal x", "too many fields" },
                { "ban j/k 192.0.2.1 1 2 3 journal", "invalid jail name \"j/k\"" },
                { "ban 0123456789012345678901234567890123456789012345678901234567890123x 192.0.2.1 1 2 3 journal", "invalid jail name" },
                { "ban j 1.2.3 1 2 3 journal", "line 2: invalid address \"1.2.3\"" },
                { "ban j 192.0.2.01 1 2 3 journal", "invalid address" },
                { "ban j example.com 1 2 3 journal", "invalid address" },
                { "ban j 192.0.2.1 -1 2 3 journal", "invalid failure count" },
                { "ban j 192.0.2.1 4294967296 2 3 journal", "invalid failure count" },
                { "ban j 192.0.2.1 1 02 3 journal", "invalid time" },
                { "ban j 192.0.2.1 1 2 18446744073709551616 journal", "invalid time" },
                { "ban j 192.0.2.1 1 2 0x3 journal", "invalid time" },
                { "ban j 192.0.2.1 1 2 3 Journal", "invalid origin" },
                { "fail j 192.0.2.1", "no failures" },
                { "fail j", "missing fields" },
                { "fail j 192.0.2.1 1 x", "failure 2: invalid time" },
                { "fail j 192.0.2.1 @s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1", "failure 1: invalid time" },
                { "fail j 192.0.2.1 16@", "failure 1: invalid cursor" },
                /* t= (hex) must be the realtime (decimal) */
                { "fail j 192.0.2.1 10@s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1", "failure 1: invalid cursor" },
                { "fail j 192.0.2.1 16 16@s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=01", "failure 2: invalid cursor" },
                { "fail j 192.0.2.1 16@s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1@1", "invalid cursor" },
                { "fail j 192.0.2.1 16@16", "invalid cursor" },
                { "cursor", "line 2: invalid cursor" },
                { "cursor a\tb", "invalid cursor" },
                { "cursor a b", "invalid cursor" },
                { "cursor a\ncursor b", "line 3: second cursor" },
                { "ban j 192.0.2.1 1 2 3 journal\nfail j 192.0.2.1 1 2\n\n", "line 4: empty line" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *data = NULL;
                char records[256];
                size_t n = 1, size;

                for (const char *p = table[i].line; *p; p++)
                        n += *p == '\n';
                snprintf(records, sizeof records, "%s\n", table[i].line);
                data = make_file(records, n, &size);
                assert_bad(data, size, -EBADMSG, table[i].msg);
        }

        /* The valid forms next to them, to show the table fails for the reason it names. */
        {
                _cleanup_free_ char *data = NULL;
                size_t size;

                data = make_file("ban j 192.0.2.1 1 2 3 journal\n"
                                 "ban 0123456789012345678901234567890123456789012345678901234567890123 2001:db8::1 4294967295 0 18446744073709551615 manual\n"
                                 "fail j 192.0.2.1 1 0\n"
                                 "fail j 2001_db8__1 16@s=f0079243600e4b54bad236821d43e17d;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=10;x=1\n"
                                 "cursor a;b=c\n", 5, &size);
                ASSERT_EQ(load_data(data, size, NULL), 0);
        }
}

/* Version 2's ban number and history records; a version 1 file (before an upgrade) still loads,
 * its bans as first bans. */
TEST(version_2_records) {
        static const struct {
                unsigned version;
                const char *line;
                const char *msg;
        } table[] = {
                { 2, "ban j 192.0.2.1 1 2 3 journal", "missing fields" },
                { 2, "ban j 192.0.2.1 1 2 3 journal 0", "invalid ban number \"0\"" },
                { 2, "ban j 192.0.2.1 1 2 3 journal 4294967296", "invalid ban number" },
                { 2, "ban j 192.0.2.1 1 2 3 journal 1 1", "too many fields" },
                { 2, "history 192.0.2.1 1", "missing fields" },
                { 2, "history 192.0.2.1 1 2 3", "too many fields" },
                { 2, "history 192.0.2.1 0 2", "invalid ban count \"0\"" },
                { 2, "history 192.0.2.1 01 2", "invalid ban count" },
                { 2, "history 192.0.2.1 4294967296 2", "invalid ban count" },
                { 2, "history 192.0.2 1 2", "invalid address" },
                { 2, "history 192.0.2.1 1 -2", "invalid time" },
                { 1, "history 192.0.2.1 1 2", "history record in a version 1 file" },
                { 1, "ban j 192.0.2.1 1 2 3 journal 1", "too many fields" },
        };
        _cleanup_free_ char *error = NULL;
        Seen seen = { .keep = true };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *data = NULL;
                char records[256];
                size_t size;

                snprintf(records, sizeof records, "%s\n", table[i].line);
                data = make_file_version(table[i].version, records, 1, &size);
                assert_bad(data, size, -EBADMSG, table[i].msg);
        }

        _cleanup_free_ char *v2 = NULL, *v1 = NULL;
        size_t size;
        v2 = make_file_version(2, "ban j 192.0.2.1 1 2 3 journal 4\nhistory 2001:db8::1 7 5\n", 2, &size);
        ASSERT_EQ(state_load_buffer(v2, size, &callbacks, &seen, &error), 0);
        ASSERT_EQ(strv_length(seen.calls), 2);
        ASSERT_STREQ(seen.calls[0], "ban j 192.0.2.1 1 2 3 journal #4");
        ASSERT_STREQ(seen.calls[1], "history 2001:db8::1 7 5");
        seen.calls = strv_free(seen.calls);

        v1 = make_file("ban j 192.0.2.1 1 2 3 journal\n", 1, &size);
        ASSERT_EQ(state_load_buffer(v1, size, &callbacks, &seen, &error), 0);
        ASSERT_EQ(strv_length(seen.calls), 1);
        ASSERT_STREQ(seen.calls[0], "ban j 192.0.2.1 1 2 3 journal #1");
        strv_free(seen.calls);
}

/* Version 3's prefixes in ban and fail records: exact (host bits clear, a length the family
 * has), and only from version 3 on; older files still load. */
TEST(version_3_prefixes) {
        static const struct {
                unsigned version;
                const char *line;
                const char *msg;
        } table[] = {
                { 2, "ban j 2001:db8:1:2::/64 1 2 3 journal 1", "invalid address" },
                { 1, "fail j 192.0.2.0/24 5", "invalid address" },
                { 3, "ban j 2001:db8:1:2::1/64 1 2 3 journal 1", "invalid prefix" },
                { 3, "fail j 192.0.2.1/24 5", "invalid prefix" },
                { 3, "ban j 2001:db8:1:2::/129 1 2 3 journal 1", "invalid address" },
                { 3, "ban j 192.0.2.0/33 1 2 3 journal 1", "invalid address" },
                { 3, "ban j 192.0.2.0/024 1 2 3 journal 1", "invalid address" },
                { 3, "ban j 192.0.2.0/ 1 2 3 journal 1", "invalid address" },
                { 3, "ban j /24 1 2 3 journal 1", "invalid address" },
                { 3, "fail j 2001:db8::/64/64 5", "invalid address" },
        };
        _cleanup_free_ char *error = NULL, *v3 = NULL;
        Seen seen = { .keep = true };
        size_t size;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *data = NULL;
                char records[256];

                snprintf(records, sizeof records, "%s\n", table[i].line);
                data = make_file_version(table[i].version, records, 1, &size);
                assert_bad(data, size, -EBADMSG, table[i].msg);
        }

        v3 = make_file_version(3, "ban j 2001:db8:1:2::/64 1 2 3 journal 4\n"
                                  "ban j 192.0.2.7/32 1 2 3 manual 1\n"
                                  "ban j 198.51.100.0/24 1 2 3 journal 1\n"
                                  "fail j 2001:db8:9::/48 5\n"
                                  "fail j 2001:db8::7 6\n", 5, &size);
        ASSERT_EQ(state_load_buffer(v3, size, &callbacks, &seen, &error), 0);
        ASSERT_EQ(strv_length(seen.calls), 5);
        ASSERT_STREQ(seen.calls[0], "ban j 2001:db8:1:2::/64 1 2 3 journal #4");
        ASSERT_STREQ(seen.calls[1], "ban j 192.0.2.7 1 2 3 manual #1");
        ASSERT_STREQ(seen.calls[2], "ban j 198.51.100.0/24 1 2 3 journal #1");
        ASSERT_STREQ(seen.calls[3], "fail j 2001:db8:9::/48 5");
        ASSERT_STREQ(seen.calls[4], "fail j 2001:db8::7 6");
        strv_free(seen.calls);
}

/* Random damage behind a correct checksum reaches every corner of the parser: no crash, no
 * sanitizer report, no partial load. */
TEST(fuzz) {
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_free_ char *data = NULL;
        const char *body, *trailer;
        char dir[64];
        size_t size, n_ok = 0;
        unsigned seed = 12345;

        make_dir(dir);
        write_example(dir, &expected);
        data = read_state_file(dir, &size);
        remove_dir(dir);
        body = strchr(data, '\n') + 1;
        trailer = strstr(data, "\nend ") + 1;

        for (unsigned iter = 0; iter < 20000; iter++) {
                _cleanup_free_ char *records = NULL, *file = NULL;
                size_t n = (size_t) (trailer - body), file_size;
                static const char alphabet[] = " \n@;=:._-0123456789abcdefx\xff\t";

                records = malloc(n + 1);
                ASSERT_TRUE(records);
                memcpy(records, body, n);
                records[n] = 0;
                for (unsigned k = 0, m = 1 + rand_r(&seed) % 4; k < m; k++)
                        records[rand_r(&seed) % n] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
                if (memchr(records, 0, n))
                        continue;
                file = make_file(records, 7, &file_size);
                if (load_data(file, file_size, NULL) == 0)
                        n_ok++;
        }
        fprintf(stderr, "%zu of 20000 mutations still valid\n", n_ok);
}

static double elapsed(const struct timespec *start) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

TEST(million_windows) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        _cleanup_free_ char *error = NULL;
        JournalPosition base = position(cursor_main, UINT64_C(0x60a24182d8240)), f[3];
        Seen seen = {};
        struct timespec start;
        struct stat st;
        char dir[64], path[96];
        size_t n_positions = 0;

        make_dir(dir);
        clock_gettime(CLOCK_MONOTONIC, &start);
        ASSERT_OK(state_writer_open(dir, &w));
        ASSERT_OK(state_writer_cursor(w, cursor_main));
        for (uint32_t i = 0; i < 1000000; i++) {
                Address a = { .family = AF_INET, .bytes = { 10, (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i } };
                size_t n = 1 + i % 3;

                for (size_t k = 0; k < n; k++) {
                        f[k] = base;
                        f[k].realtime += i * 10 + k;
                        f[k].seqnum += i * 3 + k;
                        if (k == 1) /* a mix of failures with and without a cursor */
                                f[k].seqnum_id = f[k].boot_id = JOURNAL_ID_NONE;
                }
                ASSERT_OK(state_writer_failures(w, "vpopmail", &a, f, n));
                n_positions += n;
        }
        ASSERT_OK(state_writer_commit(w));
        snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE_NAME);
        ASSERT_OK(stat(path, &st));
        fprintf(stderr, "wrote 1000000 windows (%zu failures, %jd bytes) in %.2fs\n",
                n_positions, (intmax_t) st.st_size, elapsed(&start));

        clock_gettime(CLOCK_MONOTONIC, &start);
        ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), 0);
        ASSERT_EQ(seen.n_windows, 1000000);
        ASSERT_EQ(seen.n_positions, n_positions);
        fprintf(stderr, "loaded them in %.2fs\n", elapsed(&start));
        remove_dir(dir);
}

/* Runs in a child in its own mount namespace, on a small tmpfs: a full and a read-only file
 * system. Exits 77 if namespaces are not available (not root). */
static void filesystem_errors_child(const char *dir) {
        _cleanup_strv_free_ char **expected = NULL;
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        JournalPosition f[3];
        Address a = addr("192.0.2.1");
        char filler[96];
        int r, fd;

        if (unshare(CLONE_NEWNS) < 0)
                _exit(77);
        ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        ASSERT_OK(mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"));
        write_example(dir, &expected);

        for (size_t k = 0; k < ELEMENTSOF(f); k++)
                f[k] = position(cursor_main, UINT64_C(0x60a24182d8240));

        /* Full during the additions: the buffer is flushed long before commit. */
        ASSERT_OK(state_writer_open(dir, &w));
        for (r = 0; r >= 0;)
                r = state_writer_failures(w, "vpopmail", &a, f, ELEMENTSOF(f));
        ASSERT_EQ(r, -ENOSPC);
        ASSERT_EQ(state_writer_failures(w, "vpopmail", &a, f, 1), -ENOSPC);
        ASSERT_EQ(state_writer_commit(w), -ENOSPC);
        w = state_writer_free(w);
        _cleanup_free_ char *files = list_dir(dir);
        ASSERT_STREQ(files, "state");
        assert_loads(dir, expected);

        /* Full at commit: everything fits the buffer, not the disk. */
        snprintf(filler, sizeof filler, "%s/filler", dir);
        fd = open(filler, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ASSERT_OK(fd);
        for (char block[4096] = {}; write(fd, block, sizeof block) == (ssize_t) sizeof block;)
                ;
        close(fd);
        ASSERT_OK(state_writer_open(dir, &w));
        for (int i = 0; i < 100; i++)
                ASSERT_OK(state_writer_failures(w, "vpopmail", &a, f, ELEMENTSOF(f)));
        ASSERT_EQ(state_writer_commit(w), -ENOSPC);
        w = state_writer_free(w);
        ASSERT_OK(unlink(filler));
        free(files);
        files = list_dir(dir);
        ASSERT_STREQ(files, "state");
        assert_loads(dir, expected);

        /* Read-only. */
        ASSERT_OK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, "size=256k,mode=0700"));
        ASSERT_EQ(state_writer_open(dir, &w), -EROFS);
        assert_loads(dir, expected);

        _exit(0);
}

TEST(filesystem_errors) {
        char dir[64];
        int status;
        pid_t pid;

        if (geteuid() != 0) {
                skip_part("the full and read-only file system tests: not root");
                return;
        }
        make_dir(dir);
        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0)
                filesystem_errors_child(dir);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_OK(rmdir(dir)); /* the mount went with the namespace */
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                skip_part("the full and read-only file system tests: no mount namespace");
                return;
        }
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* Version 4's fleet peers' positions: written and read back in order, checked like the cursor,
 * one per peer, and unknown to older versions. */
TEST(version_4_peers) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        _cleanup_free_ char *data = NULL, *error = NULL;
        Seen seen = { .keep = true };
        char dir[64];
        size_t size;

        make_dir(dir);
        ASSERT_OK(state_writer_open(dir, &w));
        ASSERT_OK(state_writer_cursor(w, "s=1;i=2"));
        ASSERT_OK(state_writer_peer_cursor(w, "10.77.0.1", "s=a;i=1"));
        ASSERT_OK(state_writer_peer_cursor(w, "collector.example", "s=b;i=2"));
        ASSERT_EQ(state_writer_peer_cursor(w, "a/b", "s=c"), -EINVAL);
        ASSERT_EQ(state_writer_peer_cursor(w, "*", "s=c"), -EINVAL);
        ASSERT_EQ(state_writer_peer_cursor(w, "ok", "two words"), -EINVAL);
        ASSERT_EQ(state_writer_peer_cursor(w, "ok", ""), -EINVAL);
        ASSERT_OK(state_writer_commit(w));
        ASSERT_EQ(state_load(dir, &callbacks, &seen, &error), 0);
        ASSERT_EQ(strv_length(seen.calls), 3);
        ASSERT_STREQ(seen.calls[0], "cursor s=1;i=2");
        ASSERT_STREQ(seen.calls[1], "peer 10.77.0.1 s=a;i=1");
        ASSERT_STREQ(seen.calls[2], "peer collector.example s=b;i=2");
        seen.calls = strv_free(seen.calls);
        remove_dir(dir);

        static const struct {
                unsigned version;
                const char *line;
                const char *msg;
        } table[] = {
                { 3, "peer a s=1", "unknown record" },
                { 4, "peer a", "invalid peer position" },
                { 4, "peer .a s=1", "invalid peer position" },
                { 4, "peer a/b s=1", "invalid peer position" },
                { 4, "peer a s=1 s=2", "invalid peer position" },
                { 4, "peer a s=1\npeer a s=2", "second position of a peer" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char records[256];
                snprintf(records, sizeof records, "%s\n", table[i].line);
                data = make_file_version(table[i].version, records, strchr(table[i].line, '\n') ? 2 : 1, &size);
                assert_bad(data, size, -EBADMSG, table[i].msg);
                free(data);
                data = NULL;
        }
}

int main(void) {
        RUN(round_trip);
        RUN(empty_state);
        RUN(missing);
        RUN(open_full);
        RUN(writer_validation);
        RUN(not_regular);
        RUN(callback_errors);
        RUN(truncation);
        RUN(flipped_bytes);
        RUN(damage);
        RUN(bad_records);
        RUN(version_2_records);
        RUN(version_3_prefixes);
        RUN(version_4_peers);
        RUN(fuzz);
        RUN(filesystem_errors);
        RUN(million_windows);
        journal_position_table_reset();
        return 0;
}
