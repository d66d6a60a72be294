#!/bin/bash
# SPDX-License-Identifier: MIT
# Connections handed across fork, each side under its own mpklink-run: a
# forking server (parent closes, child serves) and a daemonizing client
# (parent exits, child goes on). Both halves of the stream must echo
# intact, over links (MPKLINK_STATS), with half-close and EOF at the end.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
MPKLINK_STATS=$tmp/server.stats timeout 60 "$MPKLINK_RUN" -e "$env" -- "$FORK_ECHO" server "$port" 4 \
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
# The connection crosses exec: the new image must find its link, not read
# the doorbell stream as data.
MPKLINK_STATS=$tmp/exec.stats timeout 60 "$MPKLINK_RUN" -e "$env" -- "$FORK_ECHO" exec "$port" \
	>"$tmp/exec.log" 2>&1 || fail "client across exec failed"
[ "$(stat_field "$tmp/exec.stats" rx_bytes)" -eq 1048576 ] ||
	fail "the exec'd image read $(stat_field "$tmp/exec.stats" rx_bytes) bytes through its link, expected 1048576"
wait "${pids[-1]}" || fail "server failed"
# Two daemonizing clients: 2 x 2 MiB; hand-back: 3 MiB; exec: 2 MiB.
rx=$(stat_field "$tmp/server.stats" rx_bytes)
[ "$rx" -eq $((9 * 1048576)) ] || fail "server processes read $rx bytes through rings, expected $((9 * 1048576))"
# The daemonized children report both halves: the parent's counts came
# along with the link at fork.
rx=$(stat_field "$tmp/client.stats" rx_bytes)
[ "$rx" -eq $((2 * 2 * 1048576)) ] || fail "clients read $rx bytes through rings, expected $((4 * 1048576))"
echo "PASS: forking server, daemonizing, hand-back and exec clients keep their links"
