#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fnv_same.sh RUN_ECHO SERVER CLIENT
#
# The client's digest depends only on (seed, conns, bytes-per-conn): runs with
# the same seed must print the same "fnv=" whatever the timing, event loop or
# chunking, and a different seed must print a different one. This is what
# later lets a plain-TCP run and an mpklink run be compared byte for byte.
set -u
[ $# -eq 3 ] || { echo "usage: fnv_same.sh RUN_ECHO SERVER CLIENT" >&2; exit 2; }
run=$1 server=$2 client=$3
args=(--conns 12 --bytes-per-conn 300000)

# Prints the fnv of one run_echo.sh run; fails the script if the run fails.
fnv_of() {
	local out rc
	out=$("$run" "$server" "$client" "$@")
	rc=$?
	printf '%s\n' "$out" | sed 's/^/  /' >&2
	if [ "$rc" -ne 0 ]; then
		echo "fnv_same: run failed with status $rc: $*" >&2
		exit 1
	fi
	printf '%s\n' "$out" | sed -n 's/^OK conns=.* fnv=\([0-9a-f]*\)$/\1/p'
}

a=$(fnv_of et "${args[@]}" --seed 42) || exit 1
b=$(fnv_of et "${args[@]}" --seed 42) || exit 1
c=$(fnv_of poll/blocking "${args[@]}" --seed 42 --max-msg 777) || exit 1
d=$(fnv_of lt "${args[@]}" --seed 43) || exit 1
echo "fnv: et/et seed 42: $a; again: $b; poll/blocking seed 42: $c; lt seed 43: $d"
if [ -z "$a" ] || [ "$a" != "$b" ] || [ "$a" != "$c" ]; then
	echo "fnv_same: FAIL: the same seed gave different digests" >&2
	exit 1
fi
if [ "$a" = "$d" ]; then
	echo "fnv_same: FAIL: a different seed gave the same digest" >&2
	exit 1
fi
echo "fnv_same: OK"
