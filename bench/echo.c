/* SPDX-License-Identifier: MIT */
/*
 * mpklink-bench echo: the C echo pair of tests/compat (plain programs that
 * know nothing of mpklink) measured over TCP loopback, a Unix socket, and
 * TCP upgraded by mpklink (both under mpklink-run), in one run: 64 B and
 * 64 KiB round trips on one blocking connection. mpklink twice: as
 * configured by default (a waiting call spins on the ring for up to
 * MPKLINK_SPIN_US, then sleeps) and with doorbells only (MPKLINK_SPIN_US=0:
 * the wake-up path, what a Unix socket also pays). And a client without a
 * connection pool (echo_client --churn): each 64 B request on a new
 * connection, over TCP, the Unix socket and mpklink as users run it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "subcommands.h"
#include "util.h"

/* bindir -> libexecdir, relative: where an install keeps echo_server & co. */
#ifndef MPK_BIN_TO_LIBEXECDIR
#error "MPK_BIN_TO_LIBEXECDIR is defined by the top-level CMakeLists.txt"
#endif

enum { T_TCP, T_UNIX, T_MPKLINK, T_BELL, T_COUNT };
static const char *const tnames[T_COUNT] = {"tcp", "unix", "mpklink", "mpklink-doorbell"};
static const size_t sizes[] = {64, 65536};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct echo_opts {
	char server[PATH_MAX], client[PATH_MAX], run[PATH_MAX];
	long iters[NSIZES];
	long churn; /* requests of the churn rows */
	const char *csv;
};

struct result {
	int ok;
	double p50, p99;
	double per_s; /* churn: requests (connections) a second */
};

/* Churn's requests, after its warm-up of a tenth. */
#define CHURN_N 3000
#define CHURN_N_QUICK 1000

static void echo_usage(FILE *f)
{
	fprintf(f,
		"Usage: mpklink-bench echo [--quick] [--iters N] [--csv FILE]\n"
		"                          [--server PATH] [--client PATH] [--run PATH]\n"
		"\n"
		"Round trips of 64 B and 64 KiB through the C echo pair (tests/compat:\n"
		"echo_server and echo_client --rtt, ordinary socket programs) over TCP\n"
		"loopback, a Unix socket, and TCP with both programs under mpklink-run, in\n"
		"one run. The client blocks in read. mpklink runs twice: as by default\n"
		"(a waiting call spins on the ring up to MPKLINK_SPIN_US=50, then sleeps on\n"
		"its doorbell) and as mpklink-doorbell (MPKLINK_SPIN_US=0: woken by doorbell\n"
		"every time, the path a Unix socket also takes). Then a client without a\n"
		"connection pool (echo_client --churn): 3000 requests of 64 B, each on a new\n"
		"connection (connect, round trip, close), over TCP, the Unix socket and\n"
		"mpklink as by default.\n"
		"\n"
		"  --quick        fewer round trips and requests (a few seconds in all)\n"
		"  --iters N      round trips per size and transport (64 KiB: N/4)\n"
		"  --csv FILE     rows bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n"
		"                 (and echo,floor,64,... when the floor was measured); the\n"
		"                 churn rows' p50 and p99 are per request, connect to close\n"
		"  --server PATH  echo_server; default, from this program's directory:\n"
		"                 ../tests/compat/echo_server (a build tree), else\n"
		"                 " MPK_BIN_TO_LIBEXECDIR "/mpklink/echo_server (as installed)\n"
		"  --client PATH  echo_client; default: as echo_server\n"
		"  --run PATH     mpklink-run; default, from this program's directory:\n"
		"                 ../bin/mpklink-run (a build tree), else mpklink-run beside it\n"
		"\n"
		"The shared-memory floor (mpklink-bench transport --only floor: two processes\n"
		"passing a counter through a shared cache line) is measured just before and\n"
		"just after mpklink's 64 B round trips, and its mean shown as 'floor' (the\n"
		"cost of a cache-line transfer moves with where the hypervisor puts the CPUs).\n"
		"\n"
		"Targets (informational, the exit status ignores timings): mpklink-doorbell\n"
		"p50 no slower than the Unix socket's, at both sizes; mpklink at 64 B at\n"
		"most 0.15x TCP's, and within 2x the floor; a new connection per request\n"
		"at least 0.9x TCP's requests a second.\n");
}

/*
 * The default PATH of a helper: in the build tree (<build>/bench/.. +
 * build_rel), else in the install (<bindir>/ + inst_rel), whichever is
 * executable. When neither is, the one of the layout we run from, so that
 * the "not found at" message names the place that should have had it.
 */
static void default_path(char *out, size_t len, const char *build_rel, const char *inst_rel)
{
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	int w;

	out[0] = 0;
	if (n <= 0)
		return;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = 0;
	w = snprintf(out, len, "%s/../%s", self, build_rel);
	if (w > 0 && (size_t)w < len && access(out, X_OK) == 0)
		return;
	/* A build tree has its CMakeCache.txt one level up from bench/. */
	w = snprintf(dir, sizeof(dir), "%s/../CMakeCache.txt", self);
	if (w > 0 && (size_t)w < sizeof(dir) && access(dir, F_OK) == 0)
		return;
	w = snprintf(out, len, "%s/%s", self, inst_rel);
	if (w < 0 || (size_t)w >= len)
		out[0] = 0;
}



/* Reads fd until a line starting with prefix (or EOF, or the deadline).
 * Returns 0 and the line in buf, or -1. */
static int read_line_with(int fd, const char *prefix, char *buf, size_t len, int timeout_s)
{
	char acc[8192];
	size_t used = 0;
	uint64_t deadline = bench_now_ns() + (uint64_t)timeout_s * 1000000000ull;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - bench_now_ns()) / 1000000;
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		r = read(fd, acc + used, sizeof(acc) - 1 - used);
		if (r <= 0)
			return -1;
		used += (size_t)r;
		acc[used] = 0;
		for (char *line = acc, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
			*nl = 0;
			if (!strncmp(line, prefix, strlen(prefix))) {
				size_t n = strlen(line) < len - 1 ? strlen(line) : len - 1;
				memcpy(buf, line, n);
				buf[n] = 0;
				return 0;
			}
		}
		if (used == sizeof(acc) - 1)
			used = 0; /* a runaway line: drop it */
	}
}

static void stop(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* One (transport, size) measurement: a fresh server and client. */
/* iters round trips of size on one connection, or with churn, iters
 * requests each on a connection of its own. */
static struct result measure(const struct echo_opts *o, int t, size_t size, long iters,
			     const char *dir, int churn)
{
	struct result res = {0};
	char port_s[16], host[PATH_MAX + 8], env[PATH_MAX], n_s[24], size_s[24], warm_s[24];
	char line[512];
	char *sargv[24], *cargv[32];
	int sn = 0, cn = 0, sfd = -1, cfd = -1, port = bench_free_port(), st;
	pid_t spid, cpid;
	FILE *f;

	if (port < 0)
		return res;
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(n_s, sizeof(n_s), "%ld", iters);
	snprintf(size_s, sizeof(size_s), "%zu", size);
	snprintf(warm_s, sizeof(warm_s), "%ld", iters / 10 < 100 ? 100 : iters / 10);
	if (t == T_UNIX)
		snprintf(host, sizeof(host), "unix:%s/echo.sock", dir);
	else
		snprintf(host, sizeof(host), "127.0.0.1");
	/* Server and client on CPUs of their own, for every transport alike:
	 * spinning assumes it, and it steadies the others. */
	if (access("/usr/bin/taskset", X_OK) == 0 && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
		sargv[sn++] = "/usr/bin/taskset";
		sargv[sn++] = "-c";
		sargv[sn++] = "0";
		cargv[cn++] = "/usr/bin/taskset";
		cargv[cn++] = "-c";
		cargv[cn++] = "1";
	}
	if (t == T_MPKLINK || t == T_BELL) {
		snprintf(env, sizeof(env), "%s/app.env", dir);
		f = fopen(env, "w");
		if (!f)
			return res;
		fprintf(f, "MPKLINK_ENDPOINTS=127.0.0.1:%d\nMPKLINK_RUNDIR=%s/run\nMPKLINK_LOG=error\n",
			port, dir);
		if (t == T_BELL)
			fprintf(f, "MPKLINK_SPIN_US=0\n");
		fclose(f);
		sargv[sn++] = (char *)o->run;
		sargv[sn++] = "-e";
		sargv[sn++] = env;
		sargv[sn++] = "--";
		cargv[cn++] = (char *)o->run;
		cargv[cn++] = "-e";
		cargv[cn++] = env;
		cargv[cn++] = "--";
	}
	sargv[sn++] = (char *)o->server;
	sargv[sn++] = "--port";
	sargv[sn++] = port_s;
	sargv[sn++] = "--host";
	sargv[sn++] = host;
	sargv[sn++] = "--mode";
	sargv[sn++] = "et";
	sargv[sn] = NULL;
	spid = bench_spawn(sargv, NULL, &sfd, NULL, 0);
	if (spid < 0 || read_line_with(sfd, "listening on", line, sizeof(line), 10) < 0) {
		fprintf(stderr, "mpklink-bench: %s: the echo server did not start\n", tnames[t]);
		goto out;
	}
	cargv[cn++] = (char *)o->client;
	cargv[cn++] = "--port";
	cargv[cn++] = port_s;
	cargv[cn++] = "--host";
	cargv[cn++] = host;
	cargv[cn++] = churn ? "--churn" : "--rtt";
	cargv[cn++] = n_s;
	cargv[cn++] = "--size";
	cargv[cn++] = size_s;
	cargv[cn++] = "--warmup";
	cargv[cn++] = warm_s;
	cargv[cn] = NULL;
	cpid = bench_spawn(cargv, NULL, &cfd, NULL, 0);
	if (cpid < 0)
		goto out;
	if (read_line_with(cfd, churn ? "CHURN " : "RTT ", line, sizeof(line), 120) == 0 &&
	    sscanf(strstr(line, "p50_us="), "p50_us=%lf p99_us=%lf", &res.p50, &res.p99) == 2)
		res.ok = 1;
	if (res.ok && churn &&
	    (!strstr(line, "per_s=") || sscanf(strstr(line, "per_s="), "per_s=%lf", &res.per_s) != 1))
		res.ok = 0;
	if (waitpid(cpid, &st, 0) != cpid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "mpklink-bench: %s %zu B: the echo client failed (status %#x)\n",
			tnames[t], size, st);
		res.ok = 0;
	}
out:
	/* Its stdout stays open until it is gone: it reports at exit. */
	stop(spid);
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
	return res;
}

/*
 * The shared-memory floor, 64 B (`mpklink-bench transport --only floor`,
 * this binary), into *p50 and *p99 (us). Taken just before and just after
 * mpklink's own 64 B round trips: the hypervisor moves the vCPUs every few
 * seconds and a cache-line transfer then costs 0.1 or 0.4 us, so only a
 * floor taken around the measurement says what it is within. 0 or -1.
 */
static int floor_p50(const char *dir, double *p50, double *p99)
{
	char self[PATH_MAX], csv[PATH_MAX], log[PATH_MAX], line[256], b[32], t[32];
	char *argv[] = {self, "transport", "--only", "floor", "--iters", "20000", "--seconds", "2",
			"--csv", csv, NULL};
	struct bench_child ch = {0};
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	uint64_t size;
	double mbps;
	int found = 0;
	FILE *f;

	if (n <= 0)
		return -1;
	self[n] = 0;
	snprintf(csv, sizeof(csv), "%s/floor.csv", dir);
	snprintf(log, sizeof(log), "%s/floor.log", dir);
	unlink(csv);
	ch.pid = bench_spawn(argv, log, NULL, NULL, 0);
	if (ch.pid < 0 || bench_child_wait(&ch, bench_now_ns() + 60 * 1000000000ull) < 0)
		return -1;
	f = fopen(csv, "r");
	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = !stats_csv_parse(line, b, sizeof(b), t, sizeof(t), &size, p50, p99, &mbps) &&
			!strcmp(t, "floor") && size == 64 && *p50 > 0;
	fclose(f);
	return found ? 0 : -1;
}

static int need_exec(const char *what, const char *path)
{
	if (access(path, X_OK) == 0)
		return 0;
	fprintf(stderr,
		"mpklink-bench: %s not found at %s: build the project's tests (it lives in\n"
		"  tests/compat) or give its path with --%s\n",
		what, path, !strcmp(what, "mpklink-run") ? "run" : what + 5);
	return -1;
}

int echo_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"quick", no_argument, NULL, 'q'},   {"iters", required_argument, NULL, 'n'},
		{"csv", required_argument, NULL, 'c'}, {"server", required_argument, NULL, 's'},
		{"client", required_argument, NULL, 'C'}, {"run", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
	};
	struct echo_opts o = {.iters = {20000, 5000}, .churn = CHURN_N};
	struct result r[T_COUNT][NSIZES], ch[T_COUNT] = {{0}};
	double fl[2][2]; /* floor before and after mpklink's 64 B: p50, p99 */
	int fl_ok = 1;
	char dir[] = "/tmp/mpklink-bench-echo.XXXXXX", csv[4096];
	size_t csvlen = 0;
	int c, failed = 0;

	default_path(o.server, sizeof(o.server), "tests/compat/echo_server",
		     MPK_BIN_TO_LIBEXECDIR "/mpklink/echo_server");
	default_path(o.client, sizeof(o.client), "tests/compat/echo_client",
		     MPK_BIN_TO_LIBEXECDIR "/mpklink/echo_client");
	default_path(o.run, sizeof(o.run), "bin/mpklink-run", "mpklink-run");
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.iters[0] = 5000;
			o.iters[1] = 1000;
			o.churn = CHURN_N_QUICK;
			break;
		case 'n': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 100 || n > 100000000) {
				fprintf(stderr, "mpklink-bench echo: --iters '%s': want 100..100000000\n",
					optarg);
				return 2;
			}
			o.iters[0] = n;
			o.iters[1] = n / 4 < 100 ? 100 : n / 4;
			break;
		}
		case 'c': o.csv = optarg; break;
		case 's': snprintf(o.server, sizeof(o.server), "%s", optarg); break;
		case 'C': snprintf(o.client, sizeof(o.client), "%s", optarg); break;
		case 'r': snprintf(o.run, sizeof(o.run), "%s", optarg); break;
		case 'h': echo_usage(stdout); return 0;
		default: echo_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mpklink-bench echo: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (need_exec("echo_server", o.server) || need_exec("echo_client", o.client) ||
	    need_exec("mpklink-run", o.run))
		return 2;
	if (!mkdtemp(dir)) {
		perror("mpklink-bench: mkdtemp");
		return 1;
	}

	printf("C echo pair, one blocking connection, round trips (the client waits in read)\n");
	fflush(stdout);
	for (size_t s = 0; s < NSIZES; s++)
		for (int t = 0; t < T_COUNT; t++) {
			int around = t == T_MPKLINK && s == 0;

			if (around && floor_p50(dir, &fl[0][0], &fl[0][1]) < 0)
				fl_ok = 0;
			{
				/* After it: the programs' own messages come first. */
				uint64_t t0 = bench_now_ns();

				r[t][s] = measure(&o, t, sizes[s], o.iters[s], dir, 0);
				fprintf(stderr, "mpklink-bench echo: %s, %zu B: %s%.1f s\n", tnames[t],
					sizes[s], r[t][s].ok ? "" : "FAILED after ",
					(double)(bench_now_ns() - t0) / 1e9);
			}
			failed |= !r[t][s].ok;
			if (around && floor_p50(dir, &fl[1][0], &fl[1][1]) < 0)
				fl_ok = 0;
		}
	/* Churn: mpklink as users run it (spinning, the default), not the
	 * doorbell-only variant. */
	for (int t = T_TCP; t <= T_MPKLINK; t++) {
		uint64_t t0 = bench_now_ns();

		ch[t] = measure(&o, t, 64, o.churn, dir, 1);
		fprintf(stderr, "mpklink-bench echo: %s, a new connection per 64 B request: %s%.1f s\n",
			tnames[t], ch[t].ok ? "" : "FAILED after ", (double)(bench_now_ns() - t0) / 1e9);
		failed |= !ch[t].ok;
	}
	if (!fl_ok)
		fprintf(stderr, "mpklink-bench echo: the shared-memory floor could not be measured "
				"(mpklink-bench transport --only floor failed)\n");

	printf("\n%-16s %12s %12s %13s %13s %10s %10s\n", "transport", "64B p50 us", "64B p99 us",
	       "64KiB p50 us", "64KiB p99 us", "64B/unix", "64B/tcp");
	for (int t = 0; t < T_COUNT; t++) {
		printf("%-16s", tnames[t]);
		for (size_t s = 0; s < NSIZES; s++) {
			if (r[t][s].ok)
				printf(" %12.2f %12.2f%s", r[t][s].p50, r[t][s].p99, s ? " " : "");
			else
				printf(" %12s %12s%s", "failed", "-", s ? " " : "");
		}
		if (r[t][0].ok && r[T_UNIX][0].ok && r[T_TCP][0].ok)
			printf(" %9.2fx %9.2fx", r[t][0].p50 / r[T_UNIX][0].p50,
			       r[t][0].p50 / r[T_TCP][0].p50);
		printf("\n");
	}
	if (fl_ok)
		printf("%-16s %12.3f %12.3f   (mpklink-bench transport --only floor: %.3f just "
		       "before mpklink's 64 B, %.3f just after)\n",
		       "floor", (fl[0][0] + fl[1][0]) / 2, (fl[0][1] + fl[1][1]) / 2, fl[0][0],
		       fl[1][0]);
	printf("\nA new connection per 64 B request (connect, round trip, close), %ld requests:\n",
	       o.churn);
	printf("%-16s %12s %12s %14s %10s\n", "transport", "p50 us", "p99 us", "requests/s", "/tcp");
	for (int t = T_TCP; t <= T_MPKLINK; t++) {
		if (!ch[t].ok) {
			printf("%-16s %12s\n", tnames[t], "failed");
			continue;
		}
		printf("%-16s %12.2f %12.2f %14.0f", tnames[t], ch[t].p50, ch[t].p99, ch[t].per_s);
		if (ch[T_TCP].ok && ch[T_TCP].per_s > 0)
			printf(" %9.2fx", ch[t].per_s / ch[T_TCP].per_s);
		printf("\n");
	}
	printf("\nRound trips: %ld of 64 B, %ld of 64 KiB per transport (after warm-up).\n",
	       o.iters[0], o.iters[1]);
	printf("Target (informational: timings are noisy, the exit status ignores them):\n");
	for (size_t s = 0; s < NSIZES; s++)
		if (r[T_BELL][s].ok && r[T_UNIX][s].ok)
			printf("  %s  mpklink-doorbell p50 no slower than the Unix socket at %zu B "
			       "(%.2f vs %.2f us)\n",
			       r[T_BELL][s].p50 <= r[T_UNIX][s].p50 ? "PASS" : "MISS", sizes[s],
			       r[T_BELL][s].p50, r[T_UNIX][s].p50);
	if (r[T_MPKLINK][0].ok && r[T_TCP][0].ok)
		printf("  %s  mpklink (spinning) 64 B p50 at most 0.15x TCP loopback (%.2fx: %.2f vs "
		       "%.2f us)\n",
		       r[T_MPKLINK][0].p50 <= 0.15 * r[T_TCP][0].p50 ? "PASS" : "MISS",
		       r[T_MPKLINK][0].p50 / r[T_TCP][0].p50, r[T_MPKLINK][0].p50, r[T_TCP][0].p50);
	if (ch[T_MPKLINK].ok && ch[T_TCP].ok)
		printf("  %s  a new connection per request: mpklink at least 0.9x TCP's requests/s "
		       "(%.2fx: %.0f vs %.0f)\n",
		       ch[T_MPKLINK].per_s >= 0.9 * ch[T_TCP].per_s ? "PASS" : "MISS",
		       ch[T_MPKLINK].per_s / ch[T_TCP].per_s, ch[T_MPKLINK].per_s, ch[T_TCP].per_s);
	if (r[T_MPKLINK][0].ok && fl_ok) {
		double f = (fl[0][0] + fl[1][0]) / 2;

		printf("  %s  mpklink (spinning) 64 B p50 within 2x the shared-memory floor (%.2fx: "
		       "%.2f vs %.3f us)\n",
		       r[T_MPKLINK][0].p50 <= 2 * f ? "PASS" : "MISS", r[T_MPKLINK][0].p50 / f,
		       r[T_MPKLINK][0].p50, f);
	}

	if (o.csv && !failed) {
		csvlen = (size_t)snprintf(csv, sizeof(csv),
					  "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n");
		for (size_t s = 0; s < NSIZES; s++)
			for (int t = 0; t < T_COUNT; t++)
				csvlen += (size_t)snprintf(csv + csvlen, sizeof(csv) - csvlen,
							   "echo,%s,%zu,%.3f,%.3f,\n", tnames[t],
							   sizes[s], r[t][s].p50, r[t][s].p99);
		/* Per request, connect to close; requests/s is the table's. */
		for (int t = T_TCP; t <= T_MPKLINK; t++)
			csvlen += (size_t)snprintf(csv + csvlen, sizeof(csv) - csvlen,
						   "churn,%s,64,%.3f,%.3f,\n", tnames[t], ch[t].p50,
						   ch[t].p99);
		if (fl_ok)
			csvlen += (size_t)snprintf(csv + csvlen, sizeof(csv) - csvlen,
						   "echo,floor,64,%.3f,%.3f,\n",
						   (fl[0][0] + fl[1][0]) / 2, (fl[0][1] + fl[1][1]) / 2);
		int e = bench_write_file_atomic(o.csv, csv, csvlen);
		if (e < 0) {
			fprintf(stderr, "mpklink-bench: %s: %s\n", o.csv, bench_strerror(e));
			failed = 1;
		} else {
			printf("\nCSV written to %s.\n", o.csv);
		}
	}
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "mpklink-bench: could not remove %s\n", dir);
	}
	if (failed)
		fprintf(stderr, "mpklink-bench echo: a measurement failed; no CSV written\n");
	return failed ? 1 : 0;
}
