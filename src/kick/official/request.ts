/**
 * The request loop under every call to Kick's API (docs/kick-protocol.md
 * §4.3–§4.9) and to the unofficial `kick.com/api/v2` (§2, §5): the shared
 * request budget (`http/budget.ts`), the bearer token with one refresh after
 * a 401, bounded retries of 429 (and of 5xx on idempotent requests, honouring
 * `Retry-After`), the exchange itself (`http/transport.ts`: timeout, 4 MiB
 * body cap, `onRequest`) and the reading of the answer into its wire schema
 * or a {@linkcode KickApiError} (`api_error.ts`).
 *
 * @module
 */

import type { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { networkCause } from "../../log/errors.ts";
import { backoffDelay, parseRetryAfter } from "../http/backoff.ts";
import { RequestBudget } from "../http/budget.ts";
import type { ExchangeObserver } from "../http/exchange.ts";
import { HttpTransport, TransportError } from "../http/transport.ts";
import {
  blockedError,
  failureError,
  KickApiError,
  looksLikeHtml,
  parseAnswer,
} from "./api_error.ts";
import type { TokenSource } from "./oauth.ts";

const log = getLogger(["kickmon", "api"]);

/**
 * Largest answer read from the official or unofficial API, bytes (a full
 * batch of 50 channels is ~50 KB): a larger one is refused unread.
 */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024;

/** One request for {@linkcode ApiRequester.request}. */
export interface RequestSpec<T> {
  /** HTTP method; only `POST` is not idempotent (never retried after a 5xx). */
  readonly method: "GET" | "POST" | "DELETE";
  /** The full URL, query included. */
  readonly url: URL;
  /** Low-cardinality label for `onRequest`, errors and logs, e.g. `GET /channels`. */
  readonly endpoint: string;
  /** Send `Authorization: Bearer …` (and refresh once after a 401). */
  readonly auth: boolean;
  /** Count against the shared request budget. */
  readonly budget: boolean;
  /** JSON body, sent with `content-type: application/json`. */
  readonly json?: unknown;
  /** Zod schema of the whole body; undefined when 204 is expected. */
  readonly schema?: z.ZodType<T>;
}

/** Options of {@linkcode ApiRequester} (and the shared part of `KickApiOptions`). */
export interface ApiRequesterOptions {
  /** Source of app access tokens (a `TokenProvider`). */
  readonly tokens: TokenSource;
  /**
   * Budget shared by every caller of this client, in requests per minute
   * (token bucket; default 100, §4.9). 429 retries count against it.
   */
  readonly maxRequestsPerMinute?: number;
  /** Bucket size: requests that may go out back to back (default: 10 s worth, at least 1). */
  readonly burst?: number;
  /** Timeout of one HTTP request incl. reading the body, in ms (default 10 000). */
  readonly timeoutMs?: number;
  /** `fetch` implementation (default `globalThis.fetch`). */
  readonly fetch?: typeof fetch;
  /**
   * Called once per HTTP request with a low-cardinality endpoint label
   * (`GET /channels`, `GET unofficial /channels/{slug}`, …), the status or
   * `"error"` (network/timeout), and the duration in ms.
   */
  readonly onRequest?: (endpoint: string, status: number | "error", durationMs: number) => void;
  /**
   * Called with every answer read (each attempt, before retries or errors):
   * endpoint label, HTTP status and headers. Feeds the endpoint capability
   * record (`capabilities.ts`).
   */
  readonly onAnswer?: (endpoint: string, status: number, headers: Headers) => void;
  /** Observer of every answer read (`http/exchange.ts`; `kickmon capture`). */
  readonly onExchange?: ExchangeObserver;
  /** Retries after 429 (and 5xx on idempotent requests) before giving up (default 3). */
  readonly maxRetries?: number;
  /** First backoff delay without `Retry-After`, in ms (default 1000); doubles per retry, with jitter. */
  readonly backoffBaseMs?: number;
  /** Largest backoff or honoured `Retry-After`, in ms (default 60 000). */
  readonly backoffMaxMs?: number;
  /** Back-off hint put on `blocked` errors, in ms (default 300 000). */
  readonly blockedBackoffMs?: number;
}

/**
 * Sends API requests with the shared budget, token refresh on 401, bounded
 * retries and typed errors. One instance per `KickApi`; the unofficial
 * lookup uses the same one (unbudgeted, unauthenticated).
 *
 * @example
 * ```ts
 * const requester = new ApiRequester({ tokens, maxRequestsPerMinute: 60 });
 * const body = await requester.request({
 *   method: "GET",
 *   url: new URL("https://api.kick.com/public/v1/public-key"),
 *   endpoint: "GET /public-key",
 *   auth: true,
 *   budget: true,
 *   schema: envelope(PublicKeyWire),
 * });
 * ```
 */
export class ApiRequester {
  readonly #tokens: TokenSource;
  readonly #transport: HttpTransport;
  readonly #budget: RequestBudget;
  readonly #maxRetries: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #blockedBackoffMs: number;
  readonly #onAnswer: ApiRequesterOptions["onAnswer"];

  /**
   * Creates a requester; nothing is sent until {@linkcode ApiRequester.request}.
   *
   * @param opts See {@linkcode ApiRequesterOptions}.
   * @throws {TypeError} when `maxRequestsPerMinute` ≤ 0.
   */
  constructor(opts: ApiRequesterOptions) {
    this.#tokens = opts.tokens;
    this.#transport = new HttpTransport({
      timeoutMs: opts.timeoutMs ?? 10_000,
      maxBodyBytes: MAX_API_BODY_BYTES,
      fetch: opts.fetch,
      onRequest: opts.onRequest,
      onExchange: opts.onExchange,
      onHookError: (e) => log.warn("onRequest hook threw: {error}", { error: String(e) }),
    });
    this.#maxRetries = Math.max(0, opts.maxRetries ?? 3);
    this.#backoffBaseMs = opts.backoffBaseMs ?? 1000;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 60_000;
    this.#blockedBackoffMs = opts.blockedBackoffMs ?? 300_000;
    this.#onAnswer = opts.onAnswer;
    this.#budget = new RequestBudget({
      maxRequestsPerMinute: opts.maxRequestsPerMinute ?? 100,
      burst: opts.burst,
    });
  }

  /**
   * Sends `spec` until it succeeds or fails for good.
   *
   * @returns The body parsed by `spec.schema` (`undefined` without a schema).
   * @throws {KickApiError} see {@linkcode KickApiErrorKind}.
   * @throws {OAuthError} when no token can be obtained (`InvalidCredentialsError` is fatal).
   * @example
   * ```ts
   * await requester.request({ method: "DELETE", url, endpoint: "DELETE /events/subscriptions", auth: true, budget: true });
   * ```
   */
  async request<T>(spec: RequestSpec<T>): Promise<T> {
    const { endpoint } = spec;
    let refreshedAfter401 = false;
    let retries = 0;
    for (;;) {
      if (this.#transport.signal.aborted) throw closedError(endpoint);
      if (spec.budget && !await this.#budget.take(this.#transport.signal)) {
        throw closedError(endpoint);
      }
      const token = spec.auth ? await this.#tokens.getToken() : undefined;
      const headers: Record<string, string> = { accept: "application/json" };
      if (token) headers.authorization = `Bearer ${token}`;
      if (spec.json !== undefined) headers["content-type"] = "application/json";

      let res: Response;
      let text: string;
      try {
        ({ res, text } = await this.#transport.send(endpoint, spec.url, {
          method: spec.method,
          headers,
          body: spec.json === undefined ? undefined : JSON.stringify(spec.json),
        }));
      } catch (e) {
        throw this.#transportFailure(e, endpoint);
      }
      const status = res.status;
      try {
        this.#onAnswer?.(endpoint, status, res.headers);
      } catch (e) {
        log.warn("onAnswer hook threw: {error}", { error: String(e) });
      }

      if (status >= 200 && status < 300) {
        if (!spec.schema) return undefined as T;
        if (looksLikeHtml(text, res)) {
          throw blockedError(endpoint, status, text, res, this.#blockedBackoffMs);
        }
        return parseAnswer(spec.schema, text, endpoint, status);
      }

      if (status === 401 && spec.auth && token !== undefined && !refreshedAfter401) {
        refreshedAfter401 = true;
        this.#tokens.invalidate(token);
        log.info("{endpoint}: 401, refreshing the token and retrying once", { endpoint });
        continue;
      }

      const idempotent = spec.method !== "POST";
      if (
        (status === 429 || (status >= 500 && idempotent && !looksLikeHtml(text, res))) &&
        retries < this.#maxRetries
      ) {
        const ra = parseRetryAfter(res.headers.get("retry-after"), Date.now());
        const delay = Math.min(
          this.#backoffMaxMs,
          ra ?? backoffDelay(retries, this.#backoffBaseMs, this.#backoffMaxMs),
        );
        retries++;
        // A 429 pauses the whole shared budget, not just this caller.
        const pauseAll = status === 429 && spec.budget;
        if (pauseAll) this.#budget.pause(delay);
        log.warn("{endpoint}: HTTP {status}, retry {retry}/{max} in {delayMs} ms", {
          endpoint,
          status,
          retry: retries,
          max: this.#maxRetries,
          delayMs: delay,
        });
        if (!pauseAll && !await this.#transport.sleep(delay)) throw closedError(endpoint);
        continue;
      }
      throw failureError(endpoint, status, text, res, {
        retries,
        refreshed: refreshedAfter401,
        blockedBackoffMs: this.#blockedBackoffMs,
        backoffBaseMs: this.#backoffBaseMs,
        backoffMaxMs: this.#backoffMaxMs,
      });
    }
  }

  /**
   * Aborts in-flight requests and budget waits; later requests reject with kind `closed`.
   *
   * @example
   * ```ts
   * requester.close();
   * ```
   */
  close(): void {
    this.#transport.close();
  }

  /** The {@linkcode KickApiError} for a request that got no answer. */
  #transportFailure(e: unknown, endpoint: string): KickApiError {
    if (!(e instanceof TransportError)) throw e;
    const cause = e.cause;
    switch (e.kind) {
      case "closed":
        return new KickApiError("closed", `${endpoint}: client closed`, { endpoint, cause });
      case "too_large":
        return new KickApiError(
          "malformed",
          `${endpoint}: answer over ${MAX_API_BODY_BYTES} bytes, not read`,
          { endpoint, cause },
        );
      case "timeout":
        // Name the host and the cause: Deno's fetch says only "fetch failed".
        return new KickApiError(
          "timeout",
          `${endpoint} at ${e.host}: no response within ${this.#transport.timeoutMs} ms`,
          { endpoint, cause },
        );
      case "not_permitted":
      case "network":
        return new KickApiError(
          "network",
          `${endpoint} at ${e.host}: request failed: ${networkText(e)}`,
          { endpoint, cause },
        );
    }
  }
}

/** The error of a request made after, or cut short by, `close()`. */
function closedError(endpoint: string): KickApiError {
  return new KickApiError("closed", `${endpoint}: client closed`, { endpoint });
}

/** What the API's messages have always said for a failed request: the network cause. */
function networkText(e: TransportError): string {
  return e.kind === "not_permitted" ? networkCause(e.cause) : e.message;
}
