/* SPDX-License-Identifier: MIT */
/*
 * What every file of the preload shares: visibility, and the one-time
 * start (init.c) that every interposed call runs before anything else.
 *
 * The library's files, top down (each says what it owns and may call):
 *   wrap_*.c       the exported interposers, thin: decide plain or ours
 *   upgrade.c      turning a connect, listen or accept into a link
 *   data.c         reads and writes on a link with socket semantics
 *   epoll.c        epoll emulation;  pollsel.c  poll/ppoll/select/pselect
 *   readiness.c    what one connection is ready for, and arming its bells
 *   conn.c         a connection's object, its setup states and its end
 *   spin.c         how long a waiting call busy-polls the rings
 *   signals.c      which handlers ran during a wait (SA_RESTART)
 *   pool.c         links held ahead of connections (batches)
 *   sockdiag.c     the kernel's socket table: a peer socket's cookie
 *   ctlclient.c    requests to our launcher
 *   process.c      fork, vfork: which process owns what
 *   exec.c         exec and posix_spawn keep the preload where links go
 *   fdtab.c        fd numbers -> our objects, with the kernel's lifetimes
 *   stats.c, settings.c, log.c, real.c
 */
#ifndef MPK_PRELOAD_H
#define MPK_PRELOAD_H

#include <errno.h>
#include <pthread.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))

/*
 * The body of an exported wrapper: returns call's value, and when the call
 * succeeded (>= 0; for pointers, not NULL), errno as the program had it
 * before. libc's system-call wrappers leave errno alone on success, and
 * programs rely on it: gRPC reads errno after a connect that returned -1
 * only once it has also added the fd to its epoll set, so a wrapper of
 * epoll_ctl that left its internal ENOENT there failed the connect with
 * "No such file or directory".
 */
#define KEEP_ERRNO(type, call)                                                           \
	do {                                                                             \
		int e_ = errno;                                                          \
		type r_ = (call);                                                        \
		if (r_ >= 0)                                                             \
			errno = e_;                                                      \
		return r_;                                                               \
	} while (0)
#define KEEP_ERRNO_PTR(type, call)                                                       \
	do {                                                                             \
		int e_ = errno;                                                          \
		type r_ = (call);                                                        \
		if (r_)                                                                  \
			errno = e_;                                                      \
		return r_;                                                               \
	} while (0)

HIDDEN extern pthread_once_t preload_once;
HIDDEN void preload_start(void);

/* Resolves the real calls and reads the settings, once per process. */
static inline void init(void)
{
	pthread_once(&preload_once, preload_start);
}

#endif
