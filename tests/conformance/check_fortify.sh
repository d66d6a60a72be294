#!/bin/sh
# SPDX-License-Identifier: MIT
# check_fortify.sh BINARY SYMBOL...: BINARY imports every SYMBOL (the
# fortified scenarios must really go through glibc's _chk entry points).
bin=$1
shift
syms=$(nm -D --undefined-only "$bin" | awk '{print $NF}' | sed 's/@.*//')
rc=0
for s in "$@"; do
	if echo "$syms" | grep -qx "$s"; then
		echo "fortify: $(basename "$bin") calls $s"
	else
		echo "fortify: FAIL: $(basename "$bin") does not call $s"
		rc=1
	fi
done
exit $rc
