/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the fuzz targets. Each fuzz-NAME.c defines LLVMFuzzerTestOneInput() (and may define
 * LLVMFuzzerInitialize()); it is linked either with libFuzzer or with fuzz-main.c, which runs it
 * once per corpus file. A target reports a broken property with the ASSERT_* macros of tests.h,
 * which abort: libFuzzer then saves the input, and the corpus test fails. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tests.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* Where conf.d/ and the fixtures are: $VPOPGUARD_SOURCE_DIR (as meson test sets it), else the
 * source tree the fuzzer was compiled from. */
static inline const char *fuzz_source_dir(void) {
        const char *e = getenv("VPOPGUARD_SOURCE_DIR");
        return e && *e ? e : SRCDIR;
}

/* The input as a C string: an embedded NUL ends it, as it would for the code under test. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size);
        ASSERT_TRUE(s);
        return s;
}
