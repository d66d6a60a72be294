/* SPDX-License-Identifier: MIT */
/*
 * MPKLINK_INTEGRITY=mac at the transport: frames with tags carry any byte
 * stream faithfully (sizes across the frame limit, iovecs, peek, wrap,
 * shutdown), and every change a peer makes to a frame in the shared ring
 * (payload, length, padding, tag, a replayed or reordered frame, a frame
 * under another key, a stream ending inside a frame) breaks the link with
 * -ECONNRESET before a single byte of that frame is delivered.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "link_internal.h"
#include "testutil.h"

#define CAP 65536u

static const uint8_t key[MPK_LINK_MAC_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

struct pair {
	int fd;
	struct mpk_link *a, *b;
};

static void pair_open(struct pair *p, size_t cap, const uint8_t *kb)
{
	p->fd = mpk_link_create_flags(cap, MPK_LINK_MAC);
	cr_assert_geq(p->fd, 0);
	cr_assert_eq(mpk_link_attach(p->fd, 0, &p->a), 0);
	cr_assert_eq(mpk_link_attach(p->fd, 1, &p->b), 0);
	cr_assert(mpk_link_mac_required(p->a) && mpk_link_mac_required(p->b));
	cr_assert_eq(mpk_link_set_mac(p->a, key), 0);
	cr_assert_eq(mpk_link_set_mac(p->b, kb ? kb : key), 0);
}

static void pair_close(struct pair *p)
{
	mpk_link_detach(p->a);
	mpk_link_detach(p->b);
	close(p->fd);
}

/* Side 0's TX ring as the hostile peer sees it (the test plays it). */
static struct mpk_ring_ctl *ring0(struct pair *p)
{
	return &((struct mpk_link_hdr *)mpk__link_base(p->a))->ring[0];
}

static uint8_t *data0(struct pair *p, uint64_t pos)
{
	return (uint8_t *)mpk__link_base(p->a) + MPK_LINK_HDR_BYTES + (pos & (CAP - 1));
}

Test(mac, refuses_use_without_key)
{
	int fd = mpk_link_create_flags(CAP, MPK_LINK_MAC);
	struct mpk_link *a, *plain;
	char c = 'x';
	int pfd = mpk_link_create(CAP);

	cr_assert_eq(mpk_link_attach(fd, 0, &a), 0);
	cr_assert_eq(mpk_link_write(a, &c, 1), -EPROTO);
	cr_assert_eq(mpk_link_read(a, &c, 1), -EPROTO);
	cr_assert_eq(mpk_link_attach(pfd, 0, &plain), 0);
	cr_assert_eq(mpk_link_set_mac(plain, key), -EINVAL, "a plain link takes no key");
	cr_assert_eq(mpk_link_set_mac(a, key), 0);
	cr_assert_eq(mpk_link_set_mac(a, key), -EINVAL, "once");
	mpk_link_detach(a);
	mpk_link_detach(plain);
	close(fd);
	close(pfd);
	cr_assert_eq(mpk_link_create_flags(CAP, 0x80), -EINVAL);
}

Test(mac, carries_a_stream_faithfully)
{
	static uint8_t in[1 << 20], out[1 << 20];
	struct pair p;
	size_t sent = 0, got = 0;
	uint64_t seed = 42;

	pair_open(&p, CAP, NULL);
	tu_fill(in, sizeof(in), 0, 9);
	while (got < sizeof(in)) {
		/* Random sizes around the 16 KiB frame limit, two iovecs. */
		if (sent < sizeof(in)) {
			size_t n = 1 + tu_rand(&seed) % 40000, h;
			if (n > sizeof(in) - sent)
				n = sizeof(in) - sent;
			h = n / 3;
			struct iovec v[2] = {{in + sent, h}, {in + sent + h, n - h}};
			ssize_t r = mpk_link_writev(p.a, v, 2);
			cr_assert(r > 0 || r == -EAGAIN, "writev: %zd", r);
			if (r > 0)
				sent += (size_t)r;
		}
		size_t want = 1 + tu_rand(&seed) % 30000;
		if (want > sizeof(out) - got)
			want = sizeof(out) - got;
		if (tu_rand(&seed) % 4 == 0) {
			uint8_t peek[64];
			ssize_t r = mpk_link_readv(p.b, &(struct iovec){peek, sizeof(peek)}, 1,
						   MPK_READ_PEEK);
			if (r > 0)
				cr_assert_eq(memcmp(peek, in + got, (size_t)r), 0, "peek at %zu", got);
		}
		ssize_t r = mpk_link_read(p.b, out + got, want);
		cr_assert(r > 0 || r == -EAGAIN, "read: %zd", r);
		if (r > 0)
			got += (size_t)r;
	}
	cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	cr_assert_eq(mpk_link_shutdown_write(p.a), 0);
	cr_assert_eq(mpk_link_read(p.b, out, 1), 0, "end of stream after the frames");
	pair_close(&p);
}

/* One frame of "secret", then the test (as the peer) changes byte off of
 * it in the ring; the reader must refuse it, deliver nothing, and stay
 * broken. */
static void tamper_at(size_t off, uint8_t x)
{
	struct pair p;
	char buf[32];
	uint64_t start;

	pair_open(&p, CAP, NULL);
	start = ring0(&p)->tail;
	cr_assert_eq(mpk_link_write(p.a, "secret", 6), 6);
	*data0(&p, start + off) ^= x;
	memset(buf, '.', sizeof(buf));
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET, "byte %zu changed", off);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], '.', "a byte of the bad frame was delivered");
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET, "sticky");
	cr_assert(mpk_link_poll(p.b) & MPK_LINK_ERR);
	pair_close(&p);
}

/* A read takes frame after frame while its buffer has room; a bad frame
 * behind good ones ends it with the good ones' bytes and none of its own,
 * and the next read is -ECONNRESET. */
static void frames_then_tamper(int tamper)
{
	static uint8_t in[3 * MPK_FRAME_MAX], out[sizeof(in) + 100];
	const size_t frame = MPK_FRAME_HDR + MPK_FRAME_MAX + MPK_FRAME_TAG;
	struct pair p;
	uint64_t start;
	ssize_t r;

	pair_open(&p, CAP, NULL);
	tu_fill(in, sizeof(in), 0, 5);
	start = ring0(&p)->tail;
	cr_assert_eq(mpk_link_write(p.a, in, sizeof(in)), (ssize_t)sizeof(in));
	if (tamper) /* a payload byte of the third frame */
		*data0(&p, start + 2 * frame + MPK_FRAME_HDR + 7) ^= 0x04;
	memset(out, '.', sizeof(out));
	r = mpk_link_read(p.b, out, sizeof(out));
	if (!tamper) {
		cr_assert_eq(r, (ssize_t)sizeof(in), "three frames in one read");
		cr_assert_eq(memcmp(out, in, sizeof(in)), 0);
	} else {
		cr_assert_eq(r, 2 * MPK_FRAME_MAX, "the two good frames, then the read ends");
		cr_assert_eq(memcmp(out, in, 2 * MPK_FRAME_MAX), 0);
		for (size_t i = 2 * MPK_FRAME_MAX; i < sizeof(out); i++)
			cr_assert_eq(out[i], '.', "a byte of the bad frame was delivered");
		cr_assert_eq(mpk_link_read(p.b, out, sizeof(out)), -ECONNRESET);
	}
	pair_close(&p);
}

Test(mac, a_read_takes_frame_after_frame) { frames_then_tamper(0); }
Test(mac, a_bad_frame_behind_good_ones) { frames_then_tamper(1); }

Test(mac, tampered_payload) { tamper_at(MPK_FRAME_HDR + 2, 0x20); }
Test(mac, tampered_length) { tamper_at(0, 0x01); }
Test(mac, tampered_padding) { tamper_at(5, 0x80); }
Test(mac, tampered_tag) { tamper_at(MPK_FRAME_HDR + 6 + 3, 0x01); }

Test(mac, every_byte_of_a_frame_is_covered)
{
	for (size_t off = 0; off < MPK_FRAME_HDR + 6 + MPK_FRAME_TAG; off++)
		tamper_at(off, 0x04);
}

Test(mac, another_key)
{
	uint8_t other[MPK_LINK_MAC_KEY_BYTES] = {9, 9, 9};
	struct pair p;
	char buf[8];

	pair_open(&p, CAP, other);
	cr_assert_eq(mpk_link_write(p.a, "hello", 5), 5);
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET);
	pair_close(&p);
}

/* The peer publishes a copy of frame 0 again as the next frame: each tag
 * covers the frame's number, so a replay does not verify. */
Test(mac, replayed_frame)
{
	struct pair p;
	uint8_t copy[64];
	char buf[8];
	uint64_t start, end;

	pair_open(&p, CAP, NULL);
	start = ring0(&p)->tail;
	cr_assert_eq(mpk_link_write(p.a, "first", 5), 5);
	end = ring0(&p)->tail;
	memcpy(copy, data0(&p, start), (size_t)(end - start));
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "first", 5), 0);
	memcpy(data0(&p, end), copy, (size_t)(end - start));
	__atomic_store_n(&ring0(&p)->tail, end + (end - start), __ATOMIC_RELEASE);
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET, "a replay was accepted");
	pair_close(&p);
}

/* Frames are published whole: a tail inside one (its header, or its
 * body) is refused at once, as is a stream shut inside one. */
static void partial(uint64_t published)
{
	struct pair p;
	char buf[8] = {0};
	uint64_t start;

	pair_open(&p, CAP, NULL);
	start = ring0(&p)->tail;
	cr_assert_eq(mpk_link_write(p.a, "partial", 7), 7);
	__atomic_store_n(&ring0(&p)->tail, start + published, __ATOMIC_RELEASE);
	cr_assert_eq(mpk_link_read(p.b, buf, sizeof(buf)), -ECONNRESET, "%llu bytes",
		     (unsigned long long)published);
	cr_assert_eq(buf[0], 0);
	pair_close(&p);
}

Test(mac, tail_inside_a_frame)
{
	partial(3);
	partial(MPK_FRAME_HDR + 4);
	partial(MPK_FRAME_HDR + 7 + MPK_FRAME_TAG - 1);
}

/* A MAC link's ring grows as a plain one's does, frames intact across the
 * change: 4 MiB through a 1 MiB ring that starts at MPK_LINK_RING_START,
 * the writer always ahead of the reader, so the ring grows with unread
 * frames in it. */
Test(mac, frames_across_a_growing_ring)
{
	static uint8_t in[1u << 22], out[1u << 22];
	size_t w = 0, r = 0;
	struct pair p;

	pair_open(&p, 1u << 20, NULL);
	tu_fill(in, sizeof(in), 0, 11);
	cr_assert_eq(MPK_GEOM_SHIFT(ring0(&p)->geom), (unsigned)__builtin_ctz(MPK_LINK_RING_START));
	while (r < sizeof(in)) {
		ssize_t k;

		while (w < sizeof(in) && (k = mpk_link_write(p.a, in + w, sizeof(in) - w)) > 0)
			w += (size_t)k;
		k = mpk_link_read(p.b, out + r, 50000);
		cr_assert(k > 0, "read: %zd", k);
		r += (size_t)k;
	}
	cr_expect_eq(MPK_GEOM_SHIFT(ring0(&p)->geom), 20u, "the ring did not grow");
	cr_expect_eq(tu_check(out, sizeof(out), 0, 11), -1);
	pair_close(&p);
}

/* The tags are the ABI's (link_abi.h: ChaCha20-Poly1305's construction,
 * RFC 8439), whatever library computes them: frames written by the link
 * carry exactly the tags libsodium's crypto_onetimeauth gives, computed
 * here independently, for frames of the sizes that take each code path
 * (one block, a partial block, many blocks, the frame limit). */
Test(mac, tags_are_rfc8439_poly1305)
{
	static const size_t sizes[] = {1, 15, 16, 17, 64, 1000, 4096, MPK_FRAME_MAX};
	static uint8_t in[MPK_FRAME_MAX], out[MPK_FRAME_MAX];
	struct pair p;
	uint64_t pos = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 131 >> 3);
	pair_open(&p, CAP, NULL);
	for (size_t f = 0; f < sizeof(sizes) / sizeof(sizes[0]); f++) {
		size_t n = sizes[f];
		uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0}, otk[32], tag[16];
		uint8_t frame[MPK_FRAME_HDR + MPK_FRAME_MAX + MPK_FRAME_TAG];

		cr_assert_eq(mpk_link_write(p.a, in, n), (ssize_t)n);
		for (size_t k = 0; k < MPK_FRAME_HDR + n + MPK_FRAME_TAG; k++)
			frame[k] = *data0(&p, pos + k);
		cr_assert_eq(frame[0] | frame[1] << 8 | frame[2] << 16 | frame[3] << 24, (int)n);
		nonce[0] = 0; /* side 0 wrote it */
		for (int b = 0; b < 8; b++)
			nonce[4 + b] = (uint8_t)((uint64_t)f >> (8 * b));
		crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, key);
		crypto_onetimeauth(tag, frame, MPK_FRAME_HDR + n, otk);
		cr_assert_eq(memcmp(tag, frame + MPK_FRAME_HDR + n, sizeof(tag)), 0,
			     "frame %zu (%zu bytes): not the RFC 8439 tag", f, n);
		cr_assert_eq(mpk_link_read(p.b, out, sizeof(out)), (ssize_t)n);
		cr_assert_eq(memcmp(out, in, n), 0);
		pos += MPK_FRAME_HDR + n + MPK_FRAME_TAG;
	}
	pair_close(&p);
}
