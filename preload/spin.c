/* SPDX-License-Identifier: MIT */
/* The spin policy (spin.h). */
#define _GNU_SOURCE
#include "settings.h"
#include "spin.h"

/*
 * Whether this thread spins on its next wait, and for how long. A spin is
 * the thread's whole budget, or none: after k spins in a row that found
 * nothing, only every 2^k-th wait spins (k <= SPIN_BACKOFF_MAX), so on an
 * oversubscribed machine, where the peer may need our core to answer, we
 * soon stop taking it; a spin that finds its event spins every wait again.
 * Shorter spins instead (the budget halved per miss) fail in a cascade when
 * the peer takes between half the budget and the budget to answer.
 *
 * The budget itself adapts between MPKLINK_SPIN_US and MPKLINK_SPIN_MAX_US
 * as the guest-halt-polling governor (cpuidle-haltpoll) and KVM's
 * halt_poll_ns do: a spin that ran out on a wait the link ended within the
 * maximum doubles it (it was only too short, and a wake-up costs more than
 * the spin would have: 100 us and more here, where an idle vCPU halts); a
 * wait longer than the maximum halves it: a gRPC call of 1 MiB is a chain
 * of 150-250 us steps on each side, and fixed 50 us spins slept on every
 * one of them. Such a spin still counts as a miss for the backoff above:
 * else a thread pool's poller (gRPC C++'s sync server) spins on every wait
 * and takes a core its own workers or the peer need. docs/PERFORMANCE.md
 * ("Spins that grow") has the measurements.
 */
#define SPIN_BACKOFF_MAX 4u
static __thread unsigned tl_spin_misses, tl_spin_waits;
static __thread uint64_t tl_spin_ns; /* 0: cfg.spin_ns */

/*
 * The thread that last moved bytes on a link (its tl_spin_ns's address),
 * and when that last changed. Spins grow past MPKLINK_SPIN_US only in that
 * thread, and only once it has done all of the process's link I/O for
 * IO_SETTLE_NS. A thread pool (gRPC C++'s sync server) hands each request to
 * another thread, and a long spin in its poller takes a CPU the thread
 * finishing the last call, or the peer, needs (its p99 tripled). A
 * single-threaded server moves its I/O between threads only at start.
 */
static void *io_thread;
static uint64_t io_moved_ns;
#define IO_SETTLE_NS 10000000u

void note_io_thread(void)
{
	/* Written only on a change: one thread doing all the I/O keeps the
	 * line in its cache. */
	if (__atomic_load_n(&io_thread, __ATOMIC_RELAXED) != &tl_spin_ns) {
		__atomic_store_n(&io_thread, &tl_spin_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&io_moved_ns, mono_ns(), __ATOMIC_RELAXED);
	}
}

static uint64_t spin_budget(uint64_t now)
{
	unsigned k = tl_spin_misses < SPIN_BACKOFF_MAX ? tl_spin_misses : SPIN_BACKOFF_MAX;

	if (!tl_spin_ns)
		tl_spin_ns = cfg.spin_ns;
	if ((++tl_spin_waits & ((1u << k) - 1)) != 0)
		return 0;
	if (tl_spin_ns > cfg.spin_ns &&
	    (__atomic_load_n(&io_thread, __ATOMIC_RELAXED) != &tl_spin_ns ||
	     /* Signed: another thread may have stamped a move after our now. */
	     (int64_t)(now - __atomic_load_n(&io_moved_ns, __ATOMIC_RELAXED)) < IO_SETTLE_NS))
		return cfg.spin_ns;
	return tl_spin_ns;
}

void spin_result(int found)
{
	if (found)
		tl_spin_misses = 0;
	else if (tl_spin_misses < SPIN_BACKOFF_MAX)
		tl_spin_misses++;
}

int spin_begin(struct spin_clock *c, int timeout)
{
	c->over = 0;
	c->start = c->now = mono_ns();
	c->budget = spin_budget(c->start);
	if (!c->budget)
		return 0;
	if (timeout > 0 && (uint64_t)timeout * 1000000u < c->budget)
		c->budget = (uint64_t)timeout * 1000000u;
	c->look = c->start + KERNEL_LOOK_NS;
	c->turns = 0;
	return 1;
}

int spin_next(struct spin_clock *c)
{
	/* The clock costs more than a look at a ring (26 ns against a few
	 * here): read it every few turns only. */
	if (++c->turns % SPIN_CLOCK_EVERY) {
		__builtin_ia32_pause();
		return SPIN_ON;
	}
	c->now = mono_ns();
	if (c->now - c->start >= c->budget) {
		spin_result(0);
		c->over = 1;
		return SPIN_OVER;
	}
	if (c->now >= c->look) {
		c->look = c->now + KERNEL_LOOK_NS;
		return SPIN_LOOK;
	}
	__builtin_ia32_pause();
	return SPIN_ON;
}

void spin_woke(struct spin_clock *c)
{
	uint64_t waited;

	if (!c->over)
		return;
	c->over = 0;
	waited = mono_ns() - c->start;
	if (waited <= cfg.spin_max_ns && cfg.spin_grow) {
		tl_spin_ns = tl_spin_ns * 2 < cfg.spin_max_ns ? tl_spin_ns * 2 : cfg.spin_max_ns;
	} else if (waited > cfg.spin_max_ns && tl_spin_ns > cfg.spin_ns) {
		tl_spin_ns = tl_spin_ns / 2 > cfg.spin_ns ? tl_spin_ns / 2 : cfg.spin_ns;
	}
}

