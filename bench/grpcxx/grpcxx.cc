// SPDX-License-Identifier: MIT
// mpklink-bench-grpcxx: the word-count demo service (demo/wordcount.proto) on
// gRPC C++ (libgrpc++), to measure what issue 6 asks for beside
// `mpklink-bench compare`:
//   inproc  server and client in one process, the client's channel from
//           grpc::Server::InProcessChannel: the floor for a gRPC call;
//   server  the same service on a listening address (TCP or unix:), and
//   client  unary calls against it, so that libgrpc++ over loopback TCP can
//           be measured plain and under mpklink-run.
// The workloads are compare's exactly: Echo of N bytes (a pseudo-random
// payload, reply_bytes N, the reply must be demo_pattern) and Count of the
// text demo_gen_text makes for N words (the answer must be N). The text,
// payload, pattern and word counter are the demo's own (demo/rpc.h,
// linked from mpklink_demo_rpc), not copies. Every reply is checked.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <getopt.h>
#include <pthread.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include "health.grpc.pb.h"
#include "wordcount.grpc.pb.h"

extern "C" {
#include "rpc.h"
}

namespace {

constexpr const char *kProg = "mpklink-bench-grpcxx";
constexpr const char *kDefaultListen = "127.0.0.1:50051";
constexpr int kDrainGraceS = 5;
constexpr uint64_t kMaxCalls = 100000000;
constexpr uint64_t kMaxWords = 100000000;

using mpklink::demo::CountReply;
using mpklink::demo::CountRequest;
using mpklink::demo::EchoReply;
using mpklink::demo::EchoRequest;
using mpklink::demo::WordCount;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// ----------------------------------------------------------------- usage

void usage(FILE *f)
{
	std::fprintf(
		f,
		"Usage: %1$s server [--listen ADDR] [--api sync|callback]\n"
		"       %1$s client --target ADDR [workload options] [--label L]\n"
		"       %1$s inproc [workload options] [--api sync|callback]\n"
		"       %1$s MODE --help\n"
		"\n"
		"The word-count demo service (demo/wordcount.proto: mpklink.demo.WordCount\n"
		"Count and Echo) on gRPC C++ (libgrpc++), with compare's workloads.\n"
		"\n"
		"server: serves WordCount (and grpc.health.v1.Health/Check: \"\" and\n"
		"  mpklink.demo.WordCount are SERVING) on ADDR, HOST:PORT or unix:PATH\n"
		"  (default %2$s; port 0 picks a free one). Prints `listening on ADDR`\n"
		"  with the bound port on stdout when ready. SIGTERM/SIGINT: stops, finishes\n"
		"  running calls (cancelling any left after %3$d s), prints the calls answered\n"
		"  to stderr, exits 0. Messages of up to %4$d bytes each way, as the demo.\n"
		"client: unary calls, one at a time, against the server at ADDR.\n"
		"inproc: the server in this process, the client's channel from\n"
		"  grpc::Server::InProcessChannel (no socket at all); label `inproc`.\n"
		"\n"
		"Workload options (client, inproc):\n"
		"  --method echo|count  echo (default): Echo of --size N bytes, a pseudo-random\n"
		"                   payload asking for an N-byte reply, which must be the\n"
		"                   demo's pattern; count: Count of the demo's generated text of\n"
		"                   --size N words (~8.5 bytes a word), which must answer N\n"
		"  --size N         echo bytes (1..%5$d, default 64) or count words\n"
		"                   (0..%6$" PRIu64 ", default 1000)\n"
		"  --calls K        timed calls (default 1000)\n"
		"  --warmup W       untimed calls first (default K/10, at least 1, at most 1000;\n"
		"                   the first one connects)\n"
		"  --timeout S      deadline of each call in seconds (default 60)\n"
		"  --seed S         seed of the text or payload (default 1, as compare)\n"
		"  --label L        the transport column (default tcp; inproc: inproc)\n"
		"  --csv FILE       also write FILE as `mpklink-bench grpc --csv` does: the\n"
		"                   header bench,transport,size_bytes,p50_us,p99_us,\n"
		"                   mbytes_per_s and one row (bench echo or wordcount)\n"
		"  --api A          server, inproc: the server's API, sync (default: a pool of\n"
		"                   threads running the handlers) or callback (reactors)\n"
		"\n"
		"Output (client, inproc): one line on stdout,\n"
		"  grpcxx,LABEL,METHOD,SIZE,P50_US,P99_US,MBYTES_PER_S\n"
		"METHOD echo or count; SIZE is --size (bytes or words). Latencies are per call\n"
		"(CLOCK_MONOTONIC around the stub's call and the reply's check: the request is\n"
		"built once, untimed; serializing it is in the call); percentiles nearest-rank\n"
		"as bench/stats.h (p of n samples is sorted[ceil(p*n)-1]); MB/s as compare's\n"
		"rows: request payload bytes (echo bytes, text bytes) x calls/s / 10^6. A\n"
		"longer summary goes to stderr.\n"
		"\n"
		"Exit status: 0 every answer right; 1 a call failed or an answer was wrong\n"
		"(the message says expected and got), or the server could not start; 2 bad\n"
		"usage.\n"
		"\n"
		"Testing only: --lie (server, inproc) adds 1 to every word count and flips a\n"
		"bit in the last byte of every non-empty Echo reply, as mpklink-demo-server\n"
		"--lie, so that a test sees the client catch a wrong answer.\n",
		kProg, kDefaultListen, kDrainGraceS, DEMO_MAX_MESSAGE_BYTES, DEMO_MAX_ECHO_REPLY,
		kMaxWords);
}

// --api: the server's API; false for a word that is neither.
bool parse_api(const char *word, bool *sync)
{
	if (!std::strcmp(word, "sync"))
		*sync = true;
	else if (!std::strcmp(word, "callback"))
		*sync = false;
	else
		return false;
	return true;
}

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int usage_error(const char *fmt, ...)
{
	va_list ap;

	std::fprintf(stderr, "%s: ", kProg);
	va_start(ap, fmt);
	std::vfprintf(stderr, fmt, ap);
	va_end(ap);
	std::fprintf(stderr, "\nTry '%s --help'.\n", kProg);
	return 2;
}

bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = std::strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = std::strtod(s, &end);
	if (errno || end == s || *end || !std::isfinite(v) || v <= 0 || v > 86400)
		return false;
	*out = v;
	return true;
}

// As mpklink-demo-server: a mistyped address is a usage error naming it.
bool address_ok(const char *addr)
{
	const char *colon = std::strrchr(addr, ':');
	char *end;
	long port;

	if (std::strncmp(addr, "unix:", 5) == 0)
		return addr[5] != '\0';
	if (std::strncmp(addr, "unix-abstract:", 14) == 0)
		return addr[14] != '\0';
	if (!colon || colon == addr)
		return false;
	errno = 0;
	port = std::strtol(colon + 1, &end, 10);
	return colon[1] != '\0' && *end == '\0' && errno == 0 && port >= 0 && port <= 65535;
}

std::string bound_address(const char *addr, int port)
{
	const char *colon = std::strrchr(addr, ':');

	if (std::strncmp(addr, "unix:", 5) == 0 || std::strncmp(addr, "unix-abstract:", 14) == 0 ||
	    !colon)
		return addr;
	return std::string(addr, static_cast<size_t>(colon - addr)) + ":" + std::to_string(port);
}

const char *status_name(grpc::StatusCode c)
{
	return demo_status_name(static_cast<grpc_status_code>(c));
}

uint64_t now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// -------------------------------------------------------------- service

enum { K_COUNT, K_ECHO, K_HEALTH, K_NUM };

struct Tally {
	std::atomic<uint64_t> ok[K_NUM] = {}, failed[K_NUM] = {};
};

// The semantics of demo/server.c, one function per method for both APIs.
grpc::Status do_count(const CountRequest &in, CountReply *out, bool lie, Tally *t)
{
	uint64_t n = demo_count_words(in.text().data(), in.text().size());

	out->set_words(lie ? n + 1 : n);
	t->ok[K_COUNT]++;
	return grpc::Status::OK;
}

grpc::Status do_echo(const EchoRequest &in, EchoReply *out, bool lie, Tally *t)
{
	uint32_t n = in.reply_bytes();

	if (n > static_cast<uint32_t>(DEMO_MAX_ECHO_REPLY)) {
		t->failed[K_ECHO]++;
		return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
				    "Echo: reply_bytes " + std::to_string(n) +
					    " is over the limit of " +
					    std::to_string(DEMO_MAX_ECHO_REPLY));
	}
	std::string *p = out->mutable_payload();
	if (n == 0) {
		*p = in.payload();
	} else {
		p->resize(n);
		demo_fill_pattern(reinterpret_cast<uint8_t *>(&(*p)[0]), n);
	}
	if (lie && !p->empty())
		(*p)[p->size() - 1] ^= 0x20;
	t->ok[K_ECHO]++;
	return grpc::Status::OK;
}

// grpc.health.v1.Health/Check as the demo's: "" and the service are
// SERVING, any other name is NOT_FOUND. Written here (from demo/health.proto)
// rather than gRPC's default health service, so that a --api sync server
// runs no callback-API service at all.
grpc::Status do_health(const HealthCheckRequest &in, HealthCheckResponse *out, Tally *t)
{
	if (in.service().empty() || in.service() == DEMO_SERVICE) {
		out->set_status(HealthCheckResponse::SERVING);
		t->ok[K_HEALTH]++;
		return grpc::Status::OK;
	}
	t->failed[K_HEALTH]++;
	return grpc::Status(grpc::StatusCode::NOT_FOUND,
			    "Health/Check: unknown service '" + in.service().substr(0, 100) + "'");
}

class CallbackHealth final : public Health::CallbackService {
public:
	explicit CallbackHealth(Tally *t) : t_(t) {}

	grpc::ServerUnaryReactor *Check(grpc::CallbackServerContext *ctx,
					const HealthCheckRequest *in,
					HealthCheckResponse *out) override
	{
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();

		r->Finish(do_health(*in, out, t_));
		return r;
	}

private:
	Tally *t_;
};

class SyncHealth final : public Health::Service {
public:
	explicit SyncHealth(Tally *t) : t_(t) {}

	grpc::Status Check(grpc::ServerContext *, const HealthCheckRequest *in,
			   HealthCheckResponse *out) override
	{
		return do_health(*in, out, t_);
	}

private:
	Tally *t_;
};

class CallbackImpl final : public WordCount::CallbackService {
public:
	CallbackImpl(bool lie, Tally *t) : lie_(lie), t_(t) {}

	grpc::ServerUnaryReactor *Count(grpc::CallbackServerContext *ctx, const CountRequest *in,
					CountReply *out) override
	{
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();

		r->Finish(do_count(*in, out, lie_, t_));
		return r;
	}

	grpc::ServerUnaryReactor *Echo(grpc::CallbackServerContext *ctx, const EchoRequest *in,
				       EchoReply *out) override
	{
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();

		r->Finish(do_echo(*in, out, lie_, t_));
		return r;
	}

private:
	bool lie_;
	Tally *t_;
};

class SyncImpl final : public WordCount::Service {
public:
	SyncImpl(bool lie, Tally *t) : lie_(lie), t_(t) {}

	grpc::Status Count(grpc::ServerContext *, const CountRequest *in, CountReply *out) override
	{
		return do_count(*in, out, lie_, t_);
	}

	grpc::Status Echo(grpc::ServerContext *, const EchoRequest *in, EchoReply *out) override
	{
		return do_echo(*in, out, lie_, t_);
	}

private:
	bool lie_;
	Tally *t_;
};

struct Service {
	Tally tally;
	std::unique_ptr<grpc::Service> impl, health;

	Service(bool sync, bool lie)
	{
		if (sync) {
			impl.reset(new SyncImpl(lie, &tally));
			health.reset(new SyncHealth(&tally));
		} else {
			impl.reset(new CallbackImpl(lie, &tally));
			health.reset(new CallbackHealth(&tally));
		}
	}
};

// listen: nullptr for inproc (no port). *port: the bound port (1 for unix:).
std::unique_ptr<grpc::Server> build_server(Service *svc, const char *listen, int *port)
{
	grpc::ServerBuilder b;

	if (listen)
		b.AddListeningPort(listen, grpc::InsecureServerCredentials(), port);
	b.SetMaxReceiveMessageSize(DEMO_MAX_MESSAGE_BYTES);
	b.SetMaxSendMessageSize(DEMO_MAX_MESSAGE_BYTES);
	// As the demo: a busy port is an error, not a silent share.
	b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
	b.RegisterService(svc->impl.get());
	b.RegisterService(svc->health.get());
	return b.BuildAndStart();
}

// --------------------------------------------------------------- client

enum class Method { Echo, Count };

struct Workload {
	Method method = Method::Echo;
	uint64_t size = 64;         // echo bytes or count words, as given
	bool have_size = false;
	uint64_t calls = 1000;
	uint64_t warmup = 0;
	bool have_warmup = false;
	double timeout_s = 60;
	uint64_t seed = 1;
	std::string label;
	const char *csv = nullptr;
	// Built once (untimed), sent as is every call.
	CountRequest creq;
	EchoRequest ereq;
	uint64_t size_bytes = 0;    // request payload bytes: compare's size_bytes
};

bool prepare(Workload *w)
{
	if (w->method == Method::Count) {
		uint8_t *text = nullptr;
		size_t len = 0;

		if (demo_gen_text(w->size, w->seed, &text, &len) < 0) {
			std::fprintf(stderr, "%s: out of memory for a %" PRIu64 "-word text\n",
				     kProg, w->size);
			return false;
		}
		w->creq.set_text(text, len);
		std::free(text);
		w->size_bytes = len;
	} else {
		std::string payload(w->size, '\0');

		demo_fill_random(reinterpret_cast<uint8_t *>(&payload[0]), payload.size(),
				 w->seed);
		w->ereq.set_payload(std::move(payload));
		w->ereq.set_reply_bytes(static_cast<uint32_t>(w->size));
		w->size_bytes = w->size;
	}
	return true;
}

// One call, checked. true, or false with *err saying what went wrong.
bool one_call(WordCount::Stub *stub, const Workload &w, std::string *err)
{
	grpc::ClientContext ctx;
	char buf[256];

	ctx.set_deadline(std::chrono::system_clock::now() +
			 std::chrono::microseconds(static_cast<int64_t>(w.timeout_s * 1e6)));
	if (w.method == Method::Count) {
		CountReply rep;
		grpc::Status st = stub->Count(&ctx, w.creq, &rep);

		if (!st.ok()) {
			*err = std::string(DEMO_METHOD_COUNT) + ": status " +
			       status_name(st.error_code()) +
			       (st.error_message().empty() ? "" : ": " + st.error_message());
			return false;
		}
		if (rep.words() != w.size) {
			std::snprintf(buf, sizeof buf,
				      "%s: wrong answer: expected %" PRIu64 " words, got %" PRIu64,
				      DEMO_METHOD_COUNT, w.size, static_cast<uint64_t>(rep.words()));
			*err = buf;
			return false;
		}
		return true;
	}
	EchoReply rep;
	grpc::Status st = stub->Echo(&ctx, w.ereq, &rep);

	if (!st.ok()) {
		*err = std::string(DEMO_METHOD_ECHO) + ": status " + status_name(st.error_code()) +
		       (st.error_message().empty() ? "" : ": " + st.error_message());
		return false;
	}
	const std::string &p = rep.payload();
	if (p.size() != w.size) {
		std::snprintf(buf, sizeof buf,
			      "%s: wrong answer: expected a %" PRIu64 "-byte reply, got %zu bytes",
			      DEMO_METHOD_ECHO, w.size, p.size());
		*err = buf;
		return false;
	}
	const uint8_t *d = reinterpret_cast<const uint8_t *>(p.data());
	size_t bad = demo_check_pattern(d, p.size());
	if (bad != p.size()) {
		std::snprintf(buf, sizeof buf,
			      "%s: wrong answer: reply byte %zu: expected 0x%02x, got 0x%02x",
			      DEMO_METHOD_ECHO, bad, demo_pattern_byte(bad), d[bad]);
		*err = buf;
		return false;
	}
	return true;
}

// Nearest rank, as bench_percentile (bench/util.c): sorted[ceil(q*n)-1].
uint64_t percentile(const std::vector<uint64_t> &v, double q)
{
	double rank = q * static_cast<double>(v.size());
	size_t i = static_cast<size_t>(rank);

	if (static_cast<double>(i) < rank)
		i++;
	if (i == 0)
		i = 1;
	if (i > v.size())
		i = v.size();
	return v[i - 1];
}

bool write_csv(const Workload &w, double p50, double p99, double mbps)
{
	std::string tmp = std::string(w.csv) + ".tmp." + std::to_string(getpid());
	FILE *f = std::fopen(tmp.c_str(), "w");

	if (!f) {
		std::fprintf(stderr, "%s: %s: %s\n", kProg, tmp.c_str(), std::strerror(errno));
		return false;
	}
	std::fprintf(f, "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s\n");
	std::fprintf(f, "%s,%s,%" PRIu64 ",%.3f,%.3f,%.3f\n",
		     w.method == Method::Count ? "wordcount" : "echo", w.label.c_str(), w.size_bytes,
		     p50, p99, mbps);
	if (std::fclose(f) != 0 || std::rename(tmp.c_str(), w.csv) != 0) {
		std::fprintf(stderr, "%s: %s: %s\n", kProg, w.csv, std::strerror(errno));
		std::remove(tmp.c_str());
		return false;
	}
	return true;
}

// Warm-up, then the timed calls; prints the results. 0, or 1 on failure.
int measure(const std::shared_ptr<grpc::Channel> &ch, const Workload &w, const char *where)
{
	std::unique_ptr<WordCount::Stub> stub = WordCount::NewStub(ch);
	const char *mname = w.method == Method::Count ? "count" : "echo";
	std::vector<uint64_t> ns;
	std::string err;

	ns.reserve(w.calls);
	for (uint64_t i = 0; i < w.warmup; i++)
		if (!one_call(stub.get(), w, &err)) {
			std::fprintf(stderr, "%s: %s: warm-up call %" PRIu64 ": %s\n", kProg, where,
				     i + 1, err.c_str());
			return 1;
		}
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < w.calls; i++) {
		uint64_t a = now_ns();

		if (!one_call(stub.get(), w, &err)) {
			std::fprintf(stderr, "%s: %s: call %" PRIu64 ": %s\n", kProg, where, i + 1,
				     err.c_str());
			return 1;
		}
		ns.push_back(now_ns() - a);
	}
	double wall = static_cast<double>(now_ns() - t0) / 1e9;
	std::sort(ns.begin(), ns.end());
	long double sum = 0;
	for (uint64_t v : ns)
		sum += v;
	double p50 = static_cast<double>(percentile(ns, 0.50)) / 1e3;
	double p90 = static_cast<double>(percentile(ns, 0.90)) / 1e3;
	double p99 = static_cast<double>(percentile(ns, 0.99)) / 1e3;
	double p999 = static_cast<double>(percentile(ns, 0.999)) / 1e3;
	double mean = static_cast<double>(sum / ns.size()) / 1e3;
	double rate = static_cast<double>(ns.size()) / wall;
	double mbps = static_cast<double>(w.size_bytes) * rate / 1e6;

	std::fprintf(stderr,
		     "grpcxx %s %s method=%s size=%" PRIu64 " size_bytes=%" PRIu64
		     " calls=%zu warmup=%" PRIu64 " seconds=%.3f\n"
		     "  min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f p99.9_us=%.1f"
		     " max_us=%.1f mean_us=%.1f calls/s=%.1f MB/s=%.3f; every answer checked: right\n",
		     w.label.c_str(), where, mname, w.size, w.size_bytes, ns.size(), w.warmup, wall,
		     static_cast<double>(ns.front()) / 1e3, p50, p90, p99, p999,
		     static_cast<double>(ns.back()) / 1e3, mean, rate, mbps);
	std::printf("grpcxx,%s,%s,%" PRIu64 ",%.3f,%.3f,%.3f\n", w.label.c_str(), mname, w.size,
		    p50, p99, mbps);
	std::fflush(stdout);
	if (w.csv && !write_csv(w, p50, p99, mbps))
		return 1;
	return 0;
}

grpc::ChannelArguments channel_args()
{
	grpc::ChannelArguments a;

	a.SetMaxReceiveMessageSize(DEMO_MAX_MESSAGE_BYTES);
	a.SetMaxSendMessageSize(DEMO_MAX_MESSAGE_BYTES);
	return a;
}

// ---------------------------------------------------------- option parsing

enum Opt {
	O_LISTEN = 0x100, O_TARGET, O_METHOD, O_SIZE, O_CALLS, O_WARMUP, O_TIMEOUT, O_SEED,
	O_LABEL, O_CSV, O_API, O_LIE,
};

// Options shared by client and inproc; true when opt was one of them
// (*rc set to 2 on a bad value).
bool workload_opt(int opt, Workload *w, int *rc)
{
	uint64_t v;

	switch (opt) {
	case O_METHOD:
		if (!std::strcmp(optarg, "echo"))
			w->method = Method::Echo;
		else if (!std::strcmp(optarg, "count"))
			w->method = Method::Count;
		else
			*rc = usage_error("--method '%s': want echo or count", optarg);
		return true;
	case O_SIZE:
		if (!parse_u64(optarg, 0, UINT32_MAX, &w->size))
			*rc = usage_error("--size '%s': want a whole number (echo bytes or count "
					  "words)",
					  optarg);
		w->have_size = true;
		return true;
	case O_CALLS:
		if (!parse_u64(optarg, 1, kMaxCalls, &w->calls))
			*rc = usage_error("--calls '%s': want 1..%" PRIu64, optarg, kMaxCalls);
		return true;
	case O_WARMUP:
		if (!parse_u64(optarg, 0, kMaxCalls, &w->warmup))
			*rc = usage_error("--warmup '%s': want 0..%" PRIu64, optarg, kMaxCalls);
		w->have_warmup = true;
		return true;
	case O_TIMEOUT:
		if (!parse_secs(optarg, &w->timeout_s))
			*rc = usage_error("--timeout '%s': want seconds in (0, 86400]", optarg);
		return true;
	case O_SEED:
		if (!parse_u64(optarg, 0, UINT64_MAX, &v))
			*rc = usage_error("--seed '%s': want a whole number", optarg);
		w->seed = v;
		return true;
	case O_LABEL:
		if (!*optarg || std::strpbrk(optarg, ",\"\n\r"))
			*rc = usage_error("--label '%s': want a name without commas, quotes or "
					  "newlines",
					  optarg);
		w->label = optarg;
		return true;
	case O_CSV:
		if (!*optarg)
			*rc = usage_error("--csv needs a file name");
		w->csv = optarg;
		return true;
	}
	return false;
}

// After parsing: the size's range for the method, the warm-up default.
int finish_workload(Workload *w)
{
	if (!w->have_size)
		w->size = w->method == Method::Count ? 1000 : 64;
	if (w->method == Method::Echo &&
	    (w->size < 1 || w->size > static_cast<uint64_t>(DEMO_MAX_ECHO_REPLY)))
		return usage_error("--size %" PRIu64 ": echo wants 1..%d bytes", w->size,
				   DEMO_MAX_ECHO_REPLY);
	if (w->method == Method::Count && w->size > kMaxWords)
		return usage_error("--size %" PRIu64 ": count wants 0..%" PRIu64 " words", w->size,
				   kMaxWords);
	if (!w->have_warmup)
		w->warmup = std::min<uint64_t>(std::max<uint64_t>(w->calls / 10, 1), 1000);
	return 0;
}

// getopt_long's error for argv, named.
int bad_option(int opt, char **argv)
{
	const char *what = argv[optind - 1];

	if (opt == ':')
		return usage_error("option '%s' needs a value", what);
	return usage_error("unknown option '%s' for this mode", what);
}

#define WORKLOAD_OPTIONS                                                                   \
	{"method", required_argument, nullptr, O_METHOD},                                  \
		{"size", required_argument, nullptr, O_SIZE},                              \
		{"calls", required_argument, nullptr, O_CALLS},                            \
		{"warmup", required_argument, nullptr, O_WARMUP},                          \
		{"timeout", required_argument, nullptr, O_TIMEOUT},                        \
		{"seed", required_argument, nullptr, O_SEED},                              \
		{"label", required_argument, nullptr, O_LABEL},                            \
		{"csv", required_argument, nullptr, O_CSV}

// ------------------------------------------------------------------ modes

// --api sync is the default because, with the shim as of this writing, a
// server running any callback-API service (gRPC's default health service is
// one) is killed by SIGSEGV under mpklink-run: gRPC's pollers get an epoll
// event carrying the shim's own tag (0xfeed4d504b...) as a grpc_fd pointer.
int server_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"listen", required_argument, nullptr, O_LISTEN},
		{"api", required_argument, nullptr, O_API},
		{"lie", no_argument, nullptr, O_LIE},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	const char *listen = kDefaultListen;
	bool sync = true, lie = false;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", lo, nullptr)) != -1) {
		switch (opt) {
		case O_LISTEN: listen = optarg; break;
		case O_API:
			if (!parse_api(optarg, &sync))
				return usage_error("--api '%s': want callback or sync", optarg);
			break;
		case O_LIE: lie = true; break;
		case 'h': usage(stdout); return 0;
		default: return bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!address_ok(listen))
		return usage_error("--listen '%s': want HOST:PORT (port 0..65535) or unix:PATH",
				   listen);

	// Before gRPC starts a thread: all inherit the mask, so only our
	// sigwait takes these.
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

	Service svc(sync, lie);
	int port = 0;
	std::unique_ptr<grpc::Server> server = build_server(&svc, listen, &port);
	if (!server || port == 0) {
		std::fprintf(stderr,
			     "%s: cannot listen on '%s' (in use, or not an address of this host)\n",
			     kProg, listen);
		return 1;
	}
	std::printf("listening on %s\n", bound_address(listen, port).c_str());
	std::fflush(stdout);

	int got = 0;
	std::thread waiter([&] {
		if (sigwait(&sigs, &got) != 0)
			got = SIGTERM;
		// Calls still running after the grace are cancelled.
		server->Shutdown(std::chrono::system_clock::now() +
				 std::chrono::seconds(kDrainGraceS));
	});
	server->Wait();
	waiter.join();
	std::fprintf(stderr,
		     "%s: stopped by %s; calls answered OK / with an error status: Count %" PRIu64
		     "/%" PRIu64 ", Echo %" PRIu64 "/%" PRIu64 ", Health/Check %" PRIu64
		     "/%" PRIu64 "\n",
		     kProg, got == SIGINT ? "SIGINT" : "SIGTERM", svc.tally.ok[K_COUNT].load(),
		     svc.tally.failed[K_COUNT].load(), svc.tally.ok[K_ECHO].load(),
		     svc.tally.failed[K_ECHO].load(), svc.tally.ok[K_HEALTH].load(),
		     svc.tally.failed[K_HEALTH].load());
	return 0;
}

int client_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"target", required_argument, nullptr, O_TARGET},
		WORKLOAD_OPTIONS,
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	Workload w;
	const char *target = nullptr;
	int opt, rc = 0;

	w.label = "tcp";
	while ((opt = getopt_long(argc, argv, ":h", lo, nullptr)) != -1) {
		if (workload_opt(opt, &w, &rc)) {
			if (rc)
				return rc;
			continue;
		}
		switch (opt) {
		case O_TARGET:
			if (!*optarg)
				return usage_error("--target needs an address");
			target = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: return bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!target)
		return usage_error("client needs --target ADDR (HOST:PORT or unix:PATH)");
	if ((rc = finish_workload(&w)))
		return rc;
	if (!prepare(&w))
		return 1;
	std::shared_ptr<grpc::Channel> ch =
		grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), channel_args());
	if (!ch) {
		std::fprintf(stderr, "%s: cannot create a channel to '%s'\n", kProg, target);
		return 1;
	}
	return measure(ch, w, target);
}

int inproc_main(int argc, char **argv)
{
	static const struct option lo[] = {
		WORKLOAD_OPTIONS,
		{"api", required_argument, nullptr, O_API},
		{"lie", no_argument, nullptr, O_LIE},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	Workload w;
	bool sync = true, lie = false;
	int opt, rc = 0;

	w.label = "inproc";
	while ((opt = getopt_long(argc, argv, ":h", lo, nullptr)) != -1) {
		if (workload_opt(opt, &w, &rc)) {
			if (rc)
				return rc;
			continue;
		}
		switch (opt) {
		case O_API:
			if (!parse_api(optarg, &sync))
				return usage_error("--api '%s': want callback or sync", optarg);
			break;
		case O_LIE: lie = true; break;
		case 'h': usage(stdout); return 0;
		default: return bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if ((rc = finish_workload(&w)))
		return rc;
	if (!prepare(&w))
		return 1;
	Service svc(sync, lie);
	std::unique_ptr<grpc::Server> server = build_server(&svc, nullptr, nullptr);
	if (!server) {
		std::fprintf(stderr, "%s: cannot start the in-process server\n", kProg);
		return 1;
	}
	rc = measure(server->InProcessChannel(channel_args()), w, "in-process");
	server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(kDrainGraceS));
	server->Wait();
	return rc;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("no mode: want server, client or inproc");
	const char *mode = argv[1];

	if (!std::strcmp(mode, "--help") || !std::strcmp(mode, "-h") || !std::strcmp(mode, "help")) {
		usage(stdout);
		return 0;
	}
	// As the demo's programs: glibc keeps freed memory instead of
	// unmapping it, so a 10^7-word call does not fault 85 MB in anew.
	demo_malloc_keep();
	opterr = 0;
	optind = 1;
	// Each mode parses the arguments after its name; argv[0] stays the
	// program, so getopt's argv[optind - 1] is an argument, never the mode.
	argv[1] = argv[0];
	if (!std::strcmp(mode, "server"))
		return server_main(argc - 1, argv + 1);
	if (!std::strcmp(mode, "client"))
		return client_main(argc - 1, argv + 1);
	if (!std::strcmp(mode, "inproc"))
		return inproc_main(argc - 1, argv + 1);
	return usage_error("unknown mode '%s': want server, client or inproc", mode);
}
