/**
 * Client side of Kick's Pusher WebSocket, the pool: keeps one or more pusher-js
 * connections ("shards") subscribed to `channel.{channelId}` for every
 * monitored Kick channel and hands every app event to a callback. This module
 * places channels on shards, starts and stops them, and reports their
 * snapshot; one shard's connection is `shard_connection.ts`, the retry policy
 * `reconnect_policy.ts`, and pusher-js's internals `pusher_shim.ts`.
 *
 * Protocol facts used here (docs/kick-protocol.md):
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
 * torn down and a fresh one is created after this module's backoff. Deno reports an
 * abrupt TCP close as code 0; it is normalised to 1006 (see `pusher_shim.ts` for how
 * close codes are observed).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { LogRateLimiter } from "../../log/logging.ts";
import { channelName } from "./frames.ts";
import { ConnectSlots } from "./connect_slots.ts";
import type { PusherOptions } from "./pusher_shim.ts";
import { type ShardConfig, ShardConnection, type ShardPool } from "./shard_connection.ts";
import type { PusherSubscriberHandlers, ShardSnapshot } from "./types.ts";

export type { PusherSubscriberHandlers, ShardSnapshot, ShardState } from "./types.ts";

const log = getLogger(["kickmon", "pusher"]);

type Timer = ReturnType<typeof setTimeout>;

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
  /**
   * Least time between two connection attempts of any shards, first or reconnect, ms
   * (`KICK_PUSHER_CONNECT_SPACING`, `connect_slots.ts`). Default 15.
   */
  readonly staggerMs?: number;
  /** A connection that stayed up this long resets the shard's failure count. Default 30000. */
  readonly stableAfterMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Keeps Pusher subscriptions for a set of Kick channel ids, sharded over
 * several connections, with its own reconnect policy (see the module doc).
 *
 * Lifecycle: construct → {@linkcode setChannels} (any time) → {@linkcode start}
 * → … → `await` {@linkcode stop}. A stopped subscriber cannot be restarted.
 *
 * Reconnect policy per shard, by close code (§1.4), in `reconnect_policy.ts`: 4000–4099
 * (refused) wait `refusedRetryMs`, 4100–4199 back off from `reconnectBaseMs`, 4200–4299
 * reconnect at once, anything else (1006, 1000, handshake timeout, silent socket) backs off
 * exponentially with full jitter.
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
  readonly #maxPerShard: number;
  readonly #slots: ConnectSlots;
  /** What every shard shares with the pool (see {@linkcode ShardPool}). */
  readonly #pool: ShardPool;

  readonly #shards = new Map<number, ShardConnection>();
  readonly #channelShard = new Map<string, ShardConnection>();
  readonly #closing = new Set<Promise<void>>();
  #started = false;
  #stopped = false;

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
    this.#maxPerShard = o.maxChannelsPerConnection ?? 500;
    const baseMs = o.reconnectBaseMs ?? 1000;
    const maxMs = o.reconnectMaxMs ?? 30_000;
    const refusedMs = Math.max(1000, o.refusedRetryMs ?? 60_000);
    const maxAttempts = o.maxReconnectAttempts ?? 0;
    const pongTimeoutMs = o.pongTimeoutMs ?? 30_000;
    const activityTimeoutMs = o.activityTimeoutMs ?? 120_000;
    const connectTimeoutMs = Math.min(15_000, o.connectTimeoutMs ?? 10_000);
    const staggerMs = o.staggerMs ?? 15;
    const stableAfterMs = o.stableAfterMs ?? 30_000;
    if (!Number.isInteger(this.#maxPerShard) || this.#maxPerShard < 1) {
      throw new RangeError(
        `maxChannelsPerConnection must be a positive integer, got ${this.#maxPerShard}`,
      );
    }
    for (
      const [name, v] of Object.entries({
        reconnectBaseMs: baseMs,
        reconnectMaxMs: maxMs,
        maxReconnectAttempts: maxAttempts,
        pongTimeoutMs,
        activityTimeoutMs,
        connectTimeoutMs,
        staggerMs,
        stableAfterMs,
      })
    ) {
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${name} must be ≥ 0, got ${v}`);
    }
    this.#slots = new ConnectSlots(staggerMs);
    const tls = o.tls ?? true;
    const pusherOptions: PusherOptions = {
      cluster: o.cluster,
      forceTLS: tls,
      // Only the WebSocket transport: no SockJS/XHR fallbacks (they do not exist in Deno).
      enabledTransports: ["ws"],
      enableStats: false,
      activityTimeout: activityTimeoutMs,
      pongTimeout: pongTimeoutMs,
      unavailableTimeout: connectTimeoutMs,
      ...(o.host !== undefined ? { wsHost: o.host } : {}),
      ...(o.port !== undefined ? (tls ? { wssPort: o.port } : { wsPort: o.port }) : {}),
    };
    const host = o.host || `ws-${o.cluster}.pusher.com`;
    const config: ShardConfig = {
      key: o.key,
      pusherOptions,
      url: `${tls ? "wss" : "ws"}://${host}:${o.port ?? (tls ? 443 : 80)}`,
      policy: {
        reconnectBaseMs: baseMs,
        reconnectMaxMs: maxMs,
        refusedRetryMs: refusedMs,
        maxReconnectAttempts: maxAttempts,
      },
      pongTimeoutMs,
      activityTimeoutMs,
      connectTimeoutMs,
      stableAfterMs,
    };
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#pool = {
      config,
      handlers,
      limit: new LogRateLimiter(3, 60_000),
      get running() {
        return self.#started && !self.#stopped;
      },
      slot: (delayMs) => this.#slots.reserve(delayMs),
      track: (closed) => this.#track(closed),
    };
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
      if (!desired.has(name)) {
        shard.removeChannel(name);
        this.#channelShard.delete(name);
      }
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
      this.#channelShard.set(name, shard);
      shard.addChannel(name);
    }
    for (const shard of ordered) {
      if (shard.channels.size === 0) this.#closeShard(shard);
      else if (this.#started && !this.#stopped) shard.wake();
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
      shard.wake();
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
    for (const shard of this.#shards.values()) shard.stop();
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
    return this.#pool.config.url;
  }

  #snapshot(): ShardSnapshot[] {
    return [...this.#shards.values()].sort((a, b) => a.index - b.index).map((s) => s.snapshot());
  }

  #newShard(): ShardConnection {
    let index = 0;
    while (this.#shards.has(index)) index++;
    const shard = new ShardConnection(index, this.#pool);
    this.#shards.set(index, shard);
    return shard;
  }

  #closeShard(shard: ShardConnection): void {
    shard.close();
    this.#shards.delete(shard.index);
    log.debug("pusher shard {shard} closed (no channels left)", { shard: shard.index });
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
}
