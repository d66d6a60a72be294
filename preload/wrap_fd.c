/* SPDX-License-Identifier: MIT */
/*
 * Interposers: fd numbers' lifetimes (close, close_range, closefrom,
 * syscall(SYS_close[_range]), fclose, dup, dup2, dup3, fcntl, fcntl64, and
 * the calls that make new fds: open, openat, creat, pipe, pipe2,
 * socketpair, eventfd, memfd_create, signalfd, timerfd_create,
 * inotify_init, and glibc's that open inside: mkstemp and its kin,
 * tmpfile, fopen, opendir) and fork.
 * A number the program closes loses its name in the table (fdtab.h); a
 * number the kernel hands out anew is purged of anything stale.
 *
 * Our own fds (doorbells, control sockets) are not the program's: close
 * of one says EBADF, dup2/dup3 onto one EBUSY, and close_range and
 * closefrom close around them (a daemon's closefrom(3) would otherwise
 * take them, and hand their numbers to files the rings would then be rung
 * into). A vfork child changes nothing of ours: its calls are libc's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conn.h"
#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "process.h"
#include "real.h"

/* fd was just closed by whoever: its name goes, and what it named once
 * no call uses it. Not for internal fds, nor in a vfork child. */
static void forget_closed(int fd)
{
	struct fdobj *o;
	int last;

	if (fdtab_peek(fd) && fdtab_peek(fd)->kind == FDO_EPOLL) {
		eset_close(fd);
		return;
	}
	o = fdtab_unhook(fd, &last);
	if (!o)
		return;
	fdobj_put(o);
}

static int do_close(int fd)
{
	struct fdobj *o;
	int r, last;

	init();
	o = fdtab_peek(fd);
	if (!o)
		return real.close(fd);
	if (o == &fdtab_internal_obj) {
		/* Not the application's: as if it did not exist. */
		errno = EBADF;
		return -1;
	}
	if (process_borrowed())
		return real.close(fd); /* its own table; our memory is the parent's */
	if (o->kind == FDO_EPOLL) {
		eset_close(fd);
		return real.close(fd);
	}
	o = fdtab_unhook(fd, &last);
	if (!o)
		return real.close(fd);
	/* Its epoll entries stay while the socket is open, as the kernel's
	 * do while the file is (a dup of it keeps reporting under this
	 * number): they go with the connection. */
	if (o->kind == FDO_CONN && last)
		conn_last_close(ufd_of(o));
	r = real.close(fd);
	/* Calls in flight keep the object, and its dup of the socket, until
	 * the last returns: the kernel's FIN waits for them too. */
	fdobj_put(o);
	return r;
}

static int close_(int fd)
{
	return do_close(fd);
}

EXPORT int close(int fd)
{
	KEEP_ERRNO(int, close_(fd));
}

static int do_close_range(unsigned first, unsigned last, int flags)
{
	unsigned lo = first, high;

	init();
	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	/* Close-on-exec marking takes nothing away; a vfork child's table is
	 * its own. */
	if ((flags & CLOSE_RANGE_CLOEXEC) || process_borrowed())
		return (int)real.syscall(SYS_close_range, first, last, flags);
	high = (unsigned)fdtab_high();
	for (unsigned fd = first; fd <= last && fd < high; fd++) {
		if (!fdtab_peek((int)fd))
			continue;
		if (fd > lo && real.syscall(SYS_close_range, lo, fd - 1, flags) < 0)
			return -1;
		if (!fdtab_is_internal((int)fd))
			do_close((int)fd);
		lo = fd + 1;
		flags &= ~CLOSE_RANGE_UNSHARE; /* done by the first call */
	}
	if (lo <= last)
		return (int)real.syscall(SYS_close_range, lo, last, flags);
	return 0;
}

static int close_range_(unsigned first, unsigned last, int flags)
{
	return do_close_range(first, last, flags);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	KEEP_ERRNO(int, close_range_(first, last, flags));
}

EXPORT void closefrom(int lowfd)
{
	int e = errno;

	/* glibc's own closefrom calls its internal close_range, past us. */
	if (lowfd < 0)
		lowfd = 0;
	do_close_range((unsigned)lowfd, ~0u, 0);
	errno = e; /* it cannot fail, and says nothing */
}

static long syscall_(long n, const long *a)
{
	if (n == SYS_close)
		return do_close((int)a[0]);
	if (n == SYS_close_range)
		return do_close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	/* The waits, for programs that make them raw (their sets hold links). */
	if (n == SYS_epoll_wait)
		return eset_wait((int)a[0], (struct epoll_event *)a[1], (int)a[2], (int)a[3], NULL, 0);
	if (n == SYS_epoll_pwait)
		return eset_wait((int)a[0], (struct epoll_event *)a[1], (int)a[2], (int)a[3],
				 (const sigset_t *)a[4], 1);
	return real.syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

EXPORT long syscall(long n, ...)
{
	int e = errno;
	va_list ap;
	long a[6], r;

	init();
	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	r = syscall_(n, a);
	if (r != -1)
		errno = e; /* as KEEP_ERRNO: -1 is syscall()'s one failure */
	return r;
}

/* newfd, just made by a dup of oldfd, names what oldfd names. */
static int dup_hook(int oldfd, int newfd)
{
	struct fdobj *o;

	if (newfd < 0 || (!fdtab_peek(oldfd) && !fdtab_peek(newfd)) || process_borrowed())
		return newfd;
	fdtab_fresh(newfd);
	o = fdtab_get(oldfd, FDO_BIT(FDO_CONN) | FDO_BIT(FDO_LISTEN));
	if (o) {
		if (fdtab_hook(newfd, o) < 0)
			slog(1, "fd %d, a dup of a link's fd %d, is beyond what the preload "
				"tracks: it reads and writes the bare socket", newfd, oldfd);
		fdobj_put(o);
	}
	return newfd;
}

static int dup_(int fd)
{
	int r;

	init();
	r = real.dup(fd);
	return dup_hook(fd, r);
}

EXPORT int dup(int fd)
{
	KEEP_ERRNO(int, dup_(fd));
}

/* The application aims dup2/dup3 at a number it believes free, that one
 * of our doorbells holds: it cannot have it (EBUSY is what Linux says when
 * a number is not available yet). */
static int internal_busy(int newfd)
{
	if (!fdtab_is_internal(newfd))
		return 0;
	slog(1, "fd %d is an mpklink doorbell: dup2/dup3 onto it refused (EBUSY)", newfd);
	errno = EBUSY;
	return 1;
}

/* dup2 and dup3 (flags, or -1 for dup2): the number newfd named goes. */
static int do_dup3(int oldfd, int newfd, int flags)
{
	struct fdobj *old = NULL;
	int r, last;

	init();
	if (!fdtab_peek(oldfd) && !fdtab_peek(newfd))
		return flags < 0 ? real.dup2(oldfd, newfd) : real.dup3(oldfd, newfd, flags);
	if (internal_busy(newfd))
		return -1;
	if (oldfd == newfd)
		return flags < 0 ? real.dup2(oldfd, newfd) : real.dup3(oldfd, newfd, flags);
	if (!process_borrowed() && fdtab_peek(newfd)) {
		old = fdtab_unhook(newfd, &last);
		if (old && old->kind == FDO_CONN && last)
			conn_last_close(ufd_of(old));
	}
	r = flags < 0 ? real.dup2(oldfd, newfd) : real.dup3(oldfd, newfd, flags);
	r = dup_hook(oldfd, r);
	if (old)
		fdobj_put(old);
	return r;
}

static int dup2_(int oldfd, int newfd)
{
	return do_dup3(oldfd, newfd, -1);
}

EXPORT int dup2(int oldfd, int newfd)
{
	KEEP_ERRNO(int, dup2_(oldfd, newfd));
}

static int dup3_(int oldfd, int newfd, int flags)
{
	return do_dup3(oldfd, newfd, flags);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	KEEP_ERRNO(int, dup3_(oldfd, newfd, flags));
}

static int do_fcntl(int fd, int cmd, va_list ap)
{
	struct ufd *u;
	long arg = va_arg(ap, long);
	int r;

	init();
	r = real.fcntl(fd, cmd, arg);
	if (r < 0)
		return r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return dup_hook(fd, r);
	case F_SETFL:
		u = conn_get(fd);
		if (u) {
			u->nonblock = !!(arg & O_NONBLOCK);
			ufd_put(u);
		}
		return r;
	default:
		return r;
	}
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	int e = errno;
	va_list ap;
	int r;

	va_start(ap, cmd);
	r = do_fcntl(fd, cmd, ap);
	va_end(ap);
	if (r >= 0)
		errno = e; /* as KEEP_ERRNO */
	return r;
}

/* glibc's LFS name for the same call. */
EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

static pid_t fork_(void)
{
	init();
	/* The child keeps every link (the memory is shared, the sockets are
	 * inherited); its requests go on a control connection of its own
	 * (process.c's handlers do the rest). */
	return real.fork();
}

EXPORT pid_t fork(void)
{
	KEEP_ERRNO(pid_t, fork_());
}

/*
 * fclose closes its fd inside glibc, past us: a socket a program wrapped
 * in a FILE (fdopen) and closed this way must lose its name here as well.
 * (Its stdio reads and writes went past us too: on a link, the first
 * byte written that way breaks it loudly.)
 */
static int fclose_(FILE *f)
{
	int fd, r, e;

	init();
	fd = f ? fileno(f) : -1;
	if (fd < 0 || !fdtab_peek(fd) || fdtab_is_internal(fd) || process_borrowed())
		return real.fclose(f);
	r = real.fclose(f);
	e = errno;
	forget_closed(fd);
	errno = e;
	return r;
}

EXPORT int fclose(FILE *f)
{
	KEEP_ERRNO(int, fclose_(f));
}

/* A new fd from the kernel: whatever was stale under its number goes. */
static int fresh(int fd)
{
	if (fd >= 0 && fdtab_peek(fd) && !process_borrowed())
		fdtab_fresh(fd);
	return fd;
}

static int fresh2(int r, int fds[2])
{
	if (r == 0) {
		fresh(fds[0]);
		fresh(fds[1]);
	}
	return r;
}

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, ap, mode)                                                        \
	do {                                                                              \
		if ((flags) & (O_CREAT | O_TMPFILE)) {                                    \
			va_start(ap, flags);                                              \
			mode = va_arg(ap, int);                                           \
			va_end(ap);                                                       \
		}                                                                         \
	} while (0)

EXPORT int open(const char *path, int flags, ...)
{
	int e = errno, r, mode = 0;
	va_list ap;

	init();
	OPEN_MODE(flags, ap, mode);
	r = fresh(real.openat(AT_FDCWD, path, flags, mode));
	if (r >= 0)
		errno = e; /* as KEEP_ERRNO */
	return r;
}

EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	int e = errno, r, mode = 0;
	va_list ap;

	init();
	OPEN_MODE(flags, ap, mode);
	r = fresh(real.openat(dirfd, path, flags, mode));
	if (r >= 0)
		errno = e; /* as KEEP_ERRNO */
	return r;
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

static int creat_(const char *path, mode_t mode)
{
	init();
	return fresh(real.openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode));
}

EXPORT int creat(const char *path, mode_t mode)
{
	KEEP_ERRNO(int, creat_(path, mode));
}

EXPORT int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

static int pipe_(int fds[2])
{
	init();
	return fresh2(real.pipe2(fds, 0), fds);
}

EXPORT int pipe(int fds[2])
{
	KEEP_ERRNO(int, pipe_(fds));
}

static int pipe2_(int fds[2], int flags)
{
	init();
	return fresh2(real.pipe2(fds, flags), fds);
}

EXPORT int pipe2(int fds[2], int flags)
{
	KEEP_ERRNO(int, pipe2_(fds, flags));
}

static int socketpair_(int domain, int type, int protocol, int fds[2])
{
	init();
	return fresh2(real.socketpair(domain, type, protocol, fds), fds);
}

EXPORT int socketpair(int domain, int type, int protocol, int fds[2])
{
	KEEP_ERRNO(int, socketpair_(domain, type, protocol, fds));
}

static int eventfd_(unsigned count, int flags)
{
	init();
	return fresh(real.eventfd(count, flags));
}

EXPORT int eventfd(unsigned count, int flags)
{
	KEEP_ERRNO(int, eventfd_(count, flags));
}

static int memfd_create_(const char *name, unsigned flags)
{
	init();
	return fresh(real.memfd_create(name, flags));
}

EXPORT int memfd_create(const char *name, unsigned flags)
{
	KEEP_ERRNO(int, memfd_create_(name, flags));
}

static int signalfd_(int fd, const sigset_t *mask, int flags)
{
	init();
	return fresh(real.signalfd(fd, mask, flags));
}

EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	KEEP_ERRNO(int, signalfd_(fd, mask, flags));
}

static int timerfd_create_(int clock, int flags)
{
	init();
	return fresh(real.timerfd_create(clock, flags));
}

EXPORT int timerfd_create(int clock, int flags)
{
	KEEP_ERRNO(int, timerfd_create_(clock, flags));
}

static int inotify_init_(void)
{
	init();
	return fresh(real.inotify_init1(0));
}

EXPORT int inotify_init(void)
{
	KEEP_ERRNO(int, inotify_init_());
}

static int inotify_init1_(int flags)
{
	init();
	return fresh(real.inotify_init1(flags));
}

EXPORT int inotify_init1(int flags)
{
	KEEP_ERRNO(int, inotify_init1_(flags));
}

/* glibc's own opens, past us: the fd they return is fresh all the same. */
static FILE *fresh_file(FILE *f)
{
	if (f)
		fresh(fileno(f));
	return f;
}

static int mkstemp_(char *tmpl)
{
	init();
	return fresh(real.mkostemps(tmpl, 0, 0));
}

EXPORT int mkstemp(char *tmpl)
{
	KEEP_ERRNO(int, mkstemp_(tmpl));
}

static int mkostemp_(char *tmpl, int flags)
{
	init();
	return fresh(real.mkostemps(tmpl, 0, flags));
}

EXPORT int mkostemp(char *tmpl, int flags)
{
	KEEP_ERRNO(int, mkostemp_(tmpl, flags));
}

static int mkstemps_(char *tmpl, int suffixlen)
{
	init();
	return fresh(real.mkostemps(tmpl, suffixlen, 0));
}

EXPORT int mkstemps(char *tmpl, int suffixlen)
{
	KEEP_ERRNO(int, mkstemps_(tmpl, suffixlen));
}

static int mkostemps_(char *tmpl, int suffixlen, int flags)
{
	init();
	return fresh(real.mkostemps(tmpl, suffixlen, flags));
}

EXPORT int mkostemps(char *tmpl, int suffixlen, int flags)
{
	KEEP_ERRNO(int, mkostemps_(tmpl, suffixlen, flags));
}

EXPORT int mkstemp64(char *tmpl) __attribute__((alias("mkstemp")));
EXPORT int mkostemp64(char *tmpl, int flags) __attribute__((alias("mkostemp")));
EXPORT int mkstemps64(char *tmpl, int suffixlen) __attribute__((alias("mkstemps")));
EXPORT int mkostemps64(char *tmpl, int suffixlen, int flags) __attribute__((alias("mkostemps")));

static FILE *tmpfile_(void)
{
	init();
	return fresh_file(real.tmpfile());
}

EXPORT FILE *tmpfile(void)
{
	KEEP_ERRNO_PTR(FILE *, tmpfile_());
}

EXPORT FILE *tmpfile64(void) __attribute__((alias("tmpfile")));

static FILE *fopen_(const char *path, const char *mode)
{
	init();
	return fresh_file(real.fopen(path, mode));
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	KEEP_ERRNO_PTR(FILE *, fopen_(path, mode));
}

EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

static DIR *opendir_(const char *path)
{
	DIR *d;

	init();
	d = real.opendir(path);
	if (d)
		fresh(dirfd(d));
	return d;
}

EXPORT DIR *opendir(const char *path)
{
	KEEP_ERRNO_PTR(DIR *, opendir_(path));
}
