// A minimal dist client for Node.js 20, written from spec/PROTOCOL.md alone.
// It speaks protocol version 1 as a client: hello (and the token challenge), submit of
// import-path tasks with msgpack arguments, key-in-memory / task-erred, gather (who-has, then
// get-data from the workers), scatter (scatter-plan, then put-data) and release.
//
//   node client.mjs HOST:PORT      # runs a short demonstration and prints JSON
import net from "node:net";
import crypto from "node:crypto";
import { encode, decode, ExtensionCodec } from "@msgpack/msgpack";

const KEYREF_EXT = 1; // msgpack extension type: a reference to another key's value

export class KeyRef {
  constructor(key) { this.key = key; }
}

const codec = new ExtensionCodec();
codec.register({
  type: KEYREF_EXT,
  encode: (value) => (value instanceof KeyRef ? new TextEncoder().encode(value.key) : null),
  decode: (data) => new KeyRef(new TextDecoder().decode(data)),
});
const pack = (value) => encode(value, { extensionCodec: codec });
const unpack = (bytes) => decode(bytes, { extensionCodec: codec });

// Framing: u64 nframes, u64 length per frame, then the frames (little-endian).
function frame(frames) {
  const header = Buffer.alloc(8 * (frames.length + 1));
  header.writeBigUInt64LE(BigInt(frames.length), 0);
  frames.forEach((f, i) => header.writeBigUInt64LE(BigInt(f.length), 8 * (i + 1)));
  return Buffer.concat([header, ...frames.map((f) => Buffer.from(f))]);
}

class Connection {
  static async open(address, token, name = "mini-client-js") {
    const [host, port] = [address.slice(0, address.lastIndexOf(":")), address.slice(address.lastIndexOf(":") + 1)];
    const conn = new Connection();
    await new Promise((resolve, reject) => {
      conn.socket = net.connect({ host, port: Number(port) }, resolve);
      conn.socket.once("error", reject);
    });
    conn.socket.setNoDelay(true);
    // PROTOCOL.md, Liveness: probe the idle connection, so a vanished center ends it
    conn.socket.setKeepAlive(true, 60000);
    conn.socket.on("data", (chunk) => conn.onData(chunk));
    conn.socket.on("close", () => conn.fail(new Error("connection closed by the peer")));
    await conn.handshake(token, name);
    return conn;
  }

  constructor() {
    this.buffer = Buffer.alloc(0);
    this.inbox = [];
    this.waiters = [];
    this.error = null;
  }

  send(messages, payloadFrames = []) {
    this.socket.write(frame([pack(messages), ...payloadFrames]));
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 8) return;
      const n = Number(this.buffer.readBigUInt64LE(0));
      if (this.buffer.length < 8 * (n + 1)) return;
      const lengths = [];
      for (let i = 0; i < n; i++) lengths.push(Number(this.buffer.readBigUInt64LE(8 * (i + 1))));
      const total = 8 * (n + 1) + lengths.reduce((a, b) => a + b, 0);
      if (this.buffer.length < total) return;
      const frames = [];
      let offset = 8 * (n + 1);
      for (const length of lengths) {
        frames.push(this.buffer.subarray(offset, offset + length));
        offset += length;
      }
      this.buffer = this.buffer.subarray(total);
      for (const msg of unpack(frames[0])) {
        if (msg.op === "error") { this.fail(new Error(`${msg.code}: ${msg.message}`)); continue; }
        msg._frames = frames; // payloads refer to frames of their batch by index
        this.inbox.push(msg);
      }
      while (this.inbox.length && this.waiters.length) this.waiters.shift().resolve(this.inbox.shift());
    }
  }

  fail(error) {
    this.error = this.error || error;
    while (this.waiters.length) this.waiters.shift().reject(this.error);
  }

  receive() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async handshake(token, name) {
    const nonce = crypto.randomBytes(32);
    this.send([{ op: "hello", min_version: 1, max_version: 1, role: "client", name, nonce }]);
    const welcome = await this.receive();
    if (welcome.op !== "welcome") throw new Error(`expected welcome, got ${welcome.op}`);
    if (!welcome.auth) return;
    if (!token) throw new Error("the server requires a token");
    const hmac = (label, a, b) =>
      crypto.createHmac("sha256", token).update(Buffer.concat([Buffer.from(label), a, b])).digest();
    const expected = hmac("dist acceptor", nonce, Buffer.from(welcome.nonce));
    if (!crypto.timingSafeEqual(expected, Buffer.from(welcome.proof))) throw new Error("the server does not know the token");
    this.send([{ op: "authenticate", proof: hmac("dist initiator", Buffer.from(welcome.nonce), nonce) }]);
    if ((await this.receive()).op !== "authenticated") throw new Error("authentication failed");
  }

  close() { this.socket.destroy(); }
}

export class MiniClient {
  static async connect(address, token) {
    const client = new MiniClient(token);
    client.center = await Connection.open(address, token);
    return client;
  }

  constructor(token) { this.token = token; this.status = new Map(); this.ids = 0; }

  submit(key, fn, args = [], kwargs = {}, deps = []) {
    const task = { key, function: fn, args: { serializer: "msgpack", frames: [1] }, deps };
    this.center.send([{ op: "submit", tasks: [task] }], [pack([args, kwargs])]);
    return key;
  }

  handle(msg) {
    if (["key-in-memory", "task-erred", "key-lost", "key-cancelled"].includes(msg.op)) this.status.set(msg.key, msg);
  }

  async wait(key) {
    while (!this.status.has(key)) this.handle(await this.center.receive());
    return this.status.get(key);
  }

  async request(message) {
    message.id = ++this.ids;
    this.center.send([message]);
    for (;;) {
      const msg = await this.center.receive();
      if (msg.id === message.id) return msg;
      this.handle(msg);
    }
  }

  async gather(keys) {
    for (const key of keys) {
      const outcome = await this.wait(key);
      if (outcome.op === "task-erred") {
        const error = new Error(`${key}: ${outcome.exception_type}: ${outcome.message}`);
        Object.assign(error, { exceptionType: outcome.exception_type, remoteTraceback: outcome.traceback });
        throw error;
      }
      if (outcome.op !== "key-in-memory") throw new Error(`${key}: ${outcome.op}`);
    }
    const { who_has: whoHas } = await this.request({ op: "who-has", keys });
    const byWorker = new Map();
    for (const key of keys) {
      const address = whoHas[key][0];
      byWorker.set(address, [...(byWorker.get(address) || []), key]);
    }
    const values = {};
    for (const [address, workerKeys] of byWorker) {
      const worker = await Connection.open(address, this.token);
      worker.send([{ op: "get-data", id: 1, keys: workerKeys, serializers: ["msgpack"] }]);
      const reply = await worker.receive();
      for (const [key, payload] of Object.entries(reply.data)) {
        values[key] = unpack(reply._frames[payload.frames[0]]);
      }
      worker.close();
    }
    return values;
  }

  async scatter(data) {
    const packed = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, pack(v)]));
    const sizes = Object.fromEntries(Object.entries(packed).map(([k, v]) => [k, v.length]));
    const plan = await this.request({ op: "scatter-plan", keys: sizes });
    const byWorker = new Map();
    for (const [key, targets] of Object.entries(plan.targets)) {
      for (const address of targets) byWorker.set(address, [...(byWorker.get(address) || []), key]);
    }
    for (const [address, workerKeys] of byWorker) {
      const worker = await Connection.open(address, this.token);
      const payloads = Object.fromEntries(workerKeys.map((k, i) => [k, { serializer: "msgpack", frames: [i + 1] }]));
      worker.send([{ op: "put-data", id: 1, data: payloads }], workerKeys.map((k) => packed[k]));
      if ((await worker.receive()).op !== "data-stored") throw new Error("the worker did not store the data");
      worker.close();
    }
    return Object.keys(data);
  }

  release(keys) {
    this.center.send([{ op: "release", keys }]);
    for (const key of keys) this.status.delete(key);
  }

  close() { this.center.close(); }
}

async function demonstrate(address, token) {
  const client = await MiniClient.connect(address, token);
  await client.scatter({ "js-x": 16, "js-y": 9 });
  client.submit("js-sqrt-x", "math:sqrt", [new KeyRef("js-x")], {}, ["js-x"]);
  client.submit("js-sqrt-y", "math:sqrt", [new KeyRef("js-y")], {}, ["js-y"]);
  client.submit("js-sum", "operator:add", [new KeyRef("js-sqrt-x"), new KeyRef("js-sqrt-y")], {}, ["js-sqrt-x", "js-sqrt-y"]);
  const values = await client.gather(["js-sum", "js-sqrt-x", "js-x"]);
  client.submit("js-bad", "math:sqrt", [-1]);
  let error = null;
  try {
    await client.gather(["js-bad"]);
  } catch (e) {
    error = { type: e.exceptionType, message: e.message, has_traceback: (e.remoteTraceback || "").includes("Traceback") };
  }
  client.release(["js-sum", "js-sqrt-x", "js-sqrt-y", "js-x", "js-y", "js-bad"]);
  await new Promise((r) => setTimeout(r, 50)); // let the release leave before closing
  client.close();
  return { values, error };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  demonstrate(process.argv[2], process.env.DIST_TOKEN)
    .then((result) => console.log(JSON.stringify(result)))
    .catch((e) => { console.error(e); process.exit(1); });
}
