/* SPDX-License-Identifier: MIT */
/*
 * mpklink-demo-server: the MPKLink paper's word-count service on gRPC's C
 * core (completion queues, no C++), an ordinary gRPC program that
 * mpklink-run can upgrade without its knowing.
 *
 * One thread runs one completion queue. Each known method keeps a few
 * registered-call requests outstanding, with the request message read by gRPC
 * before the call is handed to us; each arrival is answered at once with one
 * batch (initial metadata, reply, status, close), and the slot it used is
 * requested again, so any number of calls may be in flight. Handling is
 * synchronous: a 10^7-word count holds the queue for its ~50 ms, which on
 * this project's 2-CPU machines is cheaper than a hand-off to another thread.
 *
 * SIGTERM and SIGINT are blocked in every thread (gRPC's included) and taken
 * by sigwait in a thread of ours, which starts the server's shutdown; the
 * queue loop sees the shutdown's tag, and the process exits 0. Calls still
 * running DRAIN_GRACE_S seconds later are cancelled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "health.pb-c.h"
#include "rpc.h"
#include "wordcount.pb-c.h"

#define PROG "mpklink-demo-server"
#define DEFAULT_LISTEN "127.0.0.1:50051"
#define REQUESTS_PER_METHOD 4
#define DRAIN_GRACE_S 5

enum method { M_COUNT, M_ECHO, M_HEALTH, M_OTHER, M_NUM };

static const char *const method_name[M_NUM] = {
	[M_COUNT] = "Count", [M_ECHO] = "Echo", [M_HEALTH] = "Health/Check",
	[M_OTHER] = "unknown methods",
};

/* One call, from the request for it to its final batch. Its address is the
 * tag of both. */
struct rpc {
	enum method m;
	int replying; /* 0: waiting for a call; 1: the final batch runs */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details; /* M_OTHER only: which method was asked */
	grpc_byte_buffer *payload;  /* the request message, registered methods */
	grpc_byte_buffer *reply;
	int cancelled;
};

struct server {
	grpc_server *srv;
	grpc_completion_queue *cq;
	void *registered[M_OTHER];
	int lie;

	uint64_t ok[M_NUM], failed[M_NUM];
	long live; /* struct rpc allocated: all must be freed by exit */

	/* Shutdown, between the signal thread and the queue loop. */
	sigset_t sigs;
	pthread_t sig_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int drained;
	int signo;
	int failed_inside; /* the stop was ours, not a signal's */
};

/*
 * The demo's message limits (as demo_channel_args), and no SO_REUSEPORT: gRPC sets it by
 * default, so a second server on a busy port would share it silently and
 * take half the calls, where a port conflict should be an error.
 */
static const grpc_channel_args *server_args(void)
{
	/* grpc_arg's key is char *, not const: the table cannot be const. */
	static grpc_arg args[] = {
		{.type = GRPC_ARG_INTEGER,
		 .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 .value.integer = DEMO_MAX_MESSAGE_BYTES},
		{.type = GRPC_ARG_INTEGER,
		 .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		 .value.integer = DEMO_MAX_MESSAGE_BYTES},
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
	};
	static const grpc_channel_args set = {
		.num_args = sizeof args / sizeof args[0],
		.args = args,
	};
	return &set;
}

/* The tag of grpc_server_shutdown_and_notify: an address no rpc has. */
static char shutdown_tag;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--listen ADDR]\n"
		"\n"
		"The word-count demo service (mpklink.demo.WordCount: Count, Echo; and\n"
		"grpc.health.v1.Health/Check), on gRPC's C core with insecure credentials.\n"
		"\n"
		"  --listen ADDR  HOST:PORT or unix:PATH (default " DEFAULT_LISTEN ").\n"
		"                 Port 0 picks a free port.\n"
		"  --help         this text\n"
		"\n"
		"When ready it prints one line to stdout, `listening on ADDR`, with the\n"
		"port it bound. SIGTERM or SIGINT: stops taking calls, finishes those\n"
		"running (cancelling any still running after %d s) and exits 0.\n"
		"Messages of up to %d bytes are accepted and sent.\n"
		"\n"
		"Testing only: --lie adds 1 to every word count and flips a bit in the\n"
		"last byte of every non-empty Echo reply, so that tests can see the\n"
		"client catch a wrong answer. Never use it otherwise.\n",
		DRAIN_GRACE_S, DEMO_MAX_MESSAGE_BYTES);
}

/*
 * The address we print: ADDR with the port gRPC bound (port 0 asks for
 * any). A unix: address has no port; gRPC returns 1 for it.
 */
static void bound_address(const char *addr, int port, char *out, size_t outlen)
{
	const char *colon = strrchr(addr, ':');

	if (strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0 ||
	    !colon) {
		snprintf(out, outlen, "%s", addr);
		return;
	}
	snprintf(out, outlen, "%.*s:%d", (int)(colon - addr), addr, port);
}

/* A syntax check, so that a mistyped address is a usage error naming it
 * rather than gRPC's log line. */
static int address_ok(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	long port;

	if (strncmp(addr, "unix:", 5) == 0)
		return addr[5] != '\0';
	if (strncmp(addr, "unix-abstract:", 14) == 0)
		return addr[14] != '\0';
	if (!colon || colon == addr)
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return colon[1] != '\0' && *end == '\0' && errno == 0 && port >= 0 && port <= 65535;
}

/* ------------------------------------------------------------- handlers */

/* A handler's verdict: status, its message, and (when OK) the reply. */
struct verdict {
	grpc_status_code status;
	char msg[256];
	uint8_t *reply;
	size_t len;
};

static void reject(struct verdict *v, grpc_status_code st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reject(struct verdict *v, grpc_status_code st, const char *fmt, ...)
{
	va_list ap;

	v->status = st;
	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof v->msg, fmt, ap);
	va_end(ap);
}

/* The request's bytes; NULL with *v set when there are none to be had. */
static uint8_t *request_bytes(struct rpc *r, struct verdict *v, size_t *len)
{
	uint8_t *buf;

	if (!r->payload) {
		reject(v, GRPC_STATUS_INVALID_ARGUMENT, "%s: no request message",
		       method_name[r->m]);
		return NULL;
	}
	if (demo_bb_flatten(r->payload, &buf, len) < 0) {
		reject(v, GRPC_STATUS_RESOURCE_EXHAUSTED,
		       "%s: out of memory for the %zu-byte request", method_name[r->m],
		       grpc_byte_buffer_length(r->payload));
		return NULL;
	}
	/* The flat copy is all we need; do not hold a 70 MB text twice. */
	grpc_byte_buffer_destroy(r->payload);
	r->payload = NULL;
	return buf;
}

static void pack_reply(struct verdict *v, const ProtobufCMessage *m, const char *what)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	v->reply = malloc(n ? n : 1);
	if (!v->reply) {
		reject(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory for the reply", what);
		return;
	}
	v->len = protobuf_c_message_pack(m, v->reply);
	v->status = GRPC_STATUS_OK;
}

static void handle_count(struct server *s, struct rpc *r, struct verdict *v)
{
	Mpklink__Demo__CountReply out = MPKLINK__DEMO__COUNT_REPLY__INIT;
	Mpklink__Demo__CountRequest *in;
	size_t len;
	uint8_t *buf = request_bytes(r, v, &len);

	if (!buf)
		return;
	in = mpklink__demo__count_request__unpack(NULL, len, buf);
	free(buf);
	if (!in) {
		reject(v, GRPC_STATUS_INVALID_ARGUMENT,
		       "Count: the %zu-byte request is not a valid mpklink.demo.CountRequest", len);
		return;
	}
	out.words = demo_count_words(in->text.data, in->text.len);
	if (s->lie)
		out.words++;
	mpklink__demo__count_request__free_unpacked(in, NULL);
	pack_reply(v, &out.base, "Count");
}

static void handle_echo(struct server *s, struct rpc *r, struct verdict *v)
{
	Mpklink__Demo__EchoReply out = MPKLINK__DEMO__ECHO_REPLY__INIT;
	Mpklink__Demo__EchoRequest *in;
	uint8_t *pattern = NULL;
	size_t len;
	uint8_t *buf = request_bytes(r, v, &len);

	if (!buf)
		return;
	in = mpklink__demo__echo_request__unpack(NULL, len, buf);
	free(buf);
	if (!in) {
		reject(v, GRPC_STATUS_INVALID_ARGUMENT,
		       "Echo: the %zu-byte request is not a valid mpklink.demo.EchoRequest", len);
		return;
	}
	if (in->reply_bytes > (uint32_t)DEMO_MAX_ECHO_REPLY) {
		reject(v, GRPC_STATUS_INVALID_ARGUMENT,
		       "Echo: reply_bytes %" PRIu32 " is over the limit of %d", in->reply_bytes,
		       DEMO_MAX_ECHO_REPLY);
	} else if (in->reply_bytes == 0) {
		out.payload = in->payload;
		if (s->lie && out.payload.len)
			out.payload.data[out.payload.len - 1] ^= 0x20;
		pack_reply(v, &out.base, "Echo");
	} else if (!(pattern = malloc(in->reply_bytes))) {
		reject(v, GRPC_STATUS_RESOURCE_EXHAUSTED,
		       "Echo: out of memory for a %" PRIu32 "-byte reply", in->reply_bytes);
	} else {
		demo_fill_pattern(pattern, in->reply_bytes);
		if (s->lie)
			pattern[in->reply_bytes - 1] ^= 0x20;
		out.payload.data = pattern;
		out.payload.len = in->reply_bytes;
		pack_reply(v, &out.base, "Echo");
	}
	free(pattern);
	mpklink__demo__echo_request__free_unpacked(in, NULL);
}

static void handle_health(struct rpc *r, struct verdict *v)
{
	Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	Grpc__Health__V1__HealthCheckRequest *in;
	size_t len;
	uint8_t *buf = request_bytes(r, v, &len);

	if (!buf)
		return;
	in = grpc__health__v1__health_check_request__unpack(NULL, len, buf);
	free(buf);
	if (!in) {
		reject(v, GRPC_STATUS_INVALID_ARGUMENT,
		       "Health/Check: the %zu-byte request is not a valid grpc.health.v1.HealthCheckRequest",
		       len);
		return;
	}
	/* The protocol's rule: "" is the server as a whole; a service the
	 * server does not know is NOT_FOUND, not a status in the reply. */
	if (in->service[0] == '\0' || strcmp(in->service, DEMO_SERVICE) == 0) {
		out.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		pack_reply(v, &out.base, "Health/Check");
	} else {
		reject(v, GRPC_STATUS_NOT_FOUND, "Health/Check: unknown service '%.100s'",
		       in->service);
	}
	grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

static void handle_other(struct rpc *r, struct verdict *v)
{
	grpc_slice m = r->details.method;

	reject(v, GRPC_STATUS_UNIMPLEMENTED, "unknown method '%.*s'",
	       (int)(GRPC_SLICE_LENGTH(m) > 200 ? 200 : GRPC_SLICE_LENGTH(m)),
	       (const char *)GRPC_SLICE_START_PTR(m));
}

/* ----------------------------------------------------------- the loop */

static void rpc_free(struct server *s, struct rpc *r)
{
	if (r->call)
		grpc_call_unref(r->call);
	if (r->payload)
		grpc_byte_buffer_destroy(r->payload);
	if (r->reply)
		grpc_byte_buffer_destroy(r->reply);
	grpc_metadata_array_destroy(&r->md);
	if (r->m == M_OTHER)
		grpc_call_details_destroy(&r->details);
	free(r);
	s->live--;
}

/* Asks gRPC for the next call of method m. */
static int request(struct server *s, enum method m)
{
	struct rpc *r = calloc(1, sizeof *r);
	grpc_call_error ce;

	if (!r) {
		fprintf(stderr, PROG ": out of memory for a call of %s\n", method_name[m]);
		return -1;
	}
	s->live++;
	r->m = m;
	grpc_metadata_array_init(&r->md);
	if (m == M_OTHER) {
		grpc_call_details_init(&r->details);
		ce = grpc_server_request_call(s->srv, &r->call, &r->details, &r->md, s->cq, s->cq,
					      r);
	} else {
		ce = grpc_server_request_registered_call(s->srv, s->registered[m], &r->call,
							 &r->deadline, &r->md, &r->payload, s->cq,
							 s->cq, r);
	}
	if (ce != GRPC_CALL_OK) {
		fprintf(stderr, PROG ": cannot request a call of %s: %s\n", method_name[m],
			grpc_call_error_to_string(ce));
		rpc_free(s, r);
		return -1;
	}
	return 0;
}

/* A call arrived: answer it with one batch. */
static void reply(struct server *s, struct rpc *r)
{
	struct verdict v = {.status = GRPC_STATUS_INTERNAL};
	grpc_slice details;
	grpc_op ops[4];
	size_t n = 0;
	grpc_call_error ce;

	switch (r->m) {
	case M_COUNT: handle_count(s, r, &v); break;
	case M_ECHO: handle_echo(s, r, &v); break;
	case M_HEALTH: handle_health(r, &v); break;
	default: handle_other(r, &v); break;
	}
	if (v.status == GRPC_STATUS_OK) {
		r->reply = demo_bb_take(v.reply, v.len);
		s->ok[r->m]++;
	} else {
		free(v.reply);
		s->failed[r->m]++;
	}

	memset(ops, 0, sizeof ops);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (r->reply) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = r->reply;
	}
	details = grpc_slice_from_copied_string(v.msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = v.status;
	ops[n++].data.send_status_from_server.status_details = v.msg[0] ? &details : NULL;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;

	r->replying = 1;
	ce = grpc_call_start_batch(r->call, ops, n, r, NULL);
	grpc_slice_unref(details);
	if (ce != GRPC_CALL_OK) {
		fprintf(stderr, PROG ": cannot answer a call of %s: %s\n", method_name[r->m],
			grpc_call_error_to_string(ce));
		rpc_free(s, r);
	}
}

/* Returns when the server has shut down: 0, or -1 if the queue broke. */
static int serve(struct server *s)
{
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							   NULL);
		struct rpc *r;

		if (ev.type != GRPC_OP_COMPLETE) {
			fprintf(stderr, PROG ": completion queue ended unexpectedly (event %d)\n",
				(int)ev.type);
			return -1;
		}
		if (ev.tag == &shutdown_tag)
			return 0;
		r = ev.tag;
		if (r->replying || !ev.success) {
			/* The final batch is done (or a request was
			 * withdrawn by the shutdown): the call is over. */
			rpc_free(s, r);
			continue;
		}
		/* Re-arm first, so the next call of this method does not wait
		 * for this one. A failure here is the shutdown's. */
		request(s, r->m);
		reply(s, r);
	}
}

/* ------------------------------------------------------------ shutdown */

static void *signal_thread(void *arg)
{
	struct server *s = arg;
	struct timespec until;
	int sig = 0;

	if (sigwait(&s->sigs, &sig) != 0)
		sig = SIGTERM;
	pthread_mutex_lock(&s->mu);
	s->signo = sig;
	pthread_mutex_unlock(&s->mu);
	grpc_server_shutdown_and_notify(s->srv, s->cq, &shutdown_tag);

	/* A client that never finishes sending must not keep us up. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DRAIN_GRACE_S;
	pthread_mutex_lock(&s->mu);
	while (!s->drained) {
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) {
			if (!s->drained) {
				fprintf(stderr,
					PROG ": calls still running %d s after the shutdown began; cancelling them\n",
					DRAIN_GRACE_S);
				grpc_server_cancel_all_calls(s->srv);
			}
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Ends the signal thread's wait, and with it the thread. */
static void drained(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	s->drained = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->sig_thread, NULL);
}

static void summary(const struct server *s)
{
	char sig[32];

	if (s->failed_inside)
		snprintf(sig, sizeof sig, "an error");
	else if (s->signo == SIGTERM || s->signo == SIGINT)
		snprintf(sig, sizeof sig, "%s", s->signo == SIGTERM ? "SIGTERM" : "SIGINT");
	else
		snprintf(sig, sizeof sig, "an error");
	fprintf(stderr, PROG ": stopped by %s; calls answered OK / with an error status:", sig);
	for (int m = 0; m < M_NUM; m++)
		fprintf(stderr, "%s %s %" PRIu64 "/%" PRIu64, m ? "," : "", method_name[m], s->ok[m],
			s->failed[m]);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"lie", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char *const paths[M_OTHER] = {
		[M_COUNT] = DEMO_METHOD_COUNT,
		[M_ECHO] = DEMO_METHOD_ECHO,
		[M_HEALTH] = DEMO_METHOD_HEALTH,
	};
	struct server s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	grpc_server_credentials *creds;
	const char *addr = DEFAULT_LISTEN;
	char shown[512];
	int c, port, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': addr = optarg; break;
		case 'L': s.lie = 1; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, PROG ": option '%s' is unknown or lacks its value\n"
					"Try '" PROG " --help'.\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\nTry '" PROG " --help'.\n",
			argv[optind]);
		return 2;
	}
	if (!address_ok(addr)) {
		fprintf(stderr, PROG ": --listen '%s': expected HOST:PORT (port 0..65535) or unix:PATH\n",
			addr);
		return 2;
	}

	/* Before grpc_init and our thread: every thread inherits the mask,
	 * so only sigwait ever takes these. */
	demo_malloc_keep();
	sigemptyset(&s.sigs);
	sigaddset(&s.sigs, SIGTERM);
	sigaddset(&s.sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &s.sigs, NULL);

	grpc_init();
	s.cq = grpc_completion_queue_create_for_next(NULL);
	s.srv = grpc_server_create(server_args(), NULL);
	grpc_server_register_completion_queue(s.srv, s.cq, NULL);
	for (int m = 0; m < M_OTHER; m++) {
		s.registered[m] = grpc_server_register_method(
			s.srv, paths[m], NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!s.registered[m]) {
			fprintf(stderr, PROG ": cannot register %s\n", paths[m]);
			return 1;
		}
	}
	creds = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(s.srv, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		fprintf(stderr, PROG ": cannot listen on '%s' (in use, or not an address of this host)\n",
			addr);
		grpc_server_shutdown_and_notify(s.srv, s.cq, &shutdown_tag);
		rc = 1;
		goto shut;
	}
	grpc_server_start(s.srv);
	for (int i = 0; i < M_NUM * REQUESTS_PER_METHOD && rc == 0; i++)
		if (request(&s, (enum method)(i % M_NUM)) < 0)
			rc = 1;
	if (pthread_create(&s.sig_thread, NULL, signal_thread, &s) != 0) {
		fprintf(stderr, PROG ": cannot create the signal thread\n");
		grpc_server_shutdown_and_notify(s.srv, s.cq, &shutdown_tag);
		rc = 1;
		goto shut;
	}
	if (rc != 0) {
		s.failed_inside = 1;
		pthread_kill(s.sig_thread, SIGTERM);
	} else {
		bound_address(addr, port, shown, sizeof shown);
		printf("listening on %s\n", shown);
		fflush(stdout);
	}

	if (serve(&s) < 0) {
		/* The queue broke: have the signal thread shut the server
		 * down as for SIGTERM, and wait for the shutdown's tag. */
		rc = 1;
		s.failed_inside = 1;
		pthread_kill(s.sig_thread, SIGTERM);
		for (;;) {
			grpc_event ev = grpc_completion_queue_next(
				s.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

			if (ev.type != GRPC_OP_COMPLETE || ev.tag == &shutdown_tag)
				break;
			rpc_free(&s, ev.tag);
		}
	}
	drained(&s);
	summary(&s);
	goto destroy;

shut:
	/* Not started, or no signal thread: wait for the shutdown here. */
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s.cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							   NULL);

		if (ev.type != GRPC_OP_COMPLETE || ev.tag == &shutdown_tag)
			break;
		rpc_free(&s, ev.tag);
	}
destroy:
	grpc_server_destroy(s.srv);
	grpc_completion_queue_shutdown(s.cq);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s.cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							   NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE && ev.tag != &shutdown_tag)
			rpc_free(&s, ev.tag);
	}
	grpc_completion_queue_destroy(s.cq);
	grpc_shutdown();
	if (s.live != 0) {
		fprintf(stderr, PROG ": %ld calls were never completed by gRPC\n", s.live);
		rc = 1;
	}
	return rc;
}
