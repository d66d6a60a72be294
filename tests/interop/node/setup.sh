#!/bin/bash
# SPDX-License-Identifier: MIT
# setup.sh DIR: installs this directory's locked npm dependencies into
# DIR/node_modules (npm ci), unless DIR already holds an install of the same
# package-lock.json. Then: NODE_PATH=DIR/node_modules node client.js ...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: setup.sh DIR" >&2; exit 2; }
dir=$1
for t in node npm; do
	command -v $t >/dev/null || {
		echo "setup.sh: '$t' not found: install the Debian package nodejs (and npm where nodejs does not ship it)" >&2
		exit 1
	}
done
mkdir -p "$dir"
stamp="$dir/.lock.sha256"
want=$(sha256sum "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -d "$dir/node_modules/@grpc/grpc-js" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "setup.sh: $dir/node_modules is up to date"
	exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
rm -f "$stamp"
echo "setup.sh: npm ci in $dir (node $(node --version), npm $(npm --version))"
(cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
