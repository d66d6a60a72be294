/* SPDX-License-Identifier: MIT */
/*
 * Ring semantics a socket user relies on: empty, full, wrap, partial
 * writes, iovecs, peek, half-close and close seen only after all data,
 * doorbells rung exactly when the peer said it sleeps.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "link_internal.h"
#include "testutil.h"

#define CAP 4096u

struct pair {
	int fd, sv[2];
	struct mpk_link *a, *b; /* side 0, side 1 */
};

static void pair_open(struct pair *p, size_t cap)
{
	p->fd = mpk_link_create(cap);
	cr_assert_geq(p->fd, 0, "mpk_link_create: %s", strerror(-p->fd));
	cr_assert_eq(mpk_link_attach(p->fd, 0, &p->a), 0);
	cr_assert_eq(mpk_link_attach(p->fd, 1, &p->b), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->sv), 0);
	mpk_link_set_doorbell(p->a, p->sv[0], NULL, NULL);
	mpk_link_set_doorbell(p->b, p->sv[1], NULL, NULL);
}

static void pair_close(struct pair *p)
{
	mpk_link_detach(p->a);
	mpk_link_detach(p->b);
	close(p->fd);
	close(p->sv[0]);
	close(p->sv[1]);
}

/* Bytes waiting on a doorbell socket, consumed. */
static int bells_pending(int fd)
{
	char buf[64];
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return r > 0 ? (int)r : 0;
}

Test(create, sizes)
{
	struct mpk_link *l;
	int fd;

	cr_expect_eq(mpk_link_create(1000), -EINVAL);
	cr_expect_eq(mpk_link_create(2048), -EINVAL);
	cr_expect_eq(mpk_link_create(6000), -EINVAL);
	cr_expect_eq(mpk_link_create((size_t)MPK_LINK_RING_MAX * 2), -EINVAL);
	fd = mpk_link_create(0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(mpk_link_attach(fd, 0, &l), 0);
	cr_expect_eq(mpk_link_ring_bytes(l), MPK_LINK_RING_DEFAULT);
	cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "link fd must be close-on-exec");
	cr_expect_eq(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	mpk_link_detach(l);
	close(fd);
}

Test(ring, empty)
{
	struct pair p;
	char c;

	pair_open(&p, CAP);
	cr_expect_eq(mpk_link_read(p.b, &c, 1), -EAGAIN);
	cr_expect_eq(mpk_link_read(p.a, &c, 1), -EAGAIN);
	cr_expect_eq(mpk_link_readable(p.b), 0);
	cr_expect_eq(mpk_link_writable(p.a), CAP);
	cr_expect_eq(mpk_link_poll(p.b), MPK_LINK_OUT);
	cr_expect_eq(mpk_link_read(p.b, &c, 0), 0, "a 0-byte read returns 0");
	cr_expect_eq(mpk_link_write(p.a, &c, 0), 0, "a 0-byte write returns 0");
	cr_expect_eq(mpk_link_poll(p.b), MPK_LINK_OUT, "0-byte write publishes nothing");
	pair_close(&p);
}

Test(ring, full_and_partial)
{
	static uint8_t in[3 * CAP], out[3 * CAP];
	struct pair p;

	pair_open(&p, CAP);
	tu_fill(in, sizeof(in), 0, 1);
	cr_expect_eq(mpk_link_write(p.a, in, 1000), 1000);
	cr_expect_eq(mpk_link_write(p.a, in + 1000, sizeof(in) - 1000), CAP - 1000,
		     "a write larger than the space is partial");
	cr_expect_eq(mpk_link_write(p.a, in, 1), -EAGAIN, "full ring");
	cr_expect_eq(mpk_link_writable(p.a), 0);
	cr_expect_eq(mpk_link_poll(p.a) & MPK_LINK_OUT, 0);
	cr_expect_eq(mpk_link_readable(p.b), CAP);
	cr_expect_eq(mpk_link_poll(p.b), MPK_LINK_IN | MPK_LINK_OUT);
	cr_expect_eq(mpk_link_read(p.b, out, 100), 100);
	cr_expect_eq(mpk_link_writable(p.a), 100, "space freed by the read");
	cr_expect_eq(mpk_link_read(p.b, out + 100, sizeof(out)), CAP - 100);
	cr_expect_eq(tu_check(out, CAP, 0, 1), -1);
	cr_expect_eq(mpk_link_read(p.b, out, 1), -EAGAIN);
	pair_close(&p);
}

Test(ring, wrap_everywhere)
{
	static uint8_t in[CAP], out[CAP];
	uint64_t off = 0;
	struct pair p;

	pair_open(&p, CAP);
	/* Walk the wrap point over every offset, with lengths across it. */
	for (size_t step = 1; step < 3 * CAP; step += 61) {
		size_t n = step % CAP + 1;

		tu_fill(in, n, off, 2);
		cr_assert_eq(mpk_link_write(p.a, in, n), (ssize_t)n);
		memset(out, 0, n);
		cr_assert_eq(mpk_link_read(p.b, out, n), (ssize_t)n);
		cr_assert_eq(tu_check(out, n, off, 2), -1, "corrupt at stream offset %lu",
			     (unsigned long)off);
		off += n;
	}
	pair_close(&p);
}

Test(ring, iovecs_and_peek)
{
	static uint8_t in[CAP], out[CAP];
	struct iovec wv[64], rv[64];
	uint64_t seed = 7, off = 0;
	struct pair p;

	pair_open(&p, CAP);
	for (int round = 0; round < 2000; round++) {
		int wc = 1 + (int)(tu_rand(&seed) % 64), rc = 1 + (int)(tu_rand(&seed) % 64);
		size_t wn = 0, rn = 0, pos = 0;
		ssize_t w, r;

		tu_fill(in, sizeof(in), off, 3);
		for (int i = 0; i < wc; i++) {
			size_t len = tu_rand(&seed) % 200; /* zero-length iovecs too */
			wv[i].iov_base = in + pos;
			wv[i].iov_len = len;
			pos += len;
		}
		wn = pos;
		w = mpk_link_writev(p.a, wv, wc);
		cr_assert_eq(w, wn ? (ssize_t)(wn < CAP ? wn : CAP) : 0);
		pos = 0;
		for (int i = 0; i < rc; i++) {
			size_t len = tu_rand(&seed) % 200;
			if (pos + len > sizeof(out))
				len = sizeof(out) - pos;
			rv[i].iov_base = out + pos;
			rv[i].iov_len = len;
			pos += len;
		}
		rn = pos;
		if (!w)
			continue;
		r = mpk_link_readv(p.b, rv, rc, MPK_READ_PEEK);
		cr_assert_eq(r, rn ? (ssize_t)(rn < (size_t)w ? rn : (size_t)w) : 0);
		cr_assert_eq(tu_check(out, (size_t)r, off, 3), -1, "peek content");
		cr_assert_eq(mpk_link_readable(p.b), w, "peek must not consume");
		/* Now consume everything, in one plain read. */
		cr_assert_eq(mpk_link_read(p.b, out, sizeof(out)), w);
		cr_assert_eq(tu_check(out, (size_t)w, off, 3), -1, "readv content");
		off += (uint64_t)w;
	}
	cr_expect_eq(mpk_link_readv(p.b, rv, -1, 0), -EINVAL);
	cr_expect_eq(mpk_link_writev(p.a, wv, -1), -EINVAL);
	cr_expect_eq(mpk_link_readv(p.b, rv, 1, 0x80), -EINVAL);
	pair_close(&p);
}

/* The reading side's readiness: what mpk_link_poll says of reading, never
 * OUT, and the peer's tail as the generation. */
Test(ring, poll_rx_is_the_read_side)
{
	static uint8_t in[CAP];
	uint64_t g = 1, tail;
	uint8_t buf[8];
	struct pair p;

	pair_open(&p, CAP);
	cr_expect_eq(mpk_link_poll_rx(p.b, &g), 0, "empty: nothing to read, and no OUT");
	cr_expect_eq(g, 0);
	cr_expect_eq(mpk_link_write(p.a, in, 100), 100);
	cr_expect_eq(mpk_link_poll_rx(p.b, &g), MPK_LINK_IN);
	cr_expect_eq(g, 100, "the generation is the peer's tail");
	cr_expect_eq(mpk_link_poll_gen(p.b, &tail, NULL), MPK_LINK_IN | MPK_LINK_OUT);
	cr_expect_eq(tail, g);
	cr_expect_eq(mpk_link_poll_rx(p.b, NULL), MPK_LINK_IN, "rx_gen may be NULL");
	cr_expect_eq(mpk_link_write(p.a, in, CAP), CAP - 100);
	cr_expect_eq(mpk_link_poll_rx(p.a, NULL), 0, "a full TX ring is not the reader's news");
	cr_expect_eq(mpk_link_shutdown_write(p.a), 0);
	cr_expect_eq(mpk_link_poll_rx(p.b, NULL), MPK_LINK_IN | MPK_LINK_RDHUP);
	cr_expect_eq(mpk_link_close(p.a), 0);
	cr_expect_eq(mpk_link_poll_rx(p.b, NULL), MPK_LINK_IN | MPK_LINK_RDHUP | MPK_LINK_HUP);
	/* Broken: every waiter wakes; still no OUT from the reading side. */
	((struct mpk_link_hdr *)mpk__link_base(p.b))->ring[0].tail += 2 * CAP;
	cr_expect_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET);
	cr_expect_eq(mpk_link_poll_rx(p.b, NULL), MPK_LINK_IN | MPK_LINK_HUP | MPK_LINK_ERR);
	pair_close(&p);
}

Test(ring, shutdown_write_is_half_close)
{
	uint8_t buf[100];
	struct pair p;

	pair_open(&p, CAP);
	cr_assert_eq(mpk_link_write(p.a, "hello", 5), 5);
	cr_assert_eq(mpk_link_shutdown_write(p.a), 0);
	cr_expect_eq(mpk_link_write(p.a, "x", 1), -EPIPE, "write after SHUT_WR");
	cr_expect(mpk_link_poll(p.a) & MPK_LINK_OUT, "a failing write does not block");
	cr_expect_eq(mpk_link_poll(p.b) & (MPK_LINK_IN | MPK_LINK_RDHUP | MPK_LINK_HUP),
		     MPK_LINK_IN | MPK_LINK_RDHUP);
	cr_expect_eq(mpk_link_read(p.b, buf, 3), 3, "data before EOF");
	cr_expect_eq(mpk_link_read(p.b, buf + 3, 100), 2, "the rest before EOF");
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	cr_expect_eq(mpk_link_read(p.b, buf, 100), 0, "EOF after all data");
	cr_expect_eq(mpk_link_read(p.b, buf, 100), 0, "EOF stays");
	/* The other direction keeps working. */
	cr_expect_eq(mpk_link_write(p.b, "back", 4), 4);
	cr_expect_eq(mpk_link_read(p.a, buf, 100), 4);
	cr_expect_eq(memcmp(buf, "back", 4), 0);
	cr_expect_eq(mpk_link_shutdown_write(p.a), 0, "idempotent");
	pair_close(&p);
}

Test(ring, close_seen_after_all_data)
{
	static uint8_t in[CAP], out[CAP];
	struct pair p;

	pair_open(&p, CAP);
	tu_fill(in, CAP, 0, 4);
	cr_assert_eq(mpk_link_write(p.a, in, CAP), CAP);
	cr_assert_eq(mpk_link_close(p.a), 0);
	cr_expect_eq(mpk_link_poll(p.b) & (MPK_LINK_HUP | MPK_LINK_IN),
		     MPK_LINK_HUP | MPK_LINK_IN);
	/* As over TCP, writes after the peer's close may still be taken: up
	 * to the space this side knew free, and then -EPIPE. */
	cr_expect_eq(mpk_link_write(p.b, in, CAP), CAP);
	cr_expect_eq(mpk_link_write(p.b, "x", 1), -EPIPE, "the peer reads no more");
	cr_expect_eq(mpk_link_writable(p.b), -EPIPE);
	cr_expect_eq(mpk_link_read(p.b, out, CAP / 2), CAP / 2);
	cr_expect_eq(mpk_link_read(p.b, out + CAP / 2, CAP), CAP / 2);
	cr_expect_eq(tu_check(out, CAP, 0, 4), -1);
	cr_expect_eq(mpk_link_read(p.b, out, 1), 0, "EOF only after the data");
	cr_expect_eq(mpk_link_close(p.a), 0, "idempotent");
	pair_close(&p);
}

Test(doorbell, rung_only_for_sleepers)
{
	struct pair p;
	char buf[16];

	pair_open(&p, CAP);
	/* Nobody sleeps: no byte. */
	cr_assert_eq(mpk_link_write(p.a, "a", 1), 1);
	cr_expect_eq(bells_pending(p.sv[1]), 0);
	cr_assert_eq(mpk_link_read(p.b, buf, 16), 1);
	/* The reader arms on an empty ring: the next write rings once. */
	cr_expect_eq(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_IN, 0);
	cr_assert_eq(mpk_link_write(p.a, "b", 1), 1);
	cr_assert_eq(mpk_link_write(p.a, "c", 1), 1);
	cr_expect_eq(bells_pending(p.sv[1]), 1, "one byte per sleep, not per write");
	/* Arming on a non-empty ring reports ready at once, and keeps the
	 * flag: an edge-triggered waiter may sleep on data it already
	 * announced, and the next write must ring. */
	cr_expect(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_IN);
	cr_assert_eq(mpk_link_read(p.b, buf, 16), 2);
	cr_assert_eq(mpk_link_write(p.a, "d", 1), 1);
	cr_expect_eq(bells_pending(p.sv[1]), 1, "armed while ready: the next write still rings");
	cr_assert_eq(mpk_link_read(p.b, buf, 16), 1);
	/* A caller that does not sleep after all may withdraw. */
	cr_expect(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_OUT);
	mpk_link_disarm(p.b, MPK_LINK_IN);
	cr_assert_eq(mpk_link_write(p.a, "e", 1), 1);
	cr_expect_eq(bells_pending(p.sv[1]), 0, "disarmed: no bell");
	cr_assert_eq(mpk_link_read(p.b, buf, 16), 1);
	/* Space: the writer fills the ring, arms for OUT, the read rings. */
	static uint8_t big[CAP];
	cr_assert_eq(mpk_link_write(p.a, big, CAP), CAP);
	cr_expect_eq(mpk_link_arm(p.a, MPK_LINK_OUT) & MPK_LINK_OUT, 0);
	cr_assert_eq(mpk_link_read(p.b, buf, 1), 1);
	cr_expect_eq(bells_pending(p.sv[0]), 1, "space freed rings the writer");
	/* Close rings a sleeper too. */
	cr_assert_eq(mpk_link_read(p.b, big, CAP), CAP - 1);
	cr_expect_eq(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_IN, 0);
	cr_assert_eq(mpk_link_close(p.a), 0);
	cr_expect_eq(bells_pending(p.sv[1]), 1, "close rings a sleeping reader");
	cr_expect(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_HUP);

	struct mpk_link_stats st;
	mpk_link_get_stats(p.a, &st);
	cr_expect_eq(st.tx_bytes, 5 + CAP);
	cr_expect_eq(st.tx_calls, 6);
	cr_expect_eq(st.bells_sent, 3);
	pair_close(&p);
}

Test(doorbell, hangup_is_end_of_stream)
{
	struct pair p;
	char buf[16];

	pair_open(&p, CAP);
	cr_assert_eq(mpk_link_write(p.a, "last", 4), 4);
	/* The peer dies without closing the link: only its socket closes. */
	close(p.sv[0]);
	p.sv[0] = socket(AF_UNIX, SOCK_STREAM, 0); /* keep pair_close simple */
	cr_expect(mpk_link_arm(p.b, MPK_LINK_IN) & MPK_LINK_HUP);
	cr_expect_eq(mpk_link_read(p.b, buf, 16), 4, "data written before death");
	cr_expect_eq(mpk_link_read(p.b, buf, 16), 0, "then EOF");
	cr_expect_eq(mpk_link_write(p.b, "x", 1), -EPIPE);
	pair_close(&p);
}

/* ------------------------------------------------------- growing rings */

#define BIG (1u << 20) /* a ring of 1 MiB: it starts at MPK_LINK_RING_START */

static struct mpk_ring_ctl *ctl_of(struct mpk_link *l, int ring)
{
	return &((struct mpk_link_hdr *)mpk__link_base(l))->ring[ring];
}

/* Ring r's capacity as published. */
static uint64_t cap_of(struct mpk_link *l, int ring)
{
	return UINT64_C(1) << MPK_GEOM_SHIFT(__atomic_load_n(&ctl_of(l, ring)->geom, __ATOMIC_RELAXED));
}

static void set_geom(struct mpk_link *l, int ring, uint64_t g)
{
	__atomic_store_n(&ctl_of(l, ring)->geom, g, __ATOMIC_RELAXED);
}

/* Bytes of the memfd the kernel has allocated: pages any index reached. */
static uint64_t allocated(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* Writes n bytes of stream seed 7 at *off through a and reads them back
 * through b, checking every byte. */
static void pass(struct pair *p, size_t n, uint64_t *off)
{
	static uint8_t in[BIG], out[BIG];
	size_t w = 0, r = 0;

	cr_assert(n <= BIG);
	tu_fill(in, n, *off, 7);
	while (r < n) {
		ssize_t k;

		if (w < n) {
			k = mpk_link_write(p->a, in + w, n - w);
			cr_assert(k > 0 || k == -EAGAIN, "write: %zd", k);
			w += k > 0 ? (size_t)k : 0;
		}
		k = mpk_link_read(p->b, out + r, n - r);
		cr_assert(k > 0 || k == -EAGAIN, "read: %zd", k);
		r += k > 0 ? (size_t)k : 0;
	}
	cr_assert_eq(tu_check(out, n, *off, 7), -1, "corrupt near stream offset %llu",
		     (unsigned long long)*off);
	*off += n;
}

/* A link whose messages are small keeps its first capacity: its memory is
 * what those messages touched, not the ring's full size. */
Test(grow, small_messages_stay_small)
{
	struct pair p;
	uint64_t off = 0;

	pair_open(&p, BIG);
	cr_assert_eq(cap_of(p.a, 0), MPK_LINK_RING_START);
	cr_assert_eq(cap_of(p.a, 1), MPK_LINK_RING_START);
	for (int i = 0; i < 40000; i++) /* 8 MiB, 32 times round the ring */
		pass(&p, 200, &off);
	cr_expect_eq(cap_of(p.a, 0), MPK_LINK_RING_START);
	cr_expect_leq(allocated(p.fd), MPK_LINK_HDR_BYTES + MPK_LINK_RING_START,
		      "a quiet link holds %llu bytes; one ring's start is %u",
		      (unsigned long long)allocated(p.fd), MPK_LINK_RING_START);
	pair_close(&p);
}

/* A write larger than the ring's capacity, on an empty ring, grows it at
 * once: the whole write goes in one call, as into a socket's buffer. */
Test(grow, a_large_write_into_an_empty_ring)
{
	struct pair p;
	uint64_t off = 0;

	pair_open(&p, BIG);
	pass(&p, 1000, &off); /* not at index 0 */
	pass(&p, 3 * MPK_LINK_RING_START, &off);
	cr_expect_eq(cap_of(p.a, 0), BIG);
	cr_expect_eq(cap_of(p.a, 1), MPK_LINK_RING_START, "the other way did not grow");
	for (int i = 0; i < 20; i++) /* and it works across its wrap */
		pass(&p, 100000, &off);
	pair_close(&p);
}

/* The rest of in[w..) flows through with the writer ahead, checked. */
static void flow(struct pair *p, uint8_t *in, uint8_t *out, size_t n, size_t w, size_t r,
		 uint64_t seed)
{
	ssize_t k;

	while (r < n) {
		while (w < n && (k = mpk_link_write(p->a, in + w, n - w)) > 0)
			w += (size_t)k;
		k = mpk_link_read(p->b, out + r, 70000);
		cr_assert(k > 0, "read: %zd", k);
		r += (size_t)k;
	}
	cr_expect_eq(tu_check(out, n, 0, seed), -1);
}

/* A link of BIG whose ring 0 has carried S - 100 bytes (stream seed),
 * behind of them unread: the writer is 100 bytes before the small ring's
 * end. */
static void near_the_end(struct pair *p, uint8_t *in, size_t n, uint8_t *out, size_t behind,
			 uint64_t seed, size_t *w, size_t *r)
{
	const size_t S = MPK_LINK_RING_START;

	pair_open(p, BIG);
	tu_fill(in, n, 0, seed);
	cr_assert_eq(mpk_link_write(p->a, in, S - 100), (ssize_t)(S - 100));
	cr_assert_eq(mpk_link_read(p->b, out, S - 100 - behind), (ssize_t)(S - 100 - behind));
	*w = S - 100, *r = S - 100 - behind;
}

/*
 * A writer that reaches the ring's end while the reader is behind on its
 * earlier bytes grows the ring there, and goes on: a reader that falls
 * behind never meets a full ring of the start capacity, as a TCP reader
 * never meets one of 256 KiB (gRPC's backup poller, which a server's
 * shutdown waits on, starts at each EAGAIN).
 */
Test(grow, a_reader_behind_at_the_end_grows_the_ring)
{
	static uint8_t in[4 * BIG], out[4 * BIG];
	size_t w, r;
	struct pair p;
	ssize_t k;

	near_the_end(&p, in, sizeof(in), out, 100, 9, &w, &r);
	cr_assert_eq(mpk_link_write(p.a, in + w, 1000), 1000, "across the end");
	w += 1000;
	cr_expect_eq(cap_of(p.a, 0), BIG, "not grown at the end with 100 bytes unread");
	cr_expect_eq(mpk_link_writable(p.a), (ssize_t)(BIG - (w - r)));
	k = mpk_link_write(p.a, in + w, BIG);
	cr_assert_eq(k, (ssize_t)(BIG - (w - r)), "the grown ring's room: %zd", k);
	w += (size_t)k;
	cr_expect_eq(mpk_link_write(p.a, in + w, 1), -EAGAIN, "full at its room, not before");
	flow(&p, in, out, sizeof(in), w, r, 9);
	pair_close(&p);
}

/* A reader that stops: the writer's small writes fill the whole room, never
 * EAGAIN at the start capacity, wherever the stop falls. */
Test(grow, a_stopped_reader_leaves_the_whole_room)
{
	static uint8_t in[3 * BIG], out[3 * BIG];
	const size_t S = MPK_LINK_RING_START;
	const size_t stops[] = {0, 1000, S / 2, S - 1, S + 1, 3 * S / 2};

	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		size_t w = 0, r = 0;
		struct pair p;
		ssize_t k;

		pair_open(&p, BIG);
		tu_fill(in, sizeof(in), 0, 11);
		/* In step up to the stop: 512-byte writes, each read. */
		while (w < stops[i]) {
			size_t n = stops[i] - w < 512 ? stops[i] - w : 512;

			cr_assert_eq(mpk_link_write(p.a, in + w, n), (ssize_t)n);
			cr_assert_eq(mpk_link_read(p.b, out + r, n), (ssize_t)n);
			w += n, r += n;
		}
		while ((k = mpk_link_write(p.a, in + w, 512)) > 0)
			w += (size_t)k;
		cr_expect_eq(k, -EAGAIN);
		cr_expect_eq(w - r, BIG, "stopped at %zu: EAGAIN with %zu bytes unread", stops[i],
			     w - r);
		flow(&p, in, out, sizeof(in), w, r, 11);
		pair_close(&p);
	}
}

/*
 * A call that would cross the end of an empty ring moves the ring's base
 * to its first byte's page instead, so no unread byte ever straddles the
 * end of a ring not yet grown: a reader that stops right after such a call
 * still leaves the writer the whole room.
 */
Test(grow, a_call_across_the_end_of_an_empty_ring_moves_its_base)
{
	static uint8_t in[4 * BIG], out[4 * BIG];
	const size_t S = MPK_LINK_RING_START;
	size_t w, r;
	struct pair p;
	ssize_t k;

	near_the_end(&p, in, sizeof(in), out, 0, 13, &w, &r);
	cr_assert_eq(mpk_link_write(p.a, in + w, 1000), 1000);
	w += 1000;
	cr_expect_eq(cap_of(p.a, 0), S, "grown for a call's own bytes");
	cr_expect_eq(MPK_GEOM_BASE(__atomic_load_n(&ctl_of(p.a, 0)->geom, __ATOMIC_RELAXED)),
		     (S - 100) & ~(uint64_t)4095, "the base did not move to the call's page");
	while ((k = mpk_link_write(p.a, in + w, 512)) > 0)
		w += (size_t)k;
	cr_expect_eq(w - r, BIG, "EAGAIN with %zu bytes unread", w - r);
	flow(&p, in, out, sizeof(in), w, r, 13);
	pair_close(&p);
}

/* The geometry is the peer's to lie about: a capacity outside the ring's
 * room or not a power of two, a shrink, bits where none belong, a base
 * that moves unread bytes or lies past the reader's head: each breaks the
 * link (and nothing outside the ring is ever touched). */
Test(grow, a_peer_lying_about_the_geometry)
{
	const unsigned s0 = __builtin_ctz(MPK_LINK_RING_START);
	const uint64_t lies[] = {
		MPK_GEOM(0, s0 - 1),	    /* shrinks */
		MPK_GEOM(0, 11),	    /* below MPK_LINK_RING_MIN */
		MPK_GEOM(0, 21),	    /* beyond the ring's room (1 MiB) */
		MPK_GEOM(0, 63),
		MPK_GEOM(0, s0) | 0x100,    /* bits between base and shift */
		MPK_GEOM(4096, s0),	    /* a base moved, the capacity not */
		MPK_GEOM(4096, 20),	    /* a base that is no block start */
		MPK_GEOM(UINT64_C(1) << 20, 20), /* a base past the reader's head */
	};
	uint8_t buf[64];

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		struct pair p;

		pair_open(&p, BIG);
		cr_assert_eq(mpk_link_write(p.a, "xyz", 3), 3);
		cr_assert_eq(mpk_link_read(p.b, buf, 1), 1);
		set_geom(p.a, 0, lies[i]);
		cr_expect_eq(mpk_link_read(p.b, buf, 1), -ECONNRESET, "geometry %#llx",
			     (unsigned long long)lies[i]);
		pair_close(&p);
	}
	/* A base moved at the same capacity is taken with no byte unread,
	 * and then places the next bytes. */
	{
		struct pair p;

		pair_open(&p, BIG);
		cr_assert_eq(mpk_link_write(p.a, "xyz", 3), 3);
		cr_assert_eq(mpk_link_read(p.b, buf, 3), 3);
		set_geom(p.a, 0, MPK_GEOM(8192, __builtin_ctz(MPK_LINK_RING_START)));
		cr_expect_eq(mpk_link_read(p.b, buf, 8), -EAGAIN);
		pair_close(&p);
	}
	/* And the honest change is taken: grown with two bytes unread. */
	{
		struct pair p;

		pair_open(&p, BIG);
		cr_assert_eq(mpk_link_write(p.a, "xyz", 3), 3);
		cr_assert_eq(mpk_link_read(p.b, buf, 1), 1);
		set_geom(p.a, 0, MPK_GEOM(0, 20));
		cr_expect_eq(mpk_link_read(p.b, buf, 8), 2);
		cr_expect_eq(memcmp(buf, "yz", 2), 0);
		pair_close(&p);
	}
}
