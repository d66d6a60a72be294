#!/bin/bash
# SPDX-License-Identifier: MIT
# redis_check.sh: runs an ordinary redis-server (no persistence) on a free port
# and redis_client.sh against it, through run_pair.sh, which honours
# MPK_PORT, MPK_SERVER_WRAP and MPK_CLIENT_WRAP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v redis-server >/dev/null || { echo "redis_check.sh: 'redis-server' not found: install the Debian package redis-server" >&2; exit 1; }
exec "$here/run_pair.sh" \
	redis-server --port '{PORT}' --save '' --appendonly no --daemonize no \
	-- bash "$here/redis_client.sh" '{PORT}'
