#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""py_client.py ADDR: grpcio (Python's gRPC, not ours) against
mpklink-demo-server.

The messages are encoded and decoded here by hand, from the protobuf wire
format, and the word counts are checked against Python's bytes.split() (which
splits on the same six whitespace bytes): nothing here shares code with the
demo, so a wrong method path, a wrong field number or a wrong count fails.
Exit 0 when every check passed, 1 otherwise.
"""
import random
import sys

try:
    import grpc
except ImportError:
    sys.exit("py_client.py: python3-grpcio is not installed (Debian: python3-grpcio)")

MAX = 1 << 30


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    """{field number: value} of a message of varint and bytes fields."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            out[num], i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            out[num] = bytes(buf[i:i + n])
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return out


def bytes_field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def gen_text(words, rnd):
    ws = [b" ", b" ", b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x0c"]
    parts = []
    for _ in range(words):
        word = bytes(rnd.randrange(0x21, 0x7F) for _ in range(rnd.randint(1, 12)))
        parts.append(word + b"".join(rnd.choice(ws) for _ in range(rnd.randint(1, 3))))
    return rnd.choice([b"", b"\t\n "]) + b"".join(parts)


failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: py_client.py ADDR")
    opts = [("grpc.max_receive_message_length", MAX), ("grpc.max_send_message_length", MAX)]
    ch = grpc.insecure_channel(sys.argv[1], options=opts)
    count = ch.unary_unary("/mpklink.demo.WordCount/Count")
    echo = ch.unary_unary("/mpklink.demo.WordCount/Echo")
    health = ch.unary_unary("/grpc.health.v1.Health/Check")
    rnd = random.Random(5)

    for words in (0, 1, 17, 1000, 100000):
        text = gen_text(words, rnd)
        got = fields(count(bytes_field(1, text), timeout=60)).get(1, 0)
        check(got == words == len(text.split()),
              "Count of %d words (%d bytes): server says %d" % (words, len(text), got))
    text = b"\x00\x01 \x80\xff\t\x7f\n\x1b"
    got = fields(count(bytes_field(1, text), timeout=60)).get(1, 0)
    check(got == len(text.split()) == 4,
          "Count of control and high bytes: %d words (expected 4, runs of non-whitespace bytes)" % got)

    payload = bytes(rnd.randrange(256) for _ in range(1 << 20))
    reply = fields(echo(bytes_field(1, payload), timeout=60)).get(1, b"")
    check(reply == payload, "Echo of 1 MiB: reply equal to the payload")
    reply = fields(echo(bytes_field(1, b"xy") + varint(2 << 3) + varint(1000), timeout=60)).get(1, b"")
    check(reply == bytes((i * 31 + 7) & 0xFF for i in range(1000)),
          "Echo reply_bytes=1000: the (i*31+7)&0xff pattern")

    st = fields(health(b"", timeout=60)).get(1, 0)
    check(st == 1, "Health/Check '': status %d (SERVING is 1)" % st)
    st = fields(health(bytes_field(1, b"mpklink.demo.WordCount"), timeout=60)).get(1, 0)
    check(st == 1, "Health/Check 'mpklink.demo.WordCount': status %d" % st)

    def status_of(method, req):
        try:
            method(req, timeout=60)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    code, details = status_of(health, bytes_field(1, b"nope"))
    check(code == grpc.StatusCode.NOT_FOUND, "Health/Check 'nope': %s %r" % (code, details))
    for name, method in (("Count", count), ("Echo", echo), ("Health/Check", health)):
        code, details = status_of(method, b"\x0a\x05ab")
        check(code == grpc.StatusCode.INVALID_ARGUMENT and name in details,
              "%s of a truncated message: %s %r" % (name, code, details))
    code, details = status_of(ch.unary_unary("/mpklink.demo.WordCount/Nope"), b"")
    check(code == grpc.StatusCode.UNIMPLEMENTED, "unknown method: %s %r" % (code, details))

    # Many calls in flight at once on one connection.
    texts = [gen_text(n, rnd) for n in range(0, 400, 7)]
    futures = [count.future(bytes_field(1, t), timeout=60) for t in texts]
    wrong = [i for i, (t, f) in enumerate(zip(texts, futures))
             if fields(f.result()).get(1, 0) != len(t.split())]
    check(not wrong, "%d concurrent Count calls, wrong answers: %s" % (len(texts), wrong))

    ch.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
