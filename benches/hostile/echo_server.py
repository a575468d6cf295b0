#!/usr/bin/env python3
"""An echo server for the hostile-peer harness (`cargo run --release --example hostile --
--target python`), written with Python `websockets` (the asyncio API) and its default
settings, except `max_size=1 << 20`, the typed-ws echo server's 1 MiB limit.

    target/peers/venv/bin/python benches/hostile/echo_server.py --port 0

It serves ws://127.0.0.1:PORT/echo (other paths get 404) like `examples/echo_server.rs --codec
msgpack,cbor,json`: the subprotocol is the first of msgpack, cbor, json that the client
offered, and a client that offers none gets msgpack. Every message goes back decoded and
re-encoded with that codec (`msgpack`, `cbor2`, `json`); the wrong kind of data frame closes
the session with 1003, a message that does not decode with 1007, each logged on stderr as the
Rust echo server does. When it is ready it prints one line on stdout, flushed:

    listening on ws://127.0.0.1:PORT/echo

The peers come from `bash tests/peers/install.sh` (a venv under target/peers/).
"""

import argparse
import asyncio
import json
import sys
from http import HTTPStatus

import cbor2
import msgpack
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

CODECS = ("msgpack", "cbor", "json")


def select_subprotocol(connection, offered):
    # Our order of preference, not the client's; None (no subprotocol) falls back to msgpack.
    for name in CODECS:
        if name in offered:
            return name
    return None


def only_echo(connection, request):
    if request.path != "/echo":
        print(f"refusing {request.path!r} with 404", file=sys.stderr, flush=True)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
    return None


def decode(codec, message):
    if codec == "json":
        return json.loads(message)
    if codec == "cbor":
        return cbor2.loads(message)
    return msgpack.unpackb(message)


def encode(codec, value):
    if codec == "json":
        return json.dumps(value, separators=(",", ":"))
    if codec == "cbor":
        return cbor2.dumps(value)
    return msgpack.packb(value)


async def close(ws, code, reason):
    print(f"closing a session with {code}: {reason}", file=sys.stderr, flush=True)
    await ws.close(code, reason[:120])


async def echo(ws):
    codec = ws.subprotocol or CODECS[0]
    try:
        async for message in ws:
            if isinstance(message, str) != (codec == "json"):
                await close(ws, 1003, f"wrong kind of data frame for {codec}")
                return
            try:
                value = decode(codec, message)
            except Exception as e:  # any codec error: the message is not what we speak
                await close(ws, 1007, f"does not decode as {codec}: {e}")
                return
            await ws.send(encode(codec, value))
    except ConnectionClosed:
        pass


async def main():
    parser = argparse.ArgumentParser(description="websockets echo server on /echo")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args()
    async with serve(
        echo,
        "127.0.0.1",
        args.port,
        select_subprotocol=select_subprotocol,
        process_request=only_echo,
        max_size=1 << 20,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/echo", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
