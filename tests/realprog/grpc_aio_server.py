#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An ordinary grpcio asyncio (grpc.aio) server for the mpktest.Echo service.

  grpc_aio_server.py --port P [--bind HOST]

Unary echoes, ServerStream sends pattern(i, size) for i < count (as
tests/interop's servers do), BidiStream echoes every message in order. Prints
"listening on P" when ready; on SIGTERM/SIGINT stops (grace 2 s), prints
"served unary=N stream=N (M messages) bidi=N (M messages)" and exits 0.
Run with Debian's /usr/bin/python3 (python3-grpcio). Knows nothing about
mpklink.
"""

import argparse
import asyncio
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(HERE, "..", "interop")
sys.path.insert(0, INTEROP)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import py_echo  # noqa: E402  (dies naming python3-grpcio when grpc is missing)

grpc = py_echo.grpc
MAX_MESSAGE = py_echo.MAX_MESSAGE


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    args = ap.parse_args()
    pb2, pb2_grpc = py_echo.load_stubs(os.path.join(INTEROP, "echo.proto"))
    from grpc import aio

    counts = {"unary": 0, "stream": 0, "stream_msgs": 0, "bidi": 0, "bidi_msgs": 0}

    class Echo(pb2_grpc.EchoServicer):
        async def Unary(self, request, context):
            counts["unary"] += 1
            return request

        async def ServerStream(self, request, context):
            counts["stream"] += 1
            if request.size > (16 << 20):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "size too large")
            for i in range(request.count):
                counts["stream_msgs"] += 1
                yield pb2.Msg(seq=i, payload=py_echo.pattern(i, request.size))

        async def BidiStream(self, request_iterator, context):
            counts["bidi"] += 1
            async for m in request_iterator:
                counts["bidi_msgs"] += 1
                yield m

    async def serve():
        server = aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                     ("grpc.max_send_message_length", MAX_MESSAGE)])
        pb2_grpc.add_EchoServicer_to_server(Echo(), server)
        port = server.add_insecure_port("%s:%d" % (args.bind, args.port))
        if port == 0:
            py_echo.die("cannot listen on %s:%d" % (args.bind, args.port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await server.start()
        print("listening on %d" % port, flush=True)
        await stop.wait()
        await server.stop(2)
        print("served unary=%(unary)d stream=%(stream)d (%(stream_msgs)d messages) "
              "bidi=%(bidi)d (%(bidi_msgs)d messages)" % counts, flush=True)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
