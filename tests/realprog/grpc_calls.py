#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An ordinary grpcio client that prints every reply of the mpktest.Echo
service's Unary call, optionally running subprocesses between calls.

  grpc_calls.py --target HOST:PORT [--calls N] [--name NAME] [--subprocess]
                [--deadline S] [--channels N]

Call i sends seq=i and the payload "NAME call i" and prints the reply. With
--subprocess, after each call it runs subprocess.run(["true"]) (even calls)
or subprocess.run(["echo", "x<i>"]) reading its output (odd calls), as any
Python program does (CPython's subprocess forks with vfork). With
--channels N, the calls are spread over N fresh channels, one after the
other. A failed call prints its status code and the client goes on; after
3 failures in a row it gives up. Exit 0 when every call came back intact.
Run with Debian's /usr/bin/python3 (python3-grpcio). Knows nothing about
mpklink.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(HERE, "..", "interop")
sys.path.insert(0, INTEROP)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import py_echo  # noqa: E402  (dies naming python3-grpcio when grpc is missing)

grpc = py_echo.grpc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--name", default="client")
    ap.add_argument("--subprocess", action="store_true")
    ap.add_argument("--deadline", type=float, default=5.0)
    ap.add_argument("--channels", type=int, default=1)
    args = ap.parse_args()
    pb2, pb2_grpc = py_echo.load_stubs(os.path.join(INTEROP, "echo.proto"))

    ok = 0
    in_a_row = 0
    per_channel = -(-args.calls // args.channels)
    channel = None
    for i in range(args.calls):
        if i % per_channel == 0:
            if channel is not None:
                channel.close()
            channel = grpc.insecure_channel(args.target)
            try:
                grpc.channel_ready_future(channel).result(timeout=10)
            except grpc.FutureTimeoutError:
                print("%s call %d: channel not ready within 10 s" % (args.name, i),
                      flush=True)
                return 1
            stub = pb2_grpc.EchoStub(channel)
        payload = ("%s call %d" % (args.name, i)).encode()
        try:
            r = stub.Unary(pb2.Msg(seq=i, payload=payload), timeout=args.deadline)
            intact = r.seq == i and r.payload == payload
            print("%s call %d: seq=%d payload=%r%s"
                  % (args.name, i, r.seq, r.payload.decode(errors="replace"),
                     "" if intact else " (NOT what was sent)"), flush=True)
            if intact:
                ok += 1
                in_a_row = 0
            else:
                in_a_row += 1
        except grpc.RpcError as e:
            print("%s call %d: FAILED %s: %s"
                  % (args.name, i, e.code().name, e.details()), flush=True)
            in_a_row += 1
        if in_a_row >= 3:
            print("%s: giving up after 3 failed calls in a row" % args.name, flush=True)
            break
        if args.subprocess:
            if i % 2 == 0:
                p = subprocess.run(["true"], timeout=10)
                print("  subprocess true: exit %d" % p.returncode, flush=True)
            else:
                p = subprocess.run(["echo", "x%d" % i], capture_output=True,
                                   text=True, timeout=10)
                print("  subprocess echo: exit %d, read %r" % (p.returncode, p.stdout),
                      flush=True)
    if channel is not None:
        channel.close()
    print("%s: %d of %d calls intact" % (args.name, ok, args.calls), flush=True)
    return 0 if ok == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
