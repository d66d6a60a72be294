# SPDX-License-Identifier: MIT
# Two "containers'" networks for netns.sh and podman.sh: namespaces $nsa
# (the server, 192.0.2.1) and $nsb (the client, 192.0.2.2), each with its
# own loopback and an eth0 veth into a bridge in a third namespace $nsr.
# TEST-NET-1 addresses, assigned only inside these namespaces; nothing is
# routed anywhere else. netns_make makes them and arranges their removal
# at exit (with the test's processes and $tmp; KEEP=1 keeps $tmp).
# Sourced after lib.sh. Needs root: exits 77 (a skip) without it.

[ "$(id -u)" -eq 0 ] || { echo "$(basename "$0"): needs root (ip netns); skipped" >&2; exit 77; }
command -v ip >/dev/null || fail "ip (iproute2) not found"

sfx=$(printf '%04x' $((RANDOM % 65536)))
nsa=mpk-a-$sfx nsb=mpk-b-$sfx nsr=mpk-r-$sfx
netns_cleanup_extra=:
netns_cleanup() {
	$netns_cleanup_extra
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in "$nsa" "$nsb" "$nsr"; do ip netns del "$n" 2>/dev/null; done
	[ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}

netns_make() {
	local ns side
	trap netns_cleanup EXIT
	ip netns add "$nsa" && ip netns add "$nsb" && ip netns add "$nsr" || fail "ip netns add"
	# No STP: the ports forward at once.
	ip -n "$nsr" link add br0 type bridge forward_delay 0 stp_state 0 || fail "bridge"
	ip -n "$nsr" link set br0 up
	for side in a b; do
		ns=mpk-$side-$sfx
		ip -n "$nsr" link add "p$side" type veth peer name eth0 netns "$ns" || fail "veth $side"
		ip -n "$nsr" link set "p$side" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" link set eth0 up
	done
	ip -n "$nsa" addr add 192.0.2.1/24 dev eth0
	ip -n "$nsb" addr add 192.0.2.2/24 dev eth0
}
