#!/bin/bash
# SPDX-License-Identifier: MIT
# mpklink-bench compare end to end on a tiny workload: real demo servers
# over tcp, a unix socket, mpklink and mpklink-mac (both sides under
# mpklink-run, signed), gRPC C++'s in-process channel, the C++ pair, and
# connection setup; the CSV must have a row per transport with numeric p50,
# the SVG must be a well-formed document with a line per transport and the
# legend's names, and the targets must be judged from this run's numbers.
# Then --server/--target with the demo server standing in for "yours", and
# with a server that escapes the shim: its mpklink row made no link, so it
# must show as not measured (table, CSV, exit status), its stats kept.
#   compare_tiny.sh BENCH SERVER
set -u
BENCH=$1
SERVER=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-bench-cmp.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/out "$tmp"/err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
	done
	exit 1
}

st=0
timeout -k 5 500 "$BENCH" compare --only echo64,words100,cxx64,connect --calls 30 --csv "$tmp/r.csv" \
	--svg "$tmp/r.svg" >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
[ "$st" -eq 0 ] || fail "compare: exit $st"
grep -q "signed identities" "$tmp/out" || fail "mpklink did not run signed"
# Users' settings: no ring size (or any other setting) beyond the endpoint.
grep -q "^mpklink: both sides under .*, default settings, " "$tmp/out" ||
	fail "the mpklink rows do not say they ran the default settings"
grep -q "CSV written to $tmp/r.csv" "$tmp/out" || fail "no 'CSV written to' line"
grep -q "SVG written to $tmp/r.svg" "$tmp/out" || fail "no 'SVG written to' line"
grep -q 'WARNING' "$tmp/err" && fail "warnings: $(cat "$tmp/err")"
[ "$(head -1 "$tmp/r.csv")" = "bench,transport,size_bytes,p50_us,p99_us,mbytes_per_s" ] ||
	fail "CSV header"
for b in echo wordcount grpcxx_echo connect; do
	for t in tcp unix mpklink mpklink-mac $([ $b = connect ] || echo inproc); do
		grep -Eq "^$b,$t,[0-9]+,[0-9]+\.[0-9]+,[0-9]+\.[0-9]+,[0-9.]*\$" "$tmp/r.csv" ||
			fail "CSV: no numeric row for $b $t: $(cat "$tmp/r.csv")"
	done
done
grep -q '^echo,tcp,64,' "$tmp/r.csv" || fail "echo size_bytes is not 64"
[ "$(wc -l <"$tmp/r.csv")" -eq 20 ] || fail "CSV: want 20 lines (3 x 5 rows, 4 for connect)"
# The tables: ratios and the paper's figures.
grep -Eq '^64 B( +[0-9.]+){6} +[0-9.]+x +[0-9.]+x +[0-9.]+ +[0-9.]+ +[0-9.]+x$' "$tmp/out" ||
	fail "echo table row"
grep -Eq '^connect( +[0-9.]+){6} +[0-9.]+x +[0-9.]+x +[0-9.]+ +- +-$' "$tmp/out" ||
	fail "connection setup row (no inproc there)"
grep -Eq '^  gRPC C\+\+ unary 64 B: mpklink <= 0.85x TCP +(MET|MISSED) +[0-9.]+ vs [0-9.]+ us' \
	"$tmp/out" || fail "the C++ 64 B target, judged"
grep -Eq '^  connection setup \(reported\) +MET +connect to first reply: tcp [0-9]+ us, mpklink [0-9]+ us' \
	"$tmp/out" || fail "connection setup, reported"
grep -Eq '^100 words .* 2030 +1660 +1\.22x  shared memory$' "$tmp/out" || fail "paper figures"
# The figures' source is named as a reader can find it, not as a file path.
grep -q '^Paper: Table 1 of the MPKLink paper (Alandary and Liu' "$tmp/out" || fail "paper not named"
grep -q 'paper-table1.csv' "$tmp/out" && fail "the paper named by a file path"
# Word-count targets count the sizes met and name those missed.
grep -Eq '^  word count: faster than TCP and unix, each size +(MET +met at 1 of 1 sizes$|MISSED +met at 0 of 1 sizes; MISSED at 100 words \([0-9.]+x\))' \
	"$tmp/out" || fail "word count target line"
# A line per step on stderr, with its time.
grep -Eq '^compare \[ +[0-9]+ s\]: measuring mpklink, echo 64 B, 30 calls \.\.\. [0-9]+\.[0-9] s$' "$tmp/err" ||
	fail "no timed progress line for mpklink echo 64 B"

head -c 5 "$tmp/r.svg" | grep -q '^<svg ' || fail "SVG does not start with <svg"
tail -1 "$tmp/r.svg" | grep -q '^</svg>$' || fail "SVG does not end with </svg>"
for t in tcp unix mpklink mpklink-mac inproc; do
	grep -q "<polyline class=\"series\" data-name=\"$t\"" "$tmp/r.svg" || fail "SVG: no line for $t"
	grep -q ">$t</text>" "$tmp/r.svg" || fail "SVG: no legend entry $t"
done
[ "$(grep -c '<polyline' "$tmp/r.svg")" -eq 15 ] || fail "SVG: want 15 polylines (3 panels x 5)"
if command -v python3 >/dev/null; then
	python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$tmp/r.svg" ||
		fail "SVG is not well-formed XML"
fi

# Your own server: the demo server as given, Health/Check; unix skipped.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
st=0
timeout -k 5 300 "$BENCH" compare --server "$SERVER --listen 127.0.0.1:$port" \
	--target "127.0.0.1:$port" --calls 30 --csv "$tmp/u.csv" >"$tmp/out" 2>"$tmp/err" \
	</dev/null || st=$?
[ "$st" -eq 0 ] || fail "compare --server: exit $st"
grep -q '^unix: skipped' "$tmp/out" || fail "--server: unix not skipped"
{ grep -Eq '^health,tcp,' "$tmp/u.csv" && grep -Eq '^health,mpklink,' "$tmp/u.csv"; } ||
	fail "--server: CSV rows: $(cat "$tmp/u.csv")"
grep -q 'WARNING' "$tmp/err" && fail "--server: warnings: $(cat "$tmp/err")"

# A server that escapes the shim (LD_PRELOAD dropped): under mpklink-run the
# client falls back to TCP. That row is not mpklink: "no link" in the table,
# empty figures in the CSV, exit 1, and the stats file kept and shown.
printf '#!/bin/sh\nexec env -u LD_PRELOAD "$@"\n' >"$tmp/noshim.sh"
chmod +x "$tmp/noshim.sh"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
st=0
timeout -k 5 300 "$BENCH" compare --server "$tmp/noshim.sh $SERVER --listen 127.0.0.1:$port" \
	--target "127.0.0.1:$port" --calls 10 --unsigned --csv "$tmp/n.csv" >"$tmp/out" 2>"$tmp/err" \
	</dev/null || st=$?
[ "$st" -eq 1 ] || fail "no link: exit $st, want 1"
grep -q 'WARNING: mpklink health: the client made no link' "$tmp/err" || fail "no link: no warning"
grep -Eq '^    \| mpklink stats: pid=[0-9]+ links=0 fallbacks=1 ' "$tmp/err" ||
	fail "no link: the stats file's content not shown"
grep -Eq '^health +[0-9.]+ +[0-9.]+ +- +- +no link +- ' "$tmp/out" || fail "no link: table row"
grep -q '^health,mpklink,0,,,$' "$tmp/n.csv" || fail "no link: CSV row not empty: $(cat "$tmp/n.csv")"
grep -Eq '^health,tcp,0,[0-9]' "$tmp/n.csv" || fail "no link: tcp row: $(cat "$tmp/n.csv")"
kept=$(sed -n 's/^Logs kept in \(.*\)\.$/\1/p' "$tmp/out")
[ -n "$kept" ] || fail "no link: no 'Logs kept in' line"
[ -s "$kept/client-mpklink-health.stats" ] || fail "no link: stats not kept in $kept"
case $kept in /tmp/mpklink-bench-compare.*) rm -rf "$kept" ;; esac

# Usage errors.
for args in "--only nope" "--server x" "--target 127.0.0.1:1" "--calls 0" "--method /a/b" \
	"--ring-bytes 3M" "--ring-bytes 2K" "--ring-bytes 4Mx"; do
	st=0
	# shellcheck disable=SC2086
	"$BENCH" compare $args >/dev/null 2>&1 || st=$?
	[ "$st" -eq 2 ] || fail "usage '$args': exit $st, want 2"
done

# Tuned rows are named as tuned, in the CSV and the header.
st=0
timeout -k 5 300 "$BENCH" compare --only echo64 --calls 10 --unsigned --ring-bytes 64K \
	--csv "$tmp/t.csv" >"$tmp/tout" 2>"$tmp/terr" </dev/null || st=$?
[ "$st" -eq 0 ] || fail "compare --ring-bytes: exit $st: $(tail -5 "$tmp/terr")"
grep -q "TUNED: MPKLINK_RING_BYTES=64K (not the default)" "$tmp/tout" ||
	fail "compare --ring-bytes: the header does not say the rows are tuned"
grep -q '^echo,mpklink-ring64K,64,' "$tmp/t.csv" || fail "no echo,mpklink-ring64K row: $(cat "$tmp/t.csv")"
grep -q '^echo,mpklink,' "$tmp/t.csv" && fail "a tuned row named as the default one"

# A busy machine: hogs on every CPU while it measures, rows named -busy,
# and no hog left behind.
st=0
timeout -k 5 300 "$BENCH" compare --only echo64 --calls 10 --unsigned --busy \
	--csv "$tmp/b.csv" >"$tmp/bout" 2>"$tmp/berr" </dev/null || st=$?
[ "$st" -eq 0 ] || fail "compare --busy: exit $st: $(tail -5 "$tmp/berr")"
grep -Eq "^BUSY: [1-9][0-9]* processes spinning, one per CPU" "$tmp/bout" ||
	fail "compare --busy: no BUSY line"
for t in tcp unix mpklink; do
	grep -q "^echo,$t-busy,64," "$tmp/b.csv" || fail "no echo,$t-busy row: $(cat "$tmp/b.csv")"
done
grep -q '^echo,mpklink,' "$tmp/b.csv" && fail "a busy row named as a quiet one"
pgrep -x mpk-bench-hog >/dev/null && fail "compare --busy left its hogs running"

# CPU per call from 16 channels at once: a row for each transport, every
# answer right (the client checks them), and the links counted.
st=0
timeout -k 5 300 "$BENCH" compare --only cpu16 --calls 400 --unsigned \
	--csv "$tmp/c.csv" >"$tmp/cout" 2>"$tmp/cerr" </dev/null || st=$?
[ "$st" -eq 0 ] || fail "compare --only cpu16: exit $st: $(tail -5 "$tmp/cerr")"
grep -Eq '^16( +[0-9]+\.[0-9]){6} +[0-9.]+x +[0-9.]+x +[1-9][0-9]* links, [0-9]+ stayed TCP$' \
	"$tmp/cout" || fail "compare --only cpu16: no CPU row: $(grep -A3 'CPU time' "$tmp/cout")"
for t in tcp unix mpklink; do
	grep -q "^cpu16,$t,64," "$tmp/c.csv" || fail "no cpu16,$t row: $(cat "$tmp/c.csv")"
done
echo "PASS"
