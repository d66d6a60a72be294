#!/bin/bash
# SPDX-License-Identifier: MIT
#
# echo_upgrade.sh MODE [CONNS BYTES_PER_CONN [extra client args]]
#
# The C echo pair, each under its own mpklink-run: the client's checksum of
# everything echoed must equal a plain-TCP run's with the same seed, and
# both launchers' MPKLINK_STATS must show every payload byte crossing the
# rings, on one link per connection. MODE as run_echo.sh: SERVER[/CLIENT].
. "$(dirname "$0")/lib.sh"

mode=${1:-et}
conns=${2:-64}
bytes=${3:-200000}
shift $(($# < 3 ? $# : 3))
smode=${mode%%/*}
cmode=${mode#*/}
[ "$cmode" = "$mode" ] && cmode=$smode
[ "$smode" = select ] && [ "$cmode" = select ] && cmode=et
if [ "$cmode" = blocking ]; then cargs=(--blocking); else cargs=(--mode "$cmode"); fi

port=$(free_port)
args=(--port "$port" "${cargs[@]}" --conns "$conns" --bytes-per-conn "$bytes" --seed 42 "$@")
# A client given --host (::1, ::ffff:127.0.0.1) talks to a dual-stack server.
shost=127.0.0.1
case " $* " in *" --host "*) shost=:: ;; esac

# Plain TCP first: the reference checksum.
timeout 120 "$ECHO_SERVER" --port "$port" --host "$shost" --mode "$smode" >"$tmp/plain-server.log" 2>&1 &
pids+=($!)
wait_listen "$port"
timeout 120 "$ECHO_CLIENT" "${args[@]}" >"$tmp/plain-client.log" 2>&1 ||
	fail "plain run failed"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null
want=$(grep -o 'fnv=[0-9a-f]*' "$tmp/plain-client.log")
[ -n "$want" ] || fail "plain run printed no checksum"

env=$(envfile app "MPKLINK_ENDPOINTS=[::]:$port" "MPKLINK_RUNDIR=$tmp/run")
MPKLINK_STATS=$tmp/server.stats timeout 120 "$MPKLINK_RUN" -e "$env" -- \
	"$ECHO_SERVER" --port "$port" --host "$shost" --mode "$smode" >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_listen "$port"
MPKLINK_STATS=$tmp/client.stats timeout 120 "$MPKLINK_RUN" -e "$env" -- \
	"$ECHO_CLIENT" "${args[@]}" >"$tmp/client.log" 2>&1 || fail "mpklink run failed"
kill -TERM "${pids[-1]}"
wait "${pids[-1]}" || fail "server under mpklink-run exited with status $?"

got=$(grep -o 'fnv=[0-9a-f]*' "$tmp/client.log")
[ "$got" = "$want" ] || fail "echoed bytes differ: plain $want, mpklink $got"

total=$((conns * bytes))
for side in client server; do
	f=$tmp/$side.stats
	links=$(stat_field "$f" links)
	tx=$(stat_field "$f" tx_bytes)
	rx=$(stat_field "$f" rx_bytes)
	[ "$links" -eq "$conns" ] || fail "$side: $links links, expected $conns"
	[ "$tx" -eq "$total" ] && [ "$rx" -eq "$total" ] ||
		fail "$side: tx_bytes=$tx rx_bytes=$rx through the rings, expected $total each"
done
# The kernel's own counters (TCP_INFO of each connection, read by the
# client before close): plain TCP carried the payload, the upgraded
# connections only the 24-byte preamble (doorbells are eventfds), plus
# the one sequence number each of SYN and FIN count.
tcp_of() { sed -n "s/.*$2=\([0-9]*\).*/\1/p" "$1"; }
plain_tcp=$(tcp_of "$tmp/plain-client.log" bytes_acked)
[ "$plain_tcp" -ge "$total" ] || fail "plain run: the kernel counted $plain_tcp bytes sent, expected >= $total"
sent=$(tcp_of "$tmp/client.log" bytes_acked)
got_tcp=$(tcp_of "$tmp/client.log" bytes_received)
[ -n "$sent" ] && [ -n "$got_tcp" ] || fail "no TCP_INFO line from the client"
[ "$sent" -le $((conns * 26)) ] ||
	fail "upgraded run: the kernel counted $sent bytes sent on TCP, more than $conns preambles"
[ "$got_tcp" -le $((conns * 2)) ] ||
	fail "upgraded run: the kernel counted $got_tcp bytes received on TCP, expected none but FINs"
echo "PASS: $mode: $conns connections, $total bytes each way through the rings," \
	"TCP carried $(tcp_of "$tmp/client.log" bytes_acked)+$(tcp_of "$tmp/client.log" bytes_received) bytes, $got"
