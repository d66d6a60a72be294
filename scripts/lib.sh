# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by scripts/*.sh:
#   - one line per step on stderr, ended by the time the step took, its
#     output in a log file whose last lines and path are shown when it fails;
#   - under sudo, what the script made in the checkout given back to the
#     user who ran sudo, so that a later run without sudo can write there.

# The name lines start with.
mpk_me=${0##*/}

# Seconds as "42 s" or "3 min 07 s".
mpk_secs() {
	if [ "$1" -lt 90 ]; then
		printf '%d s' "$1"
	else
		printf '%d min %02d s' $(($1 / 60)) $(($1 % 60))
	fi
}

# mpk_step LOG WHAT CMD...: prints "ME: WHAT ... ", runs CMD with its output
# appended to LOG, and ends the line with the time CMD took. When CMD fails:
# "FAILED after ...", the last 40 lines of LOG and its path. CMD's status.
mpk_step() {
	local log=$1 what=$2 t=$SECONDS st=0
	shift 2
	printf '%s: %s ... ' "$mpk_me" "$what" >&2
	"$@" >>"$log" 2>&1 </dev/null || st=$?
	if [ "$st" -eq 0 ]; then
		mpk_secs $((SECONDS - t)) >&2
		echo >&2
		return 0
	fi
	printf 'FAILED after %s (exit %d); the end of %s:\n' "$(mpk_secs $((SECONDS - t)))" "$st" "$log" >&2
	tail -n 40 "$log" | sed 's/^/    | /' >&2
	echo "$mpk_me: $what failed; the whole output is in $log" >&2
	return "$st"
}

# mpk_give_back DIR: when the script ends, DIR (or, when DIR does not exist
# yet, its topmost ancestor that does not: what `mkdir -p DIR` will make) is
# chown'ed back to the user who ran `sudo`. Nothing without sudo.
mpk_given=()
mpk_give_back() {
	local d=$1 top=$1
	while [ ! -e "$d" ]; do
		top=$d
		d=$(dirname "$d")
	done
	mpk_given+=("$top")
}

mpk_give_back_now() {
	local p
	[ "$(id -u)" -eq 0 ] && [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ] || return 0
	for p in "${mpk_given[@]}"; do
		[ -e "$p" ] && chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" -- "$p"
	done
	return 0
}
