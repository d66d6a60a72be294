#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs the main job: the transport benchmark, baseline (pipe,
# Unix socket, TCP loopback) and mpklink measured in one run.
# Extra arguments go to `mpklink-bench transport` (try --quick, --csv FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
b=${MPK_BUILD_ROOT:-build}/release
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DMPK_TESTS=OFF >/dev/null
cmake --build "$b" -j "$(nproc)" --target mpklink-bench >/dev/null
mkdir -p results
exec "$b/bench/mpklink-bench" transport --csv results/transport.csv "$@"
