/* SPDX-License-Identifier: MIT */
/*
 * conf_poll SUBCOMMAND: poll, ppoll, select, pselect on a connection, and
 * the plain reads. Built twice: conf_poll (plain entry points) and
 * conf_poll_fortify (-O2 -D_FORTIFY_SOURCE=2: __poll_chk, __ppoll_chk,
 * __read_chk, __recv_chk, __recvfrom_chk, __fdelt_chk; a ctest checks with
 * nm that it really calls them).
 *   poll     several fds, each event, NVAL, negative fds, blocking, timeout
 *   ppoll    timespec timeouts and a sigmask
 *   select   read/write/except sets, the timeval it updates
 *   select-oob  urgent data in the except set (a link breaks loudly)
 *   pselect  a sigmask, the timespec it leaves alone
 *   rw       read/recv/recvfrom into fixed-size buffers
 */
#include "conf.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int l, c, s;
/* Sizes the compiler cannot see through: the fortified build then calls
 * the _chk entry points. */
static volatile nfds_t vn;
static volatile size_t vlen;


static void write_c(void *p)
{
	const char *m = p ? p : "x";
	if (write(c, m, strlen(m)) < 0)
		conf_fatal("write_c");
}

static void drain_s(void)
{
	char b[256];
	while (recv(s, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

static void showp(const char *name, struct pollfd *p, int n)
{
	for (int i = 0; i < n; i++)
		out("%s [%d] revents=%s", name, i, pev(p[i].revents));
}

static void sc_poll(void)
{
	int pp[2], dn = open("/dev/null", O_WRONLY);
	struct pollfd p[6];
	int r;

	if (pipe(pp))
		conf_fatal("pipe");
	memset(p, 0, sizeof(p));
	p[0] = (struct pollfd){.fd = s, .events = POLLIN | POLLPRI | POLLRDHUP};
	p[1] = (struct pollfd){.fd = c, .events = POLLIN | POLLOUT};
	p[2] = (struct pollfd){.fd = pp[0], .events = POLLIN};
	p[3] = (struct pollfd){.fd = dn, .events = POLLOUT};
	p[4] = (struct pollfd){.fd = -1, .events = POLLIN};
	p[5] = (struct pollfd){.fd = 4001, .events = POLLIN};
	vn = 6;
	r = (int)R("poll.idle", 0, poll(p, vn, 0));
	showp("poll.idle", p, 6);
	write_c("data");
	if (write(pp[1], "p", 1) != 1)
		conf_fatal("pipe write");
	r = (int)R("poll.data", 0, poll(p, vn, 0));
	showp("poll.data", p, 6);
	drain_s();
	if (read(pp[0], p, 0) < 0) /* a no-op */
		conf_fatal("read");
	{
		char b;
		if (read(pp[0], &b, 1) != 1)
			conf_fatal("pipe read");
	}
	/* Only the socket can wake it: blocking, then a timeout. */
	vn = 1;
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		r = (int)R("poll.blocking", CONF_T, poll(p, vn, -1));
		showp("poll.blocking", p, 1);
		conf_join(t);
	}
	drain_s();
	r = (int)R("poll.timeout", CONF_T, poll(p, vn, CONF_T));
	/* events 0: only ERR/HUP/NVAL can come. */
	p[0].events = 0;
	r = (int)R("poll.events0", 0, poll(p, vn, 0));
	showp("poll.events0", p, 1);
	/* The same fd twice. */
	p[0] = (struct pollfd){.fd = s, .events = POLLIN};
	p[1] = (struct pollfd){.fd = s, .events = POLLOUT};
	vn = 2;
	r = (int)R("poll.twice", 0, poll(p, vn, 0));
	showp("poll.twice", p, 2);
	/* Peer half-close and close. */
	shutdown(c, SHUT_WR);
	conf_sleep_ms(50);
	p[0] = (struct pollfd){.fd = s, .events = POLLIN | POLLOUT | POLLRDHUP};
	vn = 1;
	r = (int)R("poll.peer-shut-WR", 0, poll(p, vn, 0));
	showp("poll.peer-shut-WR", p, 1);
	close(c);
	conf_sleep_ms(50);
	r = (int)R("poll.peer-closed", 0, poll(p, vn, 0));
	showp("poll.peer-closed", p, 1);
	(void)r;
	close(pp[0]);
	close(pp[1]);
	close(dn);
}

static void sc_ppoll(void)
{
	struct pollfd p[1] = {{.fd = s, .events = POLLIN}};
	struct timespec zero = {0, 0}, tmo = {0, CONF_T * 1000000L}, big = {5 * CONF_T / 1000, 0};
	sigset_t block, none, old;
	struct sigaction sa;
	struct conf_later *k, *t;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = conf_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	conf_main_thread = pthread_self();
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	vn = 1;
	r = (int)R("ppoll.zero", 0, ppoll(p, vn, &zero, NULL));
	r = (int)R("ppoll.timeout", CONF_T, ppoll(p, vn, &tmo, NULL));
	write_c("d");
	r = (int)R("ppoll.data", 0, ppoll(p, vn, &zero, NULL));
	showp("ppoll.data", p, 1);
	drain_s();
	/* Masked signal: no EINTR; the event at T ends it. */
	k = conf_later(100, conf_kick, NULL);
	t = conf_later(CONF_T, write_c, "evt");
	r = (int)R("ppoll.masked", CONF_T, ppoll(p, vn, &big, &block));
	showp("ppoll.masked", p, 1);
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	conf_join(t);
	drain_s();
	/* Blocked in the thread, open in ppoll's mask: EINTR. */
	pthread_sigmask(SIG_BLOCK, &block, &old);
	k = conf_later(100, conf_kick, NULL);
	r = (int)R("ppoll.unmasked", CONF_T, ppoll(p, vn, NULL, &none));
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* A blocking ppoll without a mask, and a signal: EINTR. */
	k = conf_later(100, conf_kick, NULL);
	r = (int)R("ppoll.signal", CONF_T, ppoll(p, vn, NULL, NULL));
	out("handler ran=%d", (int)conf_hits);
	conf_join(k);
	(void)r;
}

static void sc_select(void)
{
	fd_set rd, wr, ex;
	struct timeval tv;
	int n = (c > s ? c : s) + 1, r, bad;
	struct conf_later *t;

#define SETS()                                                                                   \
	do {                                                                                     \
		FD_ZERO(&rd);                                                                    \
		FD_ZERO(&wr);                                                                    \
		FD_ZERO(&ex);                                                                    \
		FD_SET(s, &rd);                                                                  \
		FD_SET(c, &rd);                                                                  \
		FD_SET(c, &wr);                                                                  \
		FD_SET(s, &ex);                                                                  \
	} while (0)
#define SHOW(name)                                                                               \
	out("%s s:rd=%d,ex=%d c:rd=%d,wr=%d", name, FD_ISSET(s, &rd), FD_ISSET(s, &ex),          \
	    FD_ISSET(c, &rd), FD_ISSET(c, &wr))

	SETS();
	tv = (struct timeval){0, 0};
	r = (int)R("select.idle", 0, select(n, &rd, &wr, &ex, &tv));
	SHOW("select.idle");
	write_c("sel");
	SETS();
	tv = (struct timeval){0, 0};
	r = (int)R("select.data", 0, select(n, &rd, &wr, &ex, &tv));
	SHOW("select.data");
	drain_s();
	/* Blocking until data, then a timeout; Linux writes back the time
	 * left. */
	FD_ZERO(&rd);
	FD_SET(s, &rd);
	tv = (struct timeval){5 * CONF_T / 1000, 0};
	t = conf_later(CONF_T, write_c, "late");
	r = (int)R("select.blocking", CONF_T, select(s + 1, &rd, NULL, NULL, &tv));
	out("select.blocking s:rd=%d tv-left=%s", FD_ISSET(s, &rd),
	    tv.tv_sec * 1000 + tv.tv_usec / 1000 < 5 * CONF_T - CONF_T / 2 &&
		    tv.tv_sec * 1000 + tv.tv_usec / 1000 > 5 * CONF_T - 3 * CONF_T
		? "about-4T"
		: "other");
	conf_join(t);
	drain_s();
	FD_ZERO(&rd);
	FD_SET(s, &rd);
	tv = (struct timeval){0, CONF_T * 1000};
	r = (int)R("select.timeout", CONF_T, select(s + 1, &rd, NULL, NULL, &tv));
	out("select.timeout s:rd=%d tv=%ld.%06ld", FD_ISSET(s, &rd), (long)tv.tv_sec, (long)tv.tv_usec);
	/* A bad fd: one just closed, so below the size of the process's fd
	 * table. The kernel ignores fds at or above that size, and the shim's
	 * own fds (at high numbers) make the table larger than over TCP: see
	 * docs/COMPATIBILITY.md. */
	bad = dup(s);
	close(bad);
	FD_ZERO(&rd);
	FD_SET(bad, &rd);
	tv = (struct timeval){0, 0};
	R("select.badfd", 0, select(bad + 1, &rd, NULL, NULL, &tv));
	/* Peer closed. */
	close(c);
	conf_sleep_ms(50);
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_SET(s, &rd);
	FD_SET(s, &wr);
	tv = (struct timeval){0, 0};
	r = (int)R("select.peer-closed", 0, select(s + 1, &rd, &wr, NULL, &tv));
	out("select.peer-closed s:rd=%d,wr=%d", FD_ISSET(s, &rd), FD_ISSET(s, &wr));
	(void)r;
#undef SETS
#undef SHOW
}

/* Urgent data in the except set: a link has no room for urgent data, and
 * breaks loudly (run with --loud). */
static void sc_select_oob(void)
{
	fd_set rd, wr, ex;
	struct timeval tv = {0, 0};
	int n = (c > s ? c : s) + 1;
	char b;

	R("send.OOB", 0, send(c, "!", 1, MSG_OOB));
	conf_sleep_ms(50);
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_ZERO(&ex);
	FD_SET(s, &rd);
	FD_SET(s, &ex);
	FD_SET(c, &wr);
	R("select.oob", 0, select(n, &rd, &wr, &ex, &tv));
	out("select.oob s:rd=%d,ex=%d c:wr=%d", FD_ISSET(s, &rd), FD_ISSET(s, &ex), FD_ISSET(c, &wr));
	R("recv.OOB", 0, recv(s, &b, 1, MSG_OOB));
}

static void sc_pselect(void)
{
	fd_set rd;
	struct timespec big = {5 * CONF_T / 1000, 0}, tmo = {0, CONF_T * 1000000L};
	sigset_t block, none, old;
	struct sigaction sa;
	struct conf_later *k, *t;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = conf_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	conf_main_thread = pthread_self();
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	FD_ZERO(&rd);
	FD_SET(s, &rd);
	r = (int)R("pselect.timeout", CONF_T, pselect(s + 1, &rd, NULL, NULL, &tmo, NULL));
	out("pselect.timeout s:rd=%d ts-kept=%d", FD_ISSET(s, &rd), tmo.tv_nsec == CONF_T * 1000000L);
	k = conf_later(100, conf_kick, NULL);
	t = conf_later(CONF_T, write_c, "evt");
	FD_ZERO(&rd);
	FD_SET(s, &rd);
	r = (int)R("pselect.masked", CONF_T, pselect(s + 1, &rd, NULL, NULL, &big, &block));
	out("pselect.masked s:rd=%d handler ran=%d", FD_ISSET(s, &rd), (int)conf_hits);
	conf_join(k);
	conf_join(t);
	drain_s();
	pthread_sigmask(SIG_BLOCK, &block, &old);
	k = conf_later(100, conf_kick, NULL);
	FD_ZERO(&rd);
	FD_SET(s, &rd);
	r = (int)R("pselect.unmasked", CONF_T, pselect(s + 1, &rd, NULL, NULL, &big, &none));
	out("pselect.unmasked handler ran=%d", (int)conf_hits);
	conf_join(k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void)r;
}

static void sc_rw(void)
{
	char buf[64];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	long r;

	write_c("read!");
	vlen = sizeof(buf);
	r = R("read", 0, read(s, buf, vlen));
	out("read %s", hexdata(buf, r));
	write_c("recv!");
	r = R("recv", 0, recv(s, buf, vlen, 0));
	out("recv %s", hexdata(buf, r));
	write_c("recvfrom!");
	r = R("recvfrom", 0, recvfrom(s, buf, vlen, 0, (struct sockaddr *)&from, &fl));
	out("recvfrom %s addrlen=%u", hexdata(buf, r), (unsigned)fl);
	{
		struct conf_later *t = conf_later(CONF_T, write_c, "late");
		r = R("read.blocking", CONF_T, read(s, buf, vlen));
		out("read.blocking %s", hexdata(buf, r));
		conf_join(t);
	}
	R("recv.empty", 0, recv(s, buf, vlen, MSG_DONTWAIT));
	close(c);
	conf_sleep_ms(50);
	R("read.eof", 0, read(s, buf, vlen));
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} sc[] = {{"poll", sc_poll},	 {"ppoll", sc_ppoll}, {"select", sc_select},
		  {"select-oob", sc_select_oob}, {"pselect", sc_pselect}, {"rw", sc_rw}};

	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_poll SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
		if (!strcmp(argv[1], sc[i].name)) {
			out("scenario poll %s", argv[1]);
			sc[i].fn();
			conf_end();
		}
	conf_fatal("unknown subcommand %s", argv[1]);
}
