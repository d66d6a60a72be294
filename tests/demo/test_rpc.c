/* SPDX-License-Identifier: MIT */
/*
 * The demo's helpers (demo/rpc.h) and, through raw gRPC C-core calls, the
 * server's handling of what its own client never sends: malformed messages,
 * no message, unknown methods, oversized echo requests, a burst of calls in
 * flight on one connection, a deadline that passes, and a client that never
 * finishes its request when the server is told to stop.
 *
 * The "live" tests start $DEMO_SERVER (mpklink-demo-server) on a free port.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "health.pb-c.h"
#include "rpc.h"
#include "wordcount.pb-c.h"

#define TIMEOUT_S 30.0

/* ------------------------------------------------------------ counting */

static uint64_t words_of(const char *s)
{
	return demo_count_words(s, strlen(s));
}

Test(words, the_six_whitespace_bytes_separate)
{
	cr_expect_eq(words_of("a b\tc\nd\ve\ff\rg"), 7);
	cr_expect_eq(words_of(""), 0);
	cr_expect_eq(words_of(" \t\n\v\f\r"), 0);
	cr_expect_eq(words_of("  a  "), 1);
	cr_expect_eq(words_of("a"), 1);
	cr_expect_eq(words_of("ab\r\ncd"), 2);
	for (unsigned b = 0; b < 256; b++)
		cr_expect_eq(demo_is_space((uint8_t)b),
			     b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r',
			     "byte 0x%02x", b);
}

Test(words, every_other_byte_is_part_of_a_word)
{
	/* Runs of non-whitespace bytes, control and high bytes included
	 * (coreutils 9.1's wc -w skips non-printable bytes instead: see
	 * demo/README.md). */
	const uint8_t t[] = {0x00, 0x01, ' ', 0x80, 0xff, '\t', 0x7f, '\n', 0x1b, 0x1c};

	cr_expect_eq(demo_count_words(t, sizeof t), 4);
	cr_expect_eq(demo_count_words(t, 1), 1); /* a NUL is a word byte */
}

/* The definition, one byte at a time. */
static uint64_t ref_count(const uint8_t *p, size_t len)
{
	uint64_t n = 0;
	int in = 0;

	for (size_t i = 0; i < len; i++) {
		int sp = p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r');

		n += !sp && !in;
		in = !sp;
	}
	return n;
}

Test(words, wide_path_agrees_with_the_definition)
{
	/* Bytes next to the edges of the space classes (8/9, 13/14, 31/32/33)
	 * and those a signed-byte compare gets wrong (0x80.., 0x89, 0x8d),
	 * at every length and misalignment around the 64-byte blocks. */
	static const uint8_t alpha[] = {' ', '\t', '\n', '\v', '\f', '\r', 8, 14, 31, 33,
					 0, 'a', 0x80, 0x89, 0x8d, 0x8e, 0xa0, 0xff};
	uint8_t buf[400];
	uint64_t x = 88172645463325252ull;

	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof buf; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = alpha[x % sizeof alpha];
		}
		for (size_t off = 0; off < 8; off++)
			for (size_t len = 0; len + off <= sizeof buf; len += 1 + (len > 140) * 6)
				cr_assert_eq(demo_count_words(buf + off, len),
					     ref_count(buf + off, len),
					     "round %d off %zu len %zu", round, off, len);
	}
}

/* ------------------------------------------------------------ the text */

Test(gen, makes_the_words_it_says_deterministically)
{
	static const uint64_t sizes[] = {0, 1, 2, 13, 1000, 100000};

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint8_t *a, *b, *c;
		size_t la, lb, lc;

		cr_assert_eq(demo_gen_text(sizes[i], 7, &a, &la), 0);
		cr_assert_eq(demo_gen_text(sizes[i], 7, &b, &lb), 0);
		cr_assert_eq(demo_gen_text(sizes[i], 8, &c, &lc), 0);
		cr_expect_eq(demo_count_words(a, la), sizes[i], "%lu words asked",
			     (unsigned long)sizes[i]);
		cr_expect(la == lb && memcmp(a, b, la) == 0, "same seed, different text");
		if (sizes[i] >= 2)
			cr_expect(la != lc || memcmp(a, c, la) != 0, "seeds 7 and 8 gave one text");
		free(a);
		free(b);
		free(c);
	}
}

Test(gen, words_of_1_to_12_printable_bytes_and_all_whitespace_kinds)
{
	unsigned seen_len[13] = {0}, seen_ws[256] = {0};
	uint8_t *t;
	size_t len, run = 0, ws_run = 0;

	cr_assert_eq(demo_gen_text(100000, 3, &t, &len), 0);
	for (size_t i = 0; i <= len; i++) {
		if (i < len && !demo_is_space(t[i])) {
			cr_assert(t[i] >= 0x21 && t[i] <= 0x7e, "byte 0x%02x at %zu is not printable",
				  t[i], i);
			run++;
			ws_run = 0;
			continue;
		}
		if (i < len) {
			seen_ws[t[i]]++;
			ws_run++;
			cr_assert_leq(ws_run, 3, "a whitespace run of more than 3 at %zu", i);
		}
		if (run) {
			cr_assert_leq(run, 12, "a word of %zu bytes at %zu", run, i - run);
			seen_len[run]++;
		}
		run = 0;
	}
	for (int l = 1; l <= 12; l++)
		cr_expect_gt(seen_len[l], 0, "no word of %d bytes in 10^5", l);
	for (const char *w = " \t\n\v\f\r"; *w; w++)
		cr_expect_gt(seen_ws[(uint8_t)*w], 0, "whitespace 0x%02x never used", *w);
	free(t);
}

/* ----------------------------------------------------- messages, paths */

Test(codec, requests_are_the_protos_messages)
{
	Mpklink__Demo__CountRequest *cr;
	Mpklink__Demo__EchoRequest *er;
	Grpc__Health__V1__HealthCheckRequest *hr;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(demo_encode_count_request("two words", 9, &buf, &len), 0);
	cr = mpklink__demo__count_request__unpack(NULL, len, buf);
	cr_assert_not_null(cr);
	cr_expect(cr->text.len == 9 && memcmp(cr->text.data, "two words", 9) == 0);
	mpklink__demo__count_request__free_unpacked(cr, NULL);
	free(buf);

	cr_assert_eq(demo_encode_echo_request("xyz", 3, 77, &buf, &len), 0);
	er = mpklink__demo__echo_request__unpack(NULL, len, buf);
	cr_assert_not_null(er);
	cr_expect(er->payload.len == 3 && memcmp(er->payload.data, "xyz", 3) == 0);
	cr_expect_eq(er->reply_bytes, 77);
	mpklink__demo__echo_request__free_unpacked(er, NULL);
	free(buf);

	cr_assert_eq(demo_encode_health_request("svc", &buf, &len), 0);
	hr = grpc__health__v1__health_check_request__unpack(NULL, len, buf);
	cr_assert_not_null(hr);
	cr_expect_str_eq(hr->service, "svc");
	grpc__health__v1__health_check_request__free_unpacked(hr, NULL);
	free(buf);
}

Test(codec, replies_decode_and_garbage_does_not)
{
	/* CountReply{words: 300}: field 1 varint 300 = 0xac 0x02. */
	const uint8_t count[] = {0x08, 0xac, 0x02};
	const uint8_t echo[] = {0x0a, 0x02, 'h', 'i'};
	const uint8_t health[] = {0x08, 0x01};
	uint64_t words = 0;
	uint8_t *p;
	size_t pl;
	int st = -1;

	cr_expect_eq(demo_decode_count_reply(count, sizeof count, &words), 0);
	cr_expect_eq(words, 300);
	cr_expect_eq(demo_decode_count_reply(count, 0, &words), 0);
	cr_expect_eq(words, 0, "an empty CountReply is words 0");
	cr_expect_eq(demo_decode_echo_reply(echo, sizeof echo, &p, &pl), 0);
	cr_expect(pl == 2 && memcmp(p, "hi", 2) == 0);
	free(p);
	cr_expect_eq(demo_decode_health_reply(health, sizeof health, &st), 0);
	cr_expect_eq(st, DEMO_HEALTH_SERVING);

	cr_expect_eq(demo_decode_count_reply(count, 2, &words), -1, "truncated varint");
	cr_expect_eq(demo_decode_echo_reply(echo, 3, &p, &pl), -1, "truncated bytes");
	cr_expect_eq(demo_decode_count_reply(echo, sizeof echo, &words), -1, "wire type 2 for a varint field");
}

static void expect_path(const ProtobufCServiceDescriptor *d, unsigned m, const char *path)
{
	char want[256];

	cr_assert_lt(m, d->n_methods);
	snprintf(want, sizeof want, "/%s/%s", d->name, d->methods[m].name);
	cr_expect_str_eq(path, want);
}

Test(codec, method_paths_match_the_protos)
{
	expect_path(&mpklink__demo__word_count__descriptor, 0, DEMO_METHOD_COUNT);
	expect_path(&mpklink__demo__word_count__descriptor, 1, DEMO_METHOD_ECHO);
	expect_path(&grpc__health__v1__health__descriptor, 0, DEMO_METHOD_HEALTH);
	cr_expect_str_eq(mpklink__demo__word_count__descriptor.name, DEMO_SERVICE);
}

Test(pattern, fill_and_check)
{
	uint8_t b[1000];

	demo_fill_pattern(b, sizeof b);
	cr_expect_eq(b[0], 7);
	cr_expect_eq(b[1], 38);
	cr_expect_eq(b[999], (999 * 31 + 7) & 0xff);
	cr_expect_eq(demo_check_pattern(b, sizeof b), sizeof b);
	b[500] ^= 1;
	cr_expect_eq(demo_check_pattern(b, sizeof b), 500);
}

/* ------------------------------------------------------- a live server */

static pid_t srv_pid;
static char srv_addr[256];
static struct demo_client cli;

static void start_server(void)
{
	const char *bin = getenv("DEMO_SERVER");
	char buf[512];
	size_t n = 0;
	int out[2];

	cr_assert(bin && *bin, "DEMO_SERVER (the mpklink-demo-server binary) is not set");
	cr_assert_eq(pipe(out), 0);
	srv_pid = fork();
	cr_assert_geq(srv_pid, 0);
	if (srv_pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(bin, bin, "--listen", "127.0.0.1:0", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	/* "listening on 127.0.0.1:PORT\n", within 20 s. */
	while (n < sizeof buf - 1 && !memchr(buf, '\n', n)) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		ssize_t r;

		cr_assert_eq(poll(&p, 1, 20000), 1, "no 'listening on' line from %s in 20 s", bin);
		r = read(out[0], buf + n, sizeof buf - 1 - n);
		cr_assert_gt(r, 0, "%s exited before listening", bin);
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(out[0]);
	cr_assert_eq(sscanf(buf, "listening on %255s", srv_addr), 1, "server said: %s", buf);
	grpc_init();
	cr_assert_eq(demo_client_open(&cli, srv_addr, NULL, 0), 0);
}

/* SIGTERM; the server must exit 0 within limit_s. Returns seconds taken. */
static double stop_server(double limit_s)
{
	struct timespec t0, t1;
	int st;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(kill(srv_pid, SIGTERM), 0);
	for (;;) {
		pid_t r = waitpid(srv_pid, &st, WNOHANG);

		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r == srv_pid)
			break;
		if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9 > limit_s) {
			kill(srv_pid, SIGKILL);
			waitpid(srv_pid, &st, 0);
			srv_pid = 0;
			cr_assert_fail("server still running %.1f s after SIGTERM", limit_s);
		}
		usleep(20000);
	}
	srv_pid = 0;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server ended with wait status 0x%x", st);
	return (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
}

static void finish(void)
{
	demo_client_close(&cli);
	if (srv_pid > 0)
		stop_server(10);
	grpc_shutdown();
}

TestSuite(live, .init = start_server, .fini = finish, .timeout = 120);

/* A call with raw request bytes; its status, and details in *details. */
static grpc_status_code raw_call(const char *method, const void *req, size_t len, char *details,
				 size_t dlen)
{
	struct demo_reply r;
	grpc_status_code st;
	char err[512];

	cr_assert_eq(demo_unary(&cli, method, req, len, TIMEOUT_S, &r, err, sizeof err), 0,
		     "%s", err);
	st = r.status;
	snprintf(details, dlen, "%s", r.details);
	demo_reply_free(&r);
	return st;
}

static void expect_count(uint64_t words)
{
	uint8_t *t;
	size_t len;
	uint64_t got = 0;
	char err[512];

	cr_assert_eq(demo_gen_text(words, words, &t, &len), 0);
	cr_assert_eq(demo_count(&cli, t, len, TIMEOUT_S, &got, err, sizeof err), 0, "%s", err);
	cr_expect_eq(got, words, "the server counted %lu of %lu words", (unsigned long)got,
		     (unsigned long)words);
	free(t);
}

Test(live, malformed_requests_are_invalid_argument_and_the_server_goes_on)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *why;
	} bad[] = {
		{"\x0a\x05" "ab", 4, "bytes field longer than the message"},
		{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, "varint of 11 bytes"},
		{"\x0a", 1, "a tag and nothing else"},
		{"\x0b\x01", 2, "wire type 3 (start group)"},
		{"\x09\x01\x02", 3, "fixed64 cut short"},
	};
	static const struct {
		const char *method, *type;
	} m[] = {
		{DEMO_METHOD_COUNT, "mpklink.demo.CountRequest"},
		{DEMO_METHOD_ECHO, "mpklink.demo.EchoRequest"},
		{DEMO_METHOD_HEALTH, "grpc.health.v1.HealthCheckRequest"},
	};
	char details[512];

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
			grpc_status_code st = raw_call(m[i].method, bad[j].bytes, bad[j].len,
						       details, sizeof details);

			cr_expect_eq(st, GRPC_STATUS_INVALID_ARGUMENT, "%s, %s: status %s (%s)",
				     m[i].method, bad[j].why, demo_status_name(st), details);
			cr_expect(strstr(details, m[i].type), "%s, %s: details '%s' do not name %s",
				  m[i].method, bad[j].why, details, m[i].type);
		}
		expect_count(1000);
	}
	/* A Count request with field 1 as a varint is wrong-typed, not
	 * unknown: it must not be taken for an empty text. */
	cr_expect_eq(raw_call(DEMO_METHOD_COUNT, "\x08\x01", 2, details, sizeof details),
		     GRPC_STATUS_INVALID_ARGUMENT, "(%s)", details);
	expect_count(12345);
}

Test(live, unknown_fields_are_skipped_as_protobuf_says)
{
	/* CountRequest{text: "a b"} plus field 9 (varint 5): 2 words. */
	const uint8_t req[] = {0x48, 0x05, 0x0a, 0x03, 'a', ' ', 'b'};
	struct demo_reply r;
	uint64_t words = 0;

	cr_assert_eq(demo_unary(&cli, DEMO_METHOD_COUNT, req, sizeof req, TIMEOUT_S, &r, NULL, 0), 0);
	cr_assert_eq(r.status, GRPC_STATUS_OK, "%s: %s", demo_status_name(r.status), r.details);
	cr_assert_eq(demo_decode_count_reply(r.data, r.len, &words), 0);
	cr_expect_eq(words, 2);
	demo_reply_free(&r);
}

Test(live, unknown_method_is_unimplemented)
{
	char details[512];
	grpc_status_code st =
		raw_call("/mpklink.demo.WordCount/Nope", "", 0, details, sizeof details);

	cr_expect_eq(st, GRPC_STATUS_UNIMPLEMENTED, "status %s", demo_status_name(st));
	cr_expect(strstr(details, "/mpklink.demo.WordCount/Nope"), "details: %s", details);
	expect_count(10);
}

Test(live, echo_reply_bytes_over_the_limit_is_refused)
{
	uint8_t *req;
	size_t len;
	char details[512];
	grpc_status_code st;

	cr_assert_eq(demo_encode_echo_request("x", 1, UINT32_MAX, &req, &len), 0);
	st = raw_call(DEMO_METHOD_ECHO, req, len, details, sizeof details);
	free(req);
	cr_expect_eq(st, GRPC_STATUS_INVALID_ARGUMENT, "status %s", demo_status_name(st));
	cr_expect(strstr(details, "reply_bytes 4294967295"), "details: %s", details);
}

/* Starts a Count call on cq with the given ops missing or not. */
struct raw {
	grpc_call *call;
	grpc_metadata_array imd, tmd;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
};

static void raw_start(grpc_channel *ch, grpc_completion_queue *cq, struct raw *r,
		      const uint8_t *req, size_t len, int with_message, int close)
{
	grpc_slice method = grpc_slice_from_static_string(DEMO_METHOD_COUNT);
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_seconds(60, GPR_TIMESPAN));
	grpc_op ops[6];
	size_t n = 0;

	memset(r, 0, sizeof *r);
	r->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, dl,
					   NULL);
	cr_assert_not_null(r->call);
	grpc_metadata_array_init(&r->imd);
	grpc_metadata_array_init(&r->tmd);
	r->details = grpc_empty_slice();
	memset(ops, 0, sizeof ops);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (with_message) {
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)req, len);

		r->send = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = r->send;
	}
	if (close)
		ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[n++].data.recv_initial_metadata.recv_initial_metadata = &r->imd;
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &r->recv;
	ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[n].data.recv_status_on_client.trailing_metadata = &r->tmd;
	ops[n].data.recv_status_on_client.status = &r->status;
	ops[n++].data.recv_status_on_client.status_details = &r->details;
	cr_assert_eq(grpc_call_start_batch(r->call, ops, n, r, NULL), GRPC_CALL_OK);
}

static void raw_free(struct raw *r)
{
	if (r->send)
		grpc_byte_buffer_destroy(r->send);
	if (r->recv)
		grpc_byte_buffer_destroy(r->recv);
	grpc_metadata_array_destroy(&r->imd);
	grpc_metadata_array_destroy(&r->tmd);
	grpc_slice_unref(r->details);
	grpc_call_unref(r->call);
}

static void drain_destroy(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

Test(live, no_request_message_is_invalid_argument)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	struct raw r;
	grpc_event ev;

	raw_start(cli.channel, cq, &r, NULL, 0, 0, 1);
	ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	cr_assert_eq(ev.type, GRPC_OP_COMPLETE);
	cr_expect_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "status %s",
		     demo_status_name(r.status));
	cr_expect(GRPC_SLICE_LENGTH(r.details) > 0 &&
			  memmem(GRPC_SLICE_START_PTR(r.details), GRPC_SLICE_LENGTH(r.details),
				 "no request message", 18),
		  "details do not say 'no request message'");
	raw_free(&r);
	drain_destroy(cq);
	expect_count(5);
}

#define BURST 64

Test(live, a_burst_of_calls_in_flight_is_answered_each_rightly)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	static struct raw r[BURST];
	uint64_t want[BURST];
	int done = 0;

	/* All started before any is waited for; sizes differ, so a reply
	 * matched to the wrong call shows as a wrong count. */
	for (int i = 0; i < BURST; i++) {
		uint8_t *t, *req;
		size_t len, rlen;

		want[i] = (uint64_t)i * 97 + (i % 3 ? 0 : 20000);
		cr_assert_eq(demo_gen_text(want[i], (uint64_t)i, &t, &len), 0);
		cr_assert_eq(demo_encode_count_request(t, len, &req, &rlen), 0);
		raw_start(cli.channel, cq, &r[i], req, rlen, 1, 1);
		free(t);
		free(req);
	}
	while (done < BURST) {
		grpc_event ev = grpc_completion_queue_next(
			cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					 gpr_time_from_seconds(60, GPR_TIMESPAN)),
			NULL);
		struct raw *x;
		uint8_t *flat;
		size_t flen;
		uint64_t words = UINT64_MAX;
		int i;

		cr_assert_eq(ev.type, GRPC_OP_COMPLETE, "only %d of %d calls completed", done, BURST);
		x = ev.tag;
		i = (int)(x - r);
		cr_assert_eq(x->status, GRPC_STATUS_OK, "call %d: %s", i, demo_status_name(x->status));
		cr_assert_not_null(x->recv, "call %d: no reply", i);
		cr_assert_eq(demo_bb_flatten(x->recv, &flat, &flen), 0);
		cr_assert_eq(demo_decode_count_reply(flat, flen, &words), 0);
		cr_expect_eq(words, want[i], "call %d: %lu words, expected %lu", i,
			     (unsigned long)words, (unsigned long)want[i]);
		free(flat);
		raw_free(x);
		done++;
	}
	drain_destroy(cq);
}

/* A deadline 1 us away: a Health check could still be answered before the
 * client's deadline timer runs (gRPC's timers are asynchronous; CI saw an
 * OK), so the call is a count of 10^6 words, milliseconds of the server's
 * work, which the deadline passes long before. */
Test(live, a_passed_deadline_ends_the_call)
{
	struct demo_reply r;
	uint8_t *t, *req;
	size_t len, rlen;

	cr_assert_eq(demo_gen_text(1000000, 1, &t, &len), 0);
	cr_assert_eq(demo_encode_count_request(t, len, &req, &rlen), 0);
	free(t);
	cr_assert_eq(demo_unary(&cli, DEMO_METHOD_COUNT, req, rlen, 1e-6, &r, NULL, 0), 0);
	free(req);
	cr_expect_eq(r.status, GRPC_STATUS_DEADLINE_EXCEEDED, "status %s",
		     demo_status_name(r.status));
	demo_reply_free(&r);
	expect_count(3);
}

Test(live, a_client_that_never_finishes_does_not_keep_the_server_up)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	struct raw r;
	double took;

	/* Headers only: no message, no half-close, a 60 s deadline. Then
	 * make sure the server saw the stream before it is told to stop. */
	raw_start(cli.channel, cq, &r, NULL, 0, 0, 0);
	expect_count(7);
	took = stop_server(10);
	cr_log_info("stopped after %.2f s with a call held open", took);
	cr_assert_eq(grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type,
		     GRPC_OP_COMPLETE);
	cr_expect_neq(r.status, GRPC_STATUS_OK, "the held call ended OK without a message");
	raw_free(&r);
	drain_destroy(cq);
}
