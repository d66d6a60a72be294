/* SPDX-License-Identifier: MIT */
/*
 * Links made over (mpk_link_release, mpk_link_recycle, mpk_link_stale):
 * the creator makes a link over only once both sides released it, into
 * exactly what mpk_link_create makes (one generation on, the last
 * connection's bytes gone), and refuses one it cannot: grown, foreign,
 * claimed by a client whose server has not let go. A process that
 * released a link keeps its mapping and takes it back at the next attach.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "link_internal.h"
#include "testutil.h"

#define RB (1u << 20) /* room 1 MiB: rings start at 256 KiB and may grow */

static void both(int fd, struct mpk_link **a, struct mpk_link **b)
{
	cr_assert_eq(mpk_link_attach(fd, 0, a), 0);
	cr_assert_eq(mpk_link_attach(fd, 1, b), 0);
}

/* The header and the first bytes of each ring as the creator reads them. */
static void peek(int fd, struct mpk_link_hdr *h, uint8_t ring0[64], uint8_t ring1[64])
{
	cr_assert_eq(pread(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	cr_assert_eq(pread(fd, ring0, 64, MPK_LINK_HDR_BYTES), 64);
	cr_assert_eq(pread(fd, ring1, 64, MPK_LINK_HDR_BYTES + RB), 64);
}

Test(recycle, only_once_both_released)
{
	static const uint8_t zero[64];
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b, *a2, *b2;
	struct mpk_link_hdr h, fresh;
	uint8_t r0[64], r1[64], buf[16];

	cr_assert_geq(fd, 0);
	peek(fd, &fresh, r0, r1);
	both(fd, &a, &b);
	cr_expect_eq(mpk_link_gen(a), 0);
	cr_assert_eq(mpk_link_claim(b, 42), 0);
	cr_assert_eq(mpk_link_write(b, "client-secret", 13), 13);
	cr_assert_eq(mpk_link_write(a, "server-secret", 13), 13);
	cr_assert_eq(mpk_link_read(a, buf, 6), 6); /* 7 left unread */

	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -EAGAIN, "neither released");
	mpk_link_release(b);
	mpk_link_detach(b);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -EAGAIN,
		     "claimed, and the server still holds it");
	mpk_link_release(a);
	mpk_link_detach(a);
	cr_expect_eq(mpk_link_recycle(fd, 2 * RB, 0), -ESTALE, "made with other ring_bytes");
	cr_expect_eq(mpk_link_recycle(fd, RB, MPK_LINK_MAC), -ESTALE, "made with other flags");
	cr_assert_eq(mpk_link_recycle(fd, RB, 0), 0);

	/* As new, one generation on, the bytes gone. */
	peek(fd, &h, r0, r1);
	cr_expect_eq(h.gen, 1);
	h.gen = 0;
	cr_expect_eq(memcmp(&h, &fresh, sizeof(h)), 0, "header not as mpk_link_create makes it");
	cr_expect_eq(memcmp(r0, zero, sizeof(zero)), 0, "ring 0 keeps the last connection's bytes");
	cr_expect_eq(memcmp(r1, zero, sizeof(zero)), 0, "ring 1 keeps the last connection's bytes");
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -EAGAIN, "made over twice without a use");

	/* Attached again: generation 1, the mappings taken back, empty rings. */
	both(fd, &a2, &b2);
	cr_expect_eq(mpk_link_gen(a2), 1);
	cr_expect_eq(mpk_link_gen(b2), 1);
	cr_expect_eq(mpk_link_readable(a2), 0);
	cr_expect_eq(mpk_link_readable(b2), 0);
	cr_expect_eq(mpk_link_claimed(a2), 0);
	cr_expect_eq(mpk_link_taken(a2), 0);
	cr_assert_eq(mpk_link_write(b2, "next", 4), 4);
	cr_assert_eq(mpk_link_read(a2, buf, sizeof(buf)), 4);
	cr_expect_eq(memcmp(buf, "next", 4), 0);
	mpk_link_detach(a2);
	mpk_link_detach(b2);
	close(fd);
}

Test(recycle, unclaimed_needs_the_client_only)
{
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b;

	both(fd, &a, &b);
	mpk_link_detach(a); /* an offer a server did not take */
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -EAGAIN);
	mpk_link_release(b); /* the client's pool let it go unused */
	mpk_link_detach(b);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), 0);
	close(fd);
}

/* Claims across network namespaces (mpklink/ring.h): the first swap of a
 * PENDING claim decides between the client's address and the server's
 * refusal; a refused link needs only the client's release to be made over
 * (its server never takes it). */
Test(recycle, a_pending_claim_is_the_clients_or_refused_never_both)
{
	const uint8_t addr[16] = {[10] = 0xff, [11] = 0xff, 192, 0, 2, 2};
	uint64_t key = mpk_claim_of_addr(addr, 40000);
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b;

	cr_expect_neq(key & MPK_CLAIM_ADDR, 0);
	cr_expect_neq(key, MPK_CLAIM_PENDING);
	cr_expect_neq(key, MPK_CLAIM_REFUSED);
	cr_expect_neq(key, mpk_claim_of_addr(addr, 40001), "the port is in the claim");
	both(fd, &a, &b);
	cr_assert_eq(mpk_link_claim(b, MPK_CLAIM_PENDING), 0);
	/* The client first: its address; the server's refusal comes late. */
	cr_expect_eq(mpk_link_claim_swap(b, MPK_CLAIM_PENDING, key), 0);
	cr_expect_eq(mpk_link_claim_swap(a, MPK_CLAIM_PENDING, MPK_CLAIM_REFUSED), -EALREADY);
	cr_expect_eq(mpk_link_claimed(a), key);
	cr_expect_eq(mpk_link_claim_swap(a, key, 0), -EINVAL, "the server clears no claim");
	mpk_link_detach(a);
	mpk_link_detach(b);
	close(fd);

	/* The server first: refused; the client's swap fails, and the link
	 * is made over once the client alone released it. */
	fd = mpk_link_create(RB);
	both(fd, &a, &b);
	cr_assert_eq(mpk_link_claim(b, MPK_CLAIM_PENDING), 0);
	cr_expect_eq(mpk_link_claim_swap(a, MPK_CLAIM_PENDING, MPK_CLAIM_REFUSED), 0);
	cr_expect_eq(mpk_link_claim_swap(b, MPK_CLAIM_PENDING, key), -EALREADY);
	cr_expect_eq(mpk_link_claimed(a), MPK_CLAIM_REFUSED);
	mpk_link_detach(a);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -EAGAIN, "the client has not released it");
	mpk_link_release(b);
	mpk_link_detach(b);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), 0);
	close(fd);
}

Test(recycle, grown_is_never_made_over)
{
	static uint8_t big[300 * 1024];
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b;
	size_t put = 0;

	both(fd, &a, &b);
	/* Past the starting 256 KiB: the ring grows. */
	while (put < sizeof(big)) {
		ssize_t w = mpk_link_write(b, big + put, sizeof(big) - put);

		if (w <= 0) {
			uint8_t sink[65536];

			cr_assert_gt(mpk_link_read(a, sink, sizeof(sink)), 0);
			continue;
		}
		put += (size_t)w;
	}
	mpk_link_release(a);
	mpk_link_release(b);
	mpk_link_detach(a);
	mpk_link_detach(b);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -ESTALE);
	close(fd);
}

Test(recycle, offers_of_before_are_stale)
{
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b, *old, *a2, *b2;

	both(fd, &a, &b);
	cr_assert_eq(mpk_link_attach(fd, 0, &old), 0); /* a sibling's offer */
	cr_expect_eq(mpk_link_stale(old), 0);
	mpk_link_release(a);
	mpk_link_release(b);
	mpk_link_detach(a);
	mpk_link_detach(b);
	cr_assert_eq(mpk_link_recycle(fd, RB, 0), 0);
	cr_expect_eq(mpk_link_stale(old), 1, "an offer of generation 0 looks current");
	both(fd, &a2, &b2);
	cr_expect_eq(mpk_link_stale(a2), 0);
	mpk_link_detach(old);
	mpk_link_detach(a2);
	mpk_link_detach(b2);
	close(fd);
}

Test(recycle, not_a_link)
{
	int fd = memfd_create("x", 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4096 + 2 * RB), 0);
	cr_expect_eq(mpk_link_recycle(fd, RB, 0), -ESTALE);
	close(fd);
	cr_expect_eq(mpk_link_recycle(-1, RB, 0), -ESTALE);
	cr_expect_eq(mpk_link_recycle(0, 1000, 0), -EINVAL);
}

Test(recycle, kept_mapping_counts_as_mapped)
{
	int fd = mpk_link_create(RB);
	struct mpk_link *a, *b;
	uint64_t before = mpk_link_mapped_bytes();

	both(fd, &a, &b);
	mpk_link_release(a);
	mpk_link_release(b);
	mpk_link_detach(a);
	mpk_link_detach(b);
	/* Both mappings kept: still counted (the preload subtracts ours
	 * from the address space's size). */
	cr_expect_eq(mpk_link_mapped_bytes() - before, 2 * (4096 + 2 * (uint64_t)RB));
	cr_assert_eq(mpk_link_recycle(fd, RB, 0), 0);
	both(fd, &a, &b);
	cr_expect_eq(mpk_link_mapped_bytes() - before, 2 * (4096 + 2 * (uint64_t)RB),
		     "the attach mapped anew instead of taking a kept mapping back");
	mpk_link_detach(a);
	mpk_link_detach(b);
	cr_expect_eq(mpk_link_mapped_bytes(), before);
	close(fd);
}
