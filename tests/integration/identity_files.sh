#!/bin/bash
# SPDX-License-Identifier: MIT
# An identity's files must be regular files: a FIFO in place of the secret
# key, the certificate or the CA's ca.pub is refused at once, naming the
# file ("not a regular file"), by mpklink-run (exit 2, nothing started) and
# by --check (UNUSABLE), never waited on. It used to hang both forever, with
# no message: opening a FIFO for reading blocks until a writer comes.
# (timeout only bounds a hang; no test result depends on how fast it is.)
. "$(dirname "$0")/lib.sh"

keys=${MPKLINK_KEYS:?}
ca=$tmp/ca
"$keys" init --dir "$ca" >/dev/null || fail "mpklink-keys init"
"$keys" issue --dir "$ca" svc --binary /bin/true >/dev/null || fail "mpklink-keys issue"
marker=$tmp/ran

for f in svc.key svc.cert ca.pub; do
	mv "$ca/$f" "$ca/$f.real"
	mkfifo -m 600 "$ca/$f"
	env=$(envfile "fifo-$f" "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_IDENTITY=$ca/svc" \
		"MPKLINK_TRUST=$ca/ca.pub")
	timeout 30 "$MPKLINK_RUN" -e "$env" -- /bin/sh -c "touch $marker" >"$tmp/run-$f.log" 2>&1
	rc=$?
	[ $rc -ne 124 ] || fail "$f as a FIFO: mpklink-run hung"
	[ $rc -eq 2 ] || fail "$f as a FIFO: exit $rc, expected 2: $(cat "$tmp/run-$f.log")"
	[ ! -e "$marker" ] || fail "$f as a FIFO: the program was started"
	grep -q "$ca/$f: not a regular file" "$tmp/run-$f.log" ||
		fail "$f as a FIFO: no line naming it: $(cat "$tmp/run-$f.log")"
	timeout 30 "$MPKLINK_RUN" --check -e "$env" >"$tmp/check-$f.log" 2>&1
	rc=$?
	[ $rc -ne 124 ] || fail "$f as a FIFO: --check hung"
	[ $rc -ne 0 ] || fail "$f as a FIFO: --check exit 0: $(cat "$tmp/check-$f.log")"
	grep -q "UNUSABLE:.*$ca/$f: not a regular file" "$tmp/check-$f.log" ||
		fail "$f as a FIFO: --check does not name it: $(cat "$tmp/check-$f.log")"
	rm "$ca/$f"
	mv "$ca/$f.real" "$ca/$f"
done
# mpklink-keys show reads the header line of any file it is given.
mkfifo "$tmp/fifo"
timeout 30 "$keys" show "$tmp/fifo" >"$tmp/show.log" 2>&1
rc=$?
[ $rc -ne 124 ] || fail "mpklink-keys show FIFO hung"
[ $rc -ne 0 ] && grep -q "$tmp/fifo: not a regular file" "$tmp/show.log" ||
	fail "mpklink-keys show FIFO: exit $rc: $(cat "$tmp/show.log")"
# The files back in place: the identity loads (so the refusals above were
# the FIFOs', not a broken setup).
env=$(envfile good "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_IDENTITY=$ca/svc" "MPKLINK_TRUST=$ca/ca.pub")
"$MPKLINK_RUN" --check -e "$env" >"$tmp/good.log" 2>&1 || fail "the real files: $(cat "$tmp/good.log")"
echo "PASS: a FIFO as key, certificate or ca.pub refused at once by mpklink-run and --check," \
	"naming it; mpklink-keys show likewise"
