/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vpopguard-loadgen: reproducible synthetic vpopmail traffic for integration tests and
 * benchmarks. The same options and seed give the same entries byte for byte, and --expect
 * writes the addresses that a correct daemon ends up banning for them.
 *
 * Every address has exactly one role. Attackers are the only addresses that appear in counted
 * failures; successes, harmless vpopmail lines, decoys (vpopmail text under another
 * SYSLOG_IDENTIFIER), noise and fake addresses written into attacker-controlled text each use
 * their own small pool, so every innocent address repeats often enough that a daemon which
 * wrongly counts it bans it, and the comparison with --expect catches that. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <systemd/sd-journal.h>

#include "macro.h"
#include "time-util.h"

#define FAKE_POOL_SIZE 8U
#define NOISE_POOL_SIZE 64U
#define INNOCENT_REPEAT 5U /* entries per address in the success/benign/decoy pools */

typedef struct Rng {
        uint64_t s;
} Rng;

typedef enum Mode { MODE_EXPORT, MODE_LIVE, MODE_NONE } Mode;
typedef enum Transport { TRANSPORT_JOURNAL, TRANSPORT_SYSLOG } Transport;
typedef enum EntryKind { KIND_FAILURE, KIND_SUCCESS, KIND_BENIGN, KIND_DECOY, KIND_NOISE } EntryKind;

/* A position in the stream: entries are sorted by key, and the rank becomes the timestamp. */
typedef struct Slot {
        uint64_t key;
        uint32_t index; /* attacker index for KIND_FAILURE, a sequence number otherwise */
        uint32_t kind;
} Slot;

typedef struct Host {
        char canonical[INET6_ADDRSTRLEN]; /* inet_ntop(), what --expect lists */
        char printed[INET6_ADDRSTRLEN];   /* as vpopmail prints the compressed text */
        char full[40];                    /* IPv6 only: all 8 groups, as some tcpservers pass it */
} Host;

typedef struct Pool {
        Host *hosts;
        size_t n;
} Pool;

typedef struct Entry {
        const char *identifier;
        const char *unit;
        const char *comm;
        unsigned facility, priority, uid, pid;
        char message[1024];
} Entry;

static uint64_t arg_seed = 1, arg_attackers = 10, arg_failures_min = 5, arg_failures_max = 5;
static uint64_t arg_noise = 90, arg_decoys = 10, arg_successes = 10, arg_benign = 10, arg_ipv6 = 30;
static uint64_t arg_entries, arg_cluster, arg_rate, arg_max_retry = 3, arg_ipv6_spread;
/* 1001 us, not 1 ms: a spacing that divides find_time makes windows of exactly find_time. */
static usec_t arg_start_usec = 1700000000ULL * USEC_PER_SEC, arg_spacing_usec = 1001;
static usec_t arg_find_time = 600 * USEC_PER_SEC;
static Mode arg_mode = MODE_NONE;
static Transport arg_transport = TRANSPORT_JOURNAL;
static const char *arg_expect;
static bool arg_minimal, arg_verbose;

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Independent streams per purpose, so that e.g. --noise does not change the attackers. */
static void rng_init(Rng *r, uint64_t seed, uint64_t stream) {
        uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
        do
                r->s = splitmix64(&x);
        while (r->s == 0);
}

static uint64_t rng_next(Rng *r) { /* xorshift64* */
        r->s ^= r->s >> 12;
        r->s ^= r->s << 25;
        r->s ^= r->s >> 27;
        return r->s * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_below(Rng *r, uint64_t n) {
        return n == 0 ? 0 : (uint64_t) (((unsigned __int128) rng_next(r) * n) >> 64);
}

static bool rng_percent(Rng *r, unsigned percent) {
        return rng_below(r, 100) < percent;
}

#define PICK(r, array) ((array)[rng_below((r), ELEMENTSOF(array))])

/* Bijections on 32 and 64 bits: distinct counters give distinct addresses without a set. */
static uint32_t permute32(uint32_t x, uint32_t key) {
        x ^= key;
        x *= 0x9e3779b1U;
        x ^= x >> 15;
        x *= 0x85ebca6bU;
        x ^= x >> 13;
        return x;
}

static uint64_t permute64(uint64_t x, uint64_t key) {
        x ^= key;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 31;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 29;
        return x;
}

typedef struct AddressGen {
        Rng rng;
        uint32_t key4;
        uint64_t key6, next4, next6_short, next6_long;
        uint16_t net6; /* third group of the long IPv6 addresses */
} AddressGen;

static void host_fill(Host *h, int family, const uint8_t *bytes) {
        const char *s = inet_ntop(family, bytes, h->canonical, sizeof h->canonical);
        size_t i;

        if (!s)
                abort();
        strcpy(h->printed, h->canonical);
        h->full[0] = 0;
        if (family != AF_INET6)
                return;

        /* vchkpw hides the colons of short IPv6 text, so that ':' can end the line's fields. */
        if (strlen(h->printed) <= 30)
                for (i = 0; h->printed[i]; i++)
                        if (h->printed[i] == ':')
                                h->printed[i] = '_';
        for (i = 0; i < 8; i++)
                sprintf(h->full + i * 5, i < 7 ? "%02x%02x:" : "%02x%02x", bytes[2 * i], bytes[2 * i + 1]);
}

/* --ipv6-spread=1: the fourth group from a counter, so that every IPv6 address lies in a /64 of
 * its own (short and long forms apart by the top bit) and counting per /64 (IPv6Prefix=64)
 * decides what counting per address does. */
static void spread_net(uint8_t *b, uint64_t counter, uint16_t half) {
        if (counter > 0x8000) {
                fprintf(stderr, "vpopguard-loadgen: too many IPv6 addresses for --ipv6-spread\n");
                exit(EXIT_FAILURE);
        }
        uint16_t k = (uint16_t) (half | (counter - 1));
        b[6] = k >> 8, b[7] = (uint8_t) k;
}

/* Never loopback, 0/8, multicast or reserved, so every address is bannable; never in the
 * TEST-NETs or 2001:db8::/48, which hand-written lines in the same test may use. */
static void address_gen_next(AddressGen *g, Host *ret) {
        uint8_t b[16] = { 0x20, 0x01, 0x0d, 0xb8 };

        if (!rng_percent(&g->rng, arg_ipv6)) {
                for (;;) {
                        uint32_t v = permute32((uint32_t) g->next4++, g->key4);
                        uint8_t first = v >> 24;

                        uint32_t net = v >> 8;

                        if (first == 0 || first == 10 || first == 127 || first >= 224 || (v & 0xff) == 0 ||
                            net == 0xc00002 || net == 0xc63364 || net == 0xcb0071)
                                continue;
                        b[0] = first, b[1] = v >> 16, b[2] = v >> 8, b[3] = v;
                        return host_fill(ret, AF_INET, b);
                }
        }

        if (rng_percent(&g->rng, 50)) {
                /* 2001:db8:ffff::X:Y, printed with underscores. */
                uint32_t v;

                do
                        v = permute32((uint32_t) g->next6_short++, g->key4 ^ 0x5bd1e995U);
                while ((v & 0xffff) == 0);
                b[4] = b[5] = 0xff;
                if (arg_ipv6_spread)
                        spread_net(b, g->next6_short, 0);
                b[12] = v >> 24, b[13] = v >> 16, b[14] = v >> 8, b[15] = v;
                return host_fill(ret, AF_INET6, b);
        }

        /* 2001:db8:NNNN:XXXX:XXXX:XXXX:XXXX:XXXX with no zero group: longer than 30, colons. */
        for (;;) {
                uint64_t v = permute64(g->next6_long++, g->key6);
                bool ok = true;

                for (unsigned i = 0; i < 4; i++)
                        ok = ok && ((v >> (16 * i)) & 0xf000) != 0;
                if (!ok)
                        continue;
                b[4] = g->net6 >> 8, b[5] = g->net6, b[6] = 0xa5, b[7] = 0x5a;
                if (arg_ipv6_spread)
                        spread_net(b, g->next6_long, 0x8000);
                for (unsigned i = 0; i < 8; i++)
                        b[8 + i] = v >> (56 - 8 * i);
                return host_fill(ret, AF_INET6, b);
        }
}

static int pool_make(AddressGen *g, size_t n, Pool *ret) {
        Host *h = calloc(MAX(n, 1U), sizeof(Host));

        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                address_gen_next(g, h + i);
        *ret = (Pool) { .hosts = h, .n = n };
        return 0;
}

/* The text of an address as it appears in one line: IPv6 sometimes in its full form, so the
 * daemon has to normalise two spellings of the same attacker. */
static const char *host_text(Rng *r, const Host *h) {
        return h->full[0] && rng_percent(r, 20) ? h->full : h->printed;
}

static const char *pool_text(Rng *r, const Pool *p) {
        return host_text(r, p->hosts + rng_below(r, p->n));
}

static const char *const users[] = {
        "www", "admin", "info", "test", "postmaster", "sales", "root", "user", "joe", "mail",
        "webmaster", "support", "a.b+tag", "o'brien", "x{y}|z", "~tilde", "1234", "ADMIN",
};
static const char *const domains[] = {
        "", "", "", "example.com", "example.org", "mail.example.net", "xn--bcher-kva.example", "EXAMPLE.COM",
};
static const char *const services[] = {
        "smtp", "pop3", "imap", "smtps", "submission", "imaps", "pop3s", "2525", "0",
};
/* Attacker-controlled text; a trailing ':' gets a fake address appended. */
static const char *const passwords[] = {
        "123456", "password", "qwerty", "P@ssw0rd!", "letmein 2024", "it's me", "a:b:c", "100%sure",
        "<65825.1118321790@mail.example.com>", "p\xc3\xa4sswort", "\"quoted\"", "x@y:",
        "') root@example.com:", "#:%s%n:",
};
static const char *const raw_logins[] = {
        "bad name:here", "user@exa mple.com", "a\"b'c", "<script>", "bad::name", "x@y:",
        "root@localhost:", "tab\there", "50% off",
};

static void random_text(Rng *r, char *buf, size_t len) {
        for (size_t i = 0; i < len; i++)
                buf[i] = (char) (' ' + rng_below(r, 95));
        buf[len] = 0;
}

static const char *hostile(Rng *r, const Pool *fakes, const char *const *table, size_t n, char *buf, size_t size) {
        const char *t = table[rng_below(r, n)];

        if (rng_percent(r, 15)) {
                random_text(r, buf, 1 + rng_below(r, MIN(size - 1, 64U)));
                return buf;
        }
        if (t[0] && t[strlen(t) - 1] == ':') {
                snprintf(buf, size, "%s%s", t, pool_text(r, fakes));
                return buf;
        }
        return t;
}

static const char *vchkpw_prefix(Rng *r, char *buf, size_t size, const char **ret_service) {
        const char *s = PICK(r, services);

        *ret_service = s;
        if (rng_percent(r, 5))
                return "vchkpw"; /* very old builds */
        snprintf(buf, size, "vchkpw-%s", s);
        return buf;
}

static void replace_percent(char *s) {
        for (; *s; s++)
                if (*s == '%')
                        *s = '#';
}

/* One failure line of any format vchkpw prints, ending in ip ("" for an unknown client). */
static void render_failure(Rng *r, const Pool *fakes, const char *ip, char *buf, size_t size) {
        static const unsigned weights[] = { 25, 30, 8, 6, 4, 5, 5, 3, 9, 5 };
        char pbuf[32], xbuf[128], name[160];
        const char *service, *prefix = vchkpw_prefix(r, pbuf, sizeof pbuf, &service);
        const char *user = PICK(r, users), *domain = PICK(r, domains), *x;
        unsigned w = rng_below(r, 100), kind = 0;

        while (kind + 1 < ELEMENTSOF(weights) && w >= weights[kind])
                w -= weights[kind++];
        if (domain[0])
                snprintf(name, sizeof name, "%s@%s", user, domain);
        else
                snprintf(name, sizeof name, "%s", user);

        switch (kind) {
        case 0:
                snprintf(buf, size, "%s: vpopmail user not found %s@%s:%s", prefix, user, domain, ip);
                break;
        case 1:
                snprintf(buf, size, "%s: password fail %s@%s:%s", prefix, user, domain, ip);
                break;
        case 2:
                x = hostile(r, fakes, passwords, ELEMENTSOF(passwords), xbuf, sizeof xbuf);
                snprintf(buf, size, "%s: password fail (pass: '%s') %s@%s:%s", prefix, x, user, domain, ip);
                break;
        case 3:
                x = hostile(r, fakes, raw_logins, ELEMENTSOF(raw_logins), xbuf, sizeof xbuf);
                snprintf(buf, size, "%s: invalid user/domain characters %s:%s", prefix, x, ip);
                break;
        case 4:
                snprintf(buf, size, "%s: null user name given :%s", prefix, ip);
                break;
        case 5:
                snprintf(buf, size, "%s: null password given %s:%s", prefix, name, ip);
                break;
        case 6:
                snprintf(buf, size, "%s: system user not found %s:%s", prefix, user, ip);
                break;
        case 7:
                snprintf(buf, size, "%s: system user shadow entry not found %s:%s", prefix, name, ip);
                break;
        case 8:
                snprintf(buf, size, "%s: system password fail %s:%s", prefix, name, ip);
                break;
        default:
                x = hostile(r, fakes, passwords, ELEMENTSOF(passwords), xbuf, sizeof xbuf);
                snprintf(buf, size, "%s: system password fail (pass: '%s') %s:%s", prefix, x, name, ip);
        }
        replace_percent(buf);
}

static void entry_vpopmail(Rng *r, Entry *e) {
        static const char *const units[] = { "qmail-smtpd.service", "qmail-pop3d.service", "qmail-imapd.service" };

        *e = (Entry) {
                .identifier = "vpopmail",
                .unit = PICK(r, units),
                .comm = rng_percent(r, 30) ? "vchkpw" : NULL, /* often gone before journald looks */
                .facility = LOG_MAIL >> 3,
                .priority = LOG_NOTICE,
                .pid = 1000 + (unsigned) rng_below(r, 4000000),
        };
}

static void render_success(Rng *r, const Pool *p, Entry *e) {
        char pbuf[32];
        const char *service, *prefix = vchkpw_prefix(r, pbuf, sizeof pbuf, &service);
        const char *ip = pool_text(r, p), *user = PICK(r, users), *domain = PICK(r, domains), *how = "PLAIN";

        if (rng_percent(r, 10)) {
                snprintf(e->message, sizeof e->message, "%s: system password login success %s:%s", prefix, user, ip);
                return;
        }
        if (rng_percent(r, 30))
                how = strstr(service, "pop") ? "APOP" : "CRAM-MD5";
        snprintf(e->message, sizeof e->message, "%s: (%s) login success %s@%s:%s", prefix, how, user, domain, ip);
}

/* vpopmail lines that must never count: after a correct password, internal errors, no usable
 * client address (with a fake one earlier in the line), and loopback webmail. */
static void render_benign(Rng *r, const Pool *p, const Pool *fakes, Entry *e) {
        static const char *const denied[] = { "pop", "smtp", "imap", "webmail" };
        static const char *const internal[] = { "user has no password", "dir auto create failed" };
        char pbuf[32];
        const char *service, *prefix = vchkpw_prefix(r, pbuf, sizeof pbuf, &service);
        const char *ip = pool_text(r, p), *user = PICK(r, users), *domain = PICK(r, domains);

        switch (rng_below(r, 6)) {
        case 0:
                snprintf(e->message, sizeof e->message, "%s: %s access denied %s@%s:%s", prefix, PICK(r, denied), user, domain, ip);
                break;
        case 1:
                snprintf(e->message, sizeof e->message, "%s: %s %s@%s:%s", prefix, PICK(r, internal), user, domain, ip);
                break;
        case 2:
                render_failure(r, fakes, "", e->message, sizeof e->message);
                break;
        case 3:
                snprintf(e->message, sizeof e->message, "vchkpw-webmail: password fail %s@%s:127.0.0.1", user, domain);
                break;
        case 4:
                snprintf(e->message, sizeof e->message, "%s: invalid user/domain characters x@y:%s:", prefix, pool_text(r, fakes));
                break;
        default:
                snprintf(e->message, sizeof e->message, "vchkpw: can't write SQL logs");
        }
}

static void render_decoy(Rng *r, const Pool *p, const Pool *fakes, Entry *e) {
        static const char *const identifiers[] = {
                "vpopmail-test", "vchkpw-pop3", "VPOPMAIL", "vpopmail2", "dovecot", "sshd", "popa3d", "logger",
        };
        char line[sizeof e->message - 16];

        e->identifier = PICK(r, identifiers);
        e->comm = NULL;
        render_failure(r, fakes, pool_text(r, p), line, sizeof line);
        snprintf(e->message, sizeof e->message, "%s%s", streq(e->identifier, "logger") ? "vpopmail: " : "", line);
}

static void render_noise(Rng *r, const Pool *p, Entry *e) {
        const char *ip = p->hosts[rng_below(r, p->n)].canonical, *user = PICK(r, users);
        unsigned port = 1024 + (unsigned) rng_below(r, 64000), n = (unsigned) rng_below(r, 100000);

        *e = (Entry) { .facility = LOG_AUTHPRIV >> 3, .priority = LOG_INFO, .pid = 100 + (unsigned) rng_below(r, 100000) };
        switch (rng_below(r, 8)) {
        case 0:
                e->identifier = e->comm = "sshd", e->unit = "ssh.service";
                snprintf(e->message, sizeof e->message, "Failed password for invalid user %s from %s port %u ssh2", user, ip, port);
                break;
        case 1:
                e->identifier = e->comm = "sshd", e->unit = "ssh.service";
                snprintf(e->message, sizeof e->message, "Connection closed by %s port %u [preauth]", ip, port);
                break;
        case 2:
                e->identifier = "postfix/smtpd", e->comm = "smtpd", e->unit = "postfix@-.service";
                e->facility = LOG_MAIL >> 3, e->priority = LOG_WARNING, e->uid = 106;
                snprintf(e->message, sizeof e->message, "warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", ip);
                break;
        case 3:
                e->identifier = "postfix/smtpd", e->comm = "smtpd", e->unit = "postfix@-.service";
                e->facility = LOG_MAIL >> 3, e->uid = 106;
                snprintf(e->message, sizeof e->message, "connect from unknown[%s]", ip);
                break;
        case 4:
                e->identifier = e->comm = "CRON", e->unit = "cron.service";
                snprintf(e->message, sizeof e->message, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)");
                break;
        case 5:
                e->identifier = e->comm = "tcpserver", e->unit = "qmail-pop3d.service", e->facility = LOG_DAEMON >> 3;
                snprintf(e->message, sizeof e->message, "tcpserver: ok %u mail.example.com:192.0.2.1:110 :%s::%u", n, ip, port);
                break;
        case 6:
                e->identifier = e->comm = "dovecot", e->unit = "dovecot.service", e->facility = LOG_MAIL >> 3;
                snprintf(e->message, sizeof e->message, "auth: passwd-file(%s,%s): unknown user", user, ip);
                break;
        default:
                e->identifier = "systemd-logind", e->comm = "systemd-logind", e->unit = "systemd-logind.service";
                snprintf(e->message, sizeof e->message, "New session %u of user %s.", n, user);
        }
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != 0 || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "600", "600s", "10min", "500ms", "250us", "2h". */
static int parse_span(const char *s, usec_t *ret) {
        static const struct { const char *suffix; usec_t mult; } units[] = {
                { "", USEC_PER_SEC }, { "s", USEC_PER_SEC }, { "us", 1 }, { "ms", USEC_PER_MSEC },
                { "m", USEC_PER_MINUTE }, { "min", USEC_PER_MINUTE }, { "h", USEC_PER_HOUR },
        };
        char *end;
        unsigned long long v;

        errno = 0;
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].mult)
                                return -ERANGE;
                        *ret = v * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}

static int slot_compare(const void *a, const void *b) {
        const Slot *x = a, *y = b;

        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

static int host_compare(const void *a, const void *b) {
        return strcmp(*(const char * const *) a, *(const char * const *) b);
}

/* The failure window of failure-table.h: a failure counts while it is less than find_time older
 * than the newest failure of its address; the address is banned when max_retry count. */
static int write_expect(const Slot *slots, size_t n, const Pool *attackers, usec_t spacing) {
        size_t ring = arg_max_retry - 1, n_banned = 0, n_boundary = 0;
        _cleanup_free_ usec_t *times = calloc(MAX(attackers->n * ring, 1U), sizeof(usec_t));
        _cleanup_free_ unsigned *count = calloc(MAX(attackers->n, 1U), sizeof(unsigned));
        _cleanup_free_ bool *banned = calloc(MAX(attackers->n, 1U), sizeof(bool));
        _cleanup_free_ const char **list = calloc(MAX(attackers->n, 1U), sizeof(char *));
        FILE *f;

        if (!times || !count || !banned || !list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint32_t a = slots[i].index;
                usec_t t = (usec_t) i * spacing;

                if (slots[i].kind != KIND_FAILURE || banned[a])
                        continue;
                usec_t span = count[a] >= ring && ring > 0 ? t - times[a * ring + (count[a] - ring) % ring] : 0;

                n_boundary += count[a] >= ring && ring > 0 && span == arg_find_time;
                if (count[a] >= ring && span < arg_find_time) {
                        banned[a] = true;
                        list[n_banned++] = attackers->hosts[a].canonical;
                        continue;
                }
                if (ring > 0)
                        times[a * ring + count[a] % ring] = t;
                count[a]++;
        }

        qsort(list, n_banned, sizeof(char *), host_compare);
        f = fopen(arg_expect, "we");
        if (!f)
                return -errno;
        for (size_t i = 0; i < n_banned; i++)
                fprintf(f, "%s\n", list[i]);
        if (fclose(f) != 0)
                return -errno;
        if (n_boundary > 0)
                fprintf(stderr, "loadgen: warning: %zu windows span exactly --find-time; they count as inside. "
                        "Pick a --spacing-usec that does not divide --find-time to avoid the edge.\n", n_boundary);
        if (arg_verbose)
                fprintf(stderr, "loadgen: %zu of %zu attackers must be banned\n", n_banned, attackers->n);
        return 0;
}

static char *u64_to_str(char buf[static 21], uint64_t v) {
        char *p = buf + 20;

        *p = 0;
        do
                *--p = (char) ('0' + v % 10);
        while ((v /= 10) != 0);
        return p;
}

static void put_field(const char *name, const char *value) {
        fputs_unlocked(name, stdout);
        putc_unlocked('=', stdout);
        fputs_unlocked(value, stdout);
        putc_unlocked('\n', stdout);
}

static void put_number(const char *name, uint64_t v) {
        char buf[21];

        put_field(name, u64_to_str(buf, v));
}

/* Journal export format; MESSAGE never holds a newline, so every field uses the text form. */
static void write_export(const Entry *e, uint64_t i, const char *boot_id) {
        put_number("__REALTIME_TIMESTAMP", arg_start_usec + i * arg_spacing_usec);
        put_number("__MONOTONIC_TIMESTAMP", 10 * USEC_PER_SEC + i * arg_spacing_usec);
        put_field("_BOOT_ID", boot_id);
        put_field("_TRANSPORT", "syslog");
        put_number("_UID", e->uid);
        put_number("PRIORITY", e->priority);
        put_field("SYSLOG_IDENTIFIER", e->identifier);
        put_field("MESSAGE", e->message);
        if (!arg_minimal) {
                put_field("_HOSTNAME", "mail");
                put_number("_GID", e->uid);
                put_number("_PID", e->pid);
                if (e->comm)
                        put_field("_COMM", e->comm);
                if (e->unit)
                        put_field("_SYSTEMD_UNIT", e->unit);
                put_number("SYSLOG_FACILITY", e->facility);
                put_number("SYSLOG_PID", e->pid);
        }
        putc_unlocked('\n', stdout);
}

static int send_live(const Entry *e) {
        static const char *opened;

        if (arg_transport == TRANSPORT_JOURNAL)
                return sd_journal_send("MESSAGE=%s", e->message,
                                       "SYSLOG_IDENTIFIER=%s", e->identifier,
                                       "SYSLOG_FACILITY=%u", e->facility,
                                       "PRIORITY=%u", e->priority,
                                       "SYSLOG_PID=%u", (unsigned) getpid(),
                                       NULL);
        /* Like vchkpw: openlog(LOG_NAME, LOG_PID, LOG_MAIL) and syslog(LOG_NOTICE, "%s", line). */
        if (opened != e->identifier) {
                openlog(e->identifier, LOG_PID, (int) e->facility << 3);
                opened = e->identifier;
        }
        syslog((int) e->priority, "%s", e->message);
        return 0;
}

static void pace(uint64_t i) {
        static struct timespec start;
        struct timespec t;
        uint64_t ns;

        if (arg_rate == 0)
                return;
        if (i == 0)
                clock_gettime(CLOCK_MONOTONIC, &start);
        ns = (uint64_t) start.tv_nsec + i * 1000000000ULL / arg_rate;
        t = (struct timespec) { .tv_sec = start.tv_sec + (time_t) (ns / 1000000000ULL), .tv_nsec = (long) (ns % 1000000000ULL) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
                ;
}

static void help(void) {
        printf("vpopguard-loadgen --export|--live [OPTIONS]\n\n"
               "Writes reproducible synthetic vpopmail traffic.\n\n"
               "  --export              Journal export format on stdout (for systemd-journal-remote)\n"
               "  --live                Send to the running journald\n"
               "  --transport=journal|syslog  Live: sd_journal_send() or openlog()/syslog() (vchkpw's way)\n"
               "  --rate=N              Live: at most N entries per second (0: unlimited)\n"
               "  --seed=N              Random seed (default 1)\n"
               "  --attackers=N         Attacking addresses (default 10)\n"
               "  --failures=N|A-B      Failures per attacker (default 5)\n"
               "  --noise=PERCENT       Share of entries from other services (default 90)\n"
               "  --decoys=N            vpopmail text under other identifiers (default 10)\n"
               "  --successes=N         Login successes (default 10)\n"
               "  --benign=N            vpopmail lines that never count (default 10)\n"
               "  --ipv6=PERCENT        Share of IPv6 addresses (default 30)\n"
               "  --ipv6-spread=1       Every IPv6 address in a /64 of its own\n"
               "  --entries=N           Total entries; noise fills up (default: from --noise)\n"
               "  --cluster=N           Each attacker's failures within ~N consecutive entries\n"
               "  --start-usec=T|now    Realtime of the first entry (default 1700000000000000)\n"
               "  --spacing-usec=D      Time between entries (default 1001)\n"
               "  --expect=FILE         Write the addresses that must end up banned, sorted\n"
               "  --max-retry=N         For --expect (default 3)\n"
               "  --find-time=SPAN      For --expect (default 600s)\n"
               "  --minimal-fields      Export only the fields a reader needs (faster to import)\n"
               "  --verbose             Print a summary to stderr\n");
}

/* Plain numeric options: --NAME=N with 0 <= N <= max (and min <= N). */
static const struct NumericOption {
        const char *name;
        uint64_t *value;
        uint64_t min, max;
} numeric_options[] = {
        { "seed", &arg_seed, 0, UINT64_MAX },
        { "attackers", &arg_attackers, 0, 10000000 },
        { "noise", &arg_noise, 0, 100 },
        { "decoys", &arg_decoys, 0, 100000000 },
        { "successes", &arg_successes, 0, 100000000 },
        { "benign", &arg_benign, 0, 100000000 },
        { "ipv6", &arg_ipv6, 0, 100 },
        { "ipv6-spread", &arg_ipv6_spread, 0, 1 },
        { "spacing-usec", &arg_spacing_usec, 0, 1ULL << 40 },
        { "entries", &arg_entries, 0, UINT32_MAX },
        { "cluster", &arg_cluster, 0, UINT32_MAX },
        { "rate", &arg_rate, 0, 1000000000 },
        { "max-retry", &arg_max_retry, 1, 100 },
};

static int parse_other(int c, char *v) {
        char *dash;
        int r;

        switch (c) {
        case 'E':
                arg_mode = MODE_EXPORT;
                return 0;
        case 'L':
                arg_mode = MODE_LIVE;
                return 0;
        case 'm':
                arg_minimal = true;
                return 0;
        case 'v':
                arg_verbose = true;
                return 0;
        case 'x':
                arg_expect = v;
                return 0;
        case 'f':
                return parse_span(v, &arg_find_time);
        case 't':
                if (!streq(v, "journal") && !streq(v, "syslog"))
                        return -EINVAL;
                arg_transport = streq(v, "syslog") ? TRANSPORT_SYSLOG : TRANSPORT_JOURNAL;
                return 0;
        case 's':
                if (streq(v, "now")) {
                        struct timespec ts;

                        clock_gettime(CLOCK_REALTIME, &ts);
                        arg_start_usec = (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
                        return 0;
                }
                return parse_uint(v, UINT64_MAX / 2, &arg_start_usec);
        case 'F': /* N or A-B */
                dash = strchr(v, '-');
                if (dash)
                        *dash = 0;
                r = parse_uint(v, 10000, &arg_failures_min);
                if (r >= 0)
                        r = parse_uint(dash ? dash + 1 : v, 10000, &arg_failures_max);
                if (dash)
                        *dash = '-';
                return r < 0 || arg_failures_max < arg_failures_min ? -EINVAL : 0;
        }
        return -EINVAL;
}

static int parse_argv(int argc, char *argv[]) {
        struct option options[ELEMENTSOF(numeric_options) + 12] = {
                { "help", no_argument, NULL, 'h' },
                { "export", no_argument, NULL, 'E' },
                { "live", no_argument, NULL, 'L' },
                { "minimal-fields", no_argument, NULL, 'm' },
                { "verbose", no_argument, NULL, 'v' },
                { "expect", required_argument, NULL, 'x' },
                { "find-time", required_argument, NULL, 'f' },
                { "transport", required_argument, NULL, 't' },
                { "start-usec", required_argument, NULL, 's' },
                { "failures", required_argument, NULL, 'F' },
        };
        size_t n_fixed = 10;
        int c, r;

        for (size_t i = 0; i < ELEMENTSOF(numeric_options); i++)
                options[n_fixed + i] = (struct option) { numeric_options[i].name, required_argument, NULL, 0x100 + (int) i };

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        exit(EXIT_SUCCESS);
                }
                if (c == '?')
                        return -EINVAL;
                if (c >= 0x100) {
                        const struct NumericOption *o = numeric_options + (c - 0x100);

                        r = parse_uint(optarg, o->max, o->value);
                        if (r >= 0 && *o->value < o->min)
                                r = -ERANGE;
                } else
                        r = parse_other(c, optarg);
                if (r < 0) {
                        fprintf(stderr, "Invalid value for option %s: %s\n", argv[optind - 1], strerror(-r));
                        return r;
                }
        }
        if (optind < argc || (arg_mode == MODE_NONE && !arg_expect)) {
                fprintf(stderr, "Usage: vpopguard-loadgen --export|--live [OPTIONS] (see --help)\n");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ Slot *slots = NULL;
        _cleanup_free_ unsigned *failures = NULL;
        Pool attackers = {}, successes = {}, benign = {}, decoys = {}, noise = {}, fakes = {};
        AddressGen gen = {};
        Rng sched, text;
        uint64_t n_failures = 0, fixed, n, i, k = 0;
        char boot_id[33];
        int r;

        if (parse_argv(argc, argv) < 0)
                return EXIT_FAILURE;

        rng_init(&gen.rng, arg_seed, 1);
        gen.key4 = (uint32_t) rng_next(&gen.rng);
        gen.key6 = rng_next(&gen.rng);
        gen.net6 = 0x1000 | (uint16_t) rng_below(&gen.rng, 0xf000);
        rng_init(&sched, arg_seed, 2);
        rng_init(&text, arg_seed, 3);
        snprintf(boot_id, sizeof boot_id, "%016" PRIx64 "%016" PRIx64, rng_next(&text), rng_next(&text));

        failures = calloc(MAX(arg_attackers, 1U), sizeof(unsigned));
        if (!failures)
                return EXIT_FAILURE;
        for (i = 0; i < arg_attackers; i++) {
                failures[i] = arg_failures_min + (unsigned) rng_below(&sched, arg_failures_max - arg_failures_min + 1);
                n_failures += failures[i];
        }

        fixed = n_failures + arg_successes + arg_benign + arg_decoys;
        if (arg_entries > 0)
                n = arg_entries;
        else if (arg_noise < 100)
                n = fixed + (fixed * arg_noise + (100 - arg_noise) - 1) / (100 - arg_noise);
        else
                n = 0;
        if (n == 0) {
                fprintf(stderr, "--noise=100 needs --entries=N\n");
                return EXIT_FAILURE;
        }
        if (n < fixed || n > UINT32_MAX) {
                fprintf(stderr, "--entries=%" PRIu64 " cannot hold the %" PRIu64 " entries that are not noise\n", n, fixed);
                return EXIT_FAILURE;
        }

        if (pool_make(&gen, arg_attackers, &attackers) < 0 ||
            pool_make(&gen, arg_successes ? 1 + (arg_successes - 1) / INNOCENT_REPEAT : 0, &successes) < 0 ||
            pool_make(&gen, arg_benign ? 1 + (arg_benign - 1) / INNOCENT_REPEAT : 0, &benign) < 0 ||
            pool_make(&gen, arg_decoys ? 1 + (arg_decoys - 1) / INNOCENT_REPEAT : 0, &decoys) < 0 ||
            pool_make(&gen, NOISE_POOL_SIZE, &noise) < 0 ||
            pool_make(&gen, FAKE_POOL_SIZE, &fakes) < 0)
                return EXIT_FAILURE;

        /* Keys scatter entries uniformly; --cluster draws an attacker's failures near one spot. */
        slots = calloc(MAX(n, 1U), sizeof(Slot));
        if (!slots)
                return EXIT_FAILURE;
        for (uint32_t a = 0; a < arg_attackers; a++) {
                uint64_t width = arg_cluster > 0 && arg_cluster < n ? arg_cluster : n;
                uint64_t base = rng_below(&sched, n - width + 1);

                for (unsigned j = 0; j < failures[a]; j++)
                        slots[k++] = (Slot) { .key = (base + rng_below(&sched, width)) << 24 | rng_below(&sched, 1 << 24),
                                              .index = a, .kind = KIND_FAILURE };
        }
        for (; k < n; k++) {
                EntryKind kind = k < n_failures + arg_successes ? KIND_SUCCESS :
                                 k < n_failures + arg_successes + arg_benign ? KIND_BENIGN :
                                 k < fixed ? KIND_DECOY : KIND_NOISE;

                slots[k] = (Slot) { .key = rng_below(&sched, n) << 24 | rng_below(&sched, 1 << 24),
                                    .index = (uint32_t) k, .kind = kind };
        }
        qsort(slots, n, sizeof(Slot), slot_compare);

        if (arg_expect) {
                usec_t spacing = arg_mode == MODE_LIVE ? (arg_rate ? USEC_PER_SEC / arg_rate : 0) : arg_spacing_usec;

                r = write_expect(slots, n, &attackers, spacing);
                if (r < 0) {
                        fprintf(stderr, "Failed to write %s: %s\n", arg_expect, strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (arg_mode == MODE_EXPORT)
                setvbuf(stdout, NULL, _IOFBF, 1 << 20);

        for (i = 0; i < n && arg_mode != MODE_NONE; i++) {
                Entry e;

                entry_vpopmail(&text, &e);
                switch (slots[i].kind) {
                case KIND_FAILURE:
                        render_failure(&text, &fakes, host_text(&text, attackers.hosts + slots[i].index), e.message, sizeof e.message);
                        break;
                case KIND_SUCCESS:
                        render_success(&text, &successes, &e);
                        break;
                case KIND_BENIGN:
                        render_benign(&text, &benign, &fakes, &e);
                        break;
                case KIND_DECOY:
                        render_decoy(&text, &decoys, &fakes, &e);
                        break;
                default:
                        render_noise(&text, &noise, &e);
                }

                if (arg_mode == MODE_EXPORT) {
                        write_export(&e, i, boot_id);
                        continue;
                }
                pace(i);
                r = send_live(&e);
                if (r < 0) {
                        fprintf(stderr, "Failed to send entry %" PRIu64 ": %s\n", i, strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (arg_mode == MODE_EXPORT && (fflush(stdout) != 0 || ferror(stdout))) {
                fprintf(stderr, "Failed to write to stdout: %m\n");
                return EXIT_FAILURE;
        }
        if (arg_verbose)
                fprintf(stderr, "loadgen: %" PRIu64 " entries, %" PRIu64 " failures from %" PRIu64 " attackers\n",
                        n, n_failures, arg_attackers);

        free(attackers.hosts), free(successes.hosts), free(benign.hosts);
        free(decoys.hosts), free(noise.hosts), free(fakes.hosts);
        return EXIT_SUCCESS;
}
