/**
 * Reading an HTTP body with a size cap, so that a runaway or hostile answer
 * (or webhook request) costs neither memory nor the event loop: the OAuth
 * client reads at most 64 KiB, the API client 4 MiB, the webhook receiver
 * 64 KiB (README "How it knows").
 *
 * @module
 */

/**
 * A response body over the limit the caller set (the read was cancelled).
 *
 * @example
 * ```ts
 * try { await readTextCapped(res, 1024); } catch (e) {
 *   if (e instanceof ResponseTooLargeError) console.log(e.limitBytes);
 * }
 * ```
 */
export class ResponseTooLargeError extends Error {
  /** The limit, bytes. */
  readonly limitBytes: number;
  /**
   * Creates the error.
   *
   * @param limitBytes The limit that was exceeded, bytes.
   * @param options `cause`, when there is one.
   */
  constructor(limitBytes: number, options?: ErrorOptions) {
    super(`response body over ${limitBytes} bytes`, options);
    this.name = "ResponseTooLargeError";
    this.limitBytes = limitBytes;
  }
}

/**
 * Reads a request's or response's body, at most `maxBytes` (bytes): a larger
 * body is cancelled and `null` is returned, so a runaway body costs neither
 * memory nor the event loop. A declared `Content-Length` over the limit is
 * refused before reading.
 *
 * @returns the bytes, or null when the body is larger than `maxBytes`.
 * @throws {TypeError|DOMException} when reading fails (network, timeout).
 *
 * @example
 * ```ts
 * const bytes = await readBodyCapped(req, 65_536); // null: too large
 * ```
 */
export async function readBodyCapped(
  msg: Request | Response,
  maxBytes: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(msg.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await msg.body?.cancel().catch(() => {});
    return null;
  }
  if (!msg.body) return new Uint8Array(0);
  const reader = msg.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return all;
}

/**
 * A response's body as UTF-8 text, at most `maxBytes` (bytes); see {@linkcode readBodyCapped}.
 *
 * @throws {ResponseTooLargeError} when the body is larger than `maxBytes`.
 * @throws {TypeError|DOMException} when reading fails (network, timeout).
 *
 * @example
 * ```ts
 * const text = await readTextCapped(await fetch(url), 64 * 1024);
 * ```
 */
export async function readTextCapped(res: Response, maxBytes: number): Promise<string> {
  const bytes = await readBodyCapped(res, maxBytes);
  if (bytes === null) throw new ResponseTooLargeError(maxBytes);
  return new TextDecoder().decode(bytes);
}
