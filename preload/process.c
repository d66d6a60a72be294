/* SPDX-License-Identifier: MIT */
/* fork and vfork: who owns what (process.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ctlclient.h"
#include "fdtab.h"
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
	fdtab_fork_prepare();
}

static void fork_parent(void)
{
	fdtab_fork_parent();
	ctl_fork_parent();
	__atomic_fetch_add(&process_gen, 1, __ATOMIC_RELAXED);
}

static void fork_child(void)
{
	__atomic_store_n(&owner, getpid(), __ATOMIC_RELAXED);
	fdtab_fork_child();
	ctl_fork_child();
	__atomic_fetch_add(&process_gen, 1, __ATOMIC_RELAXED);
}

int process_uses_io_uring(void)
{
	static int seen;
	static __thread char buf[65536];
	size_t keep = 0;
	int fd, found = 0;

	if (__atomic_load_n(&seen, __ATOMIC_RELAXED))
		return 1;
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
	return found;
}

void process_start(void)
{
	owner = getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
