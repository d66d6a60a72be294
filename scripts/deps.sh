#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages mpklink builds and tests with, when missing.
# Usage: scripts/deps.sh [build|test|all]   (default: all)
set -euo pipefail

# dpkg-dev: dpkg-shlibdeps, which writes the .deb's Depends (package.sh).
build_pkgs=(build-essential cmake pkg-config libsodium-dev
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler dpkg-dev)
test_pkgs=(libcriterion-dev clang libclang-rt-14-dev
	qemu-system-x86 linux-image-amd64 busybox-static cpio
	libgrpc++-dev libgrpc-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
	python3 python3-grpcio python3-protobuf redis-server redis-tools nodejs iproute2 procps
	strace debootstrap liburing-dev nginx-light curl)

case "${1:-all}" in
build) want=("${build_pkgs[@]}") ;;
test | all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "deps.sh: unknown set '$1' (build, test or all)" >&2; exit 2 ;;
esac

missing=()
# npm comes with nodesource's nodejs (the machine's); Debian's nodejs needs
# Debian's npm, which conflicts with nodesource's. Ask only when it is absent.
if [ "${1:-all}" != build ] && ! command -v npm >/dev/null; then
	want+=(npm)
fi
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "deps.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
