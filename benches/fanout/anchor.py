"""Anchor (c): the fan-out contract in Python `websockets`, as its documentation broadcasts:
one set of connections per topic, and `websockets.asyncio.server.broadcast()` of each
publication, decoded and encoded once. broadcast() writes to every connection without
waiting, and skips a connection whose write buffer is above its high-water mark (a slow one
loses those messages).

    python anchor.py --listen 127.0.0.1:0 --codec msgpack|json
"""

import argparse
import asyncio
import json
import sys

import msgpack
from websockets.asyncio.server import broadcast, serve


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--codec", default="msgpack")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    codec = args.codec
    if codec == "msgpack":
        decode, encode = msgpack.unpackb, msgpack.packb
    elif codec == "json":
        decode = json.loads

        def encode(value):
            return json.dumps(value, separators=(",", ":"))
    else:
        sys.exit(f"unknown codec {codec}")
    topics: dict[str, set] = {}

    async def handler(ws):
        path = ws.request.path
        if path.startswith("/topics/"):
            subscribers = topics.setdefault(path[len("/topics/"):], set())
            subscribers.add(ws)
            try:
                await ws.wait_closed()
            finally:
                subscribers.discard(ws)
        elif path.startswith("/publish/"):
            name = path[len("/publish/"):]
            async for message in ws:
                frame = encode(decode(message))
                broadcast(topics.get(name, ()), frame)

    # compression=None: the others do not compress either (websockets offers it by default).
    async with serve(
        handler, host, int(port), subprotocols=[codec], compression=None, max_queue=None
    ) as server:
        bound = server.sockets[0].getsockname()
        print(f"listening on ws://{bound[0]}:{bound[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
