/* SPDX-License-Identifier: MIT */
/*
 * Interposers: the socket calls (socket, connect, bind, listen, accept,
 * accept4, shutdown, getsockopt, setsockopt, ioctl). Thin: an fd that is
 * not ours costs one table load and the real call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "conn.h"
#include "readiness.h"
#include "fdtab.h"
#include "process.h"
#include "real.h"
#include "upgrade.h"

#ifndef TCP_INQ
#define TCP_INQ 36
#endif

static int socket_(int domain, int type, int protocol)
{
	int fd;

	init();
	fd = real.socket(domain, type, protocol);
	if (fd >= 0 && fdtab_peek(fd) && !process_borrowed())
		fdtab_fresh(fd);
	return fd;
}

EXPORT int socket(int domain, int type, int protocol)
{
	KEEP_ERRNO(int, socket_(domain, type, protocol));
}

static int connect_(int fd, const struct sockaddr *addr, socklen_t len)
{
	init();
	return upgrade_connect(fd, addr, len);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	KEEP_ERRNO(int, connect_(fd, addr, len));
}

static int bind_(int fd, const struct sockaddr *addr, socklen_t len)
{
	init();
	return real.bind(fd, addr, len);
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	KEEP_ERRNO(int, bind_(fd, addr, len));
}

static int listen_(int fd, int backlog)
{
	init();
	return upgrade_listen(fd, backlog);
}

EXPORT int listen(int fd, int backlog)
{
	KEEP_ERRNO(int, listen_(fd, backlog));
}

static int accept_(int fd, struct sockaddr *addr, socklen_t *alen)
{
	init();
	return upgrade_accept(fd, addr, alen, 0, 0);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	KEEP_ERRNO(int, accept_(fd, addr, alen));
}

static int accept4_(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	init();
	return upgrade_accept(fd, addr, alen, flags, 1);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	KEEP_ERRNO(int, accept4_(fd, addr, alen, flags));
}

static int shutdown_(int fd, int how)
{
	struct ufd *u;
	int r = 0;

	init();
	u = conn_get(fd);
	if (!u)
		return real.shutdown(fd, how);
	/* A server's link whose preamble is still to come is a link all the
	 * same: the ring carries the shutdown. Not yet connected, or plain:
	 * the kernel's. */
	settle(u);
	if (u->state != ST_ACTIVE && u->state != ST_VERIFY) {
		r = real.shutdown(fd, how);
		goto out;
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		errno = EINVAL;
		r = -1;
		goto out;
	}
	/* Both ends shut their sending side (both FINs went), or a reset:
	 * TCP's socket is closed, not connected. */
	if (__atomic_load_n(&u->reset, __ATOMIC_ACQUIRE) ||
	    (__atomic_load_n(&u->wr_shut, __ATOMIC_ACQUIRE) &&
	     (mpk_link_poll_rx(u->link, NULL) & MPK_LINK_RDHUP))) {
		errno = ENOTCONN;
		r = -1;
		goto out;
	}
	/* No real SHUT_WR alone: "space freed" doorbells must still reach
	 * the peer, and a FIN would read as our close. The ring carries the
	 * half-close. */
	if (how == SHUT_RDWR)
		u->shut_arrived = conn_rx_total(u);
	if (how != SHUT_WR)
		u->rd_shut = 1;
	if (how != SHUT_RD) {
		r = mpk_link_shutdown_write(u->link);
		if (r < 0) {
			errno = -r;
			r = -1;
			goto out;
		}
		__atomic_store_n(&u->wr_shut, 1, __ATOMIC_RELEASE);
	}
	/* A read or write blocked in another thread wakes and sees it. */
	conn_self_ring(u);
	/* Both ways: no doorbell is needed any more, and the real shutdown
	 * is what wakes every local poller of this fd (gRPC shuts its
	 * connections down this way and waits for that hang-up). */
	r = how == SHUT_RDWR ? real.shutdown(fd, SHUT_RDWR) : 0;
out:
	ufd_put(u);
	return r;
}

EXPORT int shutdown(int fd, int how)
{
	KEEP_ERRNO(int, shutdown_(fd, how));
}

static int getsockopt_(int fd, int level, int name, void *val, socklen_t *len)
{
	struct ufd *u;
	int r;

	init();
	if (level != SOL_SOCKET || name != SO_ERROR || !val || !len || *len < sizeof(int) ||
	    !(u = conn_get(fd)))
		return real.getsockopt(fd, level, name, val, len);
	r = real.getsockopt(fd, level, name, val, len);
	if (r == 0 && *(int *)val == 0) {
		int s = settle(u), e = conn_take_error(u);

		if (e)
			*(int *)val = e; /* reported once, as sk_err */
		else if (s < 0 && s != -EAGAIN && s != -EPIPE && u->state == ST_BROKEN)
			*(int *)val = u->conn_err ? u->conn_err : ECONNRESET;
	}
	ufd_put(u);
	return r;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	KEEP_ERRNO(int, getsockopt_(fd, level, name, val, len));
}

static int setsockopt_(int fd, int level, int name, const void *val, socklen_t len)
{
	struct ufd *u;
	int r;

	init();
	r = real.setsockopt(fd, level, name, val, len);
	if (r < 0 || !fdtab_peek(fd))
		return r;
	if (level == IPPROTO_TCP && name == TCP_INQ && val && len >= sizeof(int) &&
	    (u = conn_get(fd))) {
		u->inq = *(const int *)val != 0;
		ufd_put(u);
	}
	if (level == SOL_SOCKET && name == SO_ZEROCOPY && val && len >= sizeof(int) &&
	    (u = conn_get(fd))) {
		u->zerocopy = *(const int *)val != 0;
		ufd_put(u);
	}
	if (level == SOL_SOCKET && (name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW ||
				    name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW ||
				    name == SO_RCVLOWAT) &&
	    (u = conn_get(fd))) {
		conn_read_timeouts(u);
		ufd_put(u);
	}
	return r;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	KEEP_ERRNO(int, setsockopt_(fd, level, name, val, len));
}

static int ioctl_(int fd, unsigned long req, void *arg)
{
	struct ufd *u;
	int r;

	init();
	u = conn_get(fd);
	if (!u)
		return real.ioctl(fd, req, arg);
	if (req == FIONREAD && u->state == ST_ACTIVE) {
		ssize_t n = mpk_link_readable(u->link);

		ufd_put(u);
		if (n < 0) {
			errno = (int)-n;
			return -1;
		}
		*(int *)arg = n > INT_MAX ? INT_MAX : (int)n;
		return 0;
	}
	r = real.ioctl(fd, req, arg);
	if (r == 0 && req == FIONBIO)
		u->nonblock = !!*(int *)arg;
	ufd_put(u);
	return r;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	KEEP_ERRNO(int, ioctl_(fd, req, arg));
}
