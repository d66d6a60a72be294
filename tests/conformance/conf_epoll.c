/* SPDX-License-Identifier: MIT */
/*
 * conf_epoll SUBCOMMAND: epoll on a connection (both ends in this process).
 *   lt         level-triggered IN/OUT, the program's data (u64 and ptr)
 *   et         edge-triggered IN and OUT edges
 *   oneshot    EPOLLONESHOT, re-armed with EPOLL_CTL_MOD
 *   rdhup      EPOLLRDHUP / HUP / ERR on shutdown, close, reset
 *   exclusive  EPOLLEXCLUSIVE: accepted, wakes a waiter; its EINVAL rules
 *   nested     an epoll set inside another, the inner one holding the socket
 *   pwait      epoll_pwait with a sigmask; epoll_wait blocking until an event
 *   pwait2     epoll_pwait2 (timespec timeout), with the program's data
 *   ctl        EPOLL_CTL errors
 *   dup        a socket and its dup in one set; close of one name
 *   fewevents  12 fds (6 connections, 6 pipes) made ready at once while the
 *              waiter sleeps, edge-triggered, taken 2 events a wait: every
 *              one is reported (none lost to a full events array)
 * Events are printed sorted by the program's data value.
 */
#include "conf.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define CK_C UINT64_C(0x1111222233334444)
#define CK_S UINT64_C(0x5555666677778888)

static int l, c, s;


static void write_c(void *p)
{
	const char *m = p ? p : "x";
	if (write(c, m, strlen(m)) < 0)
		conf_fatal("write_c");
}

static int cmp_ev(const void *a, const void *b)
{
	uint64_t x = ((const struct epoll_event *)a)->data.u64, y = ((const struct epoll_event *)b)->data.u64;
	return x < y ? -1 : x > y;
}

static void show(const char *name, int r, struct epoll_event *ev)
{
	if (r > 0)
		qsort(ev, (size_t)r, sizeof(*ev), cmp_ev);
	for (int i = 0; i < r; i++)
		out("%s ev[%d]=%s data=0x%016llx", name, i, eev(ev[i].events),
		    (unsigned long long)ev[i].data.u64);
}

/* epoll_wait, printed: NAME ret=.. class=.. then one line per event. */
static int ewait(const char *name, int ep, int timeout, int t_ms)
{
	struct epoll_event ev[16];
	int r = (int)R(name, t_ms, epoll_wait(ep, ev, 16, timeout));

	show(name, r, ev);
	return r;
}

static int add(int ep, int fd, uint32_t events, uint64_t ck)
{
	struct epoll_event e = {.events = events, .data.u64 = ck};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, uint32_t events, uint64_t ck)
{
	struct epoll_event e = {.events = events, .data.u64 = ck};
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

static void drain_s(void)
{
	char b[256];
	while (recv(s, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

static void sc_lt(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	static int anchor;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &anchor}, o[4];
	char b[8];
	int r;

	R("ctl.add.s", 0, add(ep, s, EPOLLIN, CK_S));
	R("ctl.add.c", 0, add(ep, c, EPOLLIN | EPOLLOUT, CK_C));
	ewait("wait.idle", ep, 0, 0);
	write_c("ping");
	ewait("wait.data", ep, 0, 0);
	ewait("wait.data.again", ep, 0, 0);
	R("recv.2", 0, recv(s, b, 2, 0));
	ewait("wait.some-left", ep, 0, 0);
	R("recv.rest", 0, recv(s, b, sizeof(b), 0));
	ewait("wait.drained", ep, 0, 0);
	/* maxevents 1: one of the two, then the other (LT round robin). */
	write_c("pong");
	{
		struct epoll_event one[1];
		int a = epoll_wait(ep, one, 1, 0);
		int z = epoll_wait(ep, o, 1, 0);
		out("wait.max1 ret=%d,%d distinct=%s", a, z,
		    a == 1 && z == 1 && one[0].data.u64 != o[0].data.u64 ? "yes" : "no");
	}
	drain_s();
	/* A pointer as data. */
	R("ctl.mod.ptr", 0, epoll_ctl(ep, EPOLL_CTL_MOD, s, &e));
	write_c("p");
	r = epoll_wait(ep, o, 4, 0);
	for (int i = 0; i < r; i++)
		if (o[i].events & EPOLLIN && !(o[i].events & EPOLLOUT))
			out("wait.ptr ret=%d is-my-pointer=%s", r, o[i].data.ptr == &anchor ? "yes" : "no");
	drain_s();
	/* An fd as data, the most common idiom. */
	e.events = EPOLLIN;
	e.data.u64 = 0;
	e.data.fd = 12345;
	epoll_ctl(ep, EPOLL_CTL_MOD, s, &e);
	write_c("f");
	r = epoll_wait(ep, o, 4, 0);
	for (int i = 0; i < r; i++)
		if (!(o[i].events & EPOLLOUT))
			out("wait.fd-data ret=%d fd=%d u64=0x%016llx", r, o[i].data.fd,
			    (unsigned long long)o[i].data.u64);
	drain_s();
	/* Blocking wait until an event. */
	mod(ep, s, EPOLLIN, CK_S);
	R("ctl.del.c", 0, epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL));
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		ewait("wait.blocking", ep, -1, CONF_T);
		conf_join(t);
	}
	drain_s();
	ewait("wait.timeout", ep, CONF_T, CONF_T);
	close(ep);
}

static void sc_et(void)
{
	int ep = epoll_create1(0);
	char b[8];
	uint64_t h;
	size_t n;

	R("ctl.add.s.ET", 0, add(ep, s, EPOLLIN | EPOLLET, CK_S));
	R("ctl.add.c.ET", 0, add(ep, c, EPOLLOUT | EPOLLET, CK_C));
	ewait("wait.first", ep, 0, 0);
	ewait("wait.nothing-new", ep, 0, 0);
	write_c("one");
	ewait("wait.edge", ep, 0, 0);
	ewait("wait.no-second-edge", ep, 0, 0);
	write_c("two");
	ewait("wait.new-data-new-edge", ep, 0, 0);
	R("recv.part", 0, recv(s, b, 2, 0));
	ewait("wait.after-partial-read", ep, 0, 0);
	drain_s();
	ewait("wait.after-drain", ep, 0, 0);
	/* OUT edge: full, then drained by the peer. */
	n = conf_fill(c, 0, &h);
	(void)n;
	ewait("wait.full", ep, 0, 0);
	conf_drain(s, 100, NULL);
	ewait("wait.out-edge", ep, 1000, 0);
	ewait("wait.out-no-second", ep, 0, 0);
	/* An edge while blocked. */
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		ewait("wait.blocking-edge", ep, 5 * CONF_T, CONF_T);
		conf_join(t);
	}
	close(ep);
}

static void sc_oneshot(void)
{
	int ep = epoll_create1(0);

	R("ctl.add.ONESHOT", 0, add(ep, s, EPOLLIN | EPOLLONESHOT, CK_S));
	write_c("a");
	ewait("wait.first", ep, 0, 0);
	ewait("wait.disabled", ep, 0, 0);
	write_c("b");
	ewait("wait.disabled.new-data", ep, 0, 0);
	R("ctl.mod.rearm", 0, mod(ep, s, EPOLLIN | EPOLLONESHOT, CK_S + 1));
	ewait("wait.rearmed", ep, 0, 0);
	ewait("wait.disabled.again", ep, 0, 0);
	R("ctl.mod.rearm.ET", 0, mod(ep, s, EPOLLIN | EPOLLONESHOT | EPOLLET, CK_S + 2));
	ewait("wait.rearmed.ET", ep, 0, 0);
	drain_s();
	R("ctl.mod.rearm.empty", 0, mod(ep, s, EPOLLIN | EPOLLONESHOT, CK_S + 3));
	ewait("wait.rearmed.empty", ep, 0, 0);
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		ewait("wait.rearmed.blocking", ep, 5 * CONF_T, CONF_T);
		conf_join(t);
	}
	ewait("wait.disabled.after-blocking", ep, 0, 0);
	/* A disabled registration still exists: ADD says EEXIST, DEL works. */
	R("ctl.add.disabled", 0, add(ep, s, EPOLLIN, CK_S));
	R("ctl.del.disabled", 0, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
	R("ctl.add.after-del", 0, add(ep, s, EPOLLIN, CK_S + 4));
	ewait("wait.after-readd", ep, 0, 0);
	close(ep);
}

static void sc_rdhup(void)
{
	int ep = epoll_create1(0);
	uint32_t all = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI;
	char b[8];

	R("ctl.add.s", 0, add(ep, s, all, CK_S));
	R("ctl.add.c", 0, add(ep, c, all, CK_C));
	ewait("wait.open", ep, 0, 0);
	R("shutdown.c.WR", 0, shutdown(c, SHUT_WR));
	conf_sleep_ms(50);
	ewait("wait.c-shut-WR", ep, 0, 0);
	R("shutdown.s.WR", 0, shutdown(s, SHUT_WR));
	conf_sleep_ms(50);
	ewait("wait.both-shut-WR", ep, 0, 0);
	close(c);
	close(s);
	close(ep);

	/* RDHUP while blocked. */
	ep = epoll_create1(0);
	conf_pair(l, conf_port, &c, &s);
	add(ep, s, EPOLLIN | EPOLLRDHUP | EPOLLET, CK_S);
	ewait("wait2.open", ep, 0, 0);
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "bye");
		ewait("wait2.data", ep, 5 * CONF_T, CONF_T);
		conf_join(t);
	}
	R("close.c", 0, close(c));
	conf_sleep_ms(50);
	ewait("wait2.peer-closed", ep, 0, 0);
	R("recv.data", 0, recv(s, b, sizeof(b), 0));
	R("recv.eof", 0, recv(s, b, sizeof(b), 0));
	close(s);
	close(ep);

	/* Reset: the peer closes with unread data. */
	ep = epoll_create1(0);
	conf_pair(l, conf_port, &c, &s);
	add(ep, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP, CK_C);
	write_c("unread");
	conf_sleep_ms(20);
	close(s);
	conf_sleep_ms(50);
	ewait("wait3.reset", ep, 0, 0);
	R("recv.reset", 0, recv(c, b, sizeof(b), 0));
	ewait("wait3.after-recv", ep, 0, 0);
	close(c);
	close(ep);
}

struct waiter {
	int ep, got;
};

static void exclusive_wait(void *p)
{
	struct waiter *w = p;
	struct epoll_event ev[4];
	w->got = epoll_wait(w->ep, ev, 4, 3 * CONF_T);
}

static void sc_exclusive(void)
{
	int ep = epoll_create1(0), ep2 = epoll_create1(0);
	struct waiter a, b;
	struct conf_later *ta, *tb;

	R("ctl.add.EXCLUSIVE", 0, add(ep, s, EPOLLIN | EPOLLEXCLUSIVE, CK_S));
	R("ctl.add.EXCLUSIVE.set2", 0, add(ep2, s, EPOLLIN | EPOLLEXCLUSIVE, CK_S + 1));
	ewait("wait.idle", ep, 0, 0);
	write_c("x");
	ewait("wait.data", ep, 0, 0);
	ewait("wait.data.set2", ep2, 0, 0);
	drain_s();
	/* Two waiters on two sets: the data wakes at least one. */
	a.ep = ep;
	b.ep = ep2;
	a.got = b.got = -2;
	ta = conf_later(0, exclusive_wait, &a);
	tb = conf_later(0, exclusive_wait, &b);
	conf_sleep_ms(100);
	write_c("y");
	conf_join(ta);
	conf_join(tb);
	out("exclusive woken>=1 %s errors=%s", a.got + b.got >= 1 ? "yes" : "no",
	    a.got < 0 || b.got < 0 ? "yes" : "no");
	drain_s();
	/* The rules: no MOD of an exclusive registration, no ONESHOT with it. */
	R("ctl.mod.EXCLUSIVE", 0, mod(ep, s, EPOLLIN, CK_S));
	R("ctl.add.EXCLUSIVE|ONESHOT", 0, add(ep, c, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, CK_C));
	R("ctl.add.EXCLUSIVE.c", 0, add(ep, c, EPOLLOUT | EPOLLEXCLUSIVE, CK_C));
	ewait("wait.out", ep, 0, 0);
	R("ctl.del.EXCLUSIVE", 0, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
	close(ep);
	close(ep2);
}

static void sc_nested(void)
{
	int in = epoll_create1(0), outer = epoll_create1(0), r;
	struct epoll_event ev[4];

	R("ctl.add.inner.s", 0, add(in, s, EPOLLIN, CK_S));
	R("ctl.add.outer.inner", 0, add(outer, in, EPOLLIN, CK_C));
	ewait("outer.idle", outer, 0, 0);
	write_c("nest");
	ewait("outer.data", outer, 0, 0);
	ewait("inner.data", in, 0, 0);
	drain_s();
	ewait("outer.drained", outer, 0, 0);
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		ewait("outer.blocking", outer, 5 * CONF_T, CONF_T);
		conf_join(t);
	}
	ewait("inner.after-outer", in, 0, 0);
	drain_s();
	/* poll on the inner set's fd. */
	conf_poll1("poll.inner.idle", in, POLLIN, 0);
	write_c("p");
	conf_poll1("poll.inner.data", in, POLLIN, 0);
	drain_s();
	/* An edge-triggered outer registration. */
	R("ctl.mod.outer.ET", 0, mod(outer, in, EPOLLIN | EPOLLET, CK_C + 1));
	write_c("e");
	ewait("outer.ET.edge", outer, 0, 0);
	ewait("outer.ET.no-second", outer, 0, 0);
	r = epoll_wait(in, ev, 4, 0);
	out("inner.still-ready ret=%d", r);
	drain_s();
	close(outer);
	close(in);
}

static void sc_pwait(void)
{
	int ep = epoll_create1(0);
	struct epoll_event ev[4];
	sigset_t block, none, old;
	struct sigaction sa;
	struct conf_later *k, *t;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = conf_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	conf_main_thread = pthread_self();
	add(ep, s, EPOLLIN, CK_S);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);

	/* The signal comes while epoll_pwait has it blocked: no EINTR; the
	 * event at T ends it; the handler runs after. */
	k = conf_later(100, conf_kick, NULL);
	t = conf_later(CONF_T, write_c, "evt");
	r = (int)R("epoll_pwait.masked", CONF_T, epoll_pwait(ep, ev, 4, 5 * CONF_T, &block));
	show("epoll_pwait.masked", r, ev);
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	conf_join(t);
	drain_s();

	/* Blocked in the thread, unblocked by epoll_pwait's mask: EINTR. */
	pthread_sigmask(SIG_BLOCK, &block, &old);
	k = conf_later(100, conf_kick, NULL);
	r = (int)R("epoll_pwait.unmasked", CONF_T, epoll_pwait(ep, ev, 4, 5 * CONF_T, &none));
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	/* Pending again, with the mask still blocking it: a timeout. */
	k = conf_later(0, conf_kick, NULL);
	conf_join(k);
	r = (int)R("epoll_pwait.pending-masked", CONF_T, epoll_pwait(ep, ev, 4, CONF_T, &block));
	out("handler ran=%d", (int)conf_hits);
	r = (int)R("epoll_pwait.pending-delivered", CONF_T, epoll_pwait(ep, ev, 4, CONF_T, &none));
	out("handler ran=%d", (int)conf_hits);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void)r;
	/* A NULL mask is epoll_wait. */
	write_c("n");
	r = (int)R("epoll_pwait.null-mask", 0, epoll_pwait(ep, ev, 4, 0, NULL));
	show("epoll_pwait.null-mask", r, ev);
	drain_s();
	close(ep);
}

static void sc_pwait2(void)
{
	int ep = epoll_create1(0), r;
	struct epoll_event ev[4];
	struct timespec zero = {0, 0}, tmo = {0, CONF_T * 1000000L};

	add(ep, s, EPOLLIN, CK_S);
	add(ep, c, EPOLLOUT, CK_C);
	r = (int)R("epoll_pwait2.zero", 0, epoll_pwait2(ep, ev, 4, &zero, NULL));
	show("epoll_pwait2.zero", r, ev);
	epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
	r = (int)R("epoll_pwait2.timeout", CONF_T, epoll_pwait2(ep, ev, 4, &tmo, NULL));
	write_c("d");
	r = (int)R("epoll_pwait2.data", 0, epoll_pwait2(ep, ev, 4, &zero, NULL));
	show("epoll_pwait2.data", r, ev);
	drain_s();
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		r = (int)R("epoll_pwait2.blocking", CONF_T, epoll_pwait2(ep, ev, 4, NULL, NULL));
		show("epoll_pwait2.blocking", r, ev);
		conf_join(t);
	}
	drain_s();
	close(ep);
}

static void sc_ctl(void)
{
	int ep = epoll_create1(0), f = open("/dev/null", O_RDONLY);

	R("ctl.add", 0, add(ep, s, EPOLLIN, CK_S));
	R("ctl.add.again", 0, add(ep, s, EPOLLIN, CK_S));
	R("ctl.mod.absent", 0, mod(ep, c, EPOLLIN, CK_C));
	R("ctl.del.absent", 0, epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL));
	R("ctl.add.self", 0, add(ep, ep, EPOLLIN, 1));
	R("ctl.add.regular-file", 0, add(ep, f, EPOLLIN, 1));
	R("ctl.add.badfd", 0, add(ep, 4000, EPOLLIN, 1));
	R("ctl.add.not-epoll", 0, add(s, c, EPOLLIN, 1));
	R("ctl.bad-op", 0, epoll_ctl(ep, 99, s, &(struct epoll_event){.events = EPOLLIN}));
	R("wait.not-epoll", 0, epoll_wait(s, &(struct epoll_event){0}, 1, 0));
	R("wait.maxevents0", 0, epoll_wait(ep, &(struct epoll_event){0}, 0, 0));
	R("ctl.del", 0, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
	write_c("z");
	ewait("wait.after-del", ep, 0, 0);
	drain_s();
	/* The last close of a registered socket takes it out of the set. */
	add(ep, s, EPOLLIN, CK_S);
	add(ep, c, EPOLLIN | EPOLLOUT, CK_C);
	R("close.s", 0, close(s));
	conf_sleep_ms(50);
	ewait("wait.after-close", ep, 0, 0);
	R("ctl.del.closed", 0, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
	close(f);
	close(ep);
}

static void sc_dup(void)
{
	int ep = epoll_create1(0), d = dup(s);

	R("ctl.add.s", 0, add(ep, s, EPOLLIN, CK_S));
	R("ctl.add.dup", 0, add(ep, d, EPOLLIN, CK_S + 1));
	write_c("dd");
	ewait("wait.both-names", ep, 0, 0);
	drain_s();
	/* Closing one name does not remove its registration while the file
	 * lives on (epoll(7), Q6): it still reports, with its data. */
	R("close.s", 0, close(s));
	write_c("after");
	conf_sleep_ms(50);
	ewait("wait.after-close-one", ep, 0, 0);
	R("ctl.del.closed-name", 0, epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
	{
		char b[16];
		long r = R("recv.dup", 0, recv(d, b, sizeof(b), 0));
		out("recv.dup %s", hexdata(b, r));
	}
	ewait("wait.drained", ep, 0, 0);
	/* A new socket on the closed number: a set of its own registration. */
	{
		int x, y;
		conf_pair(l, conf_port, &x, &y);
		R("ctl.add.new-on-other-number", 0, add(ep, y, EPOLLIN, CK_C));
		R("send.new", 0, send(x, "new", 3, 0));
		ewait("wait.new", ep, 0, 0);
		close(x);
		close(y);
	}
	close(d);
	close(ep);
}

#define FEW_N 6

struct few {
	int x[FEW_N], y[FEW_N], p[FEW_N][2];
};

static void few_fire(void *arg)
{
	struct few *f = arg;

	for (int i = 0; i < FEW_N; i++) {
		if (write(f->p[i][1], "p", 1) != 1 || send(f->x[i], "x", 1, 0) != 1)
			conf_fatal("few_fire");
	}
}

static void sc_fewevents(void)
{
	struct few f;
	struct epoll_event ev[2];
	int ep = epoll_create1(0), seen[2][FEW_N] = {{0}}, nl = 0, np = 0;
	struct conf_later *t;
	char b[8];

	for (int i = 0; i < FEW_N; i++) {
		conf_pair(l, conf_port, &f.x[i], &f.y[i]);
		if (pipe(f.p[i]) < 0)
			conf_fatal("pipe");
		add(ep, f.y[i], EPOLLIN | EPOLLET, (uint64_t)i);
		add(ep, f.p[i][0], EPOLLIN | EPOLLET, (uint64_t)(100 + i));
	}
	t = conf_later(100, few_fire, &f);
	for (int w = 0; w < 40 && nl + np < 2 * FEW_N; w++) {
		int k = epoll_wait(ep, ev, 2, 1000);

		if (k <= 0)
			break;
		for (int j = 0; j < k; j++) {
			uint64_t d = ev[j].data.u64;
			int pipe_ = d >= 100, i = (int)(pipe_ ? d - 100 : d);

			if (i < 0 || i >= FEW_N)
				conf_fatal("fewevents: data %llu", (unsigned long long)d);
			if (!seen[pipe_][i]) {
				seen[pipe_][i] = 1;
				*(pipe_ ? &np : &nl) += 1;
			}
			if (read(pipe_ ? f.p[i][0] : f.y[i], b, sizeof(b)) != 1)
				conf_fatal("fewevents: read %llu", (unsigned long long)d);
		}
	}
	conf_join(t);
	out("fewevents reported connections=%d/%d pipes=%d/%d", nl, FEW_N, np, FEW_N);
	for (int i = 0; i < FEW_N; i++) {
		close(f.x[i]);
		close(f.y[i]);
		close(f.p[i][0]);
		close(f.p[i][1]);
	}
	close(ep);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} sc[] = {{"lt", sc_lt},	    {"et", sc_et},   {"oneshot", sc_oneshot},
		  {"rdhup", sc_rdhup},	    {"exclusive", sc_exclusive},
		  {"nested", sc_nested},    {"pwait", sc_pwait},
		  {"pwait2", sc_pwait2},    {"ctl", sc_ctl}, {"dup", sc_dup},
		  {"fewevents", sc_fewevents}};

	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_epoll SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
		if (!strcmp(argv[1], sc[i].name)) {
			out("scenario epoll %s", argv[1]);
			sc[i].fn();
			conf_end();
		}
	conf_fatal("unknown subcommand %s", argv[1]);
}
