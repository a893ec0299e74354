// A large-room load generator in Node on raw TCP sockets (bench/scenarios/large_room.py,
// generator "node"): a minimal RFC 6455 client (handshake, masked text frames out, unmasked
// frames in), as bench/wire.py is in Python. The Python generator spends ~5x the server's CPU per
// member (every key of every presence frame found in Python); `ws` costs ~1 ms per connect in its
// HTTP client. Here presence frames are scanned as bytes and never decoded. Driven by a Python worker over stdin/stdout:
// argv[2] = {"members", "urls", "start", "stop", "fill_timeout", "publisher", "topic"}; it prints
// one JSON line per step ({"step": name, "data": {...}}) and waits for a line on stdin before
// going on. Times are CLOCK_MONOTONIC nanoseconds, the clock of Python's time.monotonic_ns().
import crypto from "node:crypto";
import net from "node:net";
import readline from "node:readline";

const params = JSON.parse(process.argv[2]);
const { members, urls, start, stop, topic } = params;
const KEY_END = Buffer.from('":{"metas"');
const STATE = Buffer.from('"presence_state"');
const DIFF = Buffer.from('"presence_diff"');
const now = () => Number(process.hrtime.bigint());

const lines = readline.createInterface({ input: process.stdin });
const released = [];
lines.on("line", () => released.shift()?.());
function step(name, data = {}) {
  process.stdout.write(JSON.stringify({ step: name, data }) + "\n");
  return new Promise((resolve) => released.push(resolve));
}

class Member {
  constructor(index) {
    this.index = index;
    this.seen = new Uint8Array(members);
    this.count = 0;
    this.frames = 0;
    this.completeNs = 0;
    this.messageNs = 0;
    this.ref = 1;
    this.pending = new Map();
  }

  open(url) {
    const { hostname, port, pathname, search } = new URL(url);
    this.chunks = [];
    this.have = 0;
    this.need = 0; // bytes of the frame being received, once its header is in
    this.upgraded = false;
    return new Promise((resolve, reject) => {
      const socket = (this.socket = net.connect({ host: hostname, port: Number(port), noDelay: true }));
      socket.on("connect", () => {
        const key = crypto.randomBytes(16).toString("base64");
        socket.write(
          `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on("error", reject);
      socket.on("data", (chunk) => {
        if (this.need && this.have + chunk.length < this.need) {
          this.chunks.push(chunk); // a large frame still arriving: copy it once, when complete
          this.have += chunk.length;
          return;
        }
        let data = this.chunks.length ? Buffer.concat([...this.chunks, chunk]) : chunk;
        this.chunks = [];
        this.have = 0;
        this.need = 0;
        if (!this.upgraded) {
          const end = data.indexOf("\r\n\r\n");
          if (end === -1) {
            this.chunks = [data];
            this.have = data.length;
            return;
          }
          if (!data.subarray(0, 16).toString("latin1").startsWith("HTTP/1.1 101")) {
            reject(new Error(`upgrade refused: ${data.subarray(0, 40).toString("latin1")}`));
            socket.destroy();
            return;
          }
          this.upgraded = true;
          resolve();
          data = data.subarray(end + 4);
        }
        const rest = this.parse(data);
        if (rest) {
          this.chunks = [rest];
          this.have = rest.length;
        }
      });
    });
  }

  parse(data) {
    // Server frames: unmasked, final (the server never fragments); returns the incomplete tail.
    let at = 0;
    while (data.length - at >= 2) {
      let length = data[at + 1] & 0x7f;
      let head = 2;
      if (length === 126) {
        if (data.length - at < 4) break;
        length = data.readUInt16BE(at + 2);
        head = 4;
      } else if (length === 127) {
        if (data.length - at < 10) break;
        length = Number(data.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (data.length - at < head + length) {
        this.need = head + length;
        break;
      }
      const opcode = data[at] & 0x0f;
      if (opcode === 1) this.handle(data.subarray(at + head, at + head + length));
      at += head + length;
    }
    return at < data.length ? data.subarray(at) : null;
  }

  send(text) {
    const payload = Buffer.from(text);
    const size = payload.length;
    const head = size < 126 ? 6 : 8;
    const frame = Buffer.allocUnsafe(head + size);
    frame[0] = 0x81;
    if (size < 126) {
      frame[1] = 0x80 | size;
    } else {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(size, 2);
    }
    frame.fill(0, head - 4, head); // a zero mask: the payload goes as is
    payload.copy(frame, head);
    this.socket.write(frame);
  }

  push(event, payload) {
    const ref = String(this.ref++);
    this.send(JSON.stringify(["1", ref, topic, event, payload]));
    return new Promise((resolve) => this.pending.set(ref, resolve));
  }

  handle(data) {
    // Presence frames are scanned as bytes, never decoded: each key is the digits before `":{"metas"`.
    const head = data.subarray(0, 96);
    if (head.indexOf(STATE) !== -1 || head.indexOf(DIFF) !== -1) {
      this.frames += 1;
      const seen = this.seen;
      let at = data.indexOf(KEY_END);
      while (at !== -1) {
        let key = 0;
        let scale = 1;
        for (let i = at - 1; i >= 0; i--) {
          const digit = data[i] - 48;
          if (digit < 0 || digit > 9) break;
          key += digit * scale;
          scale *= 10;
        }
        if (!seen[key]) {
          seen[key] = 1;
          this.count += 1;
        }
        at = data.indexOf(KEY_END, at + KEY_END.length);
      }
      if (!this.completeNs && this.count === members) this.completeNs = now();
      return;
    }
    const message = JSON.parse(data.toString());
    if (message[3] === "phx_reply") {
      const resolve = this.pending.get(message[1]);
      if (resolve) {
        this.pending.delete(message[1]);
        resolve(message[4]);
      }
    } else if (message[3] === "msg") {
      this.messageNs = now();
    }
  }

  heartbeat() {
    if (!this.socket.destroyed) this.send(JSON.stringify([null, String(this.ref++), "phoenix", "heartbeat", {}]));
  }
}

await step("ready");
const startNs = now();
const views = [];
const errors = [];
const joinedNs = [];
let next = start;
async function runner() {
  while (next < stop) {
    const index = next++;
    const member = new Member(index);
    try {
      await member.open(urls[index % urls.length]);
      const reply = await member.push("phx_join", { track: String(index) });
      if (reply.status !== "ok") throw new Error(`join refused: ${JSON.stringify(reply)}`);
    } catch (error) {
      errors.push(String(error));
      continue;
    }
    joinedNs.push(now());
    views.push(member);
  }
}
const heartbeats = setInterval(() => views.forEach((member) => member.heartbeat()), 30_000);
await Promise.all(Array.from({ length: Math.min(64, stop - start) }, runner));
const deadline = Date.now() + params.fill_timeout * 1000;
while (Date.now() < deadline && !views.every((member) => member.completeNs)) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const frames = views.map((member) => member.frames);
await step("filled", {
  start_ns: startNs,
  joined: views.length,
  failed: errors.length,
  errors: errors.slice(0, 3),
  joined_ns: Math.max(0, ...joinedNs),
  complete: views.filter((member) => member.completeNs).length,
  complete_ns: Math.max(0, ...views.map((member) => member.completeNs)),
  frames_sum: frames.reduce((a, b) => a + b, 0),
  frames_max: Math.max(0, ...frames),
  incomplete_counts: views
    .filter((member) => !member.completeNs)
    .map((member) => member.count)
    .sort((a, b) => a - b)
    .slice(0, 5),
});
let sentNs = 0;
if (params.publisher && views.length) {
  sentNs = now();
  await views[0].push("publish", { body: "x".repeat(100) });
}
const until = Date.now() + 10_000;
while (Date.now() < until && !views.every((member) => member.messageNs)) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
await step("delivered", {
  sent_ns: sentNs,
  received: views.filter((member) => member.messageNs).length,
  last_ns: Math.max(0, ...views.map((member) => member.messageNs)),
});
clearInterval(heartbeats);
views.forEach((member) => member.socket.destroy());
process.exit(0);
