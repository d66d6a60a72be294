/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int bench_fork(struct bench_child *c)
{
	pid_t parent = getpid();
	pid_t pid;

	c->pid = 0;
	c->reaped = 0;
	c->status = 0;
	c->killed = 0;
	memset(&c->ru, 0, sizeof(c->ru));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(1);
		/* The parent may have died before prctl took effect. */
		if (getppid() != parent)
			_exit(1);
		return 0;
	}
	c->pid = pid;
	return pid;
}

int bench_child_poll(struct bench_child *c)
{
	pid_t r;

	if (c->pid <= 0 || c->reaped)
		return 1;
	do
		r = wait4(c->pid, &c->status, WNOHANG, &c->ru);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	c->reaped = 1;
	return 1;
}

int bench_child_wait(struct bench_child *c, uint64_t deadline_ns)
{
	const struct timespec nap = {.tv_nsec = 1000000};
	int r;

	for (;;) {
		r = bench_child_poll(c);
		if (r < 0)
			return r;
		if (r)
			break;
		if (bench_now_ns() > deadline_ns) {
			bench_child_kill(c);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	if (c->pid <= 0)
		return 0;
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 ? 0 : -ECHILD;
}

void bench_child_kill(struct bench_child *c)
{
	pid_t r;

	if (c->pid <= 0 || c->reaped)
		return;
	if (kill(c->pid, SIGKILL) == 0)
		c->killed = 1;
	do
		r = wait4(c->pid, &c->status, 0, &c->ru);
	while (r < 0 && errno == EINTR);
	c->reaped = 1;
}

const char *bench_child_describe(const struct bench_child *c, char *buf, size_t len)
{
	if (!c->reaped)
		snprintf(buf, len, "is still running");
	else if (WIFEXITED(c->status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(c->status));
	else if (WIFSIGNALED(c->status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(c->status),
			 strsignal(WTERMSIG(c->status)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", (unsigned)c->status);
	return buf;
}

int bench_spin_check(struct bench_spin *s)
{
	int r;

	if (bench_now_ns() > s->deadline_ns)
		return -ETIMEDOUT;
	if (s->watch) {
		r = bench_child_poll(s->watch);
		if (r < 0)
			return r;
		if (r)
			return -ECHILD;
	}
	return 0;
}

int bench_pick_cpus(int *a, int *b)
{
	cpu_set_t set;
	int cpu, found = 0, count;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	count = CPU_COUNT(&set);
	if (count < 2)
		return count;
	for (cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (found++ == 0)
			*a = cpu;
		else
			*b = cpu;
	}
	return count;
}

int bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int bench_write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t r;

	while (n) {
		r = write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int bench_read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	ssize_t r;

	while (n) {
		r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void bench_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t bench_percentile(const uint64_t *v, size_t n, double q)
{
	/* Nearest rank: the smallest sample with at least q of all samples
	 * at or below it. No interpolation: every reported value was seen. */
	double rank = q * (double)n;
	size_t i = (size_t)rank;

	if ((double)i < rank)
		i++;
	if (i == 0)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

int bench_write_file_atomic(const char *path, const void *data, size_t len)
{
	const char *p = data;
	char *tmp = NULL;
	mode_t mask;
	ssize_t w;
	int fd = -1, r;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	/* mkstemp makes 0600; a results file is as readable as any other. */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0)
		goto fail_errno;
	while (len) {
		w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail_errno;
		}
		p += w;
		len -= (size_t)w;
	}
	/* The rename must not become durable before the data it names. */
	if (fsync(fd) < 0)
		goto fail_errno;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_errno;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail_errno;
	r = 0;
	goto out_free;

fail_errno:
	r = -errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_free:
	free(tmp);
	return r;
}

const char *bench_strerror(int neg_errno)
{
	switch (-neg_errno) {
	case EPIPE:
		return "the other process closed the connection";
	case ETIMEDOUT:
		return "deadline passed (a bug: one side stopped answering)";
	case ECHILD:
		return "the child process ended early";
	default:
		return strerror(-neg_errno);
	}
}

pid_t bench_spawn(char *const argv[], const char *log, int *out_fd, const char *extra_env,
		  int group)
{
	pid_t parent = getpid(), pid;
	int p[2] = {-1, -1}, e;

	if (out_fd && pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		e = errno;
		if (out_fd) {
			close(p[0]);
			close(p[1]);
		}
		return -e;
	}
	if (pid == 0) {
		int fd;

		if (group)
			setpgid(0, 0);
		/* Kept across exec; the parent may have died before it took. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(127);
		if (log) {
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (fd >= 0) {
				dup2(fd, 2);
				if (!out_fd)
					dup2(fd, 1);
			}
			fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				dup2(fd, 0);
		}
		if (out_fd)
			dup2(p[1], 1);
		if (extra_env)
			putenv((char *)extra_env);
		execv(argv[0], argv);
		fprintf(stderr, "mpklink-bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	/* Both sides set the group: whichever runs first, kill(-pid) works
	 * once we return. */
	if (group)
		setpgid(pid, pid);
	if (out_fd) {
		close(p[1]);
		*out_fd = p[0];
	}
	return pid;
}

int bench_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}
