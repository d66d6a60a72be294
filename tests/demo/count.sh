#!/bin/bash
# SPDX-License-Identifier: MIT
# count.sh SERVER CLIENT tcp|unix
#
# The server's word count against `LC_ALL=C wc -w` on the same bytes: the
# client's generated texts of 0, 1, 100, 10^4 and 10^6 words, and hand-made
# files of whitespace only and of every kind of whitespace, over loopback TCP
# or a unix socket. Then the client's own check (count --words) on the same
# sizes, which is what the benchmark relies on.
SERVER=$1 CLIENT=$2 mode=$3
. "$(dirname "$0")/lib.sh"

case $mode in
tcp) start_server --listen 127.0.0.1:0 ;;
unix) start_server --listen "unix:$tmp/demo.sock"
	[ "$addr" = "unix:$tmp/demo.sock" ] || fail "server says it listens on '$addr', not unix:$tmp/demo.sock" ;;
*) echo "usage: count.sh SERVER CLIENT tcp|unix" >&2; exit 2 ;;
esac
echo "server listening on $addr"

# check_file FILE WHAT: the server's count of FILE must be wc's.
check_file() {
	local f=$1 what=$2 want got
	want=$(wc_words "$f")
	client count --file "$f" || fail "$what: count --file exited $?: $(cat "$tmp/client.err")"
	got=$(field words)
	[ "$got" = "$want" ] || fail "$what: server counted '$got' words, wc -w counts $want"
	[ "$(field bytes)" = "$(stat -c %s "$f")" ] || fail "$what: client sent $(field bytes) bytes of a $(stat -c %s "$f")-byte file"
	echo "ok: $what: $got words ($(stat -c %s "$f") bytes), as wc -w"
}

for n in 0 1 100 10000 1000000; do
	seed=$((n + 7))
	f=$tmp/text.$n
	timeout 120 "$CLIENT" --gen-text "$n" --seed "$seed" >"$f" || fail "--gen-text $n failed"
	# The generator must make what it claims, by wc's reckoning too.
	[ "$(wc_words "$f")" = "$n" ] || fail "--gen-text $n --seed $seed: wc -w counts $(wc_words "$f") words"
	check_file "$f" "generated text of $n words"
	client count --words "$n" --seed "$seed" --repeat 3 ||
		fail "count --words $n exited $?: $(cat "$tmp/client.err")"
	[ "$(field words)" = "$n" ] && [ "$(field calls)" = 3 ] || fail "count --words $n printed: $(cat "$tmp/client.out")"
	echo "ok: count --words $n --repeat 3: $(cat "$tmp/client.out")"
done

# Same seed, same text; another seed, another text.
cmp -s <("$CLIENT" --gen-text 1000 --seed 5) <("$CLIENT" --gen-text 1000 --seed 5) ||
	fail "--gen-text 1000 --seed 5 differs between two runs"
! cmp -s <("$CLIENT" --gen-text 1000 --seed 5) <("$CLIENT" --gen-text 1000 --seed 6) ||
	fail "--gen-text 1000: seeds 5 and 6 give the same text"

printf '' >"$tmp/empty"
check_file "$tmp/empty" "empty file"
printf ' \t\n\v\f\r  \r\n\t\t\f\v ' >"$tmp/blank"
check_file "$tmp/blank" "whitespace only"
printf 'one\ttwo\rthree\ffour\vfive\nsix seven\r\n\teight\f\f\vnine\r' >"$tmp/mixed"
check_file "$tmp/mixed" "words between tabs, CRs, form feeds, vertical tabs"
printf '\r\n  lead\f\ttrail  \t\r\n' >"$tmp/edges"
check_file "$tmp/edges" "whitespace before the first word and after the last"
printf 'no-newline-at-end' >"$tmp/one"
check_file "$tmp/one" "one word, no newline"
printf 'x%.0s ' $(seq 5000) | tr -d '\n' >"$tmp/short"
check_file "$tmp/short" "5000 one-byte words"

stop_server
echo "PASS: count over $mode"
