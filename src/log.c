/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool prefix_priority = false;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* When stderr is connected to journald, the "<N>" prefix sets the entry's priority. */
void log_open(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        prefix_priority = false;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return;
        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        prefix_priority = (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

bool log_stderr_is_journal(void) {
        return prefix_priority;
}

int log_internal(int level, int error, const char *file, int line, const char *format, ...) {
        int saved = errno;
        if (error < 0)
                error = -error;

        if (level <= max_level) {
                char buf[4096];
                va_list ap;

                errno = error;
                va_start(ap, format);
                vsnprintf(buf, sizeof buf, format, ap);
                va_end(ap);

                if (prefix_priority)
                        fprintf(stderr, "<%d>%s\n", level, buf);
                else if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "%s:%d: %s\n", file, line, buf);
                else
                        fprintf(stderr, "%s\n", buf);
        }

        errno = saved;
        return -error;
}

/* Bytes of output for one byte of input: printable ASCII as itself, a backslash doubled (so
 * that "\x1b" typed by an attacker cannot pass for an escaped ESC byte), anything else as
 * \xNN. Quotes stay: messages quote with them. */
static size_t escaped_width(unsigned char c) {
        if (c == '\\')
                return 2;
        return c >= 0x20 && c < 0x7f ? 1 : 4;
}

char *log_escape(const char *text, size_t len, char *buf, size_t size) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0, need = 0, limit;
        bool cut;

        if (size == 0)
                return buf;

        /* Only text that does not fit gives up room for the "..." that says so. */
        for (size_t i = 0; i < len && need < size; i++)
                need += escaped_width((unsigned char) text[i]);
        cut = need >= size;
        limit = !cut ? size - 1 : size > 4 ? size - 4 : 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];
                size_t w = escaped_width(c);

                if (o + w > limit)
                        break;
                if (w == 1)
                        buf[o++] = (char) c;
                else if (w == 2) {
                        buf[o++] = '\\';
                        buf[o++] = '\\';
                } else {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 15];
                }
        }
        for (unsigned i = 0; cut && i < 3 && o + 1 < size; i++)
                buf[o++] = '.';
        buf[o] = 0;
        return buf;
}
