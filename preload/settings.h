/* SPDX-License-Identifier: MIT */
/*
 * The preload's settings, read once from the environment mpklink-run made
 * (its values were checked there, by the same parsers: mpklink/config.h).
 * Read-only after preload_start.
 */
#ifndef MPK_SETTINGS_H
#define MPK_SETTINGS_H

#include <stdint.h>

#include "mpklink/config.h"
#include "preload.h"

struct settings {
	int enabled;       /* under mpklink-run with endpoints: links are made */
	struct mpk_endpoint eps[MPK_MAX_ENDPOINTS];
	int nports;
	char ctl_path[108]; /* MPKLINK_CTL: our launcher's socket */
	int ctl_pid;        /* MPKLINK_CTL_PID: our launcher, the only process
			     * whose socket there we talk to (SO_PEERCRED) */
	char rundir[108];   /* MPKLINK_RUNDIR: the rendezvous sockets */
	int deny;           /* MPKLINK_FALLBACK=deny */
	int log_level;
	char stats[256];    /* MPKLINK_STATS: "" off, "stderr"/"1", or a file */
	uint64_t spin_ns;     /* MPKLINK_SPIN_US */
	uint64_t spin_max_ns; /* MPKLINK_SPIN_MAX_US, >= spin_ns */
	int spin_grow;        /* spins may grow: max > base, and 2+ CPUs */
	int integrity;        /* MPKLINK_INTEGRITY=mac */
};

HIDDEN extern struct settings cfg;

/* Reads the environment into cfg. */
HIDDEN void settings_load(void);

/* Whether port is one of MPKLINK_ENDPOINTS'. */
HIDDEN int settings_port_configured(unsigned port);

/* MPKLINK_ENDPOINTS' entry for port, or NULL. */
HIDDEN const struct mpk_endpoint *settings_endpoint(unsigned port);

#endif
