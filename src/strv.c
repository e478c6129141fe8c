/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "macro.h"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **s = l; *s; s++)
                free(*s);
        free(l);
        return NULL;
}

size_t strv_length(char * const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}

int strv_extend(char ***l, const char *value) {
        size_t n = strv_length(*l);
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        char **grown = realloc(*l, sizeof(char *) * (n + 2));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        grown[n] = copy;
        grown[n + 1] = NULL;
        *l = grown;
        return 0;
}

char **strv_copy(char * const *l) {
        _cleanup_strv_free_ char **copy = calloc(1, sizeof(char *));
        if (!copy)
                return NULL;
        STRV_FOREACH(s, l)
                if (strv_extend(&copy, *s) < 0)
                        return NULL;
        return TAKE_PTR(copy);
}
