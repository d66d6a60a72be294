/* SPDX-License-Identifier: MIT */
/*
 * Interposers: waiting for fds (epoll_create, epoll_create1, epoll_ctl,
 * epoll_wait, epoll_pwait, epoll_pwait2, poll, __poll_chk, ppoll, select,
 * pselect).
 * Thin: the emulations are epoll.c and pollsel.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "conn.h"
#include "epoll.h"
#include "fdtab.h"
#include "pollsel.h"
#include "process.h"
#include "real.h"
#include "settings.h"
#include "spin.h"

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *ts, const sigset_t *sigmask,
		size_t fdslen);

/* A new epoll fd: nothing stale under its number, and its set. */
static int created(int fd)
{
	if (fd < 0 || process_borrowed())
		return fd;
	if (fdtab_peek(fd))
		fdtab_fresh(fd);
	if (cfg.enabled)
		eset_created(fd);
	return fd;
}

static int epoll_create_(int size)
{
	init();
	return created(real.epoll_create(size));
}

EXPORT int epoll_create(int size)
{
	KEEP_ERRNO(int, epoll_create_(size));
}

static int epoll_create1_(int flags)
{
	init();
	return created(real.epoll_create1(flags));
}

EXPORT int epoll_create1(int flags)
{
	KEEP_ERRNO(int, epoll_create1_(flags));
}

static int epoll_ctl_(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct fdobj *o;

	init();
	o = fdtab_peek(fd);
	if (o && o->kind == FDO_CONN)
		return eset_ctl(epfd, op, fd, ev);
	return eset_ctl_plain(epfd, op, fd, ev);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	KEEP_ERRNO(int, epoll_ctl_(epfd, op, fd, ev));
}

static int epoll_wait_(int epfd, struct epoll_event *ev, int max, int timeout)
{
	init();
	return eset_wait(epfd, ev, max, timeout, NULL, 0);
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	KEEP_ERRNO(int, epoll_wait_(epfd, ev, max, timeout));
}

static int epoll_pwait_(int epfd, struct epoll_event *ev, int max, int timeout,
		       const sigset_t *sigmask)
{
	init();
	return eset_wait(epfd, ev, max, timeout, sigmask, 1);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
		       const sigset_t *sigmask)
{
	KEEP_ERRNO(int, epoll_pwait_(epfd, ev, max, timeout, sigmask));
}

/* A timespec as the millisecond timeout the emulation counts in (rounded
 * up: never shorter); -1 for NULL; -2 when invalid. */
static int ts_ms(const struct timespec *ts)
{
	if (!ts)
		return -1;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return -2;
	if (ts->tv_sec > INT_MAX / 1000 - 1)
		return INT_MAX;
	return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

static int epoll_pwait2_(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			const sigset_t *sigmask)
{
	int t;

	init();
	t = ts_ms(ts);
	if (t == -2) {
		errno = EINVAL;
		return -1;
	}
	return eset_wait(epfd, ev, max, t, sigmask, 1);
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			const sigset_t *sigmask)
{
	KEEP_ERRNO(int, epoll_pwait2_(epfd, ev, max, ts, sigmask));
}

static int poll_(struct pollfd *fds, nfds_t nfds, int timeout)
{
	init();
	return poll_common(fds, nfds, timeout, NULL);
}

EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	KEEP_ERRNO(int, poll_(fds, nfds, timeout));
}

static int __poll_chk_(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < nfds)
		abort();
	init();
	return poll_common(fds, nfds, timeout, NULL);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
	KEEP_ERRNO(int, __poll_chk_(fds, nfds, timeout, fdslen));
}

static int do_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		    const sigset_t *sigmask);

static int ppoll_(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		 const sigset_t *sigmask)
{
	return do_ppoll(fds, nfds, ts, sigmask);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		 const sigset_t *sigmask)
{
	KEEP_ERRNO(int, ppoll_(fds, nfds, ts, sigmask));
}

static int __ppoll_chk_(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		       const sigset_t *sigmask, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < nfds)
		abort();
	return do_ppoll(fds, nfds, ts, sigmask);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		       const sigset_t *sigmask, size_t fdslen)
{
	KEEP_ERRNO(int, __ppoll_chk_(fds, nfds, ts, sigmask, fdslen));
}

static int do_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
		    const sigset_t *sigmask)
{
	int t;

	init();
	t = ts_ms(ts);
	if (t == -2) {
		errno = EINVAL;
		return -1;
	}
	if (!sigmask)
		return poll_common(fds, nfds, t, NULL);
	for (nfds_t i = 0; i < nfds; i++) {
		struct fdobj *o = fdtab_peek(fds[i].fd);

		if (o && o->kind == FDO_CONN)
			return poll_common(fds, nfds, t, sigmask);
	}
	return real.ppoll(fds, nfds, ts, sigmask);
}

static int select_(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	uint64_t start = 0, total = 0, spent;
	int t, r, e;

	init();
	if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
		errno = EINVAL;
		return -1;
	}
	if (tv) {
		start = mono_ns();
		total = (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u;
	}
	t = !tv ? -1 : (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
	r = select_common(nfds, rd, wr, ex, t, NULL, 0, NULL, tv);
	/* Linux's select leaves in tv the time it did not wait. */
	if (tv) {
		e = errno;
		spent = mono_ns() - start;
		spent = spent < total ? total - spent : 0;
		tv->tv_sec = (time_t)(spent / 1000000000u);
		tv->tv_usec = (suseconds_t)(spent % 1000000000u / 1000u);
		errno = e;
	}
	return r;
}

EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	KEEP_ERRNO(int, select_(nfds, rd, wr, ex, tv));
}

static int pselect_(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
		   const sigset_t *sigmask)
{
	int t;

	init();
	t = !ts ? -1 : (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	return select_common(nfds, rd, wr, ex, t, sigmask, 1, ts, NULL);
}

EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
		   const sigset_t *sigmask)
{
	KEEP_ERRNO(int, pselect_(nfds, rd, wr, ex, ts, sigmask));
}
