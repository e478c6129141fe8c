/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vpopguard-bench-state --bans=N --directory=DIR [--expect=FILE] [--ban-sec=S]: writes a state
 * file with N active bans of jail vpopmail (half IPv4 from 11.0.0.0, half IPv6 from
 * 2001:db8:100::, single addresses) into DIR with the daemon's own writer (state-file-write.c),
 * as the daemon would after N bans: the scale benchmark's "reboot". Prints write_sec (open to
 * rename, fsync included), size_bytes and load_sec (reading and parsing it back with the
 * daemon's loader, state-file-load.c, the file in the page cache); --expect lists the
 * addresses, one a line. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "state-file.h"
#include "time-util.h"

static int count_ban(const Ban *b, void *userdata) {
        (void) b;
        (*(size_t *) userdata)++;
        return 0;
}

static Address nth_address(size_t i) {
        Address a = {};
        uint32_t k = (uint32_t) (i / 2);

        if (i % 2 == 0) {
                a.family = AF_INET;
                a.bytes[0] = 11;
                a.bytes[1] = (uint8_t) (k >> 16);
                a.bytes[2] = (uint8_t) (k >> 8);
                a.bytes[3] = (uint8_t) k;
        } else {
                static const uint8_t prefix[] = { 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00 };
                a.family = AF_INET6;
                memcpy(a.bytes, prefix, sizeof prefix);
                a.bytes[13] = (uint8_t) (k >> 16);
                a.bytes[14] = (uint8_t) (k >> 8);
                a.bytes[15] = (uint8_t) k;
        }
        return a;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "bans", required_argument, NULL, 'n' },
                { "directory", required_argument, NULL, 'd' },
                { "expect", required_argument, NULL, 'e' },
                { "ban-sec", required_argument, NULL, 'b' },
                {}
        };
        const char *dir = NULL, *expect = NULL;
        unsigned long long n = 0, ban_sec = 86400;
        StateWriter *w = NULL;
        FILE *ef = NULL;
        usec_t now, t0, t1;
        char path[4096], *error = NULL;
        size_t loaded = 0;
        struct stat st;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'n': n = strtoull(optarg, NULL, 10); break;
                case 'd': dir = optarg; break;
                case 'e': expect = optarg; break;
                case 'b': ban_sec = strtoull(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!dir || n == 0 || n > 2 * (1ULL << 24) || ban_sec == 0) {
                fprintf(stderr, "usage: vpopguard-bench-state --bans=N --directory=DIR [--expect=FILE] [--ban-sec=S]\n");
                return 2;
        }
        if (expect && !(ef = fopen(expect, "we"))) {
                perror(expect);
                return 1;
        }

        now = now_realtime();
        t0 = now_monotonic();
        r = state_writer_open(dir, &w);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                Ban b = {
                        .address = nth_address(i),
                        .jail = "vpopmail",
                        .failures = 3,
                        .count = 1,
                        .banned_usec = now,
                        .expires_usec = now + ban_sec * USEC_PER_SEC,
                        .origin = BAN_ORIGIN_JOURNAL,
                };
                r = state_writer_ban(w, &b);
                if (r >= 0 && ef) {
                        char text[ADDRESS_STRING_MAX];
                        fprintf(ef, "%s\n", address_to_string(&b.address, text));
                }
        }
        if (r >= 0)
                r = state_writer_commit(w);
        t1 = now_monotonic();
        state_writer_free(w);
        if (ef && fclose(ef) != 0)
                r = -EIO;
        if (r < 0) {
                fprintf(stderr, "vpopguard-bench-state: %s\n", strerror(-r));
                return 1;
        }
        (void) snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE_NAME);
        if (stat(path, &st) < 0) {
                perror(path);
                return 1;
        }
        printf("write_sec=%.3f\nsize_bytes=%lld\n", (double) (t1 - t0) / USEC_PER_SEC, (long long) st.st_size);

        t0 = now_monotonic();
        r = state_load(dir, &(const StateCallbacks) { .ban = count_ban }, &loaded, &error);
        t1 = now_monotonic();
        if (r < 0 || loaded != n) {
                fprintf(stderr, "vpopguard-bench-state: loading it back: %s (%zu of %llu bans)\n",
                        error ?: strerror(-r), loaded, n);
                free(error);
                return 1;
        }
        printf("load_sec=%.3f\n", (double) (t1 - t0) / USEC_PER_SEC);
        return 0;
}
