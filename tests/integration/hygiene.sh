#!/bin/bash
# SPDX-License-Identifier: MIT
#
# hygiene.sh SHIM MAP BAD: libmpklink.so (SHIM) keeps to itself.
#  1. It exports exactly the interposed calls its version script (MAP)
#     lists: nothing of the transport, and nothing of the launcher's server.
#  2. None of its own calls can bind to one of its interposers: no
#     relocation names an exported symbol, and it is not linked
#     -Bsymbolic (which would bind them with no relocation at all).
#  3. The dynamic linker agrees: in a program run with the shim preloaded,
#     LD_DEBUG=bindings shows no binding from the shim to the shim.
# BAD is a library built to break rule 2 (an exported close() that the
# library itself calls): the same checks must reject it, or they prove
# nothing.
set -u
shim=$1 map=$2 bad=$3
fail() { echo "FAIL: $*" >&2; exit 1; }

exports() { nm -D --defined-only "$1" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sort -u; }
# Names the library's relocations bind (PLT slots and GOT entries).
relocs() { readelf -rW "$1" | awk '/R_X86_64_(JUMP_SLOT|GLOB_DAT)/ {print $5}' | sed 's/@.*//' | sort -u; }
self_bound() { comm -12 <(relocs "$1") <(exports "$1"); }

# 1. Exports against the version script's global names.
want=$(sed -n '/global:/,/local:/p' "$map" | grep -v 'global:\|local:' | tr ';' '\n' |
	tr -d ' \t' | grep -v '^$' | sort -u)
got=$(exports "$shim")
[ -n "$want" ] || fail "no names read from $map"
diff <(echo "$want") <(echo "$got") >/dev/null ||
	fail "exports differ from $map:$(diff <(echo "$want") <(echo "$got") | sed 's/^/ /')"
for n in mpk_ctl_start mpk_ctl_stop mpk_link_attach mpk_endpoints_parse; do
	nm -D "$shim" | grep -qw "$n" && fail "$n leaks out of the shim"
done

# 2. No relocation names an exported symbol; not -Bsymbolic.
s=$(self_bound "$shim")
[ -z "$s" ] || fail "the shim calls its own interposers: $(echo $s)"
readelf -dW "$shim" | grep -q 'SYMBOLIC' && fail "the shim is linked -Bsymbolic"
# The checks catch a library that does call its own close().
[ "$(self_bound "$bad")" = close ] || fail "the relocation check missed $bad's call to close"

# 3. The dynamic linker's view, in a real process.
out=$(LD_DEBUG=bindings LD_PRELOAD="$shim" /bin/true 2>&1)
echo "$out" | grep -q "binding file $shim" || fail "LD_DEBUG showed no binding of the shim"
self=$(echo "$out" | grep "binding file $shim .* to $shim ")
[ -z "$self" ] || fail "the shim binds to itself: $(echo "$self" | head -3)"
out=$(LD_DEBUG=bindings LD_PRELOAD="$bad" /bin/true 2>&1)
echo "$out" | grep -q "binding file $bad .* to $bad .*close" ||
	fail "LD_DEBUG did not show $bad binding close to itself"
echo "PASS: exports are the version script's; no call of the shim binds to the shim"
