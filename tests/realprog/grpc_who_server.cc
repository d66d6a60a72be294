// SPDX-License-Identifier: MIT
// grpc_who_server: an ordinary gRPC C++ server (sync API) for the Unary call
// of mpktest.Echo (tests/interop/echo.proto) that prints whom it served: one
// line "served <payload>" per call, so that two of them sharing a port (gRPC
// C++ sets SO_REUSEPORT by default) can show which server got which client.
// Knows nothing about mpklink.
//
// Usage: grpc_who_server --port P [--bind HOST]
// Prints "listening on P" once it accepts connections; SIGTERM or SIGINT shut
// it down (exit 0) after printing "served N calls".
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <pthread.h>

#include <grpcpp/grpcpp.h>

#include "echo.grpc.pb.h"

namespace {

class WhoService final : public mpktest::Echo::Service {
public:
	long calls = 0;
	std::mutex mu;

	grpc::Status Unary(grpc::ServerContext *, const mpktest::Msg *req,
			   mpktest::Msg *resp) override
	{
		*resp = *req;
		std::lock_guard<std::mutex> g(mu);
		calls++;
		std::printf("served %s\n", req->payload().c_str());
		std::fflush(stdout);
		return grpc::Status::OK;
	}
};

[[noreturn]] void usage()
{
	std::fprintf(stderr, "usage: grpc_who_server --port P [--bind HOST]\n");
	std::exit(2);
}

} // namespace

int main(int argc, char **argv)
{
	long port = -1;
	std::string bind = "127.0.0.1";
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (i + 1 >= argc)
			usage();
		if (a == "--port") {
			char *end = nullptr;
			port = std::strtol(argv[++i], &end, 10);
			if (*end || port < 0 || port > 65535)
				usage();
		} else if (a == "--bind") {
			bind = argv[++i];
		} else {
			usage();
		}
	}
	if (port < 0)
		usage();

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0)
		return 1;

	WhoService service;
	grpc::ServerBuilder builder;
	int selected = 0;
	std::string addr = bind + ":" + std::to_string(port);
	builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &selected);
	builder.RegisterService(&service);
	std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
	if (!server || selected == 0) {
		std::fprintf(stderr, "grpc_who_server: cannot listen on %s\n", addr.c_str());
		return 1;
	}
	std::printf("listening on %d\n", selected);
	std::fflush(stdout);

	std::thread waiter([&] {
		int got = 0;
		sigwait(&sigs, &got);
		server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
	});
	server->Wait();
	waiter.join();
	std::printf("served %ld calls\n", service.calls);
	return 0;
}
