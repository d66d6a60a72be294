#!/bin/bash
# SPDX-License-Identifier: MIT
# mpklink-bench transport on a short run: every row it prints is in the CSV
# with numbers, the copy row (the copy limit) has a streaming figure and no
# round trip, the streaming target names the copy limit, and an unknown
# transport in --only is a usage error naming the known ones.
#   transport.sh BENCH SERVER   (SERVER unused)
set -u
BENCH=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-bench-transport.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/out "$tmp"/err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}

st=0
timeout -k 5 250 "$BENCH" transport --quick --iters 2000 --only tcp,mpklink,copy \
	--csv "$tmp/t.csv" >"$tmp/out" 2>"$tmp/err" || st=$?
[ "$st" -eq 0 ] || fail "transport: exit $st"
num='[0-9]+\.[0-9]+'
for t in tcp mpklink; do
	grep -Eq "^transport,$t,64,$num,$num,\$" "$tmp/t.csv" || fail "no 64 B row for $t"
	grep -Eq "^transport,$t,65536,,,$num\$" "$tmp/t.csv" || fail "no streaming row for $t"
done
grep -Eq "^transport,copy,65536,,,$num\$" "$tmp/t.csv" || fail "no streaming row for copy"
grep -q '^transport,copy,64,' "$tmp/t.csv" && fail "a round-trip row for copy, which has none"
[ "$(wc -l <"$tmp/t.csv")" -eq 6 ] || fail "want 6 CSV lines: $(cat "$tmp/t.csv")"
grep -Eq '^copy +- +- +[0-9.]+ ' "$tmp/out" || fail "no copy row in the table"
grep -Eq 'mpklink streaming at least 3x TCP loopback +\([0-9.]+x: .*; [0-9]+% of the copy limit, [0-9.]+ MB/s\)' \
	"$tmp/out" || fail "the streaming target does not name the copy limit"

st=0
"$BENCH" transport --only nope >"$tmp/out" 2>"$tmp/err" || st=$?
[ "$st" -eq 2 ] || fail "--only nope: exit $st, want 2"
grep -q "known: pipe, unix, tcp, mpklink, mpklink-mac, floor, copy" "$tmp/err" ||
	fail "--only nope does not list the known transports"
echo PASS
