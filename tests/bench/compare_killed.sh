#!/bin/bash
# SPDX-License-Identifier: MIT
# mpklink-bench compare killed half way (as by Ctrl-C, which reaches only
# the terminal's foreground group, not the servers' own groups) leaves
# nothing running: every process it started, servers and launchers under
# it included, goes with it.
#   compare_killed.sh BENCH SERVER
set -u
BENCH=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-bench-kill.XXXXXX") || exit 1
cpid=
trap '[ -n "$cpid" ] && kill -9 $cpid 2>/dev/null; rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -s "$tmp/out" ] && { echo "--- output" >&2; tail -n 20 "$tmp/out" >&2; }
	exit 1
}

# Every process below pid $1, by parent links.
descendants() {
	local kids k
	kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
	for k in $kids; do
		echo "$k"
		descendants "$k"
	done
}

# Long enough to be caught with its servers up: 10^6 words, many calls.
"$BENCH" compare --only words1m --calls 100000 >"$tmp/out" 2>&1 </dev/null &
cpid=$!
# Until the mpklink server runs under its launcher (the third server).
for _ in $(seq 600); do
	left=$(descendants $cpid)
	[ "$(ps -o comm= -p "$(echo $left | tr ' ' ',')" 2>/dev/null | grep -c '^mpklink-run')" -ge 1 ] &&
		break
	kill -0 $cpid 2>/dev/null || fail "compare ended before its servers were up"
	sleep 0.1
done
left=$(descendants $cpid)
[ -n "$left" ] || fail "compare started nothing"
kill -TERM $cpid
wait $cpid 2>/dev/null
cpid=
# The servers stop gracefully (they may finish a call first): bounded.
for _ in $(seq 200); do
	alive=""
	for p in $left; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
	[ -z "$alive" ] && break
	sleep 0.1
done
if [ -n "$alive" ]; then
	ps -o pid,ppid,args -p "$(echo $alive | tr ' ' ',')" >&2
	kill -9 $alive 2>/dev/null
	fail "still running 20 s after compare was killed:$alive"
fi
echo "PASS: the $(echo $left | wc -w) processes compare had started all ended with it"
