/**
 * A one-shot Pusher protocol client for diagnosis ({@linkcode PusherProbe}):
 * the wire side of `kickmon doctor`'s Pusher checks, kept in the wire layer so
 * the CLI holds no protocol parsing.
 *
 * @module
 */

/**
 * A one-shot Pusher client on a plain WebSocket: every frame is queued as
 * `{event, data, channel}` (a `data` string holding JSON is parsed, docs/kick-protocol.md §1.2),
 * nothing reconnects. For `kickmon doctor`, which reports each frame.
 *
 * @example
 * ```ts
 * const probe = new PusherProbe("wss://ws-us2.pusher.com/app/KEY?protocol=7");
 * const hello = await probe.next(["pusher:connection_established"], 10_000);
 * probe.close();
 * ```
 */
export class PusherProbe {
  readonly #ws: WebSocket;
  readonly #queue: Array<{ event: string; data: unknown; channel?: string }> = [];
  #waiter: (() => void) | null = null;
  #closed: string | null = null;

  constructor(url: string) {
    this.#ws = new WebSocket(url);
    this.#ws.onmessage = (m) => {
      try {
        const f = JSON.parse(String(m.data));
        const data = typeof f.data === "string"
          ? (() => {
            try {
              return JSON.parse(f.data);
            } catch {
              return f.data;
            }
          })()
          : f.data;
        this.#queue.push({ event: String(f.event), data, channel: f.channel });
      } catch { /* not a Pusher frame */ }
      this.#waiter?.();
    };
    this.#ws.onclose = (c) => {
      this.#closed = `closed ${c.code}${c.reason ? ` ${c.reason}` : ""}`;
      this.#waiter?.();
    };
    this.#ws.onerror = (e) => {
      this.#closed ??= `WebSocket error: ${(e as ErrorEvent).message ?? "connection failed"}`;
      this.#waiter?.();
    };
  }

  /** The next frame whose event is in `events`, or a `pusher:error`; throws on close/timeout. */
  async next(
    events: string[],
    timeoutMs: number,
  ): Promise<{ event: string; data: unknown; channel?: string }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex((f) =>
        events.includes(f.event) || f.event === "pusher:error"
      );
      if (i >= 0) return this.#queue.splice(i, 1)[0];
      if (this.#closed) throw new Error(this.#closed);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${events.join(" or ")} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
  }

  send(event: string, data: unknown): void {
    this.#ws.send(JSON.stringify({ event, data }));
  }

  close(): void {
    try {
      this.#ws.close(1000);
    } catch { /* already closed */ }
  }
}
