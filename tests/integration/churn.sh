#!/bin/bash
# SPDX-License-Identifier: MIT
#
# churn.sh N [RSS [MAX_PER_S]]: no leak under connection churn. The echo server under its
# launcher; churn (a client without a connection pool) under its own makes
# N connections one after another, each connect, 8 bytes echoed, close.
# After the first N/100 and again after all N, both launchers' open fds,
# their resident memory and the run directory's files are read: the fds and
# files must come back to where they were after the warm-up, or below
# (the launchers drop a closed link's fds at their next sweep, 0.2 s after
# a close: this waits for that, bounded; a link's memory is its fds, the
# launchers never map it), and their resident memory may not grow by more
# than 4 MiB (a leak of 200 bytes a connection shows at 2x10^4). Every
# connection must have been a link (MPKLINK_STATS), or the test tests TCP.
# Shown to fail when the launcher's sweep keeps closed links. RSS "-" leaves
# resident memory unchecked: under TSan it grows with every thread the
# launcher starts (a LINKS worker), in TSan's own records of threads.
#
# CI runs 2x10^4; 10^5 (issue 16) is `churn.sh 100000` by hand. A client
# socket is not bound before its connect (links are found by the socket's
# cookie, not its port): connect picks its port as over TCP.
#
# A connect or close wakes no launcher: CLAIMED and CLOSE go into a notice
# ring the launcher reads on its own schedule (MPK_CTL_NOTES). Over
# the N connections after the warm-up, each launcher's threads may switch
# out fewer than N/2 times (its batches and offers, one a connection per
# 16 or fewer, and its timer); they woke at least once a connection when
# each notice was a request. Shown to fail with the notices sent as
# requests.
#
# Links are made in batches ahead of need: at the end the client may hold
# up to two batches unused, and both launchers keep those pending for 10 s
# (PENDING_MS): the fds are compared once they went, up to 15 s.
. "$(dirname "$0")/lib.sh"

n=${1:?N}
rss_check=${2:-4096}
max_rate=${3:-}
port=$(free_port)
mkdir -m 700 "$tmp/run" "$tmp/marks"
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")

MPKLINK_STATS=$tmp/server.stats timeout 900 "$MPKLINK_RUN" -e "$env" -- \
	"$ECHO_SERVER" --port "$port" --mode et >"$tmp/server.log" 2>&1 &
slauncher=$!
pids+=($slauncher)
wait_listen "$port"
MPKLINK_STATS=$tmp/client.stats timeout 900 "$MPKLINK_RUN" -e "$env" -- \
	"$CHURN" "$port" "$n" "$tmp/marks" $max_rate >"$tmp/client.log" 2>&1 &
clauncher=$!
pids+=($clauncher)

# The launchers themselves (timeout's children): their fds and memory.
child_of() {
	local p
	for _ in $(seq 100); do
		p=$(pgrep -P "$1" | head -n 1)
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.05
	done
	fail "no launcher under process $1"
}
sl=$(child_of "$slauncher")
cl=$(child_of "$clauncher")
[ "$(cat "/proc/$sl/comm")" = mpklink-run ] && [ "$(cat "/proc/$cl/comm")" = mpklink-run ] ||
	fail "processes $sl and $cl are not the launchers"

wait_mark() {
	for _ in $(seq 6000); do
		[ -e "$tmp/marks/$1" ] && return 0
		kill -0 "$clauncher" 2>/dev/null || fail "the client ended before '$1'"
		sleep 0.1
	done
	fail "the client did not reach '$1' in 600 s"
}
# fds, RSS in KiB, of a launcher; the run directory's entries
fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
files() { ls -A "$tmp/run" | wc -l; }
snapshot() { echo "$(fds "$sl") $(fds "$cl") $(files)"; }
# context switches of all of a launcher's threads
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }

wait_mark warm
sleep 0.5 # the warm-up's links swept
base=$(snapshot)
srss=$(rss "$sl") crss=$(rss "$cl")
ssw=$(switches "$sl") csw=$(switches "$cl")
touch "$tmp/marks/go-warm"
wait_mark done
ssw=$(($(switches "$sl") - ssw)) csw=$(($(switches "$cl") - csw))
# Each count no higher than after the warm-up (a link of the warm-up's last
# connection may not have been swept yet then).
settled() { # base now
	local b=($1) n=($2)
	for i in 0 1 2; do [ "${n[$i]}" -le "${b[$i]}" ] || return 1; done
}
now=$(snapshot)
for _ in $(seq 150); do
	settled "$base" "$now" && break
	sleep 0.1
	now=$(snapshot)
done
srss2=$(rss "$sl") crss2=$(rss "$cl")
touch "$tmp/marks/go-done"
wait "$clauncher" || fail "the client failed: $(cat "$tmp/client.log")"
kill -TERM "$slauncher"
wait "$slauncher" || fail "the server's launcher exited with status $?"

for side in client server; do
	links=$(stat_field "$tmp/$side.stats" links)
	[ "$links" -eq "$n" ] || fail "$side: links=$links of $n connections: the churn went over TCP"
	# Links are made over (mpk_link_recycle) once both ends closed them:
	# past the first batches, nearly every connection's link is one.
	over=$(stat_field "$tmp/$side.stats" made_over)
	[ "$over" -ge $((n / 2)) ] ||
		fail "$side: made_over=$over of $n connections: closed links were not used again"
done
settled "$base" "$now" ||
	fail "after $n connections (server launcher fds, client launcher fds, run directory files): $now, after the warm-up $base"
for x in "server $ssw" "client $csw"; do
	set -- $x
	[ "$2" -lt $((n / 2)) ] ||
		fail "the $1's launcher switched $2 times over $n connections: notices woke it"
done
rss_note="RSS server $srss->$srss2 KiB, client $crss->$crss2 KiB"
if [ "$rss_check" = - ]; then
	rss_note="$rss_note, not checked in this build"
else
	for x in "server $srss $srss2" "client $crss $crss2"; do
		set -- $x
		[ $(($3 - $2)) -le "$rss_check" ] || fail "the $1's launcher grew from $2 to $3 KiB over $n connections"
	done
fi
echo "PASS: $n connections, all links, $over made over; launchers' switches server $ssw client $csw; launchers' fds and run directory $now, after the warm-up $base; $rss_note; $(grep -o '[0-9]* per second' "$tmp/client.log")"
