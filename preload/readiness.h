/* SPDX-License-Identifier: MIT */
/*
 * What one connection is ready for, as poll(2) would say it, from its
 * rings and setup state; and arming its doorbells before a wait (the
 * shared part of epoll.c, pollsel.c and data.c's blocking waits).
 *
 * Any thread (readiness queries do not validate the rings: ring.h).
 * May call: conn.h.
 */
#ifndef MPK_READINESS_H
#define MPK_READINESS_H

#include <poll.h>
#include <sys/eventfd.h>
#include <stdint.h>

#include "conn.h"

/* POLL* == EPOLL* bits. out 0: the caller has no use for EPOLLOUT now,
 * and gets none (nor *txg): the TX ring is left alone (mpk_link_poll_rx).
 * rxg, txg (may be NULL): the rings' generations, for edge triggering. */
HIDDEN uint32_t conn_events(struct ufd *u, uint64_t *rxg, uint64_t *txg, int out);

/* What to ask the kernel about the socket, to hear of changes. */
static inline short conn_kernel_events(struct ufd *u)
{
	return u->state == ST_CONNECTING ? POLLOUT : POLLIN;
}

/* Whether u's peer may write to its rings now: a link, connected or still
 * settling (a server's link waiting for the preamble, a client's whose
 * connect is in flight). Such a link is armed before every sleep, and its
 * doorbell waited on: the preamble may be verified (or sent) in the look
 * right after the arm, and the peer's bytes come after that look. */
static inline int conn_has_rings(struct ufd *u)
{
	int st = __atomic_load_n(&u->state, __ATOMIC_ACQUIRE);

	return u->link && (st == ST_ACTIVE || st == ST_VERIFY || st == ST_CONNECTING);
}

/* Sets the link's waiting flags for the (E)POLLIN / OUT in events, so the
 * peer rings; OUT only after a write found the ring full. The caller
 * drains when the kernel reports the doorbell. Nothing unless
 * conn_has_rings. */
HIDDEN void conn_arm(struct ufd *u, uint32_t events);

/* Wakes a poller of ours sleeping on this link's doorbell. */
static inline void conn_self_ring(struct ufd *u)
{
	if (u->bell[0] >= 0)
		eventfd_write(u->bell[0], 1);
}

#endif
