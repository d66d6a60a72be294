/* SPDX-License-Identifier: MIT */
/*
 * The preload's log: one line on stderr per event, "mpklink[PID]: LEVEL:
 * ...", written with the real write(2) in one call (no stdio: a line must
 * not interleave with the program's, nor allocate in a signal's path).
 * Levels as MPKLINK_LOG: 0 error, 1 warn, 2 info, 3 debug.
 */
#ifndef MPK_LOG_H
#define MPK_LOG_H

#include "preload.h"

HIDDEN __attribute__((format(printf, 2, 3))) void slog(int level, const char *fmt, ...);

/* Whether a line of this level would be written (to skip building it). */
HIDDEN int slog_on(int level);

#endif
