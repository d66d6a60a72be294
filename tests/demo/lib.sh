# SPDX-License-Identifier: MIT
# Helpers for the demo's tests: a real mpklink-demo-server on a port it picks
# itself (--listen 127.0.0.1:0; its "listening on ADDR" line says which) or
# on a unix socket, and the real client against it.
#
# A script sets SERVER and CLIENT (the binaries), then sources this file.

set -u

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-demo.XXXXXX") || exit 1
spid=
addr=
# Seconds any one client run may take; the ASan build is ~5x slower.
client_limit=${DEMO_CLIENT_TIMEOUT:-240}

cleanup() {
	if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
		kill -KILL "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/server.err "$tmp"/client.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# start_server [SERVER ARGS...]: starts the server (default --listen
# 127.0.0.1:0), waits (bounded) for its "listening on ADDR" line, sets $addr.
start_server() {
	[ $# -gt 0 ] || set -- --listen 127.0.0.1:0
	: >"$tmp/server.out"
	"$SERVER" "$@" >"$tmp/server.out" 2>"$tmp/server.err" </dev/null &
	spid=$!
	for _ in $(seq 200); do
		addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
		[ -n "$addr" ] && return 0
		kill -0 "$spid" 2>/dev/null || fail "server exited before listening: $SERVER $*"
		sleep 0.1
	done
	fail "server printed no 'listening on' line within 20 s: $SERVER $*"
}

# stop_server [SIGNAL]: signals the server (TERM by default) and requires
# that it exit 0 within 5 s; sets $stop_ms to how long it took.
stop_server() {
	local sig=${1:-TERM} t0 st=0
	t0=$(date +%s%N)
	kill -"$sig" "$spid" || fail "server (pid $spid) is gone before SIG$sig"
	for _ in $(seq 50); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$spid" 2>/dev/null; then
		kill -KILL "$spid"
		wait "$spid" 2>/dev/null
		spid=
		fail "server still running 5 s after SIG$sig"
	fi
	wait "$spid" || st=$?
	stop_ms=$((($(date +%s%N) - t0) / 1000000))
	spid=
	[ "$st" -eq 0 ] || fail "server exited with status $st after SIG$sig (expected 0)"
}

# client ARGS...: the client against $addr, bounded; output in
# $tmp/client.out and .err, status returned.
client() {
	timeout -k 5 "$client_limit" "$CLIENT" --target "$addr" "$@" \
		>"$tmp/client.out" 2>"$tmp/client.err" </dev/null
}

# field NAME: NAME=VALUE from the client's output line.
field() {
	tr ' ' '\n' <"$tmp/client.out" | sed -n "s/^$1=//p"
}

# wc -w as POSIX defines it, whatever the caller's locale.
wc_words() {
	LC_ALL=C wc -w <"$1" | tr -d ' '
}
