#!/bin/bash
# SPDX-License-Identifier: MIT
# py_interop.sh SERVER CLIENT
#
# Another gRPC implementation (Python's grpcio, Debian's python3-grpcio)
# against the C-core server: py_client.py. A missing grpcio fails the test
# naming the package, never skips it.
SERVER=$1 CLIENT=$2
. "$(dirname "$0")/lib.sh"

py=/usr/bin/python3 # Debian's, for which python3-grpcio is installed
[ -x "$py" ] || fail "$py not found (Debian: python3, python3-grpcio)"
"$py" -c 'import grpc' 2>/dev/null || fail "grpcio missing for $py (Debian: python3-grpcio)"
start_server
timeout -k 5 "$client_limit" "$py" "$(dirname "$0")/py_client.py" "$addr" || fail "py_client.py failed (status $?)"
stop_server
echo "PASS: grpcio client against the C-core server"
