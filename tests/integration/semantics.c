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
 *    new socket behaves as that new socket.
 * Knows nothing of mpklink. Exit 0, or 1 naming the failed check.
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
#include <sys/socket.h>
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
	int port, other, l, c, s, d, d2, d3, lo, pc, ps;
	char b;

	if (argc != 3)
		return fprintf(stderr, "usage: semantics PORT OTHER_PORT\n"), 2;
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
	close(l);
	printf("semantics: all checks passed\n");
	return 0;
}
