/* SPDX-License-Identifier: MIT */
/* One connection's readiness, and arming its doorbells (readiness.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/epoll.h>

#include "readiness.h"

uint32_t conn_events(struct ufd *u, uint64_t *rxg, uint64_t *txg, int out)
{
	unsigned m;
	uint32_t ev = 0;
	int r = settle(u), rcv_shut, snd_shut, reset = __atomic_load_n(&u->reset, __ATOMIC_RELAXED);

	if (rxg)
		*rxg = 0;
	if (txg)
		*txg = 0;
	if (r == 1)
		return 0; /* demoted by the caller's next call */
	if (r == -EAGAIN)
		return u->state == ST_PROBE ? EPOLLOUT : 0; /* a write makes it plain */
	if (r == -EPIPE)
		return EPOLLIN | EPOLLRDHUP;
	if (r < 0)
		return EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
	/* Shut both ways, and bytes came after: reset (here and there). */
	if (u->rd_shut && conn_late_data(u))
		reset = 1;
	m = out ? mpk_link_poll_gen(u->link, rxg, txg) : mpk_link_poll_rx(u->link, rxg);
	/* As tcp_poll says it: the receive side is shut by the peer's end
	 * of stream, our SHUT_RD or a reset; the send side by our SHUT_WR or
	 * a reset (then writes fail at once: OUT); both shut is HUP. */
	rcv_shut = (m & MPK_LINK_RDHUP) || u->rd_shut || reset;
	snd_shut = __atomic_load_n(&u->wr_shut, __ATOMIC_RELAXED) || reset;
	/* Below SO_RCVLOWAT, data is not "readable" yet (the end is). */
	if ((m & MPK_LINK_IN) && !rcv_shut && __atomic_load_n(&u->rcvlowat, __ATOMIC_RELAXED) > 1 &&
	    mpk_link_readable(u->link) < __atomic_load_n(&u->rcvlowat, __ATOMIC_RELAXED))
		m &= ~MPK_LINK_IN;
	if ((m & MPK_LINK_IN) || rcv_shut)
		ev |= EPOLLIN;
	if ((m & MPK_LINK_OUT) || snd_shut)
		ev |= EPOLLOUT;
	if (rcv_shut)
		ev |= EPOLLRDHUP;
	if (rcv_shut && snd_shut)
		ev |= EPOLLHUP;
	if (__atomic_load_n(&u->err_pending, __ATOMIC_RELAXED))
		ev |= EPOLLERR;
	/* A link broken by a peer's violation: every call fails. */
	if (m & MPK_LINK_ERR)
		ev |= EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
	/* A zerocopy completion waits on the error queue. */
	if (__atomic_load_n(&u->zc_pending, __ATOMIC_ACQUIRE))
		ev |= EPOLLERR;
	return ev;
}

void conn_arm(struct ufd *u, uint32_t events)
{
	unsigned want = 0;

	if (!conn_has_rings(u))
		return;
	if (events & EPOLLIN)
		want |= MPK_LINK_IN;
	if ((events & EPOLLOUT) && __atomic_load_n(&u->wblocked, __ATOMIC_RELAXED))
		want |= MPK_LINK_OUT;
	mpk_link_arm(u->link, want | MPK_ARM_NODRAIN);
}
