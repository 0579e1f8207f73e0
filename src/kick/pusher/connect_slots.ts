/**
 * The spacing of Pusher connection attempts (`KICK_PUSHER_CONNECT_SPACING`):
 * every attempt of every shard, the first at start and each reconnect,
 * reserves a slot here, and no two slots are closer than `spacingMs`. After
 * a network cut all shards reconnect at once; their attempts then reach
 * Kick's Pusher (docs/kick-protocol.md §1.4: 4004 over quota, 4100 over
 * capacity) at most one per `spacingMs` instead of all in one burst.
 *
 * @module
 */

/**
 * Hands out connection-attempt slots at least `spacingMs` apart.
 *
 * @example
 * ```ts
 * import { ConnectSlots } from "./connect_slots.ts";
 * const slots = new ConnectSlots(20);
 * slots.reserve(0); // 0: the first attempt may start now
 * slots.reserve(0); // 20: the next one waits 20 ms
 * ```
 */
export class ConnectSlots {
  readonly #spacingMs: number;
  readonly #now: () => number;
  /** Clock time (ms) before which no further attempt may start. */
  #next = -Infinity;

  /**
   * @param spacingMs least time between two slots, ms (0: no spacing).
   * @param now a monotonic clock in ms; default `performance.now`.
   * @throws {RangeError} when `spacingMs` is negative or not finite.
   *
   * @example
   * ```ts
   * import { ConnectSlots } from "./connect_slots.ts";
   * let t = 0;
   * const slots = new ConnectSlots(100, () => t);
   * ```
   */
  constructor(spacingMs: number, now: () => number = () => performance.now()) {
    if (!(Number.isFinite(spacingMs) && spacingMs >= 0)) {
      throw new RangeError(`connect spacing must be ≥ 0 ms, got ${spacingMs}`);
    }
    this.#spacingMs = spacingMs;
    this.#now = now;
  }

  /**
   * Reserves the first free slot at least `delayMs` from now.
   *
   * @param delayMs the attempt's own wait (its backoff), ms.
   * @returns how long the attempt must wait from now, ms (an integer ≥ 0).
   *
   * @example
   * ```ts
   * import { ConnectSlots } from "./connect_slots.ts";
   * const slots = new ConnectSlots(50);
   * slots.reserve(1000); // 1000: the backoff is longer than the spacing
   * ```
   */
  reserve(delayMs: number): number {
    const now = this.#now();
    const at = Math.max(now + delayMs, this.#next);
    this.#next = at + this.#spacingMs;
    return Math.max(0, Math.round(at - now));
  }
}
