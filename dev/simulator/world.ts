/**
 * The simulator's truth: which made-up (or fixture-derived) Kick streamers
 * exist and whether each is live. The Pusher server, the official API
 * endpoints and the webhook sender all read this one model, so a test sets
 * the truth once and every simulated Kick surface agrees.
 *
 * @module
 */

/** One simulated Kick streamer. The three ids differ, as on Kick (docs/kick-protocol.md §2). */
export interface SimStreamer {
  /** Official API `broadcaster_user_id`. */
  readonly userId: number;
  /** Channel slug, e.g. `bossmanjack`. */
  readonly slug: string;
  /** Pusher channel id (`channel.{channelId}`). */
  readonly channelId: number;
  live: boolean;
  /** Current (or last) livestream id. */
  livestreamId: number;
  title: string;
  /** ISO 8601 start of the current stream, or null. */
  startedAt: string | null;
}

/** What happened in the world; surfaces subscribe to publish it. */
export type WorldChange = {
  readonly kind: "live" | "offline";
  readonly streamer: Readonly<SimStreamer>;
};

/** Options for {@linkcode World.setLive}. */
export interface SetLiveOptions {
  /**
   * Publish the change on the real-time surfaces (Pusher frame, webhook).
   * `false` changes only the truth the official API reports, which is how a
   * test simulates a transition that happened while no socket was up.
   * Default `true`.
   */
  readonly publish?: boolean;
}

/**
 * The simulated truth. Listeners get every published change, synchronously,
 * in order.
 *
 * @example
 * ```ts
 * const world = new World();
 * const s = world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504 });
 * world.onChange((c) => console.log(c.kind, c.streamer.slug));
 * world.setLive(s.userId, true);
 * ```
 */
export class World {
  readonly #byUser = new Map<number, SimStreamer>();
  readonly #listeners = new Set<(c: WorldChange) => void>();
  #nextLivestreamId = 80_000_000;

  /** Adds a streamer (offline unless `live` is given). Returns the stored record. */
  add(
    s: { userId: number; slug: string; channelId: number; live?: boolean; title?: string },
  ): SimStreamer {
    const rec: SimStreamer = {
      userId: s.userId,
      slug: s.slug,
      channelId: s.channelId,
      live: s.live ?? false,
      livestreamId: this.#nextLivestreamId++,
      title: s.title ?? `${s.slug} stream`,
      startedAt: s.live ? new Date().toISOString() : null,
    };
    this.#byUser.set(rec.userId, rec);
    return rec;
  }

  /** Removes a streamer from the truth (the API then no longer returns it). */
  remove(userId: number): void {
    this.#byUser.delete(userId);
  }

  /** The streamer with this broadcaster user id, if any. */
  byUserId(userId: number): SimStreamer | undefined {
    return this.#byUser.get(userId);
  }

  /** The streamer with this slug (case-insensitive), if any. */
  bySlug(slug: string): SimStreamer | undefined {
    const s = slug.toLowerCase();
    for (const r of this.#byUser.values()) if (r.slug.toLowerCase() === s) return r;
    return undefined;
  }

  /** The streamer with this Pusher channel id, if any. */
  byChannelId(channelId: number): SimStreamer | undefined {
    for (const r of this.#byUser.values()) if (r.channelId === channelId) return r;
    return undefined;
  }

  /** Every streamer, in insertion order. */
  all(): SimStreamer[] {
    return [...this.#byUser.values()];
  }

  /**
   * Sets a streamer live or offline. Going live starts a new livestream id.
   * A call that does not change the state still publishes when `publish` is
   * true (Kick can repeat frames; kickmon must de-duplicate).
   *
   * @throws {Error} when no streamer has this user id.
   */
  setLive(userId: number, live: boolean, opts: SetLiveOptions = {}): SimStreamer {
    const rec = this.#byUser.get(userId);
    if (!rec) throw new Error(`simulator: no streamer with user id ${userId}`);
    if (live && !rec.live) {
      rec.livestreamId = this.#nextLivestreamId++;
      rec.startedAt = new Date().toISOString();
    }
    if (!live && rec.live) rec.startedAt = null;
    rec.live = live;
    if (opts.publish ?? true) {
      const change: WorldChange = { kind: live ? "live" : "offline", streamer: { ...rec } };
      for (const l of this.#listeners) l(change);
    }
    return rec;
  }

  /** Registers a listener for published changes; returns an unsubscribe function. */
  onChange(listener: (c: WorldChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
