#!/bin/bash
# SPDX-License-Identifier: MIT
# A launcher killed with -9 takes its program with it (PR_SET_PDEATHSIG):
# before, the program ran on with PPID 1, its control plane gone. The
# ctl-<pid>-<pidns>.sock the dead launcher could not remove is removed by the next
# launcher that starts in the run directory (its pid gone, nothing answers
# on it, and ours); a live launcher's socket stays.
. "$(dirname "$0")/lib.sh"

mkdir -m 700 "$tmp/run"
env=$(envfile app "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_LOG=info")

# gone PID: the process has exited (a zombie counts: its parent is init,
# which may be slow to reap it, or not reap at all in a container).
gone() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
# started LAUNCHER: the pid of its program once it runs sleep, after the exec.
started() {
	local c
	for _ in $(seq 500); do
		c=$(pgrep -P "$1" -x sleep) && [ -S "$tmp/run/$(ctl_sock "$1")" ] && { echo "$c"; return; }
		sleep 0.02
	done
	fail "launcher $1 did not start its program"
}

"$MPKLINK_RUN" -e "$env" -- sleep 1000 >"$tmp/l1.log" 2>&1 &
l1=$!
pids+=($l1)
prog=$(started "$l1")
"$MPKLINK_RUN" -e "$env" -- sleep 1000 >"$tmp/l2.log" 2>&1 &
l2=$!
pids+=($l2)
prog2=$(started "$l2")
pids+=($prog $prog2)

kill -9 "$l1"
wait "$l1" 2>/dev/null
for _ in $(seq 500); do gone "$prog" && break; sleep 0.02; done
gone "$prog" || fail "the program (pid $prog) outlived its launcher killed with -9 (PPID $(awk '{print $4}' "/proc/$prog/stat"))"
gone "$prog2" && fail "the other launcher's program died too"
[ -S "$tmp/run/$(ctl_sock "$l1")" ] || fail "no stale $(ctl_sock "$l1") left to clean (the test needs one)"

# The next launcher in the directory cleans up after the dead one.
"$MPKLINK_RUN" -e "$env" -- true >"$tmp/l3.log" 2>&1 || fail "the next launcher failed: $(cat "$tmp/l3.log")"
[ ! -e "$tmp/run/$(ctl_sock "$l1")" ] || fail "the dead launcher's $(ctl_sock "$l1") is still there"
grep -q "removed .*$(ctl_sock "$l1"): its launcher (pid $l1) is gone" "$tmp/l3.log" ||
	fail "no line about the removal: $(cat "$tmp/l3.log")"
[ -S "$tmp/run/$(ctl_sock "$l2")" ] || fail "a live launcher's $(ctl_sock "$l2") was removed"
kill -TERM "$l2"
wait "$l2"
echo "PASS: a launcher killed with -9 took its program along; its socket was removed at the" \
	"next start, a live one's kept"
