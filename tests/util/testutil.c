/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

int tu_send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c0;

	memset(&u, 0, sizeof(u));
	c0 = CMSG_FIRSTHDR(&m);
	c0->cmsg_level = SOL_SOCKET;
	c0->cmsg_type = SCM_RIGHTS;
	c0->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c0), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int tu_recv_fd(int sock)
{
	char c;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c0;
	ssize_t r;
	int fd;

	r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ECONNRESET;
	c0 = CMSG_FIRSTHDR(&m);
	if (!c0 || c0->cmsg_level != SOL_SOCKET || c0->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c0), sizeof(int));
	return fd;
}

static inline uint8_t stream_byte(uint64_t i, uint64_t seed)
{
	uint64_t x = (i >> 3) * UINT64_C(0x9e3779b97f4a7c15) ^ seed;
	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return (uint8_t)(x >> ((i & 7) * 8));
}

void tu_fill(uint8_t *buf, size_t n, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(off + i, seed);
}

ssize_t tu_check(const uint8_t *buf, size_t n, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != stream_byte(off + i, seed))
			return (ssize_t)i;
	return -1;
}

uint64_t tu_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

void tu_jitter(uint64_t *s, unsigned max_us)
{
	uint64_t r = tu_rand(s);
	struct timespec ts;

	if (!max_us || (r & 3))
		return; /* three times in four: no delay at all */
	ts.tv_sec = 0;
	ts.tv_nsec = (long)((r >> 8) % max_us) * 1000;
	nanosleep(&ts, NULL);
}

int tu_wait_in(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}
