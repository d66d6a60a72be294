/* SPDX-License-Identifier: MIT */
/*
 * The word-count demo's gRPC C-core helpers: see rpc.h, which is the
 * contract. Nothing here prints; errors go to the caller's buffer.
 */
#define _GNU_SOURCE
#include "rpc.h"

#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "health.pb-c.h"
#include "wordcount.pb-c.h"

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ gRPC */

void demo_malloc_keep(void)
{
	/* No mmap'd chunks (glibc falls back to mmap by itself when the heap
	 * cannot grow), and never trim the heap. */
	mallopt(M_MMAP_MAX, 0);
	/* One arena: a thread arena cannot hold a chunk above 64 MiB and
	 * mmaps it, so every 10^7-word call (85 MB) faulted its buffers in
	 * afresh, 21000 faults each: 600 ms a call instead of 40 (perf). */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

const grpc_channel_args *demo_channel_args(void)
{
	/* grpc_arg's key is char *, not const: the table cannot be const. */
	static grpc_arg args[] = {
		{.type = GRPC_ARG_INTEGER,
		 .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 .value.integer = DEMO_MAX_MESSAGE_BYTES},
		{.type = GRPC_ARG_INTEGER,
		 .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		 .value.integer = DEMO_MAX_MESSAGE_BYTES},
	};
	static const grpc_channel_args set = {
		.num_args = sizeof args / sizeof args[0],
		.args = args,
	};
	return &set;
}

const char *demo_status_name(grpc_status_code code)
{
	static const char *const names[] = {
		[GRPC_STATUS_OK] = "OK",
		[GRPC_STATUS_CANCELLED] = "CANCELLED",
		[GRPC_STATUS_UNKNOWN] = "UNKNOWN",
		[GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
		[GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
		[GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
		[GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
		[GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
		[GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
		[GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
		[GRPC_STATUS_ABORTED] = "ABORTED",
		[GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
		[GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
		[GRPC_STATUS_INTERNAL] = "INTERNAL",
		[GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
		[GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
		[GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
	};

	if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
		return names[code];
	return "UNKNOWN_STATUS";
}

int demo_client_open(struct demo_client *c, const char *target, char *err, size_t errlen)
{
	grpc_channel_credentials *creds;

	memset(c, 0, sizeof *c);
	creds = grpc_insecure_credentials_create();
	if (!creds) {
		errf(err, errlen, "grpc_insecure_credentials_create failed");
		return -1;
	}
	c->channel = grpc_channel_create(target, creds, demo_channel_args());
	grpc_channel_credentials_release(creds);
	if (!c->channel) {
		errf(err, errlen, "cannot create a channel to '%s'", target);
		return -1;
	}
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!c->cq) {
		errf(err, errlen, "cannot create a completion queue");
		demo_client_close(c);
		return -1;
	}
	return 0;
}

void demo_client_close(struct demo_client *c)
{
	if (c->channel)
		grpc_channel_destroy(c->channel);
	if (c->cq) {
		/* Every batch was plucked before its call returned, so the
		 * queue holds no event and may go at once. */
		grpc_completion_queue_shutdown(c->cq);
		grpc_completion_queue_destroy(c->cq);
	}
	c->channel = NULL;
	c->cq = NULL;
}

void demo_reply_free(struct demo_reply *r)
{
	free(r->details);
	free(r->data);
	memset(r, 0, sizeof *r);
}

grpc_byte_buffer *demo_bb_take(uint8_t *buf, size_t len)
{
	grpc_slice s;
	grpc_byte_buffer *bb;

	if (!buf || len == 0) {
		free(buf);
		return grpc_raw_byte_buffer_create(NULL, 0);
	}
	/* gRPC owns the memory from here and frees it when its last
	 * reference goes, which may be after the call that sent it. */
	s = grpc_slice_new(buf, len, free);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

int demo_bb_flatten(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s;
	uint8_t *buf, *nb;
	size_t cap, n = 0;

	/* Exact for uncompressed buffers (all of ours); a compressed one
	 * grows below. */
	cap = grpc_byte_buffer_length(bb);
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return -1;
	if (!grpc_byte_buffer_reader_init(&rd, bb)) {
		free(buf);
		return -1;
	}
	while (grpc_byte_buffer_reader_next(&rd, &s)) {
		size_t sl = GRPC_SLICE_LENGTH(s);

		if (sl > cap - n) {
			size_t ncap = cap * 2 > n + sl ? cap * 2 : n + sl;

			nb = realloc(buf, ncap);
			if (!nb) {
				grpc_slice_unref(s);
				grpc_byte_buffer_reader_destroy(&rd);
				free(buf);
				return -1;
			}
			buf = nb;
			cap = ncap;
		}
		memcpy(buf + n, GRPC_SLICE_START_PTR(s), sl);
		n += sl;
		grpc_slice_unref(s);
	}
	grpc_byte_buffer_reader_destroy(&rd);
	*out = buf;
	*len = n;
	return 0;
}

static gpr_timespec deadline_after(double timeout_s)
{
	if (!(timeout_s > 0) || timeout_s > 1e9)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_micros((int64_t)(timeout_s * 1e6), GPR_TIMESPAN));
}

static char *slice_strdup(grpc_slice s)
{
	size_t n = GRPC_SLICE_LENGTH(s);
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, GRPC_SLICE_START_PTR(s), n);
		p[n] = '\0';
	}
	return p;
}

/* The unary call proper; consumes send. */
static int unary_bb(struct demo_client *c, const char *method, grpc_byte_buffer *send,
		    double timeout_s, struct demo_reply *r, char *err, size_t errlen)
{
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *recv = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_slice mslice;
	grpc_call *call;
	grpc_call_error ce;
	grpc_event ev;
	grpc_op ops[6];
	int rc = 0;

	memset(r, 0, sizeof *r);
	if (!send) {
		errf(err, errlen, "%s: out of memory for the request", method);
		return -1;
	}
	mslice = grpc_slice_from_copied_string(method);
	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, mslice,
					NULL, deadline_after(timeout_s), NULL);
	grpc_slice_unref(mslice);
	if (!call) {
		grpc_byte_buffer_destroy(send);
		errf(err, errlen, "%s: grpc_channel_create_call failed", method);
		return -1;
	}
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);

	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;

	/* The tag only has to be unique on this queue while we wait. */
	ce = grpc_call_start_batch(call, ops, sizeof ops / sizeof ops[0], ops, NULL);
	if (ce != GRPC_CALL_OK) {
		errf(err, errlen, "%s: grpc_call_start_batch: %s", method,
		     grpc_call_error_to_string(ce));
		rc = -1;
		goto out;
	}
	/* No timeout here: the call's deadline ends the batch. */
	ev = grpc_completion_queue_pluck(c->cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		errf(err, errlen, "%s: completion queue event %d instead of the batch", method,
		     (int)ev.type);
		rc = -1;
		goto out;
	}
	r->status = status;
	r->details = slice_strdup(details);
	if (!r->details) {
		errf(err, errlen, "%s: out of memory", method);
		rc = -1;
		goto out;
	}
	if (recv) {
		if (demo_bb_flatten(recv, &r->data, &r->len) < 0) {
			errf(err, errlen, "%s: cannot read the %zu-byte reply", method,
			     grpc_byte_buffer_length(recv));
			rc = -1;
			goto out;
		}
		r->has_message = 1;
	}
out:
	if (rc < 0)
		demo_reply_free(r);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_byte_buffer_destroy(send);
	grpc_call_unref(call);
	return rc;
}

int demo_unary_owned(struct demo_client *c, const char *method, uint8_t *req, size_t len,
		     double timeout_s, struct demo_reply *r, char *err, size_t errlen)
{
	return unary_bb(c, method, demo_bb_take(req, len), timeout_s, r, err, errlen);
}

int demo_unary(struct demo_client *c, const char *method, const void *req, size_t len,
	       double timeout_s, struct demo_reply *r, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy) {
		memset(r, 0, sizeof *r);
		errf(err, errlen, "%s: out of memory for a %zu-byte request", method, len);
		return -1;
	}
	if (len)
		memcpy(copy, req, len);
	return demo_unary_owned(c, method, copy, len, timeout_s, r, err, errlen);
}

/* -------------------------------------------------- messages and methods */

static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;

	if (n > (size_t)DEMO_MAX_MESSAGE_BYTES)
		return -1;
	buf = malloc(n ? n : 1);
	if (!buf)
		return -1;
	if (protobuf_c_message_pack(m, buf) != n) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int demo_encode_count_request(const void *text, size_t len, uint8_t **out, size_t *out_len)
{
	Mpklink__Demo__CountRequest m = MPKLINK__DEMO__COUNT_REQUEST__INIT;

	/* protobuf-c only reads through this pointer while packing. */
	m.text.data = (uint8_t *)(uintptr_t)text;
	m.text.len = len;
	return pack(&m.base, out, out_len);
}

int demo_encode_echo_request(const void *payload, size_t len, uint32_t reply_bytes,
			     uint8_t **out, size_t *out_len)
{
	Mpklink__Demo__EchoRequest m = MPKLINK__DEMO__ECHO_REQUEST__INIT;

	m.payload.data = (uint8_t *)(uintptr_t)payload;
	m.payload.len = len;
	m.reply_bytes = reply_bytes;
	return pack(&m.base, out, out_len);
}

int demo_encode_health_request(const char *service, uint8_t **out, size_t *out_len)
{
	Grpc__Health__V1__HealthCheckRequest m = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	m.service = (char *)(uintptr_t)(service ? service : "");
	return pack(&m.base, out, out_len);
}

int demo_decode_count_reply(const uint8_t *buf, size_t len, uint64_t *words)
{
	Mpklink__Demo__CountReply *m = mpklink__demo__count_reply__unpack(NULL, len, buf);

	if (!m)
		return -1;
	*words = m->words;
	mpklink__demo__count_reply__free_unpacked(m, NULL);
	return 0;
}

int demo_decode_echo_reply(const uint8_t *buf, size_t len, uint8_t **payload, size_t *plen)
{
	Mpklink__Demo__EchoReply *m = mpklink__demo__echo_reply__unpack(NULL, len, buf);
	uint8_t *p;

	if (!m)
		return -1;
	p = malloc(m->payload.len ? m->payload.len : 1);
	if (!p) {
		mpklink__demo__echo_reply__free_unpacked(m, NULL);
		return -1;
	}
	if (m->payload.len)
		memcpy(p, m->payload.data, m->payload.len);
	*payload = p;
	*plen = m->payload.len;
	mpklink__demo__echo_reply__free_unpacked(m, NULL);
	return 0;
}

int demo_decode_health_reply(const uint8_t *buf, size_t len, int *status)
{
	Grpc__Health__V1__HealthCheckResponse *m =
		grpc__health__v1__health_check_response__unpack(NULL, len, buf);

	if (!m)
		return -1;
	*status = (int)m->status;
	grpc__health__v1__health_check_response__free_unpacked(m, NULL);
	return 0;
}

/* Runs one call and insists on status OK with a reply message. */
static int call_ok(struct demo_client *c, const char *method, uint8_t *req, size_t len,
		   double timeout_s, struct demo_reply *r, char *err, size_t errlen)
{
	if (demo_unary_owned(c, method, req, len, timeout_s, r, err, errlen) < 0)
		return -1;
	if (r->status != GRPC_STATUS_OK) {
		errf(err, errlen, "%s failed: %s (%d): %s", method, demo_status_name(r->status),
		     (int)r->status, r->details[0] ? r->details : "no message");
		demo_reply_free(r);
		return -1;
	}
	if (!r->has_message) {
		errf(err, errlen, "%s: status OK but no reply message", method);
		demo_reply_free(r);
		return -1;
	}
	return 0;
}

int demo_count(struct demo_client *c, const void *text, size_t len, double timeout_s,
	       uint64_t *words, char *err, size_t errlen)
{
	struct demo_reply r;
	uint8_t *req;
	size_t rlen;
	int rc = 0;

	if (demo_encode_count_request(text, len, &req, &rlen) < 0) {
		errf(err, errlen, "%s: cannot encode a %zu-byte text (over the %d-byte message limit, or out of memory)",
		     DEMO_METHOD_COUNT, len, DEMO_MAX_MESSAGE_BYTES);
		return -1;
	}
	if (call_ok(c, DEMO_METHOD_COUNT, req, rlen, timeout_s, &r, err, errlen) < 0)
		return -1;
	if (demo_decode_count_reply(r.data, r.len, words) < 0) {
		errf(err, errlen, "%s: the %zu-byte reply is not a CountReply", DEMO_METHOD_COUNT,
		     r.len);
		rc = -1;
	}
	demo_reply_free(&r);
	return rc;
}

int demo_echo(struct demo_client *c, const void *payload, size_t len, uint32_t reply_bytes,
	      double timeout_s, uint8_t **reply, size_t *reply_len, char *err, size_t errlen)
{
	struct demo_reply r;
	uint8_t *req;
	size_t rlen;
	int rc = 0;

	if (demo_encode_echo_request(payload, len, reply_bytes, &req, &rlen) < 0) {
		errf(err, errlen, "%s: cannot encode a %zu-byte payload (over the %d-byte message limit, or out of memory)",
		     DEMO_METHOD_ECHO, len, DEMO_MAX_MESSAGE_BYTES);
		return -1;
	}
	if (call_ok(c, DEMO_METHOD_ECHO, req, rlen, timeout_s, &r, err, errlen) < 0)
		return -1;
	if (demo_decode_echo_reply(r.data, r.len, reply, reply_len) < 0) {
		errf(err, errlen, "%s: the %zu-byte reply is not an EchoReply", DEMO_METHOD_ECHO,
		     r.len);
		rc = -1;
	}
	demo_reply_free(&r);
	return rc;
}

int demo_health(struct demo_client *c, const char *service, double timeout_s, int *status,
		char *err, size_t errlen)
{
	struct demo_reply r;
	uint8_t *req;
	size_t rlen;
	int rc = 0;

	if (demo_encode_health_request(service, &req, &rlen) < 0) {
		errf(err, errlen, "%s: cannot encode the request", DEMO_METHOD_HEALTH);
		return -1;
	}
	if (call_ok(c, DEMO_METHOD_HEALTH, req, rlen, timeout_s, &r, err, errlen) < 0)
		return -1;
	if (demo_decode_health_reply(r.data, r.len, status) < 0) {
		errf(err, errlen, "%s: the %zu-byte reply is not a HealthCheckResponse",
		     DEMO_METHOD_HEALTH, r.len);
		rc = -1;
	}
	demo_reply_free(&r);
	return rc;
}

/* ---------------------------------------------- what both sides agree on */

int demo_is_space(uint8_t b)
{
	return b == ' ' || (b >= '\t' && b <= '\r');
}

#ifdef __SSE2__
/* Bit i set when p[i] is one of the six spaces: ' ' or '\t'..'\r'. */
static inline uint64_t space_mask64(const uint8_t *p)
{
	const __m128i sp = _mm_set1_epi8(' ');
	/* '\t'..'\r' are 9..13: (b - 9) unsigned < 5, done as signed after
	 * a bias, since SSE2 compares only signed bytes. */
	const __m128i bias = _mm_set1_epi8((char)(0x80 - 9));
	const __m128i top = _mm_set1_epi8((char)(0x80 + 5));
	uint64_t m = 0;

	for (int k = 0; k < 4; k++) {
		__m128i b = _mm_loadu_si128((const __m128i *)(p + 16 * k));
		__m128i ctl = _mm_cmplt_epi8(_mm_add_epi8(b, bias), top);
		__m128i is = _mm_or_si128(_mm_cmpeq_epi8(b, sp), ctl);

		m |= (uint64_t)(uint16_t)_mm_movemask_epi8(is) << (16 * k);
	}
	return m;
}
#endif

/* Two versions, picked at load time: with the POPCNT instruction (any
 * x86-64 since 2008), and without, where GCC calls libgcc's popcount (9%
 * of the server's time at 10^6 words). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("popcnt", "default")))
#endif
uint64_t demo_count_words(const void *text, size_t len)
{
	static const uint8_t space[256] = {
		[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1,
	};
	const uint8_t *p = text;
	uint64_t n = 0;
	unsigned prev = 1;
	size_t i = 0;

#ifdef __SSE2__
	/* 64 bytes a step: a word starts at each non-space whose predecessor
	 * is a space. The byte loop did 1 byte a cycle and was 28% of the
	 * server's time on 10^7 words (perf); this is the count at memory
	 * speed. */
	for (; i + 64 <= len; i += 64) {
		uint64_t sp = space_mask64(p + i);

		n += (uint64_t)__builtin_popcountll(~sp & ((sp << 1) | prev));
		prev = (unsigned)(sp >> 63);
	}
#endif
	/* The tail, and everything without SSE2; branch-free. */
	for (; i < len; i++) {
		unsigned cur = space[p[i]];

		n += prev & (cur ^ 1u);
		prev = cur;
	}
	return n;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* xorshift64*: fast, and the same sequence on every platform. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

static uint64_t rng_seed(uint64_t seed)
{
	uint64_t s = splitmix64(&seed);

	return s ? s : 1; /* xorshift's one fixed point */
}

/* Spaces dominate, as in prose; every kind of whitespace occurs. */
static const uint8_t ws_kinds[16] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
				     ' ', '\n', '\n', '\t', '\t', '\r', '\v', '\f'};

#define GEN_MAX_WORD 12u
#define GEN_MAX_SEP  3u

static size_t put_space(uint8_t *p, uint64_t r)
{
	size_t n = 1 + (size_t)(r % GEN_MAX_SEP);

	r /= GEN_MAX_SEP;
	for (size_t i = 0; i < n; i++, r >>= 4)
		p[i] = ws_kinds[r & 15];
	return n;
}

int demo_gen_text(uint64_t words, uint64_t seed, uint8_t **out, size_t *len)
{
	uint64_t s = rng_seed(seed);
	uint8_t *buf, *p, *shrunk;
	size_t cap;

	/* Bound: leading and trailing whitespace, and each word at its
	 * longest with the longest separator. */
	if (words > (SIZE_MAX - 2 * GEN_MAX_SEP - 1) / (GEN_MAX_WORD + GEN_MAX_SEP))
		return -1;
	cap = 2 * GEN_MAX_SEP + (size_t)words * (GEN_MAX_WORD + GEN_MAX_SEP) + 1;
	buf = malloc(cap);
	if (!buf)
		return -1;
	p = buf;
	if (rng_next(&s) % 4 == 0)
		p += put_space(p, rng_next(&s));
	for (uint64_t w = 0; w < words; w++) {
		uint64_t r = rng_next(&s);
		size_t wl = 1 + (size_t)(r % GEN_MAX_WORD);

		if (w > 0)
			p += put_space(p, r >> 32);
		r = rng_next(&s);
		for (size_t i = 0; i < wl; i++) {
			if (i == 8)
				r = rng_next(&s);
			p[i] = (uint8_t)(0x21 + (r & 0xff) % 94);
			r >>= 8;
		}
		p += wl;
	}
	if (words > 0 && rng_next(&s) % 4 == 0)
		p += put_space(p, rng_next(&s));
	*len = (size_t)(p - buf);
	/* Give back the slack of the bound (about half of it). */
	shrunk = realloc(buf, *len ? *len : 1);
	*out = shrunk ? shrunk : buf;
	return 0;
}

/* The pattern repeats every 256 bytes, so both ends work a period at a time
 * with memcpy/memcmp: a byte loop here cost the 1 MiB echo more CPU than
 * the transport under test did (perf: 29% of the samples of a compare run). */
enum { PATTERN_PERIOD = 256 };

static void pattern_period(uint8_t period[PATTERN_PERIOD])
{
	for (size_t i = 0; i < PATTERN_PERIOD; i++)
		period[i] = demo_pattern_byte(i);
}

void demo_fill_pattern(uint8_t *buf, size_t len)
{
	size_t done;

	if (len <= PATTERN_PERIOD) {
		for (size_t i = 0; i < len; i++)
			buf[i] = demo_pattern_byte(i);
		return;
	}
	pattern_period(buf);
	/* Doubling: each copy is a whole number of periods of what is there. */
	for (done = PATTERN_PERIOD; done < len; done *= 2)
		memcpy(buf + done, buf, len - done < done ? len - done : done);
}

size_t demo_check_pattern(const uint8_t *buf, size_t len)
{
	uint8_t period[PATTERN_PERIOD];
	size_t off = 0;

	pattern_period(period);
	for (; off + PATTERN_PERIOD <= len; off += PATTERN_PERIOD)
		if (memcmp(buf + off, period, PATTERN_PERIOD) != 0)
			break;
	for (; off < len; off++)
		if (buf[off] != demo_pattern_byte(off))
			return off;
	return len;
}

void demo_fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = rng_seed(seed);
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t r = rng_next(&s);

		memcpy(buf + i, &r, 8);
	}
	if (i < len) {
		uint64_t r = rng_next(&s);

		memcpy(buf + i, &r, len - i);
	}
}
