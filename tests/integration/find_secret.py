#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""find_secret.py PID HEX: where the bytes HEX appear in process PID: its
environment, the files its fds name (regular files, read from the start),
and every mapping of its memory up to 1 GiB that /proc/PID/mem lets us
read (as the kernel's own debugger interface does, so protection bits do
not hide a page). Prints one line per place; exit 0 if found anywhere, 1 if not,
2 on error. Also says how much memory it searched, so a search that read
nothing cannot pass for a clean result."""
import os
import re
import sys

LARGEST = 1 << 30


def main():
    pid, needle = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
    found, searched, skipped = [], 0, 0
    with open(f"/proc/{pid}/environ", "rb") as f:
        if needle in f.read():
            found.append("environment")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            target = os.readlink(path)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    if needle in f.read(1 << 20):
                        found.append(f"fd {fd} ({target})")
        except OSError:
            pass
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if "[vvar]" in line or "[vsyscall]" in line:
                continue
            # Reservations, not data: AddressSanitizer's shadow (terabytes)
            # and the like. Everything a process stores a key in (heap,
            # stacks, libsodium's guarded pages) is far smaller.
            if hi - lo > LARGEST:
                skipped += 1
                continue
            for off in range(lo, hi, 1 << 20):
                n = min(1 << 20, hi - off)
                try:
                    mem.seek(off)
                    chunk = mem.read(n + len(needle) - 1 if off + n < hi else n)
                except OSError:
                    continue
                searched += len(chunk)
                if needle in chunk:
                    found.append("memory " + line.split()[0] + " " + m.group(3) +
                                 " " + " ".join(line.split()[5:]))
                    break
    print(f"searched {searched} bytes of memory of pid {pid}"
          f" (skipped {skipped} mappings over {LARGEST >> 20} MiB)")
    for f in found:
        print("found in " + f)
    if searched == 0:
        sys.exit(2)
    sys.exit(0 if found else 1)


if __name__ == "__main__":
    main()
