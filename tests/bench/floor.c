/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vpopguard-bench-floor: the least work that reading the journal, judging vpopmail lines and
 * banning through libnftables can take. The benchmark compares vpopguardd with it: the journal
 * matches SYSLOG_IDENTIFIER=vpopmail and =vchkpw, each entry's MESSAGE goes through one JIT
 * pattern (bench-match.c), failures are counted in a flat table, and the bans of a batch go
 * into the kernel as one libnftables call, as the daemon batches them: one call per
 * --batch entries read, or when the journal is read to its end. No state file, no saved
 * position, no TrustedUID= check.
 *
 * --events adds what the product requires of every ban (issue #15): the structured journal
 * entry vpopguardd writes (journal-events.c), field for field and of the same size, so that
 * "floor+events" is the limit for a daemon that logs its bans. For that the floor also does
 * what the entry needs: it takes each failure's cursor (sd_journal_get_cursor(), kept as a
 * 40-byte JournalPosition per failure in the address's window, as the daemon keeps them), and
 * per ban it sends, after the batch's libnftables call and in the batch's order, as the daemon
 * does:
 *   MESSAGE_ID        FLOOR_MESSAGE_BAN: not vpopguardd's, so that nothing (the daemon's
 *                     replay of logged bans, catalog, `journalctl MESSAGE_ID=`) takes these for
 *                     its bans, but of the same length
 *   PRIORITY          5
 *   MESSAGE           "Banned ADDRESS for 1h (jail vpopmail): 3 failures within 2w." (the
 *                     daemon's wording, with --ban-time and --find-time)
 *   VPOPGUARD_JAIL, _ADDRESS, _PREFIX (ADDRESS/32 or /128), _FAILURES, _BAN_COUNT (1: the floor
 *                     has no ban history), _BAN_USEC, _BANNED_USEC, _EXPIRES_USEC, _ORIGIN=journal
 *   per cause         VPOPGUARD_CAUSE_REALTIME_USEC and VPOPGUARD_CAUSE_CURSOR, oldest first
 *   SYSLOG_IDENTIFIER the program's name
 * through the daemon's own JournalSender (journald's native socket, never blocking: what the
 * socket does not take waits in order and is sent as it drains, pumped every 256 entries read
 * and from the wait as the daemon's event loop does). Before exiting it waits until journald took
 * them all, as the daemon does before it saves its state. run-bench.sh checks that a ban entry
 * of each has the same field names and a similar size.
 *
 * Without --live it reads to the end of the journal and exits (as vpopguardd --no-follow).
 * With --live it follows: it waits as sd_journal_wait() does, and while entries keep arriving
 * re-reads every 10 ms (journald wakes readers only every 250 ms), until SIGTERM or SIGINT. At
 * exit it prints "key=value" lines: entries, failures, bans, nft_calls, seconds, rates, CPU and
 * RssAnon. */

#include <getopt.h>
#include <inttypes.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "bench-match.h"
#include "journal-sender.h"
#include "macro.h"

#define EAGER_INTERVAL_USEC (10 * USEC_PER_MSEC)
#define EAGER_WINDOW_USEC (1 * USEC_PER_SEC)
#define PUMP_EVERY 256 /* as the daemon (MANAGER_PUMP_EVERY) */
/* Not vpopguardd's VPOPGUARD_MESSAGE_BAN, of the same length. */
#define FLOOR_MESSAGE_BAN "3a1c0e9b8f5d4e0c9a7b6d5c4e3f2a1b"
#define FLOOR_JAIL "vpopmail"

static const char *arg_directory, *arg_table = "vpopfloor", *arg_banned;
static bool arg_live, arg_nft = true, arg_events;
static unsigned arg_max_retry = 3;
static usec_t arg_find_time = 600 * USEC_PER_SEC, arg_ban_time = 3600 * USEC_PER_SEC;
static uint64_t arg_batch = 4096; /* as the daemon (MANAGER_BATCH_MAX) */
static bool stop;

/* A ban decided and not yet committed; causes only with --events. */
typedef struct PendingBan {
        Address address;
        usec_t banned_usec;
        JournalPosition causes[BENCH_MAX_RETRY_MAX];
} PendingBan;

typedef struct Floor {
        sd_journal *journal;
        BenchMatcher *matcher;
        BenchTable *table;
        struct nft_ctx *nft;
        sd_event *event;          /* only for the sender's writable source (--events) */
        JournalSender *sender;
        PendingBan *pending;
        size_t n_pending, n_pending_allocated;
        FILE *banned;
        uint64_t entries, failures, bans, nft_calls;
} Floor;

static int nft_run(Floor *f, const char *cmd) {
        f->nft_calls++;
        if (nft_run_cmd_from_buffer(f->nft, cmd) != 0) {
                fprintf(stderr, "floor: nft failed: %s\n", nft_ctx_get_error_buffer(f->nft));
                return -EIO;
        }
        return 0;
}

static int setup_nft(Floor *f) {
        char cmd[1024];

        f->nft = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!f->nft || nft_ctx_buffer_output(f->nft) < 0 || nft_ctx_buffer_error(f->nft) < 0)
                return -ENOMEM;
        /* The daemon's table layout, under another name so both can share a namespace. */
        snprintf(cmd, sizeof cmd,
                 "add table inet %1$s\n"
                 "add set inet %1$s banned4 { type ipv4_addr; flags timeout; }\n"
                 "add set inet %1$s banned6 { type ipv6_addr; flags timeout; }\n"
                 "add chain inet %1$s input { type filter hook input priority filter - 10; policy accept; }\n"
                 "add rule inet %1$s input ip saddr @banned4 drop\n"
                 "add rule inet %1$s input ip6 saddr @banned6 drop\n",
                 arg_table);
        return nft_run(f, cmd);
}

static void write_elements(FILE *m, const Floor *f, int family) {
        bool any = false;

        for (size_t i = 0; i < f->n_pending; i++) {
                char a[ADDRESS_STRING_MAX];

                if (f->pending[i].address.family != family)
                        continue;
                if (!any)
                        fprintf(m, "add element inet %s %s {\n", arg_table, family == AF_INET ? "banned4" : "banned6");
                any = true;
                fprintf(m, "%s timeout %" PRIu64 "s,\n", address_to_string(&f->pending[i].address, a),
                        arg_ban_time / USEC_PER_SEC);
        }
        if (any)
                fputs("}\n", m);
}

/* The ban entry of journal-events.c for a ban the journal decided (see the top of the file). */
static int send_event(Floor *f, const PendingBan *b) {
        char text[3 + 2 * BENCH_MAX_RETRY_MAX + 12][JOURNAL_CURSOR_MAX + 40];
        struct iovec iov[ELEMENTSOF(text)];
        char a[ADDRESS_STRING_MAX], span[TIMESPAN_MAX], window[TIMESPAN_MAX];
        size_t n = 0;
        int k;

#define ADD(...)                                                                          \
        do {                                                                              \
                k = snprintf(text[n], sizeof text[n], __VA_ARGS__);                       \
                iov[n] = (struct iovec) { text[n], MIN((size_t) k, sizeof text[n] - 1) }; \
                n++;                                                                      \
        } while (0)

        address_to_string(&b->address, a);
        ADD("MESSAGE_ID=" FLOOR_MESSAGE_BAN);
        ADD("PRIORITY=5");
        ADD("MESSAGE=Banned %s for %s (jail " FLOOR_JAIL "): %u failures within %s.", a,
            format_timespan(span, sizeof span, arg_ban_time), arg_max_retry,
            format_timespan(window, sizeof window, arg_find_time));
        ADD("VPOPGUARD_JAIL=" FLOOR_JAIL);
        ADD("VPOPGUARD_ADDRESS=%s", a);
        ADD("VPOPGUARD_PREFIX=%s/%u", a, address_family_bits(b->address.family));
        ADD("VPOPGUARD_FAILURES=%u", arg_max_retry);
        ADD("VPOPGUARD_BAN_COUNT=1");
        ADD("VPOPGUARD_BAN_USEC=%" PRIu64, arg_ban_time);
        ADD("VPOPGUARD_BANNED_USEC=%" PRIu64, b->banned_usec);
        ADD("VPOPGUARD_EXPIRES_USEC=%" PRIu64, b->banned_usec + arg_ban_time);
        ADD("VPOPGUARD_ORIGIN=journal");
        for (unsigned i = 0; i < arg_max_retry; i++) {
                char cursor[JOURNAL_CURSOR_MAX];
                ADD("VPOPGUARD_CAUSE_REALTIME_USEC=%" PRIu64, b->causes[i].realtime);
                if (journal_position_to_cursor(&b->causes[i], cursor) >= 0)
                        ADD("VPOPGUARD_CAUSE_CURSOR=%s", cursor);
        }
        ADD("SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
#undef ADD
        return journal_sender_send(f->sender, iov, n);
}

/* One libnftables call for every ban decided since the last one, then their journal entries. */
static int commit(Floor *f) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        FILE *m;
        int r = 0;

        if (f->n_pending == 0)
                return 0;
        if (arg_nft) {
                m = open_memstream(&buf, &size);
                if (!m)
                        return -ENOMEM;
                write_elements(m, f, AF_INET);
                write_elements(m, f, AF_INET6);
                if (fclose(m) != 0)
                        return -ENOMEM;
                r = nft_run(f, buf);
        }
        for (size_t i = 0; f->sender && i < f->n_pending; i++)
                (void) send_event(f, &f->pending[i]); /* as the daemon: a lost entry is not fatal */
        f->n_pending = 0;
        return r;
}

static int ban(Floor *f, const Address *a, const JournalPosition *causes) {
        PendingBan *b;

        if (f->n_pending == f->n_pending_allocated) {
                size_t n = MAX(64U, 2 * f->n_pending_allocated);
                PendingBan *p = realloc(f->pending, n * sizeof(PendingBan));
                if (!p)
                        return -ENOMEM;
                f->pending = p;
                f->n_pending_allocated = n;
        }
        b = &f->pending[f->n_pending++];
        b->address = *a;
        b->banned_usec = now_realtime();
        if (causes)
                memcpy(b->causes, causes, arg_max_retry * sizeof(JournalPosition));
        f->bans++;
        if (f->banned) {
                char s[ADDRESS_STRING_MAX];
                fprintf(f->banned, "%s\n", address_to_string(a, s));
        }
        return 0;
}

static int process_entry(Floor *f) {
        JournalPosition p, causes[BENCH_MAX_RETRY_MAX];
        const void *data;
        size_t len;
        usec_t t;
        Address a;
        int r;

        f->entries++;
        if (sd_journal_get_data(f->journal, "MESSAGE", &data, &len) < 0)
                return 0;
        if (!bench_matcher_match(f->matcher, (const char *) data + 8, len - 8, &a))
                return 0;
        f->failures++;
        r = sd_journal_get_realtime_usec(f->journal, &t);
        if (r < 0)
                return r;
        if (f->sender) {
                _cleanup_free_ char *cursor = NULL;
                r = sd_journal_get_cursor(f->journal, &cursor);
                if (r < 0)
                        return r;
                r = journal_position_from_cursor(cursor, t, &p);
                if (r < 0)
                        return r;
        }
        r = bench_table_record(f->table, &a, t, f->sender ? &p : NULL, causes);
        return r > 0 ? ban(f, &a, f->sender ? causes : NULL) : r;
}

/* Reads to the end of the journal, committing every arg_batch entries and at the end. */
static int read_available(Floor *f, uint64_t *ret_n) {
        uint64_t n = 0, in_batch = 0;
        int r;

        while (!stop) {
                r = sd_journal_next(f->journal);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                n++;
                if (n % PUMP_EVERY == 0)
                        journal_sender_pump(f->sender);
                r = process_entry(f);
                if (r < 0)
                        return r;
                if (++in_batch == arg_batch) {
                        r = commit(f);
                        if (r < 0)
                                return r;
                        in_batch = 0;
                }
        }
        *ret_n = n;
        return commit(f);
}

/* sd_journal_wait() by hand (poll on the journal's fd, then sd_journal_process()), so that a
 * signalfd can end the wait: libsystemd retries its poll on EINTR. With --events the wait also
 * ends when the journal socket takes more of the queued entries (the sender's event source). */
static int wait_journal(Floor *f, int signal_fd, usec_t timeout) {
        struct pollfd p[] = {
                { .fd = sd_journal_get_fd(f->journal), .events = (short) sd_journal_get_events(f->journal) },
                { .fd = signal_fd, .events = POLLIN },
                { .fd = f->event ? sd_event_get_fd(f->event) : -EBADF, .events = POLLIN },
        };
        uint64_t t = (uint64_t) -1;
        int r;

        if (p[0].fd < 0)
                return p[0].fd;
        (void) sd_journal_get_timeout(f->journal, &t);
        if (t != (uint64_t) -1) {
                usec_t n = now_monotonic();
                t = t > n ? t - n : 0;
        }
        t = MIN(t, timeout);
        r = poll(p, ELEMENTSOF(p), t == (uint64_t) -1 ? -1 : (int) ((t + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (p[1].revents & POLLIN)
                stop = true;
        if (p[2].revents & POLLIN)
                (void) sd_event_run(f->event, 0);
        r = sd_journal_process(f->journal);
        return r < 0 ? r : 0;
}

static int follow(Floor *f, int signal_fd) {
        usec_t eager_until = 0;
        uint64_t n;
        int r;

        while (!stop) {
                r = read_available(f, &n);
                if (r < 0)
                        return r;
                if (n > 0)
                        eager_until = now_monotonic() + EAGER_WINDOW_USEC;
                r = wait_journal(f, signal_fd, now_monotonic() < eager_until ? EAGER_INTERVAL_USEC : (usec_t) -1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static double tv_sec(struct timeval tv) {
        return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

static void print_stats(const Floor *f, usec_t start) {
        double s = (double) (now_monotonic() - start) / 1e6;
        struct rusage ru = {};

        (void) getrusage(RUSAGE_SELF, &ru);
        printf("entries=%" PRIu64 "\nfailures=%" PRIu64 "\nbans=%" PRIu64 "\nnft_calls=%" PRIu64 "\n"
               "tracked=%zu\nseconds=%.6f\nentries_per_sec=%.1f\nbans_per_sec=%.1f\n"
               "user_sec=%.6f\nsys_sec=%.6f\nrss_anon_kib=%lu\nvoluntary_ctxt_switches=%ld\nevents_dropped=%" PRIu64 "\n",
               f->entries, f->failures, f->bans, f->nft_calls, bench_table_size(f->table), s,
               s > 0 ? (double) f->entries / s : 0, s > 0 ? (double) f->bans / s : 0,
               tv_sec(ru.ru_utime), tv_sec(ru.ru_stime), bench_rss_anon_kib(), ru.ru_nvcsw,
               journal_sender_dropped(f->sender));
}

static void help(void) {
        printf("vpopguard-bench-floor [OPTIONS]\n\n"
               "The benchmark floor: journal, one regex, a hash table and batched libnftables calls.\n\n"
               "  --directory=DIR   Read journal files in DIR (default: the local journal)\n"
               "  --live            Follow the journal until SIGTERM/SIGINT (default: read to the end)\n"
               "  --table=NAME      nft table inet NAME with sets banned4/banned6 (default vpopfloor)\n"
               "  --no-nft          Decide bans but do not call libnftables\n"
               "  --max-retry=N     Failures that ban (default 3)\n"
               "  --find-time=SEC   Window; reading starts this long ago, as the daemon's first start (600)\n"
               "  --ban-time=SEC    Element timeout (default 3600)\n"
               "  --batch=N         Entries read per libnftables call at most (default 4096)\n"
               "  --banned=FILE     Write each banned address to FILE\n"
               "  --events          Log vpopguardd's journal entry per ban (another MESSAGE_ID)\n");
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "directory", required_argument, NULL, 'D' },
                { "live", no_argument, NULL, 'l' },
                { "table", required_argument, NULL, 't' },
                { "no-nft", no_argument, NULL, 'n' },
                { "max-retry", required_argument, NULL, 'r' },
                { "find-time", required_argument, NULL, 'f' },
                { "ban-time", required_argument, NULL, 'b' },
                { "batch", required_argument, NULL, 'B' },
                { "banned", required_argument, NULL, 'o' },
                { "events", no_argument, NULL, 'e' },
                {}
        };
        unsigned long long v;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                v = optarg ? strtoull(optarg, NULL, 10) : 0;
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 'D':
                        arg_directory = optarg;
                        break;
                case 'l':
                        arg_live = true;
                        break;
                case 't':
                        arg_table = optarg;
                        break;
                case 'n':
                        arg_nft = false;
                        break;
                case 'r':
                        if (v < 1 || v > BENCH_MAX_RETRY_MAX)
                                return -EINVAL;
                        arg_max_retry = (unsigned) v;
                        break;
                case 'f':
                        arg_find_time = v * USEC_PER_SEC;
                        break;
                case 'b':
                        arg_ban_time = MAX(v, 1ULL) * USEC_PER_SEC;
                        break;
                case 'B':
                        arg_batch = MAX(v, 1ULL);
                        break;
                case 'o':
                        arg_banned = optarg;
                        break;
                case 'e':
                        arg_events = true;
                        break;
                default:
                        return -EINVAL;
                }
        }
        return optind < argc ? -EINVAL : 0;
}

static int open_journal(Floor *f) {
        usec_t now = now_realtime();
        int r;

        r = arg_directory ? sd_journal_open_directory(&f->journal, arg_directory, 0)
                          : sd_journal_open(&f->journal, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        r = sd_journal_add_match(f->journal, "SYSLOG_IDENTIFIER=vpopmail", 0);
        if (r >= 0)
                r = sd_journal_add_match(f->journal, "SYSLOG_IDENTIFIER=vchkpw", 0);
        if (r >= 0)
                r = sd_journal_seek_realtime_usec(f->journal, now > arg_find_time ? now - arg_find_time : 0);
        if (r >= 0 && arg_live)
                r = sd_journal_get_fd(f->journal); /* sets up inotify before the first read */
        return r < 0 ? r : 0;
}

int main(int argc, char *argv[]) {
        _cleanup_close_ int signal_fd = -EBADF;
        usec_t start = now_monotonic();
        sigset_t mask;
        Floor f = {};
        int r;

        if (parse_argv(argc, argv) < 0) {
                fprintf(stderr, "Usage: vpopguard-bench-floor [OPTIONS] (see --help)\n");
                return EXIT_FAILURE;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (arg_live && (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (signal_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)) {
                fprintf(stderr, "floor: signalfd: %m\n");
                return EXIT_FAILURE;
        }

        r = bench_matcher_new(&f.matcher);
        if (r >= 0)
                r = bench_table_new(arg_max_retry, arg_find_time, arg_events, &f.table);
        if (r >= 0 && arg_events) {
                r = sd_event_new(&f.event);
                if (r >= 0)
                        r = journal_sender_new(f.event, NULL, &f.sender);
        }
        if (r >= 0 && arg_nft)
                r = setup_nft(&f);
        if (r >= 0 && arg_banned && !(f.banned = fopen(arg_banned, "we")))
                r = -errno;
        if (r >= 0)
                r = open_journal(&f);
        if (r < 0) {
                fprintf(stderr, "floor: setup failed: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        fprintf(stderr, "floor: ready\n");

        if (arg_live)
                r = follow(&f, signal_fd);
        else {
                uint64_t n;
                r = read_available(&f, &n);
        }
        /* As the daemon before it saves its state: journald has every entry. */
        if (r >= 0 && f.sender && journal_sender_flush(f.sender, 60 * USEC_PER_SEC) < 0)
                r = -ETIMEDOUT;
        if (r < 0)
                fprintf(stderr, "floor: %s\n", strerror(-r));

        print_stats(&f, start);
        if (f.banned && fclose(f.banned) != 0 && r >= 0)
                r = -EIO;
        sd_journal_close(f.journal);
        if (f.nft)
                nft_ctx_free(f.nft);
        free(f.pending);
        journal_sender_free(f.sender);
        sd_event_unref(f.event);
        journal_position_table_reset();
        bench_table_free(f.table);
        bench_matcher_free(f.matcher);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
