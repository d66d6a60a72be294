#!/bin/bash
# SPDX-License-Identifier: MIT
#
# podman.sh: the server and its client in two podman containers (Debian's
# podman, runc), sharing only the run directory (a volume) and, read-only,
# the host's /usr and the build tree with the programs. Each container has
# its own mount, PID, UTS and IPC namespaces, as deployed containers do,
# and joins one of the network namespaces netns_lib.sh makes (two veths on
# a bridge, TEST-NET-1; the server at 192.0.2.1): podman's own networks
# refuse 192.0.2.0/24 where the host routes it, and no other addresses may
# carry a test's traffic. The image is an empty root made here (podman
# import; no registry). Containers, image and namespaces go at exit.
#
# The C echo pair, each side under its own mpklink-run with
# MPKLINK_ENDPOINTS=192.0.2.1:PORT: the client's checksum must equal the
# same containers' plain run's, every connection a link on both sides.
#
# Needs root and podman: exit 77 (a skip) without them.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/netns_lib.sh"
command -v podman >/dev/null || { echo "podman.sh: podman is not installed; skipped" >&2; exit 77; }
command -v runc >/dev/null || fail "podman is installed but runc is not (scripts/deps.sh installs both)"

img=localhost/mpk-empty-$sfx:1
# runc and cgroupfs: crun refuses this machine's hybrid cgroups, and the
# default ulimits ask for more than a container may set here.
pod=(podman --runtime runc --cgroup-manager cgroupfs)
podman_cleanup() {
	"${pod[@]}" rm -f -t 0 "srv-$sfx" "cli-$sfx" >/dev/null 2>&1
	"${pod[@]}" rmi -f "$img" >/dev/null 2>&1
}
netns_cleanup_extra=podman_cleanup
netns_make

build=$(dirname "$(dirname "$MPKLINK_RUN")")
# An empty root: the host's /usr mounted read-only supplies the rest.
root=$tmp/root
mkdir -p "$root"/{tmp,proc,sys,dev,etc,run,usr}
chmod 1777 "$root/tmp"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$root/$l"; done
tar -C "$root" -c . | "${pod[@]}" import - "$img" >/dev/null || fail "podman import"

mkdir -m 700 "$tmp/run"
port=$(free_port)
env=$(envfile app "MPKLINK_ENDPOINTS=192.0.2.1:$port" "MPKLINK_RUNDIR=$tmp/run")
common=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096
	-v /usr:/usr:ro -v "$build:$build:ro" -v "$tmp:$tmp" "$img")

# run MODE: the pair, plain or under mpklink; the client's output to
# $tmp/MODE-client.log.
run() {
	local mode=$1 pre=() cpre=()
	if [ "$mode" = mpklink ]; then
		pre=(/usr/bin/env MPKLINK_STATS="$tmp/server.stats" "$MPKLINK_RUN" -e "$env" --)
		cpre=(/usr/bin/env MPKLINK_STATS="$tmp/client.stats" "$MPKLINK_RUN" -e "$env" --)
	fi
	"${pod[@]}" run -d --name "srv-$sfx" --network "ns:/run/netns/$nsa" "${common[@]}" \
		/bin/sh -c "exec ${pre[*]} $ECHO_SERVER --host 0.0.0.0 --port $port --mode et >$tmp/$mode-server.log 2>&1" \
		>/dev/null || fail "$mode: the server container did not start"
	for _ in $(seq 200); do grep -q "listening on" "$tmp/$mode-server.log" 2>/dev/null && break; sleep 0.05; done
	grep -q "listening on" "$tmp/$mode-server.log" || fail "$mode: the server did not listen"
	"${pod[@]}" run --name "cli-$sfx" --network "ns:/run/netns/$nsb" "${common[@]}" \
		/bin/sh -c "exec ${cpre[*]} $ECHO_CLIENT --host 192.0.2.1 --port $port --mode et --conns 8 --bytes-per-conn 2000000 --seed 7 >$tmp/$mode-client.log 2>&1" ||
		fail "$mode: the client failed: $(tail -n 5 "$tmp/$mode-client.log")"
	"${pod[@]}" rm -f "cli-$sfx" >/dev/null
	"${pod[@]}" stop -t 5 "srv-$sfx" >/dev/null
	"${pod[@]}" rm -f "srv-$sfx" >/dev/null
}

run plain
want=$(grep -o 'fnv=[0-9a-f]*' "$tmp/plain-client.log" || true)
[ -n "$want" ] || fail "the plain run printed no checksum"
run mpklink
got=$(grep -o 'fnv=[0-9a-f]*' "$tmp/mpklink-client.log" || true)
[ "$got" = "$want" ] || fail "mpklink: checksum '$got', the plain run's '$want'"
clinks=$(stat_field "$tmp/client.stats" links)
slinks=$(stat_field "$tmp/server.stats" links)
cfall=$(stat_field "$tmp/client.stats" fallbacks)
[ "$clinks" -eq 8 ] && [ "$slinks" -eq 8 ] && [ "$cfall" -eq 0 ] ||
	fail "not every connection was a link: client links=$clinks fallbacks=$cfall, server links=$slinks"
echo "podman: 8 connections between two containers, each a link, the same bytes as over TCP"
