/* SPDX-License-Identifier: MIT */
/*
 * out_edge PORT: one thread sleeps in epoll_wait (EPOLLIN|EPOLLOUT|
 * EPOLLET, as gRPC registers) while another thread fills the connection
 * until EAGAIN; then the peer (a child process) drains it. The sleeping
 * thread must wake with EPOLLOUT, as the kernel's write-space wake-up
 * gives it: gRPC writes from one thread while another polls, and a lost
 * edge leaves its write pending forever. Knows nothing of mpklink.
 * Exit 0, or 1 naming what went wrong (a watchdog turns a hang into one).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IT_NAME "out_edge"
#include "it_fail.h"

static int ep;
static int got_out; /* atomic: the poller sets it, main reads it */

static void *poller(void *arg)
{
	struct epoll_event ev[4];

	(void)arg;
	for (;;) {
		int n = epoll_wait(ep, ev, 4, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAIL("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			if (ev[i].events & EPOLLOUT) {
				__atomic_store_n(&got_out, 1, __ATOMIC_RELEASE);
				return NULL;
			}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	static char buf[1 << 16];
	int l, c, go[2], one = 1;
	long filled = 0;
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
	pthread_t t;
	pid_t pid;

	if (argc != 2)
		return fprintf(stderr, "usage: out_edge PORT\n"), 2;
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	alarm(20);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0)
		FAIL("listen: %s", strerror(errno));
	if (pipe(go) < 0)
		FAIL("pipe");
	pid = fork();
	if (pid == 0) {
		/* The peer: accepts, waits to be told, then reads everything. */
		int s = accept(l, NULL, NULL);
		char x;

		if (s < 0 || read(go[0], &x, 1) != 1)
			_exit(3);
		while (read(s, buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		FAIL("connect: %s", strerror(errno));
	/* A small kernel buffer, so that plain TCP fills soon too. */
	fcntl(c, F_SETFL, O_NONBLOCK);
	ep = epoll_create1(0);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) < 0)
		FAIL("epoll_ctl: %s", strerror(errno));
	/* The first edge (connected, writable): taken here. */
	if (epoll_wait(ep, &e, 1, 5000) != 1 || !(e.events & EPOLLOUT))
		FAIL("no first EPOLLOUT");
	pthread_create(&t, NULL, poller, NULL);
	usleep(200000); /* the poller sleeps now */
	for (;;) {
		ssize_t r = write(c, buf, sizeof(buf));

		if (r > 0) {
			filled += r;
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			break;
		FAIL("write: %s", strerror(errno));
	}
	if (__atomic_load_n(&got_out, __ATOMIC_ACQUIRE))
		FAIL("EPOLLOUT before any space was freed");
	if (write(go[1], "g", 1) != 1)
		FAIL("cannot tell the peer");
	for (int i = 0; i < 500 && !__atomic_load_n(&got_out, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	if (!__atomic_load_n(&got_out, __ATOMIC_ACQUIRE))
		FAIL("the sleeping thread never got EPOLLOUT after %ld bytes were drained", filled);
	pthread_join(t, NULL);
	printf("out_edge: EPOLLOUT after the peer drained %ld bytes\n", filled);
	close(c);
	waitpid(pid, NULL, 0);
	return 0;
}
