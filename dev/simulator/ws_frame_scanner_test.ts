import assert from "node:assert/strict";
import { WsFrameScanner } from "./ws_frame_scanner.ts";

const enc = new TextEncoder();

/** One unmasked server frame (RFC 6455 §5.2) with the given opcode. */
function frame(payload: Uint8Array, opcode = 1, fin = true): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? [n] : n < 65536 ? [126, n >> 8, n & 255] : [127, 0, 0, 0, 0, ...[
    n >>> 24,
    (n >> 16) & 255,
    (n >> 8) & 255,
    n & 255,
  ]];
  return new Uint8Array([(fin ? 0x80 : 0) | opcode, ...head, ...payload]);
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) out.set(p, (off += p.length) - p.length);
  return out;
};

Deno.test("scanner: skips the upgrade response and finds text frames split anywhere", () => {
  const big = "x".repeat(70_000);
  const stream = concat(
    enc.encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
    frame(enc.encode('{"event":"a"}')),
    frame(enc.encode("ping"), 9), // control frame: not a message
    frame(enc.encode("é".repeat(100))), // 16-bit length
    frame(enc.encode("part"), 1, false), // fragmented: skipped
    frame(enc.encode(big)), // 64-bit length
  );
  // Every split point of a prefix, and byte-by-byte for the whole stream.
  for (const step of [1, 7, 1000, stream.length]) {
    const s = new WsFrameScanner();
    const got: string[] = [];
    for (let i = 0; i < stream.length; i += step) got.push(...s.push(stream.subarray(i, i + step)));
    assert.deepEqual(got.map((t) => t.slice(0, 13)), [
      '{"event":"a"}',
      "ééééééééééééé",
      "xxxxxxxxxxxxx",
    ]);
    assert.equal(got[2].length, big.length);
  }
});

Deno.test("scanner: nothing before the upgrade completes, masked frames are unmasked", () => {
  const s = new WsFrameScanner();
  assert.deepEqual(s.push(enc.encode("HTTP/1.1 101 Switching\r\n")), []);
  const payload = enc.encode("hello");
  const mask = [1, 2, 3, 4];
  const masked = new Uint8Array([
    0x81,
    0x80 | 5,
    ...mask,
    ...payload.map((b, i) => b ^ mask[i & 3]),
  ]);
  assert.deepEqual(s.push(concat(enc.encode("\r\n"), masked)), ["hello"]);
});
