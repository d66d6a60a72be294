#!/usr/bin/env python3
# Writes the seed corpus of fuzz_attach into corpus/attach (committed; run
# again only when fuzz_attach.c's input layout changes). See the layout in
# fuzz_attach.c: header page, 4 config bytes, operations.
import os
import struct

MAGIC = 0x4B4E494C4B504D00
HDR = 4096
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "attach")


def header(ring, base0=0, base1=0, magic=MAGIC, version=2, flags=0):
    page = bytearray(HDR)
    struct.pack_into("<QIIQQI", page, 0, magic, version, HDR, ring, HDR + 2 * ring, flags)
    for r, base in ((0, base0), (1, base1)):
        off = 64 + 256 * r
        struct.pack_into("<Q", page, off, base)       # tail
        struct.pack_into("<Q", page, off + 16, min(ring, 1 << 18).bit_length() - 1)  # geom: base 0, log2 cap
        struct.pack_into("<Q", page, off + 64, base)  # head
    return bytes(page)


def cfg(ring_sel, side, size_mode=0, delta=0, seals=0):
    return bytes([ring_sel | (side << 4), size_mode, delta & 0xFF, seals])


def u16(v):
    return struct.pack("<H", v)


# Operations (fuzz_attach.c run_ops)
def read(n): return b"\x00" + u16(n)
def peek(n): return b"\x02" + u16(n)
def readv(*lens, peek=False): return bytes([0x41 if peek else 0x01, len(lens)]) + b"".join(u16(x) for x in lens)
def write(n): return b"\x03" + u16(n)
def writev(*lens): return bytes([0x04, len(lens)]) + b"".join(u16(x) for x in lens)
POLL, READABLE, WRITABLE = b"\x05", b"\x06", b"\x07"
def arm(want): return b"\x08" + bytes([want])
SHUTDOWN, CLOSE = b"\x09", b"\x1a"
def lie(field, mode, delta, raw=b""): return b"\x0b" + bytes([field, mode, delta & 0xFF]) + raw
def produce(n): return b"\x0c" + u16(n)
def consume(n): return b"\x0d" + u16(n)
def scribble(pos, n): return b"\x0e" + struct.pack("<I", pos)[:3] + bytes([n])
def bell(b): return b"\x0f" + bytes([b])

# hs_fields indices: 5 ring0.tail, 6 ring0.prod_flags, 7 ring0.head,
# 8 ring0.cons_flags, 11.. the same for ring 1.
TAIL0, PF0, HEAD0, CF0, TAIL1, PF1, HEAD1, CF1 = 5, 6, 7, 8, 11, 12, 13, 14

honest = (produce(100) + read(50) + peek(80) + readv(10, 0, 30, peek=False) + write(200) +
          POLL + consume(150) + writev(100, 0, 4000) + READABLE + WRITABLE + arm(3) +
          bell(3) + arm(1) + read(4096))
lying = (produce(300) + peek(10) + lie(TAIL1, 6, -1) + read(10) + POLL)  # side 0: rx is ring 1
lying_tx = write(64) + consume(10) + write(1) + lie(HEAD0, 3, 5) + write(10)
eof = produce(40) + lie(PF1, 0, 0, b"\x01\x00\x00\x00") + read(100) + read(1) + lie(TAIL1, 5, 1) + read(1)

seeds = {
    "valid-4k-side0": header(4096) + cfg(0, 0),
    "valid-8k-side1": header(8192) + cfg(1, 1),
    "valid-64k-side0": header(65536) + cfg(4, 0),
    "header-only": header(4096),
    "honest-ops-4k": header(4096) + cfg(0, 0) + honest,
    "honest-ops-16k-wrap": header(16384, 2**64 - 100, 2**64 - 3000) + cfg(2, 1) + honest,
    "tail-backwards": header(4096) + cfg(0, 0) + lying,
    "head-beyond-tail": header(8192) + cfg(1, 0) + lying_tx,
    "tail-after-eof": header(4096) + cfg(0, 0) + eof,
    "bell-hangup": header(4096) + cfg(0, 1) + produce(10) + bell(0x80) + arm(3) + read(20) + write(5),
    "bad-magic": header(4096, magic=MAGIC ^ 1) + cfg(0, 0),
    "missing-seal": header(4096) + cfg(0, 0, seals=10),
    # flags = MPK_HDR_MAC: the ring bytes are parsed as frames with tags.
    "mac-honest-ops-4k": header(4096, flags=1) + cfg(0, 0) + honest,
    "mac-honest-ops-16k-wrap": header(16384, 2**64 - 100, 2**64 - 3000, flags=1) + cfg(2, 1) + honest,
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
