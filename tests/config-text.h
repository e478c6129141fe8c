/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tests.h"

/* A configuration from text, as if it were the main file with no drop-ins; aborts the test if
 * it does not load. */
static inline Config *config_from_text(const char *text) {
        char path[] = "/tmp/vpopguard-test-config-XXXXXX";
        int fd = mkstemp(path);
        ASSERT_OK(fd);
        ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);

        const char *dirs[] = { NULL };
        ConfigErrors errors = {};
        Config *c = NULL;
        int r = config_load(path, dirs, &c, &errors);
        if (r < 0)
                config_errors_print(&errors, stderr);
        unlink(path);
        ASSERT_OK(r);
        config_errors_done(&errors);
        return c;
}
