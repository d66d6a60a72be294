#!/bin/bash
# SPDX-License-Identifier: MIT
# wrong_answer.sh SERVER CLIENT
#
# The client must catch a server that answers wrongly: against a server
# started with the test-only --lie (counts + 1, a bit flipped in the last
# byte of echo replies) it must exit 1 naming what it expected and what it
# got, and print no result line.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

start_server --listen 127.0.0.1:0 --lie

# expect_wrong WHAT PATTERN CLIENT-ARGS...
expect_wrong() {
	local what=$1 pattern=$2 st=0
	shift 2
	client "$@" || st=$?
	[ "$st" -eq 1 ] || fail "$what: client exited $st against a lying server (expected 1); output: $(cat "$tmp/client.out")"
	grep -q -- "$pattern" "$tmp/client.err" || fail "$what: stderr lacks '$pattern': $(cat "$tmp/client.err")"
	[ ! -s "$tmp/client.out" ] || fail "$what: a result line was printed for a wrong answer: $(cat "$tmp/client.out")"
	echo "ok: $what: $(cat "$tmp/client.err")"
}

expect_wrong "count of 100 words" "expected 100 words, got 101" count --words 100
expect_wrong "count of 0 words" "expected 0 words, got 1" count --words 0
expect_wrong "echo of 64 bytes" "reply byte 63 of 64: expected 0x.. (the payload's), got 0x.." echo --bytes 64
expect_wrong "echo pattern of 4096 bytes" "reply byte 4095 of 4096: expected 0x.. (the pattern), got 0x.." \
	echo --bytes 1 --reply-bytes 4096
# --file has no expected count of its own: it reports what the server says.
printf 'a b c\n' >"$tmp/abc"
client count --file "$tmp/abc" || fail "count --file exited $?"
[ "$(field words)" = 4 ] || fail "count --file printed '$(field words)', not the lying server's 4"
stop_server
echo "PASS: wrong answers are caught"
