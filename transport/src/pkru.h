/* SPDX-License-Identifier: MIT */
/*
 * PKRU access, the only place in mpklink that touches it. Two bits per key:
 * AD (access disable) at 2k, WD (write disable) at 2k+1.
 *
 * The "memory" clobbers matter: without them the compiler may move a ring
 * load or store across WRPKRU, outside the open window (one of the bugs of
 * the selftests' protection_keys.c).
 */
#ifndef MPK_PKRU_H
#define MPK_PKRU_H

#include <stdint.h>

extern int mpk__pkey; /* the transport's key; -1 while the guard is off */

static inline uint32_t mpk__rdpkru(void)
{
	uint32_t eax, edx;
	__asm__ volatile(".byte 0x0f,0x01,0xee" /* rdpkru */
			 : "=a"(eax), "=d"(edx)
			 : "c"(0)
			 : "memory");
	return eax;
}

static inline void mpk__wrpkru(uint32_t pkru)
{
	__asm__ volatile(".byte 0x0f,0x01,0xef" /* wrpkru */
			 :
			 : "a"(pkru), "c"(0), "d"(0)
			 : "memory");
}

static inline uint32_t mpk__pkey_bits(int pkey)
{
	return UINT32_C(3) << (2 * pkey);
}

/* Opens the ring key for this thread. Pair with mpk__guard_close before
 * returning to anything that is not transport code. */
static inline void mpk__guard_open(void)
{
	int k = __atomic_load_n(&mpk__pkey, __ATOMIC_RELAXED);
	if (k > 0)
		mpk__wrpkru(mpk__rdpkru() & ~mpk__pkey_bits(k));
}

static inline void mpk__guard_close(void)
{
	int k = __atomic_load_n(&mpk__pkey, __ATOMIC_RELAXED);
	if (k > 0)
		mpk__wrpkru(mpk__rdpkru() | mpk__pkey_bits(k));
}

/* Tags [addr, addr+len) with the transport key when the guard is active. */
int mpk__guard_tag(void *addr, size_t len);

#endif
