/**
 * Finds the text messages in the server-to-client half of a WebSocket TCP
 * stream, so that the simulator's TCP front can tell which frames it really
 * handed to a client's socket (RFC 6455 §4.2.2 handshake response, §5.2 base
 * framing). Used only to account for delivery in tests; it never alters bytes.
 *
 * @module
 */

const HEADER_END = [13, 10, 13, 10]; // "\r\n\r\n" ends the HTTP 101 response

/**
 * Incremental scanner: feed it chunks in order, get back each complete text
 * frame's payload. Skips the HTTP upgrade response first. Control frames
 * (ping/pong/close) and binary frames are skipped; fragmented or compressed
 * (RSV1) text frames are skipped too, since Deno's WebSocket server sends
 * neither. Masked frames (client-to-server) are unmasked, so either half can
 * be scanned.
 *
 * @example
 * ```ts
 * const scanner = new WsFrameScanner();
 * for (const text of scanner.push(chunk)) console.log(JSON.parse(text).event);
 * ```
 */
export class WsFrameScanner {
  #buf: Uint8Array = new Uint8Array(0);
  #upgraded = false;
  readonly #decoder = new TextDecoder();

  /**
   * Adds the next chunk of the stream.
   *
   * @returns the payloads (UTF-8 decoded) of the text frames the chunk completed, in order.
   */
  push(chunk: Uint8Array): string[] {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    let b = joined;
    if (!this.#upgraded) {
      const end = indexOf(b, HEADER_END);
      if (end < 0) {
        this.#buf = b;
        return [];
      }
      this.#upgraded = true;
      b = b.subarray(end + HEADER_END.length);
    }
    const out: string[] = [];
    for (;;) {
      if (b.length < 2) break;
      const fin = (b[0] & 0x80) !== 0;
      const rsv1 = (b[0] & 0x40) !== 0;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = (b[2] << 8) | b[3];
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        off = 10;
      }
      const maskAt = off;
      if (masked) off += 4;
      if (b.length < off + len) break;
      if (opcode === 1 && fin && !rsv1) {
        const payload = b.slice(off, off + len);
        if (masked) { for (let i = 0; i < len; i++) payload[i] ^= b[maskAt + (i & 3)]; }
        out.push(this.#decoder.decode(payload));
      }
      b = b.subarray(off + len);
    }
    this.#buf = b.slice();
    return out;
  }
}

function indexOf(hay: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
