/* SPDX-License-Identifier: MIT */
/*
 * conf_dup SUBCOMMAND: one connection under several fd numbers.
 *   dup        dup, dup2, dup3, F_DUPFD, F_DUPFD_CLOEXEC: every name talks;
 *              FD_CLOEXEC per name; dup2 over an open fd, onto itself;
 *              the connection lives until its last name
 *   high       RLIMIT_NOFILE raised; dup2 of the socket to 70000,
 *              F_DUPFD to >= 66000: I/O, poll, epoll, close on them
 *   high-conn  every number below 65536 taken first, so the connection
 *              itself (connect and accept) lands above 65535
 */
#include "conf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

/* The first number past the shim's table of 2026-05 (a compile-time knob
 * only to try the scenario itself on a machine with a lower hard limit). */
#ifndef HIGH
#define HIGH 65536
#endif

static int l, c, s;

static void talk(const char *name, int from, int to)
{
	char b[64];
	char line[96];
	long r;

	snprintf(line, sizeof(line), "%s.write", name);
	R(line, 0, write(from, name, strlen(name)));
	snprintf(line, sizeof(line), "%s.read", name);
	conf_poll1t(line, to, POLLIN, CONF_QUIET_MS, 0);
	r = read(to, b, sizeof(b));
	out("%s got %s", line, hexdata(b, r));
}

static void cloexec(const char *name, int fd)
{
	int f = fcntl(fd, F_GETFD);
	out("%s FD_CLOEXEC=%d", name, f < 0 ? -1 : !!(f & FD_CLOEXEC));
}

static void peer_eof(const char *name, int fd)
{
	char b[8];
	char line[96];

	snprintf(line, sizeof(line), "%s.poll", name);
	conf_poll1t(line, fd, POLLIN, CONF_QUIET_MS, 0);
	snprintf(line, sizeof(line), "%s.read", name);
	R(line, 0, recv(fd, b, sizeof(b), MSG_DONTWAIT));
}

static void sc_dup(void)
{
	int d, d2, f1, f2, pp[2], alias;

	d = (int)RFD("dup", 0, dup(c));
	cloexec("dup", d);
	talk("via-dup", d, s);
	talk("to-dup", s, d);
	R("dup2", 0, (d2 = dup2(c, 100)) == 100 ? 0 : -1);
	cloexec("dup2", d2);
	talk("via-dup2", d2, s);
	R("dup3.cloexec", 0, dup3(c, 101, O_CLOEXEC) == 101 ? 0 : -1);
	cloexec("dup3", 101);
	talk("via-dup3", 101, s);
	R("dup3.same-fd", 0, dup3(c, c, 0));
	R("dup2.same-fd", 0, dup2(c, c) == c ? 0 : -1);
	R("dup2.badfd", 0, dup2(4000, 102));
	f1 = (int)RFD("F_DUPFD", 0, fcntl(c, F_DUPFD, 150));
	out("F_DUPFD >=150 %s", f1 >= 150 ? "yes" : "no");
	cloexec("F_DUPFD", f1);
	talk("via-F_DUPFD", f1, s);
	f2 = (int)RFD("F_DUPFD_CLOEXEC", 0, fcntl(c, F_DUPFD_CLOEXEC, 200));
	out("F_DUPFD_CLOEXEC >=200 %s", f2 >= 200 ? "yes" : "no");
	cloexec("F_DUPFD_CLOEXEC", f2);
	talk("via-F_DUPFD_CLOEXEC", f2, s);
	/* FD_CLOEXEC is per name. */
	R("F_SETFD.cloexec.on-dup", 0, fcntl(d, F_SETFD, FD_CLOEXEC));
	cloexec("dup.after-setfd", d);
	cloexec("orig.after-setfd-on-dup", c);

	/* The last name keeps it: close them one by one. */
	R("close.orig", 0, close(c));
	talk("after-close-orig", d, s);
	R("close.dup", 0, close(d));
	R("close.dup2", 0, close(d2));
	R("close.dup3", 0, close(101));
	R("close.F_DUPFD", 0, close(f1));
	talk("last-name", f2, s);
	R("close.last", 0, close(f2));
	peer_eof("peer-after-last-close", s);
	close(s);

	/* dup2 over an open fd: the old one is closed silently. */
	conf_pair(l, conf_port, &c, &s);
	if (pipe(pp))
		conf_fatal("pipe");
	R("dup2.over-pipe", 0, dup2(c, pp[1]) == pp[1] ? 0 : -1);
	talk("via-over-pipe", pp[1], s);
	{
		char b;
		R("pipe.read-end.eof", 0, read(pp[0], &b, 1));
	}
	close(pp[0]);
	alias = pp[1]; /* a name of the connection now */
	/* dup2 a pipe over a name of the connection: that name is the pipe,
	 * the connection lives on under its other names. */
	if (pipe(pp) < 0)
		conf_fatal("pipe");
	d = dup(c);
	R("dup2.pipe-over-conn", 0, dup2(pp[1], d) == d ? 0 : -1);
	R("write.now-pipe", 0, write(d, "P", 1));
	{
		char b[4];
		long r = read(pp[0], b, sizeof(b));
		out("pipe got %s", hexdata(b, r));
	}
	R("recv.peer-nothing", 0, recv(s, (char[8]){0}, 8, MSG_DONTWAIT));
	talk("still-conn", c, s);
	R("dup2.pipe-over-conn-name", 0, dup2(pp[1], c) == c ? 0 : -1);
	talk("via-alias", alias, s);
	/* Its last name closed: FIN. */
	R("close.alias-last-name", 0, close(alias));
	peer_eof("peer-after-last-name", s);
	close(d);
	close(c);
	close(pp[0]);
	close(pp[1]);
	close(s);

	/* Two connections: dup2 one over the other. */
	{
		int c2, s2;
		conf_pair(l, conf_port, &c, &s);
		conf_pair(l, conf_port, &c2, &s2);
		R("dup2.conn-over-conn", 0, dup2(c2, c) == c ? 0 : -1);
		peer_eof("first-peer-after-dup2", s);
		talk("c-is-second", c, s2);
		talk("second-to-c", s2, c);
		close(c);
		close(c2);
		peer_eof("second-peer-after-both", s2);
		close(s2);
		close(s);
	}
}

static void raise_nofile(rlim_t want)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		conf_fatal("getrlimit");
	if (r.rlim_max < want)
		r.rlim_max = want;
	r.rlim_cur = r.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &r)) {
		getrlimit(RLIMIT_NOFILE, &r);
		conf_skip("fds >= 65536 cannot exist here: RLIMIT_NOFILE hard limit %llu, and no "
			  "CAP_SYS_RESOURCE to raise it to %llu",
			  (unsigned long long)r.rlim_max, (unsigned long long)want);
	}
}

static void high_use(const char *name, int h, int peer)
{
	char b[64];
	int ep;
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0x4444};
	long r;

	out("%s fd>=HIGH %s", name, h >= HIGH ? "yes" : "no");
	char back[64];

	snprintf(back, sizeof(back), "%s-back", name);
	talk(name, h, peer);
	talk(back, peer, h);
	R("send.high", 0, send(h, "snd", 3, MSG_NOSIGNAL));
	r = recv(peer, b, sizeof(b), 0);
	out("recv.from-high %s", hexdata(b, r));
	write(peer, "ev", 2);
	conf_poll1("poll.high", h, POLLIN | POLLOUT, 0);
	ep = epoll_create1(0);
	R("epoll.add.high", 0, epoll_ctl(ep, EPOLL_CTL_ADD, h, &e));
	{
		struct epoll_event o[2];
		int n = (int)R("epoll.wait.high", 0, epoll_wait(ep, o, 2, 0));
		for (int i = 0; i < n; i++)
			out("epoll.wait.high ev=%s data=0x%llx", eev(o[i].events), (unsigned long long)o[i].data.u64);
	}
	close(ep);
	r = recv(h, b, sizeof(b), 0);
	out("recv.high %s", hexdata(b, r));
	{
		int fl = fcntl(h, F_GETFL);
		R("fcntl.nonblock.high", 0, fcntl(h, F_SETFL, fl | O_NONBLOCK));
		R("recv.high.empty", 0, recv(h, b, sizeof(b), 0));
		fcntl(h, F_SETFL, fl);
	}
}

static void sc_high(void)
{
	int h, f;

	raise_nofile(HIGH + 4600);
	h = dup2(c, HIGH + 4464);
	R("dup2.70000", 0, h == HIGH + 4464 ? 0 : -1);
	high_use("dup2-70000", h, s);
	R("close.orig", 0, close(c));
	talk("only-high", h, s);
	f = fcntl(s, F_DUPFD, HIGH + 464);
	R("F_DUPFD.66000", 0, f >= HIGH + 464 ? 0 : -1);
	high_use("F_DUPFD-66000", f, h);
	R("close.s", 0, close(s));
	talk("high-to-high", h, f);
	R("close.70000", 0, close(h));
	peer_eof("peer-of-70000", f);
	close(f);
}

static void sc_high_conn(void)
{
	int dn = open("/dev/null", O_RDONLY), *fill, n = 0, x, y;

	raise_nofile(HIGH + 4600);
	fill = calloc(HIGH + 4600, sizeof(int));
	/* Take every free number below 65536. */
	for (;;) {
		int f = dup(dn);
		if (f < 0)
			conf_fatal("dup filler");
		fill[n++] = f;
		if (f >= HIGH - 1)
			break;
	}
	out("fillers placed");
	conf_pair(l, conf_port, &x, &y);
	out("connect fd>=HIGH %s, accept fd>=HIGH %s", x >= HIGH ? "yes" : "no",
	    y >= HIGH ? "yes" : "no");
	high_use("high-conn", x, y);
	talk("high-conn-back", y, x);
	/* Free the low numbers again: nothing changes for the connection. */
	for (int i = 0; i < n; i++)
		close(fill[i]);
	free(fill);
	talk("after-free", x, y);
	R("close.high-conn", 0, close(x));
	peer_eof("peer-of-high-conn", y);
	close(y);
	/* The low numbers work as before. */
	conf_pair(l, conf_port, &x, &y);
	talk("low-again", x, y);
	close(x);
	close(y);
	close(dn);
}

int main(int argc, char **argv)
{
	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_dup SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	out("scenario dup %s", argv[1]);
	if (!strcmp(argv[1], "dup"))
		sc_dup();
	else if (!strcmp(argv[1], "high"))
		sc_high();
	else if (!strcmp(argv[1], "high-conn"))
		sc_high_conn();
	else
		conf_fatal("unknown subcommand %s", argv[1]);
	conf_end();
}
