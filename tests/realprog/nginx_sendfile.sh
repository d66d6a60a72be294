#!/bin/bash
# SPDX-License-Identifier: MIT
# nginx_sendfile.sh: Debian's nginx (nginx-light), run as our own process
# (nginx -p DIR, daemon off, a master and 2 workers, logs inside DIR),
# serving static files with `sendfile on;`, fetched with curl; nginx and
# each curl under their own mpklink-run, against the same over plain TCP:
#  - one curl fetching 0 B, 1 KiB, 1 MiB and 20 MiB files on one kept-alive
#    connection: headers (less Date), what -w says of each, sha256 of bodies;
#  - Range requests (a middle slice, a suffix, two ranges: multipart);
#  - a HEAD, a 404, and two curls at once (both workers may serve);
#  - nginx's access log: request, status, bytes sent (sorted).
# All identical; nginx and every curl must have made links. With sendfile,
# nginx hands the file to the kernel for the socket: under mpklink those
# bytes must still arrive, through the ring or over TCP, never be lost.
#
# Expects: MPKLINK_RUN.
. "$(dirname "$0")/lib.sh"
NGINX=/usr/sbin/nginx
[ -x "$NGINX" ] || fail "$NGINX not found: install the Debian package nginx-light"
need curl curl
need sha256sum coreutils

www=$tmp/www
mkdir -p "$www"
: >"$www/empty.bin"
head -c 1024 /dev/urandom >"$www/1k.bin"
head -c $((1 << 20)) /dev/urandom >"$www/1m.bin"
head -c $((20 << 20)) /dev/urandom >"$www/20m.bin"

# shellcheck disable=SC2317 # called through result_of
norm() { tr -d '\r' | grep -v -i '^date:' | sed "s/127\.0\.0\.1:$port/127.0.0.1:PORT/g"; }
W_FMT='-> %{url_effective} status=%{http_code} size=%{size_download} new_connections=%{num_connects}\n'

scenario() {
	local u=http://127.0.0.1:$port i p=$dir/nginx
	: >"$dir/result"
	mkdir -p "$p/logs" "$p/tmp" "$dir/dl"
	cat >"$p/nginx.conf" <<CONF
user $(id -un) $(id -gn);
worker_processes 2;
error_log $p/logs/error.log info;
events { worker_connections 128; }
http {
	log_format mpk '\$request \$status \$body_bytes_sent';
	access_log $p/logs/access.log mpk;
	client_body_temp_path $p/tmp/body;
	proxy_temp_path $p/tmp/proxy;
	fastcgi_temp_path $p/tmp/fastcgi;
	uwsgi_temp_path $p/tmp/uwsgi;
	scgi_temp_path $p/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	keepalive_timeout 30;
	server {
		listen 127.0.0.1:$port;
		root $www;
	}
}
CONF
	start_bg nginx 400 "$NGINX" -p "$p" -c "$p/nginx.conf" -e "$p/logs/error.log" \
		-g "daemon off; master_process on; pid $p/nginx.pid;"
	wait_listeners "$port" 1 20 || problem "nginx did not listen within 20 s"

	# curl's --max-time bounds each URL: 5 URLs, 10 s each at most.
	run_fg files 70 curl -sS --max-time 10 -D - -w "$W_FMT" \
		-o "$dir/dl/f0" "$u/empty.bin" -o "$dir/dl/f1" "$u/1k.bin" \
		-o "$dir/dl/f2" "$u/1m.bin" -o "$dir/dl/f3" "$u/20m.bin" \
		-o "$dir/dl/f4" "$u/1k.bin"
	result_of files norm
	for i in 0 1 2 3 4; do
		echo "f$i $(sum "$dir/dl/f$i")" >>"$dir/result"
	done
	echo "files: 20m.bin $(sha256sum <"$www/20m.bin" | cut -d' ' -f1)" >>"$dir/result"

	run_fg range 20 curl -sS --max-time 10 -D - -r 1000-1999 -o "$dir/dl/r0" "$u/1m.bin"
	result_of range norm
	echo "range body $(sum "$dir/dl/r0")" \
		"(file: $(tail -c +1001 "$www/1m.bin" | head -c 1000 | sha256sum | cut -d' ' -f1))" >>"$dir/result"
	run_fg suffix 20 curl -sS --max-time 10 -D - -r -100 -o "$dir/dl/r1" "$u/20m.bin"
	result_of suffix norm
	echo "suffix body $(sum "$dir/dl/r1")" \
		"(file: $(tail -c 100 "$www/20m.bin" | sha256sum | cut -d' ' -f1))" >>"$dir/result"
	# Two ranges: a multipart/byteranges body, its boundary random: sizes only.
	run_fg multirange 20 curl -sS --max-time 10 -r 0-9,100-109 -w '%{http_code}\n' \
		-o "$dir/dl/r2" "$u/1k.bin"
	result_of multirange
	echo "multirange body lines $(wc -l 2>/dev/null <"$dir/dl/r2" || echo missing)" >>"$dir/result"

	run_fg head 20 curl -sS --max-time 10 -I "$u/20m.bin"
	result_of head norm
	run_fg notfound 20 curl -sS --max-time 10 -o /dev/null -w '%{http_code}\n' "$u/nope.bin"
	result_of notfound

	# Two at once.
	for i in A B; do
		run_par "two$i" 30 curl -sS --max-time 20 -o "$dir/dl/two$i" \
			-w "%{http_code} %{size_download}\n" "$u/20m.bin"
	done
	par_wait
	result_of twoA
	result_of twoB
	for i in A B; do
		echo "two$i $(sum "$dir/dl/two$i")" >>"$dir/result"
	done

	stop_bg nginx
	echo "### access log (sorted)" >>"$dir/result"
	sort "$p/logs/access.log" >>"$dir/result"
	grep -E '\[(alert|crit|emerg)\]' "$p/logs/error.log" | sed "s/^/  $mode: nginx error.log: /" | head -5
}
run_both
verdict "nginx files range suffix head twoA twoB"
