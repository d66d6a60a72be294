#!/bin/bash
# SPDX-License-Identifier: MIT
#
# netns.sh echo|grpc|py: a server and its client in two network namespaces
# (two "containers": each its own loopback, a veth into a bridge in a
# third namespace, addresses from TEST-NET-1, 192.0.2.0/24), sharing one
# run directory, each under its own mpklink-run with
# MPKLINK_ENDPOINTS=192.0.2.1:PORT. The namespaces are made here and removed
# at exit; no traffic goes anywhere else.
#
#   echo: the C echo pair. The client's checksum of what came back must
#         equal a plain run's (the same client without mpklink, the
#         oracle); every connection must be a link on both sides; and the
#         server's veth must carry under 1% of the payload (it carries all
#         of it in the plain run: the check can fail). Then a client
#         without mpklink to the same server: plain TCP, the same checksum,
#         every connection a fallback, none slower than the server's wait
#         for a claim. Then a server whose entry names an address not its
#         own: one line saying so, no rendezvous, and its client stays TCP.
#         Then claims made late on purpose (strace): waited for, or
#         refused with the connection kept TCP.
#   grpc: the gRPC C++ echo pair (unary, server and bidi streams), the same
#         way: links on both sides, under 1% of the payload on the veth.
#   py:   the same with the gRPC Python pair (tests/interop/py_echo.py).
#   signed: the C echo pair with identities (a throwaway CA; the client
#         expects the server's name, the server allows the client's): the
#         launchers' handshake across the namespaces, links as for echo.
#
# Needs root (network namespaces): exit 77, which ctest reports as a skip.
. "$(dirname "$0")/lib.sh"

what=${1:?echo|grpc|py|signed}
# Debian's python3, for which python3-grpcio is installed (as the interop tests).
py_echo=$(dirname "$0")/../interop/py_echo.py
. "$(dirname "$0")/netns_lib.sh"

netns_make
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
listening() { inns "$nsa" ss -Htln "sport = :$1" | grep -q .; }
wait_listen_a() {
	for _ in $(seq 200); do listening "$1" && return 0; sleep 0.05; done
	fail "nothing listens on port $1 in $nsa after 10 s"
}
# Bytes through the server's veth, both ways.
veth_bytes() {
	echo $(($(inns "$nsa" cat /sys/class/net/eth0/statistics/rx_bytes) +
		$(inns "$nsa" cat /sys/class/net/eth0/statistics/tx_bytes)))
}

mkdir -m 700 "$tmp/run"
port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=192.0.2.1:$port" "MPKLINK_RUNDIR=$tmp/run" ${NETNS_EXTRA:-})
senv=$env cenv=$env
if [ "$what" = signed ]; then
	keys=${MPKLINK_KEYS:?}
	ca=$tmp/ca
	"$keys" init --dir "$ca" >/dev/null || fail "mpklink-keys init"
	"$keys" issue --dir "$ca" server --binary "$ECHO_SERVER" >/dev/null || fail "issue server"
	"$keys" issue --dir "$ca" client --binary "$ECHO_CLIENT" >/dev/null || fail "issue client"
	common=("MPKLINK_ENDPOINTS=192.0.2.1:$port=server" "MPKLINK_RUNDIR=$tmp/run"
		"MPKLINK_TRUST=$ca/ca.pub")
	senv=$(envfile srv "${common[@]}" "MPKLINK_IDENTITY=$ca/server" "MPKLINK_ALLOW=$port:client")
	cenv=$(envfile cli "${common[@]}" "MPKLINK_IDENTITY=$ca/client")
fi
# start_server LOG [mpklink]: the server in namespace a.
start_server() {
	local log=$1 pre=()
	[ "${2:-}" = mpklink ] && pre=(env MPKLINK_STATS="$tmp/server.stats" "$MPKLINK_RUN" -e "$senv" --)
	case $what in
	echo | signed) ip netns exec "$nsa" timeout 300 "${pre[@]}" "$ECHO_SERVER" --host 0.0.0.0 --port "$port" --mode et >"$log" 2>&1 & ;;
	grpc) ip netns exec "$nsa" timeout 300 "${pre[@]}" "$GRPC_ECHO_SERVER" --port "$port" >"$log" 2>&1 & ;;
	py) ip netns exec "$nsa" timeout 300 "${pre[@]}" /usr/bin/python3 "$py_echo" server --port "$port" >"$log" 2>&1 & ;;
	esac
	srv=$!
	pids+=("$srv")
	wait_listen_a "$port"
}
# client LOG [mpklink]: the client in namespace b, to 192.0.2.1.
client() {
	local log=$1 pre=()
	[ "${2:-}" = mpklink ] && pre=(env MPKLINK_STATS="$tmp/client.stats" "$MPKLINK_RUN" -e "$cenv" --)
	case $what in
	echo | signed) inns "$nsb" timeout 300 "${pre[@]}" "$ECHO_CLIENT" --host 192.0.2.1 --port "$port" \
		--mode et --conns 8 --bytes-per-conn 2000000 --seed 7 >"$log" 2>&1 ;;
	grpc) inns "$nsb" timeout 300 "${pre[@]}" "$GRPC_ECHO_CLIENT" --target "192.0.2.1:$port" \
		--unary 300 --stream 300 --bidi 300 --size 65536 --seed 7 >"$log" 2>&1 ;;
	py) inns "$nsb" timeout 300 "${pre[@]}" /usr/bin/python3 "$py_echo" client --target "192.0.2.1:$port" \
		--unary 100 --stream 100 --bidi 100 --size 65536 --seed 7 >"$log" 2>&1 ;;
	esac
}
# The payload: echo, 8 x 2 MB each way; grpc, the bytes the client says
# it verified (the plain run's).
case $what in
echo | signed) payload=$((2 * 8 * 2000000)) ;;
grpc)
	[ -x "${GRPC_ECHO_SERVER:-}" ] && [ -x "${GRPC_ECHO_CLIENT:-}" ] ||
		fail "GRPC_ECHO_SERVER and GRPC_ECHO_CLIENT must be the interop programs"
	;;
py) /usr/bin/python3 -c 'import grpc' 2>/dev/null || fail "python3-grpcio is needed" ;;
*) fail "usage: netns.sh echo|grpc|py" ;;
esac

# 1. The oracle: both plain.
start_server "$tmp/plain-server.log"
b0=$(veth_bytes)
client "$tmp/plain-client.log" || fail "plain run failed: $(tail -n 5 "$tmp/plain-client.log")"
plain_veth=$(($(veth_bytes) - b0))
stop_server
[ "$what" = grpc ] || [ "$what" = py ] && payload=$(sed -n 's/^OK .* bytes=\([0-9]*\).*/\1/p' "$tmp/plain-client.log")
[ -n "$payload" ] && [ "$payload" -gt 0 ] || fail "no payload count"
[ "$plain_veth" -ge "$payload" ] ||
	fail "the plain run moved $plain_veth bytes through the veth, under the payload $payload: the counter is not the path"
want=$(grep -o 'fnv=[0-9a-f]*' "$tmp/plain-client.log" || true)
[ "$what" = grpc ] || [ "$what" = py ] || [ -n "$want" ] || fail "plain run printed no checksum"

# 2. Both under mpklink: links, the same result, the veth all but idle.
start_server "$tmp/mpk-server.log" mpklink
b0=$(veth_bytes)
client "$tmp/mpk-client.log" mpklink || fail "mpklink run failed: $(tail -n 5 "$tmp/mpk-client.log")"
mpk_veth=$(($(veth_bytes) - b0))
if [ "$what" = echo ] || [ "$what" = signed ]; then
	got=$(grep -o 'fnv=[0-9a-f]*' "$tmp/mpk-client.log" || true)
	[ "$got" = "$want" ] || fail "mpklink run: checksum '$got', the plain run's '$want'"
else
	[ "$(grep '^OK ' "$tmp/mpk-client.log")" = "$(grep '^OK ' "$tmp/plain-client.log")" ] ||
		fail "mpklink run: '$(grep '^OK ' "$tmp/mpk-client.log")', the plain run's '$(grep '^OK ' "$tmp/plain-client.log")'"
fi
clinks=$(stat_field "$tmp/client.stats" links)
cfall=$(stat_field "$tmp/client.stats" fallbacks)
[ "$clinks" -ge 1 ] && [ "$cfall" -eq 0 ] ||
	fail "client: links=$clinks fallbacks=$cfall: not every connection was a link ($(cat "$tmp/client.stats"))"
stop_server
slinks=$(stat_field "$tmp/server.stats" links)
[ "$slinks" -eq "$clinks" ] || fail "server links=$slinks, client links=$clinks"
[ $((mpk_veth * 100)) -lt "$payload" ] ||
	fail "mpklink run: $mpk_veth bytes through the veth, not under 1% of the payload $payload"
echo "netns $what: links $clinks; veth bytes: plain $plain_veth, mpklink $mpk_veth (payload $payload)"

[ "$what" = echo ] || exit 0

# 3. A client without mpklink to the server under it: plain, the same
# checksum, every connection a fallback on the server.
rm -f "$tmp/server.stats"
start_server "$tmp/mixed-server.log" mpklink
client "$tmp/mixed-client.log" || fail "plain client to mpklink server failed: $(tail -n 5 "$tmp/mixed-client.log")"
got=$(grep -o 'fnv=[0-9a-f]*' "$tmp/mixed-client.log" || true)
[ "$got" = "$want" ] || fail "plain client: checksum '$got', want '$want'"
stop_server
[ "$(stat_field "$tmp/server.stats" links)" -eq 0 ] || fail "plain client: the server counted links"

# 4. A server whose entry names an address not its own: one line, no
# rendezvous; a client naming the same entry stays TCP and still works.
bad=$(envfile bad "MPKLINK_ENDPOINTS=192.0.2.9:$port" "MPKLINK_RUNDIR=$tmp/run")
ip netns exec "$nsa" timeout 300 "$MPKLINK_RUN" -e "$bad" -- "$ECHO_SERVER" --host 0.0.0.0 --port "$port" --mode et \
	>"$tmp/bad-server.log" 2>&1 &
srv=$!
pids+=("$srv")
wait_listen_a "$port"
for _ in $(seq 100); do grep -q "no address of this program's network namespace" "$tmp/bad-server.log" && break; sleep 0.05; done
grep -q "port $port: MPKLINK_ENDPOINTS names 192.0.2.9, which is no address of this program's network namespace" \
	"$tmp/bad-server.log" || fail "no line for an address not the server's: $(cat "$tmp/bad-server.log")"
ls "$tmp/run" | grep -q "tcp-192.0.2.9" && fail "a rendezvous for an address not the server's"
stop_server
echo "netns echo: a plain client and a wrong address stay TCP"

# 5. A claim that comes late. strace holds the client's getsockname, the
# call right before it swaps its PENDING claim for its address, for DELAY
# (the echo client calls no getsockname of its own): 20 ms is waited for
# (every connection a link); 300 ms is past the server's wait (100 ms, the
# preload's POOL_CLAIM_WAIT_MS): the server refuses the claim, the client,
# whose swap fails, sends nothing on the link, and every connection stays
# TCP with the same bytes.
command -v strace >/dev/null || fail "strace not found (scripts/deps.sh installs it)"
late() { # late DELAY_US
	local env0=$senv
	rm -f "$tmp/client.stats" "$tmp/server.stats"
	# The server's log at debug: what it looked for, if this goes wrong.
	senv=$(envfile late "MPKLINK_ENDPOINTS=192.0.2.1:$port" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_LOG=debug")
	start_server "$tmp/late$1-server.log" mpklink
	senv=$env0
	inns "$nsb" timeout 300 env MPKLINK_STATS="$tmp/client.stats" "$MPKLINK_RUN" -e "$env" -- \
		strace -f -qq -o /dev/null -e trace=getsockname -e inject=getsockname:delay_exit="$1" \
		"$ECHO_CLIENT" --host 192.0.2.1 --port "$port" --mode et --conns 8 \
		--bytes-per-conn 2000000 --seed 7 >"$tmp/late$1-client.log" 2>&1 ||
		fail "late claim ($1 us): the client failed: $(tail -n 5 "$tmp/late$1-client.log")
server (setup lines): $(grep -vE ': (read|write|epoll)' "$tmp/late$1-server.log" | head -n 30)"
	got=$(grep -o 'fnv=[0-9a-f]*' "$tmp/late$1-client.log" || true)
	[ "$got" = "$want" ] || fail "late claim ($1 us): checksum '$got', want '$want'"
	stop_server
}
late 20000
[ "$(stat_field "$tmp/client.stats" links)" -eq 8 ] && [ "$(stat_field "$tmp/server.stats" links)" -eq 8 ] ||
	fail "a claim 20 ms late was not waited for: $(cat "$tmp/client.stats" "$tmp/server.stats")"
late 300000
[ "$(stat_field "$tmp/client.stats" links)" -eq 0 ] && [ "$(stat_field "$tmp/server.stats" links)" -eq 0 ] &&
	[ "$(stat_field "$tmp/client.stats" fallbacks)" -eq 8 ] ||
	fail "a claim 300 ms late was not refused: $(cat "$tmp/client.stats" "$tmp/server.stats")"
grep -q "refused (those connections stay plain TCP)" "$tmp/late300000-server.log" ||
	fail "no line for the refused claims: $(cat "$tmp/late300000-server.log")"
grep -q "the server stopped waiting for this connection's link" "$tmp/late300000-client.log" ||
	fail "no client line for a refused claim: $(cat "$tmp/late300000-client.log")"
echo "netns echo: a claim 20 ms late is waited for; 300 ms late, refused, and TCP carries it"
