#!/bin/bash
# SPDX-License-Identifier: MIT
# epoll_late.c plain, then under mpklink-run (upgraded: MPKLINK_STATS shows
# the link): a thread already asleep in epoll_wait when an upgraded
# connection joins its set gets only events the program registered.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
"$EPOLL_LATE" "$port" >"$tmp/plain.log" 2>&1 || fail "plain TCP: $(cat "$tmp/plain.log")"
port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
MPKLINK_STATS=$tmp/s.stats "$MPKLINK_RUN" -e "$env" -- "$EPOLL_LATE" "$port" >"$tmp/mpk.log" 2>&1 ||
	fail "under mpklink: $(cat "$tmp/mpk.log")"
[ "$(stat_field "$tmp/s.stats" links)" -ge 1 ] || fail "the connection was not upgraded"
echo "PASS: $(grep epoll_late: "$tmp/mpk.log")"
