/* SPDX-License-Identifier: MIT */
/*
 * Reads and writes on a link with the semantics of the TCP socket they
 * stand for: nonblocking, bytes or -EAGAIN; blocking, wait (spin, then the
 * doorbell) and retry; a blocking write writes everything; MSG_PEEK,
 * MSG_WAITALL, MSG_DONTWAIT, MSG_NOSIGNAL and SIGPIPE; recvmsg's
 * msg_flags, msg_controllen and TCP_INQ's TCP_CM_INQ.
 *
 * One reader and one writer at a time per connection (rlock, wlock), as
 * the rings require. The caller holds a reference on u.
 * May call: conn.h, readiness.h, spin.h, settings.h, log.h.
 */
#ifndef MPK_DATA_H
#define MPK_DATA_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conn.h"

/* The connection turned out plain (a server's client not under mpklink):
 * the caller demotes it and makes the real call. */
#define CONN_PLAIN (-((ssize_t)1 << 40))

/* For conn_readv: the call is recv, recvfrom or recvmsg, not read or
 * readv: asked for 0 bytes, TCP's recv waits for one as for any, and
 * says EAGAIN when nonblocking and empty (read says 0 at once). The
 * kernel refuses this bit from programs (MSG_CMSG_COMPAT). */
#define MPK_RECV_CALL 0x80000000

/* Bytes read (0 at end of stream), -errno, or CONN_PLAIN. */
HIDDEN ssize_t conn_readv(struct ufd *u, const struct iovec *iov, int iovcnt, int flags);

/* Bytes written, -errno (-EPIPE raised SIGPIPE unless MSG_NOSIGNAL), or
 * CONN_PLAIN. */
HIDDEN ssize_t conn_writev(struct ufd *u, const struct iovec *iov, int iovcnt, int flags);

/* recvmsg: msg_iov as conn_readv, then msg_flags, msg_namelen and the
 * TCP_CM_INQ control message (TCP_INQ on). */
HIDDEN ssize_t conn_recvmsg(struct ufd *u, struct msghdr *m, int flags);

/* sendfile(2) into a link: from in_fd at *offset (advanced) or at its
 * position (advanced). Bytes, -errno, or CONN_PLAIN. */
HIDDEN ssize_t conn_sendfile(struct ufd *u, int in_fd, off_t *offset, size_t count);

/* splice(2) from a pipe into a link, and from a link into a pipe. */
HIDDEN ssize_t conn_splice_in(struct ufd *u, int pipe_fd, size_t len, unsigned flags);
HIDDEN ssize_t conn_splice_out(struct ufd *u, int pipe_fd, size_t len, unsigned flags);

#endif
