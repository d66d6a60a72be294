#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-vm.sh TEST [ARGS...]: runs TEST as /init's child in QEMU -cpu max
# (TCG: it emulates and enforces PKU, which KVM can only pass through from
# a host that has it) booting the distribution kernel from a throwaway
# initramfs. Exits with TEST's status; 77 (skip) only when QEMU or a
# kernel is not installed. Anything else that goes wrong is a failure.
#
# Environment: MPK_VM_KERNEL (default: newest /boot/vmlinuz-*-amd64),
# MPK_VM_TIMEOUT (seconds, default 120), MPK_VM_LOG (default ./mpk-vm.log).
set -euo pipefail

fail() { echo "run-vm: FAIL: $*" >&2; exit 1; }
skip() {
	echo "run-vm: SKIP: $* is not installed;" \
		"apt-get install qemu-system-x86 linux-image-amd64 provides it" >&2
	exit 77
}

[ $# -ge 1 ] || fail "usage: $0 TEST [ARGS...]"
test_bin=$(readlink -f "$1")
shift
[ -x "$test_bin" ] || fail "$test_bin is not an executable"

qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64"
if [ -n "${MPK_VM_KERNEL:-}" ]; then
	kernel=$MPK_VM_KERNEL
	[ -e "$kernel" ] || fail "MPK_VM_KERNEL=$kernel does not exist"
else
	kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$kernel" ] || skip "a kernel (/boot/vmlinuz-*-amd64)"
fi
# Installed but unusable is not a reason to skip.
[ -r "$kernel" ] || fail "$kernel is not readable by $(id -un)"
busybox=
for b in /usr/bin/busybox /bin/busybox; do
	[ -x "$b" ] && { busybox=$b; break; }
done
[ -n "$busybox" ] || fail "busybox not found (apt-get install busybox-static)"
timeout_s=${MPK_VM_TIMEOUT:-120}
log=$(readlink -f "${MPK_VM_LOG:-./mpk-vm.log}")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpk-vm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp}

# Each binary's libraries (and the loader) at their absolute paths, so
# RUNPATHs and the loader's built-in search path work unchanged.
copy_with_libs() {
	local out
	out=$(ldd "$1" 2>&1) || {
		# A static binary needs nothing; any other ldd error is fatal.
		grep -q 'not a dynamic executable' <<<"$out" && return 0
		fail "ldd $1: $out"
	}
	! grep -q 'not found' <<<"$out" || fail "ldd $1: $out"
	local lib
	for lib in $(awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}' <<<"$out"); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
cp "$busybox" "$root/bin/busybox"
copy_with_libs "$busybox"
for a in sh mount cat poweroff; do ln -s busybox "$root/bin/$a"; done
cp "$test_bin" "$root/test"
copy_with_libs "$test_bin"

# A per-run nonce, so a stale log cannot pass for this run.
marker="MPK-VM-RESULT-$$-$RANDOM"
args=
[ $# -eq 0 ] || args=$(printf ' %q' "$@")
cat >"$root/init" <<EOF
#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "MPK-VM-BEGIN \$(cat /proc/sys/kernel/osrelease)"
/test$args
echo "$marker rc=\$?"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) |
	gzip -1 >"$tmp/initrd.gz"

echo "run-vm: booting $kernel in $(basename "$qemu") -cpu max (TCG), log: $log"
start=$SECONDS
rc=0
timeout "$timeout_s" "$qemu" -accel tcg -cpu max -m 512 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$tmp/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet" </dev/null >"$log" 2>&1 || rc=$?
elapsed=$((SECONDS - start))

# Console resets (ESC c ...) may share a line with our output: unanchored.
clean=$(tr -d '\r' <"$log" | sed 's/.*\(MPK-VM-BEGIN\)/\1/')
# The test's own lines, between the two markers.
sed -n "/^MPK-VM-BEGIN/,/$marker /p" <<<"$clean" | grep -v "$marker " || true
result=$(grep -a -o -m1 "$marker rc=[0-9]*" <<<"$clean" | sed 's/.* rc=//') || true
if [ -z "$result" ]; then
	echo "--- last lines of $log ---"
	tail -n 30 <<<"$clean"
	[ "$rc" -eq 124 ] && fail "the VM timed out after ${timeout_s}s with no result"
	fail "no result marker (qemu exit status $rc after ${elapsed}s)"
fi
echo "run-vm: test exited $result in the VM (${elapsed}s)"
[[ "$result" =~ ^[0-9]+$ ]] || fail "garbled result '$result'"
# 77 means skip to ctest; a test that exits 77 in the VM has failed.
[ "$result" -ne 77 ] || fail "the test exited 77 in the VM"
exit "$result"
