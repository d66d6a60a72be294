#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An ordinary grpcio server and client for the mpktest.Echo service.

  py_echo.py server --port P [--bind HOST]
  py_echo.py client --target HOST:PORT [--unary N] [--stream N] [--bidi N]
                    [--size S] [--seed S]

Run it with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf). The
stubs are generated from echo.proto at start-up, into a temporary directory,
with protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc).
The server prints "listening on P" when ready and exits 0 on SIGTERM/SIGINT.
The client checks every response and prints "OK unary=N stream=N bidi=N
bytes=TOTAL", or an error and exits 1. Nothing here knows about mpklink.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGE = 64 << 20


def die(msg, code=1):
    print("py_echo.py: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)


try:
    import grpc
except ImportError:
    die("cannot import grpc with %s: install the Debian package python3-grpcio "
        "and run this with /usr/bin/python3" % sys.executable)
try:
    import google.protobuf  # noqa: F401
except ImportError:
    die("cannot import google.protobuf with %s: install the Debian package "
        "python3-protobuf and run this with /usr/bin/python3" % sys.executable)


def load_stubs(proto):
    """Generates echo_pb2 / echo_pb2_grpc into a temporary dir and imports them."""
    protoc = shutil.which("protoc")
    if not protoc:
        die("protoc not found: install the Debian package protobuf-compiler")
    plugin = shutil.which("grpc_python_plugin")
    if not plugin:
        die("grpc_python_plugin not found: install the Debian package "
            "protobuf-compiler-grpc")
    out = tempfile.mkdtemp(prefix="py_echo.")
    try:
        subprocess.run([protoc, "-I", os.path.dirname(proto),
                        "--python_out=" + out, "--grpc_out=" + out,
                        "--plugin=protoc-gen-grpc=" + plugin,
                        os.path.basename(proto)],
                       check=True, timeout=60)
        sys.path.insert(0, out)
        import echo_pb2
        import echo_pb2_grpc
    except (subprocess.SubprocessError, OSError) as e:
        die("generating the stubs from %s failed: %s" % (proto, e))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return echo_pb2, echo_pb2_grpc


def pattern(seq, size):
    """The server-stream payload; the same formula as echo_pattern.h."""
    s = seq * 31
    return bytes((s + j * 7 + (j >> 8)) & 0xFF for j in range(size))


def serve(args, pb2, pb2_grpc):
    from concurrent import futures

    class Echo(pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            return request

        def ServerStream(self, request, context):
            if request.size > (16 << 20):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "size too large")
            for i in range(request.count):
                yield pb2.Msg(seq=i, payload=pattern(i, request.size))

        def BidiStream(self, request_iterator, context):
            for m in request_iterator:
                yield m

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", MAX_MESSAGE)])
    pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("%s:%d" % (args.bind, args.port))
    if port == 0:
        die("cannot listen on %s:%d" % (args.bind, args.port))
    # The handlers only append to a list. A handler that called
    # threading.Event.set() could deadlock: Python runs it in the main thread
    # between bytecodes, and there the main thread may be inside Event.wait(),
    # holding the very lock set() takes. A server preempted there (a busy
    # machine) then never stopped on SIGTERM.
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    server.start()
    print("listening on %d" % port, flush=True)
    while not stop:
        time.sleep(0.2)
    server.stop(grace=2).wait(5)
    print("py_echo.py: server stopped", file=sys.stderr, flush=True)
    return 0


class Failure(Exception):
    pass


def where(want, got):
    if len(want) != len(got):
        return "payload size %d, expected %d" % (len(got), len(want))
    j = next(i for i in range(len(want)) if want[i] != got[i])
    return "payload differs at byte %d of %d" % (j, len(want))


def client(args, pb2, pb2_grpc):
    channel = grpc.insecure_channel(
        args.target,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", MAX_MESSAGE)])
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        die("cannot connect to %s within 10 s" % args.target)
    stub = pb2_grpc.EchoStub(channel)
    rnd = random.Random(args.seed)
    total = 0
    phase = "unary"
    try:
        for i in range(args.unary):
            payload = rnd.randbytes(args.size)
            r = stub.Unary(pb2.Msg(seq=i, payload=payload), timeout=args.deadline)
            if r.seq != i:
                raise Failure("unary call %d: seq %d came back" % (i, r.seq))
            if r.payload != payload:
                raise Failure("unary call %d: %s" % (i, where(payload, r.payload)))
            total += len(r.payload)

        phase = "stream"
        if args.stream:
            n = 0
            req = pb2.StreamReq(count=args.stream, size=args.size)
            for m in stub.ServerStream(req, timeout=args.deadline):
                if m.seq != n:
                    raise Failure("stream message %d: seq %d" % (n, m.seq))
                want = pattern(n, args.size)
                if m.payload != want:
                    raise Failure("stream message %d: %s" % (n, where(want, m.payload)))
                total += len(m.payload)
                n += 1
            if n != args.stream:
                raise Failure("server stream ended after %d messages, expected %d"
                              % (n, args.stream))

        phase = "bidi"
        if args.bidi:
            sent = [rnd.randbytes(args.size) for _ in range(args.bidi)]
            reqs = (pb2.Msg(seq=i, payload=p) for i, p in enumerate(sent))
            n = 0
            for m in stub.BidiStream(reqs, timeout=args.deadline):
                if m.seq != n:
                    raise Failure("bidi message %d: seq %d" % (n, m.seq))
                if m.payload != sent[n]:
                    raise Failure("bidi message %d: %s" % (n, where(sent[n], m.payload)))
                total += len(m.payload)
                n += 1
            if n != args.bidi:
                raise Failure("bidi stream ended after %d messages, expected %d"
                              % (n, args.bidi))
    except grpc.RpcError as e:
        die("FAIL (%s, target %s): %s: %s" % (phase, args.target, e.code(), e.details()))
    except Failure as e:
        die("FAIL (%s, target %s): %s" % (phase, args.target, e))
    finally:
        channel.close()
    print("OK unary=%d stream=%d bidi=%d bytes=%d"
          % (args.unary, args.stream, args.bidi, total), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proto", default=os.path.join(HERE, "echo.proto"))
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind", default="[::]")
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--unary", type=int, default=0)
    c.add_argument("--stream", type=int, default=0)
    c.add_argument("--bidi", type=int, default=0)
    c.add_argument("--size", type=int, default=128)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--deadline", type=float, default=120.0)
    args = ap.parse_args()
    pb2, pb2_grpc = load_stubs(args.proto)
    if args.mode == "server":
        return serve(args, pb2, pb2_grpc)
    if not (args.unary or args.stream or args.bidi):
        die("nothing to do: give --unary, --stream or --bidi", 2)
    return client(args, pb2, pb2_grpc)


if __name__ == "__main__":
    sys.exit(main())
