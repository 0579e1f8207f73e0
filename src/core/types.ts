/**
 * Domain types shared by every layer of kickmon.
 *
 * The wire layer (`src/kick/`) turns bytes into {@linkcode Observation}s; the
 * core (`src/core/`) decides which observations are {@linkcode Transition}s;
 * the database layer (`src/db/`) commits transitions. Nothing in this module
 * knows about sockets or SQL.
 *
 * @module
 */

/** A streamer's live status as stored in `streamers.status`. */
export type StreamerStatus = "online" | "offline" | "unknown";

/** Which Kick signal produced an observation (stored as `details.source`). */
export type ObservationSource = "pusher" | "reconcile" | "webhook";

/**
 * How an observation names its streamer. Pusher frames carry the channel id
 * (docs/kick-protocol.md §2); the official API and webhooks carry the broadcaster
 * user id (§4).
 */
export type StreamerKey =
  | { readonly kind: "channel_id"; readonly channelId: number }
  | { readonly kind: "broadcaster_user_id"; readonly userId: number };

/**
 * One typed fact from Kick: "this streamer is live / not live".
 *
 * @example
 * ```ts
 * const obs: Observation = {
 *   source: "pusher",
 *   key: { kind: "channel_id", channelId: 2587387 },
 *   status: "online",
 *   observedAt: Date.now(),
 *   eventTime: Date.parse("2025-09-14T16:11:18.000000Z"),
 *   event: "App\\Events\\StreamerIsLive",
 *   livestreamId: 74265904,
 * };
 * ```
 */
export interface Observation {
  readonly source: ObservationSource;
  readonly key: StreamerKey;
  readonly status: "online" | "offline";
  /**
   * When kickmon learned it, in ms since the Unix epoch. For a reconciliation
   * result this is when the API request was *sent*, so that a response can
   * never win against an event received after the request left.
   */
  readonly observedAt: number;
  /** When Kick says it happened (ms since epoch), if the payload says. */
  readonly eventTime?: number;
  /** Kick's event name, e.g. `App\Events\StreamerIsLive`, `livestream.status.updated`, `GET /channels`. */
  readonly event: string;
  /** Kick's livestream id, when the payload carries one. */
  readonly livestreamId?: number;
  /** The Pusher channel id, when the payload carries one (lets kickmon learn it). */
  readonly channelId?: number;
  /** The broadcaster user id, when the payload carries one. */
  readonly broadcasterUserId?: number;
  /** Extra facts to keep in `status_events.details` (small, JSON-serialisable). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** High-resolution receive time (`performance.now()`, ms) for latency metrics. */
  readonly receivedMono?: number;
}

/**
 * A streamer as the monitor sees it: the other system's `streamers` row
 * combined with what kickmon learned about it (kept in kickmon's schema).
 */
export interface StreamerRecord {
  readonly id: number;
  /** The channel slug: the row's `username`, else the one kickmon resolved. */
  readonly username: string | null;
  /** The row's `kick_user_id` when it is a Kick user id, else the one kickmon resolved. */
  readonly kickUserId: number | null;
  /** The Pusher channel id kickmon learned (or the operator gave), or null. */
  readonly kickChannelId: number | null;
  readonly status: StreamerStatus;
  /**
   * `streamers.is_active`, and false as well when the row cannot be
   * monitored (its `kick_user_id` is not a Kick user id): such rows are skipped.
   */
  readonly isActive: boolean;
  /** When kickmon observed the current status, ms since epoch, or null. */
  readonly statusObservedAt: number | null;
  /**
   * The row's own `username` and `kick_user_id` (as text), which identity
   * learned from them is tied to: when the other system changes either, what
   * was learned is dropped and the row is resolved again.
   */
  readonly listed?: { readonly username: string | null; readonly kickUserId: string | null };
}

/**
 * A decided status change for one streamer, ready to be committed: one
 * `UPDATE streamers` plus one `status_events` row.
 */
export interface Transition {
  readonly streamerId: number;
  readonly status: "online" | "offline";
  /**
   * The status the core believed the row had when it decided. The committed
   * history takes the previous status from the row itself
   * (`CommittedTransition.previousStatus`), which can differ after a gap.
   */
  readonly previousStatus: StreamerStatus;
  /** ms since epoch; compared with the stored observation time by the writer's guard. */
  readonly observedAt: number;
  /** ms since epoch: `status_events.timestamp` (Kick's time, else observedAt). */
  readonly eventTime: number;
  readonly source: ObservationSource;
  readonly event: string;
  readonly livestreamId?: number;
  readonly extra?: Readonly<Record<string, unknown>>;
  /** `performance.now()` at receipt, for the event-to-commit latency histogram. */
  readonly receivedMono?: number;
}
