#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 of either peer mid-stream: the other side sees EOF or
# ECONNRESET (the echo client exits 1 naming it, not 3 for a stall; the
# server closes the connection and exits by itself), never hangs; the dead
# side's launcher releases everything it held in the run directory.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
# Far more than fits in the time the test waits: the stream is mid-way.
args=(--port "$port" --mode et --conns 4 --bytes-per-conn 4000000000 --stall-secs 20)

# Waits until the 4 connections are up and have streamed for a moment.
mid_stream() {
	for _ in $(seq 100); do
		[ "$(ss -Htn state established "sport = :$port" | wc -l)" -ge 4 ] && break
		sleep 0.05
	done
	sleep 0.5
}

# 1. The server dies.
timeout 60 "$MPKLINK_RUN" -e "$env" -- "$ECHO_SERVER" --port "$port" --mode et \
	>"$tmp/s1.log" 2>&1 &
launcher=$!
pids+=($launcher)
wait_listen "$port"
timeout 60 "$MPKLINK_RUN" -e "$env" -- "$ECHO_CLIENT" "${args[@]}" >"$tmp/c1.log" 2>&1 &
client=$!
pids+=($client)
mid_stream
server=$(pgrep -f "^$ECHO_SERVER --port $port") || fail "no echo_server running"
kill -9 "$server"
wait "$client"
rc=$?
[ "$rc" -eq 1 ] || fail "client exit status $rc after the server's death (1: EOF/ECONNRESET seen, 3: stall)"
grep -Eqi 'EOF|reset|ECONNRESET|closed|Broken pipe' "$tmp/c1.log" || fail "client did not say how the stream ended"
wait "$launcher"
rc=$?
[ "$rc" -eq 137 ] || fail "the server's launcher exited $rc, expected 137 (128+SIGKILL)"

# 2. The client dies.
timeout 60 "$MPKLINK_RUN" -e "$env" -- "$ECHO_SERVER" --port "$port" --mode et --exit-after 4 \
	>"$tmp/s2.log" 2>&1 &
launcher=$!
pids+=($launcher)
wait_listen "$port"
timeout 60 "$MPKLINK_RUN" -e "$env" -- "$ECHO_CLIENT" "${args[@]}" >"$tmp/c2.log" 2>&1 &
clauncher=$!
pids+=($clauncher)
mid_stream
client=$(pgrep -f "^$ECHO_CLIENT --port $port") || fail "no echo_client running"
kill -9 "$client"
wait "$clauncher"
# The server saw the connections end (EOF: all 4 closed, --exit-after 4
# makes it leave; or an error it reports as fatal: EPIPE or ECONNRESET on a
# write, or ENOTCONN from shutdown once a write to the dead client was
# answered with a reset, as TCP's are), never hung.
wait "$launcher"
rc=$?
[ "$rc" -ne 124 ] || fail "the server hung after the client's death"
[ "$rc" -eq 0 ] || grep -Eqi 'Broken pipe|reset|not connected' "$tmp/s2.log" ||
	fail "server exit status $rc after the client's death, without naming EPIPE/ECONNRESET/ENOTCONN"

left=$(ls -A "$tmp/run")
[ -z "$left" ] || fail "launchers left behind in the run directory: $left"
echo "PASS: either side's death ends the other's stream; nothing left in the run directory"
