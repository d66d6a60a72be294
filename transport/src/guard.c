/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpklink/ring.h"
#include "pkru.h"
#include "sys.h"

#ifndef PKEY_DISABLE_ACCESS
#define PKEY_DISABLE_ACCESS 0x1
#endif

int mpk__pkey = -1;

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static int guard_decided;
static int guard_result;
static struct mpk_guard_status guard_st = {.pkey = -1, .reason = "not initialised"};

int mpk_guard_parse(const char *s)
{
	if (!s || !*s || !strcmp(s, "auto"))
		return MPK_GUARD_AUTO;
	if (!strcmp(s, "mpk"))
		return MPK_GUARD_MPK;
	if (!strcmp(s, "off"))
		return MPK_GUARD_OFF;
	return -EINVAL;
}

static void probe_cpu(int *pku, int *ospke)
{
	unsigned a, b, c, d;

	*pku = *ospke = 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	*pku = !!(c & (1u << 3));
	*ospke = !!(c & (1u << 4));
}

static int decide(enum mpk_guard_mode mode)
{
	int pku, ospke, k;

	if (mode != MPK_GUARD_AUTO && mode != MPK_GUARD_MPK && mode != MPK_GUARD_OFF)
		return -EINVAL;
	probe_cpu(&pku, &ospke);
	guard_st.mode = mode;
	guard_st.cpu_pku = pku;
	guard_st.os_pke = ospke;
	guard_st.active = 0;
	guard_st.pkey = -1;
	if (mode == MPK_GUARD_OFF) {
		guard_st.reason = "off: MPKLINK_GUARD=off";
		return 0;
	}
	if (!pku || !ospke) {
		guard_st.reason = !pku ? "off: the CPU has no PKU"
				       : "off: the kernel did not enable PKU (no OSPKE)";
		goto unavailable;
	}
	/* Denies access in this thread; every other thread already starts
	 * with non-zero keys denied (the kernel's init_pkru). */
	k = (int)mpk__sys()->syscall(SYS_pkey_alloc, 0, PKEY_DISABLE_ACCESS);
	if (k < 0) {
		guard_st.reason = errno == ENOSPC ? "off: no protection key left (pkey_alloc: ENOSPC)"
						  : "off: pkey_alloc failed";
		goto unavailable;
	}
	guard_st.active = 1;
	guard_st.pkey = k;
	guard_st.reason = "on: ring memory is tagged with a protection key";
	__atomic_store_n(&mpk__pkey, k, __ATOMIC_RELEASE);
	mpk__guard_close();
	return 0;
unavailable:
	if (mode == MPK_GUARD_MPK)
		return -ENOTSUP;
	/* mpklink-run said it already, for its whole process tree. */
	if (getenv("MPKLINK_GUARD_SAID"))
		return 0;
	fprintf(stderr, "mpklink: MPK guard %s (MPKLINK_GUARD=auto); rings are unguarded\n",
		guard_st.reason);
	return 0;
}

int mpk_guard_init(enum mpk_guard_mode mode)
{
	int r;

	pthread_mutex_lock(&guard_lock);
	if (!guard_decided) {
		guard_result = decide(mode);
		guard_decided = guard_result != -EINVAL;
	}
	r = guard_result;
	pthread_mutex_unlock(&guard_lock);
	return r;
}

int mpk_guard_init_env(void)
{
	int m = mpk_guard_parse(getenv("MPKLINK_GUARD"));

	if (m < 0)
		return m;
	return mpk_guard_init((enum mpk_guard_mode)m);
}

void mpk_guard_status(struct mpk_guard_status *st)
{
	mpk_guard_init_env();
	pthread_mutex_lock(&guard_lock);
	*st = guard_st;
	pthread_mutex_unlock(&guard_lock);
}

int mpk__guard_tag(void *addr, size_t len)
{
	int k = __atomic_load_n(&mpk__pkey, __ATOMIC_ACQUIRE);

	if (k <= 0)
		return 0;
	if (mpk__sys()->syscall(SYS_pkey_mprotect, addr, len, PROT_READ | PROT_WRITE, k) < 0)
		return -errno;
	return 0;
}
