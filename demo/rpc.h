/* SPDX-License-Identifier: MIT */
/*
 * rpc.h: the word-count demo's gRPC C-core helpers, and THE reuse point for
 * anything that talks to mpklink-demo-server: its own client, the tests, and
 * `mpklink-bench grpc`. Link the static library `mpklink_demo_rpc`; it
 * carries the protobuf-c code generated from wordcount.proto and
 * health.proto, and the generated headers ("wordcount.pb-c.h",
 * "health.pb-c.h") are on its public include path.
 *
 * What lives here, so that nobody rewrites it:
 *   - the method paths and the channel arguments both sides need (gRPC's
 *     default 4 MiB receive limit is far below a 10^7-word text);
 *   - a client (channel + completion queue) and a synchronous unary call with
 *     a deadline: grpc_call_start_batch with SEND_INITIAL_METADATA,
 *     SEND_MESSAGE, SEND_CLOSE_FROM_CLIENT, RECV_INITIAL_METADATA,
 *     RECV_MESSAGE and RECV_STATUS_ON_CLIENT in one batch;
 *   - byte buffers <-> flat memory, without a copy on the way out;
 *   - encoders of the three requests and decoders of the three replies, and
 *     one call per method (demo_count, demo_echo, demo_health) that does all
 *     of it and says what went wrong;
 *   - the word counter, the deterministic text generator and the echo
 *     reply pattern, which the server and the clients must agree on.
 *
 * Conventions: the caller runs grpc_init() before anything here that touches
 * gRPC, and grpc_shutdown() after closing its clients. Functions returning
 * int return 0 on success and -1 on failure; where they take `err`, they
 * write there (NUL-terminated, truncated to errlen) a message naming the
 * method and what went wrong. None of them prints anything. A
 * struct demo_client is used by one thread at a time.
 */
#ifndef MPKLINK_DEMO_RPC_H
#define MPKLINK_DEMO_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/status.h>

#define DEMO_SERVICE       "mpklink.demo.WordCount"
#define DEMO_METHOD_COUNT  "/mpklink.demo.WordCount/Count"
#define DEMO_METHOD_ECHO   "/mpklink.demo.WordCount/Echo"
#define DEMO_METHOD_HEALTH "/grpc.health.v1.Health/Check"

/*
 * The largest message either side sends or accepts, in bytes: 1 GiB, so that
 * the paper's largest request (10^8 words, ~750 MB of text) fits, and a
 * message twice that does not make a process allocate without bound.
 */
#define DEMO_MAX_MESSAGE_BYTES (1 << 30)

/* The largest Echo reply_bytes the server honours: the reply's framing
 * (a tag and a length varint) must fit in the message limit too. */
#define DEMO_MAX_ECHO_REPLY (DEMO_MAX_MESSAGE_BYTES - 16)

/* grpc.health.v1.HealthCheckResponse.ServingStatus */
enum demo_health_status {
	DEMO_HEALTH_UNKNOWN = 0,
	DEMO_HEALTH_SERVING = 1,
	DEMO_HEALTH_NOT_SERVING = 2,
	DEMO_HEALTH_SERVICE_UNKNOWN = 3,
};

/* ------------------------------------------------------------------ gRPC */

/*
 * Keeps freed memory for reuse instead of returning it to the kernel: glibc
 * serves each large buffer (a 10^7-word text is 85 MB, and passes through
 * several) from a fresh mmap and unmaps it when freed, so every call touches
 * every page anew. On this project's (paravirtualised) VMs those page faults
 * made a 10^7-word call take 1.1 s instead of 0.1 s. Costs: the process
 * keeps its peak heap (about 3x the largest message) for its life. Call it
 * first thing in main; a no-op under sanitizers, whose allocator is not
 * glibc's.
 */
void demo_malloc_keep(void);

/*
 * Channel (and server) arguments: the message limits above, both ways.
 * Static storage; valid for the life of the process.
 */
const grpc_channel_args *demo_channel_args(void);

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN_STATUS" outside the enum. */
const char *demo_status_name(grpc_status_code code);

/* A channel and the completion queue its calls complete on. */
struct demo_client {
	grpc_channel *channel;
	grpc_completion_queue *cq; /* a pluck queue: calls are synchronous */
};

/*
 * Opens an insecure channel to target ("host:port", "unix:/path", any gRPC
 * target). Connecting is lazy: an unreachable server shows up as the first
 * call's UNAVAILABLE status, not here. Fails only when gRPC will not create
 * the channel.
 */
int demo_client_open(struct demo_client *c, const char *target, char *err, size_t errlen);

/* Destroys the channel and drains the queue. Idempotent; c may be zeroed. */
void demo_client_close(struct demo_client *c);

/* The outcome of one unary call. */
struct demo_reply {
	grpc_status_code status;
	char *details;    /* the status message, malloc'd, "" when none */
	uint8_t *data;    /* the reply message, malloc'd; NULL when none */
	size_t len;
	int has_message;  /* a reply message arrived (it may be empty) */
};

/*
 * One unary call of `method` (a path such as DEMO_METHOD_COUNT) carrying the
 * already encoded request req[0..len), bounded by timeout_s seconds.
 * Returns 0 when the call completed, whatever its status (r->status; on
 * a non-OK status has_message is normally 0); -1 when gRPC refused to start
 * it (err says why; *r is then empty). Free *r with demo_reply_free in both
 * cases. The request is copied; demo_unary_owned avoids that copy.
 */
int demo_unary(struct demo_client *c, const char *method, const void *req, size_t len,
	       double timeout_s, struct demo_reply *r, char *err, size_t errlen);

/* As demo_unary, but takes req, which must come from malloc: gRPC sends it
 * from where it is and frees it when done, also when the call fails. */
int demo_unary_owned(struct demo_client *c, const char *method, uint8_t *req, size_t len,
		     double timeout_s, struct demo_reply *r, char *err, size_t errlen);

void demo_reply_free(struct demo_reply *r);

/* Byte buffers. demo_bb_take wraps a malloc'd buffer, which gRPC frees when
 * done with it (NULL: empty message). demo_bb_flatten copies a received
 * buffer's contents (decompressed) into *out, malloc'd (never NULL on
 * success, even when empty). */
grpc_byte_buffer *demo_bb_take(uint8_t *buf, size_t len);
int demo_bb_flatten(grpc_byte_buffer *bb, uint8_t **out, size_t *len);

/* -------------------------------------------------- messages and methods */

/* Encoders: *out is malloc'd (non-NULL even for an empty message). They
 * fail only when out of memory or when the message would exceed
 * DEMO_MAX_MESSAGE_BYTES. */
int demo_encode_count_request(const void *text, size_t len, uint8_t **out, size_t *out_len);
int demo_encode_echo_request(const void *payload, size_t len, uint32_t reply_bytes,
			     uint8_t **out, size_t *out_len);
int demo_encode_health_request(const char *service, uint8_t **out, size_t *out_len);

/* Decoders: -1 when buf is not a valid encoding of the reply. */
int demo_decode_count_reply(const uint8_t *buf, size_t len, uint64_t *words);
int demo_decode_echo_reply(const uint8_t *buf, size_t len, uint8_t **payload, size_t *plen);
int demo_decode_health_reply(const uint8_t *buf, size_t len, int *status);

/*
 * One call per method: encode, call, check the status, decode. Return 0 with
 * the answer, or -1 with err naming the method and the failure (a non-OK
 * status with its name and message, or an undecodable reply). None of them
 * judges the answer: comparing it with what was expected is the caller's job.
 */
int demo_count(struct demo_client *c, const void *text, size_t len, double timeout_s,
	       uint64_t *words, char *err, size_t errlen);
/* *reply is malloc'd (non-NULL on success). reply_bytes == 0: the server
 * echoes payload; > 0: it replies with reply_bytes demo_pattern bytes. */
int demo_echo(struct demo_client *c, const void *payload, size_t len, uint32_t reply_bytes,
	      double timeout_s, uint8_t **reply, size_t *reply_len, char *err, size_t errlen);
/* service "" asks about the server as a whole. A service the server does
 * not know is status NOT_FOUND (the health protocol's rule), so -1. */
int demo_health(struct demo_client *c, const char *service, double timeout_s, int *status,
		char *err, size_t errlen);

/* ---------------------------------------------- what both sides agree on */

/* Words: maximal runs of bytes other than ' ', \t, \n, \v, \f, \r. */
uint64_t demo_count_words(const void *text, size_t len);
int demo_is_space(uint8_t b);

/*
 * A deterministic text of `words` words for `seed`: words of 1..12 printable
 * ASCII characters (0x21..0x7e), separated by runs of 1..3 whitespace bytes
 * of all six kinds, with whitespace sometimes before the first word and after
 * the last. Printable words make demo_count_words and `LC_ALL=C wc -w` agree
 * on it. *out is malloc'd (non-NULL, even for 0 words). Fails only when out
 * of memory or when the text could not fit in memory at all.
 */
int demo_gen_text(uint64_t words, uint64_t seed, uint8_t **out, size_t *len);

/* Echo reply bytes: byte i is (i*31 + 7) & 0xff. */
static inline uint8_t demo_pattern_byte(size_t i)
{
	return (uint8_t)((i * 31u + 7u) & 0xffu);
}
void demo_fill_pattern(uint8_t *buf, size_t len);
/* Offset of the first byte that is not demo_pattern_byte, or len. */
size_t demo_check_pattern(const uint8_t *buf, size_t len);

/* Echo request payloads: pseudo-random bytes from seed (xorshift64*). */
void demo_fill_random(uint8_t *buf, size_t len, uint64_t seed);

#endif
