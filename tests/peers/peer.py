"""Interop peer for tests/interop/exchange.rs and tests/interop/compression.rs: a Python `websockets`
server or client.

    peer.py server --codec json|cbor|msgpack    prints "listening on ws://127.0.0.1:PORT"
    peer.py client --url ws://HOST:PORT/PATH --codec json|cbor|msgpack
    peer.py server --codec C --cert CERT.pem --key KEY.pem    the same over TLS, on wss://localhost
    peer.py client --url wss://localhost:PORT/PATH --codec C --ca CERT.pem
    peer.py client --url ws://HOST:PORT/PATH --subprotocols wamp.2.msgpack,wamp.2.json
        offers those subprotocols, prints {"event": "subprotocol", "name": ...} with the one
        the server chose, and uses the codec it names (the part after the last dot)

Each data message it receives is decoded with the codec (json in text frames; cbor2 and
msgpack in binary frames) and compared, types included, with canonical(codec), the same value
as `canonical()` in tests/interop/exchange.rs. The verdict goes back as a text frame:
{"ok": true} or {"ok": false, "why": "..."}.

Text frames holding a JSON object with a "cmd" key are commands:
    {"cmd": "send", "variant": "canonical" | "extra" | "omitted" | "whole_float",
     "fragmented": bool}
        sends its own encoding of the value, in 7-unit fragments when asked;
    {"cmd": "close", "code": 4001, "reason": "bye ✓"}
        closes the connection with that code and reason.
    {"cmd": "echo", "data": "..."}
        sends `data` back as a text frame.
When a connection ends it prints {"event": "closed", "code": ..., "reason": ...} on stdout:
the close frame it received.

    --compress on|off|no-context    (either role)
        permessage-deflate: "on" is websockets' default (which it also uses without the
        option), "off" none, "no-context" with server_no_context_takeover and
        client_no_context_takeover both. With the option, each connection prints on opening
        {"event": "extensions", "value": "..."}: the Sec-WebSocket-Extensions of the handshake
        response, "" without one.
"""

import argparse
import asyncio
import json
import ssl

import cbor2
import msgpack
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)


def canonical(codec):
    blob, empty_blob = bytes([0, 1, 2, 127, 128, 254, 255]), b""
    if codec == "json":  # serde_json writes bytes as an array of numbers
        blob, empty_blob = list(blob), []
    return {
        "max_u64": 2**64 - 1,
        "min_i64": -(2**63),
        "small": -7,
        "pi": 3.141592653589793,
        "tiny": -1.5e-300,
        "text": 'héllo wörld ✓ 日本語 🦀 "quoted" \\ \n\t\0',
        "empty_text": "",
        "empty_list": [],
        "nested": [
            {"primes": [2, 3, 5, -7], "none": None, "": [], "ключ ✓": [2**63 - 1]},
            {},
        ],
        "absent": None,
        "note": "present",
        "shapes": [
            "Empty",
            {"Circle": 0.5},
            {"Rect": [3, 4]},
            {"Labeled": {"label": "tri", "sides": 3}},
        ],
        "blob": blob,
        "empty_blob": empty_blob,
        "flag": True,
    }


def variant(codec, name):
    value = canonical(codec)
    if name == "extra":  # fields the Rust structs do not have
        value["unknown"] = {"deep": [1, "two", None, {"x": []}], "f": 2.5, "b": b"\0"}
        if codec == "json":
            value["unknown"]["b"] = [0]
        value["shapes"][3]["Labeled"]["color"] = "red"
    elif name == "omitted":  # an Option field left out
        del value["note"]
    elif name == "whole_float":  # a float with an integral value
        value["shapes"][1] = {"Circle": 2.0}
    elif name != "canonical":
        raise ValueError(f"unknown variant {name!r}")
    return value


ENCODE = {"json": json.dumps, "cbor": cbor2.dumps, "msgpack": msgpack.packb}
DECODE = {"json": json.loads, "cbor": cbor2.loads, "msgpack": msgpack.unpackb}


def differ(got, want, path="$"):
    """Where `got` differs from `want` (exact types: int is not float, bytes is not list)."""
    if type(got) is not type(want):
        return f"{path}: {type(got).__name__} {got!r} where {type(want).__name__} {want!r} was expected"
    if isinstance(want, dict):
        if got.keys() != want.keys():
            return f"{path}: keys {sorted(got)} where {sorted(want)} were expected"
        children = [(got[k], want[k], f"{path}.{k}") for k in want]
    elif isinstance(want, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} items where {len(want)} were expected"
        children = [(g, w, f"{path}[{i}]") for i, (g, w) in enumerate(zip(got, want))]
    else:
        return None if got == want else f"{path}: {got!r} where {want!r} was expected"
    for child in children:
        if why := differ(*child):
            return why
    return None


async def handle(ws, codec, message):
    if isinstance(message, str):
        decoded = json.loads(message)
        if isinstance(decoded, dict) and "cmd" in decoded:
            return await command(ws, codec, decoded)
        why = None if codec == "json" else f"a text frame with the {codec} codec"
    else:
        why = "a binary frame with the json codec" if codec == "json" else None
        decoded = None if why else DECODE[codec](message)
    why = why or differ(decoded, canonical(codec))
    await ws.send(json.dumps({"ok": True} if why is None else {"ok": False, "why": why}))


async def command(ws, codec, cmd):
    if cmd["cmd"] == "send":
        data = ENCODE[codec](variant(codec, cmd["variant"]))
        if cmd.get("fragmented"):
            await ws.send([data[i : i + 7] for i in range(0, len(data), 7)])
        else:
            await ws.send(data)
    elif cmd["cmd"] == "echo":
        await ws.send(cmd["data"])
    elif cmd["cmd"] == "close":
        await ws.close(cmd["code"], cmd["reason"])
    else:
        raise ValueError(f"unknown command {cmd!r}")


async def session(ws, codec, report_extensions=False):
    if report_extensions:
        # The response is the handshake's outcome on both roles: the server's own answer, or
        # the answer the client got.
        value = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        print(json.dumps({"event": "extensions", "value": value}), flush=True)
    try:
        while True:
            await handle(ws, codec, await ws.recv())
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    event = {"event": "closed", "code": rcvd and rcvd.code, "reason": rcvd and rcvd.reason}
    print(json.dumps(event), flush=True)


def compression(compress, role):
    """The keyword arguments of serve() or connect() for --compress."""
    if compress is None:
        return {}
    if compress == "on":
        return {"compression": "deflate"}
    if compress == "off":
        return {"compression": None}
    factory = {"server": ServerPerMessageDeflateFactory, "client": ClientPerMessageDeflateFactory}
    both = factory[role](server_no_context_takeover=True, client_no_context_takeover=True)
    return {"compression": None, "extensions": [both]}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--codec", choices=sorted(ENCODE))
    parser.add_argument("--url")
    parser.add_argument("--subprotocols")
    parser.add_argument("--cert", help="server: serve TLS with this certificate (PEM)")
    parser.add_argument("--key", help="server: the certificate's key (PEM)")
    parser.add_argument("--ca", help="client: trust this certificate (PEM) for wss://")
    parser.add_argument("--compress", choices=["on", "off", "no-context"])
    args = parser.parse_args()
    report = args.compress is not None
    options = compression(args.compress, args.role)
    if args.role == "server":
        tls = None
        if args.cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.cert, args.key)
        async with serve(
            lambda ws: session(ws, args.codec, report), "127.0.0.1", 0, ssl=tls, **options
        ) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"wss://localhost:{port}" if tls else f"ws://127.0.0.1:{port}"
            print(f"listening on {url}", flush=True)
            await server.serve_forever()
    elif args.subprotocols:
        async with connect(args.url, subprotocols=args.subprotocols.split(","), **options) as ws:
            print(json.dumps({"event": "subprotocol", "name": ws.subprotocol}), flush=True)
            await session(ws, ws.subprotocol.rsplit(".", 1)[-1], report)
    else:
        tls = ssl.create_default_context(cafile=args.ca) if args.ca else None
        async with connect(args.url, ssl=tls, **options) as ws:
            await session(ws, args.codec, report)


if __name__ == "__main__":
    asyncio.run(main())
