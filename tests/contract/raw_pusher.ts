/**
 * A raw Pusher connection for the contract suite: a plain `WebSocket`
 * (not pusher-js), so the suite sees every frame exactly as the server sent
 * it (kick-protocol.md §1.2, §1.3). Each received text frame is kept as
 * {@linkcode RawFrame}: the verbatim text and its JSON (or the parse error).
 * It never reconnects and never answers pings itself.
 *
 * @module
 */

/** One received WebSocket text frame. */
export interface RawFrame {
  /** The frame exactly as received. */
  readonly text: string;
  /** `JSON.parse(text)`, when it is JSON. */
  readonly json?: unknown;
  /** Why `text` is not JSON, when it is not. */
  readonly jsonError?: string;
  /** `json.event` when it is a string. */
  readonly event?: string;
  /** `json.channel` when it is a string. */
  readonly channel?: string;
  /** Receipt time, ms since epoch. */
  readonly receivedAt: number;
}

/**
 * A one-shot raw Pusher client.
 *
 * @example
 * ```ts
 * const ws = new RawPusher("wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false");
 * const hello = await ws.next((f) => f.event === "pusher:connection_established", 10_000);
 * ws.send({ event: "pusher:ping", data: {} });
 * await ws.close();
 * ```
 */
export class RawPusher {
  readonly #ws: WebSocket;
  readonly #frames: RawFrame[] = [];
  /** Index of the first frame {@linkcode next} has not looked at yet. */
  #cursor = 0;
  #wake: (() => void) | null = null;
  #closed: string | null = null;
  readonly #closedP: Promise<void>;

  /**
   * Opens the socket (asynchronously; frames queue up from the start).
   *
   * @param url `ws://` or `wss://…/app/{key}?protocol=7…` (§1.1).
   * @throws {SyntaxError} when `url` is not a WebSocket URL.
   */
  constructor(url: string) {
    this.#ws = new WebSocket(url);
    let done!: () => void;
    this.#closedP = new Promise<void>((r) => (done = r));
    this.#ws.onmessage = (m) => {
      const text = typeof m.data === "string" ? m.data : `(binary frame, ${String(m.data)})`;
      let frame: RawFrame = { text, receivedAt: Date.now() };
      try {
        const json = JSON.parse(text) as unknown;
        const o = (json ?? {}) as { event?: unknown; channel?: unknown };
        frame = {
          ...frame,
          json,
          ...(typeof o.event === "string" ? { event: o.event } : {}),
          ...(typeof o.channel === "string" ? { channel: o.channel } : {}),
        };
      } catch (e) {
        frame = { ...frame, jsonError: e instanceof Error ? e.message : String(e) };
      }
      this.#frames.push(frame);
      this.#wake?.();
    };
    this.#ws.onclose = (c) => {
      this.#closed = `socket closed ${c.code}${c.reason ? ` ${c.reason}` : ""}`;
      this.#wake?.();
      done();
    };
    this.#ws.onerror = (e) => {
      this.#closed ??= `WebSocket error: ${(e as ErrorEvent).message ?? "connection failed"}`;
      this.#wake?.();
    };
  }

  /** Every frame received so far, in order. */
  get frames(): readonly RawFrame[] {
    return this.#frames;
  }

  /** Why the socket closed, or null while open. */
  get closed(): string | null {
    return this.#closed;
  }

  /**
   * The next frame (after those already returned by `next`) matching
   * `match`; frames skipped on the way stay in {@linkcode frames}.
   *
   * @param timeoutMs how long to wait, ms.
   * @throws {Error} when the socket closes or `timeoutMs` passes first.
   * @example
   * ```ts
   * const pong = await ws.next((f) => f.event === "pusher:pong", 5_000);
   * ```
   */
  async next(match: (f: RawFrame) => boolean, timeoutMs: number): Promise<RawFrame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.#frames.length) {
        const f = this.#frames[this.#cursor++];
        if (match(f)) return f;
      }
      if (this.#closed) throw new Error(this.#closed);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no such frame within ${timeoutMs} ms`);
      await this.waitForFrame(left);
    }
  }

  /**
   * Resolves when a frame arrives, the socket closes, or `ms` passes.
   *
   * @param ms longest wait, ms.
   * @example
   * ```ts
   * await ws.waitForFrame(1_000);
   * ```
   */
  async waitForFrame(ms: number): Promise<void> {
    if (this.#closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = null;
  }

  /**
   * Sends one client frame as JSON.
   *
   * @throws {DOMException} when the socket is not open.
   * @example
   * ```ts
   * ws.send({ event: "pusher:subscribe", data: { auth: "", channel: "channel.668" } });
   * ```
   */
  send(frame: { event: string; data: unknown }): void {
    this.#ws.send(JSON.stringify(frame));
  }

  /**
   * Closes the socket (1000) and waits for it to be closed, at most 5 s.
   *
   * @example
   * ```ts
   * await ws.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    try {
      this.#ws.close(1000);
    } catch { /* not open yet or already closing */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#closedP,
      new Promise<void>((r) => (timer = setTimeout(r, 5_000))),
    ]);
    clearTimeout(timer);
  }
}
