/* SPDX-License-Identifier: MIT */
/*
 * The MPK guard under real protection keys. Without PKU this proves
 * nothing, so it refuses to pass there unless told (--expect-no-pku) that
 * the point is to check the fallback. run-vm.sh runs it in QEMU -cpu max.
 *
 * Every fault probe runs in a forked child: a fault is fatal by design,
 * and the parent must see si_code and si_pkey, not merely a crash.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "link_internal.h"
#include "mpklink/ring.h"
#include "pkru.h"

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

static int failures, checks;
static const char *indent = ""; /* marks lines printed by a child process */

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	failures += !ok;
	printf("%s%s: ", indent, ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int cpu_has_pku(int *pku, int *ospke)
{
	unsigned a, b, c, d;

	*pku = *ospke = 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		*pku = !!(c & (1u << 3));
		*ospke = !!(c & (1u << 4));
	}
	return *pku && *ospke;
}

/* A connected pair of sides in this process. */
struct pair {
	struct mpk_link *s0, *s1;
};

static int pair_open(struct pair *p)
{
	int fd = mpk_link_create(0), r;

	if (fd < 0)
		return fd;
	r = mpk_link_attach(fd, 0, &p->s0);
	if (r == 0) {
		r = mpk_link_attach(fd, 1, &p->s1);
		if (r < 0)
			mpk_link_detach(p->s0);
	}
	close(fd);
	return r;
}

/* 0 when side 0's bytes come out of side 1 intact. */
static int roundtrip(struct pair *p, const char *msg)
{
	char buf[64] = {0};
	size_t n = strlen(msg);

	if (mpk_link_write(p->s0, msg, n) != (ssize_t)n)
		return -1;
	if (mpk_link_read(p->s1, buf, sizeof(buf)) != (ssize_t)n)
		return -1;
	return memcmp(buf, msg, n) ? -1 : 0;
}

/* Ring 0's data page: what a stray application pointer would hit. */
static volatile uint8_t *ring_data(struct pair *p)
{
	return (volatile uint8_t *)mpk__link_base(p->s0) + MPK_LINK_HDR_BYTES;
}

/* Runs fn in a forked child. Returns its exit status: 0 when its checks passed. */
static int in_child(void (*fn)(void *), void *arg)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		failures = 0;
		indent = "  ";
		fn(arg);
		fflush(stdout);
		_exit(failures ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --------------------------------------------------------- fault probes */

struct fault {
	int faulted, code, pkey;
};

static int probe_fd = -1;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct fault f = {1, si->si_code, si->si_pkey};

	/* The faulting access would only repeat: report and leave. */
	if (write(probe_fd, &f, sizeof(f)) != sizeof(f))
		_exit(2);
	_exit(0);
}

enum probe_kind { P_READ, P_WRITE, P_THREAD, P_SIGNAL, P_OPEN_READ };

struct probe {
	enum probe_kind kind;
	struct pair *p;
};

static void touch_read(struct pair *p)
{
	(void)*ring_data(p);
}

static void *thread_main(void *arg)
{
	struct pair *p = arg;

	/* The transport must still work from a thread born after init... */
	if (roundtrip(p, "from a new thread")) {
		printf("%sFAIL: transport round trip in the new thread\n", indent);
		fflush(stdout);
		_exit(3);
	}
	/* ...and the application part of it must not. */
	touch_read(p);
	return NULL;
}

static struct pair *sig_pair;

static void on_usr1(int sig)
{
	touch_read(sig_pair);
}

/* Child side: sets the SEGV reporter, does the access, reports "no fault". */
static void probe_child(void *arg)
{
	struct probe *pr = arg;
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
	struct fault none = {0, 0, -1};
	pthread_t t;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	switch (pr->kind) {
	case P_READ:
		touch_read(pr->p);
		break;
	case P_WRITE:
		*ring_data(pr->p) = 0x5a;
		break;
	case P_THREAD:
		if (pthread_create(&t, NULL, thread_main, pr->p) == 0)
			pthread_join(t, NULL);
		break;
	case P_SIGNAL: {
		struct sigaction su = {.sa_handler = on_usr1};

		/* SIGSEGV must stay deliverable inside the SIGUSR1 handler. */
		sigemptyset(&su.sa_mask);
		sigaction(SIGUSR1, &su, NULL);
		sig_pair = pr->p;
		/* A signal landing mid-copy, key open: the handler is
		 * application code and must not inherit the open key. */
		mpk__guard_open();
		raise(SIGUSR1);
		mpk__guard_close();
		break;
	}
	case P_OPEN_READ:
		mpk__guard_open();
		touch_read(pr->p);
		mpk__guard_close();
		break;
	}
	if (write(probe_fd, &none, sizeof(none)) != sizeof(none))
		_exit(2);
	_exit(0);
}

/* Runs one access in a child. Returns what its SEGV handler saw; a child
 * that died any other way reports faulted = -1. */
static struct fault probe(enum probe_kind kind, struct pair *p)
{
	struct probe pr = {kind, p};
	struct fault f = {-1, 0, -1};
	int fds[2];

	if (pipe(fds) < 0)
		return f;
	probe_fd = fds[1];
	in_child(probe_child, &pr);
	close(fds[1]);
	if (read(fds[0], &f, sizeof(f)) != sizeof(f))
		f.faulted = -1;
	close(fds[0]);
	return f;
}

static void expect_pkuerr(const char *what, enum probe_kind kind, struct pair *p, int pkey)
{
	struct fault f = probe(kind, p);

	if (f.faulted < 0)
		check(0, "%s: the probe died without reporting", what);
	else if (!f.faulted)
		check(0, "%s: no fault at all (application code reached the ring)", what);
	else
		check(f.code == SEGV_PKUERR && f.pkey == pkey,
		      "%s faults: si_code=%d (SEGV_PKUERR=%d), si_pkey=%d (guard key %d)",
		      what, f.code, SEGV_PKUERR, f.pkey, pkey);
}

/* ------------------------------------------------------------ the modes */

/* Decided before anything else in this process, so truly fresh. */
static void guard_off_child(void *arg)
{
	struct mpk_guard_status st;
	struct pair p;
	struct fault f;

	setenv("MPKLINK_GUARD", "off", 1);
	check(mpk_guard_init_env() == 0, "MPKLINK_GUARD=off: init returns 0");
	mpk_guard_status(&st);
	check(st.mode == MPK_GUARD_OFF && !st.active && st.pkey == -1,
	      "MPKLINK_GUARD=off: inactive (mode=%d active=%d pkey=%d)", st.mode, st.active,
	      st.pkey);
	if (pair_open(&p) < 0) {
		check(0, "MPKLINK_GUARD=off: attach");
		return;
	}
	check(roundtrip(&p, "unguarded") == 0, "MPKLINK_GUARD=off: link round trip");
	f = probe(P_READ, &p);
	check(f.faulted == 0, "MPKLINK_GUARD=off: application read of the ring does not fault");
}

static void full_checks(void)
{
	struct mpk_guard_status st;
	struct pair p;
	uint32_t ad;
	int r;

	check(in_child(guard_off_child, NULL) == 0, "MPKLINK_GUARD=off in a fresh process");

	r = mpk_guard_init(MPK_GUARD_MPK);
	check(r == 0, "mpk_guard_init(MPK_GUARD_MPK) = %d", r);
	mpk_guard_status(&st);
	check(st.active == 1 && st.pkey > 0 && st.cpu_pku == 1 && st.os_pke == 1,
	      "status: active=%d pkey=%d cpu_pku=%d os_pke=%d (%s)", st.active, st.pkey,
	      st.cpu_pku, st.os_pke, st.reason);
	if (r || !st.active)
		return;
	ad = UINT32_C(1) << (2 * st.pkey);
	check(mpk__rdpkru() & ad, "PKRU=%#x denies key %d after init", mpk__rdpkru(), st.pkey);

	r = pair_open(&p);
	check(r == 0, "link create + attach side 0 and 1 = %d", r);
	if (r)
		return;
	check(roundtrip(&p, "hello through a guarded ring") == 0,
	      "mpk_link_write/mpk_link_read round trip with the guard on");
	check(mpk__rdpkru() & ad, "PKRU=%#x denies key %d again after the copies",
	      mpk__rdpkru(), st.pkey);

	/* Control: the probe itself can tell "no fault" from "fault". */
	r = probe(P_OPEN_READ, &p).faulted;
	check(r == 0, "control: read with the key opened does not fault (faulted=%d)", r);
	expect_pkuerr("application READ of the ring", P_READ, &p, st.pkey);
	expect_pkuerr("application WRITE to the ring", P_WRITE, &p, st.pkey);
	expect_pkuerr("thread created after init, READ", P_THREAD, &p, st.pkey);
	expect_pkuerr("signal handler (raised with the key open), READ", P_SIGNAL, &p,
		      st.pkey);
}

/* ------------------------------------------------------------ the cost */

/*
 * The guard's own cost, in instructions, where no clock means anything
 * (TCG): a tracer single-steps a child through 64-byte round trips
 * (write on side 0, read on side 1, and back) and counts every instruction
 * and every WRPKRU among them. Windows of 10 and 60 round trips, each
 * ended by a SIGSTOP, and the difference over 50, cancel the markers' own
 * instructions. Done with the guard off and on, in fresh children.
 */
enum { COST_SHORT = 10, COST_LONG = 60 };

struct cost {
	long insns, wrpkru; /* per round trip */
	int ok;
};

static void cost_child(int guard_on)
{
	struct pair p;
	char buf[64];

	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(10);
	if (guard_on ? mpk_guard_init(MPK_GUARD_MPK) : (setenv("MPKLINK_GUARD", "off", 1),
							mpk_guard_init_env()))
		_exit(11);
	if (pair_open(&p) < 0)
		_exit(12);
	memset(buf, 'x', sizeof(buf));
	/* Warm: lazy binding and first touches stay out of the windows. */
	for (int i = 0; i < 5; i++)
		if (roundtrip(&p, "warm") < 0)
			_exit(13);
	for (int w = 0; w < 2; w++) {
		raise(SIGSTOP);
		for (int i = 0; i < (w ? COST_LONG : COST_SHORT); i++) {
			if (mpk_link_write(p.s0, buf, sizeof(buf)) != sizeof(buf) ||
			    mpk_link_read(p.s1, buf, sizeof(buf)) != sizeof(buf) ||
			    mpk_link_write(p.s1, buf, sizeof(buf)) != sizeof(buf) ||
			    mpk_link_read(p.s0, buf, sizeof(buf)) != sizeof(buf))
				_exit(14);
		}
	}
	raise(SIGSTOP);
	_exit(0);
}

static struct cost measure_cost(int guard_on)
{
	struct cost c = {0};
	long insns[2] = {0}, wr[2] = {0};
	int st, w = -1;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return c;
	if (pid == 0)
		cost_child(guard_on);
	for (;;) {
		if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st))
			break;
		if (WSTOPSIG(st) == SIGSTOP) {
			if (++w == 2)
				break;
		} else if (WSTOPSIG(st) == SIGTRAP && w >= 0) {
			struct user_regs_struct r;
			long word;

			if (ptrace(PTRACE_GETREGS, pid, NULL, &r) < 0)
				break;
			errno = 0;
			word = ptrace(PTRACE_PEEKTEXT, pid, (void *)r.rip, NULL);
			if (errno)
				break;
			insns[w]++;
			/* WRPKRU is 0f 01 ef: the instruction about to run. */
			wr[w] += (word & 0xffffff) == 0xef010f;
		} else if (WSTOPSIG(st) != SIGTRAP) {
			break; /* anything else is a failure of the child */
		}
		if (ptrace(w >= 0 ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, NULL, NULL) < 0)
			break;
	}
	if (w == 2) {
		c.insns = (insns[1] - insns[0]) / (COST_LONG - COST_SHORT);
		c.wrpkru = (wr[1] - wr[0]) / (COST_LONG - COST_SHORT);
		/* Both windows must scale: the same count per round trip. */
		c.ok = insns[0] > 0 && (wr[1] - wr[0]) % (COST_LONG - COST_SHORT) == 0;
		ptrace(PTRACE_CONT, pid, NULL, NULL);
	} else {
		kill(pid, SIGKILL);
	}
	waitpid(pid, &st, 0);
	if (c.ok && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		c.ok = 0;
	return c;
}

static void cost_checks(int have_pku)
{
	struct cost off, on;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* The count would be the sanitizer's instrumentation, and stepping
	 * through it outlasts the test's time limit; the plain build's run
	 * (mpk_vm_guard, guard_native) is the measurement. */
	(void)have_pku;
	(void)off;
	(void)on;
	printf("guard cost: not counted in a sanitizer build\n");
	return;
#endif
	off = measure_cost(0);

	check(off.ok && off.wrpkru == 0,
	      "guard off: %ld instructions and %ld WRPKRU per 64-byte round trip", off.insns,
	      off.wrpkru);
	if (!have_pku)
		return;
	on = measure_cost(1);
	/* Four copies per round trip, each inside an open/close pair; the
	 * bound says no copy runs unguarded and nothing switches per byte. */
	check(on.ok && on.wrpkru >= 8 && on.wrpkru <= 16 && on.wrpkru % 2 == 0,
	      "guard on: %ld instructions and %ld WRPKRU (%ld pairs) per 64-byte round trip",
	      on.insns, on.wrpkru, on.wrpkru / 2);
	if (off.ok && on.ok)
		printf("guard cost: %+ld instructions per round trip (%.1f%%), %ld WRPKRU "
		       "pairs, %.1f per message and side\n",
		       on.insns - off.insns, 100.0 * (on.insns - off.insns) / off.insns,
		       on.wrpkru / 2, on.wrpkru / 2 / 4.0);
}

static void no_pku_mpk_child(void *arg)
{
	struct mpk_link *l;
	int r = mpk_guard_init(MPK_GUARD_MPK), fd;

	check(r == -ENOTSUP, "no PKU: mpk_guard_init(MPK_GUARD_MPK) = %d (want -ENOTSUP)", r);
	fd = mpk_link_create(0);
	r = fd < 0 ? fd : mpk_link_attach(fd, 0, &l);
	check(r == -ENOTSUP, "no PKU, guard required: mpk_link_attach = %d (want -ENOTSUP)", r);
}

static void no_pku_auto_child(void *arg)
{
	struct mpk_guard_status st;
	struct pair p;
	int r = mpk_guard_init(MPK_GUARD_AUTO);

	check(r == 0, "no PKU: mpk_guard_init(MPK_GUARD_AUTO) = %d", r);
	mpk_guard_status(&st);
	check(!st.active && st.pkey == -1, "no PKU, auto: inactive (active=%d pkey=%d: %s)",
	      st.active, st.pkey, st.reason);
	r = pair_open(&p);
	check(r == 0, "no PKU, auto: link attach = %d", r);
	if (!r)
		check(roundtrip(&p, "unguarded") == 0, "no PKU, auto: link round trip");
}

static void no_pku_checks(void)
{
	check(in_child(no_pku_mpk_child, NULL) == 0, "no PKU: MPK_GUARD_MPK refuses");
	check(in_child(no_pku_auto_child, NULL) == 0, "no PKU: MPK_GUARD_AUTO falls back");
}

int main(int argc, char **argv)
{
	int expect_no_pku = argc > 1 && !strcmp(argv[1], "--expect-no-pku");
	int pku, ospke;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 || (argc == 2 && !expect_no_pku)) {
		fprintf(stderr, "usage: %s [--expect-no-pku]\n", argv[0]);
		return 2;
	}
	if (cpu_has_pku(&pku, &ospke)) {
		printf("guard_test: PKU present: full checks\n");
		/* First: its children must not inherit full_checks' guard. */
		cost_checks(1);
		full_checks();
	} else if (expect_no_pku) {
		printf("guard_test: no PKU (cpu_pku=%d os_pke=%d): fallback checks only\n", pku,
		       ospke);
		no_pku_checks();
		cost_checks(0);
	} else {
		check(0, "no usable PKU here (cpu_pku=%d os_pke=%d): the guard cannot be "
			 "tested; run under tests/mpk_vm/run-vm.sh (QEMU -cpu max)",
		      pku, ospke);
	}
	printf("guard_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
