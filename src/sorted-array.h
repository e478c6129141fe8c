/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* The first index in the sorted array base[0..n) whose element compares not below key, n if
 * there is none: where key is, or would be inserted. compare is qsort()'s, (element, key). */
static inline size_t sorted_lower_bound(const void *base, size_t n, size_t size, const void *key,
                                        int (*compare)(const void *, const void *)) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (compare((const char *) base + mid * size, key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}
