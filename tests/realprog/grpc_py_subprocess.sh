#!/bin/bash
# SPDX-License-Identifier: MIT
# grpc_py_subprocess.sh: a grpcio (Python) client that runs subprocesses
# between its calls -- subprocess.run(["true"]) and subprocess.run(["echo",
# "x"]) reading the output -- making 20 Unary calls to the C++ echo server
# and printing each reply. CPython's subprocess forks with vfork: the child
# runs close_range in memory it shares with its parent. Same output over TCP
# and with both under mpklink-run; both sides must have made links.
#
# Expects: MPKLINK_RUN, GRPC_ECHO_SERVER (tests/interop's grpc_echo_server).
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY not found: install the Debian package python3"
need protoc protobuf-compiler
need grpc_python_plugin protobuf-compiler-grpc
[ -x "${GRPC_ECHO_SERVER:-}" ] || fail "GRPC_ECHO_SERVER is not the built grpc_echo_server: '${GRPC_ECHO_SERVER:-}'"

scenario() {
	start_bg server 200 "$GRPC_ECHO_SERVER" --port "$port" --bind 127.0.0.1
	wait_out "$dir/server.out" "listening on" 20 || problem "the server did not listen within 20 s"
	run_fg client 150 "$PY" "$here/grpc_calls.py" --target "127.0.0.1:$port" \
		--calls 20 --subprocess --deadline 5
	[ $fg_status -eq 0 ] || [ $fg_status -eq 124 ] || problem "the client exited $fg_status"
	stop_bg server
	cp "$dir/client.out" "$dir/result"
}
run_both
verdict "server client"
