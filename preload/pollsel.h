/* SPDX-License-Identifier: MIT */
/*
 * poll, ppoll, select and pselect over upgraded fds: each upgraded fd's
 * readiness comes from its rings (readiness.h), its socket is asked only
 * for the hang-up, and its doorbell joins the kernel's array; the same
 * busy-poll first as epoll.c's, and the same arming before blocking.
 *
 * Thread-safe. May call: conn.h, readiness.h, spin.h, settings.h.
 */
#ifndef MPK_POLLSEL_H
#define MPK_POLLSEL_H

#include <poll.h>
#include <signal.h>
#include <sys/select.h>

#include "preload.h"

/* poll (sigmask NULL) and ppoll; timeout in ms, -1 forever. As poll(2). */
HIDDEN int poll_common(struct pollfd *fds, nfds_t nfds, int timeout, const sigset_t *sigmask);

/* select and pselect (use_pselect: ts and sigmask; else tv). As select(2). */
HIDDEN int select_common(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int timeout_ms,
			 const sigset_t *sigmask, int use_pselect, const struct timespec *ts,
			 struct timeval *tv);

#endif
