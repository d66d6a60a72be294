/* SPDX-License-Identifier: MIT */
/*
 * Which process owns what: fork, vfork and exec.
 *
 * fork: a process's ring indices are its own copy. A fork generation,
 * bumped on both sides of every fork, makes the next user of a link in
 * either process reload the published indices (mpk_link_resync): the
 * daemonize pattern, forking servers, and a connection handed to a child
 * and back all work. Every lock of the preload is held across fork or
 * reset in the child.
 *
 * vfork (and clone(CLONE_VM) without fork's handlers, as posix_spawn
 * does): the child runs in our memory until it execs or exits, and must
 * change nothing of it: its interposed calls pass straight to libc.
 *
 * exec: the new image's preload starts with an empty table; sockets
 * without CLOEXEC that carried links are adopted again from the launcher
 * (upgrade.h).
 *
 * May call: fdtab.h, ctlclient.h, pool.h.
 */
#ifndef MPK_PROCESS_H
#define MPK_PROCESS_H

#include "preload.h"

HIDDEN extern unsigned process_gen; /* bumped on both sides of every fork */

static inline unsigned process_fork_gen(void)
{
	return __atomic_load_n(&process_gen, __ATOMIC_RELAXED);
}

/* 1 in a child that shares our memory and has not exec'd yet (vfork):
 * it must change nothing. One getpid(): for paths that change state. */
HIDDEN int process_borrowed(void);

/* Keeps this image's LD_PRELOAD and MPKLINK_* for exec (exec.c); from
 * preload_start. */
HIDDEN void exec_start(void);

/* Whether this process has an io_uring instance: its reads and writes on
 * a socket go past the preload, so a new connection then stays plain TCP.
 * Read from /proc/self/maps (io_uring's rings are mapped from its fd);
 * once seen, for good; not seen, believed while the address space (less
 * our links) keeps its size. */
HIDDEN int process_uses_io_uring(void);

/* Fork handlers for every lock; from preload_start. */
HIDDEN void process_start(void);

#endif
