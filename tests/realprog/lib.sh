# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Helpers for the real-program drop-in tests (tests/realprog): each test runs
# the same real programs twice, over plain TCP ("tcp") and with every program
# under its own mpklink-run ("mpk"), normalizes what they printed, and
# compares. See README.md beside this file.
#
# A test script:
#   . "$(dirname "$0")/lib.sh"
#   need nginx nginx-light ...        # a missing tool FAILs naming its package
#   scenario() { ... }                # one run in $mode (tcp|mpk), files in $dir
#   run_both                          # scenario in both modes
#   verdict "server client"           # compare $tmp/{tcp,mpk}/result, links
#
# Inside scenario: $mode, $dir (this run's folder), $port (a free port),
# start_bg / stop_bg / run_fg for programs (each under timeout, each under its
# own mpklink-run in mpk mode, its stats in $dir/NAME.stats), problem "...",
# and it writes the normalized output to $dir/result.
#
# Expects: MPKLINK_RUN (the launcher), set by ctest.

. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

RP_NAME=$(basename "$0" .sh)
# On exit: each background program's whole process group (timeout leads
# one: nginx's workers go with their master), then the folder, unless
# RP_KEEP=1 (it keeps both runs' outputs, logs and stats, and says where).
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "${RP_KEEP:-}" ]; then
		echo "RP_KEEP: the runs' files are in $tmp"
	else
		rm -rf "$tmp"
	fi
}

# fail MESSAGE: the test fails now, with the logs of both runs.
fail() {
	echo "FAIL: $RP_NAME: $*"
	show_errs
	exit 1
}

# show_errs [tcp|mpk]: what the programs said on stderr, less the launcher's usual two
# lines (no MPK on this CPU, no identity), the last lines of each.
show_errs() {
	local f shown=0
	# shellcheck disable=SC2231 # the glob is meant
	for f in "$tmp"/${1:-*}/*.err; do
		[ -s "$f" ] || continue
		grep -v -e '^mpklink: MPK guard off' -e '^mpklink-run: no MPKLINK_IDENTITY' "$f" \
			>"$f.rest" || continue
		[ $shown -lt 12 ] || { echo "--- (more in other *.err files)"; break; }
		shown=$((shown + 1))
		echo "--- ${f#"$tmp"/} (stderr, last 8 lines)"
		tail -n 8 "$f.rest"
	done
}

# problem MESSAGE: something went wrong in this run (a hang, a crash, a bad
# exit); the run goes on, the verdict fails.
problem() {
	problems+=("$mode: $*")
	echo "  problem: $mode: $*"
}

# need COMMAND PACKAGE: fails (never skips) naming the Debian package.
need() {
	command -v "$1" >/dev/null 2>&1 ||
		fail "'$1' not found: install the Debian package $2 (scripts/deps.sh test)"
}

# wrap NAME: sets the array W to the command prefix that runs a program under
# its own mpklink-run in mpk mode (stats to $dir/NAME.stats), empty in tcp.
wrap() {
	W=()
	[ "$mode" = mpk ] && W=(env "MPKLINK_STATS=$dir/$1.stats" "$MPKLINK_RUN" -e "$envf" --)
	return 0
}

# start_bg NAME SECONDS CMD...: a server in the background, bounded by
# timeout; stdout to $dir/NAME.out, stderr to $dir/NAME.err. Sets $bg_pid and
# remembers it under NAME for stop_bg.
declare -A bg_pids
start_bg() {
	local name=$1 secs=$2
	shift 2
	wrap "$name"
	timeout -k 5 "$secs" "${W[@]}" "$@" >"$dir/$name.out" 2>"$dir/$name.err" </dev/null &
	bg_pid=$!
	bg_pids[$name]=$bg_pid
	pids+=("$bg_pid")
}

# stop_bg NAME [SIGNAL]: stops a server (SIGTERM by default; mpklink-run
# passes it on), waits up to 10 s, then kills it and records a hang. Sets
# $bg_status. A server that had died before is a problem too.
stop_bg() {
	local name=$1 sig=${2:-TERM} pid=${bg_pids[$1]}
	bg_status=0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || bg_status=$?
		problem "$name had exited (status $bg_status) before we stopped it"
		return
	fi
	# To timeout's child alone (the program, or its mpklink-run, which
	# passes it on): timeout itself would also signal its whole process
	# group, and the program would get it twice.
	kill -"$sig" "$(pgrep -P "$pid" | head -n 1 || echo "$pid")" 2>/dev/null ||
		kill -"$sig" "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		problem "hang: $name did not stop within 10 s of SIG$sig; killed"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || bg_status=$?
	case $bg_status in
	0 | 143) ;; # exit 0, or SIGTERM passed through
	124 | 137) problem "hang: $name ran into its timeout (status $bg_status)" ;;
	*) problem "$name ended with status $bg_status" ;;
	esac
}

# wait_bg NAME SECONDS: waits for a background program to end by itself; one
# still running after SECONDS is a hang (killed). Sets $bg_status.
wait_bg() {
	local name=$1 pid=${bg_pids[$1]}
	bg_status=0
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		problem "hang: $name did not end within $2 s; killed"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || bg_status=$?
}

# run_fg NAME SECONDS CMD...: a client, bounded by timeout; stdout to
# $dir/NAME.out (a hang adds a line saying so), stderr to $dir/NAME.err,
# within the run's budget (run_both),
# stdin from $RP_IN (a file; default /dev/null).
# Sets $fg_status; a hang is a problem, other exit codes are the caller's.
declare -A fg_st
run_fg() {
	local name=$1 secs=$2 left=$((run_deadline - SECONDS))
	shift 2
	# Within the run's budget: after a hang, the rest get 5 s each.
	[ $left -ge 5 ] || left=5
	[ "$secs" -le $left ] || secs=$left
	wrap "$name"
	fg_status=0
	timeout -k 5 "$secs" "${W[@]}" "$@" >"$dir/$name.out" 2>"$dir/$name.err" \
		<"${RP_IN:-/dev/null}" || fg_status=$?
	fg_st[$name]=$fg_status
	if [ $fg_status -eq 124 ] || [ $fg_status -eq 137 ]; then
		echo "[$name: HANG, killed after $secs s]" >>"$dir/$name.out"
		problem "hang: $name ($(basename "$1")) did not finish within $secs s; killed"
	fi
	return 0
}

# run_par NAME SECONDS CMD...: run_fg in the background, with others;
# par_wait waits for all of them and takes their statuses (a hang is a
# problem, as with run_fg).
par_names=()
par_pids=()
run_par() {
	local name=$1
	(
		run_fg "$@"
		echo "$fg_status" >"$dir/$name.rc"
	) >/dev/null &
	par_pids+=($!)
	par_names+=("$name")
}
par_wait() {
	local n rc
	wait "${par_pids[@]}"
	for n in "${par_names[@]}"; do
		rc=$(cat "$dir/$n.rc" 2>/dev/null || echo '?')
		fg_st[$n]=$rc
		case $rc in
		124 | 137) problem "hang: $n did not finish within its time; killed" ;;
		esac
	done
	par_names=()
	par_pids=()
}

# result_of NAME [FILTER...]: appends to $dir/result a header with NAME's
# exit status (from run_fg) and its stdout, through FILTER (a command) if given.
result_of() {
	local name=$1
	shift
	echo "### $name: exit ${fg_st[$name]:-?}" >>"$dir/result"
	if [ $# -gt 0 ]; then
		"$@" <"$dir/$name.out" >>"$dir/result"
	else
		cat "$dir/$name.out" >>"$dir/result"
	fi
}

# sum FILE: its sha256, or "missing".
sum() { if [ -f "$1" ]; then sha256sum <"$1" | cut -d' ' -f1; else echo missing; fi; }

# wait_out FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
wait_out() {
	for _ in $(seq $(($3 * 10))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_listeners PORT N SECONDS: until N sockets listen on PORT.
wait_listeners() {
	for _ in $(seq $(($3 * 10))); do
		[ "$(ss -Htln "sport = :$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# stats_summary: one line per stats file of this run: NAME links=.. fallbacks=..
stats_summary() {
	local f n
	for f in "$dir"/*.stats; do
		[ -f "$f" ] || continue
		n=$(basename "$f" .stats)
		echo "  $n: processes=$(grep -c '^mpklink stats:' "$f") links=$(stat_field "$f" links)" \
			"fallbacks=$(stat_field "$f" fallbacks) tx_bytes=$(stat_field "$f" tx_bytes)" \
			"rx_bytes=$(stat_field "$f" rx_bytes)"
	done
}

# run_both: scenario over plain TCP, then under mpklink. Each run has a
# budget of $run_budget seconds (default 200) for its clients (run_fg):
# beyond it, each gets 5 s, so that hangs add up to a bounded time.
run_budget=${run_budget:-200}
run_deadline=$((SECONDS + run_budget))
run_both() {
	need ss iproute2
	need timeout coreutils
	need pgrep procps
	[ -x "${MPKLINK_RUN:-/nonexistent}" ] ||
		fail "MPKLINK_RUN is not the mpklink-run launcher: '${MPKLINK_RUN:-}' (run through ctest)"
	local t0
	for mode in tcp mpk; do
		dir=$tmp/$mode
		mkdir -p "$dir"
		port=$(free_port)
		envf=$(envfile "$mode" "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
		t0=$SECONDS
		run_deadline=$((SECONDS + run_budget))
		echo "== $RP_NAME: $mode run, port $port"
		scenario
		[ -f "$dir/result" ] || fail "internal: the $mode run wrote no result"
		echo "== $mode run: $((SECONDS - t0)) s, $(wc -l <"$dir/result") result lines"
	done
	mode=
}

# verdict "NAME..." [shared]: compares the two runs' results, reports links.
# Each NAME's stats (the programs run as NAME) must show links unless the
# second argument is "shared" (the shared-port case: staying TCP is correct),
# where links are only reported. Exits 0 (PASS) or 1 (FAIL, saying why).
verdict() {
	local need_links=$1 shared=${2:-} bad=0 n l f
	echo "== links made under mpklink (from MPKLINK_STATS):"
	dir=$tmp/mpk
	stats_summary
	ls "$dir"/*.stats >/dev/null 2>&1 || echo "  (no process wrote stats: none made a link)"
	local tcp_problems=() mpk_problems=() p
	for p in "${problems[@]}"; do
		case $p in tcp:*) tcp_problems+=("$p") ;; *) mpk_problems+=("$p") ;; esac
	done
	if [ ${#tcp_problems[@]} -gt 0 ]; then
		printf '  %s\n' "${tcp_problems[@]}"
		fail "the plain-TCP baseline itself went wrong (above): the test environment, not mpklink"
	fi
	if cmp -s "$tmp/tcp/result" "$tmp/mpk/result"; then
		echo "== output: identical over TCP and under mpklink ($(wc -l <"$tmp/tcp/result") lines)"
	else
		bad=1
		diff -u --label tcp --label mpklink "$tmp/tcp/result" "$tmp/mpk/result" >"$tmp/result.diff"
		echo "== output DIFFERS between TCP (-) and mpklink (+):" \
			"$(grep -c '^-[^-]' "$tmp/result.diff") lines only over TCP," \
			"$(grep -c '^+[^+]' "$tmp/result.diff") only under mpklink (diff's first 80 lines):"
		head -n 80 "$tmp/result.diff"
	fi
	if [ ${#mpk_problems[@]} -gt 0 ]; then
		bad=1
		echo "== under mpklink:"
		printf '  %s\n' "${mpk_problems[@]}"
	fi
	for n in $need_links; do
		f=$tmp/mpk/$n.stats
		l=$(stat_field "$f" links)
		if [ "$l" -eq 0 ]; then
			if [ ! -s "$f" ] && [[ " 124 137 " == *" ${fg_st[$n]:-} "* ]]; then
				bad=1
				echo "== $n: no stats: it was killed (hang) before its exit"
			elif [ ! -s "$f" ] && [ "${fg_st[$n]:-0}" -gt 128 ] 2>/dev/null; then
				bad=1
				echo "== $n: no stats: it died (status ${fg_st[$n]}) before its exit"
			elif [ "$shared" = shared ]; then
				echo "== $n: no links (connections stayed TCP; allowed on a shared port)"
			else
				bad=1
				echo "== $n made no links under mpklink: the test would pass vacuously"
			fi
		fi
	done
	if [ $bad -ne 0 ]; then
		show_errs mpk
		echo "FAIL: $RP_NAME"
		exit 1
	fi
	echo "PASS: $RP_NAME: identical output over TCP and under mpklink"
	exit 0
}
