/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config_load() on a whole main file and no drop-ins. The input goes into a memfd that is
 * loaded as /proc/self/fd/N, so the parser reads it exactly as it reads a real file, and
 * nothing is added to src/ for the fuzzer. Properties: errors print without trouble; an
 * accepted configuration dumps (config_dump()) as a file that loads without errors and dumps
 * to the same text. */

#include <sys/mman.h>

#include "config.h"
#include "fuzz.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

static int input_fd = -EBADF, dump_fd = -EBADF;
static FILE *devnull;

static void setup(void) {
        if (input_fd >= 0)
                return;
        input_fd = memfd_create("fuzz-config-input", MFD_CLOEXEC);
        dump_fd = memfd_create("fuzz-config-dump", MFD_CLOEXEC);
        devnull = fopen("/dev/null", "we");
        ASSERT_TRUE(input_fd >= 0 && dump_fd >= 0 && devnull);
}

/* Replaces the contents of fd; returns the path that reopens it. */
static const char *fill(int fd, const void *data, size_t size, char path[static 64]) {
        ASSERT_EQ(ftruncate(fd, 0), 0);
        ASSERT_EQ(pwrite(fd, data, size, 0), (ssize_t) size);
        snprintf(path, 64, "/proc/self/fd/%d", fd);
        return path;
}

static char *dump(const Config *c, size_t *ret_size) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        ASSERT_TRUE(f);
        config_dump(c, f);
        ASSERT_EQ(fclose(f), 0);
        *ret_size = n;
        return s;
}

static void check_errors(const ConfigErrors *e) {
        ASSERT_LE(e->n_errors, (size_t) CONFIG_ERRORS_MAX);
        config_errors_print(e, devnull);
        for (size_t i = 0; i < e->n_errors; i++) {
                _cleanup_free_ char *s = config_error_to_string(&e->errors[i]);

                ASSERT_TRUE(s);
                ASSERT_TRUE(e->errors[i].message);
                /* Escaped: one error is one line. */
                ASSERT_TRUE(!strchr(s, '\n'));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char * const no_dropins[] = { NULL };
        _cleanup_(config_freep) Config *c = NULL, *again = NULL;
        _cleanup_free_ char *first = NULL, *second = NULL;
        ConfigErrors errors = {};
        size_t first_size, second_size;
        char path[64];
        int r;

        setup();
        r = config_load(fill(input_fd, data, size, path), no_dropins, &c, &errors);
        ASSERT_TRUE(r == 0 || r == -EINVAL);
        ASSERT_EQ(r == 0, errors.n_errors == 0);
        check_errors(&errors);
        config_errors_done(&errors);
        if (r < 0)
                return 0;

        ASSERT_TRUE(c);
        first = dump(c, &first_size);
        r = config_load(fill(dump_fd, first, first_size, path), no_dropins, &again, &errors);
        if (r < 0) {
                fprintf(stderr, "The dump does not load:\n%s\n", first);
                config_errors_print(&errors, stderr);
                abort();
        }
        config_errors_done(&errors);
        second = dump(again, &second_size);
        if (first_size != second_size || memcmp(first, second, first_size) != 0) {
                fprintf(stderr, "The dump changes when reloaded:\n%s\n----\n%s\n", first, second);
                abort();
        }
        return 0;
}
