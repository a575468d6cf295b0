// Interop peer for tests/interop/exchange.rs and tests/interop/compression.rs: a Node `ws` server or
// client.
//
//     node peer.mjs server --codec json|cbor|msgpack    prints "listening on ws://127.0.0.1:PORT"
//     node peer.mjs client --url ws://HOST:PORT/PATH --codec json|cbor|msgpack
//
// Same protocol as peer.py: each data message is decoded with the codec (JSON in text frames;
// cbor-x and @msgpack/msgpack in binary frames), compared, types included, with
// canonical(codec), and answered with a text frame {"ok": true} or {"ok": false, "why": "..."}.
// Text frames holding a JSON object with a "cmd" key are commands:
//     {"cmd": "send", "variant": "canonical" | "extra" | "omitted" | "whole_float",
//      "fragmented": bool}
//     {"cmd": "close", "code": 4001, "reason": "bye ✓"}
//     {"cmd": "echo", "data": "..."}    sends `data` back as a text frame
// When a connection ends it prints {"event": "closed", "code": ..., "reason": ...} on stdout:
// the close frame it received.
//
//     --compress on|off|no-context    (either role)
// permessage-deflate: "on" compresses every message (threshold 0), "off" turns it off, and
// "no-context" adds serverNoContextTakeover and clientNoContextTakeover. Without the option the
// peer keeps ws's defaults: a client offers compression, a server accepts none. With it, each
// connection prints on opening
// {"event": "extensions", "value": "..."}: the Sec-WebSocket-Extensions of the handshake
// response, "" without one.
//
// Integers beyond 2^53 are BigInts, in every codec: cbor-x decodes 64-bit CBOR integers to
// BigInt, @msgpack/msgpack does with `useBigInt64`, and the JSON helpers below parse integer
// literals of 16 digits or more to BigInt and write BigInts as plain integers.

import { createRequire } from 'node:module';
import { inspect, parseArgs } from 'node:util';

// The packages live where tests/peers/install.sh put them.
const require = createRequire(new URL('../../target/peers/node/package.json', import.meta.url));
const { WebSocket, WebSocketServer } = require('ws');
const { Encoder: CborEncoder } = require('cbor-x');
const msgpack = require('@msgpack/msgpack');

// Plain CBOR maps decoded to plain objects (no cbor-x record extension), byte strings without
// the tag 64 cbor-x puts on a Uint8Array by default, map headers as short as they go.
const cbor = new CborEncoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
});
const msgpackOptions = { useBigInt64: true };

const BIG = '@@bigint@@';
const json = {
  encode: (value) =>
    JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? BIG + v : v)).replace(
      new RegExp(`"${BIG}(-?\\d+)"`, 'g'),
      '$1',
    ),
  // Quotes long integer literals outside strings, then turns them into BigInts.
  decode: (text) =>
    JSON.parse(
      text.replace(/"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g, (m) =>
        m.startsWith('"') ? m : `"${BIG}${m}"`,
      ),
      (_, v) => (typeof v === 'string' && v.startsWith(BIG) ? BigInt(v.slice(BIG.length)) : v),
    ),
};

const codecs = {
  json,
  cbor: { encode: (v) => cbor.encode(v), decode: (data) => cbor.decode(data) },
  msgpack: {
    encode: (v) => msgpack.encode(v, msgpackOptions),
    decode: (data) => msgpack.decode(data, msgpackOptions),
  },
};

function canonical(codec) {
  // serde_json writes bytes as an array of numbers.
  const bytes = (...b) => (codec === 'json' ? b : Uint8Array.of(...b));
  return {
    max_u64: 18446744073709551615n,
    min_i64: -9223372036854775808n,
    small: -7,
    pi: 3.141592653589793,
    tiny: -1.5e-300,
    text: 'héllo wörld ✓ 日本語 🦀 "quoted" \\ \n\t\0',
    empty_text: '',
    empty_list: [],
    nested: [
      { primes: [2, 3, 5, -7], none: null, '': [], 'ключ ✓': [9223372036854775807n] },
      {},
    ],
    absent: null,
    note: 'present',
    shapes: ['Empty', { Circle: 0.5 }, { Rect: [3, 4] }, { Labeled: { label: 'tri', sides: 3 } }],
    blob: bytes(0, 1, 2, 127, 128, 254, 255),
    empty_blob: bytes(),
    flag: true,
  };
}

function variant(codec, name) {
  const value = canonical(codec);
  if (name === 'extra') {
    // Fields the Rust structs do not have.
    value.unknown = { deep: [1, 'two', null, { x: [] }], f: 2.5, b: codec === 'json' ? [0] : Uint8Array.of(0) };
    value.shapes[3].Labeled.color = 'red';
  } else if (name === 'omitted') {
    delete value.note; // an Option field left out
  } else if (name === 'whole_float') {
    value.shapes[1] = { Circle: 2.0 }; // a float with an integral value: 2 to JavaScript
  } else if (name !== 'canonical') {
    throw new Error(`unknown variant ${name}`);
  }
  return value;
}

/** Where `got` differs from `want`, or null. A BigInt matches an equal BigInt or safe integer. */
function differ(got, want, path = '$') {
  const wrong = (what) => `${path}: ${inspect(got)} where ${what} was expected`;
  if (typeof want === 'bigint') {
    const same = typeof got === 'bigint' ? got === want : Number.isSafeInteger(got) && BigInt(got) === want;
    return same ? null : wrong(`${want}n`);
  }
  if (want instanceof Uint8Array) {
    const same = got instanceof Uint8Array && Buffer.from(got).equals(Buffer.from(want));
    return same ? null : wrong(`bytes ${inspect(want)}`);
  }
  let children;
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return wrong(inspect(want));
    children = want.map((w, i) => [got[i], w, `${path}[${i}]`]);
  } else if (want !== null && typeof want === 'object') {
    const plain = got !== null && typeof got === 'object' && Object.getPrototypeOf(got) === Object.prototype;
    const keys = (o) => JSON.stringify(Object.keys(o).sort());
    if (!plain || keys(got) !== keys(want)) return wrong(`an object with keys ${keys(want)}`);
    children = Object.keys(want).map((k) => [got[k], want[k], `${path}.${k}`]);
  } else {
    return Object.is(got, want) ? null : wrong(inspect(want));
  }
  for (const child of children) {
    const why = differ(...child);
    if (why) return why;
  }
  return null;
}

function handle(ws, codec, data, isBinary) {
  let decoded;
  let why = null;
  if (!isBinary) {
    decoded = json.decode(data.toString('utf8'));
    if (decoded !== null && typeof decoded === 'object' && 'cmd' in decoded) return command(ws, codec, decoded);
    if (codec !== 'json') why = `a text frame with the ${codec} codec`;
  } else if (codec === 'json') {
    why = 'a binary frame with the json codec';
  } else {
    decoded = codecs[codec].decode(data);
  }
  why = why ?? differ(decoded, canonical(codec));
  ws.send(JSON.stringify(why === null ? { ok: true } : { ok: false, why }));
}

function command(ws, codec, cmd) {
  if (cmd.cmd === 'send') {
    const encoded = codecs[codec].encode(variant(codec, cmd.variant));
    const binary = codec !== 'json';
    // Text is cut at byte boundaries, so fragments may split a UTF-8 sequence.
    const data = binary ? Buffer.from(encoded) : Buffer.from(encoded, 'utf8');
    if (!cmd.fragmented) return ws.send(data, { binary });
    for (let i = 0; i < data.length; i += 7) {
      ws.send(data.subarray(i, i + 7), { binary, fin: i + 7 >= data.length });
    }
  } else if (cmd.cmd === 'echo') {
    ws.send(cmd.data);
  } else if (cmd.cmd === 'close') {
    ws.close(cmd.code, cmd.reason);
  } else {
    throw new Error(`unknown command ${inspect(cmd)}`);
  }
}

function session(ws, codec) {
  ws.on('message', (data, isBinary) => handle(ws, codec, data, isBinary));
  ws.on('close', (code, reason) => {
    console.log(JSON.stringify({ event: 'closed', code, reason: reason.toString('utf8') }));
  });
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { codec: { type: 'string' }, url: { type: 'string' }, compress: { type: 'string' } },
});
if (!(values.codec in codecs)) throw new Error(`--codec must be one of ${Object.keys(codecs)}`);
const compression = {
  on: { perMessageDeflate: { threshold: 0 } },
  off: { perMessageDeflate: false },
  'no-context': {
    perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
  },
};
if (values.compress !== undefined && !Object.hasOwn(compression, values.compress)) {
  throw new Error(`--compress must be one of ${Object.keys(compression)}`);
}
const options = values.compress === undefined ? {} : compression[values.compress];
// ws.extensions names the extensions without their parameters, so the header itself is
// reported: as the server wrote it, or as the client read it.
const reportExtensions = (header) => {
  if (values.compress !== undefined) {
    console.log(JSON.stringify({ event: 'extensions', value: header ?? '' }));
  }
};
if (positionals[0] === 'server') {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options }, () => {
    console.log(`listening on ws://127.0.0.1:${server.address().port}`);
  });
  const answers = new WeakMap();
  server.on('headers', (headers, req) => {
    const prefix = 'sec-websocket-extensions:';
    const line = headers.find((h) => h.toLowerCase().startsWith(prefix));
    answers.set(req, line?.slice(prefix.length).trim());
  });
  server.on('connection', (ws, req) => {
    reportExtensions(answers.get(req));
    session(ws, values.codec);
  });
} else if (positionals[0] === 'client') {
  const ws = new WebSocket(values.url, options);
  let answer;
  ws.on('upgrade', (res) => {
    answer = res.headers['sec-websocket-extensions'];
  });
  ws.on('open', () => reportExtensions(answer));
  session(ws, values.codec);
} else {
  throw new Error('usage: peer.mjs server|client --codec C [--url URL] [--compress MODE]');
}
