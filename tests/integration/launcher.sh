#!/bin/bash
# SPDX-License-Identifier: MIT
# mpklink-run's own contract: the program's exit status, 128+N when it is
# killed by signal N, SIGINT/SIGTERM/SIGHUP forwarded, 126/127 for a
# program that cannot run, --help, and --check's verdicts.
. "$(dirname "$0")/lib.sh"

mkdir -m 700 "$tmp/run"
env=$(envfile app "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=127.0.0.1:4000" "GREETING=hello")
R=("$MPKLINK_RUN" -e "$env" --)

"${R[@]}" sh -c 'exit 7'
[ $? -eq 7 ] || fail "exit status not passed through"
"${R[@]}" sh -c 'kill -KILL $$'
[ $? -eq 137 ] || fail "killed by SIGKILL: expected 137"
out=$("${R[@]}" sh -c 'echo "$GREETING"')
[ "$out" = hello ] || fail "a non-MPKLINK key of the env file did not reach the program"
out=$(GREETING=world "${R[@]}" sh -c 'echo "$GREETING"')
[ "$out" = world ] || fail "the environment must win over the env file"
"${R[@]}" "$tmp/no-such-program" 2>"$tmp/nf.log"
[ $? -eq 127 ] || fail "missing program: expected 127"
grep -q "cannot run" "$tmp/nf.log" || fail "missing program: no message"
touch "$tmp/noexec"
"${R[@]}" "$tmp/noexec" 2>/dev/null
[ $? -eq 126 ] || fail "non-executable program: expected 126"

for sig in TERM INT HUP; do
	# The program records the signal and exits 100 + its number. A
	# background job starts with SIGINT ignored; give it back its default.
	env --default-signal=INT "${R[@]}" bash -c "trap 'exit \$((100 + \$(kill -l $sig)))' $sig; echo ready; while :; do sleep 0.05; done" \
		>"$tmp/sig.log" 2>&1 &
	l=$!
	for _ in $(seq 100); do grep -q ready "$tmp/sig.log" && break; sleep 0.05; done
	kill -"$sig" "$l"
	wait "$l"
	rc=$?
	want=$((100 + $(kill -l "$sig")))
	[ "$rc" -eq "$want" ] || fail "SIG$sig to the launcher: status $rc, expected $want (forwarded, handled)"
done

"$MPKLINK_RUN" --help | grep -q "MPKLINK_ENDPOINTS" || fail "--help does not document the keys"
"$MPKLINK_RUN" --check -e "$env" >"$tmp/check.log" || fail "--check refused a usable configuration"
grep -q "endpoints:  loopback:4000" "$tmp/check.log" || fail "--check: endpoints not reported"
grep -q "guard:" "$tmp/check.log" || fail "--check: guard not reported"
grep -q "Go binaries" "$tmp/check.log" || fail "--check: LD_PRELOAD's limits not reported"
if ! grep -qw pku /proc/cpuinfo; then
	MPKLINK_GUARD=mpk "$MPKLINK_RUN" --check -e "$env" >"$tmp/check2.log"
	[ $? -ne 0 ] || fail "--check: MPKLINK_GUARD=mpk without PKU must be unusable"
	MPKLINK_GUARD=mpk "$MPKLINK_RUN" -e "$env" -- true 2>"$tmp/mpk.log"
	[ $? -eq 2 ] || fail "MPKLINK_GUARD=mpk without PKU must refuse to start"
fi
# A statically linked program bypasses LD_PRELOAD: --check says so.
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
	"$MPKLINK_RUN" --check -e "$env" /bin/busybox >"$tmp/check3.log"
	[ $? -ne 0 ] || fail "--check on a static binary must say it cannot work"
	grep -q "statically linked" "$tmp/check3.log" || fail "--check: static binary not named"
fi
echo "PASS: exit statuses, signal forwarding, env precedence, --help and --check"
