#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mac.sh: MPKLINK_INTEGRITY=mac between two signed programs (Python socket
# programs under their own mpklink-run): a frame changed in the shared ring
# while its reader is stopped is refused (the reader gets ECONNRESET) and
# none of its bytes are delivered. A control run, identical but for the
# change, delivers the same message: the refusal is the MAC's doing.
# Also: mac without an identity is refused at start (exit 2).
. "$(dirname "$0")/lib.sh"

keys=${MPKLINK_KEYS:?}
py=/usr/bin/python3
"$keys" init --dir "$tmp/ca" >/dev/null || fail "mpklink-keys init"
"$keys" issue --dir "$tmp/ca" pysrv --binary "$py" >/dev/null || fail "issue pysrv"
"$keys" issue --dir "$tmp/ca" pycli --binary "$py" >/dev/null || fail "issue pycli"

server_py='
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
while True:
    try:
        d = c.recv(100)
    except OSError as e:
        print("ERR", type(e).__name__, flush=True)
        break
    if not d:
        print("EOF", flush=True)
        break
    print("GOT", d.decode(errors="replace"), flush=True)
'
client_py='
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello-1")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
s.sendall(b"hello-2")
print("sent", flush=True)
time.sleep(3)
'

# run TAMPER(0|1): one exchange; prints the server's lines into $tmp/srv.log
run() {
	local tamper=$1 port go=$tmp/go.$1
	port=$(free_port)
	senv=$(envfile srv$tamper "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_IDENTITY=$tmp/ca/pysrv" "MPKLINK_TRUST=$tmp/ca/ca.pub" \
		"MPKLINK_ALLOW=$port:pycli" "MPKLINK_INTEGRITY=mac")
	cenv=$(envfile cli$tamper "MPKLINK_ENDPOINTS=127.0.0.1:$port=pysrv" "MPKLINK_RUNDIR=$tmp/run" \
		"MPKLINK_IDENTITY=$tmp/ca/pycli" "MPKLINK_TRUST=$tmp/ca/ca.pub" "MPKLINK_INTEGRITY=mac")
	MPKLINK_STATS=$tmp/srv$tamper.stats "$MPKLINK_RUN" -e "$senv" -- "$py" -c "$server_py" "$port" \
		>"$tmp/srv$tamper.log" 2>&1 &
	local launcher=$!
	pids+=($launcher)
	wait_listen "$port"
	local spid
	spid=$(pgrep -P "$launcher" -n) || fail "no server process"
	MPKLINK_STATS=$tmp/cli$tamper.stats "$MPKLINK_RUN" -e "$cenv" -- "$py" -c "$client_py" \
		"$port" "$go" >"$tmp/cli$tamper.log" 2>&1 &
	local client=$!
	pids+=($client)
	for _ in $(seq 300); do grep -q "GOT hello-1" "$tmp/srv$tamper.log" && break; sleep 0.02; done
	grep -q "GOT hello-1" "$tmp/srv$tamper.log" || fail "run $tamper: the first message never arrived"
	kill -STOP "$spid"
	touch "$go"
	for _ in $(seq 300); do grep -q sent "$tmp/cli$tamper.log" && break; sleep 0.02; done
	grep -q sent "$tmp/cli$tamper.log" || fail "run $tamper: the client never sent"
	if [ "$tamper" = 1 ]; then
		# The link's memory, through the server launcher's own fd of it:
		# flip a byte of the frame the stopped server has not read yet.
		mfd=$(ls -l "/proc/$launcher/fd" | awk '/memfd:mpklink-link/ {print $9; exit}')
		[ -n "$mfd" ] || fail "no link memfd in the server's launcher"
		"$py" - "/proc/$launcher/fd/$mfd" <<'EOF' || fail "could not change the frame"
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0)
ring_bytes = struct.unpack_from("<Q", m, 16)[0]
ctl = 64 + 256 * 1                    # ring 1: the client's (side 1) to the server
tail, head = struct.unpack_from("<Q", m, ctl)[0], struct.unpack_from("<Q", m, ctl + 64)[0]
assert tail - head == 8 + 7 + 16, f"expected one unread frame, got {tail - head} bytes"
pos = 4096 + ring_bytes + ((head + 8 + 3) % ring_bytes)   # a payload byte
m[pos] ^= 0x20
print("changed byte", head + 11)
EOF
	fi
	kill -CONT "$spid"
	wait "$client"
	wait "$launcher"
}

run 0
grep -q "GOT hello-2" "$tmp/srv0.log" || fail "control: the second message did not arrive: $(cat "$tmp/srv0.log")"
[ "$(stat_field "$tmp/srv0.stats" links)" -eq 1 ] || fail "control: no link"
[ "$(stat_field "$tmp/srv0.stats" mac_links)" -eq 1 ] || fail "control: the link carries no MACs"
run 1
grep -q "ERR ConnectionResetError" "$tmp/srv1.log" ||
	fail "a changed frame was not refused: $(cat "$tmp/srv1.log")"
[ "$(grep -c '^GOT' "$tmp/srv1.log")" -eq 1 ] ||
	fail "bytes of the changed frame were delivered: $(cat "$tmp/srv1.log")"

# mac needs an identity (the key is the handshake's).
env=$(envfile nokey "MPKLINK_INTEGRITY=mac")
"$MPKLINK_RUN" -e "$env" -- /bin/true 2>"$tmp/nokey.log"
rc=$?
[ $rc -eq 2 ] || fail "MPKLINK_INTEGRITY=mac without an identity: exit $rc, expected 2"
grep -q "needs MPKLINK_IDENTITY" "$tmp/nokey.log" || fail "no line saying why: $(cat "$tmp/nokey.log")"
echo "PASS: under MPKLINK_INTEGRITY=mac a changed ring frame was refused (ECONNRESET, nothing" \
	"delivered); unchanged, the same message arrived"
