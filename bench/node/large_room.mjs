// A large-room load generator in Node (bench/scenarios/large_room.py, generator "node"). The
// Python generator spends ~5x the server's CPU per member (every key of every presence frame found
// in Python); here presence frames are scanned as bytes and never decoded.
// argv[2] = {"members", "urls", "start", "stop", "fill_timeout", "publisher", "topic"}; one step
// per phase (bench/node/wire.mjs).
import { RawWebSocket, now, step } from "./wire.mjs";

const params = JSON.parse(process.argv[2]);
const { members, start, stop, topic } = params;
const KEY_END = Buffer.from('":{"metas"');
const STATE = Buffer.from('"presence_state"');
const DIFF = Buffer.from('"presence_diff"');

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
    this.ws = new RawWebSocket((data) => this.handle(data));
  }

  open(url) {
    return this.ws.open(url);
  }

  push(event, payload) {
    const ref = String(this.ref++);
    this.ws.send(JSON.stringify(["1", ref, topic, event, payload]));
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
    if (!this.ws.closed) this.ws.send(JSON.stringify([null, String(this.ref++), "phoenix", "heartbeat", {}]));
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
      await member.open(params.urls[index % params.urls.length]);
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
views.forEach((member) => member.ws.destroy());
process.exit(0);
