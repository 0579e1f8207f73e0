/**
 * Client side of Kick's Pusher WebSocket: keeps one or more pusher-js
 * connections ("shards") subscribed to `channel.{channelId}` for every
 * monitored Kick channel and hands every app event to a callback.
 *
 * Protocol facts used here (kick-protocol.md):
 * - §1.1 URL/key/cluster are configuration (the key has rotated before).
 * - §1.2 public channels need no auth.
 * - §1.3 `activity_timeout` comes from `pusher:connection_established`; pusher-js pings after
 *   that much silence and expects `pusher:pong` within its pong timeout.
 * - §1.4 close codes: 4000–4099 refused (don't retry unchanged), 4100–4199 back off,
 *   4200–4299 reconnect now; after any reconnect the server remembers nothing, so every
 *   channel is subscribed again.
 * - §1.5 no known per-connection channel limit: channels are sharded over several sockets.
 *
 * pusher-js's own reconnect ladder (15/30/60 s strategy timeouts, 1 s retries) is
 * not used: when a shard's connection fails in any way, its pusher-js instance is
 * torn down and a fresh one is created after this module's backoff.
 *
 * **How close codes are observed.** pusher-js does not expose them uniformly
 * (an abrupt close arrives with code 0 and no error; a handshake refusal arrives
 * as `{type:"WebSocketError", error:{type:"PusherError", data:{code,message}}}`;
 * a `pusher:error` frame as `{type:"PusherError", data:{code,message}}`). So each
 * shard captures the **native WebSocket** pusher-js creates (the worker build
 * creates it synchronously inside `new Pusher()` via `Pusher.Runtime.createWebSocket`,
 * which is wrapped for the duration of that call) and listens to its `close`
 * event for the code; pusher-js `error` events supply the code/message of
 * handshake refusals and `pusher:error` frames. Deno reports an abrupt TCP close
 * as code 0; it is normalised to 1006.
 *
 * @module
 */

import PusherWorker from "pusher-js/worker";
import type Pusher from "pusher-js";
import { getLogger } from "@logtape/logtape";
import { LogRateLimiter } from "../../log/logging.ts";
import { channelName } from "./frames.ts";

const log = getLogger(["kickmon", "pusher"]);

/** The pusher-js client class (type of the worker build's default export). */
type PusherClient = Pusher.default;
type PusherCtor = typeof Pusher.default;
type PusherOptions = Pusher.Options;
type Timer = ReturnType<typeof setTimeout>;
const PusherImpl = PusherWorker as unknown as PusherCtor;

/** The slice of pusher-js's runtime object this module touches (worker build). */
interface WorkerRuntime {
  createWebSocket(url: string): WebSocket;
  getNetwork(): {
    bind(event: string, fn: (...a: unknown[]) => void): unknown;
    unbind(event: string, fn: (...a: unknown[]) => void): unknown;
    callbacks?: { get(name: string): { fn: (...a: unknown[]) => void }[] | undefined };
  };
}

/**
 * Shard states as reported by {@linkcode PusherSubscriber.snapshot}:
 * - `connecting`: a pusher-js instance exists, handshake not done yet.
 * - `connected`: `pusher:connection_established` received.
 * - `backoff`: waiting before the next attempt (also briefly before the first, for staggering).
 * - `refused`: waiting `refusedRetryMs` after a 4000–4099 refusal (§1.4).
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
 * One shard (one WebSocket connection) as seen by {@linkcode PusherSubscriber.snapshot}.
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
 * Options of {@linkcode PusherSubscriber}. All durations are in **milliseconds**.
 *
 * @example
 * ```ts
 * import type { PusherSubscriberOptions } from "./subscriber.ts";
 * const kick: PusherSubscriberOptions = { key: "32cbd69e4b950bf97679", cluster: "us2" };
 * const local: PusherSubscriberOptions = {
 *   key: "k", cluster: "local", host: "127.0.0.1", port: 8080, tls: false,
 * };
 * ```
 */
export interface PusherSubscriberOptions {
  /** Pusher app key (Kick: `32cbd69e4b950bf97679`, §1.1; may rotate). */
  readonly key: string;
  /** Pusher cluster (Kick: `us2`); gives the host `ws-{cluster}.pusher.com` unless `host` is set. */
  readonly cluster: string;
  /** WebSocket host override (the simulator: `127.0.0.1`). */
  readonly host?: string;
  /** Port override; default 443 with TLS, 80 without. */
  readonly port?: number;
  /** Use `wss://`. Default true. */
  readonly tls?: boolean;
  /** Max channels per connection (shard). Default 500 (no published Kick limit, §1.5). */
  readonly maxChannelsPerConnection?: number;
  /** Backoff base: the first retry waits up to this long (full jitter). Default 1000. */
  readonly reconnectBaseMs?: number;
  /** Backoff cap. Default 30000. */
  readonly reconnectMaxMs?: number;
  /** Wait after a 4000–4099 refusal before trying again. Default 60000; values below 1000 are raised to 1000. */
  readonly refusedRetryMs?: number;
  /** Consecutive failures per shard before `onGiveUp`; 0 = retry forever. Default 0. */
  readonly maxReconnectAttempts?: number;
  /** How long to wait for `pusher:pong` after a ping; also added to the activity timeout for the watchdog. Default 30000. */
  readonly pongTimeoutMs?: number;
  /** Client-side upper bound for the activity timeout (pusher-js `activityTimeout`). The server's `activity_timeout` wins when lower. Default 120000. */
  readonly activityTimeoutMs?: number;
  /** Handshake deadline for one attempt (TCP + `pusher:connection_established`). Default 10000, max 15000 (pusher-js's own per-attempt timeout). */
  readonly connectTimeoutMs?: number;
  /** Minimum spacing between connection attempts of different shards. Default 100. */
  readonly staggerMs?: number;
  /** A connection that stayed up this long resets the shard's failure count. Default 30000. */
  readonly stableAfterMs?: number;
}

/**
 * Callbacks of {@linkcode PusherSubscriber}. Exceptions thrown by a handler are
 * caught and logged; they never break the connection.
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
   * current connection: once after each (re)connect, and again after {@linkcode PusherSubscriber.setChannels}
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
}

/** One connection attempt (one pusher-js instance). */
interface Conn {
  readonly pusher: PusherClient;
  /** Native socket created by pusher-js for this attempt (null if it could not be captured). */
  ws: WebSocket | null;
  /** Resolves when the native socket has closed (or immediately if none). */
  socketClosed: Promise<void>;
  readonly handlers: Map<string, (event: string, data: unknown) => void>;
  readonly acked: Set<string>;
  /**
   * Channels subscribed on this connection and not acknowledged yet: since
   * when (performance.now(), ms), failed tries, when to send `pusher:subscribe`
   * again (ms).
   */
  readonly pendingSubs: Map<string, { since: number; failures: number; retryAt: number }>;
  readonly netCallbacks: { event: string; fn: (...a: unknown[]) => void }[];
  connected: boolean;
  connectedMono: number;
  lastRxMono: number;
  socketId: string | null;
  errorCode: number | undefined;
  errorMessage: string | undefined;
  /** The native socket's `error` event text (Deno: `failed to connect to WebSocket: dns error`). */
  socketError: string | undefined;
  fullyAcked: boolean;
  connectTimer: Timer | undefined;
  watchdog: Timer | undefined;
  /** Next re-subscribe check (see `#armSubscribeRetry`), and when it is due (performance.now(), ms). */
  subTimer: Timer | undefined;
  subTimerAt: number;
}

interface Shard {
  readonly index: number;
  readonly channels: Set<string>;
  state: ShardState;
  conn: Conn | null;
  retryTimer: Timer | undefined;
  nextAttemptAt: number | null;
  failures: number;
  attempts: number;
  everConnected: boolean;
  lastCloseCode: number | null;
  lastCloseReason: string | null;
  lastCloseAt: number | null;
  lastMessageAt: number | null;
  gaveUp: boolean;
  subscriptionRetries: number;
}

/** ms the longest-waiting unacknowledged channel of `conn` has waited. */
function oldestPending(conn: Conn): number {
  let since = Infinity;
  for (const p of conn.pendingSubs.values()) since = Math.min(since, p.since);
  return since === Infinity ? 0 : Math.round(performance.now() - since);
}

/**
 * When to send `pusher:subscribe` again after `failures` refused or
 * unanswered tries: 1 s doubling to 60 s, with ±25 % jitter. ms.
 */
function subscribeRetryDelayMs(failures: number): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return base * (0.75 + Math.random() / 2);
}

/** How long a `pusher:subscribe` may go unanswered before it is sent again, ms. */
const SUBSCRIBE_ACK_TIMEOUT_MS = 10_000;

/** Error codes and messages found in pusher-js `error` events (see module doc). */
function errorInfo(err: unknown): { code?: number; message?: string; type?: string } {
  if (err === null || typeof err !== "object") return {};
  const e = err as { type?: unknown; data?: unknown; error?: unknown };
  const inner = e.error !== null && typeof e.error === "object"
    ? e.error as { data?: unknown; type?: unknown }
    : undefined;
  const d = (e.data ?? inner?.data) as { code?: unknown; message?: unknown } | undefined;
  const out: { code?: number; message?: string; type?: string } = {};
  if (typeof e.type === "string") out.type = e.type;
  if (d && typeof d === "object") {
    if (typeof d.code === "number") out.code = d.code;
    if (typeof d.message === "string") out.message = d.message;
  }
  if (out.message === undefined && typeof e.error === "string") out.message = e.error;
  return out;
}

/** What a 4000–4099 refusal most likely means (§1.4), for the error log. */
function refusalCause(code: number): string {
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Keeps Pusher subscriptions for a set of Kick channel ids, sharded over
 * several connections, with its own reconnect policy (see the module doc).
 *
 * Lifecycle: construct → {@linkcode setChannels} (any time) → {@linkcode start}
 * → … → `await` {@linkcode stop}. A stopped subscriber cannot be restarted.
 *
 * Reconnect policy per shard, by close code (§1.4):
 * - 4000–4099 (refused: wrong/rotated key, quota, …): error log naming the likely cause;
 *   next attempt after `refusedRetryMs` (+ up to 10 % jitter).
 * - 4200–4299 (reconnect now): immediately (only the stagger applies), unless the shard
 *   already failed 3 times in a row, then normal backoff.
 * - 4100–4199: `reconnectBaseMs` + exponential full-jitter backoff.
 * - anything else (1006 abrupt close, 1000, 1005, handshake timeout, silent socket): exponential
 *   backoff with full jitter: `random() × min(reconnectMaxMs, reconnectBaseMs × 2^(failures−1))`.
 *
 * A connected shard that receives nothing (no event, no `pusher:pong`) for the server's activity
 * timeout + `pongTimeoutMs` is declared dead and replaced.
 *
 * @example
 * ```ts
 * import { PusherSubscriber } from "./subscriber.ts";
 * import { parsePusherEvent } from "./frames.ts";
 * const sub = new PusherSubscriber({ key: "32cbd69e4b950bf97679", cluster: "us2" }, {
 *   onEvent(channel, event, data, receivedAt, receivedMono) {
 *     const r = parsePusherEvent(channel, event, data, receivedAt, receivedMono);
 *     if (r.kind === "observation") console.log(r.observation);
 *   },
 *   onGiveUp: () => Deno.exit(1),
 * });
 * sub.setChannels([2587387, 668]);
 * sub.start();
 * // …
 * await sub.stop();
 * ```
 */
export class PusherSubscriber {
  readonly #limit = new LogRateLimiter(3, 60_000);
  readonly #key: string;
  readonly #pusherOptions: PusherOptions;
  readonly #maxPerShard: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #refusedMs: number;
  readonly #maxAttempts: number;
  readonly #pongTimeoutMs: number;
  readonly #activityTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #staggerMs: number;
  readonly #stableAfterMs: number;
  readonly #h: PusherSubscriberHandlers;
  /** `wss://host:port`, for log lines. */
  readonly #url: string;

  readonly #shards = new Map<number, Shard>();
  readonly #channelShard = new Map<string, Shard>();
  readonly #closing = new Set<Promise<void>>();
  #started = false;
  #stopped = false;
  /** performance.now() before which no further attempt may start (staggering). */
  #nextSlot = 0;

  /**
   * Creates an idle subscriber: no connection is opened before {@linkcode start}.
   *
   * @param options connection and policy settings (see {@linkcode PusherSubscriberOptions}).
   * @param handlers callbacks (see {@linkcode PusherSubscriberHandlers}).
   * @throws {RangeError} when `maxChannelsPerConnection` is not a positive integer or a duration is negative.
   *
   * @example
   * ```ts
   * import { PusherSubscriber } from "./subscriber.ts";
   * const sub = new PusherSubscriber(
   *   { key: "k", cluster: "local", host: "127.0.0.1", port: 8080, tls: false, maxChannelsPerConnection: 3 },
   *   { onEvent: (ch, ev) => console.log(ch, ev) },
   * );
   * ```
   */
  constructor(options: PusherSubscriberOptions, handlers: PusherSubscriberHandlers) {
    const o = options;
    this.#key = o.key;
    this.#maxPerShard = o.maxChannelsPerConnection ?? 500;
    this.#baseMs = o.reconnectBaseMs ?? 1000;
    this.#maxMs = o.reconnectMaxMs ?? 30_000;
    this.#refusedMs = Math.max(1000, o.refusedRetryMs ?? 60_000);
    this.#maxAttempts = o.maxReconnectAttempts ?? 0;
    this.#pongTimeoutMs = o.pongTimeoutMs ?? 30_000;
    this.#activityTimeoutMs = o.activityTimeoutMs ?? 120_000;
    this.#connectTimeoutMs = Math.min(15_000, o.connectTimeoutMs ?? 10_000);
    this.#staggerMs = o.staggerMs ?? 100;
    this.#stableAfterMs = o.stableAfterMs ?? 30_000;
    if (!Number.isInteger(this.#maxPerShard) || this.#maxPerShard < 1) {
      throw new RangeError(
        `maxChannelsPerConnection must be a positive integer, got ${this.#maxPerShard}`,
      );
    }
    for (
      const [name, v] of Object.entries({
        reconnectBaseMs: this.#baseMs,
        reconnectMaxMs: this.#maxMs,
        maxReconnectAttempts: this.#maxAttempts,
        pongTimeoutMs: this.#pongTimeoutMs,
        activityTimeoutMs: this.#activityTimeoutMs,
        connectTimeoutMs: this.#connectTimeoutMs,
        staggerMs: this.#staggerMs,
        stableAfterMs: this.#stableAfterMs,
      })
    ) {
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${name} must be ≥ 0, got ${v}`);
    }
    const tls = o.tls ?? true;
    this.#pusherOptions = {
      cluster: o.cluster,
      forceTLS: tls,
      // Only the WebSocket transport: no SockJS/XHR fallbacks (they do not exist in Deno).
      enabledTransports: ["ws"],
      enableStats: false,
      activityTimeout: this.#activityTimeoutMs,
      pongTimeout: this.#pongTimeoutMs,
      unavailableTimeout: this.#connectTimeoutMs,
      ...(o.host !== undefined ? { wsHost: o.host } : {}),
      ...(o.port !== undefined ? (tls ? { wssPort: o.port } : { wsPort: o.port }) : {}),
    };
    this.#h = handlers;
    const host = o.host || `ws-${o.cluster}.pusher.com`;
    this.#url = `${tls ? "wss" : "ws"}://${host}:${o.port ?? (tls ? 443 : 80)}`;
  }

  /**
   * Sets the monitored channel ids. Diffs against the current set: new channels are
   * subscribed (on the first shard with room, opening shards as needed), removed ones
   * unsubscribed; channels that stay keep their shard. Shards left empty are closed.
   * Can be called before or after {@linkcode start}; after {@linkcode stop} it only records.
   *
   * @param channelIds Kick channel ids (§2); duplicates are ignored. Ids that are not positive
   *   safe integers are skipped with a warning (one bad database row must not stop the others).
   * @returns the number of ids skipped as invalid.
   *
   * @example
   * ```ts
   * import { PusherSubscriber } from "./subscriber.ts";
   * const sub = new PusherSubscriber({ key: "k", cluster: "us2" }, { onEvent() {} });
   * sub.setChannels([668, 2587387]);
   * sub.setChannels([668]); // unsubscribes channel.2587387
   * ```
   */
  setChannels(channelIds: Iterable<number>): number {
    const desired = new Set<string>();
    const invalid: unknown[] = [];
    for (const id of channelIds) {
      if (Number.isSafeInteger(id) && id > 0) desired.add(channelName(id));
      else invalid.push(id);
    }
    if (invalid.length) {
      log.warn("pusher: ignoring {n} invalid channel id(s), e.g. {examples}", {
        n: invalid.length,
        examples: invalid.slice(0, 5).map(String).join(", "),
      });
    }

    for (const [name, shard] of [...this.#channelShard]) {
      if (!desired.has(name)) this.#removeChannel(shard, name);
    }
    const ordered = [...this.#shards.values()].sort((a, b) => a.index - b.index);
    let cursor = 0;
    for (const name of desired) {
      if (this.#channelShard.has(name)) continue;
      while (cursor < ordered.length && ordered[cursor].channels.size >= this.#maxPerShard) {
        cursor++;
      }
      let shard = ordered[cursor];
      if (!shard) {
        shard = this.#newShard();
        ordered.push(shard);
      }
      this.#addChannel(shard, name);
    }
    for (const shard of ordered) {
      if (shard.channels.size === 0) this.#closeShard(shard);
      else if (
        this.#started && !this.#stopped && !shard.gaveUp && !shard.conn &&
        shard.retryTimer === undefined
      ) {
        this.#schedule(shard, 0, "connecting");
      }
    }
    return invalid.length;
  }

  /**
   * Opens the connections (staggered by `staggerMs`). Idempotent.
   *
   * @throws {Error} when called after {@linkcode stop}.
   *
   * @example
   * ```ts
   * import { PusherSubscriber } from "./subscriber.ts";
   * const sub = new PusherSubscriber({ key: "k", cluster: "us2" }, { onEvent() {} });
   * sub.setChannels([668]);
   * sub.start();
   * await sub.stop();
   * ```
   */
  start(): void {
    if (this.#stopped) throw new Error("PusherSubscriber: start() after stop()");
    if (this.#started) return;
    this.#started = true;
    for (const shard of [...this.#shards.values()].sort((a, b) => a.index - b.index)) {
      if (!shard.conn && shard.retryTimer === undefined) this.#schedule(shard, 0, "connecting");
    }
  }

  /**
   * Closes every connection, cancels every timer and resolves once the sockets
   * have closed (at most ~2 s per socket; a socket that does not finish its close
   * handshake in time is abandoned). Idempotent; never rejects.
   *
   * @example
   * ```ts
   * import { PusherSubscriber } from "./subscriber.ts";
   * const sub = new PusherSubscriber({ key: "k", cluster: "us2" }, { onEvent() {} });
   * await sub.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const shard of this.#shards.values()) {
      this.#clearRetry(shard);
      if (shard.conn) this.#teardown(shard.conn);
      shard.conn = null;
      shard.state = "disconnected";
    }
    while (this.#closing.size) await Promise.all([...this.#closing]);
    // pusher-js defers socket writes with 0 ms timers; let them run out.
    await sleep(5);
  }

  /**
   * The state of every shard, ordered by index.
   *
   * @example
   * ```ts
   * import { PusherSubscriber } from "./subscriber.ts";
   * const sub = new PusherSubscriber({ key: "k", cluster: "us2" }, { onEvent() {} });
   * sub.setChannels([1, 2, 3]);
   * console.log(sub.snapshot().map((s) => `${s.index}:${s.state}:${s.subscribed}/${s.channels}`));
   * ```
   */
  snapshot(): ShardSnapshot[] {
    return this.#snapshot();
  }

  /** The WebSocket endpoint, e.g. `wss://ws-us2.pusher.com:443` (for messages). */
  get url(): string {
    return this.#url;
  }

  #snapshot(): ShardSnapshot[] {
    return [...this.#shards.values()].sort((a, b) => a.index - b.index).map((s) => ({
      index: s.index,
      state: s.state,
      channels: s.channels.size,
      subscribed: s.conn?.connected ? s.conn.acked.size : 0,
      socketId: s.conn?.connected ? s.conn.socketId : null,
      reconnects: Math.max(0, s.attempts - 1),
      failures: s.failures,
      lastCloseCode: s.lastCloseCode,
      lastCloseReason: s.lastCloseReason,
      lastCloseAt: s.lastCloseAt,
      lastMessageAt: s.lastMessageAt,
      nextAttemptAt: s.retryTimer !== undefined ? s.nextAttemptAt : null,
      oldestUnsubscribedMs: s.conn?.connected ? oldestPending(s.conn) : 0,
      subscriptionRetries: s.subscriptionRetries,
    }));
  }

  // -------------------------------------------------------------------------
  // Shards and channels
  // -------------------------------------------------------------------------

  #newShard(): Shard {
    let index = 0;
    while (this.#shards.has(index)) index++;
    const shard: Shard = {
      index,
      channels: new Set(),
      state: "disconnected",
      conn: null,
      retryTimer: undefined,
      nextAttemptAt: null,
      failures: 0,
      attempts: 0,
      everConnected: false,
      lastCloseCode: null,
      lastCloseReason: null,
      lastCloseAt: null,
      lastMessageAt: null,
      gaveUp: false,
      subscriptionRetries: 0,
    };
    this.#shards.set(index, shard);
    return shard;
  }

  #closeShard(shard: Shard): void {
    this.#clearRetry(shard);
    if (shard.conn) this.#teardown(shard.conn);
    shard.conn = null;
    shard.state = "disconnected";
    this.#shards.delete(shard.index);
    log.debug("pusher shard {shard} closed (no channels left)", { shard: shard.index });
  }

  #addChannel(shard: Shard, name: string): void {
    shard.channels.add(name);
    this.#channelShard.set(name, shard);
    if (shard.conn) {
      shard.conn.fullyAcked = false;
      this.#subscribeOn(shard, shard.conn, name);
    }
  }

  #removeChannel(shard: Shard, name: string): void {
    shard.channels.delete(name);
    this.#channelShard.delete(name);
    const conn = shard.conn;
    if (!conn) return;
    conn.acked.delete(name);
    conn.pendingSubs.delete(name);
    const h = conn.handlers.get(name);
    conn.handlers.delete(name);
    try {
      if (h) conn.pusher.channel(name)?.unbind_global(h);
      conn.pusher.unsubscribe(name);
    } catch (e) {
      log.warn("pusher shard {shard}: unsubscribe {channel} failed: {error}", {
        shard: shard.index,
        channel: name,
        error: String(e),
      });
    }
  }

  #subscribeOn(shard: Shard, conn: Conn, name: string): void {
    const channel = conn.pusher.subscribe(name);
    if (!conn.acked.has(name) && !conn.pendingSubs.has(name)) {
      const now = performance.now();
      conn.pendingSubs.set(name, {
        since: now,
        failures: 0,
        retryAt: now + SUBSCRIBE_ACK_TIMEOUT_MS,
      });
      this.#armSubscribeRetry(shard, conn);
    }
    if (conn.handlers.has(name)) return;
    const h = (eventName: string, data: unknown): void => {
      if (shard.conn !== conn) return;
      if (eventName.startsWith("pusher:") || eventName.startsWith("pusher_internal:")) {
        if (eventName === "pusher:subscription_succeeded") this.#onAck(shard, conn, name);
        else if (eventName === "pusher:subscription_error") {
          const p = conn.pendingSubs.get(name);
          if (p) {
            p.failures++;
            p.retryAt = performance.now() + subscribeRetryDelayMs(p.failures);
            this.#armSubscribeRetry(shard, conn);
          }
          if (this.#limit.allow(`suberr:${shard.index}`)) {
            log.warn(
              "pusher shard {shard}: subscription to {channel} refused ({data}); retrying in {ms} ms",
              {
                shard: shard.index,
                channel: name,
                data: JSON.stringify(data)?.slice(0, 200),
                ms: Math.round((p?.retryAt ?? performance.now()) - performance.now()),
              },
            );
          }
        }
        return;
      }
      if (!shard.channels.has(name)) return;
      try {
        this.#h.onEvent(name, eventName, data, Date.now(), performance.now());
      } catch (e) {
        log.error("pusher onEvent handler threw for {event} on {channel}: {error}", {
          event: eventName,
          channel: name,
          error: e instanceof Error ? e.stack ?? e.message : String(e),
        });
      }
    };
    conn.handlers.set(name, h);
    channel.bind_global(h);
  }

  /**
   * Sends `pusher:subscribe` again for every channel of `conn` whose retry is
   * due (refused by `pusher:subscription_error` or a `pusher:error`, or
   * unanswered for {@linkcode SUBSCRIBE_ACK_TIMEOUT_MS}), and re-arms for the
   * next one. One timer per connection.
   */
  #armSubscribeRetry(shard: Shard, conn: Conn): void {
    if (conn.pendingSubs.size === 0) return;
    let next = Infinity;
    for (const p of conn.pendingSubs.values()) next = Math.min(next, p.retryAt);
    if (conn.subTimer !== undefined) {
      if (conn.subTimerAt <= next) return; // already due in time
      clearTimeout(conn.subTimer);
    }
    conn.subTimerAt = next;
    conn.subTimer = setTimeout(() => {
      conn.subTimer = undefined;
      if (shard.conn !== conn || this.#stopped) return;
      const now = performance.now();
      if (conn.connected) {
        for (const [name, p] of conn.pendingSubs) {
          if (p.retryAt > now || !shard.channels.has(name)) continue;
          p.failures++;
          p.retryAt = now + Math.max(SUBSCRIBE_ACK_TIMEOUT_MS, subscribeRetryDelayMs(p.failures));
          shard.subscriptionRetries++;
          try {
            // pusher-js's Channel.subscribe() sends pusher:subscribe again for a
            // channel not (yet) subscribed; the bound handler stays.
            const ch = conn.pusher.channel(name) as unknown as
              | { subscribed: boolean; subscribe(): void }
              | undefined;
            if (ch && !ch.subscribed) ch.subscribe();
            else if (!ch) this.#subscribeOn(shard, conn, name);
          } catch (e) {
            log.warn("pusher shard {shard}: re-subscribing {channel} failed: {error}", {
              shard: shard.index,
              channel: name,
              error: String(e),
            });
          }
        }
      }
      this.#armSubscribeRetry(shard, conn);
    }, Math.max(50, next - performance.now()));
    Deno.unrefTimer(conn.subTimer as unknown as number);
  }

  #onAck(shard: Shard, conn: Conn, name: string): void {
    if (!shard.channels.has(name)) return;
    conn.pendingSubs.delete(name);
    conn.acked.add(name);
    this.#checkFullyAcked(shard, conn);
  }

  #checkFullyAcked(shard: Shard, conn: Conn): void {
    if (!conn.fullyAcked && conn.connected && conn.acked.size >= shard.channels.size) {
      conn.fullyAcked = true;
      log.debug("pusher shard {shard}: all {n} channels subscribed", {
        shard: shard.index,
        n: shard.channels.size,
      });
      this.#call("onSubscribed", () => this.#h.onSubscribed?.(shard.index, shard.channels.size));
    }
  }

  // -------------------------------------------------------------------------
  // Connection lifecycle
  // -------------------------------------------------------------------------

  #clearRetry(shard: Shard): void {
    if (shard.retryTimer !== undefined) clearTimeout(shard.retryTimer);
    shard.retryTimer = undefined;
    shard.nextAttemptAt = null;
  }

  /** Schedules the next attempt of a shard after `delayMs`, respecting the stagger slot. */
  #schedule(shard: Shard, delayMs: number, state: ShardState): void {
    this.#clearRetry(shard);
    const now = performance.now();
    const at = Math.max(now + delayMs, this.#nextSlot);
    this.#nextSlot = at + this.#staggerMs;
    const wait = Math.max(0, Math.round(at - now));
    shard.state = state;
    shard.nextAttemptAt = Date.now() + wait;
    shard.retryTimer = setTimeout(() => {
      shard.retryTimer = undefined;
      shard.nextAttemptAt = null;
      this.#connect(shard);
    }, wait);
  }

  #connect(shard: Shard): void {
    if (
      this.#stopped || !this.#started || shard.conn || this.#shards.get(shard.index) !== shard
    ) return;
    shard.attempts++;
    shard.state = "connecting";

    // Capture the native WebSocket pusher-js creates synchronously in its constructor,
    // and the network listeners it registers (never removed by pusher-js: a leak per instance).
    const runtime = PusherImpl.Runtime as unknown as WorkerRuntime;
    const network = runtime.getNetwork();
    const before = {
      online: [...(network.callbacks?.get("online") ?? [])].map((c) => c.fn),
      offline: [...(network.callbacks?.get("offline") ?? [])].map((c) => c.fn),
    };
    const created: WebSocket[] = [];
    const original = runtime.createWebSocket;
    const onRejected = this.#h.onFrameRejected?.bind(this.#h);
    const onNotPermitted = this.#h.onNotPermitted?.bind(this.#h);
    runtime.createWebSocket = function (this: unknown, url: string): WebSocket {
      let ws: WebSocket;
      try {
        ws = original.call(this, url);
      } catch (e) {
        // pusher-js swallows this and waits for a handshake that never comes;
        // a permission this build lacks is not a network problem to retry.
        if (e instanceof Deno.errors.NotCapable && onNotPermitted) {
          queueMicrotask(() => onNotPermitted(shard.index, e));
        }
        throw e;
      }
      guardMessages(ws, shard.index, onRejected);
      created.push(ws);
      return ws;
    };
    let pusher: PusherClient;
    try {
      pusher = new PusherImpl(this.#key, this.#pusherOptions);
    } catch (e) {
      runtime.createWebSocket = original;
      log.error("pusher shard {shard}: cannot create the pusher-js client: {error}", {
        shard: shard.index,
        error: String(e),
      });
      shard.state = "disconnected";
      this.#afterFailure(shard, `pusher-js constructor threw: ${e}`, undefined);
      return;
    }
    runtime.createWebSocket = original;

    const netCallbacks: Conn["netCallbacks"] = [];
    for (const event of ["online", "offline"] as const) {
      for (const c of network.callbacks?.get(event) ?? []) {
        if (!before[event].includes(c.fn)) netCallbacks.push({ event, fn: c.fn });
      }
    }

    const conn: Conn = {
      pusher,
      ws: created[0] ?? null,
      socketClosed: Promise.resolve(),
      handlers: new Map(),
      acked: new Set(),
      pendingSubs: new Map(),
      netCallbacks,
      connected: false,
      connectedMono: 0,
      lastRxMono: performance.now(),
      socketId: null,
      errorCode: undefined,
      errorMessage: undefined,
      socketError: undefined,
      fullyAcked: false,
      connectTimer: undefined,
      subTimer: undefined,
      subTimerAt: Infinity,
      watchdog: undefined,
    };
    shard.conn = conn;
    if (conn.ws) this.#watchSocket(shard, conn, conn.ws);

    const cm = pusher.connection;
    cm.bind(
      "state_change",
      (s: { previous: string; current: string }) => this.#onState(shard, conn, s),
    );
    // Bound after pusher-js's own "connected" handler (subscribeAll), so it runs after the
    // subscriptions were queued.
    cm.bind("connected", () => {
      if (shard.conn === conn && !conn.connected) this.#onConnected(shard, conn);
    });
    cm.bind("error", (err: unknown) => this.#onError(shard, conn, err));
    cm.bind("message", () => {
      conn.lastRxMono = performance.now();
      shard.lastMessageAt = Date.now();
    });
    for (const name of shard.channels) this.#subscribeOn(shard, conn, name);

    conn.connectTimer = setTimeout(() => {
      conn.connectTimer = undefined;
      this.#fail(
        shard,
        conn,
        `handshake not completed within ${this.#connectTimeoutMs} ms`,
        conn.errorCode,
      );
    }, this.#connectTimeoutMs);
    log.debug("pusher shard {shard}: connecting (attempt {attempt}, {n} channels)", {
      shard: shard.index,
      attempt: shard.attempts,
      n: shard.channels.size,
    });
  }

  /** Listens to the native socket's close event (the reliable source of close codes). */
  #watchSocket(shard: Shard, conn: Conn, ws: WebSocket): void {
    let resolve!: () => void;
    conn.socketClosed = new Promise<void>((r) => (resolve = r));
    // The only place Deno says why a connection failed (dns error, tcp connect error, TLS).
    ws.addEventListener("error", (e: Event) => {
      const msg = (e as ErrorEvent).message;
      if (msg) conn.socketError = msg.replace(/^NetworkError: /, "");
    }, { once: true });
    ws.addEventListener("close", (e: CloseEvent) => {
      resolve();
      // Deno reports an abrupt TCP close (no close frame) as code 0: that is 1006.
      const code = e.code ? e.code : 1006;
      const why = e.reason || conn.errorMessage || conn.socketError;
      this.#fail(
        shard,
        conn,
        `${conn.connected ? "connection closed" : "connection attempt closed"} (${code}${
          why ? `: ${why}` : ""
        })`,
        code,
      );
    }, { once: true });
  }

  #onState(shard: Shard, conn: Conn, s: { previous: string; current: string }): void {
    if (shard.conn !== conn) return;
    if (s.current === "connected") return; // handled by the "connected" binding
    if (s.current === "connecting" && !conn.connected) return;
    // connected → connecting (pusher-js retrying: pong timeout, server close), unavailable,
    // disconnected (refused), failed: this instance is done.
    // A native close is handled first (#watchSocket), so connected → connecting without an
    // error means pusher-js's own keep-alive failed: it pinged and got no pong in time (§1.3).
    const reason = conn.errorMessage !== undefined
      ? `pusher-js ${s.current}: ${conn.errorMessage}`
      : s.previous === "connected" && s.current === "connecting"
      ? `no pusher:pong within ${this.#pongTimeoutMs} ms of pusher-js's ping (silent connection)`
      : `pusher-js state ${s.previous} → ${s.current}`;
    this.#fail(shard, conn, reason, conn.errorCode);
  }

  #onError(shard: Shard, conn: Conn, err: unknown): void {
    if (shard.conn !== conn) return;
    const info = errorInfo(err);
    if (info.code !== undefined) conn.errorCode = info.code;
    if (info.message !== undefined) conn.errorMessage = info.message;
    if (info.code === undefined) {
      if (info.type === "HandshakeError" || info.type === "MessageParseError") {
        log.warn("pusher shard {shard}: {type}: {message}", {
          shard: shard.index,
          type: info.type,
          message: info.message ?? "",
        });
      }
      return;
    }
    if (!conn.connected) {
      // Handshake refusal (`pusher:error` instead of `pusher:connection_established`, §1.4).
      this.#fail(shard, conn, `handshake refused (${info.code}: ${info.message ?? ""})`, info.code);
    } else {
      // A `pusher:error` frame on an open connection (e.g. 4302 for a
      // subscription); a close often follows. What is still unacknowledged is
      // subscribed again with backoff. Logged at a bounded rate.
      for (const p of conn.pendingSubs.values()) {
        p.failures++;
        p.retryAt = Math.min(p.retryAt, performance.now() + subscribeRetryDelayMs(p.failures));
      }
      this.#armSubscribeRetry(shard, conn);
      if (this.#limit.allow(`pusher-error:${shard.index}`)) {
        log.warn("pusher shard {shard}: pusher:error {code}: {message}", {
          shard: shard.index,
          code: info.code,
          message: info.message ?? "",
        });
      }
    }
  }

  #onConnected(shard: Shard, conn: Conn): void {
    const cm = conn.pusher.connection;
    conn.connected = true;
    conn.connectedMono = performance.now();
    conn.lastRxMono = conn.connectedMono;
    conn.socketId = cm.socket_id;
    conn.errorCode = undefined;
    conn.errorMessage = undefined;
    if (conn.connectTimer !== undefined) clearTimeout(conn.connectTimer);
    conn.connectTimer = undefined;
    if (!conn.ws) {
      // Fallback when the socket could not be captured at creation time.
      const ws = cm.connection?.transport?.socket as unknown as WebSocket | undefined;
      if (ws && typeof ws.addEventListener === "function") {
        conn.ws = ws;
        this.#watchSocket(shard, conn, ws);
      }
    }
    const reconnect = shard.everConnected;
    shard.everConnected = true;
    shard.state = "connected";
    this.#armWatchdog(shard, conn);
    log.info("pusher shard {shard} connected: socket {socketId}, {channels} channels", {
      shard: shard.index,
      socketId: conn.socketId,
      channels: shard.channels.size,
      reconnect,
      attempt: shard.attempts,
    });
    this.#call(
      "onConnected",
      () => this.#h.onConnected?.(shard.index, { socketId: conn.socketId ?? "", reconnect }),
    );
    this.#checkFullyAcked(shard, conn);
  }

  /** Activity timeout (ms) agreed for this connection: min(client bound, server's `activity_timeout`). */
  #activityMs(conn: Conn): number {
    const t = conn.pusher.connection.activityTimeout;
    return typeof t === "number" && t > 0 ? t : this.#activityTimeoutMs;
  }

  #armWatchdog(shard: Shard, conn: Conn): void {
    const limit = this.#activityMs(conn) + this.#pongTimeoutMs;
    const check = () => {
      conn.watchdog = undefined;
      if (shard.conn !== conn) return;
      const idle = performance.now() - conn.lastRxMono;
      if (idle >= limit) {
        this.#fail(
          shard,
          conn,
          `no frame or pong for ${Math.round(idle)} ms (activity timeout ${
            this.#activityMs(conn)
          } ms + pong timeout ${this.#pongTimeoutMs} ms)`,
          undefined,
        );
        return;
      }
      conn.watchdog = setTimeout(check, Math.max(10, limit - idle));
    };
    conn.watchdog = setTimeout(check, limit);
  }

  /** Ends the current attempt/connection of a shard and schedules what comes next. */
  #fail(shard: Shard, conn: Conn, reason: string, code: number | undefined): void {
    if (shard.conn !== conn) return;
    const wasConnected = conn.connected;
    const upFor = wasConnected ? performance.now() - conn.connectedMono : 0;
    shard.conn = null;
    this.#teardown(conn);
    shard.lastCloseCode = code ?? null;
    shard.lastCloseReason = reason;
    shard.lastCloseAt = Date.now();
    if (wasConnected) {
      log.warn("pusher shard {shard} lost its connection to {url} after {upMs} ms: {reason}", {
        shard: shard.index,
        url: this.#url,
        upMs: Math.round(upFor),
        reason,
      });
      this.#call("onDisconnected", () => this.#h.onDisconnected?.(shard.index, reason, code));
    }
    if (this.#stopped || this.#shards.get(shard.index) !== shard) {
      shard.state = "disconnected";
      return;
    }
    if (wasConnected && upFor >= this.#stableAfterMs) shard.failures = 0;
    this.#afterFailure(shard, reason, code, !wasConnected);
  }

  /**
   * Schedules the next attempt after a failure. `attemptFailed`: a connection
   * attempt (not an established connection) failed; it is logged here, at
   * warning with the URL, the cause and when the next attempt is, since a
   * monitor that cannot connect hears nothing.
   */
  #afterFailure(
    shard: Shard,
    reason: string,
    code: number | undefined,
    attemptFailed = false,
  ): void {
    shard.failures++;
    if (this.#maxAttempts > 0 && shard.failures >= this.#maxAttempts) {
      shard.state = "disconnected";
      shard.gaveUp = true;
      log.error(
        "pusher shard {shard}: giving up on {url} after {n} consecutive failures (last: {reason})",
        { shard: shard.index, url: this.#url, n: shard.failures, reason },
      );
      this.#call("onGiveUp", () => this.#h.onGiveUp?.(shard.index, shard.failures));
      return;
    }
    if (code !== undefined && code >= 4000 && code <= 4099) {
      const delay = this.#refusedMs * (1 + 0.1 * Math.random());
      log.error(
        "pusher shard {shard}: {url} refused the connection with {code} ({reason}): {cause}. " +
          "Next attempt in {seconds} s",
        {
          shard: shard.index,
          url: this.#url,
          code,
          reason,
          cause: refusalCause(code),
          seconds: Math.round(delay / 1000),
        },
      );
      this.#schedule(shard, delay, "refused");
      return;
    }
    let delay: number;
    if (code !== undefined && code >= 4200 && code <= 4299 && shard.failures <= 3) {
      delay = 0;
    } else {
      const cap = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(30, shard.failures - 1));
      delay = Math.random() * cap;
      if (code !== undefined && code >= 4100 && code <= 4199) {
        delay = Math.min(this.#maxMs, this.#baseMs + delay);
      }
    }
    if (attemptFailed) {
      log.warn(
        "pusher shard {shard}: cannot connect to {url}: {reason}; next attempt in {seconds} s " +
          "(failure {n})",
        {
          shard: shard.index,
          url: this.#url,
          reason,
          seconds: Math.round(delay / 100) / 10,
          n: shard.failures,
        },
      );
    } else {
      log.debug("pusher shard {shard}: reconnecting in {ms} ms (failure {n})", {
        shard: shard.index,
        ms: Math.round(delay),
        n: shard.failures,
      });
    }
    this.#schedule(shard, delay, "backoff");
  }

  /** Disposes of a pusher-js instance completely (timers, socket, global registrations). */
  #teardown(conn: Conn): void {
    if (conn.subTimer !== undefined) clearTimeout(conn.subTimer);
    conn.subTimer = undefined;
    if (conn.connectTimer !== undefined) clearTimeout(conn.connectTimer);
    if (conn.watchdog !== undefined) clearTimeout(conn.watchdog);
    conn.connectTimer = undefined;
    conn.watchdog = undefined;
    const p = conn.pusher;
    try {
      p.connection.unbind();
      p.disconnect();
    } catch (e) {
      log.debug("pusher-js disconnect threw: {error}", { error: String(e) });
    }
    const ws = conn.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      try {
        ws.close();
      } catch { /* already closing */ }
      this.#track(conn.socketClosed);
    }
    const instances = PusherImpl.instances;
    const i = instances.indexOf(p);
    if (i >= 0) instances.splice(i, 1);
    const network = (PusherImpl.Runtime as unknown as WorkerRuntime).getNetwork();
    for (const { event, fn } of conn.netCallbacks) {
      try {
        network.unbind(event, fn);
      } catch { /* best effort */ }
    }
    conn.netCallbacks.length = 0;
  }

  /** Tracks a closing socket so that stop() can wait for it, with a 2 s cap and no stray timer. */
  #track(closed: Promise<void>): void {
    let timer: Timer | undefined;
    const p = Promise.race([
      closed,
      new Promise<void>((r) => (timer = setTimeout(r, 2000))),
    ]).then(() => {
      clearTimeout(timer);
      this.#closing.delete(p);
    });
    this.#closing.add(p);
  }

  #call(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      log.error("pusher {handler} handler threw: {error}", {
        handler: name,
        error: e instanceof Error ? e.stack ?? e.message : String(e),
      });
    }
  }
}

/** Longest frame handed to pusher-js, in UTF-16 code units (status frames are ~200). */
const MAX_FRAME_CHARS = 256 * 1024;

/**
 * Interposes on the `onmessage` handler pusher-js installs on its native
 * WebSocket: a frame longer than {@linkcode MAX_FRAME_CHARS} is dropped and
 * reported, and an exception thrown by pusher-js while it handles a frame
 * (it throws on a frame without `event`, for one) is caught and reported
 * instead of escaping the event handler.
 */
function guardMessages(
  ws: WebSocket,
  shard: number,
  onRejected: PusherSubscriberHandlers["onFrameRejected"],
): void {
  const proto = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  if (!proto?.set || !proto.get) return;
  Object.defineProperty(ws, "onmessage", {
    configurable: true,
    get: () => proto.get!.call(ws),
    set: (fn: ((ev: MessageEvent) => void) | null) => {
      if (typeof fn !== "function") {
        proto.set!.call(ws, fn);
        return;
      }
      proto.set!.call(ws, (ev: MessageEvent) => {
        // A frame far beyond any status event is dropped before pusher-js parses it.
        if (typeof ev.data === "string" && ev.data.length > MAX_FRAME_CHARS) {
          onRejected?.(shard, "too_large", `${ev.data.length} characters`);
          return;
        }
        try {
          fn.call(ws, ev);
        } catch (e) {
          // pusher-js throws from inside its handler on some malformed frames
          // (e.g. no "event"); uncaught, that would end the process.
          onRejected?.(shard, "client_error", e instanceof Error ? e.message : String(e));
        }
      });
    },
  });
}
