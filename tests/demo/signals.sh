#!/bin/bash
# SPDX-License-Identifier: MIT
# signals.sh SERVER CLIENT
#
# The server stops on SIGTERM and on SIGINT with status 0, promptly when
# idle (under 2 s), and within its drain bound when a client is in the middle
# of a run of calls; that client then ends (a failed call, never a wrong
# answer) instead of hanging.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

for sig in TERM INT; do
	start_server
	client health || fail "health exited $?"
	stop_server "$sig"
	[ "$stop_ms" -lt 2000 ] || fail "idle server took $stop_ms ms to stop after SIG$sig"
	grep -q "stopped by SIG$sig" "$tmp/server.err" || fail "no 'stopped by SIG$sig' line: $(cat "$tmp/server.err")"
	echo "ok: idle server, SIG$sig: exit 0 after $stop_ms ms"
done

# Calls in flight: 10^6-word counts back to back (~10 ms each plain, longer
# under ASan), and SIGTERM once the first ones were answered.
start_server
timeout -k 5 "$client_limit" "$CLIENT" --target "$addr" count --words 1000000 --repeat 100000 \
	>"$tmp/client.out" 2>"$tmp/client.err" </dev/null &
cpid=$!
sleep 1.5
kill -0 "$cpid" 2>/dev/null || fail "the client ended before the signal: $(cat "$tmp/client.err")"
stop_server TERM
grep -Eq "stopped by SIGTERM; .*Count [1-9][0-9]*/0" "$tmp/server.err" ||
	fail "the server answered no Count before SIGTERM: $(cat "$tmp/server.err")"
cst=0
for _ in $(seq 100); do
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$cpid" 2>/dev/null && fail "the client still runs 10 s after the server stopped"
wait "$cpid" || cst=$?
[ "$cst" -eq 1 ] || fail "client exited $cst after its server stopped (expected 1, a failed call)"
grep -q "wrong answer" "$tmp/client.err" && fail "client saw a wrong answer: $(cat "$tmp/client.err")"
grep -q "failed: " "$tmp/client.err" || fail "client's message names no failed call: $(cat "$tmp/client.err")"
echo "ok: SIGTERM with calls in flight: server exit 0 after $stop_ms ms; $(grep -o 'Count [0-9]*/0' "$tmp/server.err") answered; client: $(head -c 300 "$tmp/client.err")"
echo "PASS: signals"
