/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>

#include "failregex.h"
#include "macro.h"

#define HOST_TAG "<HOST>"
#define HOST_GROUP "vpopguard_host"
#define HOST_CALLOUT 255
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* What <HOST> becomes, per HostFormat. The class and the bounds only keep the search cheap (no
 * text outside them can be an address); the callout decides. The outer group lets a pattern put
 * a quantifier after <HOST>. */
#define HOST_EXPANSION(class, max) \
        "(?:(?<" HOST_GROUP ">" class "{2," max "})(?C" STRINGIFY(HOST_CALLOUT) "))"
static const char * const host_expansion[_HOST_FORMAT_MAX] = {
        [HOST_FORMAT_STANDARD] = HOST_EXPANSION("[][0-9A-Fa-f.:]", "47"),
        [HOST_FORMAT_VPOPMAIL] = HOST_EXPANSION("[0-9A-Fa-f.:_]", "45"),
};

static const char * const host_format_table[_HOST_FORMAT_MAX] = {
        [HOST_FORMAT_STANDARD] = "standard",
        [HOST_FORMAT_VPOPMAIL] = "vpopmail",
};

const char *host_format_to_string(HostFormat f) {
        if (f < 0 || f >= _HOST_FORMAT_MAX)
                return NULL;
        return host_format_table[f];
}

HostFormat host_format_from_string(const char *s) {
        if (!s)
                return _HOST_FORMAT_INVALID;
        for (HostFormat f = 0; f < _HOST_FORMAT_MAX; f++)
                if (streq(host_format_table[f], s))
                        return f;
        return _HOST_FORMAT_INVALID;
}

/* vpopmail prints IPv6 addresses of up to this many characters with '_' instead of ':'. */
#define IPV6_COLON_TEXT_MIN 31

/* With JIT, the depth and heap limits do not apply; its stack is bounded instead. */
#define REGEX_JIT_STACK_START (32U * 1024U)
#define REGEX_JIT_STACK_MAX (1024U * 1024U)

struct Regex {
        char *pattern;
        RegexKind kind;
        HostFormat host_format;
        uint32_t host_group; /* capture number of <HOST>; 0 for REGEX_IGNORE */
        pcre2_code *code;
        pcre2_match_data *match_data; /* one per Regex: matching is single-threaded */
        pcre2_match_context *match_context;
        pcre2_jit_stack *jit_stack;
        /* The last span of the current match that the callout accepted, and its address: the
         * match's own <HOST> span is usually that one, and then it is not parsed again. */
        size_t accepted_start, accepted_end;
        Address accepted;
};

static bool is_address_neighbour(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
               c == '_';
}

/* The vpopmail rules for subject[start, end) (see HOST_FORMAT_VPOPMAIL). Besides being an address,
 * it must be a whole token (so "11.2.3.4" never yields "1.2.3.4"), must not end in a single ':'
 * (an unknown client leaves the line ending in ':'; "::" is the end of a real address such as
 * 2a02:8109:b6c0:1a2b:ffff:ffff::), and colon IPv6 must be longer than what vpopmail would have
 * printed with underscores: a short colon form is attacker text or the tail of a longer address
 * (IPv4-mapped text excepted, see below). */
static bool vpopmail_host_is_valid(const char *subject, size_t subject_len, size_t start, size_t end, Address *ret) {
        size_t len = end - start;
        const char *s = subject + start;
        Address a;

        if (start > 0 && is_address_neighbour((unsigned char) subject[start - 1]))
                return false;
        if (end < subject_len && is_address_neighbour((unsigned char) subject[end]))
                return false;
        if (s[len - 1] == ':' && (len < 2 || s[len - 2] != ':'))
                return false;
        if (address_parse(s, len, &a) < 0)
                return false;
        /* IPv4-mapped text ("::ffff:192.0.2.7") ends in its own dotted quad, which is a shorter
         * candidate and wins first wherever the start of <HOST> is not fixed, so accepting it
         * cannot move the address. */
        if (memchr(s, ':', len) && len < IPV6_COLON_TEXT_MIN && a.family != AF_INET)
                return false;
        *ret = a;
        return true;
}

/* The standard rules for subject[start, end) (see HOST_FORMAT_STANDARD): an address, bare or in
 * brackets, that is a whole token. A ':' next to bare colon IPv6 means the token goes on, so
 * that text is no address of its own: a place in the line holds one address or none, whatever
 * the pattern around <HOST> lets the engine try. */
static bool standard_host_is_valid(const char *subject, size_t subject_len, size_t start, size_t end, Address *ret) {
        unsigned char before = start > 0 ? (unsigned char) subject[start - 1] : 0;
        unsigned char after = end < subject_len ? (unsigned char) subject[end] : 0;
        const char *s = subject + start;
        size_t len = end - start;
        bool bracketed = s[0] == '[';
        Address a;

        if (is_address_neighbour(before) || is_address_neighbour(after))
                return false;
        if (bracketed) {
                /* "[[192.0.2.7]]" is no address, so neither is its inner bracketed part. */
                if (len < 3 || s[len - 1] != ']' || before == '[' || after == ']')
                        return false;
                s++;
                len -= 2;
        }
        /* address_parse() also reads vpopmail's underscores (and refuses brackets itself). */
        if (memchr(s, '_', len))
                return false;
        if (!bracketed && memchr(s, ':', len) && (before == ':' || after == ':'))
                return false;
        if (address_parse(s, len, &a) < 0)
                return false;
        *ret = a;
        return true;
}

/* Whether subject[start, end) may be taken as the client address in this format; if so and
 * ret is given, *ret is the address. */
static bool host_text_is_valid(HostFormat format, const char *subject, size_t subject_len, size_t start, size_t end,
                               Address *ret) {
        Address a;

        if (end <= start || end > subject_len)
                return false;
        if (!(format == HOST_FORMAT_VPOPMAIL ? vpopmail_host_is_valid : standard_host_is_valid)(
                    subject, subject_len, start, end, &a))
                return false;
        if (ret)
                *ret = a;
        return true;
}

/* Runs during matching right after the <HOST> group closed: a positive return makes PCRE2
 * backtrack, so only valid address text can ever complete a match. */
static int on_host_callout(pcre2_callout_block *b, void *userdata) {
        Regex *r = userdata;
        uint32_t g = r->host_group;
        size_t start, end;
        Address a;

        if (b->callout_number != HOST_CALLOUT)
                return 0; /* the pattern's own callouts are not ours to judge */
        if (g >= b->capture_top || b->offset_vector[2 * g] == PCRE2_UNSET)
                return 1;
        start = b->offset_vector[2 * g];
        end = b->offset_vector[2 * g + 1];
        if (!host_text_is_valid(r->host_format, (const char *) b->subject, b->subject_length, start, end, &a))
                return 1;
        r->accepted_start = start;
        r->accepted_end = end;
        r->accepted = a;
        return 0;
}

Regex *regex_free(Regex *r) {
        if (!r)
                return NULL;
        pcre2_match_data_free(r->match_data);
        pcre2_match_context_free(r->match_context);
        pcre2_jit_stack_free(r->jit_stack);
        pcre2_code_free(r->code);
        free(r->pattern);
        free(r);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Regex *, regex_free);

static int set_error(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (!ret_error)
                return r;
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}

/* Replaces the single <HOST> of a FailRegex= by its expansion; *ret_tag is its offset. */
static int expand_pattern(const char *pattern, RegexKind kind, HostFormat format, char **ret, size_t *ret_tag,
                          char **ret_error) {
        const char *tag = strstr(pattern, HOST_TAG);
        char *e;

        if (kind == REGEX_IGNORE) {
                if (tag)
                        return set_error(ret_error, -EINVAL, "<HOST> is not allowed in IgnoreRegex=");
                e = strdup(pattern);
                if (!e)
                        return -ENOMEM;
                *ret = e;
                *ret_tag = SIZE_MAX;
                return 0;
        }

        if (!tag)
                return set_error(ret_error, -EINVAL, "missing <HOST>");
        if (strstr(tag + 1, HOST_TAG))
                return set_error(ret_error, -EINVAL, "<HOST> appears more than once");

        size_t before = (size_t) (tag - pattern);
        if (asprintf(&e, "%.*s%s%s", (int) before, pattern, host_expansion[format], tag + strlen(HOST_TAG)) < 0)
                return -ENOMEM;
        *ret = e;
        *ret_tag = before;
        return 0;
}

/* Maps an offset in the expanded pattern back to the pattern as written. */
static size_t original_offset(size_t offset, size_t tag, HostFormat format) {
        size_t expansion = strlen(host_expansion[format]), grown = expansion - strlen(HOST_TAG);

        if (tag == SIZE_MAX || offset <= tag)
                return offset;
        if (offset < tag + expansion)
                return tag;
        return offset - grown;
}

int regex_new_full(const char *pattern, RegexKind kind, HostFormat format, RegexFlags flags, Regex **ret,
                   char **ret_error) {
        _cleanup_(regex_freep) Regex *r = NULL;
        _cleanup_free_ char *expanded = NULL;
        PCRE2_SIZE erroffset;
        size_t tag = SIZE_MAX;
        int errcode, k;

        if (!pattern || !ret || (kind != REGEX_FAIL && kind != REGEX_IGNORE) || !host_format_to_string(format))
                return -EINVAL;
        if (!*pattern)
                return set_error(ret_error, -EINVAL, "empty pattern");

        k = expand_pattern(pattern, kind, format, &expanded, &tag, ret_error);
        if (k < 0)
                return k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->kind = kind;
        r->host_format = format;
        r->pattern = strdup(pattern);
        if (!r->pattern)
                return -ENOMEM;

        /* Byte mode whatever the pattern says, since MESSAGE may be invalid UTF-8; '.' spans
         * newlines and '$' is only the very end, so an embedded newline cannot end a line
         * early. Auto-possessification is off: PCRE2 decides it without regard to callouts,
         * and a possessive repeat would never offer the callout the shorter candidates after it
         * rejected a long one. (PCRE2 10.42 does not possessify the expansion of <HOST> in
         * practice; this keeps it that way.) */
        r->code = pcre2_compile((PCRE2_SPTR) expanded, PCRE2_ZERO_TERMINATED,
                                PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP |
                                PCRE2_NO_AUTO_POSSESS,
                                &errcode, &erroffset, NULL);
        if (!r->code) {
                PCRE2_UCHAR msg[256];

                if (errcode == PCRE2_ERROR_NOMEMORY)
                        return -ENOMEM;
                if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0)
                        snprintf((char *) msg, sizeof msg, "error %d", errcode);
                return set_error(ret_error, -EINVAL, "at offset %zu: %s",
                                 original_offset((size_t) erroffset, tag, format), (const char *) msg);
        }

        if (kind == REGEX_FAIL) {
                k = pcre2_substring_number_from_name(r->code, (PCRE2_SPTR) HOST_GROUP);
                if (k <= 0)
                        return set_error(ret_error, -EINVAL, "<HOST> is inside a duplicate group name");
                r->host_group = (uint32_t) k;
        }

        r->match_data = pcre2_match_data_create_from_pattern(r->code, NULL);
        r->match_context = pcre2_match_context_create(NULL);
        if (!r->match_data || !r->match_context)
                return -ENOMEM;
        pcre2_set_match_limit(r->match_context, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(r->match_context, REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(r->match_context, REGEX_HEAP_LIMIT_KIB);
        if (kind == REGEX_FAIL)
                pcre2_set_callout(r->match_context, on_host_callout, r);

        /* JIT where the platform has it; the interpreter gives the same results. */
        if (!(flags & REGEX_NO_JIT) && pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0) {
                r->jit_stack = pcre2_jit_stack_create(REGEX_JIT_STACK_START, REGEX_JIT_STACK_MAX, NULL);
                if (!r->jit_stack)
                        return -ENOMEM;
                pcre2_jit_stack_assign(r->match_context, NULL, r->jit_stack);
        }

        *ret = TAKE_PTR(r);
        return 0;
}

int regex_new(const char *pattern, RegexKind kind, HostFormat format, Regex **ret, char **ret_error) {
        return regex_new_full(pattern, kind, format, 0, ret, ret_error);
}

const char *regex_pattern(const Regex *r) {
        return r ? r->pattern : NULL;
}

bool regex_uses_jit(const Regex *r) {
        size_t size = 0;

        return r && pcre2_pattern_info(r->code, PCRE2_INFO_JITSIZE, &size) == 0 && size > 0;
}

int regex_match(Regex *r, const char *text, size_t len, Address *ret_address) {
        int rc;

        if (!r || (!text && len > 0))
                return -EINVAL;

        /* The address is the end of the line, so a cut line would end in whatever text the
         * attacker placed at the cut: lines over the cap are never matched. */
        if (len > REGEX_MESSAGE_MAX)
                return -E2BIG;

        r->accepted_start = r->accepted_end = PCRE2_UNSET;
        rc = pcre2_match(r->code, (PCRE2_SPTR) (text ?: ""), len, 0, 0, r->match_data, r->match_context);
        switch (rc) {
        case PCRE2_ERROR_NOMATCH:
                return 0;
        case PCRE2_ERROR_MATCHLIMIT:
        case PCRE2_ERROR_DEPTHLIMIT:
        case PCRE2_ERROR_HEAPLIMIT:
        case PCRE2_ERROR_JIT_STACKLIMIT:
                return -E2BIG;
        case PCRE2_ERROR_NOMEMORY:
                return -ENOMEM;
        }
        if (rc < 0)
                return -EIO;

        if (r->kind == REGEX_IGNORE)
                return 1;

        /* <HOST> may sit in an optional part the match skipped: then there is no client. */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->match_data);
        uint32_t g = r->host_group;
        Address a;

        if (g >= pcre2_get_ovector_count(r->match_data) || ov[2 * g] == PCRE2_UNSET)
                return 0;
        /* Validity depends on the span alone (in this subject): an accepted span needs no
         * second look. Backtracking may have left the match on an earlier span, looked at
         * again here. */
        if (ov[2 * g] == r->accepted_start && ov[2 * g + 1] == r->accepted_end)
                a = r->accepted;
        else if (!host_text_is_valid(r->host_format, text, len, ov[2 * g], ov[2 * g + 1], &a))
                return 0;

        if (ret_address)
                *ret_address = a;
        return 1;
}
