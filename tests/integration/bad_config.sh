#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad env files and insecure run directories: a clear error naming the
# problem, exit 2, and the program never started.
. "$(dirname "$0")/lib.sh"

started=$tmp/started
prog=(sh -c "touch $started")

# expect_refused NAME PATTERN mpklink-run-args...
expect_refused() {
	local name=$1 pat=$2
	shift 2
	rm -f "$started"
	"$MPKLINK_RUN" "$@" -- "${prog[@]}" >"$tmp/$name.log" 2>&1
	local rc=$?
	[ "$rc" -eq 2 ] || fail "$name: exit status $rc, expected 2"
	[ ! -e "$started" ] || fail "$name: the program was started"
	grep -Eq "$pat" "$tmp/$name.log" || fail "$name: message does not match /$pat/: $(cat "$tmp/$name.log")"
}

mkdir -m 700 "$tmp/run"
ok=$(envfile ok "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=127.0.0.1:4000")
"$MPKLINK_RUN" -e "$ok" -- "${prog[@]}" || fail "a good env file was refused"
[ -e "$started" ] || fail "a good env file did not start the program"

f=$(envfile noeq "MPKLINK_RUNDIR=$tmp/run" "# fine" "" "JUSTAWORD")
expect_refused no-equals "noeq.env:4: expected KEY=VALUE" -e "$f"
f=$(envfile badname "1ABC=x")
expect_refused bad-name "badname.env:1: expected KEY=VALUE" -e "$f"
f=$(envfile unknown "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPIONTS=127.0.0.1:1")
expect_refused unknown-key "unknown.env:2: unknown key MPKLINK_ENDPIONTS" -e "$f"
f=$(envfile nonloop "MPKLINK_ENDPOINTS=10.0.0.1:80")
expect_refused non-loopback "nonloop.env:1: MPKLINK_ENDPOINTS: not a loopback" -e "$f"
f=$(envfile badport "MPKLINK_ENDPOINTS=127.0.0.1:70000")
expect_refused bad-port "badport.env:1: MPKLINK_ENDPOINTS" -e "$f"
f=$(envfile ring "MPKLINK_RING_BYTES=1000")
expect_refused ring "ring.env:1: MPKLINK_RING_BYTES: must be a power of two" -e "$f"
f=$(envfile guard "MPKLINK_GUARD=maybe")
expect_refused guard "guard.env:1: MPKLINK_GUARD: must be auto, mpk or off" -e "$f"
f=$(envfile spin "MPKLINK_SPIN_US=5ms")
expect_refused spin "spin.env:1: MPKLINK_SPIN_US: must be a number of microseconds" -e "$f"
f=$(envfile spinmax "MPKLINK_SPIN_MAX_US=2000000")
expect_refused spin-max "spinmax.env:1: MPKLINK_SPIN_MAX_US: must be a number of microseconds" -e "$f"
f=$(envfile fallback "MPKLINK_FALLBACK=udp")
expect_refused fallback "fallback.env:1: MPKLINK_FALLBACK" -e "$f"
expect_refused missing-file "nosuch.env: No such file" -e "$tmp/nosuch.env"
MPKLINK_LOG=loud expect_refused env-value "MPKLINK_LOG=loud: must be"

mkdir -m 755 "$tmp/open"
f=$(envfile open "MPKLINK_RUNDIR=$tmp/open" "MPKLINK_ENDPOINTS=127.0.0.1:4000")
expect_refused open-rundir "accessible to group or others" -e "$f"
ln -s "$tmp/run" "$tmp/link"
f=$(envfile link "MPKLINK_RUNDIR=$tmp/link")
expect_refused symlink-rundir "symbolic link" -e "$f"
touch "$tmp/file"
f=$(envfile file "MPKLINK_RUNDIR=$tmp/file")
expect_refused file-rundir "not a directory" -e "$f"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	mkdir -m 700 "$tmp/theirs"
	chown nobody "$tmp/theirs"
	f=$(envfile theirs "MPKLINK_RUNDIR=$tmp/theirs")
	expect_refused foreign-rundir "owned by another user" -e "$f"
fi
echo "PASS: every bad env file and insecure run directory refused with exit 2, nothing started"
