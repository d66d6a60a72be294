#!/bin/bash
# SPDX-License-Identifier: MIT
# Connections handed across fork, each side under its own mpklink-run: a
# forking server (parent closes, child serves) and a daemonizing client
# (parent exits, child goes on). Both halves of the stream must echo
# intact, over links (MPKLINK_STATS), with half-close and EOF at the end.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
MPKLINK_STATS=$tmp/server.stats timeout 60 "$MPKLINK_RUN" -e "$env" -- "$FORK_ECHO" server "$port" 3 \
	>"$tmp/server.log" 2>&1 &
pids+=($!)
wait_listen "$port"
for i in 1 2; do
	MPKLINK_STATS=$tmp/client.stats timeout 60 "$MPKLINK_RUN" -e "$env" -- "$FORK_ECHO" client "$port" \
		>"$tmp/client$i.log" 2>&1 || fail "client $i failed"
done
# The connection goes to a child and comes back: the parent must pick up
# the indices where the child left them.
MPKLINK_STATS=$tmp/handback.stats timeout 60 "$MPKLINK_RUN" -e "$env" -- "$FORK_ECHO" handback "$port" \
	>"$tmp/handback.log" 2>&1 || fail "hand-back client failed"
wait "${pids[-1]}" || fail "server failed"
# Two daemonizing clients: 2 x 2 MiB; the hand-back client: 3 MiB.
rx=$(stat_field "$tmp/server.stats" rx_bytes)
[ "$rx" -eq $((7 * 1048576)) ] || fail "server processes read $rx bytes through rings, expected $((7 * 1048576))"
# The daemonized children report both halves: the parent's counts came
# along with the link at fork.
rx=$(stat_field "$tmp/client.stats" rx_bytes)
[ "$rx" -eq $((2 * 2 * 1048576)) ] || fail "clients read $rx bytes through rings, expected $((4 * 1048576))"
echo "PASS: forking server, daemonizing and hand-back clients keep their links across fork"
