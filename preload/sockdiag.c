/* SPDX-License-Identifier: MIT */
/* A peer socket's cookie, from the kernel's socket table (sockdiag.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdtab.h"
#include "real.h"
#include "sockdiag.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

uint64_t sockdiag_cookie(int sock)
{
	uint64_t c = 0;
	socklen_t l = sizeof(c);

	return real.getsockopt(sock, SOL_SOCKET, SO_COOKIE, &c, &l) == 0 ? c : 0;
}

/* An IPv4-mapped IPv6 address is looked up as the IPv4 one it is: the
 * peer may be an AF_INET socket (a dual-stack listener's client). */
static int to_id(const struct sockaddr_storage *ss, int *family, __be32 addr[4], __be16 *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		*family = AF_INET;
		addr[0] = a->sin_addr.s_addr;
		*port = a->sin_port;
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		*port = a->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			*family = AF_INET;
			memcpy(addr, &a->sin6_addr.s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, &a->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

uint64_t sockdiag_peer_cookie(int sock)
{
	static __thread int nl = -1;
	static __thread pid_t nl_pid;
	struct sockaddr_storage me, peer;
	socklen_t l = sizeof(me);
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {.nh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST}};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	union {
		struct nlmsghdr h;
		char b[1024];
	} u;
	int fam_me, fam_peer;
	ssize_t n;

	if (getsockname(sock, (struct sockaddr *)&me, &l) < 0)
		return 0;
	l = sizeof(peer);
	if (getpeername(sock, (struct sockaddr *)&peer, &l) < 0)
		return 0;
	/* The peer's socket: its local end is our peer, its remote end us. */
	if (to_id(&peer, &fam_peer, req.r.id.idiag_src, &req.r.id.idiag_sport) < 0 ||
	    to_id(&me, &fam_me, req.r.id.idiag_dst, &req.r.id.idiag_dport) < 0 ||
	    fam_me != fam_peer)
		return 0;
	req.r.sdiag_family = (uint8_t)fam_peer;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* A thread's socket, made again in a forked child (the parent's
	 * would carry both processes' answers). */
	if (nl >= 0 && nl_pid != getpid())
		nl = -1;
	if (nl < 0) {
		int fd = real.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

		if (fd < 0)
			return 0;
		nl = fdtab_internal_take(fd);
		nl_pid = getpid();
	}
	if (real.sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 0;
	do
		n = real.recv(nl, &u, sizeof(u), 0);
	while (n < 0 && errno == EINTR);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) ||
	    u.h.nlmsg_type != SOCK_DIAG_BY_FAMILY || u.h.nlmsg_len > (size_t)n)
		return 0;
	{
		const struct inet_diag_msg *m = NLMSG_DATA(&u.h);

		return (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
	}
}
