#!/bin/bash
# SPDX-License-Identifier: MIT
# Sets up and runs every test: installs what is missing, then builds and
# runs ctest in four configurations:
#   plain    gcc, -Werror; everything, including the emulated-PKU VM test
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     ThreadSanitizer (the rings' memory ordering)
#   fuzz     clang libFuzzer smoke runs of the hostile-header target
# Usage: scripts/test.sh [plain|asan|tsan|fuzz ...]   (default: all four)
# Every configuration runs even when one before it failed; the last lines
# say which failed, and the exit status is 1 when any did.
# Build trees go under $MPK_BUILD_ROOT (default: ./build); each one's
# configure and build output in its test-build.log.
set -uo pipefail
rerun="$0${*:+ $*}"
deps="$(dirname "$0")/deps.sh"
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
t0=$SECONDS

configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(plain asan tsan fuzz)
for c in "${configs[@]}"; do
	case $c in
	plain | asan | tsan | fuzz) ;;
	*)
		echo "test.sh: unknown configuration '$c' (plain, asan, tsan or fuzz)" >&2
		exit 2
		;;
	esac
done

MPK_DEPS_SELF=$deps MPK_DEPS_RERUN=$rerun scripts/deps.sh test || exit 1

# tests/package never skips (a skipped package test proves nothing): say
# before the minutes of the other tests that, run by a user, it will fail.
case " ${configs[*]} " in
*" plain "*)
	[ "$(id -u)" -eq 0 ] ||
		echo "test.sh: note: plain's package test (the .deb in a debootstrap root) needs root;" \
			"as $(id -un) it fails. To run everything: sudo $rerun (or as root)" >&2
	;;
esac

root=${MPK_BUILD_ROOT:-build}
jobs=$(nproc)
trap mpk_give_back_now EXIT

summary=()
failed=()

run() { # name, cmake args..., -- ctest args...   ($targets: what to build, default all)
	local name=$1 dir=$root/$1 log t st=0
	shift
	local cm=() ct=() tg=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		cm+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	ct=("$@")
	# shellcheck disable=SC2206 # $targets: names separated by spaces
	[ -n "${targets:-}" ] && tg=(--target $targets)
	mpk_give_back "$dir"
	mkdir -p "$dir"
	log=$dir/test-build.log
	: >"$log"
	t=$SECONDS
	if ! mpk_step "$log" "$name: configuring $dir" cmake -S . -B "$dir" -DMPK_WERROR=ON "${cm[@]}" ||
		! mpk_step "$log" "$name: building (log: $log)" cmake --build "$dir" -j "$jobs" "${tg[@]}"; then
		summary+=("$(printf '  %-6s FAILED to build (%s; log: %s)' "$name" "$(mpk_secs $((SECONDS - t)))" "$log")")
		failed+=("$name")
		return
	fi
	echo "$mpk_me: $name: ctest" >&2
	t=$SECONDS
	(cd "$dir" && ctest --output-on-failure --no-tests=error "${ct[@]}") || st=$?
	if [ "$st" -eq 0 ]; then
		summary+=("$(printf '  %-6s passed (ctest %s)' "$name" "$(mpk_secs $((SECONDS - t)))")")
		echo "$mpk_me: $name: ctest passed in $(mpk_secs $((SECONDS - t)))" >&2
		return
	fi
	local which=""
	if [ -s "$dir/Testing/Temporary/LastTestsFailed.log" ]; then
		which=$(cut -d: -f2- "$dir/Testing/Temporary/LastTestsFailed.log" | paste -sd' ' -)
	fi
	summary+=("$(printf '  %-6s FAILED: %s (ctest %s)' "$name" "${which:-ctest exit $st}" \
		"$(mpk_secs $((SECONDS - t)))")")
	failed+=("$name")
	echo "$mpk_me: $name: ctest FAILED after $(mpk_secs $((SECONDS - t)))" >&2
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
	# Nor the podman test: its path through mpklink is node_netns_echo's,
	# which runs here.
	asan) run asan -DMPK_ASAN=ON -DMPK_UBSAN=ON -- -LE 'mpk-vm|interop|spin|package|podman' ;;
	# Nor, under TSan, the conformance scenarios: their programs race on fds
	# on purpose (a close in one thread while another is blocked on the fd),
	# which TSan reports in the plain TCP reference run itself; they run
	# plain and under ASan. Nor the gRPC programs (demo, bench grpc/compare): libgrpc
	# is not instrumented, so TSan cannot see the completion queue's
	# hand-over and reports our reads of what gRPC's threads wrote. Their
	# own code runs under ASan+UBSan; the rings' ordering, what TSan is
	# for, under the C programs and ring_stress.
	tsan) run tsan -DMPK_TSAN=ON -- -LE 'mpk-vm|interop|spin|demo|bench|package|conformance|podman' ;;
	fuzz) CC=clang targets="fuzz_attach fuzz_handshake" run fuzz -DMPK_FUZZ=ON -DMPK_ASAN=ON -DMPK_UBSAN=ON -- -L fuzz ;;
	esac
done

{
	echo
	echo "$mpk_me: $(mpk_secs $((SECONDS - t0))) in all; by configuration:"
	printf '%s\n' "${summary[@]}"
} >&2
if [ ${#failed[@]} -gt 0 ]; then
	echo "=== ${#failed[@]} of ${#configs[@]} configurations FAILED: ${failed[*]}"
	exit 1
fi
echo "=== all configurations passed: ${configs[*]}"
