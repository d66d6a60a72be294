/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by mpklink-bench's subcommands: clocks, bounded spinning,
 * the child process a measurement runs against, CPU pinning, full reads and
 * writes, percentiles, and files that appear whole or not at all.
 *
 * Like the library: functions returning int return >= 0 on success and
 * -errno on failure; none of them prints anything.
 */
#ifndef MPK_BENCH_UTIL_H
#define MPK_BENCH_UTIL_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define NSEC_PER_SEC UINT64_C(1000000000)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/*
 * The child process on the other end of a measurement. The parent polls it
 * while spinning so a child that died with an error is reported at once
 * instead of at the deadline.
 */
struct bench_child {
	pid_t pid;  /* 0: none */
	int reaped; /* status below is final */
	int status; /* as from waitpid */
	int killed; /* bench_child_kill sent SIGKILL */
	struct rusage ru; /* the child's, once reaped */
};

/*
 * Forks. In the child, arranges to die with the parent (a parent that
 * crashed must not leave a child spinning on a CPU), then returns 0;
 * the caller runs the child's part and leaves with _exit.
 * In the parent, fills *c and returns the pid (> 0). Or -errno.
 * Flushes stdio first so nothing buffered is written twice.
 */
int bench_fork(struct bench_child *c);

/* Non-blocking: 1 if the child has exited (status in *c), 0 if it runs. */
int bench_child_poll(struct bench_child *c);

/*
 * Waits for the child until deadline_ns, then kills it.
 * Returns 0 when it exited with status 0; -ECHILD when it exited otherwise
 * (see c->status), -ETIMEDOUT when it had to be killed.
 */
int bench_child_wait(struct bench_child *c, uint64_t deadline_ns);

/* SIGKILLs the child if it still runs, and reaps it. */
void bench_child_kill(struct bench_child *c);

/* One line on how the child ended, e.g. "exited with status 1". */
const char *bench_child_describe(const struct bench_child *c, char *buf, size_t len);

/*
 * A spin-wait bounded by a deadline. Call bench_spin() once per empty
 * poll; it pauses, and every few thousand calls checks the clock (and the
 * child, if one is watched): a bug in either process then fails with a
 * message rather than hanging a CPU forever.
 */
struct bench_spin {
	uint64_t deadline_ns;
	struct bench_child *watch; /* NULL in the child */
	int yield;                 /* both processes share one CPU */
	unsigned n;
};

int bench_spin_check(struct bench_spin *s);

/* 0 to keep spinning, -ETIMEDOUT past the deadline, -ECHILD if the watched
 * child exited. */
static inline int bench_spin(struct bench_spin *s)
{
	/* On one CPU the peer cannot run while we spin: give it the CPU,
	 * or every wait lasts a scheduler time slice. */
	if (s->yield)
		sched_yield();
	else
		bench_cpu_relax();
	/* The clock costs ~20 ns; checked every 4096 pauses it stays out of
	 * any wait short enough to matter to a latency measurement. */
	if (__builtin_expect(++s->n & 4095, 1))
		return 0;
	return bench_spin_check(s);
}

/*
 * Picks two distinct CPUs this process may run on. Returns how many CPUs
 * the affinity mask allows (*a and *b are set only when that is >= 2),
 * or -errno.
 */
int bench_pick_cpus(int *a, int *b);

/* Pins the calling process to one CPU. 0 or -errno. */
int bench_pin(int cpu);

/*
 * Full transfers on a blocking fd, retrying on EINTR and short counts.
 * Reading returns -EPIPE at end of stream, like writing to a closed peer.
 */
int bench_write_full(int fd, const void *buf, size_t n);
int bench_read_full(int fd, void *buf, size_t n);

/* Sorts v[0..n) in place. */
void bench_sort_u64(uint64_t *v, size_t n);

/* Nearest-rank percentile of sorted v[0..n), q in (0, 1]; n > 0. */
uint64_t bench_percentile(const uint64_t *v, size_t n, double q);

/*
 * Writes len bytes to path through a temporary file in the same directory
 * and rename(2): path ends up complete or unchanged, never half written.
 * The file gets 0666 & ~umask, like fopen would give it. 0 or -errno.
 */
int bench_write_file_atomic(const char *path, const void *data, size_t len);

/*
 * Starts the program at path argv[0] with argv, for a subcommand that runs
 * other programs (servers, clients). Its stdout goes to a pipe (*out_fd,
 * close-on-exec) when out_fd; otherwise to log. Its stderr goes to log
 * (appended, created 0644). Both are inherited when log is NULL; stdin is
 * /dev/null when log is given. group: in a process group of its own, so
 * that kill(-pid) reaches what it starts in turn. extra_env: one NAME=VALUE
 * added to its environment, or NULL. It gets SIGTERM when this process
 * dies: a benchmark killed half way (a terminal's Ctrl-C reaches only our
 * own group) leaves no server holding a port. Returns the pid, or -errno.
 */
pid_t bench_spawn(char *const argv[], const char *log, int *out_fd, const char *extra_env,
		  int group);

/* A loopback TCP port nobody is bound to now, for a server about to be
 * started on it (racy by nature); -1 when none could be had. */
int bench_free_port(void);

/* strerror, but an error that means "the other process went away" says so. */
const char *bench_strerror(int neg_errno);

#endif
