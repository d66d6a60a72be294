/* SPDX-License-Identifier: MIT */
/*
 * churn PORT N [MARK_DIR [MAX_PER_S]]: N connections to 127.0.0.1:PORT one after
 * another, each a connect, 8 bytes sent and echoed back, and a close, as a
 * client without a connection pool makes them. With MARK_DIR, after the
 * first N/100 (the warm-up) and again after all N, it creates
 * MARK_DIR/warm (then MARK_DIR/done) and waits until MARK_DIR/go-warm
 * (go-done) exists, so that a test can look at the launchers in between.
 * With MAX_PER_S, no faster than that many connections a second (a run
 * of 10^5 that stays under the ephemeral ports' TIME_WAIT limit).
 * Prints "churn: N connections, R per second" (R after the warm-up).
 * A reply not there within 10 s fails (SO_RCVTIMEO): a lost wake-up.
 * Knows nothing of mpklink.
 * Exit 0, or 1 naming what went wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IT_NAME "churn"
#include "it_fail.h"

static void mark_and_wait(const char *dir, const char *what)
{
	char path[4096];
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, what);
	f = fopen(path, "w");
	if (!f)
		FAIL("cannot create %s: %s", path, strerror(errno));
	fclose(f);
	snprintf(path, sizeof(path), "%s/go-%s", dir, what);
	/* Bounded: the test answers within seconds, or is gone. */
	for (int i = 0; i < 6000 && stat(path, &st) < 0; i++)
		usleep(10000);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const char *marks = argc > 3 ? argv[3] : NULL;
	const struct timeval wait_reply = {.tv_sec = 10};
	long n, warm, i, base = 0;
	double t0, pace = 0;

	if (argc < 3 || atoi(argv[1]) <= 0 || (n = atol(argv[2])) <= 0 ||
	    (argc > 4 && (pace = atof(argv[4])) <= 0))
		FAIL("usage: churn PORT N [MARK_DIR [MAX_PER_S]]");
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	warm = n / 100 ? n / 100 : 1;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		char out[8], in[8];
		size_t got = 0;
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

		if (pace > 0) {
			double due = t0 + (double)(i - base) / pace, t = now_s();

			if (due > t)
				usleep((useconds_t)((due - t) * 1e6));
		}
		if (s < 0)
			FAIL("socket: %s", strerror(errno));
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* An echo of 8 bytes comes at once, over TCP: 10 s without it
		 * is a lost wake-up, named here rather than left to the test's
		 * timeout. */
		if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait_reply, sizeof(wait_reply)) < 0)
			FAIL("setsockopt(SO_RCVTIMEO): %s", strerror(errno));
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
			FAIL("connection %ld: connect: %s", i, strerror(errno));
		memcpy(out, &i, sizeof(out));
		if (write(s, out, sizeof(out)) != (ssize_t)sizeof(out))
			FAIL("connection %ld: write: %s", i, strerror(errno));
		while (got < sizeof(in)) {
			ssize_t r = read(s, in + got, sizeof(in) - got);

			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				FAIL("connection %ld: no echo in %ld s (a lost wake-up: the server "
				     "sleeps on news it missed)", i, (long)wait_reply.tv_sec);
			if (r <= 0)
				FAIL("connection %ld: read: %s", i, r ? strerror(errno) : "end of stream");
			got += (size_t)r;
		}
		if (memcmp(in, out, sizeof(in)))
			FAIL("connection %ld: the echo differs", i);
		if (close(s) < 0)
			FAIL("connection %ld: close: %s", i, strerror(errno));
		if (marks && i + 1 == warm) {
			mark_and_wait(marks, "warm");
			t0 = now_s();
			base = i + 1;
		}
	}
	printf("churn: %ld connections, %.0f per second\n", n, (double)(n - base) / (now_s() - t0));
	fflush(stdout);
	if (marks)
		mark_and_wait(marks, "done");
	return 0;
}
