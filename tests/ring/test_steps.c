/* SPDX-License-Identifier: MIT */
/*
 * Large reads and writes are published in steps, so the peer copies its
 * end while this side still copies: a write whose source faults half way
 * (on a page the test made inaccessible) has already published the bytes
 * before the fault; a read whose destination faults has already freed the
 * space it copied; a MAC write has published its whole frames. The fault
 * handler reads the shared index at that moment, opens the page, and the
 * copy goes on to the end.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "link_internal.h"
#include "testutil.h"

#define CAP (4u << 20)
#define MSG (1u << 20)

static const uint8_t key[MPK_LINK_MAC_KEY_BYTES] = {7};

static const uint64_t *watched; /* the index the handler reads */
static uint64_t seen;           /* its value at the fault */
static int faults;
static void *hole;
static size_t page;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)ctx;
	if ((uint8_t *)si->si_addr < (uint8_t *)hole ||
	    (uint8_t *)si->si_addr >= (uint8_t *)hole + page)
		abort(); /* not the test's page: a real crash */
	seen = __atomic_load_n(watched, __ATOMIC_ACQUIRE);
	faults++;
	mprotect(hole, page, PROT_READ | PROT_WRITE);
}

/* A buffer of MSG bytes whose page at offset off faults once. */
static uint8_t *buffer_with_hole(size_t off)
{
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
	uint8_t *b;

	page = (size_t)sysconf(_SC_PAGESIZE);
	b = mmap(NULL, MSG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(b, MAP_FAILED);
	tu_fill(b, MSG, 0, 3);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	hole = b + off;
	seen = 0;
	faults = 0;
	cr_assert_eq(mprotect(hole, page, PROT_NONE), 0);
	return b;
}

static struct mpk_ring_ctl *ctl(struct mpk_link *side0, int ring)
{
	return &((struct mpk_link_hdr *)mpk__link_base(side0))->ring[ring];
}

static void pair(int mac, struct mpk_link **a, struct mpk_link **b, int *fd)
{
	*fd = mpk_link_create_flags(CAP, mac ? MPK_LINK_MAC : 0);
	cr_assert_geq(*fd, 0);
	cr_assert_eq(mpk_link_attach(*fd, 0, a), 0);
	cr_assert_eq(mpk_link_attach(*fd, 1, b), 0);
	if (mac) {
		cr_assert_eq(mpk_link_set_mac(*a, key), 0);
		cr_assert_eq(mpk_link_set_mac(*b, key), 0);
	}
}

static void unpair(struct mpk_link *a, struct mpk_link *b, int fd)
{
	mpk_link_detach(a);
	mpk_link_detach(b);
	close(fd);
}

Test(steps, a_large_write_publishes_before_it_is_done)
{
	struct mpk_link *a, *b;
	uint8_t *src = buffer_with_hole(MSG / 2), *dst = malloc(MSG);
	int fd;

	pair(0, &a, &b, &fd);
	watched = &ctl(a, 0)->tail;
	cr_assert_eq(mpk_link_write(a, src, MSG), (ssize_t)MSG);
	cr_assert_eq(faults, 1);
	cr_assert(seen > 0 && seen <= MSG / 2,
		  "published when the copy reached byte %u: %llu (0: only at the end)", MSG / 2,
		  (unsigned long long)seen);
	cr_assert_eq(mpk_link_read(b, dst, MSG), (ssize_t)MSG);
	cr_assert_eq(memcmp(src, dst, MSG), 0);
	unpair(a, b, fd);
	free(dst);
}

Test(steps, a_large_read_frees_space_before_it_is_done)
{
	struct mpk_link *a, *b;
	uint8_t *src = malloc(MSG), *dst;
	int fd;

	tu_fill(src, MSG, 0, 4);
	pair(0, &a, &b, &fd);
	cr_assert_eq(mpk_link_write(a, src, MSG), (ssize_t)MSG);
	dst = buffer_with_hole(MSG / 2);
	watched = &ctl(a, 0)->head;
	cr_assert_eq(mpk_link_read(b, dst, MSG), (ssize_t)MSG);
	cr_assert_eq(faults, 1);
	cr_assert(seen > 0 && seen <= MSG / 2,
		  "freed when the copy reached byte %u: %llu (0: only at the end)", MSG / 2,
		  (unsigned long long)seen);
	cr_assert_eq(memcmp(src, dst, MSG), 0);
	unpair(a, b, fd);
	free(src);
}

Test(steps, a_mac_write_publishes_each_frame)
{
	const uint64_t frame = MPK_FRAME_HDR + MPK_FRAME_MAX + MPK_FRAME_TAG;
	struct mpk_link *a, *b;
	uint8_t *src = buffer_with_hole(2 * MPK_FRAME_MAX + 8192), *dst = malloc(MSG);
	size_t got = 0;
	ssize_t r;
	int fd;

	pair(1, &a, &b, &fd);
	watched = &ctl(a, 0)->tail;
	cr_assert_eq(mpk_link_write(a, src, 4 * MPK_FRAME_MAX), 4 * MPK_FRAME_MAX);
	cr_assert_eq(faults, 1);
	cr_assert_eq(seen, 2 * frame, "published when the third frame was being made: %llu",
		     (unsigned long long)seen);
	while (got < 4 * MPK_FRAME_MAX && (r = mpk_link_read(b, dst + got, MSG - got)) > 0)
		got += (size_t)r;
	cr_assert_eq(got, 4 * MPK_FRAME_MAX);
	cr_assert_eq(memcmp(src, dst, got), 0);
	unpair(a, b, fd);
	free(dst);
}
