#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# stall_check.sh SERVER CLIENT [client args...]
#
# The client's watchdog must turn a hang into "STALL" and exit 3, never hang:
# start the server, freeze it with SIGSTOP once it listens (the kernel still
# completes connects into the backlog and buffers some data), run the client
# with a short --stall-secs and expect status 3 and a STALL line.
set -u
[ $# -ge 2 ] || { echo "usage: stall_check.sh SERVER CLIENT [client args...]" >&2; exit 2; }
server=$1 client=$2
shift 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stall_check.XXXXXX") || exit 1
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill -CONT "$spid" 2>/dev/null
		kill -KILL "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Not under `timeout`: SIGSTOP must reach the server itself. cleanup kills it.
"$server" --port 0 >"$tmp/server.out" &
spid=$!
port=
for _ in $(seq 200); do
	port=$(sed -n 's/^listening on \([0-9][0-9]*\)$/\1/p' "$tmp/server.out")
	[ -n "$port" ] && break
	kill -0 "$spid" 2>/dev/null || { echo "stall_check: server died" >&2; exit 1; }
	sleep 0.05
done
[ -n "$port" ] || { echo "stall_check: server did not listen" >&2; exit 1; }
kill -STOP "$spid"

timeout -k 5 60 "$client" --port "$port" --stall-secs 2 "$@" >"$tmp/client.out" 2>"$tmp/client.err"
rc=$?
sed 's/^/client: /' "$tmp/client.out" "$tmp/client.err"
if [ "$rc" -ne 3 ] || ! grep -q '^STALL$' "$tmp/client.out"; then
	echo "stall_check: FAIL: expected STALL and status 3, got status $rc" >&2
	exit 1
fi
echo "stall_check: OK (client reported STALL, status 3)"
