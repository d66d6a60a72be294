/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpklink/pkey.h"
#include "pkru.h"

#ifndef PKEY_DISABLE_ACCESS
#define PKEY_DISABLE_ACCESS 0x1
#endif

/* 0 unknown, 1 usable, 2 not usable (probe_why says why). Racing first
 * callers compute the same answer, so publishing it twice is harmless. */
static int probed;
static const char *probe_why;

static int usable(const char **why)
{
	int p = __atomic_load_n(&probed, __ATOMIC_ACQUIRE);
	unsigned a, b, c, d;

	if (p == 0) {
		const char *w = NULL;

		if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 3)))
			w = "the CPU has no PKU";
		else if (!(c & (1u << 4)))
			w = "the kernel did not enable PKU (no OSPKE)";
		__atomic_store_n(&probe_why, w, __ATOMIC_RELAXED);
		p = w ? 2 : 1;
		__atomic_store_n(&probed, p, __ATOMIC_RELEASE);
	}
	if (why)
		*why = p == 1 ? NULL : __atomic_load_n(&probe_why, __ATOMIC_RELAXED);
	return p == 1;
}

int mpk_pkey_probe(const char **why)
{
	return usable(why);
}

int mpk_pkey_alloc(void)
{
	long k;

	if (!usable(NULL))
		return -ENOTSUP;
	k = syscall(SYS_pkey_alloc, 0, PKEY_DISABLE_ACCESS);
	if (k < 0)
		/* ENOSYS: a kernel built without pkeys; EINVAL: one that
		 * has them but not on this CPU. Either way, none here. */
		return errno == ENOSYS || errno == EINVAL ? -ENOTSUP : -errno;
	return (int)k;
}

int mpk_pkey_free(int pkey)
{
	if (pkey <= 0)
		return 0;
	if (syscall(SYS_pkey_free, pkey) < 0)
		return -errno;
	return 0;
}

int mpk_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	if (pkey < 0)
		return -EINVAL;
	if (pkey == 0 && !usable(NULL))
		return mprotect(addr, len, prot) < 0 ? -errno : 0;
	if (!usable(NULL))
		return -ENOTSUP;
	if (syscall(SYS_pkey_mprotect, addr, len, prot, pkey) < 0)
		return -errno;
	return 0;
}

/* RDPKRU faults (#UD) on a CPU without PKU: every PKRU access below is
 * behind a key > 0, which only mpk_pkey_alloc hands out, after the probe.
 * A made-up key on such a CPU is still refused here rather than crash. */
void mpk_pkey_open(int pkey, int flags)
{
	uint32_t keep;

	if (pkey <= 0 || pkey > 15 || !usable(NULL))
		return;
	/* AD is bit 2k, WD bit 2k+1: a read-only open keeps WD. */
	keep = flags & MPK_PKEY_READ_ONLY ? UINT32_C(2) << (2 * pkey) : 0;
	mpk__wrpkru((mpk__rdpkru() & ~mpk__pkey_bits(pkey)) | keep);
}

void mpk_pkey_close(int pkey)
{
	if (pkey <= 0 || pkey > 15 || !usable(NULL))
		return;
	mpk__wrpkru(mpk__rdpkru() | mpk__pkey_bits(pkey));
}

int mpk_pkey_denied(int pkey)
{
	if (pkey <= 0 || pkey > 15 || !usable(NULL))
		return 0;
	return !!(mpk__rdpkru() & (UINT32_C(1) << (2 * pkey)));
}
