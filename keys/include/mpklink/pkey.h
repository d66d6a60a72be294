/* SPDX-License-Identifier: MIT */
/*
 * Extra protection keys, for memory other than the rings: the launcher
 * keeps its identity's secret key in a page under a key of its own, so a
 * bug that opens the ring key (or any stray pointer) still cannot read it.
 *
 * These keys are independent of the ring guard (mpk_guard_*): they ignore
 * MPKLINK_GUARD, and a key allocated here is never the transport's.
 *
 * Who may touch a tagged page: PKRU is per thread. A thread that never
 * wrote PKRU denies every key but 0 (the kernel's init_pkru), a new thread
 * inherits its creator's PKRU, and a signal handler starts with the
 * kernel's default. mpk_pkey_alloc denies the key in the calling thread as
 * well, so after it returns no thread of a well-behaved process has the
 * key open until one calls mpk_pkey_open.
 *
 * Return values: -errno on failure, never errno. Functions on a key <= 0
 * (no key: PKU absent) do nothing, so callers need not branch.
 */
#ifndef MPKLINK_PKEY_H
#define MPKLINK_PKEY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Whether this CPU and kernel can enforce protection keys (CPUID PKU and
 * OSPKE). Returns 1 or 0; when 0 and why is not NULL, *why gets one line
 * saying why (a static string). Does not allocate a key.
 */
int mpk_pkey_probe(const char **why);

/*
 * Allocates a protection key, access-disabled in the calling thread.
 * Returns the key (1..15), -ENOTSUP (no usable PKU: the probe failed, or
 * the kernel lacks pkey_alloc), -ENOSPC (no key left), or -errno.
 */
int mpk_pkey_alloc(void);

/*
 * Frees a key from mpk_pkey_alloc. The caller first retags or unmaps every
 * page that carries it: the kernel does not, and the next allocation may
 * return the same key. Returns 0 or -errno; 0 for pkey <= 0.
 */
int mpk_pkey_free(int pkey);

/*
 * pkey_mprotect: sets prot on the page-aligned range [addr, addr+len) and
 * tags it with pkey (0 is the default key). Later plain mprotect calls on
 * the range keep the tag. Returns 0, -EINVAL (unaligned, or a bad key),
 * -ENOTSUP (no PKU and pkey != 0), or -errno.
 */
int mpk_pkey_mprotect(void *addr, size_t len, int prot, int pkey);

#define MPK_PKEY_READ_ONLY 1 /* for mpk_pkey_open: reads only */

/*
 * Opens pkey for the calling thread only: read and write, or reads only
 * with MPK_PKEY_READ_ONLY. Pair with mpk_pkey_close before returning to
 * code that must not see the memory. Nothing for pkey <= 0. Cannot fail.
 */
void mpk_pkey_open(int pkey, int flags);

/* Denies every access to pkey for the calling thread. Nothing for pkey <= 0. */
void mpk_pkey_close(int pkey);

/* Whether the calling thread's PKRU denies all access to pkey: 1 or 0
 * (0 for pkey <= 0). For tests and assertions. */
int mpk_pkey_denied(int pkey);

#ifdef __cplusplus
}
#endif

#endif
