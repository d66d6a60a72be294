#!/bin/bash
# SPDX-License-Identifier: MIT
# A launcher that takes a HELLO and never answers stalls only the connect
# that asked it: connect_stall.c's second connection, made meanwhile to a
# healthy port, and a third from a child forked meanwhile, are upgraded
# (MPKLINK_STATS) and done before the stalled one gives up. The launcher's
# LINKS workers must not queue behind each other, nor the shim's control
# calls behind one another (or a child behind a lock its parent held).
. "$(dirname "$0")/lib.sh"

a=$(free_port)
b=$(free_port)
mkdir -m 700 "$tmp/run"
# The stalling launcher: takes the HELLO, says so, answers nothing.
/usr/bin/python3 - "$tmp/run/tcp-$a.sock" "$tmp/hello" <<'PY' >"$tmp/stall.log" 2>&1 &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(4)
c, _ = s.accept()
c.recv(4096)
open(sys.argv[2], "w").close()
time.sleep(60)
PY
pids+=($!)
for _ in $(seq 200); do [ -S "$tmp/run/tcp-$a.sock" ] && break; sleep 0.05; done
[ -S "$tmp/run/tcp-$a.sock" ] || fail "the stalling launcher did not start"
env=$(envfile app "MPKLINK_ENDPOINTS=127.0.0.1:$a,127.0.0.1:$b" "MPKLINK_RUNDIR=$tmp/run")
MPKLINK_STATS=$tmp/s.stats "$MPKLINK_RUN" -e "$env" -- "$CONNECT_STALL" "$a" "$b" "$tmp/hello" \
	>"$tmp/app.log" 2>&1 || fail "$(cat "$tmp/app.log")"
# Both ends of the process's own connection to port $b, and the server's
# end of the child's (the child leaves by _exit: no stats line of its own).
n=$(stat_field "$tmp/s.stats" links)
[ "$n" -eq 3 ] || fail "links=$n, not 3: the connections to port $b were not all upgraded"
echo "PASS: $(grep connect_stall: "$tmp/app.log")"
