/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a hostile peer's whole say over one link.
 *
 * Input layout:
 *   [0, 4096)     the header page, exactly as written into the memfd
 *                 (a shorter input is padded with zeros);
 *   4096..4099    how the memfd is made: ring size, our side, file size
 *                 mode and delta, seals (see make_link);
 *   4100..        operations: our calls on the link, and the peer's
 *                 writes into the header, ring data and doorbell between
 *                 them (see run_ops).
 *
 * Beyond crashes, sanitizer reports and leaks, every return value is
 * checked against the contract model of tests/hostile/hostile.c: the peer
 * here writes only between our calls, so the model knows exactly what each
 * call saw and predicts its result. A disagreement aborts (a finding).
 * The link mapping sits between PROT_NONE pages when the kernel allows, so
 * an access just outside it faults rather than reading a neighbour.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define HDR MPK_LINK_HDR_BYTES
#define MAX_RING 65536u
#define MAX_OPS 96

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t take8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint64_t take(struct in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)take8(in) << (8 * i);
	return v;
}

__attribute__((noreturn, format(printf, 1, 2)))
static void finding(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_attach: contract violated: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

#define CHECK(expr)                                   \
	do {                                          \
		const char *e_ = (expr);              \
		if (e_)                               \
			finding("%s", e_);            \
	} while (0)

static uint64_t ring_of(unsigned sel)
{
	return (uint64_t)4096 << (sel % 5); /* 4096 .. 65536 */
}

/* The capacity geometry g gives a ring of rb bytes (link_abi.h): a
 * power of two from MPK_LINK_RING_MIN to rb at a 4096-aligned base; 0
 * when g is one no honest creator or peer writes. */
static uint64_t geom_cap(uint64_t g, uint64_t rb)
{
	unsigned s = MPK_GEOM_SHIFT(g);

	if ((g & MPK_GEOM_LOW & ~MPK_GEOM_SHIFT_MASK) ||
	    s < (unsigned)__builtin_ctzll(MPK_LINK_RING_MIN) || s > (unsigned)__builtin_ctzll(rb))
		return 0;
	return UINT64_C(1) << s;
}

/* What mpk_link_attach must answer for this memfd, by ring.h's rules.
 * *exact: both rings have the geometry mpk_link_create gives them, the
 * one the byte model knows (else only the loose contract applies). */
static int attach_expect(const struct mpk_link_hdr *h, uint64_t file, unsigned seals, int side,
			 int *exact)
{
	uint64_t rb = h->ring_bytes, tx_used, rx_used, tx_cap, rx_cap;

	if ((seals & HS_SEALS_OK) != HS_SEALS_OK || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return -EINVAL;
	if (file < HDR + 2 * (uint64_t)MPK_LINK_RING_MIN || file > HDR + 2 * (uint64_t)MPK_LINK_RING_MAX)
		return -EINVAL;
	if ((h->flags & ~MPK_HDR_VALID) || h->magic != MPK_LINK_MAGIC ||
	    h->version != MPK_LINK_VERSION ||
	    h->hdr_bytes != MPK_LINK_HDR_BYTES || rb < MPK_LINK_RING_MIN ||
	    rb > MPK_LINK_RING_MAX || (rb & (rb - 1)) || h->total_bytes != file ||
	    h->total_bytes != HDR + 2 * rb)
		return -EPROTO;
	/* Starting indices no honest creator or peer could leave, in
	 * either ring, are refused at attach. */
	tx_used = h->ring[side].tail - h->ring[side].head;
	rx_used = h->ring[!side].tail - h->ring[!side].head;
	tx_cap = geom_cap(h->ring[side].geom, rb);
	rx_cap = geom_cap(h->ring[!side].geom, rb);
	if (!tx_cap || !rx_cap || tx_used > tx_cap || rx_used > rx_cap)
		return -EPROTO;
	*exact = h->ring[0].geom == hs_geom0(rb) && h->ring[1].geom == hs_geom0(rb);
	return 0;
}

/* Builds the memfd from the header page and the 4 config bytes. */
static int make_link(const uint8_t *page, const uint8_t *cfg, uint64_t *file, unsigned *seals)
{
	const struct mpk_link_hdr *h = (const void *)page;
	uint64_t rb = h->ring_bytes, r = ring_of(cfg[0] & 0x0f);
	int8_t delta = (int8_t)cfg[2];

	switch (cfg[1] % 8) {
	case 0: case 1: case 2: case 3:
		/* Follow the header when it is small, so valid links are easy. */
		*file = rb >= MPK_LINK_RING_MIN && rb <= MAX_RING ? HDR + 2 * rb : HDR + 2 * r;
		break;
	case 4:
		*file = HDR + 2 * r;
		break;
	case 5:
		*file = HDR + 2 * r + (uint64_t)(int64_t)delta * (cfg[3] & 0x80 ? 4096 : 1);
		break;
	case 6:
		*file = h->total_bytes <= HDR + 2 * MAX_RING + 8192 ? h->total_bytes : HDR + 2 * r;
		break;
	default:
		*file = (uint64_t)cfg[2] * 512;
		break;
	}
	switch (cfg[3] % 16) {
	case 10: *seals = HS_SEALS_OK & ~(F_SEAL_SHRINK << (cfg[3] >> 4) % 3); break;
	case 11: *seals = HS_SEALS_OK | F_SEAL_WRITE; break;
	case 12: *seals = HS_SEALS_OK | F_SEAL_FUTURE_WRITE; break;
	case 13: *seals = 0; break;
	default: *seals = HS_SEALS_OK; break;
	}
	return hs_memfd(page, HDR, *file, *seals, MFD_ALLOW_SEALING);
}

struct ctx {
	struct mpk_link *l;
	struct hs_raw raw;
	struct hs_model m;
	int side, bell_peer, bell_closed;
	uint64_t cap;
};

static size_t op_len(struct ctx *c, struct in *in)
{
	return (size_t)(take(in, 2) % (2 * c->cap + 1));
}

/* Up to 4 iovecs of exact-size allocations; some empty, some NULL. */
static int op_iov(struct ctx *c, struct in *in, struct iovec *iov, int for_write)
{
	int cnt = take8(in) % 5;

	for (int i = 0; i < cnt; i++) {
		size_t k = (size_t)(take(in, 2) % (c->cap + 1));

		iov[i].iov_len = k;
		iov[i].iov_base = k ? malloc(k) : NULL;
		if (k && !iov[i].iov_base)
			abort();
		if (k)
			memset(iov[i].iov_base, for_write ? 0x3c : 0xa5, k);
	}
	return cnt;
}

static void free_iov(struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		free(iov[i].iov_base);
}

static void do_read(struct ctx *c, struct iovec *iov, int cnt, int peek)
{
	struct hs_view v;
	uint64_t pos = c->m.rx_head;
	size_t len = hs_iov_len(iov, cnt);
	ssize_t got;

	hs_view_load(&v, &c->raw, c->side);
	if (cnt == 1 && !peek)
		got = mpk_link_read(c->l, iov[0].iov_base, iov[0].iov_len);
	else
		got = mpk_link_readv(c->l, iov, cnt, peek ? MPK_READ_PEEK : 0);
	CHECK(hs_check_read(&c->m, &v, len, peek, got));
	if (got > 0 && !c->m.loose &&
	    hs_ring_cmp(hs_raw_data(&c->raw, !c->side), c->cap, pos, iov, cnt, (size_t)got) != -1)
		finding("read %zd bytes that are not the ring's", got);
}

static void do_write(struct ctx *c, struct iovec *iov, int cnt)
{
	struct hs_view v;
	uint64_t pos = c->m.tx_tail;
	size_t len = hs_iov_len(iov, cnt);
	ssize_t got;

	hs_view_load(&v, &c->raw, c->side);
	if (cnt == 1)
		got = mpk_link_write(c->l, iov[0].iov_base, iov[0].iov_len);
	else
		got = mpk_link_writev(c->l, iov, cnt);
	CHECK(hs_check_write(&c->m, &v, len, got));
	if (got > 0 && !c->m.loose &&
	    hs_ring_cmp(hs_raw_data(&c->raw, c->side), c->cap, pos, iov, cnt, (size_t)got) != -1)
		finding("wrote %zd bytes that are not in the ring", got);
}

/* A value for a header field: raw bits, or near something that matters. */
static uint64_t peer_value(struct ctx *c, struct in *in, const struct hs_field *f)
{
	uint8_t mode = take8(in);
	int64_t d = (int8_t)take8(in);
	uint64_t cap = c->cap;

	switch (mode % 8) {
	case 0: return take(in, f->width);
	case 1: return c->m.rx_head + (uint64_t)d;
	case 2: return c->m.rx_head + cap + (uint64_t)d;
	case 3: return c->m.tx_tail + (uint64_t)d;
	case 4: return c->m.tx_tail - cap + (uint64_t)d;
	case 5: return hs_get(&c->raw, f) + (uint64_t)d;
	case 6: return c->m.rx_seen + (uint64_t)d;
	default: return (uint64_t)d;
	}
}

/* The honest peer moves too, so the lies land on rings with data. */
static void peer_produce(struct ctx *c, uint64_t n)
{
	struct mpk_ring_ctl *rc = &c->raw.h->ring[!c->side];
	uint8_t *d = hs_raw_data(&c->raw, !c->side);
	uint64_t tail = rc->tail, used = tail - c->m.rx_head;

	if (used > c->cap)
		return;
	if (n > c->cap - used)
		n = c->cap - used;
	for (uint64_t i = 0; i < n; i++)
		d[(tail + i) & (c->cap - 1)] = (uint8_t)((tail + i) * 131 >> 3);
	__atomic_store_n(&rc->tail, tail + n, __ATOMIC_RELEASE);
}

static void peer_consume(struct ctx *c, uint64_t n)
{
	struct mpk_ring_ctl *rc = &c->raw.h->ring[c->side];
	uint64_t head = rc->head, used = c->m.tx_tail - head;

	if (used > c->cap)
		return;
	__atomic_store_n(&rc->head, head + (n < used ? n : used), __ATOMIC_RELEASE);
}

static void run_ops(struct ctx *c, struct in *in)
{
	for (int op = 0; op < MAX_OPS && in->n; op++) {
		uint8_t code = take8(in);
		struct iovec iov[4];
		struct hs_view v;
		int cnt;

		switch (code % 16) {
		case 0: case 2: {
			size_t len = op_len(c, in);

			iov[0].iov_len = len;
			iov[0].iov_base = len ? malloc(len) : NULL;
			do_read(c, iov, 1, code % 16 == 2);
			free_iov(iov, 1);
			break;
		}
		case 1:
			cnt = op_iov(c, in, iov, 0);
			if (code & 0x80) {
				/* Bad flags: -EINVAL before anything else. */
				CHECK(hs_check_einval(&c->m, mpk_link_readv(c->l, iov, cnt,
									    2u << (code >> 5 & 3))));
			} else {
				do_read(c, iov, cnt, code & 0x40);
			}
			free_iov(iov, cnt);
			break;
		case 3: {
			size_t len = op_len(c, in);

			iov[0].iov_len = len;
			iov[0].iov_base = len ? malloc(len) : NULL;
			if (len)
				memset(iov[0].iov_base, code, len);
			do_write(c, iov, 1);
			free_iov(iov, 1);
			break;
		}
		case 4:
			cnt = op_iov(c, in, iov, 1);
			do_write(c, iov, cnt);
			free_iov(iov, cnt);
			break;
		case 5:
			hs_view_load(&v, &c->raw, c->side);
			CHECK(hs_check_poll(&c->m, &v, mpk_link_poll(c->l)));
			break;
		case 6:
			hs_view_load(&v, &c->raw, c->side);
			CHECK(hs_check_readable(&c->m, &v, mpk_link_readable(c->l)));
			break;
		case 7:
			hs_view_load(&v, &c->raw, c->side);
			CHECK(hs_check_writable(&c->m, &v, mpk_link_writable(c->l)));
			break;
		case 8:
			/* A hung-up doorbell makes the peer "gone" at the drain:
			 * from then on only the loose contract applies. */
			if (c->bell_closed)
				c->m.loose = 1;
			hs_view_load(&v, &c->raw, c->side);
			CHECK(hs_check_poll(&c->m, &v, mpk_link_arm(c->l, take8(in) & 3)));
			break;
		case 9:
			CHECK(hs_check_shutdown(&c->m, mpk_link_shutdown_write(c->l)));
			break;
		case 10:
			if (code & 0x10) /* rarer than the rest */
				CHECK(hs_check_close(&c->m, mpk_link_close(c->l)));
			break;
		case 11: {
			const struct hs_field *f = &hs_fields[take8(in) % hs_nfields];

			hs_set(&c->raw, f, peer_value(c, in, f));
			break;
		}
		case 12:
			peer_produce(c, take(in, 2));
			break;
		case 13:
			peer_consume(c, take(in, 2));
			break;
		case 14: {
			/* Scribble on ring data: it is only bytes. */
			uint64_t pos = take(in, 3) % (2 * c->cap);
			size_t n = take8(in);

			if (n > 2 * c->cap - pos)
				n = (size_t)(2 * c->cap - pos);
			memset(c->raw.base + HDR + pos, code, n);
			break;
		}
		default: {
			uint8_t b = take8(in);

			if (c->bell_closed)
				break;
			if (b & 0x80) {
				close(c->bell_peer);
				c->bell_closed = 1;
			} else {
				char buf[128];

				memset(buf, 1, sizeof(buf));
				if (send(c->bell_peer, buf, 1 + b, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
				    errno != EAGAIN)
					abort();
			}
			break;
		}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static _Alignas(MPK_CACHELINE) uint8_t page[HDR];
	struct mpk_link_hdr h;
	struct hs_guard g;
	struct mpk_link *l = (struct mpk_link *)&l;
	uint8_t cfg[4] = {0};
	struct in in;
	uint64_t file;
	unsigned seals;
	int fd, side, r, exp, exact = 0, sv[2];

	memset(page, 0, sizeof(page));
	memcpy(page, data, size < HDR ? size : HDR);
	if (size > HDR)
		memcpy(cfg, data + HDR, size - HDR < 4 ? size - HDR : 4);
	in.p = data + (size > HDR + 4 ? HDR + 4 : size);
	in.n = size > HDR + 4 ? size - HDR - 4 : 0;
	side = (cfg[0] >> 4) & 1;

	fd = make_link(page, cfg, &file, &seals);
	if (fd < 0) {
		if (fd == -EMFILE || fd == -ENFILE)
			finding("out of fds: something leaks them");
		return 0; /* a size ftruncate refuses: nothing to attach */
	}
	memcpy(&h, page, sizeof(h));
	exp = attach_expect(&h, file, seals, side, &exact);
	r = hs_attach_guarded(fd, side, &l, &g);
	if (r != exp)
		finding("attach of a %llu-byte memfd, seals %#x, side %d: %d, expected %d",
			(unsigned long long)file, seals, side, r, exp);
	if (r < 0) {
		if (l)
			finding("a refused attach left *out set");
		close(fd);
		return 0;
	}

	struct ctx c = {.l = l, .side = side, .cap = mpk_link_ring_bytes(l)};

	if (c.cap != h.ring_bytes)
		finding("attached with %llu-byte rings, header says %llu",
			(unsigned long long)c.cap, (unsigned long long)h.ring_bytes);
	if (hs_raw_map(&c.raw, fd) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	c.bell_peer = sv[1];
	mpk_link_set_doorbell(l, sv[0], NULL, NULL);
	hs_model_init(&c.m, c.cap, h.ring[!side].head, h.ring[side].tail, h.ring[side].head);
	/* A peer's geometry other than the creator's (smaller rings, or an
	 * offset base) is legal: the byte model does not follow it. */
	if (!exact)
		c.m.loose = 1;
	if (mpk_link_mac_required(l)) {
		/* Frames with tags: the byte model does not apply, but every
		 * frame parse runs on the fuzzer's ring bytes, under ASan, and
		 * results stay within the contract (loose checks). */
		static const uint8_t key[MPK_LINK_MAC_KEY_BYTES] = {7};

		if (mpk_link_set_mac(l, key) != 0)
			finding("set_mac on a MAC link failed");
		c.m.loose = 1;
	}
	run_ops(&c, &in);

	hs_detach_guarded(l, &g);
	hs_raw_unmap(&c.raw);
	close(sv[0]);
	if (!c.bell_closed)
		close(sv[1]);
	close(fd);
	return 0;
}
