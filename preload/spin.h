/* SPDX-License-Identifier: MIT */
/*
 * How long a waiting call busy-polls the rings before it sleeps on a
 * doorbell (MPKLINK_SPIN_US, growing toward MPKLINK_SPIN_MAX_US where
 * waits keep ending just after a spin), per thread; and the monotonic
 * clock every wait reads. docs/PERFORMANCE.md has the measurements behind
 * each rule.
 *
 * Thread-local state: every function is for the calling thread's own wait.
 * May call: settings.h.
 */
#ifndef MPK_SPIN_H
#define MPK_SPIN_H

#include <stdint.h>
#include <time.h>

#include "preload.h"

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A wait's end, timeout milliseconds from now (0: none, for timeout <= 0),
 * and the milliseconds left to it, rounded up: a wait of poll's or
 * epoll_wait's never ends before its timeout, as the kernel's does not
 * (whole milliseconds from a truncated clock ended one up to 1 ms early). */
static inline uint64_t ms_deadline(int timeout)
{
	return timeout > 0 ? mono_ns() + (uint64_t)timeout * 1000000u : 0;
}

static inline int ms_until(uint64_t deadline)
{
	uint64_t now = mono_ns();

	return now >= deadline ? 0 : (int)((deadline - now + 999999u) / 1000000u);
}

/* While spinning, or while the rings keep having news, the kernel's own
 * events (listeners, timers, plain sockets) are looked at this often: they
 * wait at most this long, and a busy link costs no system call. */
#define KERNEL_LOOK_NS 20000u

/* One busy-poll's clock (wait_bell, eset_spin, poll_spin): its budget,
 * within the caller's timeout, and the next look at the kernel's own fds
 * (which wait_bell, watching one link, has no use for). */
struct spin_clock {
	uint64_t start, now, budget, look;
	int over; /* ran out: the wait's end (spin_woke) adapts the budget */
	unsigned turns;
};

/* A spin reads the clock (and a caller may look at other rare things) once
 * in this many turns. */
#define SPIN_CLOCK_EVERY 8u

enum { SPIN_ON, SPIN_LOOK, SPIN_OVER };

/* 0: this wait does not spin (its budget is none); else the clock runs. */
HIDDEN int spin_begin(struct spin_clock *c, int timeout);

/* After a turn that found nothing: SPIN_ON (paused, go on), SPIN_LOOK
 * (look at the kernel's fds now, then go on) or SPIN_OVER (a miss,
 * counted). */
HIDDEN int spin_next(struct spin_clock *c);

/* The link had news for a wait whose spin ran out (c zeroed, or after
 * spin_begin): had the spin lasted until now it would have caught it. */
HIDDEN void spin_woke(struct spin_clock *c);

/* A spin found its event (1) or ran out (0). */
HIDDEN void spin_result(int found);

/* This thread moved bytes on a link (spins grow only in the thread that
 * does all of the process's link I/O). */
HIDDEN void note_io_thread(void);

#endif
