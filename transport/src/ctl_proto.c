/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's messages on the wire (mpklink/ctl.h): one
 * SOCK_SEQPACKET datagram each, a link's fds beside it as SCM_RIGHTS. Both
 * sides use it: the preload for its requests, the launcher's server for
 * its replies and the rendezvous between launchers. Every libc call goes
 * through the transport's real-call table (sys.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mpklink/ctl.h"
#include "sys.h"

int mpk_ctl_connect(const char *path)
{
	const struct mpk_sys *s = mpk__sys();
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, r;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	fd = s->socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (s->connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		s->close(fd);
		return r;
	}
	return fd;
}

static void fds_close_n(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			mpk__sys()->close(fds[i]);
		fds[i] = -1;
	}
}

void mpk_ctl_fds_close(int fds[MPK_LINK_NFDS])
{
	fds_close_n(fds, MPK_LINK_NFDS);
}

void mpk_ctl_links_close(int *fds, size_t nlinks)
{
	fds_close_n(fds, nlinks * MPK_LINK_NFDS);
}

#define LINKS_FDS_MAX (MPK_LINK_NFDS * MPK_CTL_BATCH_MAX)

int mpk_ctl_send_links(int sock, const void *buf, size_t len, const int *fds, size_t nlinks)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * LINKS_FDS_MAX)];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	size_t nfds = nlinks * MPK_LINK_NFDS;
	ssize_t r;

	if (nlinks > MPK_CTL_BATCH_MAX)
		return -EINVAL;
	if (fds && nfds) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		r = mpk__sys()->sendmsg(sock, &m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EPROTO;
}

int mpk_ctl_send(int sock, const void *buf, size_t len, const int *fds)
{
	return mpk_ctl_send_links(sock, buf, len, fds, fds ? 1 : 0);
}

static int recv_links(int sock, void *buf, size_t cap, size_t *len, int *fds, size_t maxlinks,
		      size_t *nlinks, int flags)
{
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	union {
		struct cmsghdr h;
		/* Room for more than we take: an excess is seen, closed and
		 * refused rather than truncated (MSG_CTRUNC) unseen. */
		char b[CMSG_SPACE(sizeof(int) * (LINKS_FDS_MAX + 8))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			   .msg_controllen = sizeof(u.b)};
	struct cmsghdr *c;
	size_t max = (fds ? maxlinks : 0) * MPK_LINK_NFDS, ngot = 0;
	int got[LINKS_FDS_MAX], bad = 0;
	ssize_t r;

	if (max > LINKS_FDS_MAX)
		return -EINVAL;
	*nlinks = 0;
	for (size_t i = 0; i < max; i++)
		fds[i] = -1;
	do
		r = mpk__sys()->recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ngot < max) {
				got[ngot++] = f;
			} else {
				mpk__sys()->close(f);
				bad = 1;
			}
		}
	}
	if (r == 0 && !ngot && !bad)
		return -ECONNRESET;
	if (ngot % MPK_LINK_NFDS)
		bad = 1;
	if (bad || r == 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		fds_close_n(got, ngot);
		return r == 0 && !bad ? -ECONNRESET : -EPROTO;
	}
	if (ngot)
		memcpy(fds, got, ngot * sizeof(int));
	*nlinks = ngot / MPK_LINK_NFDS;
	*len = (size_t)r;
	return 0;
}

int mpk_ctl_recv_links(int sock, void *buf, size_t cap, size_t *len, int *fds, size_t maxlinks,
		       size_t *nlinks)
{
	return recv_links(sock, buf, cap, len, fds, maxlinks, nlinks, 0);
}

int mpk_ctl_recv(int sock, void *buf, size_t cap, size_t *len, int *fds)
{
	size_t n;

	return mpk_ctl_recv_links(sock, buf, cap, len, fds, fds ? 1 : 0, &n);
}

int mpk_ctl_recv_exact(int sock, void *buf, size_t len, int *fds)
{
	size_t got;
	int r = mpk_ctl_recv(sock, buf, len, &got, fds);

	if (r == 0 && got != len) {
		if (fds)
			mpk_ctl_fds_close(fds);
		return -EPROTO;
	}
	return r;
}

int mpk_ctl_call(int sock, const struct mpk_ctl_req *req, struct mpk_ctl_rep *rep,
		 int fds_out[MPK_LINK_NFDS])
{
	int r = mpk_ctl_send(sock, req, sizeof(*req), NULL);

	for (int i = 0; i < MPK_LINK_NFDS; i++)
		fds_out[i] = -1;
	if (r < 0)
		return r;
	r = mpk_ctl_recv_exact(sock, rep, sizeof(*rep), fds_out);
	if (r < 0)
		return r;
	if (rep->magic != MPK_CTL_MAGIC) {
		mpk_ctl_fds_close(fds_out);
		return -EPROTO;
	}
	return 0;
}

int mpk_ctl_batch_recv(int sock, struct mpk_ctl_batch *rep, int *fds_out, int nonblock)
{
	size_t len = 0, n = 0;
	int r;

	for (size_t i = 0; i < LINKS_FDS_MAX; i++)
		fds_out[i] = -1;
	r = recv_links(sock, rep, sizeof(*rep), &len, fds_out, MPK_CTL_BATCH_MAX, &n,
		       nonblock ? MSG_DONTWAIT : 0);
	if (r < 0)
		return r;
	if (len != sizeof(*rep) || rep->magic != MPK_CTL_MAGIC ||
	    (rep->status == 0 && (rep->n < 1 || rep->n > MPK_CTL_BATCH_MAX || rep->n != n)) ||
	    (rep->status != 0 && n)) {
		mpk_ctl_links_close(fds_out, n);
		return -EPROTO;
	}
	return 0;
}
