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
