#!/bin/bash
# SPDX-License-Identifier: MIT
# echo.sh SERVER CLIENT
#
# Echo of 0, 64, 65536 and 1 MiB bytes, each checked byte for byte by the
# client, and replies of a size other than the request's (the pattern).
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

start_server
for n in 0 64 65536 1048576; do
	client echo --bytes "$n" --seed "$n" --repeat 3 || fail "echo --bytes $n exited $?: $(cat "$tmp/client.err")"
	[ "$(field bytes)" = "$n" ] && [ "$(field calls)" = 3 ] || fail "echo --bytes $n printed: $(cat "$tmp/client.out")"
	echo "ok: $(cat "$tmp/client.out")"
done
for pair in "0 1048576" "1048576 1" "64 65536" "65536 64"; do
	set -- $pair
	client echo --bytes "$1" --reply-bytes "$2" ||
		fail "echo --bytes $1 --reply-bytes $2 exited $?: $(cat "$tmp/client.err")"
	[ "$(field reply_bytes)" = "$2" ] || fail "echo --bytes $1 --reply-bytes $2 printed: $(cat "$tmp/client.out")"
	echo "ok: $(cat "$tmp/client.out")"
done
stop_server
echo "PASS: echo"
