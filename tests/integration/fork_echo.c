/* SPDX-License-Identifier: MIT */
/*
 * Plain socket programs that hand connections across fork, as real ones do:
 *   fork_echo server PORT N   accept N connections; for each, fork a child
 *                             that echoes it to EOF; the parent closes its
 *                             copy at once (the classic forking server).
 *   fork_echo client PORT     connect, echo a first part in this process,
 *                             fork, the parent exits (daemonize), the child
 *                             echoes the second part, half-closes, reads EOF.
 *   fork_echo handback PORT   connect, echo a part, fork; the child echoes a
 *                             part and exits; the parent, after waiting for
 *                             it, echoes a third, half-closes, reads EOF.
 *   fork_echo exec PORT       connect, echo a part, exec this program again
 *                             with the socket (no CLOEXEC); the new image
 *                             echoes a second part, half-closes, reads EOF.
 * Knows nothing of mpklink. Exit 0 on success, 1 with a message otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HALF (1 << 20)

static void die(const char *what)
{
	fprintf(stderr, "fork_echo[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	exit(1);
}

static void echo_to_eof(int fd)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0)
				die("write");
			off += w;
		}
	if (n < 0)
		die("read");
	close(fd);
}

static int server(int port, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), status, bad = 0;

	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0)
		die("listen");
	for (int i = 0; i < n; i++) {
		int c = accept(l, NULL, NULL);
		pid_t pid;

		if (c < 0)
			die("accept");
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(l);
			echo_to_eof(c);
			exit(0); /* not _exit: atexit handlers (stats) run */
		}
		close(c); /* the child has it */
	}
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status);
	return bad;
}

static void exchange(int fd, unsigned char *out, size_t n, unsigned seed)
{
	unsigned char *in = malloc(n);
	size_t got = 0, sent = 0;

	srand(seed);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)rand();
	/* Chunks small enough that the echo never blocks both ways. */
	while (got < n) {
		if (sent < n) {
			size_t c = n - sent < 8192 ? n - sent : 8192;
			ssize_t w = write(fd, out + sent, c);
			if (w < 0)
				die("write");
			sent += (size_t)w;
		}
		ssize_t r = read(fd, in + got, n - got < 8192 ? n - got : 8192);
		if (r <= 0) {
			if (r == 0)
				errno = EPIPE;
			die("read echo");
		}
		got += (size_t)r;
	}
	if (memcmp(in, out, n)) {
		fprintf(stderr, "fork_echo[%d]: echo differs\n", (int)getpid());
		exit(1);
	}
	free(in);
}

static int connect_loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	return fd;
}

/* Half-close, expect the server's EOF, close. */
static void finish(int fd)
{
	char c;

	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	if (read(fd, &c, 1) != 0)
		die("EOF after half-close");
	close(fd);
}

static int client(int port)
{
	unsigned char *buf = malloc(HALF);
	int fd = connect_loopback(port), pfd[2];
	char c;
	pid_t pid;

	exchange(fd, buf, HALF, 1);
	if (pipe(pfd) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid > 0) {
		/* Daemonize: the parent leaves without closing anything. The
		 * caller waits on the pipe for the child's verdict. */
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1 || c != 'k')
			_exit(1);
		_exit(0);
	}
	close(pfd[0]);
	exchange(fd, buf, HALF, 2);
	finish(fd);
	if (write(pfd[1], "k", 1) != 1)
		die("report");
	return 0;
}

static int handback(int port)
{
	unsigned char *buf = malloc(HALF);
	int fd = connect_loopback(port), status;
	pid_t pid;

	exchange(fd, buf, HALF, 1);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		exchange(fd, buf, HALF, 2);
		exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the child's part");
	exchange(fd, buf, HALF, 3);
	finish(fd);
	return 0;
}

static int exec_first(int port, const char *self)
{
	unsigned char *buf = malloc(HALF);
	int fd = connect_loopback(port);
	char num[16];

	exchange(fd, buf, HALF, 1);
	snprintf(num, sizeof(num), "%d", fd);
	execl(self, self, "exec-continue", num, (char *)NULL);
	die("execl");
	return 1;
}

static int exec_continue(int fd)
{
	unsigned char *buf = malloc(HALF);

	exchange(fd, buf, HALF, 2);
	finish(fd);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "client"))
		return client(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "handback"))
		return handback(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "exec"))
		return exec_first(atoi(argv[2]), "/proc/self/exe");
	if (argc == 3 && !strcmp(argv[1], "exec-continue"))
		return exec_continue(atoi(argv[2]));
	fprintf(stderr, "usage: fork_echo server PORT N | fork_echo client|handback|exec PORT\n");
	return 2;
}
