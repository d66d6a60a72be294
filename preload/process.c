/* SPDX-License-Identifier: MIT */
/* fork and vfork: who owns what (process.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctlclient.h"
#include "fdtab.h"
#include "mpklink/ring.h"
#include "pool.h"
#include "process.h"
#include "real.h"

unsigned process_gen;
static pid_t owner; /* the process whose memory this is */

int process_borrowed(void)
{
	/* A fork child ran our child handler, which made it the owner; a
	 * vfork child ran nothing of ours, and shares the parent's memory. */
	return getpid() != __atomic_load_n(&owner, __ATOMIC_RELAXED);
}

static void fork_prepare(void)
{
	ctl_fork_prepare();
	pool_fork_prepare(); /* before fdtab's: a pool's close takes the table's lock */
	fdtab_fork_prepare();
}

static void fork_parent(void)
{
	fdtab_fork_parent();
	pool_fork_parent();
	ctl_fork_parent();
	__atomic_fetch_add(&process_gen, 1, __ATOMIC_RELAXED);
}

static void fork_child(void)
{
	__atomic_store_n(&owner, getpid(), __ATOMIC_RELAXED);
	fdtab_fork_child();
	ctl_fork_child();
	pool_fork_child();
	__atomic_fetch_add(&process_gen, 1, __ATOMIC_RELAXED);
}

/* The address space's size, less what links of ours take (pages of
 * /proc/self/statm, read through a descriptor kept per process); -1 when
 * it cannot be read. */
static int64_t vm_not_ours(void)
{
	static int fd = -1;
	static pid_t fd_pid;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char buf[128];
	ssize_t n;
	long long pages;

	pthread_mutex_lock(&lock);
	if (fd >= 0 && fd_pid != getpid()) /* the parent's, inherited */
		fd = -1;
	if (fd < 0) {
		int f = real.openat(AT_FDCWD, "/proc/self/statm", O_RDONLY | O_CLOEXEC);

		if (f >= 0) {
			fd = fdtab_internal_take(f);
			fd_pid = getpid();
		}
	}
	n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
	pthread_mutex_unlock(&lock);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (sscanf(buf, "%lld", &pages) != 1)
		return -1;
	return pages * sysconf(_SC_PAGESIZE) - (int64_t)mpk_link_mapped_bytes();
}

int process_uses_io_uring(void)
{
	static int seen;
	static int64_t none_at = -1; /* vm_not_ours when maps last showed none */
	static __thread char buf[65536];
	size_t keep = 0;
	int fd, found = 0;
	int64_t vm;

	if (__atomic_load_n(&seen, __ATOMIC_RELAXED))
		return 1;
	/* Reading /proc/self/maps costs ~50 us with a hundred mappings here,
	 * as much as a whole loopback connection, and each link held adds
	 * one; statm costs 1 us. An io_uring instance maps its rings: while
	 * the address space, less our links, is the size it was when maps
	 * showed none, nothing was mapped since (short of an unmap of the
	 * very same size at the same time). */
	vm = vm_not_ours();
	if (vm >= 0 && vm == __atomic_load_n(&none_at, __ATOMIC_RELAXED))
		return 0;
	fd = real.openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = real.read(fd, buf + keep, sizeof(buf) - keep);

		if (n <= 0)
			break;
		n += (ssize_t)keep;
		if (memmem(buf, (size_t)n, "[io_uring]", 10)) {
			found = 1;
			break;
		}
		/* A match may straddle two reads. */
		keep = n < 9 ? (size_t)n : 9;
		memmove(buf, buf + n - keep, keep);
	}
	real.close(fd);
	if (found)
		__atomic_store_n(&seen, 1, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&none_at, vm, __ATOMIC_RELAXED); /* taken before the read */
	return found;
}

void process_start(void)
{
	owner = getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
