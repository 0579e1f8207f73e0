/**
 * The subscriptions of one Pusher connection (one pusher-js instance): binds each channel's
 * handler, hands app events on, records `pusher_internal:subscription_succeeded`
 * acknowledgements, and sends a refused or unanswered `pusher:subscribe` again on the
 * schedule of `reconnect_policy.ts` (one timer per connection). A new connection starts a new
 * book, since after any reconnect the server remembers nothing (docs/kick-protocol.md §1.4).
 *
 * The per-frame path is the handler {@linkcode ChannelSubscriptions.add} binds: two prefix
 * checks, one set lookup and the `onEvent` call; nothing is allocated there.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LogRateLimiter } from "../../log/logging.ts";
import type { PusherClient } from "./pusher_shim.ts";
import { SUBSCRIBE_ACK_TIMEOUT_MS, subscribeRetryDelayMs } from "./reconnect_policy.ts";
import type { PusherSubscriberHandlers } from "./types.ts";

const log = getLogger(["kickmon", "pusher"]);

/**
 * What a {@linkcode ChannelSubscriptions} needs from the shard that owns it.
 *
 * @example
 * ```ts
 * import type { SubscriptionOwner } from "./channel_subscriptions.ts";
 * declare const limit: SubscriptionOwner["limit"];
 * const owner: SubscriptionOwner = {
 *   index: 0, channels: new Set(["channel.668"]), handlers: { onEvent() {} }, limit,
 *   running: true, allAcked() {}, retried() {},
 * };
 * ```
 */
export interface SubscriptionOwner {
  /** Shard number, for logs and rate-limiter keys. */
  readonly index: number;
  /** The shard's channel names (the live set, not a copy). */
  readonly channels: ReadonlySet<string>;
  /** The subscriber's callbacks (`onEvent` is called for every app event). */
  readonly handlers: PusherSubscriberHandlers;
  /** Bounds the refused-subscription warnings. */
  readonly limit: LogRateLimiter;
  /** False once the pool stopped: no further retries are sent. */
  readonly running: boolean;
  /** Every channel is acknowledged on this connection (called once per book until `add`). */
  allAcked(): void;
  /** One `pusher:subscribe` was sent again. */
  retried(): void;
}

/** An unacknowledged channel: since when and when to retry (performance.now(), ms), failed tries. */
interface Pending {
  since: number;
  failures: number;
  retryAt: number;
}

/**
 * The subscription book of one connection (see the module doc).
 *
 * @example
 * ```ts
 * import { ChannelSubscriptions, type SubscriptionOwner } from "./channel_subscriptions.ts";
 * import type { PusherClient } from "./pusher_shim.ts";
 * declare const pusher: PusherClient;
 * declare const owner: SubscriptionOwner;
 * const subs = new ChannelSubscriptions(pusher, owner);
 * for (const name of owner.channels) subs.add(name);
 * // on pusher:connection_established:
 * subs.markConnected();
 * subs.checkAllAcked();
 * // when the connection ends:
 * subs.dispose();
 * ```
 */
export class ChannelSubscriptions {
  readonly #pusher: PusherClient;
  readonly #owner: SubscriptionOwner;
  readonly #channels: ReadonlySet<string>;
  readonly #handlers = new Map<string, (event: string, data: unknown) => void>();
  readonly #acked = new Set<string>();
  readonly #pending = new Map<string, Pending>();
  #connected = false;
  #live = true;
  #fullyAcked = false;
  /** Next re-subscribe check (see `#armRetry`), and when it is due (performance.now(), ms). */
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = Infinity;

  /**
   * @param pusher the connection's pusher-js client.
   * @param owner the shard (see {@linkcode SubscriptionOwner}).
   *
   * @example
   * ```ts
   * import { ChannelSubscriptions, type SubscriptionOwner } from "./channel_subscriptions.ts";
   * import type { PusherClient } from "./pusher_shim.ts";
   * declare const pusher: PusherClient;
   * declare const owner: SubscriptionOwner;
   * const subs = new ChannelSubscriptions(pusher, owner);
   * ```
   */
  constructor(pusher: PusherClient, owner: SubscriptionOwner) {
    this.#pusher = pusher;
    this.#owner = owner;
    this.#channels = owner.channels;
  }

  /**
   * Channels acknowledged on this connection.
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const done = (s: ChannelSubscriptions, n: number) => s.acked === n;
   * ```
   */
  get acked(): number {
    return this.#acked.size;
  }

  /**
   * How long the longest-waiting unacknowledged channel has waited, ms (0 when none waits).
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const stuck = (s: ChannelSubscriptions) => s.oldestPendingMs() > 30_000;
   * ```
   */
  oldestPendingMs(): number {
    let since = Infinity;
    for (const p of this.#pending.values()) since = Math.min(since, p.since);
    return since === Infinity ? 0 : Math.round(performance.now() - since);
  }

  /**
   * Subscribes a channel (pusher-js sends `pusher:subscribe` now or once connected), waits for
   * its acknowledgement, and binds its handler once.
   *
   * @param name the channel name, `channel.{channelId}` (§2).
   * @param added true when the channel was just placed on the shard: the book then reports
   *   {@linkcode SubscriptionOwner.allAcked} again once it is acknowledged.
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const place = (s: ChannelSubscriptions) => s.add("channel.668", true);
   * ```
   */
  add(name: string, added = false): void {
    if (added) this.#fullyAcked = false;
    const channel = this.#pusher.subscribe(name);
    if (!this.#acked.has(name) && !this.#pending.has(name)) {
      const now = performance.now();
      const retryAt = now + SUBSCRIBE_ACK_TIMEOUT_MS;
      this.#pending.set(name, { since: now, failures: 0, retryAt });
      this.#armRetry(retryAt);
    }
    if (this.#handlers.has(name)) return;
    const owner = this.#owner;
    const channels = this.#channels;
    const h = (eventName: string, data: unknown): void => {
      if (!this.#live) return;
      if (eventName.startsWith("pusher:") || eventName.startsWith("pusher_internal:")) {
        if (eventName === "pusher:subscription_succeeded") this.#onAck(name);
        else if (eventName === "pusher:subscription_error") this.#onRefused(name, data);
        return;
      }
      if (!channels.has(name)) return;
      try {
        owner.handlers.onEvent(name, eventName, data, Date.now(), performance.now());
      } catch (e) {
        log.error("pusher onEvent handler threw for {event} on {channel}: {error}", {
          event: eventName,
          channel: name,
          error: e instanceof Error ? e.stack ?? e.message : String(e),
        });
      }
    };
    this.#handlers.set(name, h);
    channel.bind_global(h);
  }

  /**
   * Unsubscribes a channel removed from the shard. A failure is logged, never thrown.
   *
   * @param name the channel name.
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const drop = (s: ChannelSubscriptions) => s.remove("channel.668");
   * ```
   */
  remove(name: string): void {
    this.#acked.delete(name);
    this.#pending.delete(name);
    const h = this.#handlers.get(name);
    this.#handlers.delete(name);
    try {
      if (h) this.#pusher.channel(name)?.unbind_global(h);
      this.#pusher.unsubscribe(name);
    } catch (e) {
      log.warn("pusher shard {shard}: unsubscribe {channel} failed: {error}", {
        shard: this.#owner.index,
        channel: name,
        error: String(e),
      });
    }
  }

  /**
   * The connection is established: from now on retries are sent, and acknowledgements can
   * complete the book (call {@linkcode checkAllAcked} once the shard has announced the
   * connection).
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const onEstablished = (s: ChannelSubscriptions) => s.markConnected();
   * ```
   */
  markConnected(): void {
    this.#connected = true;
  }

  /**
   * Reports {@linkcode SubscriptionOwner.allAcked} when the connection is established and every
   * channel of the shard is acknowledged, once (again after {@linkcode add} with `added`).
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const afterConnect = (s: ChannelSubscriptions) => s.checkAllAcked();
   * ```
   */
  checkAllAcked(): void {
    if (!this.#fullyAcked && this.#connected && this.#acked.size >= this.#channels.size) {
      this.#fullyAcked = true;
      this.#owner.allAcked();
    }
  }

  /**
   * A `pusher:error` arrived on the open connection (e.g. 4302 for a subscription): every
   * channel still unacknowledged is sent again, with backoff.
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const onPusherError = (s: ChannelSubscriptions) => s.retryPending();
   * ```
   */
  retryPending(): void {
    for (const p of this.#pending.values()) {
      p.failures++;
      p.retryAt = Math.min(p.retryAt, performance.now() + subscribeRetryDelayMs(p.failures));
    }
    this.#armRetry();
  }

  /**
   * The connection is over: cancels the retry timer; the handlers ignore whatever still comes.
   *
   * @example
   * ```ts
   * import type { ChannelSubscriptions } from "./channel_subscriptions.ts";
   * const end = (s: ChannelSubscriptions) => s.dispose();
   * ```
   */
  dispose(): void {
    this.#live = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onRefused(name: string, data: unknown): void {
    const p = this.#pending.get(name);
    if (p) {
      p.failures++;
      p.retryAt = performance.now() + subscribeRetryDelayMs(p.failures);
      this.#armRetry();
    }
    if (this.#owner.limit.allow(`suberr:${this.#owner.index}`)) {
      log.warn(
        "pusher shard {shard}: subscription to {channel} refused ({data}); retrying in {ms} ms",
        {
          shard: this.#owner.index,
          channel: name,
          data: JSON.stringify(data)?.slice(0, 200),
          ms: Math.round((p?.retryAt ?? performance.now()) - performance.now()),
        },
      );
    }
  }

  #onAck(name: string): void {
    if (!this.#channels.has(name)) return;
    this.#pending.delete(name);
    this.#acked.add(name);
    this.checkAllAcked();
  }

  /**
   * Sends `pusher:subscribe` again for every channel whose retry is due (refused by
   * `pusher:subscription_error` or a `pusher:error` (docs/kick-protocol.md §10.1), or unanswered for
   * {@linkcode SUBSCRIBE_ACK_TIMEOUT_MS}), and re-arms for the next one.
   *
   * @param added the `retryAt` (performance.now(), ms) of the one entry just added, when that is
   *   all that changed: an armed timer is then already due at the earliest of the others, so only
   *   this one needs comparing. Without it every entry is scanned, which made placing a
   *   connection's channels one by one quadratic (1,000 channels: half a million comparisons;
   *   issue 15, `--cpu-prof` of the start-up).
   */
  #armRetry(added?: number): void {
    if (this.#pending.size === 0) return;
    let next = Infinity;
    if (added !== undefined && this.#timer !== undefined) next = added;
    else for (const p of this.#pending.values()) next = Math.min(next, p.retryAt);
    if (this.#timer !== undefined) {
      if (this.#timerAt <= next) return; // already due in time
      clearTimeout(this.#timer);
    }
    this.#timerAt = next;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#live || !this.#owner.running) return;
      const now = performance.now();
      if (this.#connected) {
        for (const [name, p] of this.#pending) {
          if (p.retryAt > now || !this.#channels.has(name)) continue;
          p.failures++;
          p.retryAt = now + Math.max(SUBSCRIBE_ACK_TIMEOUT_MS, subscribeRetryDelayMs(p.failures));
          this.#owner.retried();
          try {
            // pusher-js's Channel.subscribe() sends pusher:subscribe again for a
            // channel not (yet) subscribed; the bound handler stays.
            const ch = this.#pusher.channel(name) as unknown as
              | { subscribed: boolean; subscribe(): void }
              | undefined;
            if (ch && !ch.subscribed) ch.subscribe();
            else if (!ch) this.add(name);
          } catch (e) {
            log.warn("pusher shard {shard}: re-subscribing {channel} failed: {error}", {
              shard: this.#owner.index,
              channel: name,
              error: String(e),
            });
          }
        }
      }
      this.#armRetry();
    }, Math.max(50, next - performance.now()));
    Deno.unrefTimer(this.#timer as unknown as number);
  }
}
