/**
 * How long to wait before retrying a request to Kick: exponential backoff
 * with jitter ({@linkcode backoffDelay}) or the server's `Retry-After`
 * ({@linkcode parseRetryAfter}, RFC 9110 §10.2.3). Shared by the OAuth
 * client (docs/kick-protocol.md §4.1) and the API client (§4.9).
 *
 * @module
 */

/**
 * Exponential backoff with "equal jitter": half of the capped exponential
 * delay `min(maxMs, baseMs * 2^attempt)` plus a random share of the other
 * half. All values in ms; `attempt` counts from 0.
 *
 * @param attempt Retries so far (0 for the first retry).
 * @param baseMs Delay of the first retry before jitter, ms.
 * @param maxMs Cap of the exponential delay, ms.
 * @returns The delay, whole ms.
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
