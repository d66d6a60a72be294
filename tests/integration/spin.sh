#!/bin/bash
# SPDX-License-Identifier: MIT
#
# spin.sh syscalls | idle
#
# syscalls: the C echo pair, each under mpklink-run, N round trips of 64 B
#   with the client counted by strace -c: plain TCP costs at least two system
#   calls per round trip (send, recv); upgraded, with both sides spinning on
#   the rings (MPKLINK_SPIN_US), the data path costs none: what is left is
#   setup and exit, far below one per round trip.
# idle [MODE]: an echo server under mpklink (epoll, or MODE's poll or
#   select) holding an upgraded connection that went quiet must not spin: over an idle window its CPU time (utime+stime
#   from /proc/PID/stat, in clock ticks) stays under 1% of the window.
# poll: the server in poll(2) (--mode poll), counted by strace -c: poll
#   spins on the rings as epoll_wait does, so a round trip costs the server
#   no system call; only a look at its plain fds every 20 us and setup (an
#   unspinning poll costs at least one per round trip).
# backoff: a spin that finds nothing must not make the next spins shorter.
#   The client takes 0.7x the server's spin budget before each request,
#   and 3x it before every 16th (a spin that must miss). The server should
#   miss those and sleep once more after each, and spin through the rest:
#   it sleeps (the client rings it) on about 1 wait in 8. A budget that
#   halves per miss misses every wait after a slow one until a probe: the
#   server then sleeps on most of them.
# grow: a spin that keeps running out just before the link has news grows
#   (MPKLINK_SPIN_MAX_US). The client takes 3x MPKLINK_SPIN_US before each
#   request. With MPKLINK_SPIN_MAX_US equal to MPKLINK_SPIN_US the server
#   must sleep on most waits (else this tests nothing); with it at 8x, the
#   server's spins grow past the client's pause and it sleeps on few.
# pool: as grow, with MPKLINK_SPIN_MAX_US at 8x, against pool_echo, whose two
#   threads take turns as a thread pool's do (each writes the reply to what
#   the other read, then polls): its link I/O moves between threads on every
#   request, so its spins must not grow (a pool's poller would take a CPU its
#   workers need): it sleeps on most waits, as with fixed spins.
. "$(dirname "$0")/lib.sh"

what=${1:?syscalls, idle, poll, backoff, grow or pool}
# The server's event loop for syscalls, idle and backoff: et (epoll,
# edge-triggered) unless given (lt, poll, select).
smode=${2:-et}
command -v strace >/dev/null || fail "strace is not installed (scripts/deps.sh installs it)"
port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
	"MPKLINK_SPIN_US=${SPIN_US:-2000}")

# Each side spins on a core of its own, as busy-polling assumes (2 cores
# here): pinned, the two never take turns on one CPU.
pin_s=() pin_c=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_s=(taskset -c 0) pin_c=(taskset -c 1)
fi
start_server() { # [mpklink]
	if [ "${1:-}" = mpklink ]; then
		MPKLINK_STATS=$tmp/server.stats "${pin_s[@]}" "$MPKLINK_RUN" -e "$env" -- \
			"$ECHO_SERVER" --port "$port" --mode "$smode" >"$tmp/server.log" 2>&1 &
	else
		"${pin_s[@]}" "$ECHO_SERVER" --port "$port" --mode "$smode" >"$tmp/server.log" 2>&1 &
	fi
	server_started "$port"
}

# client_rings ECHO_CLIENT_OPTION...: n round trips of 64 B by the client
# under $env; sets rings to the doorbells it rang, one per wait its server
# slept through. (A global, not an echo: fail must end the script, not a
# command substitution's subshell.)
client_rings() {
	rm -f "$tmp/client.stats"
	MPKLINK_STATS=$tmp/client.stats "${pin_c[@]}" "$MPKLINK_RUN" -e "$env" -- \
		"$ECHO_CLIENT" --port "$port" --rtt $n --size 64 "$@" >"$tmp/client.log" 2>&1 ||
		{ cat "$tmp/client.log" >&2; fail "the client failed"; }
	links=$(stat_field "$tmp/client.stats" links)
	[ "$links" -eq 1 ] || fail "the client made $links links, expected 1"
	rings=$(stat_field "$tmp/client.stats" doorbells)
}

case "$what" in
syscalls)
	n=20000
	start_server
	strace -f -c -o "$tmp/plain.strace" "$ECHO_CLIENT" --port "$port" --rtt $n --size 64 \
		--warmup 1000 >"$tmp/plain.log" 2>&1 || fail "plain client failed"
	stop_server
	plain=$(awk '/total$/ {print $4}' "$tmp/plain.strace")
	[ -n "$plain" ] && [ "$plain" -ge $((2 * n)) ] ||
		fail "plain TCP: strace counted ${plain:-nothing}, expected >= $((2 * n)) system calls"

	# A spinner preempted by something else on this 2-core machine sleeps
	# on its doorbell (and spins on fewer waits): up to three tries, the best
	# counts. A data path that makes system calls fails all three.
	best=
	for try in 1 2 3; do
		start_server mpklink
		rm -f "$tmp/client.stats"
		MPKLINK_STATS=$tmp/client.stats "${pin_c[@]}" "$MPKLINK_RUN" -e "$env" -- \
			strace -f -c -o "$tmp/mpk.strace" "$ECHO_CLIENT" --port "$port" --rtt $n \
			--size 64 --warmup 1000 >"$tmp/mpk.log" 2>&1 || fail "client under mpklink failed"
		stop_server
		links=$(stat_field "$tmp/client.stats" links)
		[ "$links" -eq 1 ] || fail "the client made $links links, expected 1"
		got=$(awk '/total$/ {print $4}' "$tmp/mpk.strace")
		[ -n "$got" ] || fail "no strace summary"
		echo "try $try: $got system calls, $(grep -o 'p50_us=[0-9.]*' "$tmp/mpk.log")"
		[ -z "$best" ] || [ "$got" -lt "$best" ] && best=$got
		# Setup and exit take a few hundred; the round trips must add
		# well under one per ten.
		[ "$got" -lt $((n / 10)) ] && break
	done
	[ "$best" -lt $((n / 10)) ] || {
		cat "$tmp/mpk.strace" >&2
		fail "under mpklink the client made at best $best system calls for $n round trips"
	}
	echo "PASS: $n round trips: plain TCP $plain system calls, mpklink spinning $best" \
		"(setup and exit included)"
	;;
idle)
	start_server mpklink
	spid=$(pgrep -f -n "^$ECHO_SERVER --port $port") || fail "no server process"
	# A client that talks, then holds its connection open and quiet.
	"$MPKLINK_RUN" -e "$env" -- /usr/bin/python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(2000):
    s.sendall(b"x" * 64)
    got = b""
    while len(got) < 64:
        got += s.recv(64 - len(got))
print("talked", flush=True)
time.sleep(float(sys.argv[2]))
s.close()
' "$port" 8 >"$tmp/client.log" 2>&1 &
	cpid=$!
	pids+=($cpid)
	for _ in $(seq 200); do grep -q talked "$tmp/client.log" && break; sleep 0.05; done
	grep -q talked "$tmp/client.log" || fail "the client never finished talking"
	sleep 1 # the last spins end
	ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
	t0=$(ticks "$spid")
	sleep 5
	t1=$(ticks "$spid")
	hz=$(getconf CLK_TCK)
	used=$((t1 - t0))
	# 1% of 5 s.
	[ "$used" -le $((hz * 5 / 100)) ] ||
		fail "the idle server used $used ticks of CPU in 5 s (limit $((hz * 5 / 100)) at $hz Hz)"
	wait "$cpid" || fail "the client failed"
	stop_server
	links=$(stat_field "$tmp/server.stats" links)
	[ "$links" -ge 1 ] || fail "the connection was not upgraded"
	echo "PASS: an idle upgraded server used $used of $((hz * 5)) clock ticks in 5 s"
	;;
poll)
	n=20000 best=
	for try in 1 2 3; do
		rm -f "$tmp/server.stats"
		MPKLINK_STATS=$tmp/server.stats "${pin_s[@]}" "$MPKLINK_RUN" -e "$env" -- \
			strace -f -c -o "$tmp/srv.strace" "$ECHO_SERVER" --port "$port" --mode poll \
			>"$tmp/server.log" 2>&1 &
		server_started "$port"
		"${pin_c[@]}" "$MPKLINK_RUN" -e "$env" -- "$ECHO_CLIENT" --port "$port" --rtt $n \
			--size 64 --warmup 1000 >"$tmp/client.log" 2>&1 || fail "the client failed"
		# The server itself, not strace: strace writes its count when
		# its tracee is gone.
		pkill -TERM -f "^$ECHO_SERVER --port $port " || fail "no server process"
		wait "$srv" 2>/dev/null
		links=$(stat_field "$tmp/server.stats" links)
		[ "$links" -eq 1 ] || fail "the server made $links links, expected 1"
		got=$(awk '/total$/ {print $4}' "$tmp/srv.strace")
		[ -n "$got" ] || fail "no strace summary"
		polls=$(awk '$NF == "poll" {print $4}' "$tmp/srv.strace")
		echo "try $try: the server made $got system calls (${polls:-0} poll)," \
			"$(grep -o 'p50_us=[0-9.]*' "$tmp/client.log")"
		[ -z "$best" ] || [ "$got" -lt "$best" ] && best=$got
		[ "$got" -lt $((n / 2)) ] && break
	done
	[ "$best" -lt $((n / 2)) ] || {
		cat "$tmp/srv.strace" >&2
		fail "the poll(2) server made at best $best system calls for $n round trips"
	}
	echo "PASS: $n round trips cost a poll(2) server $best system calls (setup included)"
	;;
backoff)
	budget=200 n=4000
	env=$(envfile backoff "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_SPIN_US=$budget")
	start_server mpklink
	client_rings --warmup 16 --think-us $((budget * 7 / 10)) --slow-every 16 \
		--slow-us $((budget * 3))
	stop_server
	slow=$(((n + 16) / 16))
	echo "$((n + 16)) requests, $slow of them slow: the server slept on $rings"
	# The slow ones must have made it sleep, or this tests nothing.
	[ "$rings" -ge $((slow / 2)) ] ||
		fail "the server slept on only $rings waits: the slow requests did not end its spins"
	[ "$rings" -le $(((n + 16) * 4 / 10)) ] ||
		fail "the server slept on $rings of $((n + 16)) waits: its spins stay short after a miss"
	echo "PASS: $rings sleeps in $((n + 16)) waits ($slow slow requests)"
	;;
grow)
	budget=50 n=3000
	sleeps() { # SPIN_MAX_US: sets rings for the echo server
		env=$(envfile "grow$1" "MPKLINK_ENDPOINTS=127.0.0.1:$port" \
			"MPKLINK_RUNDIR=$tmp/run" "MPKLINK_SPIN_US=$budget" "MPKLINK_SPIN_MAX_US=$1")
		start_server mpklink
		client_rings --warmup 100 --think-us $((budget * 3))
		stop_server
	}
	[ "${#pin_s[@]}" -gt 0 ] || fail "spins grow only with 2 CPUs or more; this machine has $(nproc)"
	sleeps $budget
	fixed=$rings
	sleeps $((budget * 8))
	grown=$rings
	echo "$((n + 100)) requests $((budget * 3)) us apart: the server slept on $fixed with" \
		"fixed $budget us spins, on $grown with spins growing up to $((budget * 8)) us"
	[ "$fixed" -ge $(((n + 100) / 2)) ] ||
		fail "with fixed $budget us spins the server slept on only $fixed waits: this tests nothing"
	[ "$grown" -le $(((n + 100) / 10)) ] ||
		fail "with spins allowed to grow the server still slept on $grown of $((n + 100)) waits"
	echo "PASS: $fixed sleeps with fixed spins, $grown with growing ones"
	;;
pool)
	budget=50 n=3000
	env=$(envfile pool "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_SPIN_US=$budget" "MPKLINK_SPIN_MAX_US=$((budget * 8))")
	[ "${#pin_s[@]}" -gt 0 ] || fail "spins grow only with 2 CPUs or more; this machine has $(nproc)"
	MPKLINK_STATS=$tmp/server.stats "${pin_s[@]}" "$MPKLINK_RUN" -e "$env" -- \
		"$POOL_ECHO" "$port" >"$tmp/server.log" 2>&1 &
	server_started "$port"
	client_rings --warmup 100 --think-us $((budget * 3))
	wait "$srv" || { cat "$tmp/server.log" >&2; fail "pool_echo failed"; }
	grep -q "pool_echo: $((n + 100)) requests" "$tmp/server.log" ||
		fail "pool_echo did not serve $((n + 100)) requests: $(cat "$tmp/server.log")"
	echo "$((n + 100)) requests $((budget * 3)) us apart to a two-thread pool: it slept on $rings"
	[ "$rings" -ge $(((n + 100) / 2)) ] ||
		fail "the pool slept on only $rings of $((n + 100)) waits: its pollers' spins grew"
	echo "PASS: the pool slept on $rings of $((n + 100)) waits (its spins stayed at $budget us)"
	;;
*) fail "unknown mode $what" ;;
esac
