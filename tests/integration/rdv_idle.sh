#!/bin/bash
# SPDX-License-Identifier: MIT
#
# rdv_idle.sh [signed]: peers that connect to a launcher's rendezvous socket
# and send nothing must not hold up anyone else. 70 such connections are
# opened and held, more than the launcher lets wait at once (64): the
# oldest are cut off, and it says so. Meanwhile an echo client under its own
# launcher makes 8 connections to the server: every one is upgraded
# (MPKLINK_STATS on both sides). Before, the launcher's control thread
# waited on each idle peer in turn (2 s each): the server's accepts stalled
# with it, and clients gave up and stayed TCP. With "signed", both sides
# have identities.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
mkdir -m 700 "$tmp/run"
common=("MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_LOG=info")
srv=("${common[@]}") cli=("${common[@]}")
if [ "${1:-}" = signed ]; then
	keys=${MPKLINK_KEYS:?}
	"$keys" init --dir "$tmp/ca" >/dev/null || fail "mpklink-keys init"
	"$keys" issue --dir "$tmp/ca" server --binary "$ECHO_SERVER" >/dev/null || fail "issue server"
	"$keys" issue --dir "$tmp/ca" client --binary "$ECHO_CLIENT" >/dev/null || fail "issue client"
	srv+=("MPKLINK_IDENTITY=$tmp/ca/server" "MPKLINK_TRUST=$tmp/ca/ca.pub")
	cli+=("MPKLINK_IDENTITY=$tmp/ca/client" "MPKLINK_TRUST=$tmp/ca/ca.pub")
fi
senv=$(envfile srv "${srv[@]}")
cenv=$(envfile cli "${cli[@]}")

MPKLINK_STATS=$tmp/server.stats timeout 120 "$MPKLINK_RUN" -e "$senv" -- \
	"$ECHO_SERVER" --port "$port" --mode et >"$tmp/server.log" 2>&1 &
srv_pid=$!
pids+=($srv_pid)
wait_listen "$port"
# The program listens before its launcher makes the rendezvous socket.
for _ in $(seq 200); do [ -S "$tmp/run/tcp-$port.sock" ] && break; sleep 0.05; done
[ -S "$tmp/run/tcp-$port.sock" ] || fail "no rendezvous socket for port $port after 10 s"

# The idle peers: connected, silent, held until told to go.
/usr/bin/python3 - "$tmp/run/tcp-$port.sock" "$tmp/idle.ready" "$tmp/idle.go" <<'PY' \
	>"$tmp/idle.log" 2>&1 &
import os, socket, sys, time
path, ready, go = sys.argv[1:]
held = []
for i in range(70):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    held.append(s)
open(ready, "w").close()
for _ in range(1200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
PY
pids+=($!)
for _ in $(seq 200); do [ -e "$tmp/idle.ready" ] && break; sleep 0.05; done
[ -e "$tmp/idle.ready" ] || fail "the idle peers did not connect: $(cat "$tmp/idle.log")"

MPKLINK_STATS=$tmp/client.stats timeout 60 "$MPKLINK_RUN" -e "$cenv" -- \
	"$ECHO_CLIENT" --port "$port" --mode et --conns 8 --bytes-per-conn 4096 --seed 1 \
	>"$tmp/client.log" 2>&1 || fail "the client failed"
touch "$tmp/idle.go"
kill -TERM "$srv_pid"
wait "$srv_pid" || fail "server under mpklink-run exited with status $?"

for side in client server; do
	n=$(stat_field "$tmp/$side.stats" links)
	[ "$n" -eq 8 ] || fail "$side: links=$n of 8 connections while 70 idle peers held the rendezvous"
done
cut=$(grep -c "a rendezvous peer waited longest while too many waited; cut off" "$tmp/server.log")
[ "$cut" -ge 6 ] || fail "the server's launcher cut off $cut of the 70 idle peers, not the 6 over its limit"
echo "PASS: 8 of 8 connections upgraded while 70 idle peers held the rendezvous socket ($cut cut off)"
