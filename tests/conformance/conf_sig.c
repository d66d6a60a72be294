/* SPDX-License-Identifier: MIT */
/*
 * conf_sig: timeouts and signals on blocking calls.
 *
 *   conf_sig rcvtimeo     SO_RCVTIMEO: recv/read/recvmsg/readv/accept end
 *                         with EAGAIN after the timeout; data before it
 *   conf_sig sndtimeo     SO_SNDTIMEO: a blocking send into a full peer
 *                         ends after the timeout (EAGAIN or partial)
 *   conf_sig restart CALL    a SIGUSR1 handler with SA_RESTART interrupts
 *   conf_sig norestart CALL  CALL at 100 ms; the event it waits for comes at
 *                         600 ms. With SA_RESTART recv/read/send/accept/
 *                         connect restart and return the event; poll,
 *                         epoll_wait and select never restart (EINTR).
 *                         Without it: EINTR.
 *     CALL: recv read recvmsg send accept connect poll epoll select
 *   conf_sig restart rcvtimeo  SO_RCVTIMEO set: recv says EINTR even with
 *                         SA_RESTART (signal(7))
 */
#include "conf.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIG_AT 100
#define EV_AT 600

static int l, c, s;


static void set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	R(opt == SO_RCVTIMEO ? "setsockopt.SO_RCVTIMEO" : "setsockopt.SO_SNDTIMEO", 0,
	  setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)));
}

static void send_reply(void *p)
{
	(void)p;
	if (write(c, "reply", 5) != 5)
		conf_fatal("send_reply");
}

/* ---- timeouts ---------------------------------------------------------- */

static void sc_rcvtimeo(void)
{
	char buf[64];
	long r;
	struct timeval tv;
	socklen_t tl = sizeof(tv);

	set_timeo(s, SO_RCVTIMEO, CONF_T);
	R("getsockopt.SO_RCVTIMEO", 0, getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl));
	out("SO_RCVTIMEO value=%ldms", (long)(tv.tv_sec * 1000 + tv.tv_usec / 1000));
	R("recv.timeout", CONF_T, recv(s, buf, sizeof(buf), 0));
	R("read.timeout", CONF_T, read(s, buf, sizeof(buf)));
	{
		struct iovec v = {buf, sizeof(buf)};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
		R("recvmsg.timeout", CONF_T, recvmsg(s, &m, 0));
		R("readv.timeout", CONF_T, readv(s, &v, 1));
	}
	/* Data before the timeout. */
	{
		struct conf_later *t = conf_later(CONF_T / 4, send_reply, NULL);
		r = R("recv.data-before-timeout", CONF_T, recv(s, buf, sizeof(buf), 0));
		out("recv.data-before-timeout %s", hexdata(buf, r));
		conf_join(t);
	}
	/* MSG_WAITALL with half the data: what there is, at the timeout. */
	write(c, "half", 4);
	r = R("recv.WAITALL.timeout", CONF_T, recv(s, buf, 8, MSG_WAITALL));
	out("recv.WAITALL.timeout %s", hexdata(buf, r));
	/* A nonblocking socket ignores the timeout. */
	conf_nonblock(s, 1);
	R("recv.nonblock-with-timeo", CONF_T, recv(s, buf, sizeof(buf), 0));
	conf_nonblock(s, 0);
	/* Timeout 0: blocks again (until the data at CONF_T). */
	set_timeo(s, SO_RCVTIMEO, 0);
	{
		struct conf_later *t = conf_later(CONF_T, send_reply, NULL);
		r = R("recv.timeo-zero-blocks", CONF_T, recv(s, buf, sizeof(buf), 0));
		out("recv.timeo-zero-blocks %s", hexdata(buf, r));
		conf_join(t);
	}
	/* On a listener: accept times out. */
	set_timeo(l, SO_RCVTIMEO, CONF_T);
	R("accept.timeout", CONF_T, accept(l, NULL, NULL));
}

static void sc_sndtimeo(void)
{
	static unsigned char big[256 << 10];
	uint64_t h;
	size_t n = conf_fill(c, 0, &h), n2;
	long r;
	uint64_t h2;

	set_timeo(c, SO_SNDTIMEO, CONF_T);
	/* TCP frees a little room now and then without waking writers: at
	 * the timeout a send says EAGAIN or the count of the few bytes it
	 * took. Both are right; blocking past the timeout is not. */
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "write.full.timeout" : "send.full.timeout";
		int err;

		pat_fill(big, sizeof(big), n);
		conf_step(name, 10 * CONF_T + 2000);
		r = i ? write(c, big, sizeof(big)) : send(c, big, sizeof(big), 0);
		err = errno;
		out("%s result=%s class=%s", name,
		    (r < 0 && err == EAGAIN) || (r > 0 && r < (long)sizeof(big)) ? "EAGAIN-or-partial"
		    : r < 0 ? en(err) : "full",
		    conf_class(conf_elapsed(), CONF_T));
		if (r > 0)
			n += (size_t)r;
	}
	n2 = conf_drain(s, 200, &h2);
	out("drain match=%s", n2 == n && h2 == pat_fnv(0, n) ? "yes" : "no");
	/* With room, the timeout does not matter. */
	r = RLEN("send.room", CONF_T, 1000, send(c, big, 1000, 0));
	conf_drain(s, 100, NULL);
}

/* ---- signals ----------------------------------------------------------- */

struct ev {
	const char *call;
	size_t fill_n;
	uint64_t got_n, got_h;
	int fd;
};

static void event(void *p)
{
	struct ev *e = p;

	if (!strcmp(e->call, "send")) {
		/* Drain until it is quiet: the fill and whatever the send took. */
		e->got_n = conf_drain(s, 300, &e->got_h);
	} else if (!strcmp(e->call, "accept")) {
		e->fd = conf_connect(conf_port);
	} else if (!strcmp(e->call, "connect")) {
		/* Free the accept queue: the connect's retransmitted SYN then
		 * gets in. */
		int f = accept(l, NULL, NULL);
		if (f < 0)
			conf_fatal("accept the filler");
		e->fd = f;
	} else if (write(c, "reply", 5) != 5) {
		conf_fatal("event write");
	}
}

static void sc_signal(int restart, const char *call)
{
	struct sigaction sa;
	struct ev e = {.call = call, .fd = -1};
	struct conf_later *k, *t;
	char buf[64];
	long r = 0;
	static unsigned char big[256 << 10];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = conf_on_usr1;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGUSR1, &sa, NULL);
	conf_main_thread = pthread_self();

	if (!strcmp(call, "send"))
		e.fill_n = conf_fill(c, 0, NULL);
	if (!strcmp(call, "connect")) {
		/* A listener with a full accept queue: a connect blocks. */
		close(l);
		close(s);
		close(c);
		l = conf_listen(conf_port, 0);
		c = conf_connect(conf_port);
		conf_sleep_ms(50);
	}
	if (!strcmp(call, "rcvtimeo"))
		set_timeo(s, SO_RCVTIMEO, 5 * EV_AT);

	k = conf_later(SIG_AT, conf_kick, NULL);
	t = conf_later(EV_AT, event, &e);
	if (!strcmp(call, "recv") || !strcmp(call, "rcvtimeo")) {
		r = R(call, EV_AT, recv(s, buf, sizeof(buf), 0));
	} else if (!strcmp(call, "read")) {
		r = R(call, EV_AT, read(s, buf, sizeof(buf)));
	} else if (!strcmp(call, "recvmsg")) {
		struct iovec v = {buf, sizeof(buf)};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
		r = R(call, EV_AT, recvmsg(s, &m, 0));
	} else if (!strcmp(call, "send")) {
		pat_fill(big, sizeof(big), e.fill_n);
		conf_step("send", 10 * EV_AT + 2000);
		r = send(c, big, sizeof(big), 0);
		{
			int err = errno;
			const char *cls = conf_class(conf_elapsed(), EV_AT);
			const char *ret = r == (long)sizeof(big) ? "full" : r > 0 ? "partial" : "-1";
			int now = !strcmp(cls, "now");
			/* signal(7): interrupted after it took some bytes, send
			 * returns their count whatever SA_RESTART says; before
			 * any, it restarts (and completes at the drain) or says
			 * EINTR. Whether a full TCP peer still takes a few bytes
			 * before the send blocks is the kernel's memory
			 * accounting (it differs between 6.1 and 6.18), so the
			 * three answers print alike; any other prints raw. */
			if ((r > 0 && r < (long)sizeof(big) && now) ||
			    (restart && r == (long)sizeof(big) && !strcmp(cls, "timeout")) ||
			    (!restart && r < 0 && err == EINTR && now))
				out("send outcome=as-signal(7)");
			else
				out("send ret=%s errno=%s class=%s", ret, r < 0 ? en(err) : "-", cls);
		}
	} else if (!strcmp(call, "accept")) {
		r = RFD(call, EV_AT, accept(l, NULL, NULL));
	} else if (!strcmp(call, "connect")) {
		struct sockaddr_in a = conf_addr(conf_port);
		int x = socket(AF_INET, SOCK_STREAM, 0);
		r = R(call, EV_AT, connect(x, (struct sockaddr *)&a, sizeof(a)));
		if (r < 0) {
			int err = -1;
			socklen_t el = sizeof(err);
			/* It goes on in the background. */
			conf_poll1t("poll.connect-completes", x, POLLOUT, 10000, EV_AT);
			getsockopt(x, SOL_SOCKET, SO_ERROR, &err, &el);
			out("SO_ERROR value=%s", en(err));
			R("connect.again", 0, connect(x, (struct sockaddr *)&a, sizeof(a)));
		}
		conf_join(t);
		t = NULL;
		/* The connection works both ways. */
		{
			int y = accept(l, NULL, NULL);
			R("send.new", 0, send(x, "hi", 2, MSG_NOSIGNAL));
			conf_expect("recv.new", y, 2);
			close(y);
		}
		close(x);
	} else if (!strcmp(call, "poll")) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		r = R(call, EV_AT, poll(&p, 1, 5 * EV_AT));
		out("poll revents=%s", pev(p.revents));
	} else if (!strcmp(call, "epoll")) {
		int ep = epoll_create1(0);
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, o[4];
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
		r = R(call, EV_AT, epoll_wait(ep, o, 4, 5 * EV_AT));
		close(ep);
	} else if (!strcmp(call, "select")) {
		fd_set rd;
		struct timeval tv = {5 * EV_AT / 1000, 0};
		FD_ZERO(&rd);
		FD_SET(s, &rd);
		r = R(call, EV_AT, select(s + 1, &rd, NULL, NULL, &tv));
	} else {
		conf_fatal("unknown call %s", call);
	}
	if (r > 0 && (!strcmp(call, "recv") || !strcmp(call, "read") || !strcmp(call, "recvmsg") ||
		      !strcmp(call, "rcvtimeo")))
		out("%s %s", call, hexdata(buf, r));
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	if (t)
		conf_join(t);
	if (!strcmp(call, "send")) {
		/* Every byte the sends said they took, and nothing else. */
		size_t want = e.fill_n + (r > 0 ? (size_t)r : 0);
		uint64_t more_h;
		size_t more = conf_drain(s, 200, &more_h);
		(void)more_h;
		/* The two drains hash separately: compare counts, and the
		 * whole when the event's drain got everything. */
		out("drain count-match=%s content-match=%s", e.got_n + more == want ? "yes" : "no",
		    more ? "n/a" : e.got_h == pat_fnv(0, want) ? "yes" : "no");
	}
	if (!strcmp(call, "accept") && r >= 0) {
		R("send.accepted", 0, send(r, "acc", 3, MSG_NOSIGNAL));
		conf_expect("recv.accepted", e.fd, 3);
	}
	/* Still a working connection afterwards (not for connect's). */
	if (strcmp(call, "connect")) {
		conf_drain(s, 0, NULL);
		R("send.after", 0, send(c, "after", 5, MSG_NOSIGNAL));
		conf_expect("recv.after", s, 5);
	}
}

int main(int argc, char **argv)
{
	conf_init();
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	if (argc == 2 && !strcmp(argv[1], "rcvtimeo")) {
		out("scenario sig rcvtimeo");
		sc_rcvtimeo();
	} else if (argc == 2 && !strcmp(argv[1], "sndtimeo")) {
		out("scenario sig sndtimeo");
		sc_sndtimeo();
	} else if (argc == 3 && (!strcmp(argv[1], "restart") || !strcmp(argv[1], "norestart"))) {
		out("scenario sig %s %s", argv[1], argv[2]);
		sc_signal(!strcmp(argv[1], "restart"), argv[2]);
	} else {
		conf_fatal("usage: conf_sig rcvtimeo|sndtimeo|restart CALL|norestart CALL");
	}
	conf_end();
}
