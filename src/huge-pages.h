/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* A buffer of many megabytes that is filled right after its allocation (a state file, the
 * records of a million bans) faults its memory in 4 KiB at a time, and faults are dear in a
 * VM: loading a million bans took 50 000 of them. With transparent huge pages in "madvise" mode
 * (Debian's default) this asks for 2 MiB pages in the pages that [p, p + size) touches: for a
 * block that malloc() mapped by itself, its whole mapping, as glibc.malloc.hugetlb=1 would (a
 * mapping split by advice on part of it cannot be grown by mremap(), and realloc() then
 * copies). Advice on a neighbour's page is harmless; where it fails or THP are off, nothing
 * changes. Call it again after a realloc() that grew the buffer. */
#define HUGE_PAGES_MIN_BYTES ((size_t) 4 * 1024 * 1024)

static inline void advise_huge_pages(void *p, size_t size) {
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t mask, b, e;

        if (!p || size < HUGE_PAGES_MIN_BYTES || page <= 0)
                return;
        mask = (uintptr_t) page - 1;
        b = (uintptr_t) p & ~mask;
        e = ((uintptr_t) p + size + mask) & ~mask;
        if (e > b)
                (void) madvise((void *) b, e - b, MADV_HUGEPAGE);
}
