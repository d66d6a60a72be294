#!/bin/bash
# SPDX-License-Identifier: MIT
# grpc_reuseport.sh: two gRPC C++ servers (grpc_who_server) listening on one
# port -- gRPC C++ sets SO_REUSEPORT by default, so the kernel spreads the
# connections between them -- each under its own mpklink-run, and 20 client
# processes (grpc_calls.py: 3 calls each, odd ones on a fresh channel per
# call), each under its own mpklink-run, 5 at a time. Every client must be
# served: the clients' outputs, and the union of what the two servers say
# they served, must equal TCP's. Which server got which client differs run
# to run and is only reported. Here the connections may stay TCP (one port,
# two servers): links are reported, not required.
#
# Expects: MPKLINK_RUN, GRPC_WHO_SERVER (built beside this script).
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY not found: install the Debian package python3"
need protoc protobuf-compiler
need grpc_python_plugin protobuf-compiler-grpc
[ -x "${GRPC_WHO_SERVER:-}" ] || fail "GRPC_WHO_SERVER is not the built grpc_who_server: '${GRPC_WHO_SERVER:-}'"
nclients=20
batch=5
run_budget=260 # 4 batches of clients, 60 s each at most

scenario() {
	local i j n name args
	: >"$dir/result"
	start_bg serverA 400 "$GRPC_WHO_SERVER" --port "$port"
	start_bg serverB 400 "$GRPC_WHO_SERVER" --port "$port"
	for s in serverA serverB; do
		wait_out "$dir/$s.out" "listening on" 20 || problem "$s did not listen within 20 s"
	done
	wait_listeners "$port" 2 10 ||
		problem "not two sockets listening on port $port: $(ss -Htln "sport = :$port" | wc -l)"
	for ((i = 0; i < nclients; i += batch)); do
		for ((j = i; j < i + batch && j < nclients; j++)); do
			name=$(printf 'client%02d' "$j")
			args=(--calls 3 --deadline 5 --name "$name")
			[ $((j % 2)) -eq 1 ] && args+=(--channels 3)
			run_par "$name" 60 "$PY" "$here/grpc_calls.py" --target "127.0.0.1:$port" "${args[@]}"
		done
		par_wait
	done
	for ((j = 0; j < nclients; j++)); do
		name=$(printf 'client%02d' "$j")
		case ${fg_st[$name]} in
		0 | 124 | 137) ;;
		*) problem "$name exited ${fg_st[$name]}" ;;
		esac
		result_of "$name"
	done
	stop_bg serverA
	stop_bg serverB
	echo "### what the two servers served, sorted" >>"$dir/result"
	cat "$dir/serverA.out" "$dir/serverB.out" | grep '^served .* call ' | sort >>"$dir/result"
	n=$(cat "$dir/serverA.out" "$dir/serverB.out" | sed -n 's/^served \([0-9]*\) calls$/\1/p' |
		awk '{s += $1} END {print s + 0}')
	echo "served $n calls in all" >>"$dir/result"
	for s in serverA serverB; do
		echo "  $s served $(grep -c '^served .* call ' "$dir/$s.out") calls, from" \
			"$(sed -n 's/^served \(client[0-9]*\) call .*/\1/p' "$dir/$s.out" | sort -u | wc -l) clients"
	done
}
run_both
differ=()
for ((j = 0; j < nclients; j++)); do
	name=$(printf 'client%02d' "$j")
	cmp -s "$tmp/tcp/$name.out" "$tmp/mpk/$name.out" || differ+=("$name")
done
echo "== clients whose output differs under mpklink: ${#differ[@]} of $nclients${differ[*]:+: ${differ[*]}}"
verdict "serverA serverB" shared
