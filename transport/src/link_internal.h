/* SPDX-License-Identifier: MIT */
/* The process-local side of a link. Private to transport/ and its tests. */
#ifndef MPK_LINK_INTERNAL_H
#define MPK_LINK_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "link_abi.h"
#include "mpklink/ring.h"

struct mpk_link {
	uint8_t *base;
	size_t map_len;
	struct mpk_ring_ctl *tx, *rx;
	uint8_t *tx_data, *rx_data;
	uint64_t ring_bytes; /* each ring's room: the largest capacity */
	int side;
	uint32_t gen;  /* the header's gen when attached */
	int released;  /* mpk_link_release was called: the mapping may be kept
			* for the link's next generation (map_keep) */
	dev_t dev;     /* the memfd's, to find a kept mapping again */
	ino_t ino;

	/* The writing thread's. tx_tail is authoritative: the shared copy is
	 * only published, never read back. tx_cap, tx_base and tx_grow are
	 * read by any thread (atomics). tx_grow: the ring filled; it grows to
	 * ring_bytes as soon as its unread bytes allow (tx_fetch_j). */
	uint64_t tx_tail;
	uint64_t tx_head_seen;
	uint64_t tx_cap, tx_base;
	int tx_grow;

	/* The reading thread's. rx_cap and rx_base are read by any thread
	 * (atomics), for a prefetch only. */
	uint64_t rx_head;
	uint64_t rx_tail_seen;
	uint64_t rx_cap, rx_base;
	int rx_eof;
	uint64_t rx_eof_tail;

	/* Any thread's (atomics). */
	int tx_shut;
	int closed;
	int broken;
	int peer_gone;

	/* MPK_HDR_MAC: frames with tags. mac is set once the key is. */
	uint32_t hdr_flags;
	int mac;
	uint8_t mac_key[32];
	uint64_t tx_seq, rx_seq; /* frames written, frames read (each side's own) */
	uint32_t frame_max;      /* payload bytes per frame: fits the ring twice */
	uint8_t *stage;          /* the reader's private copy of one checked frame */
	struct mpk_poly *tx_poly, *rx_poly; /* the writer's and the reader's */
	uint32_t stage_off, stage_end; /* its payload not yet read (atomics) */

	int bell_fd; /* the stream shared with the peer: bells or hang-up */
	int bell_wait, bell_ring; /* eventfds, when set: the bells */
	mpk_send_fn bell_send;
	mpk_recv_fn bell_recv;

	struct mpk_link_stats stats;
};

/* For tests that must aim at the guarded mapping itself. */
static inline void *mpk__link_base(struct mpk_link *l)
{
	return l->base;
}

#endif
