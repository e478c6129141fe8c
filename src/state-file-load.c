/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"
#include "huge-pages.h"
#include "log.h"
#include "macro.h"
#include "state-file-internal.h"

/* Loading. The file is read whole, checked as a whole (header, trailer, checksum), then every
 * line is parsed into the arrays below; callbacks run only when all of that succeeded. */

typedef struct Window {
        const char *jail; /* points into the loader's copy of the file */
        AddressPrefix address;
        size_t first, n;  /* range of Loader.positions */
} Window;

typedef struct PeerCursor {
        const char *peer, *cursor; /* into the file's buffer */
} PeerCursor;

typedef struct Loader {
        uint64_t version;
        const char *cursor;
        BanRecord *history;
        size_t n_history, n_history_allocated;
        Ban *bans;
        size_t n_bans, n_bans_allocated;
        Window *windows;
        size_t n_windows, n_windows_allocated;
        JournalPosition *positions;
        size_t n_positions, n_positions_allocated;
        PeerCursor *peers;
        size_t n_peers, n_peers_allocated;
        char **error;
} Loader;

static void loader_done(Loader *l) {
        free(l->bans);
        free(l->history);
        free(l->windows);
        free(l->positions);
        free(l->peers);
}

/* Returns p resized to hold at least need elements (p itself if it does), or NULL. */
static void *grow_array(void *p, size_t *allocated, size_t need, size_t size) {
        size_t n;

        if (need <= *allocated)
                return p;
        n = MAX(need, MAX(*allocated * 2, (size_t) 16));
        if (n > SIZE_MAX / size)
                return NULL;
        p = realloc(p, n * size);
        if (p) {
                *allocated = n;
                advise_huge_pages(p, n * size);
        }
        return p;
}
#define GROW(p, allocated, need)                                                 \
        ({                                                                       \
                void *_q = grow_array((p), &(allocated), (need), sizeof *(p));   \
                if (_q)                                                          \
                        (p) = _q;                                                \
                _q ? 0 : -ENOMEM;                                                \
        })

static int load_error(Loader *l, int r, size_t line, const char *format, ...) _printf_(4, 5);
static int load_error(Loader *l, int r, size_t line, const char *format, ...) {
        char msg[256];
        va_list ap;
        int k = 0;

        if (!l->error)
                return r;
        if (line > 0)
                k = snprintf(msg, sizeof msg, "line %zu: ", line);
        va_start(ap, format);
        vsnprintf(msg + k, sizeof msg - (size_t) k, format, ap);
        va_end(ap);
        *l->error = strdup(msg); /* without memory, the caller has the error code alone */
        return r;
}

/* Quotes damaged text for a message, escaped and shortened. */
static const char *quote(const char *s, char buf[static 64]) {
        return log_escape(s, strlen(s), buf, 64);
}

/* Splits off the next field of *p in place; NULL at the end of the line. */
static char *next_field(char **p) {
        char *s = *p, *e;

        if (!s)
                return NULL;
        e = strchr(s, ' ');
        if (e) {
                *e = 0;
                *p = e + 1;
        } else
                *p = NULL;
        return s;
}

/* Decimal as text_put_u64() writes it: digits only, no leading zero, no overflow. */
static int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || s[0] == 0 || (s[0] == '0' && s[1] != 0))
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

/* The jail and address fields that ban and fail records share. */
static int parse_jail_address(Loader *l, size_t line, char **p, const char **ret_jail, AddressPrefix *ret_address) {
        char q[64];
        const char *jail, *addr;
        AddressPrefix prefix;

        jail = next_field(p);
        addr = next_field(p);
        if (!jail || !addr)
                return load_error(l, -EBADMSG, line, "missing fields");
        if (!jail_name_is_valid(jail))
                return load_error(l, -EBADMSG, line, "invalid jail name \"%s\"", quote(jail, q));
        /* Prefixes came with version 3; they are written with their host bits clear. */
        if (l->version >= 3 ? address_prefix_parse(addr, &prefix) < 0 :
            address_parse(addr, strlen(addr), &prefix.address) < 0)
                return load_error(l, -EBADMSG, line, "invalid address \"%s\"", quote(addr, q));
        if (l->version < 3)
                prefix.prefixlen = (uint8_t) address_family_bits(prefix.address.family);
        else if (strchr(addr, '/')) { /* a single address has no host bits to check */
                Address a;
                if (address_parse(addr, (size_t) (strchr(addr, '/') - addr), &a) < 0 ||
                    !address_equal(&a, &prefix.address))
                        return load_error(l, -EBADMSG, line, "invalid prefix \"%s\"", quote(addr, q));
        }
        *ret_jail = jail;
        *ret_address = prefix;
        return 0;
}

static int parse_ban(Loader *l, size_t line, char *p) {
        const char *jail, *f[5];
        uint64_t failures, banned, expires, count = 1;
        BanOrigin origin;
        AddressPrefix a;
        char q[64];
        int r;

        r = parse_jail_address(l, line, &p, &jail, &a);
        if (r < 0)
                return r;
        /* Version 1 has no ban number. */
        size_t n_fields = l->version >= 2 ? 5 : 4;
        for (size_t i = 0; i < n_fields; i++)
                f[i] = next_field(&p);
        if (!f[n_fields - 1])
                return load_error(l, -EBADMSG, line, "missing fields");
        if (p)
                return load_error(l, -EBADMSG, line, "too many fields");
        if (n_fields == 5 && (parse_u64(f[4], &count) < 0 || count == 0 || count > UINT_MAX))
                return load_error(l, -EBADMSG, line, "invalid ban number \"%s\"", quote(f[4], q));
        if (parse_u64(f[0], &failures) < 0 || failures > UINT_MAX)
                return load_error(l, -EBADMSG, line, "invalid failure count \"%s\"", quote(f[0], q));
        if (parse_u64(f[1], &banned) < 0 || parse_u64(f[2], &expires) < 0)
                return load_error(l, -EBADMSG, line, "invalid time");
        origin = ban_origin_from_string(f[3]);
        if (origin < 0)
                return load_error(l, -EBADMSG, line, "invalid origin \"%s\"", quote(f[3], q));

        if (GROW(l->bans, l->n_bans_allocated, l->n_bans + 1) < 0)
                return -ENOMEM;
        Ban *b = &l->bans[l->n_bans++];
        *b = (Ban) {
                .address = a.address,
                .prefixlen = a.prefixlen,
                .failures = (unsigned) failures,
                .count = (unsigned) count,
                .banned_usec = banned,
                .expires_usec = expires,
                .origin = origin,
        };
        strcpy(b->jail, jail); /* length checked by jail_name_is_valid() */
        return 0;
}

static int parse_history(Loader *l, size_t line, char *p) {
        const char *addr = next_field(&p), *count_text = next_field(&p), *last_text = next_field(&p);
        uint64_t count, last;
        Address a;
        char q[64];

        if (l->version < 2)
                return load_error(l, -EBADMSG, line, "history record in a version 1 file");
        if (!last_text)
                return load_error(l, -EBADMSG, line, "missing fields");
        if (p)
                return load_error(l, -EBADMSG, line, "too many fields");
        if (address_parse(addr, strlen(addr), &a) < 0)
                return load_error(l, -EBADMSG, line, "invalid address \"%s\"", quote(addr, q));
        if (parse_u64(count_text, &count) < 0 || count == 0 || count > UINT_MAX)
                return load_error(l, -EBADMSG, line, "invalid ban count \"%s\"", quote(count_text, q));
        if (parse_u64(last_text, &last) < 0)
                return load_error(l, -EBADMSG, line, "invalid time");

        if (GROW(l->history, l->n_history_allocated, l->n_history + 1) < 0)
                return -ENOMEM;
        l->history[l->n_history++] = (BanRecord) { .address = a, .count = (unsigned) count, .last_usec = last };
        return 0;
}

static int parse_failures(Loader *l, size_t line, char *p) {
        const char *jail;
        char *f, *at;
        AddressPrefix a;
        size_t first = l->n_positions;
        int r;

        r = parse_jail_address(l, line, &p, &jail, &a);
        if (r < 0)
                return r;
        if (!p)
                return load_error(l, -EBADMSG, line, "no failures");

        for (size_t i = 1; (f = next_field(&p)); i++) {
                JournalPosition pos;
                uint64_t realtime;

                at = strchr(f, '@');
                if (at)
                        *at = 0;
                if (parse_u64(f, &realtime) < 0)
                        return load_error(l, -EBADMSG, line, "failure %zu: invalid time", i);
                if (at) {
                        r = journal_position_parse(at + 1, realtime, &pos);
                        if (r == -ENOSPC) /* a full id table loses the cursor, not the failure */
                                r = journal_position_from_cursor(NULL, realtime, &pos);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return load_error(l, -EBADMSG, line, "failure %zu: invalid cursor", i);
                } else
                        (void) journal_position_from_cursor(NULL, realtime, &pos);

                if (GROW(l->positions, l->n_positions_allocated, l->n_positions + 1) < 0)
                        return -ENOMEM;
                l->positions[l->n_positions++] = pos;
        }

        if (GROW(l->windows, l->n_windows_allocated, l->n_windows + 1) < 0)
                return -ENOMEM;
        l->windows[l->n_windows++] = (Window) {
                .jail = jail,
                .address = a,
                .first = first,
                .n = l->n_positions - first,
        };
        return 0;
}

/* "peer NAME CURSOR": once per name, at most CONFIG_LIST_MAX (as many as Peer= may list). */
static int parse_peer(Loader *l, size_t line, char *p) {
        const char *peer = next_field(&p);
        PeerCursor *grown;

        if (!fleet_peer_name_is_valid(peer) || !p || !cursor_text_valid(p))
                return load_error(l, -EBADMSG, line, "invalid peer position");
        for (size_t i = 0; i < l->n_peers; i++)
                if (streq(l->peers[i].peer, peer))
                        return load_error(l, -EBADMSG, line, "second position of a peer");
        if (l->n_peers >= CONFIG_LIST_MAX)
                return load_error(l, -EBADMSG, line, "too many peer positions");
        grown = grow_array(l->peers, &l->n_peers_allocated, l->n_peers + 1, sizeof(PeerCursor));
        if (!grown)
                return -ENOMEM;
        l->peers = grown;
        l->peers[l->n_peers++] = (PeerCursor) { peer, p };
        return 0;
}

static int parse_record(Loader *l, size_t line, char *p) {
        char q[64];
        const char *type;

        if (*p == 0)
                return load_error(l, -EBADMSG, line, "empty line");
        if (p[0] == ' ' || p[strlen(p) - 1] == ' ' || strstr(p, "  "))
                return load_error(l, -EBADMSG, line, "empty field");

        type = next_field(&p);
        if (streq(type, "ban"))
                return parse_ban(l, line, p);
        if (streq(type, "fail"))
                return parse_failures(l, line, p);
        if (streq(type, "history"))
                return parse_history(l, line, p);
        if (streq(type, "cursor")) {
                if (l->cursor)
                        return load_error(l, -EBADMSG, line, "second cursor");
                if (!p || !cursor_text_valid(p))
                        return load_error(l, -EBADMSG, line, "invalid cursor");
                l->cursor = p;
                return 0;
        }
        if (streq(type, "peer") && l->version >= 4)
                return parse_peer(l, line, p);
        if (streq(type, "end"))
                return load_error(l, -EBADMSG, line, "trailer before the end of the file");
        return load_error(l, -EBADMSG, line, "unknown record \"%s\"", quote(type, q));
}

/* Checks the header, the trailer and the checksum of buf (size bytes plus a NUL, modified in
 * place), then parses the records in between. */
static int parse_file(Loader *l, char *buf, size_t size) {
        char *nul, *eol, *last, *p, *end, *s, c;
        uint64_t version, n_records, checksum;
        size_t line = 1, records = 0;
        int r;

        if (size == 0)
                return load_error(l, -EBADMSG, 0, "empty file");

        nul = memchr(buf, 0, size);
        if (nul) {
                for (p = buf; p < nul; p++)
                        line += *p == '\n';
                return load_error(l, -EBADMSG, line, "NUL byte");
        }

        eol = strchr(buf, '\n');
        if (strncmp(buf, HEADER, strlen(HEADER)) != 0)
                return load_error(l, -EBADMSG, 1, "not a vpopguard state file");
        if (!eol)
                return load_error(l, -EBADMSG, 1, "truncated header");
        /* A newer version may change anything after its number. */
        end = buf + size;
        *eol = 0;
        s = buf + strlen(HEADER);
        p = s + strspn(s, "0123456789");
        c = *p;
        *p = 0;
        r = parse_u64(s, &version);
        *p = c;
        if (r < 0 || version == 0)
                return load_error(l, -EBADMSG, 1, "invalid header");
        if (version > STATE_FILE_VERSION)
                return load_error(l, -EPROTONOSUPPORT, 1, "version %" PRIu64 " is newer than supported (%d)",
                                  version, STATE_FILE_VERSION);
        if (c != 0)
                return load_error(l, -EBADMSG, 1, "invalid header");
        l->version = version;
        if (end - 1 == eol)
                return load_error(l, -EBADMSG, 0, "truncated: no trailer");
        if (end[-1] != '\n')
                return load_error(l, -EBADMSG, 0, "truncated: incomplete last line");

        /* The last line must be the trailer; a trailer elsewhere means bytes were appended. */
        for (last = end - 1; last > eol + 1 && last[-1] != '\n'; last--)
                ;
        if (strncmp(last, "end ", 4) != 0) {
                for (p = eol + 1, line = 2; p < end; p = strchr(p, '\n') + 1, line++)
                        if (strncmp(p, "end ", 4) == 0)
                                return load_error(l, -EBADMSG, line, "data after the trailer");
                return load_error(l, -EBADMSG, 0, "truncated: no trailer");
        }

        end[-1] = 0;
        s = last + 4;
        p = strchr(s, ' ');
        if (!p || strlen(p + 1) != 16 || strspn(p + 1, "0123456789abcdef") != 16)
                return load_error(l, -EBADMSG, 0, "invalid trailer");
        *p = 0;
        if (parse_u64(s, &n_records) < 0)
                return load_error(l, -EBADMSG, 0, "invalid trailer");
        checksum = 0;
        for (size_t i = 1; i <= 16; i++)
                checksum = (checksum << 4) | (uint64_t) (p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);

        *eol = '\n'; /* the checksum covers the header as written */
        if (fnv1a(FNV_OFFSET, buf, (size_t) (last - buf)) != checksum)
                return load_error(l, -EBADMSG, 0, "checksum mismatch: the file is damaged");
        *eol = 0;

        line = 1;
        for (p = eol + 1; p < last; p = eol + 1) {
                line++;
                eol = strchr(p, '\n'); /* exists: last is preceded by a newline */
                if ((size_t) (eol - p) + 1 > STATE_LINE_MAX)
                        return load_error(l, -EBADMSG, line, "line too long");
                *eol = 0;
                r = parse_record(l, line, p);
                if (r < 0)
                        return r;
                records++;
        }
        if (records != n_records)
                return load_error(l, -EBADMSG, 0, "the trailer counts %" PRIu64 " records, the file has %zu",
                                  n_records, records);
        return 0;
}

static int load(char *buf, size_t size, const StateCallbacks *cb, void *userdata, char **ret_error) {
        _cleanup_(loader_done) Loader l = { .error = ret_error };
        int r;

        r = parse_file(&l, buf, size);
        if (r < 0)
                return r;
        if (!cb)
                return 0;

        if (l.cursor && cb->cursor) {
                r = cb->cursor(l.cursor, userdata);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; cb->ban && i < l.n_bans; i++) {
                r = cb->ban(&l.bans[i], userdata);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; cb->failures && i < l.n_windows; i++) {
                const Window *w = &l.windows[i];
                r = cb->failures(w->jail, &w->address, l.positions + w->first, w->n, userdata);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; cb->history && i < l.n_history; i++) {
                r = cb->history(&l.history[i], userdata);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; cb->peer_cursor && i < l.n_peers; i++) {
                r = cb->peer_cursor(l.peers[i].peer, l.peers[i].cursor, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int state_load_buffer(const char *data, size_t size, const StateCallbacks *cb, void *userdata, char **ret_error) {
        _cleanup_free_ char *buf = NULL;

        if (size > STATE_FILE_SIZE_MAX) {
                Loader l = { .error = ret_error };
                return load_error(&l, -EBADMSG, 0, "file too large");
        }
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        if (size > 0)
                memcpy(buf, data, size);
        buf[size] = 0;
        return load(buf, size, cb, userdata, ret_error);
}

int state_load(const char *dir, const StateCallbacks *cb, void *userdata, char **ret_error) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        Loader l = { .error = ret_error };
        size_t size = 0, allocated;
        struct stat st;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        /* Neither follow a symlink nor wait for a FIFO's writer: only a regular file is state. */
        fd = openat(dir_fd, STATE_FILE_NAME, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ELOOP)
                return load_error(&l, -EBADMSG, 0, "not a regular file");
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return load_error(&l, -EBADMSG, 0, "not a regular file");
        if ((uint64_t) st.st_size > STATE_FILE_SIZE_MAX)
                return load_error(&l, -EBADMSG, 0, "file too large");

        /* The size may change under us: read to the end, but never past the limit. Room for
         * the NUL and for the read that finds the end, so that a file of the size fstat() gave
         * is read without growing the buffer. */
        allocated = (size_t) st.st_size + 2;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        advise_huge_pages(buf, allocated);
        for (;;) {
                ssize_t n;

                if (size + 1 >= allocated) {
                        if (size > STATE_FILE_SIZE_MAX)
                                return load_error(&l, -EBADMSG, 0, "file too large");
                        if (GROW(buf, allocated, MIN(allocated * 2, (size_t) STATE_FILE_SIZE_MAX + 2)) < 0)
                                return -ENOMEM;
                }
                n = read(fd, buf + size, allocated - 1 - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = 0;
        return load(buf, size, cb, userdata, ret_error);
}
