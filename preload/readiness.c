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
	int r = settle(u);

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
	m = out ? mpk_link_poll_gen(u->link, rxg, txg) : mpk_link_poll_rx(u->link, rxg);
	if ((m & MPK_LINK_IN) || u->rd_shut)
		ev |= EPOLLIN;
	if (m & MPK_LINK_OUT)
		ev |= EPOLLOUT;
	if ((m & MPK_LINK_RDHUP) || u->rd_shut)
		ev |= EPOLLRDHUP;
	if (m & MPK_LINK_ERR)
		ev |= EPOLLERR | EPOLLHUP;
	/* A zerocopy completion waits on the error queue. */
	if (__atomic_load_n(&u->zc_pending, __ATOMIC_ACQUIRE))
		ev |= EPOLLERR;
	return ev;
}

void conn_arm(struct ufd *u, uint32_t events)
{
	unsigned want = 0;

	if (u->state != ST_ACTIVE)
		return;
	if (events & EPOLLIN)
		want |= MPK_LINK_IN;
	if ((events & EPOLLOUT) && __atomic_load_n(&u->wblocked, __ATOMIC_RELAXED))
		want |= MPK_LINK_OUT;
	mpk_link_arm(u->link, want | MPK_ARM_NODRAIN);
}
