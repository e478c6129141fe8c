/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state file loader, state_load_buffer(). The first byte of the input says how the rest
 * becomes a file, so that the fuzzer gets past the checksum to the line parser:
 *   bit 0: append a correct trailer ("end N CHECKSUM", N counting the lines after the first);
 *   bit 1: prepend the header line "vpopguard-state 1" (or, with bit 2, "vpopguard-state 2";
 *          with bit 3, "vpopguard-state 3").
 * A first byte of 0 leaves the file as it is (real and damaged files in the corpus start with a
 * NUL byte). Properties: what the callbacks get is valid; an accepted file, written back with
 * the StateWriter (to a directory in /dev/shm or $TMPDIR) and loaded again, gives the same
 * callbacks. */

#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "journal-position.h"
#include "state-file.h"

#define HEADER_LINE "vpopguard-state 1\n"
#define HEADER_LINE_2 "vpopguard-state 2\n"
#define HEADER_LINE_3 "vpopguard-state 3\n"


static char dir[PATH_MAX];

/* What the loader handed out, as text; and, the first time, the same records to a writer. */
typedef struct Seen {
        FILE *text;
        StateWriter *writer; /* NULL when loading the written file */
} Seen;

static int on_cursor(const char *cursor, void *userdata) {
        Seen *s = userdata;

        ASSERT_TRUE(cursor && *cursor);
        ASSERT_LE(strlen(cursor), (size_t) STATE_CURSOR_MAX);
        for (const char *p = cursor; *p; p++)
                ASSERT_TRUE(*p > ' ' && *p < 0x7f);
        fprintf(s->text, "cursor %s\n", cursor);
        if (s->writer)
                ASSERT_EQ(state_writer_cursor(s->writer, cursor), 0);
        return 0;
}

static int on_ban(const Ban *b, void *userdata) {
        char addr[ADDRESS_PREFIX_STRING_MAX];
        AddressPrefix p = ban_prefix(b);
        Seen *s = userdata;

        ASSERT_TRUE(b->address.family == AF_INET || b->address.family == AF_INET6);
        ASSERT_TRUE(b->prefixlen <= address_family_bits(b->address.family));
        ASSERT_TRUE(address_equal(&p.address, &b->address)); /* host bits clear */
        ASSERT_TRUE(ban_origin_to_string(b->origin));
        ASSERT_TRUE(b->jail[0] != 0);
        ASSERT_TRUE(b->count > 0);
        fprintf(s->text, "ban %s %s %u %" PRIu64 " %" PRIu64 " %s %u\n", b->jail, address_prefix_to_string(&p, addr),
                b->failures, b->banned_usec, b->expires_usec, ban_origin_to_string(b->origin), b->count);
        if (s->writer)
                ASSERT_EQ(state_writer_ban(s->writer, b), 0);
        return 0;
}

static int on_failures(const char *jail, const AddressPrefix *a, const JournalPosition *f, size_t n, void *userdata) {
        char addr[ADDRESS_PREFIX_STRING_MAX], cursor[JOURNAL_CURSOR_MAX];
        Seen *s = userdata;
        int r;

        ASSERT_TRUE(jail && *jail);
        ASSERT_TRUE(a->address.family == AF_INET || a->address.family == AF_INET6);
        ASSERT_TRUE(a->prefixlen <= address_family_bits(a->address.family));
        ASSERT_TRUE(n > 0);
        fprintf(s->text, "fail %s %s", jail, address_prefix_to_string(a, addr));
        for (size_t i = 0; i < n; i++) {
                fprintf(s->text, " %" PRIu64, f[i].realtime);
                r = journal_position_to_cursor(&f[i], cursor);
                if (r >= 0) {
                        ASSERT_EQ((size_t) r, strlen(cursor));
                        fprintf(s->text, "@%s", cursor);
                }
        }
        fputc('\n', s->text);
        if (s->writer) {
                r = state_writer_failures_prefix(s->writer, jail, a, f, n);
                /* The writer reserves room for the longest failure field, so a line that the
                 * loader accepts near STATE_LINE_MAX may be one it would not write. */
                ASSERT_TRUE(r == 0 || r == -E2BIG);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_history(const BanRecord *r, void *userdata) {
        char addr[ADDRESS_STRING_MAX];
        Seen *s = userdata;

        ASSERT_TRUE(r->address.family == AF_INET || r->address.family == AF_INET6);
        ASSERT_TRUE(r->count > 0);
        fprintf(s->text, "history %s %u %" PRIu64 "\n", address_to_string(&r->address, addr), r->count, r->last_usec);
        if (s->writer)
                ASSERT_EQ(state_writer_history(s->writer, r), 0);
        return 0;
}

static const StateCallbacks callbacks = {
        .cursor = on_cursor,
        .ban = on_ban,
        .failures = on_failures,
        .history = on_history,
};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void remove_dir(void) {
        if (dir[0])
                (void) nftw(dir, remove_entry, 4, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ?: "/tmp";

        if (dir[0])
                return 0;
        snprintf(dir, sizeof dir, "%s/fuzz-state.XXXXXX", base);
        ASSERT_TRUE(mkdtemp(dir));
        atexit(remove_dir);
        return 0;
}

/* The file the first byte asks for (see the top of this file). */
static char *make_file(const uint8_t *data, size_t size, size_t *ret_size) {
        uint8_t mode = size > 0 ? data[0] : 0;
        const char *body = size > 0 ? (const char *) data + 1 : "";
        size_t n = size > 0 ? size - 1 : 0, lines = 0;
        char *s = NULL;
        size_t len = 0;
        FILE *f;

        if (mode == 0) {
                s = malloc(n ?: 1);
                ASSERT_TRUE(s);
                memcpy(s, body, n);
                *ret_size = n;
                return s;
        }

        f = open_memstream(&s, &len);
        ASSERT_TRUE(f);
        if (mode & 2)
                fputs(mode & 8 ? HEADER_LINE_3 : mode & 4 ? HEADER_LINE_2 : HEADER_LINE, f);
        fwrite(body, 1, n, f);
        if (mode & 1) {
                uint64_t h = UINT64_C(0xcbf29ce484222325); /* 64-bit FNV-1a, as the writer */

                if (n > 0 && body[n - 1] != '\n')
                        fputc('\n', f);
                ASSERT_EQ(fflush(f), 0);
                for (size_t i = 0; i < len; i++) {
                        lines += s[i] == '\n';
                        h = (h ^ (uint8_t) s[i]) * UINT64_C(0x100000001b3);
                }
                fprintf(f, "end %zu %016" PRIx64 "\n", lines > 0 ? lines - 1 : 0, h);
        }
        ASSERT_EQ(fclose(f), 0);
        *ret_size = len;
        return s;
}

static void check_round_trip(const char *data, size_t size) {
        _cleanup_free_ char *first = NULL, *second = NULL, *error = NULL;
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        size_t first_size = 0, second_size = 0;
        Seen seen = {};
        int r;

        ASSERT_EQ(state_writer_open(dir, &w), 0);
        seen = (Seen) { .text = open_memstream(&first, &first_size), .writer = w };
        ASSERT_TRUE(seen.text);
        r = state_load_buffer(data, size, &callbacks, &seen, NULL);
        ASSERT_EQ(fclose(seen.text), 0);
        if (r == -E2BIG)
                return;
        ASSERT_EQ(r, 0);
        ASSERT_EQ(state_writer_commit(w), 0);

        seen = (Seen) { .text = open_memstream(&second, &second_size) };
        ASSERT_TRUE(seen.text);
        r = state_load(dir, &callbacks, &seen, &error);
        ASSERT_EQ(fclose(seen.text), 0);
        if (r < 0) {
                fprintf(stderr, "The written file does not load: %s (%s)\n", strerror(-r), error ?: "");
                abort();
        }
        if (!streq(first, second)) {
                fprintf(stderr, "Loaded:\n%s----\nwritten and loaded again:\n%s", first, second);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *file = NULL, *error = NULL;
        size_t file_size;
        int r;

        if (!dir[0])
                LLVMFuzzerInitialize(NULL, NULL);

        file = make_file(data, size, &file_size);
        r = state_load_buffer(file, file_size, NULL, NULL, &error);
        ASSERT_TRUE(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
        /* A message exactly with the errors that promise one, and one line of text. */
        ASSERT_EQ(!!error, r < 0);
        ASSERT_TRUE(!error || !strchr(error, '\n'));
        if (r == 0)
                check_round_trip(file, file_size);

        journal_position_table_reset();
        return 0;
}
