/**
 * What an observer of the HTTP transport sees of one exchange (a
 * {@linkcode RawExchange}: method, URL, status, the response headers worth
 * keeping, the raw body text) and how secrets are taken out of it before it
 * is handed over ({@linkcode redactExchangeBody}, {@linkcode keptHeaders}).
 * `kickmon capture` records these as fixture files (docs/kick-protocol.md §8).
 *
 * What is never in a {@linkcode RawExchange}: request headers (so no
 * `Authorization`), request bodies (the OAuth form carries `client_secret`,
 * §4.1), and the value of any token field of a JSON answer (`access_token`,
 * `refresh_token`, `id_token`, `client_secret`): each is replaced by
 * {@linkcode REDACTED_TOKEN}, the rest of the body kept byte for byte.
 *
 * @module
 */

/**
 * The value a token field of an answer is replaced with (a valid bearer token shape, so a replayed
 * OAuth answer still parses: `access_token` of §4.1 is an opaque string).
 *
 * @example
 * ```ts
 * import { REDACTED_TOKEN } from "./exchange.ts";
 * console.log(REDACTED_TOKEN); // "REDACTED-BY-KICKMON-CAPTURE"
 * ```
 */
export const REDACTED_TOKEN = "REDACTED-BY-KICKMON-CAPTURE";

/**
 * One request and its answer as an observer of the transport sees it (secrets taken out).
 *
 * @example
 * ```ts
 * import type { RawExchange } from "./exchange.ts";
 * const line = (e: RawExchange) => `${e.method} ${e.url} -> ${e.status} (${e.body.length} chars)`;
 * ```
 */
export interface RawExchange {
  /** The caller's endpoint label, e.g. `GET /channels`. */
  readonly endpoint: string;
  /** HTTP method. */
  readonly method: string;
  /** The full request URL (query included; no credentials are ever sent in it). */
  readonly url: string;
  /** HTTP status of the answer. */
  readonly status: number;
  /** The response headers of {@linkcode keptHeaders}, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The answer's body, UTF-8 text as read, token values replaced by {@linkcode REDACTED_TOKEN}. */
  readonly body: string;
  /** When the request was sent, ms since epoch. */
  readonly sentAt: number;
  /** Request to fully read answer, ms. */
  readonly durationMs: number;
  /**
   * The secret values taken out of `body` (for the observer to scrub from anything else it
   * keeps; never to be written).
   */
  readonly removed: readonly string[];
}

/**
 * Receives each exchange of a transport that has an answer (not failures without one).
 *
 * @example
 * ```ts
 * import type { ExchangeObserver } from "./exchange.ts";
 * const seen: string[] = [];
 * const observer: ExchangeObserver = (e) => seen.push(e.endpoint);
 * ```
 */
export type ExchangeObserver = (exchange: RawExchange) => void;

/** Response headers that say something about the API (format, limits, deprecation, Cloudflare). */
const KEPT_HEADER =
  /^(content-type|retry-after|deprecation|sunset|link|warning|cf-ray|cf-mitigated|server|(x-)?ratelimit-[a-z-]+)$/;

/**
 * The response headers worth recording: content type, rate limits, `Retry-After`,
 * deprecation (`Deprecation`, `Sunset`, `Link`, `Warning`) and Cloudflare's (`cf-ray`,
 * `cf-mitigated`, `server`), §4.3, §5. Never `set-cookie`.
 *
 * @param headers the response's headers.
 * @returns name (lower case) → value, in name order.
 *
 * @example
 * ```ts
 * import { keptHeaders } from "./exchange.ts";
 * keptHeaders(new Headers({ "content-type": "application/json", "set-cookie": "a=b" }));
 * // { "content-type": "application/json" }
 * ```
 */
export function keptHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) if (KEPT_HEADER.test(name)) out[name] = value;
  return out;
}

const TOKEN_FIELD =
  /("(?:access_token|refresh_token|id_token|client_secret)"\s*:\s*)"((?:[^"\\]|\\.)*)"/g;

/**
 * Replaces the string value of every token field of a JSON text (`access_token`,
 * `refresh_token`, `id_token`, `client_secret`, at any depth) by {@linkcode REDACTED_TOKEN},
 * leaving every other byte as it was (so a recorded answer replays byte for byte).
 *
 * @param body the body text (JSON or not).
 * @returns the text with the values replaced, and the values taken out (placeholders excluded).
 *
 * @example
 * ```ts
 * import { redactExchangeBody } from "./exchange.ts";
 * redactExchangeBody('{"access_token":"abc","expires_in":3600}').body;
 * // '{"access_token":"REDACTED-BY-KICKMON-CAPTURE","expires_in":3600}'
 * ```
 */
export function redactExchangeBody(body: string): { body: string; removed: string[] } {
  const removed: string[] = [];
  const out = body.replace(TOKEN_FIELD, (_m, key: string, value: string) => {
    if (value !== REDACTED_TOKEN && value.length > 0) removed.push(value);
    return `${key}"${REDACTED_TOKEN}"`;
  });
  return { body: out, removed };
}
