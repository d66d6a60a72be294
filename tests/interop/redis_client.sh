#!/bin/bash
# SPDX-License-Identifier: MIT
# redis_client.sh PORT: the client half of the redis interop test, run by
# redis_check.sh against an ordinary redis-server on 127.0.0.1:PORT.
# redis-benchmark (set, get, incr, lpush, lpop), then a 1 MiB value written
# with SET and read back with GET byte for byte, then SHUTDOWN NOSAVE.
set -euo pipefail
me=redis_client.sh
[ $# -eq 1 ] || { echo "usage: $me PORT" >&2; exit 2; }
port=$1
for t in redis-cli redis-benchmark; do
	command -v $t >/dev/null || { echo "$me: '$t' not found: install the Debian package redis-tools" >&2; exit 1; }
done
cli() { timeout 60 redis-cli -h 127.0.0.1 -p "$port" "$@"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redis_client.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ "$(cli PING)" = PONG ] || { echo "$me: PING did not answer PONG" >&2; exit 1; }

timeout 180 redis-benchmark -h 127.0.0.1 -p "$port" -n 20000 -q -t set,get,incr,lpush,lpop -P 1 \
	>"$tmp/bench.raw" 2>&1 || { tr '\r' '\n' <"$tmp/bench.raw" >&2; echo "$me: redis-benchmark failed" >&2; exit 1; }
tr '\r' '\n' <"$tmp/bench.raw" | grep 'requests per second' >"$tmp/bench" || true
cat "$tmp/bench"
# Anything else it said (not its progress lines) goes to stderr.
tr '\r' '\n' <"$tmp/bench.raw" | grep -v -e 'rps=' -e 'requests per second' -e '^ *$' >&2 || true
for t in SET GET INCR LPUSH LPOP; do
	grep -q "^$t: .*requests per second" "$tmp/bench" ||
		{ tr '\r' '\n' <"$tmp/bench.raw" >&2; echo "$me: no result for $t from redis-benchmark" >&2; exit 1; }
done

# 1 MiB of binary data: SET from stdin (-x), GET --raw (adds one newline).
head -c 1048576 /dev/urandom >"$tmp/big"
[ "$(cli -x SET mpk:big <"$tmp/big")" = OK ] || { echo "$me: SET of 1 MiB failed" >&2; exit 1; }
[ "$(cli STRLEN mpk:big)" = 1048576 ] || { echo "$me: STRLEN is not 1048576" >&2; exit 1; }
cli --raw GET mpk:big >"$tmp/back"
size=$(stat -c %s "$tmp/back")
[ "$size" = 1048577 ] || { echo "$me: GET returned $size bytes, expected 1048576 + newline" >&2; exit 1; }
head -c 1048576 "$tmp/back" | cmp -s - "$tmp/big" || { echo "$me: GET returned different bytes than SET stored" >&2; exit 1; }
echo "1 MiB SET/GET: identical"

cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
# The server exits; wait (bounded) until it no longer answers.
for _ in $(seq 1 50); do
	cli PING >/dev/null 2>&1 || break
	sleep 0.1
done
echo "OK redis"
