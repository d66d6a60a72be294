#!/bin/bash
# SPDX-License-Identifier: MIT
# health.sh SERVER CLIENT
#
# grpc.health.v1.Health/Check: SERVING for the server ("") and for its
# service by name; NOT_FOUND for a service it does not have (the health
# protocol's rule), which the client reports as a failure.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

start_server
client health || fail "health exited $?: $(cat "$tmp/client.err")"
grep -qx 'status=SERVING' "$tmp/client.out" || fail "health printed: $(cat "$tmp/client.out")"
client health --service mpklink.demo.WordCount || fail "health --service mpklink.demo.WordCount exited $?: $(cat "$tmp/client.err")"
grep -qx 'status=SERVING' "$tmp/client.out" || fail "health --service printed: $(cat "$tmp/client.out")"
st=0
client health --service no.such.Service || st=$?
[ "$st" -eq 1 ] || fail "health --service no.such.Service exited $st (expected 1)"
grep -q "NOT_FOUND.*no.such.Service" "$tmp/client.err" || fail "health --service no.such.Service said: $(cat "$tmp/client.err")"
echo "ok: unknown service: $(cat "$tmp/client.err")"
stop_server
echo "PASS: health"
