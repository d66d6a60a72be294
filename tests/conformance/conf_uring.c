/* SPDX-License-Identifier: MIT */
/*
 * conf_uring SUBCOMMAND: io_uring on a connection, and fd numbers reused
 * after a close nobody interposed.
 *
 *   rw       IORING_OP_SEND/RECV/WRITE/READ/POLL_ADD on an upgraded socket.
 *            io_uring does the I/O in the kernel: a library that interposes
 *            libc sees none of it. The right outcome is "the same as TCP",
 *            or the connection staying TCP, or breaking loudly
 *            (ECONNRESET); never bytes silently lost. Every wait is bounded
 *            and printed, so the output shows which it was.
 *   reuse-raw     close(c) by an inline syscall instruction,
 *   reuse-fclose  by fdopen + fclose (glibc closes internally),
 *   reuse-uring   by IORING_OP_CLOSE;
 *            then the number is reused by open, pipe, eventfd, memfd_create
 *            in turn: the new fd must be the new object (its bytes go to the
 *            file, come from the pipe), and the link's peer sees the close.
 */
#include "conf.h"

#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int l, c, s;
static struct io_uring ring;

static void ring_init(void)
{
	int r = io_uring_queue_init(8, &ring, 0);

	if (r < 0) {
		errno = -r;
		conf_skip("io_uring_queue_init: %s (io_uring unavailable here)", en(-r));
	}
}

/* Submits the prepared sqe, waits up to CONF_QUIET_MS: prints "NAME res=R"
 * or "NAME no completion in ...". Returns res, or INT32_MIN. */
static int submit_wait(const char *name)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {CONF_QUIET_MS / 1000, (CONF_QUIET_MS % 1000) * 1000000L};
	int r, res;

	conf_step(name, 10000);
	r = io_uring_submit(&ring);
	if (r != 1) {
		conf_elapsed();
		out("%s submit=%d", name, r);
		return INT32_MIN;
	}
	r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	conf_elapsed();
	if (r < 0) {
		out("%s no completion in " CONF_QUIET_TXT " (%s)", name, en(-r));
		return INT32_MIN;
	}
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	if (res < 0)
		out("%s res=-1 errno=%s", name, en(-res));
	else
		out("%s res=%d", name, res);
	return res;
}

static void cancel_all(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {1, 0};

	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_submit(&ring);
	while (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0)
		io_uring_cqe_seen(&ring, cqe);
}

static void sc_rw(void)
{
	struct io_uring_sqe *sqe;
	char buf[64];
	int r, pending = 0;

	ring_init();
	/* A normal exchange first: the connection is up (and upgraded). */
	R("write", 0, write(c, "plain", 5));
	conf_hear("recv.plain", s, 5, 0, 0);

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send(sqe, c, "uring-send", 10, 0);
	submit_wait("uring.send");
	conf_hear("peer.recv.uring-send", s, 10, 0, 0);

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_write(sqe, c, "uring-write", 11, 0);
	submit_wait("uring.write");
	conf_hear("peer.recv.uring-write", s, 11, 0, 0);

	R("peer.write", 0, write(s, "reply", 5));
	memset(buf, 0, sizeof(buf));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv(sqe, c, buf, sizeof(buf), 0);
	r = submit_wait("uring.recv");
	if (r > 0)
		out("uring.recv %s", hexdata(buf, r));
	else if (r == INT32_MIN)
		pending++;

	R("peer.write2", 0, write(s, "again", 5));
	memset(buf, 0, sizeof(buf));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, c, buf, sizeof(buf), 0);
	r = submit_wait("uring.read");
	if (r > 0)
		out("uring.read %s", hexdata(buf, r));
	else if (r == INT32_MIN)
		pending++;
	if (pending) {
		cancel_all();
		out("cancelled the pending requests");
	}

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, c, POLLIN);
	R("peer.write3", 0, write(s, "poll", 4));
	r = submit_wait("uring.poll_add");
	if (r >= 0)
		out("uring.poll_add revents=%s", pev(r));
	else
		cancel_all();

	/* What the libc side sees afterwards: is it still one stream? */
	R("write.after", 0, write(c, "after", 5));
	conf_hear("peer.recv.after", s, 5, 0, 0);
	R("peer.write.after", 0, write(s, "back", 4));
	/* TCP: "poll" (POLL_ADD reads nothing) then "back". */
	conf_hear("recv.after", c, 8, 0, 0);
	io_uring_queue_exit(&ring);
}

/* ---- reuse --------------------------------------------------------------- */

static void hidden_close(const char *how, int fd)
{
	if (!strcmp(how, "raw")) {
		R("close.raw-syscall", 0, conf_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0));
	} else if (!strcmp(how, "fclose")) {
		FILE *f = fdopen(fd, "r+");
		if (!f)
			conf_fatal("fdopen");
		R("close.fclose", 0, fclose(f));
	} else {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_close(sqe, fd);
		submit_wait("close.uring");
	}
}

static void reuse_round(const char *how, const char *what)
{
	int n = -1, other = -1, num;
	char name[64], b[32];
	long r;

	conf_pair(l, conf_port, &c, &s);
	num = c;
	R("send.before", 0, send(c, "link", 4, MSG_NOSIGNAL));
	conf_hear("peer.recv.before", s, 4, 0, 0);
	hidden_close(how, c);
	conf_sleep_ms(50);
	if (!strcmp(what, "open")) {
		char path[] = "/tmp/conf-reuse.XXXXXX";
		n = mkstemp(path);
		unlink(path);
	} else if (!strcmp(what, "pipe")) {
		int pp[2];
		if (pipe(pp) == 0) {
			n = pp[0];
			other = pp[1];
		}
	} else if (!strcmp(what, "eventfd")) {
		n = eventfd(0, 0);
	} else {
		n = memfd_create("conf-reuse", 0);
	}
	snprintf(name, sizeof(name), "%s.new-fd", what);
	out("%s same-number=%s", name, n == num ? "yes" : "no");
	if (n < 0)
		conf_fatal("%s", what);

	/* The peer sends now: those bytes must never show up on the new fd. */
	R("peer.send.after-close", 0, send(s, "LINKDATA", 8, MSG_NOSIGNAL));
	conf_sleep_ms(50);

	if (!strcmp(what, "pipe")) {
		R("pipe.write", 0, write(other, "pipedata", 8));
		snprintf(name, sizeof(name), "%s.read-new-fd", what);
		r = R(name, 0, read(n, b, sizeof(b)));
		out("%s %s", name, hexdata(b, r));
		snprintf(name, sizeof(name), "%s.write-read-end", what);
		R(name, 0, write(n, "x", 1));
		close(other);
	} else if (!strcmp(what, "eventfd")) {
		uint64_t v = 7, got = 0;
		R("eventfd.write", 0, write(n, &v, sizeof(v)));
		r = R("eventfd.read", 0, read(n, &got, sizeof(got)));
		out("eventfd.value=%llu", (unsigned long long)got);
	} else {
		snprintf(name, sizeof(name), "%s.write", what);
		R(name, 0, write(n, "NEWDATA!", 8));
		snprintf(name, sizeof(name), "%s.pread", what);
		memset(b, 0, sizeof(b));
		r = R(name, 0, pread(n, b, sizeof(b), 0));
		out("%s %s", name, hexdata(b, r));
		snprintf(name, sizeof(name), "%s.send", what);
		R(name, 0, send(n, "x", 1, MSG_NOSIGNAL));
	}
	snprintf(name, sizeof(name), "%s.poll", what);
	conf_poll1(name, n, POLLIN | POLLOUT, 0);
	/* The link's peer: the close was a close (FIN, or RST for the bytes
	 * it sent after): nothing that was written to the new fd. */
	conf_hear("peer.after", s, 64, 0, 0);
	close(n);
	close(s);
}

static void sc_reuse(const char *how)
{
	static const char *const what[] = {"open", "pipe", "eventfd", "memfd"};

	if (!strcmp(how, "uring"))
		ring_init();
	for (int i = 0; i < 4; i++) {
		out("round %s", what[i]);
		reuse_round(how, what[i]);
	}
	if (!strcmp(how, "uring"))
		io_uring_queue_exit(&ring);
}

int main(int argc, char **argv)
{
	conf_init();
	if (argc != 2)
		conf_fatal("usage: conf_uring rw|reuse-raw|reuse-fclose|reuse-uring");
	l = conf_listen(conf_port, 16);
	out("scenario uring %s", argv[1]);
	if (!strcmp(argv[1], "rw")) {
		conf_pair(l, conf_port, &c, &s);
		sc_rw();
	} else if (!strncmp(argv[1], "reuse-", 6)) {
		sc_reuse(argv[1] + 6);
	} else {
		conf_fatal("unknown subcommand %s", argv[1]);
	}
	conf_end();
}
