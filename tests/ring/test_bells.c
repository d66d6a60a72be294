/* SPDX-License-Identifier: MIT */
/*
 * mpk_link_bell_check: what a peer may pass as a bell. An eventfd only,
 * made nonblocking, its count untouched; every other file, including
 * those that share an eventfd's anonymous inode (timerfd, signalfd,
 * epoll, inotify), is -EPROTO; a closed fd -EBADF.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mpklink/ring.h"

static void refused(int fd, const char *what)
{
	cr_assert_eq(mpk_link_bell_check(fd), -EPROTO, "%s taken as a bell", what);
	close(fd);
}

Test(bells, eventfd_taken_count_kept_made_nonblocking)
{
	int fd = eventfd(3, EFD_CLOEXEC); /* blocking, as a peer may send it */
	eventfd_t v = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(mpk_link_bell_check(fd), 0);
	cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK, "the bell was left blocking");
	cr_assert_eq(eventfd_read(fd, &v), 0);
	cr_assert_eq(v, 3, "the check changed the count: %llu", (unsigned long long)v);
	/* Nonblocking now: an empty bell says EAGAIN, it does not wait. */
	cr_assert_eq(eventfd_read(fd, &v), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(mpk_link_bell_check(fd), 0, "a checked bell checked again");
	close(fd);
}

Test(bells, other_files_refused)
{
	int p[2], s[2], fd;
	sigset_t set;

	/* The files on the eventfd's own anonymous inode. */
	refused(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), "a timerfd");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	refused(signalfd(-1, &set, SFD_NONBLOCK), "a signalfd");
	refused(epoll_create1(0), "an epoll fd");
	refused(inotify_init1(IN_NONBLOCK), "an inotify fd");
	/* And the rest. */
	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	refused(p[0], "a pipe's read end");
	refused(p[1], "a pipe's write end");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
	refused(s[0], "a socket");
	close(s[1]);
	fd = memfd_create("bell", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	refused(fd, "a memfd");
	refused(open("/dev/null", O_RDWR), "/dev/null");
}

Test(bells, closed_fd)
{
	int fd = eventfd(0, 0);

	close(fd);
	cr_assert_eq(mpk_link_bell_check(fd), -EBADF);
}
