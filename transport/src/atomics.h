/* SPDX-License-Identifier: MIT */
/*
 * The only place mpklink spells out memory orderings. Every call site that
 * uses an ordered access names the access on the other side it pairs with.
 */
#ifndef MPK_ATOMICS_H
#define MPK_ATOMICS_H

#include <stdint.h>

#define mpk_load_acquire(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mpk_load_relaxed(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define mpk_store_release(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define mpk_store_relaxed(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define mpk_xchg(p, v)           __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define mpk_fetch_or(p, v)       __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
/* Compare-and-swap: whether *p was *expect (then it is v); else *expect
 * gets what *p is. */
#define mpk_cas(p, expect, v) \
	__atomic_compare_exchange_n((p), (expect), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define mpk_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* Store->load ordering for the doorbell handshake (Dekker): release and
 * acquire alone let a later load pass an earlier store. */
static inline void mpk_fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void mpk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#endif
