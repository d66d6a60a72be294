/* SPDX-License-Identifier: MIT */
/*
 * Differential conformance scenarios: helpers.
 *
 * A scenario is a program that knows nothing of mpklink. run.sh runs it over
 * plain TCP and again under mpklink-run, and diffs what it printed. So a
 * scenario prints only what must be the same in both runs: one observation
 * per line, in a canonical form,
 *
 *     step-name ret=5 errno=- data=68656c6c6f class=now
 *
 * errno by name (only when the call failed), bytes as hex (or length and
 * FNV-1a for long ones), event sets by flag name, and for a blocking step its
 * timing class against the step's time scale T:
 *
 *     now      ended in under T/2
 *     early    between T/2 and 0.8 T (suspicious on either side)
 *     timeout  between 0.8 T and 10 T: it waited for the timeout / event
 *     late     over 10 T
 *
 * No pid, port, address or fd number: they differ between runs.
 *
 * A watchdog thread bounds every step (conf_step) and the whole program: a
 * step that blocks far too long prints "HANG <step>" and exits 3, so a hang
 * is a failure with a name, never a stuck CI job. conf_end() prints "END";
 * a crash or an early exit shows as its absence.
 */
#ifndef CONF_H
#define CONF_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The base time scale of blocking steps, ms: timeouts and delayed events. */
#define CONF_T 400
/* A wait for bytes that may never come (a loss under test, not a hang)
 * ends after this long without one. */
#define CONF_QUIET_MS 1500
#define CONF_QUIET_TXT "1.5 s"

/* Reads CONF_PORT, CONF_PORT2 (configured, nothing listens) and
 * CONF_PORT_PLAIN (never configured), makes stdout line-buffered, starts
 * the watchdog (CONF_TOTAL_MS, default 60 s for the whole program). */
void conf_init(void);
/* In a fork()ed child: a watchdog of its own (threads do not survive fork). */
void conf_child(void);
/* Prints END, flushes, exit(0). */
__attribute__((noreturn)) void conf_end(void);
/* A broken precondition of the scenario itself (never a difference under
 * test): prints "FATAL ..." and exits 2. */
__attribute__((noreturn, format(printf, 1, 2))) void conf_fatal(const char *fmt, ...);

/* This machine cannot run the scenario at all (a limit, a missing kernel
 * feature): prints "SKIP ..." and exits 77, which run.sh and ctest report as
 * skipped, never as passed. */
__attribute__((noreturn, format(printf, 1, 2))) void conf_skip(const char *fmt, ...);

extern int conf_port, conf_port2, conf_port_plain;

/* One line to stdout. */
__attribute__((format(printf, 1, 2))) void out(const char *fmt, ...);

/* Start a step: the watchdog fires if it lasts over limit_ms (0: the
 * default, 3 s; R() and friends: 10 T + 1 s for a blocking step). Records the start time. */
void conf_step(const char *name, int limit_ms);
/* Milliseconds since the last conf_step. Ends the step. */
double conf_elapsed(void);
/* Timing class of ms against time scale t_ms. */
const char *conf_class(double ms, int t_ms);

/* errno name ("EAGAIN"), or "-" for 0. */
const char *en(int e);
/* poll revents / epoll events as "IN|OUT|RDHUP", or "0". Static buffers,
 * rotated: up to 4 in one printf. */
const char *pev(int revents);
const char *eev(uint32_t events);
/* Bytes: "data=<hex>" up to 48 bytes, else "len=N fnv=<hex>". Rotated. */
const char *hexdata(const void *buf, ssize_t n);
uint64_t fnv(const void *buf, size_t n, uint64_t h);
#define FNV0 UINT64_C(0xcbf29ce484222325)

/* Deterministic pattern bytes: byte i of a stream is pat(i). */
static inline unsigned char pat(uint64_t i)
{
	return (unsigned char)((i * 131 + (i >> 8) * 7 + 13) & 0xff);
}
void pat_fill(unsigned char *buf, size_t n, uint64_t off);

/*
 * Calls. Each runs EXPR as a step named NAME, with time scale T (ms; 0: not
 * a blocking step, no class printed), and prints
 *     NAME ret=R errno=E [class=C]
 * and evaluates to the result. RFD prints ret=fd for a new descriptor.
 * RLEN prints ret=full / partial / R when asked for WANT bytes.
 */
extern int conf_errno;
long conf_report(const char *name, int t_ms, long r, int how, long want);
#define CONF_CALL(name, t, how, want, expr)                                            \
	({                                                                             \
		conf_step(name, (t) ? 10 * (t) + 1000 : 0);                           \
		errno = 0;                                                             \
		long r__ = (long)(expr);                                               \
		conf_errno = errno;                                                    \
		conf_report(name, t, r__, how, want);                                  \
	})
#define R(name, t, expr) CONF_CALL(name, t, 0, 0, expr)
#define RFD(name, t, expr) CONF_CALL(name, t, 1, 0, expr)
#define RLEN(name, t, want, expr) CONF_CALL(name, t, 2, want, expr)

/* Sockets. conf_listen: 127.0.0.1:port, SO_REUSEADDR, listen(backlog).
 * conf_connect: a blocking connect to 127.0.0.1:port (fatal on failure).
 * conf_pair: a connection through listener l on port: *c client, *s server. */
int conf_listen(int port, int backlog);
int conf_connect(int port);
void conf_pair(int l, int port, int *c, int *s);
struct sockaddr_in conf_addr(int port);

/* Reads exactly n bytes (blocking, bounded by a step of the watchdog) and
 * prints "NAME got=N data=..."; a short read prints what it got and the
 * errno. Returns the count. */
ssize_t conf_expect(const char *name, int fd, size_t n);
/* Reads n bytes, each wait bounded (CONF_QUIET_MS without a byte ends it), and prints
 * "NAME got=N match=yes|no" (expect_pat: against pattern bytes from off) or
 * "NAME got=N data=..." (the first 48), plus how a short read ended. */
size_t conf_hear(const char *name, int fd, size_t n, int expect_pat, uint64_t off);
/* Drains fd (nonblocking reads until EAGAIN or 0, with a poll of up to
 * wait_ms for more): returns the byte count; *h the FNV of the bytes. */
size_t conf_drain(int fd, int wait_ms, uint64_t *h);
/* Writes n pattern bytes starting at stream offset off; blocking. */
void conf_send_pat(int fd, size_t n, uint64_t off);
/* Fills fd's way to the peer until a nonblocking send says EAGAIN; returns
 * the byte count (which differs between runs: never print it), *h their
 * FNV (pattern bytes from off). Leaves fd's O_NONBLOCK as it was. */
size_t conf_fill(int fd, uint64_t off, uint64_t *h);
/* settle=0: stop at the first EAGAIN of a 1-byte write, without the pause
 * after which TCP may take more: a blocking write right after then blocks
 * before taking a byte. */
size_t conf_fill2(int fd, uint64_t off, uint64_t *h, int settle);
/* The FNV of pattern bytes [off, off + n). */
uint64_t pat_fnv(uint64_t off, size_t n);
void conf_nonblock(int fd, int on);

/* poll() on one fd, printed as "NAME ret=R errno=E revents=EV [class=C]";
 * the class (against timeout_ms) when timeout_ms > 0. */
int conf_poll1(const char *name, int fd, short events, int timeout_ms);
/* The same, the class against t_ms (an event due after about t_ms). */
int conf_poll1t(const char *name, int fd, short events, int timeout_ms, int t_ms);
#define PALL (POLLIN | POLLPRI | POLLOUT | POLLRDHUP)

/* Sleeps ms (nanosleep, restarted on EINTR). */
void conf_sleep_ms(int ms);
double conf_now_ms(void);

/* A raw system call the shim cannot interpose (inline syscall instruction). */
long conf_raw_syscall(long nr, long a, long b, long c, long d, long e, long f);

/* A helper thread: runs fn(arg) after delay_ms, all signals blocked. */
typedef void (*conf_fn)(void *);
struct conf_later;
struct conf_later *conf_later(int delay_ms, conf_fn fn, void *arg);
void conf_join(struct conf_later *l);
/* Joins as a step NAME of the watchdog (limit_ms 0: the default). */
void conf_join_within(struct conf_later *l, const char *name, int limit_ms);

/* fork() with the child's stdout into a pipe: in the child (returns 0) a
 * watchdog of its own; the parent gets the pid and *outfd. conf_reap reads
 * the child's lines to its end, waits for it, and prints them as
 * "NAME: line", then "NAME exit=N" or "NAME signal=SIG" (the child's lines
 * come out in one block, so the order is the same in every run). */
pid_t conf_fork(int *outfd);
void conf_reap(const char *name, pid_t pid, int outfd);

/* A signal to the main thread (conf_main_thread, set by the scenario), for
 * the scenarios that interrupt a blocking call: conf_on_usr1 counts them in
 * conf_hits; conf_kick is a conf_later job that sends SIGUSR1. */
extern pthread_t conf_main_thread;
extern volatile sig_atomic_t conf_hits;
void conf_on_usr1(int sig);
void conf_kick(void *unused);

#endif
