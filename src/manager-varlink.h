/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define MANAGER_VARLINK_INTERFACE "io.vpopguard.Manager"
#define MANAGER_VARLINK_SOCKET "/run/vpopguard/io.vpopguard.Manager"

extern const char manager_varlink_idl[];
