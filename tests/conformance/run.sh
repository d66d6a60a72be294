#!/bin/bash
# SPDX-License-Identifier: MIT
# Differential conformance runner.
#
#   run.sh [--expect-links N|0|any] [--max-fallbacks N|any] [--expect-made-over N]
#          [--loud] [--reuseport] [--keep] PROGRAM [ARGS...]
#
# Runs PROGRAM ARGS over plain TCP (stdout -> tcp.out), then under
# mpklink-run with MPKLINK_STATS (stdout -> mpk.out), and diffs the two.
# The program gets its ports in the environment: CONF_PORT (configured; the
# scenario listens there), CONF_PORT2 (configured; nothing listens) and
# CONF_PORT_PLAIN (never configured).
#
# Exit 77 (skipped) when the scenario says this machine cannot run it.
# Passes only if: both runs exit 0, both end in "END", the outputs are the
# same, and the stats say the connections were links:
#   --expect-links N    links >= N (default 1)
#   --expect-links 0    links == 0: the right outcome is "stays TCP"
#   --expect-links any  links not checked (still reported)
#   --expect-made-over N  and at least N of them on link memory made over
#                       after an earlier connection closed (the stats'
#                       made_over): what a scenario about it must exercise
# and fallbacks (connections to a configured port that stayed TCP) <= N:
#   --max-fallbacks N   default 0: both ends of every connection run under
#                       the shim, so one that stays TCP means the shim lost
#                       track of something; a scenario that connects where
#                       nothing listens says how many (or any)
# --loud: the scenario does what a link cannot carry; the contract's
#   answer is that the link breaks loudly. It passes if the outputs are the
#   same, or if they differ only from where the program saw ECONNRESET on
#   (an mpk.out line added by the diff says errno=ECONNRESET) and the shim
#   said why in one "link broken" line; a hang or a crash still fails,
#   but for SIGPIPE on a later write, which TCP gives a reset connection
#   too (the program ends there, without its END).
# --reuseport: PROGRAM serve runs twice (SO_REUSEPORT, each under a launcher
# of its own), then PROGRAM client ARGS, under a third; its output is diffed.
#
# Needs MPKLINK_RUN (the launcher). Prints one verdict line:
#   conformance NAME: same | DIFFERS | HANG | CRASH | FAIL ...
set -u

expect=1
maxfb=0
madeover=0
reuseport=0
keep=0
loud=0
while [ $# -gt 0 ]; do
	case "$1" in
	--expect-links) expect=$2; shift 2 ;;
	--max-fallbacks) maxfb=$2; shift 2 ;;
	--expect-made-over) madeover=$2; shift 2 ;;
	--reuseport) reuseport=1; shift ;;
	--loud) loud=1; shift ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { echo "usage: run.sh [--expect-links N|0|any] [--max-fallbacks N|any] [--loud] [--reuseport] PROGRAM [ARGS...]" >&2; exit 2; }
: "${MPKLINK_RUN:?set MPKLINK_RUN to the mpklink-run launcher}"
# Not a setting: mpklink-run refuses MPKLINK_ names it does not know.
export -n MPKLINK_RUN
prog=$1
shift
name="$(basename "$prog") $*"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-conf.XXXXXX")
chmod 700 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$keep" = 1 ]; then echo "kept: $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# A free loopback port, never one this run already picked: callers use
# $(free_port), a subshell, so the picks are kept in a file, not a variable.
free_port() {
	local p
	for _ in $(seq 500); do
		p=$((20000 + RANDOM % 40000))
		grep -qx "$p" "$tmp/ports" 2>/dev/null && continue
		ss -Htan "sport = :$p" | grep -q . && continue
		echo "$p" >>"$tmp/ports"
		echo "$p"
		return
	done
	echo "run.sh: no free port" >&2
	exit 2
}
wait_listen() {
	for _ in $(seq 200); do
		[ "$(ss -Htln "sport = :$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
stat_field() {
	grep -h '^mpklink stats:' "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" |
		awk '{s += $1} END {print s + 0}'
}

port=$(free_port)
port2=$(free_port)
plain=$(free_port)
export CONF_PORT=$port CONF_PORT2=$port2 CONF_PORT_PLAIN=$plain
envf=$tmp/app.env
printf '%s\n' "MPKLINK_ENDPOINTS=127.0.0.1:$port,127.0.0.1:$port2" "MPKLINK_RUNDIR=$tmp/run" >"$envf"
stats=$tmp/mpk.stats
# The scenario's watchdog ends a hang in seconds; this is the last resort.
guard=(timeout -k 5 120)

# describe RC: how a run ended.
describe() {
	case "$1" in
	0) echo "exit 0" ;;
	3) echo "HANG (watchdog, exit 3)" ;;
	124 | 137) echo "HANG (killed by the runner's timeout)" ;;
	*) if [ "$1" -gt 128 ]; then echo "CRASH (signal $(($1 - 128)) $(kill -l $(($1 - 128)) 2>/dev/null))"; else echo "exit $1"; fi ;;
	esac
}

# run MODE OUTBASE: one run of the scenario (or of the reuseport trio).
run() {
	local mode=$1 base=$2 launch=() rc
	shift 2
	if [ "$mode" = mpk ]; then
		launch=("$MPKLINK_RUN" -e "$envf" --)
	fi
	if [ "$reuseport" = 1 ]; then
		local s
		for s in a b; do
			if [ "$mode" = mpk ]; then
				MPKLINK_STATS=$stats "${guard[@]}" "${launch[@]}" "$prog" serve \
					>"$tmp/$base.srv-$s.out" 2>"$tmp/$base.srv-$s.err" &
			else
				"${guard[@]}" "$prog" serve >"$tmp/$base.srv-$s.out" 2>"$tmp/$base.srv-$s.err" &
			fi
			pids+=($!)
		done
		wait_listen "$port" 2 || { echo "run.sh: the two servers do not listen on $port" >&2; }
	fi
	if [ "$mode" = mpk ]; then
		MPKLINK_STATS=$stats "${guard[@]}" "${launch[@]}" "$prog" "$@" >"$tmp/$base.out" 2>"$tmp/$base.err"
	else
		"${guard[@]}" "$prog" "$@" >"$tmp/$base.out" 2>"$tmp/$base.err"
	fi
	rc=$?
	if [ "$reuseport" = 1 ]; then
		local p src=0 left
		for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
		# A server gets 5 s to end on SIGTERM, then it counts as hung.
		for _ in $(seq 50); do
			left=0
			for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
			[ "$left" = 0 ] && break
			sleep 0.1
		done
		for p in "${pids[@]}"; do
			if kill -0 "$p" 2>/dev/null; then
				kill -KILL "$p" 2>/dev/null
				src=137
			fi
			wait "$p" 2>/dev/null || { [ "$src" = 0 ] && src=$?; }
		done
		pids=()
		[ "$src" = 0 ] || echo "a server ended badly: $(describe "$src")" >>"$tmp/$base.out"
	fi
	return $rc
}

args=("$@")
[ "$reuseport" = 1 ] && args=(client "$@")
run tcp tcp "${args[@]}"
tcp_rc=$?
run mpk mpk "${args[@]}"
mpk_rc=$?

show() {
	local f
	for f in "$tmp"/*.err "$tmp"/*.srv-*.out; do
		[ -s "$f" ] || continue
		if grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' "$f"; then
			echo "--- $(basename "$f") (the sanitizer's report)"
			grep -m1 -A 30 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' "$f"
		else
			echo "--- $(basename "$f") (last 30 lines)"
			tail -n 30 "$f"
		fi
	done
	echo "--- stats"
	cat "$stats" 2>/dev/null
}

# The machine cannot run this scenario: skipped (exit 77), never passed.
if [ "$tcp_rc" = 77 ]; then
	echo "conformance $name: SKIPPED: $(grep -m1 '^SKIP' "$tmp/tcp.out")"
	exit 77
fi
# The reference run must itself be clean: otherwise the scenario is wrong.
if [ "$tcp_rc" != 0 ] || [ "$(tail -n 1 "$tmp/tcp.out")" != END ]; then
	echo "conformance $name: FAIL: the plain TCP reference run: $(describe "$tcp_rc")"
	cat "$tmp/tcp.out"
	show
	exit 1
fi

verdict=same
reasons=()
if ! diff -u --label tcp.out --label mpk.out "$tmp/tcp.out" "$tmp/mpk.out" >"$tmp/diff"; then
	if [ "$loud" = 1 ] && { [ "$mpk_rc" = 0 ] || [ "$mpk_rc" = $((128 + 13)) ]; } &&
		grep -q 'link broken:' "$tmp/mpk.err" &&
		grep '^+[^+]' "$tmp/diff" | head -n 1 | grep -q 'ECONNRESET'; then
		echo "conformance $name: breaks loudly, as it must: $(grep -m1 'link broken:' "$tmp/mpk.err")"
		cat "$tmp/diff"
		cat "$tmp/mpk.out"
		exit 0
	else
		verdict=DIFFERS
		reasons+=("output differs")
	fi
fi
if [ "$mpk_rc" != 0 ]; then
	d=$(describe "$mpk_rc")
	case "$d" in HANG*) verdict=HANG ;; CRASH*) verdict=CRASH ;; *) [ "$verdict" = same ] && verdict=DIFFERS ;; esac
	reasons+=("under mpklink: $d")
fi
[ "$(tail -n 1 "$tmp/mpk.out")" = END ] || reasons+=("under mpklink: no END line")
[ "$(wc -l <"$tmp/tcp.out")" -ge 2 ] || reasons+=("the scenario printed nothing but END")
links=$(stat_field "$stats" links)
fallbacks=$(stat_field "$stats" fallbacks)
# A run that did not exit wrote no stats: its links say nothing.
[ "$mpk_rc" = 0 ] || { expect=any; maxfb=any; }
[ "$expect" = any ] && maxfb=any
if [ "$maxfb" != any ] && [ "$fallbacks" -gt "$maxfb" ]; then
	reasons+=("fallbacks=$fallbacks > $maxfb: a connection that should have linked stayed TCP")
fi
case "$expect" in
any) ;;
0) [ "$links" = 0 ] || reasons+=("links=$links, but this scenario must stay TCP") ;;
*) [ "$links" -ge "$expect" ] || reasons+=("links=$links < $expect: the scenario did not run over links") ;;
esac
if [ "$expect" != any ] && [ "$madeover" -gt 0 ]; then
	over=$(stat_field "$stats" made_over)
	[ "$over" -ge "$madeover" ] ||
		reasons+=("made_over=$over < $madeover: no connection ran on link memory made over")
fi
if [ ${#reasons[@]} -eq 0 ]; then
	echo "conformance $name: same ($(wc -l <"$tmp/tcp.out") lines, links=$links fallbacks=$fallbacks)"
	# What the shim and the launcher said, less their usual notes.
	said=$(grep -v 'MPK guard off\|no MPKLINK_IDENTITY' "$tmp/mpk.err" | head -n 10)
	[ -n "$said" ] && printf '%s\n%s\n' "--- mpk.err (the outputs match; the shim said:)" "$said"
	exit 0
fi
[ "$verdict" = same ] && verdict=FAIL
echo "conformance $name: $verdict: $(IFS=';'; echo "${reasons[*]}") (links=$links fallbacks=$fallbacks)"
cat "$tmp/diff"
show
exit 1
