/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "tests.h"

static void assert_escapes(const char *text, size_t len, size_t size, const char *expected) {
        char buf[LOG_ESCAPE_MAX];

        fprintf(stderr, "   escape %zu bytes into %zu: \"%s\"\n", len, size, expected);
        ASSERT_TRUE(size <= sizeof buf);
        ASSERT_TRUE(log_escape(text, len, buf, size) == buf);
        ASSERT_STREQ(buf, expected);
}

#define ESCAPES(text, size, expected) assert_escapes((text), sizeof(text) - 1, (size), (expected))

/* The inverse of log_escape() for text that was not cut; -1 on what it never writes. */
static int unescape(const char *s, char *ret, size_t *ret_len) {
        size_t n = 0;

        for (; *s; s++) {
                if (*s < 0x20 || *s > 0x7e)
                        return -1;
                if (*s != '\\') {
                        ret[n++] = *s;
                        continue;
                }
                if (s[1] == '\\') {
                        ret[n++] = '\\';
                        s++;
                        continue;
                }
                if (s[1] != 'x' || !s[2] || !s[3])
                        return -1;
                char hex[3] = { s[2], s[3], 0 };
                ret[n++] = (char) strtoul(hex, NULL, 16);
                s += 3;
        }
        *ret_len = n;
        return 0;
}

TEST(escape) {
        ESCAPES("plain text", 64, "plain text");
        ESCAPES("", 64, "");
        /* Control characters, including a terminal's escape sequences and NUL within len. */
        ESCAPES("a\nb\tc\r", 64, "a\\x0ab\\x09c\\x0d");
        ESCAPES("\x1b]0;owned\x07\x1b[31m", 64, "\\x1b]0;owned\\x07\\x1b[31m");
        ESCAPES("a\0b", 64, "a\\x00b");
        ESCAPES("\x7f", 64, "\\x7f");
        /* Bytes from 0x80, whether UTF-8 ("é") or not. */
        ESCAPES("caf\xc3\xa9", 64, "caf\\xc3\\xa9");
        ESCAPES("\xff\xfe\x80", 64, "\\xff\\xfe\\x80");
        /* Quotes stay; a backslash is doubled, so typed "\x1b" differs from an escaped ESC. */
        ESCAPES("say \"hi\" 'x'", 64, "say \"hi\" 'x'");
        ESCAPES("\\x1b \\d+", 64, "\\\\x1b \\\\d+");
}

TEST(cut) {
        char buf[LOG_ESCAPE_MAX], big[1000];

        /* Text that fits is never cut, up to the last byte of buf. */
        ESCAPES("abcdef", 7, "abcdef");
        ESCAPES("a\x01" "bc", 8, "a\\x01bc");
        /* Text that does not fit ends in "...", which takes three bytes of its room. */
        ESCAPES("abcdefg", 7, "abc...");
        ESCAPES("abcdef", 6, "ab...");
        /* An escape is never split. */
        ESCAPES("a\x01" "bcd", 8, "a...");
        ESCAPES("a\\bcde", 6, "a...");
        /* Tiny buffers still end in NUL. */
        ESCAPES("abcdef", 4, "...");
        ESCAPES("abcdef", 3, "..");
        ESCAPES("abcdef", 1, "");
        ESCAPES("", 1, "");

        /* Nothing is written into no room. */
        buf[0] = 'x';
        ASSERT_TRUE(log_escape("abc", 3, buf, 0) == buf);
        ASSERT_EQ(buf[0], 'x');

        /* Long hostile text fills exactly the room there is. */
        memset(big, '\x1b', sizeof big);
        log_escape(big, sizeof big, buf, sizeof buf);
        ASSERT_EQ(strlen(buf), 63 * 4 + 3);
        ASSERT_TRUE(strstr(buf, "\\x1b..."));
        memset(big, 'b', sizeof big);
        log_escape(big, sizeof big, buf, sizeof buf);
        ASSERT_EQ(strlen(buf), sizeof buf - 1);
        ASSERT_STREQ(buf + sizeof buf - 5, "b...");
}

TEST(every_byte) {
        char text[2 * 256], out[4 * sizeof text + 1], back[sizeof text];
        size_t n;

        /* Every byte, also each after a backslash: only printable ASCII comes out, and it reads
         * back as exactly what went in. */
        for (size_t i = 0; i < 256; i++) {
                text[2 * i] = '\\';
                text[2 * i + 1] = (char) i;
        }
        log_escape(text, sizeof text, out, sizeof out);
        ASSERT_EQ(unescape(out, back, &n), 0);
        ASSERT_EQ(n, sizeof text);
        ASSERT_EQ(memcmp(back, text, sizeof text), 0);
}

int main(void) {
        RUN(escape);
        RUN(cut);
        RUN(every_byte);
        return 0;
}
