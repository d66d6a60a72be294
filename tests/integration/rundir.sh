#!/bin/bash
# SPDX-License-Identifier: MIT
# The run directory cannot be swapped under a launcher and its program.
#  1. Every directory on its path is checked as ssh checks its key paths:
#     owned by root or us, writable by nobody else unless sticky (/tmp).
#     A world- or group-writable one without the sticky bit is refused,
#     naming it, exit 2, nothing started and nothing created; --check says
#     UNUSABLE. Sticky is fine, and so is a link of ours on the way.
#  2. The swap itself (what a world-writable parent allowed another user;
#     done here by us, which the checks cannot stop): with a server and a
#     client program running, the run directory is renamed and another one
#     put in its place, holding a fake ctl-<client launcher pid>-<pidns>.sock and a
#     fake tcp-<port>.sock. Then:
#     - the client's launcher still reaches the real server (it connects
#       through the directory it checked, held open): a second link is
#       made, and the fake rendezvous gets not a byte;
#     - its rendezvous for a port the program listens on only now is made
#       in the directory it checked, not the new one;
#     - a process of the program that opens its first control connection
#       now (a forked child) finds the fake ctl socket, sees by SO_PEERCRED
#       that its launcher is not the one listening, and sends it nothing:
#       that connection stays plain TCP and still works.
. "$(dirname "$0")/lib.sh"

started=$tmp/started
# refused NAME PATTERN RUNDIR: exit 2, the program not started, PATTERN said
refused() {
	rm -f "$started"
	MPKLINK_RUNDIR=$3 "$MPKLINK_RUN" -- sh -c "touch $started" >"$tmp/$1.log" 2>&1
	local rc=$?
	[ $rc -eq 2 ] || fail "$1: exit $rc, expected 2: $(cat "$tmp/$1.log")"
	[ ! -e "$started" ] || fail "$1: the program was started"
	grep -q -- "$2" "$tmp/$1.log" || fail "$1: no \"$2\": $(cat "$tmp/$1.log")"
	MPKLINK_RUNDIR=$3 "$MPKLINK_RUN" --check >"$tmp/$1.check" 2>&1
	rc=$?
	[ $rc -ne 0 ] && grep -q "UNUSABLE:   run directory: .*$2" "$tmp/$1.check" ||
		fail "$1: --check exit $rc: $(cat "$tmp/$1.check")"
}
accepted() {
	rm -f "$started"
	MPKLINK_RUNDIR=$2 "$MPKLINK_RUN" -- sh -c "touch $started" >"$tmp/$1.log" 2>&1 ||
		fail "$1: refused: $(cat "$tmp/$1.log")"
	[ -e "$started" ] || fail "$1: the program did not start"
}

# --- 1. the path
mkdir -m 777 "$tmp/ww" && chmod o+w,g+w "$tmp/ww"
refused world-writable "$tmp/ww (on its path) is writable by others without the sticky bit" "$tmp/ww/run"
[ ! -e "$tmp/ww/run" ] || fail "world-writable: the run directory was created under it"
mkdir -p "$tmp/ww/deep" && chmod 755 "$tmp/ww/deep"
refused world-writable-above "$tmp/ww (on its path) is writable by others" "$tmp/ww/deep/run"
mkdir -m 700 "$tmp/gw" && chmod g+w "$tmp/gw"
refused group-writable "$tmp/gw (on its path) is writable by its group without the sticky bit" "$tmp/gw/run"
chmod 1777 "$tmp/ww"
accepted sticky "$tmp/ww/run"
ln -s "$tmp/ww" "$tmp/ours"
accepted our-link "$tmp/ours/run2"
[ -d "$tmp/ww/run2" ] || fail "our-link: the run directory is not where the link leads"
others="not checked (needs root to own files as another user)"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	mkdir -m 755 "$tmp/theirs"
	chown nobody "$tmp/theirs"
	refused foreign-parent "$tmp/theirs (on its path) is owned by uid $(id -u nobody)" "$tmp/theirs/run"
	ln -s "$tmp/ww" "$tmp/theirlink"
	chown -h nobody "$tmp/theirlink"
	refused foreign-link "$tmp/theirlink (on its path) is a symbolic link owned by uid" "$tmp/theirlink/run"
	others="refused (a parent and a link of another uid)"
fi

# --- 2. the swap
command -v python3 >/dev/null || fail "python3 is needed (scripts/deps.sh installs it)"
mkdir -m 700 "$tmp/top"
R=$tmp/top/run
port=$(free_port)
lp1=$(free_port)
lp2=$(free_port)
while [ "$lp2" = "$lp1" ] || [ "$lp2" = "$port" ]; do lp2=$(free_port); done
senv=$(envfile srv "MPKLINK_RUNDIR=$R" "MPKLINK_ENDPOINTS=127.0.0.1:$port")
cenv=$(envfile cli "MPKLINK_RUNDIR=$R" "MPKLINK_LOG=info" \
	"MPKLINK_ENDPOINTS=127.0.0.1:$port,127.0.0.1:$lp1,127.0.0.1:$lp2")

"$MPKLINK_RUN" -e "$senv" -- "$ECHO_SERVER" --port "$port" --mode et >"$tmp/server.log" 2>&1 &
pids+=($!)
wait_listen "$port"

cat >"$tmp/prog.py" <<'PY'
import os, socket, sys, time
port, lp1, lp2, d = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def wait_for(name):
    for _ in range(2000):
        if os.path.exists(os.path.join(d, name)):
            return
        time.sleep(0.01)
    sys.exit("no " + name)

def echo(tag):
    s = socket.create_connection(("127.0.0.1", port))
    msg = (tag * 1000).encode()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(65536)
        if not b:
            sys.exit(tag + ": end of stream after %d bytes" % len(got))
        got += b
    if got != msg:
        sys.exit(tag + ": wrong echo")
    s.close()

def listen(p):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", p))
    l.listen()
    return l

l1 = listen(lp1)        # the first control connection: LISTEN's
echo("a")               # a LINKS's
open(os.path.join(d, "ready"), "w").close()
wait_for("go")
l2 = listen(lp2)        # on the connection opened before the swap
open(os.path.join(d, "listened"), "w").close()
wait_for("looked")
echo("b")               # likewise
pid = os.fork()
if pid == 0:
    echo("c")           # a new process: a new control connection, now
    sys.exit(0)
_, st = os.waitpid(pid, 0)
if st != 0:
    sys.exit("the child failed: %d" % st)
print("echoes ok")
PY
# No timeout in between: the fake needs the launcher's own pid ($!).
env MPKLINK_STATS="$tmp/client.stats" "$MPKLINK_RUN" -e "$cenv" -- \
	python3 "$tmp/prog.py" "$port" "$lp1" "$lp2" "$tmp" >"$tmp/client.log" 2>&1 &
client=$!
pids+=($client)
for _ in $(seq 1000); do [ -e "$tmp/ready" ] && break; sleep 0.02; done
[ -e "$tmp/ready" ] || fail "the client program never got ready: $(cat "$tmp/client.log")"

# The swap, and the fakes in the new directory.
mv "$R" "$R.old"
mkdir -m 700 "$R"
cat >"$tmp/fake.py" <<'PY'
import os, select, socket, sys
log = open(sys.argv[1], "a", buffering=1)
ls = []
for p in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(p)
    s.listen()
    ls.append(s)
log.write("ready\n")
conns = []
while True:
    r, _, _ = select.select(ls + conns, [], [])
    for s in r:
        if s in ls:
            c, _ = s.accept()
            conns.append(c)
            log.write("connection on %s\n" % s.getsockname())
        else:
            b = s.recv(4096)
            if b:
                log.write("got %d bytes\n" % len(b))
            # Never an answer: the end of the connection (a wait for one
            # would hang the client before the test could say what went
            # wrong).
            conns.remove(s)
            s.close()
PY
python3 "$tmp/fake.py" "$tmp/fake.log" "$R/$(ctl_sock "$client")" "$R/tcp-$port.sock" &
pids+=($!)
for _ in $(seq 500); do grep -q ready "$tmp/fake.log" 2>/dev/null && break; sleep 0.02; done
grep -q ready "$tmp/fake.log" 2>/dev/null || fail "the fake sockets did not start"
touch "$tmp/go"
for _ in $(seq 1000); do [ -e "$tmp/listened" ] && break; sleep 0.02; done
[ -e "$tmp/listened" ] || fail "the client program did not listen again: $(cat "$tmp/client.log")"
[ -S "$R.old/tcp-$lp2.sock" ] ||
	fail "the rendezvous for a port listened on after the swap is not in the checked directory"
[ ! -e "$R/tcp-$lp2.sock" ] || fail "the rendezvous was made in the swapped-in directory"
touch "$tmp/looked"
wait "$client"
rc=$?
[ $rc -eq 0 ] || fail "the client program: exit $rc: $(cat "$tmp/client.log")"
grep -q "echoes ok" "$tmp/client.log" || fail "the client program did not finish"
grep -q "got [0-9]* bytes" "$tmp/fake.log" &&
	fail "a fake socket in the swapped-in directory was sent something: $(cat "$tmp/fake.log")"
grep -q "is not our launcher's socket" "$tmp/client.log" ||
	fail "the child did not refuse the fake control socket: $(cat "$tmp/client.log")"
# The program's own line (a forked child's counts start from its parent's).
grep -q "^mpklink stats: pid=[0-9]* links=2 fallbacks=0 " "$tmp/client.stats" ||
	fail "not two links (one before the swap, one after): $(cat "$tmp/client.stats")"
grep -q "^mpklink stats: pid=[0-9]* links=2 fallbacks=1 " "$tmp/client.stats" ||
	fail "the child's connection was not plain TCP: $(cat "$tmp/client.stats")"
echo "PASS: unsafe directories on the path refused (others' parents: $others); after a swap" \
	"the launcher kept to the directory it checked and the shim refused a control socket" \
	"not its launcher's"
