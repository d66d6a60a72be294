#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs the main job: the benchmarks, baseline and mpklink
# measured in the same run:
#   mpklink-bench transport  pipe, Unix socket, TCP, mpklink ring, shared-memory floor
#   mpklink-bench echo       the C echo pair over TCP, a Unix socket, and under mpklink-run
# Tables on stdout; CSV in results/. Pass --quick for a shorter run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
b=${MPK_BUILD_ROOT:-build}/release
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b" -j "$(nproc)" \
	--target mpklink-bench mpklink mpklink-run echo_server echo_client >/dev/null
mkdir -p results
"$b/bench/mpklink-bench" transport --csv results/transport.csv "$@"
echo
"$b/bench/mpklink-bench" echo --csv results/echo.csv "$@"
echo
echo "CSV: results/transport.csv results/echo.csv"
