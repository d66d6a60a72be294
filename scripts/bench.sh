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
# Tables on stdout; CSV and the SVG plot in results/. --quick: shorter runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
b=${MPK_BUILD_ROOT:-build}/release
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b" -j "$(nproc)" \
	--target mpklink-bench mpklink-bench-grpcxx mpklink mpklink-run mpklink-keys \
	mpklink-demo-server echo_server echo_client >/dev/null
mkdir -p results
"$b/bench/mpklink-bench" compare --csv results/compare.csv --svg results/compare.svg "$@"
echo
echo "CSV: results/compare.csv; plot: results/compare.svg"
