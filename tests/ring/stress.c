/* SPDX-License-Identifier: MIT */
/*
 * The stress engine behind test_stream (Criterion) and ring_stress (a plain
 * driver, for ThreadSanitizer, under which Criterion cannot start).
 *
 * Two real endpoints, each a nonblocking event loop that sleeps in poll()
 * on the doorbell socket whenever the link says -EAGAIN:
 *  - streams: >= 100 MB each way, random write and read sizes, random
 *    iovec splits, every byte checked by position, EOF exactly at the end;
 *  - lost wakeups: 10^6 echoed messages with random delays on a small ring
 *    so both "data arrived" and "space freed" sleeps happen constantly.
 * A sleep that outlasts WATCHDOG_MS is a lost wakeup and fails the test.
 * Across processes the link's memfd travels over SCM_RIGHTS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link_abi.h"
#include "stress.h"
#include "testutil.h"

#define WATCHDOG_MS 10000
#define STREAM_BYTES (128ull << 20)
#define MESSAGES 1000000u
#define SMALL_RING 4096u

static char err_buf[2][256];
/* Real sleeps in poll(): a run that never slept tested no wakeup. */
static __thread unsigned long tl_sleeps;

#define FAIL(side, ...)                                                                  \
	do {                                                                             \
		snprintf(err_buf[side], sizeof(err_buf[side]), __VA_ARGS__);             \
		return err_buf[side];                                                    \
	} while (0)

/* Sleeps until the doorbell says something changed, after arming. */
static const char *sleep_on(int side, struct mpk_link *l, int bell, unsigned want)
{
	unsigned ready = mpk_link_arm(l, want);
	int r;

	if (ready & (want | MPK_LINK_HUP | MPK_LINK_ERR)) {
		mpk_link_disarm(l, want);
		return NULL;
	}
	tl_sleeps++;
	r = tu_wait_in(bell, WATCHDOG_MS);
	if (r == 0)
		FAIL(side, "side %d: lost wakeup: slept %d ms armed for 0x%x, link poll 0x%x",
		     side, WATCHDOG_MS, want, mpk_link_poll(l));
	if (r < 0)
		FAIL(side, "side %d: poll: %s", side, strerror(errno));
	return NULL;
}

/* Delays that reorder the two sides: mostly none, sometimes a spin,
 * rarely a real sleep. */
static void jitter(uint64_t *s)
{
	uint64_t r = tu_rand(s);

	if ((r & 255) == 0) {
		struct timespec ts = {0, (long)((r >> 8) % 50) * 1000};
		nanosleep(&ts, NULL);
	} else if ((r & 7) == 0) {
		for (unsigned i = (unsigned)((r >> 16) % 2000); i; i--)
			__asm__ volatile("" ::: "memory");
	}
}

/* ------------------------------------------------------------ streams */

struct stream_side {
	int side;
	struct mpk_link *l;
	int bell;
	uint64_t tx_bytes, rx_bytes;
	/* mpk_link_close once sent, without waiting for the peer's EOF */
	int close_at_end;
};

static const char *stream_run(const struct stream_side *ss)
{
	static __thread uint8_t wbuf[256 << 10], rbuf[256 << 10];
	uint64_t seed = 0x1234 + (uint64_t)ss->side, tx = 0, rx = 0;
	uint64_t wseed = 100 + (uint64_t)ss->side, rseed = 100 + (uint64_t)!ss->side;
	size_t chunk = 0, chunk_off = 0;
	int shut = 0, eof = 0;

	while (!shut || (!eof && !ss->close_at_end)) {
		int progress = 0;
		ssize_t r;

		if (tx < ss->tx_bytes) {
			struct iovec iov[8];
			int n = 1 + (int)(tu_rand(&seed) % 8);
			size_t left;

			if (chunk_off == chunk) {
				chunk = 1 + tu_rand(&seed) % sizeof(wbuf);
				if (chunk > ss->tx_bytes - tx)
					chunk = (size_t)(ss->tx_bytes - tx);
				tu_fill(wbuf, chunk, tx, wseed);
				chunk_off = 0;
			}
			left = chunk - chunk_off;
			for (int i = 0; i < n; i++) {
				size_t len = i == n - 1 ? left : tu_rand(&seed) % (left + 1);
				iov[i].iov_base = wbuf + chunk_off + (chunk - chunk_off - left);
				iov[i].iov_len = len;
				left -= len;
			}
			r = mpk_link_writev(ss->l, iov, n);
			if (r > 0) {
				chunk_off += (size_t)r;
				tx += (uint64_t)r;
				progress = 1;
			} else if (r != -EAGAIN) {
				FAIL(ss->side, "side %d: writev at %llu: %s", ss->side,
				     (unsigned long long)tx, strerror((int)-r));
			}
		} else if (!shut) {
			int e = ss->close_at_end ? mpk_link_close(ss->l)
						 : mpk_link_shutdown_write(ss->l);
			if (e)
				FAIL(ss->side, "side %d: shutdown: %s", ss->side, strerror(-e));
			shut = 1;
			progress = 1;
		}
		if (!eof && !ss->close_at_end) {
			size_t want = 1 + tu_rand(&seed) % sizeof(rbuf);
			r = mpk_link_read(ss->l, rbuf, want);
			if (r > 0) {
				ssize_t bad = tu_check(rbuf, (size_t)r, rx, rseed);
				if (bad >= 0)
					FAIL(ss->side, "side %d: corrupt byte at stream offset %llu",
					     ss->side, (unsigned long long)(rx + (uint64_t)bad));
				rx += (uint64_t)r;
				progress = 1;
			} else if (r == 0) {
				if (rx != ss->rx_bytes)
					FAIL(ss->side, "side %d: EOF after %llu of %llu bytes",
					     ss->side, (unsigned long long)rx,
					     (unsigned long long)ss->rx_bytes);
				eof = 1;
				progress = 1;
			} else if (r != -EAGAIN) {
				FAIL(ss->side, "side %d: read at %llu: %s", ss->side,
				     (unsigned long long)rx, strerror((int)-r));
			}
		}
		jitter(&seed);
		if (!progress) {
			const char *e = sleep_on(ss->side, ss->l, ss->bell,
						 (eof || ss->close_at_end ? 0 : MPK_LINK_IN) |
							 (tx < ss->tx_bytes ? MPK_LINK_OUT : 0));
			if (e)
				return e;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ messages */

/* A message: u32 length of payload, u32 sequence, payload bytes that are
 * a function of the sequence. Side 1 echoes each message back. */
struct msg_side {
	int side;
	struct mpk_link *l;
	int bell;
	unsigned messages;
};

#define OUTQ (64u << 10)
#define WINDOW 512u

static size_t msg_len(uint32_t seq)
{
	uint64_t s = seq * 0x9e3779b97f4a7c15ull + 1;
	return 1 + tu_rand(&s) % 300;
}

static void msg_build(uint8_t *p, uint32_t seq)
{
	uint32_t len = (uint32_t)msg_len(seq);

	memcpy(p, &len, 4);
	memcpy(p + 4, &seq, 4);
	tu_fill(p + 8, len, (uint64_t)seq << 12, 77);
}

static const char *msg_run(const struct msg_side *ms)
{
	static __thread uint8_t out[OUTQ + 512], in[OUTQ + 512];
	size_t out_head = 0, out_len = 0, in_len = 0;
	uint32_t sent = 0, got = 0;
	uint64_t seed = 0x5eed + (uint64_t)ms->side;
	int echo = ms->side == 1, done = 0, eof = 0;

	while (!done) {
		int progress = 0;
		ssize_t r;

		/* Side 0 produces new messages within a window. */
		/* One stretch in eight is strict ping-pong, where both sides
		 * sleep on every message; the rest pipelines up to WINDOW. */
		uint32_t window = (sent >> 10) % 8 == 0 ? 1 : WINDOW;
		if (!echo && sent < ms->messages && sent - got < window &&
		    out_len + 308 <= OUTQ) {
			if (out_head) {
				memmove(out, out + out_head, out_len);
				out_head = 0;
			}
			msg_build(out + out_len, sent);
			out_len += 8 + msg_len(sent);
			sent++;
			progress = 1;
		}
		if (out_len) {
			r = mpk_link_write(ms->l, out + out_head, out_len);
			if (r > 0) {
				out_head += (size_t)r;
				out_len -= (size_t)r;
				if (!out_len)
					out_head = 0;
				progress = 1;
			} else if (r != -EAGAIN) {
				FAIL(ms->side, "side %d: write: %s", ms->side, strerror((int)-r));
			}
		}
		/* The echo side stops reading while its queue is full:
		 * back-pressure, as a real server would apply. */
		if (!eof && in_len < sizeof(in) && (!echo || out_len + 308 <= OUTQ)) {
			r = mpk_link_read(ms->l, in + in_len, sizeof(in) - in_len);
			if (r > 0) {
				in_len += (size_t)r;
				progress = 1;
			} else if (r == 0) {
				eof = 1;
				progress = 1;
			} else if (r != -EAGAIN) {
				FAIL(ms->side, "side %d: read: %s", ms->side, strerror((int)-r));
			}
		}
		/* Parse whole messages. */
		size_t pos = 0;
		while (in_len - pos >= 8) {
			uint32_t len, seq;
			uint8_t want[308];

			memcpy(&len, in + pos, 4);
			memcpy(&seq, in + pos + 4, 4);
			if (seq != got)
				FAIL(ms->side, "side %d: message %u arrived, expected %u", ms->side,
				     seq, got);
			if (len != msg_len(seq))
				FAIL(ms->side, "side %d: message %u has length %u", ms->side, seq,
				     len);
			if (in_len - pos < 8 + len)
				break;
			if (echo && out_len + out_head + 8 + len > sizeof(out)) {
				if (!out_head)
					break;
				memmove(out, out + out_head, out_len);
				out_head = 0;
			}
			msg_build(want, seq);
			if (memcmp(want, in + pos, 8 + len))
				FAIL(ms->side, "side %d: message %u corrupt", ms->side, seq);
			if (echo) {
				memcpy(out + out_head + out_len, in + pos, 8 + len);
				out_len += 8 + len;
			}
			pos += 8 + len;
			got++;
		}
		memmove(in, in + pos, in_len - pos);
		in_len -= pos;

		if (!echo && got == ms->messages) {
			int e = mpk_link_close(ms->l);
			if (e)
				FAIL(ms->side, "side 0: close: %s", strerror(-e));
			done = 1;
		}
		if (echo && eof) {
			if (got != ms->messages || in_len)
				FAIL(ms->side, "side 1: EOF after %u messages (+%zu bytes)", got,
				     in_len);
			mpk_link_close(ms->l);
			done = 1;
		}
		jitter(&seed);
		if (!progress && !done) {
			unsigned want = out_len ? MPK_LINK_OUT : 0;
			if (!eof && (!echo || out_len + 308 <= OUTQ))
				want |= MPK_LINK_IN;
			const char *e = sleep_on(ms->side, ms->l, ms->bell, want);
			if (e)
				return e;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ harness */

enum kind { STREAM, STREAM_CLOSE, MESSAGES_ };

struct job {
	enum kind kind;
	int side;
	struct mpk_link *l;
	int bell;
	const char *err;
	unsigned long sleeps;
	struct mpk_link_stats st;
};

/* The least each side must have slept and been rung for the run to count
 * as a test of the doorbells. Far below what a run does (see the log). */
#define MIN_SLEEPS 10000

static const char *run_job_(struct job *j)
{
	if (j->kind == MESSAGES_) {
		struct msg_side ms = {j->side, j->l, j->bell, MESSAGES};
		return msg_run(&ms);
	}
	/* Close: side 0 sends and closes while side 1 still reads. */
	int cl = j->kind == STREAM_CLOSE;
	struct stream_side ss = {j->side, j->l, j->bell,
				 cl && j->side ? 0 : STREAM_BYTES,
				 cl && !j->side ? 0 : STREAM_BYTES, cl && !j->side};
	return stream_run(&ss);
}

static const char *run_job(struct job *j)
{
	const char *e;

	tl_sleeps = 0;
	e = run_job_(j);
	j->sleeps = tl_sleeps;
	mpk_link_get_stats(j->l, &j->st);
	fprintf(stderr, "side %d: %lu sleeps, %llu bells sent, %llu drained\n", j->side,
		j->sleeps, (unsigned long long)j->st.bells_sent,
		(unsigned long long)j->st.bells_drained);
	if (!e && j->kind == MESSAGES_ && (j->sleeps < MIN_SLEEPS || j->st.bells_sent < MIN_SLEEPS))
		FAIL(j->side, "side %d slept %lu times and rang %llu bells: the doorbells were "
			      "not exercised", j->side, j->sleeps,
		     (unsigned long long)j->st.bells_sent);
	return e;
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	j->err = run_job(j);
	return NULL;
}

static char harness_err[256];

#define HFAIL(...)                                                                       \
	do {                                                                             \
		snprintf(harness_err, sizeof(harness_err), __VA_ARGS__);                 \
		goto out;                                                                \
	} while (0)

static const char *in_threads(enum kind kind, size_t ring, int efd)
{
	struct job j[2] = {{.kind = kind, .side = 0}, {.kind = kind, .side = 1}};
	const char *err = NULL;
	pthread_t t;
	int fd, sv[2] = {-1, -1}, e;

	fd = mpk_link_create(ring);
	if (fd < 0)
		HFAIL("mpk_link_create: %s", strerror(-fd));
	if (efd && (e = mpk_link_bells_create(sv)) < 0)
		HFAIL("mpk_link_bells_create: %s", strerror(-e));
	if (!efd && socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		HFAIL("socketpair: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if ((e = mpk_link_attach(fd, i, &j[i].l)) != 0)
			HFAIL("attach side %d: %s", i, strerror(-e));
		j[i].bell = sv[i];
		if (efd)
			mpk_link_set_bells(j[i].l, sv[i], sv[!i]);
		else
			mpk_link_set_doorbell(j[i].l, sv[i], NULL, NULL);
	}
	if ((e = pthread_create(&t, NULL, job_thread, &j[1])) != 0)
		HFAIL("pthread_create: %s", strerror(e));
	job_thread(&j[0]);
	pthread_join(t, NULL);
	err = j[0].err ? j[0].err : j[1].err;
	/* A ring that can grow and is streamed into must have grown, or
	 * the case tested a fixed ring. The geometry, read with pread: the
	 * memfd's header as the last writer left it. */
	if (!err && ring > MPK_LINK_RING_START && kind == STREAM) {
		struct mpk_link_hdr h;

		if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
			HFAIL("pread of the header: %s", strerror(errno));
		for (int r = 0; r < 2; r++)
			if ((UINT64_C(1) << MPK_GEOM_SHIFT(h.ring[r].geom)) != ring)
				HFAIL("ring %d never grew from %u to %zu bytes", r,
				      MPK_LINK_RING_START, ring);
	}
out:
	for (int i = 0; i < 2; i++)
		mpk_link_detach(j[i].l);
	if (fd >= 0)
		close(fd);
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return err ? err : harness_err[0] ? harness_err : NULL;
}

/* Side 1 runs in a child that gets the link memfd over SCM_RIGHTS. */
static const char *in_processes(enum kind kind, size_t ring, int efd)
{
	struct job j = {.kind = kind, .side = 0};
	int fd = -1, ctl[2], bell[2], status, e;
	const char *err = NULL;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) < 0 ||
	    (efd ? mpk_link_bells_create(bell) < 0
		 : socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, bell) < 0))
		return "socketpair or eventfd failed";
	pid = fork();
	if (pid < 0)
		return "fork failed";
	if (pid == 0) {
		struct job c = {.kind = kind, .side = 1, .bell = bell[1]};
		int lfd;

		close(ctl[0]);
		if (!efd)
			close(bell[0]);
		lfd = tu_recv_fd(ctl[1]);
		if (lfd < 0 || mpk_link_attach(lfd, 1, &c.l) != 0) {
			fprintf(stderr, "child: cannot receive or attach the link\n");
			_exit(3);
		}
		close(lfd);
		if (efd)
			mpk_link_set_bells(c.l, bell[1], bell[0]);
		else
			mpk_link_set_doorbell(c.l, c.bell, NULL, NULL);
		c.err = run_job(&c);
		if (c.err)
			fprintf(stderr, "child: %s\n", c.err);
		mpk_link_detach(c.l);
		_exit(c.err ? 1 : 0);
	}
	close(ctl[1]);
	if (!efd)
		close(bell[1]);
	fd = mpk_link_create(ring);
	if (fd < 0)
		HFAIL("mpk_link_create: %s", strerror(-fd));
	if ((e = mpk_link_attach(fd, 0, &j.l)) != 0)
		HFAIL("attach: %s", strerror(-e));
	if ((e = tu_send_fd(ctl[0], fd)) != 0)
		HFAIL("sending the link fd: %s", strerror(-e));
	j.bell = bell[0];
	if (efd)
		mpk_link_set_bells(j.l, bell[0], bell[1]);
	else
		mpk_link_set_doorbell(j.l, j.bell, NULL, NULL);
	err = run_job(&j);
out:
	if (err || harness_err[0])
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!err && !harness_err[0] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		HFAIL("child failed (status 0x%x); its message is on stderr", status);
	mpk_link_detach(j.l);
	if (fd >= 0)
		close(fd);
	close(ctl[0]);
	close(bell[0]);
	if (efd)
		close(bell[1]);
	return err ? err : harness_err[0] ? harness_err : NULL;
}

const struct stress_case stress_cases[] = {
	{"processes_128MiB_each_way_shutdown", STREAM, 64 << 10, 0, 0},
	{"processes_128MiB_then_close", STREAM_CLOSE, 0, 0, 0},
	{"threads_small_ring", STREAM, SMALL_RING, 1, 0},
	{"threads_1M_messages", MESSAGES_, SMALL_RING, 1, 0},
	{"processes_1M_messages", MESSAGES_, SMALL_RING, 0, 0},
	{"threads_1M_messages_eventfd", MESSAGES_, SMALL_RING, 1, 1},
	{"processes_1M_messages_eventfd", MESSAGES_, SMALL_RING, 0, 1},
	{"processes_128MiB_eventfd", STREAM, 64 << 10, 0, 1},
	/* A ring that grows (from MPK_LINK_RING_START) while both directions
	 * stream with unread bytes in it: the geometry's ordering, for TSan. */
	{"threads_128MiB_growing_ring", STREAM, 1 << 20, 1, 0},
	/* Messages in a ring that can grow: the writer moves the empty
	 * ring's base at the ends it would cross (tx_rebase; dozens a run)
	 * and grows it where the reader is behind, the reader looking on. */
	{"threads_1M_messages_moving_ring", MESSAGES_, 1 << 20, 1, 0},
	{NULL, 0, 0, 0, 0},
};

const char *stress_run(const struct stress_case *c)
{
	harness_err[0] = 0;
	return c->threads ? in_threads((enum kind)c->kind, c->ring, c->eventfd)
			  : in_processes((enum kind)c->kind, c->ring, c->eventfd);
}
