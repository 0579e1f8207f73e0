/**
 * The JSON body of `GET /health`, in one place: `src/http/server.ts` builds
 * it, `kickmon status` (`src/cli/process_commands.ts`) and `kickmon stop`
 * read it. Keys are snake_case (the convention of every kickmon JSON answer
 * and of Kick's API); times are ISO 8601 strings or null, durations ms.
 *
 * A reader gets the body of whichever kickmon answers, older or newer, so
 * it reads a {@linkcode ReceivedHealthBody}: the same shape, every field
 * optional.
 *
 * @module
 */

/**
 * A component's last failure and next retry, as `/health` shows it.
 *
 * @example
 * ```ts
 * const e: HealthErrors = { last_error: null, last_error_at: null, next_retry_at: null };
 * ```
 */
export interface HealthErrors {
  /** Host and cause of the last failure; null while the component works. */
  readonly last_error: string | null;
  /** When it failed, ISO 8601, or null. */
  readonly last_error_at: string | null;
  /** When it is tried again, ISO 8601, or null. */
  readonly next_retry_at: string | null;
}

/**
 * One Pusher connection (shard) in `/health`.
 *
 * @example
 * ```ts
 * const c: HealthConnection = {
 *   index: 0, state: "connected", channels: 10, subscribed: 10, oldest_unsubscribed_ms: 0,
 *   subscription_retries: 0, reconnects: 0, last_close_code: null,
 *   last_error: null, last_error_at: null, next_retry_at: null,
 * };
 * ```
 */
export interface HealthConnection extends HealthErrors {
  /** Shard number. */
  readonly index: number;
  /** `connecting`, `connected`, `disconnected`, `backoff` or `refused`. */
  readonly state: string;
  /** Channels assigned to this connection. */
  readonly channels: number;
  /** Channels whose subscription Pusher acknowledged. */
  readonly subscribed: number;
  /** How long the longest-waiting channel has gone unacknowledged, ms (0 when none waits). */
  readonly oldest_unsubscribed_ms: number;
  /** `pusher:subscribe` frames sent again after a refusal or a missing acknowledgement. */
  readonly subscription_retries: number;
  /** Connection attempts after the first one. */
  readonly reconnects: number;
  /** WebSocket close code of the last lost connection (1006 = abrupt), or null. */
  readonly last_close_code: number | null;
}

/**
 * One official API endpoint's capability in `/health` (an element of
 * `official.endpoints`), detected from its answers
 * (`kick/official/capabilities.ts`).
 *
 * @example
 * ```ts
 * const e: HealthEndpoint = {
 *   endpoint: "GET /livestreams", state: "gone", status: 404, deprecation: null, sunset: null,
 *   since: "2026-12-01T10:00:00.000Z", checked_at: "2026-12-01T10:00:00.000Z",
 * };
 * ```
 */
export interface HealthEndpoint {
  /** The endpoint label, as in `kickmon_api_requests_total{endpoint}`, e.g. `GET /livestreams`. */
  readonly endpoint: string;
  /** `unknown` (not asked yet), `available`, `deprecated` (Deprecation/Sunset headers) or `gone` (404/410). */
  readonly state: string;
  /** HTTP status of the answer that decided it, or null. */
  readonly status: number | null;
  /** The `Deprecation` header (RFC 9745), or null. */
  readonly deprecation: string | null;
  /** The `Sunset` header (RFC 8594), or null. */
  readonly sunset: string | null;
  /** Since when, ISO 8601, or null. */
  readonly since: string | null;
  /** Last answer that confirmed it, ISO 8601, or null. */
  readonly checked_at: string | null;
}

/**
 * This instance's role among several kickmon instances on one database
 * (issue 14, README "High availability"). Times are ISO 8601.
 *
 * @example
 * ```ts
 * const l: HealthLeadership = {
 *   role: "standby", since: "2026-12-02T05:00:00.000Z", eligible: true, changes_total: 0,
 *   reason: "another instance holds the leader lock",
 *   leader: { host: "kick-02", pid: 811, since: "2026-12-01T22:00:00.000Z" },
 * };
 * ```
 */
export interface HealthLeadership {
  /** `leader` (spends the API budget), `standby`, or `unknown` (the database does not answer). */
  readonly role: string;
  /** When this instance got its role. */
  readonly since: string;
  /** The leader (this instance when `role` is `leader`), null when unknown or nobody leads. */
  readonly leader:
    | { readonly host: string; readonly pid: number; readonly since: string | null }
    | null;
  /** Whether this instance may lead (`MONITORING_LEADER_ELIGIBLE`). */
  readonly eligible: boolean;
  /** Times this instance became or stopped being the leader. */
  readonly changes_total: number;
  /** Why the role is what it is. */
  readonly reason: string;
}

/**
 * What `GET /health` answers (HTTP 200 when `status` is `healthy`, else 503).
 *
 * @example
 * ```ts
 * function describe(b: HealthBody): string {
 *   return `${b.status}: ${b.write_queue_depth} writes waiting`;
 * }
 * ```
 */
export interface HealthBody {
  /** `healthy` or `unhealthy`. */
  readonly status: "healthy" | "unhealthy";
  /** PID of the answering kickmon. */
  readonly pid: number;
  /** Database reachability; `error` (only while down): why it is down now. */
  readonly database: { readonly up: boolean; readonly error?: string } & HealthErrors;
  /** Pusher: all connections up, and each connection with its state. */
  readonly pusher: { readonly up: boolean; readonly connections: readonly HealthConnection[] };
  /** OAuth token: `valid`, `refreshing`, `not used`, `failing`, …; its expiry (ISO 8601 or null). */
  readonly token: { readonly state: string; readonly expires_at: string | null } & HealthErrors;
  /** Status writes waiting for the database. */
  readonly write_queue_depth: number;
  /** Age of the oldest waiting write, ms. */
  readonly write_lag_ms: number;
  /** The outage spool: transitions and bytes on disk, the last write error. */
  readonly spool: { readonly transitions: number; readonly bytes: number; readonly error?: string };
  /** The official API (absent when it is not used): each tracked endpoint's capability. */
  readonly official?: { readonly endpoints: readonly HealthEndpoint[] };
  /** Streamer counts by status; `inactive` counts `is_active = false` rows whatever their status. */
  readonly streamers: {
    readonly online: number;
    readonly offline: number;
    readonly unknown: number;
    readonly inactive: number;
  };
  /** The role among several instances; it does not make the answer unhealthy. */
  readonly leadership: HealthLeadership;
}

/** `T` with every field optional, at every depth (arrays of such elements). */
type Loose<T> = T extends readonly (infer E)[] ? readonly Loose<E>[]
  : T extends object ? { readonly [K in keyof T]?: Loose<T[K]> }
  : T;

/**
 * A `/health` body as a reader receives it: {@linkcode HealthBody} with
 * every field optional (and `status` any string), so that the answer of an
 * older or newer kickmon still prints.
 *
 * @example
 * ```ts
 * const body: ReceivedHealthBody = { status: "healthy", pid: 4242, database: { up: true } };
 * ```
 */
export type ReceivedHealthBody = Loose<Omit<HealthBody, "status">> & { readonly status?: string };
