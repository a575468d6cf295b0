// Anchor (d): the fan-out contract in Node `ws`, as its README broadcasts: a set of clients
// per topic, and each publication, decoded and encoded once, sent to every open client with
// `client.send(frame)`. ws sets TCP_NODELAY; a slow client's messages wait in its buffer.
//
//     NODE_PATH=$CARGO_TARGET_DIR/peers/node/node_modules node anchor.cjs --listen 127.0.0.1:0 --codec msgpack|json
//
// CommonJS, so that NODE_PATH finds the peers' packages (ES modules ignore it).

const { WebSocketServer, WebSocket } = require("ws");
const { decode: unpack, encode: pack } = require("@msgpack/msgpack");

const flag = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const listen = flag("--listen", "127.0.0.1:0");
const codec = flag("--codec", "msgpack");
const at = listen.lastIndexOf(":");
const host = listen.slice(0, at);
const port = Number(listen.slice(at + 1));

let decode, encode;
if (codec === "msgpack") {
  decode = (data) => unpack(data);
  encode = (value) => Buffer.from(pack(value));
} else if (codec === "json") {
  decode = (data) => JSON.parse(data.toString());
  encode = (value) => JSON.stringify(value);
} else {
  console.error(`unknown codec ${codec}`);
  process.exit(2);
}

const topics = new Map();
const subscribers = (name) => {
  let set = topics.get(name);
  if (!set) {
    set = new Set();
    topics.set(name, set);
  }
  return set;
};

const wss = new WebSocketServer({
  host,
  port,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(codec) ? codec : false),
});

wss.on("connection", (ws, request) => {
  const path = new URL(request.url, "ws://x").pathname;
  if (path.startsWith("/topics/")) {
    const set = subscribers(path.slice("/topics/".length));
    set.add(ws);
    ws.on("close", () => set.delete(ws));
  } else if (path.startsWith("/publish/")) {
    const set = subscribers(path.slice("/publish/".length));
    ws.on("message", (data) => {
      const frame = encode(decode(data));
      for (const client of set) {
        if (client.readyState === WebSocket.OPEN) {
          client.send(frame);
        }
      }
    });
  }
  ws.on("error", () => {});
});

wss.on("listening", () => {
  console.log(`listening on ws://${host}:${wss.address().port}`);
});
