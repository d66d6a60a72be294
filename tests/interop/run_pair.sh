#!/bin/bash
# SPDX-License-Identifier: MIT
# run_pair.sh SERVER_CMD... -- CLIENT_CMD...
#
# Starts SERVER_CMD on a free TCP port, waits (bounded) until something
# listens there, runs CLIENT_CMD, stops the server on every exit path and exits
# with the client's status (or 1 when the client passed but the server did not
# end cleanly: exit 0, or 128+SIGTERM after we stopped it).
#
# The literal {PORT} in any argument of either command is replaced by the port;
# both commands also get it as $MPK_PORT.
#
# Environment:
#   MPK_PORT           use this port instead of picking a free one
#   MPK_SERVER_WRAP    command prefix for the server, word-split, e.g.
#   MPK_CLIENT_WRAP      "/path/mpklink-run -e /path/app.env --"; empty default
#   MPK_PAIR_TIMEOUT   seconds either command may run (default 240)
#   MPK_READY_TIMEOUT  seconds to wait for the server to listen (default 20)
#   MPK_SERVER_LOG     keep the server's output in this file too
# The server's output is printed to stderr, each line prefixed "[server] ",
# once it has stopped.
# shellcheck disable=SC2317 # cleanup and its helpers run from a trap
set -euo pipefail

me=run_pair.sh
pair_timeout=${MPK_PAIR_TIMEOUT:-240}
ready_timeout=${MPK_READY_TIMEOUT:-20}

usage() {
	echo "usage: $me SERVER_CMD... -- CLIENT_CMD...   ({PORT} is replaced by the port)" >&2
	exit 2
}

server=()
client=()
seen_sep=0
for a in "$@"; do
	if [ $seen_sep -eq 0 ] && [ "$a" = -- ]; then
		seen_sep=1
	elif [ $seen_sep -eq 0 ]; then
		server+=("$a")
	else
		client+=("$a")
	fi
done
if [ $seen_sep -ne 1 ] || [ ${#server[@]} -eq 0 ] || [ ${#client[@]} -eq 0 ]; then
	usage
fi

for t in ss timeout; do
	command -v $t >/dev/null || { echo "$me: '$t' not found (Debian: iproute2 / coreutils)" >&2; exit 1; }
done

read -r -a swrap <<<"${MPK_SERVER_WRAP:-}"
read -r -a cwrap <<<"${MPK_CLIENT_WRAP:-}"

port_in_use() { ss -Htan "( sport = :$1 )" | grep -q .; }
listening() { ss -Hltn "( sport = :$1 )" | grep -q .; }

# Sets $port to a free one. Not called in $(...): a subshell would not advance
# this shell's $RANDOM, and every retry would draw the same port.
pick_port() {
	local p
	for _ in $(seq 1 500); do
		# Below the kernel's ephemeral range (32768+), so outgoing
		# connections do not take it meanwhile.
		p=$((20000 + RANDOM % 12000))
		if ! port_in_use "$p"; then
			port=$p
			return 0
		fi
	done
	echo "$me: no free port found" >&2
	return 1
}

subst() { # subst PORT ARGS...: sets $substed to ARGS with {PORT} replaced
	local port=$1 a
	shift
	substed=()
	for a in "$@"; do
		substed+=("${a//\{PORT\}/$port}")
	done
}

slog=$(mktemp "${TMPDIR:-/tmp}/run_pair.XXXXXX")
spid=
server_status=
dumped=0

# Prints where each thread of the server's processes waits, with their
# stacks when gdb is installed: a server that ignores SIGTERM is a hang to
# explain, whichever side it is on.
dump_stuck() {
	local q t
	echo "$me: server still running 3.5 s after SIGTERM; its threads:" >&2
	for q in $(pgrep -g "$spid"); do
		echo "$me: pid $q ($(cat "/proc/$q/comm" 2>/dev/null))" >&2
		for t in /proc/"$q"/task/*; do
			echo "  $(cat "$t/comm" 2>/dev/null) $(grep State "$t/status" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)" >&2
		done
		if command -v gdb >/dev/null; then
			gdb -p "$q" -batch -ex "thread apply all bt" 2>&1 | grep '^#\|^Thread' >&2 || true
		fi
	done
}

# Stops the server (TERM, then KILL after 5 s) and records its status.
stop_server() {
	[ -n "$spid" ] || return 0
	if kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$spid" 2>/dev/null || break
			# timeout(1) kills at 5 s: say where it hangs before that.
			[ "$i" -ne 35 ] || dump_stuck
			sleep 0.1
		done
		if kill -0 "$spid" 2>/dev/null; then
			echo "$me: server did not stop within 5 s of SIGTERM; killing it" >&2
			# timeout(1) leads its own process group.
			kill -KILL -- "-$spid" 2>/dev/null || kill -KILL "$spid" 2>/dev/null || true
		fi
	fi
	server_status=0
	wait "$spid" 2>/dev/null || server_status=$?
	spid=
}

dump_server_log() {
	[ "$dumped" -eq 0 ] || return 0
	dumped=1
	if [ -n "${MPK_SERVER_LOG:-}" ]; then
		cp "$slog" "$MPK_SERVER_LOG" || true
	fi
	sed 's/^/[server] /' "$slog" >&2 || true
}

cleanup() {
	stop_server
	dump_server_log
	rm -f "$slog"
}
trap cleanup EXIT
trap 'echo "$me: interrupted" >&2; exit 130' INT TERM HUP

fixed_port=${MPK_PORT:-}
tries=1
[ -n "$fixed_port" ] || tries=3
ready=0
for try in $(seq 1 $tries); do
	if [ -n "$fixed_port" ]; then
		port=$fixed_port
	else
		pick_port
	fi
	export MPK_PORT=$port
	subst "$port" "${swrap[@]}" "${server[@]}"
	scmd=("${substed[@]}")
	: >"$slog"
	# The server may outlive the client's bound: it is stopped after it.
	timeout -k 5 "$((pair_timeout + ready_timeout + 30))" "${scmd[@]}" >"$slog" 2>&1 </dev/null &
	spid=$!
	deadline=$((SECONDS + ready_timeout))
	while [ $SECONDS -lt $deadline ]; do
		if listening "$port"; then
			ready=1
			break
		fi
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	[ $ready -eq 1 ] && break
	if kill -0 "$spid" 2>/dev/null; then
		echo "$me: server did not listen on port $port within ${ready_timeout} s: ${scmd[*]}" >&2
		exit 1
	fi
	stop_server
	echo "$me: server exited with status $server_status before listening on port $port (try $try of $tries): ${scmd[*]}" >&2
	if [ "$try" -lt "$tries" ]; then
		sed 's/^/[server] /' "$slog" >&2 || true
	fi
done
[ $ready -eq 1 ] || exit 1

subst "$port" "${cwrap[@]}" "${client[@]}"
ccmd=("${substed[@]}")
echo "$me: port $port; server: ${scmd[*]}" >&2
echo "$me: client: ${ccmd[*]}" >&2
start=$SECONDS
rc=0
timeout -k 5 "$pair_timeout" "${ccmd[@]}" </dev/null || rc=$?
if [ $rc -eq 124 ]; then
	echo "$me: client timed out after ${pair_timeout} s" >&2
fi
server_alive=1
kill -0 "$spid" 2>/dev/null || server_alive=0
stop_server
echo "$me: client exited $rc after $((SECONDS - start)) s; server $([ $server_alive -eq 1 ] && echo "stopped by us" || echo "had exited"), status $server_status" >&2
if [ $rc -eq 0 ]; then
	case "$server_status" in
	0) ;;
	143) [ $server_alive -eq 1 ] || rc=1 ;;
	*) rc=1 ;;
	esac
	[ $rc -eq 0 ] || echo "$me: FAIL: client passed but the server ended with status $server_status" >&2
fi
exit $rc
