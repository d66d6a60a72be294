/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lab.h"
#include "testutil.h"

#define CANARY 0xa5
#define MAX_IOV 6

void lab_start(struct lab *b, uint64_t seed)
{
	memset(b, 0, sizeof(*b));
	b->fd = b->bell = -1;
	b->rng = seed | 1;
	b->pid = peer_spawn(seed ^ UINT64_C(0x9e3779b97f4a7c15), &b->ctl);
	cr_assert_gt(b->pid, 0, "fork of the hostile peer: %s", strerror((int)-b->pid));
}

void lab_droplink(struct lab *b)
{
	if (!b->l)
		return;
	hs_detach_guarded(b->l, &b->g);
	b->l = NULL;
	hs_raw_unmap(&b->raw);
	close(b->fd);
	close(b->bell);
	b->fd = b->bell = -1;
}

uint64_t lab_stop(struct lab *b)
{
	int64_t lies;

	lab_droplink(b);
	lies = peer_quit(b->pid, b->ctl);
	cr_assert_geq(lies, 0, "the hostile peer did not exit cleanly");
	return (uint64_t)lies;
}

static void call(struct lab *b, struct peer_msg *m, const int *fds, int nfds,
		 struct peer_reply *rep)
{
	int r = peer_call(b->ctl, m, fds, nfds, rep);

	cr_assert_eq(r, 0, "peer request %u: %s", m->op, strerror(-r));
}

void lab_newlink(struct lab *b, uint64_t cap, int side, uint64_t base0, uint64_t base1,
		 unsigned lie_pct)
{
	struct peer_msg m = {.op = PEER_NEWLINK, .arg = (uint32_t)side, .a = lie_pct};
	struct peer_reply rep;
	int sv[2], fds[2], r;

	lab_droplink(b);
	b->fd = hs_memfd_valid(cap);
	cr_assert_geq(b->fd, 0, "memfd: %s", strerror(-b->fd));
	r = hs_raw_map(&b->raw, b->fd);
	cr_assert_eq(r, 0, "raw map: %s", strerror(-r));
	/* Before the attach, as a peer that wrote early would have. */
	b->raw.h->ring[0].tail = b->raw.h->ring[0].head = base0;
	b->raw.h->ring[1].tail = b->raw.h->ring[1].head = base1;
	r = hs_attach_guarded(b->fd, side, &b->l, &b->g);
	cr_assert_eq(r, 0, "attach of a valid link: %s", strerror(-r));
	cr_assert_eq(mpk_link_ring_bytes(b->l), cap);
	b->side = side;
	b->cap = cap;
	b->links++;
	b->guarded += b->g.lo != NULL;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	b->bell = sv[0];
	mpk_link_set_doorbell(b->l, sv[0], NULL, NULL);
	fds[0] = b->fd;
	fds[1] = sv[1];
	call(b, &m, fds, 2, &rep);
	close(sv[1]);
	hs_model_init_raw(&b->m, &b->raw, side);
}

void lab_set(struct lab *b, enum hs_role role, int ring, uint64_t value)
{
	struct peer_msg m = {.op = PEER_SET, .arg = peer_field(role, ring), .a = value};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
}

uint64_t lab_produce(struct lab *b, uint64_t n)
{
	struct peer_msg m = {.op = PEER_PRODUCE, .a = n, .b = b->m.rx_head};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
	return rep.value;
}

uint64_t lab_consume(struct lab *b, uint64_t n)
{
	struct peer_msg m = {.op = PEER_CONSUME, .a = n, .b = b->m.tx_tail};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
	return rep.value;
}

struct peer_reply lab_step(struct lab *b)
{
	/* The victim's indices, as an attacker reads them from the header
	 * (where it may have scribbled over them itself). */
	struct peer_msg m = {.op = PEER_STEP, .a = b->m.rx_head, .b = b->m.tx_tail};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
	return rep;
}

void lab_freerun(struct lab *b)
{
	struct peer_msg m = {.op = PEER_FREERUN};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
}

uint64_t lab_count_lies(struct lab *b)
{
	struct peer_msg m = {.op = PEER_COUNT};
	struct peer_reply rep;

	call(b, &m, NULL, 0, &rep);
	return rep.lies;
}

/* Lengths around the edges: 1, cap, cap + 1, 2 cap, and in between. */
static size_t pick_len(struct lab *b)
{
	uint64_t r = tu_rand(&b->rng), cap = b->cap;

	switch (r % 8) {
	case 0: return 1;
	case 1: return 1 + (r >> 8) % 16;
	case 2: return (size_t)cap;
	case 3: return (size_t)cap + 1;
	case 4: return (size_t)(2 * cap);
	case 5: return 1 + (size_t)((r >> 8) % cap);
	case 6: return 1 + (size_t)((r >> 8) % 64);
	default: return 1 + (size_t)((r >> 8) % (2 * cap));
	}
}

/* Bytes that differ with their position, cheaply (writes go up to 2 cap). */
static void fast_fill(uint8_t *p, size_t n, uint64_t *rng)
{
	uint64_t x = tu_rand(rng) | 1;

	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, n - i < 8 ? n - i : 8);
	}
}

/*
 * len split over 1 (how == 0) or 1..5 iovecs, some empty. Each gets its
 * own allocation of exactly its length, so ASan flags a byte copied past
 * one; read buffers are filled with CANARY, write buffers with data.
 */
static int make_iov(struct lab *b, struct iovec *iov, size_t len, int how, int for_write)
{
	int cnt = how == 0 ? 1 : 1 + (int)(tu_rand(&b->rng) % 5);
	size_t left = len;

	for (int i = 0; i < cnt; i++) {
		size_t k = i == cnt - 1 ? left : (size_t)(tu_rand(&b->rng) % (left + 1));

		if (i < cnt - 1 && tu_rand(&b->rng) % 4 == 0)
			k = 0;
		left -= k;
		iov[i].iov_len = k;
		iov[i].iov_base = k || tu_rand(&b->rng) % 2 ? malloc(k ? k : 1) : NULL;
		cr_assert(!k || iov[i].iov_base);
		if (!k)
			continue;
		if (for_write)
			fast_fill(iov[i].iov_base, k, &b->rng);
		else
			memset(iov[i].iov_base, CANARY, k);
	}
	return cnt;
}

static void free_iov(struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		free(iov[i].iov_base);
}

/* A read of n bytes wrote nothing past them. */
static void check_canary(const struct iovec *iov, int cnt, size_t n)
{
	static uint8_t canary[4096];

	if (!canary[0])
		memset(canary, CANARY, sizeof(canary));
	for (int i = 0; i < cnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t skip = n < iov[i].iov_len ? n : iov[i].iov_len;

		n -= skip;
		for (size_t j = skip; j < iov[i].iov_len; j += sizeof(canary)) {
			size_t c = iov[i].iov_len - j < sizeof(canary) ? iov[i].iov_len - j
								      : sizeof(canary);

			cr_assert(!memcmp(p + j, canary, c),
				  "read wrote past the %zu bytes it returned", skip);
		}
	}
}

static void tally(struct lab *b, ssize_t got)
{
	b->ops++;
	if (got > 0)
		b->ok_data++;
	else if (got == -EAGAIN)
		b->eagain++;
	else if (got == -EPIPE)
		b->epipe++;
	else if (got == -ECONNRESET)
		b->econnreset++;
}

static ssize_t do_read(struct lab *b, size_t len, int how, int strict)
{
	struct iovec iov[MAX_IOV];
	struct hs_view v;
	uint64_t pos = b->m.rx_head;
	int cnt = make_iov(b, iov, len, how, 0);
	ssize_t got;

	hs_view_load(&v, &b->raw, b->side);
	if (how == 0)
		got = mpk_link_read(b->l, iov[0].iov_base, len);
	else
		got = mpk_link_readv(b->l, iov, cnt, how == 2 ? MPK_READ_PEEK : 0);
	HS_CHECK(hs_check_read(&b->m, strict ? &v : NULL, len, how == 2, got));
	check_canary(iov, cnt, got > 0 ? (size_t)got : 0);
	if (strict && got > 0) {
		/* The peer is idle: what we got is what the ring holds. */
		ssize_t d = hs_ring_cmp(hs_raw_data(&b->raw, !b->side), b->cap, pos, iov, cnt,
					(size_t)got);

		cr_assert_eq(d, -1, "read bytes differ from the ring at +%zd", d);
		if (how != 2)
			cr_assert_eq(b->raw.h->ring[!b->side].head, b->m.rx_head,
				     "read did not publish its head");
	}
	tally(b, got);
	free_iov(iov, cnt);
	return got;
}

static ssize_t do_write(struct lab *b, size_t len, int how, int strict)
{
	struct iovec iov[MAX_IOV];
	struct hs_view v;
	uint64_t pos = b->m.tx_tail;
	int cnt = make_iov(b, iov, len, how, 1);
	ssize_t got;

	hs_view_load(&v, &b->raw, b->side);
	if (how == 0)
		got = mpk_link_write(b->l, iov[0].iov_base, len);
	else
		got = mpk_link_writev(b->l, iov, cnt);
	HS_CHECK(hs_check_write(&b->m, strict ? &v : NULL, len, got));
	if (strict && got > 0) {
		ssize_t d = hs_ring_cmp(hs_raw_data(&b->raw, b->side), b->cap, pos, iov, cnt,
					(size_t)got);

		cr_assert_eq(d, -1, "written bytes not in the ring at +%zd", d);
		cr_assert_eq(b->raw.h->ring[b->side].tail, b->m.tx_tail,
			     "write did not publish its tail");
	}
	tally(b, got);
	free_iov(iov, cnt);
	return got;
}

ssize_t lab_read(struct lab *b, size_t len, int how)
{
	return do_read(b, len, how, 1);
}

ssize_t lab_write(struct lab *b, size_t len, int how)
{
	return do_write(b, len, how, 1);
}

/* Peek, then read at least as much: the same bytes, none lost. */
static void peek_then_read(struct lab *b)
{
	size_t len = pick_len(b);
	uint8_t *p = malloc(len), *q = malloc(len + 64);
	struct iovec iov = {.iov_base = q, .iov_len = len + 64};
	struct hs_view v;
	ssize_t n, r;

	cr_assert(p && q);
	memset(q, CANARY, len + 64);
	hs_view_load(&v, &b->raw, b->side);
	n = mpk_link_readv(b->l, &(struct iovec){.iov_base = p, .iov_len = len}, 1,
			   MPK_READ_PEEK);
	HS_CHECK(hs_check_read(&b->m, &v, len, 1, n));
	r = mpk_link_read(b->l, q, len + 64);
	HS_CHECK(hs_check_read(&b->m, &v, len + 64, 0, r));
	if (n > 0) {
		cr_assert_geq(r, n, "a peek of %zd bytes, then a read of %zd", n, r);
		cr_assert_eq(memcmp(p, q, (size_t)n), 0, "peeked bytes differ from read ones");
	}
	check_canary(&iov, 1, r > 0 ? (size_t)r : 0);
	tally(b, r);
	free(p);
	free(q);
}

static void do_poll(struct lab *b, int strict, int arm)
{
	struct hs_view v;
	unsigned want = (unsigned)(tu_rand(&b->rng) % 4), got;
	int broken = b->m.broken;

	hs_view_load(&v, &b->raw, b->side);
	got = arm ? mpk_link_arm(b->l, want) : mpk_link_poll(b->l);
	HS_CHECK(hs_check_poll(&b->m, strict ? &v : NULL, got));
	if (strict) {
		/* The reading side alone says the same, whatever the peer
		 * wrote (in lockstep nothing moves in between). */
		uint64_t g_all, g_rx;
		unsigned all = mpk_link_poll_gen(b->l, &g_all, NULL);
		unsigned rx = mpk_link_poll_rx(b->l, &g_rx);

		cr_assert_eq(rx, all & ~MPK_LINK_OUT, "poll_rx %#x, poll %#x", rx, all);
		cr_assert_eq(g_rx, g_all, "rx_gen %llu, poll_gen's %llu", (unsigned long long)g_rx,
			     (unsigned long long)g_all);
	}
	if (arm && strict && !broken && !(got & (want | MPK_LINK_HUP | MPK_LINK_ERR))) {
		/* It will sleep: it said so where the peer looks before
		 * ringing. (Ready instead, it may take the flags back.) */
		if (want & MPK_LINK_IN)
			cr_assert_eq(b->raw.h->ring[!b->side].data_waiting, 1,
				     "arm(%#x) -> %#x: data_waiting %#x", want, got,
				     b->raw.h->ring[!b->side].data_waiting);
		if (want & MPK_LINK_OUT)
			cr_assert_eq(b->raw.h->ring[b->side].space_waiting, 1,
				     "arm(%#x) -> %#x: space_waiting %#x", want, got,
				     b->raw.h->ring[b->side].space_waiting);
	}
	b->ops++;
}

static void bad_args(struct lab *b)
{
	char buf[8];
	struct iovec big[2] = {{.iov_base = buf, .iov_len = SSIZE_MAX}, {.iov_base = buf, .iov_len = 2}};
	struct iovec one = {.iov_base = buf, .iov_len = sizeof(buf)};

	/* Argument errors come first, broken link or not, and touch nothing. */
	switch (tu_rand(&b->rng) % 6) {
	case 0:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_readv(b->l, &one, 1, 0x2)));
		break;
	case 1:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_readv(b->l, &one, -1, 0)));
		break;
	case 2:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_writev(b->l, &one, -1)));
		break;
	case 3:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_readv(b->l, &one, IOV_MAX + 1, 0)));
		break;
	case 4:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_readv(b->l, big, 2, 0)));
		break;
	default:
		HS_CHECK(hs_check_einval(&b->m, mpk_link_writev(b->l, big, 2)));
		break;
	}
	b->ops++;
}

static void zero_len(struct lab *b, int strict)
{
	struct hs_view v;
	char c = 0;

	hs_view_load(&v, &b->raw, b->side);
	switch (tu_rand(&b->rng) % 4) {
	case 0:
		HS_CHECK(hs_check_read(&b->m, strict ? &v : NULL, 0, 0, mpk_link_read(b->l, &c, 0)));
		break;
	case 1:
		HS_CHECK(hs_check_read(&b->m, strict ? &v : NULL, 0, 1,
				       mpk_link_readv(b->l, NULL, 0, MPK_READ_PEEK)));
		break;
	case 2:
		HS_CHECK(hs_check_write(&b->m, strict ? &v : NULL, 0, mpk_link_write(b->l, &c, 0)));
		break;
	default:
		HS_CHECK(hs_check_write(&b->m, strict ? &v : NULL, 0, mpk_link_writev(b->l, NULL, 0)));
		break;
	}
	b->ops++;
}

void lab_random_op(struct lab *b, int strict)
{
	unsigned r = (unsigned)(tu_rand(&b->rng) % 1000);
	struct hs_view v;

	if (r < 200) {
		do_read(b, pick_len(b), 0, strict);
	} else if (r < 300) {
		do_read(b, pick_len(b), 1, strict);
	} else if (r < 380) {
		do_read(b, pick_len(b), 2, strict);
	} else if (r < 430) {
		if (strict)
			peek_then_read(b);
		else
			do_read(b, pick_len(b), 0, strict);
	} else if (r < 610) {
		do_write(b, pick_len(b), 0, strict);
	} else if (r < 700) {
		do_write(b, pick_len(b), 1, strict);
	} else if (r < 750) {
		do_poll(b, strict, 0);
	} else if (r < 800) {
		do_poll(b, strict, 1);
	} else if (r < 850) {
		hs_view_load(&v, &b->raw, b->side);
		HS_CHECK(hs_check_readable(&b->m, strict ? &v : NULL, mpk_link_readable(b->l)));
		b->ops++;
	} else if (r < 900) {
		hs_view_load(&v, &b->raw, b->side);
		HS_CHECK(hs_check_writable(&b->m, strict ? &v : NULL, mpk_link_writable(b->l)));
		b->ops++;
	} else if (r < 940) {
		zero_len(b, strict);
	} else if (r < 960) {
		bad_args(b);
	} else if (r < 995) {
		do_read(b, pick_len(b), (int)(tu_rand(&b->rng) % 3), strict);
	} else if (r < 998) {
		/* Rare: a shut link has one direction left to test. */
		int first = !b->m.tx_shut, got = mpk_link_shutdown_write(b->l);

		HS_CHECK(hs_check_shutdown(&b->m, got));
		if (strict && first)
			cr_assert_eq(b->raw.h->ring[b->side].prod_flags, MPK_PROD_SHUT);
		b->ops++;
	} else {
		HS_CHECK(hs_check_close(&b->m, mpk_link_close(b->l)));
		b->ops++;
	}
}

void lab_expect_broken(struct lab *b)
{
	struct mpk_link *l = b->l;
	char buf[64];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	unsigned need = MPK_LINK_ERR | MPK_LINK_IN | MPK_LINK_OUT;

	cr_assert(b->m.broken, "the model does not think the link is broken");
	cr_assert_eq(mpk_link_read(l, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(mpk_link_readv(l, &iov, 1, 0), -ECONNRESET);
	cr_assert_eq(mpk_link_readv(l, &iov, 1, MPK_READ_PEEK), -ECONNRESET);
	cr_assert_eq(mpk_link_read(l, buf, 0), -ECONNRESET, "even a 0-byte read");
	cr_assert_eq(mpk_link_write(l, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(mpk_link_writev(l, &iov, 1), -ECONNRESET);
	cr_assert_eq(mpk_link_write(l, buf, 0), -ECONNRESET, "even a 0-byte write");
	cr_assert_eq(mpk_link_readable(l), -ECONNRESET);
	cr_assert_eq(mpk_link_writable(l), -ECONNRESET);
	cr_assert_eq(mpk_link_poll(l) & need, need);
	cr_assert_eq(mpk_link_arm(l, MPK_LINK_IN | MPK_LINK_OUT) & need, need);
	cr_assert_eq(mpk_link_shutdown_write(l), -ECONNRESET);
	cr_assert_eq(mpk_link_close(l), -ECONNRESET);
	b->m.tx_shut = 1;
}
