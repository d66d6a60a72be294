#!/bin/bash
# SPDX-License-Identifier: MIT
# usage.sh SERVER CLIENT
#
# --help answers; a usage error exits 2 naming the bad input; a failure to
# run (a busy port, no server, a missing file) exits 1 saying what failed.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

# expect STATUS PATTERN CMD...: CMD exits STATUS with PATTERN in its stderr
# (or stdout, for --help).
expect() {
	local want=$1 pattern=$2 st=0
	shift 2
	timeout -k 5 60 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
	[ "$st" -eq "$want" ] || fail "'${*##*/}' exited $st, expected $want; stderr: $(cat "$tmp/err")"
	grep -q -- "$pattern" "$tmp/out" "$tmp/err" || fail "'${*##*/}': no '$pattern' in: $(cat "$tmp/out" "$tmp/err")"
	echo "ok: exit $st: ${*##*/}: $(head -n 1 "$tmp/err")"
}

expect 0 "count --words N" "$CLIENT" --help
expect 0 "Exit status" "$CLIENT" --help
expect 0 "count --file PATH" "$CLIENT" count --help
expect 0 "--listen ADDR" "$SERVER" --help
expect 0 "SIGTERM" "$SERVER" --help

expect 2 "--words: 'abc' is not a non-negative integer" "$CLIENT" count --words abc
expect 2 "'-5' is not a non-negative integer" "$CLIENT" count --words -5
expect 2 "'12x' is not" "$CLIENT" echo --bytes 12x
expect 2 "over the maximum" "$CLIENT" count --words 10 --repeat 99999999999
expect 2 "exactly one of --words N and --file PATH" "$CLIENT" count
expect 2 "exactly one of" "$CLIENT" count --words 3 --file /dev/null
expect 2 "option '--frobnicate' is unknown" "$CLIENT" count --words 10 --frobnicate
expect 2 "option '--words' is unknown or lacks its value" "$CLIENT" count --words
expect 2 "unknown command 'bogus'" "$CLIENT" bogus
expect 2 "no command" "$CLIENT"
expect 2 "--bytes N is required" "$CLIENT" echo
expect 2 "--timeout: '0' is not a number of seconds" "$CLIENT" --timeout 0 health
expect 2 "unexpected argument 'extra'" "$CLIENT" health extra
expect 2 "--gen-text: 'many' is not" "$CLIENT" --gen-text many

expect 2 "--listen 'nonsense': expected HOST:PORT" "$SERVER" --listen nonsense
expect 2 "--listen '127.0.0.1:99999'" "$SERVER" --listen 127.0.0.1:99999
expect 2 "option '--bogus' is unknown" "$SERVER" --bogus
expect 2 "unexpected argument 'x'" "$SERVER" x

# Failures to run: status 1, saying what failed.
start_server
expect 1 "cannot listen on '$addr'" "$SERVER" --listen "$addr"
expect 1 "count --file '$tmp/missing': No such file" "$CLIENT" --target "$addr" count --file "$tmp/missing"
stop_server
expect 1 "UNAVAILABLE" "$CLIENT" --target "$addr" --timeout 10 health
expect 1 "UNAVAILABLE" "$CLIENT" --target "unix:$tmp/nobody.sock" --timeout 10 count --words 5
echo "PASS: usage"
