/* SPDX-License-Identifier: MIT */
/* fork and vfork: who owns what (process.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"
#include "fdtab.h"
#include "pool.h"
#include "process.h"
#include "real.h"

unsigned process_gen;
/* How long a look at /proc/self/maps that found no io_uring is taken at
 * its word: reading it costs ~50 us with a hundred mappings here, as much
 * as a whole connection over loopback TCP, and every link held adds one. */
#define IO_URING_FRESH_NS 10000000
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

int process_uses_io_uring(void)
{
	static int seen;
	static int64_t looked_ns; /* when "none" was last read */
	static __thread char buf[65536];
	struct timespec ts;
	size_t keep = 0;
	int fd, found = 0;
	int64_t now;

	if (__atomic_load_n(&seen, __ATOMIC_RELAXED))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (now - __atomic_load_n(&looked_ns, __ATOMIC_RELAXED) < IO_URING_FRESH_NS)
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
		__atomic_store_n(&looked_ns, now, __ATOMIC_RELAXED);
	return found;
}

void process_start(void)
{
	owner = getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
