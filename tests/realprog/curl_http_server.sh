#!/bin/bash
# SPDX-License-Identifier: MIT
# curl_http_server.sh: curl against Python's http.server (`python3 -m
# http.server --protocol HTTP/1.1`: keep-alive, a thread per connection)
# serving a folder of files (0 B, text, 1 KiB, 5 MiB, a subfolder), each
# program under its own mpklink-run, against the same over plain TCP:
#  - one curl with six URLs on one kept-alive connection: headers (less
#    Date), what -w says of each (status, size, new connections), sha256 of
#    each body;
#  - the 5 MiB file alone, a HEAD, a 404, a POST (501), a Range request;
#  - one curl with --parallel fetching 8 URLs over up to 4 connections;
#  - the server's log: the request lines and statuses (less times, sorted).
# All identical; the server and every curl must have made links.
#
# Expects: MPKLINK_RUN.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY not found: install the Debian package python3"
need curl curl
need sha256sum coreutils

# The same files for both runs (their dates are in Last-Modified).
www=$tmp/www
mkdir -p "$www/sub"
: >"$www/empty.txt"
printf 'hello, world\n' >"$www/hello.txt"
head -c 1024 /dev/urandom >"$www/1k.bin"
head -c $((5 << 20)) /dev/urandom >"$www/5m.bin"
printf 'deep\n' >"$www/sub/deep.txt"

# What curl prints, without what differs run to run: the Date header, the
# port in URLs, and CRs.
# shellcheck disable=SC2317 # called through result_of
norm() { tr -d '\r' | grep -v -i '^date:' | sed "s/127\.0\.0\.1:$port/127.0.0.1:PORT/g"; }
W_FMT='-> %{url_effective} status=%{http_code} size=%{size_download} new_connections=%{num_connects} type=%{content_type}\n'

scenario() {
	local u=http://127.0.0.1:$port f i
	: >"$dir/result"
	mkdir -p "$dir/dl"
	start_bg server 400 "$PY" -m http.server --bind 127.0.0.1 --protocol HTTP/1.1 \
		--directory "$www" "$port"
	wait_listeners "$port" 1 20 || problem "http.server did not listen within 20 s"

	# curl's --max-time bounds each URL: 6 URLs, 10 s each at most.
	run_fg keepalive 80 curl -sS --max-time 10 -D - -w "$W_FMT" \
		-o "$dir/dl/a0" "$u/hello.txt" -o "$dir/dl/a1" "$u/empty.txt" \
		-o "$dir/dl/a2" "$u/1k.bin" -o "$dir/dl/a3" "$u/sub/deep.txt" \
		-o "$dir/dl/a4" "$u/" -o "$dir/dl/a5" "$u/5m.bin"
	result_of keepalive norm
	for i in 0 1 2 3 4 5; do
		echo "a$i $(sum "$dir/dl/a$i")" >>"$dir/result"
	done

	run_fg big 30 curl -sS --max-time 20 -w "$W_FMT" -o "$dir/dl/big" "$u/5m.bin"
	result_of big norm
	echo "5m.bin $(sum "$dir/dl/big") (file $(sha256sum <"$www/5m.bin" | cut -d' ' -f1))" >>"$dir/result"
	run_fg head 30 curl -sS --max-time 20 -I "$u/1k.bin"
	result_of head norm
	run_fg notfound 30 curl -sS --max-time 20 -D - "$u/nope.txt"
	result_of notfound norm
	run_fg post 30 curl -sS --max-time 20 -D - -d 'a=1' "$u/hello.txt"
	result_of post norm
	run_fg range 30 curl -sS --max-time 20 -D - -r 0-4 -o "$dir/dl/range" "$u/hello.txt"
	result_of range norm
	echo "range body $(sum "$dir/dl/range")" >>"$dir/result"

	run_fg parallel 60 curl -sS --no-progress-meter --max-time 20 --parallel --parallel-max 4 \
		-w "%{http_code} %{size_download}\n" \
		-o "$dir/dl/p0" "$u/5m.bin" -o "$dir/dl/p1" "$u/1k.bin" \
		-o "$dir/dl/p2" "$u/5m.bin" -o "$dir/dl/p3" "$u/hello.txt" \
		-o "$dir/dl/p4" "$u/5m.bin" -o "$dir/dl/p5" "$u/1k.bin" \
		-o "$dir/dl/p6" "$u/5m.bin" -o "$dir/dl/p7" "$u/sub/deep.txt"
	result_of parallel sort
	for i in 0 1 2 3 4 5 6 7; do
		echo "p$i $(sum "$dir/dl/p$i")" >>"$dir/result"
	done

	# SIGINT: http.server ends on KeyboardInterrupt and exits 0 (SIGTERM
	# would kill it before its exit handlers, the stats among them).
	stop_bg server INT
	echo "### server log: requests (sorted)" >>"$dir/result"
	sed -n 's/^127\.0\.0\.1 - - \[[^]]*\] //p' "$dir/server.err" | sort >>"$dir/result"
}
run_both
verdict "server keepalive big head notfound post range parallel"
