#!/bin/bash
# SPDX-License-Identifier: MIT
# Socket semantics on upgraded connections (tests/integration/semantics.c),
# run plain first (the program's own checks must hold on TCP), then under
# mpklink-run, where both ends must be links (MPKLINK_STATS). Also
# MPKLINK_FALLBACK=deny: a configured endpoint whose server is not under
# mpklink is refused, never reached over plain TCP.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
other=$(free_port)
"$SEMANTICS" "$port" "$other" >"$tmp/plain.log" 2>&1 || fail "plain TCP: $(cat "$tmp/plain.log")"
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
# Upgraded, the connection of the closefrom check holds 4 doorbell eventfds.
MPKLINK_STATS=$tmp/s.stats "$MPKLINK_RUN" -e "$env" -- "$SEMANTICS" "$port" "$other" --hidden 4 \
	>"$tmp/mpk.log" 2>&1 || fail "under mpklink: $(cat "$tmp/mpk.log")"
links=$(stat_field "$tmp/s.stats" links)
[ "$links" -ge 4 ] || fail "only $links links: the connections were not upgraded"

# deny: the echo server runs plain; the client under deny must be refused.
deny=$(envfile deny "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
	"MPKLINK_FALLBACK=deny")
"$ECHO_SERVER" --port "$port" --mode et >"$tmp/srv.log" 2>&1 &
pids+=($!)
wait_listen "$port"
"$MPKLINK_RUN" -e "$deny" -- "$ECHO_CLIENT" --port "$port" --conns 1 --bytes-per-conn 10 \
	--blocking >"$tmp/deny.log" 2>&1 && fail "MPKLINK_FALLBACK=deny let a plain TCP connection through"
grep -q "Connection refused" "$tmp/deny.log" || fail "deny: the client did not see ECONNREFUSED: $(cat "$tmp/deny.log")"
grep -q "MPKLINK_FALLBACK=deny" "$tmp/deny.log" || fail "deny: no line saying why"
echo "PASS: dup/dup2/F_DUPFD, half-close, FIN not RST, EPIPE/SIGPIPE, fd reuse, closefrom, and deny"
