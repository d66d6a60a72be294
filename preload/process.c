/* SPDX-License-Identifier: MIT */
/* fork and vfork: who owns what (process.h). */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "ctlclient.h"
#include "fdtab.h"
#include "process.h"

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

void process_start(void)
{
	owner = getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
