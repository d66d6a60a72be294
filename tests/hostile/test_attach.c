/* SPDX-License-Identifier: MIT */
/*
 * mpk_link_attach on whatever a peer may send instead of a link: the wrong
 * kind of fd, a memfd without the seals that keep its size, the wrong
 * size, a header that lies. Each is refused with the error ring.h
 * documents, leaves nothing mapped, and never crashes.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"
#include "testutil.h"

#define RING MPK_LINK_RING_MIN
#define SIZE_OF(rb) (MPK_LINK_HDR_BYTES + 2 * (uint64_t)(rb))

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* Refused with err, *out cleared, and the refused memory not left mapped. */
static void refused(int fd, int side, int err, const char *what)
{
	struct mpk_link *l = (struct mpk_link *)&l; /* not NULL: attach must clear it */
	int r = mpk_link_attach(fd, side, &l);

	cr_expect_eq(r, err, "%s: attach returned %d (%s), expected %d (%s)", what, r,
		     strerror(-r), err, strerror(-err));
	cr_expect_null(l, "%s: *out not cleared", what);
	if (!r)
		mpk_link_detach(l);
	cr_expect_eq(hs_count_maps(), 0, "%s: a refused attach left its mapping", what);
}

/* A memfd with header h, file_size bytes, seals; refused with err. */
static void refused_memfd(const struct mpk_link_hdr *h, uint64_t file_size, unsigned seals,
			  unsigned mfd, int err, const char *what)
{
	int fd = hs_memfd(h, sizeof(*h), file_size, seals, mfd);

	cr_assert_geq(fd, 0, "%s: building the memfd: %s", what, strerror(-fd));
	refused(fd, 0, err, what);
	refused(fd, 1, err, what);
	close(fd);
}

static void accepted(int fd, const char *what)
{
	struct mpk_link *l[2];

	for (int s = 0; s < 2; s++) {
		int r = mpk_link_attach(fd, s, &l[s]);

		cr_assert_eq(r, 0, "%s: side %d refused: %s", what, s, strerror(-r));
	}
	/* And it is a working link. */
	cr_expect_eq(mpk_link_write(l[0], "ping", 4), 4, "%s", what);
	cr_expect_eq(mpk_link_read(l[1], (char[8]){0}, 8), 4, "%s", what);
	mpk_link_detach(l[0]);
	mpk_link_detach(l[1]);
}

Test(attach, not_an_open_fd)
{
	int fd = hs_memfd_valid(RING), dead;

	cr_assert_geq(fd, 0);
	dead = dup(fd);
	close(dead);
	refused(-1, 0, -EBADF, "fd -1");
	refused(dead, 0, -EBADF, "a closed fd");
	refused(INT_MAX, 1, -EBADF, "fd INT_MAX");
	close(fd);
}

Test(attach, bad_side)
{
	static const int sides[] = {2, 3, -1, INT_MAX, INT_MIN};
	int fd = hs_memfd_valid(RING);

	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++)
		refused(fd, sides[i], -EINVAL, "a side other than 0 and 1");
	close(fd);
}

/* A file of the right size with a valid header, in directory dir. */
static void regular_file_in(const char *dir)
{
	struct mpk_link_hdr h;
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/mpk-hostile-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return; /* no such directory here */
	unlink(path);
	hs_hdr_init(&h, RING);
	cr_assert_eq(ftruncate(fd, (off_t)SIZE_OF(RING)), 0);
	cr_assert_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	refused(fd, 0, -EINVAL, dir);
	close(fd);
}

Test(attach, not_a_memfd)
{
	int p[2], s[2], fd;

	regular_file_in("/tmp");
	regular_file_in("/dev/shm"); /* tmpfs: shmem, but not sealable */
	regular_file_in(".");

	cr_assert_eq(pipe(p), 0);
	refused(p[0], 0, -EINVAL, "a pipe's read end");
	refused(p[1], 1, -EINVAL, "a pipe's write end");
	close(p[0]);
	close(p[1]);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	refused(s[0], 0, -EINVAL, "a unix socket");
	close(s[0]);
	close(s[1]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0) {
		refused(fd, 0, -EINVAL, "a TCP socket");
		close(fd);
	}

	fd = open("/dev/null", O_RDWR);
	cr_assert_geq(fd, 0);
	refused(fd, 0, -EINVAL, "/dev/null");
	close(fd);
	fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	refused(fd, 0, -EINVAL, "a directory");
	close(fd);
	fd = eventfd(0, 0);
	cr_assert_geq(fd, 0);
	refused(fd, 0, -EINVAL, "an eventfd");
	close(fd);
}

Test(attach, other_views_of_a_good_link)
{
	int fd = hs_memfd_valid(RING), ro, path;
	char name[64];
	struct mpk_link *l = NULL;
	int r;

	cr_assert_geq(fd, 0);
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	/* O_PATH: no fcntl seals, no mmap. Refused, whichever way. */
	path = open(name, O_PATH);
	cr_assert_geq(path, 0);
	r = mpk_link_attach(path, 0, &l);
	cr_expect(r == -EINVAL || r == -EBADF, "O_PATH fd: %d", r);
	cr_expect_null(l);
	close(path);
	/* Read-only: the shared writable mapping is refused (EACCES). */
	ro = open(name, O_RDONLY);
	cr_assert_geq(ro, 0);
	r = mpk_link_attach(ro, 0, &l);
	cr_expect_lt(r, 0, "a read-only fd cannot carry a link");
	cr_expect_null(l);
	close(ro);
	cr_expect_eq(hs_count_maps(), 0);
	close(fd);
}

Test(attach, seals)
{
	static const struct {
		unsigned seals;
		const char *what;
	} bad[] = {
		{0, "no seals"},
		{F_SEAL_SEAL, "F_SEAL_SEAL only"},
		{F_SEAL_GROW | F_SEAL_SEAL, "F_SEAL_SHRINK missing"},
		{F_SEAL_SHRINK | F_SEAL_SEAL, "F_SEAL_GROW missing"},
		{F_SEAL_SHRINK | F_SEAL_GROW, "F_SEAL_SEAL missing"},
		{HS_SEALS_OK | F_SEAL_WRITE, "F_SEAL_WRITE"},
		{HS_SEALS_OK | F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"},
		{HS_SEALS_OK | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE, "both write seals"},
		{F_SEAL_WRITE | F_SEAL_SEAL, "F_SEAL_WRITE instead of the size seals"},
	};
	struct mpk_link_hdr h;
	int fd;

	hs_hdr_init(&h, RING);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused_memfd(&h, SIZE_OF(RING), bad[i].seals, MFD_ALLOW_SEALING, -EINVAL,
			      bad[i].what);
	/* Without MFD_ALLOW_SEALING a memfd reports F_SEAL_SEAL alone. */
	refused_memfd(&h, SIZE_OF(RING), 0, 0, -EINVAL, "a memfd that cannot be sealed");

	fd = hs_memfd(&h, sizeof(h), SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	accepted(fd, "exactly the three seals");
	close(fd);
}

Test(attach, sizes)
{
	static const struct {
		uint64_t file, ring;
		const char *what;
	} bad[] = {
		{0, RING, "empty"},
		{MPK_LINK_HDR_BYTES, RING, "header only"},
		{SIZE_OF(RING) - 1, RING, "one byte short"},
		{SIZE_OF(RING) - 4096, RING, "a page short"},
		{SIZE_OF(2048), 2048, "rings of 2048, consistent header"},
		{SIZE_OF(MPK_LINK_RING_MAX) + 1, MPK_LINK_RING_MAX, "one byte over the max"},
		{SIZE_OF(MPK_LINK_RING_MAX) + 4096, MPK_LINK_RING_MAX, "a page over the max"},
		{SIZE_OF(2 * (uint64_t)MPK_LINK_RING_MAX), 2 * (uint64_t)MPK_LINK_RING_MAX,
		 "rings of 2 GiB, consistent header"},
	};
	struct mpk_link_hdr h;
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hs_hdr_init(&h, bad[i].ring);
		refused_memfd(&h, bad[i].file, HS_SEALS_OK, MFD_ALLOW_SEALING, -EINVAL,
			      bad[i].what);
	}
	/* Both ends of the range are links. */
	fd = hs_memfd_valid(MPK_LINK_RING_MIN);
	cr_assert_geq(fd, 0);
	accepted(fd, "the smallest link");
	close(fd);
	fd = hs_memfd_valid(MPK_LINK_RING_MAX);
	cr_assert_geq(fd, 0);
	accepted(fd, "the largest link");
	close(fd);
}

/* A valid header for rings of RING in a file of SIZE_OF(RING), one field
 * then changed by the caller. */
static struct mpk_link_hdr good(void)
{
	struct mpk_link_hdr h;

	hs_hdr_init(&h, RING);
	return h;
}

Test(attach, bad_magic)
{
	struct mpk_link_hdr h;
	static const uint64_t vals[] = {0, UINT64_MAX, MPK_LINK_MAGIC ^ 1,
					__builtin_bswap64(MPK_LINK_MAGIC)};

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		h = good();
		h.magic = vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "bad magic");
	}
	for (int byte = 0; byte < 8; byte++) {
		h = good();
		h.magic ^= UINT64_C(0x80) << (8 * byte);
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "magic with one byte changed");
	}
}

Test(attach, bad_version)
{
	static const uint32_t vals[] = {0, MPK_LINK_VERSION + 1, UINT32_MAX, 0x10001};
	struct mpk_link_hdr h;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		h = good();
		h.version = vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "bad version");
	}
}

Test(attach, bad_hdr_bytes)
{
	static const uint32_t vals[] = {0, 64, 4095, 4097, 8192, UINT32_MAX};
	struct mpk_link_hdr h;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		h = good();
		h.hdr_bytes = vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "bad hdr_bytes");
	}
}

Test(attach, ring_bytes_not_a_power_of_two)
{
	/* Sized and totalled consistently: only the power of two is wrong. */
	static const uint64_t vals[] = {4097, 12288, 65535, 3u << 20,
					MPK_LINK_RING_MAX - 4096};
	struct mpk_link_hdr h;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		hs_hdr_init(&h, vals[i]);
		refused_memfd(&h, SIZE_OF(vals[i]), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "ring_bytes not a power of two");
	}
}

Test(attach, ring_bytes_out_of_range)
{
	/* In a file of a valid size, total_bytes matching the file. */
	static const uint64_t vals[] = {0, 1, 2048, 2 * (uint64_t)MPK_LINK_RING_MAX,
					UINT64_C(1) << 63, UINT64_MAX};
	struct mpk_link_hdr h;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		h = good();
		h.ring_bytes = vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "ring_bytes out of range");
		/* And with total_bytes consistent with the lie instead. */
		h.total_bytes = MPK_LINK_HDR_BYTES + 2 * vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "ring_bytes out of range, total_bytes to match");
	}
}

Test(attach, total_bytes_wrong)
{
	static const uint64_t vals[] = {0, SIZE_OF(RING) - 1, SIZE_OF(RING) + 1,
					SIZE_OF(RING) + 4096, SIZE_OF(RING) - 4096, UINT64_MAX};
	struct mpk_link_hdr h;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		h = good();
		h.total_bytes = vals[i];
		refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
			      "total_bytes not the file size");
	}
	/* total_bytes is the file size, but the rings do not fill it. */
	h = good();
	h.total_bytes = SIZE_OF(2 * RING);
	refused_memfd(&h, SIZE_OF(2 * RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
		      "rings smaller than the file");
	hs_hdr_init(&h, 4 * RING);
	h.total_bytes = SIZE_OF(2 * RING);
	refused_memfd(&h, SIZE_OF(2 * RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
		      "rings larger than the file");
	/* A header consistent with itself, not with the file: rings past the
	 * end would SIGBUS the victim on first touch. */
	hs_hdr_init(&h, 2 * RING);
	refused_memfd(&h, SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
		      "a consistent header for a larger file");
	hs_hdr_init(&h, RING);
	refused_memfd(&h, SIZE_OF(2 * RING), HS_SEALS_OK, MFD_ALLOW_SEALING, -EPROTO,
		      "a consistent header for a smaller file");
}

/* Bytes of the header page past the header are the creator's padding. */
Test(attach, header_padding_ignored)
{
	uint8_t page[MPK_LINK_HDR_BYTES];
	struct mpk_link_hdr h = good();
	uint64_t seed = 5;
	int fd;

	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)tu_rand(&seed);
	memcpy(page, &h, offsetof(struct mpk_link_hdr, ring));
	/* The rings' indices and flags: zero, as a creator leaves them, and
	 * their capacities as it sets them. */
	memset(page + offsetof(struct mpk_link_hdr, ring), 0, sizeof(h.ring));
	for (int r = 0; r < 2; r++)
		memcpy(page + offsetof(struct mpk_link_hdr, ring[r].geom), &h.ring[r].geom,
		       sizeof(h.ring[r].geom));
	fd = hs_memfd(page, sizeof(page), SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0);
	accepted(fd, "garbage in the padding");
	close(fd);
}

/*
 * The indices a link starts from are the peer's too. Ours (the TX ring)
 * must make sense at attach: a peer that claims more than a ring's worth
 * is in flight breaks the protocol (-EPROTO, a bad layout). The RX ring's
 * are checked by the first read, like any later lie.
 */
Test(attach, initial_tx_indices_out_of_range)
{
	static const uint64_t heads[] = {0, 1000, UINT64_MAX - 10, UINT64_C(1) << 63};
	struct mpk_link_hdr h;

	for (int side = 0; side < 2; side++) {
		for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
			struct mpk_link *l = (struct mpk_link *)&l;
			static const int64_t off[] = {RING + 1, 2 * RING, -1, INT64_MIN};
			int fd, r;

			for (size_t j = 0; j < sizeof(off) / sizeof(off[0]); j++) {
				h = good();
				h.ring[side].head = heads[i];
				h.ring[side].tail = heads[i] + (uint64_t)off[j];
				fd = hs_memfd(&h, sizeof(h), SIZE_OF(RING), HS_SEALS_OK,
					      MFD_ALLOW_SEALING);
				cr_assert_geq(fd, 0);
				l = (struct mpk_link *)&l;
				r = mpk_link_attach(fd, side, &l);
				cr_expect_eq(r, -EPROTO,
					     "side %d, TX tail - head = %lld: attach returned "
					     "%d (%s), expected -EPROTO", side, (long long)off[j],
					     r, strerror(-r));
				cr_expect_null(l);
				if (!r)
					mpk_link_detach(l);
				cr_expect_eq(hs_count_maps(), 0);
				close(fd);
			}
			/* A full ring is honest. */
			h = good();
			h.ring[side].head = heads[i];
			h.ring[side].tail = heads[i] + RING;
			fd = hs_memfd(&h, sizeof(h), SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING);
			cr_assert_geq(fd, 0);
			r = mpk_link_attach(fd, side, &l);
			cr_assert_eq(r, 0, "a full TX ring at attach: %s", strerror(-r));
			cr_expect_eq(mpk_link_write(l, "x", 1), -EAGAIN);
			cr_expect_eq(mpk_link_writable(l), 0);
			mpk_link_detach(l);
			close(fd);
		}
	}
}

/* The RX ring's too, at attach or at the first read: refused either way. */
Test(attach, initial_rx_indices_out_of_range)
{
	static const int64_t off[] = {RING + 1, 2 * RING, -1, INT64_MIN};
	struct mpk_link_hdr h;
	char buf[16];

	for (int side = 0; side < 2; side++) {
		for (size_t j = 0; j < sizeof(off) / sizeof(off[0]); j++) {
			struct mpk_link *l = (struct mpk_link *)&l;
			int fd, r;

			h = good();
			h.ring[!side].head = 77;
			h.ring[!side].tail = 77 + (uint64_t)off[j];
			fd = hs_memfd(&h, sizeof(h), SIZE_OF(RING), HS_SEALS_OK, MFD_ALLOW_SEALING);
			cr_assert_geq(fd, 0);
			r = mpk_link_attach(fd, side, &l);
			if (r == 0) {
				cr_expect_eq(mpk_link_read(l, buf, sizeof(buf)), -ECONNRESET,
					     "side %d, RX tail - head = %lld", side,
					     (long long)off[j]);
				cr_expect_eq(mpk_link_write(l, buf, sizeof(buf)), -ECONNRESET,
					     "sticky");
				mpk_link_detach(l);
			} else {
				cr_expect_eq(r, -EPROTO, "side %d, RX tail - head = %lld: attach "
					     "returned %d (%s), expected -EPROTO (or success, and "
					     "the first read -ECONNRESET)", side, (long long)off[j],
					     r, strerror(-r));
				cr_expect_null(l);
			}
			cr_expect_eq(hs_count_maps(), 0);
			close(fd);
		}
	}
}

/* The header's sizes are read once: changing them later changes nothing. */
Test(attach, header_rewritten_after_attach)
{
	int fd = hs_memfd_valid(RING);
	struct mpk_link *a, *b;
	struct hs_raw raw;
	uint8_t in[3 * RING], out[3 * RING];
	uint64_t off = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(mpk_link_attach(fd, 0, &a), 0);
	cr_assert_eq(mpk_link_attach(fd, 1, &b), 0);
	cr_assert_eq(hs_raw_map(&raw, fd), 0);
	raw.h->magic = 0;
	raw.h->version = 99;
	raw.h->hdr_bytes = 1;
	raw.h->ring_bytes = UINT64_C(1) << 40;
	raw.h->total_bytes = 3;
	cr_expect_eq(mpk_link_ring_bytes(a), RING);
	for (int i = 0; i < 4; i++) {
		tu_fill(in, sizeof(in), off, 9);
		cr_assert_eq(mpk_link_write(a, in, sizeof(in)), RING);
		cr_assert_eq(mpk_link_read(b, out, sizeof(out)), RING);
		cr_assert_eq(tu_check(out, RING, off, 9), -1);
		cr_assert_eq(mpk_link_write(b, in, RING / 2), RING / 2);
		cr_assert_eq(mpk_link_read(a, out, sizeof(out)), RING / 2);
		off += RING;
	}
	hs_raw_unmap(&raw);
	mpk_link_detach(a);
	mpk_link_detach(b);
	close(fd);
}

/* A peer rewriting the header during the attach: the sizes are read once,
 * so the attach sees one consistent header or refuses. */
struct flipper {
	struct hs_raw raw;
	int stop;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;
	uint64_t n = 0;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		__atomic_store_n(&f->raw.h->ring_bytes, n & 1 ? 2 * RING : RING,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&f->raw.h->total_bytes, n & 2 ? SIZE_OF(2 * RING) : SIZE_OF(RING),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&f->raw.h->magic, n & 4 ? 0 : MPK_LINK_MAGIC, __ATOMIC_RELAXED);
		n++;
	}
	return NULL;
}

Test(attach, header_raced_during_attach, .timeout = 60)
{
	struct flipper f = {.stop = 0};
	int fd = hs_memfd_valid(RING), ok = 0, no = 0;
	pthread_t t;

	cr_assert_geq(fd, 0);
	cr_assert_eq(hs_raw_map(&f.raw, fd), 0);
	cr_assert_eq(pthread_create(&t, NULL, flip, &f), 0);
	for (int i = 0; i < 20000; i++) {
		struct mpk_link *l;
		int r = mpk_link_attach(fd, i & 1, &l);

		cr_assert(r == 0 || r == -EPROTO, "attach under a racing peer: %d", r);
		if (r == 0) {
			cr_assert_eq(mpk_link_ring_bytes(l), RING);
			mpk_link_detach(l);
			ok++;
		} else {
			no++;
		}
	}
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	hs_raw_unmap(&f.raw);
	close(fd);
	cr_log_info("racing header: %d attached, %d refused", ok, no);
}
