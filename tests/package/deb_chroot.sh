#!/bin/bash
# SPDX-License-Identifier: MIT
# deb_chroot.sh: the .deb on a clean Debian 12, as a user gets it.
#
# Builds the package (scripts/package.sh), checks its control fields and
# contents, makes a bare Debian 12 root (debootstrap --variant=minbase: none
# of the build dependencies), installs the package there with apt from the
# mirror (so that apt resolves the Depends line: that is what proves it
# complete), runs user_checks.sh in it as an ordinary user, then removes the
# package and requires that it left no file behind.
#
# Never skips: without root, or when the mirror cannot be reached, it fails.
#
# Environment:
#   MPK_DEB                 the .deb to test (default: built by scripts/package.sh)
#   MPK_PKG_DIR             package.sh's build directory
#   MPK_PACKAGE_CMAKE_ARGS  more cmake arguments for package.sh (word-split)
#   MPK_DEBIAN_MIRROR       the Debian mirror (default: the one this machine's apt uses)
#   MPK_DEBOOTSTRAP_CACHE   a directory: keep the bare root there as a tarball
#                           and reuse it (default: a fresh debootstrap every run)
#   MPK_CHROOT_TMP          where the root is made (default: $TMPDIR, else /var/tmp)
# shellcheck disable=SC2317 # cleanup runs from a trap
set -eu
me=deb_chroot.sh
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
suite=bookworm

fail() {
	echo "$me: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (debootstrap, chroot and mount need it; CI runs as root)"
for t in debootstrap chroot unshare findmnt dpkg-deb timeout; do
	command -v $t >/dev/null || fail "'$t' not found (scripts/deps.sh test installs debootstrap)"
done

# Everything below runs in a mount namespace of its own: the bind mounts
# are private to it, and vanish with it even if this script is SIGKILLed
# before its trap could undo them (ctest's timeout does that).
if [ "${MPK_DEB_CHROOT_NS:-}" != 1 ]; then
	export MPK_DEB_CHROOT_NS=1
	exec unshare --mount --propagation private -- bash "$0" "$@"
fi

t0=$SECONDS
step_t=$SECONDS
step_name=
timings=()
step() { # step NAME: ends the previous step (printing its time), starts NAME
	if [ -n "$step_name" ]; then
		timings+=("$(printf '%-48s %4d s' "$step_name" $((SECONDS - step_t)))")
		echo "=== $step_name: $((SECONDS - step_t)) s"
	fi
	step_name=$1
	step_t=$SECONDS
	[ "$1" = finish ] || echo "=== $1"
}

work=$(mktemp -d "${MPK_CHROOT_TMP:-${TMPDIR:-/var/tmp}}/mpk-deb.XXXXXX")
root=$work/root
mounts=()

# Mount points at or under $work, in this namespace; something non-empty
# also when findmnt cannot tell.
mounted_under_work() {
	local all
	all=$(findmnt -rn -o TARGET) || { echo "(findmnt failed: cannot tell)"; return; }
	awk -v w="$work" '$0 == w || index($0, w "/") == 1' <<<"$all"
}

cleanup() {
	local st=$? p m i
	set +e
	# Processes left in the root (a server a failed check did not stop).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		m=${mounts[i]}
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
			echo "$me: cannot unmount $m" >&2
	done
	# Never delete through a mount: what is under it is the host's.
	if [ -n "$(mounted_under_work)" ]; then
		echo "$me: still mounted under $work, NOT deleting it:" >&2
		mounted_under_work >&2
		[ $st -ne 0 ] || st=1
	else
		# --one-file-system: a backstop, should a mount have escaped findmnt.
		rm -rf --one-file-system "$work"
	fi
	if [ -n "$step_name" ] && [ "$step_name" != finish ]; then
		timings+=("$(printf '%-48s %4d s (failed here)' "$step_name" $((SECONDS - step_t)))")
	fi
	if [ ${#timings[@]} -gt 0 ]; then
		echo "--- timings"
		printf '%s\n' "${timings[@]}"
		printf '%-48s %4d s\n' total $((SECONDS - t0))
	fi
	exit $st
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

bind() { # bind SRC: SRC bind-mounted at $root/SRC (recorded for cleanup)
	mkdir -p "$root$1"
	mount --bind "$1" "$root$1" || fail "mount --bind $1 $root$1"
	mounts+=("$root$1")
}

# A plain environment in the root: nothing of ours (nor of ctest's) leaks in.
renv=(/usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
# in_root CMD...: CMD in the root, as root.
in_root() {
	chroot "$root" "${renv[@]}" "$@"
}

# The mirror this machine's apt uses for $suite, and its security archive:
# one-line (.list) and deb822 (.sources) files alike.
host_uri() { # host_uri SUITE
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$1" '$1 == "deb" { u = ""; for (i = 2; i <= NF; i++) {
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue }
			if (u == "") u = $i; else { if ($i == s) print u; break } } }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$1" 'function flush() { if (deb && u != "" && hit) print u; deb = 0; u = ""; hit = 0 }
			/^[ \t]*$/ { flush(); next }
			/^[Tt]ypes:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
			/^Enabled:[ \t]*no/ { deb = 0 }
			END { flush() }' "$f"
	done
}

# ------------------------------------------------------------- the package
step "package: build"
if [ -n "${MPK_DEB:-}" ]; then
	[ -f "$MPK_DEB" ] && [ -r "$MPK_DEB" ] || fail "MPK_DEB=$MPK_DEB: no such readable file"
	deb=$MPK_DEB
	echo "using MPK_DEB=$deb"
else
	# shellcheck disable=SC2086 # word-split on purpose
	deb=$(set -o pipefail; "$src/scripts/package.sh" ${MPK_PACKAGE_CMAKE_ARGS:-} | tail -n 1) ||
		fail "scripts/package.sh failed"
	[ -f "$deb" ] || fail "scripts/package.sh printed '$deb', which is no file"
	echo "built $deb"
fi

step "package: control and contents"
dpkg-deb -I "$deb" >"$work/control" || fail "dpkg-deb -I $deb"
field() { sed -n "s/^ $1: //p" "$work/control"; }
[ "$(field Package)" = mpklink ] || fail "Package: '$(field Package)', not mpklink"
ver=$(sed -n 's/^project(mpklink VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$(field Version)" = "$ver" ] || fail "Version: '$(field Version)', project() says $ver"
[ -n "$(field Maintainer)" ] || fail "no Maintainer field"
[ -n "$(field Section)" ] || fail "no Section field"
depends=$(field Depends)
echo "Depends: $depends"
for d in libc6 libsodium23 libgrpc29 libprotobuf-c1; do
	case ", $depends," in
	*", $d "* | *", $d,"*) ;;
	*) fail "Depends lacks $d: '$depends'" ;;
	esac
done

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
files=$(grep -v '/$' "$work/contents")
echo "$files"
for f in /usr/bin/mpklink-run /usr/bin/mpklink-keys /usr/bin/mpklink-bench \
	/usr/bin/mpklink-demo-server /usr/bin/mpklink-demo-client \
	/usr/lib/x86_64-linux-gnu/mpklink/libmpklink.so \
	/usr/libexec/mpklink/echo_server /usr/libexec/mpklink/echo_client \
	/usr/share/man/man1/mpklink-run.1.gz /usr/share/man/man1/mpklink-keys.1.gz; do
	grep -qx "$f" <<<"$files" || fail "the package lacks $f"
done
# Only what a user runs: no tests, no static libraries, no headers.
stray=$(grep -Ev '^/usr/(bin/mpklink-[a-z-]+|lib/[a-z0-9_-]+/mpklink/libmpklink\.so|libexec/mpklink/[a-z_-]+|share/man/man1/mpklink-[a-z-]+\.1\.gz|share/doc/mpklink/[A-Za-z.]+)$' <<<"$files" || true)
[ -z "$stray" ] || fail "the package holds files it should not: $stray"
if grep -Eqi 'test|criterion|\.a$|/include/' <<<"$files"; then
	fail "the package holds test or development files: $(grep -Ei 'test|criterion|\.a$|/include/' <<<"$files")"
fi
echo "contents: $(wc -l <<<"$files") files, $(grep -c '^/usr/bin/' <<<"$files") commands in /usr/bin"

# -------------------------------------------------------- a bare Debian 12
mirror=${MPK_DEBIAN_MIRROR:-$(host_uri $suite | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(host_uri $suite-security | head -n 1)
echo "mirror: $mirror${security:+, security: $security}"

cache=
if [ -n "${MPK_DEBOOTSTRAP_CACHE:-}" ]; then
	mkdir -p "$MPK_DEBOOTSTRAP_CACHE" || fail "MPK_DEBOOTSTRAP_CACHE=$MPK_DEBOOTSTRAP_CACHE: cannot create it"
	cache=$MPK_DEBOOTSTRAP_CACHE/debian-$suite-minbase-$(dpkg --print-architecture).tar
fi
mkdir -p "$root"
if [ -n "$cache" ] && [ -f "$cache" ]; then
	step "debian: unpack cached root"
	tar -C "$root" --numeric-owner -xpf "$cache" || fail "unpacking $cache (delete it to debootstrap afresh)"
	echo "from $cache (MPK_DEBOOTSTRAP_CACHE)"
else
	step "debian: debootstrap"
	if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 25 "$work/debootstrap.log" >&2
		fail "debootstrap --variant=minbase $suite from $mirror failed: is the mirror reachable from here? (MPK_DEBIAN_MIRROR sets another)"
	fi
	if [ -n "$cache" ]; then
		# Before anything is mounted in it, and before the package touched it.
		tar -C "$root" --numeric-owner -cpf "$cache.tmp" . && mv "$cache.tmp" "$cache" ||
			fail "cannot write $cache"
		echo "kept in $cache"
	fi
fi
[ -x "$root/usr/bin/apt-get" ] || fail "$root has no apt-get: not a Debian root"

step "debian: mounts and apt sources"
bind /proc
bind /dev
bind /dev/shm
findmnt -rn -o TARGET,FSTYPE | awk -v w="$root" 'index($1, w) == 1'
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
{
	echo "deb $mirror $suite main"
	echo "deb $mirror $suite-updates main"
	[ -z "$security" ] || echo "deb $security $suite-security main"
} >"$root/etc/apt/sources.list"
cat "$root/etc/apt/sources.list"
# No package may start a service in here.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# The root has none of what the project builds with: that is the point.
if in_root sh -c 'command -v cc || command -v cmake || dpkg -l | grep -E "^ii +lib[a-z0-9+.-]*-dev"'; then
	fail "the fresh root already has build tools or -dev packages"
fi

step "debian: apt-get update"
timeout 600 chroot "$root" "${renv[@]}" apt-get update -qq >"$work/apt-update.log" 2>&1 ||
	{ cat "$work/apt-update.log" >&2; fail "apt-get update in the root, from $mirror"; }

step "install: apt-get install ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
chmod 644 "$root/tmp/$(basename "$deb")"
timeout 900 chroot "$root" "${renv[@]}" \
	sh -c "cd /tmp && apt-get install -y ./$(basename "$deb")" >"$work/apt-install.log" 2>&1 ||
	{ tail -n 40 "$work/apt-install.log" >&2; fail "apt-get install ./$(basename "$deb") in a clean Debian 12: the Depends line cannot be met"; }
grep -E '^(The following NEW packages|  )' "$work/apt-install.log" | head -n 20
in_root dpkg-query -W -f='${Status} ${Version}\n' mpklink | grep -q '^install ok installed' ||
	fail "dpkg says mpklink is not installed"
in_root dpkg -L mpklink >"$work/installed"
in_root sh -c 'command -v cc || command -v cmake' && fail "installing mpklink pulled in a compiler or cmake"

step "run: as a user, in the root"
in_root useradd --create-home --shell /bin/bash mpkuser || fail "useradd in the root"
uid=$(in_root id -u mpkuser)
gid=$(in_root id -g mpkuser)
install -o "$uid" -g "$gid" -m 755 "$here/user_checks.sh" "$root/home/mpkuser/user_checks.sh"
# The integration tests' helpers: fail, envfile, stat_field (the upgrade check).
install -o "$uid" -g "$gid" -m 644 "$src/tests/integration/lib.sh" "$root/home/mpkuser/lib.sh"
timeout 900 chroot --userspec="$uid:$gid" --groups="$gid" "$root" /usr/bin/env -i \
	HOME=/home/mpkuser USER=mpkuser LOGNAME=mpkuser SHELL=/bin/bash LANG=C.UTF-8 \
	PATH=/usr/local/bin:/usr/bin:/bin /bin/bash /home/mpkuser/user_checks.sh ||
	fail "the installed package did not work for a user in a clean Debian 12 (see above)"

step "remove: dpkg -r mpklink"
in_root dpkg -r mpklink >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "dpkg -r mpklink"; }
left=
while read -r f; do
	# Directories other packages share (/usr/bin) stay; ours must go.
	if [ -d "$root$f" ]; then
		case $f in */mpklink) left="$left $f" ;; esac
	elif [ -e "$root$f" ] || [ -L "$root$f" ]; then
		left="$left $f"
	fi
done <"$work/installed"
[ -z "$left" ] || fail "dpkg -r mpklink left behind:$left"
if in_root dpkg-query -W -f='${Status}\n' mpklink 2>/dev/null | grep -qx 'install ok installed'; then
	fail "dpkg still lists mpklink as installed after dpkg -r"
fi
echo "no file of the package is left ($(wc -l <"$work/installed") paths checked)"

step finish
echo "PASS: $(basename "$deb") installs with apt on a clean Debian $suite, works for a user, and removes cleanly"
