#!/bin/bash
# SPDX-License-Identifier: MIT
# selftest.sh BIN: checks mpklink-bench-grpcxx (BIN) end to end:
#   - inproc: Echo 64 B and Count 1000 words give a sane CSV line;
#   - server on 127.0.0.1 (port 0, the port read from its `listening on`
#     line) and client over TCP, echo and count, and --csv's file;
#   - health: `mpklink-demo-client health` against it (SERVING; NOT_FOUND for
#     an unknown service), when that program is beside BIN;
#   - both server APIs: sync (the default) and callback;
#   - wrong answers are caught: inproc --lie and server --lie make the client
#     exit 1 naming expected and got;
#   - SIGTERM stops the server with exit 0; bad arguments exit 2.
set -u

bin=${1:?usage: selftest.sh PATH/TO/mpklink-bench-grpcxx}
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grpcxx-selftest.XXXXXX")
spid=
cleanup() {
	[ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/*.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
	done
	exit 1
}

# check_line LINE LABEL METHOD SIZE: the line is grpcxx,LABEL,METHOD,SIZE,
# p50,p99,MB/s with 0 < p50 <= p99 < 10 s and MB/s > 0.
check_line() {
	local line=$1 label=$2 method=$3 size=$4
	[[ $line =~ ^grpcxx,$label,$method,$size,([0-9]+\.[0-9]{3}),([0-9]+\.[0-9]{3}),([0-9]+\.[0-9]{3})$ ]] ||
		fail "not a result line for $label $method $size: '$line'"
	awk -v a="${BASH_REMATCH[1]}" -v b="${BASH_REMATCH[2]}" -v m="${BASH_REMATCH[3]}" \
		'BEGIN { exit !(a > 0 && a <= b && b < 1e7 && m > 0) }' ||
		fail "insane numbers in '$line'"
	echo "ok: $line"
}

# run NAME CMD...: stdout to $tmp/NAME.out, stderr to $tmp/NAME.err, bounded.
run() {
	local name=$1
	shift
	timeout -k 5 120 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
}

# --- usage --------------------------------------------------------------
"$bin" --help >"$tmp/help.out" || fail "--help exited $?"
grep -q 'inproc' "$tmp/help.out" || fail "--help does not describe inproc"
for args in "" "bogus" "inproc --method nope" "inproc --size x" "inproc --method echo --size 0" \
	"client --method echo" "inproc --target 127.0.0.1:1" "server --listen nonsense" \
	"inproc --calls"; do
	# shellcheck disable=SC2086 # word splitting wanted
	"$bin" $args >/dev/null 2>"$tmp/usage.err"
	rc=$?
	[ $rc -eq 2 ] || fail "'$args' exited $rc, not 2"
	grep -q "mpklink-bench-grpcxx: " "$tmp/usage.err" || fail "'$args': no message"
done
echo "ok: usage errors exit 2"

# --- in-process ---------------------------------------------------------
run inproc_echo "$bin" inproc --method echo --size 64 --calls 500 --api callback ||
	fail "inproc echo exited $?"
check_line "$(cat "$tmp/inproc_echo.out")" inproc echo 64
run inproc_count "$bin" inproc --method count --size 1000 --calls 500 ||
	fail "inproc count exited $?"
check_line "$(cat "$tmp/inproc_count.out")" inproc count 1000

# --- wrong answers caught, in-process -----------------------------------
run lie_count "$bin" inproc --method count --size 1000 --calls 10 --lie
rc=$?
[ $rc -eq 1 ] || fail "inproc --lie count exited $rc, not 1"
grep -q 'wrong answer: expected 1000 words, got 1001' "$tmp/lie_count.err" ||
	fail "inproc --lie count: no 'wrong answer' message"
[ -s "$tmp/lie_count.out" ] && fail "inproc --lie count printed a result line"
echo "ok: a wrong count is caught (exit 1)"

# --- TCP: server and client ---------------------------------------------
# start_server ARGS...: sets $spid and $addr.
start_server() {
	: >"$tmp/server.out"
	timeout -k 5 300 "$bin" server --listen 127.0.0.1:0 "$@" >"$tmp/server.out" \
		2>"$tmp/server.err" &
	spid=$!
	addr=
	for _ in $(seq 200); do
		addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
		[ -n "$addr" ] && return 0
		kill -0 "$spid" 2>/dev/null || fail "the server exited before listening"
		sleep 0.05
	done
	fail "the server did not print 'listening on' within 10 s"
}

stop_server() {
	local rc=0
	kill -TERM "$spid"
	wait "$spid" || rc=$?
	spid=
	[ $rc -eq 0 ] || fail "the server exited $rc after SIGTERM, not 0"
	grep -q 'stopped by SIGTERM' "$tmp/server.err" || fail "no summary from the server"
}

start_server
if ! [[ $addr =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]]; then
	fail "the server listens on '$addr', not 127.0.0.1:PORT"
fi
run tcp_echo "$bin" client --target "$addr" --method echo --size 1024 --calls 500 \
	--csv "$tmp/row.csv" || fail "tcp echo exited $?"
check_line "$(cat "$tmp/tcp_echo.out")" tcp echo 1024
[ "$(head -n 1 "$tmp/row.csv")" = "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s" ] ||
	fail "--csv: wrong header"
[[ $(sed -n 2p "$tmp/row.csv") =~ ^echo,tcp,1024,[0-9.]+,[0-9.]+,[0-9.]+$ ]] ||
	fail "--csv: wrong row '$(sed -n 2p "$tmp/row.csv")'"
run tcp_count "$bin" client --target "$addr" --method count --size 1000 --calls 500 \
	--label other || fail "tcp count exited $?"
check_line "$(cat "$tmp/tcp_count.out")" other count 1000
demo_client=$(dirname "$bin")/mpklink-demo-client
if [ -x "$demo_client" ]; then
	"$demo_client" --target "$addr" health | grep -qx 'status=SERVING' ||
		fail "health: not SERVING"
	"$demo_client" --target "$addr" health --service mpklink.demo.WordCount |
		grep -qx 'status=SERVING' || fail "health of mpklink.demo.WordCount: not SERVING"
	"$demo_client" --target "$addr" health --service nope >/dev/null 2>"$tmp/health.err" &&
		fail "health of an unknown service: not an error"
	grep -q 'NOT_FOUND' "$tmp/health.err" || fail "health of an unknown service: not NOT_FOUND"
	echo "ok: grpc.health.v1.Health/Check"
fi
stop_server
# 500 timed calls and 50 of warm-up each.
grep -q 'Count 550/0, Echo 550/0, Health/Check' "$tmp/server.err" ||
	fail "the server's summary does not count the calls"
echo "ok: TCP pair, SIGTERM exits 0"

# --- wrong answers caught, over TCP (and the callback API) ---------------
start_server --lie --api callback
run tcp_lie "$bin" client --target "$addr" --method echo --size 64 --calls 10
rc=$?
[ $rc -eq 1 ] || fail "client against server --lie exited $rc, not 1"
grep -q 'wrong answer: reply byte 63' "$tmp/tcp_lie.err" ||
	fail "client against server --lie: no 'wrong answer' message"
stop_server
echo "ok: a wrong echo is caught over TCP (exit 1)"
echo "PASS"
