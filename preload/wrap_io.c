/* SPDX-License-Identifier: MIT */
/*
 * Interposers: the data calls (read, readv, write, writev, recv, recvfrom,
 * recvmsg, send, sendto, sendmsg, and the _chk variants fortified programs
 * call). Thin: a plain fd costs one table load and the real call; a link's
 * goes to data.c with a reference on its connection for the call's length.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "data.h"
#include "real.h"

/* Fortified programs call these; glibc declares them only internally. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *a, socklen_t *al);

/*
 * The body of every data call: plain (the real call) when fd is not a
 * link, else expr with u set; a server's connection found plain on the way
 * (CONN_PLAIN) goes back to pure pass-through and makes the real call.
 */
#define DATA_CALL(fd, plain, expr)                                                       \
	do {                                                                             \
		struct ufd *u;                                                           \
		ssize_t r_;                                                              \
		init();                                                                  \
		if (!(u = conn_get(fd)))                                                 \
			return plain;                                                    \
		r_ = (expr);                                                             \
		if (r_ == CONN_PLAIN) {                                                  \
			conn_demote(u);                                                  \
			ufd_put(u);                                                      \
			return plain;                                                    \
		}                                                                        \
		ufd_put(u);                                                              \
		if (r_ >= 0)                                                             \
			return r_;                                                       \
		errno = (int)-r_;                                                        \
		return -1;                                                               \
	} while (0)

static inline struct iovec iov1(const void *buf, size_t len)
{
	return (struct iovec){.iov_base = (void *)buf, .iov_len = len};
}

/* Each body once, for the call and its _chk variant: within the library
 * a call by name would bind to the exported interposer (hygiene.sh). */
static ssize_t do_read(int fd, void *buf, size_t n)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.read(fd, buf, n), conn_readv(u, &iov, 1, 0));
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	return do_read(fd, buf, n);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		abort();
	return do_read(fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	DATA_CALL(fd, real.readv(fd, iov, n), conn_readv(u, iov, n, 0));
}

static ssize_t do_recv(int fd, void *buf, size_t n, int flags)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.recv(fd, buf, n, flags), conn_readv(u, &iov, 1, flags));
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return do_recv(fd, buf, n, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return do_recv(fd, buf, n, flags);
}

static ssize_t do_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a,
			   socklen_t *al)
{
	struct iovec iov = iov1(buf, n);

	/* A connected TCP socket reports no source address. */
	DATA_CALL(fd, real.recvfrom(fd, buf, n, flags, a, al),
		  (al ? (*al = 0) : 0, conn_readv(u, &iov, 1, flags)));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
	return do_recvfrom(fd, buf, n, flags, a, al);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *a, socklen_t *al)
{
	if (n > buflen)
		abort();
	return do_recvfrom(fd, buf, n, flags, a, al);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	DATA_CALL(fd, real.recvmsg(fd, m, flags), conn_recvmsg(u, m, flags));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.write(fd, buf, n), conn_writev(u, &iov, 1, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	DATA_CALL(fd, real.writev(fd, iov, n), conn_writev(u, iov, n, 0));
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.send(fd, buf, n, flags), conn_writev(u, &iov, 1, flags));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a,
		      socklen_t al)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.sendto(fd, buf, n, flags, a, al), conn_writev(u, &iov, 1, flags));
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	DATA_CALL(fd, real.sendmsg(fd, m, flags),
		  conn_writev(u, m->msg_iov, (int)m->msg_iovlen, flags));
}
