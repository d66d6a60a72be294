#!/bin/bash
# SPDX-License-Identifier: MIT
# MPKLINK_FALLBACK=deny on a server: its port takes links only. A server
# with an identity, MPKLINK_ALLOW=PORT:cli and deny; one after another:
#  - a client under mpklink without an identity,
#  - a client with a CA-signed identity not in ALLOW,
#  - a client not under mpklink at all,
#  - a plain client that sends a link's preamble (a guessed token),
#  - a client under mpklink that gets a link but then sends no preamble
#    (its first byte is not the preamble's 0, as a plain client's),
# each is reset before the server program reads a byte: the program's
# first recv on it fails with ECONNRESET (before, all were served over
# plain TCP, the refused identity included), and the client sees the
# reset. The allowed client still links and is echoed.
. "$(dirname "$0")/lib.sh"

keys=${MPKLINK_KEYS:?}
py=/usr/bin/python3
[ -x "$py" ] || fail "$py is needed (scripts/deps.sh installs it)"
port=$(free_port)
ca=$tmp/ca
"$keys" init --dir "$ca" >/dev/null || fail "mpklink-keys init"
for n in srv cli other; do
	"$keys" issue --dir "$ca" "$n" --binary "$py" >/dev/null || fail "issue $n"
done
common=("MPKLINK_RUNDIR=$tmp/run" "MPKLINK_TRUST=$ca/ca.pub")
senv=$(envfile srv "MPKLINK_ENDPOINTS=127.0.0.1:$port" "${common[@]}" \
	"MPKLINK_IDENTITY=$ca/srv" "MPKLINK_ALLOW=$port:cli" "MPKLINK_FALLBACK=deny")

# The server program: what its first recv on each connection returned.
cat >"$tmp/server.py" <<'PY'
import socket, sys
log = open(sys.argv[2], "a", buffering=1)
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen()
print("listening", flush=True)
while True:
    c, _ = l.accept()
    try:
        b = c.recv(4096)
        log.write("read %d bytes\n" % len(b))
        if b:
            c.sendall(b)
    except ConnectionResetError:
        log.write("reset\n")
    except OSError as e:
        log.write("error %s\n" % e)
    c.close()
PY
# A client: sends its bytes, says whether they came back or the server
# reset the connection.
cat >"$tmp/client.py" <<'PY'
import socket, sys
port, data = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
try:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        b = s.recv(4096)
        if not b:
            break
        got += b
    print("echoed" if got == data else "closed after %d bytes" % len(got))
except (ConnectionResetError, BrokenPipeError):
    print("reset")
PY

"$MPKLINK_RUN" -e "$senv" -- "$py" "$tmp/server.py" "$port" "$tmp/server.seen" \
	>"$tmp/server.log" 2>&1 &
pids+=($!)
wait_listen "$port"

hello=$(printf 'hello, server' | od -An -tx1 | tr -d ' \n')
n=0
# one NAME WANT CMD...: the client's verdict is WANT, and the server
# program's first recv said what WANT implies.
one() {
	local name=$1 want=$2 got seen
	shift 2
	n=$((n + 1))
	got=$("$@" 2>"$tmp/$name.log" | tail -n 1)
	[ "$got" = "$want" ] || fail "$name: the client says \"$got\", expected \"$want\": $(cat "$tmp/$name.log")"
	for _ in $(seq 500); do [ "$(wc -l <"$tmp/server.seen" 2>/dev/null)" -ge $n ] && break; sleep 0.02; done
	seen=$(sed -n "${n}p" "$tmp/server.seen")
	case $want in
	reset) [ "$seen" = reset ] || fail "$name: the server program's first recv: \"$seen\", expected ECONNRESET (not a byte)" ;;
	echoed) [ "$seen" = "read 13 bytes" ] || fail "$name: the server program's first recv: \"$seen\"" ;;
	esac
}
noid=$(envfile noid "MPKLINK_ENDPOINTS=127.0.0.1:$port" "MPKLINK_RUNDIR=$tmp/run")
one no-identity reset "$MPKLINK_RUN" -e "$noid" -- "$py" "$tmp/client.py" "$port" "$hello"
other=$(envfile other "MPKLINK_ENDPOINTS=127.0.0.1:$port=srv" "${common[@]}" "MPKLINK_IDENTITY=$ca/other")
one not-allowed reset "$MPKLINK_RUN" -e "$other" -- "$py" "$tmp/client.py" "$port" "$hello"
grep -q 'client "other" is not allowed on port' "$tmp/server.log" ||
	fail "not-allowed: the server's launcher did not say why: $(tail -n 3 "$tmp/server.log")"
one plain reset "$py" "$tmp/client.py" "$port" "$hello"
preamble=$(printf '\0MPKLNK\1' | od -An -tx1 | tr -d ' \n')00112233445566778899aabbccddeeff
one guessed-preamble reset "$py" "$tmp/client.py" "$port" "$preamble$hello"
grep -q "is no link .*; reset, as MPKLINK_FALLBACK=deny says" "$tmp/server.log" ||
	fail "the server's shim did not say why it reset: $(tail -n 3 "$tmp/server.log")"
cli=$(envfile cli "MPKLINK_ENDPOINTS=127.0.0.1:$port=srv" "${common[@]}" "MPKLINK_IDENTITY=$ca/cli")
# An allowed client whose link is made, but whose first byte on the stream
# is not the preamble: a raw write (past the shim) before the connect
# completes, as a plain client sharing its port number would send.
cat >"$tmp/nopreamble.py" <<'PY'
import ctypes, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket()
s.setblocking(False)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except BlockingIOError:
    pass
else:
    sys.exit("the connect completed at once: the preamble went first")
for _ in range(2000):
    if libc.syscall(1, s.fileno(), b"x", 1) == 1:  # SYS_write, raw
        break
    time.sleep(0.005)
else:
    sys.exit("the raw write never went")
s.settimeout(30)
try:
    print("got %r" % s.recv(4096))
except OSError as e:
    print("reset" if isinstance(e, ConnectionResetError) else "error %s" % e)
PY
one no-preamble reset "$MPKLINK_RUN" -e "$cli" -- "$py" "$tmp/nopreamble.py" "$port"
grep -q "the client sent no link preamble; reset, as MPKLINK_FALLBACK=deny says" "$tmp/server.log" ||
	fail "no-preamble: the server's shim did not say why it reset: $(tail -n 3 "$tmp/server.log")"
one allowed echoed env MPKLINK_STATS="$tmp/cli.stats" "$MPKLINK_RUN" -e "$cli" -- "$py" "$tmp/client.py" "$port" "$hello"
[ "$(stat_field "$tmp/cli.stats" links)" -eq 1 ] || fail "allowed: no link: $(cat "$tmp/cli.stats")"
echo "PASS: under deny the server reset every connection that was no link before its program" \
	"read a byte (no identity, not allowed, plain, guessed preamble, no preamble); the allowed" \
	"client linked"
