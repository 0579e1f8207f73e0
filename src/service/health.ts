/**
 * The monitor's health as `/health`, `kickmon status` and the live view show
 * it: the shapes, the bounds past which kickmon reports itself unhealthy,
 * and {@linkcode assembleHealth}, which builds one report from the
 * components' states. Times are ms since the Unix epoch, durations ms.
 *
 * @module
 */
import type { StatusWriter } from "../db/status_writer.ts";
import type { EndpointCapability } from "../kick/official/capabilities.ts";
import type { ShardSnapshot } from "../kick/pusher/subscriber.ts";
import type { LeadershipSnapshot } from "./leadership.ts";

/**
 * The last failure of a component and when it is tried again. Times are ms
 * since the Unix epoch; `null` when there was no failure / no retry is due.
 */
export interface ComponentErrors {
  /** The current failure's message (host and cause included); null while the component works. */
  readonly lastError: string | null;
  /** When it happened. */
  readonly lastErrorAt: number | null;
  /** When the next attempt is due while the component is failing. */
  readonly nextRetryAt: number | null;
}

/** The OAuth token as `/health` reports it. */
export interface TokenHealth extends ComponentErrors {
  /** `valid`, `refreshing`, `failing`, `none`, `invalid_credentials` or `not used`. */
  readonly state: string;
  /** Expiry of the token held, ms since the Unix epoch, or null. */
  readonly expiresAt: number | null;
}

/** Health of each component, as `/health` and the live view show it. */
export interface MonitorHealth {
  readonly healthy: boolean;
  /** `error`: why it is down now (absent when up). */
  readonly database: { readonly up: boolean; readonly error?: string } & ComponentErrors;
  readonly pusher: { readonly up: boolean; readonly shards: readonly ShardSnapshot[] };
  readonly token: TokenHealth;
  readonly writeQueueDepth: number;
  /** Age of the oldest transition waiting to be committed, ms (0 when none). */
  readonly writeLagMs: number;
  /** The outage spool: transitions and bytes on disk, the last write error. */
  readonly spool: { readonly transitions: number; readonly bytes: number; readonly error?: string };
  /** What each tracked official API endpoint is known to do (absent without the official-API plugin). */
  readonly apiEndpoints?: Readonly<Record<string, EndpointCapability>>;
  /** This instance's role among several (issue 14); it does not affect `healthy`. */
  readonly leadership: LeadershipSnapshot;
}

/**
 * Where the monitor reads the OAuth token's state (and the official API's
 * endpoint capabilities) from; provided by the official-API plugin through
 * `Monitor.provideToken`.
 *
 * @example
 * ```ts
 * const reporter: TokenReporter = {
 *   state: () => "valid",
 *   health: () => ({ lastError: null, lastErrorAt: null, nextRetryAt: null, expiresAt: null }),
 * };
 * monitor.provideToken(reporter);
 * ```
 */
export interface TokenReporter {
  /** `valid`, `refreshing`, `failing`, `none` or `invalid_credentials`. */
  state(): string;
  /** The token's details for `/health` (times in ms since the Unix epoch). */
  health(): Omit<TokenHealth, "state">;
  /**
   * The official API's endpoint capabilities (`kick/official/capabilities.ts`),
   * by endpoint label, for `/health`'s `official.endpoints`; absent when not known.
   */
  apiEndpoints?(): Readonly<Record<string, EndpointCapability>>;
}

/**
 * What `/health` says about the token while no plugin provides one: `not used`.
 *
 * @example
 * ```ts
 * NO_TOKEN.state(); // "not used"
 * ```
 */
export const NO_TOKEN: TokenReporter = {
  state: () => "not used",
  health: () => ({ lastError: null, lastErrorAt: null, nextRetryAt: null, expiresAt: null }),
};

/**
 * Oldest uncommitted transition, ms, beyond which `/health` says unhealthy
 * even with the database up (the writer is behind). 30 s.
 *
 * @example
 * ```ts
 * if (writer.lagMs() > WRITE_LAG_MAX_MS) console.log("the writer is behind");
 * ```
 */
export const WRITE_LAG_MAX_MS = 30_000;

/**
 * A wanted Pusher channel unsubscribed for longer than this makes `/health` unhealthy, ms.
 *
 * @example
 * ```ts
 * const late = shards.some((s) => s.oldestUnsubscribedMs > SUBSCRIBE_DEGRADED_MS);
 * ```
 */
export const SUBSCRIBE_DEGRADED_MS = 30_000;

/** The inputs of {@linkcode assembleHealth}: each component's own state. */
export interface HealthInputs {
  /** The Pusher connections (`PusherSubscriber.snapshot()`). */
  readonly shards: readonly ShardSnapshot[];
  /** The monitor's view of the database: up, and its last failure (see {@linkcode ComponentErrors}). */
  readonly database: { readonly up: boolean; readonly error: string | undefined } & ComponentErrors;
  /** The token's reporter. */
  readonly token: TokenReporter;
  /** The status writer: its queue, lag and spool. */
  readonly writer: Pick<StatusWriter, "stats" | "depth" | "lagMs">;
  /** The role (`Monitor.leadership.snapshot()`). */
  readonly leadership: LeadershipSnapshot;
}

/**
 * Builds one health report. Unhealthy when the database is down (by the
 * monitor's probe or the writer's last attempt), a Pusher connection is not
 * connected or has waited over {@linkcode SUBSCRIBE_DEGRADED_MS} for a
 * subscription, the token is failing, the writer is more than
 * {@linkcode WRITE_LAG_MAX_MS} behind, or the spool cannot be written.
 *
 * @example
 * ```ts
 * const h = assembleHealth({
 *   shards: subscriber.snapshot(), database, token: NO_TOKEN, writer,
 *   leadership: monitor.leadership.snapshot(),
 * });
 * console.log(h.healthy);
 * ```
 */
export function assembleHealth(inputs: HealthInputs): MonitorHealth {
  const { shards, database: db, writer } = inputs;
  // A channel refused or unanswered for longer than the bound counts as down too.
  const pusherUp = shards.every((s) =>
    s.state === "connected" && s.oldestUnsubscribedMs <= SUBSCRIBE_DEGRADED_MS
  );
  const dbUp = db.up && writer.stats.databaseUp;
  const token = inputs.token.state();
  const tokenOk = token === "valid" || token === "not used" || token === "refreshing";
  const writeLagMs = writer.lagMs();
  const w = writer.stats;
  return {
    healthy: dbUp && pusherUp && tokenOk && writeLagMs <= WRITE_LAG_MAX_MS &&
      w.spoolError === null,
    database: {
      up: dbUp,
      error: dbUp ? undefined : db.error ?? "the last write failed",
      lastError: dbUp ? null : db.lastError,
      lastErrorAt: dbUp ? null : db.lastErrorAt,
      nextRetryAt: dbUp ? null : db.nextRetryAt,
    },
    pusher: { up: pusherUp, shards },
    token: { state: token, ...inputs.token.health() },
    writeQueueDepth: writer.depth,
    writeLagMs,
    spool: {
      transitions: w.spoolTransitions,
      bytes: w.spoolBytes,
      ...(w.spoolError !== null ? { error: w.spoolError } : {}),
    },
    ...(inputs.token.apiEndpoints ? { apiEndpoints: inputs.token.apiEndpoints() } : {}),
    leadership: inputs.leadership,
  };
}
