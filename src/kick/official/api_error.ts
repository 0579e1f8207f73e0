/**
 * How a request to Kick's API fails (docs/kick-protocol.md §4.3–§4.9, §5): the
 * error class {@linkcode KickApiError} with its {@linkcode KickApiErrorKind},
 * and the reading of an answer into one — a Cloudflare block
 * ({@linkcode blockedError}), another non-2xx ({@linkcode failureError}), a
 * 2xx body that is not JSON or fails its wire schema ({@linkcode parseAnswer}).
 * Used by the request loop (`request.ts`) for the official and the
 * unofficial API alike.
 *
 * @module
 */

import type { z } from "zod";
import { backoffDelay, parseRetryAfter } from "../http/backoff.ts";
import { truncate } from "../http/text.ts";

/** Kinds of {@linkcode KickApiError}. */
export type KickApiErrorKind =
  /** 401 even after refreshing the token once. */
  | "unauthorized"
  /** 429 after the bounded retries. */
  | "rate_limited"
  /** Cloudflare/WAF 403 (`Request blocked by security policy.`) or an HTML challenge page. */
  | "blocked"
  /** 403 that is not Cloudflare's. */
  | "forbidden"
  /** `event subscription limit reached` (§4.7). */
  | "subscription_limit"
  /** A subscription item came back with a non-empty `error` (§4.7). */
  | "subscription_rejected"
  /** Another 4xx. */
  | "bad_request"
  /** 404. */
  | "not_found"
  /** 5xx (after retries for idempotent requests). */
  | "server"
  /** No response within `timeoutMs`. */
  | "timeout"
  /** Connection failed. */
  | "network"
  /** Non-JSON body, or a body that fails the zod wire schema. */
  | "malformed"
  /** The client was closed. */
  | "closed";

/**
 * A failed API call.
 *
 * @example
 * ```ts
 * try {
 *   await api.getChannels({ slugs: ["xqc"] });
 * } catch (e) {
 *   if (e instanceof KickApiError && e.kind === "blocked") {
 *     console.warn(`blocked by Cloudflare; retry in ${e.retryAfterMs} ms`);
 *   }
 * }
 * ```
 */
export class KickApiError extends Error {
  /** What went wrong. */
  readonly kind: KickApiErrorKind;
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** Endpoint label, e.g. `GET /channels` (same as in `onRequest`). */
  readonly endpoint: string;
  /** Suggested wait before trying again, in ms (rate limits, Cloudflare). */
  readonly retryAfterMs?: number;
  /** For `malformed`: the zod issue path, e.g. `data.0.stream.is_live`. */
  readonly issuePath?: string;

  /**
   * Creates an API error.
   *
   * @param kind What went wrong.
   * @param message Human-readable, secret-free description.
   * @param opts `endpoint`, HTTP `status`, `retryAfterMs` (ms), `issuePath`, and `cause`.
   */
  constructor(
    kind: KickApiErrorKind,
    message: string,
    opts: {
      endpoint: string;
      status?: number;
      retryAfterMs?: number;
      issuePath?: string;
      cause?: unknown;
    },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KickApiError";
    this.kind = kind;
    this.endpoint = opts.endpoint;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.issuePath = opts.issuePath;
  }
}

/**
 * The body of a 2xx answer, validated against its wire schema.
 *
 * @param schema zod schema of the whole body.
 * @param text The body as read.
 * @param endpoint Endpoint label for the message.
 * @param status HTTP status for the message.
 * @returns The parsed body.
 * @throws {KickApiError} `malformed` for a non-JSON body (the `SyntaxError` as
 *   `cause`) or one that fails `schema` (`issuePath` set, the `ZodError` as `cause`).
 * @example
 * ```ts
 * const body = parseAnswer(envelope(PublicKeyWire), text, "GET /public-key", 200);
 * ```
 */
export function parseAnswer<T>(
  schema: z.ZodType<T>,
  text: string,
  endpoint: string,
  status: number,
): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KickApiError(
      "malformed",
      `${endpoint}: HTTP ${status} with a non-JSON body (${text.length} bytes: ${
        JSON.stringify(truncate(text, 80))
      })`,
      { endpoint, status, cause: e },
    );
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.map(String).join(".") || "(root)";
    throw new KickApiError(
      "malformed",
      `${endpoint}: response failed validation at ${path}: ${issue?.message ?? "invalid"}`,
      { endpoint, status, issuePath: path, cause: r.error },
    );
  }
  return r.data;
}

/**
 * The `blocked` error for a Cloudflare answer (§5): a 403 `Request blocked by
 * security policy.`, a "Just a moment..." challenge or another HTML page,
 * naming Cloudflare's reference and `cf-ray` when present.
 *
 * @param endpoint Endpoint label.
 * @param status HTTP status.
 * @param text The body as read.
 * @param res The answer (headers).
 * @param blockedBackoffMs Back-off hint put on the error as `retryAfterMs`, ms.
 * @returns The error (never throws).
 * @example
 * ```ts
 * if (looksLikeHtml(text, res)) throw blockedError("GET /channels", 200, text, res, 300_000);
 * ```
 */
export function blockedError(
  endpoint: string,
  status: number,
  text: string,
  res: Response,
  blockedBackoffMs: number,
): KickApiError {
  const ref = /"reference"\s*:\s*"([^"]*)"/.exec(text)?.[1];
  const ray = res.headers.get("cf-ray");
  const what = looksLikeHtml(text, res)
    ? (/Just a moment/i.test(text)
      ? 'a Cloudflare "Just a moment..." challenge page'
      : "an HTML page")
    : '"Request blocked by security policy."';
  return new KickApiError(
    "blocked",
    `${endpoint}: blocked by Cloudflare (HTTP ${status}, ${what}${ref ? `, reference ${ref}` : ""}${
      ray ? `, cf-ray ${ray}` : ""
    }); back off for ~${Math.round(blockedBackoffMs / 1000)} s before retrying`,
    { endpoint, status, retryAfterMs: blockedBackoffMs },
  );
}

/** What {@linkcode failureError} needs besides the answer. */
export interface FailureContext {
  /** Retries already made for this request. */
  readonly retries: number;
  /** Whether the token was already refreshed after a 401. */
  readonly refreshed: boolean;
  /** Back-off hint of a `blocked` error, ms. */
  readonly blockedBackoffMs: number;
  /** First backoff delay, ms (the `retryAfterMs` of a 429 without `Retry-After`). */
  readonly backoffBaseMs: number;
  /** Largest backoff delay, ms. */
  readonly backoffMaxMs: number;
}

/**
 * The error for a non-2xx answer that is not retried (any more): `blocked`
 * (Cloudflare), `subscription_limit`, `unauthorized`, `rate_limited` (with
 * `retryAfterMs` from `Retry-After` or the backoff), `forbidden`,
 * `not_found`, `server`, else `bad_request`.
 *
 * @param endpoint Endpoint label.
 * @param status HTTP status.
 * @param text The body as read.
 * @param res The answer (headers).
 * @param ctx Retries so far and the backoff settings.
 * @returns The error (never throws).
 * @example
 * ```ts
 * throw failureError("GET /channels", 404, text, res, {
 *   retries: 0, refreshed: false, blockedBackoffMs: 300_000, backoffBaseMs: 1000, backoffMaxMs: 60_000,
 * });
 * ```
 */
export function failureError(
  endpoint: string,
  status: number,
  text: string,
  res: Response,
  ctx: FailureContext,
): KickApiError {
  const { retries, refreshed } = ctx;
  if (
    looksLikeHtml(text, res) ||
    (status === 403 &&
      (/Request blocked by security policy/i.test(text) || res.headers.has("cf-ray")))
  ) {
    return blockedError(endpoint, status, text, res, ctx.blockedBackoffMs);
  }
  const detail = errorDetail(text);
  const msg = `${endpoint}: HTTP ${status}${detail ? ` (${detail})` : ""}`;
  if (/event subscription limit reached/i.test(text)) {
    return new KickApiError(
      "subscription_limit",
      `${endpoint}: event subscription limit reached (HTTP ${status})`,
      {
        endpoint,
        status,
      },
    );
  }
  if (status === 401) {
    return new KickApiError(
      "unauthorized",
      `${msg}${refreshed ? " even after refreshing the token" : ""}`,
      {
        endpoint,
        status,
      },
    );
  }
  if (status === 429) {
    const ra = parseRetryAfter(res.headers.get("retry-after"), Date.now());
    return new KickApiError("rate_limited", `${msg} after ${retries} retries`, {
      endpoint,
      status,
      retryAfterMs: ra ?? backoffDelay(retries, ctx.backoffBaseMs, ctx.backoffMaxMs),
    });
  }
  if (status === 403) return new KickApiError("forbidden", msg, { endpoint, status });
  if (status === 404) return new KickApiError("not_found", msg, { endpoint, status });
  if (status >= 500) return new KickApiError("server", msg, { endpoint, status });
  return new KickApiError("bad_request", msg, { endpoint, status });
}

/**
 * Whether an answer is an HTML page (by `content-type` or its first tag):
 * Cloudflare's, never the API's JSON.
 *
 * @param text The body as read.
 * @param res The answer (headers).
 * @returns true for HTML.
 * @example
 * ```ts
 * looksLikeHtml("<!DOCTYPE html>…", res); // true
 * ```
 */
export function looksLikeHtml(text: string, res: Response): boolean {
  const ct = res.headers.get("content-type") ?? "";
  return /text\/html/i.test(ct) || /^\s*<(!doctype|html)/i.test(text);
}

/** A short, safe description of an error body: `message`/`error`/`data` string, else its size. */
function errorDetail(text: string): string {
  if (text.trim() === "") return "empty body";
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const parts = ["message", "error", "data"].map((k) => j?.[k]).filter((v) =>
      typeof v === "string"
    );
    if (parts.length) return truncate(parts.join(": "), 200);
  } catch { /* not JSON */ }
  return `${text.length}-byte body`;
}
