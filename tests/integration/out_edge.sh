#!/bin/bash
# SPDX-License-Identifier: MIT
# out_edge.c plain, then under mpklink-run (upgraded: MPKLINK_STATS shows
# the link): a thread asleep in epoll_wait gets EPOLLOUT once the peer
# frees space another thread's write ran out of.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
"$OUT_EDGE" "$port" >"$tmp/plain.log" 2>&1 || fail "plain TCP: $(cat "$tmp/plain.log")"
port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
	"MPKLINK_RING_BYTES=65536")
MPKLINK_STATS=$tmp/s.stats "$MPKLINK_RUN" -e "$env" -- "$OUT_EDGE" "$port" >"$tmp/mpk.log" 2>&1 ||
	fail "under mpklink: $(cat "$tmp/mpk.log")"
[ "$(stat_field "$tmp/s.stats" links)" -ge 1 ] || fail "the connection was not upgraded"
echo "PASS: $(grep out_edge: "$tmp/mpk.log")"
