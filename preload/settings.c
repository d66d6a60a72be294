/* SPDX-License-Identifier: MIT */
/* The preload's settings (settings.h), from mpklink-run's environment. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"

struct settings cfg = {.log_level = 1};

/* A microseconds setting in ns. The launcher refused anything but
 * 0..MPK_SPIN_US_MAX; a program run without it gets the default. */
static uint64_t env_us_ns(const char *name, unsigned long dflt)
{
	long v = mpk_us_parse(getenv(name));

	return (uint64_t)(v < 0 ? (long)dflt : v) * 1000;
}

void settings_load(void)
{
	const char *s, *bad;
	int n;

	cfg.log_level = mpk_log_level_parse(getenv("MPKLINK_LOG"));
	if (cfg.log_level < 0)
		cfg.log_level = 1;
	s = getenv("MPKLINK_STATS");
	if (s && *s && strcmp(s, "0"))
		snprintf(cfg.stats, sizeof(cfg.stats), "%s", s);
	cfg.deny = mpk_fallback_parse(getenv("MPKLINK_FALLBACK")) == 1;
	cfg.integrity = mpk_integrity_parse(getenv("MPKLINK_INTEGRITY")) == 1;
	cfg.spin_ns = env_us_ns("MPKLINK_SPIN_US", MPK_SPIN_US_DEFAULT);
	cfg.spin_max_ns = env_us_ns("MPKLINK_SPIN_MAX_US", MPK_SPIN_MAX_US_DEFAULT);
	if (cfg.spin_max_ns < cfg.spin_ns)
		cfg.spin_max_ns = cfg.spin_ns;
	/* With one CPU the peer answers only once we stop spinning: every wait
	 * would look like a spin a little too short. (The machine's CPUs, not
	 * our affinity: pinned to one, with the peer on another, is where
	 * spinning pays best.) */
	cfg.spin_grow = cfg.spin_max_ns > cfg.spin_ns && sysconf(_SC_NPROCESSORS_ONLN) >= 2;
	s = getenv("MPKLINK_RUNDIR");
	if (s && strlen(s) < sizeof(cfg.rundir))
		strcpy(cfg.rundir, s);
	s = getenv("MPKLINK_CTL");
	if (!s || !*s || strlen(s) >= sizeof(cfg.ctl_path))
		return; /* not under mpklink-run: pure pass-through */
	strcpy(cfg.ctl_path, s);
	s = getenv("MPKLINK_CTL_PID");
	cfg.ctl_pid = s ? atoi(s) : 0;
	n = mpk_endpoints_parse(getenv("MPKLINK_ENDPOINTS"), cfg.eps, MPK_MAX_ENDPOINTS, &bad);
	if (n < 0) {
		slog(0, "MPKLINK_ENDPOINTS is malformed at \"%s\"; nothing is upgraded", bad);
		return;
	}
	cfg.nports = n;
	cfg.enabled = n > 0;
}

int settings_port_configured(unsigned port)
{
	return settings_endpoint(port) != NULL;
}

const struct mpk_endpoint *settings_endpoint(unsigned port)
{
	return mpk_endpoint_find(cfg.eps, (size_t)cfg.nports, port);
}
