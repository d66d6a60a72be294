/* SPDX-License-Identifier: MIT */
/*
 * epoll_late PORT: a thread sleeps in epoll_wait on a set that holds only a
 * pipe, while the main thread accepts a connection and adds it to that
 * set; then the peer (a child process) writes. Every event the sleeper
 * gets must carry data the program registered (1: the pipe, 2: the
 * connection), and the connection's must come. gRPC's pollers sleep so
 * between connections: an event with data of anyone else's is a pointer
 * it dereferences (a general-protection fault in LockfreeEvent::SetReady).
 * Knows nothing of mpklink. Exit 0, or 1 naming what went wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define IT_NAME "epoll_late"
#include "it_fail.h"

static int ep;
static int got_conn; /* atomic: the sleeper sets it, main reads it */

static void *sleeper(void *arg)
{
	struct epoll_event ev[8];

	(void)arg;
	for (;;) {
		int n = epoll_wait(ep, ev, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAIL("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 != 1 && ev[i].data.u64 != 2)
				FAIL("an event with data 0x%llx (events 0x%x), registered by "
				     "nobody: the program had 1 and 2",
				     (unsigned long long)ev[i].data.u64, ev[i].events);
			if (ev[i].data.u64 == 2 && (ev[i].events & EPOLLIN)) {
				__atomic_store_n(&got_conn, 1, __ATOMIC_RELEASE);
				return NULL;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event e = {.events = EPOLLIN};
	int l, s, p[2], go[2], one = 1, st;
	pthread_t t;
	pid_t pid;

	if (argc != 2)
		return fprintf(stderr, "usage: epoll_late PORT\n"), 2;
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	alarm(20);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0)
		FAIL("listen: %s", strerror(errno));
	if (pipe(p) < 0 || pipe(go) < 0)
		FAIL("pipe");
	pid = fork();
	if (pid == 0) {
		/* The peer: connects, waits to be told, writes, waits for EOF. */
		int c = socket(AF_INET, SOCK_STREAM, 0);
		char x;

		if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 || read(go[0], &x, 1) != 1 ||
		    write(c, "ping", 4) != 4)
			_exit(3);
		while (read(c, &x, 1) > 0)
			;
		_exit(0);
	}
	ep = epoll_create1(0);
	e.data.u64 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) < 0)
		FAIL("epoll_ctl pipe: %s", strerror(errno));
	pthread_create(&t, NULL, sleeper, NULL);
	usleep(200000); /* the sleeper sleeps now, on a set of a pipe only */
	s = accept(l, NULL, NULL);
	if (s < 0)
		FAIL("accept: %s", strerror(errno));
	e.events = EPOLLIN | EPOLLOUT | EPOLLET;
	e.data.u64 = 2;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) < 0)
		FAIL("epoll_ctl connection: %s", strerror(errno));
	if (write(go[1], "g", 1) != 1)
		FAIL("cannot tell the peer");
	for (int i = 0; i < 500 && !__atomic_load_n(&got_conn, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	if (!__atomic_load_n(&got_conn, __ATOMIC_ACQUIRE))
		FAIL("the sleeping thread never saw the connection's data");
	pthread_join(t, NULL);
	close(s);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("the peer failed (status 0x%x)", st);
	printf("epoll_late: the sleeper saw only its own registrations\n");
	return 0;
}
