/* SPDX-License-Identifier: MIT */
/* The kernel's table of TCP sockets, through sock_diag (sockdiag.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockdiag.h"

static int dump_family(int nl, int family, void (*fn)(void *, unsigned, unsigned), void *arg)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
		.nh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
		/* Not listeners, and not what no fd can hold: TIME_WAIT and
		 * embryonic connections, the bulk of the table under connection
		 * churn (20,000 TIME_WAIT sockets made each read of it cost
		 * more than the connections it looked at). */
		.r = {.sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
		      .idiag_states = ~((1u << TCP_LISTEN) | (1u << TCP_TIME_WAIT) |
					(1u << TCP_SYN_RECV) | (1u << 12 /* TCP_NEW_SYN_RECV */))},
	};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	static __thread char buf[32768];

	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0)
			return errno == EINTR ? -EINTR : -errno;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m;

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			if (m->idiag_inode)
				fn(arg, ntohs(m->id.idiag_sport), ntohs(m->id.idiag_dport));
		}
	}
}

int mpk_tcp_held(void (*fn)(void *arg, unsigned lport, unsigned rport), void *arg)
{
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), r;

	if (nl < 0)
		return -errno;
	r = dump_family(nl, AF_INET, fn, arg);
	if (r == 0)
		r = dump_family(nl, AF_INET6, fn, arg);
	close(nl);
	return r;
}
