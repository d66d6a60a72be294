/* SPDX-License-Identifier: MIT */
/*
 * mpklink-demo-client: the client half of the MPKLink paper's word-count
 * benchmark, on gRPC's C core through rpc.h. It checks every answer it gets
 * (a count against the number of words it generated, an echo byte for
 * byte), so that a run under mpklink-run that passes has moved the bytes
 * correctly, not just quickly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "rpc.h"

#define PROG "mpklink-demo-client"
#define DEFAULT_TARGET "127.0.0.1:50051"
#define DEFAULT_TIMEOUT_S 120.0
#define MAX_REPEAT 10000000u

static const char *target = DEFAULT_TARGET;
static double timeout_s = DEFAULT_TIMEOUT_S;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--target ADDR] [--timeout SECONDS] COMMAND [OPTIONS]\n"
		"       " PROG " --gen-text N [--seed S]\n"
		"\n"
		"Calls mpklink-demo-server (mpklink.demo.WordCount) and checks its answers.\n"
		"\n"
		"  --target ADDR      HOST:PORT or unix:PATH (default " DEFAULT_TARGET ")\n"
		"  --timeout SECONDS  deadline of each call (default %.0f)\n"
		"\n"
		"Commands:\n"
		"  count --words N [--seed S] [--repeat R]\n"
		"      Sends a generated text of N words (R times, default 1) and checks\n"
		"      that the server counts N each time.\n"
		"  count --file PATH [--repeat R]\n"
		"      Sends the bytes of PATH and prints the server's count (compare it\n"
		"      with `LC_ALL=C wc -w PATH`).\n"
		"  echo --bytes N [--reply-bytes M] [--seed S] [--repeat R]\n"
		"      Sends N pseudo-random bytes. M = 0 (default): the reply must be\n"
		"      those bytes; M > 0: it must be M bytes where byte i is\n"
		"      (i*31 + 7) & 0xff.\n"
		"  health [--service NAME]\n"
		"      grpc.health.v1.Health/Check; the answer must be SERVING.\n"
		"\n"
		"  --gen-text N [--seed S]\n"
		"      Prints the text `count --words N --seed S` sends, and exits. Words\n"
		"      are 1..12 printable ASCII bytes between runs of space, \\t, \\n, \\v,\n"
		"      \\f and \\r; the seed defaults to 1.\n"
		"\n"
		"Output, one line: count: `words=W bytes=B calls=R min_s=.. median_s=..\n"
		"max_s=..` (seconds per call: encode, call, decode); echo: `echo bytes=N\n"
		"reply_bytes=M calls=R min_s=.. median_s=.. max_s=..`; health:\n"
		"`status=SERVING`.\n"
		"Exit status: 0 every answer was right; 1 a wrong answer or a failed\n"
		"call (the message says what was expected and what came); 2 usage.\n",
		DEFAULT_TIMEOUT_S);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help'.\n", stderr);
	exit(2);
}

static void bad_option(char **argv, const char *cmd)
{
	/* getopt has stepped past the offending word (for "--words" at the
	 * end, past the option that lacks its value). */
	die_usage("%s%soption '%s' is unknown or lacks its value", cmd, *cmd ? ": " : "",
		  argv[optind - 1]);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	/* strtoull takes "-1" as 2^64-1: refuse any sign. */
	if (s[0] < '0' || s[0] > '9')
		die_usage("%s: '%s' is not a non-negative integer", opt, s);
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		die_usage("%s: '%s' is not a non-negative integer", opt, s);
	if (errno == ERANGE || v > max)
		die_usage("%s: %s is over the maximum of %" PRIu64, opt, s, max);
	return v;
}

static double parse_seconds(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(v > 0) || v > 1e9)
		die_usage("%s: '%s' is not a number of seconds above 0", opt, s);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* " calls=R min_s=.. median_s=.. max_s=.." for the seconds in t[0..n). */
static void print_times(double *t, size_t n)
{
	qsort(t, n, sizeof *t, cmp_double);
	printf(" calls=%zu min_s=%.6f median_s=%.6f max_s=%.6f\n", n, t[0], t[n / 2], t[n - 1]);
}

/* gRPC starts with the first client, after the options were checked, so
 * that a usage error leaves without touching it. */
static int open_client(struct demo_client *c)
{
	char err[512];

	grpc_init();
	if (demo_client_open(c, target, err, sizeof err) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		grpc_shutdown();
		return -1;
	}
	return 0;
}

static void close_client(struct demo_client *c)
{
	demo_client_close(c);
	grpc_shutdown();
}

static void call_failed(const char *err)
{
	fprintf(stderr, PROG ": %s (target %s)\n", err, target);
}

/* The whole of path (a regular file, a pipe, /dev/stdin), malloc'd. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	const size_t limit = (size_t)DEMO_MAX_MESSAGE_BYTES - 16;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t cap, n = 0;
	uint8_t *buf;

	if (fd < 0) {
		fprintf(stderr, PROG ": count --file '%s': %s\n", path, strerror(errno));
		return -1;
	}
	cap = (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		      ? (size_t)st.st_size + 1
		      : 65536;
	if (cap > limit + 1)
		cap = limit + 1;
	buf = malloc(cap);
	for (;;) {
		ssize_t got;

		if (!buf) {
			fprintf(stderr, PROG ": count --file '%s': out of memory\n", path);
			close(fd);
			return -1;
		}
		if (n == cap) {
			uint8_t *nb;

			if (cap > limit) {
				fprintf(stderr,
					PROG ": count --file '%s': over %zu bytes, more than one message may carry\n",
					path, limit);
				free(buf);
				close(fd);
				return -1;
			}
			cap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
			nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
			continue;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, PROG ": count --file '%s': %s\n", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

/* ---------------------------------------------------------------- count */

static int cmd_count(int argc, char **argv)
{
	static const struct option opts[] = {
		{"words", required_argument, NULL, 'w'},
		{"file", required_argument, NULL, 'f'},
		{"seed", required_argument, NULL, 's'},
		{"repeat", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t words = 0, seed = 1, repeat = 1, first = 0;
	int have_words = 0, have_seed = 0;
	const char *file = NULL;
	struct demo_client c;
	uint8_t *text;
	size_t len;
	double *t;
	int opt, rc = 0;

	optind = 0; /* glibc: a full restart of getopt on a new argv */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'w': words = parse_u64("--words", optarg, UINT64_MAX); have_words = 1; break;
		case 'f': file = optarg; break;
		case 's': seed = parse_u64("--seed", optarg, UINT64_MAX); have_seed = 1; break;
		case 'r': repeat = parse_u64("--repeat", optarg, MAX_REPEAT); break;
		case 'h': usage(stdout); exit(0);
		default: bad_option(argv, "count");
		}
	}
	if (optind < argc)
		die_usage("count: unexpected argument '%s'", argv[optind]);
	if (have_words == !!file)
		die_usage("count: give exactly one of --words N and --file PATH");
	if (file && have_seed)
		die_usage("count: --seed goes with --words, not --file");
	if (repeat == 0)
		die_usage("count: --repeat: 0 calls would check nothing");

	if (file) {
		if (read_file(file, &text, &len) < 0)
			return 1;
	} else if (demo_gen_text(words, seed, &text, &len) < 0) {
		fprintf(stderr, PROG ": count: cannot generate a text of %" PRIu64 " words: out of memory\n",
			words);
		return 1;
	}
	if (len > (size_t)DEMO_MAX_MESSAGE_BYTES - 16) {
		fprintf(stderr, PROG ": count: the text is %zu bytes, over the %d-byte message limit\n",
			len, DEMO_MAX_MESSAGE_BYTES);
		free(text);
		return 1;
	}
	t = calloc(repeat, sizeof *t);
	if (!t || open_client(&c) < 0) {
		free(t);
		free(text);
		return 1;
	}
	for (uint64_t i = 0; i < repeat; i++) {
		char err[1024];
		uint64_t got;
		double t0 = now_s();

		if (demo_count(&c, text, len, timeout_s, &got, err, sizeof err) < 0) {
			call_failed(err);
			rc = 1;
			break;
		}
		t[i] = now_s() - t0;
		if (!file && got != words) {
			fprintf(stderr,
				PROG ": count: wrong answer on call %" PRIu64 " of %" PRIu64
				     ": expected %" PRIu64 " words, got %" PRIu64
				     " (generated text of %zu bytes, seed %" PRIu64 ")\n",
				i + 1, repeat, words, got, len, seed);
			rc = 1;
			break;
		}
		if (file && i > 0 && got != first) {
			fprintf(stderr,
				PROG ": count: inconsistent answers for '%s': expected %" PRIu64
				     " words (call 1), got %" PRIu64 " on call %" PRIu64 "\n",
				file, first, got, i + 1);
			rc = 1;
			break;
		}
		first = got;
	}
	if (rc == 0) {
		printf("words=%" PRIu64 " bytes=%zu", first, len);
		print_times(t, repeat);
	}
	close_client(&c);
	free(t);
	free(text);
	return rc;
}

/* ----------------------------------------------------------------- echo */

/* Says where reply differs from what was expected; 0 if it does not. */
static int check_echo(const uint8_t *payload, size_t plen, uint32_t reply_bytes,
		      const uint8_t *reply, size_t rlen, uint64_t call, uint64_t calls)
{
	size_t want = reply_bytes ? reply_bytes : plen, at;

	if (rlen != want) {
		fprintf(stderr,
			PROG ": echo: wrong answer on call %" PRIu64 " of %" PRIu64
			     ": expected a %zu-byte reply, got %zu bytes\n",
			call, calls, want, rlen);
		return -1;
	}
	if (reply_bytes) {
		at = demo_check_pattern(reply, rlen);
		if (at == rlen)
			return 0;
		fprintf(stderr,
			PROG ": echo: wrong answer on call %" PRIu64 " of %" PRIu64
			     ": reply byte %zu of %zu: expected 0x%02x (the pattern), got 0x%02x\n",
			call, calls, at, rlen, demo_pattern_byte(at), reply[at]);
		return -1;
	}
	for (at = 0; at < rlen && reply[at] == payload[at]; at++)
		;
	if (at == rlen)
		return 0;
	fprintf(stderr,
		PROG ": echo: wrong answer on call %" PRIu64 " of %" PRIu64
		     ": reply byte %zu of %zu: expected 0x%02x (the payload's), got 0x%02x\n",
		call, calls, at, rlen, payload[at], reply[at]);
	return -1;
}

static int cmd_echo(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bytes", required_argument, NULL, 'b'},
		{"reply-bytes", required_argument, NULL, 'm'},
		{"seed", required_argument, NULL, 's'},
		{"repeat", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t bytes = 0, reply_bytes = 0, seed = 1, repeat = 1;
	int have_bytes = 0, opt, rc = 0;
	struct demo_client c;
	uint8_t *payload;
	double *t;

	optind = 0; /* glibc: a full restart of getopt on a new argv */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			bytes = parse_u64("--bytes", optarg, (uint64_t)DEMO_MAX_MESSAGE_BYTES - 16);
			have_bytes = 1;
			break;
		case 'm':
			reply_bytes = parse_u64("--reply-bytes", optarg, DEMO_MAX_ECHO_REPLY);
			break;
		case 's': seed = parse_u64("--seed", optarg, UINT64_MAX); break;
		case 'r': repeat = parse_u64("--repeat", optarg, MAX_REPEAT); break;
		case 'h': usage(stdout); exit(0);
		default: bad_option(argv, "echo");
		}
	}
	if (optind < argc)
		die_usage("echo: unexpected argument '%s'", argv[optind]);
	if (!have_bytes)
		die_usage("echo: --bytes N is required");
	if (repeat == 0)
		die_usage("echo: --repeat: 0 calls would check nothing");

	payload = malloc(bytes ? bytes : 1);
	t = calloc(repeat, sizeof *t);
	if (!payload || !t) {
		fprintf(stderr, PROG ": echo: out of memory for %" PRIu64 " bytes\n", bytes);
		free(payload);
		free(t);
		return 1;
	}
	demo_fill_random(payload, bytes, seed);
	if (open_client(&c) < 0) {
		free(payload);
		free(t);
		return 1;
	}
	for (uint64_t i = 0; i < repeat; i++) {
		char err[1024];
		uint8_t *reply;
		size_t rlen;
		double t0 = now_s();

		if (demo_echo(&c, payload, bytes, (uint32_t)reply_bytes, timeout_s, &reply, &rlen, err,
			      sizeof err) < 0) {
			call_failed(err);
			rc = 1;
			break;
		}
		t[i] = now_s() - t0;
		if (check_echo(payload, bytes, (uint32_t)reply_bytes, reply, rlen, i + 1, repeat) < 0)
			rc = 1;
		free(reply);
		if (rc)
			break;
	}
	if (rc == 0) {
		printf("echo bytes=%" PRIu64 " reply_bytes=%" PRIu64, bytes, reply_bytes);
		print_times(t, repeat);
	}
	close_client(&c);
	free(payload);
	free(t);
	return rc;
}

/* --------------------------------------------------------------- health */

static const char *serving_name(int st)
{
	switch (st) {
	case DEMO_HEALTH_UNKNOWN: return "UNKNOWN";
	case DEMO_HEALTH_SERVING: return "SERVING";
	case DEMO_HEALTH_NOT_SERVING: return "NOT_SERVING";
	case DEMO_HEALTH_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
	default: return "an unknown status";
	}
}

static int cmd_health(int argc, char **argv)
{
	static const struct option opts[] = {
		{"service", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *service = "";
	struct demo_client c;
	char err[1024];
	int opt, st, rc = 0;

	optind = 0; /* glibc: a full restart of getopt on a new argv */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': service = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: bad_option(argv, "health");
		}
	}
	if (optind < argc)
		die_usage("health: unexpected argument '%s'", argv[optind]);
	if (open_client(&c) < 0)
		return 1;
	if (demo_health(&c, service, timeout_s, &st, err, sizeof err) < 0) {
		call_failed(err);
		rc = 1;
	} else if (st != DEMO_HEALTH_SERVING) {
		fprintf(stderr, PROG ": health: expected SERVING, got %s (%d)\n", serving_name(st), st);
		rc = 1;
	} else {
		printf("status=SERVING\n");
	}
	close_client(&c);
	return rc;
}

/* ------------------------------------------------------------- gen-text */

static int gen_text(uint64_t words, uint64_t seed)
{
	uint8_t *text;
	size_t len;

	if (demo_gen_text(words, seed, &text, &len) < 0) {
		fprintf(stderr, PROG ": --gen-text: cannot generate %" PRIu64 " words: out of memory\n",
			words);
		return 1;
	}
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, PROG ": --gen-text: writing to stdout: %s\n", strerror(errno));
		free(text);
		return 1;
	}
	free(text);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"target", required_argument, NULL, 't'},
		{"timeout", required_argument, NULL, 'T'},
		{"gen-text", required_argument, NULL, 'g'},
		{"seed", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t gen_words = 0, seed = 1;
	int gen = 0, have_seed = 0, opt, rc;
	const char *cmd;

	opterr = 0;
	/* "+": stop at the command; its options are its own. */
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (!*optarg)
				die_usage("--target: empty address");
			target = optarg;
			break;
		case 'T': timeout_s = parse_seconds("--timeout", optarg); break;
		case 'g': gen_words = parse_u64("--gen-text", optarg, UINT64_MAX); gen = 1; break;
		case 's': seed = parse_u64("--seed", optarg, UINT64_MAX); have_seed = 1; break;
		case 'h': usage(stdout); return 0;
		default: bad_option(argv, "");
		}
	}
	if (gen) {
		if (optind < argc)
			die_usage("--gen-text takes no command (got '%s')", argv[optind]);
		return gen_text(gen_words, seed);
	}
	demo_malloc_keep();
	if (have_seed)
		die_usage("--seed before the command goes with --gen-text; give it to the command");
	if (optind >= argc)
		die_usage("no command (count, echo or health)");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "count") == 0)
		rc = cmd_count(argc, argv);
	else if (strcmp(cmd, "echo") == 0)
		rc = cmd_echo(argc, argv);
	else if (strcmp(cmd, "health") == 0)
		rc = cmd_health(argc, argv);
	else
		die_usage("unknown command '%s' (count, echo or health)", cmd);
	return rc;
}
