/* SPDX-License-Identifier: MIT */
/*
 * A program that fills and then lies in its notice ring (ctl.h), run under
 * mpklink-run. First the honest case a preload meets when its ring is
 * full: the notice that does not fit goes as a request, whose answer must
 * come only after the launcher read the whole ring (so no later notice
 * can pass it). Then the launcher must cut a lying ring off (close its
 * connection) and go on answering. Two lies: a head more than a ring
 * ahead, and a slot that holds no notice. After each, a new NOTES request
 * must still be answered with a ring, and the lying connection must end.
 *
 * Usage: notes_hostile (under mpklink-run; MPKLINK_CTL names the socket).
 * Exit 0 on success; 1 with a line saying what failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpklink/ctl.h"

static const char *ctl;

static void die(const char *what)
{
	printf("FAIL: %s\n", what);
	exit(1);
}

/* A notice connection and the ring it brought. */
static int open_ring(struct mpk_notes **n)
{
	struct mpk_ctl_req hello = {.magic = MPK_CTL_MAGIC, .version = MPK_CTL_VERSION,
				    .type = MPK_CTL_NOTES, .pid = (uint32_t)getpid()};
	struct mpk_ctl_rep rep;
	int fds[MPK_LINK_NFDS], fd = mpk_ctl_connect(ctl);

	if (fd < 0)
		die("cannot reach the launcher");
	if (mpk_ctl_call(fd, &hello, &rep, fds) < 0 || rep.status != 0 || fds[0] < 0)
		die("the launcher gave no notice ring (after a lie, it must still answer)");
	if (mpk_notes_attach(fds[0], n) < 0)
		die("the launcher's ring does not attach");
	mpk_ctl_fds_close(fds);
	return fd;
}

/* Whether the launcher ended connection fd within 5 s (it reads rings
 * before each request, and at least once a second). */
static int ended(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	return poll(&p, 1, 5000) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

int main(void)
{
	struct mpk_notes *n, *m;
	int a, b;

	ctl = getenv("MPKLINK_CTL");
	if (!ctl)
		die("MPKLINK_CTL is not set: run under mpklink-run");

	a = open_ring(&n);
	{
		/* CLOSEs of links the launcher does not have: notices it
		 * takes and forgets. */
		struct mpk_ctl_req note = {.magic = MPK_CTL_MAGIC, .version = MPK_CTL_VERSION,
					   .type = MPK_CTL_CLOSE, .port = 1, .peer_port = 2,
					   .pid = (uint32_t)getpid()};
		struct mpk_ctl_rep rep;
		int fds[MPK_LINK_NFDS], req = mpk_ctl_connect(ctl);

		unsigned pushed = 0;

		/* Filled (the launcher may read some meanwhile, on its timer). */
		while (mpk_notes_push(n, &note) == 0)
			if (++pushed > 64 * MPK_NOTES_SLOTS)
				die("the ring never filled");
		if (req < 0 || mpk_ctl_call(req, &note, &rep, fds) < 0 || rep.status != 0)
			die("a notice sent as a request was not answered");
		if (__atomic_load_n(&n->tail, __ATOMIC_ACQUIRE) != n->head)
			die("a notice sent as a request was answered before the ring was read");
		if (mpk_notes_push(n, &note) != 0)
			die("the ring had no room after the launcher read it");
		close(req);
	}
	n->head = n->tail + 10 * MPK_NOTES_SLOTS; /* a head no ring holds */
	b = open_ring(&m); /* a request: the launcher reads the rings first */
	if (!ended(a))
		die("a ring whose head is 10 rings ahead was not cut off");

	memset(&m->note[0], 0x5a, sizeof(m->note[0])); /* no notice at all */
	__atomic_store_n(&m->head, 1, __ATOMIC_RELEASE);
	close(open_ring(&n));
	if (!ended(b))
		die("a ring holding what is no notice was not cut off");
	printf("PASS: a full ring read before the request that overflowed it is answered; "
	       "lying notice rings cut off, the launcher still answers\n");
	return 0;
}
