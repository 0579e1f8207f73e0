/**
 * The shapes the Pusher client shares with its callers: a shard's state and snapshot, and the
 * callbacks. Types only; `subscriber.ts` re-exports them, and callers import them from there.
 *
 * @module
 */

/**
 * Shard states as reported by `PusherSubscriber.snapshot`:
 * - `connecting`: a pusher-js instance exists, handshake not done yet.
 * - `connected`: `pusher:connection_established` received.
 * - `backoff`: waiting before the next attempt (also briefly before the first, for staggering).
 * - `refused`: waiting `refusedRetryMs` after a 4000–4099 refusal (docs/kick-protocol.md §1.4).
 * - `disconnected`: not started, stopped, or given up.
 *
 * @example
 * ```ts
 * import type { ShardState } from "./subscriber.ts";
 * const healthy = (s: ShardState) => s === "connected";
 * ```
 */
export type ShardState = "connecting" | "connected" | "disconnected" | "backoff" | "refused";

/**
 * One shard (one WebSocket connection) as seen by `PusherSubscriber.snapshot`.
 *
 * @example
 * ```ts
 * import type { ShardSnapshot } from "./subscriber.ts";
 * const lagging = (s: ShardSnapshot) => s.state === "connected" && s.subscribed < s.channels;
 * ```
 */
export interface ShardSnapshot {
  /** Shard number (stable while the shard exists; reused after a shard closes). */
  readonly index: number;
  /** Connection state (see {@linkcode ShardState}). */
  readonly state: ShardState;
  /** Channels assigned to this shard. */
  readonly channels: number;
  /** Channels whose `pusher_internal:subscription_succeeded` arrived on the current connection. */
  readonly subscribed: number;
  /** `socket_id` of the current connection, or null when not connected. */
  readonly socketId: string | null;
  /** Connection attempts after the first one. */
  readonly reconnects: number;
  /** Consecutive failed attempts/drops (reset once a connection stays up `stableAfterMs`). */
  readonly failures: number;
  /** Close code of the last lost connection or failed attempt (1006 = abrupt), or null. */
  readonly lastCloseCode: number | null;
  /** Human-readable reason of the last failure, or null. */
  readonly lastCloseReason: string | null;
  /** When the last failure happened, ms since epoch, or null. */
  readonly lastCloseAt: number | null;
  /** When the last frame (any, including `pusher:pong`) arrived, ms since epoch, or null. */
  readonly lastMessageAt: number | null;
  /** When the next attempt is due (ms since epoch) in `backoff`/`refused`, else null. */
  readonly nextAttemptAt: number | null;
  /**
   * How long the longest-waiting channel of the current connection has gone
   * without `pusher_internal:subscription_succeeded`, ms (0 when all are).
   */
  readonly oldestUnsubscribedMs: number;
  /** `pusher:subscribe` frames sent again after a refusal or a missing acknowledgement. */
  readonly subscriptionRetries: number;
}

/**
 * Callbacks of `PusherSubscriber`. Exceptions thrown by a
 * handler are caught and logged; they never break the connection.
 *
 * @example
 * ```ts
 * import type { PusherSubscriberHandlers } from "./subscriber.ts";
 * const handlers: PusherSubscriberHandlers = {
 *   onEvent: (channel, event, data, receivedAt) => console.log(channel, event, receivedAt, data),
 *   onGiveUp: () => Deno.exit(1),
 * };
 * ```
 */
export interface PusherSubscriberHandlers {
  /**
   * An app event on a subscribed channel (never `pusher:*` / `pusher_internal:*`).
   * `data` is what pusher-js delivers: the parsed object when the frame's `data`
   * string was JSON, else the string (§1.3). `receivedAt` is ms since epoch,
   * `receivedMono` is `performance.now()` (ms).
   */
  onEvent(
    channelName: string,
    eventName: string,
    data: unknown,
    receivedAt: number,
    receivedMono: number,
  ): void;
  /**
   * A shard's connection is established (`pusher:connection_established`); the subscriptions for
   * all its channels have been queued but are not acknowledged yet (see `onSubscribed`).
   * `reconnect` is true after the shard's first connection.
   */
  onConnected?(shard: number, info: { socketId: string; reconnect: boolean }): void;
  /**
   * Every channel of a shard has been acknowledged (`pusher_internal:subscription_succeeded`) on the
   * current connection: once after each (re)connect, and again after `PusherSubscriber.setChannels`
   * added channels to the shard. This — not `onConnected` — is the moment from which no transition
   * on the shard's channels can be missed, so it is the right trigger for a reconciliation.
   */
  onSubscribed?(shard: number, channels: number): void;
  /** An established connection was lost (not called for failed attempts or on `stop()`). `closeCode` is the WebSocket close code when known (1006 = abrupt). */
  onDisconnected?(shard: number, reason: string, closeCode?: number): void;
  /** A shard reached `maxReconnectAttempts` consecutive failures and stopped retrying. */
  onGiveUp?(shard: number, attempts: number): void;
  /**
   * This build may not connect to the Pusher host (Deno's `NotCapable` when
   * the socket is created): retrying cannot help. The shard keeps retrying
   * as usual; the handler decides (the monitor stops, exit 2).
   */
  onNotPermitted?(shard: number, error: Deno.errors.NotCapable): void;
  /**
   * A frame was dropped before pusher-js saw it (far too large), or
   * pusher-js threw while handling one. pusher-js would otherwise throw
   * inside the socket's message handler, which ends the process (found by
   * the fuzz test: a frame without `event`).
   */
  onFrameRejected?(
    shard: number,
    reason: "too_large" | "client_error",
    detail: string,
  ): void;
  /**
   * Every text frame a shard receives, verbatim, before pusher-js parses it (protocol frames
   * included); `receivedAt` is ms since epoch. For `kickmon capture`: unset (the monitor), it
   * costs one check per frame. What it throws is ignored.
   */
  onRawFrame?(shard: number, text: string, receivedAt: number): void;
}
