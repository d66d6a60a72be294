/* SPDX-License-Identifier: MIT */
/*
 * Ring data is just bytes. A peer that keeps honest indices but scribbles
 * over both rings' data (the bytes it published, the bytes the victim is
 * copying out, the victim's own unread output) while the victim reads and
 * writes: no crash, no broken link, every byte count exact.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"
#include "testutil.h"

#define CAP 4096u
#define PEER_BYTES (32u << 20) /* the peer's stream to the victim */
#define VICTIM_BYTES (32u << 20)

struct report {
	uint64_t produced, consumed;
	int ok;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void scribble(uint8_t *data, uint64_t *rng)
{
	uint64_t r = tu_rand(rng);
	size_t pos = (size_t)(r % CAP), n = 1 + (size_t)((r >> 16) % 512);

	if (n > CAP - pos)
		n = CAP - pos;
	if ((r >> 32) & 1)
		memset(data + pos, (int)(r >> 40), n);
	else
		tu_fill(data + pos, n, r, r >> 8);
}

/* An honest producer and consumer that cannot keep its hands off the data. */
__attribute__((noreturn)) static void peer(int fd, int side, int out)
{
	struct report rep = {0};
	struct mpk_ring_ctl *rx, *tx; /* the victim's */
	uint8_t *rxd, *txd;
	uint64_t rng = 0x5c1b, tail, head;
	struct hs_raw raw;
	double end = now_s() + 60;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(120);
	if (hs_raw_map(&raw, fd) < 0)
		_exit(2);
	rx = &raw.h->ring[!side];
	tx = &raw.h->ring[side];
	rxd = hs_raw_data(&raw, !side);
	txd = hs_raw_data(&raw, side);
	tail = __atomic_load_n(&rx->tail, __ATOMIC_RELAXED);
	head = __atomic_load_n(&tx->head, __ATOMIC_RELAXED);
	while (now_s() < end) {
		uint64_t vh = __atomic_load_n(&rx->head, __ATOMIC_ACQUIRE);
		uint64_t vt = __atomic_load_n(&tx->tail, __ATOMIC_ACQUIRE);
		uint32_t vf = __atomic_load_n(&tx->prod_flags, __ATOMIC_ACQUIRE);

		if (rep.produced < PEER_BYTES) {
			uint64_t room = CAP - (tail - vh), k = tu_rand(&rng) % (room + 1);

			if (k > PEER_BYTES - rep.produced)
				k = PEER_BYTES - rep.produced;
			for (uint64_t i = 0; i < k; i++)
				rxd[(tail + i) & (CAP - 1)] = (uint8_t)tu_rand(&rng);
			tail += k;
			rep.produced += k;
			__atomic_store_n(&rx->tail, tail, __ATOMIC_RELEASE);
			if (rep.produced == PEER_BYTES)
				__atomic_store_n(&rx->prod_flags, MPK_PROD_SHUT, __ATOMIC_RELEASE);
		}
		if (vt != head) {
			uint64_t k = 1 + tu_rand(&rng) % (vt - head);

			head += k;
			rep.consumed += k;
			__atomic_store_n(&tx->head, head, __ATOMIC_RELEASE);
		}
		for (int i = 0; i < 4; i++) {
			scribble(rxd, &rng);
			scribble(txd, &rng);
		}
		if ((vf & MPK_PROD_CLOSED) && head == vt && rep.produced == PEER_BYTES) {
			rep.ok = 1;
			break;
		}
	}
	_exit(write(out, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 3);
}

static void run(int side)
{
	struct mpk_link *l;
	struct report rep;
	uint64_t rng = 0xb17e5 + (uint64_t)side, got_bytes = 0, put_bytes = 0;
	static uint8_t buf[2 * CAP];
	double end;
	int fd = mpk_link_create(CAP), p[2], st, eof = 0;
	pid_t pid;

	cr_assert_geq(fd, 0);
	cr_assert_eq(mpk_link_attach(fd, side, &l), 0);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		peer(fd, side, p[1]);
	}
	close(p[1]);
	end = now_s() + 60;
	while (!eof || put_bytes < VICTIM_BYTES) {
		uint64_t r = tu_rand(&rng);
		size_t len = 1 + (size_t)((r >> 8) % sizeof(buf));
		ssize_t n;
		int moved = 0;

		cr_assert_lt(now_s(), end, "stalled: read %llu of %u, wrote %llu of %u",
			     (unsigned long long)got_bytes, PEER_BYTES,
			     (unsigned long long)put_bytes, VICTIM_BYTES);
		if (!eof) {
			if (r & 1) {
				struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};

				n = mpk_link_readv(l, iov, 2, (r >> 1) & 1 ? MPK_READ_PEEK : 0);
				if (n > 0 && !((r >> 1) & 1))
					got_bytes += (uint64_t)n;
			} else {
				n = mpk_link_read(l, buf, len);
				if (n > 0)
					got_bytes += (uint64_t)n;
			}
			cr_assert(n == -EAGAIN || (n >= 0 && (size_t)n <= len && n <= (ssize_t)CAP),
				  "read under scribbling returned %zd", n);
			eof = n == 0;
			moved |= n > 0;
		}
		if (put_bytes < VICTIM_BYTES) {
			if (len > VICTIM_BYTES - put_bytes)
				len = VICTIM_BYTES - put_bytes;
			n = mpk_link_write(l, buf, len);
			cr_assert(n == -EAGAIN || (n > 0 && (size_t)n <= len),
				  "write under scribbling returned %zd", n);
			if (n > 0)
				put_bytes += (uint64_t)n;
			moved |= n > 0;
		}
		n = mpk_link_readable(l);
		cr_assert(n >= 0 && n <= (ssize_t)CAP, "readable %zd", n);
		n = mpk_link_writable(l);
		cr_assert(n >= 0 && n <= (ssize_t)CAP, "writable %zd", n);
		cr_assert_eq(mpk_link_poll(l) & MPK_LINK_ERR, 0);
		if (!moved)
			sched_yield();
	}
	cr_assert_eq(got_bytes, PEER_BYTES, "every byte the peer published, then EOF");
	cr_assert_eq(mpk_link_close(l), 0);
	cr_assert_eq(read(p[0], &rep, sizeof(rep)), (ssize_t)sizeof(rep));
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert(rep.ok, "the peer did not see our close");
	cr_assert_eq(rep.consumed, put_bytes);
	mpk_link_detach(l);
	close(fd);
}

Test(scribble, data_is_just_bytes_side0, .timeout = 180)
{
	run(0);
}

Test(scribble, data_is_just_bytes_side1, .timeout = 180)
{
	run(1);
}
