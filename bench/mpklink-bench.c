/* SPDX-License-Identifier: MIT */
/*
 * mpklink-bench: measurements of mpklink against what it replaces.
 *
 * A table of subcommands in the style of wireguard-tools' wg: each one is
 * `static int NAME_main(int argc, char **argv)`, gets argv[0] == its own
 * name, parses its own options, and returns the process exit status
 * (0 done, 1 a measurement failed, 2 usage). To add one (echo, grpc,
 * compare), write its _main and add a row to `subcommands` below.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpklink/ring.h"
#include "subcommands.h"
#include "util.h"

#define PROG "mpklink-bench"

/* ================================================================ transport */

#define TPROG PROG " transport"

#define MSG_BYTES   64u
#define CHUNK_BYTES 65536u
#define CHUNK_WORDS (CHUNK_BYTES / 8u)

/* Defaults. The full run must stay under a minute on a 2-CPU VM, --quick
 * under 15 s; --seconds caps the slow (kernel) transports' ping-pong so a
 * slow machine makes fewer samples rather than a longer run. */
#define FULL_ITERS        200000u
#define FULL_SECONDS      10.0
#define FULL_STREAM_MIB   1024u
#define QUICK_ITERS       50000u
#define QUICK_SECONDS     2.0
#define QUICK_STREAM_MIB  256u
#define STREAM_WARM_MIB   16u
#define MAX_ITERS         20000000u
#define MAX_SECONDS       3600.0
/* Slack on top of the ping-pong budget for everything else one transport
 * does (warm-up, 1 GiB streamed, teardown) before we call it hung. */
#define DEADLINE_SLACK_S  60u

enum tkind { T_PIPE, T_UNIX, T_TCP, T_MPKLINK, T_MAC, T_FLOOR, T_COPY, T_COUNT };

static const struct tdesc {
	const char *name;
	int streams; /* measured for 64 KiB streaming */
	const char *help;
} tdescs[T_COUNT] = {
	[T_PIPE] = {"pipe", 1, "two pipes, one per direction; blocking read/write"},
	[T_UNIX] = {"unix", 1, "socketpair(AF_UNIX, SOCK_STREAM); blocking read/write"},
	[T_TCP] = {"tcp", 1, "loopback TCP on 127.0.0.1, ephemeral port, TCP_NODELAY"},
	[T_MPKLINK] = {"mpklink", 1,
		       "a link from mpk_link_create (default rings), side 0 in one\n"
		       "           process and side 1 in the other; both spin on EAGAIN with\n"
		       "           a pause (no doorbells): the data path busy-polling aims at"},
	[T_MAC] = {"mpklink-mac", 1,
		   "as mpklink, with MPKLINK_INTEGRITY=mac: every frame (at most\n"
		   "           16 KiB) carries a Poly1305 tag the reader checks\n"
		   "           before delivering it: the cost of integrity"},
	[T_FLOOR] = {"floor", 0,
		     "two counters on separate cache lines of a shared mapping,\n"
		     "           each side spinning until the other's advances: the cost of\n"
		     "           moving a cache line between the two CPUs (no streaming)"},
	[T_COPY] = {"copy", 1,
		    "64 KiB chunks copied in with memcpy by one process and out by\n"
		    "           the other, through a shared buffer as large as a default\n"
		    "           ring: what streaming through shared memory can reach here\n"
		    "           (no round trips)"},
};

struct tconfig {
	uint64_t iters;       /* timed round trips, at most */
	uint64_t warmup;      /* untimed round trips first, at most */
	double seconds;       /* ping-pong time cap per transport */
	uint64_t warm_chunks; /* streamed untimed first */
	uint64_t chunks;      /* streamed and timed */
	unsigned only;        /* bit per enum tkind */
	const char *csv;
	int cpu[2];           /* parent's, child's; -1: not pinned */
};

struct tresult {
	int measured;
	uint64_t n;             /* timed round trips */
	uint64_t p50_ns, p99_ns;
	double mbps;            /* 10^6 bytes per second; 0 if not streamed */
	long preempted;         /* involuntary context switches, both sides */
	int with;               /* measured in turns with this kind, or -1 */
};

/* ------------------------------------------------------------ wire formats */

/* Ping-pong message: every byte depends on the round trip's number, and
 * the reply transforms the request, so neither a stale message nor our
 * own bytes read back can pass for the peer's answer. */
struct msg {
	uint64_t seq;
	uint64_t op;
	uint64_t fill[6];
};
_Static_assert(sizeof(struct msg) == MSG_BYTES, "64-byte message");

#define OP_PING UINT64_C(0x474e4950) /* "PING" */
#define OP_PONG UINT64_C(0x474e4f50) /* "PONG" */
#define OP_STOP UINT64_C(0x504f5453) /* "STOP" */
#define OP_SWITCH UINT64_C(0x48435753) /* "SWCH" */
#define FILL_K  UINT64_C(0x9e3779b97f4a7c15)

static void msg_ping(struct msg *m, uint64_t seq)
{
	m->seq = seq;
	m->op = OP_PING;
	for (unsigned j = 0; j < 6; j++)
		m->fill[j] = seq * FILL_K + j;
}

static int msg_is_ping(const struct msg *m, uint64_t seq)
{
	uint64_t bad = (m->seq ^ seq) | (m->op ^ OP_PING);

	for (unsigned j = 0; j < 6; j++)
		bad |= m->fill[j] ^ (seq * FILL_K + j);
	return !bad;
}

static void msg_pong(struct msg *reply, const struct msg *req)
{
	reply->seq = req->seq;
	reply->op = OP_PONG;
	for (unsigned j = 0; j < 6; j++)
		reply->fill[j] = ~req->fill[j];
}

static int msg_is_pong(const struct msg *m, uint64_t seq)
{
	uint64_t bad = (m->seq ^ seq) | (m->op ^ OP_PONG);

	for (unsigned j = 0; j < 6; j++)
		bad |= m->fill[j] ^ ~(seq * FILL_K + j);
	return !bad;
}

/*
 * Stream content: 64-bit word w of the stream (byte offset 8w) holds
 * w * STREAM_K + STREAM_C, so a lost, repeated, reordered or shifted byte
 * anywhere shows. Linear in w so that filling and checking are one add
 * per word and vectorise: the check must not become the bottleneck it
 * is supposed to watch.
 */
#define STREAM_K UINT64_C(0xd6e8feb86659fd93)
#define STREAM_C UINT64_C(0x6d706b6c696e6b21)

static void chunk_fill(uint64_t *w, uint64_t chunk, uint64_t *sum)
{
	uint64_t v = chunk * CHUNK_WORDS * STREAM_K + STREAM_C, s = 0;

	for (unsigned j = 0; j < CHUNK_WORDS; j++) {
		w[j] = v;
		s += v;
		v += STREAM_K;
	}
	*sum += s;
}

/* Returns the index of the first wrong word, or -1. */
static long chunk_check(const uint64_t *w, uint64_t chunk, uint64_t *sum)
{
	uint64_t v0 = chunk * CHUNK_WORDS * STREAM_K + STREAM_C, v = v0, s = 0, bad = 0;

	for (unsigned j = 0; j < CHUNK_WORDS; j++) {
		bad |= w[j] ^ v;
		s += w[j];
		v += STREAM_K;
	}
	*sum += s;
	if (!bad)
		return -1;
	for (unsigned j = 0; j < CHUNK_WORDS; j++, v0 += STREAM_K)
		if (w[j] != v0)
			return (long)j;
	return -1;
}

static uint64_t chunk_word(uint64_t chunk, long j)
{
	return (chunk * CHUNK_WORDS + (uint64_t)j) * STREAM_K + STREAM_C;
}

/* Sent by the reader when it has everything: the writer compares it with
 * what it sent, so both ends agree on every byte, not only the reader. */
struct stream_ack {
	uint64_t bytes;
	uint64_t sum;
};

/* The floor's shared page. Each counter has a cache line to itself, as
 * the ring indices in link_abi.h do. */
struct floor_shm {
	_Alignas(64) uint64_t ping; /* written by the parent */
	_Alignas(64) uint64_t pong; /* written by the child */
};
#define FLOOR_STOP UINT64_MAX

/* -------------------------------------------------------------- channels */

/* Both ends of one transport, made before fork so each process inherits
 * its end; after fork each closes the other's. */
struct channel {
	int fd[2][2];          /* [side][0 read, 1 write]; may be the same fd */
	int memfd;             /* mpklink */
	struct floor_shm *floor;
};

static void channel_init(struct channel *ch)
{
	ch->fd[0][0] = ch->fd[0][1] = ch->fd[1][0] = ch->fd[1][1] = -1;
	ch->memfd = -1;
	ch->floor = NULL;
}

static void channel_drop_side(struct channel *ch, int side)
{
	if (ch->fd[side][0] >= 0)
		close(ch->fd[side][0]);
	if (ch->fd[side][1] >= 0 && ch->fd[side][1] != ch->fd[side][0])
		close(ch->fd[side][1]);
	ch->fd[side][0] = ch->fd[side][1] = -1;
}

static void channel_close(struct channel *ch)
{
	channel_drop_side(ch, 0);
	channel_drop_side(ch, 1);
	if (ch->memfd >= 0)
		close(ch->memfd);
	ch->memfd = -1;
	if (ch->floor)
		munmap(ch->floor, sizeof(*ch->floor));
	ch->floor = NULL;
}

static int set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

/* A real loopback connection, accepted: *srv and *cli are its two ends. */
static int tcp_pair(int *srv, int *cli)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int lfd, c = -1, s = -1, r;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		goto fail_errno;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		goto fail_errno;
	/* Completes against the backlog; accept comes after. */
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail_errno;
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fail_errno;
	r = set_nodelay(s);
	if (r < 0)
		goto fail;
	r = set_nodelay(c);
	if (r < 0)
		goto fail;
	close(lfd);
	*srv = s;
	*cli = c;
	return 0;

fail_errno:
	r = -errno;
fail:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	close(lfd);
	return r;
}

static int channel_map_floor(struct channel *ch)
{
	void *m = mmap(NULL, sizeof(*ch->floor), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -errno;
	ch->floor = m;
	return 0;
}

static int channel_open(enum tkind k, struct channel *ch)
{
	int p[2][2], sv[2], r;

	channel_init(ch);
	switch (k) {
	case T_PIPE:
		if (pipe2(p[0], O_CLOEXEC) < 0)
			return -errno;
		if (pipe2(p[1], O_CLOEXEC) < 0) {
			r = -errno;
			close(p[0][0]);
			close(p[0][1]);
			return r;
		}
		/* p[0] carries side 0 -> side 1, p[1] the other way. */
		ch->fd[0][0] = p[1][0];
		ch->fd[0][1] = p[0][1];
		ch->fd[1][0] = p[0][0];
		ch->fd[1][1] = p[1][1];
		return 0;
	case T_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		ch->fd[0][0] = ch->fd[0][1] = sv[0];
		ch->fd[1][0] = ch->fd[1][1] = sv[1];
		return 0;
	case T_TCP:
		r = tcp_pair(&sv[0], &sv[1]);
		if (r < 0)
			return r;
		ch->fd[0][0] = ch->fd[0][1] = sv[0];
		ch->fd[1][0] = ch->fd[1][1] = sv[1];
		return 0;
	case T_MPKLINK:
	case T_MAC:
		r = mpk_link_create_flags(0, k == T_MAC ? MPK_LINK_MAC : 0);
		if (r < 0)
			return r;
		ch->memfd = r;
		return 0;
	case T_FLOOR:
		return channel_map_floor(ch);
	case T_COPY: /* measure_copy maps its own */
	case T_COUNT:
		break;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------- endpoints */

/* Both processes run on one CPU (set once, before any fork). */
static int cfg_one_cpu;

/* One process's end, and everything it needs to fail usefully. */
struct endpoint {
	enum tkind kind;
	int rfd, wfd;            /* owned by the channel */
	struct mpk_link *link;
	struct floor_shm *floor; /* owned by the channel */
	struct bench_spin spin;
	char who[48];            /* message prefix: "mpklink", "tcp (child)" */
};

static void ep_fail(const struct endpoint *ep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ep_fail(const struct endpoint *ep, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write: parent and child may both be failing at once, and
	 * stderr is unbuffered. */
	fprintf(stderr, TPROG ": %s: %s\n", ep->who, msg);
}

static void ep_name(struct endpoint *ep, enum tkind k, int side)
{
	snprintf(ep->who, sizeof(ep->who), "%s%s", tdescs[k].name, side ? " (child)" : "");
}

static int ep_open(struct endpoint *ep, enum tkind k, struct channel *ch, int side,
		   struct bench_child *watch, uint64_t deadline_ns)
{
	int r;

	memset(ep, 0, sizeof(*ep));
	ep->kind = k;
	ep->rfd = ch->fd[side][0];
	ep->wfd = ch->fd[side][1];
	ep->floor = ch->floor;
	ep->spin.deadline_ns = deadline_ns;
	ep->spin.watch = watch;
	ep->spin.yield = cfg_one_cpu;
	ep_name(ep, k, side);
	if (k != T_MPKLINK && k != T_MAC)
		return 0;
	r = mpk_link_attach(ch->memfd, side, &ep->link);
	if (r < 0) {
		ep_fail(ep, "mpk_link_attach(side %d): %s", side, strerror(-r));
		return r;
	}
	if (k == T_MAC) {
		/* Any key: both sides hold the same one, as after a handshake. */
		static const uint8_t key[MPK_LINK_MAC_KEY_BYTES] = {0x6d, 0x61, 0x63};

		r = mpk_link_set_mac(ep->link, key);
		if (r < 0) {
			ep_fail(ep, "mpk_link_set_mac: %s", strerror(-r));
			return r;
		}
	}
	/* Both sides are mapped now (the child attaches from its inherited
	 * copy), and nothing else should hold the memory. */
	close(ch->memfd);
	ch->memfd = -1;
	return 0;
}

static void ep_close(struct endpoint *ep)
{
	if (ep->link) {
		mpk_link_close(ep->link);
		mpk_link_detach(ep->link);
		ep->link = NULL;
	}
}

static int ep_send(struct endpoint *ep, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	ssize_t r;
	int e;

	if (!ep->link)
		return bench_write_full(ep->wfd, buf, n);
	while (n) {
		r = mpk_link_write(ep->link, p, n);
		if (r == -EAGAIN) {
			e = bench_spin(&ep->spin);
			if (e < 0)
				return e;
			continue;
		}
		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int ep_recv(struct endpoint *ep, void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t r;
	int e;

	if (!ep->link)
		return bench_read_full(ep->rfd, buf, n);
	while (n) {
		r = mpk_link_read(ep->link, p, n);
		if (r == -EAGAIN) {
			e = bench_spin(&ep->spin);
			if (e < 0)
				return e;
			continue;
		}
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------ ping-pong */

/*
 * Two transports measured together (mpklink and floor) take turns in
 * blocks of PP_BLOCK round trips between the same two processes. The
 * hypervisor here moves vCPUs between host cores every few seconds, and
 * the cost of a cache line transfer changes with it (0.12 us or 0.40 us
 * round trips on the same VM): measured one after the other, the ratio
 * of the two would compare two different machines.
 */
#define PP_BLOCK      1000u
/* After each switch, untimed: the first round trips find the other
 * transport's lines cold, which is the switch's cost, not the transport's. */
#define PP_BLOCK_SKIP 16u

/* A control value for the floor's ping counter: "serve the other
 * transport now". Real round trips count up from 1 and never reach it. */
#define FLOOR_SWITCH (UINT64_MAX - 1)

enum pp_ctl { PP_SWITCH = 1, PP_STOP = 2 };

/* One transport's ping-pong, as the parent drives it. */
struct pp_lane {
	enum tkind kind;
	int floor;          /* counter ping-pong, not messages */
	uint64_t seq;       /* the next round trip's number */
	uint64_t *samples;  /* cfg->iters of them */
	uint64_t n;         /* recorded */
	uint64_t warm_done;
	uint64_t warm_end;  /* warm-up stops here at the latest */
	uint64_t timed_end; /* set when the timed phase starts */
	int timing;
	int done;
};

/* After each timed round trip: warm-up first, then record; 1 when this
 * lane has enough (iterations or time). */
static int pp_account(struct pp_lane *ln, const struct tconfig *cfg, uint64_t dt, uint64_t t1)
{
	if (!ln->timing) {
		if (++ln->warm_done >= cfg->warmup || t1 > ln->warm_end) {
			ln->timing = 1;
			ln->timed_end = t1 + (uint64_t)(cfg->seconds * 1e9);
		}
		return 0;
	}
	ln->samples[ln->n++] = dt;
	return ln->n >= cfg->iters || t1 > ln->timed_end;
}

/* One message round trip; *t0 and *t1 bracket it. */
static int rt_msg(struct endpoint *ep, uint64_t seq, uint64_t *t0, uint64_t *t1)
{
	struct msg m, reply;
	int r;

	msg_ping(&m, seq);
	*t0 = bench_now_ns();
	r = ep_send(ep, &m, sizeof(m));
	if (r < 0) {
		ep_fail(ep, "ping-pong: sending round trip %" PRIu64 ": %s", seq,
			bench_strerror(r));
		return r;
	}
	r = ep_recv(ep, &reply, sizeof(reply));
	*t1 = bench_now_ns();
	if (r < 0) {
		ep_fail(ep, "ping-pong: waiting for reply %" PRIu64 ": %s", seq, bench_strerror(r));
		return r;
	}
	if (!msg_is_pong(&reply, seq)) {
		ep_fail(ep, "ping-pong: reply %" PRIu64 " is corrupt (seq %" PRIu64 ", op %#" PRIx64 ")",
			seq, reply.seq, reply.op);
		return -EBADMSG;
	}
	return 0;
}

/* One counter round trip: the floor. */
static int rt_floor(struct endpoint *ep, uint64_t seq, uint64_t *t0, uint64_t *t1)
{
	struct floor_shm *f = ep->floor;
	uint64_t v;
	int r;

	*t0 = bench_now_ns();
	__atomic_store_n(&f->ping, seq, __ATOMIC_RELEASE);
	while ((v = __atomic_load_n(&f->pong, __ATOMIC_ACQUIRE)) != seq) {
		if (v != seq - 1) {
			ep_fail(ep, "round trip %" PRIu64 ": the child's counter reads %" PRIu64, seq,
				v);
			return -EBADMSG;
		}
		r = bench_spin(&ep->spin);
		if (r < 0) {
			ep_fail(ep, "waiting for round trip %" PRIu64 ": %s", seq, bench_strerror(r));
			return r;
		}
	}
	*t1 = bench_now_ns();
	return 0;
}

/* Tells the child, on this lane's transport, to switch lanes or stop. */
static int pp_send_ctl(struct endpoint *ep, const struct pp_lane *ln, enum pp_ctl ctl)
{
	struct msg m = {.seq = ln->seq, .op = ctl == PP_STOP ? OP_STOP : OP_SWITCH};
	int r;

	if (ln->floor) {
		__atomic_store_n(&ep->floor->ping, ctl == PP_STOP ? FLOOR_STOP : FLOOR_SWITCH,
				 __ATOMIC_RELEASE);
		return 0;
	}
	r = ep_send(ep, &m, sizeof(m));
	if (r < 0)
		ep_fail(ep, "ping-pong: sending %s: %s", ctl == PP_STOP ? "stop" : "switch",
			bench_strerror(r));
	return r;
}

/*
 * The parent's side: runs the lanes in turn, a block each, until every
 * lane has its samples; the child follows the switches.
 */
static int pingpong_client(struct endpoint *ep, struct pp_lane *lanes, int nlanes,
			   const struct tconfig *cfg)
{
	uint64_t start = bench_now_ns(), t0, t1;
	int cur = 0, next, r;

	for (int i = 0; i < nlanes; i++) {
		lanes[i].seq = lanes[i].floor ? 1 : 0;
		/* Warm-up gets a tenth of the budget on top, not out of it. */
		lanes[i].warm_end = start + (uint64_t)(cfg->seconds * 1e8);
	}
	for (;;) {
		struct pp_lane *ln = &lanes[cur];

		ep_name(ep, ln->kind, 0);
		for (unsigned b = 0; b < PP_BLOCK && !ln->done; b++, ln->seq++) {
			r = (ln->floor ? rt_floor : rt_msg)(ep, ln->seq, &t0, &t1);
			if (r < 0)
				return r;
			if (nlanes > 1 && b < PP_BLOCK_SKIP)
				continue;
			ln->done = pp_account(ln, cfg, t1 - t0, t1);
		}
		for (next = (cur + 1) % nlanes; next != cur && lanes[next].done;)
			next = (next + 1) % nlanes;
		if (lanes[next].done)
			return pp_send_ctl(ep, ln, PP_STOP);
		if (next != cur) {
			r = pp_send_ctl(ep, ln, PP_SWITCH);
			if (r < 0)
				return r;
			cur = next;
		}
	}
}

/* Serves message round trips from *seq on until a switch or stop. */
static int pingpong_server(struct endpoint *ep, uint64_t *seq)
{
	struct msg m, reply;
	int r;

	for (;; (*seq)++) {
		r = ep_recv(ep, &m, sizeof(m));
		if (r < 0) {
			ep_fail(ep, "ping-pong: waiting for request %" PRIu64 ": %s", *seq,
				bench_strerror(r));
			return r;
		}
		if (m.op == OP_STOP && m.seq == *seq)
			return PP_STOP;
		if (m.op == OP_SWITCH && m.seq == *seq)
			return PP_SWITCH;
		if (!msg_is_ping(&m, *seq)) {
			ep_fail(ep,
				"ping-pong: request %" PRIu64 " is corrupt (seq %" PRIu64
				", op %#" PRIx64 ")",
				*seq, m.seq, m.op);
			return -EBADMSG;
		}
		msg_pong(&reply, &m);
		r = ep_send(ep, &reply, sizeof(reply));
		if (r < 0) {
			ep_fail(ep, "ping-pong: sending reply %" PRIu64 ": %s", *seq,
				bench_strerror(r));
			return r;
		}
	}
}

/* Answers counter round trips after *last until a switch or stop. */
static int floor_server(struct endpoint *ep, uint64_t *last)
{
	struct floor_shm *f = ep->floor;
	uint64_t seen = __atomic_load_n(&f->ping, __ATOMIC_ACQUIRE), v;
	int r;

	/* On entry ping holds our last answer or the switch that sent us
	 * away: wait for anything else. */
	if (seen != FLOOR_SWITCH)
		seen = *last;
	for (;;) {
		while ((v = __atomic_load_n(&f->ping, __ATOMIC_ACQUIRE)) == seen) {
			r = bench_spin(&ep->spin);
			if (r < 0) {
				ep_fail(ep, "waiting for round trip %" PRIu64 ": %s", *last + 1,
					bench_strerror(r));
				return r;
			}
		}
		if (v == FLOOR_STOP)
			return PP_STOP;
		if (v == FLOOR_SWITCH)
			return PP_SWITCH;
		if (v != *last + 1) {
			ep_fail(ep, "round trip %" PRIu64 ": the parent's counter reads %" PRIu64,
				*last + 1, v);
			return -EBADMSG;
		}
		__atomic_store_n(&f->pong, v, __ATOMIC_RELEASE);
		*last = seen = v;
	}
}

/* The child's side: serves lanes in the order the parent runs them. */
static int pingpong_serve(struct endpoint *ep, const enum tkind *kinds, int nlanes)
{
	uint64_t seq = 0, last = 0;
	int cur = 0, r;

	for (;;) {
		ep_name(ep, kinds[cur], 1);
		r = kinds[cur] == T_FLOOR ? floor_server(ep, &last) : pingpong_server(ep, &seq);
		if (r < 0 || r == PP_STOP)
			return r < 0 ? r : 0;
		cur = (cur + 1) % nlanes;
	}
}

/* ------------------------------------------------------------ streaming */

static int stream_reader(struct endpoint *ep, const struct tconfig *cfg, double *mbps)
{
	uint64_t total = cfg->warm_chunks + cfg->chunks, c, sum = 0, t0 = 0, t1 = 0;
	struct stream_ack ack;
	uint64_t *buf;
	long bad;
	int r;

	buf = aligned_alloc(64, CHUNK_BYTES);
	if (!buf) {
		ep_fail(ep, "out of memory");
		return -ENOMEM;
	}
	for (c = 0; c < total; c++) {
		/* Warm-up first: TCP grows its window, the ring's pages fault
		 * in. Starting the clock with bytes possibly already queued
		 * counts at most one buffer (1 MiB) too many: < 0.5%. */
		if (c == cfg->warm_chunks)
			t0 = bench_now_ns();
		r = ep_recv(ep, buf, CHUNK_BYTES);
		if (r < 0) {
			ep_fail(ep, "streaming: reading at byte %" PRIu64 ": %s", c * CHUNK_BYTES,
				bench_strerror(r));
			goto out;
		}
		if (c + 1 == total)
			t1 = bench_now_ns();
		bad = chunk_check(buf, c, &sum);
		if (bad >= 0) {
			ep_fail(ep,
				"streaming: wrong data in stream bytes %" PRIu64 "..%" PRIu64
				": read %#018" PRIx64 ", expected %#018" PRIx64,
				c * CHUNK_BYTES + (uint64_t)bad * 8,
				c * CHUNK_BYTES + (uint64_t)bad * 8 + 7, buf[bad],
				chunk_word(c, bad));
			r = -EBADMSG;
			goto out;
		}
	}
	ack.bytes = total * CHUNK_BYTES;
	ack.sum = sum;
	r = ep_send(ep, &ack, sizeof(ack));
	if (r < 0) {
		ep_fail(ep, "streaming: sending the final ack: %s", bench_strerror(r));
		goto out;
	}
	*mbps = (double)(cfg->chunks * CHUNK_BYTES) / ((double)(t1 - t0) / 1e9) / 1e6;
	r = 0;
out:
	free(buf);
	return r;
}

static int stream_writer(struct endpoint *ep, const struct tconfig *cfg)
{
	uint64_t total = cfg->warm_chunks + cfg->chunks, c, sum = 0;
	struct stream_ack ack;
	uint64_t *buf;
	int r;

	buf = aligned_alloc(64, CHUNK_BYTES);
	if (!buf) {
		ep_fail(ep, "out of memory");
		return -ENOMEM;
	}
	for (c = 0; c < total; c++) {
		chunk_fill(buf, c, &sum);
		r = ep_send(ep, buf, CHUNK_BYTES);
		if (r < 0) {
			ep_fail(ep, "streaming: writing at byte %" PRIu64 ": %s", c * CHUNK_BYTES,
				bench_strerror(r));
			goto out;
		}
	}
	r = ep_recv(ep, &ack, sizeof(ack));
	if (r < 0) {
		ep_fail(ep, "streaming: waiting for the reader's ack: %s", bench_strerror(r));
		goto out;
	}
	if (ack.bytes != total * CHUNK_BYTES || ack.sum != sum) {
		ep_fail(ep,
			"streaming: the reader got %" PRIu64 " bytes, sum %#" PRIx64
			"; %" PRIu64 " bytes, sum %#" PRIx64 " were sent",
			ack.bytes, ack.sum, total * CHUNK_BYTES, sum);
		r = -EBADMSG;
		goto out;
	}
	r = 0;
out:
	free(buf);
	return r;
}

/* -------------------------------------------------------------- a run */

/* A process that stops making progress (a blocked read whose peer is
 * stuck, a spin the deadline check somehow misses) still ends. */
static char alarm_msg[160];

static void on_alarm(int sig)
{
	ssize_t r = write(STDERR_FILENO, alarm_msg, strlen(alarm_msg));

	(void)r;
	(void)sig;
	_exit(1);
}

static void arm_alarm(const char *who, unsigned seconds)
{
	snprintf(alarm_msg, sizeof(alarm_msg),
		 TPROG ": %s: no result after %u s; giving up (a bug: one side stopped)\n", who,
		 seconds);
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

static int child_run(const enum tkind *kinds, int nlanes, const struct tconfig *cfg,
		     struct channel *ch, uint64_t deadline_ns, unsigned alarm_s)
{
	struct endpoint ep;
	int r;

	channel_drop_side(ch, 0);
	if (cfg->cpu[1] >= 0) {
		r = bench_pin(cfg->cpu[1]);
		if (r < 0) {
			fprintf(stderr, TPROG ": %s (child): pinning to CPU %d: %s\n",
				tdescs[kinds[0]].name, cfg->cpu[1], strerror(-r));
			return 1;
		}
	}
	r = ep_open(&ep, kinds[0], ch, 1, NULL, deadline_ns);
	if (r < 0)
		return 1;
	arm_alarm(ep.who, alarm_s);
	r = pingpong_serve(&ep, kinds, nlanes);
	if (r >= 0 && tdescs[kinds[0]].streams) {
		ep_name(&ep, kinds[0], 1);
		r = stream_writer(&ep, cfg);
	}
	ep_close(&ep);
	return r < 0 ? 1 : 0;
}

/*
 * Measures kinds[0] (ping-pong, then streaming if it streams) against one
 * forked child; with nlanes == 2, kinds[1] is the floor, measured in
 * turns with kinds[0] over the same two processes. Fills res[kinds[i]].
 */
static int measure(const enum tkind *kinds, int nlanes, const struct tconfig *cfg,
		   struct tresult *res)
{
	unsigned limit_s = (unsigned)ceil(cfg->seconds * 1.1 * nlanes) + DEADLINE_SLACK_S;
	uint64_t deadline_ns = bench_now_ns() + limit_s * NSEC_PER_SEC;
	const char *name = tdescs[kinds[0]].name;
	struct bench_child child = {0};
	struct endpoint ep = {.link = NULL};
	struct pp_lane lanes[2];
	uint64_t *samples = NULL;
	struct rusage ru0, ru1;
	struct channel ch;
	char why[64];
	int r, ep_opened = 0;

	samples = calloc((size_t)nlanes * cfg->iters, sizeof(*samples));
	if (!samples) {
		fprintf(stderr, TPROG ": %s: out of memory for %" PRIu64 " samples\n", name,
			cfg->iters);
		return -ENOMEM;
	}
	/* Fault the pages in now, not between two timed round trips. */
	memset(samples, 0, (size_t)nlanes * cfg->iters * sizeof(*samples));
	memset(lanes, 0, sizeof(lanes));
	for (int i = 0; i < nlanes; i++) {
		lanes[i].kind = kinds[i];
		lanes[i].floor = kinds[i] == T_FLOOR;
		lanes[i].samples = samples + (size_t)i * cfg->iters;
	}
	r = channel_open(kinds[0], &ch);
	if (r >= 0 && nlanes > 1 && !ch.floor)
		r = channel_map_floor(&ch);
	if (r < 0) {
		fprintf(stderr, TPROG ": %s: setting up: %s\n", name, strerror(-r));
		goto out_channel;
	}
	getrusage(RUSAGE_SELF, &ru0);
	r = bench_fork(&child);
	if (r < 0) {
		fprintf(stderr, TPROG ": %s: fork: %s\n", name, strerror(-r));
		goto out_channel;
	}
	if (r == 0)
		_exit(child_run(kinds, nlanes, cfg, &ch, deadline_ns, limit_s + 15));

	channel_drop_side(&ch, 1);
	r = ep_open(&ep, kinds[0], &ch, 0, &child, deadline_ns);
	if (r < 0)
		goto out_child;
	ep_opened = 1;
	arm_alarm(ep.who, limit_s + 15);
	r = pingpong_client(&ep, lanes, nlanes, cfg);
	if (r < 0)
		goto out_child;
	if (tdescs[kinds[0]].streams) {
		ep_name(&ep, kinds[0], 0);
		r = stream_reader(&ep, cfg, &res[kinds[0]].mbps);
		if (r < 0)
			goto out_child;
	}
	r = bench_child_wait(&child, deadline_ns);
	if (r == -ETIMEDOUT)
		ep_fail(&ep, "the child did not exit after the measurement; killed it");
	if (r < 0)
		goto out_child;
	getrusage(RUSAGE_SELF, &ru1);
	for (int i = 0; i < nlanes; i++) {
		struct tresult *t = &res[kinds[i]];

		t->n = lanes[i].n;
		bench_sort_u64(lanes[i].samples, t->n);
		t->p50_ns = bench_percentile(lanes[i].samples, t->n, 0.50);
		t->p99_ns = bench_percentile(lanes[i].samples, t->n, 0.99);
		t->preempted = ru1.ru_nivcsw - ru0.ru_nivcsw + child.ru.ru_nivcsw;
		t->with = nlanes > 1 ? (int)kinds[!i] : -1;
		t->measured = 1;
	}

out_child:
	if (r < 0) {
		bench_child_kill(&child);
		/* A child that failed by itself said why on stderr; point at it. */
		if (child.reaped && !child.killed && child.status)
			fprintf(stderr, TPROG ": %s: the child %s\n", name,
				bench_child_describe(&child, why, sizeof(why)));
	}
	alarm(0);
	if (ep_opened)
		ep_close(&ep);
out_channel:
	channel_close(&ch);
	free(samples);
	return r;
}

/* ----------------------------------------------------- the copy limit */

/* The copy row's shared buffer: counts of chunks written and read, each on
 * its own cache line, then MPK_LINK_RING_DEFAULT bytes of 64 KiB slots. */
struct copy_shm {
	_Alignas(64) uint64_t written; /* by the writer (the child) */
	_Alignas(64) uint64_t read;    /* by the reader (the parent) */
	_Alignas(64) uint8_t data[MPK_LINK_RING_DEFAULT];
};
#define COPY_SLOTS (MPK_LINK_RING_DEFAULT / CHUNK_BYTES)

static int copy_writer(struct copy_shm *m, const struct tconfig *cfg, uint64_t deadline_ns)
{
	struct bench_spin sp = {.deadline_ns = deadline_ns, .yield = cfg->cpu[0] < 0};
	uint64_t n = cfg->warm_chunks + cfg->chunks;
	uint8_t *src = aligned_alloc(64, CHUNK_BYTES);

	if (!src)
		return -ENOMEM;
	for (uint64_t w = 0; w < CHUNK_BYTES / 8; w++)
		memcpy(src + 8 * w, &w, 8);
	for (uint64_t c = 0; c < n; c++) {
		/* Pairs with the release of read in copy_reader: the slot's
		 * bytes were copied out before we overwrite them. */
		while (c - __atomic_load_n(&m->read, __ATOMIC_ACQUIRE) >= COPY_SLOTS)
			if (bench_spin(&sp) < 0) {
				free(src);
				return -ETIMEDOUT;
			}
		memcpy(m->data + (c % COPY_SLOTS) * CHUNK_BYTES, src, CHUNK_BYTES);
		/* Pairs with the acquire of written in copy_reader. */
		__atomic_store_n(&m->written, c + 1, __ATOMIC_RELEASE);
	}
	free(src);
	return 0;
}

/* The reader side, timed after the warm-up chunks. Sets *mbps. */
static int copy_reader(struct copy_shm *m, const struct tconfig *cfg, struct bench_child *ch,
		       uint64_t deadline_ns, double *mbps)
{
	struct bench_spin sp = {.deadline_ns = deadline_ns, .watch = ch,
				.yield = cfg->cpu[0] < 0};
	uint64_t n = cfg->warm_chunks + cfg->chunks, t0 = 0, sum = 0;
	uint8_t *dst = aligned_alloc(64, CHUNK_BYTES);
	int r;

	if (!dst)
		return -ENOMEM;
	for (uint64_t c = 0; c < n; c++) {
		if (c == cfg->warm_chunks)
			t0 = bench_now_ns();
		while (__atomic_load_n(&m->written, __ATOMIC_ACQUIRE) <= c)
			if ((r = bench_spin(&sp)) < 0) {
				free(dst);
				return r;
			}
		memcpy(dst, m->data + (c % COPY_SLOTS) * CHUNK_BYTES, CHUNK_BYTES);
		sum += ((const uint64_t *)dst)[c % (CHUNK_BYTES / 8)];
		__atomic_store_n(&m->read, c + 1, __ATOMIC_RELEASE);
	}
	*mbps = (double)cfg->chunks * CHUNK_BYTES / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
	free(dst);
	/* Word w of each chunk holds w: the copies really moved the bytes. */
	for (uint64_t c = 0; c < n; c++)
		sum -= c % (CHUNK_BYTES / 8);
	return sum ? -EIO : 0;
}

/* The copy row: the parent reads (as in the other rows), a forked child
 * writes, each on its CPU. Fills *t. */
static int measure_copy(const struct tconfig *cfg, struct tresult *t)
{
	uint64_t deadline_ns = bench_now_ns() + DEADLINE_SLACK_S * NSEC_PER_SEC;
	struct bench_child child = {0};
	struct copy_shm *m;
	int r;

	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, 0, sizeof(*m)); /* the pages exist before the clock starts */
	r = bench_fork(&child);
	if (r == 0) {
		if (cfg->cpu[1] >= 0 && bench_pin(cfg->cpu[1]) < 0)
			_exit(1);
		_exit(copy_writer(m, cfg, deadline_ns) < 0 ? 1 : 0);
	}
	if (r > 0) {
		r = copy_reader(m, cfg, &child, deadline_ns, &t->mbps);
		if (r == 0)
			r = bench_child_wait(&child, deadline_ns);
		if (r < 0)
			bench_child_kill(&child);
		else
			t->measured = 1;
	}
	munmap(m, sizeof(*m));
	t->with = -1;
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ reporting */

static const enum tkind display_order[] = {T_PIPE,  T_UNIX,  T_TCP, T_MPKLINK,
					   T_MAC,   T_FLOOR, T_COPY};

static void fmt_ratio(char *buf, size_t len, double num, double den, int ok)
{
	if (!ok || den <= 0 || num <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx", num / den);
}

static void print_table(const struct tconfig *cfg, const struct tresult *res)
{
	const struct tresult *tcp = &res[T_TCP], *flr = &res[T_FLOOR], *mpk = &res[T_MPKLINK];
	char a[32], b[32], c[32], mb[32];
	const char *sep = "";

	printf("\n%-11s %11s %11s %11s %9s %10s %9s\n", "transport", "64B p50 us", "64B p99 us",
	       "64KiB MB/s", "p50/tcp", "p50/floor", "MB/s/tcp");
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum tkind k = display_order[i];
		const struct tresult *r = &res[k];
		int st = tdescs[k].streams;

		if (!r->measured)
			continue;
		fmt_ratio(a, sizeof(a), (double)r->p50_ns, (double)tcp->p50_ns, tcp->measured);
		fmt_ratio(b, sizeof(b), (double)r->p50_ns, (double)flr->p50_ns, flr->measured);
		fmt_ratio(c, sizeof(c), r->mbps, tcp->mbps, st && tcp->measured);
		if (st)
			snprintf(mb, sizeof(mb), "%.1f", r->mbps);
		else
			snprintf(mb, sizeof(mb), "-");
		if (k == T_COPY) {
			printf("%-11s %11s %11s %11s %9s %10s %9s\n", tdescs[k].name, "-", "-", mb,
			       "-", "-", c);
			continue;
		}
		printf("%-11s %11.3f %11.3f %11s %9s %10s %9s\n", tdescs[k].name,
		       (double)r->p50_ns / 1e3, (double)r->p99_ns / 1e3, mb, a, b, c);
	}

	printf("\nRound trips timed:");
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum tkind k = display_order[i];

		if (!res[k].measured || k == T_COPY)
			continue;
		printf("%s %s %" PRIu64, sep, tdescs[k].name, res[k].n);
		sep = ",";
	}
	printf("\n  (each after up to %" PRIu64 " untimed warm-up; at most %" PRIu64
	       " or %.3g s)\n",
	       cfg->warmup, cfg->iters, cfg->seconds);
	sep = "";
	printf("Preempted (involuntary context switches, both processes):");
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum tkind k = display_order[i];
		const struct tresult *r = &res[k];

		if (!r->measured || k == T_COPY || (r->with >= 0 && r->with < (int)k))
			continue;
		printf("%s %s%s%s %ld", sep, tdescs[k].name, r->with >= 0 ? "+" : "",
		       r->with >= 0 ? tdescs[r->with].name : "", r->preempted);
		sep = ",";
	}
	printf("\n");
	if (flr->measured && flr->with >= 0)
		printf("floor and %s took turns, %u round trips at a time, in the same two\n"
		       "  processes: both see the same CPU placement (see --help).\n",
		       tdescs[flr->with].name, PP_BLOCK);
	printf("Streamed: %" PRIu64 " MiB per transport in 64 KiB writes, after %" PRIu64
	       " MiB warm-up; MB = 10^6 bytes.\n",
	       cfg->chunks * CHUNK_BYTES >> 20, cfg->warm_chunks * CHUNK_BYTES >> 20);
	printf("Ratios: p50/tcp, p50/floor = this p50 over tcp's, floor's (lower is faster);\n"
	       "        MB/s/tcp = this throughput over tcp's (higher is faster).\n");

	printf("\nTargets (informational: timings are noisy, the exit status ignores them):\n");
	if (mpk->measured && flr->measured) {
		double x = (double)mpk->p50_ns / (double)flr->p50_ns;

		printf("  %s  mpklink 64 B p50 round trip at most 2x the floor  "
		       "(%.2fx: %.3f us vs %.3f us)\n",
		       x <= 2.0 ? "PASS" : "MISS", x, (double)mpk->p50_ns / 1e3,
		       (double)flr->p50_ns / 1e3);
	} else {
		printf("  ----  mpklink 64 B p50 round trip at most 2x the floor  "
		       "(not measured: needs mpklink and floor)\n");
	}
	if (mpk->measured && tcp->measured) {
		double x = mpk->mbps / tcp->mbps;

		printf("  %s  mpklink streaming at least 3x TCP loopback       "
		       "(%.2fx: %.1f vs %.1f MB/s",
		       x >= 3.0 ? "PASS" : "MISS", x, mpk->mbps, tcp->mbps);
		if (res[T_COPY].measured)
			printf("; %.0f%% of the copy limit, %.1f MB/s",
			       100.0 * mpk->mbps / res[T_COPY].mbps, res[T_COPY].mbps);
		printf(")\n");
	} else {
		printf("  ----  mpklink streaming at least 3x TCP loopback       "
		       "(not measured: needs mpklink and tcp)\n");
	}
}

static int write_csv(const char *path, const struct tresult *res)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	fputs("bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n", f);
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum tkind k = display_order[i];
		const struct tresult *t = &res[k];

		if (!t->measured)
			continue;
		if (k != T_COPY)
			fprintf(f, "transport,%s,%u,%.3f,%.3f,\n", tdescs[k].name, MSG_BYTES,
				(double)t->p50_ns / 1e3, (double)t->p99_ns / 1e3);
		if (tdescs[k].streams)
			fprintf(f, "transport,%s,%u,,,%.1f\n", tdescs[k].name, CHUNK_BYTES,
				t->mbps);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	r = bench_write_file_atomic(path, buf, len);
	free(buf);
	return r;
}

/* ---------------------------------------------------------- the command */

static void transport_usage(FILE *f)
{
	fprintf(f,
		"Usage: " TPROG " [--quick] [--csv FILE] [--iters N] [--seconds S]\n"
		"                               [--only LIST]\n"
		"\n"
		"Measures, in one run, between two processes (forked; pinned to two\n"
		"different CPUs when the affinity mask allows 2 or more):\n"
		"  64 B ping-pong    round-trip latency: each round trip is timed with\n"
		"                    CLOCK_MONOTONIC after a warm-up; p50 and p99 reported\n"
		"  64 KiB streaming  one process writes 64 KiB chunks, the other reads;\n"
		"                    MB/s (10^6 bytes/s) as the reader sees it, from the\n"
		"                    first byte after the warm-up to the last\n"
		"for these transports, in this order (a full run takes under a minute):\n");
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++)
		fprintf(f, "  %-8s %s\n", tdescs[display_order[i]].name,
			tdescs[display_order[i]].help);
	fprintf(f,
		"\n"
		"Options:\n"
		"  --quick       a smaller run (under 15 s): --iters %u --seconds %g,\n"
		"                %u MiB streamed per transport instead of %u MiB\n"
		"  --iters N     round trips timed per transport, at most (default %u)\n"
		"  --seconds S   but stop a transport's ping-pong after S seconds (default\n"
		"                %g; fractions allowed): slow kernel paths time fewer trips\n"
		"  --csv FILE    also write the results to FILE as CSV, with the header\n"
		"                  bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n"
		"                one row per transport and size: size 64 has p50_us and\n"
		"                p99_us, size 65536 has mbytes_per_s (floor has none;\n"
		"                copy has only that one)\n"
		"                FILE is replaced whole (temp file + rename) or not at all\n"
		"  --only LIST   measure only these transports, comma-separated (e.g.\n"
		"                mpklink,floor); ratios to one not measured print '-'\n"
		"  -h, --help    show this text\n"
		"\n"
		"Output: a table (latency in microseconds, ratios to tcp and to floor),\n"
		"then the two targets with PASS or MISS and the measured ratios:\n"
		"  mpklink 64 B p50 round trip at most 2x the floor\n"
		"  mpklink streaming at least 3x TCP loopback (and how near the copy\n"
		"  limit it comes: the copy row, when measured)\n"
		"Timings are noisy, so the exit status does not depend on the targets.\n"
		"When both run, mpklink and floor take turns in blocks of %u round trips\n"
		"between the same two processes: a VM's vCPUs move between host cores,\n"
		"and a cache line's cost moves with them (floor round trips of 0.12 or\n"
		"0.40 us, minutes apart, on one 2-vCPU VM): the ratio is only meaningful\n"
		"between samples taken side by side.\n"
		"The 'Preempted' line counts involuntary context switches during each\n"
		"transport's run: if the spinning ones (mpklink, floor) show more than a\n"
		"few, other work shared the CPUs and their numbers are pessimistic.\n"
		"\n"
		"Every result is checked: each reply carries its round trip's number and\n"
		"bytes derived from it; every streamed byte is derived from its position\n"
		"and checked by the reader, and the writer compares the reader's sum.\n"
		"\n"
		"Environment: MPKLINK_GUARD=auto|mpk|off picks the MPK guard for the\n"
		"mpklink rings (auto: on when the CPU and kernel have PKU).\n"
		"\n"
		"Exit status: 0 measured; 1 a measurement failed (setup error, wrong\n"
		"data, a side stopped answering); 2 bad usage.\n"
		"\n"
		"Examples:\n"
		"  " TPROG "\n"
		"  " TPROG " --quick --csv results.csv\n"
		"  " TPROG " --only mpklink,floor --iters 1000000 --seconds 10\n",
		QUICK_ITERS, QUICK_SECONDS, QUICK_STREAM_MIB, FULL_STREAM_MIB, FULL_ITERS,
		FULL_SECONDS, PP_BLOCK);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(TPROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" TPROG " --help'.\n", stderr);
	return 2;
}

static int parse_only(const char *list, unsigned *mask)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	*mask = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < T_COUNT; k++)
			if (!strcmp(tok, tdescs[k].name))
				break;
		if (k == T_COUNT) {
			r = usage_error("--only: unknown transport '%s' (known: pipe, unix, tcp, "
					"mpklink, mpklink-mac, floor, copy)",
					tok);
			goto out;
		}
		*mask |= 1u << k;
	}
	if (!*mask)
		r = usage_error("--only: no transport named in '%s'", list);
out:
	free(copy);
	return r;
}

static int transport_main(int argc, char **argv)
{
	enum { OPT_QUICK = 0x100, OPT_CSV, OPT_ITERS, OPT_SECONDS, OPT_ONLY };
	static const struct option opts[] = {
		{"quick", no_argument, NULL, OPT_QUICK},
		{"csv", required_argument, NULL, OPT_CSV},
		{"iters", required_argument, NULL, OPT_ITERS},
		{"seconds", required_argument, NULL, OPT_SECONDS},
		{"only", required_argument, NULL, OPT_ONLY},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct tresult res[T_COUNT];
	struct tconfig cfg = {.only = (1u << T_COUNT) - 1, .cpu = {-1, -1}};
	struct mpk_guard_status gs;
	uint64_t iters = 0, stream_mib;
	double seconds = 0;
	int quick = 0, ncpu, opt, r, failed = 0;
	cpu_set_t saved;
	char *end;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_QUICK:
			quick = 1;
			break;
		case OPT_CSV:
			if (!*optarg)
				return usage_error("--csv needs a file name");
			cfg.csv = optarg;
			break;
		case OPT_ITERS: {
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v < 1 ||
			    v > MAX_ITERS)
				return usage_error(
					"--iters: '%s' is not a whole number from 1 to %u", optarg,
					MAX_ITERS);
			iters = v;
			break;
		}
		case OPT_SECONDS:
			errno = 0;
			seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(seconds) || seconds <= 0 ||
			    seconds > MAX_SECONDS)
				return usage_error("--seconds: '%s' is not a number of seconds in "
						   "(0, %g]",
						   optarg, MAX_SECONDS);
			break;
		case OPT_ONLY:
			r = parse_only(optarg, &cfg.only);
			if (r)
				return r < 0 ? 1 : r;
			break;
		case 'h':
			transport_usage(stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			if (optopt >= 0x100)
				return usage_error("option '%s' takes no argument",
						   argv[optind - 1]);
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	cfg.iters = iters ? iters : quick ? QUICK_ITERS : FULL_ITERS;
	cfg.seconds = seconds > 0 ? seconds : quick ? QUICK_SECONDS : FULL_SECONDS;
	cfg.warmup = cfg.iters / 10;
	if (cfg.warmup < 100)
		cfg.warmup = 100;
	if (cfg.warmup > 20000)
		cfg.warmup = 20000;
	stream_mib = quick ? QUICK_STREAM_MIB : FULL_STREAM_MIB;
	cfg.chunks = stream_mib * (1u << 20) / CHUNK_BYTES;
	cfg.warm_chunks = STREAM_WARM_MIB * (1u << 20) / CHUNK_BYTES;

	/* Decide the guard once, here: the children inherit the decision
	 * and auto mode's one line on stderr is printed once, not per fork. */
	if (cfg.only & ((1u << T_MPKLINK) | (1u << T_MAC))) {
		const char *env = getenv("MPKLINK_GUARD");

		r = mpk_guard_init_env();
		if (r == -EINVAL) {
			fprintf(stderr, TPROG ": MPKLINK_GUARD='%s' is not auto, mpk or off\n",
				env ? env : "");
			return 1;
		}
		if (r < 0) {
			mpk_guard_status(&gs);
			fprintf(stderr, TPROG ": MPKLINK_GUARD=%s: no MPK guard (%s): %s\n",
				env ? env : "", gs.reason, strerror(-r));
			return 1;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	if (sched_getaffinity(0, sizeof(saved), &saved) < 0) {
		fprintf(stderr, TPROG ": sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	ncpu = bench_pick_cpus(&cfg.cpu[0], &cfg.cpu[1]);
	if (ncpu < 0) {
		fprintf(stderr, TPROG ": sched_getaffinity: %s\n", strerror(-ncpu));
		return 1;
	}
	if (ncpu >= 2) {
		r = bench_pin(cfg.cpu[0]);
		if (r < 0) {
			fprintf(stderr, TPROG ": pinning to CPU %d: %s\n", cfg.cpu[0],
				strerror(-r));
			return 1;
		}
		printf("Two processes, pinned to CPUs %d and %d (of %d available).\n", cfg.cpu[0],
		       cfg.cpu[1], ncpu);
	} else {
		cfg.cpu[0] = cfg.cpu[1] = -1;
		cfg_one_cpu = 1;
		printf("Two processes on ONE CPU (the affinity mask allows no more): the\n"
		       "spinning transports (mpklink, floor) yield instead of spinning and\n"
		       "measure the scheduler, not memory.\n");
	}
	if (cfg.only & ((1u << T_MPKLINK) | (1u << T_MAC))) {
		mpk_guard_status(&gs);
		printf("MPK guard: %s.\n", gs.reason);
	}

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum tkind k = display_order[i];

		enum tkind kinds[2] = {k, T_FLOOR};
		int nlanes = 1;

		if (!(cfg.only & (1u << k)) || res[k].measured)
			continue;
		/* The target compares these two: see PP_BLOCK. */
		if (k == T_MPKLINK && (cfg.only & (1u << T_FLOOR)))
			nlanes = 2;
		uint64_t t0 = bench_now_ns();

		fflush(stdout); /* what we said before, ahead of this line */
		fprintf(stderr, TPROG ": measuring %s%s ... ", tdescs[k].name,
			nlanes > 1 ? " and floor" : "");
		if (k == T_COPY ? measure_copy(&cfg, &res[k]) < 0 : measure(kinds, nlanes, &cfg, res) < 0) {
			fprintf(stderr, "FAILED\n");
			failed = 1;
			break;
		}
		fprintf(stderr, "%.1f s\n", (double)(bench_now_ns() - t0) / 1e9);
	}
	/* Give the caller back the CPUs it had: a later subcommand in the
	 * same process (compare) must not inherit our pinning. */
	sched_setaffinity(0, sizeof(saved), &saved);
	if (failed) {
		fprintf(stderr, TPROG ": stopped; no results written\n");
		return 1;
	}

	print_table(&cfg, res);
	if (cfg.csv) {
		r = write_csv(cfg.csv, res);
		if (r < 0) {
			fprintf(stderr, TPROG ": writing %s: %s\n", cfg.csv, strerror(-r));
			return 1;
		}
		printf("\nCSV written to %s.\n", cfg.csv);
	}
	fflush(stdout);
	return 0;
}

/* ============================================================== the table */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{"transport", transport_main,
	 "64 B round-trip latency and 64 KiB streaming throughput between two\n"
	 "              processes: pipe, unix, tcp, mpklink and the shared-memory floor"},
	{"echo", echo_main,
	 "64 B and 64 KiB round trips of the C echo pair (tests/compat) over tcp,\n"
	 "              unix and mpklink (both sides under mpklink-run)"},
	{"grpc", grpc_main,
	 "unary gRPC calls against a server (the demo's Health, Count, Echo, or\n"
	 "              your own method), latency percentiles, every answer checked"},
	{"compare", compare_main,
	 "the demo gRPC server (or yours) over tcp, unix and mpklink side by side,\n"
	 "              echo and word-count sizes, with the MPKLink paper's figures"},
};

static void show_usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " <subcommand> [options]\n"
		"\n"
		"Benchmarks for mpklink, the shared-memory transport for co-located\n"
		"services. Each subcommand runs its own measurements and prints a table.\n"
		"\n"
		"Subcommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f,
		"\n"
		"'" PROG " <subcommand> --help' lists a subcommand's options.\n"
		"Exit status: 0 done, 1 a measurement failed, 2 bad usage.\n"
		"\n"
		"Example:\n"
		"  " PROG " transport --quick\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		show_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		show_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	if (argv[1][0] == '-')
		fprintf(stderr, PROG ": unknown option '%s' (options go after the subcommand)\n",
			argv[1]);
	else
		fprintf(stderr, PROG ": unknown subcommand '%s'\n", argv[1]);
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return 2;
}
