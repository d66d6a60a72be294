/* SPDX-License-Identifier: MIT */
/*
 * The notice ring (ctl.h, mpk_notes_*): notices come out in the order
 * they went in, a full ring says -EAGAIN and loses nothing, and the
 * reader refuses a head the ring cannot hold (the writer is not trusted).
 * The program's side maps only a ring the launcher made: sealed, of the
 * ring's size, with its magic.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mpklink/ctl.h"

static struct mpk_ctl_req note(uint32_t i)
{
	return (struct mpk_ctl_req){.magic = MPK_CTL_MAGIC, .version = MPK_CTL_VERSION,
				    .type = MPK_CTL_CLOSE, .port = 1 + i % 65535, .peer_port = i};
}

/* The launcher's mapping (r) and the program's (w) of one ring. */
static void pair(struct mpk_notes **r, struct mpk_notes **w)
{
	int fd = mpk_notes_create(r);

	cr_assert_geq(fd, 0, "create: %s", strerror(-fd));
	cr_assert_eq(mpk_notes_attach(fd, w), 0);
	close(fd);
	cr_assert_neq(*r, *w, "two mappings of one ring");
}

Test(notes, in_order_full_then_free)
{
	static struct mpk_ctl_req out[MPK_NOTES_SLOTS];
	struct mpk_notes *r, *w;
	uint64_t tail = 0;
	struct mpk_ctl_req full = note(99999);

	pair(&r, &w);
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), 0, "an empty ring");
	for (uint32_t i = 0; i < MPK_NOTES_SLOTS; i++)
		cr_assert_eq(mpk_notes_push(w, &(struct mpk_ctl_req){.peer_port = i}), 0);
	cr_assert_eq(mpk_notes_push(w, &full), -EAGAIN, "a full ring took one more");
	/* Taken in two reads, in order. */
	cr_assert_eq(mpk_notes_take(r, &tail, out, 100), 100);
	for (uint32_t k = 0; k < 100; k++)
		cr_assert_eq(out[k].peer_port, k, "out of order");
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), MPK_NOTES_SLOTS - 100);
	cr_assert_eq(tail, MPK_NOTES_SLOTS);
	/* Room again; the ring wraps and keeps order across the wrap. */
	for (uint32_t i = 0; i < 700; i++) {
		struct mpk_ctl_req n = note(i);

		cr_assert_eq(mpk_notes_push(w, &n), 0, "notice %u after the ring was read", i);
		if (i % 3 == 2) {
			int got = mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS);

			cr_assert_eq(got, 3);
			for (int k = 0; k < 3; k++)
				cr_assert_eq(out[k].peer_port, i - 2 + (uint32_t)k, "out of order");
		}
	}
	mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS);
	mpk_notes_detach(r);
	mpk_notes_detach(w);
}

Test(notes, lying_head_refused)
{
	static struct mpk_ctl_req out[MPK_NOTES_SLOTS];
	struct mpk_notes *r, *w;
	uint64_t tail = 0;

	pair(&r, &w);
	w->head = MPK_NOTES_SLOTS + 1; /* more than the ring holds */
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), -EPROTO);
	cr_assert_eq(tail, 0, "a refused read moved the tail");
	w->head = 5;
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), 5);
	w->head = 3; /* behind what was read */
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), -EPROTO);
	w->head = MPK_NOTES_SLOTS + 5; /* exactly a ring ahead: holdable */
	cr_assert_eq(mpk_notes_take(r, &tail, out, MPK_NOTES_SLOTS), MPK_NOTES_SLOTS);
	mpk_notes_detach(r);
	mpk_notes_detach(w);
}

Test(notes, attach_only_a_launchers_ring)
{
	struct mpk_notes *r, *w;
	int fd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING), good;
	long len;

	/* Unsealed, of the right size: it could shrink under the reader. */
	good = mpk_notes_create(&r);
	cr_assert_geq(good, 0);
	len = lseek(good, 0, SEEK_END);
	cr_assert_eq(ftruncate(fd, len), 0);
	cr_assert_eq(mpk_notes_attach(fd, &w), -EPROTO, "an unsealed memfd");
	/* Sealed, but not a ring (no magic). */
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	cr_assert_eq(mpk_notes_attach(fd, &w), -EPROTO, "a memfd without the ring's magic");
	close(fd);
	/* The wrong size. */
	fd = memfd_create("y", MFD_CLOEXEC);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	cr_assert_eq(mpk_notes_attach(fd, &w), -EPROTO, "a memfd of the wrong size");
	close(fd);
	cr_assert_eq(mpk_notes_attach(good, &w), 0);
	close(good);
	mpk_notes_detach(r);
	mpk_notes_detach(w);
}
