/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdio.h>

/* `vpopguardctl metrics`: a GetStatus() reply (manager-varlink-idl.c) as OpenMetrics text, for
 * node_exporter's textfile collector and anything else that scrapes it. A counter the daemon did
 * not send (an older daemon) has no sample, rather than a made-up 0. Returns 0 or -EIO. */
int ctl_metrics_write(FILE *f, json_t *status);

/* Writes text to path atomically: a temporary file in the same directory, then rename(), so a
 * reader sees the old file or the new one, never half of one. The file is mode 0644. */
int ctl_metrics_write_file(const char *path, const char *text, size_t size);
