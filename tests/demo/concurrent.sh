#!/bin/bash
# SPDX-License-Identifier: MIT
# concurrent.sh SERVER CLIENT
#
# Several clients at once, each with its own connection and mixed methods and
# sizes: the one-queue server must keep all their calls going, and answer
# each correctly.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

start_server
runs=(
	"count --words 100000 --seed 1 --repeat 30"
	"count --words 100000 --seed 2 --repeat 30"
	"count --words 10 --seed 3 --repeat 2000"
	"count --words 1000 --seed 4 --repeat 1000"
	"echo --bytes 65536 --seed 5 --repeat 300"
	"echo --bytes 16 --reply-bytes 262144 --repeat 100"
	"count --words 2000000 --seed 7 --repeat 3"
	"health"
)
pids=()
for i in "${!runs[@]}"; do
	read -r -a a <<<"${runs[$i]}"
	timeout -k 5 "$client_limit" "$CLIENT" --target "$addr" "${a[@]}" \
		>"$tmp/c$i.out" 2>"$tmp/c$i.err" </dev/null &
	pids+=($!)
done
bad=0
for i in "${!runs[@]}"; do
	st=0
	wait "${pids[$i]}" || st=$?
	if [ "$st" -ne 0 ]; then
		echo "client '${runs[$i]}' exited $st: $(cat "$tmp/c$i.err")" >&2
		bad=1
	else
		echo "ok: ${runs[$i]}: $(cat "$tmp/c$i.out")"
	fi
done
[ "$bad" -eq 0 ] || fail "some concurrent clients failed"
stop_server
echo "PASS: ${#runs[@]} concurrent clients"
