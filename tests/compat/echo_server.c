/* SPDX-License-Identifier: MIT */
/*
 * echo_server: a plain-socket TCP echo server written the way real event-loop
 * servers are written. It knows nothing about mpklink on purpose: it is the
 * "unmodified program" that the LD_PRELOAD shim must run correctly.
 *
 *   echo_server --port P [--host ADDR] [--mode et|lt|poll|select]
 *               [--max-conns N] [--exit-after N] [--buf-size B]
 *               [--sndbuf N] [--require-backpressure]
 *
 * --buf-size: per-connection output buffer (default 16384); --sndbuf: set
 * SO_SNDBUF on accepted sockets; --require-backpressure: exit 1 at the end
 * unless a write returned EAGAIN and the output buffer filled up at least
 * once (proves the back-pressure paths ran).
 *
 * What it exercises, and why:
 *  - nonblocking listener, accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) until EAGAIN
 *    (an edge-triggered listener only reports new connections once);
 *  - et: one EPOLL_CTL_ADD per fd with EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET,
 *    never re-armed (what gRPC does): every lost edge is a hang;
 *  - lt: level-triggered, EPOLLOUT switched on with EPOLL_CTL_MOD only while
 *    output is pending, EPOLLIN switched off while the buffer is full;
 *  - poll / select: the same with poll(2) and select(2);
 *  - back-pressure: a bounded per-connection output buffer; reading stops
 *    while it is full, so unread data stays in the socket;
 *  - half-close: read() == 0 -> flush, shutdown(SHUT_WR), close;
 *  - every data call the shim covers: read/recv/recvfrom/recvmsg/readv and
 *    write/send/sendto/sendmsg/writev, chosen per connection from the fd
 *    number; recvmsg connections with an odd fd also turn on TCP_INQ (as
 *    gRPC does) and require the TCP_CM_INQ control message.
 *
 * Prints "listening on PORT" once ready (PORT is the real one with --port 0).
 * SIGTERM/SIGINT: exit 0. They arrive on a signalfd watched by the event loop
 * rather than through a handler: sanitizer runtimes defer handlers to their
 * next intercepted call, and ThreadSanitizer does not intercept select(), so
 * a handler's flag could go unseen forever. Any unexpected errno: message
 * naming the call, exit 1. At exit prints one "stats ..." line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <unistd.h>

enum mode { MODE_ET, MODE_LT, MODE_POLL, MODE_SELECT };

enum rmethod { R_READ, R_RECV, R_RECVFROM, R_RECVMSG, R_READV, R_COUNT };
enum wmethod { W_WRITE, W_SEND, W_SENDTO, W_SENDMSG, W_WRITEV, W_COUNT };

/*
 * One connection. The output buffer is a ring so the vector calls get two
 * segments when the data wraps.
 */
struct conn {
	int fd;
	uint8_t *buf;
	size_t head;	/* first pending byte */
	size_t len;	/* pending bytes */
	bool rd_eof;	/* peer half-closed */
	bool posted;	/* et: needs service without a new edge */
	bool inq;	/* TCP_INQ on: recvmsg must carry TCP_CM_INQ */
	uint32_t interest; /* lt: what is registered now */
	enum rmethod rm;
	enum wmethod wm;
	struct conn *next_posted;
};

static struct {
	enum mode mode;
	const char *host;
	int port;
	long max_conns;
	long exit_after;
	size_t buf_size;
	int sndbuf;
	bool require_bp;
} opt = {
	.mode = MODE_ET,
	.host = "127.0.0.1",
	.port = -1,
	.max_conns = 1000,
	.exit_after = 0,
	.buf_size = 16384,
};

static struct {
	unsigned long accepted, closed, reads, writes, partial_writes;
	unsigned long write_eagain, full_stops, posted, inq_cmsgs, accept_pauses;
	unsigned long long bytes;
} st;

static bool stop_flag;
static int lfd = -1, epfd = -1, sfd = -1;
static struct conn sfd_tag;	/* stands for the signalfd where a conn * is expected */
static struct conn **conns;	/* indexed by fd */
static size_t conns_cap;
static long nconns;
static bool accept_paused;
static struct conn *posted_head;

static const char *const rnames[R_COUNT] = { "read", "recv", "recvfrom", "recvmsg", "readv" };
static const char *const wnames[W_COUNT] = { "write", "send", "sendto", "sendmsg", "writev" };

static void die(const char *call)
{
	int e = errno;
	fprintf(stderr, "echo_server: %s: %s (errno %d)\n", call, strerror(e), e);
	exit(1);
}

static void die_fd(const char *call, int fd)
{
	int e = errno;
	fprintf(stderr, "echo_server: %s(fd %d): %s (errno %d)\n", call, fd, strerror(e), e);
	exit(1);
}

static void fail(const char *msg, int fd)
{
	fprintf(stderr, "echo_server: fd %d: %s\n", fd, msg);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: echo_server --port P [--host ADDR] [--mode et|lt|poll|select]\n"
		"                   [--max-conns N] [--exit-after N] [--buf-size B]\n"
		"                   [--sndbuf N] [--require-backpressure]\n");
	exit(2);
}

static long parse_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "echo_server: bad %s '%s' (want %ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'h' },
		{ "mode", required_argument, NULL, 'm' },
		{ "max-conns", required_argument, NULL, 'c' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ "buf-size", required_argument, NULL, 'b' },
		{ "sndbuf", required_argument, NULL, 'S' },
		{ "require-backpressure", no_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': opt.port = (int)parse_long(optarg, "port", 0, 65535); break;
		case 'h': opt.host = optarg; break;
		case 'm':
			if (!strcmp(optarg, "et"))
				opt.mode = MODE_ET;
			else if (!strcmp(optarg, "lt"))
				opt.mode = MODE_LT;
			else if (!strcmp(optarg, "poll"))
				opt.mode = MODE_POLL;
			else if (!strcmp(optarg, "select"))
				opt.mode = MODE_SELECT;
			else
				usage();
			break;
		case 'c': opt.max_conns = parse_long(optarg, "max-conns", 1, 1000000); break;
		case 'x': opt.exit_after = parse_long(optarg, "exit-after", 0, LONG_MAX); break;
		case 'b': opt.buf_size = (size_t)parse_long(optarg, "buf-size", 1, 1 << 26); break;
		case 'S': opt.sndbuf = (int)parse_long(optarg, "sndbuf", 1, 1 << 30); break;
		case 'B': opt.require_bp = true; break;
		default: usage();
		}
	}
	if (optind != argc || opt.port < 0)
		usage();
}

/* ---- listener ---------------------------------------------------------- */

/* --host unix:PATH: a Unix stream socket instead, the baseline a user
 * would pick for co-located services. */
static bool is_unix;

static int open_unix_listener(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "echo_server: unix path too long: %s\n", path);
		exit(2);
	}
	strcpy(a.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket(AF_UNIX)");
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		die("bind");
	if (listen(fd, SOMAXCONN))
		die("listen");
	printf("listening on 0\n");
	if (fflush(stdout))
		die("fflush(stdout)");
	return fd;
}

static int open_listener(void)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (!strncmp(opt.host, "unix:", 5)) {
		is_unix = true;
		return open_unix_listener(opt.host + 5);
	}
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, opt.host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)opt.port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, opt.host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)opt.port);
		sl = sizeof(*s6);
	} else {
		fprintf(stderr, "echo_server: --host '%s' is not a numeric IPv4/IPv6 address\n",
			opt.host);
		exit(2);
	}

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1, zero = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("setsockopt(SO_REUSEADDR)");
	/* "::" must also take IPv4 clients, whatever net.ipv6.bindv6only says. */
	if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		die("setsockopt(IPV6_V6ONLY)");
	if (bind(fd, (struct sockaddr *)&ss, sl))
		die("bind");
	if (listen(fd, SOMAXCONN))
		die("listen");

	/* Read the port back: with --port 0 the kernel picked it. */
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &bl))
		die("getsockname");
	int port = bound.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port)
					      : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	if (bound.ss_family != ss.ss_family || (opt.port && port != opt.port))
		fail("getsockname disagrees with bind", fd);
	printf("listening on %d\n", port);
	if (fflush(stdout))
		die("fflush(stdout)");
	return fd;
}

/* ---- connection table -------------------------------------------------- */

static void table_put(int fd, struct conn *c)
{
	if ((size_t)fd >= conns_cap) {
		size_t ncap = conns_cap ? conns_cap : 64;
		while (ncap <= (size_t)fd)
			ncap *= 2;
		struct conn **n = realloc(conns, ncap * sizeof(*n));
		if (!n)
			die("realloc");
		memset(n + conns_cap, 0, (ncap - conns_cap) * sizeof(*n));
		conns = n;
		conns_cap = ncap;
	}
	conns[fd] = c;
}

static void posted_remove(struct conn *c)
{
	if (!c->posted)
		return;
	for (struct conn **pp = &posted_head; *pp; pp = &(*pp)->next_posted) {
		if (*pp == c) {
			*pp = c->next_posted;
			break;
		}
	}
	c->posted = false;
}

static void conn_close(struct conn *c)
{
	posted_remove(c);
	/*
	 * Half the fds leave epoll explicitly, half implicitly via close(): a
	 * preload shim tracking epoll registrations must get both right.
	 */
	if ((opt.mode == MODE_ET || opt.mode == MODE_LT) && !(c->fd & 1) &&
	    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL))
		die_fd("epoll_ctl(DEL)", c->fd);
	if (close(c->fd))
		die_fd("close", c->fd);
	conns[c->fd] = NULL;
	free(c->buf);
	free(c);
	nconns--;
	st.closed++;
	if (opt.exit_after && st.closed >= (unsigned long)opt.exit_after)
		stop_flag = true;
}

/* ---- data path --------------------------------------------------------- */

/* Contiguous free space: first segment, and the wrapped second one. */
static void free_segs(const struct conn *c, struct iovec iov[2])
{
	size_t cap = opt.buf_size, tail = (c->head + c->len) % cap, fr = cap - c->len;
	size_t first = cap - tail < fr ? cap - tail : fr;
	iov[0] = (struct iovec){ c->buf + tail, first };
	iov[1] = (struct iovec){ c->buf, fr - first };
}

static void data_segs(const struct conn *c, struct iovec iov[2])
{
	size_t cap = opt.buf_size;
	size_t first = cap - c->head < c->len ? cap - c->head : c->len;
	iov[0] = (struct iovec){ c->buf + c->head, first };
	iov[1] = (struct iovec){ c->buf, c->len - first };
}

/* Checks what recvmsg hands back besides data. */
static void check_recvmsg(struct conn *c, struct msghdr *m, ssize_t n)
{
	if (m->msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		fail("recvmsg: msg_flags has MSG_TRUNC/MSG_CTRUNC (not set by recvmsg?)", c->fd);
	if (!c->inq) {
		if (m->msg_controllen != 0)
			fail("recvmsg: msg_controllen not 0 without TCP_INQ", c->fd);
		return;
	}
	bool seen = false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		if (cm->cmsg_level == SOL_TCP && cm->cmsg_type == TCP_CM_INQ &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			int inq;
			memcpy(&inq, CMSG_DATA(cm), sizeof(inq));
			if (inq < 0)
				fail("recvmsg: TCP_CM_INQ negative", c->fd);
			seen = true;
		}
	}
	/* The kernel adds it to every successful read (n >= 0) with TCP_INQ on. */
	if (n > 0 && !seen)
		fail("recvmsg: TCP_INQ is on but no TCP_CM_INQ control message", c->fd);
	st.inq_cmsgs += seen;
}

/*
 * One read into the free space. Returns bytes read, 0 at EOF, -1 on EAGAIN;
 * any other error is fatal (our clients never reset connections).
 */
static ssize_t conn_read(struct conn *c)
{
	struct iovec iov[2];
	free_segs(c, iov);
	ssize_t n;
	for (;;) {
		switch (c->rm) {
		case R_READ:
			n = read(c->fd, iov[0].iov_base, iov[0].iov_len);
			break;
		case R_RECV:
			n = recv(c->fd, iov[0].iov_base, iov[0].iov_len, 0);
			break;
		case R_RECVFROM: {
			/* A connected TCP socket reports no source address. */
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			n = recvfrom(c->fd, iov[0].iov_base, iov[0].iov_len, 0,
				     (struct sockaddr *)&from, &fl);
			break;
		}
		case R_RECVMSG: {
			union {
				struct cmsghdr align;
				char b[CMSG_SPACE(sizeof(int)) * 2];
			} ctl;
			struct msghdr m = {
				.msg_iov = iov,
				.msg_iovlen = iov[1].iov_len ? 2 : 1,
				.msg_control = ctl.b,
				.msg_controllen = sizeof(ctl.b),
				/* Garbage in: recvmsg must overwrite it. */
				.msg_flags = MSG_TRUNC | MSG_CTRUNC,
			};
			n = recvmsg(c->fd, &m, 0);
			if (n >= 0)
				check_recvmsg(c, &m, n);
			break;
		}
		default:
			n = readv(c->fd, iov, iov[1].iov_len ? 2 : 1);
			break;
		}
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		die_fd(rnames[c->rm], c->fd);
	}
	if ((size_t)n > iov[0].iov_len + iov[1].iov_len)
		fail("read returned more than asked", c->fd);
	st.reads++;
	if (n == 0) {
		c->rd_eof = true;
		return 0;
	}
	st.bytes += (unsigned long long)n;
	c->len += (size_t)n;
	return n;
}

/*
 * Writes pending output until it is gone or the socket is full. Returns the
 * number of bytes written; *blocked says whether a write returned EAGAIN.
 */
static size_t conn_flush(struct conn *c, bool *blocked)
{
	size_t total = 0;
	*blocked = false;
	while (c->len) {
		struct iovec iov[2];
		data_segs(c, iov);
		ssize_t n;
		switch (c->wm) {
		case W_WRITE:
			n = write(c->fd, iov[0].iov_base, iov[0].iov_len);
			break;
		case W_SEND:
			n = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
			break;
		case W_SENDTO:
			n = sendto(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL, NULL, 0);
			break;
		case W_SENDMSG: {
			struct msghdr m = { .msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1 };
			n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
			break;
		}
		default:
			n = writev(c->fd, iov, iov[1].iov_len ? 2 : 1);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				st.write_eagain++;
				*blocked = true;
				break;
			}
			die_fd(wnames[c->wm], c->fd);
		}
		if (n == 0 || (size_t)n > c->len)
			fail("write returned 0 or more than asked", c->fd);
		st.writes++;
		if ((size_t)n < iov[0].iov_len + iov[1].iov_len)
			st.partial_writes++;
		c->head = (c->head + (size_t)n) % opt.buf_size;
		c->len -= (size_t)n;
		total += (size_t)n;
	}
	if (!c->len)
		c->head = 0;	/* keep future reads contiguous */
	return total;
}

/* Half-closed by the peer and everything echoed: our half-close, then close. */
static bool conn_maybe_finish(struct conn *c)
{
	if (!c->rd_eof || c->len)
		return false;
	if (shutdown(c->fd, SHUT_WR))
		die_fd("shutdown(SHUT_WR)", c->fd);
	conn_close(c);
	return true;
}

/*
 * Edge-triggered service. No new edge comes for data or space that already
 * existed, so stop only when the socket said EAGAIN (or EOF) on the read side
 * and either EAGAIN or nothing-to-write on the write side. A full buffer stops
 * reading without EAGAIN: then progress resumes on the EPOLLOUT edge after a
 * write that returned EAGAIN. To stay fair, a busy connection gets a bounded
 * number of rounds and is then "posted" to run again after the others.
 */
#define ET_ROUNDS 16

static void et_service(struct conn *c)
{
	for (int round = 0; round < ET_ROUNDS; round++) {
		bool blocked;
		size_t w = conn_flush(c, &blocked);
		ssize_t r, rd = 0;
		while (!c->rd_eof && c->len < opt.buf_size && (r = conn_read(c)) > 0)
			rd += r;
		if (!c->rd_eof && c->len == opt.buf_size)
			st.full_stops++;
		if (conn_maybe_finish(c))
			return;
		if (!rd && !w)
			return;	/* settled: the next edge will wake us */
	}
	if (!c->posted) {
		c->posted = true;
		c->next_posted = posted_head;
		posted_head = c;
		st.posted++;
	}
}

/*
 * Level-triggered service: one read per readiness report (the level says if
 * more is left), then flush. Returns true if the connection was closed.
 */
static bool lt_service(struct conn *c, bool readable, bool writable)
{
	bool blocked;
	if (readable && !c->rd_eof && c->len < opt.buf_size) {
		conn_read(c);
		if (c->len == opt.buf_size)
			st.full_stops++;
	}
	if (c->len && (writable || readable))
		conn_flush(c, &blocked);
	return conn_maybe_finish(c);
}

/* What a level-triggered loop waits for: only what can make progress now. */
static uint32_t lt_interest(const struct conn *c)
{
	uint32_t ev = 0;
	if (!c->rd_eof && c->len < opt.buf_size)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->len)	/* pending output means the last write said EAGAIN */
		ev |= EPOLLOUT;
	return ev;
}

static void lt_update(struct conn *c)
{
	uint32_t ev = lt_interest(c);
	if (ev == c->interest)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e))
		die_fd("epoll_ctl(MOD)", c->fd);
	c->interest = ev;
}

/* ---- accepting --------------------------------------------------------- */

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

static void set_listener_interest(bool on)
{
	if (opt.mode != MODE_LT)
		return;	/* et keeps it armed (we re-run accept), poll/select rebuild */
	struct epoll_event e = { .events = on ? EPOLLIN : 0, .data.ptr = NULL };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, lfd, &e))
		die("epoll_ctl(MOD listener)");
}

static void accept_all(void)
{
	while (nconns < opt.max_conns) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept4");
		}
		if (opt.mode == MODE_SELECT && fd >= FD_SETSIZE) {
			fprintf(stderr, "echo_server: accept4 gave fd %d >= FD_SETSIZE in select mode\n",
				fd);
			exit(1);
		}
		/* getpeername must agree with what accept4 reported. */
		struct sockaddr_storage gp;
		socklen_t gl = sizeof(gp);
		if (getpeername(fd, (struct sockaddr *)&gp, &gl))
			die_fd("getpeername", fd);
		if (!is_unix && (gl != pl || !same_addr(&gp, &peer)))
			fail("getpeername differs from accept4's peer address", fd);
		int one = 1;
		if (!is_unix && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			die_fd("setsockopt(TCP_NODELAY)", fd);
		/* A small send buffer makes writes return EAGAIN: back-pressure. */
		if (opt.sndbuf &&
		    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opt.sndbuf, sizeof(opt.sndbuf)))
			die_fd("setsockopt(SO_SNDBUF)", fd);

		struct conn *c = calloc(1, sizeof(*c));
		if (!c || !(c->buf = malloc(opt.buf_size)))
			die("malloc");
		c->fd = fd;
		c->rm = (enum rmethod)(fd % R_COUNT);
		c->wm = (enum wmethod)((fd / R_COUNT) % W_COUNT);
		if (c->rm == R_RECVMSG && (fd & 1) && !is_unix) {
			if (setsockopt(fd, SOL_TCP, TCP_INQ, &one, sizeof(one)))
				die_fd("setsockopt(TCP_INQ)", fd);
			c->inq = true;
		}
		table_put(fd, c);
		nconns++;
		st.accepted++;
		if (opt.mode == MODE_ET || opt.mode == MODE_LT) {
			struct epoll_event e = { .data.ptr = c };
			if (opt.mode == MODE_ET)
				e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
			else
				e.events = c->interest = lt_interest(c);
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e))
				die_fd("epoll_ctl(ADD)", fd);
		}
	}
	/* Full: leave the rest in the backlog until a connection closes. */
	if (!accept_paused) {
		accept_paused = true;
		st.accept_pauses++;
		set_listener_interest(false);
	}
}

/* After closes: take connections again if we had stopped. */
static void maybe_resume_accept(void)
{
	if (!accept_paused || nconns >= opt.max_conns)
		return;
	accept_paused = false;
	set_listener_interest(true);
	/* et: the backlog may hold connections whose edge already passed. */
	accept_all();
}

/* ---- event loops ------------------------------------------------------- */

/* No idle wake-up: every wait sleeps until an fd has news (signals come
 * through the signalfd). A periodic wake-up would turn a lost edge, the
 * defect these modes are here to find, into a pause no client notices. */

/* The signalfd is readable: SIGTERM or SIGINT arrived. */
static void take_signal(void)
{
	struct signalfd_siginfo si;
	ssize_t n = read(sfd, &si, sizeof(si));
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("read(signalfd)");
	if (n == (ssize_t)sizeof(si))
		stop_flag = true;
}

static void run_epoll(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	struct epoll_event le = { .events = EPOLLIN, .data.ptr = NULL };
	if (opt.mode == MODE_ET)
		le.events |= EPOLLET;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le))
		die("epoll_ctl(ADD listener)");
	struct epoll_event se = { .events = EPOLLIN, .data.ptr = &sfd_tag };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &se))
		die("epoll_ctl(ADD signalfd)");

	struct epoll_event evs[64];
	while (!stop_flag) {
		int n = epoll_wait(epfd, evs, 64, posted_head ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n && !stop_flag; i++) {
			if (evs[i].data.ptr == &sfd_tag) {
				take_signal();
				continue;
			}
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				if (!accept_paused)
					accept_all();
				continue;
			}
			/*
			 * A connection only ever closes itself, and an fd appears
			 * once per batch, so c is still live here.
			 */
			if (opt.mode == MODE_ET) {
				posted_remove(c);
				et_service(c);
			} else {
				uint32_t e = evs[i].events;
				if (!lt_service(c, e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR),
						e & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
					lt_update(c);
			}
		}
		/* et: connections cut short for fairness, without waiting for an edge. */
		if (opt.mode == MODE_ET && !stop_flag) {
			struct conn *list = posted_head;
			posted_head = NULL;
			while (list) {
				struct conn *c = list;
				list = c->next_posted;
				c->posted = false;
				et_service(c);
			}
		}
		maybe_resume_accept();
	}
}

static void run_poll(void)
{
	struct pollfd *pfds = NULL;
	struct conn **who = NULL;
	size_t cap = 0;
	while (!stop_flag) {
		size_t need = (size_t)nconns + 2, k = 0;
		if (need > cap) {
			cap = need * 2;
			pfds = realloc(pfds, cap * sizeof(*pfds));
			who = realloc(who, cap * sizeof(*who));
			if (!pfds || !who)
				die("realloc");
		}
		pfds[k] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		who[k++] = &sfd_tag;
		if (!accept_paused) {
			pfds[k] = (struct pollfd){ .fd = lfd, .events = POLLIN };
			who[k++] = NULL;
		}
		for (size_t fd = 0; fd < conns_cap; fd++) {
			struct conn *c = conns[fd];
			if (!c)
				continue;
			uint32_t ie = lt_interest(c);
			short ev = 0;
			if (ie & EPOLLIN)
				ev |= POLLIN | POLLRDHUP;
			if (ie & EPOLLOUT)
				ev |= POLLOUT;
			pfds[k] = (struct pollfd){ .fd = c->fd, .events = ev };
			who[k++] = c;
		}
		int n = poll(pfds, k, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (size_t i = 0; i < k && n > 0 && !stop_flag; i++) {
			short re = pfds[i].revents;
			if (!re)
				continue;
			n--;
			if (re & POLLNVAL)
				fail("poll: POLLNVAL", pfds[i].fd);
			if (who[i] == &sfd_tag)
				take_signal();
			else if (!who[i])
				accept_all();
			else
				lt_service(who[i], re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR),
					   re & (POLLOUT | POLLHUP | POLLERR));
		}
		maybe_resume_accept();
	}
	free(pfds);
	free(who);
}

static void run_select(void)
{
	if (lfd >= FD_SETSIZE || sfd >= FD_SETSIZE)
		fail("listener or signalfd >= FD_SETSIZE", lfd > sfd ? lfd : sfd);
	while (!stop_flag) {
		fd_set rs, ws;
		FD_ZERO(&rs);
		FD_ZERO(&ws);
		FD_SET(sfd, &rs);
		int maxfd = sfd;
		if (!accept_paused) {
			FD_SET(lfd, &rs);
			if (lfd > maxfd)
				maxfd = lfd;
		}
		for (size_t fd = 0; fd < conns_cap; fd++) {
			struct conn *c = conns[fd];
			if (!c)
				continue;
			uint32_t ie = lt_interest(c);
			if (ie & EPOLLIN)
				FD_SET(c->fd, &rs);
			if (ie & EPOLLOUT)
				FD_SET(c->fd, &ws);
			if (c->fd > maxfd)
				maxfd = c->fd;
		}
		int n = select(maxfd + 1, &rs, &ws, NULL, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("select");
		}
		if (!n)
			continue;
		if (FD_ISSET(sfd, &rs)) {
			take_signal();
			continue;
		}
		/* Only fds that were in the sets can be reported, and all are < maxfd+1. */
		for (int fd = 0; fd <= maxfd && !stop_flag; fd++) {
			bool r = FD_ISSET(fd, &rs), w = FD_ISSET(fd, &ws);
			if (!r && !w)
				continue;
			if (fd == lfd) {
				accept_all();
				continue;
			}
			struct conn *c = (size_t)fd < conns_cap ? conns[fd] : NULL;
			/*
			 * c can be NULL, or a new connection, if fd was closed and
			 * reused by accept in this pass: it then has no readiness
			 * yet and one spurious attempt is harmless (EAGAIN).
			 */
			if (c)
				lt_service(c, r, w);
		}
		maybe_resume_accept();
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);

	sigset_t sigs;
	if (sigemptyset(&sigs) || sigaddset(&sigs, SIGTERM) || sigaddset(&sigs, SIGINT))
		die("sigaddset");
	if (sigprocmask(SIG_BLOCK, &sigs, NULL))
		die("sigprocmask");
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd");
	/* A peer vanishing mid-write must be an error we report, not SIGPIPE. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal(SIGPIPE)");

	lfd = open_listener();
	switch (opt.mode) {
	case MODE_ET:
	case MODE_LT: run_epoll(); break;
	case MODE_POLL: run_poll(); break;
	case MODE_SELECT: run_select(); break;
	}

	for (size_t fd = 0; fd < conns_cap; fd++)
		if (conns[fd])
			conn_close(conns[fd]);
	free(conns);
	if (epfd >= 0 && close(epfd))
		die("close(epoll)");
	if (close(lfd))
		die("close(listener)");
	if (close(sfd))
		die("close(signalfd)");
	printf("stats accepted=%lu closed=%lu reads=%lu writes=%lu partial_writes=%lu "
	       "write_eagain=%lu full_stops=%lu posted=%lu inq_cmsgs=%lu accept_pauses=%lu "
	       "bytes=%llu\n",
	       st.accepted, st.closed, st.reads, st.writes, st.partial_writes, st.write_eagain,
	       st.full_stops, st.posted, st.inq_cmsgs, st.accept_pauses, st.bytes);
	if (fflush(stdout))
		die("fflush(stdout)");
	if (opt.require_bp && (!st.full_stops || !st.write_eagain)) {
		fprintf(stderr, "echo_server: --require-backpressure: full_stops=%lu write_eagain=%lu\n",
			st.full_stops, st.write_eagain);
		return 1;
	}
	return 0;
}
