#!/bin/bash
# SPDX-License-Identifier: MIT
#
# setup_limit.sh: when link setup falls behind, new connections stay TCP at
# once rather than queue. A fake server launcher takes every HELLO and
# answers none; a program under mpklink-run (connect_burst) opens 24
# connections to its port from 24 threads at once. A process keeps at most
# 12 LINKS requests in flight (its launcher at most 16, from all its processes;
# a connect asks for links when its pool is empty, as each of these is):
# those wait for the server's launcher (until its 2 s timeout); the others
# stay TCP at once, and the shim says so for each. Every connection ends
# plain (refused here: nothing listens on the port). Shown to fail when the
# connects over the limit queue behind the stalled ones.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
mkdir -m 700 "$tmp/run"
/usr/bin/python3 - "$tmp/run/tcp-$port.sock" <<'PY' >"$tmp/stall.log" 2>&1 &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(64)
held = []
end = time.time() + 60
while time.time() < end:
    c, _ = s.accept()
    c.recv(4096)
    held.append(c)
PY
pids+=($!)
for _ in $(seq 200); do [ -S "$tmp/run/tcp-$port.sock" ] && break; sleep 0.05; done
[ -S "$tmp/run/tcp-$port.sock" ] || fail "the stalling launcher did not start"

env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_LOG=info")
timeout 60 "$MPKLINK_RUN" -e "$env" -- "$CONNECT_BURST" "$port" 24 >"$tmp/app.log" 2>&1 ||
	fail "the program failed"
grep -q "^results: ECONNREFUSED 24$" "$tmp/app.log" ||
	fail "not every connection ended as plain TCP does here (refused): $(grep results: "$tmp/app.log")"
busy=$(grep -c "no link: setup is behind (too many connects in flight); plain TCP" "$tmp/app.log")
waited=$(grep -c "no link (" "$tmp/app.log")
[ "$busy" -ge 1 ] || fail "no connection was told the launcher is busy: all 24 queued"
[ $((busy + waited)) -eq 24 ] || fail "$busy busy + $waited waited is not 24 connections"
[ "$waited" -le 12 ] || fail "$waited connections waited for the stalled launcher: more than 12 in flight"
echo "PASS: 24 connects against a stalled launcher: $waited waited for it, $busy stayed TCP at once"
