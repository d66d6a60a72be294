#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run_echo.sh SERVER CLIENT MODE [extra client args]
#
# Starts SERVER on an ephemeral port (--port 0, reads "listening on PORT"),
# runs CLIENT against it, stops the server, and exits with the client's
# status (or 4 if the client passed but the server reported an error).
#
# MODE is SERVER_MODE[/CLIENT_MODE]:
#   SERVER_MODE  et | lt | poll | select
#   CLIENT_MODE  et | lt | poll | blocking  (default: same as the server's,
#                et for a select server)
#
# Environment:
#   ECHO_SERVER_ARGS        extra server arguments, word-split (e.g. "--host ::1")
#   MPK_SERVER_WRAP         command prefix for the server, word-split
#   MPK_CLIENT_WRAP         command prefix for the client, word-split
#                           (e.g. "mpklink-run -e app.env --"); empty by default
#   RUN_ECHO_TIMEOUT        seconds the client may run (default 120); the
#                           server is bounded to that plus 30
#   RUN_ECHO_SERVER_EXITS   1: the server must exit by itself (--exit-after)
#                           within 10 s of the client finishing
set -u

usage() {
	echo "usage: run_echo.sh SERVER CLIENT SERVER_MODE[/CLIENT_MODE] [client args...]" >&2
	exit 2
}
[ $# -ge 3 ] || usage
server=$1 client=$2 mode=$3
shift 3

smode=${mode%%/*}
cmode=${mode#*/}
[ "$cmode" = "$mode" ] && cmode=
case $smode in et|lt|poll|select) ;; *) usage ;; esac
if [ -z "$cmode" ]; then
	case $smode in select) cmode=et ;; *) cmode=$smode ;; esac
fi
case $cmode in
	et|lt|poll) cmode_args=(--mode "$cmode") ;;
	blocking) cmode_args=(--blocking) ;;
	*) usage ;;
esac

limit=${RUN_ECHO_TIMEOUT:-120}
# Word splitting of these is the point: they are command prefixes / arg lists.
read -r -a server_wrap <<<"${MPK_SERVER_WRAP:-}"
read -r -a client_wrap <<<"${MPK_CLIENT_WRAP:-}"
read -r -a server_args <<<"${ECHO_SERVER_ARGS:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_echo.XXXXXX") || exit 1
spid=

# Stops the server if it still runs: TERM, then KILL after 5 s.
stop_server() {
	[ -n "$spid" ] || return 0
	if kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$spid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$spid" 2>/dev/null
	fi
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Both programs run under `timeout`, so nothing outlives its bound even if
# this script is killed with SIGKILL. The server's is --foreground: otherwise
# timeout follows our SIGTERM with SIGCONTs to its process group, and a
# SIGCONT cancels the SIGSTOP of a ptrace attach in flight, which hangs
# LeakSanitizer's exit-time leak check (seen about once in 15 ASan runs).
timeout --foreground -k 5 $((limit + 30)) "${server_wrap[@]}" "$server" --port 0 --mode "$smode" \
	"${server_args[@]}" >"$tmp/server.out" &
spid=$!

port=
for _ in $(seq 200); do	# up to 10 s
	port=$(sed -n 's/^listening on \([0-9][0-9]*\)$/\1/p' "$tmp/server.out")
	[ -n "$port" ] && break
	if ! kill -0 "$spid" 2>/dev/null; then
		wait "$spid"
		echo "run_echo: server exited with status $? before listening" >&2
		cat "$tmp/server.out" >&2
		exit 1
	fi
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "run_echo: server did not print 'listening on PORT' within 10 s" >&2
	exit 1
fi

start=$(date +%s.%N)
timeout -k 5 "$limit" "${client_wrap[@]}" "$client" --port "$port" "${cmode_args[@]}" "$@"
rc=$?
end=$(date +%s.%N)
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "run_echo: client did not finish within ${limit} s (status $rc)" >&2
fi

if [ "${RUN_ECHO_SERVER_EXITS:-0}" = 1 ]; then
	for _ in $(seq 100); do
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$spid" 2>/dev/null; then
		echo "run_echo: server did not exit by itself (--exit-after)" >&2
		[ "$rc" -eq 0 ] && rc=4
	fi
fi
stop_server
wait "$spid"
src=$?
spid=
sed 's/^/server: /' "$tmp/server.out"
awk -v m="$mode" -v s="$start" -v e="$end" \
	'BEGIN { printf "run_echo: mode %s: client ran %.2f s\n", m, e - s }'
if [ "$src" -ne 0 ]; then
	echo "run_echo: server exited with status $src" >&2
	[ "$rc" -eq 0 ] && rc=4
fi
exit "$rc"
