/* SPDX-License-Identifier: MIT */
/*
 * Signals during the waits the preload emulates. A blocking recv or send
 * on a TCP socket interrupted by a handler is restarted by the kernel when
 * the handler has SA_RESTART and the socket has no timeout, and fails with
 * EINTR otherwise (signal(7)); poll, epoll_wait and select always fail
 * with EINTR. The preload's own waits (poll on a doorbell, a spin on the
 * rings) must do the same, so it must know which handlers ran in the
 * waiting thread and whether they had SA_RESTART: the program's handlers
 * are installed behind a trampoline of ours (sigaction, signal, bsd_signal,
 * sysv_signal are interposed) that counts, per thread, the handlers run and
 * those without SA_RESTART, then calls the program's. sigaction(2) reads
 * back exactly what the program set.
 *
 * A wait takes a snapshot (sig_mark) before it sleeps or spins, and after
 * EINTR (or during a spin) asks what ran since (sig_since).
 *
 * Async-signal-safe where it runs in a handler. May call: real.h.
 */
#ifndef MPK_SIGNALS_H
#define MPK_SIGNALS_H

#include "preload.h"

struct sig_mark {
	unsigned ran, norestart;
};

/* What the thread's handlers had done by now. */
HIDDEN void sig_mark(struct sig_mark *m);

enum { SIG_NONE = 0, SIG_RESTART, SIG_EINTR };

/* Since m: SIG_NONE (no handler of ours ran in this thread), SIG_RESTART
 * (all that ran had SA_RESTART), or SIG_EINTR. */
HIDDEN int sig_since(const struct sig_mark *m);

#endif
