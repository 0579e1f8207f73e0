/**
 * The one HTTP exchange under both of kickmon's clients of Kick's servers:
 * the OAuth token provider (`id.kick.com`, docs/kick-protocol.md §4.1) and the
 * API client (`api.kick.com/public/v1` and the unofficial `kick.com/api/v2`,
 * §4.3–§4.9, §2, §5).
 *
 * One {@linkcode HttpTransport} sends a request with a timeout (which
 * includes reading the body), reads the answer up to a size cap, reports
 * every attempt to an `onRequest` hook (endpoint label, status or `"error"`,
 * ms), hands every answer, secrets taken out, to an optional `onExchange`
 * observer (`exchange.ts`; `kickmon capture` records them), stops everything on `close()`, and turns every way a request can fail
 * before an answer is read into a {@linkcode TransportError} of one
 * {@linkcode TransportFailureKind}, the thrown value kept as its `cause`.
 * What an answer *means* (OAuth error codes, API error kinds, retries,
 * the request budget of `budget.ts`) is left to the clients, which keep
 * their own error classes and messages.
 *
 * @module
 */

import { networkCause } from "../../log/errors.ts";
import { abortableSleep } from "../../util/abortable_sleep.ts";
import { readTextCapped, ResponseTooLargeError } from "./body.ts";
import { type ExchangeObserver, keptHeaders, redactExchangeBody } from "./exchange.ts";

/**
 * Why a request produced no answer:
 * - `closed`: {@linkcode HttpTransport.close} was called;
 * - `too_large`: the body was over the cap (a {@linkcode ResponseTooLargeError} is the cause);
 * - `not_permitted`: Deno's permissions refused the host (`Deno.errors.NotCapable`);
 * - `timeout`: no complete answer within the timeout;
 * - `network`: anything else (DNS, refused connection, TLS, a reset while reading).
 */
export type TransportFailureKind = "closed" | "too_large" | "not_permitted" | "timeout" | "network";

/**
 * A request that produced no answer. `cause` is what `fetch` or the body
 * read threw; `message` describes it without the host, which the client
 * names in its own error.
 *
 * @example
 * ```ts
 * try {
 *   await transport.send("GET /channels", url, { method: "GET" });
 * } catch (e) {
 *   if (e instanceof TransportError && e.kind === "timeout") console.warn(e.host, "is slow");
 * }
 * ```
 */
export class TransportError extends Error {
  /** Why. */
  readonly kind: TransportFailureKind;
  /** `host[:port]` of the request's URL. */
  readonly host: string;

  /**
   * Creates a transport error.
   *
   * @param kind Why the request failed.
   * @param message Description (the network cause, the permission message, …).
   * @param opts `host` of the request and the thrown value as `cause`.
   */
  constructor(
    kind: TransportFailureKind,
    message: string,
    opts: { host: string; cause: unknown },
  ) {
    super(message, { cause: opts.cause });
    this.name = "TransportError";
    this.kind = kind;
    this.host = opts.host;
  }
}

/** Options of {@linkcode HttpTransport}. */
export interface HttpTransportOptions {
  /** Timeout of one request including reading its body, in ms. */
  readonly timeoutMs: number;
  /** Largest body read, in bytes; a larger one is a `too_large` failure. */
  readonly maxBodyBytes: number;
  /** `fetch` implementation (default `globalThis.fetch`). */
  readonly fetch?: typeof fetch;
  /**
   * Called once per request with the caller's endpoint label, the HTTP
   * status or `"error"` (no answer), and the duration in ms.
   */
  readonly onRequest?: (endpoint: string, status: number | "error", durationMs: number) => void;
  /**
   * Called with every answer read (method, URL, status, kept headers, body text with token
   * values replaced; see `exchange.ts`). Unset (the default), it costs one check per request.
   */
  readonly onExchange?: ExchangeObserver;
  /** Called when `onRequest` or `onExchange` throws (default: ignored); the request goes on either way. */
  readonly onHookError?: (error: unknown) => void;
}

/** An answer: the response (body consumed) and its body as text. */
export interface Exchange {
  /** Status and headers; the body has been read into `text`. */
  readonly res: Response;
  /** The body, UTF-8, at most `maxBodyBytes`. */
  readonly text: string;
}

/**
 * Sends requests with a timeout, a body cap, a metrics hook and one
 * `close()` for all of them.
 *
 * @example
 * ```ts
 * const transport = new HttpTransport({ timeoutMs: 10_000, maxBodyBytes: 64 * 1024 });
 * const { res, text } = await transport.send("POST /oauth/token", url, { method: "POST", body });
 * console.log(res.status, text.length);
 * transport.close();
 * ```
 */
export class HttpTransport {
  /** Timeout of one request including its body, in ms. */
  readonly timeoutMs: number;
  /** Largest body read, in bytes. */
  readonly maxBodyBytes: number;
  readonly #fetch: typeof fetch;
  readonly #onRequest: HttpTransportOptions["onRequest"];
  readonly #onHookError: HttpTransportOptions["onHookError"];
  readonly #onExchange: HttpTransportOptions["onExchange"];
  readonly #closed = new AbortController();

  /**
   * Creates a transport; nothing is sent until {@linkcode HttpTransport.send}.
   *
   * @param opts See {@linkcode HttpTransportOptions}.
   */
  constructor(opts: HttpTransportOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.maxBodyBytes = opts.maxBodyBytes;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#onRequest = opts.onRequest;
    this.#onHookError = opts.onHookError;
    this.#onExchange = opts.onExchange;
  }

  /**
   * Aborted by {@linkcode HttpTransport.close}.
   *
   * @example
   * ```ts
   * if (transport.signal.aborted) throw new Error("closed");
   * ```
   */
  get signal(): AbortSignal {
    return this.#closed.signal;
  }

  /**
   * Sends one request and reads its answer (any status).
   *
   * @param endpoint Low-cardinality label for `onRequest`, e.g. `GET /channels`.
   * @param url Where.
   * @param init Method, headers, body; `signal` is set by the transport.
   * @returns The response and its body text.
   * @throws {TransportError} when no answer was read (see {@linkcode TransportFailureKind}).
   * @example
   * ```ts
   * const { res, text } = await transport.send("GET /public-key", url, { method: "GET" });
   * ```
   */
  async send(endpoint: string, url: URL, init: RequestInit): Promise<Exchange> {
    const started = performance.now();
    const sentAt = this.#onExchange ? Date.now() : 0;
    try {
      const res = await this.#fetch(url, {
        ...init,
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.#closed.signal]),
      });
      const text = await readTextCapped(res, this.maxBodyBytes);
      this.#report(endpoint, res.status, started);
      if (this.#onExchange) this.#observe(endpoint, url, init, res, text, sentAt, started);
      return { res, text };
    } catch (e) {
      this.#report(endpoint, "error", started);
      throw this.#failure(e, url.host);
    }
  }

  /**
   * Waits `ms`, or less when the transport is closed meanwhile.
   *
   * @param ms How long, in ms.
   * @returns true after the full wait; false when closed.
   * @example
   * ```ts
   * if (!await transport.sleep(backoffDelay(0, 500, 30_000))) return;
   * ```
   */
  async sleep(ms: number): Promise<boolean> {
    await abortableSleep(ms, this.#closed.signal);
    return !this.#closed.signal.aborted;
  }

  /**
   * Aborts every request and wait in flight; later requests fail `closed`.
   *
   * @example
   * ```ts
   * transport.close();
   * ```
   */
  close(): void {
    this.#closed.abort();
  }

  #report(endpoint: string, status: number | "error", started: number): void {
    if (!this.#onRequest) return;
    try {
      this.#onRequest(endpoint, status, performance.now() - started);
    } catch (e) {
      // A metrics hook must not break the request.
      this.#onHookError?.(e);
    }
  }

  #observe(
    endpoint: string,
    url: URL,
    init: RequestInit,
    res: Response,
    text: string,
    sentAt: number,
    started: number,
  ): void {
    try {
      const { body, removed } = redactExchangeBody(text);
      this.#onExchange!({
        endpoint,
        method: init.method ?? "GET",
        url: url.href,
        status: res.status,
        headers: keptHeaders(res.headers),
        body,
        sentAt,
        durationMs: performance.now() - started,
        removed,
      });
    } catch (e) {
      // An observer must not break the request.
      this.#onHookError?.(e);
    }
  }

  #failure(e: unknown, host: string): TransportError {
    if (this.#closed.signal.aborted) {
      return new TransportError("closed", "closed", { host, cause: e });
    }
    if (e instanceof ResponseTooLargeError) {
      return new TransportError("too_large", e.message, { host, cause: e });
    }
    if (e instanceof Deno.errors.NotCapable) {
      // The build's permissions, not the network: retrying cannot help.
      return new TransportError("not_permitted", e.message, { host, cause: e });
    }
    if (e instanceof DOMException && e.name === "TimeoutError") {
      return new TransportError("timeout", `no response within ${this.timeoutMs} ms`, {
        host,
        cause: e,
      });
    }
    // Deno's fetch says only "fetch failed"; the cause (DNS, connection
    // refused, certificate) is what an operator can act on.
    return new TransportError("network", networkCause(e), { host, cause: e });
  }
}
