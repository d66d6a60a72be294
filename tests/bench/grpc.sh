#!/bin/bash
# SPDX-License-Identifier: MIT
# mpklink-bench grpc against real mpklink-demo-server processes: right
# answers pass (health, count, echo, a method of your own), a --lie server's
# wrong count and wrong echo fail with exit 1 and a message naming expected
# and got, and usage errors are exit 2.
#   grpc.sh BENCH SERVER
set -u
BENCH=$1
SERVER=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-bench-grpc.XXXXXX") || exit 1
spid=
cleanup() {
	[ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/out "$tmp"/err "$tmp"/server.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}
start_server() {
	[ -n "$spid" ] && { kill -TERM "$spid"; wait "$spid"; spid=; }
	: >"$tmp/server.out"
	"$SERVER" "$@" --listen 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
	spid=$!
	for _ in $(seq 200); do
		addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
		[ -n "$addr" ] && return 0
		sleep 0.1
	done
	fail "server did not start"
}
bench() { # ARGS...: status in $st, output in $tmp/out, $tmp/err
	st=0
	timeout -k 5 240 "$BENCH" grpc "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
}

start_server
bench "$addr" --calls 200
[ "$st" -eq 0 ] || fail "health: exit $st"
grep -q '^every answer checked: right' "$tmp/out" || fail "health: no 'right' line"
grep -Eq '^ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "$tmp/out" || fail "no numbers"

bench "$addr" --method count --words 1000 --calls 100 --concurrency 2 --csv "$tmp/c.csv" --label tcp
[ "$st" -eq 0 ] || fail "count: exit $st"
[ "$(head -1 "$tmp/c.csv")" = "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s" ] ||
	fail "CSV header: $(head -1 "$tmp/c.csv")"
grep -Eq '^wordcount,tcp,[0-9]+,[0-9]+\.[0-9]+,[0-9]+\.[0-9]+,[0-9]+\.[0-9]+$' "$tmp/c.csv" ||
	fail "CSV row: $(tail -1 "$tmp/c.csv")"
[ "$(wc -l <"$tmp/c.csv")" -eq 2 ] || fail "CSV: want 2 lines"
grep -q 'calls=100 concurrency=2' "$tmp/out" || fail "count: not 100 calls on 2 threads"

bench "$addr" --method echo --bytes 70000 --seconds 0.5
[ "$st" -eq 0 ] || fail "echo: exit $st"

# A method of your own: raw request bytes. The health request for "" is
# the empty message, so an empty file is a valid HealthCheckRequest.
: >"$tmp/empty.bin"
bench "$addr" --method /grpc.health.v1.Health/Check --payload "$tmp/empty.bin" --calls 20
[ "$st" -eq 0 ] || fail "custom method: exit $st"
grep -q 'reply not verified' "$tmp/out" || fail "custom: should say the reply is not verified"
bench "$addr" --method /no.Such/Method --payload "$tmp/empty.bin" --calls 5
[ "$st" -eq 1 ] || fail "unknown method: exit $st, want 1"
grep -q 'UNIMPLEMENTED' "$tmp/err" || fail "unknown method: no UNIMPLEMENTED in the message"

# Wrong answers must be caught, loudly.
start_server --lie
bench "$addr" --method count --words 100 --calls 10
[ "$st" -eq 1 ] || fail "lying count: exit $st, want 1"
grep -q 'expected 100 words, got 101' "$tmp/err" || fail "lying count: message: $(cat "$tmp/err")"
bench "$addr" --method echo --bytes 1000 --calls 10
[ "$st" -eq 1 ] || fail "lying echo: exit $st, want 1"
grep -Eq 'wrong answer: reply byte [0-9]+: expected 0x[0-9a-f]+, got 0x[0-9a-f]+' "$tmp/err" ||
	fail "lying echo: message: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || ! grep -q 'p50_us' "$tmp/out" || fail "lying echo: printed results"

# Nobody listening: a failed call, exit 1.
kill -TERM "$spid"; wait "$spid"; spid=
bench "$addr" --calls 3 --timeout 2
[ "$st" -eq 1 ] || fail "no server: exit $st, want 1"

# Usage errors: exit 2.
for args in "" "--calls 0 x:1" "x:1 --method nope" "x:1 --method count --bytes 5" \
	"x:1 --method /a/B" "x:1 --calls 5 --seconds 1" "x:1 --words 5" "x:1 y:2"; do
	# shellcheck disable=SC2086
	bench $args
	[ "$st" -eq 2 ] || fail "usage '$args': exit $st, want 2"
done
"$BENCH" grpc --help | grep -q '^Usage: mpklink-bench grpc TARGET' || fail "--help"
echo "PASS"
