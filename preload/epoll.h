/* SPDX-License-Identifier: MIT */
/*
 * epoll emulation. An upgraded fd is registered in the kernel's set with
 * only EPOLLIN|EPOLLRDHUP|EPOLLET (the hang-up, and the preamble; plus
 * EPOLLOUT while the connect is in flight) and a tag of ours as data, and
 * its link's doorbell beside it, edge-triggered with another tag (once per
 * set, however many dups of the fd are in it). The set's object (an eset)
 * keeps the program's events and data for each. epoll_wait reports
 * ring-derived events first; when there are none it arms every upgraded fd
 * of the set, looks again, and only then blocks in the kernel. Kernel
 * events carrying our tags never reach the program.
 *
 * Edge-triggered entries report IN when the peer's tail moved since the
 * last report (or a hang-up is new), and OUT when a write hit EAGAIN since
 * the last OUT: a spurious edge costs nothing, a lost one hangs gRPC.
 *
 * Thread-safe; the caller of each function holds nothing.
 * May call: conn.h, readiness.h, spin.h, fdtab.h, settings.h, log.h.
 */
#ifndef MPK_EPOLL_H
#define MPK_EPOLL_H

#include <signal.h>
#include <sys/epoll.h>

#include "preload.h"

/* Registers the kind with fdtab and the connection hooks. */
HIDDEN void epoll_register(void);

/* epoll_ctl for an fd that is a connection of ours (it is), in set epfd.
 * As epoll_ctl(2): 0, or -1 with errno. */
HIDDEN int eset_ctl(int epfd, int op, int fd, struct epoll_event *ev);

/* epoll_ctl for any other fd: the kernel's, and a stale registration of a
 * reused number is forgotten. */
HIDDEN int eset_ctl_plain(int epfd, int op, int fd, struct epoll_event *ev);

/* epoll_wait and epoll_pwait (use_pwait: with sigmask). As epoll_wait(2). */
HIDDEN int eset_wait(int epfd, struct epoll_event *ev, int max, int timeout,
		     const sigset_t *sigmask, int use_pwait);

/* A new epoll fd of the program's: its set, empty (so that registering it
 * in another set, before any link is in it, is known). */
HIDDEN void eset_created(int epfd);

/* poll or select is about to wait on epfd: 1 when its set has something
 * ready now (it is readable); else its links are armed, so that news
 * makes its kernel set readable, and 0. */
HIDDEN int eset_poll_ready(int epfd);

/* The program closes epfd: its set goes (once no wait uses it). */
HIDDEN void eset_close(int epfd);

#endif
