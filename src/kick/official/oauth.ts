/**
 * App access tokens for Kick's official API: OAuth 2.1 client credentials
 * against `id.kick.com` (docs/kick-protocol.md §4.1).
 *
 * Wire format (§4.1): `POST {oauthUrl}/oauth/token`,
 * `Content-Type: application/x-www-form-urlencoded`, body
 * `grant_type=client_credentials&client_id=…&client_secret=…`; 200 →
 * `{"access_token","token_type","expires_in"}` where `expires_in` is in
 * seconds and has been seen both as a number and as a numeric string; errors
 * are read by `oauth_error.ts` ({@linkcode classifyTokenResponse}). The HTTP
 * exchange (timeout, 64 KiB body cap, `onRequest`, close) is the shared
 * {@linkcode HttpTransport}; the retry waits are `http/backoff.ts`'s.
 *
 * Secrets (the client secret, access tokens) never appear in error messages
 * or logs; at most a short non-reversible {@linkcode tokenFingerprint}.
 *
 * @module
 */

import { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { networkCause } from "../../log/errors.ts";
import { backoffDelay } from "../http/backoff.ts";
import type { ExchangeObserver } from "../http/exchange.ts";
import { HttpTransport, TransportError } from "../http/transport.ts";
import {
  classifyTokenResponse,
  InvalidCredentialsError,
  OAuthError,
  RetryAfterOAuthError,
} from "./oauth_error.ts";

const log = getLogger(["kickmon", "oauth"]);

/** Default HTTP timeout of one token request, in ms. */
export const DEFAULT_OAUTH_TIMEOUT_MS = 10_000;

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
  /** Observer of every answer, `access_token` replaced (`http/exchange.ts`; `kickmon capture`). */
  readonly onExchange?: ExchangeObserver;
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

/**
 * Raw wire schema of a successful token response (§4.1).
 *
 * @example
 * ```ts
 * const { access_token, expires_in } = OAuthTokenResponseWire.parse(JSON.parse(text)); // expires_in in s
 * ```
 */
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
      Omit<TokenProviderOptions, "refreshMarginSec" | "fetch" | "onRequest" | "onExchange">
    >
    & {
      refreshMarginSec?: number;
    };
  readonly #transport: HttpTransport;
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
    // A metrics hook that throws must not break the token request (onHookError: ignored).
    this.#transport = new HttpTransport({
      timeoutMs: this.#opts.timeoutMs,
      maxBodyBytes: MAX_OAUTH_BODY_BYTES,
      fetch: opts.fetch,
      onRequest: opts.onRequest,
      onExchange: opts.onExchange,
    });
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
    this.#transport.close();
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
      if (this.#transport.signal.aborted) {
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
          await this.#transport.sleep(delay);
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
    try {
      ({ res, text } = await this.#transport.send("POST /oauth/token", url, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body,
      }));
    } catch (e) {
      throw this.#transportFailure(e);
    }

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
    throw classifyTokenResponse(res, text, {
      host: this.#host,
      now: () => this.#opts.now(),
      redact: (t) => this.#redact(t),
    });
  }

  /** The {@linkcode OAuthError} for a token request that got no answer. */
  #transportFailure(e: unknown): OAuthError {
    if (!(e instanceof TransportError)) throw e;
    const cause = e.cause;
    switch (e.kind) {
      case "closed":
        return new OAuthError("closed", "token provider closed", { retryable: false, cause });
      case "too_large":
        return new OAuthError(
          "malformed",
          `token endpoint answered with a body over ${MAX_OAUTH_BODY_BYTES} bytes (not read)`,
          { retryable: true, cause },
        );
      case "not_permitted":
        // The build's permissions, not the network: retrying cannot help.
        return new OAuthError("not_permitted", `token request to ${this.#host}: ${e.message}`, {
          retryable: false,
          cause,
        });
      case "timeout":
        return new OAuthError(
          "timeout",
          `token request to ${this.#host} timed out after ${this.#opts.timeoutMs} ms`,
          { retryable: true, cause },
        );
      case "network":
        // Deno's fetch says only "fetch failed"; the host and the cause (DNS,
        // connection refused, certificate) are what an operator can act on.
        return new OAuthError(
          "network",
          `token request to ${this.#host} failed: ${this.#redact(e.message)}`,
          { retryable: true, cause },
        );
    }
  }

  #redact(s: string): string {
    let out = s;
    for (const secret of [this.#opts.clientSecret, this.#cached?.token]) {
      if (secret && secret.length >= 4) out = out.split(secret).join("[redacted]");
    }
    return out;
  }
}
