#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs the main job: the before/after comparison, baselines and
# mpklink measured in the same run, by mpklink-bench compare:
#   the demo gRPC service (C core) over TCP, a Unix socket, mpklink (both
#   sides under mpklink-run, signed) and mpklink with MACs, beside gRPC C++'s
#   in-process channel (the floor): echo 64 B..1 MiB, word counts 10^2..10^7
#   with the MPKLink paper's figures; the C++ pair; connection setup; then
#   mpklink-bench transport (pipe, Unix socket, TCP, the ring, the
#   shared-memory floor) and echo (the C echo pair), and the targets.
# Installs only what this needs (scripts/deps.sh bench), builds without the
# tests. Tables on stdout, a line per step on stderr; CSV and the SVG plot
# in results/. --quick: shorter runs. Other arguments go to compare.
set -euo pipefail
rerun="$0${*:+ $*}"
deps="$(dirname "$0")/deps.sh"
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
t0=$SECONDS

MPK_DEPS_SELF=$deps MPK_DEPS_RERUN=$rerun scripts/deps.sh bench
t_deps=$((SECONDS - t0))

b=${MPK_BUILD_ROOT:-build}/release
mpk_give_back "$b"
mpk_give_back results
trap mpk_give_back_now EXIT
mkdir -p "$b" results
log=$b/bench-build.log
: >"$log"
t1=$SECONDS
# Without the tests: they need packages the main job does not (Criterion).
mpk_step "$log" "configuring $b" cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DMPK_TESTS=OFF
mpk_step "$log" "building $b (log: $log)" cmake --build "$b" -j "$(nproc)" \
	--target mpklink-bench mpklink-bench-grpcxx mpklink mpklink-run mpklink-keys \
	mpklink-demo-server echo_server echo_client
t_build=$((SECONDS - t1))

t2=$SECONDS
st=0
"$b/bench/mpklink-bench" compare --csv results/compare.csv --svg results/compare.svg "$@" || st=$?
t_run=$((SECONDS - t2))
echo
echo "CSV: results/compare.csv; plot: results/compare.svg"
echo "$mpk_me: $(mpk_secs $((SECONDS - t0))) in all: packages $(mpk_secs $t_deps)," \
	"build $(mpk_secs $t_build), measurements $(mpk_secs $t_run)" >&2
[ "$st" -eq 0 ] || echo "$mpk_me: mpklink-bench compare exited $st: see its messages above" >&2
exit "$st"
