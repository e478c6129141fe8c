/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "config-internal.h"
#include "macro.h"

/* Reads the main file and the drop-ins and merges their assignments into a ConfigBuilder.
 * Every file is untrusted input: sizes are bounded (CONFIG_FILE_MAX, CONFIG_LINE_MAX, list
 * and jail counts), and every problem becomes a ConfigError rather than stopping the load. */

typedef enum SectionKind {
        SECTION_NONE,     /* before the first header of a file */
        SECTION_FIREWALL,
        SECTION_FLEET,
        SECTION_DEFAULTS,
        SECTION_JAIL,
        SECTION_UNKNOWN,  /* its assignments are ignored; the header was reported */
} SectionKind;

/* A line of the current section. Sections are applied when they end, because a [Jail]'s Name=
 * may come after its other settings. Strings point into the file's buffer. */
typedef struct Item {
        unsigned line;
        const char *key;
        const char *value;
        const char *error; /* a syntax error to report in line order, or NULL */
} Item;

typedef struct Section {
        SectionKind kind;
        const char *name;
        unsigned line;
        Item *items;
        size_t n_items;
} Section;

/* Finds the jail of that name, or appends it: jails keep the order of first appearance. */
static int builder_jail(ConfigBuilder *b, const char *name, const char *file, unsigned line,
                        JailConfig **ret, unsigned **ret_set) {
        Config *c = b->config;
        JailConfig *jails;
        unsigned *set;

        for (size_t i = 0; i < c->n_jails; i++)
                if (streq(c->jails[i].name, name)) {
                        *ret = &c->jails[i];
                        *ret_set = &b->jail_set[i];
                        return 0;
                }

        if (c->n_jails >= CONFIG_JAILS_MAX)
                return -E2BIG;
        jails = realloc(c->jails, sizeof(JailConfig) * (c->n_jails + 1));
        if (!jails)
                return -ENOMEM;
        c->jails = jails;
        set = realloc(b->jail_set, sizeof(unsigned) * (c->n_jails + 1));
        if (!set)
                return -ENOMEM;
        b->jail_set = set;

        jails[c->n_jails] = (JailConfig) {
                .name = strdup(name),
                .enabled = true,
                .source_file = strdup(file),
                .source_line = line,
        };
        set[c->n_jails] = 0;
        c->n_jails++;
        if (!jails[c->n_jails - 1].name || !jails[c->n_jails - 1].source_file)
                return -ENOMEM;
        *ret = &jails[c->n_jails - 1];
        *ret_set = &set[c->n_jails - 1];
        return 0;
}

static int item_error(ConfigBuilder *b, const char *file, const Section *s, const Item *i, const char *message) {
        return config_errors_add(b->errors, file, i->line, s->name, i->key, i->value, "%s", message);
}

/* A section without a usable Name= still has its settings checked, on a scratch jail. */
static int flush_jail(ConfigBuilder *b, const char *file, const Section *s) {
        JailConfig scratch = { .enabled = true }, *j = &scratch;
        unsigned scratch_set = 0, *set = &scratch_set;
        const Item *first_name = NULL;
        int r = 0;

        for (size_t i = 0; i < s->n_items && !first_name; i++)
                if (!s->items[i].error && streq(s->items[i].key, "Name"))
                        first_name = &s->items[i];

        if (!first_name)
                r = config_errors_add(b->errors, file, s->line, s->name, NULL, NULL, "section has no Name=");
        else if (jail_name_is_valid(first_name->value)) {
                r = builder_jail(b, first_name->value, file, s->line, &j, &set);
                if (r == -E2BIG)
                        r = config_errors_add(b->errors, file, s->line, s->name, "Name", first_name->value,
                                              "too many jails (at most %u)", CONFIG_JAILS_MAX);
        }

        for (size_t i = 0; i < s->n_items && r >= 0; i++) {
                const Item *it = &s->items[i];
                const ConfigAssignment a = { b, file, it->line, s->name, it->key, it->value };

                if (it->error)
                        r = item_error(b, file, s, it, it->error);
                else if (!streq(it->key, "Name"))
                        r = config_assign_jail(&a, j, set);
                else if (it == first_name && !jail_name_is_valid(it->value))
                        r = item_error(b, file, s, it, "expected a jail name of letters, digits, '_', '.' and '-', at most 64 characters");
                else if (!streq(it->value, first_name->value))
                        r = item_error(b, file, s, it, "Name= given twice in one section with different values");
        }

        jail_config_done(&scratch);
        return r;
}

static int flush_section(ConfigBuilder *b, const char *file, Section *s) {
        int r = 0;

        if (s->kind == SECTION_JAIL)
                r = flush_jail(b, file, s);
        else
                for (size_t i = 0; i < s->n_items && r >= 0; i++) {
                        const Item *it = &s->items[i];
                        const ConfigAssignment a = { b, file, it->line, s->name, it->key, it->value };

                        if (it->error)
                                r = item_error(b, file, s, it, it->error);
                        else if (s->kind == SECTION_FIREWALL)
                                r = config_assign_firewall(&a);
                        else if (s->kind == SECTION_FLEET)
                                r = config_assign_fleet(&a);
                        else if (s->kind == SECTION_DEFAULTS)
                                r = config_assign_jail(&a, &b->defaults, NULL);
                }

        free(s->items);
        *s = (Section) {};
        return r;
}

/* Lines outside any section are reported at once; inside one, in order when it ends. */
static int add_item(ConfigBuilder *b, const char *file, Section *s, const Item *it) {
        if (s->kind == SECTION_NONE)
                return config_errors_add(b->errors, file, it->line, NULL, it->key, it->value, "%s",
                                         it->error ?: "assignment outside of any section");
        if (s->kind == SECTION_UNKNOWN && !it->error)
                return 0;

        Item *grown = realloc(s->items, sizeof(Item) * (s->n_items + 1));
        if (!grown)
                return -ENOMEM;
        s->items = grown;
        s->items[s->n_items++] = *it;
        return 0;
}

static char *strip(char *s) {
        char *e;

        while (*s && strchr(" \t\r\v\f", *s))
                s++;
        e = s + strlen(s);
        while (e > s && strchr(" \t\r\v\f", e[-1]))
                *--e = 0;
        return s;
}

static int parse_header(ConfigBuilder *b, const char *file, unsigned line, char *text, Section *s) {
        static const struct {
                const char *name;
                SectionKind kind;
        } sections[] = {
                { "Firewall", SECTION_FIREWALL },
                { "Fleet",    SECTION_FLEET },
                { "Defaults", SECTION_DEFAULTS },
                { "Jail",     SECTION_JAIL },
        };
        size_t l = strlen(text);
        int r;

        r = flush_section(b, file, s);
        if (r < 0)
                return r;

        *s = (Section) { .kind = SECTION_UNKNOWN, .line = line };
        if (l < 3 || text[l - 1] != ']' || memchr(text + 1, '[', l - 2) || memchr(text + 1, ']', l - 2))
                return config_errors_add(b->errors, file, line, NULL, text, NULL,
                                         "invalid section header, expected [Firewall], [Fleet], [Defaults] or [Jail]");
        text[l - 1] = 0;
        s->name = text + 1;
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (streq(s->name, sections[i].name))
                        s->kind = sections[i].kind;
        if (s->kind == SECTION_UNKNOWN)
                return config_errors_add(b->errors, file, line, s->name, NULL, NULL, "unknown section");
        return 0;
}

static int parse_line(ConfigBuilder *b, const char *file, unsigned line, char *text, Section *s) {
        char *eq, *key;

        text = strip(text);
        if (!*text || *text == '#' || *text == ';')
                return 0;
        if (*text == '[')
                return parse_header(b, file, line, text, s);

        eq = strchr(text, '=');
        if (!eq)
                return add_item(b, file, s, &(Item) { line, text, NULL, "expected Key=Value" });
        *eq = 0;
        key = strip(text);
        if (!*key)
                return add_item(b, file, s, &(Item) { line, key, strip(eq + 1), "missing key before '='" });
        return add_item(b, file, s, &(Item) { line, key, strip(eq + 1), NULL });
}

/* buf holds size bytes and one spare byte, so every line can be terminated in place. */
static int parse_buffer(ConfigBuilder *b, const char *file, char *buf, size_t size) {
        Section s = {};
        char *p = buf, *end = buf + size;
        int r = 0;

        if (size >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;

        for (unsigned line = 1; p < end && r >= 0; line++) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                char *next = nl ? nl + 1 : end;

                if (len > CONFIG_LINE_MAX)
                        r = add_item(b, file, &s, &(Item) { .line = line, .error = "line too long (more than 64 KiB)" });
                else if (memchr(p, 0, len))
                        r = add_item(b, file, &s, &(Item) { .line = line, .error = "line contains a NUL byte" });
                else {
                        p[len] = 0;
                        r = parse_line(b, file, line, p, &s);
                }
                p = next;
        }

        if (r >= 0)
                r = flush_section(b, file, &s);
        free(s.items);
        return r;
}

/* Returns 1 with the contents, 0 if there is nothing to apply (a missing main file, or a file
 * that masks: empty, or /dev/null), -ENOMEM; other problems are reported and return 0. */
static int read_file(ConfigBuilder *b, const char *path, bool missing_ok, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;
        struct stat st;

        /* O_NONBLOCK: a FIFO must not hang the daemon's start-up; it is refused below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT && missing_ok)
                return 0;
        if (fd < 0 || fstat(fd, &st) < 0)
                return config_errors_add(b->errors, path, 0, NULL, NULL, NULL, "cannot read file: %s", strerror(errno));
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                return 0;
        if (!S_ISREG(st.st_mode))
                return config_errors_add(b->errors, path, 0, NULL, NULL, NULL, "not a regular file");

        for (;;) {
                ssize_t k;

                if (cap - n < 2) {
                        char *grown;

                        cap = cap == 0 ? 4096 : cap * 2;
                        grown = realloc(buf, cap);
                        if (!grown)
                                return -ENOMEM;
                        buf = grown;
                }
                k = read(fd, buf + n, cap - n - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return config_errors_add(b->errors, path, 0, NULL, NULL, NULL, "cannot read file: %s", strerror(errno));
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CONFIG_FILE_MAX)
                        return config_errors_add(b->errors, path, 0, NULL, NULL, NULL,
                                                 "file too large (more than %u bytes)", CONFIG_FILE_MAX);
        }
        if (n == 0)
                return 0;

        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 1;
}

static int parse_file(ConfigBuilder *b, const char *path, bool missing_ok) {
        _cleanup_free_ char *buf = NULL;
        char **files;
        size_t size = 0;
        int r;

        r = read_file(b, path, missing_ok, &buf, &size);
        if (r <= 0)
                return r;

        r = strv_extend(&b->config->files, path);
        if (r < 0)
                return r;
        files = b->config->files;
        /* The copy in files lives as long as the Config; error locations may point to it. */
        return parse_buffer(b, files[strv_length(files) - 1], buf, size);
}

typedef struct Dropin {
        char *name;
        size_t dir; /* index into the directories: lower is more important */
} Dropin;

static int dropin_compare(const void *x, const void *y) {
        const Dropin *a = x, *b = y;
        int c = strcmp(a->name, b->name);

        return c != 0 ? c : (a->dir > b->dir) - (a->dir < b->dir);
}

static int read_dropin_dir(ConfigBuilder *b, const char *path, size_t index, Dropin **list, size_t *n) {
        DIR *d;
        int r = 0;

        d = opendir(path);
        if (!d && errno == ENOENT)
                return 0;
        if (!d)
                return config_errors_add(b->errors, path, 0, NULL, NULL, NULL, "cannot read directory: %s", strerror(errno));

        for (;;) {
                struct dirent *de;
                Dropin x = { .dir = index }, *grown;
                size_t l;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = config_errors_add(b->errors, path, 0, NULL, NULL, NULL,
                                                      "cannot read directory: %s", strerror(errno));
                        break;
                }
                l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 5 || !streq(de->d_name + l - 5, ".conf"))
                        continue;
                grown = realloc(*list, sizeof(Dropin) * (*n + 1));
                if (grown)
                        *list = grown;
                x.name = strdup(de->d_name);
                if (!grown || !x.name) {
                        free(x.name);
                        r = -ENOMEM;
                        break;
                }
                (*list)[(*n)++] = x;
        }
        closedir(d);
        return r;
}

/* The drop-ins to apply, in file-name order; of several with the same name only the one in the
 * most important directory. */
static int collect_dropins(ConfigBuilder *b, const char * const *dirs, char ***ret) {
        _cleanup_strv_free_ char **paths = calloc(1, sizeof(char *));
        Dropin *list = NULL;
        size_t n = 0;
        int r = 0;

        if (!paths)
                return -ENOMEM;

        for (size_t i = 0; dirs && dirs[i] && r >= 0; i++)
                r = read_dropin_dir(b, dirs[i], i, &list, &n);

        if (r >= 0 && n > 0)
                qsort(list, n, sizeof(Dropin), dropin_compare);
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *p = NULL;

                if (i > 0 && streq(list[i].name, list[i - 1].name))
                        continue; /* masked */
                if (asprintf(&p, "%s/%s", dirs[list[i].dir], list[i].name) < 0)
                        r = -ENOMEM;
                else
                        r = strv_extend(&paths, p);
        }

        for (size_t i = 0; i < n; i++)
                free(list[i].name);
        free(list);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(paths);
        return 0;
}

int config_load(const char *main_file, const char * const *dropin_dirs, Config **ret, ConfigErrors *errors) {
        _cleanup_(config_builder_done) ConfigBuilder b = {};
        _cleanup_strv_free_ char **dropins = NULL;
        ConfigErrors local = {};
        int r;

        if (!errors)
                errors = &local;

        r = config_builder_init(&b, errors);
        if (r >= 0 && main_file)
                r = parse_file(&b, main_file, /* missing_ok= */ true);
        if (r >= 0)
                r = collect_dropins(&b, dropin_dirs, &dropins);
        STRV_FOREACH(f, dropins) {
                if (r < 0)
                        break;
                r = parse_file(&b, *f, /* missing_ok= */ false);
        }
        if (r >= 0)
                r = config_builder_finish(&b, ret);

        config_errors_done(&local);
        return r;
}

char **config_dropin_dirs_for(const char *main_file) {
        static const char * const defaults[] = CONFIG_DROPIN_DIRS;
        _cleanup_strv_free_ char **dirs = calloc(1, sizeof(char *));
        _cleanup_free_ char *d = NULL;

        if (!dirs)
                return NULL;
        if (!main_file) {
                for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                        if (strv_extend(&dirs, defaults[i]) < 0)
                                return NULL;
                return TAKE_PTR(dirs);
        }
        if (asprintf(&d, "%s.d", main_file) < 0 || strv_extend(&dirs, d) < 0)
                return NULL;
        return TAKE_PTR(dirs);
}
