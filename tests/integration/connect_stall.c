/* SPDX-License-Identifier: MIT */
/*
 * connect_stall PORT_A PORT_B MARKER: one thread connects to PORT_A, whose
 * server never gets going (under mpklink: its launcher never answers); once
 * MARKER exists (that launcher holds our HELLO), the main thread connects
 * to PORT_B, where it listens itself, and exchanges a message; then a
 * forked child does the same. Neither may wait for the first connection
 * (a child forked while it stalls must not inherit a lock it holds).
 * Knows nothing of mpklink.
 * Exit 0, or 1 naming what went wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define IT_NAME "connect_stall"
#include "it_fail.h"

static struct sockaddr_in addr_a = {.sin_family = AF_INET};
static int a_done, a_errno; /* atomic: the A thread sets them, main reads them */

static void *connect_a(void *arg)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(s, (struct sockaddr *)&addr_a, sizeof(addr_a));

	(void)arg;
	__atomic_store_n(&a_errno, r < 0 ? errno : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&a_done, 1, __ATOMIC_RELEASE);
	close(s);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int l, c, s, s2, one = 1, i, st;
	pid_t pid;
	char buf[8];
	pthread_t t;

	if (argc != 4)
		return fprintf(stderr, "usage: connect_stall PORT_A PORT_B MARKER\n"), 2;
	addr_a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr_a.sin_port = htons((uint16_t)atoi(argv[1]));
	b.sin_port = htons((uint16_t)atoi(argv[2]));
	alarm(30);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&b, sizeof(b)) < 0 || listen(l, 4) < 0)
		FAIL("listen on %s: %s", argv[2], strerror(errno));
	if (pthread_create(&t, NULL, connect_a, NULL) != 0)
		FAIL("pthread_create");
	for (i = 0; i < 1000 && access(argv[3], F_OK) != 0 &&
		    !__atomic_load_n(&a_done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	if (access(argv[3], F_OK) != 0)
		FAIL("the connection to port %s never reached its stalling launcher (%s)",
		     argv[1], __atomic_load_n(&a_done, __ATOMIC_ACQUIRE) ? "connect returned"
									: "no marker");
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&b, sizeof(b)) < 0)
		FAIL("connect to port %s: %s", argv[2], strerror(errno));
	s = accept(l, NULL, NULL);
	if (s < 0)
		FAIL("accept: %s", strerror(errno));
	if (write(c, "ping", 4) != 4 || read(s, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
		FAIL("the message on port %s did not arrive", argv[2]);
	if (__atomic_load_n(&a_done, __ATOMIC_ACQUIRE))
		FAIL("the connection to port %s waited until the stalled one to port %s gave up",
		     argv[2], argv[1]);
	pid = fork();
	if (pid == 0) {
		int k = socket(AF_INET, SOCK_STREAM, 0);

		alarm(10);
		_exit(connect(k, (struct sockaddr *)&b, sizeof(b)) == 0 && write(k, "pong", 4) == 4
			      ? 0
			      : 3);
	}
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	s2 = accept(l, NULL, NULL);
	if (s2 < 0 || read(s2, buf, sizeof(buf)) != 4 || memcmp(buf, "pong", 4))
		FAIL("the forked child's message on port %s did not arrive", argv[2]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("the forked child failed (status 0x%x: 0x%x is its alarm)", st, SIGALRM);
	if (__atomic_load_n(&a_done, __ATOMIC_ACQUIRE))
		FAIL("the forked child's connection to port %s waited until the stalled one to "
		     "port %s gave up", argv[2], argv[1]);
	pthread_join(t, NULL);
	close(s2);
	close(c);
	close(s);
	printf("connect_stall: port %s connected and carried a message, from the process and "
	       "from a child it forked, while the connect to port %s stalled (which then "
	       "returned %s)\n",
	       argv[2], argv[1], a_errno ? strerror(a_errno) : "0");
	return 0;
}
