#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages mpklink needs, when missing.
# Usage: scripts/deps.sh [build|bench|test|all]   (default: all)
#   build   the build (scripts/package.sh)
#   bench   the build and the main job (scripts/bench.sh): gRPC C++ besides
#   test    everything the tests run besides (scripts/test.sh); all: the same
# As root it runs apt-get, as a user sudo apt-get; without either it says
# what to run. apt's output goes to a log file named on its line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
set_name=${1:-all}

# dpkg-dev: dpkg-shlibdeps, which writes the .deb's Depends (package.sh);
# file: CPack's SHLIBDEPS runs it on every binary (tests/package).
build_pkgs=(build-essential cmake pkg-config libsodium-dev libssl-dev
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler dpkg-dev file)
# mpklink-bench-grpcxx: compare's C++ rows and its in-process floor.
bench_pkgs=(libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc)
test_pkgs=(libcriterion-dev clang libclang-rt-14-dev
	qemu-system-x86 linux-image-amd64 busybox-static cpio
	python3 python3-grpcio python3-protobuf redis-server redis-tools nodejs iproute2 procps
	strace debootstrap liburing-dev nginx-light curl podman runc)

case $set_name in
build) want=("${build_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
test | all) want=("${build_pkgs[@]}" "${bench_pkgs[@]}" "${test_pkgs[@]}") ;;
*)
	echo "deps.sh: unknown set '$set_name' (build, bench, test or all)" >&2
	exit 2
	;;
esac
# npm comes with nodesource's nodejs (the machine's); Debian's nodejs needs
# Debian's npm, which conflicts with nodesource's. Ask only when it is absent.
case $set_name in test | all) command -v npm >/dev/null || want+=(npm) ;; esac

declare -A seen=()
missing=()
for p in "${want[@]}"; do
	[ -z "${seen[$p]:-}" ] || continue
	seen[$p]=1
	[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ ${#missing[@]} -eq 1 ]; then
	what="1 Debian package"
else
	what="${#missing[@]} Debian packages"
fi

# Root, or a user sudo lets in (asking for the password only on a terminal).
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null &&
		{ sudo -n true 2>/dev/null || { [ -t 0 ] && sudo -v; }; }; then
		sudo=(sudo)
	else
		# The commands as the user typed them: MPK_DEPS_SELF and
		# MPK_DEPS_RERUN come from bench.sh and test.sh.
		self=${MPK_DEPS_SELF:-$0}
		{
			echo "deps.sh: $what to install:"
			echo "${missing[*]}" | fold -s -w 72 | sed 's/^/    /; s/ *$//'
			if command -v sudo >/dev/null; then
				echo "deps.sh: installing needs root, and sudo did not let $(id -un) in. Run"
				echo "    sudo $self $set_name"
				echo "(or, as root, $here/deps.sh $set_name), then rerun ${MPK_DEPS_RERUN:-your command}."
			else
				echo "deps.sh: installing needs root (there is no sudo here). As root, run"
				echo "    $here/deps.sh $set_name"
				echo "then rerun ${MPK_DEPS_RERUN:-your command}."
			fi
		} >&2
		exit 1
	fi
fi

log=$(mktemp "${TMPDIR:-/tmp}/mpklink-deps.XXXXXX.log")
{
	echo "deps.sh $set_name: installing ${#missing[@]} packages:"
	echo "${missing[*]}"
	echo
} >"$log"
mpk_step "$log" "apt-get update (log: $log)" "${sudo[@]}" apt-get update
mpk_step "$log" "installing $what for '$set_name' and what they need (log: $log)" \
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends "${missing[@]}"
n=$(sed -n 's/.* \([0-9][0-9]*\) newly installed.*/\1/p' "$log" | tail -n 1)
echo "deps.sh: ${n:-?} packages installed in all" >&2
