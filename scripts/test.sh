#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs every test: installs what is missing, then builds and
# runs ctest in four configurations:
#   plain    gcc, -Werror; everything, including the emulated-PKU VM test
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     ThreadSanitizer (the rings' memory ordering)
#   fuzz     clang libFuzzer smoke runs of the hostile-header target
# Usage: scripts/test.sh [plain|asan|tsan|fuzz ...]   (default: all four)
# Build trees go under $MPK_BUILD_ROOT (default: ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

root=${MPK_BUILD_ROOT:-build}
jobs=$(nproc)
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(plain asan tsan fuzz)

run() { # name, cmake args..., -- ctest args...   ($targets: what to build, default all)
	local name=$1; shift
	local cm=() ct=() tg=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do cm+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	ct=("$@")
	[ -n "${targets:-}" ] && tg=(--target $targets)
	echo "=== $name: configure and build"
	cmake -S . -B "$root/$name" -DMPK_WERROR=ON "${cm[@]}" >/dev/null
	cmake --build "$root/$name" -j "$jobs" "${tg[@]}" >/dev/null
	echo "=== $name: ctest"
	(cd "$root/$name" && ctest --output-on-failure --no-tests=error "${ct[@]}")
}

for c in "${configs[@]}"; do
	case $c in
	plain) run plain ;;
	# The VM test boots the plain build's binary; a sanitizer runtime in
	# a 512 MiB guest tests nothing more.
	# Nor do the interop pairs: third-party programs that are not
	# sanitized, into which a sanitized shim cannot be preloaded.
	# Nor the spin tests, which count system calls and CPU ticks of a
	# program running at full speed (the spinning code itself runs in
	# every other integration test: spinning is the default).
	asan) run asan -DMPK_ASAN=ON -DMPK_UBSAN=ON -- -LE 'mpk-vm|interop|spin|package' ;;
	# Nor, under TSan, the conformance scenarios: their programs race on fds
	# on purpose (a close in one thread while another is blocked on the fd),
	# which TSan reports in the plain TCP reference run itself; they run
	# plain and under ASan. Nor the gRPC programs (demo, bench grpc/compare): libgrpc
	# is not instrumented, so TSan cannot see the completion queue's
	# hand-over and reports our reads of what gRPC's threads wrote. Their
	# own code runs under ASan+UBSan; the rings' ordering, what TSan is
	# for, under the C programs and ring_stress.
	tsan) run tsan -DMPK_TSAN=ON -- -LE 'mpk-vm|interop|spin|demo|bench|package|conformance' ;;
	fuzz) CC=clang targets="fuzz_attach fuzz_handshake" run fuzz -DMPK_FUZZ=ON -DMPK_ASAN=ON -DMPK_UBSAN=ON -- -L fuzz ;;
	*) echo "test.sh: unknown configuration '$c'" >&2; exit 2 ;;
	esac
done
echo "=== all configurations passed: ${configs[*]}"
