#!/bin/bash
# SPDX-License-Identifier: MIT
# user_checks.sh: run by deb_chroot.sh inside a clean Debian 12 root, as an
# ordinary user, after `apt-get install ./mpklink_*.deb`. Uses the package
# as its README says, from PATH: nothing of the build tree is here.
#
#   - every command is on PATH; mpklink-run --help; the man pages are there
#   - mpklink-run --check finds the packaged shim, and a copy of the install
#     moved elsewhere finds its own (the lookup relative to the binary)
#   - mpklink-keys init/issue/verify: a CA and two signed identities
#   - mpklink-demo-server and -client, each under mpklink-run with its
#     identity: Count and Echo answers right, and the connection upgraded
#     (each side's stats show links that carried bytes both ways, and the
#     kernel saw no more than preambles on those sockets: the check of
#     tests/integration/wrapped.sh)
#   - mpklink-bench echo --quick, which must find its echo pair in libexec
set -eu
cd "$HOME"
# tests/integration/lib.sh, copied beside us: tmp, pids, fail, envfile,
# stat_field. (Its free_port and wait_listen need ss, which is not here.)
# shellcheck source=../integration/lib.sh
. ./lib.sh
# Its cleanup kills pids that may be gone already: not an error under set -e.
trap 'set +e; cleanup' EXIT

t=$SECONDS
lap() { # lap WHAT: prints WHAT and the seconds since the last lap
	echo "ok: $1 ($((SECONDS - t)) s)"
	t=$SECONDS
}

# --------------------------------------------------------------- commands
for c in mpklink-run mpklink-keys mpklink-bench mpklink-demo-server mpklink-demo-client; do
	[ "$(command -v $c)" = "/usr/bin/$c" ] || fail "$c is not /usr/bin/$c on PATH (command -v: '$(command -v $c)')"
done
mpklink-run --help >"$tmp/help.log" 2>&1 || fail "mpklink-run --help exited $?"
grep -q '^usage: mpklink-run' "$tmp/help.log" || fail "mpklink-run --help printed no usage line"
mpklink-run --version >"$tmp/version.log" 2>&1 || fail "mpklink-run --version exited $?"
for p in mpklink-run mpklink-keys; do
	m=/usr/share/man/man1/$p.1.gz
	[ -f "$m" ] || fail "no man page $m"
	zcat "$m" | grep -q '^\.TH' || fail "$m is not a gzipped man page"
done
lap "commands on PATH, mpklink-run --help, man pages ($(cat "$tmp/version.log"))"

# ------------------------------------------------------------ shim lookup
chk=$(envfile check "MPKLINK_ENDPOINTS=127.0.0.1:50051")
mpklink-run --check -e "$chk" mpklink-demo-server >"$tmp/check.log" 2>&1 ||
	fail "mpklink-run --check says the configuration is unusable: $(cat "$tmp/check.log")"
grep -Eq '^  shim: +/usr/lib/[a-z0-9_-]+/mpklink/libmpklink\.so$' "$tmp/check.log" ||
	fail "mpklink-run --check names no packaged shim: $(grep shim "$tmp/check.log")"
# An install copied elsewhere (as from a DESTDIR): its own shim, not /usr's.
libdir=$(sed -n 's|^  shim: *\(/usr/lib/[^/]*\)/mpklink/libmpklink\.so$|\1|p' "$tmp/check.log")
moved=$tmp/moved
mkdir -p "$moved/bin" "$moved${libdir#/usr}"
cp /usr/bin/mpklink-run "$moved/bin/"
cp -r "$libdir/mpklink" "$moved${libdir#/usr}/"
"$moved/bin/mpklink-run" --check -e "$chk" >"$tmp/check-moved.log" 2>&1 ||
	fail "the moved mpklink-run --check: $(cat "$tmp/check-moved.log")"
grep -Eq "^  shim: +$moved${libdir#/usr}/mpklink/libmpklink\\.so\$" "$tmp/check-moved.log" ||
	fail "a copy of the install in $moved uses $(grep shim "$tmp/check-moved.log"), not its own shim"
lap "mpklink-run --check: $(sed -n 's/^  shim: *//p' "$tmp/check.log"); moved: its own"

# ------------------------------------------------------------- identities
keys=$tmp/keys
mpklink-keys init --dir "$keys" >"$tmp/keys.log" 2>&1 || fail "mpklink-keys init: $(cat "$tmp/keys.log")"
mpklink-keys issue --dir "$keys" wordcount --binary /usr/bin/mpklink-demo-server >>"$tmp/keys.log" 2>&1 ||
	fail "mpklink-keys issue wordcount: $(cat "$tmp/keys.log")"
mpklink-keys issue --dir "$keys" frontend --binary /usr/bin/mpklink-demo-client >>"$tmp/keys.log" 2>&1 ||
	fail "mpklink-keys issue frontend: $(cat "$tmp/keys.log")"
mpklink-keys verify --dir "$keys" wordcount --binary /usr/bin/mpklink-demo-server >>"$tmp/keys.log" 2>&1 ||
	fail "mpklink-keys verify wordcount: $(cat "$tmp/keys.log")"
lap "mpklink-keys init, issue wordcount and frontend, verify"

# -------------------------------------------------- the demo, under mpklink
# No ss here to find a free port: pick one, and take another if the server
# cannot bind it.
spid=
port=
for try in 1 2 3; do
	port=$((20000 + RANDOM % 12000))
	senv=$(envfile server "MPKLINK_ENDPOINTS=127.0.0.1:$port" \
		"MPKLINK_IDENTITY=$keys/wordcount" "MPKLINK_TRUST=$keys/ca.pub" \
		"MPKLINK_ALLOW=$port:frontend" "MPKLINK_STATS=$tmp/server.stats")
	: >"$tmp/server.out"
	mpklink-run -e "$senv" -- mpklink-demo-server --listen "127.0.0.1:$port" \
		>"$tmp/server.out" 2>"$tmp/server.log" </dev/null &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 200); do
		grep -q '^listening on ' "$tmp/server.out" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '^listening on ' "$tmp/server.out" && break
	kill -0 "$spid" 2>/dev/null && fail "the server printed no 'listening on' line within 20 s"
	wait "$spid" || true
	spid=
	echo "server could not start on port $port (try $try): $(tail -n 2 "$tmp/server.log")"
done
[ -n "$spid" ] || fail "mpklink-demo-server under mpklink-run did not start in 3 tries"
lap "mpklink-demo-server under mpklink-run: $(cat "$tmp/server.out")"

cenv=$(envfile client "MPKLINK_ENDPOINTS=127.0.0.1:$port=wordcount" \
	"MPKLINK_IDENTITY=$keys/frontend" "MPKLINK_TRUST=$keys/ca.pub" "MPKLINK_STATS=$tmp/client.stats")
# client ARGS...: the demo client under mpklink-run; its output in client.out.
client() {
	timeout -k 5 240 mpklink-run -e "$cenv" -- mpklink-demo-client --target "127.0.0.1:$port" "$@" \
		>"$tmp/client.out" 2>>"$tmp/client.log" </dev/null
}
out() { # out KEY: KEY=VALUE from the client's output
	tr ' ' '\n' <"$tmp/client.out" | sed -n "s/^$1=//p"
}
runs=0

client count --words 100000 --seed 7 --repeat 3 || fail "count --words 100000 exited $?"
runs=$((runs + 1))
[ "$(out words)" = 100000 ] && [ "$(out calls)" = 3 ] || fail "count --words 100000 printed: $(cat "$tmp/client.out")"
lap "Count of 100000 generated words, 3 calls: $(cat "$tmp/client.out")"

printf 'the quick\tbrown fox\n  jumps over\r\nthe lazy dog\n' >"$tmp/text"
client count --file "$tmp/text" || fail "count --file exited $?"
runs=$((runs + 1))
[ "$(out words)" = 9 ] || fail "the server counted $(out words) words in a 9-word file: $(cat "$tmp/client.out")"
lap "Count of a 9-word file: $(cat "$tmp/client.out")"

client echo --bytes 65536 --seed 3 --repeat 3 || fail "echo --bytes 65536 exited $?"
runs=$((runs + 1))
[ "$(out bytes)" = 65536 ] && [ "$(out calls)" = 3 ] || fail "echo --bytes 65536 printed: $(cat "$tmp/client.out")"
client echo --bytes 64 --reply-bytes 100000 || fail "echo --bytes 64 --reply-bytes 100000 exited $?"
runs=$((runs + 1))
[ "$(out reply_bytes)" = 100000 ] || fail "echo --reply-bytes 100000 printed: $(cat "$tmp/client.out")"
lap "Echo of 64 KiB (checked byte for byte by the client) and a 100000-byte reply"

kill -TERM "$spid"
st=0
for _ in $(seq 100); do
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$spid" 2>/dev/null && fail "the server under mpklink-run still runs 10 s after SIGTERM"
wait "$spid" || st=$?
[ "$st" -eq 0 ] || fail "mpklink-run (the server) exited $st after SIGTERM, not 0"

# The connections were upgraded: as tests/integration/wrapped.sh checks.
for side in server client; do
	f=$tmp/$side.stats
	[ -s "$f" ] || fail "$side: no stats in $f (MPKLINK_STATS)"
	links=$(stat_field "$f" links)
	tx=$(stat_field "$f" tx_bytes)
	rx=$(stat_field "$f" rx_bytes)
	tcp=$(stat_field "$f" tcp_bytes)
	[ "$links" -ge "$runs" ] && [ "$tx" -gt 0 ] && [ "$rx" -gt 0 ] ||
		fail "$side: links=$links tx_bytes=$tx rx_bytes=$rx after $runs client runs: the connections were not upgraded"
	[ "$tcp" -le $((links * 32)) ] ||
		fail "$side: the kernel counted $tcp bytes on $links upgraded TCP sockets: more than preambles"
	echo "$side: links=$links tx_bytes=$tx rx_bytes=$rx through the rings; TCP carried $tcp bytes"
done
lap "server stopped cleanly; both sides upgraded"

# --------------------------------------------------------- mpklink-bench
mpklink-bench echo --help >"$tmp/bench-help.log" 2>&1 || fail "mpklink-bench echo --help exited $?"
grep -q 'libexec/mpklink/echo_server' "$tmp/bench-help.log" ||
	fail "mpklink-bench echo --help does not say it looks in libexec: $(cat "$tmp/bench-help.log")"
timeout -k 5 300 mpklink-bench echo --quick --csv "$tmp/echo.csv" >"$tmp/bench.log" 2>&1 ||
	fail "mpklink-bench echo --quick exited $?: $(tail -n 20 "$tmp/bench.log")"
for tr in tcp unix mpklink mpklink-doorbell; do
	for size in 64 65536; do
		grep -q "^echo,$tr,$size," "$tmp/echo.csv" ||
			fail "mpklink-bench echo --quick measured no $tr at $size B: $(cat "$tmp/echo.csv")"
	done
done
# The floor comes from the installed binary running itself (transport).
grep -Eq "^echo,floor,64,[0-9]+\.[0-9]+,[0-9]+\.[0-9]+,\$" "$tmp/echo.csv" ||
	fail "mpklink-bench echo --quick measured no shared-memory floor: $(cat "$tmp/echo.csv")"
grep -Eq "^  (PASS|MISS)  mpklink \(spinning\) 64 B p50 within 2x the shared-memory floor" \
	"$tmp/bench.log" || fail "mpklink-bench echo --quick judged no floor target"
sed -n '/^transport/,/^$/p' "$tmp/bench.log"
lap "mpklink-bench echo --quick, with the echo pair from libexec"

echo "PASS: the installed package works for a user"
