/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The driver for builds without libFuzzer: runs one fuzz target on every file named on the
 * command line, and on every file of each directory named there, so that the corpora run as
 * ordinary tests in every build and a crash found once stays fixed.
 * Usage: fuzz-NAME FILE|DIRECTORY... */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Optional in a target; weak so that targets without it link. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Each input gets a buffer of exactly its size, as under libFuzzer, so that the sanitizers see
 * any read past its end. */
static int run_file(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -errno;
        }
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fprintf(stderr, "%s: %s\n", path, k < 0 ? strerror(errno) : "file shrank");
                        return k < 0 ? -errno : -EIO;
                }
                n += (size_t) k;
        }

        fprintf(stderr, "%s (%zu bytes)\n", path, n);
        (void) LLVMFuzzerTestOneInput(buf, n);
        return 1;
}

static int dirent_filter(const struct dirent *de) {
        return de->d_name[0] != '.';
}

/* Returns the number of inputs run, or a negative errno. */
static int run_path(const char *path) {
        struct dirent **names;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);

        /* Sorted, so that runs are reproducible. */
        n = scandir(path, &names, dirent_filter, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                int k = -ENOMEM;

                if (r >= 0 && asprintf(&p, "%s/%s", path, names[i]->d_name) >= 0)
                        k = run_path(p);
                if (r >= 0)
                        r = k < 0 ? k : r + k;
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[]) {
        int total = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIRECTORY...\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (LLVMFuzzerInitialize)
                (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                int r = run_path(argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
                total += r;
        }
        /* An empty corpus is a mistake in the build, not a pass. */
        if (total == 0) {
                fprintf(stderr, "No inputs found.\n");
                return EXIT_FAILURE;
        }
        fprintf(stderr, "%d inputs, no crash.\n", total);
        return EXIT_SUCCESS;
}
