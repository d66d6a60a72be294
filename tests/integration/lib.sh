# SPDX-License-Identifier: MIT
# Helpers for the integration tests: real programs under real mpklink-run
# launchers, each test in a run directory of its own.
#
# Expects: MPKLINK_RUN (the launcher), ECHO_SERVER, ECHO_CLIENT.

set -u

# The launcher and the keys tool reach us in the environment, but only
# settings may go by MPKLINK_ names there: mpklink-run refuses any other
# (mpklink/config.h). Kept here, out of our programs' environments.
export -n MPKLINK_RUN MPKLINK_KEYS 2>/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-it.XXXXXX")
chmod 700 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# A free loopback port: bound nowhere now and not picked before by this
# test. Callers use $(free_port), a subshell, so the picks are kept in a
# file; two picks in one test once collided and named one port twice.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		grep -qx "$p" "$tmp/.ports" 2>/dev/null && continue
		ss -Htan "sport = :$p" | grep -q . && continue
		echo "$p" >>"$tmp/.ports"
		echo "$p"
		return
	done
	fail "no free port"
}

# env file NAME KEY=VALUE...
envfile() {
	local f="$tmp/$1.env"
	shift
	printf '%s\n' "$@" >"$f"
	echo "$f"
}

# Waits (bounded) until something listens on port $1.
wait_listen() {
	for _ in $(seq 200); do
		ss -Htln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1 after 10 s"
}

# Call right after starting a server with &: srv is its pid (killed at
# exit if still running), and waits until something listens on port $1.
server_started() {
	srv=$!
	pids+=("$srv")
	wait_listen "$1"
}

# Stops the server of server_started: SIGTERM, then waits for it.
stop_server() {
	kill -TERM "$srv"
	wait "$srv" 2>/dev/null
}

# ctl_sock PID: the name of the shim socket of the launcher PID (of our
# pid namespace) in its run directory: ctl-<pid>-<pid namespace, hex>.sock.
ctl_sock() {
	printf 'ctl-%s-%x.sock' "$1" "$(stat -L -c %i /proc/self/ns/pid)"
}

# stat_field FILE KEY: the value of KEY=... summed over the stats lines.
stat_field() {
	grep -h '^mpklink stats:' "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" |
		awk '{s += $1} END {print s + 0}'
}
