#!/bin/bash
# SPDX-License-Identifier: MIT
# redis.sh: Debian's redis-server with redis-benchmark and redis-cli, each
# program under its own mpklink-run, against the same over plain TCP.
#  - redis-benchmark -n 2000 -c 20 -t set,get,incr,lpush --csv: which tests
#    ran and their columns (not the speed), then the server's own count of
#    the calls it served (INFO commandstats: calls, rejected, failed; not the
#    times), the INCR counter and the list's length: every request completed;
#  - a fixed redis-cli script: SET/GET/INCR/LPUSH/LRANGE, a 1 MiB binary
#    value (SET -x, GET --raw, sha256), MULTI/EXEC in one session, 1000
#    commands through --pipe, SUBSCRIBE in one redis-cli and PUBLISH from
#    others (bounded waits);
# all output identical. The server, the benchmark and each redis-cli must
# have made links.
#
# Expects: MPKLINK_RUN.
. "$(dirname "$0")/lib.sh"
need redis-server redis-server
need redis-cli redis-tools
need redis-benchmark redis-tools
need sha256sum coreutils

# The same 1 MiB of binary data for both runs; the commands for --pipe.
head -c 1048576 /dev/urandom >"$tmp/big"
for i in $(seq 1000); do printf 'SET pipe:%d value-%d\r\n' "$i" "$i"; done >"$tmp/pipe.txt"
printf 'MULTI\nINCR tx:n\nSET tx:k hello\nGET tx:k\nLPUSH tx:l 1 2 3\nEXEC\nGET tx:n\n' >"$tmp/multi.txt"

cli() { # cli NAME ARGS...: one redis-cli run, its output into the result
	local name=$1
	shift
	run_fg "$name" 30 redis-cli -h 127.0.0.1 -p "$port" "$@"
	result_of "$name"
}

scenario() {
	local i
	: >"$dir/result"
	start_bg server 400 redis-server --port "$port" --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no
	wait_listeners "$port" 1 20 || problem "redis-server did not listen within 20 s"
	cli resetstat CONFIG RESETSTAT
	run_fg bench 120 redis-benchmark -h 127.0.0.1 -p "$port" -n 2000 -c 20 \
		-t set,get,incr,lpush --csv
	# Which tests ran, and the number of columns each row has.
	# shellcheck disable=SC2016 # awk's
	result_of bench awk -F, '{print $1 " columns=" NF}'
	run_fg stats 30 redis-cli -h 127.0.0.1 -p "$port" INFO commandstats
	result_of stats sh -c "tr -d '\r' | sed -E 's/,usec=[^,]*,usec_per_call=[^,]*//' | sort"
	cli counter GET counter:__rand_int__
	cli mylist LLEN mylist

	cli set SET k1 "hello world"
	cli get GET k1
	for i in 1 2 3; do cli "incr$i" INCR n1; done
	cli lpush LPUSH l1 a b c d
	cli lrange LRANGE l1 0 -1
	RP_IN=$tmp/big run_fg bigset 30 redis-cli -h 127.0.0.1 -p "$port" -x SET big
	result_of bigset
	cli strlen STRLEN big
	run_fg bigget 30 redis-cli -h 127.0.0.1 -p "$port" --raw GET big
	# GET --raw adds one newline.
	{
		echo "### bigget: exit ${fg_st[bigget]}"
		echo "size $(stat -c %s "$dir/bigget.out") sha256 $(head -c 1048576 "$dir/bigget.out" | sha256sum | cut -d' ' -f1)"
		echo "sent sha256 $(sha256sum <"$tmp/big" | cut -d' ' -f1)"
	} >>"$dir/result"
	cli getrange GETRANGE big 1048570 -1
	RP_IN=$tmp/multi.txt run_fg multi 30 redis-cli -h 127.0.0.1 -p "$port"
	result_of multi
	RP_IN=$tmp/pipe.txt run_fg pipe 30 redis-cli -h 127.0.0.1 -p "$port" --pipe
	result_of pipe
	cli pipecheck MGET pipe:1 pipe:500 pipe:1000

	# SUBSCRIBE in one redis-cli, PUBLISH from others.
	start_bg sub 60 redis-cli -h 127.0.0.1 -p "$port" SUBSCRIBE news
	for i in $(seq 100); do
		[ "$(timeout 10 redis-cli -h 127.0.0.1 -p "$port" PUBSUB NUMSUB news | tail -n 1)" = 1 ] && break
		sleep 0.1
	done
	for i in 1 2 3; do cli "publish$i" PUBLISH news "message $i"; done
	wait_out "$dir/sub.out" "message 3" 10 || problem "the subscriber did not get 'message 3' within 10 s"
	# The server closes the subscriber's connection: redis-cli exits (1).
	cli kill CLIENT KILL TYPE pubsub
	wait_bg sub 10
	echo "### subscriber: exit $bg_status" >>"$dir/result"
	cat "$dir/sub.out" >>"$dir/result"
	cli dbsize DBSIZE
	stop_bg server
}
run_both
verdict "server bench stats set get bigset bigget multi pipe sub publish1"
