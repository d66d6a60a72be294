#!/bin/bash
# SPDX-License-Identifier: MIT
#
# wrapped.sh CMD [ARGS...]: runs an interop pair command (tests/interop,
# through run_pair.sh) with its server and client each under their own
# mpklink-run, on a port named in their env file. The command must pass as
# it does plain, and each side's MPKLINK_STATS must show links that carried
# bytes both ways: the connection was upgraded, not left on TCP.
. "$(dirname "$0")/lib.sh"

port=$(free_port)
# MPK_WRAP_ENV: more KEY=VALUE lines for the env file, space-separated.
read -r -a extra <<<"${MPK_WRAP_ENV:-}"
senv=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" "${extra[@]}")
cenv=$senv
# MPK_WRAP_SIGN="SERVER_BINARY CLIENT_BINARY": both sides signed (mpklink-keys
# at $MPKLINK_KEYS), the server allowing only the client, the client
# expecting only the server.
if [ -n "${MPK_WRAP_SIGN:-}" ]; then
	read -r sbin cbin <<<"$MPK_WRAP_SIGN"
	"$MPKLINK_KEYS" init --dir "$tmp/ca" >/dev/null || fail "mpklink-keys init"
	"$MPKLINK_KEYS" issue --dir "$tmp/ca" svc --binary "$sbin" >/dev/null || fail "issue svc"
	"$MPKLINK_KEYS" issue --dir "$tmp/ca" cli --binary "$cbin" >/dev/null || fail "issue cli"
	senv=$(envfile srv "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_IDENTITY=$tmp/ca/svc" "MPKLINK_TRUST=$tmp/ca/ca.pub" \
		"MPKLINK_ALLOW=$port:cli" "${extra[@]}")
	cenv=$(envfile cli "MPKLINK_ENDPOINTS=127.0.0.1:$port=svc" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_IDENTITY=$tmp/ca/cli" "MPKLINK_TRUST=$tmp/ca/ca.pub" "${extra[@]}")
fi
export MPK_PORT=$port
export MPK_SERVER_WRAP="env MPKLINK_STATS=$tmp/server.stats $MPKLINK_RUN -e $senv --"
export MPK_CLIENT_WRAP="env MPKLINK_STATS=$tmp/client.stats $MPKLINK_RUN -e $cenv --"
"$@" >"$tmp/pair.log" 2>&1 || { cat "$tmp/pair.log" >&2; fail "the pair failed under mpklink"; }
tail -n 3 "$tmp/pair.log"
for side in server client; do
	f=$tmp/$side.stats
	links=$(stat_field "$f" links)
	tx=$(stat_field "$f" tx_bytes)
	rx=$(stat_field "$f" rx_bytes)
	tcp=$(stat_field "$f" tcp_bytes)
	[ "$links" -ge 1 ] && [ "$tx" -gt 0 ] && [ "$rx" -gt 0 ] || {
		# Both sides' counters (fallbacks, probes) say where it went.
		cat "$tmp/server.stats" "$tmp/client.stats" >&2 2>/dev/null
		fail "$side: links=$links tx_bytes=$tx rx_bytes=$rx: the connection was not upgraded"
	}
	# The kernel's own count (TCP_INFO, what ss -ti shows) of the bytes
	# on those sockets: the 24-byte preamble per link and nothing else
	# (doorbells are eventfds); SYN and FIN count one each.
	[ "$tcp" -le $((links * 32)) ] ||
		fail "$side: the kernel counted $tcp bytes on $links upgraded TCP sockets: more than preambles"
	case " ${MPK_WRAP_ENV:-} " in *" MPKLINK_INTEGRITY=mac "*)
		[ "$(stat_field "$f" mac_links)" -eq "$links" ] ||
			fail "$side: MPKLINK_INTEGRITY=mac, but $(stat_field "$f" mac_links) of $links links carry MACs"
	esac
	echo "$side: links=$links tx_bytes=$tx rx_bytes=$rx through the rings; TCP carried $tcp bytes"
done
echo "PASS: $(basename "$1") ${*:2:1} under mpklink-run${MPK_WRAP_SIGN:+, both sides signed}"
