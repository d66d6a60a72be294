/* SPDX-License-Identifier: MIT */
/*
 * pool_echo PORT: an echo server of 64-byte messages whose two threads take
 * turns, as a thread pool does (gRPC C++'s sync server): the thread whose
 * turn it is writes the reply to the request the other one read, then
 * waits in epoll_wait for the next request, reads it, and hands the turn
 * over. Its link I/O so moves between threads on every request. Serves one
 * connection until EOF; prints "pool_echo: N requests" and exits 0.
 * Knows nothing of mpklink. Exit 1 naming what went wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define IT_NAME "pool_echo"
#include "it_fail.h"

#define MSG 64

static int cfd, ep;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn, done; /* under mu */
static char pending[MSG];
static int have_pending; /* under the turn: only its holder touches it */
static unsigned long requests;

static void write_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(cfd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			FAIL("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
		p += w, n -= (size_t)w;
	}
}

/* 1: a whole message; 0: EOF before its first byte. */
static int read_msg(char *p)
{
	size_t got = 0;

	while (got < MSG) {
		ssize_t r = read(cfd, p + got, MSG - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			FAIL("read: %s", strerror(errno));
		if (r == 0) {
			if (got)
				FAIL("EOF after %zu bytes of a message", got);
			return 0;
		}
		got += (size_t)r;
	}
	return 1;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg;
	char buf[MSG];

	for (;;) {
		struct epoll_event ev;
		int n, stop;

		pthread_mutex_lock(&mu);
		while (turn != id && !done)
			pthread_cond_wait(&cv, &mu);
		stop = done;
		pthread_mutex_unlock(&mu);
		if (stop)
			return NULL;
		if (have_pending) {
			write_all(pending, MSG);
			have_pending = 0;
		}
		do
			n = epoll_wait(ep, &ev, 1, -1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			FAIL("epoll_wait: %s", strerror(errno));
		pthread_mutex_lock(&mu);
		if (!read_msg(buf)) {
			done = 1;
		} else {
			memcpy(pending, buf, MSG);
			have_pending = 1;
			requests++;
			turn = !id;
		}
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event ev = {.events = EPOLLIN};
	pthread_t th[2];
	int lfd, one = 1;

	if (argc != 2)
		FAIL("usage: pool_echo PORT");
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0)
		FAIL("listen on port %s: %s", argv[1], strerror(errno));
	cfd = accept(lfd, NULL, NULL);
	if (cfd < 0)
		FAIL("accept: %s", strerror(errno));
	ep = epoll_create1(0);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
		FAIL("epoll: %s", strerror(errno));
	for (long i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			FAIL("pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("pool_echo: %lu requests\n", requests);
	return 0;
}
