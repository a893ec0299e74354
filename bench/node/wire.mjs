// What every Node load generator shares (bench/node/*.mjs): the step protocol with its Python
// worker, the clock, and a minimal RFC 6455 client on raw TCP sockets (handshake, masked text
// frames out, unmasked frames in), as bench/wire.py is in Python. `ws` costs ~1 ms per connect in
// its HTTP client; this costs the kernel's work and little more.
import crypto from "node:crypto";
import net from "node:net";
import readline from "node:readline";

/** CLOCK_MONOTONIC nanoseconds, the clock of Python's time.monotonic_ns(). */
export const now = () => Number(process.hrtime.bigint());

const lines = readline.createInterface({ input: process.stdin });
const released = [];
lines.on("line", () => released.shift()?.());

/** Report one step to the Python worker (one JSON line) and wait until it says go on. */
export function step(name, data = {}) {
  process.stdout.write(JSON.stringify({ step: name, data }) + "\n");
  return new Promise((resolve) => released.push(resolve));
}

export class RawWebSocket {
  /** `onText(buffer)` receives each text frame's payload (a view valid during the call). */
  constructor(onText) {
    this.onText = onText;
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
    // Server frames: unmasked, final (the servers never fragment); returns the incomplete tail.
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
      if (opcode === 1) this.onText(data.subarray(at + head, at + head + length));
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

  get closed() {
    return this.socket.destroyed;
  }

  destroy() {
    this.socket.destroy();
  }
}
