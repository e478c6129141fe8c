/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vpopguard-bench-send: writes journal export format (as vpopguard-loadgen --export prints it)
 * from stdin into the running journald at a given rate, and records when each attacker's
 * MaxRetry-th failure was written, which the loadgen's live mode cannot tell. Those are the
 * starting points of the ban latency. With --wait-table it then polls the kernel until the
 * address of the last such failure is in the table's set: entries are judged in journal order,
 * so from then on every earlier one has been judged too (and burst times end there).
 *
 * The whole input is read and judged first (with the floor's matcher and table, on the entries'
 * export timestamps), so sending costs only the pacing and sd_journal_sendv(). Each entry is
 * sent with its MESSAGE, SYSLOG_IDENTIFIER and PRIORITY, like the loadgen's live mode. */

#include <getopt.h>
#include <inttypes.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "bench-match.h"
#include "macro.h"

static uint64_t arg_rate;
static unsigned arg_max_retry = 3;
static usec_t arg_find_time = 600 * USEC_PER_SEC;
static const char *arg_triggers, *arg_wait_table;
static usec_t arg_wait_timeout = 120 * USEC_PER_SEC;

typedef struct Entry {
        char *fields[3]; /* "MESSAGE=...", "SYSLOG_IDENTIFIER=...", "PRIORITY=..." */
        size_t n_fields;
        bool trigger;    /* the MaxRetry-th failure of its address */
        Address address; /* if trigger */
        usec_t written;  /* CLOCK_REALTIME right after the write, if trigger */
} Entry;

typedef struct Input {
        Entry *entries;
        size_t n, allocated;
} Input;

static bool is_vpopmail(const Entry *e) {
        for (size_t i = 0; i < e->n_fields; i++)
                if (streq(e->fields[i], "SYSLOG_IDENTIFIER=vpopmail") || streq(e->fields[i], "SYSLOG_IDENTIFIER=vchkpw"))
                        return true;
        return false;
}

static const char *message_of(const Entry *e) {
        for (size_t i = 0; i < e->n_fields; i++)
                if (strncmp(e->fields[i], "MESSAGE=", 8) == 0)
                        return e->fields[i] + 8;
        return NULL;
}

static int judge(Entry *e, BenchMatcher *m, BenchTable *t, usec_t realtime) {
        const char *msg = message_of(e);
        Address a;
        int r;

        if (!msg || !is_vpopmail(e) || !bench_matcher_match(m, msg, strlen(msg), &a))
                return 0;
        r = bench_table_record(t, &a, realtime, NULL, NULL);
        if (r > 0) {
                e->trigger = true;
                e->address = a;
        }
        return r < 0 ? r : 0;
}

/* Export format with text fields only (the loadgen never writes binary ones). */
static int read_input(FILE *in, Input *ret) {
        _cleanup_(bench_matcher_freep) BenchMatcher *m = NULL;
        _cleanup_(bench_table_freep) BenchTable *t = NULL;
        _cleanup_free_ char *line = NULL;
        Input input = {};
        usec_t realtime = 0;
        Entry *e = NULL;
        size_t size = 0;
        ssize_t len;
        int r;

        r = bench_matcher_new(&m);
        if (r >= 0)
                r = bench_table_new(arg_max_retry, arg_find_time, false, &t);
        if (r < 0)
                return r;
        while ((len = getline(&line, &size, in)) >= 0) {
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = 0;
                if (len == 0) {
                        if (e && (r = judge(e, m, t, realtime)) < 0)
                                return r;
                        e = NULL;
                        continue;
                }
                if (!e) {
                        if (input.n == input.allocated) {
                                size_t n = MAX(1024U, 2 * input.allocated);
                                Entry *p = realloc(input.entries, n * sizeof(Entry));
                                if (!p)
                                        return -ENOMEM;
                                input.entries = p;
                                input.allocated = n;
                        }
                        e = input.entries + input.n++;
                        *e = (Entry) {};
                }
                if (strncmp(line, "__REALTIME_TIMESTAMP=", 21) == 0)
                        realtime = strtoull(line + 21, NULL, 10);
                else if ((strncmp(line, "MESSAGE=", 8) == 0 || strncmp(line, "SYSLOG_IDENTIFIER=", 18) == 0 ||
                          strncmp(line, "PRIORITY=", 9) == 0) && e->n_fields < ELEMENTSOF(e->fields)) {
                        e->fields[e->n_fields] = strdup(line);
                        if (!e->fields[e->n_fields++])
                                return -ENOMEM;
                }
        }
        if (e && (r = judge(e, m, t, realtime)) < 0)
                return r;
        *ret = input;
        return 0;
}

static usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static void pace(uint64_t i, const struct timespec *start) {
        uint64_t ns = (uint64_t) start->tv_nsec + i * 1000000000ULL / arg_rate;
        struct timespec t = { .tv_sec = start->tv_sec + (time_t) (ns / 1000000000ULL), .tv_nsec = (long) (ns % 1000000000ULL) };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
                ;
}

static int send_all(Input *input, usec_t *ret_first, usec_t *ret_last) {
        struct timespec start;
        usec_t first = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (size_t i = 0; i < input->n; i++) {
                Entry *e = input->entries + i;
                struct iovec iov[ELEMENTSOF(e->fields)];
                int r;

                if (arg_rate > 0)
                        pace(i, &start);
                if (i == 0)
                        first = now_usec(CLOCK_REALTIME);
                for (size_t k = 0; k < e->n_fields; k++)
                        iov[k] = (struct iovec) { .iov_base = e->fields[k], .iov_len = strlen(e->fields[k]) };
                r = sd_journal_sendv(iov, (int) e->n_fields);
                if (r < 0)
                        return r;
                if (e->trigger)
                        e->written = now_usec(CLOCK_REALTIME);
        }
        *ret_first = first;
        *ret_last = now_usec(CLOCK_REALTIME);
        return 0;
}

/* Polls every 2 ms; returns the realtime at which a was first seen in the set, 0 on timeout. */
static usec_t wait_for_ban(const Address *a) {
        struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
        usec_t end = now_usec(CLOCK_MONOTONIC) + arg_wait_timeout, seen = 0;
        char cmd[256], s[ADDRESS_STRING_MAX];

        if (!nft || nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)
                return 0;
        snprintf(cmd, sizeof cmd, "get element inet %s %s { %s }", arg_wait_table,
                 a->family == AF_INET ? "banned4" : "banned6", address_to_string(a, s));
        while (now_usec(CLOCK_MONOTONIC) < end) {
                if (nft_run_cmd_from_buffer(nft, cmd) == 0) {
                        seen = now_usec(CLOCK_REALTIME);
                        break;
                }
                (void) nanosleep(&(struct timespec) { .tv_nsec = 2 * 1000 * 1000 }, NULL);
        }
        nft_ctx_free(nft);
        return seen;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "rate", required_argument, NULL, 'r' },
                { "max-retry", required_argument, NULL, 'm' },
                { "find-time", required_argument, NULL, 'f' },
                { "triggers", required_argument, NULL, 't' },
                { "wait-table", required_argument, NULL, 'w' },
                { "wait-timeout", required_argument, NULL, 'T' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("vpopguard-bench-send [--rate=N] [--max-retry=N] [--find-time=SEC] [--triggers=FILE]\n"
                               "                    [--wait-table=NAME [--wait-timeout=SEC]] <EXPORT\n\n"
                               "Sends journal export format from stdin to journald, N entries/s (0: flat out), and\n"
                               "writes \"USEC ADDRESS\" to FILE for each MaxRetry-th failure: when it was written.\n"
                               "With --wait-table, then waits until the last such address is in inet NAME's set.\n"
                               "Prints sent=, first_write_usec=, last_write_usec=, triggers= and last_ban_usec=.\n");
                        exit(EXIT_SUCCESS);
                case 'r':
                        arg_rate = strtoull(optarg, NULL, 10);
                        break;
                case 'm':
                        arg_max_retry = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'f':
                        arg_find_time = strtoull(optarg, NULL, 10) * USEC_PER_SEC;
                        break;
                case 't':
                        arg_triggers = optarg;
                        break;
                case 'w':
                        arg_wait_table = optarg;
                        break;
                case 'T':
                        arg_wait_timeout = strtoull(optarg, NULL, 10) * USEC_PER_SEC;
                        break;
                default:
                        return -EINVAL;
                }
        return optind < argc ? -EINVAL : 0;
}

int main(int argc, char *argv[]) {
        Input input = {};
        usec_t first = 0, last = 0, last_ban = 0;
        const Entry *last_trigger = NULL;
        size_t n_triggers = 0;
        FILE *f = NULL;
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "Usage: vpopguard-bench-send [OPTIONS] <EXPORT (see --help)\n");
                return EXIT_FAILURE;
        }
        r = read_input(stdin, &input);
        if (r >= 0)
                r = send_all(&input, &first, &last);
        if (r >= 0 && arg_triggers && !(f = fopen(arg_triggers, "we")))
                r = -errno;
        for (size_t i = 0; r >= 0 && i < input.n; i++) {
                char s[ADDRESS_STRING_MAX];

                if (!input.entries[i].trigger)
                        continue;
                n_triggers++;
                last_trigger = input.entries + i;
                if (f)
                        fprintf(f, "%" PRIu64 " %s\n", input.entries[i].written,
                                address_to_string(&input.entries[i].address, s));
        }
        if (f && fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r < 0) {
                fprintf(stderr, "bench-send: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (arg_wait_table && last_trigger)
                last_ban = wait_for_ban(&last_trigger->address);
        printf("sent=%zu\nfirst_write_usec=%" PRIu64 "\nlast_write_usec=%" PRIu64 "\ntriggers=%zu\nlast_ban_usec=%" PRIu64 "\n",
               input.n, first, last, n_triggers, last_ban);
        for (size_t i = 0; i < input.n; i++)
                for (size_t k = 0; k < input.entries[i].n_fields; k++)
                        free(input.entries[i].fields[k]);
        free(input.entries);
        return EXIT_SUCCESS;
}
