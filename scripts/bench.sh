#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs the main job: the before/after comparison, baselines and
# mpklink measured in the same run:
#   mpklink-bench compare    the demo gRPC service (C core) over TCP, a Unix
#                            socket, and with both sides under mpklink-run
#                            (signed): echo 64 B..1 MiB, word counts 10^2..10^7,
#                            beside the MPKLink paper's figures
#   mpklink-bench transport  pipe, Unix socket, TCP, mpklink ring (and with MACs),
#                            shared-memory floor
#   mpklink-bench echo       the C echo pair over TCP, a Unix socket, mpklink
# Tables on stdout; CSV and the SVG plot in results/. --quick: shorter runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
b=${MPK_BUILD_ROOT:-build}/release
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$b" -j "$(nproc)" \
	--target mpklink-bench mpklink mpklink-run mpklink-keys mpklink-demo-server \
	echo_server echo_client >/dev/null
mkdir -p results
"$b/bench/mpklink-bench" compare --csv results/compare.csv --svg results/compare.svg "$@"
echo
"$b/bench/mpklink-bench" transport --csv results/transport.csv "$@"
echo
"$b/bench/mpklink-bench" echo --csv results/echo.csv "$@"
echo
echo "CSV: results/compare.csv results/transport.csv results/echo.csv; plot: results/compare.svg"
