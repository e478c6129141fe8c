/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vpopguard-bench-stamp [COMMAND [ARG...]]: copies COMMAND's stdout (or stdin, without COMMAND)
 * to stdout with the CLOCK_REALTIME microsecond at which each line was read in front of it
 * ("1700000000123456 add element ..."). Lines that arrive in one read() get the same stamp: they
 * were there at the same moment. For `nft monitor`, whose element additions are the end points
 * of the ban latency. SIGTERM and SIGINT are passed on to COMMAND; its output is drained. */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

static volatile pid_t child = -1;

static void on_signal(int sig) {
        if (child > 0)
                (void) kill(child, sig);
        else
                _exit(EXIT_SUCCESS);
}

static int spawn(char *argv[]) {
        int fds[2];
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (dup2(fds[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                fprintf(stderr, "bench-stamp: cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        child = pid;
        close(fds[1]);
        if (dup2(fds[0], STDIN_FILENO) < 0)
                return -errno;
        close(fds[0]);
        return 0;
}

static int copy(void) {
        char in[65536], out[2 * sizeof in];
        bool at_line_start = true;
        ssize_t n;

        while ((n = read(STDIN_FILENO, in, sizeof in)) != 0) {
                struct timespec ts;
                char stamp[32];
                size_t o = 0;
                int len;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                len = snprintf(stamp, sizeof stamp, "%lld%06ld ", (long long) ts.tv_sec, ts.tv_nsec / 1000);
                for (ssize_t i = 0; i < n; i++) {
                        if (o + (size_t) len + 1 > sizeof out) {
                                if (write(STDOUT_FILENO, out, o) != (ssize_t) o)
                                        return -EIO;
                                o = 0;
                        }
                        if (at_line_start) {
                                memcpy(out + o, stamp, (size_t) len);
                                o += (size_t) len;
                        }
                        out[o++] = in[i];
                        at_line_start = in[i] == '\n';
                }
                if (write(STDOUT_FILENO, out, o) != (ssize_t) o)
                        return -EIO;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        struct sigaction sa = { .sa_handler = on_signal };
        int r, status = 0;

        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        if (argc > 1 && (r = spawn(argv + 1)) < 0) {
                fprintf(stderr, "bench-stamp: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        r = copy();
        if (child > 0)
                (void) waitpid(child, &status, 0);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
