#!/bin/bash
# SPDX-License-Identifier: MIT
# big.sh SERVER CLIENT [WORDS]
#
# One Count call of 10^7 words (about 85 MB): above gRPC's default 4 MiB
# message limit, so it passes only if both sides raised it. One call, on a
# fresh server and client, so its time (printed) is the cold one: the first
# touch of every page of every buffer included.
SERVER=$1 CLIENT=$2 words=${3:-10000000}
. "$(dirname "$0")/lib.sh"

start_server
client count --words "$words" --seed 42 || fail "count --words $words exited $?: $(cat "$tmp/client.err")"
[ "$(field words)" = "$words" ] || fail "count --words $words printed: $(cat "$tmp/client.out")"
echo "one call of $words words, $(field bytes) bytes: $(field min_s) s (encode, call, decode)"
stop_server
echo "PASS: $words words in one call"
