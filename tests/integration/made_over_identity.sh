#!/bin/bash
# SPDX-License-Identifier: MIT
#
# made_over_identity.sh: a link made over goes back only to the client
# identity it served. The server's launcher makes a closed link over for a
# later connection (launcher/links.c, spares); a side that released it
# could still write into it, so it must never reach another identity's
# program. Signed services: a server, clients "alpha" and "beta" (the
# same churn binary, two certificates). alpha makes connections, then
# beta, then alpha again, each while the others' spares are fresh. The
# link memories each client maps are its /proc/PID/maps' memfd inodes
# (the mappings it keeps after close, up to 64): beta's share none with
# alpha's; the second alpha's do (which shows this look can see sharing).
. "$(dirname "$0")/lib.sh"

keys=${MPKLINK_KEYS:?}
port=$(free_port)
ca=$tmp/ca
n=400
"$keys" init --dir "$ca" >/dev/null || fail "mpklink-keys init"
"$keys" issue --dir "$ca" server --binary "$ECHO_SERVER" >/dev/null || fail "issue server"
for who in alpha beta; do
	"$keys" issue --dir "$ca" "$who" --binary "$CHURN" >/dev/null || fail "issue $who"
done
mkdir -m 700 "$tmp/run"
common=("MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_TRUST=$ca/ca.pub")
srv_env=$(envfile srv "${common[@]}" "MPKLINK_IDENTITY=$ca/server")

MPKLINK_STATS=$tmp/server.stats "$MPKLINK_RUN" -e "$srv_env" -- \
	"$ECHO_SERVER" --port "$port" --mode et >"$tmp/server.log" 2>&1 &
server_started "$port"

# client RUN WHO: n connections as WHO; prints the memfd inodes its process
# maps once they are done (while it waits for the go).
client() {
	local run=$1 who=$2 env marks=$tmp/marks.$1 launcher churn
	env=$(envfile "$run" "${common[@]}" "MPKLINK_IDENTITY=$ca/$who")
	mkdir "$marks"
	MPKLINK_STATS=$tmp/$run.stats "$MPKLINK_RUN" -e "$env" -- \
		"$CHURN" "$port" "$n" "$marks" >"$tmp/$run.log" 2>&1 &
	launcher=$!
	pids+=($launcher)
	for _ in $(seq 600); do
		[ -e "$marks/warm" ] && touch "$marks/go-warm"
		[ -e "$marks/done" ] && break
		kill -0 "$launcher" 2>/dev/null || fail "$run ($who) ended early: $(cat "$tmp/$run.log")"
		sleep 0.05
	done
	[ -e "$marks/done" ] || fail "$run ($who) did not finish in 30 s"
	churn=$(pgrep -P "$launcher" -x churn) || fail "$run: no churn process under the launcher"
	awk '/memfd:mpklink-link/ {print $5}' "/proc/$churn/maps" | sort -u >"$tmp/$run.inodes"
	touch "$marks/go-done"
	wait "$launcher" || fail "$run ($who) failed: $(cat "$tmp/$run.log")"
	[ "$(stat_field "$tmp/$run.stats" links)" -eq "$n" ] ||
		fail "$run ($who): not every connection was a link: $(cat "$tmp/$run.stats")"
	[ -s "$tmp/$run.inodes" ] || fail "$run ($who): no link memory mapped at the end"
}

client alpha1 alpha
client beta beta
client alpha2 alpha

shared() { comm -12 "$tmp/$1.inodes" "$tmp/$2.inodes" | wc -l; }
[ "$(shared alpha1 beta)" -eq 0 ] ||
	fail "beta's program mapped $(shared alpha1 beta) link memories that served alpha's"
[ "$(shared alpha2 beta)" -eq 0 ] ||
	fail "alpha's second program mapped $(shared alpha2 beta) link memories that served beta's"
[ "$(shared alpha1 alpha2)" -gt 0 ] ||
	fail "alpha's second program mapped none of the link memories of its first: nothing made over to see"
over=$(stat_field "$tmp/alpha2.stats" made_over)
echo "PASS: beta shares no link memory with alpha ($(wc -l <"$tmp/beta.inodes") and $(wc -l <"$tmp/alpha1.inodes") mapped); alpha's second program reuses $(shared alpha1 alpha2) of its first's; made_over alpha2=$over"
