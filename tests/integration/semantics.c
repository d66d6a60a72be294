/* SPDX-License-Identifier: MIT */
/*
 * semantics PORT OTHER_PORT: socket semantics a program relies on, checked
 * on connections to PORT (both ends in this process; under mpklink-run both
 * are upgraded) and, for fd reuse, a plain connection to OTHER_PORT:
 *  - MSG_WAITALL fills every iovec across several arrivals;
 *  - dup, dup2 and F_DUPFD name the same connection; it lives until the last;
 *  - half-close: the peer reads everything, then 0; the other way still works;
 *  - close sends FIN, not RST: the peer reads the rest, then 0 (not ECONNRESET);
 *  - writing to a closed peer: EPIPE with SIGPIPE, none with MSG_NOSIGNAL;
 *  - an fd number closed behind libc's back (close_range) and reused by a
 *    new socket behaves as that new socket;
 *  - closefrom() above a connection, as daemons do, then every free number
 *    up to the highest open one taken by a file: the connection still
 *    talks to a child process both ways, and nothing lands in the file.
 * With --hidden N: at least N fds here are eventfds this program never
 * made (mpklink's doorbells); closing one says EBADF and dup2 onto one
 * EBUSY, as for numbers the program does not own.
 * Exit 0, or 1 naming the failed check.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int s)
{
	(void)s;
	sigpipes++;
}

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "semantics: FAIL line %d: ", __LINE__);          \
			fprintf(stderr, __VA_ARGS__);                                    \
			fprintf(stderr, " (errno %s)\n", strerror(errno));               \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

static int listener(int port)
{
	struct sockaddr_in a = loopback(port);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(l >= 0 && setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		      bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 8) == 0,
	      "listen on %d", port);
	return l;
}

/* A connected pair through the listener: *c the client end, *s the server's. */
static void pair(int l, int port, int *c, int *s)
{
	struct sockaddr_in a = loopback(port);

	*c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(*c >= 0 && connect(*c, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	*s = accept(l, NULL, NULL);
	CHECK(*s >= 0, "accept");
}

static void expect(int fd, const char *want)
{
	char buf[64];
	size_t n = strlen(want), got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		CHECK(r > 0, "read %zu bytes of \"%s\": got %zd", n, want, r);
		got += (size_t)r;
	}
	CHECK(!memcmp(buf, want, n), "read \"%.*s\", want \"%s\"", (int)n, buf, want);
}

static void say(int fd, const char *s)
{
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "write \"%s\"", s);
}

int main(int argc, char **argv)
{
	int port, other, l, c, s, d, d2, d3, lo, pc, ps, hidden = 0;
	char b;

	if (argc == 5 && !strcmp(argv[3], "--hidden"))
		hidden = atoi(argv[4]);
	else if (argc != 3)
		return fprintf(stderr, "usage: semantics PORT OTHER_PORT [--hidden N]\n"), 2;
	port = atoi(argv[1]);
	other = atoi(argv[2]);
	signal(SIGPIPE, on_sigpipe);
	alarm(30); /* a hang is a failure, not a stuck test */
	l = listener(port);

	/* MSG_WAITALL into two iovecs, filled by four writes that arrive
	 * one by one (a child writes them, pausing). */
	{
		char x[10], y[14];
		struct iovec v[2] = {{x, sizeof(x)}, {y, sizeof(y)}};
		struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
		static const char *const pieces[] = {"abcde", "fghijkl", "mnopqrs", "tuvwx"};
		pid_t pid;
		int st;

		pair(l, port, &c, &s);
		pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			for (int i = 0; i < 4; i++) {
				say(c, pieces[i]);
				usleep(20000);
			}
			_exit(0);
		}
		CHECK(recvmsg(s, &m, MSG_WAITALL) == 24, "recvmsg(MSG_WAITALL) of 24 bytes");
		CHECK(!memcmp(x, "abcdefghij", 10) && !memcmp(y, "klmnopqrstuvwx", 14),
		      "MSG_WAITALL content: \"%.10s%.14s\"", x, y);
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "writer");
		close(c);
		close(s);
	}

	/* dup, dup2, F_DUPFD: one connection, alive until its last name. */
	pair(l, port, &c, &s);
	d = dup(c);
	say(d, "via-dup");
	expect(s, "via-dup");
	d2 = dup2(d, 100);
	CHECK(d2 == 100, "dup2");
	d3 = fcntl(c, F_DUPFD_CLOEXEC, 200);
	CHECK(d3 >= 200, "F_DUPFD_CLOEXEC");
	close(c);
	close(d);
	say(d2, "via-dup2");
	expect(s, "via-dup2");
	say(s, "back");
	expect(d3, "back");
	close(d2);
	say(d3, "last-name");
	expect(s, "last-name");

	/* Half-close: the rest, then 0; the other way keeps working. */
	say(d3, "before-shut");
	CHECK(shutdown(d3, SHUT_WR) == 0, "shutdown(SHUT_WR)");
	expect(s, "before-shut");
	CHECK(read(s, &b, 1) == 0, "EOF after the half-close");
	say(s, "still-open");
	expect(d3, "still-open");

	/* Close sends FIN: the rest, then 0, never ECONNRESET. */
	say(s, "goodbye");
	close(s);
	expect(d3, "goodbye");
	CHECK(read(d3, &b, 1) == 0, "EOF (not RST) after the peer's close");

	/* Writing to a peer that closed: EPIPE, with SIGPIPE unless
	 * MSG_NOSIGNAL. Like TCP, the first writes may still be taken. */
	{
		static char buf[1 << 16];
		ssize_t r = 0;
		int i;

		for (i = 0; i < 1000; i++) {
			r = send(d3, buf, sizeof(buf), MSG_NOSIGNAL);
			if (r < 0)
				break;
		}
		CHECK(r < 0 && errno == EPIPE, "EPIPE writing to a closed peer (after %d writes)", i);
		CHECK(sigpipes == 0, "SIGPIPE despite MSG_NOSIGNAL");
		r = write(d3, buf, 1);
		CHECK(r < 0 && errno == EPIPE && sigpipes == 1, "write: EPIPE and one SIGPIPE (got %d)",
		      (int)sigpipes);
	}
	close(d3);

	/* An fd number closed behind libc's back, then reused. */
	lo = listener(other);
	pair(l, port, &c, &s);
	CHECK(syscall(SYS_close_range, c, c, 0) == 0, "close_range");
	pc = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(pc == c, "the kernel reuses the number (%d, got %d)", c, pc);
	{
		struct sockaddr_in a = loopback(other);
		CHECK(connect(pc, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to %d", other);
	}
	ps = accept(lo, NULL, NULL);
	CHECK(ps >= 0, "accept on %d", other);
	say(pc, "plain-again");
	expect(ps, "plain-again");
	say(ps, "reply");
	expect(pc, "reply");
	CHECK(read(s, &b, 1) == 0, "the connection closed behind libc's back ends in EOF");
	close(pc);
	close(ps);
	close(s);
	close(lo);

	/* closefrom above a live connection, then the freed numbers reused. */
	{
		int top = -1, ev = 0, f, x, st;
		DIR *dir;
		struct dirent *e;
		struct stat sb;
		pid_t pid;

		pair(l, port, &c, &s);
		dir = opendir("/proc/self/fd");
		CHECK(dir != NULL, "opendir /proc/self/fd");
		while ((e = readdir(dir))) {
			char path[64], t[64];
			ssize_t n;
			int fd = atoi(e->d_name);

			if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(dir))
				continue;
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			n = readlink(path, t, sizeof(t) - 1);
			if (n < 0)
				continue;
			t[n] = 0;
			if (fd > top)
				top = fd;
			if (strcmp(t, "anon_inode:[eventfd]") != 0)
				continue;
			ev++;
			errno = 0;
			CHECK(dup2(0, fd) < 0 && errno == EBUSY, "dup2 onto hidden fd %d: EBUSY (%s)", fd,
			      strerror(errno));
			errno = 0;
			CHECK(close(fd) < 0 && errno == EBADF, "close of hidden fd %d: EBADF (%s)", fd,
			      strerror(errno));
		}
		closedir(dir);
		CHECK(ev >= hidden, "%d hidden eventfds, expected at least %d", ev, hidden);
		x = c > s ? c : s;
		closefrom(x + 1);
		f = memfd_create("victim", MFD_CLOEXEC);
		CHECK(f > x, "memfd_create");
		while ((x = fcntl(f, F_DUPFD_CLOEXEC, x + 1)) >= 0 && x < top)
			;
		pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			char m[32];

			for (int i = 0; i < 200; i++) {
				ssize_t n = read(s, m, sizeof(m));
				if (n <= 0 || write(s, m, (size_t)n) != n)
					_exit(1);
			}
			_exit(0);
		}
		for (int i = 0; i < 200; i++) {
			say(c, "ping");
			expect(c, "ping");
		}
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
		      "the echoing child");
		CHECK(fstat(f, &sb) == 0 && sb.st_size == 0,
		      "a file on a reused number received %lld foreign bytes", (long long)sb.st_size);
		close(c);
		close(s);
	}
	close(l);
	printf("semantics: all checks passed\n");
	return 0;
}
