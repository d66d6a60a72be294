/* SPDX-License-Identifier: MIT */
/*
 * MPKLINK_STATS: the process's link counters (links made, fallbacks, bytes
 * and messages each way through the rings, doorbells rung) and what the
 * kernel counted on those links' sockets, reported in one line at exit.
 *
 * Thread-safe (relaxed atomic counters). May call: real.h, settings.h,
 * fdtab.h (the links still open at exit).
 */
#ifndef MPK_STATS_H
#define MPK_STATS_H

#include <stdint.h>

#include "mpklink/ring.h"
#include "preload.h"

struct stats_totals {
	uint64_t links, fallbacks, tx_bytes, rx_bytes, tx_calls, rx_calls, bells_sent;
	uint64_t mac_links; /* links whose frames carry MACs */
	uint64_t made_over; /* links whose memory carried a connection before */
	uint64_t tcp_bytes; /* the kernel's count of what crossed the sockets */
};

HIDDEN extern struct stats_totals totals;

static inline void stats_count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* Adds a link's counters, and what the kernel counted on its socket
 * (TCP_INFO, what `ss -ti` shows), to the totals. */
HIDDEN void stats_add(struct mpk_link *l, int sock);

/* Registers the report at exit, when MPKLINK_STATS asks for one. */
HIDDEN void stats_start(void);

#endif
