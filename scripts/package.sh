#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the .deb: a Release build without the tests in a directory of its
# own, then CPack. The last line printed is the .deb's path.
# Usage: scripts/package.sh [CMAKE_ARG...]      (e.g. -DMPK_WERROR=ON)
# Build directory: $MPK_PKG_DIR, else $MPK_BUILD_ROOT/pkg, else
# /tmp/mpklink-pkg. Installs what the build needs when missing
# (scripts/deps.sh build).
set -eu
cd "$(dirname "$0")/.."
src=$PWD

if [ -n "${MPK_PKG_DIR:-}" ]; then
	dir=$MPK_PKG_DIR
elif [ -n "${MPK_BUILD_ROOT:-}" ]; then
	dir=$MPK_BUILD_ROOT/pkg
else
	dir=/tmp/mpklink-pkg
fi
case $dir in
/*) ;;
*) dir=$src/$dir ;;
esac

scripts/deps.sh build >&2
# The Depends line comes from dpkg-shlibdeps (dpkg-dev, in build-essential).
command -v dpkg-shlibdeps >/dev/null ||
	{ echo "package.sh: dpkg-shlibdeps not found (Debian: dpkg-dev)" >&2; exit 1; }
# CPack's SHLIBDEPS asks `file` which files are ELF ("CPackDeb: file
# utility is not available" otherwise).
command -v file >/dev/null ||
	{ echo "package.sh: the 'file' command not found (Debian: file)" >&2; exit 1; }

# /usr: GNUInstallDirs then picks Debian's multiarch libdir, and the
# launcher's built-in fallback path is the packaged one.
mkdir -p "$dir"
echo "package.sh: configuring $dir" >&2
cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DMPK_TESTS=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr "$@" >"$dir/package-configure.log" 2>&1 ||
	{ cat "$dir/package-configure.log" >&2; echo "package.sh: cmake configure of $dir failed" >&2; exit 1; }
echo "package.sh: building" >&2
cmake --build "$dir" -j "$(nproc)" >"$dir/package-build.log" 2>&1 ||
	{ tail -n 60 "$dir/package-build.log" >&2; echo "package.sh: build in $dir failed (log: $dir/package-build.log)" >&2; exit 1; }
rm -f "$dir"/mpklink_*.deb
echo "package.sh: cpack" >&2
(cd "$dir" && cpack -G DEB) >"$dir/package-cpack.log" 2>&1 ||
	{ cat "$dir/package-cpack.log" >&2; echo "package.sh: cpack in $dir failed" >&2; exit 1; }

debs=("$dir"/mpklink_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
	echo "package.sh: expected one mpklink_*.deb in $dir, found: ${debs[*]}" >&2
	exit 1
fi
echo "${debs[0]}"
