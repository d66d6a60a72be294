#!/bin/bash
# SPDX-License-Identifier: MIT
# grpc_aio.sh: a grpcio asyncio (grpc.aio) server, grpc_aio_server.py, and
# clients making unary, server-streaming and bidi-streaming calls against it
# one after the other, then three at once: tests/interop's C++ client (512 B and 256 KiB
# messages), py_echo.py's sync Python client, and grpc_calls.py printing
# every reply. Each client checks every byte it gets back; the server prints
# what it served when stopped. Same output over TCP and with every program
# under its own mpklink-run; the server and each client must have made links.
#
# Expects: MPKLINK_RUN, GRPC_ECHO_CLIENT (tests/interop's grpc_echo_client).
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY not found: install the Debian package python3"
need protoc protobuf-compiler
need grpc_python_plugin protobuf-compiler-grpc
[ -x "${GRPC_ECHO_CLIENT:-}" ] || fail "GRPC_ECHO_CLIENT is not the built grpc_echo_client: '${GRPC_ECHO_CLIENT:-}'"

scenario() {
	local t=127.0.0.1:$port
	: >"$dir/result"
	start_bg server 400 "$PY" "$here/grpc_aio_server.py" --port "$port"
	wait_out "$dir/server.out" "listening on" 30 || problem "the server did not listen within 30 s"
	run_fg cpp_512B 60 "$GRPC_ECHO_CLIENT" --target "$t" --unary 300 --stream 300 --bidi 300 --size 512
	result_of cpp_512B
	run_fg cpp_256KiB 60 "$GRPC_ECHO_CLIENT" --target "$t" --unary 8 --stream 4 --bidi 4 --size 262144
	result_of cpp_256KiB
	run_fg py_sync 60 "$PY" "$here/../interop/py_echo.py" client --target "$t" \
		--unary 200 --stream 200 --bidi 200 --size 512 --deadline 30
	result_of py_sync
	run_fg py_calls 60 "$PY" "$here/grpc_calls.py" --target "$t" --calls 10 --name py_calls
	result_of py_calls
	# Three clients at once.
	run_par par_cpp1 60 "$GRPC_ECHO_CLIENT" --target "$t" --unary 200 --stream 200 --bidi 200 --size 4096 --seed 2
	run_par par_cpp2 60 "$GRPC_ECHO_CLIENT" --target "$t" --unary 200 --stream 200 --bidi 200 --size 100 --seed 3
	run_par par_py 60 "$PY" "$here/../interop/py_echo.py" client --target "$t" \
		--unary 100 --stream 100 --bidi 100 --size 2048 --deadline 30 --seed 4
	par_wait
	result_of par_cpp1
	result_of par_cpp2
	result_of par_py
	stop_bg server
	echo "### server" >>"$dir/result"
	sed 's/^listening on [0-9]*$/listening on PORT/' "$dir/server.out" >>"$dir/result"
}
run_both
verdict "server cpp_512B cpp_256KiB py_sync py_calls par_cpp1 par_cpp2 par_py"
