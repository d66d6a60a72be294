/* SPDX-License-Identifier: MIT */
/*
 * Interposers: the data calls (read, readv, write, writev, recv, recvfrom,
 * recvmsg, recvmmsg, send, sendto, sendmsg, sendmmsg, sendfile, splice,
 * and the _chk variants fortified programs call). Thin: a plain fd costs one table load and the real call; a link's
 * goes to data.c with a reference on its connection for the call's length.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "fdtab.h"
#include "process.h"
#include "spin.h"
#include "upgrade.h"
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

static ssize_t read_(int fd, void *buf, size_t n)
{
	return do_read(fd, buf, n);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	KEEP_ERRNO(ssize_t, read_(fd, buf, n));
}

static ssize_t __read_chk_(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		abort();
	return do_read(fd, buf, n);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	KEEP_ERRNO(ssize_t, __read_chk_(fd, buf, n, buflen));
}

static ssize_t readv_(int fd, const struct iovec *iov, int n)
{
	DATA_CALL(fd, real.readv(fd, iov, n), conn_readv(u, iov, n, 0));
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	KEEP_ERRNO(ssize_t, readv_(fd, iov, n));
}

static ssize_t do_recv(int fd, void *buf, size_t n, int flags)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.recv(fd, buf, n, flags), conn_readv(u, &iov, 1, flags | MPK_RECV_CALL));
}

static ssize_t recv_(int fd, void *buf, size_t n, int flags)
{
	return do_recv(fd, buf, n, flags);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	KEEP_ERRNO(ssize_t, recv_(fd, buf, n, flags));
}

static ssize_t __recv_chk_(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return do_recv(fd, buf, n, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	KEEP_ERRNO(ssize_t, __recv_chk_(fd, buf, n, buflen, flags));
}

static ssize_t do_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a,
			   socklen_t *al)
{
	struct iovec iov = iov1(buf, n);

	/* A connected TCP socket reports no source address. */
	DATA_CALL(fd, real.recvfrom(fd, buf, n, flags, a, al),
		  (al ? (*al = 0) : 0, conn_readv(u, &iov, 1, flags | MPK_RECV_CALL)));
}

static ssize_t recvfrom_(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
	return do_recvfrom(fd, buf, n, flags, a, al);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al)
{
	KEEP_ERRNO(ssize_t, recvfrom_(fd, buf, n, flags, a, al));
}

static ssize_t __recvfrom_chk_(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *a, socklen_t *al)
{
	if (n > buflen)
		abort();
	return do_recvfrom(fd, buf, n, flags, a, al);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *a, socklen_t *al)
{
	KEEP_ERRNO(ssize_t, __recvfrom_chk_(fd, buf, n, buflen, flags, a, al));
}

/* Calls fn for each fd in m's SCM_RIGHTS messages, never reading past
 * msg_controllen whatever a header claims. */
static void each_right(const struct msghdr *m, void (*fn)(int))
{
	const char *end = (const char *)m->msg_control + m->msg_controllen;

	if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
	     c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		size_t len = c->cmsg_len;

		if (len < CMSG_LEN(0))
			break;
		if (len > (size_t)(end - (const char *)c))
			len = (size_t)(end - (const char *)c);
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || len < CMSG_LEN(0))
			continue;
		for (size_t i = 0; i < (len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			fn(f);
		}
	}
}

/* An fd received over a socket takes a number the kernel may have freed
 * behind our back: anything stale there goes; and a connection whose link
 * our launcher keeps (another process of the program sent it) is a link
 * here too. */
static void right_received(int f)
{
	if (fdtab_peek(f))
		fdtab_fresh(f);
	upgrade_adopt_received(f);
}

static ssize_t fresh_rights(struct msghdr *m, ssize_t r)
{
	/* A vfork child's table is its parent's. */
	if (r >= 0 && m->msg_controllen && !process_borrowed())
		each_right(m, right_received);
	return r;
}

static int fresh_rights_mmsg(struct mmsghdr *v, int r)
{
	for (int i = 0; i < r; i++)
		fresh_rights(&v[i].msg_hdr, 0);
	return r;
}

static ssize_t recvmsg_(int fd, struct msghdr *m, int flags)
{
	DATA_CALL(fd, fresh_rights(m, real.recvmsg(fd, m, flags)), conn_recvmsg(u, m, flags));
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	KEEP_ERRNO(ssize_t, recvmsg_(fd, m, flags));
}

/* recvmmsg on a link, as the kernel's loop of recvmsg calls: each entry
 * gets what one recvmsg gets; MSG_WAITFORONE makes the rest nonblocking;
 * the timeout is looked at after each entry. */
static ssize_t link_recvmmsg(struct ufd *u, struct mmsghdr *v, unsigned n, int flags,
			     struct timespec *timeout)
{
	uint64_t end = 0;
	unsigned i;
	ssize_t r = 0;

	if (timeout) {
		if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)
			return -EINVAL;
		end = mono_ns() + (uint64_t)timeout->tv_sec * 1000000000u + (uint64_t)timeout->tv_nsec;
	}
	for (i = 0; i < n; i++) {
		r = conn_recvmsg(u, &v[i].msg_hdr, flags);
		if (r < 0)
			break;
		v[i].msg_len = (unsigned)r;
		if (flags & MSG_WAITFORONE)
			flags |= MSG_DONTWAIT;
		if (r == 0)
			{ i++; break; } /* end of stream: nothing more comes */
		if (timeout && mono_ns() >= end) {
			i++;
			break;
		}
	}
	if (timeout) {
		uint64_t now = mono_ns(), left = now < end ? end - now : 0;

		timeout->tv_sec = (time_t)(left / 1000000000u);
		timeout->tv_nsec = (long)(left % 1000000000u);
	}
	if (r == CONN_PLAIN && i == 0)
		return CONN_PLAIN;
	return i ? (ssize_t)i : r;
}

static int recvmmsg_(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *timeout)
{
	DATA_CALL(fd, fresh_rights_mmsg(v, real.recvmmsg(fd, v, n, flags, timeout)), link_recvmmsg(u, v, n, flags, timeout));
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *timeout)
{
	KEEP_ERRNO(int, recvmmsg_(fd, v, n, flags, timeout));
}

static ssize_t write_(int fd, const void *buf, size_t n)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.write(fd, buf, n), conn_writev(u, &iov, 1, 0));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	KEEP_ERRNO(ssize_t, write_(fd, buf, n));
}

static ssize_t writev_(int fd, const struct iovec *iov, int n)
{
	DATA_CALL(fd, real.writev(fd, iov, n), conn_writev(u, iov, n, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	KEEP_ERRNO(ssize_t, writev_(fd, iov, n));
}

static ssize_t send_(int fd, const void *buf, size_t n, int flags)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.send(fd, buf, n, flags), conn_writev(u, &iov, 1, flags));
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	KEEP_ERRNO(ssize_t, send_(fd, buf, n, flags));
}

static ssize_t sendto_(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a,
		      socklen_t al)
{
	struct iovec iov = iov1(buf, n);

	DATA_CALL(fd, real.sendto(fd, buf, n, flags, a, al), conn_writev(u, &iov, 1, flags));
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a,
		      socklen_t al)
{
	KEEP_ERRNO(ssize_t, sendto_(fd, buf, n, flags, a, al));
}

/* A link whose socket goes to another process in an SCM_RIGHTS message:
 * from now on that process may hold it too (conn_maybe_shared). Marked
 * before the send, so the receiver never holds one this process thinks
 * its own; a send that fails leaves it marked, which costs only the
 * checks a shared link makes. */
static void right_sent(int f)
{
	struct ufd *u = conn_get(f);

	if (u) {
		__atomic_store_n(&u->passed, 1, __ATOMIC_RELAXED);
		ufd_put(u);
	}
}

static void note_rights_sent(const struct msghdr *m)
{
	if (m->msg_controllen)
		each_right(m, right_sent);
}

static ssize_t plain_sendmsg(int fd, const struct msghdr *m, int flags)
{
	note_rights_sent(m);
	return real.sendmsg(fd, m, flags);
}

static int plain_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	for (unsigned i = 0; i < n; i++)
		note_rights_sent(&v[i].msg_hdr);
	return real.sendmmsg(fd, v, n, flags);
}

static ssize_t sendmsg_(int fd, const struct msghdr *m, int flags)
{
	DATA_CALL(fd, plain_sendmsg(fd, m, flags),
		  conn_writev(u, m->msg_iov, (int)m->msg_iovlen, flags));
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	KEEP_ERRNO(ssize_t, sendmsg_(fd, m, flags));
}

/* sendmmsg on a link: the kernel's loop of sendmsg calls, stopping at the
 * first error (which is the result only when nothing was sent). */
static ssize_t link_sendmmsg(struct ufd *u, struct mmsghdr *v, unsigned n, int flags)
{
	ssize_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		r = conn_writev(u, v[i].msg_hdr.msg_iov, (int)v[i].msg_hdr.msg_iovlen, flags);
		if (r < 0)
			break;
		v[i].msg_len = (unsigned)r;
	}
	if (r == CONN_PLAIN && i == 0)
		return CONN_PLAIN;
	return i ? (ssize_t)i : r;
}

static int sendmmsg_(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	DATA_CALL(fd, plain_sendmmsg(fd, v, n, flags), link_sendmmsg(u, v, n, flags));
}

EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	KEEP_ERRNO(int, sendmmsg_(fd, v, n, flags));
}

/* sendfile and sendfile64 are one call on LP64. */
static ssize_t sendfile_(int out, int in, off_t *offset, size_t count)
{
	struct fdobj *o = (init(), fdtab_peek(in));

	if (o && o->kind == FDO_CONN) {
		errno = EINVAL; /* in_fd cannot be a socket */
		return -1;
	}
	DATA_CALL(out, real.sendfile(out, in, offset, count), conn_sendfile(u, in, offset, count));
}

EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
	KEEP_ERRNO(ssize_t, sendfile_(out, in, offset, count));
}

EXPORT ssize_t sendfile64(int out, int in, off_t *offset, size_t count)
	__attribute__((alias("sendfile")));

static ssize_t splice_(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
		      unsigned flags)
{
	struct fdobj *o;

	init();
	o = fdtab_peek(out);
	if (o && o->kind == FDO_CONN) {
		if (off_out) {
			errno = ESPIPE; /* a socket has no offset */
			return -1;
		}
		DATA_CALL(out, real.splice(in, off_in, out, off_out, len, flags),
			  conn_splice_in(u, in, len, flags));
	}
	o = fdtab_peek(in);
	if (o && o->kind == FDO_CONN) {
		if (off_in) {
			errno = ESPIPE;
			return -1;
		}
		DATA_CALL(in, real.splice(in, off_in, out, off_out, len, flags),
			  conn_splice_out(u, out, len, flags));
	}
	return real.splice(in, off_in, out, off_out, len, flags);
}

EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
		      unsigned flags)
{
	KEEP_ERRNO(ssize_t, splice_(in, off_in, out, off_out, len, flags));
}
