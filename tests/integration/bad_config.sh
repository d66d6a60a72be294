#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad env files, bad environments and insecure run directories: a clear
# error naming the problem (file, line and value, or the variable), exit 2,
# and the program never started. One parser holds files and the
# environment to the same rules (mpklink/config.h); a name that looks like
# a setting but is none is a warning, and the program still runs.
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
expect_refused unknown-key "unknown.env:2: MPKLINK_ENDPIONTS=127.0.0.1:1: unknown key MPKLINK_ENDPIONTS; did you mean MPKLINK_ENDPOINTS" -e "$f"
# Any unicast address is a host (a server in another network namespace);
# a name is not resolved, and no TCP server is reached at a multicast or
# broadcast address.
f=$(envfile remote "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=192.0.2.1:80,[2001:db8::1]:81")
rm -f "$started"
"$MPKLINK_RUN" -e "$f" -- "${prog[@]}" || fail "remote endpoints were refused"
[ -e "$started" ] || fail "remote endpoints did not start the program"
f=$(envfile hostname "MPKLINK_ENDPOINTS=db.example:80")
expect_refused host-name "hostname.env:1: MPKLINK_ENDPOINTS=db.example:80: entry \"db.example:80\": not an address .*host names are not resolved" -e "$f"
f=$(envfile mcast "MPKLINK_ENDPOINTS=224.0.0.1:80")
expect_refused multicast "mcast.env:1: MPKLINK_ENDPOINTS=224.0.0.1:80: entry \"224.0.0.1:80\": a multicast or broadcast address" -e "$f"
f=$(envfile bcast "MPKLINK_ENDPOINTS=[ff02::1]:80")
expect_refused multicast6 "bcast.env:1: MPKLINK_ENDPOINTS=\[ff02::1\]:80: entry .*: a multicast address" -e "$f"
f=$(envfile badport "MPKLINK_ENDPOINTS=127.0.0.1:70000")
expect_refused bad-port "badport.env:1: MPKLINK_ENDPOINTS=127.0.0.1:70000: entry .*: the port is not a number from 1 to 65535" -e "$f"
# Ports are digits only; no empty entries; one entry per port, whatever
# the hosts, and never two expected server names for one port.
f=$(envfile plusport "MPKLINK_ENDPOINTS=127.0.0.1:+24031")
expect_refused plus-port "plusport.env:1: MPKLINK_ENDPOINTS=127.0.0.1:\\+24031: entry .*digits only" -e "$f"
f=$(envfile spaceport "MPKLINK_ENDPOINTS=127.0.0.1: 24031")
expect_refused space-port "spaceport.env:1: MPKLINK_ENDPOINTS=127.0.0.1: 24031: entry .*digits only" -e "$f"
f=$(envfile comma "MPKLINK_ENDPOINTS=127.0.0.1:24031,")
expect_refused trailing-comma "comma.env:1: MPKLINK_ENDPOINTS=127.0.0.1:24031,: a trailing comma" -e "$f"
f=$(envfile dup "MPKLINK_ENDPOINTS=127.0.0.1:24031,localhost:24031")
expect_refused dup-endpoint "dup.env:1: MPKLINK_ENDPOINTS=.*: entry \"localhost:24031\": a second entry for this port" -e "$f"
f=$(envfile twonames "# server names" "MPKLINK_ENDPOINTS=127.0.0.1:24031=srv,127.0.0.1:24031=other")
expect_refused two-names "twonames.env:2: MPKLINK_ENDPOINTS=127.0.0.1:24031=srv,127.0.0.1:24031=other: entry \"127.0.0.1:24031=other\": a second entry for this port" -e "$f"
MPKLINK_ENDPOINTS=127.0.0.1:1,127.0.0.1:1 expect_refused dup-endpoint-env "environment: MPKLINK_ENDPOINTS=127.0.0.1:1,127.0.0.1:1: entry .*a second entry"
f=$(envfile ring "MPKLINK_RING_BYTES=1000")
expect_refused ring "ring.env:1: MPKLINK_RING_BYTES=1000: must be a power of two from 4096 \\(4K\\) to 1073741824 \\(1G\\)" -e "$f"
# Values past 2^64 once wrapped around into a valid size.
f=$(envfile ringbig "MPKLINK_RING_BYTES=17179869185G")
expect_refused ring-overflow "ringbig.env:1: MPKLINK_RING_BYTES=17179869185G: must be a power of two from 4096" -e "$f"
f=$(envfile ringneg "MPKLINK_RING_BYTES=-18446744073709547520")
expect_refused ring-negative "ringneg.env:1: MPKLINK_RING_BYTES=-18446744073709547520: must be" -e "$f"
f=$(envfile ringdigits "MPKLINK_RING_BYTES=1180591620717411303424")
expect_refused ring-digits "ringdigits.env:1: MPKLINK_RING_BYTES=1180591620717411303424: must be" -e "$f"
MPKLINK_RING_BYTES=4194304G expect_refused ring-env "environment: MPKLINK_RING_BYTES=4194304G: must be a power of two from 4096"
f=$(envfile guard "MPKLINK_GUARD=maybe")
expect_refused guard "guard.env:1: MPKLINK_GUARD=maybe: must be auto, mpk or off" -e "$f"
f=$(envfile spin "MPKLINK_SPIN_US=5ms")
expect_refused spin "spin.env:1: MPKLINK_SPIN_US=5ms: must be a number of microseconds" -e "$f"
f=$(envfile spinmax "MPKLINK_SPIN_MAX_US=2000000")
expect_refused spin-max "spinmax.env:1: MPKLINK_SPIN_MAX_US=2000000: must be a number of microseconds" -e "$f"
f=$(envfile fallback "MPKLINK_FALLBACK=udp")
expect_refused fallback "fallback.env:1: MPKLINK_FALLBACK=udp: must be tcp or deny" -e "$f"
expect_refused missing-file "nosuch.env: No such file" -e "$tmp/nosuch.env"
MPKLINK_LOG=loud expect_refused env-value "environment: MPKLINK_LOG=loud: must be"
# A NUL byte inside a line once cut the value short, silently.
printf 'MPKLINK_LOG=warn\0debug\n' >"$tmp/nul.env"
expect_refused nul "nul.env:1: a NUL byte in the line" -e "$tmp/nul.env"
# An unknown MPKLINK_ variable in the environment is what it is in a file.
MPKLINK_ENDPIONTS=127.0.0.1:1 expect_refused unknown-env "environment: MPKLINK_ENDPIONTS=127.0.0.1:1: unknown key MPKLINK_ENDPIONTS; did you mean MPKLINK_ENDPOINTS"
# A directory is no env file (it used to read as an empty one); --check
# says so too.
mkdir "$tmp/envdir"
expect_refused dir-envfile "$tmp/envdir: is a directory" -e "$tmp/envdir"
"$MPKLINK_RUN" --check -e "$tmp/envdir" >"$tmp/checkdir.log" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "--check -e DIRECTORY: exit 0"
grep -q "$tmp/envdir: is a directory" "$tmp/checkdir.log" || fail "--check -e DIRECTORY: $(cat "$tmp/checkdir.log")"
grep -q "configuration: ok" "$tmp/checkdir.log" && fail "--check -e DIRECTORY said ok"
# Settings that need an identity are refused without one, naming where
# they came from, as MPKLINK_INTEGRITY=mac already was.
f=$(envfile allow "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=127.0.0.1:4000" "MPKLINK_ALLOW=4000:cli")
expect_refused allow-no-id "allow.env:3: MPKLINK_ALLOW=4000:cli: needs MPKLINK_IDENTITY" -e "$f"
MPKLINK_ALLOW=4000:cli expect_refused allow-no-id-env "environment: MPKLINK_ALLOW=4000:cli: needs MPKLINK_IDENTITY" -e "$ok"
"$MPKLINK_RUN" --check -e "$f" >"$tmp/checkallow.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "MPKLINK_ALLOW=4000:cli: needs MPKLINK_IDENTITY" "$tmp/checkallow.log" ||
	fail "--check with MPKLINK_ALLOW and no identity: exit $rc: $(cat "$tmp/checkallow.log")"
f=$(envfile named "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=127.0.0.1:4000=srv")
expect_refused name-no-id "named.env:2: MPKLINK_ENDPOINTS=127.0.0.1:4000=srv: names a server identity" -e "$f"
f=$(envfile mac "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_INTEGRITY=mac")
expect_refused mac-no-id "mac.env:2: MPKLINK_INTEGRITY=mac: mac needs MPKLINK_IDENTITY" -e "$f"
f=$(envfile trust "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_TRUST=$tmp/ca.pub")
expect_refused trust-no-id "trust.env:2: MPKLINK_TRUST=.*: needs MPKLINK_IDENTITY" -e "$f"

# Near misses: a warning naming the setting it resembles; the program runs,
# and gets the variable as it is.
f=$(envfile near "MPKLINK_RUNDIR=$tmp/run" "MPKLNK_ENDPOINTS=127.0.0.1:4000" "mpklink_fallback=deny")
out=$(MPKLINK_LGO=debug "$MPKLINK_RUN" -e "$f" -- sh -c 'echo "got=$MPKLNK_ENDPOINTS/$mpklink_fallback/$MPKLINK_LGO"' 2>"$tmp/near.log")
rc=$?
[ $rc -eq 2 ] && grep -q "environment: MPKLINK_LGO=debug: unknown key MPKLINK_LGO; did you mean MPKLINK_LOG" "$tmp/near.log" ||
	fail "an unknown MPKLINK_ name in the environment: exit $rc: $(cat "$tmp/near.log")"
out=$(MPKLNK_LOG=debug "$MPKLINK_RUN" -e "$f" -- sh -c 'echo "got=$MPKLNK_ENDPOINTS/$mpklink_fallback/$MPKLNK_LOG"' 2>"$tmp/near.log")
rc=$?
[ $rc -eq 0 ] || fail "near misses: exit $rc: $(cat "$tmp/near.log")"
[ "$out" = "got=127.0.0.1:4000/deny/debug" ] || fail "near misses: the program got \"$out\""
for w in "near.env:2: MPKLNK_ENDPOINTS is not an mpklink setting, but looks like MPKLINK_ENDPOINTS" \
	"near.env:3: mpklink_fallback is not an mpklink setting, but looks like MPKLINK_FALLBACK" \
	"environment: MPKLNK_LOG is not an mpklink setting, but looks like MPKLINK_LOG"; do
	grep -qE "warning: (.*/)?$w" "$tmp/near.log" || fail "no warning \"$w\": $(cat "$tmp/near.log")"
done

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
echo "PASS: every bad env file, environment and insecure run directory refused with exit 2," \
	"nothing started; near misses warned about"
