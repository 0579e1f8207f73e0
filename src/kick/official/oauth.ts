/**
 * App access tokens for Kick's official API: OAuth 2.1 client credentials
 * against `id.kick.com` (kick-protocol.md §4.1).
 *
 * Wire format (§4.1): `POST {oauthUrl}/oauth/token`,
 * `Content-Type: application/x-www-form-urlencoded`, body
 * `grant_type=client_credentials&client_id=…&client_secret=…`; 200 →
 * `{"access_token","token_type","expires_in"}` where `expires_in` is in
 * seconds and has been seen both as a number and as a numeric string; errors
 * are `{"error","error_description"}` (or `{"error":"Invalid request"}`), and
 * Kick has been seen answering a transient 400 with an empty body (§4.1,
 * KickDevDocs #156) and a Cloudflare 403 (§5).
 *
 * Secrets (the client secret, access tokens) never appear in error messages
 * or logs; at most a short non-reversible {@linkcode tokenFingerprint}.
 *
 * @module
 */

import { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { networkCause } from "../../log/errors.ts";

const log = getLogger(["kickmon", "oauth"]);

/** Default HTTP timeout of one token request, in ms. */
export const DEFAULT_OAUTH_TIMEOUT_MS = 10_000;

/**
 * Error codes of {@linkcode OAuthError}. The first ones are OAuth error codes
 * from the server's `error` field; the rest describe transport failures.
 */
export type OAuthErrorCode =
  | "invalid_client"
  | "unauthorized_client"
  | "invalid_request"
  | "network"
  | "timeout"
  | "server_error"
  | "rate_limited"
  | "blocked"
  | "empty_response"
  | "malformed"
  | "closed"
  | "not_permitted"
  | (string & Record<never, never>);

/**
 * A failed token request.
 *
 * `retryable` tells whether retrying later can help (network errors,
 * timeouts, 5xx, 429, Cloudflare 403, a 400 with an empty body, a malformed
 * 200). The message never contains the client secret or a token.
 *
 * @example
 * ```ts
 * try {
 *   await tokens.getToken();
 * } catch (e) {
 *   if (e instanceof OAuthError && e.retryable) console.warn("will retry:", e.code);
 * }
 * ```
 */
export class OAuthError extends Error {
  /** OAuth `error` code from the server, or a transport code (`network`, `timeout`, …). */
  readonly code: OAuthErrorCode;
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** True when a later attempt may succeed. */
  readonly retryable: boolean;

  /**
   * Creates an OAuth error.
   *
   * @param code OAuth or transport error code.
   * @param message Human-readable, secret-free description.
   * @param opts `status` (HTTP), `retryable`, and the underlying `cause`.
   */
  constructor(
    code: OAuthErrorCode,
    message: string,
    opts: { status?: number; retryable: boolean; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "OAuthError";
    this.code = code;
    this.status = opts.status;
    this.retryable = opts.retryable;
  }
}

/**
 * Fatal configuration error: Kick rejected the client id / secret
 * (`invalid_client`, `unauthorized_client`, or HTTP 401 from the token
 * endpoint). Retrying does not help; fix the configuration.
 *
 * @example
 * ```ts
 * try {
 *   await tokens.getToken();
 * } catch (e) {
 *   if (e instanceof InvalidCredentialsError) Deno.exit(78); // EX_CONFIG
 * }
 * ```
 */
export class InvalidCredentialsError extends OAuthError {
  /**
   * Creates a fatal credentials error.
   *
   * @param code `invalid_client` or `unauthorized_client`.
   * @param message Secret-free description.
   * @param opts HTTP `status` and the underlying `cause`.
   */
  constructor(
    code: OAuthErrorCode,
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(code, message, { ...opts, retryable: false });
    this.name = "InvalidCredentialsError";
  }
}

/** Options of {@linkcode TokenProvider}. */
export interface TokenProviderOptions {
  /** OAuth server origin, e.g. `https://id.kick.com`; the request goes to `{oauthUrl}/oauth/token`. */
  readonly oauthUrl: string;
  /** The Kick app's client id. */
  readonly clientId: string;
  /** The Kick app's client secret (never logged). */
  readonly clientSecret: string;
  /**
   * Refresh this many seconds before expiry. Default: the smaller of 60 s and
   * 10 % of the token's lifetime.
   */
  readonly refreshMarginSec?: number;
  /** Timeout of one token request, in ms (default 10 000). */
  readonly timeoutMs?: number;
  /** `fetch` implementation (default `globalThis.fetch`). */
  readonly fetch?: typeof fetch;
  /** Attempts per refresh for retryable failures, including the first (default 4). */
  readonly maxAttempts?: number;
  /** First retry delay, in ms (default 500); doubles per attempt, with jitter. */
  readonly backoffBaseMs?: number;
  /** Largest retry delay, in ms (default 30 000). */
  readonly backoffMaxMs?: number;
  /** Clock, in ms since the Unix epoch (default `Date.now`); injectable for tests. */
  readonly now?: () => number;
  /**
   * Called once per token request with the endpoint label `POST /oauth/token`,
   * the HTTP status or `"error"` (no response: network, timeout), and the
   * duration in ms; the same contract as `KickApiOptions.onRequest`, so that
   * `kickmon_api_requests_total` counts token requests too.
   */
  readonly onRequest?: (endpoint: string, status: number | "error", durationMs: number) => void;
}

/** What {@linkcode TokenProvider.state} reports (for `/health` and metrics). */
export interface TokenState {
  /**
   * `none`: no usable token yet (or it expired); `valid`: a token is cached
   * and unexpired; `refreshing`: a token request is in flight; `failing`: the
   * last token request failed with a retryable error; `invalid_credentials`:
   * Kick rejected the client id/secret (fatal).
   */
  readonly state: "none" | "valid" | "refreshing" | "failing" | "invalid_credentials";
  /** Expiry of the cached token, in ms since the Unix epoch. */
  readonly expiresAt?: number;
  /** Message of the last failure (secret-free); cleared by a success. */
  readonly lastError?: string;
  /** When the last failure happened, ms since the Unix epoch. */
  readonly lastErrorAt?: number;
  /**
   * When the next token request is due while retrying after a failure, ms
   * since the Unix epoch; absent when no retry is scheduled (a token is held,
   * or the next `getToken()` call tries again).
   */
  readonly nextAttemptAt?: number;
}

/** The part of {@linkcode TokenProvider} that API clients need. */
export interface TokenSource {
  /** Returns a valid access token. */
  getToken(): Promise<string>;
  /** Drops `token` from the cache after the API answered 401 with it. */
  invalidate(token: string): void;
}

/**
 * A short, non-reversible fingerprint of a secret for logs (8 hex digits of
 * FNV-1a 32). Identical secrets give identical fingerprints.
 *
 * @example
 * ```ts
 * log.info("token refreshed", { token: tokenFingerprint(token) }); // e.g. "tok:5f1c2a9e"
 * ```
 */
export function tokenFingerprint(secret: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < secret.length; i++) {
    h ^= secret.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `tok:${h.toString(16).padStart(8, "0")}`;
}

/** Longest access token accepted from the token endpoint, characters. */
export const MAX_TOKEN_LENGTH = 4096;

/** Largest token-endpoint answer read, bytes (a real one is well under 1 KiB). */
export const MAX_OAUTH_BODY_BYTES = 64 * 1024;

/** Raw wire schema of a successful token response (§4.1). */
export const OAuthTokenResponseWire = z.object({
  // A token is a few hundred characters; a huge one is a broken or hostile answer
  // that would make every later request fail (and sit in every Authorization header).
  access_token: z.string().min(1).max(MAX_TOKEN_LENGTH, {
    error: `longer than ${MAX_TOKEN_LENGTH} characters`,
  }),
  token_type: z.string().optional(),
  expires_in: z.union([
    z.number().positive(),
    z.string().regex(/^\s*\d+(\.\d+)?\s*$/, "expected a numeric string").transform(Number),
  ]).pipe(z.number().positive()),
});

/** Raw wire schema of an OAuth error body (§4.1, §4.3). */
export const OAuthErrorResponseWire = z.object({
  error: z.string(),
  error_description: z.string().optional(),
});

interface CachedToken {
  readonly token: string;
  /** ms since epoch */
  readonly expiresAt: number;
  /** ms since epoch: when getToken() starts a refresh */
  readonly refreshAt: number;
}

/**
 * Caches and refreshes a Kick app access token (client credentials, §4.1).
 *
 * - `getToken()` returns the cached token while it is more than the refresh
 *   margin away from expiry; otherwise it refreshes. Concurrent callers share
 *   one request (single flight). If a refresh fails while the old token is
 *   still unexpired, the old token is returned.
 * - Retryable failures are retried inside one refresh with exponential
 *   backoff and jitter (`maxAttempts`, `backoffBaseMs`, `backoffMaxMs`).
 * - An `invalid_client` answer is fatal: {@linkcode InvalidCredentialsError}
 *   is thrown now and on every later call, without further requests.
 * - No timers run in the background: refresh happens lazily on `getToken()`.
 *
 * @example
 * ```ts
 * const tokens = new TokenProvider({
 *   oauthUrl: "https://id.kick.com",
 *   clientId: Deno.env.get("KICK_CLIENT_ID")!,
 *   clientSecret: Deno.env.get("KICK_CLIENT_SECRET")!,
 * });
 * const token = await tokens.getToken();
 * await fetch("https://api.kick.com/public/v1/channels?slug=xqc", {
 *   headers: { authorization: `Bearer ${token}` },
 * });
 * ```
 */
export class TokenProvider implements TokenSource {
  readonly #opts:
    & Required<
      Omit<TokenProviderOptions, "refreshMarginSec" | "fetch" | "onRequest">
    >
    & {
      refreshMarginSec?: number;
    };
  readonly #onRequest: TokenProviderOptions["onRequest"];
  readonly #fetch: typeof fetch;
  readonly #closed = new AbortController();
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;
  #fatal: InvalidCredentialsError | undefined;
  #lastError: string | undefined;
  #lastErrorAt: number | undefined;
  #nextAttemptAt: number | undefined;
  #failing = false;
  readonly #host: string;

  /**
   * Creates a provider; no request is made until `getToken()`.
   *
   * @param opts See {@linkcode TokenProviderOptions}.
   * @throws {TypeError} when `oauthUrl` is not an absolute URL.
   */
  constructor(opts: TokenProviderOptions) {
    this.#host = new URL(opts.oauthUrl).host; // validates
    this.#opts = {
      oauthUrl: opts.oauthUrl,
      clientId: opts.clientId,
      clientSecret: opts.clientSecret,
      refreshMarginSec: opts.refreshMarginSec,
      timeoutMs: opts.timeoutMs ?? DEFAULT_OAUTH_TIMEOUT_MS,
      maxAttempts: Math.max(1, opts.maxAttempts ?? 4),
      backoffBaseMs: opts.backoffBaseMs ?? 500,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      now: opts.now ?? Date.now,
    };
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#onRequest = opts.onRequest;
  }

  /**
   * Returns a valid access token, fetching or refreshing it when needed.
   *
   * @returns the bearer token (opaque string).
   * @throws {InvalidCredentialsError} when Kick rejects the client credentials (fatal).
   * @throws {OAuthError} when no token could be obtained after the retries
   *   (`retryable` tells whether a later call may succeed), or `code: "closed"`
   *   after {@linkcode TokenProvider.close}.
   * @example
   * ```ts
   * const token = await tokens.getToken();
   * ```
   */
  async getToken(): Promise<string> {
    if (this.#fatal) throw this.#fatal;
    const now = this.#opts.now();
    const cached = this.#cached;
    if (cached && now < cached.refreshAt) return cached.token;
    try {
      return (await this.#refresh()).token;
    } catch (e) {
      // A refresh ahead of expiry failed but the old token still works.
      if (
        !(e instanceof InvalidCredentialsError) && cached && this.#cached === cached &&
        this.#opts.now() < cached.expiresAt
      ) {
        return cached.token;
      }
      throw e;
    }
  }

  /**
   * Forgets `token` if it is the cached one (call it after the API answered
   * 401 with it), so the next `getToken()` fetches a new token. Invalidating
   * an older token than the cached one does nothing, so a burst of 401s does
   * not throw away a freshly refreshed token.
   *
   * @param token The token the API rejected.
   * @example
   * ```ts
   * if (res.status === 401) tokens.invalidate(token);
   * ```
   */
  invalidate(token: string): void {
    if (this.#cached?.token === token) {
      log.info("access token invalidated after 401 ({token})", {
        token: tokenFingerprint(token),
      });
      this.#cached = undefined;
    }
  }

  /**
   * The provider's state for health checks. Never contains a secret.
   *
   * @example
   * ```ts
   * const { state, expiresAt } = tokens.state(); // e.g. { state: "valid", expiresAt: 1767225600000 }
   * ```
   */
  state(): TokenState {
    const base = {
      ...(this.#cached ? { expiresAt: this.#cached.expiresAt } : {}),
      ...(this.#lastError ? { lastError: this.#lastError, lastErrorAt: this.#lastErrorAt } : {}),
      ...(this.#nextAttemptAt ? { nextAttemptAt: this.#nextAttemptAt } : {}),
    };
    if (this.#fatal) return { state: "invalid_credentials", ...base };
    if (this.#inflight) return { state: "refreshing", ...base };
    if (this.#failing) return { state: "failing", ...base };
    if (this.#cached && this.#opts.now() < this.#cached.expiresAt) {
      return { state: "valid", ...base };
    }
    return { state: "none", ...base };
  }

  /**
   * Aborts an in-flight request or backoff wait; later `getToken()` calls
   * that need the network reject with `OAuthError` code `closed`.
   *
   * @example
   * ```ts
   * tokens.close();
   * ```
   */
  close(): void {
    this.#closed.abort();
  }

  #refresh(): Promise<CachedToken> {
    if (!this.#inflight) {
      this.#inflight = this.#fetchWithRetry().finally(() => {
        this.#inflight = undefined;
      });
    }
    return this.#inflight;
  }

  async #fetchWithRetry(): Promise<CachedToken> {
    let lastErr: OAuthError | undefined;
    for (let attempt = 0; attempt < this.#opts.maxAttempts; attempt++) {
      if (this.#closed.signal.aborted) {
        throw new OAuthError("closed", "token provider closed", { retryable: false });
      }
      try {
        const tok = await this.#fetchOnce();
        this.#cached = tok;
        this.#failing = false;
        this.#lastError = undefined;
        this.#lastErrorAt = undefined;
        log.info("access token obtained ({token}), expires in {expiresInSec} s", {
          token: tokenFingerprint(tok.token),
          expiresInSec: Math.round((tok.expiresAt - this.#opts.now()) / 1000),
        });
        return tok;
      } catch (e) {
        const err = e instanceof OAuthError ? e : new OAuthError(
          "network",
          `token request to ${this.#host} failed: ${this.#redact(networkCause(e))}`,
          { retryable: true, cause: e },
        );
        this.#lastError = err.message;
        this.#lastErrorAt = this.#opts.now();
        if (err instanceof InvalidCredentialsError) {
          this.#fatal = err;
          this.#cached = undefined;
          log.error("Kick rejected the client credentials: {message}", { message: err.message });
          throw err;
        }
        this.#failing = true;
        lastErr = err;
        if (!err.retryable || attempt + 1 >= this.#opts.maxAttempts) break;
        const delay = err instanceof RetryAfterOAuthError
          ? Math.min(err.retryAfterMs, this.#opts.backoffMaxMs)
          : backoffDelay(attempt, this.#opts.backoffBaseMs, this.#opts.backoffMaxMs);
        log.warn("{message} ({code}); retrying in {delayMs} ms", {
          code: err.code,
          message: err.message,
          delayMs: delay,
        });
        this.#nextAttemptAt = this.#opts.now() + delay;
        try {
          await abortableSleep(delay, this.#closed.signal);
        } finally {
          this.#nextAttemptAt = undefined;
        }
      }
    }
    log.error("{message} ({code})", {
      code: lastErr?.code,
      message: lastErr?.message,
    });
    throw lastErr!;
  }

  async #fetchOnce(): Promise<CachedToken> {
    // Keeps a path prefix in oauthUrl (e.g. a proxy mounted under /kick-id).
    const url = new URL(`${this.#opts.oauthUrl.replace(/\/+$/, "")}/oauth/token`);
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: this.#opts.clientId,
      client_secret: this.#opts.clientSecret,
    });
    const sentAt = this.#opts.now();
    let res: Response;
    let text: string;
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#opts.timeoutMs),
      this.#closed.signal,
    ]);
    const started = performance.now();
    const report = (status: number | "error") => {
      try {
        this.#onRequest?.("POST /oauth/token", status, performance.now() - started);
      } catch { /* a metrics hook must not break the token request */ }
    };
    try {
      res = await this.#fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body,
        signal,
      });
      text = await readTextCapped(res, MAX_OAUTH_BODY_BYTES);
    } catch (e) {
      report("error");
      if (this.#closed.signal.aborted) {
        throw new OAuthError("closed", "token provider closed", { retryable: false, cause: e });
      }
      if (e instanceof ResponseTooLargeError) {
        throw new OAuthError(
          "malformed",
          `token endpoint answered with a body over ${MAX_OAUTH_BODY_BYTES} bytes (not read)`,
          { retryable: true, cause: e },
        );
      }
      if (e instanceof Deno.errors.NotCapable) {
        // The build's permissions, not the network: retrying cannot help.
        throw new OAuthError("not_permitted", `token request to ${this.#host}: ${e.message}`, {
          retryable: false,
          cause: e,
        });
      }
      if (e instanceof DOMException && e.name === "TimeoutError") {
        throw new OAuthError(
          "timeout",
          `token request to ${this.#host} timed out after ${this.#opts.timeoutMs} ms`,
          { retryable: true, cause: e },
        );
      }
      // Deno's fetch says only "fetch failed"; the host and the cause (DNS,
      // connection refused, certificate) are what an operator can act on.
      throw new OAuthError(
        "network",
        `token request to ${this.#host} failed: ${this.#redact(networkCause(e))}`,
        { retryable: true, cause: e },
      );
    }
    report(res.status);

    if (res.ok) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new OAuthError(
          "malformed",
          `token endpoint answered ${res.status} with a non-JSON body (${text.length} bytes)`,
          { status: res.status, retryable: true, cause: e },
        );
      }
      const parsed = OAuthTokenResponseWire.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new OAuthError(
          "malformed",
          `token response failed validation at ${issue?.path.join(".") || "(root)"}: ${
            issue?.message ?? "invalid"
          }`,
          { status: res.status, retryable: true, cause: parsed.error },
        );
      }
      const lifetimeMs = parsed.data.expires_in * 1000;
      const marginMs = (this.#opts.refreshMarginSec ??
        Math.min(60, parsed.data.expires_in * 0.1)) * 1000;
      return {
        token: parsed.data.access_token,
        expiresAt: sentAt + lifetimeMs,
        refreshAt: sentAt + Math.max(0, lifetimeMs - marginMs),
      };
    }
    throw this.#classifyFailure(res, text);
  }

  #classifyFailure(res: Response, text: string): OAuthError {
    const status = res.status;
    let oauthErr: z.infer<typeof OAuthErrorResponseWire> | undefined;
    try {
      const p = OAuthErrorResponseWire.safeParse(JSON.parse(text));
      if (p.success) oauthErr = p.data;
    } catch { /* not JSON */ }
    const desc = oauthErr
      ? `${oauthErr.error}${
        oauthErr.error_description ? `: ${truncate(oauthErr.error_description, 200)}` : ""
      }`
      : text.trim() === ""
      ? "empty body"
      : `${text.length}-byte non-JSON body`;
    const msg = this.#redact(`token endpoint ${this.#host} answered HTTP ${status} (${desc})`);
    const code = oauthErr?.error;

    if (code === "invalid_client" || code === "unauthorized_client" || status === 401) {
      return new InvalidCredentialsError(code ?? "invalid_client", msg, { status });
    }
    if (status === 429) {
      const ra = parseRetryAfter(res.headers.get("retry-after"), this.#opts.now());
      return ra === undefined
        ? new OAuthError("rate_limited", msg, { status, retryable: true })
        : new RetryAfterOAuthError(msg, status, ra);
    }
    if (status >= 500) return new OAuthError("server_error", msg, { status, retryable: true });
    if (status === 403) {
      const blocked = /Request blocked by security policy|Just a moment|<html/i.test(text) ||
        res.headers.has("cf-ray");
      return new OAuthError(blocked ? "blocked" : (code ?? "forbidden"), msg, {
        status,
        retryable: blocked,
      });
    }
    if (status === 400 && text.trim() === "") {
      // KickDevDocs #156: a transient 400 with content-length 0.
      return new OAuthError("empty_response", msg, { status, retryable: true });
    }
    return new OAuthError(code ?? "invalid_request", msg, { status, retryable: false });
  }

  #redact(s: string): string {
    let out = s;
    for (const secret of [this.#opts.clientSecret, this.#cached?.token]) {
      if (secret && secret.length >= 4) out = out.split(secret).join("[redacted]");
    }
    return out;
  }
}

class RetryAfterOAuthError extends OAuthError {
  readonly retryAfterMs: number;
  constructor(message: string, status: number, retryAfterMs: number) {
    super("rate_limited", message, { status, retryable: true });
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Exponential backoff with "equal jitter": half of the capped exponential
 * delay `min(maxMs, baseMs * 2^attempt)` plus a random share of the other
 * half. All values in ms; `attempt` counts from 0.
 *
 * @example
 * ```ts
 * backoffDelay(0, 500, 30_000); // 250…500
 * backoffDelay(3, 500, 30_000); // 2000…4000
 * ```
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const d = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(d / 2 + Math.random() * d / 2);
}

/**
 * Parses an HTTP `Retry-After` header value — delta-seconds (`"120"`) or an
 * HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`) — into a delay in ms from
 * `nowMs` (ms since epoch). Dates in the past give 0.
 *
 * @returns the delay in ms, or `undefined` when absent or unparseable.
 * @example
 * ```ts
 * parseRetryAfter("2", Date.now()); // 2000
 * parseRetryAfter(new Date(Date.now() + 5000).toUTCString(), Date.now()); // ≈ 5000
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const t = value.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const d = Date.parse(t);
  return Number.isNaN(d) ? undefined : Math.max(0, d - nowMs);
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts first. Never rejects.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * await abortableSleep(1000, stop.signal); // resolves early on stop.abort()
 * ```
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

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

/**
 * Shortens `s` to at most `n` UTF-16 code units, marking a cut with `…`
 * (so a cut result is `n + 1` long). For server-supplied text in errors and logs.
 *
 * @param s The text.
 * @param n Most code units kept.
 * @returns `s` unchanged when it fits, else its first `n` units followed by `…`.
 * @example
 * ```ts
 * truncate("abcdef", 3); // "abc…"
 * truncate("abc", 3); // "abc"
 * ```
 */
export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

/**
 * One-line description of a thrown value for errors and logs: `Name: message`
 * for an `Error`, else `String(e)`. Secrets are not removed here; redact the
 * result where it may contain them.
 *
 * @param e Anything caught.
 * @returns The description.
 * @example
 * ```ts
 * errorText(new TypeError("fetch failed")); // "TypeError: fetch failed"
 * errorText("boom"); // "boom"
 * ```
 */
export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
