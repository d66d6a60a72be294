/* SPDX-License-Identifier: MIT */
/*
 * mpklink-bench grpc: unary calls against any gRPC server, timed one by one
 * and every answer checked. The demo's methods (Health/Check, WordCount's
 * Count and Echo) are verified exactly; a user's own method (--method
 * /pkg.Svc/Method --payload FILE) counts any OK status. compare runs this
 * subcommand as a child process for each transport, so that all of them are
 * measured by the same code (and, for mpklink, under mpklink-run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_security.h>

#include "rpc.h"
#include "stats.h"
#include "subcommands.h"
#include "util.h"

#define GPROG "mpklink-bench grpc"
#define MAX_CONCURRENCY 256
#define MAX_CALLS 100000000L

enum gmethod { M_HEALTH, M_COUNT, M_ECHO, M_CUSTOM };

struct gconf {
	const char *target;
	enum gmethod method;
	const char *path;      /* the method's path */
	uint64_t words;        /* count */
	uint64_t bytes;        /* echo: request and reply */
	const char *payload;   /* custom: file of request bytes */
	long calls;            /* 0: --seconds */
	double seconds;
	long warmup;           /* -1: default */
	int concurrency;
	int reconnect;         /* a new channel (connection) for every call */
	double timeout_s;
	uint64_t seed;
	const char *csv, *label;
	/* Derived. */
	uint8_t *req;          /* the encoded request, sent as is every call */
	size_t req_len;
	uint64_t size_bytes;   /* what the CSV's size_bytes says */
	const char *bench;     /* the CSV's bench column */
};

struct worker {
	const struct gconf *g;
	pthread_t tid;
	struct demo_client cli;
	long warmup;           /* untimed calls first */
	uint64_t *ns;          /* samples */
	size_t n, cap;
	char err[512];
	int failed;
};

static atomic_long connects_retried; /* first calls retried on a new channel */
static atomic_long calls_left;  /* --calls: timed calls not yet claimed */
static atomic_long calls_done;  /* timed calls finished, all threads */
static atomic_int stop_all;     /* a worker failed, or time is up */
static _Atomic uint64_t deadline_ns; /* --seconds: set by the first worker past the barrier */
static pthread_barrier_t start_barrier;

static void grpc_usage(FILE *f)
{
	fprintf(f,
		"Usage: " GPROG " TARGET [options]\n"
		"\n"
		"Unary calls against the gRPC server at TARGET (HOST:PORT or unix:PATH),\n"
		"each timed and its answer checked; prints p50/p90/p99/p99.9 latency (us)\n"
		"and calls/s.\n"
		"\n"
		"  --method M        health (default): grpc.health.v1.Health/Check, must be\n"
		"                    SERVING; count: the demo's WordCount/Count of a generated\n"
		"                    text of --words N words (default 1000), must answer N;\n"
		"                    echo: the demo's Echo of --bytes N bytes (default 64),\n"
		"                    asking for an N-byte reply, which must be the pattern;\n"
		"                    /pkg.Service/Method: your own method, the request's bytes\n"
		"                    (an encoded protobuf message) from --payload FILE; any\n"
		"                    OK status counts, the reply is not checked\n"
		"  --words N         words per Count call (~8.5 bytes a word)\n"
		"  --bytes N         Echo request and reply size in bytes\n"
		"  --payload FILE    request bytes for a method of your own\n"
		"  --calls N         timed calls in all (default 1000)\n"
		"  --seconds S       instead: call for S seconds\n"
		"  --concurrency C   C client threads, each with its own channel (default 1)\n"
		"  --reconnect       a new channel for every timed call: each sample is\n"
		"                    connection setup, from channel creation (TCP connect,\n"
		"                    HTTP/2 settings, and under mpklink the upgrade) to the\n"
		"                    first reply; the old channel is closed untimed\n"
		"  --warmup N        untimed calls first, in all (default calls/10, 1..1000;\n"
		"                    at least 1 per thread, which also connects)\n"
		"  --timeout S       deadline per call in seconds (default 60)\n"
		"  --seed S          seed of the generated text or payload (default 1)\n"
		"  --csv FILE        write a row: bench,transport,size_bytes,p50_us,p99_us,\n"
		"                    mbytes_per_s (bench: the method; transport: --label)\n"
		"  --label L         the CSV's transport column (default grpc)\n"
		"\n"
		"size_bytes is the request payload: echo bytes, text bytes, the payload file,\n"
		"or the encoded Health request. mbytes_per_s is size_bytes x calls/s / 10^6.\n"
		"Latency is per call: the request's copy into gRPC, the call, the reply's\n"
		"decoding and check (the text is generated and encoded once, untimed).\n"
		"Percentiles are nearest-rank: p of n samples is sorted[ceil(p*n)-1].\n"
		"\n"
		"Exit status: 0 every answer right; 1 a call failed or an answer was wrong\n"
		"(the message names expected and got); 2 bad usage.\n"
		"\n"
		"Examples:\n"
		"  " GPROG " 127.0.0.1:50051\n"
		"  " GPROG " unix:/tmp/wc.sock --method count --words 100000 --calls 200\n"
		"  " GPROG " 127.0.0.1:50051 --method echo --bytes 65536 --seconds 5 --concurrency 2\n"
		"  " GPROG " 127.0.0.1:8080 --method /shop.Cart/Get --payload req.bin\n");
}

static int gusage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int gusage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(GPROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" GPROG " --help'.\n", stderr);
	return 2;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 86400)
		return -1;
	*out = v;
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t r;

		if (n == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 65536;
			if (cap > (size_t)DEMO_MAX_MESSAGE_BYTES + 1) {
				free(buf);
				fclose(f);
				return -EFBIG;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Encodes the request once; every call sends a copy of it. */
static int prepare(struct gconf *g)
{
	uint8_t *text = NULL, *payload;
	size_t tlen;
	int r;

	switch (g->method) {
	case M_HEALTH:
		g->path = DEMO_METHOD_HEALTH;
		g->bench = "health";
		if (demo_encode_health_request("", &g->req, &g->req_len) < 0)
			return -ENOMEM;
		g->size_bytes = g->req_len;
		return 0;
	case M_COUNT:
		g->path = DEMO_METHOD_COUNT;
		g->bench = "wordcount";
		if (demo_gen_text(g->words, g->seed, &text, &tlen) < 0)
			return -ENOMEM;
		r = demo_encode_count_request(text, tlen, &g->req, &g->req_len);
		free(text);
		if (r < 0)
			return -EFBIG;
		g->size_bytes = tlen;
		return 0;
	case M_ECHO:
		g->path = DEMO_METHOD_ECHO;
		g->bench = "echo";
		payload = malloc(g->bytes ? g->bytes : 1);
		if (!payload)
			return -ENOMEM;
		demo_fill_random(payload, g->bytes, g->seed);
		r = demo_encode_echo_request(payload, g->bytes, (uint32_t)g->bytes, &g->req,
					     &g->req_len);
		free(payload);
		if (r < 0)
			return -EFBIG;
		g->size_bytes = g->bytes;
		return 0;
	case M_CUSTOM:
		g->bench = "custom";
		r = read_file(g->payload, &g->req, &g->req_len);
		if (r < 0)
			return r;
		g->size_bytes = g->req_len;
		return 0;
	}
	return -EINVAL;
}

/*
 * demo_client_open, but with a subchannel pool of the channel's own: gRPC
 * otherwise shares one connection among all channels to a target, and
 * --concurrency promises a connection per thread.
 */
static int open_client(struct demo_client *c, const char *target, char *err, size_t errlen)
{
	const grpc_channel_args *base = demo_channel_args();
	grpc_arg args[32];
	grpc_channel_args a = {0, args};
	grpc_channel_credentials *creds;

	memset(c, 0, sizeof(*c));
	if (base->num_args >= sizeof(args) / sizeof(args[0]))
		return demo_client_open(c, target, err, errlen);
	memcpy(args, base->args, base->num_args * sizeof(args[0]));
	a.num_args = base->num_args;
	args[a.num_args].type = GRPC_ARG_INTEGER;
	args[a.num_args].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[a.num_args].value.integer = 1;
	a.num_args++;
	creds = grpc_insecure_credentials_create();
	if (!creds) {
		snprintf(err, errlen, "grpc_insecure_credentials_create failed");
		return -1;
	}
	c->channel = grpc_channel_create(target, creds, &a);
	grpc_channel_credentials_release(creds);
	if (!c->channel) {
		snprintf(err, errlen, "cannot create a channel to '%s'", target);
		return -1;
	}
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!c->cq) {
		snprintf(err, errlen, "cannot create a completion queue");
		demo_client_close(c);
		return -1;
	}
	return 0;
}

/* One call, checked. 0, or -1 with w->err set. */
static int one_call(struct worker *w)
{
	const struct gconf *g = w->g;
	struct demo_reply rep;
	char err[256];
	int ok = -1;

	if (demo_unary(&w->cli, g->path, g->req, g->req_len, g->timeout_s, &rep, err,
		       sizeof(err)) < 0) {
		snprintf(w->err, sizeof(w->err), "%s: %s", g->path, err);
		demo_reply_free(&rep);
		return -1;
	}
	if (rep.status != GRPC_STATUS_OK) {
		snprintf(w->err, sizeof(w->err), "%s: status %s%s%s", g->path,
			 demo_status_name(rep.status), rep.details && *rep.details ? ": " : "",
			 rep.details ? rep.details : "");
		goto out;
	}
	switch (g->method) {
	case M_HEALTH: {
		int st;

		if (!rep.has_message || demo_decode_health_reply(rep.data, rep.len, &st) < 0) {
			snprintf(w->err, sizeof(w->err), "%s: undecodable reply (%zu bytes)",
				 g->path, rep.len);
			goto out;
		}
		if (st != DEMO_HEALTH_SERVING) {
			snprintf(w->err, sizeof(w->err),
				 "%s: expected status SERVING (1), got %d", g->path, st);
			goto out;
		}
		break;
	}
	case M_COUNT: {
		uint64_t words;

		if (!rep.has_message || demo_decode_count_reply(rep.data, rep.len, &words) < 0) {
			snprintf(w->err, sizeof(w->err), "%s: undecodable reply (%zu bytes)",
				 g->path, rep.len);
			goto out;
		}
		if (words != g->words) {
			snprintf(w->err, sizeof(w->err), "%s: wrong answer: expected %llu words, got %llu",
				 g->path, (unsigned long long)g->words, (unsigned long long)words);
			goto out;
		}
		break;
	}
	case M_ECHO: {
		uint8_t *p = NULL;
		size_t plen = 0, bad;

		if (!rep.has_message || demo_decode_echo_reply(rep.data, rep.len, &p, &plen) < 0) {
			snprintf(w->err, sizeof(w->err), "%s: undecodable reply (%zu bytes)",
				 g->path, rep.len);
			goto out;
		}
		if (plen != g->bytes) {
			snprintf(w->err, sizeof(w->err),
				 "%s: wrong answer: expected a %llu-byte reply, got %zu bytes", g->path,
				 (unsigned long long)g->bytes, plen);
			free(p);
			goto out;
		}
		bad = demo_check_pattern(p, plen);
		if (bad != plen) {
			snprintf(w->err, sizeof(w->err),
				 "%s: wrong answer: reply byte %zu: expected 0x%02x, got 0x%02x",
				 g->path, bad, demo_pattern_byte(bad), p[bad]);
			free(p);
			goto out;
		}
		free(p);
		break;
	}
	case M_CUSTOM:
		break;
	}
	ok = 0;
out:
	demo_reply_free(&rep);
	return ok;
}

static int push_sample(struct worker *w, uint64_t ns)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		uint64_t *nv = realloc(w->ns, cap * sizeof(*nv));

		if (!nv) {
			snprintf(w->err, sizeof(w->err), "out of memory for samples");
			return -1;
		}
		w->ns = nv;
		w->cap = cap;
	}
	w->ns[w->n++] = ns;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct gconf *g = w->g;

	for (long i = 0; i < w->warmup && !atomic_load(&stop_all); i++) {
		int r = one_call(w);

		/* The first call connects. gRPC 1.51's C core fails a connect
		 * now and then when many channels connect at once ("connect:
		 * No such file or directory": it reads errno after calls that
		 * may change it), over plain TCP as under mpklink; newer gRPC
		 * keeps the connect's own errno. A client would retry: a new
		 * channel, at most 3 times (a failed channel's own retry waits
		 * its 1 s backoff), and the count is reported. */
		for (int t = 0; r < 0 && i == 0 && t < 3 && strstr(w->err, "UNAVAILABLE"); t++) {
			demo_client_close(&w->cli);
			if (open_client(&w->cli, g->target, w->err, sizeof(w->err)) < 0)
				break;
			atomic_fetch_add(&connects_retried, 1);
			r = one_call(w);
		}
		if (r < 0) {
			w->failed = 1;
			atomic_store(&stop_all, 1);
			break;
		}
	}
	pthread_barrier_wait(&start_barrier);
	/* The barrier's last arrival starts the clock for all. */
	if (!g->calls) {
		uint64_t zero = 0;

		atomic_compare_exchange_strong(&deadline_ns, &zero,
					       bench_now_ns() + (uint64_t)(g->seconds * 1e9));
	}
	while (!w->failed && !atomic_load(&stop_all)) {
		uint64_t t0, t1;

		if (g->calls) {
			if (atomic_fetch_sub(&calls_left, 1) <= 0)
				break;
		} else if (bench_now_ns() >= atomic_load(&deadline_ns)) {
			break;
		}
		if (g->reconnect)
			demo_client_close(&w->cli); /* the teardown is not timed */
		t0 = bench_now_ns();
		if (g->reconnect &&
		    open_client(&w->cli, g->target, w->err, sizeof(w->err)) < 0) {
			w->failed = 1;
			atomic_store(&stop_all, 1);
			break;
		}
		if (one_call(w) < 0) {
			w->failed = 1;
			atomic_store(&stop_all, 1);
			break;
		}
		t1 = bench_now_ns();
		if (push_sample(w, t1 - t0) < 0) {
			w->failed = 1;
			atomic_store(&stop_all, 1);
			break;
		}
		atomic_fetch_add(&calls_done, 1);
	}
	return NULL;
}

static const char *method_name(const struct gconf *g)
{
	switch (g->method) {
	case M_HEALTH: return "health";
	case M_COUNT: return "count";
	case M_ECHO: return "echo";
	case M_CUSTOM: return g->path;
	}
	return "?";
}

static int run(struct gconf *g)
{
	struct worker *ws;
	struct lat_summary s;
	uint64_t *all, t0, t1;
	size_t total = 0;
	int failed = 0, started = 0, tty = isatty(STDERR_FILENO);
	long warm_total;
	double wall, rate, mbps;
	char row[256], err[256];

	ws = calloc((size_t)g->concurrency, sizeof(*ws));
	if (!ws)
		return 1;
	warm_total = g->warmup >= 0 ? g->warmup : g->calls ? g->calls / 10 : 100;
	if (g->warmup < 0 && warm_total > 1000)
		warm_total = 1000;
	for (int i = 0; i < g->concurrency; i++) {
		ws[i].g = g;
		ws[i].warmup = warm_total / g->concurrency + (i < warm_total % g->concurrency);
		if (ws[i].warmup < 1)
			ws[i].warmup = 1;
		if (open_client(&ws[i].cli, g->target, err, sizeof(err)) < 0) {
			fprintf(stderr, GPROG ": %s: %s\n", g->target, err);
			failed = 1;
			goto out;
		}
	}
	atomic_store(&calls_left, g->calls);
	atomic_store(&calls_done, 0);
	atomic_store(&stop_all, 0);
	atomic_store(&deadline_ns, 0);
	if (pthread_barrier_init(&start_barrier, NULL, (unsigned)g->concurrency + 1)) {
		failed = 1;
		goto out;
	}
	for (; started < g->concurrency; started++)
		if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started])) {
			fprintf(stderr, GPROG ": cannot start a thread\n");
			/* The barrier cannot release: the ones running are stuck in
			 * it or failing; nothing sensible but to leave. */
			exit(1);
		}
	if (tty)
		fprintf(stderr, "warming up (%ld calls)...", warm_total);
	/* Warm-up runs before the barrier releases; the timed phase starts
	 * at the barrier (--seconds: the first worker past it sets the deadline). */
	pthread_barrier_wait(&start_barrier);
	t0 = bench_now_ns();
	/* Progress while they run (a terminal only), then join. */
	for (int i = 0; i < started; i++) {
		if (tty) {
			struct timespec ts;

			while (pthread_tryjoin_np(ws[i].tid, NULL) == EBUSY) {
				long d = atomic_load(&calls_done);
				double el = (double)(bench_now_ns() - t0) / 1e9;

				if (g->calls)
					fprintf(stderr, "\r%ld/%ld calls, %.1f s   ", d, g->calls, el);
				else
					fprintf(stderr, "\r%ld calls, %.1f/%.1f s   ", d, el,
						g->seconds);
				ts.tv_sec = 0;
				ts.tv_nsec = 200000000;
				nanosleep(&ts, NULL);
			}
		} else {
			pthread_join(ws[i].tid, NULL);
		}
	}
	t1 = bench_now_ns();
	if (tty)
		fprintf(stderr, "\r%60s\r", "");
	pthread_barrier_destroy(&start_barrier);
	for (int i = 0; i < started; i++)
		if (ws[i].failed) {
			fprintf(stderr, GPROG ": %s: %s\n", g->target, ws[i].err);
			failed = 1;
		}
	if (atomic_load(&connects_retried))
		fprintf(stderr,
			GPROG ": %ld channel(s) failed their first connect (UNAVAILABLE) and "
			"connected on a new channel\n",
			atomic_load(&connects_retried));
	if (failed)
		goto out;
	for (int i = 0; i < started; i++)
		total += ws[i].n;
	if (!total) {
		fprintf(stderr, GPROG ": no call finished in the time given\n");
		failed = 1;
		goto out;
	}
	all = malloc(total * sizeof(*all));
	if (!all) {
		failed = 1;
		goto out;
	}
	total = 0;
	for (int i = 0; i < started; i++) {
		memcpy(all + total, ws[i].ns, ws[i].n * sizeof(*all));
		total += ws[i].n;
	}
	stats_summarize(all, total, &s);
	free(all);
	wall = (double)(t1 - t0) / 1e9;
	rate = (double)total / wall;
	mbps = (double)g->size_bytes * rate / 1e6;
	printf("grpc %s method=%s size_bytes=%llu calls=%zu concurrency=%d seconds=%.3f\n",
	       g->target, method_name(g), (unsigned long long)g->size_bytes, total,
	       g->concurrency, wall);
	printf("%10s %10s %10s %10s %10s %10s %12s %12s\n", "min_us", "p50_us", "p90_us",
	       "p99_us", "p99.9_us", "max_us", "calls/s", "MB/s");
	printf("%10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %12.1f %12.3f\n", s.min, s.p50, s.p90,
	       s.p99, s.p999, s.max, rate, mbps);
	printf("every answer checked: %s\n",
	       g->method == M_CUSTOM ? "status OK (reply not verified)" : "right");
	if (g->csv) {
		int n0 = snprintf(row, sizeof(row), "%s", STATS_CSV_HEADER);
		int n1 = stats_csv_row(row + n0, sizeof(row) - (size_t)n0, g->bench, g->label,
				       g->size_bytes, s.p50, s.p99, mbps);
		int e;

		if (n1 < 0 || (size_t)(n0 + n1) >= sizeof(row)) {
			fprintf(stderr, GPROG ": --label '%s' cannot go in a CSV field\n", g->label);
			failed = 1;
			goto out;
		}
		e = bench_write_file_atomic(g->csv, row, (size_t)(n0 + n1));
		if (e < 0) {
			fprintf(stderr, GPROG ": %s: %s\n", g->csv, bench_strerror(e));
			failed = 1;
			goto out;
		}
		printf("CSV written to %s.\n", g->csv);
	}
out:
	for (int i = 0; i < g->concurrency; i++) {
		demo_client_close(&ws[i].cli);
		free(ws[i].ns);
	}
	free(ws);
	fflush(stdout);
	return failed;
}

int grpc_main(int argc, char **argv)
{
	enum { O_METHOD = 0x100, O_WORDS, O_BYTES, O_PAYLOAD, O_CALLS, O_SECONDS, O_CONC,
	       O_WARMUP, O_TIMEOUT, O_SEED, O_CSV, O_LABEL, O_RECONNECT };
	static const struct option lo[] = {
		{"method", required_argument, NULL, O_METHOD},
		{"words", required_argument, NULL, O_WORDS},
		{"bytes", required_argument, NULL, O_BYTES},
		{"payload", required_argument, NULL, O_PAYLOAD},
		{"calls", required_argument, NULL, O_CALLS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"concurrency", required_argument, NULL, O_CONC},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"seed", required_argument, NULL, O_SEED},
		{"csv", required_argument, NULL, O_CSV},
		{"label", required_argument, NULL, O_LABEL},
		{"reconnect", no_argument, NULL, O_RECONNECT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct gconf g = {.method = M_HEALTH, .words = 1000, .bytes = 64, .warmup = -1,
			  .concurrency = 1, .timeout_s = 60, .seed = 1, .label = "grpc"};
	int opt, have_words = 0, have_bytes = 0, have_calls = 0, r;
	uint64_t v;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (opt) {
		case O_METHOD:
			if (!strcmp(optarg, "health"))
				g.method = M_HEALTH;
			else if (!strcmp(optarg, "count"))
				g.method = M_COUNT;
			else if (!strcmp(optarg, "echo"))
				g.method = M_ECHO;
			else if (optarg[0] == '/' && strchr(optarg + 1, '/') &&
				 optarg[strlen(optarg) - 1] != '/') {
				g.method = M_CUSTOM;
				g.path = optarg;
			} else
				return gusage_error("--method '%s': want health, count, echo or "
						    "/package.Service/Method",
						    optarg);
			break;
		case O_WORDS:
			if (parse_u64(optarg, 0, 100000000, &g.words) < 0)
				return gusage_error("--words '%s': want 0..100000000", optarg);
			have_words = 1;
			break;
		case O_BYTES:
			if (parse_u64(optarg, 1, DEMO_MAX_ECHO_REPLY, &g.bytes) < 0)
				return gusage_error("--bytes '%s': want 1..%u", optarg,
						    (unsigned)DEMO_MAX_ECHO_REPLY);
			have_bytes = 1;
			break;
		case O_PAYLOAD:
			g.payload = optarg;
			break;
		case O_CALLS:
			if (parse_u64(optarg, 1, MAX_CALLS, &v) < 0)
				return gusage_error("--calls '%s': want 1..%ld", optarg, MAX_CALLS);
			g.calls = (long)v;
			have_calls = 1;
			break;
		case O_SECONDS:
			if (parse_secs(optarg, &g.seconds) < 0)
				return gusage_error("--seconds '%s': want a number in (0, 86400]",
						    optarg);
			break;
		case O_CONC:
			if (parse_u64(optarg, 1, MAX_CONCURRENCY, &v) < 0)
				return gusage_error("--concurrency '%s': want 1..%d", optarg,
						    MAX_CONCURRENCY);
			g.concurrency = (int)v;
			break;
		case O_WARMUP:
			if (parse_u64(optarg, 0, MAX_CALLS, &v) < 0)
				return gusage_error("--warmup '%s': want 0..%ld", optarg, MAX_CALLS);
			g.warmup = (long)v;
			break;
		case O_TIMEOUT:
			if (parse_secs(optarg, &g.timeout_s) < 0)
				return gusage_error("--timeout '%s': want seconds in (0, 86400]",
						    optarg);
			break;
		case O_SEED:
			if (parse_u64(optarg, 0, UINT64_MAX, &g.seed) < 0)
				return gusage_error("--seed '%s': want a whole number", optarg);
			break;
		case O_CSV:
			if (!*optarg)
				return gusage_error("--csv needs a file name");
			g.csv = optarg;
			break;
		case O_LABEL:
			if (!*optarg || strpbrk(optarg, ",\"\n\r"))
				return gusage_error("--label '%s': want a name without commas, quotes or newlines", optarg);
			g.label = optarg;
			break;
		case O_RECONNECT:
			g.reconnect = 1;
			break;
		case 'h':
			grpc_usage(stdout);
			return 0;
		case ':':
			return gusage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return gusage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return gusage_error("no TARGET (HOST:PORT or unix:PATH)");
	g.target = argv[optind++];
	if (optind < argc)
		return gusage_error("unexpected argument '%s'", argv[optind]);
	if (have_calls && g.seconds > 0)
		return gusage_error("--calls and --seconds exclude each other");
	if (!have_calls && g.seconds <= 0)
		g.calls = 1000;
	if (have_words && g.method != M_COUNT)
		return gusage_error("--words goes with --method count");
	if (have_bytes && g.method != M_ECHO)
		return gusage_error("--bytes goes with --method echo");
	if (g.payload && g.method != M_CUSTOM)
		return gusage_error("--payload goes with --method /pkg.Service/Method");
	if (g.method == M_CUSTOM && !g.payload)
		return gusage_error("--method %s needs --payload FILE", g.path);
	demo_malloc_keep();
	r = prepare(&g);
	if (r < 0) {
		fprintf(stderr, GPROG ": preparing the request%s%s: %s\n",
			g.payload ? " from " : "", g.payload ? g.payload : "", strerror(-r));
		return 1;
	}
	grpc_init();
	r = run(&g);
	grpc_shutdown();
	free(g.req);
	return r ? 1 : 0;
}
