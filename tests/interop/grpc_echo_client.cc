// SPDX-License-Identifier: MIT
// grpc_echo_client: an ordinary gRPC C++ client for the mpktest.Echo service
// (echo.proto) that checks every byte it gets back. It knows nothing about
// mpklink.
//
// Usage: grpc_echo_client --target HOST:PORT [--unary N] [--size S]
//                         [--stream N] [--bidi N] [--seed S] [--rtt N]
//                         [--deadline SECONDS]
// Prints "OK unary=N stream=N bidi=N bytes=TOTAL" (TOTAL: payload bytes
// received and verified) and exits 0; with --rtt N it first prints
// "RTT size=S n=N p50_us=X p99_us=Y". Any mismatch or RPC error: a message
// on stderr and exit 1. Bad command line: exit 2.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "echo.grpc.pb.h"
#include "echo_pattern.h"

namespace {

constexpr int kMaxMessage = 64 << 20;

struct Options {
	std::string target;
	std::uint64_t unary = 0, stream = 0, bidi = 0, rtt = 0;
	std::uint64_t size = 128;
	std::uint64_t seed = 1;
	std::uint64_t deadline_s = 120;
};

struct Failure : std::runtime_error {
	using std::runtime_error::runtime_error;
};

std::uint64_t splitmix64(std::uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

// The pseudo-random payload of request i: a function of (seed, i, size) only,
// so the bidi reader can check what the writer thread sent.
std::string random_payload(std::uint64_t seed, std::uint64_t i, std::size_t size)
{
	std::string out(size, '\0');
	std::uint64_t s = splitmix64(seed ^ splitmix64(i));
	for (std::size_t j = 0; j < size; j += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		std::size_t n = std::min<std::size_t>(8, size - j);
		for (std::size_t k = 0; k < n; k++)
			out[j + k] = static_cast<char>(s >> (8 * k));
	}
	return out;
}

std::string where(const std::string &a, const std::string &b)
{
	if (a.size() != b.size())
		return "payload size " + std::to_string(b.size()) + ", expected " +
		       std::to_string(a.size());
	std::size_t j = 0;
	while (j < a.size() && a[j] == b[j])
		j++;
	return "payload differs at byte " + std::to_string(j) + " of " + std::to_string(a.size());
}

std::string status_text(const grpc::Status &st)
{
	return "status " + std::to_string(st.error_code()) + " (" + st.error_message() + ")";
}

class Runner {
public:
	Runner(const Options &o, std::shared_ptr<grpc::Channel> ch)
		: o_(o), stub_(mpktest::Echo::NewStub(ch))
	{
	}

	void set_deadline(grpc::ClientContext &ctx) const
	{
		ctx.set_deadline(std::chrono::system_clock::now() +
				 std::chrono::seconds(o_.deadline_s));
	}

	// One verified unary call; returns the payload bytes received.
	std::uint64_t unary_one(std::uint64_t i, const std::string &payload)
	{
		mpktest::Msg req, resp;
		req.set_seq(i);
		req.set_payload(payload);
		grpc::ClientContext ctx;
		set_deadline(ctx);
		grpc::Status st = stub_->Unary(&ctx, req, &resp);
		if (!st.ok())
			throw Failure("unary call " + std::to_string(i) + ": " + status_text(st));
		if (resp.seq() != i)
			throw Failure("unary call " + std::to_string(i) + ": seq " +
				      std::to_string(resp.seq()) + " came back");
		if (resp.payload() != payload)
			throw Failure("unary call " + std::to_string(i) + ": " +
				      where(payload, resp.payload()));
		return resp.payload().size();
	}

	std::uint64_t unary()
	{
		std::uint64_t bytes = 0;
		for (std::uint64_t i = 0; i < o_.unary; i++)
			bytes += unary_one(i, random_payload(o_.seed, i, o_.size));
		return bytes;
	}

	std::uint64_t server_stream()
	{
		mpktest::StreamReq req;
		req.set_count(static_cast<std::uint32_t>(o_.stream));
		req.set_size(static_cast<std::uint32_t>(o_.size));
		grpc::ClientContext ctx;
		set_deadline(ctx);
		auto reader = stub_->ServerStream(&ctx, req);
		mpktest::Msg m;
		std::uint64_t i = 0, bytes = 0;
		std::string err;
		while (reader->Read(&m)) {
			if (m.seq() != i)
				err = "stream message " + std::to_string(i) + ": seq " +
				      std::to_string(m.seq());
			else if (m.payload() != mpktest::pattern(i, o_.size))
				err = "stream message " + std::to_string(i) + ": " +
				      where(mpktest::pattern(i, o_.size), m.payload());
			if (!err.empty()) {
				ctx.TryCancel();
				while (reader->Read(&m)) {
				}
				reader->Finish();
				throw Failure(err);
			}
			bytes += m.payload().size();
			i++;
		}
		grpc::Status st = reader->Finish();
		if (!st.ok())
			throw Failure("server stream after " + std::to_string(i) +
				      " messages: " + status_text(st));
		if (i != o_.stream)
			throw Failure("server stream ended after " + std::to_string(i) +
				      " messages, expected " + std::to_string(o_.stream));
		return bytes;
	}

	std::uint64_t bidi()
	{
		grpc::ClientContext ctx;
		set_deadline(ctx);
		auto rw = stub_->BidiStream(&ctx);
		std::atomic<bool> write_failed{false};
		// A writer thread and this reader run at once, so both directions
		// carry data at the same time.
		std::thread writer([&] {
			mpktest::Msg m;
			for (std::uint64_t i = 0; i < o_.bidi; i++) {
				m.set_seq(i);
				m.set_payload(random_payload(o_.seed + 1, i, o_.size));
				if (!rw->Write(m)) {
					write_failed = true;
					return;
				}
			}
			rw->WritesDone();
		});
		mpktest::Msg m;
		std::uint64_t i = 0, bytes = 0;
		std::string err;
		while (err.empty() && rw->Read(&m)) {
			std::string want = random_payload(o_.seed + 1, i, o_.size);
			if (m.seq() != i)
				err = "bidi message " + std::to_string(i) + ": seq " +
				      std::to_string(m.seq());
			else if (m.payload() != want)
				err = "bidi message " + std::to_string(i) + ": " +
				      where(want, m.payload());
			else {
				bytes += m.payload().size();
				i++;
			}
		}
		if (!err.empty()) {
			ctx.TryCancel();
			while (rw->Read(&m)) {
			}
		}
		writer.join();
		grpc::Status st = rw->Finish();
		if (!err.empty())
			throw Failure(err);
		if (!st.ok())
			throw Failure("bidi stream after " + std::to_string(i) +
				      " messages: " + status_text(st) +
				      (write_failed ? " (a write failed)" : ""));
		if (i != o_.bidi)
			throw Failure("bidi stream ended after " + std::to_string(i) +
				      " messages, expected " + std::to_string(o_.bidi));
		return bytes;
	}

	void rtt()
	{
		std::string payload = random_payload(o_.seed, 0, o_.size);
		std::uint64_t warm = std::min<std::uint64_t>(o_.rtt, 100);
		for (std::uint64_t i = 0; i < warm; i++)
			unary_one(i, payload);
		std::vector<double> us;
		us.reserve(o_.rtt);
		for (std::uint64_t i = 0; i < o_.rtt; i++) {
			auto t0 = std::chrono::steady_clock::now();
			unary_one(i, payload);
			auto t1 = std::chrono::steady_clock::now();
			us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
		}
		std::sort(us.begin(), us.end());
		auto pct = [&](double p) {
			std::size_t k = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1) + 0.5);
			return us[std::min(k, us.size() - 1)];
		};
		std::printf("RTT size=%" PRIu64 " n=%" PRIu64 " p50_us=%.1f p99_us=%.1f\n", o_.size,
			    o_.rtt, pct(0.50), pct(0.99));
		std::fflush(stdout);
	}

private:
	const Options &o_;
	std::unique_ptr<mpktest::Echo::Stub> stub_;
};

[[noreturn]] void usage(const std::string &msg)
{
	if (!msg.empty())
		std::fprintf(stderr, "grpc_echo_client: %s\n", msg.c_str());
	std::fprintf(stderr,
		     "usage: grpc_echo_client --target HOST:PORT [--unary N] [--size S]\n"
		     "                        [--stream N] [--bidi N] [--seed S] [--rtt N]\n"
		     "                        [--deadline SECONDS]\n");
	std::exit(2);
}

std::uint64_t number(const char *flag, const char *s, std::uint64_t max)
{
	char *end = nullptr;
	errno = 0;
	unsigned long long v = std::strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-' || v > max)
		usage(std::string("bad value for ") + flag + ": " + s);
	return v;
}

Options parse(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "-h" || a == "--help")
			usage("");
		if (i + 1 >= argc)
			usage("missing value for " + a);
		const char *v = argv[++i];
		if (a == "--target")
			o.target = v;
		else if (a == "--unary")
			o.unary = number("--unary", v, 1ull << 40);
		else if (a == "--stream")
			o.stream = number("--stream", v, 0xffffffffull);
		else if (a == "--bidi")
			o.bidi = number("--bidi", v, 1ull << 40);
		else if (a == "--size")
			o.size = number("--size", v, 16u << 20);
		else if (a == "--seed")
			o.seed = number("--seed", v, ~0ull);
		else if (a == "--rtt")
			o.rtt = number("--rtt", v, 1ull << 32);
		else if (a == "--deadline")
			o.deadline_s = number("--deadline", v, 86400);
		else
			usage("unknown argument " + a);
	}
	if (o.target.empty())
		usage("--target is required");
	if (!o.unary && !o.stream && !o.bidi && !o.rtt)
		usage("nothing to do: give --unary, --stream, --bidi or --rtt");
	return o;
}

} // namespace

int main(int argc, char **argv)
{
	Options o = parse(argc, argv);
	grpc::ChannelArguments args;
	args.SetMaxReceiveMessageSize(kMaxMessage);
	args.SetMaxSendMessageSize(kMaxMessage);
	auto ch = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
	if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
		std::fprintf(stderr, "grpc_echo_client: cannot connect to %s within 10 s (channel state %d)\n",
			     o.target.c_str(), static_cast<int>(ch->GetState(false)));
		return 1;
	}
	Runner r(o, ch);
	const char *phase = "rtt";
	try {
		if (o.rtt)
			r.rtt();
		if (!o.unary && !o.stream && !o.bidi)
			return 0;
		std::uint64_t bytes = 0;
		phase = "unary";
		bytes += r.unary();
		phase = "stream";
		if (o.stream)
			bytes += r.server_stream();
		phase = "bidi";
		if (o.bidi)
			bytes += r.bidi();
		std::printf("OK unary=%" PRIu64 " stream=%" PRIu64 " bidi=%" PRIu64 " bytes=%" PRIu64 "\n",
			    o.unary, o.stream, o.bidi, bytes);
		return 0;
	} catch (const Failure &e) {
		std::fprintf(stderr, "grpc_echo_client: FAIL (%s, target %s): %s\n", phase,
			     o.target.c_str(), e.what());
		return 1;
	}
}
