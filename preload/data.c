/* SPDX-License-Identifier: MIT */
/* Reads and writes on a link with socket semantics (data.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <time.h>
#include <linux/errqueue.h>
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

/* Milliseconds left to b's deadline for poll (rounded up; -1: none), or
 * -EAGAIN when it passed. Negative values other than -1 are errors. */
static int blocking_left_ms(const struct blocking *b)
{
	uint64_t now;

	if (!b->deadline)
		return -1;
	now = mono_ns();
	if (now >= b->deadline)
		return -EAGAIN;
	return (int)((b->deadline - now + 999999) / 1000000);
}

/*
 * Sleeps on u's socket (sock_events: the hang-up, or the connect) and, once
 * it is a link, on its doorbell, until either has something or b's time is
 * up. Returns 0 (look again), -EAGAIN (the deadline passed), -EINTR, or
 * -errno; rang: the doorbell woke it.
 */
static int bell_sleep(struct ufd *u, short sock_events, struct blocking *b, int *rang)
{
	struct pollfd p[2] = {{.fd = u->sock, .events = sock_events},
			      {.fd = u->bell[0], .events = POLLIN}};
	int active = u->state == ST_ACTIVE, t = blocking_left_ms(b), r;

	*rang = 0;
	if (t == -EAGAIN)
		return t;
	/* The socket says the peer hung up; the eventfd, that it rang. */
	r = real.poll(p, active && u->bell[0] >= 0 ? 2 : 1, t);
	if (r < 0)
		return errno == EINTR ? blocking_signalled(b, 1) : -errno;
	if (r == 0)
		return b->deadline && mono_ns() >= b->deadline ? -EAGAIN : 0;
	/* Each read only when the kernel says something is there. */
	if (active && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
		conn_hangup(u);
	if (active && p[1].revents) {
		mpk_link_drain(u->link);
		*rang = 1;
	}
	return 0;
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
	struct spin_clock c = {0};
	int r, rang, t = blocking_left_ms(b);

	if (t == -EAGAIN)
		return t;
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
			 * have been interrupted, so is this one (looked at as
			 * often as the clock: handlers are rare, turns not). */
			if ((c.turns & (SPIN_CLOCK_EVERY - 1)) == 0 && (r = blocking_signalled(b, 0)) < 0)
				return r;
		} while (spin_next(&c) != SPIN_OVER);
	}
	if (u->state == ST_ACTIVE &&
	    (mpk_link_arm(u->link, want | MPK_ARM_NODRAIN) & (want | MPK_LINK_HUP | MPK_LINK_ERR))) {
		spin_woke(&c);
		return 0;
	}
	r = bell_sleep(u, u->state == ST_CONNECTING ? POLLOUT : POLLIN, b, &rang);
	if (rang)
		spin_woke(&c);
	return r;
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

/* recv(MSG_TRUNC) on TCP discards up to len bytes instead of copying
 * them, and returns how many. */
static ssize_t conn_discard(struct ufd *u, size_t len, int flags)
{
	static __thread char sink[16384];
	ssize_t r, total = 0;

	while ((size_t)total < len) {
		size_t n = len - (size_t)total < sizeof(sink) ? len - (size_t)total : sizeof(sink);
		struct iovec iov = {.iov_base = sink, .iov_len = n};

		r = conn_readv(u, &iov, 1, (flags & ~MSG_TRUNC) | (total ? MSG_DONTWAIT : 0));
		if (r <= 0)
			return total ? total : r;
		total += r;
		if (flags & MSG_PEEK)
			break;
	}
	return total;
}

static size_t iov_len(const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

/*
 * Waits until more than have bytes are readable, or the end, an error,
 * the deadline: 0 to look again, or the wait's -errno. Unlike wait_bell,
 * the ring already holding bytes does not end the wait: only the peer's
 * next publish (it rings, as we are armed) or a hang-up does.
 */
static int wait_more(struct ufd *u, size_t have, struct blocking *b)
{
	ssize_t n;
	int rang;

	mpk_link_arm(u->link, MPK_LINK_IN | MPK_ARM_NODRAIN);
	n = mpk_link_readable(u->link);
	if (n < 0 || (size_t)n > have || (mpk_link_poll_rx(u->link, NULL) & MPK_LINK_RDHUP))
		return 0;
	return bell_sleep(u, POLLIN, b, &rang);
}

/* recv(MSG_PEEK | MSG_WAITALL), blocking: TCP waits for all of it (or
 * the end, or the timeout), then peeks. */
static ssize_t conn_peek_all(struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	size_t want = iov_len(iov, iovcnt);
	struct blocking b;
	int r;

	blocking_begin(&b, __atomic_load_n(&u->rcvtimeo_ns, __ATOMIC_RELAXED));
	for (;;) {
		ssize_t n;

		r = settle(u);
		if (r == 1)
			return CONN_PLAIN;
		if (r < 0 && r != -EAGAIN)
			break;
		n = r == 0 ? mpk_link_readable(u->link) : 0;
		if (r == 0 && (n < 0 || (size_t)n >= want ||
			       (mpk_link_poll_rx(u->link, NULL) & MPK_LINK_RDHUP) || u->rd_shut))
			break;
		r = r == 0 ? wait_more(u, (size_t)n, &b) : wait_bell(u, MPK_LINK_IN, &b);
		if (r < 0) {
			/* The timeout or a handler: what is there, peeked. */
			if (r == -EAGAIN || r == -EINTR) {
				ssize_t k = conn_readv(u, iov, iovcnt, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);

				return k > 0 ? k : r;
			}
			return r;
		}
	}
	return conn_readv(u, iov, iovcnt, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);
}

ssize_t conn_readv(struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	struct iovec rest[IOV_REST];
	struct blocking b = {0};
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT), waited = 0;
	unsigned lf = (flags & MSG_PEEK) ? MPK_READ_PEEK : 0;

	if ((flags & MPK_RECV_CALL) && !iov_len(iov, iovcnt)) {
		/* TCP's recv of 0 bytes waits for 1, then says 0. */
		char one;
		struct iovec v = {.iov_base = &one, .iov_len = 1};

		r = conn_readv(u, &v, 1, (flags & ~MPK_RECV_CALL & ~MSG_WAITALL) | MSG_PEEK);
		return r < 0 ? r : 0;
	}
	flags &= ~MPK_RECV_CALL;
	if ((flags & MSG_PEEK) && (flags & MSG_WAITALL) && !nb)
		return conn_peek_all(u, iov, iovcnt, flags);
	if (flags & (MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC)) {
		r = settle(u);
		if (r == 1)
			return CONN_PLAIN;
		/* No urgent byte ever comes over a link (a send of one breaks
		 * it): TCP says EINVAL with none pending. */
		if (flags & MSG_OOB)
			return -EINVAL;
		if (flags & MSG_ERRQUEUE)
			return -EAGAIN; /* a TCP socket's error queue; see conn_recvmsg */
		return conn_discard(u, iov_len(iov, iovcnt), flags);
	}
	pthread_mutex_lock(&u->rlock);
	for (;;) {
		r = settle(u);
		if (r == 1) {
			r = CONN_PLAIN;
			break;
		}
		if (r == 0 && u->rd_shut && conn_late_data(u))
			r = -ECONNRESET;
		if (r == 0) {
			if (conn_maybe_shared(u))
				mpk_link_sync_rx(u->link);
			r = mpk_link_readv(u->link, iov, iovcnt, lf);
			if (r > 0) {
				note_io_thread();
			} else if (r == -EAGAIN ||
				   (r == 0 && __atomic_load_n(&u->rst_first, __ATOMIC_ACQUIRE))) {
				/* Data first; then the end if the peer's FIN came
				 * (tcp_recvmsg looks at SOCK_DONE before sk_err);
				 * else an error, once; then the end (ours by
				 * SHUT_RD, or the reset's). */
				int e = conn_take_error(u);

				if (e)
					r = -e;
				else if (u->rd_shut || __atomic_load_n(&u->reset, __ATOMIC_ACQUIRE))
					r = 0;
			}
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

/* A send with MSG_ZEROCOPY on a socket with SO_ZEROCOPY: TCP queues a
 * completion for each on the error queue, and on loopback it copied
 * (SO_EE_CODE_ZEROCOPY_COPIED). A link copies too: the completion is
 * there as soon as the send returns. */
static void zc_complete(struct ufd *u)
{
	pthread_mutex_lock(&u->slock);
	if (u->zc_pending && u->zc_hi + 1 == u->zc_next) {
		u->zc_hi = u->zc_next; /* coalesced, as the kernel does */
	} else if (!u->zc_pending) {
		u->zc_lo = u->zc_hi = u->zc_next;
		__atomic_store_n(&u->zc_pending, 1, __ATOMIC_RELEASE);
	}
	u->zc_next++;
	pthread_mutex_unlock(&u->slock);
}

ssize_t conn_writev(struct ufd *u, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t r, total = 0;
	int nb = u->nonblock || (flags & MSG_DONTWAIT), waited = 0;
	struct iovec rest[IOV_REST];
	struct blocking b = {0};

	if (__atomic_load_n(&u->err_pending, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&u->wr_shut, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&u->reset, __ATOMIC_ACQUIRE)) {
		/* The error first, once (EPIPE raises SIGPIPE as always);
		 * then a shut or reset send side fails. */
		int e = conn_take_error(u);

		r = e ? -e : -EPIPE;
		if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
			raise(SIGPIPE);
		return r;
	}
	if (flags & MSG_OOB) {
		r = settle(u);
		if (r == 1 || (r == -EAGAIN && u->state == ST_PROBE))
			return CONN_PLAIN;
		if (r == 0 || r == -EAGAIN)
			conn_break(u, "the program sent urgent data (MSG_OOB), which has no place "
				      "in a link's byte stream");
		return -ECONNRESET;
	}
	pthread_mutex_lock(&u->wlock);
	for (;;) {
		r = settle(u);
		/* A PROBE whose server writes first: plain (a linked client
		 * would have sent its preamble at once). */
		if (r == 1 || (r == -EAGAIN && u->state == ST_PROBE)) {
			r = CONN_PLAIN;
			break;
		}
		if (r == 0) {
			if (conn_maybe_shared(u))
				mpk_link_sync_tx(u->link);
			r = mpk_link_writev(u->link, iov, iovcnt);
		}
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
	if (r == -EPIPE && total == 0 && u->state == ST_ACTIVE &&
	    !__atomic_load_n(&u->wr_shut, __ATOMIC_ACQUIRE)) {
		/* The peer closed (or shut both ways). TCP takes this write,
		 * and the peer's kernel answers it with a reset: the bytes
		 * are lost, the peer is reset, the next call fails. */
		for (int i = 0; i < iovcnt; i++)
			total += (ssize_t)iov[i].iov_len;
		conn_reset_peer_after_write(u);
		return total;
	}
	if (cfg.log_level >= 3)
		slog(3, "port %u: write -> %zd (r %zd)", u->port, total, r);
	if (total > 0 && (flags & MSG_ZEROCOPY) && u->zerocopy)
		zc_complete(u);
	if (total > 0)
		return total;
	if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return r;
}

/* recvmsg(MSG_ERRQUEUE): the zerocopy completions (zc_complete), as the
 * kernel reports them: one sock_extended_err per range, under IP_RECVERR
 * or IPV6_RECVERR by the socket's family. */
static ssize_t conn_errqueue(struct ufd *u, struct msghdr *m)
{
	struct sock_extended_err ee = {.ee_origin = SO_EE_ORIGIN_ZEROCOPY,
				       .ee_code = SO_EE_CODE_ZEROCOPY_COPIED};
	size_t space = m->msg_controllen;
	int domain = AF_INET;
	socklen_t dl = sizeof(domain);
	struct cmsghdr *c;

	pthread_mutex_lock(&u->slock);
	if (!u->zc_pending) {
		pthread_mutex_unlock(&u->slock);
		return -EAGAIN;
	}
	ee.ee_info = u->zc_lo;
	ee.ee_data = u->zc_hi;
	u->zc_pending = 0;
	pthread_mutex_unlock(&u->slock);
	real.getsockopt(u->sock, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
	m->msg_flags = MSG_ERRQUEUE;
	m->msg_namelen = 0;
	m->msg_controllen = 0;
	if (!m->msg_control || space < CMSG_SPACE(sizeof(ee))) {
		m->msg_flags |= MSG_CTRUNC;
		return 0;
	}
	c = (struct cmsghdr *)m->msg_control;
	c->cmsg_level = domain == AF_INET6 ? SOL_IPV6 : SOL_IP;
	c->cmsg_type = domain == AF_INET6 ? IPV6_RECVERR : IP_RECVERR;
	c->cmsg_len = CMSG_LEN(sizeof(ee));
	memcpy(CMSG_DATA(c), &ee, sizeof(ee));
	m->msg_controllen = CMSG_SPACE(sizeof(ee));
	return 0;
}

ssize_t conn_recvmsg(struct ufd *u, struct msghdr *m, int flags)
{
	if (flags & MSG_ERRQUEUE) {
		ssize_t r = settle(u);

		return r == 1 ? CONN_PLAIN : conn_errqueue(u, m);
	}
	flags |= MPK_RECV_CALL;
	ssize_t r = conn_readv(u, m->msg_iov, (int)m->msg_iovlen, flags);
	size_t space = m->msg_controllen;

	/* A failed call leaves the header as it was, as the kernel's does. */
	if (r == CONN_PLAIN || r < 0)
		return r;
	m->msg_namelen = 0;
	/* The kernel echoes MSG_CMSG_CLOEXEC back in msg_flags. */
	m->msg_flags = flags & MSG_CMSG_CLOEXEC;
	m->msg_controllen = 0;
	if (u->inq && m->msg_control && space >= CMSG_SPACE(sizeof(int))) {
		struct cmsghdr *c = (struct cmsghdr *)m->msg_control;
		ssize_t left = u->state == ST_ACTIVE ? mpk_link_readable(u->link) : 0;
		int v = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;

		c->cmsg_level = IPPROTO_TCP;
		c->cmsg_type = TCP_CM_INQ;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &v, sizeof(v));
		m->msg_controllen = CMSG_SPACE(sizeof(int));
	} else if (u->inq) {
		m->msg_flags |= MSG_CTRUNC; /* a cmsg with no room for it */
	}
	return r;
}


/* Writes all of buf[0..n) into the link: the caller made sure it fits (it
 * holds wlock and saw the room), so a short write is only a MAC link's
 * framing; returns what went, or -errno. */
static ssize_t put_all(struct ufd *u, const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = mpk_link_write(u->link, buf + done, n - done);

		if (w <= 0)
			return done ? (ssize_t)done : w;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/*
 * Room in the TX ring now, waiting for some as a blocking socket would:
 * > 0, or -EAGAIN (nonblocking, or the send timeout), -EINTR, -EPIPE,
 * -ECONNRESET, or CONN_PLAIN. Under wlock.
 */
static ssize_t tx_room(struct ufd *u, int nb, struct blocking *b, int *waited)
{
	for (;;) {
		int r = settle(u);
		ssize_t room = 0;

		if (r == 1 || (r == -EAGAIN && u->state == ST_PROBE))
			return CONN_PLAIN;
		if (r < 0 && r != -EAGAIN)
			return r;
		if (r == 0) {
			room = mpk_link_writable(u->link);
			if (room != 0)
				return room;
		}
		if (nb) {
			__atomic_store_n(&u->wblocked, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&u->wblock, 1, __ATOMIC_RELAXED);
			if (mpk_link_arm(u->link, MPK_LINK_OUT | MPK_ARM_NODRAIN) &
			    (MPK_LINK_OUT | MPK_LINK_HUP | MPK_LINK_ERR))
				conn_self_ring(u);
			return -EAGAIN;
		}
		if (!(*waited)++)
			blocking_begin(b, __atomic_load_n(&u->sndtimeo_ns, __ATOMIC_RELAXED));
		r = wait_bell(u, MPK_LINK_OUT, b);
		if (r < 0)
			return r;
	}
}

/*
 * Moves up to count bytes from `from` (a file or pipe) into the link, as
 * sendfile and splice do into a TCP socket: each step reads no more than
 * the ring has room for, so nothing read is left unsent. fill reads into
 * buf (at most n; 0 at end, -errno); pos_back puts back what a short
 * write left (files only). Returns the bytes moved or -errno.
 */
typedef ssize_t (*fill_fn)(void *arg, char *buf, size_t n);

static ssize_t pump_in(struct ufd *u, size_t count, int nb, fill_fn fill, void *arg)
{
	static __thread char buf[65536];
	struct blocking b = {0};
	ssize_t total = 0, r = 0;
	int waited = 0;

	pthread_mutex_lock(&u->wlock);
	while ((size_t)total < count) {
		ssize_t room = tx_room(u, nb || total > 0, &b, &waited), got;
		size_t n = count - (size_t)total, step;

		if (room < 0) {
			r = room;
			break;
		}
		/* A MAC link's room is for one frame's payload at a time. */
		step = mpk_link_mac_required(u->link) ? 16384 : sizeof(buf);
		if (n > (size_t)room)
			n = (size_t)room;
		if (n > step)
			n = step;
		got = fill(arg, buf, n);
		if (got <= 0) {
			r = got;
			break;
		}
		r = put_all(u, buf, (size_t)got);
		if (r < got) {
			/* Cannot be while we hold wlock and saw the room; say so
			 * rather than lose bytes quietly. */
			conn_break(u, "a sendfile or splice could not place what it read");
			r = -ECONNRESET;
			break;
		}
		total += r;
		note_io_thread();
	}
	pthread_mutex_unlock(&u->wlock);
	if (total > 0)
		return total;
	if (r == -EPIPE)
		raise(SIGPIPE);
	return r == CONN_PLAIN ? CONN_PLAIN : r;
}

struct file_src {
	int fd;
	off_t *offset; /* NULL: the file's position */
};

static ssize_t fill_file(void *arg, char *buf, size_t n)
{
	struct file_src *f = arg;
	ssize_t r;

	do
		r = f->offset ? pread(f->fd, buf, n, *f->offset) : real.read(f->fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (f->offset)
		*f->offset += r;
	return r;
}

ssize_t conn_sendfile(struct ufd *u, int in_fd, off_t *offset, size_t count)
{
	struct file_src f = {in_fd, offset};

	return pump_in(u, count, u->nonblock, fill_file, &f);
}

struct pipe_src {
	int fd;
	int nonblock; /* SPLICE_F_NONBLOCK */
};

static ssize_t fill_pipe(void *arg, char *buf, size_t n)
{
	struct pipe_src *p = arg;
	ssize_t r;

	if (p->nonblock) {
		struct pollfd pf = {.fd = p->fd, .events = POLLIN};

		if (real.poll(&pf, 1, 0) == 0)
			return -EAGAIN;
	}
	do
		r = real.read(p->fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t conn_splice_in(struct ufd *u, int pipe_fd, size_t len, unsigned flags)
{
	struct pipe_src p = {pipe_fd, !!(flags & SPLICE_F_NONBLOCK)};

	return pump_in(u, len, u->nonblock, fill_pipe, &p);
}

ssize_t conn_splice_out(struct ufd *u, int pipe_fd, size_t len, unsigned flags)
{
	static __thread char buf[65536];
	struct iovec iov = {.iov_base = buf, .iov_len = len < sizeof(buf) ? len : sizeof(buf)};
	ssize_t r, w;

	/* Peek, give the pipe what it takes, then consume exactly that. */
	r = conn_readv(u, &iov, 1, MSG_PEEK | ((flags & SPLICE_F_NONBLOCK) ? MSG_DONTWAIT : 0));
	if (r <= 0)
		return r;
	do
		w = real.write(pipe_fd, buf, (size_t)r);
	while (w < 0 && errno == EINTR);
	if (w <= 0)
		return w < 0 ? -errno : 0;
	iov.iov_len = (size_t)w;
	r = conn_readv(u, &iov, 1, MSG_DONTWAIT);
	return r == w ? w : (r < 0 ? r : -EIO);
}
