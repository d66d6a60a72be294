#!/bin/bash
# SPDX-License-Identifier: MIT
#
# session.sh: signed launchers authenticate once per pair, not once per
# batch of links. A handshake (signatures, X25519) opens a session both
# launchers keep; later batches resume it (keys.h, "resumption").
#  - one client program makes n connections, one after another, each a
#    link: both launchers' logs show one handshake, and the rest of the
#    batches on the resumed session;
#  - the server's launcher is restarted under the same client launcher:
#    the next batch's RESUME names a session the new launcher does not
#    know; the client's launcher makes one handshake with it, and the
#    connections after it are links again, every reply right.
. "$(dirname "$0")/lib.sh"

keys=${MPKLINK_KEYS:?}
port=$(free_port)
ca=$tmp/ca
n=400
"$keys" init --dir "$ca" >/dev/null || fail "mpklink-keys init"
"$keys" issue --dir "$ca" server --binary "$ECHO_SERVER" >/dev/null || fail "issue server"
"$keys" issue --dir "$ca" client --binary "$CHURN" >/dev/null || fail "issue client"
mkdir -m 700 "$tmp/run"
common=("MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_TRUST=$ca/ca.pub"
	"MPKLINK_LOG=debug")
srv_env=$(envfile srv "${common[@]}" "MPKLINK_IDENTITY=$ca/server" "MPKLINK_ALLOW=$port:client")
cli_env=$(envfile cli "${common[@]}" "MPKLINK_IDENTITY=$ca/client")

start_server() { # LOG
	"$MPKLINK_RUN" -e "$srv_env" -- "$ECHO_SERVER" --port "$port" --mode et >"$1" 2>&1 &
	server_started "$port"
}
count() { grep -c -- "$1" "$2"; }
NEW="a new session"
RESUMED="links on a resumed session"

# client RUN [between]: n connections under one client launcher; runs
# "between" (a function) after the warm-up, before the rest.
client() {
	local run=$1 between=${2:-} marks=$tmp/marks.$1 launcher
	mkdir "$marks"
	MPKLINK_STATS=$tmp/$run.stats "$MPKLINK_RUN" -e "$cli_env" -- \
		"$CHURN" "$port" "$n" "$marks" >"$tmp/$run.log" 2>&1 &
	launcher=$!
	pids+=($launcher)
	for _ in $(seq 1200); do
		if [ -e "$marks/warm" ] && [ ! -e "$marks/go-warm" ]; then
			[ -n "$between" ] && $between
			touch "$marks/go-warm"
		fi
		[ -e "$marks/done" ] && touch "$marks/go-done" && break
		kill -0 "$launcher" 2>/dev/null || break
		sleep 0.05
	done
	wait "$launcher" || fail "$run failed: $(cat "$tmp/$run.log")"
}

# --- one pair, n connections
start_server "$tmp/server1.log"
client steady
links=$(stat_field "$tmp/steady.stats" links)
[ "$links" -eq "$n" ] || fail "steady: $links of $n connections were links: $(cat "$tmp/steady.stats")"
for side in "server1:client's launcher" "steady:server's launcher"; do
	log=$tmp/${side%%:*}.log
	new=$(count "$NEW" "$log")
	res=$(count "$RESUMED" "$log")
	[ "$new" -eq 1 ] || fail "${side%%:*}: $new handshakes for one pair of launchers, not 1: $(grep -- "$NEW" "$log")"
	# 400 connections are at least 400/32 batches.
	[ "$res" -ge $((n / 32 - 1)) ] || fail "${side%%:*}: only $res batches resumed the session"
done
steady_res=$res

# --- the server's launcher restarts between two batches
restart() {
	stop_server
	start_server "$tmp/server2.log"
}
client restarted restart
grep -q "did not resume" "$tmp/restarted.log" ||
	fail "restarted: the client's launcher never tried its old session with the new server: $(grep -i "session\|resum" "$tmp/restarted.log" | head)"
grep -q "a session this launcher does not know" "$tmp/server2.log" ||
	fail "restarted: the new server's launcher did not refuse the old session"
new=$(count "$NEW" "$tmp/server2.log")
[ "$new" -eq 1 ] || fail "restarted: the new server's launcher made $new handshakes, not 1"
res=$(count "$RESUMED" "$tmp/server2.log")
[ "$res" -ge 2 ] || fail "restarted: the new server's launcher resumed only $res batches"
links=$(stat_field "$tmp/restarted.stats" links)
[ "$links" -ge $((n / 2)) ] || fail "restarted: only $links of $n connections were links"
stop_server
echo "PASS: one handshake per pair of launchers ($steady_res batches resumed over $n connections); after the server's launcher restarted, one new handshake, $res batches resumed, $links of $n links"
