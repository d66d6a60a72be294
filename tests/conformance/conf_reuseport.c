/* SPDX-License-Identifier: MIT */
/*
 * conf_reuseport serve|client: SO_REUSEPORT listeners in two processes
 * (run.sh --reuseport starts two "serve", each under a launcher of its
 * own, then one "client" under a third). Whichever server the kernel picks,
 * every connection must echo, linked or plain TCP; only the client's output
 * is compared.
 *   serve   SO_REUSEPORT listener on CONF_PORT; echoes one message per
 *           connection until SIGTERM, then exits 0
 *   client  20 connections one after another, each sends a message and
 *           reads the echo (bounded)
 */
#include "conf.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNS 20

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int serve(void)
{
	struct sockaddr_in a = conf_addr(conf_port);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), served = 0;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 64))
		conf_fatal("reuseport listener");
	while (!stop) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		char b[64];
		int x;
		ssize_t n = 0;

		if (poll(&p, 1, 100) <= 0)
			continue;
		x = accept(l, NULL, NULL);
		if (x < 0)
			continue;
		/* One message, bounded: a client that never sends is a line. */
		p = (struct pollfd){.fd = x, .events = POLLIN};
		if (poll(&p, 1, CONF_QUIET_MS) > 0)
			n = recv(x, b, sizeof(b), 0);
		if (n > 0 && send(x, b, (size_t)n, MSG_NOSIGNAL) != n)
			out("serve: echo failed errno=%s", en(errno));
		else if (n <= 0)
			out("serve: no message (ret=%zd errno=%s)", n, n < 0 ? en(errno) : "-");
		close(x);
		served++;
	}
	out("served %d", served);
	return 0;
}

static void client(void)
{
	for (int i = 0; i < CONNS; i++) {
		char m[16], name[32];
		int c;

		snprintf(m, sizeof(m), "echo-%02d", i);
		snprintf(name, sizeof(name), "conn%02d.connect", i);
		c = socket(AF_INET, SOCK_STREAM, 0);
		{
			struct sockaddr_in a = conf_addr(conf_port);
			if (R(name, 0, connect(c, (struct sockaddr *)&a, sizeof(a))) < 0) {
				close(c);
				continue;
			}
		}
		snprintf(name, sizeof(name), "conn%02d.send", i);
		R(name, 0, send(c, m, strlen(m), MSG_NOSIGNAL));
		snprintf(name, sizeof(name), "conn%02d.echo", i);
		conf_hear(name, c, strlen(m), 0, 0);
		snprintf(name, sizeof(name), "conn%02d.eof", i);
		conf_hear(name, c, 1, 0, 0);
		close(c);
	}
}

int main(int argc, char **argv)
{
	conf_init();
	if (argc == 2 && !strcmp(argv[1], "serve"))
		return serve();
	if (argc != 2 || strcmp(argv[1], "client"))
		conf_fatal("usage: conf_reuseport serve|client");
	out("scenario reuseport client");
	client();
	conf_end();
}
