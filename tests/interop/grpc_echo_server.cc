// SPDX-License-Identifier: MIT
// grpc_echo_server: an ordinary gRPC C++ server for the mpktest.Echo service
// (echo.proto). It knows nothing about mpklink; the interop tests run it plain
// and under mpklink-run.
//
// Usage: grpc_echo_server --port P [--bind HOST] [--pollers N]
// Prints "listening on P" once it accepts connections; SIGTERM or SIGINT shut
// it down cleanly (exit 0).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <pthread.h>

#include <grpcpp/grpcpp.h>

#include "echo.grpc.pb.h"
#include "echo_pattern.h"

namespace {

constexpr int kMaxMessage = 64 << 20;
constexpr std::uint32_t kMaxStreamSize = 16u << 20;

class EchoService final : public mpktest::Echo::Service {
	grpc::Status Unary(grpc::ServerContext *, const mpktest::Msg *req,
			   mpktest::Msg *resp) override
	{
		*resp = *req;
		return grpc::Status::OK;
	}

	grpc::Status ServerStream(grpc::ServerContext *ctx, const mpktest::StreamReq *req,
				  grpc::ServerWriter<mpktest::Msg> *w) override
	{
		if (req->size() > kMaxStreamSize)
			return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "size too large");
		mpktest::Msg m;
		for (std::uint32_t i = 0; i < req->count(); i++) {
			if (ctx->IsCancelled())
				return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
			m.set_seq(i);
			m.set_payload(mpktest::pattern(i, req->size()));
			if (!w->Write(m))
				return grpc::Status(grpc::StatusCode::ABORTED, "write failed");
		}
		return grpc::Status::OK;
	}

	grpc::Status BidiStream(grpc::ServerContext *,
				grpc::ServerReaderWriter<mpktest::Msg, mpktest::Msg> *s) override
	{
		mpktest::Msg m;
		while (s->Read(&m)) {
			if (!s->Write(m))
				return grpc::Status(grpc::StatusCode::ABORTED, "write failed");
		}
		return grpc::Status::OK;
	}
};

[[noreturn]] void usage(const char *msg)
{
	if (msg)
		std::fprintf(stderr, "grpc_echo_server: %s\n", msg);
	std::fprintf(stderr, "usage: grpc_echo_server --port P [--bind HOST] [--pollers N]\n"
			     "  HOST defaults to [::] (IPv6 and IPv4); N: the sync server's\n"
			     "  minimum and maximum polling threads (gRPC's default otherwise)\n");
	std::exit(2);
}

} // namespace

int main(int argc, char **argv)
{
	long port = -1;
	long pollers = 0;
	std::string bind = "[::]";
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if ((a == "--port" || a == "--bind" || a == "--pollers") && i + 1 >= argc)
			usage("missing value");
		if (a == "--port") {
			char *end = nullptr;
			port = std::strtol(argv[++i], &end, 10);
			if (*end || port < 0 || port > 65535)
				usage("bad --port");
		} else if (a == "--pollers") {
			char *end = nullptr;
			pollers = std::strtol(argv[++i], &end, 10);
			if (*end || pollers < 1 || pollers > 64)
				usage("bad --pollers");
		} else if (a == "--bind") {
			bind = argv[++i];
		} else if (a == "-h" || a == "--help") {
			usage(nullptr);
		} else {
			usage(("unknown argument " + a).c_str());
		}
	}
	if (port < 0)
		usage("--port is required");

	// Block the shutdown signals in every thread (gRPC's included); one
	// thread takes them with sigwait and shuts the server down.
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) {
		std::perror("grpc_echo_server: pthread_sigmask");
		return 1;
	}

	EchoService service;
	grpc::ServerBuilder builder;
	int selected = 0;
	std::string addr = bind + ":" + std::to_string(port);
	builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &selected);
	builder.SetMaxReceiveMessageSize(kMaxMessage);
	builder.SetMaxSendMessageSize(kMaxMessage);
	builder.RegisterService(&service);
	if (pollers > 0) {
		builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS,
					    static_cast<int>(pollers));
		builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
					    static_cast<int>(pollers));
	}
	std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
	if (!server || selected == 0) {
		std::fprintf(stderr, "grpc_echo_server: cannot listen on %s\n", addr.c_str());
		return 1;
	}
	std::printf("listening on %d\n", selected);
	std::fflush(stdout);

	int got = 0;
	std::thread waiter([&] {
		if (sigwait(&sigs, &got) != 0)
			got = 0;
		server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
	});
	server->Wait();
	waiter.join();
	std::fprintf(stderr, "grpc_echo_server: stopped (%s)\n", got ? strsignal(got) : "?");
	return 0;
}
