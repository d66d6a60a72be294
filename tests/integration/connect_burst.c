/* SPDX-License-Identifier: MIT */
/*
 * connect_burst PORT N: N threads, released together, each connect once to
 * 127.0.0.1:PORT and close. Prints "results: X N", X being how the connects
 * ended ("connected" or the errno's name), the distinct outcomes in order,
 * joined by ','. A C program so that it runs under every build's shim
 * (a TSan-built shim preloaded into a threaded Python crashes in TSan's own
 * runtime). Knows nothing of mpklink. Exit 0, or 1 naming what went wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IT_NAME "connect_burst"
#include "it_fail.h"

#define MAX_THREADS 256

static struct sockaddr_in addr = {.sin_family = AF_INET};
static pthread_barrier_t go;
static int outcome[MAX_THREADS]; /* 0: connected, else errno; joined before read */

static void *one(void *arg)
{
	int *res = arg;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0) {
		*res = errno;
		return NULL;
	}
	pthread_barrier_wait(&go);
	*res = connect(s, (struct sockaddr *)&addr, sizeof(addr)) ? errno : 0;
	close(s);
	return NULL;
}

static const char *name(int e)
{
	switch (e) {
	case 0: return "connected";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	pthread_t t[MAX_THREADS];
	char *end;
	long port, n;
	int seen[4] = {0}, nseen = 0;

	if (argc != 3)
		FAIL("usage: connect_burst PORT N");
	port = strtol(argv[1], &end, 10);
	if (*end || port < 1 || port > 65535)
		FAIL("bad port '%s'", argv[1]);
	n = strtol(argv[2], &end, 10);
	if (*end || n < 1 || n > MAX_THREADS)
		FAIL("bad thread count '%s' (1..%d)", argv[2], MAX_THREADS);
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (pthread_barrier_init(&go, NULL, (unsigned)n))
		FAIL("pthread_barrier_init");
	for (long i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, one, &outcome[i]))
			FAIL("pthread_create");
	for (long i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("results: ");
	for (long i = 0; i < n; i++) {
		int k;
		for (k = 0; k < nseen && seen[k] != outcome[i]; k++)
			;
		if (k == nseen && nseen < 4) {
			seen[nseen++] = outcome[i];
			printf("%s%s", k ? "," : "", name(outcome[i]));
		}
	}
	printf(" %ld\n", n);
	return 0;
}
