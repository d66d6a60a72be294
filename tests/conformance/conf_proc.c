/* SPDX-License-Identifier: MIT */
/*
 * conf_proc SUBCOMMAND: a connection across fork, vfork, posix_spawn and
 * exec. c is the client end, s the server end, both made before.
 *   fork-child        the child talks on c (the parent answers on s)
 *   fork-parent       a child that never touches c exits; the parent talks
 *   fork-both         parent and child take turns on c (a pipe says whose)
 *   fork-child-close  the child closes c and exits; c still works here
 *   fork-split        the child keeps s and echoes; the parent keeps c
 *   vfork-close_range vfork, close_range(3, ~0U, 0), _exit; then I/O here
 *   vfork-close       vfork, close(c), _exit
 *   vfork-closefrom-exec   vfork, closefrom(3), execve /bin/true
 *   vfork-cloexec-range    vfork, close_range(3, ~0U, CLOSE_RANGE_CLOEXEC),
 *                          execve /bin/true
 *   spawn             posix_spawn /bin/true
 *   spawn-closefrom   posix_spawn with addclosefrom_np(3)
 *   spawn-keep        posix_spawn this program with c's number, and close c
 *                     here at once: the new image talks on it (a spawned
 *                     child runs no fork handler, and our close comes before
 *                     its first look)
 *   subprocess        I/O, then a Python-style child (vfork, close_range,
 *                     execve), five times over, and system("true")
 *   exec-keep         fork, exec this program (the shim's LD_PRELOAD kept)
 *                     with c's number: the new image talks on it
 *   exec-noshim       the same, exec'd without LD_PRELOAD
 *   exec-cloexec      c has FD_CLOEXEC: the new image gets EBADF
 *   exec-cloexec-noshim
 *   exec-self         this process execs itself (no fork) with c and s,
 *                     unread bytes on s: the new image reads them, talks
 *   exec-self-noshim  the same without LD_PRELOAD
 *   pass-fd           a child that closed its copy of c gets c back over a
 *                     unix socket (SCM_RIGHTS) and talks on it; the parent
 *                     closes its own copy once sent
 */
#include "conf.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif

extern char **environ;
static int l, c, s;

static void say(const char *name, int fd, const char *m)
{
	R(name, 0, send(fd, m, strlen(m), MSG_NOSIGNAL));
}

/* A read bounded in time: a byte that never comes is a line, not a hang. */
static void hear(const char *name, int fd, size_t n)
{
	char b[256];
	size_t got = 0;
	int r = 0;

	conf_step(name, 10000);
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t k;

		if (poll(&p, 1, CONF_QUIET_MS) <= 0) {
			r = -2;
			break;
		}
		k = recv(fd, b + got, n - got, MSG_DONTWAIT);
		if (k < 0 && errno == EAGAIN)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : -1;
			break;
		}
		got += (size_t)k;
	}
	conf_elapsed();
	if (r == 0)
		out("%s got=%zu %s", name, got, hexdata(b, (ssize_t)got));
	else if (r == -2)
		out("%s got=%zu %s then nothing for " CONF_QUIET_TXT, name, got, hexdata(b, (ssize_t)got));
	else if (r == -1)
		out("%s got=%zu %s then EOF", name, got, hexdata(b, (ssize_t)got));
	else
		out("%s got=%zu %s then error=%s", name, got, hexdata(b, (ssize_t)got), en(-r));
}

static void echo_check(const char *name)
{
	char a[64], b[64];

	snprintf(a, sizeof(a), "%s.c2s", name);
	snprintf(b, sizeof(b), "%s.s2c", name);
	say(a, c, name);
	hear(a, s, strlen(name));
	say(b, s, name);
	hear(b, c, strlen(name));
}

static void wait_pid(const char *name, pid_t pid)
{
	int st = 0;

	conf_step(name, 10000);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	conf_elapsed();
	if (WIFEXITED(st))
		out("%s exit=%d", name, WEXITSTATUS(st));
	else
		out("%s signal=%s", name, WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "?");
}

/* ---- fd passing ---------------------------------------------------------- */

static void send_fd(int unix_fd, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	char one = 1;
	struct iovec iov = {.iov_base = &one, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			   .msg_controllen = sizeof(u.b)};
	struct cmsghdr *ch = CMSG_FIRSTHDR(&m);

	memset(&u, 0, sizeof(u));
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &fd, sizeof(fd));
	R("sendmsg.SCM_RIGHTS", 0, sendmsg(unix_fd, &m, 0));
}

static int recv_fd(int unix_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	char one;
	struct iovec iov = {.iov_base = &one, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			   .msg_controllen = sizeof(u.b)};
	struct cmsghdr *ch;
	int fd = -1;

	R("recvmsg.SCM_RIGHTS", 0, recvmsg(unix_fd, &m, 0));
	ch = CMSG_FIRSTHDR(&m);
	if (ch && ch->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(ch), sizeof(fd));
	out("received an fd: %s", fd >= 0 ? "yes" : "no");
	return fd;
}

static void sc_pass_fd(void)
{
	int sv[2], o, got;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		conf_fatal("socketpair");
	say("before.c2s", c, "before");
	hear("before.c2s", s, 6);
	pid = conf_fork(&o);
	if (pid == 0) {
		close(sv[0]);
		R("child.close.c", 0, close(c));
		got = recv_fd(sv[1]);
		say("child.send", got, "from-child");
		hear("child.recv", got, 8);
		R("child.close.got", 0, close(got));
		fflush(stdout);
		_exit(0);
	}
	close(sv[1]);
	send_fd(sv[0], c);
	R("parent.close.c", 0, close(c));
	hear("parent.recv", s, 10);
	say("parent.send", s, "to-child");
	conf_reap("child", pid, o);
	/* The child's close was the last: s reads the end. */
	hear("parent.eof", s, 1);
	close(sv[0]);
}

/* ---- fork -------------------------------------------------------------- */

static void sc_fork_child(void)
{
	int o;
	pid_t pid = conf_fork(&o);

	if (pid == 0) {
		say("child.send", c, "from-child");
		hear("child.recv", c, 8);
		fflush(stdout);
		_exit(0);
	}
	hear("parent.recv", s, 10);
	say("parent.send", s, "to-child");
	conf_reap("child", pid, o);
	echo_check("parent-after");
}

static void sc_fork_parent(void)
{
	int o;
	pid_t pid = conf_fork(&o);

	if (pid == 0) {
		out("child exits without touching the socket");
		fflush(stdout);
		_exit(0);
	}
	conf_reap("child", pid, o);
	echo_check("parent");
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

static void turn(int fd, char *what)
{
	if (write(fd, what, 1) != 1)
		conf_fatal("turn write");
}

static void wait_turn(int fd)
{
	char x;
	if (read(fd, &x, 1) != 1)
		conf_fatal("turn read");
}

static void sc_fork_both(void)
{
	int to_child[2], to_parent[2], o;
	pid_t pid;

	if (pipe(to_child) || pipe(to_parent))
		conf_fatal("pipe");
	pid = conf_fork(&o);
	if (pid == 0) {
		for (int i = 0; i < 3; i++) {
			char m[16];
			snprintf(m, sizeof(m), "child-%d", i);
			wait_turn(to_child[0]);
			say("child.send", c, m);
			hear("child.recv", c, 7);
			turn(to_parent[1], "p");
		}
		fflush(stdout);
		_exit(0);
	}
	for (int i = 0; i < 3; i++) {
		char m[16];
		snprintf(m, sizeof(m), "parent-%d", i);
		say("parent.send", c, m);
		hear("parent.s.recv", s, strlen(m));
		say("parent.s.reply", s, "r-par");
		hear("parent.recv", c, 5);
		turn(to_child[1], "c");
		hear("parent.s.recv-child", s, 7);
		say("parent.s.reply-child", s, "r-child");
		wait_turn(to_parent[0]);
	}
	conf_reap("child", pid, o);
	echo_check("parent-alone");
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

static void sc_fork_child_close(void)
{
	int o;
	pid_t pid = conf_fork(&o);

	if (pid == 0) {
		R("child.close.c", 0, close(c));
		R("child.close.s", 0, close(s));
		fflush(stdout);
		_exit(0);
	}
	conf_reap("child", pid, o);
	conf_poll1("parent.poll.s", s, PALL, 0);
	echo_check("parent");
	/* exit(), not _exit(): the child's stdio and atexit handlers run. */
	pid = conf_fork(&o);
	if (pid == 0) {
		close(c);
		exit(0);
	}
	conf_reap("child2", pid, o);
	echo_check("parent2");
}

static void sc_fork_split(void)
{
	int o;
	pid_t pid = conf_fork(&o);

	if (pid == 0) {
		char b[64];
		int n = 0;
		close(c);
		for (;;) {
			ssize_t r = read(s, b, sizeof(b));
			if (r <= 0) {
				out("child echo ended ret=%zd errno=%s after=%d", r, r < 0 ? en(errno) : "-", n);
				break;
			}
			if (write(s, b, (size_t)r) != r)
				break;
			n++;
		}
		fflush(stdout);
		_exit(0);
	}
	R("parent.close.s", 0, close(s));
	for (int i = 0; i < 20; i++) {
		char m[16];
		snprintf(m, sizeof(m), "ping%02d", i);
		if (send(c, m, 6, MSG_NOSIGNAL) != 6)
			out("send %d failed errno=%s", i, en(errno));
		hear(i == 19 ? "echo.last" : "echo", c, 6);
	}
	R("close.c", 0, close(c));
	conf_reap("child", pid, o);
}

/* ---- vfork and posix_spawn ---------------------------------------------- */

static void sc_vfork(const char *how)
{
	pid_t pid;
	char *const argv[] = {"true", NULL};

	echo_check("before");
	pid = vfork();
	if (pid < 0)
		conf_fatal("vfork");
	if (pid == 0) {
		if (!strcmp(how, "close_range")) {
			syscall(SYS_close_range, 3, ~0U, 0);
			_exit(0);
		} else if (!strcmp(how, "close_range-libc")) {
			close_range(3, ~0U, 0);
			_exit(0);
		} else if (!strcmp(how, "close")) {
			close(c);
			_exit(0);
		} else if (!strcmp(how, "closefrom-exec")) {
			closefrom(3);
			execve("/bin/true", argv, environ);
			_exit(127);
		} else if (!strcmp(how, "cloexec-range")) {
			close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
			execve("/bin/true", argv, environ);
			_exit(127);
		}
		_exit(126);
	}
	wait_pid("vfork-child", pid);
	echo_check("after");
	conf_poll1("after.poll.c", c, POLLIN | POLLOUT, 0);
	/* The rest of this process's state: epoll on the old connection, a
	 * new connection, the old one's close. */
	{
		int ep = epoll_create1(0), c2, s2, n;
		struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0x77}, o[2];

		epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
		say("after.s2c.for-epoll", s, "ep");
		n = (int)R("after.epoll_wait", 0, epoll_wait(ep, o, 2, 1000));
		if (n > 0)
			out("after.epoll_wait ev=%s data=0x%llx", eev(o[0].events),
			    (unsigned long long)o[0].data.u64);
		hear("after.epoll.recv", c, 2);
		close(ep);
		conf_pair(l, conf_port, &c2, &s2);
		say("new.c2s", c2, "new-conn");
		hear("new.c2s", s2, 8);
		say("new.s2c", s2, "new-back");
		hear("new.s2c", c2, 8);
		close(c2);
		hear("new.peer-eof", s2, 1);
		close(s2);
	}
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

static void sc_spawn(int closefrom_action)
{
	posix_spawn_file_actions_t fa;
	char *const argv[] = {"true", NULL};
	pid_t pid;

	echo_check("before");
	posix_spawn_file_actions_init(&fa);
	if (closefrom_action)
		posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	R("posix_spawn", 0, posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ));
	posix_spawn_file_actions_destroy(&fa);
	wait_pid("spawned", pid);
	echo_check("after");
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

static void sc_spawn_keep(void)
{
	char n1[16];
	char *const argv[] = {"conf_proc", "exec-child", n1, "-1", NULL};
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;

	echo_check("before");
	snprintf(n1, sizeof(n1), "%d", c);
	/* The child's lines through a pipe, shown when it is reaped (as
	 * conf_fork's): its prints and ours would interleave by timing. */
	if (pipe2(p, O_CLOEXEC))
		conf_fatal("pipe2");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	fflush(stdout);
	R("posix_spawn", 0, posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ));
	posix_spawn_file_actions_destroy(&fa);
	R("close.c", 0, close(c));
	close(p[1]);
	hear("parent.recv", s, 9);
	say("parent.send", s, "to-exec");
	conf_reap("spawned", pid, p[0]);
	hear("peer-eof", s, 1);
}

/* What CPython's _posixsubprocess does: vfork, close every fd from 3 up in
 * the child, exec. */
static __attribute__((noinline)) pid_t python_style_child(void)
{
	static char *const argv[] = {"true", NULL};
	pid_t pid = vfork();

	if (pid == 0) {
		if (syscall(SYS_close_range, 3, ~0U, 0) < 0) {
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		}
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	return pid;
}

static void sc_subprocess(void)
{
	for (int i = 0; i < 5; i++) {
		char m[32];

		snprintf(m, sizeof(m), "round%d", i);
		echo_check(m);
		wait_pid("subprocess", python_style_child());
	}
	echo_check("after-subprocesses");
	R("system", 0, system("true"));
	echo_check("after-system");
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

/* ---- exec ----------------------------------------------------------------- */

/* environ without LD_PRELOAD. */
static char **env_noshim(void)
{
	size_t n = 0, k = 0;
	char **e;

	while (environ[n])
		n++;
	e = calloc(n + 1, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11))
			e[k++] = environ[i];
	return e;
}

static void exec_self(char **env, const char *a1, int fd1, int fd2)
{
	char n1[16], n2[16];
	char *argv[] = {"conf_proc", (char *)a1, n1, n2, NULL};

	snprintf(n1, sizeof(n1), "%d", fd1);
	snprintf(n2, sizeof(n2), "%d", fd2);
	fflush(stdout);
	execve("/proc/self/exe", argv, env);
	conf_fatal("execve");
}

static void sc_exec(int keep_shim, int cloexec)
{
	int o;
	pid_t pid;

	echo_check("before");
	if (cloexec)
		fcntl(c, F_SETFD, FD_CLOEXEC);
	pid = conf_fork(&o);
	if (pid == 0)
		exec_self(keep_shim ? environ : env_noshim(), "exec-child", c, -1);
	if (!cloexec) {
		hear("parent.recv", s, 9);
		say("parent.send", s, "to-exec");
	}
	conf_reap("exec", pid, o);
	echo_check("parent-after");
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

/* The exec'd image: argv[2] is the socket's number. */
static void exec_child(int fd)
{
	int f = fcntl(fd, F_GETFD);

	out("exec-child F_GETFD=%s", f < 0 ? en(errno) : "ok");
	if (f < 0) {
		R("exec-child.send", 0, send(fd, "x", 1, MSG_NOSIGNAL));
		return;
	}
	say("exec-child.send", fd, "from-exec");
	hear("exec-child.recv", fd, 7);
	conf_poll1("exec-child.poll", fd, POLLIN | POLLOUT, 0);
}

static void sc_exec_self(int keep_shim)
{
	echo_check("before");
	/* Bytes in flight both ways across the exec. */
	say("pre.c2s", c, "pre-exec-c2s");
	say("pre.s2c", s, "pre-exec-s2c");
	exec_self(keep_shim ? environ : env_noshim(), "exec-continue", c, s);
}

static void exec_continue(int cc, int ss)
{
	c = cc;
	s = ss;
	out("new image");
	hear("post.s.recv-pre", s, 12);
	hear("post.c.recv-pre", c, 12);
	echo_check("post");
	conf_poll1("post.poll.c", c, POLLIN | POLLOUT, 0);
	R("close.c", 0, close(c));
	hear("peer-eof", s, 1);
}

int main(int argc, char **argv)
{
	const char *sc = argc >= 2 ? argv[1] : "";

	conf_init();
	if (!strcmp(sc, "exec-child") && argc == 4) {
		exec_child(atoi(argv[2]));
		conf_end();
	}
	if (!strcmp(sc, "exec-continue") && argc == 4) {
		exec_continue(atoi(argv[2]), atoi(argv[3]));
		conf_end();
	}
	if (argc != 2)
		conf_fatal("usage: conf_proc SUBCOMMAND");
	l = conf_listen(conf_port, 16);
	conf_pair(l, conf_port, &c, &s);
	out("scenario proc %s", sc);
	if (!strcmp(sc, "fork-child"))
		sc_fork_child();
	else if (!strcmp(sc, "fork-parent"))
		sc_fork_parent();
	else if (!strcmp(sc, "fork-both"))
		sc_fork_both();
	else if (!strcmp(sc, "fork-child-close"))
		sc_fork_child_close();
	else if (!strcmp(sc, "fork-split"))
		sc_fork_split();
	else if (!strncmp(sc, "vfork-", 6))
		sc_vfork(sc + 6);
	else if (!strcmp(sc, "spawn"))
		sc_spawn(0);
	else if (!strcmp(sc, "spawn-closefrom"))
		sc_spawn(1);
	else if (!strcmp(sc, "spawn-keep"))
		sc_spawn_keep();
	else if (!strcmp(sc, "subprocess"))
		sc_subprocess();
	else if (!strcmp(sc, "exec-keep"))
		sc_exec(1, 0);
	else if (!strcmp(sc, "exec-noshim"))
		sc_exec(0, 0);
	else if (!strcmp(sc, "exec-cloexec"))
		sc_exec(1, 1);
	else if (!strcmp(sc, "exec-cloexec-noshim"))
		sc_exec(0, 1);
	else if (!strcmp(sc, "exec-self"))
		sc_exec_self(1);
	else if (!strcmp(sc, "exec-self-noshim"))
		sc_exec_self(0);
	else if (!strcmp(sc, "pass-fd"))
		sc_pass_fd();
	else
		conf_fatal("unknown subcommand %s", sc);
	conf_end();
}
