/* SPDX-License-Identifier: MIT */
/*
 * echo_client: drives echo_server (or any echo server) with a deterministic
 * byte stream and checks every byte that comes back. Plain sockets only; it
 * knows nothing about mpklink, so it can run under the LD_PRELOAD shim as an
 * unmodified program.
 *
 * Stream mode (default):
 *   echo_client --port P [--host ADDR] [--mode et|lt|poll] [--conns 64]
 *               [--bytes-per-conn B] [--max-msg M] [--seed S] [--blocking]
 *               [--min-writes N] [--rcvbuf N] [--sndbuf N] [--stall-secs T]
 *   Opens C connections with nonblocking connect, sends on each a pseudo-
 *   random stream (byte i of connection k depends only on seed, k, i) in
 *   random-size writes of 1..M bytes (write/send/sendto/sendmsg/writev, the
 *   vector calls with several iovecs), reads the echo in random-size reads
 *   (read/recv/recvfrom/recvmsg/readv), verifies every byte, half-closes when
 *   all B bytes are sent, reads to EOF, checks exactly B came back, closes.
 *   --blocking: one connection at a time, blocking sockets, write a chunk then
 *   read its echo back.
 *   Prints "OK conns=C bytes=TOTAL fnv=HEX" and a "stats ..." line. HEX is
 *   FNV-1a-64 over the per-connection FNV-1a-64 digests (each 8 bytes, little
 *   endian) of the bytes received on connections 0..C-1, in that order: it
 *   depends only on (seed, C, B), not on timing, mode or chunking, so two runs
 *   (plain TCP and the shared-memory path, say) compare byte for byte. (The
 *   connections run concurrently, so one FNV over the plain concatenation
 *   would need every byte buffered; hashing per connection avoids that.)
 *
 * Round-trip mode:
 *   echo_client --port P [--host ADDR] --rtt N --size S [--warmup W]
 *   N ping-pongs of S bytes on one blocking connection, each timed with
 *   CLOCK_MONOTONIC; prints p50/p99 and a line
 *   "RTT size=S n=N p50_us=X p99_us=Y".
 *
 * Churn mode (a client without a connection pool):
 *   echo_client --port P [--host ADDR] --churn N --size S [--warmup W]
 *   N requests, each on a new connection: socket, connect, S bytes echoed,
 *   close, timed whole; prints a line "CHURN size=S n=N p50_us=X p99_us=Y
 *   reply_p50_us=Z per_s=R": per request, connect to its reply, and
 *   requests a second over the N.
 *
 * Exit: 0 ok, 1 error or mismatch (names connection and offset), 2 usage,
 * 3 STALL (no progress for --stall-secs, default 10; prints per-connection
 * state). It never hangs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_ET, MODE_LT, MODE_POLL };

static struct {
	const char *host;
	int port;
	enum mode mode;
	long conns;
	uint64_t bytes;
	size_t max_msg;
	uint64_t seed;
	bool blocking;
	long min_writes;
	int rcvbuf, sndbuf;
	long stall_secs;
	long rtt, size, warmup;
	long churn;
	long think_us, slow_every, slow_us;
} opt = {
	.host = "127.0.0.1",
	.port = -1,
	.mode = MODE_ET,
	.conns = 64,
	.bytes = 262144,
	.max_msg = 4096,
	.seed = 1,
	.stall_secs = 10,
	.warmup = 100,
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

enum state { ST_CONNECTING, ST_OPEN, ST_DONE };
static const char *const state_names[] = { "connecting", "open", "done" };

struct conn {
	int k;
	int fd;
	enum state st;
	uint64_t sent, rcvd;
	bool shut_wr, eof;
	uint64_t fnv;
	uint64_t rng;
	uint32_t interest;	/* lt: registered events */
	unsigned long writes, reads;
};

static struct sockaddr_storage target;
static socklen_t target_len;
static uint8_t *wbuf, *rbuf, *ebuf;	/* scratch: outgoing, incoming, expected */
static unsigned long tot_writes, tot_reads, tot_eagain;
static uint64_t sum_fnv, sum_bytes;	/* the summary, printed by main */
/* The kernel's own count of what crossed each TCP connection (TCP_INFO,
 * read just before close): the payload, for plain TCP. */
static uint64_t tcp_acked, tcp_received;

/* glibc's struct tcp_info ends at tcpi_total_retrans; the kernel's goes
 * on (the ABI only grows at the end). */
struct tcp_info_bytes {
	struct tcp_info base;
	uint64_t pacing_rate, max_pacing_rate;
	uint64_t bytes_acked, bytes_received;
};
_Static_assert(sizeof(struct tcp_info) == 104, "glibc tcp_info layout");

static void tcp_account(int fd)
{
	struct tcp_info_bytes ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && l >= sizeof(ti)) {
		tcp_acked += ti.bytes_acked;
		tcp_received += ti.bytes_received;
	}
}

/* ---- errors ------------------------------------------------------------ */

static void die(const char *call)
{
	int e = errno;
	fprintf(stderr, "echo_client: %s: %s (errno %d)\n", call, strerror(e), e);
	exit(1);
}

static void die_conn(const char *call, const struct conn *c)
{
	int e = errno;
	fprintf(stderr, "echo_client: conn %d (fd %d): %s: %s (errno %d)\n", c->k, c->fd, call,
		strerror(e), e);
	exit(1);
}

static void fail_conn(const struct conn *c, const char *what)
{
	fprintf(stderr, "echo_client: conn %d (fd %d): %s (sent=%" PRIu64 " rcvd=%" PRIu64 ")\n",
		c->k, c->fd, what, c->sent, c->rcvd);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: echo_client --port P [--host ADDR] [--mode et|lt|poll] [--conns C]\n"
		"                   [--bytes-per-conn B] [--max-msg M] [--seed S] [--blocking]\n"
		"                   [--min-writes N] [--rcvbuf N] [--sndbuf N] [--stall-secs T]\n"
		"       echo_client --port P [--host ADDR] --rtt N --size S [--warmup W]\n"
		"       echo_client --port P [--host ADDR] --churn N --size S [--warmup W]\n"
		"                   [--think-us T] [--slow-every K --slow-us U]\n"
		"--think-us: busy for T us before each round trip (a peer that takes its\n"
		"time); --slow-every/--slow-us: every K-th round trip, U us instead\n");
	exit(2);
}

static long long parse_num(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "echo_client: bad %s '%s' (want %lld..%lld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

/* ---- the deterministic stream ------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: every input bit affects every output bit */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte off.. of connection k's stream: 8 bytes per hash of (seed, k, off/8). */
static void stream_fill(int k, uint64_t off, uint8_t *p, size_t n)
{
	uint64_t base = mix64(opt.seed ^ mix64((uint64_t)k + 1));
	while (n) {
		uint64_t v = mix64(base ^ (off >> 3));
		unsigned sh = (unsigned)(off & 7);
		size_t take = 8 - sh < n ? 8 - sh : n;
		for (size_t i = 0; i < take; i++)
			p[i] = (uint8_t)(v >> (8 * (sh + i)));
		p += take;
		off += take;
		n -= take;
	}
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: chunk sizes and call choices; never 0 state */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static size_t rng_size(struct conn *c, size_t max)
{
	return 1 + (size_t)(rng_next(&c->rng) % max);
}

static uint64_t fnv_update(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* ---- progress and the watchdog ----------------------------------------- */

static _Atomic unsigned long progress;	/* bumped on every byte moved */

static uint64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		die("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Blocking modes have no event loop to notice a hang, so a thread does: it
 * sleeps a second at a time (no spinning) and ends the process if the
 * progress counter stood still for stall_secs (+ grace). The blocked
 * connection's numbers are mirrored in atomics for the report. The event-loop
 * mode runs it too, with 5 s of grace, as a backstop in case a call that
 * should not block does: the loop's own check reports first, with detail.
 */
static long wd_grace;
static _Atomic long wd_conn = -1;
static _Atomic uint64_t wd_sent, wd_rcvd;

static void *watchdog(void *arg)
{
	(void)arg;
	unsigned long last = atomic_load(&progress);
	long idle = 0;
	for (;;) {
		struct timespec ts = { 1, 0 };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		unsigned long now = atomic_load(&progress);
		if (now != last) {
			last = now;
			idle = 0;
			continue;
		}
		if (++idle >= opt.stall_secs + wd_grace) {
			long k = atomic_load(&wd_conn);
			if (k >= 0)
				fprintf(stderr, "STALL: no progress for %ld s; blocked in conn %ld, "
					"sent=%" PRIu64 " rcvd=%" PRIu64 " at its last full chunk\n",
					idle, k, atomic_load(&wd_sent), atomic_load(&wd_rcvd));
			else
				fprintf(stderr, "STALL: no progress for %ld s, and the event loop "
					"did not notice: a call blocked\n", idle);
			printf("STALL\n");
			fflush(stdout);
			_exit(3);
		}
	}
	return NULL;
}

static void start_watchdog(void)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, watchdog, NULL);
	if (e) {
		errno = e;
		die("pthread_create");
	}
	if ((e = pthread_detach(t))) {
		errno = e;
		die("pthread_detach");
	}
}

static void stall_report(struct conn *cs, long n, uint64_t idle_ns)
{
	printf("STALL\n");
	fprintf(stderr, "STALL: no progress for %.1f s\n", (double)idle_ns / 1e9);
	for (long i = 0; i < n; i++) {
		struct conn *c = &cs[i];
		if (c->st == ST_DONE)
			continue;
		fprintf(stderr,
			"  conn %d fd %d %s sent=%" PRIu64 "/%" PRIu64 " rcvd=%" PRIu64
			" shut_wr=%d eof=%d writes=%lu reads=%lu\n",
			c->k, c->fd, state_names[c->st], c->sent, opt.bytes, c->rcvd, c->shut_wr,
			c->eof, c->writes, c->reads);
	}
	fflush(stdout);
	exit(3);
}

/* ---- sockets ----------------------------------------------------------- */

static void resolve_target(void)
{
	memset(&target, 0, sizeof(target));
	if (!strncmp(opt.host, "unix:", 5)) {
		/* --host unix:PATH: the Unix-socket baseline. */
		struct sockaddr_un *su = (struct sockaddr_un *)&target;
		if (strlen(opt.host + 5) >= sizeof(su->sun_path)) {
			fprintf(stderr, "echo_client: unix path too long: %s\n", opt.host + 5);
			exit(2);
		}
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, opt.host + 5);
		target_len = sizeof(*su);
		return;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&target;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&target;
	if (inet_pton(AF_INET, opt.host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)opt.port);
		target_len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, opt.host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)opt.port);
		target_len = sizeof(*s6);
	} else {
		fprintf(stderr, "echo_client: --host '%s' is not a numeric IPv4/IPv6 address\n",
			opt.host);
		exit(2);
	}
}

/* getpeername on a connected socket must name the server we dialled. */
static void check_peer(const struct conn *c)
{
	struct sockaddr_storage p;
	socklen_t pl = sizeof(p);
	if (target.ss_family == AF_UNIX)
		return; /* the kernel trims sun_path: nothing to compare */
	if (getpeername(c->fd, (struct sockaddr *)&p, &pl))
		die_conn("getpeername", c);
	if (pl != target_len || memcmp(&p, &target, pl))
		fail_conn(c, "getpeername differs from the connect address");
}

static int new_socket(const struct conn *c, bool nonblock)
{
	int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
			0);
	if (fd < 0)
		die_conn("socket", c);
	int one = 1;
	if (target.ss_family != AF_UNIX && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die_conn("setsockopt(TCP_NODELAY)", c);
	/* Small buffers force partial writes and EAGAIN on both sides. */
	if (opt.rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt.rcvbuf, sizeof(opt.rcvbuf)))
		die_conn("setsockopt(SO_RCVBUF)", c);
	if (opt.sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opt.sndbuf, sizeof(opt.sndbuf)))
		die_conn("setsockopt(SO_SNDBUF)", c);
	return fd;
}

/*
 * One write of up to `max` bytes at c->sent with a randomly chosen call; the
 * vector calls split the chunk into 1..4 iovecs. Returns bytes written or -1
 * (EAGAIN; EINTR is retried, so -1 really means the socket is full).
 */
static ssize_t do_write(struct conn *c, size_t max)
{
	uint64_t left = opt.bytes - c->sent;
	size_t len = rng_size(c, max);
	if (len > left)
		len = (size_t)left;
	stream_fill(c->k, c->sent, wbuf, len);

	struct iovec iov[4];
	int niov = 1 + (int)(rng_next(&c->rng) % 4);
	if ((size_t)niov > len)
		niov = (int)len;
	size_t pos = 0;
	for (int i = 0; i < niov; i++) {
		size_t rest = len - pos, keep = (size_t)(niov - 1 - i);	/* >=1 byte each */
		size_t sz = i == niov - 1 ? rest : 1 + (size_t)(rng_next(&c->rng) % (rest - keep));
		iov[i] = (struct iovec){ wbuf + pos, sz };
		pos += sz;
	}

	ssize_t n;
	const char *call;
again_w:
	switch (rng_next(&c->rng) % 5) {
	case 0: call = "write"; n = write(c->fd, wbuf, len); break;
	case 1: call = "send"; n = send(c->fd, wbuf, len, MSG_NOSIGNAL); break;
	case 2: call = "sendto"; n = sendto(c->fd, wbuf, len, MSG_NOSIGNAL, NULL, 0); break;
	case 3: {
		call = "sendmsg";
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		break;
	}
	default: call = "writev"; n = writev(c->fd, iov, niov); break;
	}
	if (n < 0) {
		if (errno == EINTR)
			goto again_w;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			tot_eagain++;
			return -1;
		}
		die_conn(call, c);
	}
	if (n == 0 || (size_t)n > len)
		fail_conn(c, "write returned 0 or more than asked");
	c->sent += (uint64_t)n;
	c->writes++;
	tot_writes++;
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
	return n;
}

/* Verifies and hashes n received bytes at c->rcvd. */
static void take_bytes(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->rcvd + n > opt.bytes)
		fail_conn(c, "received more bytes than were sent");
	if (c->rcvd + n > c->sent)
		fail_conn(c, "received bytes that were not sent yet");
	stream_fill(c->k, c->rcvd, ebuf, n);
	if (memcmp(p, ebuf, n)) {
		size_t i = 0;
		while (p[i] == ebuf[i])
			i++;
		fprintf(stderr,
			"echo_client: MISMATCH conn %d offset %" PRIu64 ": got 0x%02x want 0x%02x\n",
			c->k, c->rcvd + i, p[i], ebuf[i]);
		exit(1);
	}
	c->fnv = fnv_update(c->fnv, p, n);
	c->rcvd += n;
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

/*
 * One read of up to `max` bytes with a randomly chosen call. Returns bytes,
 * 0 at EOF (checked: only after our half-close and with all bytes back), or
 * -1 (EAGAIN).
 */
static ssize_t do_read(struct conn *c, size_t max)
{
	size_t len = rng_size(c, max);
	ssize_t n;
	const char *call;
again_r:
	switch (rng_next(&c->rng) % 5) {
	case 0: call = "read"; n = read(c->fd, rbuf, len); break;
	case 1: call = "recv"; n = recv(c->fd, rbuf, len, 0); break;
	case 2: call = "recvfrom"; n = recvfrom(c->fd, rbuf, len, 0, NULL, NULL); break;
	case 3: {
		call = "recvmsg";
		struct iovec iov[2] = { { rbuf, len / 2 }, { rbuf + len / 2, len - len / 2 } };
		struct msghdr m = { .msg_iov = len > 1 ? iov : iov + 1, .msg_iovlen = len > 1 ? 2 : 1,
				    .msg_flags = MSG_TRUNC };
		n = recvmsg(c->fd, &m, 0);
		if (n >= 0 && (m.msg_flags & MSG_TRUNC))
			fail_conn(c, "recvmsg left MSG_TRUNC in msg_flags");
		break;
	}
	default: {
		call = "readv";
		size_t a = len / 3, b = len / 3;
		struct iovec iov[3] = { { rbuf, a }, { rbuf + a, b }, { rbuf + a + b, len - a - b } };
		n = readv(c->fd, iov, 3);	/* zero-length iovecs are legal */
		break;
	}
	}
	if (n < 0) {
		if (errno == EINTR)
			goto again_r;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		die_conn(call, c);
	}
	if ((size_t)n > len)
		fail_conn(c, "read returned more than asked");
	c->reads++;
	tot_reads++;
	if (n == 0) {
		if (!c->shut_wr)
			fail_conn(c, "EOF before we half-closed");
		if (c->rcvd != opt.bytes)
			fail_conn(c, "EOF before all bytes came back");
		c->eof = true;
		atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
		return 0;
	}
	take_bytes(c, rbuf, (size_t)n);
	return n;
}

static void maybe_half_close(struct conn *c)
{
	if (c->shut_wr || c->sent != opt.bytes)
		return;
	if (shutdown(c->fd, SHUT_WR))
		die_conn("shutdown(SHUT_WR)", c);
	c->shut_wr = true;
}

static void conn_init(struct conn *c, int k)
{
	memset(c, 0, sizeof(*c));
	c->k = k;
	c->fd = -1;
	c->fnv = FNV_OFFSET;
	c->rng = mix64(opt.seed * 31 + (uint64_t)k) | 1;
}

/* ---- nonblocking stream mode ------------------------------------------- */

/* Nonblocking connect finished (socket writable): did it succeed? */
static void finish_connect(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el))
		die_conn("getsockopt(SO_ERROR)", c);
	if (err) {
		errno = err;
		die_conn("connect (SO_ERROR)", c);
	}
	check_peer(c);
	c->st = ST_OPEN;
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

static void conn_done(struct conn *c, int epfd, long *done)
{
	/* Even fds leave epoll explicitly, odd ones by close(). */
	if (epfd >= 0 && !(c->fd & 1) && epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL))
		die_conn("epoll_ctl(DEL)", c);
	tcp_account(c->fd);
	if (close(c->fd))
		die_conn("close", c);
	c->st = ST_DONE;
	(*done)++;
}

/*
 * Edge-triggered: keep going until both directions said EAGAIN (or are
 * finished), since no new edge comes for state that already existed.
 */
static void et_service(struct conn *c, int epfd, long *done)
{
	if (c->st == ST_CONNECTING)
		finish_connect(c);
	for (;;) {
		bool moved = false;
		while (c->sent < opt.bytes && do_write(c, opt.max_msg) > 0)
			moved = true;
		maybe_half_close(c);
		ssize_t r;
		while (!c->eof && (r = do_read(c, opt.max_msg)) > 0)
			moved = true;
		if (c->eof) {
			conn_done(c, epfd, done);
			return;
		}
		if (!moved)
			return;
	}
}

/* Level-triggered: one write and one read per readiness report. */
static void lt_service(struct conn *c, bool readable, bool writable, int epfd, long *done)
{
	if (c->st == ST_CONNECTING) {
		if (!writable && !readable)
			return;
		finish_connect(c);
	}
	if (writable && c->sent < opt.bytes)
		do_write(c, opt.max_msg);
	maybe_half_close(c);
	if (readable && !c->eof)
		do_read(c, opt.max_msg);
	if (c->eof)
		conn_done(c, epfd, done);
}

static uint32_t lt_interest(const struct conn *c)
{
	if (c->st == ST_CONNECTING)
		return EPOLLOUT;
	uint32_t ev = EPOLLIN | EPOLLRDHUP;
	if (c->sent < opt.bytes)
		ev |= EPOLLOUT;
	return ev;
}

static void run_stream(void)
{
	long n = opt.conns, done = 0;
	wd_grace = 5;
	start_watchdog();
	struct conn *cs = calloc((size_t)n, sizeof(*cs));
	if (!cs)
		die("calloc");
	int epfd = -1;
	if (opt.mode != MODE_POLL && (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");

	for (long k = 0; k < n; k++) {
		struct conn *c = &cs[k];
		conn_init(c, (int)k);
		c->fd = new_socket(c, true);
		c->st = ST_CONNECTING;
		int r = connect(c->fd, (struct sockaddr *)&target, target_len);
		if (r && errno != EINPROGRESS)
			die_conn("connect", c);
		if (epfd >= 0) {
			struct epoll_event e = { .data.ptr = c };
			if (opt.mode == MODE_ET)
				e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;	/* once, like gRPC */
			else
				e.events = c->interest = lt_interest(c);
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e))
				die_conn("epoll_ctl(ADD)", c);
		}
		/*
		 * Loopback connect may succeed at once; then the socket is
		 * writable and the first edge reports it all the same.
		 */
	}

	struct epoll_event evs[64];
	struct pollfd *pfds = calloc((size_t)n, sizeof(*pfds));
	struct conn **who = calloc((size_t)n, sizeof(*who));
	if (!pfds || !who)
		die("calloc");
	uint64_t last_ns = now_ns();
	unsigned long last_progress = atomic_load(&progress);

	while (done < n) {
		if (opt.mode == MODE_POLL) {
			nfds_t k = 0;
			for (long i = 0; i < n; i++) {
				struct conn *c = &cs[i];
				if (c->st == ST_DONE)
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
			int r = poll(pfds, k, 1000);
			if (r < 0 && errno != EINTR)
				die("poll");
			for (nfds_t i = 0; i < k && r > 0; i++) {
				short re = pfds[i].revents;
				if (!re)
					continue;
				r--;
				if (re & POLLNVAL)
					fail_conn(who[i], "poll: POLLNVAL");
				lt_service(who[i], re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR),
					   re & (POLLOUT | POLLHUP | POLLERR), -1, &done);
			}
		} else {
			int r = epoll_wait(epfd, evs, 64, 1000);
			if (r < 0 && errno != EINTR)
				die("epoll_wait");
			for (int i = 0; i < r; i++) {
				struct conn *c = evs[i].data.ptr;
				if (c->st == ST_DONE)
					fail_conn(c, "epoll_wait reported a closed connection");
				if (opt.mode == MODE_ET) {
					et_service(c, epfd, &done);
					continue;
				}
				uint32_t e = evs[i].events;
				lt_service(c, e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR),
					   e & (EPOLLOUT | EPOLLHUP | EPOLLERR), epfd, &done);
				if (c->st == ST_DONE)
					continue;
				uint32_t want = lt_interest(c);
				if (want != c->interest) {
					struct epoll_event ee = { .events = want, .data.ptr = c };
					if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ee))
						die_conn("epoll_ctl(MOD)", c);
					c->interest = want;
				}
			}
		}
		uint64_t t = now_ns();
		unsigned long p = atomic_load(&progress);
		if (p != last_progress) {
			last_progress = p;
			last_ns = t;
		} else if (t - last_ns >= (uint64_t)opt.stall_secs * 1000000000ULL) {
			stall_report(cs, n, t - last_ns);
		}
	}

	uint64_t h = FNV_OFFSET, total = 0;
	for (long k = 0; k < n; k++) {
		uint8_t le[8];
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(cs[k].fnv >> (8 * i));
		h = fnv_update(h, le, 8);
		total += cs[k].rcvd;
	}
	sum_fnv = h;
	sum_bytes = total;
	free(pfds);
	free(who);
	free(cs);
	if (epfd >= 0 && close(epfd))
		die("close(epoll)");
}

/* ---- blocking stream mode ---------------------------------------------- */

/* volatile: hides the bound from the compiler (see run_blocking) */
static volatile size_t chunk_cap = 4096;

/*
 * Blocking: write one chunk completely, then read exactly its echo back,
 * so neither side's buffers can fill up and deadlock.
 */
static void run_blocking(void)
{
	long n = opt.conns;
	uint64_t h = FNV_OFFSET, total = 0;
	start_watchdog();
	for (long k = 0; k < n; k++) {
		struct conn cc, *c = &cc;
		conn_init(c, (int)k);
		atomic_store(&wd_conn, k);
		c->fd = new_socket(c, false);
		if (connect(c->fd, (struct sockaddr *)&target, target_len))
			die_conn("connect", c);	/* no signal handlers, so no EINTR */
		check_peer(c);
		c->st = ST_OPEN;
		while (c->sent < opt.bytes) {
			uint64_t start = c->sent;
			/*
			 * Write-then-read is only deadlock free while a chunk fits
			 * in the socket buffers on the way: cap it at 64 KiB.
			 */
			ssize_t w = do_write(c, opt.max_msg < 65536 ? opt.max_msg : 65536);
			if (w < 0)
				fail_conn(c, "blocking write returned EAGAIN");
			while (c->rcvd < start + (uint64_t)w) {
				/*
				 * A fixed-size stack buffer and a length the compiler
				 * cannot bound: with _FORTIFY_SOURCE this read becomes
				 * __read_chk, which the shim must cover too.
				 */
				uint8_t buf[4096];
				uint64_t want = start + (uint64_t)w - c->rcvd;
				size_t cap = chunk_cap;
				ssize_t r = read(c->fd, buf, want < cap ? want : cap);
				if (r < 0) {
					if (errno == EINTR)
						continue;
					die_conn("read", c);
				}
				if (r == 0)
					fail_conn(c, "EOF before all bytes came back");
				c->reads++;
				tot_reads++;
				take_bytes(c, buf, (size_t)r);
			}
			atomic_store(&wd_sent, c->sent);
			atomic_store(&wd_rcvd, c->rcvd);
		}
		maybe_half_close(c);
		/* Blocking: only 0 (EOF) can come; any byte here is an extra one. */
		if (do_read(c, opt.max_msg) != 0)
			fail_conn(c, "blocking read returned EAGAIN");
		tcp_account(c->fd);
		if (close(c->fd))
			die_conn("close", c);
		uint8_t le[8];
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(c->fnv >> (8 * i));
		h = fnv_update(h, le, 8);
		total += c->rcvd;
	}
	sum_fnv = h;
	sum_bytes = total;
}

/* ---- round-trip mode --------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void write_all(struct conn *c, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(c->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die_conn("write", c);
		}
		p += w;
		n -= (size_t)w;
	}
}

static void read_all(struct conn *c, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(c->fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_conn("read", c);
		}
		if (r == 0)
			fail_conn(c, "EOF in the middle of a round trip");
		p += r;
		n -= (size_t)r;
	}
}

static void run_rtt(void)
{
	struct conn cc, *c = &cc;
	conn_init(c, 0);
	size_t sz = (size_t)opt.size;
	uint8_t *out = malloc(sz), *in = malloc(sz);
	uint64_t *lat = malloc((size_t)opt.rtt * sizeof(*lat));
	if (!out || !in || !lat)
		die("malloc");
	start_watchdog();
	atomic_store(&wd_conn, 0);
	c->fd = new_socket(c, false);
	if (connect(c->fd, (struct sockaddr *)&target, target_len))
		die_conn("connect", c);	/* no signal handlers, so no EINTR */
	check_peer(c);

	long total = opt.warmup + opt.rtt;
	for (long i = 0; i < total; i++) {
		long think = opt.slow_every && i % opt.slow_every == 0 ? opt.slow_us : opt.think_us;

		/* Busy, not asleep: a peer that is working, not one that waits. */
		for (uint64_t until = now_ns() + (uint64_t)think * 1000u; think && now_ns() < until;)
			;
		/* New content each round, so a stale or replayed echo is caught. */
		stream_fill(0, (uint64_t)i * sz, out, sz);
		uint64_t t0 = now_ns();
		write_all(c, out, sz);
		read_all(c, in, sz);
		uint64_t t1 = now_ns();
		if (memcmp(in, out, sz))
			fail_conn(c, "round trip echoed different bytes");
		if (i >= opt.warmup)
			lat[i - opt.warmup] = t1 - t0;
		c->sent += sz;
		c->rcvd += sz;
		atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
	}
	if (shutdown(c->fd, SHUT_WR))
		die_conn("shutdown(SHUT_WR)", c);
	for (;;) {
		ssize_t r = read(c->fd, in, sz);
		if (r == 0)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_conn("read", c);
		fail_conn(c, "extra bytes after the last round trip");
	}
	if (close(c->fd))
		die_conn("close", c);

	qsort(lat, (size_t)opt.rtt, sizeof(*lat), cmp_u64);
	size_t nn = (size_t)opt.rtt;
	double p50 = (double)lat[(nn - 1) * 50 / 100] / 1e3;
	double p99 = (double)lat[(nn - 1) * 99 / 100] / 1e3;
	double sum = 0;
	for (size_t i = 0; i < nn; i++)
		sum += (double)lat[i];
	printf("rtt: %zu round trips of %zu bytes: min %.2f us, p50 %.2f us, p99 %.2f us, "
	       "max %.2f us, mean %.2f us\n",
	       nn, sz, (double)lat[0] / 1e3, p50, p99, (double)lat[nn - 1] / 1e3, sum / (double)nn / 1e3);
	printf("RTT size=%zu n=%zu p50_us=%.2f p99_us=%.2f\n", sz, nn, p50, p99);
	free(out);
	free(in);
	free(lat);
}

static void run_churn(void)
{
	struct conn cc, *c = &cc;
	size_t sz = (size_t)opt.size, nn = (size_t)opt.churn;
	uint8_t *out = malloc(sz), *in = malloc(sz);
	uint64_t *lat = malloc(nn * sizeof(*lat)), *rep = malloc(nn * sizeof(*rep)), start = 0;
	long total = opt.warmup + opt.churn;

	if (!out || !in || !lat || !rep)
		die("malloc");
	conn_init(c, 0);
	start_watchdog();
	atomic_store(&wd_conn, 0);
	for (long i = 0; i < total; i++) {
		if (i == opt.warmup)
			start = now_ns();
		stream_fill(0, (uint64_t)i * sz, out, sz);
		uint64_t t0 = now_ns();
		c->fd = new_socket(c, false);
		if (connect(c->fd, (struct sockaddr *)&target, target_len))
			die_conn("connect", c);
		c->sent = c->rcvd = 0;
		write_all(c, out, sz);
		read_all(c, in, sz);
		uint64_t t1 = now_ns();
		if (memcmp(in, out, sz))
			fail_conn(c, "round trip echoed different bytes");
		if (close(c->fd))
			die_conn("close", c);
		uint64_t t2 = now_ns();
		if (i >= opt.warmup) {
			lat[i - opt.warmup] = t2 - t0;
			rep[i - opt.warmup] = t1 - t0;
		}
		atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
	}
	double secs = (double)(now_ns() - start) / 1e9;

	qsort(lat, nn, sizeof(*lat), cmp_u64);
	qsort(rep, nn, sizeof(*rep), cmp_u64);
	printf("churn: %zu requests of %zu bytes, each on a new connection: p50 %.2f us, p99 %.2f "
	       "us (connect to reply p50 %.2f us), %.0f a second\n",
	       nn, sz, (double)lat[(nn - 1) / 2] / 1e3, (double)lat[(nn - 1) * 99 / 100] / 1e3,
	       (double)rep[(nn - 1) / 2] / 1e3, (double)nn / secs);
	printf("CHURN size=%zu n=%zu p50_us=%.2f p99_us=%.2f reply_p50_us=%.2f per_s=%.0f\n", sz, nn,
	       (double)lat[(nn - 1) / 2] / 1e3, (double)lat[(nn - 1) * 99 / 100] / 1e3,
	       (double)rep[(nn - 1) / 2] / 1e3, (double)nn / secs);
	free(out);
	free(in);
	free(lat);
	free(rep);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'h' },
		{ "mode", required_argument, NULL, 'm' },
		{ "conns", required_argument, NULL, 'c' },
		{ "bytes-per-conn", required_argument, NULL, 'b' },
		{ "max-msg", required_argument, NULL, 'M' },
		{ "seed", required_argument, NULL, 's' },
		{ "blocking", no_argument, NULL, 'B' },
		{ "min-writes", required_argument, NULL, 'w' },
		{ "rcvbuf", required_argument, NULL, 'R' },
		{ "sndbuf", required_argument, NULL, 'S' },
		{ "stall-secs", required_argument, NULL, 't' },
		{ "rtt", required_argument, NULL, 'r' },
		{ "churn", required_argument, NULL, 'N' },
		{ "size", required_argument, NULL, 'z' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "think-us", required_argument, NULL, 'T' },
		{ "slow-every", required_argument, NULL, 'K' },
		{ "slow-us", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': opt.port = (int)parse_num(optarg, "port", 0, 65535); break;
		case 'h': opt.host = optarg; break;
		case 'm':
			if (!strcmp(optarg, "et"))
				opt.mode = MODE_ET;
			else if (!strcmp(optarg, "lt"))
				opt.mode = MODE_LT;
			else if (!strcmp(optarg, "poll"))
				opt.mode = MODE_POLL;
			else
				usage();
			break;
		case 'c': opt.conns = (long)parse_num(optarg, "conns", 1, 100000); break;
		case 'b': opt.bytes = (uint64_t)parse_num(optarg, "bytes-per-conn", 0, 1LL << 40); break;
		case 'M': opt.max_msg = (size_t)parse_num(optarg, "max-msg", 1, 1 << 20); break;
		case 's': opt.seed = (uint64_t)parse_num(optarg, "seed", 0, INT64_MAX); break;
		case 'B': opt.blocking = true; break;
		case 'w': opt.min_writes = (long)parse_num(optarg, "min-writes", 0, INT64_MAX); break;
		case 'R': opt.rcvbuf = (int)parse_num(optarg, "rcvbuf", 1, 1 << 30); break;
		case 'S': opt.sndbuf = (int)parse_num(optarg, "sndbuf", 1, 1 << 30); break;
		case 't': opt.stall_secs = (long)parse_num(optarg, "stall-secs", 1, 3600); break;
		case 'r': opt.rtt = (long)parse_num(optarg, "rtt", 1, 100000000); break;
		case 'N': opt.churn = (long)parse_num(optarg, "churn", 1, 100000000); break;
		case 'z': opt.size = (long)parse_num(optarg, "size", 1, 1 << 30); break;
		case 'W': opt.warmup = (long)parse_num(optarg, "warmup", 0, 100000000); break;
		case 'T': opt.think_us = (long)parse_num(optarg, "think-us", 0, 10000000); break;
		case 'K': opt.slow_every = (long)parse_num(optarg, "slow-every", 1, 100000000); break;
		case 'U': opt.slow_us = (long)parse_num(optarg, "slow-us", 0, 10000000); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port < 0 || (opt.rtt && opt.churn) ||
	    ((opt.rtt || opt.churn) && !opt.size) || (opt.size && !opt.rtt && !opt.churn) ||
	    (!opt.slow_every != !opt.slow_us) || ((opt.think_us || opt.slow_every) && !opt.rtt))
		usage();
	/* Port 0 only names nothing for TCP; a Unix socket has no port. */
	if (!opt.port && strncmp(opt.host, "unix:", 5)) {
		fprintf(stderr, "echo_client: bad port '0' (want 1..65535)\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	resolve_target();
	/* A server that vanishes must show up as EPIPE with a message, not SIGPIPE. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal(SIGPIPE)");
	if (opt.rtt) {
		run_rtt();
		return 0;
	}
	if (opt.churn) {
		run_churn();
		return 0;
	}
	wbuf = malloc(opt.max_msg);
	rbuf = malloc(opt.max_msg);
	ebuf = malloc(opt.max_msg > 4096 ? opt.max_msg : 4096);
	if (!wbuf || !rbuf || !ebuf)
		die("malloc");
	if (opt.blocking)
		run_blocking();
	else
		run_stream();
	free(wbuf);
	free(rbuf);
	free(ebuf);
	if (tot_writes < (unsigned long)opt.min_writes) {
		fprintf(stderr, "echo_client: only %lu writes, --min-writes %ld\n", tot_writes,
			opt.min_writes);
		return 1;
	}
	printf("OK conns=%ld bytes=%" PRIu64 " fnv=%016" PRIx64 "\n", opt.conns, sum_bytes, sum_fnv);
	printf("stats writes=%lu reads=%lu write_eagain=%lu\n", tot_writes, tot_reads, tot_eagain);
	printf("tcp bytes_acked=%" PRIu64 " bytes_received=%" PRIu64 "\n", tcp_acked, tcp_received);
	if (fflush(stdout))
		die("fflush(stdout)");
	return 0;
}
