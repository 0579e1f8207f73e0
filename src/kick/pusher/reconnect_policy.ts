/**
 * The one retry policy of the Pusher client: what a shard does after a failed
 * attempt or a lost connection (by consecutive failures and close code, docs/kick-protocol.md §1.4),
 * and when a refused or unanswered `pusher:subscribe` is sent again. Pure: no
 * sockets, no timers, no logging; the randomness (jitter) is a parameter.
 *
 * Close-code classes (§1.4):
 * - 4000–4099 `refused` (wrong/rotated key, quota, …): do not reconnect unchanged; wait
 *   `refusedRetryMs` (+ up to 10 % jitter).
 * - 4100–4199 `backoff`: `reconnectBaseMs` + exponential full-jitter backoff (capped at
 *   `reconnectMaxMs`).
 * - 4200–4299 `immediate`: reconnect now, unless the shard already failed more than 3 times
 *   in a row, then normal backoff.
 * - anything else `other` (1006 abrupt close, 1000, 1005, handshake timeout, silent socket, no
 *   code): exponential backoff with full jitter:
 *   `random() × min(reconnectMaxMs, reconnectBaseMs × 2^(failures−1))`.
 *
 * @module
 */

/**
 * Settings of {@linkcode reconnectDecision}, already normalised (defaults applied). All
 * durations in **milliseconds**.
 *
 * @example
 * ```ts
 * import type { ReconnectPolicyOptions } from "./reconnect_policy.ts";
 * const defaults: ReconnectPolicyOptions = {
 *   reconnectBaseMs: 1000, reconnectMaxMs: 30_000, refusedRetryMs: 60_000, maxReconnectAttempts: 0,
 * };
 * ```
 */
export interface ReconnectPolicyOptions {
  /** Backoff base: the first retry waits up to this long (full jitter), ms. */
  readonly reconnectBaseMs: number;
  /** Backoff cap, ms. */
  readonly reconnectMaxMs: number;
  /** Wait after a 4000–4099 refusal, ms (before the up to 10 % jitter). */
  readonly refusedRetryMs: number;
  /** Consecutive failures before giving up; 0 = retry forever. */
  readonly maxReconnectAttempts: number;
}

/**
 * What a shard does next (see {@linkcode reconnectDecision}):
 * - `backoff`: connect again after `delay` ms (0 = at once, only the stagger applies).
 * - `refused`: the server refused (4000–4099); connect again after `delay` ms.
 * - `disconnected`: give up (`maxReconnectAttempts` reached); `delay` is 0.
 *
 * @example
 * ```ts
 * import type { ReconnectDecision } from "./reconnect_policy.ts";
 * const d: ReconnectDecision = { state: "backoff", delay: 250 };
 * ```
 */
export interface ReconnectDecision {
  readonly state: "backoff" | "refused" | "disconnected";
  /** ms until the next attempt. */
  readonly delay: number;
}

/**
 * The class of a close or error code (§1.4); `undefined` (no code known) is `other`.
 *
 * @example
 * ```ts
 * import { closeCodeClass } from "./reconnect_policy.ts";
 * closeCodeClass(4001); // "refused"
 * closeCodeClass(4100); // "backoff"
 * closeCodeClass(4200); // "immediate"
 * closeCodeClass(1006); // "other"
 * ```
 */
export type CloseCodeClass = "refused" | "backoff" | "immediate" | "other";

/**
 * Classifies a WebSocket close code or `pusher:error` code (§1.4).
 *
 * @param code the code, or undefined when none is known.
 * @returns its {@linkcode CloseCodeClass}.
 *
 * @example
 * ```ts
 * import { closeCodeClass } from "./reconnect_policy.ts";
 * console.log(closeCodeClass(4201)); // "immediate"
 * ```
 */
export function closeCodeClass(code: number | undefined): CloseCodeClass {
  if (code === undefined) return "other";
  if (code >= 4000 && code <= 4099) return "refused";
  if (code >= 4100 && code <= 4199) return "backoff";
  if (code >= 4200 && code <= 4299) return "immediate";
  return "other";
}

/**
 * The next step of a shard after a failure (see the module doc for the rules).
 *
 * @param failures consecutive failures of the shard, counting this one (≥ 1).
 * @param code close/error code of this failure (1006 = abrupt), or undefined.
 * @param options the policy settings.
 * @param random source of jitter in [0, 1); default `Math.random`. Called at most once.
 * @returns the state to enter and the delay before the next attempt, ms.
 *
 * @example
 * ```ts
 * import { reconnectDecision } from "./reconnect_policy.ts";
 * const o = { reconnectBaseMs: 1000, reconnectMaxMs: 30_000, refusedRetryMs: 60_000, maxReconnectAttempts: 0 };
 * reconnectDecision(1, 4200, o); // { state: "backoff", delay: 0 }
 * reconnectDecision(2, 1006, o, () => 0.5); // { state: "backoff", delay: 1000 }
 * reconnectDecision(1, 4001, o, () => 0); // { state: "refused", delay: 60000 }
 * ```
 */
export function reconnectDecision(
  failures: number,
  code: number | undefined,
  options: ReconnectPolicyOptions,
  random: () => number = Math.random,
): ReconnectDecision {
  const o = options;
  if (o.maxReconnectAttempts > 0 && failures >= o.maxReconnectAttempts) {
    return { state: "disconnected", delay: 0 };
  }
  const kind = closeCodeClass(code);
  if (kind === "refused") {
    return { state: "refused", delay: o.refusedRetryMs * (1 + 0.1 * random()) };
  }
  if (kind === "immediate" && failures <= 3) return { state: "backoff", delay: 0 };
  const cap = Math.min(o.reconnectMaxMs, o.reconnectBaseMs * 2 ** Math.min(30, failures - 1));
  let delay = random() * cap;
  if (kind === "backoff") delay = Math.min(o.reconnectMaxMs, o.reconnectBaseMs + delay);
  return { state: "backoff", delay };
}

/**
 * How long a `pusher:subscribe` may go unanswered before it is sent again, ms.
 *
 * @example
 * ```ts
 * import { SUBSCRIBE_ACK_TIMEOUT_MS } from "./reconnect_policy.ts";
 * console.log(SUBSCRIBE_ACK_TIMEOUT_MS); // 10000
 * ```
 */
export const SUBSCRIBE_ACK_TIMEOUT_MS = 10_000;

/**
 * When to send `pusher:subscribe` again after `failures` refused or unanswered tries: 1 s
 * doubling to 60 s, with ±25 % jitter.
 *
 * @param failures refused or unanswered tries so far (≥ 1; 0 counts as 1).
 * @param random source of jitter in [0, 1); default `Math.random`.
 * @returns the delay, ms.
 *
 * @example
 * ```ts
 * import { subscribeRetryDelayMs } from "./reconnect_policy.ts";
 * subscribeRetryDelayMs(1, () => 0.5); // 1000
 * subscribeRetryDelayMs(10, () => 0.5); // 60000
 * ```
 */
export function subscribeRetryDelayMs(
  failures: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return base * (0.75 + random() / 2);
}

/**
 * What a 4000–4099 refusal most likely means (§1.4), for the error log.
 *
 * @param code the refusal code.
 * @returns a sentence naming the likely cause and, where there is one, the fix.
 *
 * @example
 * ```ts
 * import { refusalCause } from "./reconnect_policy.ts";
 * console.log(refusalCause(4001)); // "the app key is unknown …"
 * ```
 */
export function refusalCause(code: number): string {
  switch (code) {
    case 4000:
      return "the server requires TLS: set tls=true";
    case 4001:
      return "the app key is unknown or not in this cluster: Kick has probably rotated its Pusher key. " +
        "Update KICK_PUSHER_KEY (and KICK_PUSHER_CLUSTER) from kick.com DevTools → Network → WS";
    case 4003:
      return "the app is disabled: the Pusher key is probably retired, check KICK_PUSHER_KEY";
    case 4004:
      return "over the connection quota: too many sockets; raise maxChannelsPerConnection to use fewer";
    case 4005:
      return "path not found: check the Pusher host/port settings";
    case 4006:
    case 4007:
    case 4008:
      return "protocol/version rejected: the server does not accept pusher-js protocol 7";
    case 4009:
      return "unauthorized";
    default:
      return "refused by the server";
  }
}
