/* SPDX-License-Identifier: MIT */
/*
 * The program's signal handlers behind a counting trampoline (signals.h),
 * and the interposers that install them: sigaction, signal, bsd_signal,
 * sysv_signal, siginterrupt.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "preload.h"
#include "signals.h"

/* What the program installed, per signal, as it set it (a handler of its
 * own runs behind trampoline). Written under the process's sigaction
 * calls, read in handlers: each entry is replaced whole before the kernel
 * is told. */
static struct sigaction app[_NSIG];

/* Per thread; initial-exec (CMakeLists.txt), as a handler must not call
 * __tls_get_addr. */
static __thread struct sig_mark counts;

void sig_mark(struct sig_mark *m)
{
	*m = (struct sig_mark){__atomic_load_n(&counts.ran, __ATOMIC_RELAXED),
			       __atomic_load_n(&counts.norestart, __ATOMIC_RELAXED)};
}

int sig_since(const struct sig_mark *m)
{
	unsigned ran = __atomic_load_n(&counts.ran, __ATOMIC_RELAXED);

	if (ran == m->ran)
		return SIG_NONE;
	return __atomic_load_n(&counts.norestart, __ATOMIC_RELAXED) == m->norestart ? SIG_RESTART
										      : SIG_EINTR;
}

static void trampoline(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *a = &app[sig];
	void (*h)(int) = a->sa_handler;
	int flags = a->sa_flags;
	int e = errno;

	__atomic_store_n(&counts.ran, counts.ran + 1, __ATOMIC_RELAXED);
	if (!(flags & SA_RESTART))
		__atomic_store_n(&counts.norestart, counts.norestart + 1, __ATOMIC_RELAXED);
	/* The kernel reset the disposition already (SA_RESETHAND): so does
	 * what the program reads back. */
	if (flags & SA_RESETHAND)
		app[sig].sa_handler = SIG_DFL;
	errno = e;
	if (flags & SA_SIGINFO)
		a->sa_sigaction(sig, si, uc);
	else if (h != SIG_DFL && h != SIG_IGN)
		h(sig);
}

static int has_handler(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) ? a->sa_sigaction != NULL
					   : a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN;
}

/* Resolved here, not by preload_start: a sanitizer runtime installs its
 * own handlers, through this very interposer, before anything of ours may
 * run (this file is built without -fsanitize=thread for that reason). */
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static int do_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction k, prev;
	int r;

	if (!__atomic_load_n(&real_sigaction, __ATOMIC_ACQUIRE))
		__atomic_store_n(&real_sigaction,
				 (__typeof__(real_sigaction))dlsym(RTLD_NEXT, "sigaction"),
				 __ATOMIC_RELEASE);
	/* SIGKILL, SIGSTOP and bad numbers: the kernel says EINVAL. */
	if (sig <= 0 || sig >= _NSIG || !act || !has_handler(act) || sig == SIGKILL ||
	    sig == SIGSTOP) {
		r = real_sigaction(sig, act, old);
		if (r == 0 && old && sig > 0 && sig < _NSIG && old->sa_sigaction == trampoline)
			*old = app[sig];
		if (r == 0 && act && sig > 0 && sig < _NSIG)
			app[sig] = *act;
		return r;
	}
	k = *act;
	k.sa_sigaction = trampoline;
	k.sa_flags |= SA_SIGINFO;
	prev = app[sig];
	app[sig] = *act;
	r = real_sigaction(sig, &k, old);
	if (r < 0) {
		app[sig] = prev;
		return r;
	}
	if (old && old->sa_sigaction == trampoline)
		*old = prev;
	return r;
}

static int sigaction_(int sig, const struct sigaction *act, struct sigaction *old)
{
	return do_sigaction(sig, act, old);
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	KEEP_ERRNO(int, sigaction_(sig, act, old));
}

/* Signals siginterrupt(sig, 1) made interrupting: signal() installs their
 * handlers without SA_RESTART, as glibc's does. */
static sigset_t intr;

/* signal() and bsd_signal(): BSD semantics, as glibc's (SA_RESTART). */
static sighandler_t set_handler(int sig, sighandler_t h, int flags)
{
	struct sigaction a, old;

	memset(&a, 0, sizeof(a));
	a.sa_handler = h;
	a.sa_flags = flags;
	sigemptyset(&a.sa_mask);
	if (!(flags & SA_RESETHAND) && sig > 0 && sig < _NSIG)
		sigaddset(&a.sa_mask, sig);
	if (do_sigaction(sig, &a, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

static int bsd_flags(int sig)
{
	return sig > 0 && sig < _NSIG && sigismember(&intr, sig) ? 0 : SA_RESTART;
}

EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	return set_handler(sig, h, bsd_flags(sig));
}

sighandler_t bsd_signal(int sig, sighandler_t h); /* glibc's header hides it */

EXPORT sighandler_t bsd_signal(int sig, sighandler_t h)
{
	return set_handler(sig, h, bsd_flags(sig));
}

static int siginterrupt_(int sig, int flag)
{
	struct sigaction a;

	if (do_sigaction(sig, NULL, &a) < 0)
		return -1;
	if (flag) {
		sigaddset(&intr, sig);
		a.sa_flags &= ~SA_RESTART;
	} else {
		sigdelset(&intr, sig);
		a.sa_flags |= SA_RESTART;
	}
	return do_sigaction(sig, &a, NULL);
}

EXPORT int siginterrupt(int sig, int flag)
{
	KEEP_ERRNO(int, siginterrupt_(sig, flag));
}

/* System V semantics: one-shot, no restart. */
EXPORT sighandler_t sysv_signal(int sig, sighandler_t h)
{
	return set_handler(sig, h, SA_RESETHAND | SA_NODEFER);
}
