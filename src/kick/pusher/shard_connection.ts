/**
 * One shard of the Pusher client: one set of `channel.{channelId}` names kept subscribed over
 * one WebSocket at a time (one pusher-js instance per attempt), through its whole lifecycle:
 * scheduling an attempt in the pool's stagger slot, the handshake deadline, the keep-alive
 * watchdog (docs/kick-protocol.md §1.3 `activity_timeout`), and what follows a failure (decided by
 * `reconnect_policy.ts`). The subscriptions of one connection are `channel_subscriptions.ts`;
 * the pool (`subscriber.ts`) places channels on shards.
 *
 * **State is data, changed in one place.** A shard's {@linkcode ShardState} is only ever
 * assigned in `#move(next, reason)`:
 *
 * | from                               | to                    | when                                                   |
 * | ---------------------------------- | --------------------- | ------------------------------------------------------ |
 * | `disconnected`                     | `connecting`          | `wake()` (started, channels added): waits for its slot |
 * | `connecting`, `backoff`, `refused` | `connecting`          | the slot is due: a pusher-js instance is created       |
 * | `connecting`                       | `connected`           | `pusher:connection_established`                        |
 * | `connecting`, `connected`          | `backoff`, `refused`  | a failure, as the reconnect policy decides (§1.4)      |
 * | any                                | `disconnected`        | gave up, stopped, closed, or pusher-js threw           |
 *
 * One concept, so one module over the usual ~500 lines (about 450 of them code): the attempt,
 * its handshake deadline, its watchdog and its failure all act on the same `Conn` and the same
 * shard state; split further, each part would need the others' internals.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LogRateLimiter } from "../../log/logging.ts";
import {
  createClient,
  errorInfo,
  type NetCallback,
  type PusherClient,
  type PusherOptions,
  releaseClient,
  transportSocket,
} from "./pusher_shim.ts";
import {
  reconnectDecision,
  type ReconnectPolicyOptions,
  refusalCause,
} from "./reconnect_policy.ts";
import { ChannelSubscriptions, type SubscriptionOwner } from "./channel_subscriptions.ts";
import type { PusherSubscriberHandlers, ShardSnapshot, ShardState } from "./types.ts";

const log = getLogger(["kickmon", "pusher"]);

type Timer = ReturnType<typeof setTimeout>;

/**
 * Settings shared by every shard of a pool, already normalised (defaults applied, validated).
 * All durations in **milliseconds**.
 *
 * @example
 * ```ts
 * import type { ShardConfig } from "./shard_connection.ts";
 * const patient = (c: ShardConfig) => c.connectTimeoutMs >= 10_000;
 * ```
 */
export interface ShardConfig {
  /** Pusher app key (§1.1). */
  readonly key: string;
  /** What every pusher-js instance is created with. */
  readonly pusherOptions: PusherOptions;
  /** `wss://host:port`, for log lines. */
  readonly url: string;
  /** The reconnect policy's settings. */
  readonly policy: ReconnectPolicyOptions;
  /** Wait for `pusher:pong`; also added to the activity timeout for the watchdog. */
  readonly pongTimeoutMs: number;
  /** Client-side upper bound of the activity timeout (the server's wins when lower). */
  readonly activityTimeoutMs: number;
  /** Handshake deadline of one attempt. */
  readonly connectTimeoutMs: number;
  /** A connection up this long resets the failure count. */
  readonly stableAfterMs: number;
}

/**
 * What the pool gives each of its shards.
 *
 * @example
 * ```ts
 * import type { ShardPool } from "./shard_connection.ts";
 * const idle = (p: ShardPool) => !p.running;
 * ```
 */
export interface ShardPool {
  readonly config: ShardConfig;
  readonly handlers: PusherSubscriberHandlers;
  /** Bounds the per-shard warnings (keys carry the shard number). */
  readonly limit: LogRateLimiter;
  /** True between `start()` and `stop()`. */
  readonly running: boolean;
  /** Reserves the next stagger slot at least `delayMs` from now; returns the wait, ms (integer). */
  slot(delayMs: number): number;
  /** Keeps a closing socket's promise so that `stop()` can wait for it. */
  track(closed: Promise<void>): void;
}

/** One connection attempt (one pusher-js instance). */
interface Conn {
  readonly pusher: PusherClient;
  /** Native socket created by pusher-js for this attempt (null if it could not be captured). */
  ws: WebSocket | null;
  /** Resolves when the native socket has closed (or immediately if none). */
  socketClosed: Promise<void>;
  /** This connection's subscriptions. */
  readonly subs: ChannelSubscriptions;
  readonly netCallbacks: NetCallback[];
  connected: boolean;
  connectedMono: number;
  lastRxMono: number;
  socketId: string | null;
  errorCode: number | undefined;
  errorMessage: string | undefined;
  /** The native socket's `error` event text (Deno: `failed to connect to WebSocket: dns error`). */
  socketError: string | undefined;
  connectTimer: Timer | undefined;
  watchdog: Timer | undefined;
}

/**
 * One shard: its channels, its current connection, and its retries (see the module doc).
 * Created and driven by `PusherSubscriber`; it connects only once {@linkcode wake} is called
 * while the pool is running.
 *
 * @example
 * ```ts
 * import { ShardConnection, type ShardPool } from "./shard_connection.ts";
 * declare const pool: ShardPool;
 * const shard = new ShardConnection(0, pool);
 * shard.addChannel("channel.668");
 * shard.wake();
 * // …
 * shard.close();
 * ```
 */
export class ShardConnection {
  /** Shard number (reused by the pool after the shard closes). */
  readonly index: number;
  readonly #pool: ShardPool;
  readonly #cfg: ShardConfig;
  readonly #h: PusherSubscriberHandlers;
  readonly #channels = new Set<string>();
  #state: ShardState = "disconnected";
  #stateReason = "new";
  #conn: Conn | null = null;
  #retryTimer: Timer | undefined = undefined;
  #nextAttemptAt: number | null = null;
  #failures = 0;
  #attempts = 0;
  #everConnected = false;
  #lastCloseCode: number | null = null;
  #lastCloseReason: string | null = null;
  #lastCloseAt: number | null = null;
  #lastMessageAt: number | null = null;
  #gaveUp = false;
  #closed = false;
  #subscriptionRetries = 0;
  /** What each connection's {@linkcode ChannelSubscriptions} sees of this shard. */
  readonly #owner: SubscriptionOwner;

  /**
   * @param index shard number (for callbacks, logs and the snapshot).
   * @param pool what the pool shares (see {@linkcode ShardPool}).
   *
   * @example
   * ```ts
   * import { ShardConnection, type ShardPool } from "./shard_connection.ts";
   * declare const pool: ShardPool;
   * const shard = new ShardConnection(3, pool);
   * ```
   */
  constructor(index: number, pool: ShardPool) {
    this.index = index;
    this.#pool = pool;
    this.#cfg = pool.config;
    this.#h = pool.handlers;
    this.#owner = {
      index,
      channels: this.#channels,
      handlers: pool.handlers,
      limit: pool.limit,
      get running() {
        return pool.running;
      },
      allAcked: () => {
        log.debug("pusher shard {shard}: all {n} channels subscribed", {
          shard: index,
          n: this.#channels.size,
        });
        this.#call("onSubscribed", () => this.#h.onSubscribed?.(index, this.#channels.size));
      },
      retried: () => {
        this.#subscriptionRetries++;
      },
    };
  }

  /**
   * The channel names placed on this shard (read-only view; change with
   * {@linkcode addChannel} / {@linkcode removeChannel}).
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const full = (s: ShardConnection, max: number) => s.channels.size >= max;
   * ```
   */
  get channels(): ReadonlySet<string> {
    return this.#channels;
  }

  /**
   * The current state and why it was entered (a short tag, for debugging; not in the snapshot).
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const describe = (s: ShardConnection) => `${s.state.state} (${s.state.reason})`;
   * ```
   */
  get state(): { readonly state: ShardState; readonly reason: string } {
    return { state: this.#state, reason: this.#stateReason };
  }

  /**
   * Places a channel on this shard; subscribes it at once when a connection exists.
   *
   * @param name the channel name, `channel.{channelId}` (§2).
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const add = (s: ShardConnection) => s.addChannel("channel.668");
   * ```
   */
  addChannel(name: string): void {
    this.#channels.add(name);
    this.#conn?.subs.add(name, true);
  }

  /**
   * Removes a channel from this shard; unsubscribes it when a connection exists (a failure to
   * do so is logged, never thrown).
   *
   * @param name the channel name.
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const drop = (s: ShardConnection) => s.removeChannel("channel.668");
   * ```
   */
  removeChannel(name: string): void {
    this.#channels.delete(name);
    this.#conn?.subs.remove(name);
  }

  /**
   * Schedules a first attempt (in the next stagger slot) when the shard has no connection, no
   * attempt pending and has not given up. The caller checks that the pool is running.
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const start = (shards: ShardConnection[]) => shards.forEach((s) => s.wake());
   * ```
   */
  wake(): void {
    if (!this.#gaveUp && !this.#conn && this.#retryTimer === undefined) {
      this.#schedule(0, "connecting", "woken");
    }
  }

  /**
   * Ends the connection and cancels every timer; the shard stays usable (the pool stops).
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const stopAll = (shards: ShardConnection[]) => shards.forEach((s) => s.stop());
   * ```
   */
  stop(): void {
    this.#clearRetry();
    if (this.#conn) this.#teardown(this.#conn);
    this.#conn = null;
    this.#move("disconnected", "stopped");
  }

  /**
   * Ends the connection for good (the pool removed the shard): like {@linkcode stop}, and no
   * later failure schedules another attempt.
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const closeEmpty = (s: ShardConnection) => s.channels.size === 0 && s.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    this.#clearRetry();
    if (this.#conn) this.#teardown(this.#conn);
    this.#conn = null;
    this.#move("disconnected", "closed");
  }

  /**
   * This shard as `PusherSubscriber.snapshot` reports it.
   *
   * @returns a fresh {@linkcode ShardSnapshot}.
   *
   * @example
   * ```ts
   * import type { ShardConnection } from "./shard_connection.ts";
   * const line = (s: ShardConnection) => JSON.stringify(s.snapshot());
   * ```
   */
  snapshot(): ShardSnapshot {
    const c = this.#conn;
    return {
      index: this.index,
      state: this.#state,
      channels: this.#channels.size,
      subscribed: c?.connected ? c.subs.acked : 0,
      socketId: c?.connected ? c.socketId : null,
      reconnects: Math.max(0, this.#attempts - 1),
      failures: this.#failures,
      lastCloseCode: this.#lastCloseCode,
      lastCloseReason: this.#lastCloseReason,
      lastCloseAt: this.#lastCloseAt,
      lastMessageAt: this.#lastMessageAt,
      nextAttemptAt: this.#retryTimer !== undefined ? this.#nextAttemptAt : null,
      oldestUnsubscribedMs: c?.connected ? c.subs.oldestPendingMs() : 0,
      subscriptionRetries: this.#subscriptionRetries,
    };
  }

  /** The one place the shard's state changes (see the module doc's table). */
  #move(next: ShardState, reason: string): void {
    this.#state = next;
    this.#stateReason = reason;
  }

  // -------------------------------------------------------------------------
  // Connection lifecycle
  // -------------------------------------------------------------------------

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#nextAttemptAt = null;
  }

  /** Schedules the next attempt after `delayMs`, respecting the pool's stagger slot. */
  #schedule(delayMs: number, state: ShardState, reason: string): void {
    this.#clearRetry();
    const wait = this.#pool.slot(delayMs);
    this.#move(state, reason);
    this.#nextAttemptAt = Date.now() + wait;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#nextAttemptAt = null;
      this.#connect();
    }, wait);
  }

  #connect(): void {
    if (!this.#pool.running || this.#conn || this.#closed) return;
    this.#attempts++;
    this.#move("connecting", "attempt");

    let client;
    try {
      client = createClient(this.#cfg.key, this.#cfg.pusherOptions, this.index, {
        onRejected: this.#h.onFrameRejected?.bind(this.#h),
        onNotPermitted: this.#h.onNotPermitted?.bind(this.#h),
        onFrame: this.#h.onRawFrame?.bind(this.#h),
      });
    } catch (e) {
      log.error("pusher shard {shard}: cannot create the pusher-js client: {error}", {
        shard: this.index,
        error: String(e),
      });
      this.#move("disconnected", "pusher-js constructor threw");
      this.#afterFailure(`pusher-js constructor threw: ${e}`, undefined);
      return;
    }
    const pusher = client.pusher;

    const conn: Conn = {
      pusher,
      ws: client.ws,
      socketClosed: Promise.resolve(),
      subs: new ChannelSubscriptions(pusher, this.#owner),
      netCallbacks: client.netCallbacks,
      connected: false,
      connectedMono: 0,
      lastRxMono: performance.now(),
      socketId: null,
      errorCode: undefined,
      errorMessage: undefined,
      socketError: undefined,
      connectTimer: undefined,
      watchdog: undefined,
    };
    this.#conn = conn;
    if (conn.ws) this.#watchSocket(conn, conn.ws);

    const cm = pusher.connection;
    cm.bind(
      "state_change",
      (s: { previous: string; current: string }) => this.#onState(conn, s),
    );
    // Bound after pusher-js's own "connected" handler (subscribeAll), so it runs after the
    // subscriptions were queued.
    cm.bind("connected", () => {
      if (this.#conn === conn && !conn.connected) this.#onConnected(conn);
    });
    cm.bind("error", (err: unknown) => this.#onError(conn, err));
    cm.bind("message", () => {
      conn.lastRxMono = performance.now();
      this.#lastMessageAt = Date.now();
    });
    for (const name of this.#channels) conn.subs.add(name);

    conn.connectTimer = setTimeout(() => {
      conn.connectTimer = undefined;
      this.#fail(
        conn,
        `handshake not completed within ${this.#cfg.connectTimeoutMs} ms`,
        conn.errorCode,
      );
    }, this.#cfg.connectTimeoutMs);
    log.debug("pusher shard {shard}: connecting (attempt {attempt}, {n} channels)", {
      shard: this.index,
      attempt: this.#attempts,
      n: this.#channels.size,
    });
  }

  /** Listens to the native socket's close event (the reliable source of close codes). */
  #watchSocket(conn: Conn, ws: WebSocket): void {
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
        conn,
        `${conn.connected ? "connection closed" : "connection attempt closed"} (${code}${
          why ? `: ${why}` : ""
        })`,
        code,
      );
    }, { once: true });
  }

  #onState(conn: Conn, s: { previous: string; current: string }): void {
    if (this.#conn !== conn) return;
    if (s.current === "connected") return; // handled by the "connected" binding
    if (s.current === "connecting" && !conn.connected) return;
    // connected → connecting (pusher-js retrying: pong timeout, server close), unavailable,
    // disconnected (refused), failed: this instance is done.
    // A native close is handled first (#watchSocket), so connected → connecting without an
    // error means pusher-js's own keep-alive failed: it pinged and got no pong in time (§1.3).
    const reason = conn.errorMessage !== undefined
      ? `pusher-js ${s.current}: ${conn.errorMessage}`
      : s.previous === "connected" && s.current === "connecting"
      ? `no pusher:pong within ${this.#cfg.pongTimeoutMs} ms of pusher-js's ping (silent connection)`
      : `pusher-js state ${s.previous} → ${s.current}`;
    this.#fail(conn, reason, conn.errorCode);
  }

  #onError(conn: Conn, err: unknown): void {
    if (this.#conn !== conn) return;
    const info = errorInfo(err);
    if (info.code !== undefined) conn.errorCode = info.code;
    if (info.message !== undefined) conn.errorMessage = info.message;
    if (info.code === undefined) {
      if (info.type === "HandshakeError" || info.type === "MessageParseError") {
        log.warn("pusher shard {shard}: {type}: {message}", {
          shard: this.index,
          type: info.type,
          message: info.message ?? "",
        });
      }
      return;
    }
    if (!conn.connected) {
      // Handshake refusal (`pusher:error` instead of `pusher:connection_established`, §1.4).
      this.#fail(conn, `handshake refused (${info.code}: ${info.message ?? ""})`, info.code);
    } else {
      // A `pusher:error` frame on an open connection (e.g. 4302 for a
      // subscription); a close often follows. What is still unacknowledged is
      // subscribed again with backoff. Logged at a bounded rate.
      conn.subs.retryPending();
      if (this.#pool.limit.allow(`pusher-error:${this.index}`)) {
        log.warn("pusher shard {shard}: pusher:error {code}: {message}", {
          shard: this.index,
          code: info.code,
          message: info.message ?? "",
        });
      }
    }
  }

  #onConnected(conn: Conn): void {
    const cm = conn.pusher.connection;
    conn.connected = true;
    conn.subs.markConnected();
    conn.connectedMono = performance.now();
    conn.lastRxMono = conn.connectedMono;
    conn.socketId = cm.socket_id;
    conn.errorCode = undefined;
    conn.errorMessage = undefined;
    if (conn.connectTimer !== undefined) clearTimeout(conn.connectTimer);
    conn.connectTimer = undefined;
    if (!conn.ws) {
      // Fallback when the socket could not be captured at creation time.
      const ws = transportSocket(conn.pusher);
      if (ws) {
        conn.ws = ws;
        this.#watchSocket(conn, ws);
      }
    }
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#move("connected", "connection established");
    this.#armWatchdog(conn);
    log.info("pusher shard {shard} connected: socket {socketId}, {channels} channels", {
      shard: this.index,
      socketId: conn.socketId,
      channels: this.#channels.size,
      reconnect,
      attempt: this.#attempts,
    });
    this.#call(
      "onConnected",
      () => this.#h.onConnected?.(this.index, { socketId: conn.socketId ?? "", reconnect }),
    );
    conn.subs.checkAllAcked();
  }

  /** Activity timeout (ms) agreed for this connection: min(client bound, server's `activity_timeout`). */
  #activityMs(conn: Conn): number {
    const t = conn.pusher.connection.activityTimeout;
    return typeof t === "number" && t > 0 ? t : this.#cfg.activityTimeoutMs;
  }

  #armWatchdog(conn: Conn): void {
    const pongMs = this.#cfg.pongTimeoutMs;
    const limit = this.#activityMs(conn) + pongMs;
    const check = () => {
      conn.watchdog = undefined;
      if (this.#conn !== conn) return;
      const idle = performance.now() - conn.lastRxMono;
      if (idle >= limit) {
        this.#fail(
          conn,
          `no frame or pong for ${Math.round(idle)} ms (activity timeout ${
            this.#activityMs(conn)
          } ms + pong timeout ${pongMs} ms)`,
          undefined,
        );
        return;
      }
      conn.watchdog = setTimeout(check, Math.max(10, limit - idle));
    };
    conn.watchdog = setTimeout(check, limit);
  }

  /** Ends the current attempt/connection and schedules what comes next. */
  #fail(conn: Conn, reason: string, code: number | undefined): void {
    if (this.#conn !== conn) return;
    const wasConnected = conn.connected;
    const upFor = wasConnected ? performance.now() - conn.connectedMono : 0;
    this.#conn = null;
    this.#teardown(conn);
    this.#lastCloseCode = code ?? null;
    this.#lastCloseReason = reason;
    this.#lastCloseAt = Date.now();
    if (wasConnected) {
      log.warn("pusher shard {shard} lost its connection to {url} after {upMs} ms: {reason}", {
        shard: this.index,
        url: this.#cfg.url,
        upMs: Math.round(upFor),
        reason,
      });
      this.#call("onDisconnected", () => this.#h.onDisconnected?.(this.index, reason, code));
    }
    if (!this.#pool.running || this.#closed) {
      this.#move("disconnected", "failed while stopping");
      return;
    }
    if (wasConnected && upFor >= this.#cfg.stableAfterMs) this.#failures = 0;
    this.#afterFailure(reason, code, !wasConnected);
  }

  /**
   * Schedules the next attempt after a failure, as the reconnect policy decides.
   * `attemptFailed`: a connection attempt (not an established connection) failed; it is
   * logged here, at warning with the URL, the cause and when the next attempt is, since a
   * monitor that cannot connect hears nothing.
   */
  #afterFailure(reason: string, code: number | undefined, attemptFailed = false): void {
    this.#failures++;
    const n = this.#failures;
    const url = this.#cfg.url;
    const { state, delay } = reconnectDecision(n, code, this.#cfg.policy);
    if (state === "disconnected") {
      this.#move("disconnected", "gave up");
      this.#gaveUp = true;
      log.error(
        "pusher shard {shard}: giving up on {url} after {n} consecutive failures (last: {reason})",
        { shard: this.index, url, n, reason },
      );
      this.#call("onGiveUp", () => this.#h.onGiveUp?.(this.index, n));
      return;
    }
    if (state === "refused") {
      log.error(
        "pusher shard {shard}: {url} refused the connection with {code} ({reason}): {cause}. " +
          "Next attempt in {seconds} s",
        {
          shard: this.index,
          url,
          code,
          reason,
          cause: refusalCause(code!),
          seconds: Math.round(delay / 1000),
        },
      );
      this.#schedule(delay, "refused", "refused");
      return;
    }
    if (attemptFailed) {
      log.warn(
        "pusher shard {shard}: cannot connect to {url}: {reason}; next attempt in {seconds} s " +
          "(failure {n})",
        { shard: this.index, url, reason, seconds: Math.round(delay / 100) / 10, n },
      );
    } else {
      log.debug("pusher shard {shard}: reconnecting in {ms} ms (failure {n})", {
        shard: this.index,
        ms: Math.round(delay),
        n,
      });
    }
    this.#schedule(delay, "backoff", "after failure");
  }

  /** Disposes of the attempt completely (timers, socket, pusher-js's global registrations). */
  #teardown(conn: Conn): void {
    conn.subs.dispose();
    if (conn.connectTimer !== undefined) clearTimeout(conn.connectTimer);
    if (conn.watchdog !== undefined) clearTimeout(conn.watchdog);
    conn.connectTimer = undefined;
    conn.watchdog = undefined;
    if (releaseClient(conn.pusher, conn.ws, conn.netCallbacks)) {
      this.#pool.track(conn.socketClosed);
    }
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
