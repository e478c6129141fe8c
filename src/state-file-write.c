/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "config.h"
#include "macro.h"
#include "state-file-internal.h"
#include "text-put.h"

#define WRITE_BUFFER_SIZE (1024U * 1024U)
#define TRAILER_MAX 64U
#define FIELD_MAX (1U + TEXT_U64_DECIMAL_MAX + 1U + JOURNAL_CURSOR_MAX) /* " <realtime>@<cursor>" */

struct StateWriter {
        int dir_fd;
        int fd;
        char temp_name[sizeof STATE_FILE_TEMP_PREFIX + 6];
        char *buf;          /* WRITE_BUFFER_SIZE bytes, used of them not yet written */
        size_t used;
        uint64_t size;      /* bytes so far, buffered ones included */
        uint64_t checksum;  /* of those bytes */
        size_t n_records;
        bool has_cursor;
        bool committed;     /* the temporary file no longer exists under its name */
        int error;          /* sticky: once writing failed, the file is lost */
};

StateWriter *state_writer_free(StateWriter *w) {
        if (!w)
                return NULL;
        safe_close(w->fd);
        if (!w->committed && w->dir_fd >= 0)
                (void) unlinkat(w->dir_fd, w->temp_name, 0);
        safe_close(w->dir_fd);
        free(w->buf);
        free(w);
        return NULL;
}

/* Only one daemon writes a state directory, so anything with our prefix is a leftover of a
 * crash. If it was not, its writer fails cleanly at rename time. */
static void remove_stale_temps(int dir_fd) {
        int fd = dup(dir_fd);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        while ((de = readdir(d)))
                if (strncmp(de->d_name, STATE_FILE_TEMP_PREFIX, strlen(STATE_FILE_TEMP_PREFIX)) == 0)
                        (void) unlinkat(dir_fd, de->d_name, 0);
        closedir(d);
}

static int open_temp(int dir_fd, char name[static sizeof STATE_FILE_TEMP_PREFIX + 6]) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        size_t k = strlen(STATE_FILE_TEMP_PREFIX);

        for (unsigned attempt = 0; attempt < 100; attempt++) {
                uint8_t rnd[6];
                int fd;

                if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t) sizeof rnd)
                        for (size_t i = 0; i < sizeof rnd; i++) /* uniqueness, not secrecy */
                                rnd[i] = (uint8_t) (getpid() + attempt * 7 + i * 13 + (uintptr_t) name);

                memcpy(name, STATE_FILE_TEMP_PREFIX, k);
                for (size_t i = 0; i < sizeof rnd; i++)
                        name[k + i] = chars[rnd[i] % (sizeof chars - 1)];
                name[k + 6] = 0;

                fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static int writer_flush(StateWriter *w) {
        size_t done = 0;

        while (done < w->used) {
                ssize_t n = write(w->fd, w->buf + done, w->used - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t) n;
        }
        w->used = 0;
        return 0;
}

/* Returns where the next line is built, with room for STATE_LINE_MAX bytes. */
static int writer_line_begin(StateWriter *w, char **ret) {
        int r;

        if (w->error < 0)
                return w->error;
        if (w->committed)
                return -ESTALE;
        if (WRITE_BUFFER_SIZE - w->used < STATE_LINE_MAX) {
                r = writer_flush(w);
                if (r < 0)
                        return (w->error = r);
        }
        *ret = w->buf + w->used;
        return 0;
}

static int writer_line_end(StateWriter *w, char *end, bool record) {
        char *line = w->buf + w->used;
        size_t n;

        *end++ = '\n';
        n = (size_t) (end - line);
        if (w->size + n + (record ? TRAILER_MAX : 0) > STATE_FILE_SIZE_MAX)
                return (w->error = -EFBIG);

        w->checksum = fnv1a(w->checksum, line, n);
        w->size += n;
        w->used += n;
        if (record)
                w->n_records++;
        return 0;
}

int state_writer_open_full(const char *dir, bool remove_stale, StateWriter **ret) {
        _cleanup_(state_writer_freep) StateWriter *w = NULL;
        char *p;
        int r;

        if (!dir || !ret)
                return -EINVAL;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->fd = w->dir_fd = -EBADF;
        w->committed = true; /* until the temporary file exists */
        w->checksum = FNV_OFFSET;

        w->buf = malloc(WRITE_BUFFER_SIZE);
        if (!w->buf)
                return -ENOMEM;

        w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->dir_fd < 0)
                return -errno;

        if (remove_stale)
                remove_stale_temps(w->dir_fd);
        w->fd = open_temp(w->dir_fd, w->temp_name);
        if (w->fd < 0)
                return w->fd;
        w->committed = false;

        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p = stpcpy(p, HEADER);
        p = text_put_u64(p, STATE_FILE_VERSION);
        r = writer_line_end(w, p, false);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(w);
        return 0;
}

int state_writer_open(const char *dir, StateWriter **ret) {
        return state_writer_open_full(dir, true, ret);
}

int state_writer_cursor(StateWriter *w, const char *cursor) {
        char *p;
        int r;

        if (!cursor || !cursor_text_valid(cursor))
                return -EINVAL;
        if (w->has_cursor)
                return -EEXIST;

        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p = stpcpy(p, "cursor ");
        p = stpcpy(p, cursor);
        r = writer_line_end(w, p, true);
        if (r < 0)
                return r;
        w->has_cursor = true;
        return 0;
}

int state_writer_peer_cursor(StateWriter *w, const char *peer, const char *cursor) {
        char *p;
        int r;

        if (!fleet_peer_name_is_valid(peer) || !cursor || !cursor_text_valid(cursor))
                return -EINVAL;
        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p = stpcpy(p, "peer ");
        p = stpcpy(p, peer);
        *p++ = ' ';
        p = stpcpy(p, cursor);
        return writer_line_end(w, p, true);
}

int state_writer_ban(StateWriter *w, const Ban *b) {
        char addr[ADDRESS_PREFIX_STRING_MAX];
        const char *origin;
        AddressPrefix prefix;
        char *p;
        int r;

        origin = ban_origin_to_string(b->origin);
        if (!origin || !jail_name_is_valid(b->jail) || !address_valid(&b->address) ||
            b->prefixlen > address_family_bits(b->address.family))
                return -EINVAL;
        prefix = ban_prefix(b);

        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p = stpcpy(p, "ban ");
        p = stpcpy(p, b->jail);
        *p++ = ' ';
        p = stpcpy(p, address_prefix_to_string(&prefix, addr));
        *p++ = ' ';
        p = text_put_u64(p, b->failures);
        *p++ = ' ';
        p = text_put_u64(p, b->banned_usec);
        *p++ = ' ';
        p = text_put_u64(p, b->expires_usec);
        *p++ = ' ';
        p = stpcpy(p, origin);
        *p++ = ' ';
        p = text_put_u64(p, MAX(b->count, 1U));
        return writer_line_end(w, p, true);
}

int state_writer_history(StateWriter *w, const BanRecord *rec) {
        char addr[ADDRESS_STRING_MAX];
        char *p;
        int r;

        if (!rec || rec->count == 0 || !address_valid(&rec->address))
                return -EINVAL;
        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p = stpcpy(p, "history ");
        p = stpcpy(p, address_to_string(&rec->address, addr));
        *p++ = ' ';
        p = text_put_u64(p, rec->count);
        *p++ = ' ';
        p = text_put_u64(p, rec->last_usec);
        return writer_line_end(w, p, true);
}

int state_writer_failures(StateWriter *w, const char *jail, const Address *a, const JournalPosition *failures, size_t n) {
        if (!a)
                return -EINVAL;
        return state_writer_failures_prefix(w, jail, &(AddressPrefix) { *a, (uint8_t) address_family_bits(a->family) },
                                            failures, n);
}

int state_writer_failures_prefix(StateWriter *w, const char *jail, const AddressPrefix *prefix,
                                 const JournalPosition *failures, size_t n) {
        char addr[ADDRESS_PREFIX_STRING_MAX];
        char *line, *p;
        int r;

        if (!jail || !jail_name_is_valid(jail) || !prefix || !address_valid(&prefix->address) ||
            prefix->prefixlen > address_family_bits(prefix->address.family) || (n > 0 && !failures))
                return -EINVAL;
        if (n == 0)
                return 0;

        r = writer_line_begin(w, &line);
        if (r < 0)
                return r;
        p = stpcpy(line, "fail ");
        p = stpcpy(p, jail);
        *p++ = ' ';
        p = stpcpy(p, address_prefix_to_string(prefix, addr));

        for (size_t i = 0; i < n; i++) {
                if ((size_t) (p - line) + FIELD_MAX + 1 > STATE_LINE_MAX)
                        return -E2BIG; /* nothing of this line was committed */
                *p++ = ' ';
                p = text_put_u64(p, failures[i].realtime);
                if (journal_position_has_cursor(&failures[i])) {
                        r = journal_position_to_cursor(&failures[i], p + 1);
                        if (r > 0) {
                                *p = '@';
                                p += 1 + r;
                        }
                }
        }
        return writer_line_end(w, p, true);
}

int state_writer_finish(StateWriter *w) {
        char *p;
        int r;

        r = writer_line_begin(w, &p);
        if (r < 0)
                return r;
        p += snprintf(p, TRAILER_MAX, "end %zu %016" PRIx64, w->n_records, w->checksum);
        r = writer_line_end(w, p, false);
        if (r < 0)
                return r;

        r = writer_flush(w);
        if (r < 0)
                return (w->error = r);
        return 0;
}

int state_writer_sync(StateWriter *w) {
        int r;

        if (w->error < 0)
                return w->error;
        if (fsync(w->fd) < 0)
                return (w->error = -errno);
        r = close(TAKE_FD(w->fd));
        if (r < 0 && errno != EINTR)
                return (w->error = -errno);

        if (renameat(w->dir_fd, w->temp_name, w->dir_fd, STATE_FILE_NAME) < 0)
                return (w->error = -errno);
        w->committed = true;

        if (fsync(w->dir_fd) < 0)
                return -errno;
        return 0;
}

int state_writer_commit(StateWriter *w) {
        int r = state_writer_finish(w);
        return r < 0 ? r : state_writer_sync(w);
}
