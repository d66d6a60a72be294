#!/bin/bash
# SPDX-License-Identifier: MIT
# Mixed peers: mpklink never breaks a connection it cannot upgrade.
#  1. server under mpklink-run, plain client: served over TCP;
#  2. client under mpklink-run, plain server: TCP;
#  3. both under mpklink-run with no endpoints: byte for byte as without.
# Each run's echoed-bytes checksum must equal the plain reference.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
args=(--port "$port" --mode et --conns 16 --bytes-per-conn 100000 --seed 7)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
none=$(envfile none "MPKLINK_RUNDIR=$tmp/run")

# run NAME SERVER_WRAP... :: CLIENT_WRAP...
run() {
	local name=$1 sw=() cw=()
	shift
	while [ "$1" != :: ]; do sw+=("$1"); shift; done
	shift
	cw=("$@")
	MPKLINK_STATS=$tmp/$name-server.stats timeout 120 "${sw[@]}" "$ECHO_SERVER" --port "$port" \
		--mode et >"$tmp/$name-server.log" 2>&1 &
	pids+=($!)
	wait_listen "$port"
	MPKLINK_STATS=$tmp/$name-client.stats timeout 120 "${cw[@]}" "$ECHO_CLIENT" "${args[@]}" \
		>"$tmp/$name-client.log" 2>&1 || fail "$name: client failed"
	kill -TERM "${pids[-1]}"
	wait "${pids[-1]}" || fail "$name: server exited with status $?"
	grep -o 'fnv=[0-9a-f]*' "$tmp/$name-client.log"
}

want=$(run plain ::)
[ -n "$want" ] || fail "plain run printed no checksum"

got=$(run srv-only "$MPKLINK_RUN" -e "$env" -- ::)
[ "$got" = "$want" ] || fail "mpklink server, plain client: $got != $want"
[ "$(stat_field "$tmp/srv-only-server.stats" links)" -eq 0 ] ||
	fail "mpklink server made links with a plain client"

got=$(run cli-only :: "$MPKLINK_RUN" -e "$env" --)
[ "$got" = "$want" ] || fail "mpklink client, plain server: $got != $want"
[ "$(stat_field "$tmp/cli-only-client.stats" links)" -eq 0 ] ||
	fail "mpklink client made links with a plain server"

got=$(run no-endpoints "$MPKLINK_RUN" -e "$none" -- :: "$MPKLINK_RUN" -e "$none" --)
[ "$got" = "$want" ] || fail "no endpoints: $got != $want"
[ ! -s "$tmp/no-endpoints-server.stats" ] && [ ! -s "$tmp/no-endpoints-client.stats" ] ||
	fail "no endpoints configured, yet link counters were written"
echo "PASS: plain client, plain server and no endpoints all served, $want"
