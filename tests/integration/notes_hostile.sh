#!/bin/bash
# SPDX-License-Identifier: MIT
# A program that lies in its notice ring is cut off; its launcher lives on
# and logs why (notes_hostile.c).
. "$(dirname "$0")/lib.sh"

mkdir -m 700 "$tmp/run"
port=$(free_port)
env=$(envfile app "MPKLINK_RUNDIR=$tmp/run" "MPKLINK_ENDPOINTS=127.0.0.1:$port")
"$MPKLINK_RUN" -e "$env" -- "$NOTES_HOSTILE" >"$tmp/out.log" 2>"$tmp/launcher.log" ||
	fail "$(cat "$tmp/out.log")"
[ "$(grep -c "notice ring holds what is no notice; cut off" "$tmp/launcher.log")" -eq 2 ] ||
	fail "the launcher did not say twice why it cut a ring off"
cat "$tmp/out.log"
