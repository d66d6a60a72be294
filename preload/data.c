/* SPDX-License-Identifier: MIT */
/* Reads and writes on a link with socket semantics (data.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "data.h"
#include "log.h"
#include "readiness.h"
#include "real.h"
#include "settings.h"
#include "signals.h"
#include "spin.h"

#ifndef TCP_INQ
#define TCP_INQ 36
#define TCP_CM_INQ TCP_INQ
#endif

/* A blocking call's wait: its deadline (SO_RCVTIMEO, SO_SNDTIMEO) and the
 * handlers that ran in this thread since it began (signals.h). */
struct blocking {
	uint64_t deadline; /* 0: none */
	struct sig_mark sig;
};

static void blocking_begin(struct blocking *b, uint64_t timeo_ns)
{
	b->deadline = timeo_ns ? mono_ns() + timeo_ns : 0;
	sig_mark(&b->sig);
}

/* A handler ran (or may have): 0 to go on waiting, as the kernel restarts
 * a socket call whose handler had SA_RESTART when the socket has no
 * timeout; else -EINTR. */
static int blocking_signalled(struct blocking *b, int unknown_is_intr)
{
	int s = sig_since(&b->sig);

	if (s == SIG_NONE && !unknown_is_intr)
		return 0;
	if (s == SIG_RESTART && !b->deadline) {
		sig_mark(&b->sig);
		return 0;
	}
	return -EINTR;
}

/*
 * Blocks until the link (or the setup) may have changed: first by
 * watching the ring for up to MPKLINK_SPIN_US (a reply is often a few
 * microseconds away, a wake-up costs tens), then on the doorbell. Returns
 * 0 (look again), -EAGAIN (the deadline passed), -EINTR (a handler without
 * SA_RESTART ran, or any with a timeout set), or -errno.
 */
static int wait_bell(struct ufd *u, unsigned want, struct blocking *b)
{
	struct pollfd p[2] = {{.fd = u->sock, .events = POLLIN}, {.fd = u->bell[0], .events = POLLIN}};
	struct spin_clock c = {0};
	uint64_t now = 0;
	int r, t = -1;

	if (b->deadline) {
		now = mono_ns();
		if (now >= b->deadline)
			return -EAGAIN;
		t = (int)((b->deadline - now + 999999) / 1000000);
	}
	if (u->state == ST_ACTIVE && cfg.spin_ns && spin_begin(&c, t)) {
		do {
			/* A reader leaves the TX ring alone (mpk_link_poll_rx). */
			unsigned m = want & MPK_LINK_OUT ? mpk_link_poll(u->link)
							 : mpk_link_poll_rx(u->link, NULL);

			if (m & (want | MPK_LINK_HUP | MPK_LINK_ERR)) {
				spin_result(1);
				return 0;
			}
			/* A handler ran meanwhile: where a sleeping call would
			 * have been interrupted, so is this one. */
			if ((r = blocking_signalled(b, 0)) < 0)
				return r;
		} while (spin_next(&c) != SPIN_OVER);
	}
	if (u->state == ST_ACTIVE &&
	    (mpk_link_arm(u->link, want | MPK_ARM_NODRAIN) & (want | MPK_LINK_HUP | MPK_LINK_ERR))) {
		spin_woke(&c);
		return 0;
	}
	if (u->state == ST_CONNECTING)
		p[0].events = POLLOUT;
	if (b->deadline) {
		now = mono_ns();
		if (now >= b->deadline)
			return -EAGAIN;
		t = (int)((b->deadline - now + 999999) / 1000000);
	}
	/* The socket says the peer hung up; the eventfd, that it rang. */
	r = real.poll(p, u->state == ST_ACTIVE && u->bell[0] >= 0 ? 2 : 1, t);
	if (r < 0)
		return errno == EINTR ? blocking_signalled(b, 1) : -errno;
	if (r == 0)
		return b->deadline && mono_ns() >= b->deadline ? -EAGAIN : 0;
	/* Each read only when the kernel says something is there. */
	if (u->state == ST_ACTIVE && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		conn_hangup(u);
	if (u->state == ST_ACTIVE && p[1].revents) {
		mpk_link_drain(u->link);
		spin_woke(&c);
	}
	return 0;
}

#define IOV_REST 64

/* What is left of iov after its first `done` bytes, into rest (which may be
 * iov itself: entries only move down). Returns the count; 0 when nothing
 * is left. At most IOV_REST entries are kept: a short read or write. */
static int iov_advance(const struct iovec *iov, int cnt, size_t done, struct iovec *rest)
{
	int n = 0;

	for (int i = 0; i < cnt && n < IOV_REST; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		rest[n].iov_base = (char *)iov[i].iov_base + done;
		rest[n++].iov_len = iov[i].iov_len - done;
		done = 0;
	}
	return n;
}

ssize_t conn_readv(struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	struct iovec rest[IOV_REST];
	struct blocking b = {0};
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT), waited = 0;
	unsigned lf = (flags & MSG_PEEK) ? MPK_READ_PEEK : 0;

	pthread_mutex_lock(&u->rlock);
	for (;;) {
		r = settle(u);
		if (r == 1) {
			r = CONN_PLAIN;
			break;
		}
		if (r == 0) {
			if (u->rd_shut) {
				r = 0;
				break;
			}
			r = mpk_link_readv(u->link, iov, iovcnt, lf);
			if (r > 0)
				note_io_thread();
		} else if (r == -EPIPE) {
			r = 0; /* EOF before setup finished */
		}
		if (r > 0 && (flags & MSG_WAITALL) && !(flags & MSG_PEEK) && !nb) {
			/* Fill the rest before returning. */
			total += r;
			iovcnt = iov_advance(iov, iovcnt, (size_t)r, rest);
			iov = rest;
			if (iovcnt)
				continue;
			r = total;
			break;
		}
		if (r == -EAGAIN && !nb) {
			int w;

			if (!waited++)
				blocking_begin(&b, __atomic_load_n(&u->rcvtimeo_ns, __ATOMIC_RELAXED));
			w = wait_bell(u, MPK_LINK_IN, &b);
			if (w < 0) {
				r = total ? total : w;
				break;
			}
			continue;
		}
		if (total && r <= 0)
			r = total;
		break;
	}
	pthread_mutex_unlock(&u->rlock);
	if (cfg.log_level >= 3)
		slog(3, "port %u: read -> %zd", u->port, r);
	if (r == -ECONNRESET && u->state == ST_BROKEN && u->conn_err)
		r = -u->conn_err;
	return r;
}

ssize_t conn_writev(struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT), waited = 0;
	struct iovec rest[IOV_REST];
	struct blocking b = {0};

	pthread_mutex_lock(&u->wlock);
	for (;;) {
		r = settle(u);
		/* A PROBE whose server writes first: plain (a linked client
		 * would have sent its preamble at once). */
		if (r == 1 || (r == -EAGAIN && u->state == ST_PROBE)) {
			r = CONN_PLAIN;
			break;
		}
		if (r == 0)
			r = mpk_link_writev(u->link, iov, iovcnt);
		if (r > 0) {
			note_io_thread();
			/* Read by pollers in other threads (conn_arm). */
			__atomic_store_n(&u->wblocked, 0, __ATOMIC_RELAXED);
			total += r;
			if (nb)
				break;
			/* A blocking write sends everything. */
			iovcnt = iov_advance(iov, iovcnt, (size_t)r, rest);
			iov = rest;
			if (!iovcnt)
				break;
			continue;
		}
		if (r == -EAGAIN) {
			if (nb) {
				__atomic_store_n(&u->wblocked, 1, __ATOMIC_RELAXED);
				__atomic_fetch_add(&u->wblock, 1, __ATOMIC_RELAXED);
				/* Ask for space now: a poller may sleep already, armed
				 * before this EAGAIN without OUT (gRPC writes from one
				 * thread while another polls). If space came meanwhile,
				 * wake whoever sleeps on our doorbell to report it. */
				if (mpk_link_arm(u->link, MPK_LINK_OUT | MPK_ARM_NODRAIN) &
				    (MPK_LINK_OUT | MPK_LINK_HUP | MPK_LINK_ERR))
					conn_self_ring(u);
				break;
			}
			int w;

			if (!waited++)
				blocking_begin(&b, __atomic_load_n(&u->sndtimeo_ns, __ATOMIC_RELAXED));
			w = wait_bell(u, MPK_LINK_OUT, &b);
			if (w < 0) {
				r = w;
				break;
			}
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&u->wlock);
	if (cfg.log_level >= 3)
		slog(3, "port %u: write -> %zd (r %zd)", u->port, total, r);
	if (total > 0)
		return total;
	if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return r;
}

ssize_t conn_recvmsg(struct ufd *u, struct msghdr *m, int flags)
{
	ssize_t r = conn_readv(u, m->msg_iov, (int)m->msg_iovlen, flags);
	size_t space = m->msg_controllen;

	if (r == CONN_PLAIN)
		return r;
	m->msg_namelen = 0;
	m->msg_flags = 0;
	m->msg_controllen = 0;
	if (r >= 0 && u->inq && m->msg_control && space >= CMSG_SPACE(sizeof(int))) {
		struct cmsghdr *c = (struct cmsghdr *)m->msg_control;
		ssize_t left = u->state == ST_ACTIVE ? mpk_link_readable(u->link) : 0;
		int v = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;

		c->cmsg_level = IPPROTO_TCP;
		c->cmsg_type = TCP_CM_INQ;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &v, sizeof(v));
		m->msg_controllen = CMSG_SPACE(sizeof(int));
	} else if (r >= 0 && u->inq && m->msg_control && space) {
		m->msg_flags |= MSG_CTRUNC;
	}
	return r;
}

