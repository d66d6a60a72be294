/* SPDX-License-Identifier: MIT */
/*
 * conf_race SUBCOMMAND: close and shutdown from one thread while another
 * is blocked on the same fd. The kernel keeps the file alive for a call
 * that is in progress: a close does not wake it.
 *   close-recv      A blocked in recv(s); close(s) at 200 ms; the peer
 *                   sends at T: A's recv returns the reply; then FIN
 *   close-poll      A blocked in poll(s); close(s); the peer sends: POLLNVAL
 *   close-epoll     A blocked in epoll_wait on s; close(s) takes it out of
 *                   the set: A's wait times out
 *   close-send      A blocked in send into a full peer; close(c); the peer
 *                   drains: A's send completes, every byte arrives, then EOF
 *   close-accept    A blocked in accept(l); close(l); a client connects
 *   shutdown-recv   A blocked in recv(s); shutdown(s, SHUT_RDWR): 0
 *   shutdown-rd     A blocked in recv(s); shutdown(s, SHUT_RD): 0
 *   shutdown-epoll  A blocked in epoll_wait; shutdown(s, SHUT_RD): an event
 *   shutdown-send   A blocked in send into a full peer; shutdown(c, SHUT_WR)
 */
#include "conf.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CLOSE_AT 200

static int l, c, s;

struct blocked {
	const char *what;
	int fd;
	long r;
	int err;
	double ms, end;
	unsigned char buf[64];
	short revents;
	uint32_t events;
	uint64_t data;
	size_t want;
	uint64_t fill_n;
};

static unsigned char big[256 << 10];

static void run_blocked(void *p)
{
	struct blocked *b = p;
	double t0 = conf_now_ms();

	errno = 0;
	if (!strcmp(b->what, "recv")) {
		b->r = recv(b->fd, b->buf, sizeof(b->buf), 0);
	} else if (!strcmp(b->what, "poll")) {
		struct pollfd pf = {.fd = b->fd, .events = POLLIN};
		b->r = poll(&pf, 1, 3 * CONF_T);
		b->revents = pf.revents;
	} else if (!strcmp(b->what, "epoll")) {
		struct epoll_event ev[2];
		b->r = epoll_wait(b->fd, ev, 2, 3 * CONF_T);
		if (b->r > 0) {
			b->events = ev[0].events;
			b->data = ev[0].data.u64;
		}
	} else if (!strcmp(b->what, "send")) {
		b->r = send(b->fd, big, b->want, MSG_NOSIGNAL);
	} else if (!strcmp(b->what, "accept")) {
		b->r = accept(b->fd, NULL, NULL);
	}
	b->err = errno;
	b->end = conf_now_ms();
	b->ms = b->end - t0;
}

static void report(struct blocked *b, int t_ms)
{
	if (!strcmp(b->what, "send"))
		out("A.send ret=%s errno=%s class=%s",
		    b->r == (long)b->want ? "full" : b->r > 0 ? "partial" : "-1",
		    b->r < 0 ? en(b->err) : "-", conf_class(b->ms, t_ms));
	else if (!strcmp(b->what, "accept"))
		out("A.accept ret=%s errno=%s class=%s", b->r >= 0 ? "fd" : "-1", b->r < 0 ? en(b->err) : "-",
		    conf_class(b->ms, t_ms));
	else
		out("A.%s ret=%ld errno=%s class=%s", b->what, b->r, b->r < 0 ? en(b->err) : "-",
		    conf_class(b->ms, t_ms));
	if (!strcmp(b->what, "recv") && b->r > 0)
		out("A.recv %s", hexdata(b->buf, b->r));
	if (!strcmp(b->what, "poll"))
		out("A.poll revents=%s", pev(b->revents));
	if (!strcmp(b->what, "epoll") && b->r > 0)
		out("A.epoll events=%s data=0x%016llx", eev(b->events), (unsigned long long)b->data);
}

static void peer_reply(void *p)
{
	(void)p;
	if (write(c, "reply", 5) != 5)
		out("peer write failed errno=%s", en(errno));
}

/* A blocked on s in WHAT; main does ACTION at CLOSE_AT; the peer replies at
 * CONF_T; A is reported against time scale t_ms. */
static void race(const char *what, const char *action, int target, int t_ms)
{
	struct blocked b = {.what = what, .fd = target};
	struct conf_later *a, *p;

	a = conf_later(0, run_blocked, &b);
	p = conf_later(CONF_T, peer_reply, NULL);
	conf_sleep_ms(CLOSE_AT);
	if (!strcmp(action, "close"))
		R("B.close", 0, close(s));
	else if (!strcmp(action, "shutdown-rdwr"))
		R("B.shutdown.RDWR", 0, shutdown(s, SHUT_RDWR));
	else if (!strcmp(action, "shutdown-rd"))
		R("B.shutdown.RD", 0, shutdown(s, SHUT_RD));
	conf_join_within(a, "join-A", 10 * t_ms + 3000);
	conf_join(p);
	report(&b, t_ms);
}

static void sc_close_recv(void)
{
	char buf[16];

	race("recv", "close", s, CONF_T);
	/* A's call was the last user: the socket is gone, FIN sent. */
	conf_poll1t("peer.poll", c, POLLIN, CONF_QUIET_MS, 0);
	R("peer.read", 0, read(c, buf, sizeof(buf)));
}

static void sc_close_poll(void)
{
	char buf[16];

	race("poll", "close", s, CONF_T);
	conf_poll1t("peer.poll", c, POLLIN, CONF_QUIET_MS, 0);
	R("peer.read", 0, read(c, buf, sizeof(buf)));
}

static void sc_close_epoll(void)
{
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0xabcdef};
	char buf[16];

	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	race("epoll", "close", ep, 3 * CONF_T);
	conf_poll1t("peer.poll", c, POLLIN, CONF_QUIET_MS, 0);
	R("peer.read", 0, read(c, buf, sizeof(buf)));
	close(ep);
}

static void sc_shutdown(const char *how)
{
	char buf[16];
	long r;

	race("recv", how, s, CLOSE_AT);
	r = R("s.recv.after", 0, recv(s, buf, sizeof(buf), MSG_DONTWAIT));
	if (r > 0)
		out("s.recv.after %s", hexdata(buf, r));
	conf_poll1t("peer.poll", c, POLLIN | POLLRDHUP, 0, 0);
}

static void sc_shutdown_epoll(void)
{
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 0xabcdef};
	struct blocked b = {.what = "epoll", .fd = ep};
	struct conf_later *a;

	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	a = conf_later(0, run_blocked, &b);
	conf_sleep_ms(CLOSE_AT);
	R("B.shutdown.RD", 0, shutdown(s, SHUT_RD));
	conf_join(a);
	report(&b, CLOSE_AT);
	close(ep);
}

static void drain_later(void *p)
{
	uint64_t *h = p;
	h[0] = conf_drain(s, 300, &h[1]);
}

/* A blocked in a send into a full peer; main closes or shuts down c at
 * CLOSE_AT; the peer drains at 2T. A's end is classed from the action:
 * "now" if the action ended it, "timeout" if the drain did. */
static void sc_send(const char *action)
{
	struct blocked b = {.what = "send", .fd = c, .want = sizeof(big)};
	uint64_t fill_h, d[2];
	size_t n = conf_fill2(c, 0, &fill_h, 0);
	struct conf_later *a, *dr;
	size_t more;
	double act;

	pat_fill(big, sizeof(big), n);
	a = conf_later(0, run_blocked, &b);
	dr = conf_later(2 * CONF_T, drain_later, d);
	conf_sleep_ms(CLOSE_AT);
	act = conf_now_ms();
	if (!strcmp(action, "close"))
		R("B.close.c", 0, close(c));
	else
		R("B.shutdown.WR.c", 0, shutdown(c, SHUT_WR));
	conf_join(a);
	conf_join(dr);
	b.ms = b.end - act;
	report(&b, CONF_T);
	more = conf_drain(s, 200, NULL);
	{
		size_t want = n + (b.r > 0 ? (size_t)b.r : 0);
		out("peer got-all-sent=%s content=%s more-after=%zu", d[0] + more == want ? "yes" : "no",
		    !more && d[1] == pat_fnv(0, want) ? "match" : "n/a", more);
	}
	{
		char x;
		R("peer.read.eof", 0, recv(s, &x, 1, MSG_DONTWAIT));
	}
}

static void connect_later(void *p)
{
	int *fd = p;
	*fd = conf_connect(conf_port);
}

static void sc_close_accept(void)
{
	struct blocked b = {.what = "accept", .fd = l};
	struct conf_later *a, *k;
	int x = -1;
	char buf[8];

	a = conf_later(0, run_blocked, &b);
	k = conf_later(CONF_T, connect_later, &x);
	conf_sleep_ms(CLOSE_AT);
	R("B.close.listener", 0, close(l));
	conf_join(a);
	conf_join(k);
	report(&b, CONF_T);
	if (b.r >= 0) {
		R("A.send", 0, send(b.r, "acc", 3, MSG_NOSIGNAL));
		conf_poll1t("client.poll", x, POLLIN, CONF_QUIET_MS, 0);
		R("client.read", 0, read(x, buf, sizeof(buf)));
		close(b.r);
	}
	close(x);
}

int main(int argc, char **argv)
{
	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_race SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	out("scenario race %s", argv[1]);
	if (!strcmp(argv[1], "close-recv"))
		sc_close_recv();
	else if (!strcmp(argv[1], "close-poll"))
		sc_close_poll();
	else if (!strcmp(argv[1], "close-epoll"))
		sc_close_epoll();
	else if (!strcmp(argv[1], "close-send"))
		sc_send("close");
	else if (!strcmp(argv[1], "close-accept"))
		sc_close_accept();
	else if (!strcmp(argv[1], "shutdown-recv"))
		sc_shutdown("shutdown-rdwr");
	else if (!strcmp(argv[1], "shutdown-rd"))
		sc_shutdown("shutdown-rd");
	else if (!strcmp(argv[1], "shutdown-epoll"))
		sc_shutdown_epoll();
	else if (!strcmp(argv[1], "shutdown-send"))
		sc_send("shutdown");
	else
		conf_fatal("unknown subcommand %s", argv[1]);
	conf_end();
}
