/* SPDX-License-Identifier: MIT */
/* The preload's log lines (log.h). Reads the level from settings.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "real.h"
#include "settings.h"

int slog_on(int level)
{
	return level <= cfg.log_level;
}

void slog(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char buf[512];
	va_list ap;
	int n;

	if (level > cfg.log_level)
		return;
	n = snprintf(buf, sizeof(buf), "mpklink[%d]: %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (real.write)
		real.write(2, buf, (size_t)n);
}
