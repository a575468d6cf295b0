"""The Python `websockets` side of benches/compression.rs: the same JSON stream, sent by a
Python client, with websockets' own permessage-deflate.

    compression_peer.py wire --url ws://HOST:PORT/ --messages FILE --compress on|off
        Connects (through the bench's byte-counting relay, to the typed-ws echo server),
        prints {"event": "open", "extensions": "..."} (the Sec-WebSocket-Extensions of the
        handshake response, "" without one), sends every line of FILE as a text message with
        at most --window of them awaiting their echo, checks each echo, prints
        {"event": "done", "messages": N}, then waits for a line on stdin before it closes, so
        that the bench reads the relay's counters with the data frames only.

    compression_peer.py cpu --messages FILE --rounds N --passes P
        CPU per echoed message measured as the bench measures typed-ws: a websockets client
        and a websockets echo server in this one process and thread (asyncio), on loopback,
        the stream sent P times per round, thread CPU time (time.thread_time_ns) from after
        the handshake to the last echo. Rounds alternate compression on and off; prints
        {"event": "cpu", "on": [ns per message...], "off": [...], "extensions": "..."}.

"on" is websockets' default (`compression="deflate"`: permessage-deflate with context
takeover, zlib level 6 and memLevel 5; its client offers client_max_window_bits, its server
asks for 12-bit windows), "off" is `compression=None`. Keepalive pings are off (they would add
bytes); max_size is unlimited.
"""

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

WINDOW = 64


def options(compress):
    return {
        "compression": "deflate" if compress == "on" else None,
        "ping_interval": None,
        "max_size": None,
    }


def extensions(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def stream(ws, messages, passes, check):
    """Sends the messages `passes` times, at most WINDOW awaiting their echo."""
    window = asyncio.Semaphore(WINDOW)

    async def send():
        for _ in range(passes):
            for message in messages:
                await window.acquire()
                await ws.send(message)

    async def receive():
        for _ in range(passes):
            for message in messages:
                echo = await ws.recv()
                if check and echo != message:
                    raise SystemExit(f"echo differs: {echo[:80]!r} != {message[:80]!r}")
                window.release()

    await asyncio.gather(send(), receive())


async def wire(url, messages, compress):
    async with connect(url, **options(compress)) as ws:
        print(json.dumps({"event": "open", "extensions": extensions(ws)}), flush=True)
        await stream(ws, messages, 1, True)
        print(json.dumps({"event": "done", "messages": len(messages)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def cpu(messages, rounds, passes):
    result = {"event": "cpu", "on": [], "off": [], "extensions": ""}
    for round in range(rounds):
        order = ["off", "on"] if round % 2 == 0 else ["on", "off"]
        for compress in order:
            async with serve(echo, "127.0.0.1", 0, **options(compress)) as server:
                port = server.sockets[0].getsockname()[1]
                async with connect(f"ws://127.0.0.1:{port}/", **options(compress)) as ws:
                    if compress == "on":
                        result["extensions"] = extensions(ws)
                    start = time.thread_time_ns()
                    await stream(ws, messages, passes, False)
                    spent = time.thread_time_ns() - start
                    result[compress].append(spent / (passes * len(messages)))
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["wire", "cpu"])
    parser.add_argument("--url")
    parser.add_argument("--messages", required=True)
    parser.add_argument("--compress", choices=["on", "off"], default="on")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=1)
    args = parser.parse_args()
    with open(args.messages, encoding="utf-8") as file:
        messages = [line.rstrip("\n") for line in file if line.strip()]
    if args.mode == "wire":
        asyncio.run(wire(args.url, messages, args.compress))
    else:
        asyncio.run(cpu(messages, args.rounds, args.passes))


if __name__ == "__main__":
    main()
