/**
 * How a token request to `id.kick.com` fails (docs/kick-protocol.md §4.1): the
 * error classes of the OAuth client ({@linkcode OAuthError} with a `code`
 * and `retryable`, the fatal {@linkcode InvalidCredentialsError}) and the
 * reading of a non-2xx answer into one of them
 * ({@linkcode classifyTokenResponse}).
 *
 * Wire format (§4.1): errors are `{"error","error_description"}` (or
 * `{"error":"Invalid request"}`); Kick has been seen answering a transient
 * 400 with an empty body (§4.1, KickDevDocs #156) and a Cloudflare 403 (§5).
 *
 * @module
 */

import { z } from "zod";
import { parseRetryAfter } from "../http/backoff.ts";
import { truncate } from "../http/text.ts";

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

/**
 * A 429 from the token endpoint that named its wait (`Retry-After`): the
 * provider waits that long (capped by its `backoffMaxMs`) before the next attempt.
 *
 * @example
 * ```ts
 * const e = new RetryAfterOAuthError("token endpoint answered HTTP 429", 429, 2000);
 * console.log(e.code, e.retryAfterMs); // "rate_limited" 2000
 * ```
 */
export class RetryAfterOAuthError extends OAuthError {
  /** The server's `Retry-After`, in ms. */
  readonly retryAfterMs: number;
  /**
   * Creates a rate-limit error with a known wait.
   *
   * @param message Secret-free description.
   * @param status HTTP status (429).
   * @param retryAfterMs The server's `Retry-After`, in ms.
   */
  constructor(message: string, status: number, retryAfterMs: number) {
    super("rate_limited", message, { status, retryable: true });
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Raw wire schema of an OAuth error body (§4.1, §4.3).
 *
 * @example
 * ```ts
 * OAuthErrorResponseWire.safeParse({ error: "invalid_client" }).success; // true
 * ```
 */
export const OAuthErrorResponseWire = z.object({
  error: z.string(),
  error_description: z.string().optional(),
});

/** What {@linkcode classifyTokenResponse} needs besides the answer. */
export interface TokenResponseContext {
  /** `host[:port]` of the OAuth server, named in the message. */
  readonly host: string;
  /** Clock, ms since the Unix epoch (for an HTTP-date `Retry-After`). */
  readonly now: () => number;
  /** Removes secrets (client secret, tokens) from the message. */
  readonly redact: (text: string) => string;
}

/**
 * The {@linkcode OAuthError} for a non-2xx answer of the token endpoint:
 * `invalid_client`/`unauthorized_client`/401 → {@linkcode InvalidCredentialsError};
 * 429 → `rate_limited` ({@linkcode RetryAfterOAuthError} with `Retry-After`);
 * 5xx → `server_error`; a Cloudflare 403 → `blocked` (retryable), another 403
 * → its code or `forbidden`; an empty 400 → `empty_response` (retryable);
 * else the server's code or `invalid_request`.
 *
 * @param res The answer (status and headers; its body already read).
 * @param text The body as read.
 * @param ctx Host, clock and redaction.
 * @returns The error to throw (never throws itself).
 * @example
 * ```ts
 * const err = classifyTokenResponse(res, text, { host: "id.kick.com", now: Date.now, redact: (t) => t });
 * if (err.retryable) console.warn(err.message);
 * ```
 */
export function classifyTokenResponse(
  res: Response,
  text: string,
  ctx: TokenResponseContext,
): OAuthError {
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
  const msg = ctx.redact(`token endpoint ${ctx.host} answered HTTP ${status} (${desc})`);
  const code = oauthErr?.error;

  if (code === "invalid_client" || code === "unauthorized_client" || status === 401) {
    return new InvalidCredentialsError(code ?? "invalid_client", msg, { status });
  }
  if (status === 429) {
    const ra = parseRetryAfter(res.headers.get("retry-after"), ctx.now());
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
